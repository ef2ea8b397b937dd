/**
 * A host directory: a directory of this node's disk as a description (directory.ts), whose path
 * calls are resolved here, in it, by the cores of path-ops.ts (the directory deputy runs the same
 * cores for the calls of a RemoteDirectory at its home).
 */
import * as fs from 'node:fs';
import { need } from './access.js';
import { Directory } from './directory.js';
import { Errno, WasiError, host } from './errno.js';
import type { FdTable } from './fd-table.js';
import { filestatOf, filetypeOf, type FileDescription } from './file-description.js';
import { setFdTimes, setPathTimes } from './host-times.js';
import {
  createDirectoryIn, linkIn, openIn, readlinkIn, removeDirectoryIn, renameIn, setTimesIn, statIn, symlinkIn, unlinkFileIn,
  type HostRoot,
} from './path-ops.js';
import { pinned } from './sandbox.js';
import { Filetype, type DirEntry, type Filestat, type TimeSpec } from './types.js';

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
export class HostDirectory extends Directory implements HostRoot {
  readonly readable = true;
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

  // ---- path calls, resolved here ----

  /** The second directory of a link or rename must be of this node too: a remote one is EXDEV. */
  peerOf(fds: FdTable, fd: number, right: number): this {
    const e = fds.get(fd);
    const d = e.description;
    if (!(d instanceof HostDirectory)) {
      if (d instanceof Directory) throw new WasiError(Errno.XDEV, `fd ${fd} is a directory of another node, the other one is not`);
      throw new WasiError(Errno.NOTDIR, `fd ${fd} is not a directory`);
    }
    need(e, right);
    return d as this;
  }

  createDirectoryAt(path: string): number {
    createDirectoryIn(this, path);
    return 0;
  }

  statAt(path: string, follow: boolean): Filestat {
    return statIn(this, path, follow);
  }

  setTimesAt(path: string, follow: boolean, atim: bigint, mtim: bigint, fst: number): number {
    setTimesIn(this, path, follow, atim, mtim, fst);
    return 0;
  }

  linkAt(path: string, follow: boolean, to: this, path2: string): number {
    linkIn(this, path, follow, to, path2);
    return 0;
  }

  openAt(path: string, dirflags: number, oflags: number, rights: number, fdflags: number): FileDescription {
    return openIn(this, path, dirflags, oflags, rights, fdflags);
  }

  /** A directory that openAt opened in this one, held by `handle` (HostRoot). */
  opened(hostPath: string, handle: number): HostDirectory {
    return new HostDirectory(hostPath, handle);
  }

  readlinkAt(path: string): Uint8Array {
    return readlinkIn(this, path);
  }

  removeDirectoryAt(path: string): number {
    removeDirectoryIn(this, path);
    return 0;
  }

  renameAt(path: string, to: this, path2: string): number {
    renameIn(this, path, to, path2);
    return 0;
  }

  symlinkAt(target: string, path: string): number {
    symlinkIn(this, target, path);
    return 0;
  }

  unlinkFileAt(path: string): number {
    unlinkFileIn(this, path);
    return 0;
  }

  listFrom(cookie: bigint): DirEntry[] {
    if (cookie === 0n || this.listing === undefined) this.listing = this.readdir();
    return this.listing;
  }

  /** "." and ".." then the entries in host order (the directory deputy sends it whole). */
  readdir(): DirEntry[] {
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

