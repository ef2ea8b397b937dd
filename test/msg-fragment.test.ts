/**
 * Reassembly of long messages is bounded: a peer cannot make a messenger hold more than its
 * limits in half-received messages, however many sources it claims to be; a message over them
 * is dropped and counted as malformed, and messages within them still arrive. The fragment
 * header is its declared schema's encoding, both ways.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compile, DecodeError, Reader, Writer } from '../src/msg/codec.js';
import { FRAGMENT_HEADER, Reassembler, type ReassemblyLimits } from '../src/msg/fragment.js';
import { FRAME_HEADER_BYTES, writeHeader } from '../src/msg/frame.js';
import type { OutLink } from '../src/msg/link.js';
import { Messenger } from '../src/msg/messenger.js';
import { MESSAGES, type Payload } from '../src/protocol.js';
import { pattern, sameBytes } from './msg-helpers.js';

const LIMITS: ReassemblyLimits = { perSource: 1000, total: 1500 };
const add = (r: Reassembler, src: number, message: number, total: number, offset: number, length: number): Uint8Array | undefined =>
  r.add(src, message, total, offset, new Uint8Array(length));
const fragmentCodec = compile(MESSAGES.fragment.payload);

/** A link that keeps what is sent on it, in frames of at most 256 B. */
function capture(frames: Uint8Array[]): OutLink {
  return { name: 'capture', maxFrame: 256, up: true, send: (f) => frames.push(f.slice()), flush: () => true };
}

describe('the fragment header', () => {
  it("is its schema's encoding: the codec decodes what the messenger writes, the messenger reads what the codec encodes", () => {
    const frames: Uint8Array[] = [];
    const sender = new Messenger(MESSAGES, 1);
    sender.route(2, capture(frames));
    const data = pattern(1, 1, 1000);
    sender.send(2, 'ping', { seq: 1, data });
    const pieces = frames.map((f) => {
      const r = new Reader(f, FRAME_HEADER_BYTES);
      const header = fragmentCodec.decode(r);
      assert.equal(r.pos, FRAME_HEADER_BYTES + FRAGMENT_HEADER.size, 'the header is as long as its encoding');
      return { header, slice: f.subarray(r.pos) };
    });
    assert.ok(pieces.length > 1);
    let next = 0;
    for (const { header, slice } of pieces) {
      assert.deepEqual(header, { message: 1, total: pieces[0]!.header.total, offset: next });
      next += slice.length;
    }
    assert.equal(next, pieces[0]!.header.total, 'the pieces add up to the total');

    const receiver = new Messenger(MESSAGES, 2);
    const received: Uint8Array[] = [];
    receiver.on('ping', (msg) => received.push(msg.data));
    for (const { header, slice } of pieces) {
      const again = fragmentFrame(1, header, slice);
      receiver.deliver(again, 0, again.length);
    }
    assert.equal(received.length, 1);
    assert.ok(sameBytes(received[0]!, data), 'fragments encoded by the codec reassemble intact');
  });

  it('a fragment frame shorter than its header is malformed, not a crash', () => {
    const receiver = new Messenger(MESSAGES, 2);
    const short = fragmentFrame(1, { message: 1, total: 10, offset: 0 }, new Uint8Array(0));
    receiver.deliver(short, 0, short.length - 1);
    assert.equal(receiver.stats.malformed, 1);
    assert.equal(receiver.reassembling, 0);
  });
});

describe('fragment reassembly limits', () => {
  it('refuses a message that would take a source, or every source, over its limit', () => {
    const r = new Reassembler(LIMITS);
    assert.equal(add(r, 1, 1, 600, 0, 100), undefined);
    assert.throws(() => add(r, 1, 2, 600, 0, 100), DecodeError, 'source 1 would hold 1200 B');
    assert.equal(add(r, 2, 1, 600, 0, 100), undefined);
    assert.throws(() => add(r, 3, 1, 600, 0, 100), DecodeError, 'all sources would hold 1800 B');
    assert.equal(r.heldBytes, 1200);
    assert.ok(add(r, 1, 1, 600, 100, 500) !== undefined, "source 1's message completes");
    assert.equal(add(r, 3, 1, 600, 0, 100), undefined, 'its bytes are free again');
    r.dropFrom((src) => src === 2 || src === 3);
    assert.equal(r.heldBytes, 0);
    assert.equal(r.pending, 0);
  });

  it('never holds more than its limits, whatever fragments arrive (property)', () => {
    const fragment = fc.record({
      src: fc.integer({ min: 0, max: 5 }),
      message: fc.integer({ min: 0, max: 3 }),
      total: fc.integer({ min: 1, max: 900 }),
      offset: fc.integer({ min: 0, max: 900 }),
      length: fc.integer({ min: 0, max: 900 }),
    });
    fc.assert(fc.property(fc.array(fragment, { maxLength: 60 }), (fragments) => {
      const r = new Reassembler(LIMITS);
      const sources = new Set<number>();
      for (const f of fragments) {
        try {
          add(r, f.src, f.message, f.total, f.offset, f.length);
        } catch (error) {
          assert.ok(error instanceof DecodeError);
        }
        assert.ok(r.heldBytes <= LIMITS.total, `${r.heldBytes} B held`);
        sources.add(f.src);
      }
      for (const src of sources) r.dropFrom((s) => s === src);
      assert.equal(r.heldBytes, 0, 'dropping every source frees every byte');
    }));
  });

  it('a messenger counts a message over the limits as malformed, drops it, and still receives the next', () => {
    const frames: Uint8Array[] = [];
    const sender = new Messenger(MESSAGES, 1, { onError: () => {} });
    sender.route(2, capture(frames));
    const receiver = new Messenger(MESSAGES, 2, { onError: () => {}, reassembly: LIMITS });
    const received: number[] = [];
    receiver.on('ping', (msg) => received.push(msg.data.length));

    // A hostile peer: first fragments of huge messages under many made-up sources.
    for (let src = 100; src < 110; src++) {
      const first = fragmentFrame(src, { message: 1, total: 1000, offset: 0 }, new Uint8Array(16));
      receiver.deliver(first, 0, first.length);
    }
    assert.equal(receiver.reassembling, 1, 'one was taken; the total bound refused the others');
    assert.equal(receiver.stats.malformed, 9);

    sender.send(2, 'ping', { seq: 1, data: new Uint8Array(2000) });
    for (const f of frames.splice(0)) receiver.deliver(f, 0, f.length);
    assert.deepEqual(received, [], 'a message over the per-source limit is dropped');
    assert.ok(receiver.stats.malformed > 9, 'and counted as malformed');

    sender.send(2, 'ping', { seq: 2, data: new Uint8Array(300) });
    for (const f of frames.splice(0)) receiver.deliver(f, 0, f.length);
    assert.deepEqual(received, [300], 'a message within the limits arrives');
    assert.equal(receiver.reassembling, 1, "only the hostile peer's message is left half-received");
    receiver.peersLost((src) => src >= 100, 'tcp', 'gone');
    assert.equal(receiver.reassembling, 0, "a lost peer's half-received messages are dropped");
  });
});

/** A fragment frame from `src` to endpoint 2, its header encoded by the fragment's schema. */
function fragmentFrame(src: number, header: Payload<'fragment'>, slice: Uint8Array): Uint8Array {
  const w = new Writer();
  w.reset(FRAME_HEADER_BYTES);
  fragmentCodec.encode(w, header);
  writeHeader(w.view, 0, { type: MESSAGES.fragment.id, flags: 0, src, dst: 2, request: 0 });
  const frame = new Uint8Array(w.pos + slice.length);
  frame.set(w.bytes.subarray(0, w.pos));
  frame.set(slice, w.pos);
  return frame;
}
