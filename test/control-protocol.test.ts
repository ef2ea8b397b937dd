/**
 * The control protocol, declared once (src/node/control-protocol.ts): requests are validated on
 * arrival, with their defaults filled in, and a malformed one is refused with a usage error that
 * names what is wrong — by the parser, and by a live node over its socket.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ControlError } from '../src/node/control-protocol.js';
import { parseControlRequest, parseSessionInput } from '../src/node/control-requests.js';
import { ControlServer } from '../src/node/control-server.js';
import { PopcornNode } from '../src/node/node.js';

function refusal(msg: unknown): string {
  try {
    parseControlRequest(msg);
  } catch (error) {
    assert.ok(error instanceof ControlError && error.usage, String(error));
    return error.message;
  }
  assert.fail(`accepted ${JSON.stringify(msg)}`);
}

test('valid requests come out typed, with their defaults', () => {
  assert.deepEqual(parseControlRequest({ op: 'kill', pid: 1024 }), { op: 'kill', pid: 1024, signal: 15 });
  assert.deepEqual(parseControlRequest({ op: 'run', module: '/m.wasm' }), { op: 'run', module: '/m.wasm', args: [], env: [], dirs: [], detach: false });
  assert.deepEqual(parseControlRequest({ op: 'trace', status: true }), { op: 'trace', seconds: 5, pid: 0, status: true });
  assert.deepEqual(parseControlRequest({ op: 'checkpoint', pid: 7, file: '/tmp/c' }), { op: 'checkpoint', pid: 7, file: '/tmp/c', stop: false });
  assert.deepEqual(parseControlRequest({ op: 'ps', extra: 'ignored' }), { op: 'ps' });
});

test('malformed requests are refused with what is wrong', () => {
  assert.match(refusal([1, 2]), /a request must be a JSON object/);
  assert.match(refusal(null), /a request must be a JSON object/);
  assert.match(refusal({ pid: 1 }), /unknown request without an op/);
  assert.match(refusal({ op: 'PING' }), /unknown request "PING"/);
  assert.match(refusal({ op: 'toString' }), /unknown request "toString"/);
  assert.match(refusal({ op: 'kill', pid: '12' }), /invalid kill request: pid: .*number/);
  assert.match(refusal({ op: 'kill', pid: 0 }), /invalid kill request: pid/);
  assert.match(refusal({ op: 'kill', pid: 5, signal: 64 }), /invalid kill request: signal/);
  assert.match(refusal({ op: 'migrate', pid: 5, kernel: -1 }), /invalid migrate request: kernel/);
  assert.match(refusal({ op: 'migrate', pid: 5 }), /invalid migrate request: kernel/);
  assert.match(refusal({ op: 'checkpoint', pid: 5, file: 'relative' }), /invalid checkpoint request: file: must be an absolute path/);
  assert.match(refusal({ op: 'run', module: '/m.wasm', args: [1] }), /invalid run request: args\.0/);
  assert.match(refusal({ op: 'run', module: '/m.wasm', dirs: [{ host: '/a' }] }), /invalid run request: dirs\.0\.guest/);
  assert.match(refusal({ op: 'trace', seconds: 0 }), /invalid trace request: seconds/);
});

test("a session's input: stdin as base64, eof, a signal; anything else is named", () => {
  assert.deepEqual(parseSessionInput({ op: 'stdin', data: 'aGk=' }), { input: { op: 'stdin', data: 'aGk=' } });
  assert.deepEqual(parseSessionInput({ op: 'signal', signal: 2 }), { input: { op: 'signal', signal: 2 } });
  assert.ok('why' in parseSessionInput({ op: 'stdin', data: 'not base64!' }));
  assert.ok('why' in parseSessionInput({ op: 'signal', signal: 0 }));
  assert.ok('why' in parseSessionInput({ op: 'exec' }));
});

/** Send `line` on a fresh connection; the node's one-line answer. */
function ask(path: string, line: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(JSON.parse(text) as Record<string, unknown>));
    socket.write(`${line}\n`);
  });
}

test('a live node answers malformed requests with a usage refusal, and serves the next one', async () => {
  const node = await PopcornNode.boot({ kernels: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'popcorn-protocol-'));
  const path = join(dir, 'control.sock');
  const logs: string[] = [];
  const server = await ControlServer.listen(node, path, { shutdown: async () => undefined, log: (text) => logs.push(text) });
  try {
    assert.deepEqual(await ask(path, '"ps"'), { ok: false, error: 'a request must be a JSON object', usage: true });
    assert.deepEqual(await ask(path, '{"op":"reboot"}'), { ok: false, error: 'unknown request "reboot"', usage: true });
    const badSignal = await ask(path, '{"op":"kill","pid":1024,"signal":"TERM"}');
    assert.equal(badSignal.usage, true);
    assert.match(String(badSignal.error), /^invalid kill request: signal: /);
    const noKernel = await ask(path, '{"op":"migrate","pid":1024,"kernel":3}');
    assert.deepEqual(noKernel, { ok: false, error: 'no kernel 3: this node has kernels 0–0', usage: true });
    const noProcess = await ask(path, '{"op":"kill","pid":4242}');
    assert.deepEqual(noProcess, { ok: false, error: 'no process with pid 4242' });
    const pong = await ask(path, '{"op":"ping"}');
    assert.equal(pong.ok, true);
    assert.equal(pong.kernels, 1);
  } finally {
    server.close();
    await node.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});
