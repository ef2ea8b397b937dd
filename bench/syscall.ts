/**
 * The syscall benchmark: what one WASI call costs under popcorn (one kernel; the instrumented
 * program, its imports wrapped by the kernel's Execution) and under node:wasi (uvwasi, in C).
 * examples/bench/syscall.wasm times N calls inside the program with clock_gettime and prints
 * ns per call, so start-up is not counted:
 *
 *   clock_ns   clock_gettime(CLOCK_MONOTONIC): WASI clock_time_get
 *   write_ns   a 1-byte write() to /dev/null: fd_write with one iovec
 *   open_ns    open("/dev/null") + close(): wasi-libc's fd_fdstat_get of the preopen, path_open,
 *              fd_close
 *
 * Each as PROG_popcorn_ns, PROG_node_wasi_ns, PROG_native_ns (cc -O2, for scale; null without
 * cc) and PROG_ratio = popcorn / node:wasi (targets ≤ 1.5). Best of --runs (default 5), the
 * three runtimes interleaved. /dev is preopened as /dev in both runtimes. Knobs: --runs=N,
 * --calls=N (calls per run for clock and write; open does a tenth of it).
 */

import type { BenchOptions, BenchResult, BenchValue } from './main.js';
import { NativeBuilds, PopcornRunner, example, intArg, round3, runNodeWasi, type Preopen, type RunOutput } from './runners.js';

const MODES = [
  { mode: 'clock', key: 'clock' },
  { mode: 'write', key: 'write' },
  { mode: 'open', key: 'open' },
] as const;

const TARGET_RATIO = 1.5;

function nsPerCall(output: RunOutput, who: string, mode: string): number {
  const m = /syscall (\w+): (\d+) calls, ([\d.]+) ns\/call/.exec(output.stdout);
  if (m === null || m[1] !== mode) throw new Error(`syscall ${mode} under ${who}: unexpected output:\n${output.stdout}`);
  return Number(m[3]);
}

export async function run({ args, log }: BenchOptions): Promise<BenchResult> {
  const runs = intArg(args, 'runs', 5);
  const calls = intArg(args, 'calls', 1_000_000);
  const wasm = example('bench/syscall.wasm');
  const dirs: Preopen[] = [{ host: '/dev', guest: '/dev' }];
  const native = new NativeBuilds(log);
  const bin = native.binary(example('bench/syscall.c'));
  const popcorn = await PopcornRunner.boot();
  const result: Record<string, BenchValue> = { runs, calls, stat: 'best' };
  const targets: Record<string, BenchValue> = {};
  try {
    const hash = await popcorn.prepare(wasm);
    for (const { mode, key } of MODES) {
      const n = String(mode === 'open' ? Math.max(1, Math.round(calls / 10)) : calls);
      // Warm-up: compile, tier up, and check that both runtimes can run it.
      nsPerCall(await popcorn.run(hash, wasm, [mode, '10000'], dirs), 'popcorn', mode);
      nsPerCall(runNodeWasi(wasm, [mode, '10000'], dirs), 'node:wasi', mode);
      const p: number[] = [];
      const w: number[] = [];
      const c: number[] = [];
      for (let r = 0; r < runs; r++) {
        p.push(nsPerCall(await popcorn.run(hash, wasm, [mode, n], dirs), 'popcorn', mode));
        w.push(nsPerCall(runNodeWasi(wasm, [mode, n], dirs), 'node:wasi', mode));
        if (bin !== null) c.push(nsPerCall(native.run(bin, [mode, n]), 'native', mode));
      }
      const pNs = Math.min(...p);
      const wNs = Math.min(...w);
      result[`${key}_popcorn_ns`] = round3(pNs);
      result[`${key}_node_wasi_ns`] = round3(wNs);
      result[`${key}_native_ns`] = bin === null ? null : round3(Math.min(...c));
      result[`${key}_ratio`] = round3(pNs / wNs);
      targets[`${key}_ratio`] = pNs / wNs <= TARGET_RATIO;
      log(`${mode}: popcorn ${pNs.toFixed(1)} ns, node:wasi ${wNs.toFixed(1)} ns, ratio ${(pNs / wNs).toFixed(2)}`);
    }
  } finally {
    await popcorn.shutdown();
    native.remove();
  }
  return { ...result, targets_met: targets };
}
