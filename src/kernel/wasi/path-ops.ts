/**
 * The path_* system calls. Every guest path is resolved by sandbox.ts inside the directory fd it
 * is relative to; host calls go to the result's name inside its parent directory as the walk
 * holds it open (ResolvedAt.at), so a directory swapped for a symlink meanwhile cannot redirect
 * them, and the final component is never a symlink the host could follow (we resolved or refused
 * it), so host calls use the l* forms and O_NOFOLLOW. A directory fd's walk starts from the host
 * fd it holds (HostDirectory), not from its path.
 */
import * as fs from 'node:fs';
import { dirOf, need, timesFrom } from './access.js';
import { Errno, WasiError, host } from './errno.js';
import type { FdEntry, FdTable } from './fd-table.js';
import { HostDirectory, HostFile, filestatOf, type FileDescription } from './file-description.js';
import { setPathTimes } from './host-times.js';
import type { GuestMemory } from './memory.js';
import { DIRECTORY_FLAGS, withResolved, type Resolved, type ResolvedAt } from './sandbox.js';
import { Fdflags, Filetype, Lookupflags, Oflags, Rights, type Filestat } from './types.js';
import { writeFilestat } from './layout.js';

const C = fs.constants;

/** Refuses to create or remove the directory itself, or "x/." / "x/..". */
function requireName(r: Resolved, errno: number, what: string): void {
  if (r.parts.length === 0 || r.endsInDot) throw new WasiError(errno, `${what}: path names no entry`);
}

/**
 * Refuses "new/" as the name of a new file, link or symlink: a trailing slash names a directory
 * (POSIX), which none of them is. Linux's errnos, which wasmtime passes on: ENOENT for link and
 * symlink, EISDIR for open(O_CREAT).
 */
function requireNoTrailingSlash(r: Resolved, errno: number, what: string): void {
  if (r.trailingSlash) throw new WasiError(errno, `${what}: ${r.parts.join('/')}/ would be a directory`);
}

export function pathCreateDirectory(fds: FdTable, mem: GuestMemory, fd: number, p: number, len: number): void {
  createDirectoryIn(dirOf(fds, fd, Rights.PATH_CREATE_DIRECTORY), mem.string(p, len));
}

/** mkdir of `path` in `dir` (the core of path_create_directory, also for remote directories). */
export function createDirectoryIn(dir: HostDirectory, path: string): void {
  withResolved(dir, path, false, (r) => {
    requireName(r, Errno.EXIST, 'mkdir');
    if (r.stat !== undefined) throw new WasiError(Errno.EXIST, 'mkdir: exists');
    host('mkdir', () => fs.mkdirSync(r.at, 0o777));
  });
}

export function pathFilestatGet(
  fds: FdTable, mem: GuestMemory, fd: number, flags: number, p: number, len: number, out: number,
): void {
  const dir = dirOf(fds, fd, Rights.PATH_FILESTAT_GET);
  mem.check(out, 64);
  writeFilestat(mem, out, statIn(dir, mem.string(p, len), (flags & Lookupflags.SYMLINK_FOLLOW) !== 0));
}

/** The attributes of `path` in `dir` (the core of path_filestat_get). */
export function statIn(dir: HostDirectory, path: string, follow: boolean): Filestat {
  return withResolved(dir, path, follow, (r) => {
    if (r.stat === undefined) throw new WasiError(Errno.NOENT, 'stat: no such entry');
    return filestatOf(host('lstat', () => fs.lstatSync(r.at, { bigint: true })));
  });
}

export function pathFilestatSetTimes(
  fds: FdTable, mem: GuestMemory, fd: number, flags: number, p: number, len: number,
  atim: bigint, mtim: bigint, fst: number,
): void {
  setTimesIn(dirOf(fds, fd, Rights.PATH_FILESTAT_SET_TIMES), mem.string(p, len), (flags & Lookupflags.SYMLINK_FOLLOW) !== 0, atim, mtim, fst);
}

/** Set the times of `path` in `dir` (the core of path_filestat_set_times). */
export function setTimesIn(dir: HostDirectory, path: string, follow: boolean, atim: bigint, mtim: bigint, fst: number): void {
  const [a, m] = timesFrom(atim, mtim, fst);
  withResolved(dir, path, follow, (r) => {
    if (r.stat === undefined) throw new WasiError(Errno.NOENT, 'utimes: no such entry');
    // The resolved final component is a symlink only when not following: lutimes is right both ways.
    setPathTimes(r.at, a, m, false);
  });
}

export function pathLink(
  fds: FdTable, mem: GuestMemory, oldFd: number, oldFlags: number, oldP: number, oldLen: number,
  newFd: number, newP: number, newLen: number,
): void {
  const from = dirOf(fds, oldFd, Rights.PATH_LINK_SOURCE);
  const to = dirOf(fds, newFd, Rights.PATH_LINK_TARGET);
  linkIn(from, mem.string(oldP, oldLen), (oldFlags & Lookupflags.SYMLINK_FOLLOW) !== 0, to, mem.string(newP, newLen));
}

/** A hard link `newPath` in `to` to `oldPath` in `from` (the core of path_link). */
export function linkIn(from: HostDirectory, oldPath: string, follow: boolean, to: HostDirectory, newPath: string): void {
  withResolved(from, oldPath, follow, (src) => withResolved(to, newPath, false, (dst) => {
    if (src.stat === undefined) throw new WasiError(Errno.NOENT, 'link: no source');
    requireName(dst, Errno.EXIST, 'link');
    if (dst.stat !== undefined) throw new WasiError(Errno.EXIST, 'link: target exists');
    if (src.stat.isDirectory()) throw new WasiError(Errno.PERM, 'link: source is a directory');
    requireNoTrailingSlash(dst, Errno.NOENT, 'link');
    host('link', () => fs.linkSync(src.at, dst.at));
  }));
}

/** Rights that ask for write access (wasmtime opens for writing if any of them is requested). */
const WRITE_RIGHTS = Rights.FD_WRITE | Rights.FD_DATASYNC | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE;
const READ_RIGHTS = Rights.FD_READ | Rights.FD_READDIR;

export function pathOpen(
  fds: FdTable, mem: GuestMemory, fd: number, dirflags: number, p: number, len: number,
  oflags: number, rightsBase: bigint, rightsInheriting: bigint, fdflags: number, out: number,
): void {
  const dir = dirOf(fds, fd, Rights.PATH_OPEN);
  const { base, inheriting } = openRights(fds.get(fd), oflags, rightsBase, rightsInheriting, fdflags);
  mem.check(out, 4); // before any side effect: a bad pointer must not leak a created file
  const description = openIn(dir, mem.string(p, len), dirflags, oflags, base, fdflags);
  mem.u32set(out, addOpened(fds, description, base, inheriting));
}

/**
 * The checks path_open makes of the directory fd and its arguments, and the rights the new fd
 * may have (the directory's inheriting rights bound them).
 */
export function openRights(entry: FdEntry, oflags: number, rightsBase: bigint, rightsInheriting: bigint, fdflags: number): { base: number; inheriting: number } {
  if (oflags & Oflags.CREAT) need(entry, Rights.PATH_CREATE_FILE);
  if (oflags & Oflags.TRUNC) need(entry, Rights.PATH_FILESTAT_SET_SIZE);
  if (oflags & ~0xf) throw new WasiError(Errno.INVAL, `oflags ${oflags}`);
  if (fdflags & ~0x1f) throw new WasiError(Errno.INVAL, `fdflags ${fdflags}`);
  // Only the low 30 bits are defined rights; the rest are ignored (wasi-libc asks for ~0).
  return {
    base: Number(rightsBase & 0x3fff_ffffn) & entry.rightsInheriting,
    inheriting: Number(rightsInheriting & 0x3fff_ffffn) & entry.rightsInheriting,
  };
}

/** Open (or create) `path` in `dir` for a new fd with rights `base` (the core of path_open). */
export function openIn(dir: HostDirectory, path: string, dirflags: number, oflags: number, base: number, fdflags: number): HostFile | HostDirectory {
  const excl = (oflags & (Oflags.CREAT | Oflags.EXCL)) === (Oflags.CREAT | Oflags.EXCL);
  // O_CREAT|O_EXCL never follows the final symlink (POSIX): a dangling link counts as existing.
  const follow = (dirflags & Lookupflags.SYMLINK_FOLLOW) !== 0 && !excl;
  const wantWrite = (base & WRITE_RIGHTS) !== 0 || (oflags & Oflags.TRUNC) !== 0;
  const wantRead = (base & READ_RIGHTS) !== 0 || !wantWrite;
  return withResolved(dir, path, follow, (r) =>
    r.stat === undefined ? createFile(r, oflags, wantRead, fdflags) : openExisting(r, oflags, excl, wantRead, wantWrite, fdflags));
}

/** The new fd of a path_open: rights bounded by what the description can do. */
export function addOpened(fds: FdTable, description: FileDescription, base: number, inheriting: number): number {
  return fds.add({
    description,
    rightsBase: base & description.maxRights,
    rightsInheriting: description.filetype === Filetype.DIRECTORY ? inheriting : 0,
  });
}

function createFile(r: ResolvedAt, oflags: number, read: boolean, fdflags: number): HostFile {
  if (!(oflags & Oflags.CREAT)) throw new WasiError(Errno.NOENT, `open: ${r.parts.join('/')} does not exist`);
  if (oflags & Oflags.DIRECTORY) throw new WasiError(Errno.INVAL, 'open: O_CREAT with O_DIRECTORY');
  requireName(r, Errno.ISDIR, 'open');
  requireNoTrailingSlash(r, Errno.ISDIR, 'open');
  const mode = (read ? C.O_RDWR : C.O_WRONLY) | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW | syncFlags(fdflags);
  const hfd = host('open', () => fs.openSync(r.at, mode, 0o666));
  return new HostFile(hfd, read, true, fdflags);
}

function openExisting(
  r: ResolvedAt, oflags: number, excl: boolean, read: boolean, write: boolean, fdflags: number,
): HostFile | HostDirectory {
  const st = r.stat!;
  if (excl) throw new WasiError(Errno.EXIST, 'open: exists');
  // Reached only with lookupflags lacking SYMLINK_FOLLOW: O_NOFOLLOW on a symlink is ELOOP.
  if (st.isSymbolicLink()) throw new WasiError(Errno.LOOP, 'open: final component is a symlink');
  if (st.isDirectory()) {
    if (write) throw new WasiError(Errno.ISDIR, 'open: directory for writing');
    // Opened through the walk's fds (a symlink swapped in fails) and held: the new fd names this
    // directory from now on, whatever the host does to its path (HostDirectory).
    const hfd = host('open', () => fs.openSync(r.at, DIRECTORY_FLAGS));
    return new HostDirectory(r.hostPath, hfd);
  }
  if (oflags & Oflags.DIRECTORY) throw new WasiError(Errno.NOTDIR, 'open: not a directory');
  // A FIFO opened blocking would hang the whole kernel until a writer appears.
  const nonblock = st.isFIFO() ? C.O_NONBLOCK : 0;
  const access = read && write ? C.O_RDWR : write ? C.O_WRONLY : C.O_RDONLY;
  const trunc = oflags & Oflags.TRUNC ? C.O_TRUNC : 0;
  const mode = access | trunc | C.O_NOFOLLOW | nonblock | syncFlags(fdflags);
  const hfd = host('open', () => fs.openSync(r.at, mode));
  return new HostFile(hfd, read, write, fdflags);
}

function syncFlags(fdflags: number): number {
  let f = 0;
  if (fdflags & Fdflags.SYNC) f |= C.O_SYNC;
  if (fdflags & Fdflags.DSYNC) f |= C.O_DSYNC;
  return f;
}

export function pathReadlink(
  fds: FdTable, mem: GuestMemory, fd: number, p: number, len: number, buf: number, bufLen: number, out: number,
): void {
  const dir = dirOf(fds, fd, Rights.PATH_READLINK);
  mem.check(buf, bufLen >>> 0);
  mem.check(out, 4);
  writeLink(mem, readlinkIn(dir, mem.string(p, len)), buf, bufLen, out);
}

/** The target of symlink `path` in `dir` (the core of path_readlink). */
export function readlinkIn(dir: HostDirectory, path: string): Uint8Array {
  return withResolved(dir, path, false, (r) => {
    if (r.stat === undefined) throw new WasiError(Errno.NOENT, 'readlink: no such entry');
    if (!r.stat.isSymbolicLink()) throw new WasiError(Errno.INVAL, 'readlink: not a symlink');
    return host('readlink', () => fs.readlinkSync(r.at, { encoding: 'buffer' }));
  });
}

/** A link's target into the guest's buffer, truncated to it like POSIX readlink (wasi-libc expects bufused <= buf_len). */
export function writeLink(mem: GuestMemory, target: Uint8Array, buf: number, bufLen: number, out: number): void {
  const n = Math.min(target.length, bufLen >>> 0);
  mem.writeBytes(buf, target.subarray(0, n));
  mem.u32set(out, n);
}

export function pathRemoveDirectory(fds: FdTable, mem: GuestMemory, fd: number, p: number, len: number): void {
  removeDirectoryIn(dirOf(fds, fd, Rights.PATH_REMOVE_DIRECTORY), mem.string(p, len));
}

/** rmdir of `path` in `dir` (the core of path_remove_directory). */
export function removeDirectoryIn(dir: HostDirectory, path: string): void {
  withResolved(dir, path, false, (r) => {
    requireName(r, Errno.INVAL, 'rmdir');
    if (r.stat === undefined) throw new WasiError(Errno.NOENT, 'rmdir: no such entry');
    if (!r.stat.isDirectory()) throw new WasiError(Errno.NOTDIR, 'rmdir: not a directory');
    host('rmdir', () => fs.rmdirSync(r.at));
  });
}

export function pathRename(
  fds: FdTable, mem: GuestMemory, fd: number, oldP: number, oldLen: number, newFd: number, newP: number, newLen: number,
): void {
  const from = dirOf(fds, fd, Rights.PATH_RENAME_SOURCE);
  const to = dirOf(fds, newFd, Rights.PATH_RENAME_TARGET);
  renameIn(from, mem.string(oldP, oldLen), to, mem.string(newP, newLen));
}

/** rename of `oldPath` in `from` to `newPath` in `to` (the core of path_rename). */
export function renameIn(from: HostDirectory, oldPath: string, to: HostDirectory, newPath: string): void {
  withResolved(from, oldPath, false, (src) => withResolved(to, newPath, false, (dst) => {
    requireName(src, Errno.BUSY, 'rename');
    requireName(dst, Errno.BUSY, 'rename');
    if (src.stat === undefined) throw new WasiError(Errno.NOENT, 'rename: no source');
    host('rename', () => fs.renameSync(src.at, dst.at));
  }));
}

export function pathSymlink(
  fds: FdTable, mem: GuestMemory, oldP: number, oldLen: number, fd: number, newP: number, newLen: number,
): void {
  symlinkIn(dirOf(fds, fd, Rights.PATH_SYMLINK), mem.string(oldP, oldLen), mem.string(newP, newLen));
}

/** A symlink `path` in `dir` to `target` (the core of path_symlink). */
export function symlinkIn(dir: HostDirectory, target: string, path: string): void {
  if (target.includes('\0')) throw new WasiError(Errno.ILSEQ, 'symlink: NUL in target');
  // An absolute target could never be followed inside the sandbox: wasmtime refuses to create
  // one (wasi-testsuite's symlink_create), with the EPERM of every other escape. A relative
  // target is stored as given, even one climbing out: it is only data until someone resolves
  // it, and our resolver refuses the escape then.
  if (target.startsWith('/')) throw new WasiError(Errno.PERM, `symlink: absolute target ${target}`);
  withResolved(dir, path, false, (r) => {
    requireName(r, Errno.EXIST, 'symlink');
    if (r.stat !== undefined) throw new WasiError(Errno.EXIST, 'symlink: exists');
    requireNoTrailingSlash(r, Errno.NOENT, 'symlink');
    host('symlink', () => fs.symlinkSync(target, r.at));
  });
}

export function pathUnlinkFile(fds: FdTable, mem: GuestMemory, fd: number, p: number, len: number): void {
  unlinkFileIn(dirOf(fds, fd, Rights.PATH_UNLINK_FILE), mem.string(p, len));
}

/** unlink of `path` in `dir` (the core of path_unlink_file). */
export function unlinkFileIn(dir: HostDirectory, path: string): void {
  withResolved(dir, path, false, (r) => {
    requireName(r, Errno.ISDIR, 'unlink');
    if (r.stat === undefined) throw new WasiError(Errno.NOENT, 'unlink: no such entry');
    if (r.stat.isDirectory()) throw new WasiError(Errno.ISDIR, 'unlink: is a directory');
    host('unlink', () => fs.unlinkSync(r.at));
  });
}
