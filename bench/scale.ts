/**
 * The scale benchmark: does throughput grow with the number of kernels? 2×K copies of
 * examples/bench/burn.wasm (pure integer work, no system calls until its one printf) run at
 * once, first all on one kernel, then spread round-robin over K kernels; each phase is timed
 * from the first start() to the last waitExit().
 *
 *   kernels, processes (= 2×K), iters (per process)
 *   one_kernel_ms, k_kernels_ms   best of --reps
 *   speedup = one_kernel_ms / k_kernels_ms, efficiency = speedup / K
 *   targets_met.speedup: speedup ≥ 0.9×K
 *
 * Fairness: both phases run on the SAME K-kernel node, so boot cost, the number of kernel
 * threads (the idle ones sleep on their doorbells) and the host endpoint are identical; the only
 * difference is placement (kernel 0 for all vs i mod K). A separate 1-kernel node would differ in
 * more than placement. Before timing, one short burn runs on every kernel so each has compiled
 * the module (the kernel keeps compiled modules), so neither phase pays compilation. The phases
 * alternate within each repetition so drift (thermal, other load) hits both alike. With 2×K
 * processes each kernel has two to time-slice in the spread phase too, so both phases exercise
 * the scheduler. The load balancer is off (balance: false), or the one-kernel phase would not stay
 * on one kernel; the bench checks where each process runs right after start.
 *
 * The machine's own ceiling is measured in the same run: burn under node:wasi in one worker
 * thread, then in K at once (bench/burn-worker.ts), two runs each, as the spread phase has.
 * hardware_efficiency = one worker's time / K workers' time; efficiency_vs_hardware =
 * efficiency / hardware_efficiency says how much of what the machine allows popcorn reaches.
 *
 * Every process must exit 0 and print the same checksum line. Knobs: --kernels=N (default: one
 * per CPU), --reps=N (default 3), --iters=N (burn iterations per process; see DEFAULT_ITERS).
 */

import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Readable } from 'node:stream';
import { PopcornNode } from '../src/node/node.js';
import { prepareProgram } from '../src/wasm/loader.js';
import type { BenchOptions, BenchResult } from './main.js';
import { Capture, example, intArg, preparing, round3 } from './runners.js';

/**
 * burn iterations per process: about 0.55 s under popcorn on the 2-core dev machine (as under
 * node:wasi), so the spread phase (two processes per kernel) takes about 1.1 s whatever K is, and
 * the one-kernel phase about 1.1×K s (2 s here, ~18 s with 16 kernels).
 */
const DEFAULT_ITERS = 300_000_000;
const WARMUP_ITERS = 1_000_000;
const TARGET_EFFICIENCY = 0.9;

export async function run({ args, log }: BenchOptions): Promise<BenchResult> {
  const kernels = intArg(args, 'kernels', cpus().length);
  const reps = intArg(args, 'reps', 3);
  const iters = intArg(args, 'iters', DEFAULT_ITERS);
  const processes = 2 * kernels;
  const wasm = example('bench/burn.wasm');
  if (kernels === 1) log('scale: with --kernels=1 both phases are the same placement; speedup is ~1 by construction');

  const { hash } = await prepareProgram(wasm, preparing(log));
  // The balancer off: the one-kernel phase must stay on one kernel.
  const node = await PopcornNode.boot({ kernels, balance: false, log: (text) => process.stderr.write(`popcorn: ${text}\n`) });
  // One stream set per process slot: with one shared stdout, lines of different processes were
  // seen interleaved mid-line (a printf can reach the host as two writes: text, then newline).
  const slots = Array.from({ length: processes }, () => {
    const stdout = new Capture();
    const stderr = new Capture();
    return { stdout, stderr, set: node.attachStreams({ stdin: Readable.from([]), stdout, stderr }) };
  });

  /** Run one burn per entry of `placement` (a kernel index) at once; ms from first start to last exit. */
  const phase = async (placement: number[], n: number): Promise<number> => {
    const started = performance.now();
    const pids = await Promise.all(
      placement.map((kernel, i) =>
        node.start({ hash, name: 'burn.wasm', args: ['burn.wasm', String(n)], env: [], dirs: [], kernel, streams: slots[i]!.set }),
      ),
    );
    // Where each process runs, checked right after start (a process that already ended is skipped).
    pids.forEach((pid, i) => {
      const at = node.kernelOf(pid);
      if (at !== undefined && at !== placement[i]) throw new Error(`scale: process ${pid} runs on kernel ${at}, expected ${placement[i]}`);
    });
    const exits = await Promise.all(pids.map((pid) => node.waitExit(pid)));
    const ms = performance.now() - started;
    const expected = `burn checksum: ${n} iterations -> `;
    let first: string | undefined;
    for (let i = 0; i < placement.length; i++) {
      const slot = slots[i]!;
      await node.flushed(slot.set);
      const out = slot.stdout.take();
      const err = slot.stderr.take();
      const exit = exits[i]!;
      if (exit.status !== 0) throw new Error(`scale: burn ${n} (pid ${exit.pid}) exited ${exit.status}\n${exit.trap}${err}`);
      first ??= out;
      if (!out.startsWith(expected) || out !== first) throw new Error(`scale: burn ${n} (pid ${exit.pid}) printed\n${out}${err}\nexpected '${expected}…', the same for all`);
    }
    return ms;
  };

  const all = Array.from({ length: processes }, (_, i) => i);
  const onOne = all.map(() => 0);
  const spread = all.map((i) => i % kernels);
  const oneMs: number[] = [];
  const kMs: number[] = [];
  try {
    // Warm-up: every kernel compiles (and tiers up) the module before anything is timed.
    await phase(
      Array.from({ length: kernels }, (_, k) => k),
      WARMUP_ITERS,
    );
    for (let r = 0; r < reps; r++) {
      oneMs.push(await phase(onOne, iters));
      kMs.push(await phase(spread, iters));
      log(`scale rep ${r + 1}/${reps}: ${processes} × burn ${iters}: one kernel ${oneMs[r]!.toFixed(0)} ms, ${kernels} kernels ${kMs[r]!.toFixed(0)} ms`);
    }
  } finally {
    await node.shutdown();
  }
  const one = Math.min(...oneMs);
  const k = Math.min(...kMs);
  const speedup = one / k;
  const hardware = await hardwareEfficiency(wasm, kernels, iters, reps);
  log(`scale: node:wasi burns in ${kernels} workers at once run at ${(hardware * 100).toFixed(0)}% of one worker's speed`);
  return {
    kernels,
    processes,
    iters,
    reps,
    stat: 'best',
    one_kernel_ms: round3(one),
    k_kernels_ms: round3(k),
    speedup: round3(speedup),
    efficiency: round3(speedup / kernels),
    hardware_efficiency: round3(hardware),
    efficiency_vs_hardware: round3(speedup / kernels / hardware),
    targets_met: { speedup: speedup >= TARGET_EFFICIENCY * kernels },
  };
}

/** Best-of-`reps` time of one burn worker over that of `kernels` workers at once (two runs each). */
async function hardwareEfficiency(wasm: string, kernels: number, iters: number, reps: number): Promise<number> {
  const workers = (count: number): Promise<number> =>
    Promise.all(
      Array.from({ length: count }, () =>
        new Promise<number>((resolve, reject) => {
          const w = new Worker(new URL('./burn-worker.js', import.meta.url), { workerData: { wasm, iters, runs: 2 } });
          w.once('message', (ms: number) => resolve(ms));
          w.once('error', reject);
        }),
      ),
    ).then((times) => Math.max(...times));
  let alone = Infinity;
  let together = Infinity;
  for (let r = 0; r < reps; r++) {
    alone = Math.min(alone, await workers(1));
    together = Math.min(together, await workers(kernels));
  }
  return alone / together;
}
