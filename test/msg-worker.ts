/**
 * A kernel-like thread for the msg tests: a Messenger over rings, driven by a blocking loop
 * (poll, tick, flush, Doorbell.sleep) as a kernel thread drives it.
 *
 * Roles (workerData.role):
 *   sender — sends `count` one-way pings (seq 0.., payload pattern(seed, seq, size)) to `peer`,
 *            keeping at most `window` frames queued locally, then flushes all and reports.
 *   echo   — answers ping requests with a pong of the same data, echoes one-way pings back as
 *            one-way pings; a one-way ping with seq 0xffffffff stops it.
 * It posts { done: true, ... counters } to its parent when it ends.
 */

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Doorbell } from '../src/msg/doorbell.js';
import { Messenger } from '../src/msg/messenger.js';
import { MESSAGES } from '../src/protocol.js';
import type { RingShared } from '../src/msg/ring.js';
import { RingInLink, RingOutLink } from '../src/msg/shm-link.js';
import { messageSize, pattern, prng } from './msg-helpers.js';

export interface WorkerConfig {
  role: 'sender' | 'echo';
  self: number;
  peer: number;
  bell: SharedArrayBuffer;
  /** Ring from this worker to the peer. */
  out: RingShared;
  /** Ring from the peer to this worker (echo only). */
  in?: RingShared;
  count?: number;
  seed?: number;
  /** Upper bound of the occasional big message. */
  big?: number;
  /** Frames allowed to wait locally before the sender waits for ring space. */
  window?: number;
}

const STOP = 0xffffffff;
const SLEEP_MS = 2000;

// `node --test dist/test/` also loads this file as a test file, in the main thread: do nothing.
if (isMainThread) process.exit(0);

const config = workerData as WorkerConfig;
const bell = new Doorbell(config.bell);
const messenger = new Messenger(MESSAGES, config.self, { onError: (e, ctx) => console.error(`worker ${config.self} ${ctx}`, e) });
const out = new RingOutLink(`ring w${config.self}→peer`, config.out);
messenger.route(config.peer, out);
if (config.in !== undefined) messenger.listen(new RingInLink(`ring peer→w${config.self}`, config.in));

const counters = { sleeps: 0, lostWakeups: 0, maxQueued: 0, waitsForSpace: 0 };

/**
 * Sleep on the doorbell unless there is work. Retrying the flush after raising the flag re-arms
 * the ring's "producer waiting" flag, so the consumer rings us when it frees space. A sleep that
 * runs to its timeout and then finds work means a wake-up was lost: counted.
 */
function sleep(needFlush: boolean): void {
  counters.sleeps++;
  const start = performance.now();
  let found = false;
  bell.sleep(() => (found = messenger.hasInput() || (needFlush && messenger.flush())), SLEEP_MS);
  if (!found && performance.now() - start >= SLEEP_MS * 0.95 && (messenger.hasInput() || (needFlush && messenger.flush()))) {
    counters.lostWakeups++;
  }
}

function runSender(): void {
  const random = prng(config.seed ?? 1);
  const window = config.window ?? 64;
  for (let seq = 0; seq < (config.count ?? 0); seq++) {
    const size = messageSize(random, config.big ?? 1 << 20);
    messenger.send(config.peer, 'ping', { seq, data: pattern(config.seed ?? 1, seq, size) });
    counters.maxQueued = Math.max(counters.maxQueued, out.queued);
    while (!messenger.flush() && out.queued > window) {
      counters.waitsForSpace++;
      sleep(true);
    }
  }
  while (!messenger.flush()) {
    counters.waitsForSpace++;
    sleep(true);
  }
}

function runEcho(): void {
  let running = true;
  messenger.on('ping', (p, from) => {
    if (from.request !== 0) messenger.reply(from, 'ping', { seq: p.seq, data: p.data });
    else if (p.seq === STOP) running = false;
    else messenger.send(from.src, 'ping', p);
  });
  while (running) {
    const n = messenger.poll(64);
    messenger.tick();
    const flushed = messenger.flush();
    if (n === 0 && running) sleep(!flushed);
  }
  while (!messenger.flush()) sleep(true);
}

if (config.role === 'sender') runSender();
else runEcho();
parentPort?.postMessage({ done: true, ...counters, stats: messenger.stats, ring: out.producer.stats });
