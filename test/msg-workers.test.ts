/**
 * Rings across real worker threads: FIFO, no loss, no duplication with message sizes from 0 B to
 * several MiB; N senders into one receiver; a slow receiver; both directions with an echo kernel.
 * The main thread is the receiver, driven by the AsyncDriver as the node's host thread is.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { AsyncDriver } from '../src/msg/async-driver.js';
import { Doorbell } from '../src/msg/doorbell.js';
import { Messenger, type MessengerStats } from '../src/msg/messenger.js';
import { createRing } from '../src/msg/ring.js';
import { RingInLink, RingOutLink } from '../src/msg/shm-link.js';
import { type Payload, MESSAGES } from '../src/protocol.js';
import { messageSize, pattern, prng, sameBytes, waitFor } from './msg-helpers.js';
import type { WorkerConfig } from './msg-worker.js';

const MAIN = 100;
const WORKER_URL = new URL('./msg-worker.js', import.meta.url);

interface WorkerReport {
  done: true;
  sleeps: number;
  lostWakeups: number;
  maxQueued: number;
  waitsForSpace: number;
  stats: MessengerStats;
}

function startWorker(config: WorkerConfig): { worker: Worker; report: Promise<WorkerReport> } {
  const worker = new Worker(WORKER_URL, { workerData: config });
  const report = new Promise<WorkerReport>((resolve, reject) => {
    worker.once('message', (m: WorkerReport) => resolve(m));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before reporting`)));
  });
  return { worker, report };
}

/** Record what each sender sends, in order, and check it as it arrives. */
class Checker {
  readonly next = new Map<number, number>();
  readonly errors: string[] = [];
  received = 0;
  bytes = 0;
  constructor(readonly seedOf: (src: number) => number, readonly sizes: Map<number, number[]>) {}

  take(src: number, p: Payload<'ping'>): void {
    const expected = this.next.get(src) ?? 0;
    if (p.seq !== expected) this.errors.push(`from ${src}: seq ${p.seq}, expected ${expected}`);
    const size = this.sizes.get(src)?.[p.seq];
    if (size !== p.data.length) this.errors.push(`from ${src} seq ${p.seq}: ${p.data.length} B, expected ${size}`);
    else if (!sameBytes(p.data, pattern(this.seedOf(src), p.seq, size))) this.errors.push(`from ${src} seq ${p.seq}: content differs`);
    this.next.set(src, p.seq + 1);
    this.received++;
    this.bytes += p.data.length;
  }
}

/** The sizes msg-worker's sender draws for (seed, count, big): the same PRNG, replayed. */
function senderSizes(seed: number, count: number, big: number): number[] {
  const random = prng(seed);
  return Array.from({ length: count }, () => messageSize(random, big));
}

async function runSenders(options: { senders: number; count: number; big: number; ringBytes: number; window: number; slow?: boolean }): Promise<void> {
  const bell = new Doorbell();
  const main = new Messenger(MESSAGES, MAIN);
  const sizes = new Map<number, number[]>();
  const workers: ReturnType<typeof startWorker>[] = [];
  for (let i = 0; i < options.senders; i++) {
    const self = i + 1;
    const workerBell = new Doorbell();
    const ring = createRing(options.ringBytes, bell, workerBell);
    main.listen(new RingInLink(`ring w${self}→main`, ring));
    sizes.set(self, senderSizes(self * 7, options.count, options.big));
    workers.push(startWorker({
      role: 'sender', self, peer: MAIN, bell: workerBell.buffer, out: ring,
      count: options.count, seed: self * 7, big: options.big, window: options.window,
    }));
  }
  const checker = new Checker((src) => src * 7, sizes);
  main.on('ping', (p, from) => checker.take(from.src, p));
  const driver = new AsyncDriver(main, { bell, budget: options.slow ? 1 : 64 });
  if (options.slow) {
    // The receiver is away: the senders fill their rings, then must wait, not drop.
    await new Promise((r) => setTimeout(r, 150));
  }
  driver.start();
  try {
    const total = options.senders * options.count;
    await waitFor(() => checker.received >= total || checker.errors.length > 0, 30_000, `${total} messages`);
    const reports = await Promise.all(workers.map((w) => w.report));
    assert.deepEqual(checker.errors, []);
    assert.equal(checker.received, total);
    let bytes = 0;
    for (const list of sizes.values()) for (const n of list) bytes += n;
    assert.equal(checker.bytes, bytes);
    assert.equal(main.stats.malformed, 0);
    assert.equal(main.reassembling, 0);
    for (const r of reports) assert.equal(r.lostWakeups, 0, 'a sender slept through a wake-up');
    if (options.slow) assert.ok(reports.every((r) => r.waitsForSpace > 0), 'the senders should have found the ring full');
    // Nothing more arrives: no duplicates.
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(checker.received, total);
  } finally {
    await driver.stop();
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }
}

test('one sender worker → main: FIFO, no loss, no duplication, 0 B to 3 MiB', async () => {
  await runSenders({ senders: 1, count: 150, big: 3 << 20, ringBytes: 1 << 16, window: 256 });
});

test('three sender workers → one receiver, one ring each: all delivered, per-sender order kept', async () => {
  await runSenders({ senders: 3, count: 300, big: 256 << 10, ringBytes: 1 << 14, window: 32 });
});

test('a slow receiver loses nothing; senders blocked on a full ring resume when space frees', async () => {
  await runSenders({ senders: 2, count: 400, big: 64 << 10, ringBytes: 1 << 12, window: 8, slow: true });
});

test('main ↔ echo worker: both directions, requests and one-way, big and small', async () => {
  const mainBell = new Doorbell();
  const workerBell = new Doorbell();
  const toWorker = createRing(1 << 16, workerBell, mainBell);
  const toMain = createRing(1 << 16, mainBell, workerBell);
  const main = new Messenger(MESSAGES, MAIN);
  main.route(1, new RingOutLink('ring main→w1', toWorker));
  main.listen(new RingInLink('ring w1→main', toMain));
  const echo = startWorker({ role: 'echo', self: 1, peer: MAIN, bell: workerBell.buffer, out: toMain, in: toWorker });
  const sizes = new Map<number, number[]>([[1, senderSizes(5, 120, 2 << 20)]]);
  const checker = new Checker(() => 5, sizes);
  main.on('ping', (p, from) => checker.take(from.src, p));
  const driver = new AsyncDriver(main, { bell: mainBell });
  driver.start();
  try {
    // One-way traffic sent in a burst: most of it waits in the ring link's backlog.
    const list = sizes.get(1) as number[];
    for (let seq = 0; seq < list.length; seq++) main.send(1, 'ping', { seq, data: pattern(5, seq, list[seq]) });
    driver.kick();
    // Requests interleaved with it.
    const replies = await Promise.all([0, 1, 1000, 1 << 20].map((size, i) => new Promise<boolean>((resolve, reject) => {
      const data = pattern(9, i, size);
      main.request(1, 'ping', { seq: i, data }, 20_000, (error, reply) => {
        if (error !== null) reject(error);
        else resolve(reply?.seq === i && sameBytes(reply.data, data));
      });
      driver.kick();
    })));
    assert.deepEqual(replies, [true, true, true, true]);
    await waitFor(() => checker.received >= list.length || checker.errors.length > 0, 30_000, 'the echoes');
    assert.deepEqual(checker.errors, []);
    assert.equal(checker.received, list.length);
    main.send(1, 'ping', { seq: 0xffffffff, data: new Uint8Array(0) });
    driver.kick();
    const report = await echo.report;
    assert.equal(report.stats.malformed, 0);
    assert.equal(report.lostWakeups, 0);
  } finally {
    await driver.stop();
    await echo.worker.terminate();
  }
});
