/**
 * The TCP transport: one link per socket between two nodes, behind the same OutLink API as a
 * ring. On the wire each frame is `[u32 little-endian length][frame]`. Node's event loop drives
 * it: received frames are pushed to a FrameSink (a Messenger's deliver) from the socket's 'data'
 * event, and sending never blocks.
 *
 * Backpressure: while the socket is below its high-water mark frames go straight to it; once
 * socket.write() returns false, frames wait in a local FIFO (already copied and length-prefixed)
 * until 'drain', when flush() moves them. Nothing is dropped while the link is up.
 *
 * Receiving accumulates chunks in a list and copies each frame out at most once, so a frame that
 * arrives in many small reads costs linear, not quadratic, time. A frame that lies within one
 * chunk is handed over as a view, without copying.
 *
 * A length prefix below the 16-byte frame header or above the hard limit means the stream is
 * garbage (or not ours): the link counts it, closes, and reports the reason through onDown. A
 * frame that is well length-prefixed but malformed inside is the messenger's business: it counts
 * and drops it, and the link keeps going.
 *
 * Authentication and the `hello` handshake belong to the node layer, above this file.
 */

import net from 'node:net';
import { FRAME_HEADER_BYTES } from './frame.js';
import type { FrameSink, OutLink } from './link.js';
import type { MessengerTransport } from './messenger.js';

/** The longest frame a TCP link sends in one piece; the messenger fragments longer messages. */
export const TCP_MAX_FRAME = 1 << 20;
/** The longest frame accepted from a peer; a longer length prefix is garbage. */
export const TCP_HARD_LIMIT = 16 << 20;
const PREFIX_BYTES = 4;

export interface TcpLinkStats {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Garbage length prefixes (each one closes the link). */
  malformed: number;
  /** Times socket.write() asked us to wait for 'drain'. */
  stalls: number;
  /** Exceptions thrown by the sink (the link survives them). */
  sinkErrors: number;
}

export interface TcpLinkOptions {
  /** For logs and LinkDownError; defaults to "tcp <remote address>:<port>". */
  name?: string;
  /** Where received frames go (usually `(b, o, l) => messenger.deliver(b, o, l)`). */
  sink: FrameSink;
  /** Called once when the link goes down: peer closed, socket error, garbage, or close(). */
  onDown?: (reason: string, link: TcpLink) => void;
  /** Longest frame sent whole (default TCP_MAX_FRAME). */
  maxFrame?: number;
  /** Longest frame accepted (default TCP_HARD_LIMIT, at least maxFrame). */
  hardLimit?: number;
  /** Where an exception thrown by the sink is reported (default console.error). */
  onError?: (error: unknown) => void;
}

export class TcpLink implements OutLink {
  readonly name: string;
  readonly maxFrame: number;
  readonly hardLimit: number;
  readonly stats: TcpLinkStats = {
    framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, malformed: 0, stalls: 0, sinkErrors: 0,
  };
  /** Why the link went down, once it has. */
  downReason: string | undefined;

  private isUp = true;
  /** True after socket.write() returned false, until 'drain'. */
  private blocked = false;
  private readonly backlog: (Uint8Array | undefined)[] = [];
  private backlogHead = 0;
  private corked = false;

  // Receive state: a list of unconsumed chunks, the offset into the first, the bytes in all.
  private readonly chunks: Buffer[] = [];
  private chunkOffset = 0;
  private buffered = 0;
  /** Length of the frame being received, or -1 while its prefix is incomplete. */
  private expecting = -1;

  private readonly sink: FrameSink;
  private readonly onDown: ((reason: string, link: TcpLink) => void) | undefined;
  private readonly onError: (error: unknown) => void;

  constructor(readonly socket: net.Socket, options: TcpLinkOptions) {
    this.name = options.name ?? `tcp ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.maxFrame = options.maxFrame ?? TCP_MAX_FRAME;
    this.hardLimit = Math.max(options.hardLimit ?? TCP_HARD_LIMIT, this.maxFrame);
    if (this.maxFrame < FRAME_HEADER_BYTES + 64) throw new RangeError(`${this.name}: maxFrame ${this.maxFrame} is too small`);
    this.sink = options.sink;
    this.onDown = options.onDown;
    this.onError = options.onError ?? ((error) => console.error(`[${this.name}] sink failed:`, error));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('drain', () => {
      this.blocked = false;
      this.flush();
    });
    socket.on('error', (error: Error) => this.down(`socket error: ${error.message}`));
    socket.on('end', () => this.down('peer closed the connection'));
    socket.on('close', () => this.down('connection closed'));
    if (socket.destroyed) this.down('socket already closed');
  }

  get up(): boolean {
    return this.isUp;
  }

  /** Frames waiting locally for the socket to drain. */
  get queued(): number {
    return this.backlog.length - this.backlogHead;
  }

  // ---- sending ----

  send(frame: Uint8Array): void {
    if (!this.isUp) return;
    if (frame.length > this.maxFrame) throw new RangeError(`${this.name}: frame of ${frame.length} B exceeds ${this.maxFrame} B`);
    const packet = Buffer.allocUnsafe(PREFIX_BYTES + frame.length);
    packet.writeUInt32LE(frame.length, 0);
    packet.set(frame, PREFIX_BYTES);
    if (this.blocked || this.queued > 0) this.backlog.push(packet);
    else this.write(packet);
  }

  flush(): boolean {
    if (!this.isUp) return true;
    while (!this.blocked && this.backlogHead < this.backlog.length) {
      const packet = this.backlog[this.backlogHead] as Uint8Array;
      this.backlog[this.backlogHead++] = undefined; // let it go as soon as the socket has it
      this.write(packet);
    }
    if (this.backlogHead === this.backlog.length) {
      this.backlog.length = 0;
      this.backlogHead = 0;
      return true;
    }
    if (this.backlogHead > 1024 && this.backlogHead * 2 > this.backlog.length) {
      this.backlog.splice(0, this.backlogHead);
      this.backlogHead = 0;
    }
    return false;
  }

  private write(packet: Uint8Array): void {
    // Frames sent in one turn of the event loop leave in one writev: cork now, uncork next tick.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.stats.framesOut++;
    this.stats.bytesOut += packet.length;
    if (!this.socket.write(packet)) {
      this.blocked = true;
      this.stats.stalls++;
    }
  }

  // ---- receiving ----

  private received(chunk: Buffer): void {
    if (!this.isUp) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.isUp) {
      if (this.expecting < 0) {
        if (this.buffered < PREFIX_BYTES) return;
        const length = this.readPrefix();
        if (length < FRAME_HEADER_BYTES || length > this.hardLimit) {
          this.stats.malformed++;
          this.close(`malformed length prefix ${length} (a frame is ${FRAME_HEADER_BYTES} to ${this.hardLimit} B)`);
          return;
        }
        this.expecting = length;
      }
      if (this.buffered < this.expecting) return;
      this.take(this.expecting);
      this.expecting = -1;
    }
  }

  /** Consume the 4-byte prefix, which may straddle chunks. */
  private readPrefix(): number {
    const first = this.chunks[0];
    if (first.length - this.chunkOffset < PREFIX_BYTES) return this.gather(PREFIX_BYTES).readUInt32LE(0);
    const value = first.readUInt32LE(this.chunkOffset);
    this.consume(PREFIX_BYTES);
    return value;
  }

  /** Consume one frame of `length` bytes and hand it to the sink. */
  private take(length: number): void {
    const first = this.chunks[0];
    this.stats.framesIn++;
    this.stats.bytesIn += PREFIX_BYTES + length;
    if (first.length - this.chunkOffset >= length) {
      const at = this.chunkOffset;
      this.consume(length);
      this.deliver(first, at, length);
    } else {
      const frame = this.gather(length);
      this.deliver(frame, 0, length);
    }
  }

  /** Copy the next `length` bytes out of the chunk list (each byte copied once) and consume them. */
  private gather(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.chunks[0];
      const n = Math.min(chunk.length - this.chunkOffset, length - filled);
      chunk.copy(out, filled, this.chunkOffset, this.chunkOffset + n);
      filled += n;
      this.consume(n);
    }
    return out;
  }

  /** Drop `n` bytes from the front of the chunk list (n never crosses more than the first chunk). */
  private consume(n: number): void {
    this.chunkOffset += n;
    this.buffered -= n;
    if (this.chunkOffset === this.chunks[0].length) {
      this.chunks.shift();
      this.chunkOffset = 0;
    }
  }

  private deliver(bytes: Uint8Array, offset: number, length: number): void {
    try {
      this.sink(bytes, offset, length);
    } catch (error) {
      this.stats.sinkErrors++;
      this.onError(error);
    }
  }

  // ---- going down ----

  /** Close the link (and its socket) for `reason`; onDown runs once. */
  close(reason = 'closed locally'): void {
    this.down(reason);
    this.socket.destroy();
  }

  private down(reason: string): void {
    if (!this.isUp) return;
    this.isUp = false;
    this.downReason = reason;
    this.backlog.length = 0;
    this.backlogHead = 0;
    this.chunks.length = 0;
    this.buffered = 0;
    this.socket.destroy();
    this.onDown?.(reason, this);
  }
}

// ---- helpers: wire a socket to a messenger, connect, listen ----

export interface AttachOptions {
  name?: string;
  maxFrame?: number;
  hardLimit?: number;
  /** Also told when the link goes down (after messenger.linkDown). */
  onDown?: (reason: string, link: TcpLink) => void;
  /** Called after each received frame, e.g. an AsyncDriver's kick() to flush and re-arm timers. */
  afterDeliver?: () => void;
}

/**
 * Make a TcpLink on `socket` that delivers into `messenger` and, when it goes down, calls
 * messenger.linkDown so requests waiting on it fail with LinkDownError. Routes are the caller's.
 */
export function attachTcp(messenger: MessengerTransport, socket: net.Socket, options: AttachOptions = {}): TcpLink {
  const after = options.afterDeliver;
  const link: TcpLink = new TcpLink(socket, {
    name: options.name,
    maxFrame: options.maxFrame,
    hardLimit: options.hardLimit,
    sink: after === undefined
      ? (b, o, l) => messenger.deliver(b, o, l)
      : (b, o, l) => { messenger.deliver(b, o, l); after(); },
    onDown: (reason, l) => {
      messenger.linkDown(l, reason);
      options.onDown?.(reason, l);
    },
  });
  return link;
}

/** Connect to host:port and return a link delivering into `messenger` once connected. */
export function connectTcpLink(messenger: MessengerTransport, host: string, port: number, options: AttachOptions = {}): Promise<TcpLink> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const failed = (error: Error): void => reject(error);
    socket.once('error', failed);
    socket.once('connect', () => {
      socket.off('error', failed);
      resolve(attachTcp(messenger, socket, { name: `tcp ${host}:${port}`, ...options }));
    });
  });
}

export interface TcpListener {
  readonly server: net.Server;
  /** The port bound (useful with port 0). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Listen on host:port (port 0: an ephemeral port) and attach every accepted socket to
 * `messenger`; `onLink` gets each new link, to route it (usually after a hello).
 */
export function listenTcp(
  messenger: MessengerTransport,
  host: string,
  port: number,
  onLink: (link: TcpLink) => void,
  options: AttachOptions = {},
): Promise<TcpListener> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => onLink(attachTcp(messenger, socket, options)));
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address() as net.AddressInfo;
      resolve({
        server,
        port: address.port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
