/**
 * Open file descriptions: what an fd refers to. The fd table (fd-table.ts) maps numbers to
 * these; several fds (and, later, several processes) may share one.
 *
 * Host files and directories use synchronous node:fs calls only: a kernel is a worker thread
 * that runs syscalls to completion and has no event loop to wait on a promise.
 *
 * Kinds the kernel adds (terminal, pipe end, socket) implement the same interface. Their
 * read/write may return BLOCKED when they would wait; they must then have changed nothing, because
 * the syscall is re-run from the top after the wake-up (see blocking.ts).
 */
import * as fs from 'node:fs';
import { BLOCKED, type Blocked, type Pollable } from './blocking.js';
import { Errno, WasiError, host, hostErrno } from './errno.js';
import { setFdTimes, setPathTimes } from './host-times.js';
import { pinned, type DirRoot } from './sandbox.js';
import {
  DIR_RIGHTS, FILE_RIGHTS, Fdflags, Filetype, STREAM_RIGHTS, Whence,
  type DirEntry, type Filestat, type TimeSpec,
} from './types.js';

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
  /** The whole listing, "." and ".." first. ENOTDIR on non-directories. */
  readdir(): DirEntry[];
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
  readdir(): DirEntry[] {
    throw new WasiError(Errno.NOTDIR, 'readdir on a non-directory');
  }
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

// ---- host directories ------------------------------------------------------------------------

/**
 * A host directory. Every path operation is confined to it as its root (sandbox.ts) — like a
 * cap-std Dir, `..` cannot leave it even when the parent is also visible.
 *
 * A preopen is named by its host path (the directory the user gave with --dir). Every other
 * directory — one the guest opened with path_open, one handed on by spawn or a move within the
 * node, one restored from a checkpoint — holds a host fd on the directory (`handle`, O_DIRECTORY,
 * opened where it was found, never by a path the host could redirect), and everything it does
 * goes through that fd (/proc/PID/fd/N): like a Linux fd, it names the directory, not the path,
 * so a directory renamed away and replaced by a symlink to elsewhere is still the one used.
 * The handle is owned by this description and closed by close(), once (the fd table calls it
 * when the last fd on the description goes; host fds are shared by every kernel of the node).
 */
export class HostDirectory extends BaseDescription implements DirRoot {
  readonly filetype = Filetype.DIRECTORY;
  readonly maxRights = DIR_RIGHTS;
  override readonly maxInheritingRights = DIR_RIGHTS | FILE_RIGHTS;
  readonly readable = true;
  readonly writable = false;
  private listing: DirEntry[] | undefined;
  private held: number | undefined;
  private closed = false;

  /**
   * `hostPath`: a preopen's path; for a held directory, where it was when opened (for messages).
   * `handle`: a host fd on the directory, which this description now owns.
   */
  constructor(readonly hostPath: string, handle?: number) {
    super();
    this.held = handle;
  }

  /** A directory opened by its host path and held from then on (a checkpoint's, at restore). */
  static openPath(hostPath: string): HostDirectory {
    return new HostDirectory(hostPath, host('open', () => fs.openSync(hostPath, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)));
  }

  /** The host fd this directory is used through; undefined for a preopen (used by path). */
  get handle(): number | undefined {
    if (this.closed) throw new WasiError(Errno.BADF, 'directory closed');
    return this.held;
  }

  /** A path naming the directory for host calls: its held fd through /proc, or a preopen's path. */
  private get root(): string {
    const fd = this.handle;
    return fd === undefined ? this.hostPath : pinned(fd);
  }

  /**
   * A new host fd on the same directory, for another owner (a kernel of this node): opened
   * through this one's handle, so it is the same directory whatever its path is now; a
   * preopen's by its path.
   */
  openHandle(): number {
    const at = this.root;
    return host('open', () => fs.openSync(at, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY));
  }

  /** A second description of the same directory, with its own handle (a preopen: its path). */
  reopen(): HostDirectory {
    return this.handle === undefined ? new HostDirectory(this.hostPath) : new HostDirectory(this.hostPath, this.openHandle());
  }

  // wasmtime: reading or writing a directory fd fails with EISDIR (POSIX read(2) on a dir).
  override read(): number {
    throw new WasiError(Errno.ISDIR, 'read on a directory');
  }
  override write(): number {
    throw new WasiError(Errno.ISDIR, 'write on a directory');
  }
  override pread(): number {
    throw new WasiError(Errno.ISDIR, 'pread on a directory');
  }
  override pwrite(): number {
    throw new WasiError(Errno.ISDIR, 'pwrite on a directory');
  }
  // wasmtime's preview1 refuses file-only operations on a directory descriptor with EBADF.
  override seek(): bigint {
    throw new WasiError(Errno.BADF, 'seek on a directory');
  }
  override setSize(): void {
    throw new WasiError(Errno.BADF, 'set size on a directory');
  }
  override allocate(): void {
    throw new WasiError(Errno.BADF, 'allocate on a directory');
  }

  override stat(): Filestat {
    const fd = this.handle;
    if (fd !== undefined) return filestatOf(host('fstat', () => fs.fstatSync(fd, { bigint: true })));
    return filestatOf(host('stat', () => fs.statSync(this.hostPath, { bigint: true })));
  }

  override setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    const fd = this.handle;
    if (fd !== undefined) setFdTimes(fd, atim, mtim);
    else setPathTimes(this.hostPath, atim, mtim, true);
  }

  override sync(dataOnly: boolean): void {
    const held = this.handle;
    const fd = held ?? host('open', () => fs.openSync(this.hostPath, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY));
    try {
      if (dataOnly) host('fdatasync', () => fs.fdatasyncSync(fd));
      else host('fsync', () => fs.fsyncSync(fd));
    } finally {
      if (held === undefined) fs.closeSync(fd);
    }
  }

  /**
   * "." and ".." then the entries in host order. A fresh listing is taken for cookie 0 (a
   * rewind); later cookies index the same snapshot, so a directory changed mid-listing neither
   * repeats nor skips entries of one pass.
   */
  listFrom(cookie: bigint): DirEntry[] {
    if (cookie === 0n || this.listing === undefined) this.listing = this.readdir();
    return this.listing;
  }

  override readdir(): DirEntry[] {
    const root = this.root;
    const self = host('stat', () => fs.statSync(root, { bigint: true }));
    // ".." carries the directory's own inode, as in wasmtime: never 0, since wasi-libc's scandir()
    // fstatat()s every entry whose d_ino is 0 to learn it, ".." included (readdir() skips that
    // one) — and ".." from a directory fd that is not a preopen leaves it: EPERM, scandir() fails
    // (Yosys's of its ABC temp dir did, and Yosys exited 1).
    const entries: DirEntry[] = [
      { name: '.', ino: self.ino, filetype: Filetype.DIRECTORY },
      { name: '..', ino: self.ino, filetype: Filetype.DIRECTORY },
    ];
    for (const d of host('readdir', () => fs.readdirSync(root, { withFileTypes: true }))) {
      const st = fs.lstatSync(`${root}/${d.name}`, { bigint: true, throwIfNoEntry: false });
      entries.push({ name: d.name, ino: st?.ino ?? 0n, filetype: filetypeOf(d) });
    }
    return entries;
  }

  /** Closes the handle, once (a second call does nothing: the fd number may be another's by then). */
  override close(): void {
    if (this.closed) return;
    this.closed = true;
    const fd = this.held;
    this.held = undefined;
    if (fd !== undefined) host('close', () => fs.closeSync(fd));
  }
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
