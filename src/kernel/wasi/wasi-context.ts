/**
 * What the WASI import object (wasi.ts) is given and what it gives: the context a process
 * provides, and the shape of an import. In a module of their own so that the parts of wasi.ts
 * that live in other files (poll.ts, remote-calls.ts) need not import wasi.ts back.
 */

import type { Blocked, WaitSpec } from './blocking.js';
import type { FdTable } from './fd-table.js';
import type { GuestMemory } from './memory.js';
import type { Operation } from '../operation.js';

/** What a process provides to its WASI implementation. The kernel builds one per process. */
export interface WasiContext {
  /** The process's linear memory (its views are re-synced on every call). */
  memory(): GuestMemory;
  /** argv, argv[0] included. */
  args: string[];
  /** Environment as "KEY=VALUE" strings. */
  env: string[];
  fds: FdTable;
  /** Park the process until a pollable is ready or the deadline passes; returns BLOCKED. */
  wait(spec: WaitSpec): Blocked;
  /**
   * sched_yield: BLOCKED to requeue the process now; undefined when this call is the re-run that
   * follows the requeue (the yield has happened, the syscall returns 0).
   */
  yield(): Blocked | undefined;
  /** proc_raise: the kernel applies the signal's disposition (may throw ProcessExit). */
  raise(signal: number): void;
  /**
   * Absolute monotonic deadline for a relative timeout. Within one syscall it is called once per
   * relative clock subscription, in order; when the syscall is re-run after a wake-up the
   * kernel must return, call for call, the deadlines it returned the first time.
   */
  deadlineFor(relativeNs: bigint): bigint;
  /** Clocks for clock_time_get (hot: a monotonic read per clock_gettime) and poll deadlines. */
  monotonicNs(): bigint;
  realtimeNs(): bigint;
  randomFill(buf: Uint8Array): void;
  /** Unexpected host exceptions inside a syscall (the guest got EIO). */
  log?(message: string, err: unknown): void;
  /**
   * The request the current syscall waits for (a path call to another node), kept across its
   * re-runs; cleared when a new syscall starts.
   */
  operation: Operation<unknown> | undefined;
}

/** An import function: an errno, or BLOCKED when the process must wait. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Syscall = (...args: any[]) => number | Blocked;
export type WasiImports = Record<string, Syscall>;

/** What every group of imports shares, built once per process (wasi.ts). */
export interface ImportScope {
  ctx: WasiContext;
  fds: FdTable;
  /** The guest's memory, current after any memory.grow. */
  mem: () => GuestMemory;
  /** The errno of a failure (a WasiError's; EIO, logged, for a bug); rethrows ProcessExit. */
  fail: (err: unknown, name: string) => number;
}
