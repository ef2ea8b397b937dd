/**
 * A file of another kernel: the description a process holds when a host file it had open came
 * with it from another node, or was given to it there (a spawn with a redirection). The host fd
 * stays at the file's home, the kernel that gave it, in that kernel's deputy table
 * (src/services/file-deputy.ts, which also carries the messages); this description sends each
 * operation there — MOSIX's deputy, Popcorn's syscall forwarding.
 *
 * Only fd_read and fd_write may wait (they alone can unwind a process, WASI_MAY_UNWIND in
 * src/wasm/abi.ts), so what the other syscalls need is kept here and answered at once:
 *   - the offset: each description has its own, as after a re-open within a node
 *     (fd-transfer.ts). Reads and writes send it, so seek and tell are local and exact;
 *   - the attributes (an attribute cache, as NFS clients keep): the home's word after each
 *     operation, except while changes of this description are on their way, when they are what
 *     those changes will make them (a size grown by a write). Exact for a file only this
 *     description changes; another writer's changes show at the next answer;
 *   - set size, allocate, set times and sync are sent in order and not waited for: the home does
 *     them before any later read or write of this kernel.
 * An error the home reports for a write or a change is returned by the next read, write or sync
 * (as NFS reports write-behind errors late).
 *
 * Reads are popcorn's blocking operations: the first run sends file_read and returns BLOCKED,
 * having changed nothing; the re-run after the answer takes the bytes (Operation). Writes go as
 * a pipe's RemoteWriter's do (pipe.ts): sent at once within a credit of unanswered bytes, and
 * BLOCKED, having done nothing, once it is used up. fd_pread and fd_pwrite cannot wait, so they
 * are ENOTSUP on a remote file.
 */

import type { EndpointId } from '../msg/address.js';
import { Operation, WaitQueue } from './operation.js';
import { ByteQueue, NO_OWNER } from './byte-queue.js';
import { PIPE_BUF, WRITE_CREDIT } from './pipe-end.js';
import { BLOCKED, type Blocked, type Pollable } from './wasi/blocking.js';
import { Errno, WasiError } from './wasi/errno.js';
import { BaseDescription, seekTarget } from './wasi/file-description.js';
import { FILE_RIGHTS, Fdflags, Filetype, STREAM_RIGHTS, type Filestat, type TimeSpec } from './wasi/types.js';

/** Names a file kept by a deputy system-wide. */
export interface RemoteFileRef {
  /** The kernel that keeps the file open. */
  readonly home: EndpointId;
  readonly handle: number;
}

/** The most a read asks its home for at once (a larger read returns this much, as a short read). */
export const MAX_REMOTE_READ = 256 * 1024;

/** A change other than a write, sent home in order and not waited for. */
export type FileChange =
  | { op: 'size'; size: number }
  | { op: 'allocate'; offset: number; len: number }
  | { op: 'times'; atim: TimeSpec; mtim: TimeSpec }
  | { op: 'sync'; dataOnly: boolean };

/** How a remote file reaches its home. Each `done` runs once, with the home's answer or an error. */
export interface RemoteFileLinks {
  read(ref: RemoteFileRef, position: number, len: number, done: (error: WasiError | null, data?: Uint8Array, stat?: Filestat) => void): void;
  write(ref: RemoteFileRef, position: number, append: boolean, data: Uint8Array, done: (error: WasiError | null, end?: number, stat?: Filestat) => void): void;
  change(ref: RemoteFileRef, change: FileChange, done: (error: WasiError | null, stat?: Filestat) => void): void;
  /** The description closed: give its reference back. */
  close(ref: RemoteFileRef): void;
}

/** What another kernel needs to go on with this description, besides where its home keeps it. */
export interface RemoteFileState {
  readable: boolean;
  writable: boolean;
  stat: Filestat;
  /** A write error not yet returned by a syscall (errno; 0: none). */
  error: number;
  /** A stream's bytes received from the home and not yet read. */
  unread: Uint8Array;
}

interface ReadAnswer {
  position: number;
  data: Uint8Array;
}

/** Regular files and block devices have an offset (as HostFile decides); the rest are streams. */
export const seekableType = (filetype: number): boolean => filetype === Filetype.REGULAR_FILE || filetype === Filetype.BLOCK_DEVICE;

export class RemoteFile extends BaseDescription {
  readonly filetype: number;
  readonly maxRights: number;
  readonly readable: boolean;
  readonly writable: boolean;
  override readonly pollable: Pollable;
  private readonly seekable: boolean;
  private position: number;
  private attrs: Filestat;
  /** The first error the home reported that no syscall has returned yet. */
  private error: WasiError | null;
  /** The read on its way, or answered and not yet taken by a syscall. */
  private reading: Operation<ReadAnswer> | undefined;
  /**
   * Bytes received beyond what a syscall took: a stream's, all kept in order; a file's, valid
   * while the offset is `aheadAt` and until this description changes the file.
   */
  private readonly ahead = new ByteQueue();
  private aheadAt = 0;
  /** The file ended at this offset when last read there (one read returns 0 for it), or -1. */
  private eofAt = -1;
  /** Bytes written and not answered yet: the credit in use. */
  private unanswered = 0;
  /** Writes and changes sent, and answered: attributes are the home's word when the two are equal. */
  private sent = 0;
  private answered = 0;
  private readonly waiters = new WaitQueue();
  private closed = false;

  constructor(readonly ref: RemoteFileRef, private readonly links: RemoteFileLinks, state: RemoteFileState, position: number, fdflags: number) {
    super();
    this.readable = state.readable;
    this.writable = state.writable;
    this.attrs = { ...state.stat };
    this.filetype = state.stat.filetype;
    this.seekable = seekableType(this.filetype);
    this.maxRights = this.seekable ? FILE_RIGHTS : STREAM_RIGHTS;
    this.position = this.seekable ? position : 0;
    this.fdflags = fdflags;
    this.error = state.error === 0 ? null : new WasiError(state.error, 'an earlier write to a file of another node failed');
    if (state.unread.length > 0) this.ahead.append(state.unread.slice(), NO_OWNER);
    this.pollable = {
      readReady: () => this.error !== null || this.reading === undefined || this.reading.done || this.ahead.size > 0,
      writeReady: () => this.error !== null || WRITE_CREDIT - this.unanswered >= PIPE_BUF,
      watch: (fn) => this.waiters.watch(fn),
    };
  }

  // ---- reads: ask, wait, take ----

  override read(buf: Uint8Array, off: number, len: number): number | Blocked {
    if (!this.readable) throw new WasiError(Errno.BADF, 'fd not open for reading');
    this.raise();
    if (len === 0) return 0;
    for (;;) {
      const answered = this.reading;
      if (answered?.done === true) {
        this.reading = undefined;
        this.took(answered.result()); // throws the read's error
      }
      const n = this.fromAhead(buf, off, len);
      if (n !== undefined) return n;
      if (this.reading !== undefined) return BLOCKED;
      this.ask(len);
      if (!(this.reading as Operation<ReadAnswer> | undefined)?.done) return BLOCKED; // (a refused request answers at once)
    }
  }

  private ask(len: number): void {
    const op = new Operation<ReadAnswer>();
    const position = this.position;
    this.reading = op;
    this.links.read(this.ref, position, Math.min(len, MAX_REMOTE_READ), (error, data, stat) => {
      if (error === null && stat !== undefined) this.heard(stat);
      op.complete(error, { position, data: data ?? new Uint8Array(0) });
      this.waiters.notify();
    });
  }

  /** An answer to a read: its bytes become readable (a file's only if the offset is still where it was read). */
  private took(answer: ReadAnswer): void {
    if (!this.seekable) {
      if (answer.data.length === 0) this.eofAt = 0;
      else this.ahead.append(answer.data, NO_OWNER);
      return;
    }
    if (answer.position !== this.position) return; // the offset moved meanwhile: read there instead
    this.ahead.clear();
    this.ahead.append(answer.data, NO_OWNER);
    this.aheadAt = answer.position;
    this.eofAt = answer.data.length === 0 ? answer.position : -1;
  }

  /** Bytes for a read from what came back: how many, 0 at the end of the file, or undefined if there are none. */
  private fromAhead(buf: Uint8Array, off: number, len: number): number | undefined {
    if (this.seekable && this.aheadAt !== this.position) this.ahead.clear();
    if (this.ahead.size > 0) {
      const n = this.ahead.copyOut(buf, off, len);
      if (this.seekable) {
        this.position += n;
        this.aheadAt = this.position;
      }
      return n;
    }
    if (this.eofAt === this.position) {
      this.eofAt = -1; // one end of file per read that found it: the file may grow
      return 0;
    }
    return undefined;
  }

  // ---- writes and changes: sent in order, not waited for ----

  override write(buf: Uint8Array, off: number, len: number): number | Blocked {
    if (!this.writable) throw new WasiError(Errno.BADF, 'fd not open for writing');
    this.raise();
    if (len === 0) return 0;
    const room = WRITE_CREDIT - this.unanswered;
    if (room < Math.min(len, PIPE_BUF)) return BLOCKED; // up to PIPE_BUF bytes go in one piece, as to a pipe
    const n = Math.min(len, room);
    const append = (this.fdflags & Fdflags.APPEND) !== 0;
    let at = this.position;
    if (this.seekable) {
      if (append) at = Number(this.attrs.size); // where the home will write, if nobody else grows the file
      this.position = at + n;
      this.grown(this.position);
    }
    this.forgetAhead();
    this.unanswered += n;
    this.sent++;
    const expected = this.position;
    // The messenger copies the bytes into its frame before this returns.
    this.links.write(this.ref, at, append, buf.subarray(off, off + n), (error, end, stat) => {
      this.unanswered -= n;
      // An append lands at the home's end of the file: the offset follows it if nothing moved it since.
      if (error === null && append && end !== undefined && this.position === expected && this.sent === this.answered + 1) this.position = end;
      this.answer(error, stat);
    });
    return n;
  }

  override setSize(size: bigint): void {
    if (!this.writable) throw new WasiError(Errno.BADF, 'fd not open for writing');
    if (!this.seekable) throw new WasiError(Errno.INVAL, 'cannot set the size of a stream');
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new WasiError(Errno.FBIG, 'size too large');
    this.change({ op: 'size', size: Number(size) });
    this.attrs.size = size;
  }

  override allocate(offset: bigint, len: bigint): void {
    if (!this.seekable) return super.allocate(offset, len);
    if (!this.writable) throw new WasiError(Errno.BADF, 'fd not open for writing');
    const end = offset + len;
    if (end > BigInt(Number.MAX_SAFE_INTEGER)) throw new WasiError(Errno.FBIG, 'allocate beyond the largest file');
    this.change({ op: 'allocate', offset: Number(offset), len: Number(len) });
    this.grown(Number(end));
  }

  override setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    this.change({ op: 'times', atim, mtim });
    const now = BigInt(Date.now()) * 1_000_000n;
    if (atim !== undefined) this.attrs.atim = atim === 'now' ? now : atim;
    if (mtim !== undefined) this.attrs.mtim = mtim === 'now' ? now : mtim;
  }

  /** Ordered before what this kernel sends next, not waited for: fd_sync cannot wait. */
  override sync(dataOnly: boolean): void {
    this.raise();
    this.change({ op: 'sync', dataOnly });
  }

  private change(change: FileChange): void {
    this.forgetAhead();
    this.sent++;
    this.links.change(this.ref, change, (error, stat) => this.answer(error, stat));
  }

  /** A write or change was answered. */
  private answer(error: WasiError | null, stat: Filestat | undefined): void {
    this.answered++;
    if (error !== null) this.error ??= error;
    else if (stat !== undefined) this.heard(stat);
    this.waiters.notify();
  }

  /** The home's attributes, taken unless changes of ours are still on their way. */
  private heard(stat: Filestat): void {
    if (this.sent === this.answered) this.attrs = { ...stat };
  }

  private grown(end: number): void {
    if (BigInt(end) > this.attrs.size) this.attrs.size = BigInt(end);
    this.attrs.mtim = BigInt(Date.now()) * 1_000_000n;
  }

  /** This description changed the file: bytes read before are not the file any more. */
  private forgetAhead(): void {
    if (!this.seekable) return;
    this.ahead.clear();
    this.eofAt = -1;
  }

  /** Return a reported error once. */
  private raise(): void {
    const error = this.error;
    if (error === null) return;
    this.error = null;
    throw error;
  }

  // ---- answered here ----

  override seek(offset: bigint, whence: number): bigint {
    if (!this.seekable) return super.seek(offset, whence);
    const next = seekTarget(this.position, () => this.attrs.size, offset, whence);
    this.position = Number(next);
    return next;
  }

  override stat(): Filestat {
    return { ...this.attrs };
  }

  override readableBytes(): bigint {
    if (!this.seekable) return BigInt(this.ahead.size);
    const left = this.attrs.size - BigInt(this.position);
    return left > 0n ? left : 0n;
  }

  override pread(buf: Uint8Array, off: number, len: number, position: bigint): number {
    if (!this.seekable) return super.pread(buf, off, len, position);
    throw new WasiError(Errno.NOTSUP, 'pread on a file of another node goes by readAt (remote-calls.ts)');
  }

  override pwrite(buf: Uint8Array, off: number, len: number, position: bigint): number {
    if (!this.seekable) return super.pwrite(buf, off, len, position);
    throw new WasiError(Errno.NOTSUP, 'pwrite on a file of another node goes by writeAt (remote-calls.ts)');
  }

  /** fd_pread: up to `len` bytes at `position` from the home; the offset does not move. */
  readAt(position: number, len: number, done: (error: WasiError | null, data?: Uint8Array) => void): void {
    if (!this.readable) throw new WasiError(Errno.BADF, 'fd not open for reading');
    if (!this.seekable) throw new WasiError(Errno.SPIPE, 'pread on a stream');
    this.raise();
    this.links.read(this.ref, position, Math.min(len, MAX_REMOTE_READ), (error, data, stat) => {
      if (error === null && stat !== undefined) this.heard(stat);
      done(error, data);
    });
  }

  /** fd_pwrite: `data` at `position`, in order with this description's other writes; the offset does not move. */
  writeAt(position: number, data: Uint8Array, done: (error: WasiError | null) => void): void {
    if (!this.writable) throw new WasiError(Errno.BADF, 'fd not open for writing');
    if (!this.seekable) throw new WasiError(Errno.SPIPE, 'pwrite on a stream');
    this.raise();
    this.forgetAhead();
    this.grown(position + data.length);
    this.unanswered += data.length;
    this.sent++;
    this.links.write(this.ref, position, false, data, (error, _end, stat) => {
      this.unanswered -= data.length;
      this.answer(error, stat);
      done(error);
    });
  }

  override close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ahead.clear();
    this.links.close(this.ref);
  }

  // ---- handing it to another kernel ----

  /** The offset another kernel's description on the same reference starts at. */
  get offset(): number {
    return this.position;
  }

  /**
   * Before the file goes to another kernel: once the writes and changes sent so far are answered
   * (so that the other kernel's reads come after them) and no read is on its way, what the other
   * kernel needs. A stream's bytes received and not read go with it, as a pipe end's do; an error
   * not yet returned is returned there too (and here, if this description stays in use).
   */
  settle(done: (position: number, state: RemoteFileState) => void): void {
    const target = this.sent;
    const check = (): boolean => {
      if (this.answered < target || (this.reading !== undefined && !this.reading.done)) return false;
      const answered = this.reading;
      if (!this.seekable && answered?.done === true) {
        this.reading = undefined;
        try {
          this.took(answered.result());
        } catch (error) {
          this.error ??= error instanceof WasiError ? error : new WasiError(Errno.IO, String(error));
        }
      }
      const unread = this.seekable ? new Uint8Array(0) : this.ahead.take(this.ahead.size).slice();
      done(this.position, { readable: this.readable, writable: this.writable, stat: { ...this.attrs }, error: this.error?.errno ?? 0, unread });
      return true;
    };
    if (check()) return;
    const cancel = this.waiters.watch(() => {
      if (check()) cancel();
    });
  }
}
