/**
 * The path_* imports (see wasi.ts for the contract every import keeps). Each checks the directory
 * fd and its rights (dirOf; peerOf for the second directory of a link or rename), decodes its
 * arguments and asks the directory, which answers itself (directory.ts): one of this node at once,
 * one of another node by a request to its home, returning BLOCKED until the answer comes. Both
 * kinds see the same checks in the same order: the fds and their rights, then the guest's
 * pointers and paths, then the call.
 */
import { BLOCKED, type Blocked } from './blocking.js';
import { dirOf, need } from './access.js';
import { Errno, WasiError } from './errno.js';
import type { FdEntry, FdTable } from './fd-table.js';
import type { FileDescription } from './file-description.js';
import { writeFilestat } from './layout.js';
import type { GuestMemory } from './memory.js';
import { Filetype, Lookupflags, Oflags, Rights } from './types.js';
import type { ImportScope, WasiImports } from './wasi-context.js';

export function pathImports({ ctx, fds, mem, fail }: ImportScope): WasiImports {
  return {
    path_create_directory(fd: number, p: number, len: number): number | Blocked {
      try {
        const dir = dirOf(fds, fd, Rights.PATH_CREATE_DIRECTORY);
        return dir.createDirectoryAt(mem().string(p, len), ctx);
      } catch (e) {
        return fail(e, 'path_create_directory');
      }
    },
    path_filestat_get(fd: number, flags: number, p: number, len: number, out: number): number | Blocked {
      try {
        const dir = dirOf(fds, fd, Rights.PATH_FILESTAT_GET);
        const m = mem();
        m.check(out, 64);
        const stat = dir.statAt(m.string(p, len), (flags & Lookupflags.SYMLINK_FOLLOW) !== 0, ctx);
        if (stat === BLOCKED) return BLOCKED;
        writeFilestat(m, out, stat);
        return 0;
      } catch (e) {
        return fail(e, 'path_filestat_get');
      }
    },
    path_filestat_set_times(
      fd: number, flags: number, p: number, len: number, atim: bigint, mtim: bigint, fst: number,
    ): number | Blocked {
      try {
        const dir = dirOf(fds, fd, Rights.PATH_FILESTAT_SET_TIMES);
        return dir.setTimesAt(mem().string(p, len), (flags & Lookupflags.SYMLINK_FOLLOW) !== 0, atim, mtim, fst, ctx);
      } catch (e) {
        return fail(e, 'path_filestat_set_times');
      }
    },
    path_link(
      oldFd: number, oldFlags: number, oldP: number, oldLen: number, newFd: number, newP: number, newLen: number,
    ): number | Blocked {
      try {
        const from = dirOf(fds, oldFd, Rights.PATH_LINK_SOURCE);
        const to = from.peerOf(fds, newFd, Rights.PATH_LINK_TARGET);
        const m = mem();
        return from.linkAt(m.string(oldP, oldLen), (oldFlags & Lookupflags.SYMLINK_FOLLOW) !== 0, to, m.string(newP, newLen), ctx);
      } catch (e) {
        return fail(e, 'path_link');
      }
    },
    path_open(
      fd: number, dirflags: number, p: number, len: number, oflags: number,
      rightsBase: bigint, rightsInheriting: bigint, fdflags: number, out: number,
    ): number | Blocked {
      try {
        const dir = dirOf(fds, fd, Rights.PATH_OPEN);
        const { base, inheriting } = openRights(fds.get(fd), oflags, rightsBase, rightsInheriting, fdflags);
        const m = mem();
        m.check(out, 4); // before any side effect: a bad pointer must not leak a created file
        const opened = dir.openAt(m.string(p, len), dirflags, oflags, base, fdflags, inheriting, ctx);
        if (opened === BLOCKED) return BLOCKED;
        m.u32set(out, addOpened(fds, opened, base, inheriting));
        return 0;
      } catch (e) {
        return fail(e, 'path_open');
      }
    },
    path_readlink(fd: number, p: number, len: number, buf: number, bufLen: number, out: number): number | Blocked {
      try {
        const dir = dirOf(fds, fd, Rights.PATH_READLINK);
        const m = mem();
        m.check(buf, bufLen >>> 0);
        m.check(out, 4);
        const target = dir.readlinkAt(m.string(p, len), ctx);
        if (target === BLOCKED) return BLOCKED;
        writeLink(m, target, buf, bufLen, out);
        return 0;
      } catch (e) {
        return fail(e, 'path_readlink');
      }
    },
    path_remove_directory(fd: number, p: number, len: number): number | Blocked {
      try {
        const dir = dirOf(fds, fd, Rights.PATH_REMOVE_DIRECTORY);
        return dir.removeDirectoryAt(mem().string(p, len), ctx);
      } catch (e) {
        return fail(e, 'path_remove_directory');
      }
    },
    path_rename(fd: number, oldP: number, oldLen: number, newFd: number, newP: number, newLen: number): number | Blocked {
      try {
        const from = dirOf(fds, fd, Rights.PATH_RENAME_SOURCE);
        const to = from.peerOf(fds, newFd, Rights.PATH_RENAME_TARGET);
        const m = mem();
        return from.renameAt(m.string(oldP, oldLen), to, m.string(newP, newLen), ctx);
      } catch (e) {
        return fail(e, 'path_rename');
      }
    },
    path_symlink(oldP: number, oldLen: number, fd: number, newP: number, newLen: number): number | Blocked {
      try {
        const dir = dirOf(fds, fd, Rights.PATH_SYMLINK);
        const m = mem();
        return dir.symlinkAt(m.string(oldP, oldLen), m.string(newP, newLen), ctx);
      } catch (e) {
        return fail(e, 'path_symlink');
      }
    },
    path_unlink_file(fd: number, p: number, len: number): number | Blocked {
      try {
        const dir = dirOf(fds, fd, Rights.PATH_UNLINK_FILE);
        return dir.unlinkFileAt(mem().string(p, len), ctx);
      } catch (e) {
        return fail(e, 'path_unlink_file');
      }
    },
  };
}

/**
 * The checks path_open makes of the directory fd and its arguments, and the rights the new fd
 * may have (the directory's inheriting rights bound them).
 */
function openRights(entry: FdEntry, oflags: number, rightsBase: bigint, rightsInheriting: bigint, fdflags: number): { base: number; inheriting: number } {
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

/** The new fd of a path_open: rights bounded by what the description can do. */
function addOpened(fds: FdTable, description: FileDescription, base: number, inheriting: number): number {
  return fds.add({
    description,
    rightsBase: base & description.maxRights,
    rightsInheriting: description.filetype === Filetype.DIRECTORY ? inheriting : 0,
  });
}

/** A link's target into the guest's buffer, truncated to it like POSIX readlink (wasi-libc expects bufused <= buf_len). */
function writeLink(mem: GuestMemory, target: Uint8Array, buf: number, bufLen: number, out: number): void {
  const n = Math.min(target.length, bufLen >>> 0);
  mem.writeBytes(buf, target.subarray(0, n));
  mem.u32set(out, n);
}
