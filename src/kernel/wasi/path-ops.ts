/**
 * The path calls in a directory of this node: one core per call, on a (directory, guest path, …),
 * run by a HostDirectory's own calls (host-directory.ts) and, for a RemoteDirectory of another
 * node, by the directory deputy at its home. Every guest path is resolved by sandbox.ts inside
 * the directory it is relative to; host calls go to the result's name inside its parent
 * directory as the walk holds it open (ResolvedAt.at), so a directory swapped for a symlink
 * meanwhile cannot redirect them, and the final component is never a symlink the host could
 * follow (we resolved or refused it), so host calls use the l* forms and O_NOFOLLOW. A
 * directory's walk starts from the host fd it holds (HostDirectory), not from its path.
 */
import * as fs from 'node:fs';
import { timesFrom } from './access.js';
import { Errno, WasiError, host } from './errno.js';
import { HostFile, filestatOf, type FileDescription } from './file-description.js';
import { setPathTimes } from './host-times.js';
import { DIRECTORY_FLAGS, withResolved, type DirRoot, type Resolved, type ResolvedAt } from './sandbox.js';
import { Fdflags, Lookupflags, Oflags, Rights, type Filestat } from './types.js';

/**
 * A directory as path_open's core needs it: where the walk starts, and what makes the
 * description of a directory it opens there. HostDirectory is the one; it is named by this
 * interface here because its own path calls are these cores (host-directory.ts imports this).
 */
export interface HostRoot extends DirRoot {
  /** The description of the directory at `hostPath`, opened in this one as host fd `handle`, which it owns from now on. */
  opened(hostPath: string, handle: number): FileDescription;
}

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

/** mkdir of `path` in `dir` (the core of path_create_directory). */
export function createDirectoryIn(dir: DirRoot, path: string): void {
  withResolved(dir, path, false, (r) => {
    requireName(r, Errno.EXIST, 'mkdir');
    if (r.stat !== undefined) throw new WasiError(Errno.EXIST, 'mkdir: exists');
    host('mkdir', () => fs.mkdirSync(r.at, 0o777));
  });
}

/** The attributes of `path` in `dir` (the core of path_filestat_get). */
export function statIn(dir: DirRoot, path: string, follow: boolean): Filestat {
  return withResolved(dir, path, follow, (r) => {
    if (r.stat === undefined) throw new WasiError(Errno.NOENT, 'stat: no such entry');
    return filestatOf(host('lstat', () => fs.lstatSync(r.at, { bigint: true })));
  });
}

/** Set the times of `path` in `dir` (the core of path_filestat_set_times). */
export function setTimesIn(dir: DirRoot, path: string, follow: boolean, atim: bigint, mtim: bigint, fst: number): void {
  const [a, m] = timesFrom(atim, mtim, fst);
  withResolved(dir, path, follow, (r) => {
    if (r.stat === undefined) throw new WasiError(Errno.NOENT, 'utimes: no such entry');
    // The resolved final component is a symlink only when not following: lutimes is right both ways.
    setPathTimes(r.at, a, m, false);
  });
}

/** A hard link `newPath` in `to` to `oldPath` in `from` (the core of path_link). */
export function linkIn(from: DirRoot, oldPath: string, follow: boolean, to: DirRoot, newPath: string): void {
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

/** Open (or create) `path` in `dir` for a new fd with rights `base` (the core of path_open). */
export function openIn(dir: HostRoot, path: string, dirflags: number, oflags: number, base: number, fdflags: number): FileDescription {
  const excl = (oflags & (Oflags.CREAT | Oflags.EXCL)) === (Oflags.CREAT | Oflags.EXCL);
  // O_CREAT|O_EXCL never follows the final symlink (POSIX): a dangling link counts as existing.
  const follow = (dirflags & Lookupflags.SYMLINK_FOLLOW) !== 0 && !excl;
  const wantWrite = (base & WRITE_RIGHTS) !== 0 || (oflags & Oflags.TRUNC) !== 0;
  const wantRead = (base & READ_RIGHTS) !== 0 || !wantWrite;
  return withResolved(dir, path, follow, (r) =>
    r.stat === undefined ? createFile(r, oflags, wantRead, fdflags) : openExisting(dir, r, oflags, excl, wantRead, wantWrite, fdflags));
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
  dir: HostRoot, r: ResolvedAt, oflags: number, excl: boolean, read: boolean, write: boolean, fdflags: number,
): FileDescription {
  const st = r.stat!;
  if (excl) throw new WasiError(Errno.EXIST, 'open: exists');
  // Reached only with lookupflags lacking SYMLINK_FOLLOW: O_NOFOLLOW on a symlink is ELOOP.
  if (st.isSymbolicLink()) throw new WasiError(Errno.LOOP, 'open: final component is a symlink');
  if (st.isDirectory()) {
    if (write) throw new WasiError(Errno.ISDIR, 'open: directory for writing');
    // Opened through the walk's fds (a symlink swapped in fails) and held: the new fd names this
    // directory from now on, whatever the host does to its path (HostDirectory).
    const hfd = host('open', () => fs.openSync(r.at, DIRECTORY_FLAGS));
    return dir.opened(r.hostPath, hfd);
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

/** The target of symlink `path` in `dir` (the core of path_readlink). */
export function readlinkIn(dir: DirRoot, path: string): Uint8Array {
  return withResolved(dir, path, false, (r) => {
    if (r.stat === undefined) throw new WasiError(Errno.NOENT, 'readlink: no such entry');
    if (!r.stat.isSymbolicLink()) throw new WasiError(Errno.INVAL, 'readlink: not a symlink');
    return host('readlink', () => fs.readlinkSync(r.at, { encoding: 'buffer' }));
  });
}

/** rmdir of `path` in `dir` (the core of path_remove_directory). */
export function removeDirectoryIn(dir: DirRoot, path: string): void {
  withResolved(dir, path, false, (r) => {
    requireName(r, Errno.INVAL, 'rmdir');
    if (r.stat === undefined) throw new WasiError(Errno.NOENT, 'rmdir: no such entry');
    if (!r.stat.isDirectory()) throw new WasiError(Errno.NOTDIR, 'rmdir: not a directory');
    host('rmdir', () => fs.rmdirSync(r.at));
  });
}

/** rename of `oldPath` in `from` to `newPath` in `to` (the core of path_rename). */
export function renameIn(from: DirRoot, oldPath: string, to: DirRoot, newPath: string): void {
  withResolved(from, oldPath, false, (src) => withResolved(to, newPath, false, (dst) => {
    requireName(src, Errno.BUSY, 'rename');
    requireName(dst, Errno.BUSY, 'rename');
    if (src.stat === undefined) throw new WasiError(Errno.NOENT, 'rename: no source');
    host('rename', () => fs.renameSync(src.at, dst.at));
  }));
}

/** A symlink `path` in `dir` to `target` (the core of path_symlink). */
export function symlinkIn(dir: DirRoot, target: string, path: string): void {
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

/** unlink of `path` in `dir` (the core of path_unlink_file). */
export function unlinkFileIn(dir: DirRoot, path: string): void {
  withResolved(dir, path, false, (r) => {
    requireName(r, Errno.ISDIR, 'unlink');
    if (r.stat === undefined) throw new WasiError(Errno.NOENT, 'unlink: no such entry');
    if (r.stat.isDirectory()) throw new WasiError(Errno.ISDIR, 'unlink: is a directory');
    host('unlink', () => fs.unlinkSync(r.at));
  });
}
