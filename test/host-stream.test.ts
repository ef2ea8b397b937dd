/**
 * Host stream channels on a kernel: flow control by credit, and channels that go away with the
 * last process using them (run sessions come and go).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Messenger } from '../src/msg/messenger.js';
import { HostOutput, HostStreamChannels, WRITE_WINDOW } from '../src/kernel/host-stream.js';
import { BLOCKED } from '../src/kernel/wasi/blocking.js';

/** A messenger whose frames to the host go nowhere: enough to count what a channel sends. */
function kernelMessenger(): Messenger {
  const m = new Messenger(0);
  m.routeDefault({ name: 'sink', maxFrame: 1 << 20, up: true, send: () => undefined, flush: () => true });
  return m;
}

test('a writer beyond the window blocks until the host credits the bytes back', () => {
  const channels = new HostStreamChannels(kernelMessenger(), 255);
  const out = new HostOutput(channels.acquire(255, 1));
  const chunk = new Uint8Array(WRITE_WINDOW);
  assert.equal(out.write(chunk, 0, chunk.length), chunk.length);
  assert.equal(out.write(chunk, 0, 1), BLOCKED);
  let woken = false;
  const cancel = out.pollable.watch(() => (woken = true));
  channels.get(255, 1)?.credit(chunk.length);
  assert.ok(woken);
  cancel();
  assert.equal(out.write(chunk, 0, 1), 1);
});

test('streams of different hosts are different channels (a process started from another node)', () => {
  const channels = new HostStreamChannels(kernelMessenger(), 255);
  const mine = channels.acquire(255, 1);
  const theirs = channels.acquire(511, 1);
  assert.notEqual(mine, theirs);
  assert.equal(theirs.host, 511);
  assert.equal(channels.get(511, 1), theirs);
  assert.equal(channels.size, 2);
});

test('a channel is dropped once its last description is closed and nothing is in flight', () => {
  const channels = new HostStreamChannels(kernelMessenger(), 255);
  const a = new HostOutput(channels.acquire(255, 4));
  const b = new HostOutput(channels.acquire(255, 4));
  assert.equal(channels.size, 1);
  a.write(new Uint8Array(10), 0, 10);
  a.close();
  b.close();
  assert.equal(channels.size, 1, 'bytes in flight keep it');
  channels.get(255, 4)?.credit(10);
  assert.equal(channels.size, 0);
});
