/**
 * Open file descriptions: what an fd refers to. The fd table (fd-table.ts) maps numbers to
 * these; several fds (and, later, several processes) may share one.
 *
 * Host files (and host directories, host-directory.ts) use synchronous node:fs calls only: a
 * kernel is a worker thread that runs syscalls to completion and has no event loop to wait on a
 * promise.
 *
 * Kinds the kernel adds (terminal, pipe end, socket) implement the same interface. Their
 * read/write may return BLOCKED when they would wait; they must then have changed nothing, because
 * the syscall is re-run from the top after the wake-up (see blocking.ts). Directories add the path
 * calls made relative to them (directory.ts).
 */
import * as fs from 'node:fs';
import { BLOCKED, type Blocked, type Pollable } from './blocking.js';
import { Errno, WasiError, host, hostErrno } from './errno.js';
import { setFdTimes } from './host-times.js';
import { FILE_RIGHTS, Fdflags, Filetype, STREAM_RIGHTS, Whence, type Filestat, type TimeSpec } from './types.js';

export interface FileDescription {
  /** WASI `$filetype` reported by fd_fdstat_get / fd_filestat_get. */
  readonly filetype: number;
  /** Rights this object can ever grant; an fd's rights are a subset (wasi.ts intersects). */
  readonly maxRights: number;
  /** Rights a directory passes on to what path_open opens through it (0 for non-directories). */
  readonly maxInheritingRights: number;
  /** Opened for reading / writing: using the other direction is EBADF (as POSIX and wasmtime). */
  readonly readable: boolean;
  readonly writable: boolean;
  /** File status flags ($fdflags: APPEND, NONBLOCK, ...), shared by all fds on this description. */
  fdflags: number;
  /** For poll_oneoff and for blocking reads/writes. */
  readonly pollable: Pollable;

  /** Reads at the current position into buf[off, off+len). 0 means end of file. */
  read(buf: Uint8Array, off: number, len: number): number | Blocked;
  /** Writes buf[off, off+len) at the current position (at the end when APPEND). */
  write(buf: Uint8Array, off: number, len: number): number | Blocked;
  /** Positional I/O: does not move the position. ESPIPE on streams. */
  pread(buf: Uint8Array, off: number, len: number, position: bigint): number;
  pwrite(buf: Uint8Array, off: number, len: number, position: bigint): number;
  /** Moves the position; returns the new one. */
  seek(offset: bigint, whence: number): bigint;
  /** Bytes a read could return now without blocking (poll's nbytes); 0 if unknown. */
  readableBytes(): bigint;
  stat(): Filestat;
  setSize(size: bigint): void;
  setTimes(atim: TimeSpec, mtim: TimeSpec): void;
  allocate(offset: bigint, len: bigint): void;
  sync(dataOnly: boolean): void;
  /** Releases host resources. Called once, when the last fd referring to it is closed. */
  close(): void;
}

/** A Pollable that is always ready (regular files and directories never block). */
export const ALWAYS_READY: Pollable = {
  readReady: () => true,
  writeReady: () => true,
  watch: () => () => {},
};

/**
 * Defaults for every operation: the errno wasmtime gives when a kind does not support it, so a
 * new kind only writes what it has.
 */
export abstract class BaseDescription implements FileDescription {
  abstract readonly filetype: number;
  abstract readonly maxRights: number;
  readonly maxInheritingRights: number = 0;
  abstract readonly readable: boolean;
  abstract readonly writable: boolean;
  fdflags = 0;
  readonly pollable: Pollable = ALWAYS_READY;

  read(_buf: Uint8Array, _off: number, _len: number): number | Blocked {
    throw new WasiError(Errno.BADF, 'not readable');
  }
  write(_buf: Uint8Array, _off: number, _len: number): number | Blocked {
    throw new WasiError(Errno.BADF, 'not writable');
  }
  pread(_buf: Uint8Array, _off: number, _len: number, _position: bigint): number {
    throw new WasiError(Errno.SPIPE, 'pread on a stream');
  }
  pwrite(_buf: Uint8Array, _off: number, _len: number, _position: bigint): number {
    throw new WasiError(Errno.SPIPE, 'pwrite on a stream');
  }
  seek(_offset: bigint, _whence: number): bigint {
    throw new WasiError(Errno.SPIPE, 'seek on a stream');
  }
  readableBytes(): bigint {
    return 0n;
  }
  stat(): Filestat {
    return { dev: 0n, ino: 0n, filetype: this.filetype, nlink: 1n, size: 0n, atim: 0n, mtim: 0n, ctim: 0n };
  }
  setSize(_size: bigint): void {
    throw new WasiError(Errno.INVAL, 'cannot set the size of this kind of file');
  }
  setTimes(_atim: TimeSpec, _mtim: TimeSpec): void {
    throw new WasiError(Errno.NOTSUP, 'cannot set the times of this kind of file');
  }
  allocate(_offset: bigint, _len: bigint): void {
    throw new WasiError(Errno.SPIPE, 'allocate on a stream');
  }
  sync(_dataOnly: boolean): void {}
  close(): void {}
}

// ---- host files ------------------------------------------------------------------------------

/** node's BigIntStats → `$filestat`. */
export function filestatOf(st: fs.BigIntStats): Filestat {
  return {
    dev: st.dev, ino: st.ino, filetype: filetypeOf(st), nlink: st.nlink, size: st.size,
    atim: st.atimeNs, mtim: st.mtimeNs, ctim: st.ctimeNs,
  };
}

export function filetypeOf(st: fs.Stats | fs.BigIntStats | fs.Dirent): number {
  if (st.isFile()) return Filetype.REGULAR_FILE;
  if (st.isDirectory()) return Filetype.DIRECTORY;
  if (st.isSymbolicLink()) return Filetype.SYMBOLIC_LINK;
  if (st.isCharacterDevice()) return Filetype.CHARACTER_DEVICE;
  if (st.isBlockDevice()) return Filetype.BLOCK_DEVICE;
  if (st.isSocket()) return Filetype.SOCKET_STREAM;
  return Filetype.UNKNOWN; // FIFOs: wasmtime reports "unknown" too
}

/**
 * A host file opened by path_open (or a host stdio fd). We keep the position ourselves and use
 * positional reads/writes, so the host fd's own offset never matters — which also makes the
 * description easy to capture for migration later. Character devices and FIFOs are not seekable
 * and use plain read/write (position null).
 */
export class HostFile extends BaseDescription {
  readonly filetype: number;
  readonly maxRights: number;
  private position = 0;
  private readonly seekable: boolean;

  constructor(
    /** Host fd from fs.openSync; owned by this description. */
    readonly fd: number,
    readonly readable: boolean,
    readonly writable: boolean,
    fdflags = 0,
  ) {
    super();
    const st = host('fstat', () => fs.fstatSync(fd));
    this.filetype = filetypeOf(st);
    this.seekable = st.isFile() || st.isBlockDevice();
    this.maxRights = this.seekable ? FILE_RIGHTS : STREAM_RIGHTS;
    this.fdflags = fdflags;
  }

  override read(buf: Uint8Array, off: number, len: number): number {
    if (!this.readable) throw new WasiError(Errno.BADF, 'fd not open for reading');
    try {
      const n = fs.readSync(this.fd, buf, off, len, this.seekable ? this.position : null);
      this.position += n;
      return n;
    } catch (err) {
      throw hostError('read', err);
    }
  }

  override write(buf: Uint8Array, off: number, len: number): number {
    if (!this.writable) throw new WasiError(Errno.BADF, 'fd not open for writing');
    try {
      if (!this.seekable) return fs.writeSync(this.fd, buf, off, len);
      // APPEND is emulated (not the host O_APPEND) so fd_fdstat_set_flags can toggle it.
      if (this.fdflags & Fdflags.APPEND) this.position = fs.fstatSync(this.fd).size;
      const n = fs.writeSync(this.fd, buf, off, len, this.position);
      this.position += n;
      return n;
    } catch (err) {
      throw hostError('write', err);
    }
  }

  override pread(buf: Uint8Array, off: number, len: number, position: bigint): number {
    if (!this.readable) throw new WasiError(Errno.BADF, 'fd not open for reading');
    if (!this.seekable) return super.pread(buf, off, len, position);
    return host('pread', () => fs.readSync(this.fd, buf, off, len, position));
  }

  override pwrite(buf: Uint8Array, off: number, len: number, position: bigint): number {
    if (!this.writable) throw new WasiError(Errno.BADF, 'fd not open for writing');
    if (!this.seekable) return super.pwrite(buf, off, len, position);
    return host('pwrite', () => fs.writeSync(this.fd, buf, off, len, Number(position)));
  }

  /** The file offset to carry with it elsewhere (0 for a FIFO or device, which have none). */
  get offset(): number {
    return this.seekable ? this.position : 0;
  }

  /**
   * A second host fd on the same open file (Linux's /proc/self/fd), for another owner: the same
   * access, its own offset.
   */
  openHandle(): number {
    const C = fs.constants;
    const access = this.readable && this.writable ? C.O_RDWR : this.readable ? C.O_RDONLY : C.O_WRONLY;
    return host('open', () => fs.openSync(`/proc/self/fd/${this.fd}`, access));
  }

  override seek(offset: bigint, whence: number): bigint {
    if (!this.seekable) return super.seek(offset, whence);
    const next = seekTarget(this.position, () => this.stat().size, offset, whence);
    this.position = Number(next);
    return next;
  }

  override readableBytes(): bigint {
    if (!this.seekable) return 0n;
    const left = this.stat().size - BigInt(this.position);
    return left > 0n ? left : 0n;
  }

  override stat(): Filestat {
    return filestatOf(host('fstat', () => fs.fstatSync(this.fd, { bigint: true })));
  }

  override setSize(size: bigint): void {
    if (!this.writable) throw new WasiError(Errno.BADF, 'fd not open for writing');
    host('ftruncate', () => fs.ftruncateSync(this.fd, Number(size)));
  }

  override setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    setFdTimes(this.fd, atim, mtim);
  }

  override allocate(offset: bigint, len: bigint): void {
    if (!this.seekable) return super.allocate(offset, len);
    if (!this.writable) throw new WasiError(Errno.BADF, 'fd not open for writing');
    // No posix_fallocate in node: growing the file to offset+len gives the same visible result.
    const end = offset + len;
    if (end > this.stat().size) this.setSize(end);
  }

  override sync(dataOnly: boolean): void {
    if (dataOnly) host('fdatasync', () => fs.fdatasyncSync(this.fd));
    else host('fsync', () => fs.fsyncSync(this.fd));
  }

  override close(): void {
    host('close', () => fs.closeSync(this.fd));
  }
}

function hostError(what: string, err: unknown): unknown {
  const errno = hostErrno(err);
  return errno === undefined ? err : new WasiError(errno, `${what}: ${(err as Error).message}`);
}

// ---- in-memory byte stream -------------------------------------------------------------------

/**
 * A byte queue: what tests use to capture stdout and feed stdin, and what the kernel uses for a
 * process's stdin. Reading an empty queue returns BLOCKED until data arrives or the writing side
 * is ended (then 0 = EOF). Writing returns BLOCKED only if a capacity was given and it is full.
 */
export class BufferedStream extends BaseDescription {
  readonly maxRights = STREAM_RIGHTS;
  readonly readable: boolean;
  readonly writable: boolean;
  private chunks: Uint8Array[] = [];
  private head = 0; // bytes of chunks[0] already consumed
  private size = 0;
  private ended = false;
  private watchers = new Set<() => void>();
  override readonly pollable: Pollable = {
    readReady: () => this.size > 0 || this.ended,
    writeReady: () => this.size < this.capacity,
    watch: (fn) => {
      this.watchers.add(fn);
      return () => this.watchers.delete(fn);
    },
  };

  constructor(
    opts: { readable?: boolean; writable?: boolean; capacity?: number; filetype?: number } = {},
    private readonly capacity = opts.capacity ?? Infinity,
    readonly filetype: number = opts.filetype ?? Filetype.UNKNOWN,
  ) {
    super();
    this.readable = opts.readable ?? true;
    this.writable = opts.writable ?? true;
  }

  /** Feeds bytes (or a string as UTF-8) from the outside, e.g. a terminal's input. */
  push(data: Uint8Array | string): void {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data.slice();
    if (bytes.length === 0) return;
    this.chunks.push(bytes);
    this.size += bytes.length;
    this.notify();
  }

  /** No more data will come: readers get EOF once the queue is drained. */
  end(): void {
    this.ended = true;
    this.notify();
  }

  /** Removes and returns everything queued. */
  drain(): Uint8Array {
    const out = new Uint8Array(this.size);
    this.take(out, 0, this.size);
    return out;
  }

  /** Everything queued, as UTF-8 text (consumed). */
  text(): string {
    return new TextDecoder().decode(this.drain());
  }

  get length(): number {
    return this.size;
  }

  override read(buf: Uint8Array, off: number, len: number): number | Blocked {
    if (!this.readable) throw new WasiError(Errno.BADF, 'stream not open for reading');
    if (this.size === 0) return this.ended ? 0 : BLOCKED;
    const n = this.take(buf, off, len);
    this.notify();
    return n;
  }

  override write(buf: Uint8Array, off: number, len: number): number | Blocked {
    if (!this.writable) throw new WasiError(Errno.BADF, 'stream not open for writing');
    if (this.ended) throw new WasiError(Errno.PIPE, 'stream ended');
    const room = this.capacity - this.size;
    if (room <= 0 && len > 0) return BLOCKED;
    const n = Math.min(len, room);
    if (n === 0) return 0;
    this.chunks.push(buf.slice(off, off + n));
    this.size += n;
    this.notify();
    return n;
  }

  override readableBytes(): bigint {
    return BigInt(this.size);
  }

  override stat(): Filestat {
    return { ...super.stat(), size: BigInt(this.size) };
  }

  override close(): void {
    this.ended = true;
    this.notify();
  }

  private take(buf: Uint8Array, off: number, len: number): number {
    let n = 0;
    while (n < len && this.chunks.length > 0) {
      const chunk = this.chunks[0]!;
      const k = Math.min(len - n, chunk.length - this.head);
      buf.set(chunk.subarray(this.head, this.head + k), off + n);
      n += k;
      this.head += k;
      if (this.head === chunk.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.size -= n;
    return n;
  }

  private notify(): void {
    for (const fn of [...this.watchers]) fn();
  }
}

/**
 * Where a seek of `offset` from `whence` lands, from `position` in a file of `size()` bytes;
 * EINVAL before the start, EOVERFLOW beyond what an offset can hold.
 */
export function seekTarget(position: number, size: () => bigint, offset: bigint, whence: number): bigint {
  let base: bigint;
  if (whence === Whence.SET) base = 0n;
  else if (whence === Whence.CUR) base = BigInt(position);
  else if (whence === Whence.END) base = size();
  else throw new WasiError(Errno.INVAL, `whence ${whence}`);
  const next = base + offset;
  if (next < 0n) throw new WasiError(Errno.INVAL, 'seek before the start of the file');
  if (next > BigInt(Number.MAX_SAFE_INTEGER)) throw new WasiError(Errno.OVERFLOW, 'seek too far');
  return next;
}
