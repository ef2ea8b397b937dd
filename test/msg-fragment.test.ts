/**
 * Reassembly of long messages is bounded: a peer cannot make a messenger hold more than its
 * limits in half-received messages, however many sources it claims to be; a message over them
 * is dropped and counted as malformed, and messages within them still arrive.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DecodeError } from '../src/msg/codec.js';
import { Reassembler, type ReassemblyLimits } from '../src/msg/fragment.js';
import { FRAME_HEADER_BYTES, writeHeader } from '../src/msg/frame.js';
import type { OutLink } from '../src/msg/link.js';
import { Messenger } from '../src/msg/messenger.js';
import { MESSAGES } from '../src/protocol.js';

const LIMITS: ReassemblyLimits = { perSource: 1000, total: 1500 };
const add = (r: Reassembler, src: number, message: number, total: number, offset: number, length: number): Uint8Array | undefined =>
  r.add(src, message, total, offset, new Uint8Array(length));

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
    const capture: OutLink = { name: 'capture', maxFrame: 256, up: true, send: (f) => frames.push(f.slice()), flush: () => true };
    const sender = new Messenger(MESSAGES, 1, { onError: () => {} });
    sender.route(2, capture);
    const receiver = new Messenger(MESSAGES, 2, { onError: () => {}, reassembly: LIMITS });
    const received: number[] = [];
    receiver.on('ping', (msg) => received.push(msg.data.length));

    // A hostile peer: first fragments of huge messages under many made-up sources.
    for (let src = 100; src < 110; src++) receiver.deliver(firstFragment(src, 1, 1000), 0, FRAME_HEADER_BYTES + 12 + 16);
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

/** The first fragment (16 bytes of it) of a `total`-byte message from `src` to endpoint 2. */
function firstFragment(src: number, message: number, total: number): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + 12 + 16);
  const view = new DataView(frame.buffer);
  writeHeader(view, 0, { type: MESSAGES.fragment.id, flags: 0, src, dst: 2, request: 0 });
  view.setUint32(FRAME_HEADER_BYTES, message, true);
  view.setUint32(FRAME_HEADER_BYTES + 4, total, true);
  view.setUint32(FRAME_HEADER_BYTES + 8, 0, true);
  return frame;
}
