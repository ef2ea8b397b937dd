/**
 * Running a WASI program without the kernel: a WasiContext on real clocks and randomness, and a
 * wrapper that turns BLOCKED into a synchronous sleep-and-retry. Used by tests, benchmarks and
 * simple tools. It is correct for the same reason the kernel's unwind/rewind is: a syscall that
 * returns BLOCKED has done nothing, so calling it again after the wait is the same call.
 * It blocks the calling thread, so it is no substitute for the kernel's scheduler.
 */
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import { BLOCKED, ProcessExit, type Blocked, type WaitSpec } from './blocking.js';
import { FdTable } from './fd-table.js';
import { HostDirectory, type FileDescription } from './file-description.js';
import { GuestMemory } from './memory.js';
import { createWasiImports, defaultRaise, type WasiContext, type WasiImports } from './wasi.js';

export interface StandaloneOptions {
  args?: string[];
  env?: Record<string, string> | string[];
  /** fd 0, 1, 2 (missing ones stay closed). */
  stdio?: [FileDescription?, FileDescription?, FileDescription?];
  /** guest path → host directory, added in order from fd 3. */
  preopens?: Record<string, string>;
  log?: (message: string, err: unknown) => void;
}

/** A context whose wait() is recorded for `syncImports` to perform. */
export interface StandaloneContext extends WasiContext {
  /** The memory the context uses; set before the first syscall (after instantiation). */
  setMemory(memory: WebAssembly.Memory): void;
  /** The wait requested by the last BLOCKED syscall, cleared when taken. */
  pendingWait: WaitSpec | undefined;
  /** Deadlines handed out by deadlineFor during the current syscall (kept for its re-runs). */
  deadlines: bigint[];
  deadlineIndex: number;
  /** sched_yield re-run marker. */
  yielded: boolean;
}

const EPOCH_OFFSET_NS = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
/** hrtime (ms) at performance's timeOrigin, so fastClock.monotonicNs matches monotonicNs. */
const PERF_ORIGIN_MS = Number(process.hrtime.bigint()) / 1e6 - performance.now();

export function createStandaloneContext(opts: StandaloneOptions = {}): StandaloneContext {
  const fds = new FdTable();
  opts.stdio?.forEach((d, i) => {
    if (d) fds.set(i, { description: d, rightsBase: d.maxRights, rightsInheriting: d.maxInheritingRights });
  });
  for (const [guest, hostDir] of Object.entries(opts.preopens ?? {})) {
    fds.preopen(new HostDirectory(fs.realpathSync(hostDir)), guest);
  }
  const env = Array.isArray(opts.env) ? opts.env : Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
  let guestMemory: GuestMemory | undefined;
  const ctx: StandaloneContext = {
    args: opts.args ?? ['program'],
    env,
    fds,
    pendingWait: undefined,
    deadlines: [],
    deadlineIndex: 0,
    yielded: false,
    setMemory(memory) {
      guestMemory = new GuestMemory(memory);
    },
    memory() {
      if (guestMemory === undefined) throw new Error('standalone WASI context has no memory yet');
      return guestMemory;
    },
    wait(spec): Blocked {
      ctx.pendingWait = spec;
      return BLOCKED;
    },
    yield() {
      if (ctx.yielded) return undefined;
      ctx.yielded = true;
      return BLOCKED;
    },
    raise: defaultRaise,
    deadlineFor(relativeNs) {
      // Same index on a re-run → same deadline, as the kernel does.
      const i = ctx.deadlineIndex++;
      if (i >= ctx.deadlines.length) ctx.deadlines.push(process.hrtime.bigint() + relativeNs);
      return ctx.deadlines[i]!;
    },
    monotonicNs: () => process.hrtime.bigint(),
    realtimeNs: () => process.hrtime.bigint() + EPOCH_OFFSET_NS,
    fastClock: {
      // performance.now() is hrtime-based ms since timeOrigin: same clock as hrtime, no BigInt.
      monotonicNs: () => Math.round((performance.now() + PERF_ORIGIN_MS) * 1e6),
      realtimeNs: () => Math.round((performance.now() + performance.timeOrigin) * 1e6),
    },
    randomFill: (buf) => {
      randomFillSync(buf);
    },
    ...(opts.log ? { log: opts.log } : {}),
  };
  return ctx;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Sleeps the thread until the deadline passes. Nothing else runs on this thread, so a pollable
 * (a BufferedStream fed by this thread) cannot become ready while we sleep: a wait on pollables
 * alone would hang forever and is refused; with a deadline it ends at the deadline.
 */
function performWait(ctx: StandaloneContext, spec: WaitSpec): void {
  if (spec.pollables.some((p) => p.readReady() || p.writeReady())) return;
  if (spec.deadlineNs === undefined) {
    if (spec.pollables.length === 0) return;
    throw new Error('standalone WASI: a read or write would wait forever (no data and no writer)');
  }
  for (;;) {
    const left = spec.deadlineNs - ctx.monotonicNs();
    if (left <= 0n) return;
    Atomics.wait(sleepCell, 0, 0, Math.max(Number(left) / 1e6, 0.01));
  }
}

/** Imports whose BLOCKED results are waited out synchronously, then the syscall re-run. */
export function syncImports(ctx: StandaloneContext, imports: WasiImports = createWasiImports(ctx)): WasiImports {
  const out: WasiImports = {};
  for (const [name, fn] of Object.entries(imports)) {
    out[name] = (...args: unknown[]) => {
      ctx.deadlines = [];
      ctx.yielded = false;
      for (;;) {
        ctx.deadlineIndex = 0;
        const r = fn(...args);
        if (r !== BLOCKED) return r;
        const spec = ctx.pendingWait;
        ctx.pendingWait = undefined;
        if (spec !== undefined) performWait(ctx, spec);
      }
    };
  }
  return out;
}

/** Instantiates and runs a WASI command module to completion; returns its exit status. */
export async function runStandalone(module: WebAssembly.Module, opts: StandaloneOptions = {}): Promise<number> {
  const ctx = createStandaloneContext(opts);
  const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: syncImports(ctx) });
  const memory = instance.exports.memory;
  if (!(memory instanceof WebAssembly.Memory)) throw new Error('module exports no memory');
  ctx.setMemory(memory);
  const start = instance.exports._start;
  if (typeof start !== 'function') throw new Error('module exports no _start');
  try {
    (start as () => void)();
    return 0;
  } catch (err) {
    if (err instanceof ProcessExit) return err.status;
    throw err;
  } finally {
    ctx.fds.closeAll();
  }
}
