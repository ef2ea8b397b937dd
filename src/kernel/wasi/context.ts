/**
 * A WasiContext on real clocks and randomness, for one process. A BLOCKED syscall leaves its
 * wait in `pendingWait`; whoever runs the process (the kernel's scheduler, or standalone.ts for
 * tests) takes it, waits, and runs the syscall again.
 */
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import { BLOCKED, type Blocked, type WaitSpec } from './blocking.js';
import { FdTable } from './fd-table.js';
import type { FileDescription } from './file-description.js';
import { HostDirectory } from './host-directory.js';
import { GuestMemory } from './memory.js';
import { defaultRaise } from './wasi.js';
import type { WasiContext } from './wasi-context.js';

export interface ContextOptions {
  args?: string[];
  env?: Record<string, string> | string[];
  /** fd 0, 1, 2 (missing ones stay closed). */
  stdio?: [FileDescription?, FileDescription?, FileDescription?];
  /** guest path → host directory, added in order from fd 3. */
  preopens?: Record<string, string>;
  /** Open fds at most (EMFILE beyond): RLIMIT_NOFILE. */
  maxFds?: number;
  log?: (message: string, err: unknown) => void;
}

/** A context whose wait() is recorded for `syncImports` to perform. */
export interface ProcessContext extends WasiContext {
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

/**
 * The monotonic clock, called unbound (it uses no `this`): clock_time_get is hot, and this is the
 * cheapest clock node 20 has from JS (a V8 fast call plus one BigInt, ≈ 30 ns here, most of it
 * clock_gettime); performance.now() costs more (a lazy global getter, a brand check, a slower
 * binding), and turning its double into exact nanoseconds is not cheaper than storing a BigInt.
 */
const hrtimeBigint = process.hrtime.bigint;
const EPOCH_OFFSET_NS = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

export function createWasiContext(opts: ContextOptions = {}): ProcessContext {
  const fds = new FdTable(opts.maxFds);
  opts.stdio?.forEach((d, i) => {
    if (d) fds.set(i, { description: d, rightsBase: d.maxRights, rightsInheriting: d.maxInheritingRights });
  });
  for (const [guest, hostDir] of Object.entries(opts.preopens ?? {})) {
    fds.preopen(new HostDirectory(fs.realpathSync(hostDir)), guest);
  }
  const env = Array.isArray(opts.env) ? opts.env : Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
  let guestMemory: GuestMemory | undefined;
  const ctx: ProcessContext = {
    args: opts.args ?? ['program'],
    env,
    fds,
    pendingWait: undefined,
    deadlines: [],
    deadlineIndex: 0,
    yielded: false,
    operation: undefined,
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
    monotonicNs: hrtimeBigint,
    realtimeNs: () => hrtimeBigint() + EPOCH_OFFSET_NS,
    randomFill: (buf) => {
      randomFillSync(buf);
    },
    ...(opts.log ? { log: opts.log } : {}),
  };
  return ctx;
}

