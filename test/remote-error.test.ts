/**
 * One rule turns a failed request into the errno of the syscall that made it
 * (src/services/remote-error.ts): the peer's answer when it names one, the caller's choice when
 * the peer could not serve, the fallback otherwise.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LinkDownError } from '../src/msg/link.js';
import { RemoteError, RequestTimeoutError, TransportCode } from '../src/msg/requests.js';
import { Errno, WasiError } from '../src/kernel/wasi/errno.js';
import { asWasiError } from '../src/services/remote-error.js';

const errnoOf = (error: unknown, choice: Parameters<typeof asWasiError>[1]): number => asWasiError(error, choice).errno;

test("a peer's errno answer is the syscall's, and a WasiError stays as it is", () => {
  const own = new WasiError(Errno.BADF, 'fd 9');
  assert.equal(asWasiError(own, { fallback: Errno.IO }), own);
  assert.equal(errnoOf(new RemoteError('ENOENT', 'no such file', 'k1'), { fallback: Errno.IO, unreachable: Errno.IO }), Errno.NOENT);
  assert.equal(errnoOf(new RemoteError('ESRCH', 'no process 7', 'k1'), { fallback: Errno.NOEXEC }), Errno.SRCH);
});

test('a peer that could not serve: the transport errno, unless the caller names one', () => {
  const noRoute = new RemoteError(TransportCode.NoRoute, 'no route to k3', 'k1');
  const timeout = new RequestTimeoutError('proc_start', 'k1', 30_000);
  const down = new LinkDownError('tcp n1', 'closed');
  const threw = new RemoteError(TransportCode.HandlerFailed, 'boom', 'k1');
  assert.equal(errnoOf(noRoute, { fallback: Errno.NOEXEC }), Errno.HOSTUNREACH);
  assert.equal(errnoOf(timeout, { fallback: Errno.NOEXEC }), Errno.TIMEDOUT);
  assert.equal(errnoOf(down, { fallback: Errno.NOEXEC }), Errno.HOSTUNREACH);
  assert.equal(errnoOf(threw, { fallback: Errno.NOEXEC }), Errno.FAULT);
  for (const error of [noRoute, timeout, down, threw]) assert.equal(errnoOf(error, { fallback: Errno.NOEXEC, unreachable: Errno.IO }), Errno.IO);
});

test('anything else is the fallback, with its context before the message', () => {
  const made = asWasiError(new RemoteError('EWEIRD', 'odd', 'k1'), { fallback: Errno.NOEXEC, context: '/bin/x.wasm' });
  assert.equal(made.errno, Errno.NOEXEC);
  assert.match(made.message, /\/bin\/x\.wasm: k1: odd/);
  assert.equal(errnoOf(new TypeError('bad'), { fallback: Errno.NOTSUP }), Errno.NOTSUP);
  assert.equal(errnoOf('a string', { fallback: Errno.SRCH }), Errno.SRCH);
});
