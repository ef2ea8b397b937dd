/**
 * One test suite, run over both transports: two Messengers connected by rings (in this thread,
 * each driven by an AsyncDriver) and by TCP on 127.0.0.1 (an ephemeral port). Kernel code never
 * knows which transport carried a message, so both must behave the same.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AsyncDriver } from '../src/msg/async-driver.js';
import { DecodeError } from '../src/msg/codec.js';
import { Doorbell } from '../src/msg/doorbell.js';
import { FRAGMENT_HEADER } from '../src/msg/fragment.js';
import { FRAME_HEADER_BYTES, writeHeader } from '../src/msg/frame.js';
import type { OutLink } from '../src/msg/link.js';
import { Messenger } from '../src/msg/messenger.js';
import { RemoteError, RequestTimeoutError } from '../src/msg/requests.js';
import { createRing } from '../src/msg/ring.js';
import { RingInLink, RingOutLink } from '../src/msg/shm-link.js';
import { connectTcpLink, listenTcp, type TcpLink } from '../src/msg/tcp-link.js';
import { MESSAGES, type ReplyPayload, type Protocol } from '../src/protocol.js';
import { pattern, sameBytes, sha256, waitFor } from './msg-helpers.js';

const A = 1;
const B = 2;

/** Two connected messengers, driven, and the raw links between them. */
export interface Pair {
  a: Messenger<Protocol>;
  b: Messenger<Protocol>;
  aToB: OutLink;
  bToA: OutLink;
  /** Wake both drivers (after sending from outside a handler). */
  kick(): void;
  close(): Promise<void>;
}

export async function ringPair(): Promise<Pair> {
  const bellA = new Doorbell();
  const bellB = new Doorbell();
  const ab = createRing(1 << 20, bellB, bellA);
  const ba = createRing(1 << 20, bellA, bellB);
  const a = new Messenger(MESSAGES, A, { onError: () => {} });
  const b = new Messenger(MESSAGES, B, { onError: () => {} });
  const aToB = new RingOutLink('ring k1→k2', ab);
  const bToA = new RingOutLink('ring k2→k1', ba);
  a.route(B, aToB);
  b.route(A, bToA);
  a.listen(new RingInLink('ring k2→k1', ba));
  b.listen(new RingInLink('ring k1→k2', ab));
  const da = new AsyncDriver(a, { bell: bellA });
  const db = new AsyncDriver(b, { bell: bellB });
  da.start();
  db.start();
  return {
    a, b, aToB, bToA,
    kick: () => { da.kick(); db.kick(); },
    close: async () => { await da.stop(); await db.stop(); },
  };
}

export async function tcpPair(): Promise<Pair> {
  const a = new Messenger(MESSAGES, A, { onError: () => {} });
  const b = new Messenger(MESSAGES, B, { onError: () => {} });
  const da = new AsyncDriver(a, { bell: new Doorbell() });
  const db = new AsyncDriver(b, { bell: new Doorbell() });
  let accepted: (link: TcpLink) => void = () => {};
  const bSide = new Promise<TcpLink>((resolve) => (accepted = resolve));
  const listener = await listenTcp(b, '127.0.0.1', 0, (link) => {
    b.route(A, link);
    accepted(link);
  }, { afterDeliver: () => db.kick() });
  const aToB = await connectTcpLink(a, '127.0.0.1', listener.port, { afterDeliver: () => da.kick() });
  a.route(B, aToB);
  const bToA = await bSide;
  da.start();
  db.start();
  return {
    a, b, aToB, bToA,
    kick: () => { da.kick(); db.kick(); },
    close: async () => {
      aToB.close();
      bToA.close();
      await listener.close();
      await da.stop();
      await db.stop();
    },
  };
}

function request(pair: Pair, data: Uint8Array, timeoutMs = 10_000, seq = 1): Promise<ReplyPayload<'ping'>> {
  return new Promise((resolve, reject) => {
    pair.a.request(B, 'ping', { seq, data }, timeoutMs, (error, reply) => (error === null ? resolve(reply as ReplyPayload<'ping'>) : reject(error)));
    pair.kick();
  });
}

/** A frame with an arbitrary header and payload, as a broken or hostile peer might send it. */
function rawFrame(type: number, payload: Uint8Array, flags = 0, request = 0): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  writeHeader(new DataView(frame.buffer), 0, { type, flags, src: A, dst: B, request });
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

function transportSuite(name: string, makePair: () => Promise<Pair>): void {
  describe(`transport: ${name}`, () => {
    const withPair = (title: string, body: (pair: Pair) => Promise<void>): void => {
      test(title, async () => {
        const pair = await makePair();
        try {
          await body(pair);
        } finally {
          await pair.close();
        }
      });
    };

    withPair('typed one-way messages reach their handler in order', async (pair) => {
      const got: number[] = [];
      pair.b.on('ping', (p, from) => {
        assert.equal(from.src, A);
        assert.equal(from.request, 0);
        got.push(p.seq);
      });
      for (let i = 0; i < 200; i++) pair.a.send(B, 'ping', { seq: i, data: pattern(1, i, i * 10) });
      pair.kick();
      await waitFor(() => got.length === 200, 10_000, '200 messages');
      assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => i));
    });

    withPair('request and response', async (pair) => {
      pair.b.on('ping', (p, from) => pair.b.reply(from, 'ping', { seq: p.seq + 1, data: p.data.reverse() }));
      const reply = await request(pair, new Uint8Array([1, 2, 3]), 10_000, 41);
      assert.equal(reply.seq, 42);
      assert.deepEqual([...reply.data], [3, 2, 1]);
      assert.equal(pair.a.outstanding, 0);
    });

    withPair('a 64 MiB message is fragmented and reassembled intact', async (pair) => {
      pair.b.on('ping', (p, from) => pair.b.reply(from, 'ping', { seq: p.data.length, data: sha256(p.data) }));
      const data = pattern(64, 0, 64 << 20);
      const reply = await request(pair, data, 30_000);
      assert.equal(reply.seq, 64 << 20);
      assert.ok(sameBytes(reply.data, sha256(data)), 'hash differs');
      assert.ok(pair.a.stats.fragmentsSent >= 64);
      assert.equal(pair.b.reassembling, 0);
    });

    withPair('a request times out after its deadline; the late reply is counted and dropped', async (pair) => {
      pair.b.on('ping', (p, from) => {
        setTimeout(() => {
          pair.b.reply(from, 'ping', { seq: p.seq, data: p.data });
          pair.kick();
        }, 200);
      });
      const start = performance.now();
      const error = await request(pair, new Uint8Array(4), 60).then(() => null, (e: unknown) => e);
      const elapsed = performance.now() - start;
      assert.ok(error instanceof RequestTimeoutError, `got ${String(error)}`);
      assert.match(error.message, /request ping to k2 timed out after 60 ms/);
      assert.ok(elapsed >= 59 && elapsed < 1000, `timed out after ${elapsed} ms`);
      await waitFor(() => pair.a.stats.lateReplies === 1, 5000, 'the late reply');
      assert.equal(pair.a.outstanding, 0);
      assert.equal(pair.a.stats.handlerErrors, 0);
    });

    withPair('an error reply surfaces as RemoteError', async (pair) => {
      pair.b.on('ping', (_p, from) => pair.b.fail(from, 'EPERM', 'not allowed'));
      const error = await request(pair, new Uint8Array(0)).then(() => null, (e: unknown) => e);
      assert.ok(error instanceof RemoteError, `got ${String(error)}`);
      assert.equal(error.code, 'EPERM');
      assert.match(error.message, /k2: not allowed/);
    });

    withPair('a throwing handler answers the request with an error and the link keeps working', async (pair) => {
      let calls = 0;
      pair.b.on('ping', (p, from) => {
        if (calls++ === 0) throw new Error('boom');
        pair.b.reply(from, 'ping', p);
      });
      const error = await request(pair, new Uint8Array(0)).then(() => null, (e: unknown) => e);
      assert.ok(error instanceof RemoteError && /boom/.test(error.message), `got ${String(error)}`);
      assert.equal((await request(pair, new Uint8Array([5]))).data[0], 5);
      assert.equal(pair.b.stats.handlerErrors, 1);
    });

    withPair('unknown types, truncated payloads and stray replies are counted; the link keeps working', async (pair) => {
      pair.b.on('ping', (p, from) => pair.b.reply(from, 'ping', p));
      pair.aToB.send(rawFrame(999, new Uint8Array(8))); // unknown type
      pair.aToB.send(rawFrame(MESSAGES.ping.id, new Uint8Array([1, 0, 0]))); // truncated payload
      pair.aToB.send(rawFrame(MESSAGES.ping.id, new Uint8Array([1, 0, 0, 0, 9, 0, 0, 0, 1]))); // bytes run past the end
      pair.aToB.send(rawFrame(MESSAGES.pong.id, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 7]))); // trailing byte
      pair.aToB.send(rawFrame(MESSAGES.fragment.id, new Uint8Array(FRAGMENT_HEADER.size).fill(1))); // orphan fragment
      pair.kick();
      await waitFor(() => pair.b.stats.malformed === 5, 5000, 'five malformed frames');
      const reply = await request(pair, new Uint8Array([7, 7]), 10_000, 9);
      assert.equal(reply.seq, 9);
      assert.equal(pair.b.stats.malformed, 5);
      assert.equal(pair.b.stats.handlerErrors, 0);
    });

    withPair('a reply of the wrong type fails the request instead of reaching it mistyped', async (pair) => {
      pair.b.on('ping', (_p, from) => {
        // Answer the ping request with a `ping` instead of its declared reply, `pong`.
        const wrong = rawFrame(MESSAGES.ping.id, new Uint8Array(8), 1, from.request);
        new DataView(wrong.buffer).setUint32(4, B, true);
        new DataView(wrong.buffer).setUint32(8, A, true);
        pair.bToA.send(wrong);
      });
      const error = await request(pair, new Uint8Array(0)).then(() => null, (e: unknown) => e);
      assert.ok(error instanceof DecodeError, `got ${String(error)}`);
      assert.equal(pair.a.stats.malformed, 1);
    });
  });
}

transportSuite('shared-memory rings', ringPair);
transportSuite('TCP on 127.0.0.1', tcpPair);
