/**
 * TCP-specific behaviour: frames split at any byte boundary, socket backpressure, garbage length
 * prefixes (that link closes, counted; the others go on), a lost peer (pending requests fail with
 * LinkDownError instead of hanging), and a relay from TCP onto a ring with shorter frames.
 */

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { AsyncDriver } from '../src/msg/async-driver.js';
import { Doorbell } from '../src/msg/doorbell.js';
import { LinkDownError } from '../src/msg/link.js';
import { Messenger } from '../src/msg/messenger.js';
import { MESSAGES } from '../src/protocol.js';
import { createRing } from '../src/msg/ring.js';
import { RingInLink, RingOutLink } from '../src/msg/shm-link.js';
import { connectTcpLink, listenTcp, TcpLink, type TcpLinkOptions } from '../src/msg/tcp-link.js';
import { pattern, sameBytes, waitFor } from './msg-helpers.js';

/** Just enough of a net.Socket to drive a TcpLink by hand. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  writable = true;
  readonly written: Uint8Array[] = [];
  setNoDelay(): this { return this; }
  cork(): void {}
  uncork(): void {}
  write(chunk: Uint8Array): boolean {
    this.written.push(chunk);
    return this.writable;
  }
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      queueMicrotask(() => this.emit('close'));
    }
    return this;
  }
}

function fakeLink(options: Partial<TcpLinkOptions> & Pick<TcpLinkOptions, 'sink'>): { socket: FakeSocket; link: TcpLink } {
  const socket = new FakeSocket();
  const link = new TcpLink(socket as unknown as net.Socket, { name: 'tcp fake', ...options });
  return { socket, link };
}

function prefixed(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + frame.length);
  new DataView(out.buffer).setUint32(0, frame.length, true);
  out.set(frame, 4);
  return out;
}

test('tcp: frames split at arbitrary byte boundaries arrive whole, in order', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 16, max: 5000 }), { minLength: 1, maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 50 }),
      (sizes, cuts) => {
        const got: Uint8Array[] = [];
        const { socket, link } = fakeLink({ sink: (b, o, l) => got.push(b.slice(o, o + l)) });
        const frames = sizes.map((n, i) => pattern(11, i, n));
        const stream = Buffer.concat(frames.map(prefixed));
        for (let at = 0, i = 0; at < stream.length; i++) {
          const n = Math.min(cuts[i % cuts.length], stream.length - at);
          socket.emit('data', stream.subarray(at, at + n));
          at += n;
        }
        assert.equal(got.length, frames.length);
        frames.forEach((f, i) => assert.ok(sameBytes(got[i], f), `frame ${i}`));
        assert.equal(link.stats.malformed, 0);
        assert.equal(link.up, true);
      },
    ),
    { numRuns: 200 },
  );
});

test('tcp: a large frame received one byte-chunk at a time costs linear time', () => {
  let got = 0;
  const { socket } = fakeLink({ sink: (_b, _o, l) => (got += l) });
  const frame = prefixed(pattern(1, 1, 1 << 20));
  const start = performance.now();
  for (let at = 0; at < frame.length; at += 64) socket.emit('data', Buffer.from(frame.buffer, at, Math.min(64, frame.length - at)));
  assert.equal(got, 1 << 20);
  assert.ok(performance.now() - start < 2000, 'reassembling 16k chunks took too long');
});

test('tcp: when the socket pushes back, frames queue locally and leave in order on drain', () => {
  const { socket, link } = fakeLink({ sink: () => {} });
  socket.writable = false;
  const frames = Array.from({ length: 10 }, (_, i) => pattern(2, i, 16 + i));
  for (const f of frames) link.send(f);
  assert.equal(socket.written.length, 1, 'only the first write before the socket said wait');
  assert.equal(link.queued, 9);
  assert.equal(link.flush(), false, 'nothing moves before drain');
  socket.writable = true;
  socket.emit('drain');
  assert.equal(link.queued, 0);
  assert.equal(link.flush(), true);
  assert.equal(socket.written.length, 10);
  socket.written.forEach((w, i) => assert.ok(sameBytes(w, prefixed(frames[i])), `frame ${i}`));
  // send() copied: changing the caller's buffer afterwards changes nothing on the wire.
  const f = new Uint8Array(16).fill(1);
  link.send(f);
  f.fill(2);
  assert.equal(socket.written[10][4], 1);
});

test('tcp: a garbage length prefix closes that link with a counted error; another link keeps working', async () => {
  const server = new Messenger(MESSAGES, 2, { onError: () => {} });
  const client = new Messenger(MESSAGES, 1, { onError: () => {} });
  const serverLinks: TcpLink[] = [];
  const downs: string[] = [];
  server.on('ping', (p, from) => server.reply(from, 'ping', p));
  const listener = await listenTcp(server, '127.0.0.1', 0, (link) => {
    serverLinks.push(link);
    server.route(serverLinks.length === 1 ? 1 : 3, link);
  }, { onDown: (reason) => downs.push(reason) });
  const good = await connectTcpLink(client, '127.0.0.1', listener.port);
  client.route(2, good);
  await waitFor(() => serverLinks.length === 1);
  try {
    for (const [garbage, expect] of [[0x7fffffff, /malformed length prefix 2147483647/], [3, /malformed length prefix 3/]] as const) {
      const before = serverLinks.length;
      const raw = net.connect(listener.port, '127.0.0.1');
      await new Promise((r) => raw.once('connect', r));
      await waitFor(() => serverLinks.length === before + 1);
      const bad = serverLinks[before];
      const prefix = Buffer.alloc(8);
      prefix.writeUInt32LE(garbage, 0);
      raw.write(prefix);
      await waitFor(() => !bad.up, 5000, 'the bad link to close');
      assert.equal(bad.stats.malformed, 1);
      assert.match(bad.downReason ?? '', expect);
      assert.match(downs.at(-1) ?? '', expect);
      await waitFor(() => raw.closed, 5000, 'the server to hang up'); // it did not just stop reading
    }
    assert.equal(good.up, true);
    const reply = await new Promise<number>((resolve, reject) => {
      client.request(2, 'ping', { seq: 5, data: new Uint8Array(3) }, 5000, (e, r) => (e ? reject(e) : resolve(r?.seq ?? -1)));
    });
    assert.equal(reply, 5);
  } finally {
    good.close();
    for (const l of serverLinks) l.close();
    await listener.close();
  }
});

test('tcp: a closed peer fails pending requests with LinkDownError instead of hanging', async () => {
  const server = new Messenger(MESSAGES, 2, { onError: () => {} });
  const client = new Messenger(MESSAGES, 1, { onError: () => {} });
  const driver = new AsyncDriver(client, { bell: new Doorbell() });
  let serverLink: TcpLink | undefined;
  server.on('ping', () => {}); // never answers
  const listener = await listenTcp(server, '127.0.0.1', 0, (link) => (serverLink = link));
  const link = await connectTcpLink(client, '127.0.0.1', listener.port);
  client.route(2, link);
  driver.start();
  try {
    const start = performance.now();
    const pending = [1, 2, 3].map((seq) => new Promise<unknown>((resolve) => {
      client.request(2, 'ping', { seq, data: new Uint8Array(0) }, 60_000, (e) => resolve(e));
    }));
    await waitFor(() => server.stats.received === 3);
    serverLink?.close('peer shutting down');
    const errors = await Promise.all(pending);
    for (const e of errors) {
      assert.ok(e instanceof LinkDownError, `got ${String(e)}`);
      assert.match(e.message, /^link tcp 127\.0\.0\.1:\d+ is down: /);
    }
    assert.ok(performance.now() - start < 5000);
    assert.equal(link.up, false);
    assert.equal(client.outstanding, 0);
    // With the route gone, a new request fails at once rather than waiting for its timeout.
    const late = await new Promise<unknown>((resolve) => client.request(2, 'ping', { seq: 9, data: new Uint8Array(0) }, 60_000, (e) => resolve(e)));
    assert.ok(late instanceof LinkDownError && /no route/.test(late.message));
  } finally {
    await driver.stop();
    link.close();
    await listener.close();
  }
});

test('tcp → ring relay: a frame longer than the ring allows is re-fragmented, not thrown', async () => {
  // A (node 1) —tcp→ host H —ring (4 KiB: 2 KiB frames)→ kernel K.
  const a = new Messenger(MESSAGES, 0x100, { onError: () => {} });
  const h = new Messenger(MESSAGES, 0x1ff, { onError: () => {} });
  const k = new Messenger(MESSAGES, 0x000 | 2, { onError: () => {} });
  const bellK = new Doorbell();
  const bellH = new Doorbell();
  const ring = createRing(4096, bellK, bellH);
  h.route(2, new RingOutLink('ring host→k2', ring));
  k.listen(new RingInLink('ring host→k2', ring));
  const dk = new AsyncDriver(k, { bell: bellK });
  const dh = new AsyncDriver(h, { bell: bellH });
  const got: Uint8Array[] = [];
  k.on('ping', (p) => got.push(p.data));
  const listener = await listenTcp(h, '127.0.0.1', 0, () => {}, { afterDeliver: () => dh.kick() });
  const link = await connectTcpLink(a, '127.0.0.1', listener.port);
  a.route(2, link);
  dk.start();
  dh.start();
  try {
    const data = pattern(3, 3, 100_000);
    a.send(2, 'ping', { seq: 1, data });
    a.send(2, 'ping', { seq: 2, data: pattern(3, 4, 3 << 20) }); // fragmented by A, then by H
    await waitFor(() => got.length === 2, 10_000, 'the relayed messages');
    assert.ok(sameBytes(got[0], data));
    assert.ok(sameBytes(got[1], pattern(3, 4, 3 << 20)));
    assert.equal(h.stats.handlerErrors, 0);
    assert.ok(h.stats.relayed > 0);
    assert.equal(k.stats.malformed, 0);
    assert.equal(k.reassembling, 0);
  } finally {
    link.close();
    await listener.close();
    await dk.stop();
    await dh.stop();
  }
});
