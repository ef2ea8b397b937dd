/**
 * The messaging API every kernel and host thread uses (Popcorn's pcn_kmsg): send a typed message
 * to an endpoint, register a handler per message type, make requests whose replies come back as
 * continuations. It hides the transport: a destination maps to a link (a ring, a TCP socket, or a
 * ring toward a relay), and frames not addressed to us are relayed by their header alone.
 *
 * Handlers run to completion on the owner's thread. The owner drives the messenger: poll() drains
 * the inbound rings, deliver() takes frames pushed by socket links, tick() expires requests and
 * flush() moves frames that waited for ring space.
 */

import { DecodeError, Reader, Writer } from './codec.js';
import { FRAGMENT_HEADER, Reassembler, type ReassemblyLimits } from './fragment.js';
import { FRAME_HEADER_BYTES, FrameFlag, readHeader, writeHeader, type FrameHeader } from './frame.js';
import { LinkDownError, type FrameSink, type InLink, type OutLink } from './link.js';
import { RemoteError, TransportCode, WaitStations, type Continuation } from './requests.js';
import { describeEndpoint, nodeOf, type EndpointId } from './address.js';
import { Traffic } from './traffic.js';
import {
  TRANSPORT_MESSAGES,
  compileTable,
  type CompiledTable,
  type MessageType,
  type NameOf,
  type PayloadOf,
  type ReplyPayloadOf,
  type RequestOf,
  type WireTable,
} from './message-table.js';

/** Where a message came from, and how to answer it if it is a request. */
export interface Envelope {
  readonly src: EndpointId;
  readonly request: number;
}

export type Handler<T extends WireTable, N extends NameOf<T>> = (payload: PayloadOf<T, N>, from: Envelope) => void;

/** Counters of a messenger, shown by `popcorn kernels`. */
export interface MessengerStats {
  sent: number;
  received: number;
  relayed: number;
  fragmentsSent: number;
  malformed: number;
  unroutable: number;
  lateReplies: number;
  handlerErrors: number;
}

export interface MessengerOptions {
  /** Monotonic milliseconds; injectable for tests. */
  now?: () => number;
  /** Where failures inside handlers are reported (never thrown into the transport). */
  onError?: (error: Error, context: string) => void;
  /** Bounds on half-received long messages (default REASSEMBLY_LIMITS). */
  reassembly?: ReassemblyLimits;
}

const FRAGMENT_TYPE = TRANSPORT_MESSAGES.fragment.id;
const WRITER_KEEP_BYTES = 1 << 20;

/**
 * The side of a Messenger that links, wiring and drivers use: frames, routes, polling and time,
 * whatever its message table. Any Messenger<T> is one.
 */
export type MessengerTransport = Pick<
  Messenger<WireTable>,
  'deliver' | 'linkDown' | 'listen' | 'route' | 'routeNode' | 'routeDefault' | 'poll' | 'hasInput' | 'tick' | 'flush' | 'nextDeadline'
>;

/**
 * Sees every message this messenger sends and delivers (`popcorn trace`: src/kernel/trace.ts).
 * Null, the default, costs each message one test.
 */
export interface MessageObserver {
  sent(name: string, bytes: number, to: EndpointId, request: number, response: boolean): void;
  received(name: string, bytes: number, from: EndpointId, request: number, response: boolean): void;
}

/**
 * A messenger typed over a message table `T` (src/msg/message-table.ts): names, payloads and
 * replies are checked against it, and frames are encoded and decoded with its codecs.
 */
export class Messenger<T extends WireTable> {
  observer: MessageObserver | null = null;
  readonly stats: MessengerStats = {
    sent: 0, received: 0, relayed: 0, fragmentsSent: 0, malformed: 0, unroutable: 0, lateReplies: 0, handlerErrors: 0,
  };
  /** Messages and bytes per type and per peer (src/msg/traffic.ts). */
  readonly traffic = new Traffic();
  private readonly handlers = new Map<number, Handler<T, NameOf<T>>>();
  private readonly types: CompiledTable;
  private readonly errorType: MessageType;
  private readonly routes = new Map<EndpointId, OutLink>();
  private readonly nodeRoutes = new Map<number, OutLink>();
  private defaultRoute: OutLink | undefined;
  private readonly inbound: InLink[] = [];
  private readonly outbound = new Set<OutLink>();
  private readonly stations = new WaitStations((error, describe) => this.continuationFailed(error, describe));
  private readonly reassembler: Reassembler;
  private writer = new Writer(4096);
  /** Decodes every frame delivered (Reader.point); each is decoded whole before its handler runs. */
  private readonly reader = new Reader(new Uint8Array(0));
  private readonly local: Uint8Array[] = [];
  private nextFragmentId = 1;
  private readonly now: () => number;
  private readonly onError: (error: Error, context: string) => void;
  private readonly sink: FrameSink = (bytes, offset, length) => this.deliver(bytes, offset, length);

  constructor(table: T, readonly self: EndpointId, options: MessengerOptions = {}) {
    this.types = compileTable(table);
    this.errorType = this.typeOf('error');
    this.now = options.now ?? (() => performance.now());
    this.onError = options.onError ?? ((error, context) => console.error(`[${describeEndpoint(self)}] ${context}:`, error));
    this.reassembler = new Reassembler(options.reassembly);
  }

  // ---- wiring ----

  /** Send frames for `dst` over `link`. */
  route(dst: EndpointId, link: OutLink): void {
    this.routes.set(dst, link);
    this.outbound.add(link);
  }

  /** Send frames for every endpoint of `node` over `link` (a link to that node or a relay). */
  routeNode(node: number, link: OutLink): void {
    this.nodeRoutes.set(node, link);
    this.outbound.add(link);
  }

  /** Send frames with no other route over `link` (a kernel's link to its host, which relays). */
  routeDefault(link: OutLink): void {
    this.defaultRoute = link;
    this.outbound.add(link);
  }

  /** Poll `link` for frames. */
  listen(link: InLink): void {
    this.inbound.push(link);
  }

  /**
   * A link went down: forget its routes, and fail every request waiting on a peer behind it
   * with a LinkDownError, so nobody hangs.
   */
  linkDown(link: OutLink, reason: string): void {
    const lost = (dst: EndpointId): boolean => dst !== this.self && this.linkFor(dst) === link;
    this.stations.failWhere(lost, new LinkDownError(link.name, reason));
    this.reassembler.dropFrom(lost);
    for (const [dst, l] of this.routes) if (l === link) this.routes.delete(dst);
    for (const [node, l] of this.nodeRoutes) if (l === link) this.nodeRoutes.delete(node);
    if (this.defaultRoute === link) this.defaultRoute = undefined;
    this.outbound.delete(link);
  }

  /**
   * Peers are gone behind a link this messenger does not own (a kernel learns from its host that
   * a node was lost): fail every request waiting on one of them with a LinkDownError.
   */
  peersLost(lost: (dst: EndpointId) => boolean, link: string, reason: string): void {
    this.stations.failWhere((dst) => dst !== this.self && lost(dst), new LinkDownError(link, reason));
    this.reassembler.dropFrom(lost);
  }

  /** Stop polling an inbound link. */
  unlisten(link: InLink): void {
    const i = this.inbound.indexOf(link);
    if (i >= 0) this.inbound.splice(i, 1);
  }

  // ---- handlers ----

  on<N extends NameOf<T>>(name: N, handler: Handler<T, N>): void {
    const id = this.typeOf(name).id;
    if (this.handlers.has(id)) throw new Error(`a handler for ${name} is already registered`);
    this.handlers.set(id, handler as unknown as Handler<T, NameOf<T>>);
  }

  // ---- sending ----

  /** Send a one-way message. Never blocks. */
  send<N extends NameOf<T>>(dst: EndpointId, name: N, payload: PayloadOf<T, N>): void {
    const type = this.typeOf(name);
    this.transmit({ type: type.id, flags: 0, src: this.self, dst, request: 0 }, type, payload);
  }

  /**
   * Send a request; `done` runs exactly once: with the reply, or with an error (RemoteError,
   * RequestTimeoutError after `timeoutMs`, LinkDownError).
   */
  request<N extends RequestOf<T>>(
    dst: EndpointId,
    name: N,
    payload: PayloadOf<T, N>,
    timeoutMs: number,
    done: (error: Error | null, reply?: ReplyPayloadOf<T, N>) => void,
  ): void {
    if (this.linkFor(dst) === undefined && dst !== this.self) {
      this.stats.unroutable++;
      done(new LinkDownError(describeEndpoint(dst), 'no route'));
      return;
    }
    const type = this.typeOf(name);
    const id = this.stations.open(dst, name, timeoutMs, this.now(), done as Continuation, type.reply?.id ?? 0);
    this.transmit({ type: type.id, flags: 0, src: this.self, dst, request: id }, type, payload);
  }

  /** Answer a request. */
  reply<N extends RequestOf<T>>(to: Envelope, request: N, payload: ReplyPayloadOf<T, N>): void {
    const type = this.typeOf(request).reply as MessageType;
    this.transmit({ type: type.id, flags: FrameFlag.Response, src: this.self, dst: to.src, request: to.request }, type, payload);
  }

  /** Answer a request with an error. */
  fail(to: Envelope, code: string, message: string): void {
    if (to.request === 0) return;
    this.transmit(
      { type: this.errorType.id, flags: FrameFlag.Response | FrameFlag.Error, src: this.self, dst: to.src, request: to.request },
      this.errorType,
      { code, message },
    );
  }

  /** The name of message type `id` in this messenger's table (traffic is counted by id). */
  messageName(id: number): string {
    return this.types.byId.get(id)?.name ?? `type ${id}`;
  }

  private typeOf(name: string): MessageType {
    const type = this.types.byName.get(name);
    if (type === undefined) throw new TypeError(`no message type ${name}`);
    return type;
  }

  private transmit(header: FrameHeader, type: MessageType, payload: unknown): void {
    const w = this.writer;
    w.reset(FRAME_HEADER_BYTES);
    type.codec.encode(w, payload);
    writeHeader(w.view, 0, header);
    this.stats.sent++;
    this.traffic.sent(header.type, header.dst, w.pos);
    if (this.observer !== null) this.observer.sent(type.name, w.pos, header.dst, header.request, (header.flags & FrameFlag.Response) !== 0);
    this.forward(header.dst, w.bytes.subarray(0, w.pos));
    // Links copy what they send, so the buffer is free again. Do not keep one sized for the
    // largest message ever sent (a checkpoint) for the rest of the kernel's life.
    if (w.bytes.length > WRITER_KEEP_BYTES) this.writer = new Writer(4096);
  }

  /** Put a complete frame on the way to `dst`: locally, in one piece, or in fragments. */
  private forward(dst: EndpointId, frame: Uint8Array): void {
    if (dst === this.self) {
      this.local.push(frame.slice());
      return;
    }
    const link = this.linkFor(dst);
    if (link === undefined || !link.up) {
      this.stats.unroutable++;
      this.answerUnroutable(frame);
      return;
    }
    if (frame.length <= link.maxFrame) link.send(frame);
    else this.sendFragments(link, dst, frame);
  }

  /**
   * Fragments carry this messenger as their source, whatever the frame's own source: the
   * reassembler keys partial messages by (fragment source, fragment id), and fragment ids are
   * only unique per fragmenting messenger. A relay that re-fragments a frame for a link with a
   * smaller maxFrame must not collide with the originator's own fragment ids.
   */
  private sendFragments(link: OutLink, dst: EndpointId, frame: Uint8Array): void {
    const { size, fields } = FRAGMENT_HEADER;
    const data = FRAME_HEADER_BYTES + size;
    const chunk = link.maxFrame - data;
    const piece = new Uint8Array(data + chunk);
    const view = new DataView(piece.buffer);
    writeHeader(view, 0, { type: FRAGMENT_TYPE, flags: 0, src: this.self, dst, request: 0 });
    fields.message.write(view, FRAME_HEADER_BYTES, this.nextFragmentId++ >>> 0);
    fields.total.write(view, FRAME_HEADER_BYTES, frame.length);
    for (let offset = 0; offset < frame.length; offset += chunk) {
      const slice = frame.subarray(offset, Math.min(offset + chunk, frame.length));
      fields.offset.write(view, FRAME_HEADER_BYTES, offset);
      piece.set(slice, data);
      link.send(piece.subarray(0, data + slice.length));
      this.stats.fragmentsSent++;
    }
  }

  private linkFor(dst: EndpointId): OutLink | undefined {
    return this.routes.get(dst) ?? this.nodeRoutes.get(nodeOf(dst)) ?? this.defaultRoute;
  }

  // ---- receiving ----

  /** Drain inbound rings and local messages, up to `budget` frames per link. Returns the count. */
  poll(budget = 64): number {
    let n = 0;
    while (this.local.length > 0 && n < budget) {
      const frame = this.local.shift() as Uint8Array;
      this.deliver(frame, 0, frame.length);
      n++;
    }
    for (const link of this.inbound) n += link.poll(this.sink, budget);
    return n;
  }

  /** True when a poll() would find something. */
  hasInput(): boolean {
    if (this.local.length > 0) return true;
    for (const link of this.inbound) if (link.hasData()) return true;
    return false;
  }

  /** Push links' entry point: one received frame, a view valid only during the call. */
  deliver(bytes: Uint8Array, offset: number, length: number): void {
    if (length < FRAME_HEADER_BYTES) {
      this.stats.malformed++;
      return;
    }
    const r = this.reader;
    r.point(bytes, offset + FRAME_HEADER_BYTES, offset + length);
    const header = readHeader(r.view, offset);
    if (header.dst !== this.self) {
      try {
        this.relay(header, bytes.subarray(offset, offset + length));
      } catch (error) {
        this.handlerFailed(error, header);
      }
      return;
    }
    this.stats.received++;
    try {
      if (header.type === FRAGMENT_TYPE) this.reassemble(header, r);
      else this.dispatch(header, r);
    } catch (error) {
      if (error instanceof DecodeError) this.stats.malformed++;
      else this.handlerFailed(error, header);
    }
  }

  private relay(header: FrameHeader, frame: Uint8Array): void {
    const link = this.linkFor(header.dst);
    if (link === undefined || !link.up) {
      this.stats.unroutable++;
      this.answerUnroutable(frame);
      return;
    }
    this.stats.relayed++;
    // The next link may carry shorter frames than the one this came by (TCP in, ring out).
    if (frame.length <= link.maxFrame) link.send(frame);
    else this.sendFragments(link, header.dst, frame);
  }

  /** A request with nowhere to go is answered at once, so its sender does not wait for a timeout. */
  private answerUnroutable(frame: Uint8Array): void {
    const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
    const header = readHeader(view, 0);
    if (header.request === 0 || (header.flags & FrameFlag.Response) !== 0) return;
    const to = { src: header.src, request: header.request };
    if (header.src === this.self) {
      this.stations.complete(header.request, new LinkDownError(describeEndpoint(header.dst), 'no route'));
    } else if (this.linkFor(header.src) !== undefined) {
      this.fail(to, TransportCode.NoRoute, `no route to ${describeEndpoint(header.dst)}`);
    }
  }

  /** `r` holds the fragment after its frame header, valid only during the call (the reassembler copies). */
  private reassemble(header: FrameHeader, r: Reader): void {
    const { size, fields } = FRAGMENT_HEADER;
    const base = r.pos;
    const data = base + size;
    if (r.end < data) throw new DecodeError(`fragment frame of ${r.end - base + FRAME_HEADER_BYTES} B is shorter than its header`);
    const message = fields.message.read(r.view, base);
    const total = fields.total.read(r.view, base);
    const at = fields.offset.read(r.view, base);
    const slice = r.bytes.subarray(data, r.end);
    const whole = this.reassembler.add(header.src, message, total, at, slice);
    if (whole === undefined) return;
    this.stats.received--; // the whole message is counted once, when delivered below
    this.deliver(whole, 0, whole.length);
  }

  /** `r` holds the payload, after the frame header: decoded whole before the handler runs. */
  private dispatch(header: FrameHeader, r: Reader): void {
    const entry = this.types.byId.get(header.type);
    if (entry === undefined) throw new DecodeError(`unknown message type ${header.type}`);
    const length = r.end - r.pos + FRAME_HEADER_BYTES;
    const payload = entry.codec.decode(r);
    if (r.pos !== r.end) throw new DecodeError(`${r.end - r.pos} trailing bytes after ${entry.name}`);
    this.traffic.received(header.type, header.src, length);
    if (this.observer !== null) this.observer.received(entry.name, length, header.src, header.request, (header.flags & FrameFlag.Response) !== 0);
    if ((header.flags & FrameFlag.Response) !== 0) {
      this.settle(header, entry.name, payload);
      return;
    }
    const handler = this.handlers.get(header.type);
    if (handler === undefined) {
      this.fail({ src: header.src, request: header.request }, TransportCode.NoHandler, `no handler for ${entry.name} at ${describeEndpoint(this.self)}`);
      this.stats.unroutable++;
      return;
    }
    handler(payload as never, { src: header.src, request: header.request });
  }

  private settle(header: FrameHeader, name: string, payload: unknown): void {
    const expected = this.stations.replyTypeOf(header.request);
    if (expected === undefined) {
      this.stats.lateReplies++;
      return;
    }
    // A reply of another type than the request declares would reach the continuation with a
    // payload of the wrong shape: treat it (and an error flag on a non-error type) as malformed.
    const isError = (header.flags & FrameFlag.Error) !== 0;
    if (isError !== (name === 'error') || (!isError && expected !== 0 && header.type !== expected)) {
      this.stats.malformed++;
      const error = new DecodeError(`${describeEndpoint(header.src)} answered with ${name} (flags ${header.flags}), not the declared reply`);
      this.stations.complete(header.request, error);
      return;
    }
    let settled: boolean;
    if (isError) {
      const e = payload as { code: string; message: string };
      settled = this.stations.complete(header.request, new RemoteError(e.code, e.message, describeEndpoint(header.src)));
    } else {
      settled = this.stations.complete(header.request, null, payload);
    }
    if (!settled) this.stats.lateReplies++;
  }

  /** A request's continuation threw: report it, and go on with the others. */
  private continuationFailed(error: unknown, describe: string): void {
    this.stats.handlerErrors++;
    const err = error instanceof Error ? error : new Error(String(error));
    this.onError(err, `continuation of ${describe}`);
  }

  private handlerFailed(error: unknown, header: FrameHeader): void {
    this.stats.handlerErrors++;
    const err = error instanceof Error ? error : new Error(String(error));
    const name = this.messageName(header.type);
    this.onError(err, `handler for ${name} from ${describeEndpoint(header.src)}`);
    if ((header.flags & FrameFlag.Response) === 0) this.fail({ src: header.src, request: header.request }, TransportCode.HandlerFailed, err.message);
  }

  // ---- time and backpressure ----

  /** Expire requests whose deadline passed. */
  tick(): void {
    this.stations.expire(this.now(), describeEndpoint);
  }

  /** Move frames that waited for transport space. True when nothing is left waiting. */
  flush(): boolean {
    let done = true;
    for (const link of this.outbound) if (!link.flush()) done = false;
    return done;
  }

  /** The earliest request deadline (ms on the `now` clock), or Infinity. */
  get nextDeadline(): number {
    return this.stations.earliestDeadline;
  }

  /** Requests still waiting for an answer. */
  get outstanding(): number {
    return this.stations.size;
  }

  /** Half-received long messages. */
  get reassembling(): number {
    return this.reassembler.pending;
  }
}
