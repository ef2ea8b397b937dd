/**
 * The ring and the shared-memory link in one thread, with random interleavings of producer and
 * consumer steps (fast-check): FIFO, no loss, no duplication while the ring fills and drains,
 * across the 2^32 wrap of the counters, through the messenger's fragmentation up to several MiB;
 * corrupt records counted and skipped; a producer waiting for space is rung when space frees.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Doorbell } from '../src/msg/doorbell.js';
import { Messenger } from '../src/msg/messenger.js';
import { MESSAGES } from '../src/protocol.js';
import { createRing, RingConsumer, RingProducer, type RingShared } from '../src/msg/ring.js';
import { RingInLink, RingOutLink } from '../src/msg/shm-link.js';
import { pattern, sameBytes } from './msg-helpers.js';

// Ring layout facts the tests poke at (src/msg/ring.ts): int32 index of head and tail, data start.
const HEAD_INDEX = 0;
const TAIL_INDEX = 32;
const DATA_OFFSET = 384;

function ringAt(capacity: number, start: number): { shared: RingShared; consumerBell: Doorbell; producerBell: Doorbell } {
  const consumerBell = new Doorbell();
  const producerBell = new Doorbell();
  const shared = createRing(capacity, consumerBell, producerBell);
  const ctl = new Int32Array(shared.buffer, 0, DATA_OFFSET / 4);
  ctl[HEAD_INDEX] = start | 0;
  ctl[TAIL_INDEX] = start | 0;
  return { shared, consumerBell, producerBell };
}

type RingOp = { op: 'send'; size: number } | { op: 'poll'; budget: number };

test('ring: FIFO, no loss, no duplication under random interleavings, across the 2^32 wrap', () => {
  const capacity = 4096;
  const maxPayload = capacity / 2 - 8;
  const op: fc.Arbitrary<RingOp> = fc.oneof(
    fc.record({ op: fc.constant('send' as const), size: fc.oneof(fc.nat(24), fc.nat(maxPayload)) }),
    fc.record({ op: fc.constant('poll' as const), budget: fc.integer({ min: 1, max: 6 }) }),
  );
  // Start the free-running counters anywhere 8-aligned, often just below 2^32.
  const start = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff >>> 3 }).map((n) => n * 8), fc.integer({ min: 1, max: 2048 }).map((n) => 2 ** 32 - n * 8));
  fc.assert(
    fc.property(start, fc.array(op, { maxLength: 300 }), (at, ops) => {
      const { shared } = ringAt(capacity, at);
      const producer = new RingProducer(shared);
      const consumer = new RingConsumer(shared);
      const waiting: Uint8Array[] = []; // the producer's side queue when the ring is full
      const sent: Uint8Array[] = [];
      const got: Uint8Array[] = [];
      const receive = (bytes: Uint8Array, offset: number, length: number): void => {
        got.push(bytes.slice(offset, offset + length));
      };
      const pump = (): void => {
        while (waiting.length > 0 && producer.trySend(waiting[0])) waiting.shift();
      };
      let seq = 0;
      for (const step of ops) {
        if (step.op === 'send') {
          const payload = pattern(7, seq++, step.size);
          sent.push(payload);
          waiting.push(payload);
          pump();
        } else {
          consumer.poll(receive, step.budget);
          pump();
        }
      }
      for (let guard = 0; (waiting.length > 0 || consumer.hasData()) && guard < 10_000; guard++) {
        consumer.poll(receive, 64);
        pump();
      }
      assert.equal(consumer.stats.corrupt, 0);
      assert.equal(got.length, sent.length);
      for (let i = 0; i < sent.length; i++) assert.ok(sameBytes(got[i], sent[i]), `record ${i} differs`);
      assert.equal(consumer.hasData(), false);
    }),
    { numRuns: 150 },
  );
});

type LinkOp = { op: 'send'; size: number } | { op: 'poll'; budget: number } | { op: 'flush' };

test('messenger over a small ring: random sizes 0 B–3 MiB, fragmented, FIFO, none lost or duplicated', () => {
  const op: fc.Arbitrary<LinkOp> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('send' as const), size: fc.oneof(
      { weight: 6, arbitrary: fc.nat(300) },
      { weight: 3, arbitrary: fc.nat(20_000) },
      { weight: 2, arbitrary: fc.nat(3 << 20) },
    ) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('poll' as const), budget: fc.integer({ min: 1, max: 16 }) }) },
    { weight: 2, arbitrary: fc.constant({ op: 'flush' as const }) },
  );
  fc.assert(
    fc.property(fc.array(op, { minLength: 5, maxLength: 40, size: 'medium' }), fc.constantFrom(4096, 8192, 65536), (ops, capacity) => {
      const { shared } = ringAt(capacity, 0);
      const a = new Messenger(MESSAGES, 1);
      const b = new Messenger(MESSAGES, 2);
      const out = new RingOutLink('ring 1→2', shared);
      a.route(2, out);
      b.listen(new RingInLink('ring 1→2', shared));
      const got: { seq: number; data: Uint8Array }[] = [];
      b.on('ping', (p, from) => {
        assert.equal(from.src, 1);
        got.push(p);
      });
      const sizes: number[] = [];
      for (const step of ops) {
        if (step.op === 'send') {
          a.send(2, 'ping', { seq: sizes.length, data: pattern(3, sizes.length, step.size) });
          sizes.push(step.size);
        } else if (step.op === 'poll') b.poll(step.budget);
        else a.flush();
      }
      for (let guard = 0; (!a.flush() || b.hasInput()) && guard < 1_000_000; guard++) b.poll(64);
      b.poll(64);
      assert.equal(b.stats.malformed, 0);
      assert.equal(got.length, sizes.length);
      got.forEach((p, i) => {
        assert.equal(p.seq, i);
        assert.equal(p.data.length, sizes[i]);
        assert.ok(sameBytes(p.data, pattern(3, i, sizes[i])), `message ${i} differs`);
      });
      assert.equal(b.reassembling, 0);
      assert.equal(out.queued, 0);
    }),
    { numRuns: 30 },
  );
});

test('corrupt record headers are counted and skipped; later well-formed records still arrive', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.nat(4),
      fc.uint8Array({ minLength: 8, maxLength: 8 }),
      (records, victimIndex, scribble) => {
        const victim = victimIndex % records;
        const { shared } = ringAt(4096, 0);
        const producer = new RingProducer(shared);
        const consumer = new RingConsumer(shared);
        const offsets: number[] = [];
        for (let i = 0; i < records; i++) {
          const payload = pattern(1, i, 40 + i * 8);
          const at = producer.reserve(payload.length);
          producer.bytes.set(payload, at);
          producer.commit();
          offsets.push(at - 8); // the record's header
        }
        const header = new Uint8Array(shared.buffer, DATA_OFFSET + offsets[victim], 8);
        if (sameBytes(header, scribble)) scribble[0] ^= 0xff;
        header.set(scribble);
        const got: number[] = [];
        consumer.poll((bytes, offset, length) => got.push(length, bytes[offset]), 64);
        // Everything before the victim arrives; the victim and what follows it are dropped.
        assert.equal(got.length / 2, victim);
        assert.equal(consumer.stats.corrupt, 1);
        assert.ok(producer.trySend(pattern(2, 0, 100)));
        const later: Uint8Array[] = [];
        consumer.poll((bytes, offset, length) => later.push(bytes.slice(offset, offset + length)), 64);
        assert.equal(later.length, 1);
        assert.ok(sameBytes(later[0], pattern(2, 0, 100)));
        assert.equal(consumer.stats.corrupt, 1);
      },
    ),
    { numRuns: 200 },
  );
});

test('a corrupt record in the middle of a fragmented message: counted, the next message intact', () => {
  const { shared } = ringAt(8192, 0);
  const a = new Messenger(MESSAGES, 1);
  const b = new Messenger(MESSAGES, 2);
  const out = new RingOutLink('ring 1→2', shared);
  const inLink = new RingInLink('ring 1→2', shared);
  a.route(2, out);
  b.listen(inLink);
  const got: number[] = [];
  b.on('ping', (p) => got.push(p.seq));
  a.send(2, 'ping', { seq: 1, data: pattern(1, 1, 100_000) }); // ~25 fragments; one fits now
  assert.ok(out.queued > 0);
  new Uint8Array(shared.buffer, DATA_OFFSET, 8).fill(0xab); // the first fragment's header
  while (!a.flush() || b.hasInput()) b.poll(64);
  assert.equal(inLink.consumer.stats.corrupt, 1);
  assert.ok(b.stats.malformed > 0, 'the orphaned fragments are counted');
  assert.deepEqual(got, []);
  a.send(2, 'ping', { seq: 2, data: pattern(1, 2, 30_000) });
  while (!a.flush() || b.hasInput()) b.poll(64);
  assert.deepEqual(got, [2]);
  assert.equal(b.reassembling, 0);
});

test('backpressure: a full ring queues in the link, the consumer rings the waiting producer, flush moves the rest', async () => {
  const { shared, producerBell } = ringAt(4096, 0);
  const out = new RingOutLink('ring', shared);
  const consumer = new RingConsumer(shared);
  const frames = Array.from({ length: 40 }, (_, i) => pattern(4, i, 200 + i));
  for (const f of frames) out.send(f);
  assert.ok(out.queued > 0, 'the ring should be full');
  const got: Uint8Array[] = [];
  const receive = (bytes: Uint8Array, offset: number, length: number): void => {
    got.push(bytes.slice(offset, offset + length));
  };
  let rounds = 0;
  while (out.queued > 0) {
    assert.equal(out.flush(), false); // still full: this arms the "producer waiting" flag
    const start = performance.now();
    const woken = producerBell.sleepAsync(() => false, 5000);
    consumer.poll(receive, 3); // frees space, so it must ring the producer's bell
    await woken;
    assert.ok(performance.now() - start < 2000, 'the producer was not woken when space freed');
    out.flush();
    rounds++;
  }
  while (consumer.hasData()) consumer.poll(receive, 64);
  assert.ok(rounds > 1);
  assert.equal(got.length, frames.length);
  frames.forEach((f, i) => assert.ok(sameBytes(got[i], f), `frame ${i}`));
});

test('a ring refuses frames above its limit with a clear error, and the link stays usable', () => {
  const { shared } = ringAt(4096, 0);
  const out = new RingOutLink('ring k0→k1', shared);
  assert.throws(() => out.send(new Uint8Array(out.maxFrame + 1)), /ring k0→k1: frame of 2041 B exceeds 2040 B/);
  out.send(new Uint8Array(out.maxFrame));
  assert.equal(out.queued, 0);
});

test('a consumer that polls between a pad record and the commit after it sees nothing, not corruption', () => {
  const consumerBell = new Doorbell();
  const producerBell = new Doorbell();
  const shared = createRing(4096, consumerBell, producerBell);
  const producer = new RingProducer(shared);
  const consumer = new RingConsumer(shared);
  const record = new Uint8Array(1000);
  let delivered = 0;
  // Fill and drain so the next record needs a pad record at the end of the ring.
  for (let i = 0; i < 4; i++) {
    assert.ok(producer.trySend(record));
    consumer.poll(() => delivered++);
  }
  const at = producer.reserve(record.length);
  assert.ok(at >= 0);
  assert.equal(consumer.poll(() => delivered++), 0, 'nothing committed yet');
  assert.equal(consumer.stats.corrupt, 0);
  producer.commit();
  assert.equal(consumer.poll(() => delivered++), 1);
  assert.equal(delivered, 5);
  assert.equal(consumer.stats.corrupt, 0);
});
