/**
 * What a process waits on inside the kernel rather than on a file: a request it sent to another
 * kernel (a spawn there, a signal to a process there) and the arrival of a child's exit. Both are
 * Pollables, so a syscall waits on them exactly as it waits on a pipe: it returns BLOCKED, the
 * scheduler parks the process, and the syscall runs again from the top once woken.
 */

import type { Pollable } from './wasi/blocking.js';
import type { WasiError } from './wasi/errno.js';

/** Wakes whoever watches it; readiness itself is the owner's to judge. */
export class WaitQueue implements Pollable {
  private readonly watchers = new Set<() => void>();

  constructor(private readonly ready: () => boolean = () => false) {}

  readReady(): boolean {
    return this.ready();
  }

  writeReady(): boolean {
    return this.ready();
  }

  watch(fn: () => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  /** Readiness may have changed: wake every watcher. */
  notify(): void {
    for (const fn of [...this.watchers]) fn();
  }
}

/**
 * A request a syscall started and must see answered before it returns. The syscall keeps it in
 * its process (Process.operation) across its re-runs, so the request is sent once however many
 * times the process is woken.
 */
export class Operation<T> extends WaitQueue {
  private outcome: { error: WasiError | null; value: T | undefined } | undefined;

  constructor() {
    super(() => this.outcome !== undefined);
  }

  get done(): boolean {
    return this.outcome !== undefined;
  }

  /** The answer came (or the request failed): wake the waiting process. */
  complete(error: WasiError | null, value?: T): void {
    if (this.outcome !== undefined) return;
    this.outcome = { error, value };
    this.notify();
  }

  /** The answer; throws the error the request failed with. Only once done. */
  result(): T {
    const outcome = this.outcome;
    if (outcome === undefined) throw new Error('operation not finished');
    if (outcome.error !== null) throw outcome.error;
    return outcome.value as T;
  }
}
