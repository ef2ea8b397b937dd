/**
 * Pipes: POSIX behaviour within a kernel (order, EOF, EPIPE, atomic writes, non-blocking mode),
 * and across kernels through the pipe service, with kernels as Messengers in this thread joined
 * by in-memory links that the test pumps frame by frame — so every interleaving of messages and
 * syscalls is reproducible.
 */

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Messenger } from '../src/msg/messenger.js';
import { MESSAGES } from '../src/protocol.js';
import { endpointId, nodeOf, type EndpointId } from '../src/msg/address.js';
import { RemoteError } from '../src/msg/requests.js';
import { ByteQueue, NO_OWNER } from '../src/kernel/byte-queue.js';
import { PIPE_BUF, PIPE_CAPACITY, READ_WINDOW, WRITE_CREDIT } from '../src/kernel/pipe-end.js';
import { PIPE_READ, PIPE_WRITE, PipeMessageError, PipeService, type PipeEndRef } from '../src/services/pipe.js';
import { BLOCKED, type Blocked } from '../src/kernel/wasi/blocking.js';
import { Errno, WasiError } from '../src/kernel/wasi/errno.js';
import type { FileDescription } from '../src/kernel/wasi/file-description.js';
import { Fdflags } from '../src/kernel/wasi/types.js';
import { pattern, sameBytes } from './msg-helpers.js';
import { Mesh, type MeshKernel } from './mesh-helpers.js';
import { errnoOf } from './wasi-helpers.js';

// ---- an in-memory cluster --------------------------------------------------------------------

interface TestKernel extends MeshKernel {
  pipes: PipeService;
}

class Cluster extends Mesh<TestKernel> {
  /** `count` kernels, with these ids (default 0, 1, …); k(i) is the i-th. */
  constructor(count: number, ids: EndpointId[] = Array.from({ length: count }, (_, i) => i)) {
    super(ids.slice(0, count), (base) => ({ ...base, pipes: new PipeService(base.messenger, base.id) }));
  }

  /** Hand an end from `from` to `to` as fd-transfer does: retain, wait for the home, adopt. */
  hand(d: FileDescription, from: number, to: number): FileDescription {
    const ref = this.k(from).pipes.refOf(d) as PipeEndRef;
    let counted: Error | null | undefined;
    this.k(from).pipes.retain(ref, this.k(to).id, (error) => (counted = error));
    this.pump();
    assert.equal(counted, null);
    return this.k(to).pipes.adopt(ref);
  }

  k(index: number): TestKernel {
    return this.kernels[index] as TestKernel;
  }

  /** Node `node` is lost: its kernels hear nothing more, and every other kernel is told. */
  loseNode(node: number): void {
    for (const k of this.kernels) if (nodeOf(k.id) === node) this.lost.add(k.messenger);
    for (const k of this.kernels) if (nodeOf(k.id) !== node) k.pipes.nodeLost(node);
  }

  /** After everything closed: no pipe or proxy is left (on the kernels not lost), and no handler failed. */
  assertClean(): void {
    this.pump();
    for (const k of this.kernels) if (!this.lost.has(k.messenger)) assert.equal(k.pipes.size, 0, `pipes and proxies left on k${k.id}`);
    this.assertNoErrors();
  }
}

// ---- helpers ---------------------------------------------------------------------------------

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function write(d: FileDescription, data: Uint8Array | string): number | Blocked {
  const bytes = typeof data === 'string' ? enc(data) : data;
  return d.write(bytes, 0, bytes.length);
}

/** A read of up to `len` bytes: the bytes, or BLOCKED. */
function read(d: FileDescription, len = 1 << 20): Uint8Array | Blocked {
  const buf = new Uint8Array(len);
  const n = d.read(buf, 0, len);
  return n === BLOCKED ? BLOCKED : buf.subarray(0, n);
}

function readText(d: FileDescription): string | Blocked {
  const r = read(d);
  return r === BLOCKED ? BLOCKED : dec(r);
}

/** A service with no peers: pipes within one kernel. */
function localService(): PipeService {
  return new PipeService(new Messenger(MESSAGES, 0), 0);
}

// ---- within a kernel -------------------------------------------------------------------------

describe('a pipe within a kernel', () => {
  test('carries bytes in order, then EOF once the writer closes', () => {
    const pipes = localService();
    const { read: r, write: w } = pipes.create();
    assert.equal(pipes.size, 1);
    assert.equal(write(w, 'hello, '), 7);
    assert.equal(write(w, 'world'), 5);
    assert.equal(r.readableBytes(), 12n);
    assert.equal(readText(r), 'hello, world');
    assert.equal(read(r), BLOCKED, 'empty with a writer: wait');
    w.close();
    assert.deepEqual(read(r), new Uint8Array(0), 'EOF');
    r.close();
    assert.equal(pipes.size, 0);
  });

  test('reads what is there up to the length asked, across many small writes', () => {
    const { read: r, write: w } = localService().create();
    for (let i = 0; i < 10_000; i++) write(w, new Uint8Array([i & 0xff]));
    let got = 0;
    for (let len = 1; got < 10_000; len = len * 3 + 1) {
      const chunk = read(r, len) as Uint8Array;
      assert.ok(chunk.length <= len);
      for (let i = 0; i < chunk.length; i++) assert.equal(chunk[i], (got + i) & 0xff);
      got += chunk.length;
    }
    assert.equal(got, 10_000);
  });

  test('ends are one-way, and tell what they are', () => {
    const pipes = localService();
    const { read: r, write: w } = pipes.create();
    assert.ok(r.readable && !r.writable && w.writable && !w.readable);
    assert.equal(errnoOf(() => write(r, 'x')), Errno.BADF);
    assert.equal(errnoOf(() => read(w)), Errno.BADF);
    assert.equal(errnoOf(() => r.seek(0n, 0)), Errno.SPIPE);
    assert.deepEqual(pipes.refOf(r), { home: 0, pipe: pipes.refOf(w)?.pipe, end: PIPE_READ });
    assert.equal(pipes.refOf(w)?.end, PIPE_WRITE);
  });

  test('a write of at most PIPE_BUF bytes goes in whole or waits; a larger one may be partial', () => {
    const { read: r, write: w } = localService().create();
    assert.equal(write(w, new Uint8Array(PIPE_CAPACITY - 100)), PIPE_CAPACITY - 100);
    assert.equal(write(w, new Uint8Array(200)), BLOCKED, 'atomic: not 100 of 200');
    assert.equal(write(w, new Uint8Array(PIPE_BUF + 1)), 100, 'not atomic: what fits');
    assert.equal(write(w, new Uint8Array(PIPE_BUF + 1)), BLOCKED, 'full: wait');
    assert.equal(w.pollable.writeReady(), false);
    (read(r, PIPE_BUF) as Uint8Array).fill(0);
    assert.equal(w.pollable.writeReady(), true);
    assert.equal(write(w, new Uint8Array(PIPE_BUF)), PIPE_BUF);
    assert.equal(write(w, new Uint8Array(1 << 20)), BLOCKED);
  });

  test('a blocked reader and a blocked writer are woken when the other side moves', () => {
    const { read: r, write: w } = localService().create();
    let readerWoken = 0;
    let writerWoken = 0;
    const cancelRead = r.pollable.watch(() => readerWoken++);
    assert.equal(r.pollable.readReady(), false);
    write(w, 'x');
    assert.equal(readerWoken, 1);
    assert.equal(r.pollable.readReady(), true);
    cancelRead();
    write(w, new Uint8Array(PIPE_CAPACITY - 1));
    const cancelWrite = w.pollable.watch(() => writerWoken++);
    read(r, 10);
    assert.equal(writerWoken, 1);
    cancelWrite();
    read(r, 10);
    assert.equal(writerWoken, 1, 'a cancelled watch is not called');
  });

  test('writing with no reader left is EPIPE, and a blocked writer is woken to find out', () => {
    const pipes = localService();
    const { read: r, write: w } = pipes.create();
    write(w, new Uint8Array(PIPE_CAPACITY));
    assert.equal(write(w, 'x'), BLOCKED);
    let woken = false;
    w.pollable.watch(() => (woken = true));
    r.close();
    assert.ok(woken);
    assert.equal(w.pollable.writeReady(), true, 'ready: a write would not block, it fails');
    assert.equal(errnoOf(() => write(w, 'x')), Errno.PIPE);
    assert.equal(write(w, ''), 0, 'an empty write succeeds, as on Linux');
    w.close();
    assert.equal(pipes.size, 0);
  });

  test('in non-blocking mode a read or write that would wait is EAGAIN', () => {
    const { read: r, write: w } = localService().create();
    r.fdflags = Fdflags.NONBLOCK;
    w.fdflags = Fdflags.NONBLOCK;
    assert.equal(errnoOf(() => read(r)), Errno.AGAIN);
    write(w, new Uint8Array(PIPE_CAPACITY));
    assert.equal(errnoOf(() => write(w, 'x')), Errno.AGAIN);
    assert.equal(errnoOf(() => write(w, new Uint8Array(PIPE_BUF * 4))), Errno.AGAIN);
    read(r);
    w.close();
    assert.deepEqual(read(r), new Uint8Array(0), 'EOF is not EAGAIN');
  });

  test('an end with several descriptions sees EOF only after the last one closes', () => {
    const pipes = localService();
    const { read: r, write: w } = pipes.create();
    const ref = pipes.refOf(w) as PipeEndRef;
    let counted: Error | null | undefined;
    pipes.retain(ref, pipes.self, (error) => (counted = error));
    assert.equal(counted, null, 'counted at once at the home');
    const w2 = pipes.adopt(ref);
    assert.notEqual(w2, w, 'a description of its own, holding one reference');
    w.close();
    w.close(); // a second close gives nothing back twice
    assert.equal(read(r), BLOCKED);
    write(w2, 'late');
    assert.equal(readText(r), 'late');
    w2.close();
    assert.equal(readText(r), '');
    r.close();
    assert.equal(pipes.size, 0);
  });

  test('a retained reference that is never handed on is given back by adopt + close', () => {
    const pipes = localService();
    const { read: r, write: w } = pipes.create();
    const ref = pipes.refOf(w) as PipeEndRef;
    pipes.retain(ref, pipes.self, () => {});
    pipes.adopt(ref).close();
    assert.equal(read(r), BLOCKED, 'the original writer still holds its reference');
    w.close();
    assert.equal(readText(r), '');
    assert.throws(() => pipes.adopt(ref), WasiError, 'nothing retained is left to adopt');
    const answer: { error?: Error | null } = {};
    pipes.retain(ref, pipes.self, (error) => (answer.error = error));
    assert.ok(answer.error instanceof WasiError, 'an end whose references all went cannot be retained');
  });
});

// ---- the byte queue --------------------------------------------------------------------------

test('the byte queue is a FIFO whatever the mix of copies, owned chunks and read sizes', () => {
  type Op = { kind: 'copy' | 'append'; size: number; owner: number } | { kind: 'out' | 'take'; size: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constantFrom('copy' as const, 'append' as const), size: fc.integer({ min: 0, max: 9000 }), owner: fc.integer({ min: -1, max: 3 }) }),
    fc.record({ kind: fc.constantFrom('out' as const, 'take' as const), size: fc.integer({ min: 0, max: 12000 }) }),
  );
  const source = pattern(1, 2, 200 * 9000);
  fc.assert(fc.property(fc.array(op, { maxLength: 200, size: 'max' }), (ops) => {
    const q = new ByteQueue();
    // The model: the queue holds source[tail, head); `runs` says who wrote them, oldest first.
    let head = 0;
    let tail = 0;
    const runs: { owner: number; bytes: number }[] = [];
    const credited = new Map<number, number>();
    const expected = new Map<number, number>();
    const spent = (owner: number, n: number): void => void credited.set(owner, (credited.get(owner) ?? 0) + n);
    for (const o of ops) {
      if (o.kind === 'copy') q.copyIn(source, head, o.size);
      else if (o.kind === 'append') q.append(source.slice(head, head + o.size), o.owner);
      if (o.kind === 'copy' || o.kind === 'append') {
        runs.push({ owner: o.kind === 'copy' ? NO_OWNER : o.owner, bytes: o.size });
        head += o.size;
      } else {
        let out: Uint8Array;
        if (o.kind === 'take') out = q.take(o.size, spent);
        else {
          const buf = new Uint8Array(o.size);
          out = buf.subarray(0, q.copyOut(buf, 0, o.size, spent));
        }
        assert.equal(out.length, Math.min(o.size, head - tail));
        assert.ok(sameBytes(out, source.subarray(tail, tail + out.length)));
        tail += out.length;
        for (let left = out.length; left > 0;) {
          const run = runs[0] as { owner: number; bytes: number };
          const k = Math.min(left, run.bytes);
          if (run.owner !== NO_OWNER) expected.set(run.owner, (expected.get(run.owner) ?? 0) + k);
          run.bytes -= k;
          left -= k;
          if (run.bytes === 0) runs.shift();
        }
      }
      assert.equal(q.size, head - tail);
    }
    for (const [owner, n] of expected) if (n === 0) expected.delete(owner);
    assert.deepEqual(credited, expected, 'each writer is credited for exactly its bytes');
  }), { seed: 7, numRuns: 200 });
});

// ---- across kernels --------------------------------------------------------------------------

describe('a pipe across kernels', () => {
  test('a remote reader is sent data as it comes, then EOF', () => {
    const c = new Cluster(2);
    const { read: r0, write: w } = c.k(0).pipes.create();
    const r = c.hand(r0, 0, 1);
    r0.close();
    assert.equal(readText(r), BLOCKED, 'empty: the proxy asks the home');
    assert.equal(c.k(0).pipes.size + c.k(1).pipes.size, 2, 'the pipe and its proxy');
    write(w, 'one ');
    write(w, 'two');
    assert.equal(readText(r), BLOCKED, 'not here until the messages are');
    c.pump();
    assert.equal(r.readableBytes(), 7n);
    assert.equal(readText(r), 'one two');
    write(w, 'three');
    c.pump();
    assert.equal(readText(r), 'three', 'the window is still open: no new want needed');
    w.close();
    c.pump();
    assert.equal(readText(r), '', 'EOF');
    r.close();
    c.assertClean();
  });

  test('data sent to a remote reader leaves the pipe and frees room for writers', () => {
    const c = new Cluster(2);
    const { read: r0, write: w } = c.k(0).pipes.create();
    const r = c.hand(r0, 0, 1);
    r0.close();
    read(r);
    c.pump(); // the want reaches the home
    let total = 0;
    for (let i = 0; i < 8; i++) {
      const n = write(w, new Uint8Array(PIPE_CAPACITY));
      assert.equal(n, PIPE_CAPACITY, `write ${i}: the pipe was emptied toward the reader`);
      total += n as number;
      c.pump();
      if (total >= READ_WINDOW) break;
    }
    assert.equal(total, READ_WINDOW);
    assert.equal(write(w, new Uint8Array(PIPE_CAPACITY)), PIPE_CAPACITY, 'window used up: the pipe keeps it');
    assert.equal(write(w, new Uint8Array(1)), BLOCKED);
    let got = 0;
    for (let guard = 0; guard < 100; guard++) {
      const chunk = read(r);
      if (chunk === BLOCKED) { c.pump(); continue; }
      got += chunk.length;
      if (got === READ_WINDOW + PIPE_CAPACITY) break;
    }
    assert.equal(got, READ_WINDOW + PIPE_CAPACITY);
    r.close();
    w.close();
    c.assertClean();
  });

  test('a remote writer is held to its credit and goes on as the home drains', () => {
    const c = new Cluster(2);
    const { read: r, write: w0 } = c.k(0).pipes.create();
    const w = c.hand(w0, 0, 1);
    w0.close();
    assert.equal(write(w, new Uint8Array(WRITE_CREDIT - 10)), WRITE_CREDIT - 10);
    assert.equal(write(w, new Uint8Array(100)), BLOCKED, 'atomic write beyond the credit');
    assert.equal(write(w, new Uint8Array(PIPE_BUF * 2)), 10, 'the rest of the credit');
    assert.equal(write(w, new Uint8Array(PIPE_BUF * 2)), BLOCKED);
    w.fdflags = Fdflags.NONBLOCK;
    assert.equal(errnoOf(() => write(w, 'x')), Errno.AGAIN);
    w.fdflags = 0;
    let woken = 0;
    w.pollable.watch(() => woken++);
    c.pump();
    assert.equal(woken, 0, 'the home holds them all: no credit yet');
    assert.equal((read(r, 1000) as Uint8Array).length, 1000);
    c.pump();
    assert.equal(woken, 1, 'credit came back');
    assert.equal(w.pollable.writeReady(), false, 'less than PIPE_BUF of credit');
    assert.equal(write(w, new Uint8Array(1000)), 1000);
    assert.equal(read(r, 1 << 20) !== BLOCKED, true);
    c.pump();
    assert.equal(w.pollable.writeReady(), true);
    w.close();
    c.pump();
    assert.equal((read(r) as Uint8Array).length, 1000, 'the last write, sent before the close');
    assert.equal(readText(r), '', 'EOF after the remote writer closed');
    r.close();
    c.assertClean();
  });

  test('EOF comes only after the last writer, local or remote, has closed', () => {
    const c = new Cluster(3);
    const { read: r0, write: w } = c.k(0).pipes.create();
    const wRemote = c.hand(w, 0, 2);
    const r = c.hand(r0, 0, 1);
    r0.close();
    write(w, 'a');
    w.close();
    write(wRemote, 'b');
    c.pump();
    assert.equal(readText(r), BLOCKED);
    c.pump();
    assert.equal(readText(r), 'ab');
    assert.equal(readText(r), BLOCKED, 'a remote writer is left');
    c.pump();
    assert.equal(readText(r), BLOCKED);
    wRemote.close();
    c.pump();
    assert.equal(readText(r), '');
    r.close();
    c.assertClean();
  });

  test('a remote writer gets EPIPE once the last reader, remote too, has closed', () => {
    const c = new Cluster(3);
    const { read: r0, write: w0 } = c.k(0).pipes.create();
    const r = c.hand(r0, 0, 1);
    const w = c.hand(w0, 0, 2);
    const quiet = c.hand(w0, 0, 1);
    const wLocal = w0;
    r0.close();
    write(w, 'unread');
    c.pump();
    r.close();
    c.pump();
    assert.equal(errnoOf(() => write(wLocal, 'x')), Errno.PIPE, 'at the home at once');
    assert.equal(w.pollable.writeReady(), true);
    assert.equal(errnoOf(() => write(w, 'x')), Errno.PIPE, 'at the remote writer after pipe_broken');
    assert.equal(write(quiet, 'x'), 1, 'a writer the home has not heard from: accepted, then dropped');
    c.pump();
    assert.equal(errnoOf(() => write(quiet, 'x')), Errno.PIPE, 'and told in answer');
    wLocal.close();
    w.close();
    quiet.close();
    c.assertClean();
  });

  test('a remote writer blocked on credit is woken by pipe_broken and gets EPIPE', () => {
    const c = new Cluster(2);
    const { read: r, write: w0 } = c.k(0).pipes.create();
    const w = c.hand(w0, 0, 1);
    w0.close();
    write(w, new Uint8Array(WRITE_CREDIT));
    assert.equal(write(w, 'x'), BLOCKED);
    let woken = 0;
    w.pollable.watch(() => woken++);
    c.pump();
    r.close();
    c.pump();
    assert.ok(woken >= 1);
    assert.equal(errnoOf(() => write(w, 'x')), Errno.PIPE);
    w.close();
    c.assertClean();
  });

  test('an end handed on from a proxy to a third kernel keeps the pipe open after the proxy closes', () => {
    const c = new Cluster(3);
    const { read: r, write: w0 } = c.k(0).pipes.create();
    const w1 = c.hand(w0, 0, 1);
    w0.close();
    write(w1, 'from k1, ');
    // k1 hands its end to k2 and closes at once: the detach follows the attach, so the home
    // counts k2's reference before it forgets k1's.
    const ref = c.k(1).pipes.refOf(w1) as PipeEndRef;
    let counted: Error | null | undefined;
    c.k(1).pipes.retain(ref, c.k(2).id, (error) => (counted = error));
    w1.close();
    c.pump();
    assert.equal(counted, null);
    assert.equal(readText(r), 'from k1, ');
    assert.equal(readText(r), BLOCKED, 'no premature EOF');
    const w2 = c.k(2).pipes.adopt(ref);
    write(w2, 'from k2');
    c.pump();
    assert.equal(readText(r), 'from k2');
    w2.close();
    c.pump();
    assert.equal(readText(r), '');
    r.close();
    c.assertClean();
  });

  test('several descriptions of one end on a kernel share its proxy and give back every reference', () => {
    const c = new Cluster(2);
    const { read: r, write: w0 } = c.k(0).pipes.create();
    const a = c.hand(w0, 0, 1);
    const b = c.hand(w0, 0, 1);
    w0.close();
    assert.equal(c.k(1).pipes.size, 1, 'one proxy');
    write(a, 'a');
    write(b, 'b');
    a.close();
    c.pump();
    assert.equal(readText(r), 'ab');
    assert.equal(readText(r), BLOCKED);
    b.close();
    c.pump();
    assert.equal(readText(r), '');
    r.close();
    c.assertClean();
  });

  test('waiting on a remote reader asks for data and is woken when it comes', () => {
    const c = new Cluster(2);
    const { read: r0, write: w } = c.k(0).pipes.create();
    const r = c.hand(r0, 0, 1);
    r0.close();
    let woken = 0;
    const cancel = r.pollable.watch(() => woken++);
    c.pump();
    write(w, 'polled');
    c.pump();
    assert.equal(woken, 1);
    assert.equal(r.pollable.readReady(), true);
    assert.equal(r.readableBytes(), 6n);
    cancel();
    r.fdflags = Fdflags.NONBLOCK;
    assert.equal(readText(r), 'polled');
    assert.equal(errnoOf(() => read(r)), Errno.AGAIN);
    w.close();
    c.pump();
    assert.equal(readText(r), '');
    r.close();
    c.assertClean();
  });

  test('a writer proxy whose bytes are in flight lingers until they are credited', () => {
    const c = new Cluster(2);
    const { read: r, write: w0 } = c.k(0).pipes.create();
    const w = c.hand(w0, 0, 1);
    w0.close();
    write(w, 'in flight');
    w.close();
    assert.equal(c.k(1).pipes.size, 1);
    c.pump();
    assert.equal(c.k(1).pipes.size, 1, 'the home holds the bytes: no credit yet');
    assert.equal(readText(r), 'in flight');
    c.pump();
    assert.equal(c.k(1).pipes.size, 0);
    assert.equal(readText(r), '');
    r.close();
    c.assertClean();
  });

  test('late, unknown and malformed pipe messages are dropped and the kernels go on', () => {
    const c = new Cluster(3);
    const [home, reader, stranger] = [c.k(0), c.k(1), c.k(2)];
    const { read: r0, write: w } = home.pipes.create();
    const r = c.hand(r0, 0, 1);
    r0.close();
    const pipe = (home.pipes.refOf(w) as PipeEndRef).pipe;
    // Late or for nothing: dropped quietly.
    stranger.messenger.send(0, 'pipe_write', { home: 0, pipe: 999, data: enc('lost') });
    stranger.messenger.send(0, 'pipe_detach', { home: 0, pipe: 999, end: 1, refs: 1 });
    stranger.messenger.send(1, 'pipe_credit', { home: 2, pipe: 5, bytes: 10 });
    home.messenger.send(1, 'pipe_data', { home: 0, pipe: 999, data: enc('x'), eof: true });
    // Wrong whatever the timing: reported through onError.
    stranger.messenger.send(0, 'pipe_detach', { home: 0, pipe, end: 7, refs: 1 });
    stranger.messenger.send(0, 'pipe_want', { home: 2, pipe, bytes: 10 });
    stranger.messenger.send(1, 'pipe_data', { home: 0, pipe, data: enc('forged'), eof: true });
    const answer: { error?: Error | null } = {};
    reader.pipes.retain({ home: 0, pipe: 999, end: PIPE_WRITE }, reader.id, (error) => (answer.error = error));
    c.pump();
    assert.ok(answer.error instanceof RemoteError && answer.error.code === 'EBADF', String(answer.error));
    assert.equal(home.errors.length, 2);
    assert.ok(home.errors.every((e) => e instanceof PipeMessageError));
    assert.equal(reader.errors.length, 1);
    home.errors.length = 0;
    reader.errors.length = 0;
    write(w, 'still fine');
    assert.equal(readText(r), BLOCKED);
    c.pump();
    assert.equal(readText(r), 'still fine');
    w.close();
    r.close();
    c.assertClean();
  });
});

// ---- a lost node ------------------------------------------------------------------------------

/** Kernels 0 and 1 of node 0, and kernel 0 of node 1 (the one that is lost). */
const TWO_NODES = [endpointId(0, 0), endpointId(0, 1), endpointId(1, 0)];

describe('a pipe when a node is lost', () => {
  test('ends held on the lost node go: readers see EOF after what was written, writers EPIPE, waiters are woken', () => {
    const c = new Cluster(3, TWO_NODES);
    // a: written on node 1, read at the home; b: written at the home, read on node 1;
    // d: written on the home's node (another kernel), read on node 1; e: read there, written on node 1.
    const a = c.k(0).pipes.create();
    const aWriter = c.hand(a.write, 0, 2);
    a.write.close();
    const b = c.k(0).pipes.create();
    c.hand(b.read, 0, 2);
    b.read.close();
    const d = c.k(0).pipes.create();
    const dWriter = c.hand(d.write, 0, 1);
    c.hand(d.read, 0, 2);
    d.write.close();
    d.read.close();
    const e = c.k(0).pipes.create();
    const eReader = c.hand(e.read, 0, 1);
    c.hand(e.write, 0, 2);
    e.write.close();
    e.read.close();
    write(aWriter, 'before');
    write(dWriter, 'some');
    c.pump();
    assert.equal(readText(a.read), 'before');
    assert.equal(read(a.read), BLOCKED);
    assert.equal(write(b.write, new Uint8Array(PIPE_CAPACITY)), PIPE_CAPACITY);
    assert.equal(write(b.write, 'x'), BLOCKED, 'nobody reads on node 1 yet');
    assert.equal(read(eReader), BLOCKED, 'a remote reader waiting: it asked the home for data');
    const woken = { a: 0, b: 0, e: 0 };
    a.read.pollable.watch(() => woken.a++);
    b.write.pollable.watch(() => woken.b++);
    eReader.pollable.watch(() => woken.e++);
    c.pump();

    c.loseNode(1);
    c.pump();
    assert.ok(woken.a >= 1 && woken.b >= 1 && woken.e >= 1, JSON.stringify(woken));
    assert.equal(readText(a.read), '', 'EOF: its only writer was on the lost node');
    assert.equal(errnoOf(() => write(b.write, 'x')), Errno.PIPE, 'EPIPE: its only reader was on the lost node');
    assert.equal(errnoOf(() => write(dWriter, 'x')), Errno.PIPE, 'a remote writer hears it too');
    assert.equal(readText(eReader), '', 'and a remote reader');
    for (const end of [a.read, b.write, dWriter, eReader]) end.close();
    c.assertClean();
  });

  test('a reference on its way to a kernel of the lost node goes with it', () => {
    const c = new Cluster(3, TWO_NODES);
    const { read: r, write: w } = c.k(0).pipes.create();
    let counted: Error | null | undefined;
    c.k(0).pipes.retain(c.k(0).pipes.refOf(w) as PipeEndRef, c.k(2).id, (error) => (counted = error));
    assert.equal(counted, null);
    w.close();
    assert.equal(read(r), BLOCKED, 'the writer in flight to node 1 keeps the pipe open');
    c.loseNode(1);
    assert.equal(readText(r), '');
    // Counting one for a kernel of the lost node now (a request that crossed the news) is refused.
    const { read: r2, write: w2 } = c.k(0).pipes.create();
    const answers: (Error | null)[] = [];
    c.k(1).pipes.retain(c.k(0).pipes.refOf(w2) as PipeEndRef, c.k(2).id, (error) => answers.push(error));
    c.k(0).pipes.retain(c.k(0).pipes.refOf(w2) as PipeEndRef, c.k(2).id, (error) => answers.push(error));
    c.pump();
    assert.equal(answers.length, 2);
    assert.ok(answers.every((e) => (e instanceof RemoteError && e.code === 'EHOSTUNREACH') || (e instanceof WasiError && e.errno === Errno.HOSTUNREACH)), String(answers));
    w2.close();
    assert.equal(readText(r2), '', 'nothing was counted');
    for (const end of [r, r2]) end.close();
    c.assertClean();
  });

  test('a reference retained for another kernel and never used is given back for that kernel', () => {
    const c = new Cluster(3);
    const { read: r, write: w0 } = c.k(0).pipes.create();
    const w1 = c.hand(w0, 0, 1);
    w0.close();
    // k1 hands its end to k2, which refuses it (a failed spawn): k1 gives back k2's reference.
    const ref = c.k(1).pipes.refOf(w1) as PipeEndRef;
    c.k(1).pipes.retain(ref, c.k(2).id, () => {});
    c.pump();
    c.k(1).pipes.discard(ref, c.k(2).id);
    write(w1, 'still');
    c.pump();
    assert.equal(readText(r), 'still', 'k1\'s own end is untouched');
    w1.close();
    c.pump();
    assert.equal(readText(r), '');
    r.close();
    c.assertClean();
  });

  test('when the home is lost, its ends elsewhere end: readers read what they had, then EOF; writers get EPIPE', () => {
    const c = new Cluster(3, TWO_NODES);
    const home = c.k(2).pipes.create();
    const r = c.hand(home.read, 2, 0);
    const w = c.hand(home.write, 2, 1);
    const w2 = c.hand(home.write, 2, 1);
    home.read.close();
    home.write.close();
    assert.equal(read(r), BLOCKED);
    write(w, 'had');
    c.pump();
    write(w, 'in the pipe');
    assert.equal(write(w2, new Uint8Array(WRITE_CREDIT)), WRITE_CREDIT - 'in the pipe'.length, 'the rest of the credit');
    assert.equal(write(w2, 'x'), BLOCKED, 'no credit left');
    let woken = 0;
    w.pollable.watch(() => woken++);

    c.loseNode(1);
    assert.equal(woken, 1, 'the blocked writer is woken');
    assert.equal(readText(r), 'had', 'what arrived before the loss is read');
    assert.equal(readText(r), '', 'then EOF');
    assert.equal(errnoOf(() => write(w2, 'x')), Errno.PIPE);
    // The dead ends can still be handed on, and are as dead there.
    const ref = c.k(1).pipes.refOf(w) as PipeEndRef;
    let counted: Error | null | undefined;
    c.k(1).pipes.retain(ref, c.k(0).id, (error) => (counted = error));
    assert.equal(counted, null, 'nothing to count at a lost home');
    const moved = c.k(0).pipes.adopt(ref);
    assert.equal(errnoOf(() => write(moved, 'x')), Errno.PIPE);
    const rRef = c.k(0).pipes.refOf(r) as PipeEndRef;
    let drained: Uint8Array | undefined;
    c.k(0).pipes.drain(r, (error, unread) => {
      assert.equal(error, null);
      drained = unread;
    });
    assert.deepEqual(drained, new Uint8Array(0));
    c.k(0).pipes.retain(rRef, c.k(1).id, () => {});
    const rMoved = c.k(1).pipes.adopt(rRef);
    assert.equal(readText(rMoved), '');
    for (const end of [r, w, w2, moved, rMoved]) end.close();
    c.assertClean();
  });
});

// ---- properties ------------------------------------------------------------------------------

type StreamOp =
  | { op: 'write'; size: number }
  | { op: 'read'; size: number }
  | { op: 'step'; cable: number; frames: number }
  | { op: 'pump' };

const streamOp: fc.Arbitrary<StreamOp> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('write' as const), size: fc.oneof(fc.integer({ min: 1, max: PIPE_BUF }), fc.integer({ min: 1, max: 200_000 })) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('read' as const), size: fc.oneof(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 300_000 })) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('step' as const), cable: fc.nat(), frames: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('pump' as const) }) },
);

/** Reads until EOF, pumping whenever the reader waits; returns what was read. */
function drainToEof(c: Cluster, r: FileDescription, into: Uint8Array, at: number): number {
  for (let idle = 0; idle < 3;) {
    const n = r.read(into, at, into.length - at);
    if (n === 0) return at;
    if (n === BLOCKED) {
      c.pump();
      idle++;
    } else {
      at += n;
      idle = 0;
    }
  }
  assert.fail('no EOF after the writer closed');
}

const SOURCE = pattern(3, 4, 12 << 20);

test('bytes written at any end arrive whole and in order, whatever the interleaving', () => {
  fc.assert(fc.property(fc.boolean(), fc.boolean(), fc.array(streamOp, { maxLength: 60, size: 'max' }), (remoteWriter, remoteReader, ops) => {
    const c = new Cluster(3);
    const { read: r0, write: w0 } = c.k(0).pipes.create();
    const r = remoteReader ? c.hand(r0, 0, 1) : r0;
    const w = remoteWriter ? c.hand(w0, 0, 2) : w0;
    if (remoteReader) r0.close();
    if (remoteWriter) w0.close();
    const received = new Uint8Array(SOURCE.length);
    let sent = 0;
    let got = 0;
    for (const o of ops) {
      if (o.op === 'write') {
        const size = Math.min(o.size, SOURCE.length - sent);
        const n = w.write(SOURCE, sent, size);
        if (n !== BLOCKED) {
          assert.ok(size <= PIPE_BUF ? n === size : n > 0 && n <= size, `write of ${size} took ${n}`);
          sent += n;
        }
      } else if (o.op === 'read') {
        const n = r.read(received, got, Math.min(o.size, received.length - got));
        assert.notEqual(n, 0, 'no EOF while the writer is open');
        if (n !== BLOCKED) got += n;
      } else if (o.op === 'step') {
        c.step(o.cable, o.frames);
      } else {
        c.pump();
      }
    }
    w.close();
    got = drainToEof(c, r, received, got);
    assert.equal(got, sent);
    assert.ok(sameBytes(received.subarray(0, got), SOURCE.subarray(0, sent)), 'the bytes, in order');
    r.close();
    c.assertClean();
  }), { seed: 11, numRuns: 120 });
});

type RecordOp =
  | { op: 'write'; writer: number; size: number }
  | { op: 'read'; size: number }
  | { op: 'step'; cable: number; frames: number }
  | { op: 'pump' };

/** A record: u16 length, writer, sequence number, then a filler that depends on both. */
function record(writer: number, seq: number, size: number): Uint8Array {
  const out = new Uint8Array(size).fill((writer * 37 + seq) & 0xff);
  out[0] = size & 0xff;
  out[1] = size >>> 8;
  out[2] = writer;
  out[3] = seq & 0xff;
  return out;
}

test('writes of at most PIPE_BUF bytes from writers on several kernels never interleave', () => {
  const op: fc.Arbitrary<RecordOp> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ op: fc.constant('write' as const), writer: fc.integer({ min: 0, max: 2 }), size: fc.integer({ min: 4, max: PIPE_BUF }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('read' as const), size: fc.integer({ min: 1, max: 20_000 }) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('step' as const), cable: fc.nat(), frames: fc.integer({ min: 1, max: 3 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('pump' as const) }) },
  );
  fc.assert(fc.property(fc.boolean(), fc.array(op, { maxLength: 150, size: 'max' }), (remoteReader, ops) => {
    // Writers: k0 (the home), k2 and k3; the reader on k0 or k1.
    const c = new Cluster(4);
    const { read: r0, write: w0 } = c.k(0).pipes.create();
    const writers = [w0, c.hand(w0, 0, 2), c.hand(w0, 0, 3)];
    const r = remoteReader ? c.hand(r0, 0, 1) : r0;
    if (remoteReader) r0.close();
    const seqs = [0, 0, 0];
    const received = new Uint8Array(1 << 20);
    let got = 0;
    for (const o of ops) {
      if (o.op === 'write') {
        const rec = record(o.writer, seqs[o.writer] as number, o.size);
        const n = (writers[o.writer] as FileDescription).write(rec, 0, rec.length);
        if (n !== BLOCKED) {
          assert.equal(n, rec.length);
          seqs[o.writer]!++;
        }
      } else if (o.op === 'read') {
        const n = r.read(received, got, o.size);
        if (n !== BLOCKED) got += n;
      } else if (o.op === 'step') {
        c.step(o.cable, o.frames);
      } else {
        c.pump();
      }
    }
    for (const w of writers) w.close();
    got = drainToEof(c, r, received, got);
    const next = [0, 0, 0];
    for (let at = 0; at < got;) {
      const size = (received[at] as number) | ((received[at + 1] as number) << 8);
      const writer = received[at + 2] as number;
      const seq = next[writer] as number;
      assert.ok(sameBytes(received.subarray(at, at + size), record(writer, seq, size)), `record ${seq} of writer ${writer} whole at ${at}`);
      next[writer] = seq + 1;
      at += size;
    }
    assert.deepEqual(next, seqs, 'every record arrived, each writer\'s in order');
    r.close();
    c.assertClean();
  }), { seed: 5, numRuns: 100 });
});
