/**
 * A doorbell wakes one sleeping thread: the receiver of every ring that points at it.
 *
 * The owner advertises that it is about to sleep (Popcorn's int_enabled), re-checks its rings,
 * then waits. Senders ring only when the flag is set, so a busy receiver costs them nothing but
 * one atomic load. The flag store and the senders' head store are both sequentially consistent,
 * so either the sender sees the flag or the receiver's re-check sees the message: no lost wake-up.
 */

const SLEEPING = 0; // 1 while the owner is (about to be) asleep
const SEQUENCE = 1; // bumped by each ring; the owner waits on it
const WORDS = 2;

export class Doorbell {
  readonly words: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(WORDS * 4)) {
    this.words = new Int32Array(buffer, 0, WORDS);
  }

  /** Wake the owner if it sleeps or is about to. Any thread may call this. */
  ring(): void {
    if (Atomics.load(this.words, SLEEPING) !== 0) {
      Atomics.add(this.words, SEQUENCE, 1);
      Atomics.notify(this.words, SEQUENCE);
    }
  }

  /**
   * Sleep until rung or until `timeoutMs` passes, unless `hasWork` reports work after the flag is
   * raised. Blocks the thread: for kernel threads, never for the main thread.
   */
  sleep(hasWork: () => boolean, timeoutMs: number): void {
    const seq = this.raise();
    if (!hasWork()) Atomics.wait(this.words, SEQUENCE, seq, timeoutMs);
    Atomics.store(this.words, SLEEPING, 0);
  }

  /** The same as sleep() without blocking the thread, for threads that run an event loop. */
  async sleepAsync(hasWork: () => boolean, timeoutMs: number): Promise<void> {
    const seq = this.raise();
    if (!hasWork()) {
      const waiter = Atomics.waitAsync(this.words, SEQUENCE, seq, timeoutMs);
      if (waiter.async) await waiter.value;
    }
    Atomics.store(this.words, SLEEPING, 0);
  }

  private raise(): number {
    const seq = Atomics.load(this.words, SEQUENCE);
    Atomics.store(this.words, SLEEPING, 1);
    return seq;
  }
}
