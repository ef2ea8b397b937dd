/**
 * The three ways the compute and syscall benchmarks run a WASI program, so their numbers are
 * comparable:
 *
 *   PopcornRunner  a one-kernel popcorn node booted once, stdio captured in memory; the program is
 *                  prepared into the instrumented-module cache before anything is timed, and the
 *                  time is from start() to waitExit() (the kernel keeps compiled modules, so after
 *                  the first run that is instantiation + execution + exit notice).
 *   runNodeWasi    node:wasi in this process on the uninstrumented module (compiled once, a fresh
 *                  instance per run), stdout to a temp file so the output can be checked; timed
 *                  from instantiation to the end of _start.
 *   runNative      the C source built with `cc -O2 -lm` into a temp dir; timed around spawnSync
 *                  (so it includes fork/exec, ~1 ms).
 */

import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WASI, type WASIOptions } from 'node:wasi';
import { PopcornNode, type KernelInfo } from '../src/node/node.js';
import { describePrepareEvent, prepareProgram, type PrepareOptions } from '../src/wasm/loader.js';

/** Options for prepareProgram that log the start and end of a slow instrumentation. */
export function preparing(log: (line: string) => void): PrepareOptions {
  return {
    onProgress: (event) => {
      const line = describePrepareEvent(event);
      if (line !== undefined) log(`popcorn: ${line}`);
    },
  };
}

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const example = (path: string): string => join(ROOT, 'examples', path);

export interface RunOutput {
  ms: number;
  stdout: string;
}

export interface Preopen {
  host: string;
  guest: string;
}

/** A stdout/stderr for a popcorn node that keeps what it is given. */
export class Capture extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (error?: Error | null) => void): void {
    this.chunks.push(chunk);
    done();
  }
  take(): string {
    const text = Buffer.concat(this.chunks).toString('utf8');
    this.chunks = [];
    return text;
  }
}

export class PopcornRunner {
  private constructor(
    private readonly node: PopcornNode,
    private readonly stdout: Capture,
    private readonly stderr: Capture,
  ) {}

  static async boot(): Promise<PopcornRunner> {
    const stdout = new Capture();
    const stderr = new Capture();
    const node = await PopcornNode.boot({
      kernels: 1,
      io: { stdin: Readable.from([]), stdout, stderr },
      log: (text) => process.stderr.write(`popcorn: ${text}\n`),
    });
    return new PopcornRunner(node, stdout, stderr);
  }

  /** Instrument (or find in the cache) before timing anything; returns the hash. */
  async prepare(path: string): Promise<string> {
    return (await prepareProgram(path, preparing((line) => process.stderr.write(`${line}\n`)))).hash;
  }

  async run(hash: string, path: string, args: string[], dirs: Preopen[] = []): Promise<RunOutput> {
    const name = basename(path);
    const started = performance.now();
    const pid = await this.node.start({ hash, name, args: [name, ...args], env: [], dirs });
    const exit = await this.node.waitExit(pid);
    const ms = performance.now() - started;
    await this.node.flushed();
    const stdout = this.stdout.take();
    const stderr = this.stderr.take();
    if (exit.status !== 0) throw new Error(`popcorn ${name} ${args.join(' ')}: exit ${exit.status}\n${exit.trap}${stderr}`);
    return { ms, stdout };
  }

  shutdown(): Promise<void> {
    return this.node.shutdown();
  }
}

const modules = new Map<string, WebAssembly.Module>();

setFlagsFromString('--expose-gc');
/** A full GC on demand (the flag above makes `gc` exist in contexts created after it). */
export const collectGarbage = runInNewContext('gc') as () => void;

/**
 * Runs `path` under node:wasi. Node 20's node:wasi aborts the whole process (SIGABRT, no
 * message) after a large memory.grow (≥ 32 MiB at once), so the bench sizes stay below that;
 * and it aborts intermittently when an earlier instance whose memory grew by tens of MiB (sort
 * at its default size) is garbage-collected while a new one runs. So each run starts with a full
 * GC, which also keeps the last run's garbage out of this run's time.
 */
export function runNodeWasi(path: string, args: string[], preopens: Preopen[] = []): RunOutput {
  let module = modules.get(path);
  if (module === undefined) {
    module = new WebAssembly.Module(readFileSync(path));
    modules.set(path, module);
  }
  collectGarbage();
  const dir = mkdtempSync(join(tmpdir(), 'popcorn-bench-'));
  const outPath = join(dir, 'stdout');
  try {
    const { status, ms } = runWithStdout(module, outPath, {
      version: 'preview1',
      args: [basename(path), ...args],
      env: {},
      preopens: Object.fromEntries(preopens.map((p) => [p.guest, p.host])),
      returnOnExit: true,
    });
    if (status !== 0) throw new Error(`node:wasi ${basename(path)} ${args.join(' ')}: exit ${status}`);
    return { ms, stdout: readFileSync(outPath, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * One timed node:wasi run with stdout on a new file at `outPath`. The fd is closed exactly once:
 * the fd table is the process's, so by a second close its number may already be another
 * thread's file (the scale benchmark runs this in several workers at once).
 */
function runWithStdout(module: WebAssembly.Module, outPath: string, options: WASIOptions): { status: number; ms: number } {
  const out = openSync(outPath, 'w');
  try {
    const wasi = new WASI({ ...options, stdout: out });
    const started = performance.now();
    const instance = new WebAssembly.Instance(module, wasi.getImportObject() as WebAssembly.Imports);
    const status = wasi.start(instance);
    return { status, ms: performance.now() - started };
  } finally {
    closeSync(out);
  }
}

/** Native builds of the example C programs, in one temp dir per benchmark run. */
export class NativeBuilds {
  private readonly dir = mkdtempSync(join(tmpdir(), 'popcorn-native-'));
  private readonly built = new Map<string, string | null>();
  readonly cc: string | null;

  constructor(private readonly log: (line: string) => void) {
    const probe = spawnSync('cc', ['--version'], { encoding: 'utf8' });
    this.cc = probe.status === 0 ? 'cc' : null;
    if (this.cc === null) log('no cc: native times are null');
  }

  /** The native binary for `source` (a .c path), or null when there is no compiler. */
  binary(source: string): string | null {
    if (this.cc === null) return null;
    let bin = this.built.get(source);
    if (bin === undefined) {
      bin = join(this.dir, basename(source, '.c'));
      const r = spawnSync(this.cc, ['-O2', source, '-o', bin, '-lm'], { encoding: 'utf8' });
      if (r.status !== 0) {
        this.log(`cc ${source} failed: ${r.stderr}`);
        bin = null;
      }
      this.built.set(source, bin);
    }
    return bin;
  }

  run(bin: string, args: string[]): RunOutput {
    const started = performance.now();
    const r = spawnSync(bin, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    const ms = performance.now() - started;
    if (r.status !== 0) throw new Error(`native ${basename(bin)} ${args.join(' ')}: exit ${r.status ?? r.signal}\n${r.stderr}`);
    return { ms, stdout: r.stdout };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const geomean = (xs: number[]): number => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);

/** Round to 3 significant digits for JSON readability. */
export const round3 = (x: number): number => Number(x.toPrecision(3));

/** A positive integer knob. */
export function intArg(args: Record<string, string | true>, name: string, fallback: number): number {
  const v = args[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v === true || !Number.isInteger(n) || n < 1) throw new Error(`--${name} needs a positive integer, got ${String(v)}`);
  return n;
}

/** A list of positive integers knob (`--sizes=1,64,256`). */
export function intListArg(args: Record<string, string | true>, name: string, fallback: number[]): number[] {
  const v = args[name];
  if (v === undefined) return fallback;
  const list = typeof v === 'string' ? v.split(',').map(Number) : [];
  if (list.length === 0 || !list.every((n) => Number.isInteger(n) && n >= 1)) throw new Error(`--${name} needs positive integers separated by commas, got ${String(v)}`);
  return list;
}

/** `--only=a,b`: the parts of a benchmark to run (all of `parts` by default); a test for one. */
export function onlyParts<P extends string>(args: Record<string, string | true>, parts: readonly P[]): (part: P) => boolean {
  const only = typeof args['only'] === 'string' ? args['only'].split(',') : [...parts];
  const unknown = only.filter((p) => !(parts as readonly string[]).includes(p));
  if (unknown.length > 0 || only.length === 0) throw new Error(`--only: parts are ${parts.join(', ')}; got ${String(args['only'])}`);
  return (part) => only.includes(part);
}

/** Resolves once `capture` has received `text`; rejects if `ended` settles first or after `timeoutMs`. */
export function waitForOutput(capture: Capture, text: string, ended: Promise<unknown>, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (error?: Error): void => {
      if (done) return;
      done = true;
      clearInterval(poll);
      clearTimeout(timer);
      if (error === undefined) resolve();
      else reject(error);
    };
    const seen = (): boolean => Buffer.concat(capture.chunks).toString('utf8').includes(text);
    const poll = setInterval(() => {
      if (seen()) finish();
    }, 2);
    const timer = setTimeout(() => finish(new Error(`${what}: no "${text.trim()}" within ${timeoutMs / 1000} s`)), timeoutMs);
    ended.then(
      (exit) => {
        if (!seen()) finish(new Error(`${what}: ended before printing "${text.trim()}": ${JSON.stringify(exit)}`));
      },
      () => undefined,
    );
  });
}

/**
 * After moving `pid` to kernel index `to`: the destination counted exactly one more arrival and
 * lists the process, and no other kernel does. Returns the destination's entry and the process's.
 */
export function checkMoved(before: KernelInfo[], after: KernelInfo[], pid: number, to: number, what: string): { dest: KernelInfo; proc: KernelInfo['processes'][number] } {
  const dest = after[to]!;
  const arrivals = dest.migrations.in - before[to]!.migrations.in;
  if (arrivals !== 1) throw new Error(`${what}: kernel ${to} counted ${arrivals} arrivals during the move, expected 1`);
  const proc = dest.processes.find((p) => p.pid === pid);
  if (proc === undefined) throw new Error(`${what}: kernel ${to} does not list pid ${pid} after the move`);
  for (const k of after) {
    if (k.index !== to && k.processes.some((p) => p.pid === pid)) throw new Error(`${what}: pid ${pid} still listed on kernel ${k.index} after the move`);
  }
  return { dest, proc };
}

/** A process of examples/bench/hold.wasm: its PID and its end. */
export interface Hold {
  pid: number;
  ended: ReturnType<PopcornNode['waitExit']>;
}

/**
 * examples/bench/hold.wasm processes on `node` (the migrate and cluster benchmarks): started with
 * `MIB sleep` and waited for until "ready", killed with SIGKILL and checked, and any left
 * killed at the end (close()).
 */
export class Holds {
  private readonly stdout = new Capture();
  private readonly stderr = new Capture();
  private readonly set: number;
  private readonly live = new Set<number>();

  private constructor(private readonly node: PopcornNode, private readonly hash: string, private readonly timeoutMs: number, private readonly log: (line: string) => void) {
    this.set = node.attachStreams({ stdin: Readable.from([]), stdout: this.stdout, stderr: this.stderr });
  }

  static async on(node: PopcornNode, timeoutMs: number, log: (line: string) => void): Promise<Holds> {
    const { hash } = await prepareProgram(example('bench/hold.wasm'), preparing(log));
    return new Holds(node, hash, timeoutMs, log);
  }

  /** Start `hold MIB sleep` on kernel index `kernel` and wait for its "ready". */
  async start(mib: number, kernel: number): Promise<Hold> {
    const started = performance.now();
    const pid = await this.node.start({ hash: this.hash, name: 'hold.wasm', args: ['hold.wasm', String(mib), 'sleep'], env: [], dirs: [], kernel, streams: this.set });
    this.live.add(pid);
    const ended = this.node.waitExit(pid);
    try {
      await waitForOutput(this.stdout, 'ready\n', ended, this.timeoutMs, `hold ${mib} (pid ${pid})`);
    } catch (error) {
      await this.node.flushed(this.set);
      throw new Error(`${(error as Error).message}\n--- stdout:\n${this.stdout.take()}--- stderr:\n${this.stderr.take()}`, { cause: error });
    }
    this.stdout.take();
    this.log(`hold ${mib} MiB: pid ${pid} ready after ${(performance.now() - started).toFixed(0)} ms`);
    return { pid, ended };
  }

  /** Kill a hold and check it ended by SIGKILL. */
  async end({ pid, ended }: Hold): Promise<void> {
    if (!(await this.node.kill(pid, 9))) throw new Error(`hold pid ${pid}: kill found no such process`);
    const exit = await ended;
    this.live.delete(pid);
    if (exit.signal !== 9) throw new Error(`hold pid ${pid}: killed with 9, ended with ${JSON.stringify(exit)}`);
  }

  /** Kill what is left and let go of the streams. */
  async close(): Promise<void> {
    for (const pid of this.live) await this.node.kill(pid, 9).catch(() => false);
    this.node.detachStreams(this.set);
  }
}
