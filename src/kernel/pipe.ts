/**
 * POSIX pipes, within a kernel and across kernels.
 *
 * A pipe lives on the kernel that created it, its home (invariant: one owner per resource). The
 * home keeps the bytes and counts the references to each end: those held by its own
 * descriptions, and those held elsewhere or in transit, per kernel that holds (or will take
 * over) them — so that when a node is lost, the references its kernels held are dropped and the
 * survivors see EOF or EPIPE as if those kernels had closed them. A process on another kernel
 * uses an end through a proxy, one per (pipe, end) per kernel, shared by every description of
 * that end there:
 *   - a writer proxy sends the bytes home within a credit, which the home returns as those bytes
 *     leave the pipe, so remote writers block much as local ones do (the home may hold up to one
 *     credit per remote writer beyond its capacity);
 *   - a reader proxy asks the home for a window of bytes when a reader finds its buffer empty, and
 *     the home sends what arrives until the window is used. Bytes sent to a proxy have left the
 *     pipe: they free room for writers, and are lost if the proxy closes before they are read.
 *
 * This file holds the pipe, its proxies and the file descriptions on them; the messages they
 * exchange are sent and received by the pipe service (src/services/pipe.ts) through the small
 * HomeLinks and ProxyLinks interfaces.
 */

import type { EndpointId } from '../msg/address.js';
import { BLOCKED, type Blocked, type Pollable } from './wasi/blocking.js';
import { Errno, WasiError } from './wasi/errno.js';
import { BaseDescription } from './wasi/file-description.js';
import { Fdflags, Filetype, STREAM_RIGHTS } from './wasi/types.js';

export const PIPE_READ = 0;
export const PIPE_WRITE = 1;
export type PipeEndKind = typeof PIPE_READ | typeof PIPE_WRITE;

/** Names one end of a pipe system-wide. */
export interface PipeEndRef {
  /** The pipe's home kernel. */
  home: EndpointId;
  pipe: number;
  end: PipeEndKind;
}

/** Bytes a pipe holds before local writers wait (Linux's default). */
export const PIPE_CAPACITY = 64 * 1024;
/** Writes of at most this many bytes are atomic: all in, or wait. */
export const PIPE_BUF = 4096;
/** Bytes a writer proxy may have sent home and not yet credited. */
export const WRITE_CREDIT = 64 * 1024;
/** Bytes a reader proxy asks for at a time. */
export const READ_WINDOW = 256 * 1024;
/** The largest pipe_data the home sends: bounds one message's copy and allocation. */
const DATA_MESSAGE_BYTES = 64 * 1024;
/** Small writes are gathered into chunks of this size, so each does not allocate its own. */
const CHUNK_BYTES = 4096;
const EMPTY = new Uint8Array(0);

/** How many bytes of a `len`-byte write go in with `room` free: 0 means wait. */
function accepted(len: number, room: number): number {
  if (len <= PIPE_BUF) return room >= len ? len : 0;
  return Math.max(0, Math.min(len, room));
}

// ---- the byte queue --------------------------------------------------------------------------

/** The owner of bytes no remote writer is owed credit for. */
export const NO_OWNER = -1;
/** Told, as bytes leave a queue, whose they were and how many. */
export type Spent = (owner: EndpointId, bytes: number) => void;

interface Chunk {
  bytes: Uint8Array;
  /** Unread bytes are bytes[start, end). */
  start: number;
  end: number;
  /** The remote writer to credit when these bytes leave, or NO_OWNER. */
  owner: number;
  /** Made by copyIn: later small writes may fill its room after `end`. */
  spare: boolean;
}

/**
 * The bytes in a pipe (or in a reader proxy's buffer): a FIFO of chunks, so a write is one copy
 * in and a read one copy out, whatever their sizes. Chunks received in messages are kept as they
 * came, with the writer to credit for them.
 */
export class ByteQueue {
  private chunks: (Chunk | undefined)[] = [];
  private first = 0;
  private total = 0;

  get size(): number {
    return this.total;
  }

  /** Appends a copy of src[off, off+len). */
  copyIn(src: Uint8Array, off: number, len: number): void {
    this.total += len;
    const last = this.chunks[this.chunks.length - 1];
    if (last !== undefined && last.spare) {
      const k = Math.min(len, last.bytes.length - last.end);
      last.bytes.set(src.subarray(off, off + k), last.end);
      last.end += k;
      off += k;
      len -= k;
    }
    if (len === 0) return;
    const bytes = new Uint8Array(Math.max(len, CHUNK_BYTES));
    bytes.set(src.subarray(off, off + len));
    this.chunks.push({ bytes, start: 0, end: len, owner: NO_OWNER, spare: true });
  }

  /** Puts `bytes` itself back in front: bytes a reader elsewhere had taken and not read. */
  prepend(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.total += bytes.length;
    if (this.first > 0) this.chunks[--this.first] = { bytes, start: 0, end: bytes.length, owner: NO_OWNER, spare: false };
    else this.chunks.unshift({ bytes, start: 0, end: bytes.length, owner: NO_OWNER, spare: false });
  }

  /** Appends `bytes` itself (it must not change afterwards), written by `owner`. */
  append(bytes: Uint8Array, owner: number): void {
    if (bytes.length === 0) return;
    this.total += bytes.length;
    this.chunks.push({ bytes, start: 0, end: bytes.length, owner, spare: false });
  }

  /** Moves up to `len` bytes into dst[off, ...); returns how many. */
  copyOut(dst: Uint8Array, off: number, len: number, spent?: Spent): number {
    let at = off;
    return this.drain(len, (piece) => {
      dst.set(piece, at);
      at += piece.length;
    }, spent);
  }

  /**
   * Removes up to `len` bytes and returns them: a view into the queue when they lie in one chunk
   * (valid until the next copyIn), else a new array.
   */
  take(len: number, spent?: Spent): Uint8Array {
    const n = Math.min(len, this.total);
    const c = this.chunks[this.first];
    if (c !== undefined && c.end - c.start >= n) {
      const view = c.bytes.subarray(c.start, c.start + n);
      this.drain(n, () => {}, spent);
      return view;
    }
    const out = new Uint8Array(n);
    this.copyOut(out, 0, n, spent);
    return out;
  }

  /** Drops everything. */
  clear(spent?: Spent): void {
    this.drain(this.total, () => {}, spent);
  }

  private drain(len: number, sink: (piece: Uint8Array) => void, spent: Spent | undefined): number {
    let done = 0;
    while (done < len && this.total > 0) {
      const c = this.chunks[this.first] as Chunk;
      const k = Math.min(len - done, c.end - c.start);
      if (k > 0) {
        sink(c.bytes.subarray(c.start, c.start + k));
        c.start += k;
        done += k;
        this.total -= k;
        if (c.owner !== NO_OWNER) spent?.(c.owner, k);
      }
      if (c.start === c.end) this.retire(c);
    }
    return done;
  }

  /** The front chunk is used up: drop it, or keep it for the next small writes if it is the last. */
  private retire(c: Chunk): void {
    if (c.spare && this.first === this.chunks.length - 1) {
      c.start = c.end = 0;
      return;
    }
    this.chunks[this.first++] = undefined;
    if (this.first === this.chunks.length) {
      this.chunks.length = 0;
      this.first = 0;
    } else if (this.first >= 64 && this.first * 2 >= this.chunks.length) {
      // Shift the array only now and then, so draining a long queue stays linear.
      this.chunks.splice(0, this.first);
      this.first = 0;
    }
  }
}

// ---- file descriptions -----------------------------------------------------------------------

/** Callbacks waiting for readiness to change. */
class Watchers {
  private readonly fns = new Set<() => void>();

  add(fn: () => void): () => void {
    this.fns.add(fn);
    return () => this.fns.delete(fn);
  }

  notify(): void {
    if (this.fns.size === 0) return;
    for (const fn of [...this.fns]) fn();
  }
}

/** What a read end reads from: the pipe at its home, or a reader proxy. */
export interface ReadSource {
  /** BLOCKED when there is nothing yet and writers remain; 0 at end of file. */
  read(buf: Uint8Array, off: number, len: number): number | Blocked;
  readReady(): boolean;
  readableBytes(): number;
  watch(fn: () => void): () => void;
  /** One description on it was closed. */
  release(): void;
}

/** What a write end writes to: the pipe at its home, or a writer proxy. */
export interface WriteSink {
  /** BLOCKED when it does not fit yet; throws EPIPE when no reader is left. */
  write(buf: Uint8Array, off: number, len: number): number | Blocked;
  writeReady(): boolean;
  watch(fn: () => void): () => void;
  release(): void;
}

/**
 * A description of one end of a pipe. Each holds one reference to its end, given back by
 * close(); the end's state (bytes, credit, readiness) is in its source or sink, shared by every
 * description of the end on this kernel.
 */
export abstract class PipeEnd extends BaseDescription {
  readonly filetype: number = Filetype.UNKNOWN; // what wasmtime reports for a pipe
  readonly maxRights = STREAM_RIGHTS;
  private closed = false;

  constructor(readonly ref: Readonly<PipeEndRef>) {
    super();
  }

  /** What a read or write that must wait returns: BLOCKED, or EAGAIN in non-blocking mode. */
  protected wouldBlock(): Blocked {
    if (this.fdflags & Fdflags.NONBLOCK) throw new WasiError(Errno.AGAIN, 'pipe would block');
    return BLOCKED;
  }

  override close(): void {
    if (this.closed) return;
    this.closed = true;
    this.release();
  }

  protected abstract release(): void;
}

export class PipeReadEnd extends PipeEnd {
  readonly readable = true;
  readonly writable = false;
  override readonly pollable: Pollable;

  constructor(ref: Readonly<PipeEndRef>, private readonly source: ReadSource) {
    super(ref);
    this.pollable = {
      readReady: () => source.readReady(),
      writeReady: () => false,
      watch: (fn) => source.watch(fn),
    };
  }

  override read(buf: Uint8Array, off: number, len: number): number | Blocked {
    if (len === 0) return 0;
    const n = this.source.read(buf, off, len);
    return n === BLOCKED ? this.wouldBlock() : n;
  }

  override readableBytes(): bigint {
    return BigInt(this.source.readableBytes());
  }

  /** Hand the end on (see RemoteReader.drain): the bytes a proxy received and did not read. */
  drain(done: (error: Error | null, unread: Uint8Array) => void): void {
    if (this.source instanceof RemoteReader) this.source.drain(done);
    else done(null, EMPTY);
  }

  protected release(): void {
    this.source.release();
  }
}

export class PipeWriteEnd extends PipeEnd {
  readonly readable = false;
  readonly writable = true;
  override readonly pollable: Pollable;

  constructor(ref: Readonly<PipeEndRef>, private readonly sink: WriteSink) {
    super(ref);
    this.pollable = {
      readReady: () => false,
      writeReady: () => sink.writeReady(),
      watch: (fn) => sink.watch(fn),
    };
  }

  override write(buf: Uint8Array, off: number, len: number): number | Blocked {
    if (len === 0) return 0; // as Linux: even with no reader left
    const n = this.sink.write(buf, off, len);
    return n === BLOCKED ? this.wouldBlock() : n;
  }

  protected release(): void {
    this.sink.release();
  }
}

// ---- the pipe, at its home -------------------------------------------------------------------

/** How a pipe reaches the kernels holding its remote ends, and tells the service it is gone. */
export interface HomeLinks {
  credit(writer: EndpointId, pipe: number, bytes: number): void;
  data(reader: EndpointId, pipe: number, data: Uint8Array, eof: boolean): void;
  broken(writer: EndpointId, pipe: number): void;
  /** No reference to either end is left anywhere. */
  freed(pipe: number): void;
}

export class Pipe {
  private readonly queue = new ByteQueue();
  /** References held by this kernel's descriptions, per end. */
  private readonly local: [number, number] = [0, 0];
  /**
   * References held by other kernels, or in transit to them, per end and holding kernel. A
   * reference is counted (attach) for the kernel that will take it over, before it travels, so a
   * holder's count is exact whoever asked for it, and a lost node's references can be dropped.
   */
  private readonly remote: [Map<EndpointId, number>, Map<EndpointId, number>] = [new Map(), new Map()];
  /** Ends whose last reference went; they never come back. */
  private readonly gone: [boolean, boolean] = [false, false];
  /** Reader kernels that asked for data, and how many bytes each may still be sent. */
  private readonly wants = new Map<EndpointId, number>();
  /**
   * Kernels whose writer proxies wrote: they hear pipe_broken. A writer is known by its first
   * write; one that had not written when the last reader went learns of it in answer to that
   * write (which was accepted, then dropped).
   */
  private readonly writerKernels = new Set<EndpointId>();
  /** Credit due to remote writers, gathered over one operation and sent at its end. */
  private readonly owed = new Map<EndpointId, number>();
  private readonly readWatchers = new Watchers();
  private readonly writeWatchers = new Watchers();
  private readonly owe: Spent = (owner, bytes) => this.owed.set(owner, (this.owed.get(owner) ?? 0) + bytes);

  private readonly readSide: ReadSource = {
    read: (buf, off, len) => this.read(buf, off, len),
    readReady: () => this.queue.size > 0 || this.gone[PIPE_WRITE],
    readableBytes: () => this.queue.size,
    watch: (fn) => this.readWatchers.add(fn),
    release: () => this.release(PIPE_READ),
  };

  private readonly writeSide: WriteSink = {
    write: (buf, off, len) => this.write(buf, off, len),
    writeReady: () => this.gone[PIPE_READ] || PIPE_CAPACITY - this.queue.size >= PIPE_BUF,
    watch: (fn) => this.writeWatchers.add(fn),
    release: () => this.release(PIPE_WRITE),
  };

  constructor(readonly home: EndpointId, readonly id: number, private readonly links: HomeLinks) {}

  /** A new description of `end` holding a new reference (pipe() makes one of each). */
  open(end: PipeEndKind): PipeEnd {
    this.local[end]++;
    return this.describe(end);
  }

  /**
   * Counts a reference that kernel `holder` will take over (this one, for a description here).
   * False if the end has already gone.
   */
  attach(end: PipeEndKind, holder: EndpointId): boolean {
    if (this.gone[end]) return false;
    this.remote[end].set(holder, (this.remote[end].get(holder) ?? 0) + 1);
    return true;
  }

  /** A new description here taking over a reference counted by attach() for this kernel. */
  adopt(end: PipeEndKind): PipeEnd {
    if (this.giveBack(end, this.home, 1) === 0) throw new WasiError(Errno.BADF, `no reference to end ${end} of pipe ${this.id} was retained`);
    this.local[end]++;
    return this.describe(end);
  }

  /** `from` gave back `refs` references to `end`: its proxy closed, so its want ends too. */
  detach(from: EndpointId, end: PipeEndKind, refs: number): void {
    if (end === PIPE_READ) this.wants.delete(from);
    else this.writerKernels.delete(from);
    this.giveBack(end, from, refs);
    this.dropped(end);
  }

  /** A reference counted for `holder` will not be used (a record dropped: a spawn or move failed). */
  discard(end: PipeEndKind, holder: EndpointId): void {
    this.giveBack(end, holder, 1);
    this.dropped(end);
  }

  /**
   * The kernels `lost` names are gone (their node was lost): the references they held, or that
   * were on their way to them, go as if closed there — readers here and on the other kernels see
   * EOF once no writer is left, writers EPIPE once no reader is — and nothing more is sent there.
   */
  kernelsLost(lost: (kernel: EndpointId) => boolean): void {
    for (const holders of this.remote) for (const kernel of [...holders.keys()]) if (lost(kernel)) holders.delete(kernel);
    for (const kernel of [...this.wants.keys()]) if (lost(kernel)) this.wants.delete(kernel);
    for (const kernel of [...this.writerKernels]) if (lost(kernel)) this.writerKernels.delete(kernel);
    this.dropped(PIPE_READ);
    this.dropped(PIPE_WRITE);
  }

  /** Bytes from the writer proxy on `from`, sent within its credit. */
  remoteWrite(from: EndpointId, data: Uint8Array): void {
    if (this.gone[PIPE_READ]) {
      this.owe(from, data.length); // nobody will read them: credit them back at once
      this.flushCredit();
      if (!this.writerKernels.has(from)) {
        this.writerKernels.add(from);
        this.links.broken(from, this.id);
      }
      return;
    }
    this.writerKernels.add(from);
    this.queue.append(data, from);
    this.filled();
  }

  /** The reader proxy on `from` may be sent `bytes` more. */
  want(from: EndpointId, bytes: number): void {
    this.wants.set(from, (this.wants.get(from) ?? 0) + bytes);
    this.pump();
  }

  /** The reader proxy on `from` hands its end on: send it nothing more until it asks again. */
  pause(from: EndpointId): void {
    this.wants.delete(from);
  }

  /** Bytes a reader proxy had received and not read, back from the end it handed on: they come first. */
  unread(data: Uint8Array): void {
    this.queue.prepend(data.slice());
    this.filled();
  }

  private describe(end: PipeEndKind): PipeEnd {
    const ref = { home: this.home, pipe: this.id, end };
    return end === PIPE_READ ? new PipeReadEnd(ref, this.readSide) : new PipeWriteEnd(ref, this.writeSide);
  }

  private count(end: PipeEndKind): number {
    let n = this.local[end];
    for (const refs of this.remote[end].values()) n += refs;
    return n;
  }

  /** Up to `refs` references `holder` held to `end` go; returns how many did. */
  private giveBack(end: PipeEndKind, holder: EndpointId, refs: number): number {
    const held = this.remote[end].get(holder) ?? 0;
    const n = Math.min(refs, held);
    if (held - n === 0) this.remote[end].delete(holder);
    else this.remote[end].set(holder, held - n);
    return n;
  }

  private read(buf: Uint8Array, off: number, len: number): number | Blocked {
    if (this.queue.size === 0) return this.gone[PIPE_WRITE] ? 0 : BLOCKED;
    const n = this.queue.copyOut(buf, off, len, this.owe);
    this.drained();
    this.pump(); // the last bytes may have gone: remote readers waiting for EOF hear it now
    return n;
  }

  private write(buf: Uint8Array, off: number, len: number): number | Blocked {
    if (this.gone[PIPE_READ]) throw new WasiError(Errno.PIPE, 'pipe has no reader left');
    const n = accepted(len, PIPE_CAPACITY - this.queue.size);
    if (n === 0) return BLOCKED;
    this.queue.copyIn(buf, off, n);
    this.filled();
    return n;
  }

  /** Bytes came in: remote readers that asked get them, local readers are woken. */
  private filled(): void {
    this.pump();
    this.readWatchers.notify();
  }

  /** Bytes left: their remote writers get credit, local writers are woken. */
  private drained(): void {
    this.flushCredit();
    this.writeWatchers.notify();
  }

  private flushCredit(): void {
    if (this.owed.size === 0) return;
    for (const [writer, bytes] of this.owed) this.links.credit(writer, this.id, bytes);
    this.owed.clear();
  }

  /** Sends queued bytes to the reader kernels that asked, and EOF once no writer is left. */
  private pump(): void {
    if (this.wants.size === 0) return;
    const ended = this.gone[PIPE_WRITE];
    let sent = false;
    for (const [reader, window] of this.wants) {
      if (this.queue.size === 0 && !ended) break;
      let left = window;
      let eof = false;
      while (left > 0 && this.queue.size > 0) {
        const data = this.queue.take(Math.min(left, DATA_MESSAGE_BYTES), this.owe);
        left -= data.length;
        eof = ended && this.queue.size === 0;
        this.links.data(reader, this.id, data, eof);
        sent = true;
      }
      if (ended && !eof && this.queue.size === 0) {
        this.links.data(reader, this.id, EMPTY, true);
        eof = true;
      }
      if (eof || left === 0) this.wants.delete(reader);
      else this.wants.set(reader, left);
    }
    if (sent) this.drained();
  }

  private release(end: PipeEndKind): void {
    this.local[end]--;
    this.dropped(end);
  }

  /** References to `end` went down: act if they were the last. */
  private dropped(end: PipeEndKind): void {
    if (this.gone[end] || this.count(end) > 0) return;
    this.gone[end] = true;
    if (end === PIPE_READ) this.readersGone();
    else this.writersGone();
    if (this.gone[PIPE_READ] && this.gone[PIPE_WRITE]) this.links.freed(this.id);
  }

  /** Readers see EOF once the queue is empty: wake the local ones, tell the remote ones that asked. */
  private writersGone(): void {
    this.pump();
    this.readWatchers.notify();
  }

  /** Writers get EPIPE from now on; what they wrote will never be read. */
  private readersGone(): void {
    this.wants.clear();
    this.queue.clear(this.owe);
    this.flushCredit();
    for (const writer of this.writerKernels) this.links.broken(writer, this.id);
    this.writeWatchers.notify();
  }
}

// ---- proxies, on the other kernels -----------------------------------------------------------

/** How a proxy reaches its pipe's home, and tells the service it is no longer needed. */
export interface ProxyLinks {
  write(ref: PipeEndRef, data: Uint8Array): void;
  want(ref: PipeEndRef, bytes: number): void;
  /** Ask the home to stop sending; `done` once all it sent has arrived (its answer comes after). */
  pause(ref: PipeEndRef, done: (error: Error | null) => void): void;
  detach(ref: PipeEndRef, refs: number): void;
  /** No description uses the proxy and nothing of it is in flight: forget it. */
  idle(proxy: RemoteReader | RemoteWriter): void;
}

/** What both proxies count: their descriptions, and the references to give back at the end. */
abstract class PipeProxy {
  /** Open descriptions on this proxy. */
  protected users = 0;
  /** References taken over since the last detach: all are given back when the last user closes. */
  private held = 0;

  constructor(readonly ref: Readonly<PipeEndRef>, protected readonly links: ProxyLinks) {}

  /** A new description taking over one reference retained for this kernel. */
  open(): PipeEnd {
    this.users++;
    this.held++;
    return this.describe();
  }

  /** One description closed; the last one gives every reference back in one message. */
  release(): void {
    if (--this.users > 0) return;
    this.links.detach(this.ref, this.held);
    this.held = 0;
    this.closed();
  }

  protected abstract describe(): PipeEnd;
  protected abstract closed(): void;
}

export class RemoteWriter extends PipeProxy implements WriteSink {
  /** Bytes sent home and not credited back yet. */
  private inFlight = 0;
  private broken = false;
  private readonly watchers = new Watchers();

  write(buf: Uint8Array, off: number, len: number): number | Blocked {
    if (this.broken) throw new WasiError(Errno.PIPE, 'pipe has no reader left');
    const n = accepted(len, WRITE_CREDIT - this.inFlight);
    if (n === 0) return BLOCKED;
    this.inFlight += n;
    this.links.write(this.ref, buf.subarray(off, off + n)); // the messenger copies it into the frame
    return n;
  }

  writeReady(): boolean {
    return this.broken || WRITE_CREDIT - this.inFlight >= PIPE_BUF;
  }

  watch(fn: () => void): () => void {
    return this.watchers.add(fn);
  }

  /** `bytes` of ours left the pipe. */
  credit(bytes: number): void {
    this.inFlight = Math.max(0, this.inFlight - bytes);
    this.watchers.notify();
    this.idleCheck();
  }

  /** The last reader closed. */
  markBroken(): void {
    this.broken = true;
    this.watchers.notify();
  }

  /**
   * The pipe's home is gone (its node was lost), and the pipe with it: writes fail with EPIPE,
   * as when the last reader closed, and no credit will come back for what is in flight.
   */
  homeLost(): void {
    this.inFlight = 0;
    this.markBroken();
    this.idleCheck();
  }

  protected describe(): PipeEnd {
    return new PipeWriteEnd(this.ref, this);
  }

  /**
   * Kept while bytes are in flight, so their credit is counted against the right proxy even if
   * a new reference arrives on this kernel meanwhile (the home credits every byte, dropped or not).
   */
  protected closed(): void {
    this.idleCheck();
  }

  private idleCheck(): void {
    if (this.users === 0 && this.inFlight === 0) this.links.idle(this);
  }
}

export class RemoteReader extends PipeProxy implements ReadSource {
  private readonly buffer = new ByteQueue();
  private eof = false;
  /** Bytes asked for and not received yet: while any are, the home sends data as it comes. */
  private outstanding = 0;
  private readonly watchers = new Watchers();

  read(buf: Uint8Array, off: number, len: number): number | Blocked {
    if (this.buffer.size > 0) return this.buffer.copyOut(buf, off, len);
    if (this.eof) return 0;
    this.want();
    return BLOCKED;
  }

  readReady(): boolean {
    return this.buffer.size > 0 || this.eof;
  }

  readableBytes(): number {
    return this.buffer.size;
  }

  /** A waiter (a blocked read, poll) on an empty buffer: ask the home for data. */
  watch(fn: () => void): () => void {
    if (!this.readReady()) this.want();
    return this.watchers.add(fn);
  }

  /**
   * The end is handed to another kernel (a spawn, a migration): stop the home sending here, and
   * give up what was received and not read, so that it is read there, first.
   */
  drain(done: (error: Error | null, unread: Uint8Array) => void): void {
    this.links.pause(this.ref, (error) => {
      this.outstanding = 0;
      const unread = new Uint8Array(this.buffer.size);
      this.buffer.copyOut(unread, 0, unread.length);
      done(error, unread);
    });
  }

  /** Bytes another kernel's proxy had received and not read: they come before what comes next. */
  preload(data: Uint8Array): void {
    if (data.length === 0) return;
    this.buffer.prepend(data.slice());
    this.watchers.notify();
  }

  /**
   * The pipe's home is gone (its node was lost), and the pipe with it: what was received is read,
   * then end of file, as when the last writer closed (bytes still in the pipe are lost with it).
   */
  homeLost(): void {
    this.received(EMPTY, true);
  }

  /** pipe_data from the home. */
  received(data: Uint8Array, eof: boolean): void {
    this.buffer.append(data, NO_OWNER);
    this.outstanding = Math.max(0, this.outstanding - data.length);
    if (eof) {
      this.eof = true;
      this.outstanding = 0;
    }
    this.watchers.notify();
  }

  protected describe(): PipeEnd {
    return new PipeReadEnd(this.ref, this);
  }

  /** Unread bytes are dropped (the home's detach handling cancels our want); late data is ignored. */
  protected closed(): void {
    this.buffer.clear();
    this.links.idle(this);
  }

  private want(): void {
    if (this.outstanding > 0 || this.eof) return;
    this.outstanding = READ_WINDOW;
    this.links.want(this.ref, READ_WINDOW);
  }
}
