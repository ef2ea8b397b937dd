/**
 * The checks every fd syscall makes before it acts, in the order that gives wasmtime's errnos:
 * the fd exists (EBADF), the object is of the right kind (EISDIR/ENOTDIR/EBADF), it was opened in
 * the right mode (EBADF: write on O_RDONLY), and only then whether the guest dropped the right
 * with fd_fdstat_set_rights (ENOTCAPABLE). Rights an object never had (seek on a pipe) are left
 * to the object, which answers with the POSIX errno (ESPIPE) instead of ENOTCAPABLE.
 */
import { Errno, WasiError } from './errno.js';
import type { FdEntry, FdTable } from './fd-table.js';
import { Directory } from './directory.js';
import { Filetype, Fstflags, type TimeSpec } from './types.js';

/** Throws ENOTCAPABLE if this fd lacks `right` although its object supports it. */
export function need(e: FdEntry, right: number): void {
  if ((e.rightsBase & right) === 0 && (e.description.maxRights & right) !== 0) {
    throw new WasiError(Errno.NOTCAPABLE, `fd lacks right 0x${right.toString(16)}`);
  }
}

export function requireReadable(e: FdEntry): void {
  if (e.description.filetype === Filetype.DIRECTORY) throw new WasiError(Errno.ISDIR, 'fd is a directory');
  if (!e.description.readable) throw new WasiError(Errno.BADF, 'fd not open for reading');
}

export function requireWritable(e: FdEntry): void {
  if (e.description.filetype === Filetype.DIRECTORY) throw new WasiError(Errno.ISDIR, 'fd is a directory');
  if (!e.description.writable) throw new WasiError(Errno.BADF, 'fd not open for writing');
}

/** The directory behind dir fd `fd` (a path call's, fd_readdir's), checked for `right`; ENOTDIR if it is none. */
export function dirOf(fds: FdTable, fd: number, right: number): Directory {
  const e = fds.get(fd);
  const d = e.description;
  if (!(d instanceof Directory)) throw new WasiError(Errno.NOTDIR, `fd ${fd} is not a directory`);
  need(e, right);
  return d;
}

/** fstflags → (atim, mtim) specs; setting both a time and "now" for one of them is EINVAL. */
export function timesFrom(atim: bigint, mtim: bigint, fst: number): [TimeSpec, TimeSpec] {
  if ((fst & Fstflags.ATIM && fst & Fstflags.ATIM_NOW) || (fst & Fstflags.MTIM && fst & Fstflags.MTIM_NOW)) {
    throw new WasiError(Errno.INVAL, 'both a time and now');
  }
  if (fst & ~0xf) throw new WasiError(Errno.INVAL, `fstflags ${fst}`);
  const a: TimeSpec = fst & Fstflags.ATIM_NOW ? 'now' : fst & Fstflags.ATIM ? atim : undefined;
  const m: TimeSpec = fst & Fstflags.MTIM_NOW ? 'now' : fst & Fstflags.MTIM ? mtim : undefined;
  return [a, m];
}
