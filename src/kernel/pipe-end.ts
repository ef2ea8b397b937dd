/**
 * A pipe's ends as file descriptions, and what every part of a pipe shares: the references that
 * name an end system-wide and POSIX's sizes. An end reads from a ReadSource and writes to a
 * WriteSink: the pipe at its home (pipe.ts) or a proxy on another kernel (pipe-proxy.ts).
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
export const EMPTY = new Uint8Array(0);

/** How many bytes of a `len`-byte write go in with `room` free: 0 means wait. */
export function accepted(len: number, room: number): number {
  if (len <= PIPE_BUF) return room >= len ? len : 0;
  return Math.max(0, Math.min(len, room));
}

/** Callbacks waiting for readiness to change. */
export class Watchers {
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
  /** A proxy's: stop the home sending, and give what came and was not read (pipe-proxy.ts). */
  drain?(done: (error: Error | null, unread: Uint8Array) => void): void;
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
    if (this.source.drain !== undefined) this.source.drain(done);
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
