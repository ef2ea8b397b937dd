/**
 * The migrate benchmark: what moving a live process between kernels costs, by memory size, and
 * whether moving processes pays (the load balancer).
 *
 * Part `migrate`: a 2-kernel node (balance off). For each size MIB of --sizes (default 1, 64,
 * 256) examples/bench/hold.wasm `MIB sleep` starts on kernel 0 (it fills MIB MiB with
 * incompressible data, prints "ready" and sleeps in nanosleep until killed); once it said ready it
 * is moved 1, 0, 1, … (node.move) --moves times (default 30). After each move, node.info() gives the destination's migrations.last_us — the kernels'
 * own time from "stopped on the source" to "runnable on the destination" (capture, fds, the
 * message with the image, instantiation and restore) — and the bench checks that the destination
 * counted exactly one more arrival and lists the process. Then the process is killed (SIGKILL)
 * and must end with signal 9.
 *
 *   migrate_MIBmib_us    median last_us of the moves of that size
 *   move_rtt_MIBmib_us   median host-observed node.move() round trip (the request to the origin
 *                        kernel, the move, the reply), for context
 *   memcpy_256mib_us     baseline: median time to copy 256 MiB with Uint8Array.set in this
 *                        thread, into an array already touched (pure copy)
 *   memcpy_256mib_fresh_us  the same into a newly allocated array (the copy plus first-touch page
 *                        faults, as a receiver that allocates a new memory pays)
 *
 * Before anything is timed, a 1 MiB hold makes 20 untimed round trips 0 → 1 → 0, so both kernels
 * have compiled hold.wasm and the JIT has optimized the migration code: what is timed is the
 * steady state of a node that has been moving processes (the balancer's case), not a first move.
 * Within a node the memory is handed over, not copied (src/wasm/shared-memory.ts), so a move
 * costs about the same at every size.
 *
 * Part `balance`: makespan of --jobs (default 8) examples/bench/burn.wasm runs (--iters, default
 * ~0.5 s each) all started on kernel 0 of a 2-kernel node with balance on, vs the same on a
 * node with balance off, each timed from the first start() to the last waitExit(). Both nodes
 * are booted once and kept; the phases alternate within each of --reps (default 3) repetitions
 * so drift hits both alike; each node first runs one short burn per kernel (compilation). Every
 * burn must exit 0 and print the same checksum line. With balance off the bench checks each
 * process is on kernel 0 right after start.
 *
 *   balance_on_ms, balance_off_ms   median of --reps
 *   balance_speedup = balance_off_ms / balance_on_ms
 *   balance_migrations              sum over kernels of migrations.in during the balance-on
 *                                   phases, all reps together (the off node must count 0)
 *
 * targets_met: migrate_1mib_us ≤ 500, migrate_256mib_us ≤ 10000, balance_speedup ≥ 1.8. A
 * target whose number was not measured (--sizes, --only) is null.
 *
 * A move that fails, a process that does not say ready within --timeout-s (default 120) or ends
 * early, fails the benchmark with what happened (size, move, direction, elapsed time).
 *
 * Knobs: --sizes=1,64,256, --moves=N (every size), --only=migrate,balance, --reps=N, --jobs=N,
 * --iters=N, --timeout-s=N.
 */

import { Readable } from 'node:stream';
import { PopcornNode } from '../src/node/node.js';
import { prepareProgram } from '../src/wasm/loader.js';
import type { BenchOptions, BenchResult, BenchValue } from './main.js';
import { Capture, checkMoved, example, Holds, intArg, intListArg, median, onlyParts, preparing, round3 } from './runners.js';

const PARTS = ['migrate', 'balance'] as const;

const DEFAULT_SIZES = [1, 64, 256];
const DEFAULT_MOVES = 30;
/** Untimed round trips before the first timed move: the migration code is compiled and optimized (JIT) by then. */
const WARMUP_ROUND_TRIPS = 20;
/** burn iterations per job: about 0.5 s under popcorn on the 2-core dev machine (bench/scale.ts: 300M ≈ 0.55 s). */
const DEFAULT_ITERS = 270_000_000;
const WARMUP_ITERS = 1_000_000;
const MEMCPY_REPS = 5;

const TARGET_1MIB_US = 500;
const TARGET_256MIB_US = 10_000;
const TARGET_SPEEDUP = 1.8;

const MIB = 1024 * 1024;
const MEMCPY_BYTES = 256 * MIB;
/** Where the kernels' own log lines go. */
const kernelLog = (text: string): void => {
  process.stderr.write(`popcorn: ${text}\n`);
};

/** Median µs of copying 256 MiB with Uint8Array.set: into a touched array, and into a fresh one. */
function memcpyUs(): { warm: number; fresh: number } {
  const src = new Uint8Array(MEMCPY_BYTES);
  const words = new Uint32Array(src.buffer);
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  const dst = new Uint8Array(MEMCPY_BYTES);
  dst.set(src); // touch every page of dst once
  const warm: number[] = [];
  const fresh: number[] = [];
  for (let r = 0; r < MEMCPY_REPS; r++) {
    let t = performance.now();
    dst.set(src);
    warm.push((performance.now() - t) * 1000);
    t = performance.now();
    const copy = new Uint8Array(MEMCPY_BYTES);
    copy.set(src);
    fresh.push((performance.now() - t) * 1000);
    if (copy[MEMCPY_BYTES - 1] !== src[MEMCPY_BYTES - 1]) throw new Error('memcpy: copy differs');
  }
  return { warm: median(warm), fresh: median(fresh) };
}

interface SizeResult {
  mib: number;
  lastUs: number[];
  rttUs: number[];
}

/** The migrate part: one hold per size on a 2-kernel node with balance off. */
async function migratePart(sizes: number[], movesArg: number | undefined, timeoutMs: number, log: (line: string) => void): Promise<SizeResult[]> {
  const node = await PopcornNode.boot({ kernels: 2, balance: false, log: kernelLog });
  const holds = await Holds.on(node, timeoutMs, log);

  /** Move pid to kernel `to`; the host round trip (µs) and the destination's last_us, checked. */
  const moveOnce = async (pid: number, to: number, what: string): Promise<{ rtt: number; lastUs: number; state: string; memory: number; fragments: number }> => {
    const before = await node.info();
    const t = performance.now();
    try {
      await node.move(pid, to);
    } catch (error) {
      throw new Error(`${what}: node.move(${pid}, ${to}) failed after ${(performance.now() - t).toFixed(1)} ms: ${(error as Error).message}`, { cause: error });
    }
    const rtt = (performance.now() - t) * 1000;
    const after = await node.info();
    const { dest, proc } = checkMoved(before, after, pid, to, what);
    const from = 1 - to;
    const fragments = after[from]!.messages.fragmentsSent - before[from]!.messages.fragmentsSent;
    return { rtt, lastUs: dest.migrations.last_us, state: proc.state, memory: proc.memory_bytes, fragments };
  };

  const results: SizeResult[] = [];
  try {
    // Warm-up, untimed: both kernels compile hold.wasm, and the migration code gets optimized.
    {
      const hold = await holds.start(1, 0);
      for (let i = 0; i < WARMUP_ROUND_TRIPS; i++) {
        await moveOnce(hold.pid, 1, 'warm-up');
        await moveOnce(hold.pid, 0, 'warm-up');
      }
      await holds.end(hold);
    }
    for (const mib of sizes) {
      const moves = movesArg ?? DEFAULT_MOVES;
      const hold = await holds.start(mib, 0);
      const pid = hold.pid;
      const lastUs: number[] = [];
      const rttUs: number[] = [];
      for (let i = 0; i < moves; i++) {
        const from = i % 2;
        const to = 1 - from;
        const r = await moveOnce(pid, to, `hold ${mib} MiB move ${i + 1}/${moves} (kernel ${from} → ${to})`);
        lastUs.push(r.lastUs);
        rttUs.push(r.rtt);
        log(`hold ${mib} MiB move ${i + 1}/${moves} ${from} → ${to}: last_us ${r.lastUs.toFixed(0)}, host round trip ${r.rtt.toFixed(0)} µs; `
          + `state there ${r.state}, memory ${(r.memory / MIB).toFixed(2)} MiB, ${r.fragments} fragments sent by kernel ${from}`);
      }
      await holds.end(hold);
      results.push({ mib, lastUs, rttUs });
      log(`hold ${mib} MiB: median last_us ${median(lastUs).toFixed(0)} (min ${Math.min(...lastUs).toFixed(0)}, max ${Math.max(...lastUs).toFixed(0)}), median round trip ${median(rttUs).toFixed(0)} µs`);
    }
  } finally {
    await holds.close();
    await node.shutdown();
  }
  return results;
}

/** The balance part: `jobs` burns all on kernel 0, balance on vs off; medians and the migrations counted. */
async function balancePart(jobs: number, iters: number, reps: number, log: (line: string) => void): Promise<{ on: number; off: number; migrations: number }> {
  const { hash } = await prepareProgram(example('bench/burn.wasm'), preparing(log));
  const nodes: PopcornNode[] = [];
  try {
    const boot = async (balance: boolean): Promise<PopcornNode> => {
      const node = await PopcornNode.boot({ kernels: 2, balance, log: kernelLog });
      nodes.push(node);
      return node;
    };
    const on = await boot(true);
    const off = await boot(false);
    const slotsOf = new Map(
      [on, off].map((node) => [
        node,
        Array.from({ length: jobs }, () => {
          const stdout = new Capture();
          const stderr = new Capture();
          return { stdout, stderr, set: node.attachStreams({ stdin: Readable.from([]), stdout, stderr }) };
        }),
      ]),
    );
    const arrivals = async (node: PopcornNode): Promise<number> => (await node.info()).reduce((sum, k) => sum + k.migrations.in, 0);

    /** Run one burn per entry of `placement` at once on `node`; ms from first start to last exit. */
    const phase = async (node: PopcornNode, placement: number[], n: number, checkPlacement: boolean): Promise<number> => {
      const slots = slotsOf.get(node)!;
      const started = performance.now();
      const pids = await Promise.all(
        placement.map((kernel, i) =>
          node.start({ hash, name: 'burn.wasm', args: ['burn.wasm', String(n)], env: [], dirs: [], kernel, streams: slots[i]!.set }),
        ),
      );
      if (checkPlacement) {
        pids.forEach((pid, i) => {
          const at = node.kernelOf(pid);
          if (at !== undefined && at !== placement[i]) throw new Error(`migrate bench: burn pid ${pid} runs on kernel ${at}, expected ${placement[i]}`);
        });
      }
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
        if (exit.status !== 0) throw new Error(`migrate bench: burn ${n} (pid ${exit.pid}) exited ${exit.status}\n${exit.trap}${err}`);
        first ??= out;
        if (!out.startsWith(expected) || out !== first) throw new Error(`migrate bench: burn ${n} (pid ${exit.pid}) printed\n${out}${err}\nexpected '${expected}…', the same for all`);
      }
      return ms;
    };

    for (const node of [on, off]) await phase(node, [0, 1], WARMUP_ITERS, false);
    const onMs: number[] = [];
    const offMs: number[] = [];
    let migrations = 0;
    const allOnZero = Array.from({ length: jobs }, () => 0);
    for (let r = 0; r < reps; r++) {
      const offBefore = await arrivals(off);
      offMs.push(await phase(off, allOnZero, iters, true));
      const offMoved = (await arrivals(off)) - offBefore;
      if (offMoved !== 0) throw new Error(`migrate bench: the node with balance off counted ${offMoved} migrations`);
      const onBefore = await arrivals(on);
      onMs.push(await phase(on, allOnZero, iters, false));
      const moved = (await arrivals(on)) - onBefore;
      migrations += moved;
      log(`balance rep ${r + 1}/${reps}: ${jobs} × burn ${iters} on kernel 0: balance off ${offMs[r]!.toFixed(0)} ms, on ${onMs[r]!.toFixed(0)} ms (${moved} migrations)`);
    }
    return { on: median(onMs), off: median(offMs), migrations };
  } finally {
    for (const node of nodes) await node.shutdown();
  }
}

export async function run({ args, log }: BenchOptions): Promise<BenchResult> {
  const sizes = intListArg(args, 'sizes', DEFAULT_SIZES);
  const movesArg = args['moves'] === undefined ? undefined : intArg(args, 'moves', 1);
  const reps = intArg(args, 'reps', 3);
  const jobs = intArg(args, 'jobs', 8);
  const iters = intArg(args, 'iters', DEFAULT_ITERS);
  const timeoutMs = intArg(args, 'timeout-s', 120) * 1000;
  const doing = onlyParts(args, PARTS);

  const result: BenchResult = { stat: 'median' };
  let us1: number | null = null;
  let us256: number | null = null;
  let speedup: number | null = null;

  if (doing('migrate')) {
    const copy = memcpyUs();
    log(`memcpy 256 MiB (Uint8Array.set): ${copy.warm.toFixed(0)} µs into a touched array, ${copy.fresh.toFixed(0)} µs into a fresh one`);
    const sizesResult = await migratePart(sizes, movesArg, timeoutMs, log);
    for (const { mib, lastUs, rttUs } of sizesResult) {
      result[`migrate_${mib}mib_us`] = round3(median(lastUs));
      result[`move_rtt_${mib}mib_us`] = round3(median(rttUs));
      result[`moves_${mib}mib`] = lastUs.length;
      if (mib === 1) us1 = median(lastUs);
      if (mib === 256) us256 = median(lastUs);
    }
    result['memcpy_256mib_us'] = round3(copy.warm);
    result['memcpy_256mib_fresh_us'] = round3(copy.fresh);
  }

  if (doing('balance')) {
    const b = await balancePart(jobs, iters, reps, log);
    speedup = b.off / b.on;
    Object.assign(result, {
      jobs,
      iters,
      reps,
      balance_on_ms: round3(b.on),
      balance_off_ms: round3(b.off),
      balance_speedup: round3(speedup),
      balance_migrations: b.migrations,
    });
  }

  const targets: Record<string, BenchValue> = {
    migrate_1mib_us: us1 === null ? null : us1 <= TARGET_1MIB_US,
    migrate_256mib_us: us256 === null ? null : us256 <= TARGET_256MIB_US,
    balance_speedup: speedup === null ? null : speedup >= TARGET_SPEEDUP,
  };
  result['targets_met'] = targets;
  return result;
}
