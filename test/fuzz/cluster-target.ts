/**
 * Target: garbage and truncated cluster frames. A node founds a cluster; fake peers connect to
 * its listener: plain TCP garbage, TLS with a wrong key, garbage in place of the hello, and peers
 * that join properly and then send random length prefixes and frames, cut off anywhere. Each is
 * refused or its link closed, counted; the node's kernels answer, and a proper newcomer is
 * still welcomed.
 */
import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';
import * as tls from 'node:tls';
import fc from 'fast-check';
import { PSK_IDENTITY, TLS_OPTIONS, clusterKey } from '../../src/node/cluster.js';
import type { PopcornNode } from '../../src/node/node.js';
import { MESSAGES, PROTOCOL_VERSION } from '../../src/protocol.js';
import { INSTRUMENTATION_VERSION } from '../../src/wasm/abi.js';
import { FRAME_HEADER_BYTES, writeHeader } from '../../src/msg/frame.js';
import { Counts, concat, fuzzProperty, type FuzzBudget, type FuzzReport } from './harness.js';
import { bootFuzzNode, LogTail } from './node.js';
import { freePort } from '../cluster-node.js';

const CASE_MS = 15_000;
/** The node number fake peers claim, so the fuzz does not use up the cluster's 127. */
const FAKE_NODE = 100;
const OBEYED = new Set<number>([MESSAGES.shutdown.id]);
const TYPES = Object.values(MESSAGES).map((m) => m.id).filter((id) => !OBEYED.has(id));

export type Peer =
  | { kind: 'tcp'; bytes: Uint8Array }
  | { kind: 'wrong key' }
  | { kind: 'hello'; line: string }
  | { kind: 'frames'; frames: { prefix: number | null; type: number; dst: number; payload: Uint8Array }[]; cut: number };

const frame = fc.record({
  // null: the frame's true length; else a length prefix of any value.
  prefix: fc.option(fc.oneof(fc.constantFrom(0, 3, 15, 16, 2 ** 20 + 1, 2 ** 31, 2 ** 32 - 1), fc.nat({ max: 200 }))),
  type: fc.oneof(fc.constantFrom(...TYPES), fc.integer({ min: 0, max: 0xffff })),
  dst: fc.constantFrom(0, 1, 0xff, 0x100, 0x6400),
  payload: fc.uint8Array({ maxLength: 64 }),
});

const peer: fc.Arbitrary<Peer> = fc.oneof(
  fc.record({ kind: fc.constant('tcp' as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ kind: fc.constant('wrong key' as const) }),
  fc.record({ kind: fc.constant('hello' as const), line: fc.oneof(fc.string({ maxLength: 80 }), fc.json({ maxDepth: 2 })) }),
  fc.record({ kind: fc.constant('frames' as const), frames: fc.array(frame, { minLength: 1, maxLength: 8 }), cut: fc.nat() }),
);

function encodeFrames(frames: Extract<Peer, { kind: 'frames' }>['frames']): Uint8Array {
  return concat(...frames.map((f) => {
    const header = new Uint8Array(FRAME_HEADER_BYTES);
    writeHeader(new DataView(header.buffer), 0, { type: f.type, flags: 0, src: FAKE_NODE << 8, dst: f.dst, request: 0 });
    const body = concat(header, f.payload);
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setUint32(0, f.prefix ?? body.length, true);
    return concat(prefix, body);
  }));
}

/** Connect with `key`; resolves with the socket once the handshake is done, or null if it failed. */
function connectTls(port: number, key: Buffer): Promise<tls.TLSSocket | null> {
  return new Promise((resolve) => {
    const socket = tls.connect({ ...TLS_OPTIONS, host: '127.0.0.1', port, pskCallback: () => ({ psk: key, identity: PSK_IDENTITY }), checkServerIdentity: () => undefined });
    socket.on('error', () => resolve(null));
    socket.once('secureConnect', () => resolve(socket));
  });
}

/** Reads one line (the node's answer to a hello), or '' if the connection closes first. */
function answerLine(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')));
    });
    socket.once('close', () => resolve(text));
  });
}

const hello = (): string => `${JSON.stringify({ popcorn: 'hello', protocol: PROTOCOL_VERSION, instrumentation: INSTRUMENTATION_VERSION, node: FAKE_NODE, listen: '127.0.0.1:1', kernels: 1 })}\n`;

async function visit(port: number, key: Buffer, p: Peer, counts: Counts): Promise<void> {
  if (p.kind === 'tcp') {
    const socket = createConnection(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => {
      socket.once('connect', () => socket.end(Buffer.from(p.bytes)));
      socket.once('close', () => resolve());
      socket.resume();
    });
    return;
  }
  const socket = await connectTls(port, p.kind === 'wrong key' ? randomBytes(32) : key);
  if (socket === null) {
    counts.add('handshakes refused');
    return;
  }
  const answer = answerLine(socket);
  if (p.kind === 'hello') socket.write(`${p.line.replaceAll('\n', ' ')}\n`);
  else if (p.kind === 'frames') socket.write(hello());
  if (p.kind !== 'wrong key' && /"welcome"/.test(await answer)) {
    counts.add('joined');
    if (p.kind === 'frames') {
      const bytes = encodeFrames(p.frames);
      socket.write(bytes.subarray(0, p.cut % (bytes.length + 1)));
    }
  }
  await new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    socket.end();
  });
}

/** The fake peer is gone from the node's members (its link closed), so the next may claim its number. */
async function forgotten(node: PopcornNode): Promise<void> {
  while (node.members.some((m) => m.node === FAKE_NODE)) await new Promise((r) => setTimeout(r, 5));
}

export async function fuzzCluster(budget: FuzzBudget): Promise<FuzzReport> {
  const logs = new LogTail();
  const secret = randomBytes(32);
  const port = await freePort();
  const node = await bootFuzzNode(2, logs, { cluster: { listen: { host: '127.0.0.1', port }, secret } });
  const key = clusterKey(secret);
  const counts = new Counts();
  try {
    const report = await fuzzProperty('cluster', budget, fc.array(peer, { minLength: 1, maxLength: 4 }), CASE_MS, async (peers) => {
      for (const p of peers) {
        await visit(port, key, p, counts);
        await forgotten(node);
      }
      const infos = await node.info(5_000);
      if (infos.length !== 2) throw new Error(`${infos.length} kernels answered`);
      counts.add('peers', peers.length);
    }, counts);
    const after = await connectTls(port, key);
    if (after === null) throw new Error('a proper peer could not connect after the fuzz');
    const welcome = answerLine(after);
    after.write(hello());
    if (!/"welcome"/.test(await welcome)) throw new Error(`a proper peer was not welcomed after the fuzz\n${logs.text()}`);
    after.destroy();
    return report;
  } finally {
    await node.shutdown();
  }
}
