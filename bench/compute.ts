/**
 * The compute benchmark: the CPU benchmarks of examples/bench under popcorn (one kernel), under
 * node:wasi on the uninstrumented module, and natively (`cc -O2`), interleaved in one run so the
 * numbers are comparable. What popcorn adds on top of node:wasi is the instrumentation (fuel
 * checks, Asyncify) and the preemption checks the kernel answers; see bench/runners.ts for what
 * each time covers.
 *
 *   PROG_popcorn_ms, PROG_node_wasi_ms, PROG_native_ms   best of --runs (native null without cc)
 *   PROG_vs_node_wasi, PROG_vs_native                     popcorn / node:wasi, popcorn / native
 *   overhead_vs_node_wasi_geomean (target ≤ 1.15), overhead_vs_native_geomean, node_wasi_vs_native_geomean
 *
 * Every run's checksum line must be the same for the three; a mismatch fails the benchmark.
 * Before timing, each program runs once at the small size under popcorn and node:wasi, so both
 * have compiled (and tiered up) the module. Knobs: --runs=N (default 3), --size=small (about
 * 10–20× less work, for quick checks), --only=nbody,fib.
 */

import type { BenchOptions, BenchResult, BenchValue } from './main.js';
import { NativeBuilds, PopcornRunner, example, geomean, intArg, round3, runNodeWasi, type RunOutput } from './runners.js';

interface Program {
  name: string;
  /** Arguments for --size=small; the default size is the program's own default (no arguments). */
  small: string[];
}

const PROGRAMS: Program[] = [
  { name: 'nbody', small: ['300000'] },
  { name: 'fib', small: ['33'] },
  { name: 'sort', small: ['400000'] },
  { name: 'sha256', small: ['16'] },
  { name: 'matmul', small: ['400'] },
];

function checksum(output: RunOutput, who: string, prog: string): string {
  const line = output.stdout.split('\n').find((l) => l.includes('checksum:'));
  if (line === undefined) throw new Error(`${prog} under ${who} printed no checksum line:\n${output.stdout}`);
  return line;
}

export async function run({ args, log }: BenchOptions): Promise<BenchResult> {
  const runs = intArg(args, 'runs', 3);
  const small = args['size'] === 'small';
  if (args['size'] !== undefined && !small) throw new Error(`--size: only 'small' is known`);
  const only = typeof args['only'] === 'string' ? args['only'].split(',') : undefined;
  const programs = only ? PROGRAMS.filter((p) => only.includes(p.name)) : PROGRAMS;
  if (programs.length === 0) throw new Error(`--only=${String(args['only'])}: known programs are ${PROGRAMS.map((p) => p.name).join(', ')}`);

  const native = new NativeBuilds(log);
  const popcorn = await PopcornRunner.boot();
  const result: Record<string, BenchValue> = { runs, size: small ? 'small' : 'default', stat: 'best' };
  const vsWasi: number[] = [];
  const vsNative: number[] = [];
  const wasiVsNative: number[] = [];
  try {
    for (const prog of programs) {
      const wasm = example(`bench/${prog.name}.wasm`);
      const hash = await popcorn.prepare(wasm);
      const bin = native.binary(example(`bench/${prog.name}.c`));
      const progArgs = small ? prog.small : [];
      // Warm-up at the small size: compile and tier up, check outputs agree.
      await popcorn.run(hash, wasm, prog.small);
      runNodeWasi(wasm, prog.small);

      const times = { popcorn: [] as number[], wasi: [] as number[], native: [] as number[] };
      let expected: string | undefined;
      const check = (output: RunOutput, who: string): void => {
        const line = checksum(output, who, prog.name);
        expected ??= line;
        if (line !== expected) throw new Error(`${prog.name}: checksum differs under ${who}:\n  ${line}\nexpected\n  ${expected}`);
      };
      for (let r = 0; r < runs; r++) {
        const p = await popcorn.run(hash, wasm, progArgs);
        check(p, 'popcorn');
        times.popcorn.push(p.ms);
        const w = runNodeWasi(wasm, progArgs);
        check(w, 'node:wasi');
        times.wasi.push(w.ms);
        if (bin !== null) {
          const n = native.run(bin, progArgs);
          check(n, 'native');
          times.native.push(n.ms);
        }
      }
      const pMs = Math.min(...times.popcorn);
      const wMs = Math.min(...times.wasi);
      const nMs = bin === null ? null : Math.min(...times.native);
      result[`${prog.name}_popcorn_ms`] = round3(pMs);
      result[`${prog.name}_node_wasi_ms`] = round3(wMs);
      result[`${prog.name}_vs_node_wasi`] = round3(pMs / wMs);
      vsWasi.push(pMs / wMs);
      result[`${prog.name}_native_ms`] = nMs === null ? null : round3(nMs);
      result[`${prog.name}_vs_native`] = nMs === null ? null : round3(pMs / nMs);
      if (nMs !== null) {
        vsNative.push(pMs / nMs);
        wasiVsNative.push(wMs / nMs);
      }
      log(`${prog.name}: popcorn ${pMs.toFixed(0)} ms, node:wasi ${wMs.toFixed(0)} ms, native ${nMs === null ? '-' : nMs.toFixed(0)} ms  (${expected})`);
    }
  } finally {
    await popcorn.shutdown();
    native.remove();
  }
  const haveNative = vsNative.length === programs.length;
  return {
    ...result,
    overhead_vs_node_wasi_geomean: round3(geomean(vsWasi)),
    overhead_vs_native_geomean: haveNative ? round3(geomean(vsNative)) : null,
    node_wasi_vs_native_geomean: haveNative ? round3(geomean(wasiVsNative)) : null,
    targets_met: { overhead_vs_node_wasi_geomean: geomean(vsWasi) <= 1.15 },
  };
}
