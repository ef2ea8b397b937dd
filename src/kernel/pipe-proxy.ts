/**
 * Proxies of a pipe on the kernels that hold its ends without being its home (pipe.ts): one per
 * (pipe, end) per kernel, shared by every description of that end there. A writer proxy sends
 * bytes home within a credit; a reader proxy asks for a window of bytes and keeps what came.
 */

import { BLOCKED, type Blocked } from './wasi/blocking.js';
import { Errno, WasiError } from './wasi/errno.js';
import { ByteQueue, NO_OWNER } from './byte-queue.js';
import {
  EMPTY, PIPE_BUF, READ_WINDOW, WRITE_CREDIT, PipeEnd, PipeReadEnd, PipeWriteEnd, Watchers, accepted,
  type PipeEndRef, type ReadSource, type WriteSink,
} from './pipe-end.js';

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
