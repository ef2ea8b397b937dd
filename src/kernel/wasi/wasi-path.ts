/**
 * The path_* imports (see wasi.ts for the contract every import keeps). A directory of this node
 * resolves paths here (path-ops.ts); one of another node is asked at its home (remote-paths.ts),
 * which may return BLOCKED until the answer comes.
 */
import type { Blocked } from './blocking.js';
import * as paths from './path-ops.js';
import * as remote from './remote-paths.js';
import { Lookupflags, Rights } from './types.js';
import type { ImportScope, WasiImports } from './wasi-context.js';

export function pathImports({ ctx, fds, mem, fail }: ImportScope): WasiImports {
  return {
    path_create_directory(fd: number, p: number, len: number): number | Blocked {
      try {
        const there = remote.remoteDirOf(fds, fd, Rights.PATH_CREATE_DIRECTORY);
        if (there !== undefined) return remote.remoteChange(ctx, there, 'mkdir', mem().string(p, len));
        paths.pathCreateDirectory(fds, mem(), fd, p, len);
        return 0;
      } catch (e) {
        return fail(e, 'path_create_directory');
      }
    },
    path_filestat_get(fd: number, flags: number, p: number, len: number, out: number): number | Blocked {
      try {
        const there = remote.remoteDirOf(fds, fd, Rights.PATH_FILESTAT_GET);
        if (there !== undefined) return remote.remoteStat(ctx, mem(), there, flags, mem().string(p, len), out);
        paths.pathFilestatGet(fds, mem(), fd, flags, p, len, out);
        return 0;
      } catch (e) {
        return fail(e, 'path_filestat_get');
      }
    },
    path_filestat_set_times(
      fd: number, flags: number, p: number, len: number, atim: bigint, mtim: bigint, fst: number,
    ): number | Blocked {
      try {
        const there = remote.remoteDirOf(fds, fd, Rights.PATH_FILESTAT_SET_TIMES);
        if (there !== undefined) return remote.remoteSetTimes(ctx, there, flags, mem().string(p, len), atim, mtim, fst);
        paths.pathFilestatSetTimes(fds, mem(), fd, flags, p, len, atim, mtim, fst);
        return 0;
      } catch (e) {
        return fail(e, 'path_filestat_set_times');
      }
    },
    path_link(
      oldFd: number, oldFlags: number, oldP: number, oldLen: number, newFd: number, newP: number, newLen: number,
    ): number | Blocked {
      try {
        const there = remote.remoteDirOf(fds, oldFd, Rights.PATH_LINK_SOURCE);
        if (there !== undefined) {
          return remote.remoteLink(ctx, fds, there, (oldFlags & Lookupflags.SYMLINK_FOLLOW) !== 0, mem().string(oldP, oldLen), newFd, mem().string(newP, newLen));
        }
        paths.pathLink(fds, mem(), oldFd, oldFlags, oldP, oldLen, newFd, newP, newLen);
        return 0;
      } catch (e) {
        return fail(e, 'path_link');
      }
    },
    path_open(
      fd: number, dirflags: number, p: number, len: number, oflags: number,
      base: bigint, inheriting: bigint, fdflags: number, out: number,
    ): number | Blocked {
      try {
        const there = remote.remoteDirOf(fds, fd, Rights.PATH_OPEN);
        if (there !== undefined) return remote.remoteOpen(ctx, fds, mem(), there, fd, dirflags, mem().string(p, len), oflags, base, inheriting, fdflags, out);
        paths.pathOpen(fds, mem(), fd, dirflags, p, len, oflags, base, inheriting, fdflags, out);
        return 0;
      } catch (e) {
        return fail(e, 'path_open');
      }
    },
    path_readlink(fd: number, p: number, len: number, buf: number, bufLen: number, out: number): number | Blocked {
      try {
        const there = remote.remoteDirOf(fds, fd, Rights.PATH_READLINK);
        if (there !== undefined) return remote.remoteReadlink(ctx, mem(), there, mem().string(p, len), buf, bufLen, out);
        paths.pathReadlink(fds, mem(), fd, p, len, buf, bufLen, out);
        return 0;
      } catch (e) {
        return fail(e, 'path_readlink');
      }
    },
    path_remove_directory(fd: number, p: number, len: number): number | Blocked {
      try {
        const there = remote.remoteDirOf(fds, fd, Rights.PATH_REMOVE_DIRECTORY);
        if (there !== undefined) return remote.remoteChange(ctx, there, 'rmdir', mem().string(p, len));
        paths.pathRemoveDirectory(fds, mem(), fd, p, len);
        return 0;
      } catch (e) {
        return fail(e, 'path_remove_directory');
      }
    },
    path_rename(fd: number, oldP: number, oldLen: number, newFd: number, newP: number, newLen: number): number | Blocked {
      try {
        const there = remote.remoteDirOf(fds, fd, Rights.PATH_RENAME_SOURCE);
        if (there !== undefined) return remote.remoteRename(ctx, fds, there, mem().string(oldP, oldLen), newFd, mem().string(newP, newLen));
        paths.pathRename(fds, mem(), fd, oldP, oldLen, newFd, newP, newLen);
        return 0;
      } catch (e) {
        return fail(e, 'path_rename');
      }
    },
    path_symlink(oldP: number, oldLen: number, fd: number, newP: number, newLen: number): number | Blocked {
      try {
        const there = remote.remoteDirOf(fds, fd, Rights.PATH_SYMLINK);
        if (there !== undefined) return remote.remoteSymlink(ctx, there, mem().string(oldP, oldLen), mem().string(newP, newLen));
        paths.pathSymlink(fds, mem(), oldP, oldLen, fd, newP, newLen);
        return 0;
      } catch (e) {
        return fail(e, 'path_symlink');
      }
    },
    path_unlink_file(fd: number, p: number, len: number): number | Blocked {
      try {
        const there = remote.remoteDirOf(fds, fd, Rights.PATH_UNLINK_FILE);
        if (there !== undefined) return remote.remoteChange(ctx, there, 'unlink', mem().string(p, len));
        paths.pathUnlinkFile(fds, mem(), fd, p, len);
        return 0;
      } catch (e) {
        return fail(e, 'path_unlink_file');
      }
    },
  };
}
