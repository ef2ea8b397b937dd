/**
 * How a system call says "not now". Syscalls run on the kernel thread and must never block it;
 * one that would wait returns BLOCKED after telling the process what it waits for. The kernel
 * then unwinds the process (Asyncify), parks it, and when a watched object becomes ready or the
 * deadline passes, rewinds it: the same import is called again with the same arguments and the
 * syscall runs again from the top. So a syscall that returns BLOCKED must have had no side effect.
 */

/** Returned by a syscall implementation that must wait. */
export const BLOCKED = Symbol('BLOCKED');
export type Blocked = typeof BLOCKED;

/**
 * Marks an import that never returns BLOCKED and uses no per-syscall state (the deadlines of
 * `deadlineFor`, the sched_yield marker). Such an import is never the one a process unwound in,
 * so it is never reached during a rewind, and the kernel lets the program call it directly
 * instead of through the wrapper that handles rewinds and BLOCKED (execution.ts): for
 * clock_time_get the wrapper costs about a tenth of the call.
 */
export const NEVER_BLOCKS = Symbol('never blocks');

export function markNeverBlocks<F extends object>(fn: F): F {
  Object.defineProperty(fn, NEVER_BLOCKS, { value: true });
  return fn;
}

export function neverBlocks(fn: object): boolean {
  return (fn as { [NEVER_BLOCKS]?: boolean })[NEVER_BLOCKS] === true;
}

/** Something a process can wait on: a pipe end, a terminal, a socket. */
export interface Pollable {
  /** True when a read would not block now (data, EOF or error). */
  readReady(): boolean;
  /** True when a write would not block now. */
  writeReady(): boolean;
  /** Calls `fn` once readiness may have changed; returns a function that cancels the watch. */
  watch(fn: () => void): () => void;
}

/** What a blocked process waits for: any watched object, or the deadline, whichever comes first. */
export interface WaitSpec {
  pollables: Pollable[];
  /** Absolute time on the monotonic clock (ns, as a bigint), or undefined for no deadline. */
  deadlineNs?: bigint;
}

/** Thrown (not returned) by proc_exit, or by a fatal signal, to end the process at once. */
export class ProcessExit extends Error {
  constructor(
    readonly status: number,
    /** The signal number when the process was killed by a signal. */
    readonly signal?: number,
  ) {
    super(signal === undefined ? `process exited with status ${status}` : `process killed by signal ${signal}`);
    this.name = 'ProcessExit';
  }
}
