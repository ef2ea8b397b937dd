/**
 * The cluster: nodes (one per machine, or several on one) joined into one system image. Every
 * pair of nodes has one TLS link; the hosts relay frames between their kernels' rings and these
 * links, so kernel code never knows a peer is on another machine (src/msg/messenger.ts routes by
 * the node part of an address).
 *
 * Security: TLS 1.2 with a pre-shared key (ECDHE-PSK-CHACHA20-POLY1305: forward secrecy, and
 * both sides prove they hold the key before a byte of ours flows). The key is derived from the
 * cluster's secret file; a peer without it fails the handshake, which is logged with its address.
 * The server listens on exactly the address it was given.
 *
 * Joining: a node with --join connects to that member and sends a `hello` line (JSON); the
 * member answers `welcome` with a node number for it (one more than any it knows: numbers are
 * not reused, so PIDs of a lost node's processes never come back) and every member it knows. The
 * newcomer boots its kernels with that number, then connects to each other member with its
 * number. Versions must match: kernels of one cluster speak one protocol and run one
 * instrumentation. After the handshake the socket carries length-prefixed frames (tcp-link.ts).
 *
 * Failures: every HEARTBEAT_MS each host sends node_heartbeat to every member; a member silent
 * (no frame at all, heartbeat or other) for LOST_AFTER_MS, or whose link closes (a killed node's
 * OS closes its sockets at once), is lost: its link is closed, requests waiting on it fail
 * (Messenger.linkDown), and the node is told (ClusterEvents.lost). A lost node may join again,
 * as a new node. Closing never waits for a peer.
 */

import * as tls from 'node:tls';
import { createHash } from 'node:crypto';
import type { Messenger } from '../msg/messenger.js';
import { hostOf, type EndpointId } from '../msg/address.js';
import { attachTcp, type TcpLink } from '../msg/tcp-link.js';
import { PROTOCOL_VERSION, type Protocol } from '../protocol.js';
import { INSTRUMENTATION_VERSION } from '../wasm/abi.js';

const HEARTBEAT_MS = 500;
const LOST_AFTER_MS = 2_000;
/** A handshake line longer than this, or slower than HANDSHAKE_MS, is not a popcorn node's. */
const MAX_LINE_BYTES = 64 * 1024;
const HANDSHAKE_MS = 5_000;
/** Node numbers fit 7 bits of a PID (src/kernel/pids.ts). */
const MAX_NODE = 127;
/** The identity a node gives with its key, and the TLS settings of every cluster link. */
export const PSK_IDENTITY = 'popcorn-ts';
export const TLS_OPTIONS = { ciphers: 'ECDHE-PSK-CHACHA20-POLY1305', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;

export interface Address {
  host: string;
  port: number;
}

export interface ClusterOptions {
  /** Where this node accepts other nodes: exactly this address. */
  listen: Address;
  /** A member to join through; without it this node founds the cluster, as node 0. */
  join?: Address;
  /** The shared secret (the contents of the secret file). */
  secret: Uint8Array;
}

/** A node as the others know it. */
export interface Member {
  node: number;
  /** Its listen address, "host:port". */
  listen: string;
  kernels: number;
}

/** A link to another node as observers see it (metrics, the dashboard). */
export interface LinkState {
  node: number;
  listen: string;
  /** Since its last heartbeat. */
  heartbeatAgeMs: number;
}

/** What the cluster tells its node. */
export interface ClusterEvents {
  log(text: string): void;
  /** Frames arrived from a link (the node's driver flushes what they queued for the rings). */
  delivered(): void;
  /** A node joined or left: `members` are the others, this node excluded. */
  changed(members: Member[]): void;
  /** A node is gone (after changed()). */
  lost(node: number, reason: string): void;
}

// ---- the handshake, one JSON line each way ----

interface Hello {
  popcorn: 'hello';
  protocol: number;
  instrumentation: number;
  /** null: give me a number (joining); else the number the member I joined through gave me. */
  node: number | null;
  listen: string;
  kernels: number;
}

/** `node`: the joiner's number; `member`: the answering node; `members`: the others it knows. */
type Answer = { popcorn: 'welcome'; node: number; member: Member; members: Member[] } | { popcorn: 'refused'; reason: string };

/** Why this node could not join, or a peer was refused. */
export class ClusterError extends Error {
  override readonly name = 'ClusterError';
}

interface Peer {
  member: Member;
  link: TcpLink;
  heardAt: number;
}

export class Cluster {
  /** This node's number: 0 until admit() (a founder stays 0). */
  node = 0;
  private readonly key: Buffer;
  private readonly peers = new Map<number, Peer>();
  /** The highest node number this node has seen: the next newcomer gets one more. */
  private highest = 0;
  private server: tls.Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private messenger: Messenger<Protocol> | undefined;
  private kernels = 0;
  /** The link to the member admit() joined through, until start() attaches it. */
  private seed: { socket: tls.TLSSocket; rest: Buffer; member: Member; members: Member[] } | undefined;
  private closed = false;
  /** Links to other nodes that went down since boot. */
  linksLost = 0;

  private events: ClusterEvents = { log: () => undefined, delivered: () => undefined, changed: () => undefined, lost: () => undefined };

  constructor(private readonly options: ClusterOptions) {
    if (options.secret.length === 0) throw new ClusterError('the cluster secret is empty');
    this.key = clusterKey(options.secret);
  }

  /** This node's listen address as members know it. */
  get address(): string {
    return `${this.options.listen.host}:${this.options.listen.port}`;
  }

  /** The other nodes, by number. */
  get members(): Member[] {
    return [...this.peers.values()].map((p) => p.member).sort((a, b) => a.node - b.node);
  }

  /** The links up now, with the age of each one's last heartbeat. */
  links(): LinkState[] {
    const now = performance.now();
    return [...this.peers.values()].map((p) => ({ node: p.member.node, listen: p.member.listen, heartbeatAgeMs: now - p.heardAt })).sort((a, b) => a.node - b.node);
  }

  /**
   * Get a node number before the kernels boot (their addresses carry it): 0 for a founder, else
   * from the member --join names, whose link start() then attaches.
   */
  async admit(kernels: number): Promise<number> {
    this.kernels = kernels;
    const join = this.options.join;
    if (join === undefined) return this.node;
    const { socket, answer, rest } = await this.handshake(join, null);
    this.node = answer.node;
    this.highest = Math.max(answer.node, answer.member.node, ...answer.members.map((m) => m.node));
    this.seed = { socket, rest, member: answer.member, members: answer.members };
    return this.node;
  }

  /**
   * The node's messenger exists: attach the link admit() opened, connect to every other member,
   * and listen for newcomers. Rejects (having closed everything) if a member cannot be reached.
   */
  async start(messenger: Messenger<Protocol>, events: ClusterEvents): Promise<void> {
    this.messenger = messenger;
    this.events = events;
    messenger.on('node_heartbeat', (msg) => {
      const peer = this.peers.get(msg.node);
      if (peer !== undefined) peer.heardAt = performance.now();
    });
    try {
      await this.listen();
      const seed = this.seed;
      this.seed = undefined;
      if (seed !== undefined) {
        this.attach(seed.socket, seed.rest, seed.member);
        // Beat from the first link on: the member joined through counts this node lost after
        // LOST_AFTER_MS of silence, and the handshakes with the other members can take longer
        // than that (a lost SYN alone costs a second).
        this.startBeating();
        for (const member of seed.members) {
          const { socket, rest } = await this.handshake(parseAddress(member.listen), this.node);
          this.attach(socket, rest, member);
        }
      }
    } catch (error) {
      this.close();
      throw error;
    }
    this.startBeating();
  }

  private startBeating(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  /** Close every link and stop listening; never waits for a peer. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.server?.close();
    this.seed?.socket.destroy();
    for (const peer of [...this.peers.values()]) peer.link.close('this node is shutting down');
  }

  // ---- joining ----

  /** Connect to `to`, prove the key, say hello; resolves with the welcome. */
  private handshake(to: Address, node: number | null): Promise<{ socket: tls.TLSSocket; answer: Extract<Answer, { popcorn: 'welcome' }>; rest: Buffer }> {
    return new Promise((resolve, reject) => {
      const where = `${to.host}:${to.port}`;
      const socket = tls.connect({
        ...TLS_OPTIONS,
        host: to.host,
        port: to.port,
        pskCallback: () => ({ psk: this.key, identity: PSK_IDENTITY }),
        // The key authenticates the peer; there are no certificates to check.
        checkServerIdentity: () => undefined,
      });
      const fail = (why: string): void => {
        socket.destroy();
        reject(new ClusterError(`cannot join ${where}: ${why}`));
      };
      socket.once('error', (error) => fail(tlsReason(error)));
      socket.once('secureConnect', () => {
        const hello: Hello = { popcorn: 'hello', protocol: PROTOCOL_VERSION, instrumentation: INSTRUMENTATION_VERSION, node, listen: this.address, kernels: this.kernels };
        socket.write(`${JSON.stringify(hello)}\n`);
        readLine(socket).then(({ line, rest }) => {
          const answer = parseAnswer(line);
          if (answer === undefined) fail('it did not answer as a popcorn node');
          else if (answer.popcorn === 'refused') fail(`refused: ${answer.reason}`);
          else {
            socket.removeAllListeners('error');
            resolve({ socket, answer, rest });
          }
        }, (error: Error) => fail(error.message));
      });
    });
  }

  /** Accept newcomers and members on exactly the configured address. */
  private listen(): Promise<void> {
    const { host, port } = this.options.listen;
    const server = tls.createServer({
      ...TLS_OPTIONS,
      pskCallback: (_socket, identity) => (identity === PSK_IDENTITY ? this.key : null),
    });
    this.server = server;
    server.on('secureConnection', (socket) => this.welcome(socket));
    server.on('tlsClientError', (error, socket) => {
      this.events.log(`refused a connection from ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}: ${tlsReason(error)}`);
    });
    return new Promise((resolve, reject) => {
      server.once('error', (error) => reject(new ClusterError(`cannot listen on ${host}:${port}: ${error.message}`)));
      server.listen(port, host, () => {
        server.removeAllListeners('error');
        server.on('error', (error) => this.events.log(`cluster listener: ${error.message}`));
        resolve();
      });
    });
  }

  /** A peer proved the key: read its hello, answer, and link it (or refuse it). */
  private welcome(socket: tls.TLSSocket): void {
    const from = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const refuse = (reason: string): void => {
      this.events.log(`refused node at ${from}: ${reason}`);
      socket.end(`${JSON.stringify({ popcorn: 'refused', reason })}\n`);
      socket.destroySoon();
    };
    socket.on('error', () => undefined); // a peer that vanishes mid-handshake is dropped below
    readLine(socket).then(({ line, rest }) => {
      const hello = parseHello(line);
      if (hello === undefined) return refuse('it did not say hello as a popcorn node');
      if (hello.protocol !== PROTOCOL_VERSION || hello.instrumentation !== INSTRUMENTATION_VERSION) {
        return refuse(`it runs protocol ${hello.protocol}, instrumentation ${hello.instrumentation}; this node runs ${PROTOCOL_VERSION}, ${INSTRUMENTATION_VERSION}`);
      }
      if (this.closed || this.messenger === undefined) return refuse('this node is not ready');
      const node = hello.node ?? this.highest + 1;
      if (node > MAX_NODE) return refuse(`the cluster has no node number left (at most ${MAX_NODE + 1} nodes)`);
      if (node === this.node || this.peers.has(node)) return refuse(`node ${node} is already a member`);
      this.highest = Math.max(this.highest, node);
      const me: Member = { node: this.node, listen: this.address, kernels: this.kernels };
      const answer: Answer = { popcorn: 'welcome', node, member: me, members: this.members };
      socket.write(`${JSON.stringify(answer)}\n`);
      socket.removeAllListeners('error');
      this.attach(socket, rest, { node, listen: hello.listen, kernels: hello.kernels });
      this.events.log(`node ${node} (${hello.listen}, ${hello.kernels} kernels) joined`);
      return undefined;
    }, (error: Error) => refuse(error.message));
  }

  /** The handshake is done: frames flow on `socket` to and from `member`. */
  private attach(socket: tls.TLSSocket, rest: Buffer, member: Member): void {
    const messenger = this.messenger as Messenger<Protocol>;
    if (rest.length > 0) socket.unshift(rest);
    const link = attachTcp(messenger, socket, {
      name: `tls n${member.node} ${member.listen}`,
      afterDeliver: () => {
        this.heard(member.node, link);
        this.events.delivered();
      },
      onDown: (reason) => this.dropped(member.node, link, reason),
    });
    messenger.routeNode(member.node, link);
    socket.resume(); // readLine paused it: a 'data' listener alone does not restart a paused stream
    this.peers.set(member.node, { member, link, heardAt: performance.now() });
    this.events.changed(this.members);
  }

  // ---- liveness ----

  /**
   * Any frame from a peer shows it is alive, not only its heartbeat: behind a big transfer on a
   * slow link (a process's memory on its way here) the heartbeat waits its turn in the link, and
   * the peer would be declared lost while its bytes are still arriving.
   */
  private heard(node: number, link: TcpLink): void {
    const peer = this.peers.get(node);
    if (peer?.link === link) peer.heardAt = performance.now();
  }

  private beat(): void {
    const now = performance.now();
    for (const [node, peer] of this.peers) {
      if (now - peer.heardAt > LOST_AFTER_MS) {
        peer.link.close(`no heartbeat for ${LOST_AFTER_MS / 1000} s`);
        continue;
      }
      (this.messenger as Messenger<Protocol>).send(hostOf(node) as EndpointId, 'node_heartbeat', { node: this.node });
    }
  }

  /** A link went down: its node is lost (unless the link had already been replaced). */
  private dropped(node: number, link: TcpLink, reason: string): void {
    if (this.peers.get(node)?.link !== link) return;
    this.peers.delete(node);
    if (this.closed) return;
    this.linksLost++;
    this.events.log(`node ${node} lost: ${reason}`);
    this.events.changed(this.members);
    this.events.lost(node, reason);
  }
}

/** The TLS pre-shared key of a cluster whose secret is `secret`. */
export function clusterKey(secret: Uint8Array): Buffer {
  return createHash('sha256').update('popcorn-ts cluster key\0').update(secret).digest();
}

/** "host:port" → Address; throws ClusterError for anything else. */
export function parseAddress(text: string): Address {
  const colon = text.lastIndexOf(':');
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(text.slice(colon + 1));
  if (colon <= 0 || host === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ClusterError(`${text} is not HOST:PORT`);
  }
  return { host, port };
}

/** One line from a fresh socket, and what came after it. */
function readLine(socket: tls.TLSSocket): Promise<{ line: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (error: Error | null, line = '', rest: Buffer = Buffer.alloc(0)): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (error === null) resolve({ line, rest });
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      const all = Buffer.concat(chunks);
      const nl = all.indexOf(0x0a);
      if (nl >= 0) done(null, all.subarray(0, nl).toString('utf8'), all.subarray(nl + 1));
      else if (size > MAX_LINE_BYTES) done(new Error(`its handshake line is over ${MAX_LINE_BYTES} bytes`));
    };
    const onClose = (): void => done(new Error('it closed the connection during the handshake'));
    const timer = setTimeout(() => done(new Error(`no handshake within ${HANDSHAKE_MS / 1000} s`)), HANDSHAKE_MS);
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function parseHello(line: string): Hello | undefined {
  const h = parseJson(line);
  if (h?.['popcorn'] !== 'hello') return undefined;
  const { protocol, instrumentation, node, listen, kernels } = h;
  const count = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0;
  if (!count(protocol) || !count(instrumentation) || !count(kernels) || (kernels as number) > 254) return undefined;
  if (node !== null && !count(node)) return undefined;
  if (typeof listen !== 'string') return undefined;
  try {
    parseAddress(listen);
  } catch {
    return undefined;
  }
  return h as unknown as Hello;
}

function parseAnswer(line: string): Answer | undefined {
  const a = parseJson(line);
  if (a?.['popcorn'] === 'refused' && typeof a['reason'] === 'string') return a as unknown as Answer;
  if (a?.['popcorn'] !== 'welcome' || !Number.isInteger(a['node']) || !isMember(a['member']) || !Array.isArray(a['members'])) return undefined;
  return (a['members'] as unknown[]).every(isMember) ? (a as unknown as Answer) : undefined;
}

function isMember(m: unknown): boolean {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  const count = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0;
  return count(r['node']) && (r['node'] as number) <= MAX_NODE && typeof r['listen'] === 'string' && count(r['kernels']) && (r['kernels'] as number) <= 254;
}

/** What a failed TLS handshake most likely means, for the log and the joiner. */
function tlsReason(error: Error): string {
  const first = error.message.split('\n')[0] ?? error.message;
  if (/bad record mac|decrypt|cipher operation failed|psk/i.test(first)) return `TLS handshake failed: wrong secret, or not a popcorn node (${first})`;
  return first;
}
