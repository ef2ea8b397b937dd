/**
 * The spawn benchmark: what creating a process and moving bytes between processes cost, from
 * inside popcorn, with node:wasi's cost of running the same trivial program for scale.
 *
 *   spawn_local_us    mean µs of one popcorn_spawn + run + exit + popcorn_wait of
 *                     examples/bench/true.wasm on the spawner's own kernel (kernel 0), timed inside
 *                     examples/bench/spawn.wasm (`spawn N -1 /bin/true.wasm`)
 *   spawn_remote_us   the same with the child on kernel 1 (`spawn N 1 /bin/true.wasm`)
 *   node_wasi_us      mean µs to run true.wasm under node:wasi in this process: new WASI, a new
 *                     instance of the already compiled module, wasi.start
 *   spawn_local_vs_node_wasi = spawn_local_us / node_wasi_us
 *   pipe_gbytes_per_s bytes / s through a popcorn pipe, writer on kernel 0, reader on kernel 1
 *                     (examples/bench/pipe.wasm: 64 KiB writes and reads, timed inside from the
 *                     first write to the reader's exit)
 *   targets_met       spawn_local_us ≤ 1000, spawn_remote_us ≤ 1500
 *
 * All best of --reps (default 3). The popcorn node has 2 kernels whatever the machine (remote
 * needs a second one; more would only add idle threads). examples/bench is preopened as /bin, so
 * the guest paths are /bin/true.wasm and /bin/pipe.wasm. The three programs are prepared
 * (instrumented into the cache) before anything runs, and spawn.wasm spawns once untimed, so no
 * compilation is timed. A program that fails, prints no result line or runs past --timeout-s
 * (default 120) fails the benchmark, with its output in the error.
 *
 * --trace: also time spawn with `popcorn trace` recording on every kernel (src/kernel/trace.ts),
 * each traced run right after its untraced twin on the same node: spawn_local_traced_us,
 * spawn_remote_traced_us and the ratios traced / untraced (trace_local_ratio, trace_remote_ratio).
 *
 * Knobs: --reps=N, --spawns=N (per run, default 300), --pipe-mib=N (default 256), --wasi-runs=N
 * (default 1000), --timeout-s=N, --only=node_wasi,spawn,pipe (a subset; the rest report null).
 */

import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { WASI } from 'node:wasi';
import { PopcornNode } from '../src/node/node.js';
import { prepareProgram } from '../src/wasm/loader.js';
import type { BenchOptions, BenchResult, BenchValue } from './main.js';
import { Capture, example, intArg, preparing, round3 } from './runners.js';

const PARTS = ['node_wasi', 'spawn', 'pipe'] as const;
type Part = (typeof PARTS)[number];

const TARGET_LOCAL_US = 1000;
const TARGET_REMOTE_US = 1500;

/** Mean µs of new WASI + instantiate + start of `module`, over `runs` runs (after a warm-up). */
function nodeWasiUs(module: WebAssembly.Module, runs: number): number {
  const once = (): void => {
    const wasi = new WASI({ version: 'preview1', args: ['true.wasm'], env: {}, returnOnExit: true });
    const instance = new WebAssembly.Instance(module, wasi.getImportObject() as WebAssembly.Imports);
    const status = wasi.start(instance);
    if (status !== 0) throw new Error(`node:wasi true.wasm: exit ${status}`);
  };
  for (let i = 0; i < Math.min(runs, 100); i++) once();
  const started = performance.now();
  for (let i = 0; i < runs; i++) once();
  return ((performance.now() - started) * 1000) / runs;
}

/** A 2-kernel popcorn node whose processes' stdio is captured, running programs from /bin. */
class Guest {
  private constructor(
    private readonly node: PopcornNode,
    private readonly set: number,
    private readonly stdout: Capture,
    private readonly stderr: Capture,
    private readonly timeoutMs: number,
  ) {}

  static async boot(timeoutMs: number): Promise<Guest> {
    const node = await PopcornNode.boot({ kernels: 2, log: (text) => process.stderr.write(`popcorn: ${text}\n`) });
    const stdout = new Capture();
    const stderr = new Capture();
    const set = node.attachStreams({ stdin: Readable.from([]), stdout, stderr });
    return new Guest(node, set, stdout, stderr, timeoutMs);
  }

  /** Run /bin/NAME.wasm with `args` on kernel 0; its stdout, or an error saying what happened. */
  async run(hash: string, name: string, args: string[]): Promise<string> {
    const path = `/bin/${name}.wasm`;
    const what = `${path} ${args.join(' ')}`;
    let pid: number;
    try {
      pid = await this.node.start({
        hash, name: `${name}.wasm`, args: [path, ...args], env: [], dirs: [{ host: example('bench'), guest: '/bin' }], kernel: 0, streams: this.set,
      });
    } catch (error) {
      throw new Error(`spawn bench: starting ${what} failed: ${(error as Error).message}`, { cause: error });
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.timeoutMs);
    });
    const exit = await Promise.race([this.node.waitExit(pid), timedOut]);
    clearTimeout(timer);
    if (exit === 'timeout') this.node.kill(pid, 9);
    await this.node.flushed(this.set);
    const out = this.stdout.take();
    const err = this.stderr.take();
    const output = `--- stdout:\n${out}--- stderr:\n${err}`;
    if (exit === 'timeout') throw new Error(`spawn bench: ${what} ran past ${this.timeoutMs / 1000} s (killed)\n${output}`);
    if (exit.status !== 0) throw new Error(`spawn bench: ${what} exited ${exit.status}\n${exit.trap}${output}`);
    return out;
  }

  /** Turn `popcorn trace` recording on or off on every kernel (what was recorded is thrown away). */
  async trace(on: boolean): Promise<void> {
    await this.node.trace(on, 0);
  }

  shutdown(): Promise<void> {
    return this.node.shutdown();
  }
}

/** The number after `key=` in a program's output, or an error with the output. */
function field(output: string, key: string, what: string): number {
  const m = new RegExp(`(?:^|\\s)${key}=([\\d.]+)`).exec(output);
  if (m === null) throw new Error(`spawn bench: ${what} printed no ${key}= value:\n${output}`);
  return Number(m[1]);
}

export async function run({ args, log }: BenchOptions): Promise<BenchResult> {
  const reps = intArg(args, 'reps', 3);
  const spawns = intArg(args, 'spawns', 300);
  const pipeBytes = intArg(args, 'pipe-mib', 256) * 1024 * 1024;
  const wasiRuns = intArg(args, 'wasi-runs', 1000);
  const timeoutMs = intArg(args, 'timeout-s', 120) * 1000;
  const only = typeof args['only'] === 'string' ? args['only'].split(',') : [...PARTS];
  const unknown = only.filter((p) => !(PARTS as readonly string[]).includes(p));
  if (unknown.length > 0 || only.length === 0) throw new Error(`--only: parts are ${PARTS.join(', ')}; got ${String(args['only'])}`);
  const doing = (part: Part): boolean => only.includes(part);

  let wasiUs: number | null = null;
  let localUs: number | null = null;
  let remoteUs: number | null = null;
  let pipeGBps: number | null = null;
  const withTrace = args['trace'] === true;
  let tracedLocalUs: number | null = null;
  let tracedRemoteUs: number | null = null;

  if (doing('node_wasi')) {
    const module = new WebAssembly.Module(readFileSync(example('bench/true.wasm')));
    const us: number[] = [];
    for (let r = 0; r < reps; r++) us.push(nodeWasiUs(module, wasiRuns));
    wasiUs = Math.min(...us);
    log(`node:wasi true.wasm: ${wasiUs.toFixed(1)} µs per run (best of ${reps} × ${wasiRuns})`);
  }

  if (doing('spawn') || doing('pipe')) {
    const prepare = async (name: string): Promise<string> =>
      (await prepareProgram(example(`bench/${name}.wasm`), preparing(log))).hash;
    const spawnHash = await prepare('spawn');
    const pipeHash = await prepare('pipe');
    await prepare('true'); // the kernel finds it by path when spawn.wasm spawns it
    const guest = await Guest.boot(timeoutMs);
    try {
      if (doing('spawn')) {
        const local: number[] = [];
        const remote: number[] = [];
        const tracedLocal: number[] = [];
        const tracedRemote: number[] = [];
        const once = async (on: number, what: string): Promise<number> =>
          field(await guest.run(spawnHash, 'spawn', [String(spawns), String(on), '/bin/true.wasm']), 'spawn_us', what);
        const traced = async (on: number, what: string): Promise<number> => {
          await guest.trace(true);
          try {
            return await once(on, `${what}, traced`);
          } finally {
            await guest.trace(false);
          }
        };
        for (let r = 0; r < reps; r++) {
          local.push(await once(-1, 'spawn (local)'));
          if (withTrace) tracedLocal.push(await traced(-1, 'spawn (local)'));
          remote.push(await once(1, 'spawn (remote)'));
          if (withTrace) tracedRemote.push(await traced(1, 'spawn (remote)'));
        }
        localUs = Math.min(...local);
        remoteUs = Math.min(...remote);
        log(`spawn+wait of true.wasm: local ${localUs.toFixed(1)} µs, remote ${remoteUs.toFixed(1)} µs (best of ${reps} × ${spawns})`);
        if (withTrace) {
          tracedLocalUs = Math.min(...tracedLocal);
          tracedRemoteUs = Math.min(...tracedRemote);
          log(`traced: local ${tracedLocalUs.toFixed(1)} µs (× ${(tracedLocalUs / localUs).toFixed(3)}), remote ${tracedRemoteUs.toFixed(1)} µs (× ${(tracedRemoteUs / remoteUs).toFixed(3)})`);
        }
      }
      if (doing('pipe')) {
        const rates: number[] = [];
        for (let r = 0; r < reps; r++) {
          const out = await guest.run(pipeHash, 'pipe', [String(pipeBytes), '1']);
          const bytes = field(out, 'bytes', 'pipe');
          const seconds = field(out, 'seconds', 'pipe');
          if (bytes !== pipeBytes || !(seconds > 0)) throw new Error(`spawn bench: pipe printed an unexpected result:\n${out}`);
          rates.push(bytes / seconds / 1e9);
        }
        pipeGBps = Math.max(...rates);
        log(`pipe kernel 0 → kernel 1: ${pipeGBps.toFixed(3)} GB/s (best of ${reps} × ${pipeBytes / 1024 / 1024} MiB)`);
      }
    } finally {
      await guest.shutdown();
    }
  }

  const maybe = (x: number | null): number | null => (x === null ? null : round3(x));
  const targets: Record<string, BenchValue> = {
    spawn_local_us: localUs === null ? null : localUs <= TARGET_LOCAL_US,
    spawn_remote_us: remoteUs === null ? null : remoteUs <= TARGET_REMOTE_US,
  };
  return {
    reps,
    stat: 'best',
    spawns,
    pipe_bytes: pipeBytes,
    spawn_local_us: maybe(localUs),
    spawn_remote_us: maybe(remoteUs),
    node_wasi_us: maybe(wasiUs),
    spawn_local_vs_node_wasi: localUs === null || wasiUs === null ? null : round3(localUs / wasiUs),
    pipe_gbytes_per_s: maybe(pipeGBps),
    ...(withTrace ? {
      spawn_local_traced_us: maybe(tracedLocalUs),
      spawn_remote_traced_us: maybe(tracedRemoteUs),
      trace_local_ratio: tracedLocalUs === null || localUs === null ? null : round3(tracedLocalUs / localUs),
      trace_remote_ratio: tracedRemoteUs === null || remoteUs === null ? null : round3(tracedRemoteUs / remoteUs),
    } : {}),
    targets_met: targets,
  };
}
