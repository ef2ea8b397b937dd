/**
 * Target: garbage and half-open connections on a node's control socket. Random bytes, random
 * JSON requests (every op but shutdown, with fields of any type), lines cut short and left open,
 * connections half-closed; then the node answers a real request (ping, ps).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ControlServer } from '../../src/node/control-server.js';
import { controlRequest } from '../../src/node/control-client.js';
import { Counts, fuzzProperty, type FuzzBudget, type FuzzReport } from './harness.js';
import { bootFuzzNode, LogTail } from './node.js';

const CASE_MS = 15_000;
/** Every op the server knows but shutdown (obeyed by design), and some it does not. */
const OPS = ['ping', 'ps', 'kernels', 'kill', 'migrate', 'run', 'checkpoint', 'restore', '', 'PING', 'x'];
const FIELDS = ['pid', 'signal', 'kernel', 'module', 'args', 'env', 'dirs', 'on', 'file', 'name', 'detach', 'stop', 'input', 'data'];

export type Connection =
  | { kind: 'bytes'; bytes: Uint8Array; end: boolean }
  | { kind: 'request'; request: Record<string, unknown>; cut: number; end: boolean };

const request = fc.record({ op: fc.constantFrom(...OPS) }).chain((r) =>
  fc.dictionary(fc.constantFrom(...FIELDS), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }).map((fields) => ({ ...fields, ...r })),
);

const connection: fc.Arbitrary<Connection> = fc.oneof(
  fc.record({ kind: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 256 }), end: fc.boolean() }),
  // cut: 0 sends the whole line; otherwise only that many bytes of it, and no newline.
  fc.record({ kind: fc.constant('request' as const), request, cut: fc.nat({ max: 40 }), end: fc.boolean() }),
);

function send(path: string, c: Connection): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.on('error', () => undefined); // the node may close a connection that sent garbage
    socket.resume();
    socket.once('connect', () => {
      const line = c.kind === 'bytes' ? Buffer.from(c.bytes) : Buffer.from(`${JSON.stringify(c.request)}\n`);
      const bytes = c.kind === 'request' && c.cut > 0 ? line.subarray(0, Math.min(c.cut, line.length - 1)) : line;
      if (c.end) socket.end(bytes);
      else socket.write(bytes);
      resolve(socket);
    });
    socket.once('close', () => resolve(socket));
  });
}

export async function fuzzControl(budget: FuzzBudget): Promise<FuzzReport> {
  const logs = new LogTail();
  const node = await bootFuzzNode(1, logs);
  const dir = mkdtempSync(join(tmpdir(), 'popcorn-fuzz-control-'));
  const path = join(dir, 'control.sock');
  const server = await ControlServer.listen(node, path, { shutdown: async () => undefined, log: logs.log });
  const counts = new Counts();
  try {
    return await fuzzProperty('control', budget, fc.array(connection, { minLength: 1, maxLength: 8 }), CASE_MS, async (connections) => {
      const open = await Promise.all(connections.map((c) => send(path, c)));
      try {
        const pong = await controlRequest({ op: 'ping' }, path);
        if (pong.kernels !== 1) throw new Error(`ping answered ${JSON.stringify(pong)}`);
        await controlRequest({ op: 'ps' }, path);
        counts.add('connections', connections.length);
      } finally {
        for (const socket of open) socket.destroy();
      }
    }, counts);
  } finally {
    server.close();
    await node.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
}
