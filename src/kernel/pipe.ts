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
 * This file holds the pipe at its home; pipe-end.ts the file descriptions on a pipe, pipe-proxy.ts
 * the proxies, byte-queue.ts the bytes. The messages they exchange are sent and received by the
 * pipe service (src/services/pipe.ts) through the small HomeLinks and ProxyLinks interfaces.
 */

import type { EndpointId } from '../msg/address.js';
import { BLOCKED, type Blocked } from './wasi/blocking.js';
import { Errno, WasiError } from './wasi/errno.js';
import { ByteQueue, type Spent } from './byte-queue.js';
import {
  EMPTY, PIPE_BUF, PIPE_CAPACITY, PIPE_READ, PIPE_WRITE, PipeEnd, PipeReadEnd, PipeWriteEnd, Watchers, accepted,
  type PipeEndKind, type ReadSource, type WriteSink,
} from './pipe-end.js';

/** The largest pipe_data the home sends: bounds one message's copy and allocation. */
const DATA_MESSAGE_BYTES = 64 * 1024;

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
