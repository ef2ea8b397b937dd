/**
 * Host stream channels on a kernel: flow control by credit, and channels that go away with the
 * last process using them (run sessions come and go).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Messenger } from '../src/msg/messenger.js';
import { MESSAGES, type Protocol } from '../src/protocol.js';
import { PassThrough } from 'node:stream';
import { HostInput, HostOutput, HostStreamChannels, WRITE_WINDOW } from '../src/kernel/host-stream.js';
import { HostStreams } from '../src/node/streams.js';
import { Cable } from './msg-helpers.js';
import { BLOCKED } from '../src/kernel/wasi/blocking.js';

/** A messenger whose frames to the host go nowhere: enough to count what a channel sends. */
function kernelMessenger(): Messenger<Protocol> {
  const m = new Messenger(MESSAGES, 0);
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

/** A kernel (endpoint 0) and its host (255) joined by in-memory cables the test pumps. */
function kernelAndHost(stdin: PassThrough): { channels: HostStreamChannels; pump: () => Promise<void> } {
  const kernel = new Messenger(MESSAGES, 0);
  const host = new Messenger(MESSAGES, 255);
  for (const [from, to, toId] of [[kernel, host, 255], [host, kernel, 0]] as const) {
    const cable = new Cable(`→${toId}`);
    from.route(toId, cable);
    to.listen(cable);
  }
  new HostStreams(host, { stdin, stdout: new PassThrough(), stderr: new PassThrough() });
  const pump = async (): Promise<void> => {
    for (let quiet = 0; quiet < 3;) {
      const moved = kernel.poll(1 << 20) + host.poll(1 << 20);
      quiet = moved === 0 ? quiet + 1 : 0;
      await new Promise((resolve) => setImmediate(resolve)); // the host's stream events
    }
  };
  return { channels: new HostStreamChannels(kernel, 255), pump };
}

test('handing on an output end leaves the kernel waiting for input (a reader of stdin beside a moved writer)', async () => {
  // A process reads stdin while another process of the same kernel, with bytes of stdout still in
  // flight, moves away: the host must forget only the handed-on stream, or this kernel's reader
  // never hears of stdin again (the pipe-migration stress scenario hung so).
  const stdin = new PassThrough();
  const { channels, pump } = kernelAndHost(stdin);
  const input = new HostInput(channels.acquire(255, 0));
  const output = new HostOutput(channels.acquire(255, 1));
  let woken = 0;
  const cancel = input.pollable.watch(() => woken++);
  assert.equal(input.read(new Uint8Array(8), 0, 8), BLOCKED);
  output.write(new Uint8Array(5), 0, 5);
  // Handed on with those bytes still in flight, so the host is asked (stream_handoff).
  let handed: Error | null | undefined;
  output.handOff((error) => (handed = error));
  await pump();
  assert.equal(handed, null);
  stdin.end('late input');
  await pump();
  cancel();
  assert.ok(woken > 0, 'the reader was woken');
  const buf = new Uint8Array(64);
  const n = input.read(buf, 0, buf.length);
  assert.equal(new TextDecoder().decode(buf.subarray(0, n as number)), 'late input');
});
