/**
 * Drives a Messenger from a thread that runs Node's event loop (the node's host thread, tests),
 * where kernel threads use a blocking loop instead. One round: poll() the inbound rings and local
 * messages, tick() the request deadlines, flush() frames that waited for ring space. Between
 * rounds it yields to the event loop (so sockets, timers and TCP links run), and when idle it
 * sleeps on the thread's doorbell with Doorbell.sleepAsync (Atomics.waitAsync: the thread stays
 * free) until a ring rings it, a request deadline comes, kick() is called, or maxSleepMs passes.
 *
 * Usage:
 *   const bell = new Doorbell();            // consumer bell of our inbound rings, producer bell
 *   const driver = new AsyncDriver(messenger, { bell });   //   of our outbound rings
 *   driver.start();
 *   ...                                      // messenger.send/request from anywhere on the thread
 *   driver.kick();                           // optional: act on it now rather than within maxSleepMs
 *   await driver.stop();
 *
 * TCP links push frames from socket events without the driver; pass `afterDeliver: () =>
 * driver.kick()` to attachTcp so what their handlers queue is flushed at once.
 *
 * Atomics.waitAsync does not keep a Node process alive, so while running the driver holds a
 * ref'd timer (keepAlive, default true); stop() releases it.
 */

import type { Doorbell } from './doorbell.js';
import type { MessengerTransport } from './messenger.js';

export interface AsyncDriverOptions {
  /** This thread's doorbell: rung by producers into our rings and consumers of our outbound rings. */
  bell: Doorbell;
  /** Frames per inbound link per round (NAPI-style budget). Default 64. */
  budget?: number;
  /** Longest sleep: bounds how late work started outside the driver is noticed without kick(). Default 20. */
  maxSleepMs?: number;
  /** Event-loop turns to keep polling before sleeping. Default 1. */
  spinRounds?: number;
  /** Keep the process alive while running. Default true. */
  keepAlive?: boolean;
  /** Where exceptions escaping the messenger are reported (default console.error). */
  onError?: (error: unknown) => void;
  /** Monotonic clock matching the messenger's (default performance.now). */
  now?: () => number;
}

export interface AsyncDriverStats {
  rounds: number;
  sleeps: number;
  frames: number;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class AsyncDriver {
  readonly stats: AsyncDriverStats = { rounds: 0, sleeps: 0, frames: 0 };
  private readonly bell: Doorbell;
  private readonly budget: number;
  private readonly maxSleepMs: number;
  private readonly spinRounds: number;
  private readonly keepAlive: boolean;
  private readonly onError: (error: unknown) => void;
  private readonly now: () => number;
  private running = false;
  private kicked = false;
  private loop: Promise<void> | undefined;
  private keeper: NodeJS.Timeout | undefined;

  constructor(readonly messenger: MessengerTransport, options: AsyncDriverOptions) {
    this.bell = options.bell;
    this.budget = options.budget ?? 64;
    this.maxSleepMs = options.maxSleepMs ?? 20;
    this.spinRounds = options.spinRounds ?? 1;
    this.keepAlive = options.keepAlive ?? true;
    this.onError = options.onError ?? ((error) => console.error('[async-driver]', error));
    this.now = options.now ?? (() => performance.now());
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Start the loop (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.keepAlive) this.keeper = setInterval(() => {}, 1 << 30);
    this.loop = this.run();
  }

  /** Wake the loop now: something was sent, requested or queued from outside it. Cheap. */
  kick(): void {
    if (this.kicked) return;
    this.kicked = true;
    this.bell.ring();
  }

  /** Stop after the current round; resolves when the loop has exited. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.kick();
    await this.loop;
    if (this.keeper !== undefined) clearInterval(this.keeper);
    this.keeper = undefined;
  }

  /** One round, also usable by hand: poll, expire, flush. Returns [frames, everything flushed]. */
  round(): [number, boolean] {
    const m = this.messenger;
    let frames = 0;
    let flushed = true;
    try {
      frames = m.poll(this.budget);
      m.tick();
      flushed = m.flush();
    } catch (error) {
      this.onError(error);
    }
    this.stats.rounds++;
    this.stats.frames += frames;
    return [frames, flushed];
  }

  private async run(): Promise<void> {
    let idleTurns = 0;
    while (this.running) {
      this.kicked = false;
      const [frames, flushed] = this.round();
      if (frames > 0 || this.kicked) {
        idleTurns = 0;
        await nextTurn();
        continue;
      }
      if (idleTurns < this.spinRounds) {
        idleTurns++;
        await nextTurn();
        continue;
      }
      idleTurns = 0;
      const wait = Math.min(this.maxSleepMs, this.messenger.nextDeadline - this.now());
      if (wait <= 0) {
        await nextTurn();
        continue;
      }
      this.stats.sleeps++;
      // Re-check after raising the sleep flag. Retrying the flush re-arms the rings' "producer
      // waiting" flags, so a consumer that freed space after our last try rings us.
      // (A flush that now completes counts as work: go round again.)
      await this.bell.sleepAsync(() => {
        if (this.kicked || !this.running || this.messenger.hasInput()) return true;
        return !flushed && this.messenger.flush();
      }, Math.max(1, Math.ceil(wait)));
    }
  }
}
