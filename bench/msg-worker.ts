/**
 * The two threads of the messaging benchmark (bench/msg.ts). Each worker waits for commands from
 * the main thread and plays side A (the one that measures) or side B (the echo / sink) of one
 * scenario. Workers live for the whole benchmark so every scenario runs on warm, JIT-compiled
 * code; each scenario's first round is a warm-up and is thrown away by the caller.
 *
 * Only side A reads the clock, so no two clocks are ever compared. Synchronous scenarios meet at a
 * shared barrier first so that neither side measures the other's start-up.
 */

import { parentPort, type MessagePort } from 'node:worker_threads';
import * as net from 'node:net';
import { Doorbell } from '../src/msg/doorbell.js';
import { RingConsumer, RingProducer, type RingShared } from '../src/msg/ring.js';
import { RingInLink, RingOutLink } from '../src/msg/shm-link.js';
import { Messenger } from '../src/msg/messenger.js';
import { MESSAGES, type Protocol } from '../src/protocol.js';
import { endpointId } from '../src/msg/address.js';
import { TcpLink } from '../src/msg/tcp-link.js';
import { FRAME_HEADER_BYTES } from '../src/msg/frame.js';
import type { FrameSink } from '../src/msg/link.js';

export type Role = 'A' | 'B';

/** What the main thread hands both workers for one round of one scenario. */
export interface Command {
  scenario: Scenario;
  role: Role;
  /** Messages (or round trips) in this round. */
  count: number;
  /** Payload bytes per message. */
  size: number;
  /** How long a waiting side spins before it sleeps on its doorbell. */
  spinNs: number;
  /** Control words: barrier, done counters, stop flag. */
  control: SharedArrayBuffer;
  /** A→B and B→A rings; their doorbells are `bellA` (A's) and `bellB` (B's). */
  ab?: RingShared;
  ba?: RingShared;
  bellA?: SharedArrayBuffer;
  bellB?: SharedArrayBuffer;
  port?: MessagePort;
  tcpPort?: number;
}

export type Scenario =
  | 'raw-rtt'
  | 'ring-rtt'
  | 'ring-stream'
  | 'messenger-rtt'
  | 'messenger-stream'
  | 'postmessage-rtt'
  | 'tcp-listen'
  | 'tcp-rtt'
  | 'tcp-stream';

/** Side A's answer: elapsed nanoseconds for the round (plus anything scenario-specific). */
export interface Outcome {
  ns: number;
  checksum?: number;
  extra?: Record<string, number>;
}

// Control words, each on its own 128-byte block (int32 index = byte offset / 4).
const BARRIER = 0;
const DONE = 32;
const STOP = 64;
/** Raw ping-pong words: A writes PING, B writes PONG. Separate blocks: no false sharing. */
const PING = 96;
const PONG = 128;
export const CONTROL_BYTES = 1024;

/** Both sides arrive before either goes on. */
function barrier(ctl: Int32Array): void {
  Atomics.add(ctl, BARRIER, 1);
  while (Atomics.load(ctl, BARRIER) < 2);
}

/** Wait until `hasWork()`: the kernel's way (Doorbell.wait: spin for `spinNs`, then sleep). */
function idle(bell: Doorbell, hasWork: () => boolean, spinNs: number): void {
  while (!bell.wait(hasWork, spinNs, 100));
}

function payload(size: number): Uint8Array {
  const p = new Uint8Array(size);
  for (let i = 0; i < size; i++) p[i] = (i * 131 + 7) & 0xff;
  return p;
}

// ---- raw SharedArrayBuffer ping-pong: the floor ----

function rawRtt(cmd: Command, ctl: Int32Array): Outcome {
  const n = cmd.count;
  Atomics.store(ctl, PING, 0);
  Atomics.store(ctl, PONG, 0);
  barrier(ctl);
  if (cmd.role === 'A') {
    const t0 = performance.now();
    for (let i = 1; i <= n; i++) {
      Atomics.store(ctl, PING, i);
      while (Atomics.load(ctl, PONG) !== i);
    }
    return { ns: (performance.now() - t0) * 1e6 };
  }
  for (let i = 1; i <= n; i++) {
    while (Atomics.load(ctl, PING) !== i);
    Atomics.store(ctl, PONG, i);
  }
  return { ns: 0 };
}

// ---- the ring API, both sides following the doorbell protocol ----

interface RingEnds {
  out: RingProducer;
  in: RingConsumer;
  bell: Doorbell;
}

function ringEnds(cmd: Command): RingEnds {
  const a = cmd.role === 'A';
  return {
    out: new RingProducer((a ? cmd.ab : cmd.ba) as RingShared),
    in: new RingConsumer((a ? cmd.ba : cmd.ab) as RingShared),
    bell: new Doorbell((a ? cmd.bellA : cmd.bellB) as SharedArrayBuffer),
  };
}

/** Send one record, waiting (spin, then doorbell) while the ring is full. */
function sendBlocking(end: RingEnds, message: Uint8Array, spinNs: number): void {
  if (end.out.trySend(message)) return;
  let sent = false;
  idle(end.bell, () => (sent = end.out.trySend(message)) || end.out.awaitSpace(message.length), spinNs);
  if (!sent) while (!end.out.trySend(message)) idle(end.bell, () => end.out.awaitSpace(message.length), spinNs);
}

function ringRtt(cmd: Command, ctl: Int32Array): Outcome {
  const end = ringEnds(cmd);
  const message = payload(cmd.size);
  let got = 0;
  let seq = 0;
  // The receiver reads the payload in place, as the Messenger's decoder does, and answers with its
  // own 64 B message carrying the same sequence number.
  const handler = (bytes: Uint8Array, offset: number, length: number): void => {
    seq = bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24);
    seq += bytes[offset + length - 1] & 0;
    got++;
  };
  const hasData = (): boolean => end.in.hasData();
  const receive = (): void => {
    while (got === 0) {
      idle(end.bell, hasData, cmd.spinNs);
      end.in.poll(handler);
    }
    got = 0;
  };
  const stamp = (i: number): void => {
    message[0] = i & 0xff;
    message[1] = (i >>> 8) & 0xff;
    message[2] = (i >>> 16) & 0xff;
    message[3] = (i >>> 24) & 0xff;
  };
  barrier(ctl);
  if (cmd.role === 'A') {
    let checksum = 0;
    const t0 = performance.now();
    for (let i = 0; i < cmd.count; i++) {
      stamp(i);
      sendBlocking(end, message, cmd.spinNs);
      receive();
      if (seq !== i) throw new Error(`ring-rtt: sent ${i}, got back ${seq}`);
      checksum += seq;
    }
    return { ns: (performance.now() - t0) * 1e6, checksum };
  }
  for (let i = 0; i < cmd.count; i++) {
    receive();
    stamp(seq);
    sendBlocking(end, message, cmd.spinNs);
  }
  return { ns: 0 };
}

/** One-way stream of `count` records of `size` bytes; B copies each one out of the ring. */
function ringStream(cmd: Command, ctl: Int32Array): Outcome {
  const end = ringEnds(cmd);
  barrier(ctl);
  if (cmd.role === 'A') {
    const message = payload(cmd.size);
    const t0 = performance.now();
    for (let i = 0; i < cmd.count; i++) {
      message[0] = i & 0xff;
      sendBlocking(end, message, cmd.spinNs);
    }
    // Done when B has taken (and copied) everything: it bumps DONE and rings our bell.
    idle(end.bell, () => Atomics.load(ctl, DONE) !== 0, cmd.spinNs);
    return { ns: (performance.now() - t0) * 1e6 };
  }
  const sink = new Uint8Array(cmd.size);
  let got = 0;
  let checksum = 0;
  // Small records are read in place (first and last byte: both ends of the record's cache lines),
  // as a decoder would; large ones are copied out, as a receiver keeping a module or page must.
  const copy = cmd.size > 256;
  const handler = (bytes: Uint8Array, offset: number, length: number): void => {
    if (copy) {
      sink.set(bytes.subarray(offset, offset + length));
      checksum += sink[0] + sink[length - 1];
    } else {
      checksum += bytes[offset] + bytes[offset + length - 1];
    }
    got++;
  };
  const hasData = (): boolean => end.in.hasData();
  while (got < cmd.count) {
    idle(end.bell, hasData, cmd.spinNs);
    end.in.poll(handler, 256);
  }
  Atomics.store(ctl, DONE, 1);
  new Doorbell(cmd.bellA as SharedArrayBuffer).ring();
  return { ns: 0, checksum };
}

// ---- the Messenger over rings: codec, frame header, wait stations, fragmentation ----

const K0 = endpointId(0, 0);
const K1 = endpointId(0, 1);

function messengerFor(cmd: Command): { m: Messenger<Protocol>; bell: Doorbell; peer: number } {
  const a = cmd.role === 'A';
  const m = new Messenger(MESSAGES, a ? K0 : K1, { onError: (e) => { throw e; } });
  const peer = a ? K1 : K0;
  m.route(peer, new RingOutLink(a ? 'ring A→B' : 'ring B→A', (a ? cmd.ab : cmd.ba) as RingShared));
  m.listen(new RingInLink(a ? 'ring B→A' : 'ring A→B', (a ? cmd.ba : cmd.ab) as RingShared));
  return { m, bell: new Doorbell((a ? cmd.bellA : cmd.bellB) as SharedArrayBuffer), peer };
}

/** B's loop: serve until A raises STOP. */
function serve(m: Messenger<Protocol>, bell: Doorbell, ctl: Int32Array, spinNs: number, until: () => boolean): void {
  const hasWork = (): boolean => m.hasInput() || Atomics.load(ctl, STOP) !== 0;
  while (!until()) {
    idle(bell, hasWork, spinNs);
    m.poll(256);
    m.flush();
  }
}

function messengerRtt(cmd: Command, ctl: Int32Array): Outcome {
  const { m, bell, peer } = messengerFor(cmd);
  const data = payload(cmd.size);
  barrier(ctl);
  if (cmd.role === 'A') {
    let replies = 0;
    let checksum = 0;
    const hasInput = (): boolean => m.hasInput();
    const t0 = performance.now();
    for (let i = 0; i < cmd.count; i++) {
      m.request(peer, 'ping', { seq: i, data }, 10_000, (error, reply) => {
        if (error !== null) throw error;
        checksum += (reply as { seq: number }).seq;
        replies++;
      });
      while (replies === i) {
        idle(bell, hasInput, cmd.spinNs);
        m.poll();
      }
    }
    const ns = (performance.now() - t0) * 1e6;
    Atomics.store(ctl, STOP, 1);
    new Doorbell(cmd.bellB as SharedArrayBuffer).ring();
    return { ns, checksum };
  }
  m.on('ping', (p, from) => m.reply(from, 'ping', p));
  serve(m, bell, ctl, cmd.spinNs, () => Atomics.load(ctl, STOP) !== 0);
  return { ns: 0 };
}

function messengerStream(cmd: Command, ctl: Int32Array): Outcome {
  const { m, bell, peer } = messengerFor(cmd);
  barrier(ctl);
  if (cmd.role === 'A') {
    const data = payload(cmd.size);
    const flushed = (): boolean => m.flush();
    const t0 = performance.now();
    for (let i = 0; i < cmd.count; i++) {
      m.send(peer, 'ping', { seq: i, data });
      // Never let more than one message wait in the link's backlog.
      while (!m.flush()) idle(bell, flushed, cmd.spinNs);
    }
    idle(bell, () => Atomics.load(ctl, DONE) !== 0, cmd.spinNs);
    return { ns: (performance.now() - t0) * 1e6, extra: { fragments_per_message: m.stats.fragmentsSent / cmd.count } };
  }
  let got = 0;
  let checksum = 0;
  m.on('ping', (p) => {
    checksum += p.data[0] + p.data[p.data.length - 1];
    got++;
  });
  serve(m, bell, ctl, cmd.spinNs, () => got >= cmd.count);
  Atomics.store(ctl, DONE, 1);
  new Doorbell(cmd.bellA as SharedArrayBuffer).ring();
  return { ns: 0, checksum };
}

// ---- MessagePort.postMessage: what a naive worker design would use ----

function postMessageRtt(cmd: Command): Promise<Outcome> {
  const port = cmd.port as MessagePort;
  const data = payload(cmd.size);
  return new Promise((resolve) => {
    let i = 0;
    if (cmd.role === 'A') {
      const t0 = performance.now();
      port.on('message', () => {
        if (++i < cmd.count) port.postMessage(data);
        else {
          port.close();
          resolve({ ns: (performance.now() - t0) * 1e6 });
        }
      });
      port.postMessage(data);
    } else {
      port.on('message', (value: Uint8Array) => {
        port.postMessage(value);
        if (++i === cmd.count) {
          port.close();
          resolve({ ns: 0 });
        }
      });
    }
  });
}

// ---- TCP over loopback, through the real transport (src/msg/tcp-link.ts) ----

let listener: net.Server | undefined;
let accepted: Promise<net.Socket> | undefined;
let link: TcpLink | undefined;
/** Each round installs its own receive handler; the link's sink forwards to it. */
let onFrame: FrameSink = () => {};

/** B: listen on an ephemeral loopback port; answers with the port. */
async function tcpListen(): Promise<Outcome> {
  const server = net.createServer();
  listener = server;
  accepted = new Promise((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { ns: 0, extra: { port: (server.address() as net.AddressInfo).port } };
}

/** The link of this side, made on first use: A connects, B takes the accepted socket. */
async function tcpLink(cmd: Command): Promise<TcpLink> {
  if (link !== undefined) return link;
  let socket: net.Socket;
  if (cmd.role === 'A') {
    socket = net.connect({ port: cmd.tcpPort as number, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  } else {
    socket = await (accepted as Promise<net.Socket>);
  }
  link = new TcpLink(socket, { name: `bench ${cmd.role}`, sink: (b, o, l) => onFrame(b, o, l), onError: (e) => { throw e; } });
  return link;
}

/**
 * Both TCP scenarios send `count` frames of `size` bytes from A. In 'tcp-rtt' B echoes each and A
 * waits for the echo before sending the next; in 'tcp-stream' A writes as fast as the socket
 * drains (TcpLink queues past the high-water mark; A waits for 'drain' then) and B answers with
 * one small frame after the last. B reads every frame's first and last byte.
 */
async function tcp(cmd: Command, ctl: Int32Array): Promise<Outcome> {
  const rtt = cmd.scenario === 'tcp-rtt';
  const l = await tcpLink(cmd);
  if (cmd.role === 'A') {
    // B must have installed this round's handler before A sends, or frames reach the last one.
    while (Atomics.load(ctl, BARRIER) === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  const frame = payload(Math.max(cmd.size, FRAME_HEADER_BYTES));
  const ack = payload(FRAME_HEADER_BYTES);
  return new Promise((resolve) => {
    let got = 0;
    if (cmd.role === 'B') {
      let checksum = 0;
      onFrame = (bytes, offset, length) => {
        checksum += bytes[offset] + bytes[offset + length - 1];
        if (rtt) l.send(bytes.subarray(offset, offset + length));
        if (++got === cmd.count) {
          if (!rtt) l.send(ack);
          resolve({ ns: 0, checksum });
        }
      };
      Atomics.store(ctl, BARRIER, 1);
      return;
    }
    const t0 = performance.now();
    const done = (): void => resolve({ ns: (performance.now() - t0) * 1e6 });
    if (rtt) {
      onFrame = () => {
        if (++got === cmd.count) done();
        else l.send(frame);
      };
      l.send(frame);
      return;
    }
    onFrame = done;
    let sent = 0;
    const pump = (): void => {
      while (sent < cmd.count) {
        l.send(frame);
        sent++;
        if (l.socket.writableNeedDrain) {
          l.socket.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

// ---- dispatch ----

async function execute(cmd: Command): Promise<Outcome> {
  const ctl = new Int32Array(cmd.control);
  switch (cmd.scenario) {
    case 'raw-rtt': return rawRtt(cmd, ctl);
    case 'ring-rtt': return ringRtt(cmd, ctl);
    case 'ring-stream': return ringStream(cmd, ctl);
    case 'messenger-rtt': return messengerRtt(cmd, ctl);
    case 'messenger-stream': return messengerStream(cmd, ctl);
    case 'postmessage-rtt': return postMessageRtt(cmd);
    case 'tcp-listen': return tcpListen();
    case 'tcp-rtt':
    case 'tcp-stream': return tcp(cmd, ctl);
  }
}

parentPort?.on('message', (cmd: Command | 'exit') => {
  if (cmd === 'exit') {
    link?.close();
    listener?.close();
    parentPort?.close();
    return;
  }
  execute(cmd).then(
    (outcome) => parentPort?.postMessage({ ok: true, outcome }),
    (error: unknown) => parentPort?.postMessage({ ok: false, error: error instanceof Error ? error.stack : String(error) }),
  );
});
