/**
 * The `wasi_snapshot_preview1` import object. Each import converts its raw wasm arguments,
 * calls the implementation, and turns the outcome into the i32 errno the guest expects:
 *
 *   - a WasiError becomes its errno;
 *   - ProcessExit (proc_exit, a fatal proc_raise) is thrown on to the kernel;
 *   - BLOCKED is returned as is: the kernel's wrapper sees `result === BLOCKED`, unwinds the
 *     process and re-runs the same import later (blocking.ts). Only fd_read, fd_write,
 *     poll_oneoff, sched_yield and the path calls a remote directory answers (MAY_BLOCK) can
 *     return it, and only before any side effect;
 *     every other import is marked NEVER_BLOCKS and is called by the program directly;
 *   - any other exception is a bug in us or the host, never the guest's fault: it is logged
 *     through ctx.log and the guest gets EIO, so the kernel keeps running.
 *
 * Each import is a named function with fixed parameters and its own try/catch (no rest
 * arguments, no closure per call): clock_time_get and small fd_writes are hot.
 */
import { BLOCKED, ProcessExit, markNeverBlocks, type Blocked } from './blocking.js';
import { need, requireReadable, requireWritable, timesFrom } from './access.js';
import { Errno, WasiError } from './errno.js';
import { isWasiSignal } from '../signals.js';
import type { FdTable } from './fd-table.js';
import { HostDirectory, type FileDescription } from './file-description.js';
import { writeDirents, writeFdstat, writeFilestat } from './layout.js';
import { GuestMemory } from './memory.js';
import { WASI_MAY_UNWIND } from '../../wasm/abi.js';
import * as paths from './path-ops.js';
import { pollOneoff } from './poll.js';
import * as remote from './remote-paths.js';
import { RemoteDirectory } from '../remote-directory.js';
import { RemoteFile } from '../remote-file.js';
import { Clockid, Fdflags, Filetype, Lookupflags, Rights, Whence } from './types.js';
import type { WasiContext, WasiImports } from './wasi-context.js';

/** SIGPIPE in WASI's $signal numbering (the same as Linux's). */
const WASI_SIGPIPE = 13;

/** The default disposition for proc_raise while the kernel has no signal handling: terminate. */
export function defaultRaise(signal: number): never {
  throw new ProcessExit(128 + signal, signal);
}

export function createWasiImports(ctx: WasiContext): WasiImports {
  const fds: FdTable = ctx.fds;
  const argv = encodeStrings(ctx.args);
  const envp = encodeStrings(ctx.env);

  function fail(err: unknown, name: string): number {
    if (err instanceof WasiError) return err.errno;
    if (err instanceof ProcessExit) throw err;
    ctx.log?.(`wasi ${name}: unexpected host error`, err);
    return Errno.IO;
  }
  const mem = (): GuestMemory => ctx.memory().sync();

  const imports: WasiImports = {
    args_get(argvPtr: number, bufPtr: number): number {
      try {
        writeStrings(mem(), argv, argvPtr, bufPtr);
        return 0;
      } catch (e) {
        return fail(e, 'args_get');
      }
    },
    args_sizes_get(countOut: number, sizeOut: number): number {
      try {
        writeSizes(mem(), argv, countOut, sizeOut);
        return 0;
      } catch (e) {
        return fail(e, 'args_sizes_get');
      }
    },
    environ_get(envPtr: number, bufPtr: number): number {
      try {
        writeStrings(mem(), envp, envPtr, bufPtr);
        return 0;
      } catch (e) {
        return fail(e, 'environ_get');
      }
    },
    environ_sizes_get(countOut: number, sizeOut: number): number {
      try {
        writeSizes(mem(), envp, countOut, sizeOut);
        return 0;
      } catch (e) {
        return fail(e, 'environ_sizes_get');
      }
    },

    clock_res_get(id: number, out: number): number {
      try {
        checkClock(id);
        mem().u64set(out, 1n); // both clocks come from hrtime / Date-based ns: report 1 ns
        return 0;
      } catch (e) {
        return fail(e, 'clock_res_get');
      }
    },
    clock_time_get(id: number, _precision: bigint, out: number): number {
      try {
        let ns: bigint;
        if (id === Clockid.MONOTONIC) ns = ctx.monotonicNs();
        else if (id === Clockid.REALTIME) ns = ctx.realtimeNs();
        else {
          checkClock(id);
          return 0;
        }
        ctx.memory().sync().u64set(out, ns);
        return 0;
      } catch (e) {
        return fail(e, 'clock_time_get');
      }
    },

    fd_advise(fd: number, _offset: bigint, _len: bigint, advice: number): number {
      try {
        const e = fds.get(fd);
        need(e, Rights.FD_ADVISE);
        if (advice < 0 || advice > 5) throw new WasiError(Errno.INVAL, `advice ${advice}`);
        if (e.description.filetype === Filetype.DIRECTORY) throw new WasiError(Errno.BADF, 'advise on a directory');
        return 0; // advice only; node has no posix_fadvise and ignoring it is always correct
      } catch (e) {
        return fail(e, 'fd_advise');
      }
    },
    fd_allocate(fd: number, offset: bigint, len: bigint): number {
      try {
        const e = fds.get(fd);
        if (e.description.filetype === Filetype.DIRECTORY) throw new WasiError(Errno.BADF, 'allocate on a directory');
        requireWritable(e);
        need(e, Rights.FD_ALLOCATE);
        e.description.allocate(offset, len);
        return 0;
      } catch (e) {
        return fail(e, 'fd_allocate');
      }
    },
    fd_close(fd: number): number {
      try {
        fds.close(fd);
        return 0;
      } catch (e) {
        return fail(e, 'fd_close');
      }
    },
    fd_datasync(fd: number): number {
      try {
        const e = fds.get(fd);
        need(e, Rights.FD_DATASYNC);
        e.description.sync(true);
        return 0;
      } catch (e) {
        return fail(e, 'fd_datasync');
      }
    },
    fd_fdstat_get(fd: number, out: number): number {
      try {
        const e = fds.get(fd);
        const d = e.description;
        writeFdstat(mem(), out, d.filetype, d.fdflags, e.rightsBase, e.rightsInheriting);
        return 0;
      } catch (e) {
        return fail(e, 'fd_fdstat_get');
      }
    },
    fd_fdstat_set_flags(fd: number, flags: number): number {
      try {
        const e = fds.get(fd);
        need(e, Rights.FD_FDSTAT_SET_FLAGS);
        // Only APPEND and NONBLOCK can change after open (wasmtime: the sync flags are EINVAL).
        if (flags & ~0x1f) throw new WasiError(Errno.INVAL, `fdflags ${flags}`);
        if (flags & (Fdflags.DSYNC | Fdflags.RSYNC | Fdflags.SYNC)) {
          throw new WasiError(Errno.INVAL, 'sync flags cannot be changed after open');
        }
        e.description.fdflags = flags;
        return 0;
      } catch (e) {
        return fail(e, 'fd_fdstat_set_flags');
      }
    },
    fd_fdstat_set_rights(fd: number, base: bigint, inheriting: bigint): number {
      try {
        const e = fds.get(fd);
        const b = Number(base & 0x3fff_ffffn);
        const i = Number(inheriting & 0x3fff_ffffn);
        // Rights can only be dropped, never regained (the spec; ENOTCAPABLE as wasi-common did).
        if ((b & ~e.rightsBase) !== 0 || (i & ~e.rightsInheriting) !== 0) {
          throw new WasiError(Errno.NOTCAPABLE, 'cannot add rights');
        }
        e.rightsBase = b;
        e.rightsInheriting = i;
        return 0;
      } catch (e) {
        return fail(e, 'fd_fdstat_set_rights');
      }
    },
    fd_filestat_get(fd: number, out: number): number {
      try {
        const e = fds.get(fd);
        need(e, Rights.FD_FILESTAT_GET);
        const m = mem();
        m.check(out, 64);
        writeFilestat(m, out, e.description.stat());
        return 0;
      } catch (e) {
        return fail(e, 'fd_filestat_get');
      }
    },
    fd_filestat_set_size(fd: number, size: bigint): number {
      try {
        const e = fds.get(fd);
        if (e.description.filetype === Filetype.DIRECTORY) throw new WasiError(Errno.BADF, 'set size on a directory');
        requireWritable(e);
        need(e, Rights.FD_FILESTAT_SET_SIZE);
        e.description.setSize(size);
        return 0;
      } catch (e) {
        return fail(e, 'fd_filestat_set_size');
      }
    },
    fd_filestat_set_times(fd: number, atim: bigint, mtim: bigint, fst: number): number {
      try {
        const e = fds.get(fd);
        need(e, Rights.FD_FILESTAT_SET_TIMES);
        const [a, m] = timesFrom(atim, mtim, fst);
        e.description.setTimes(a, m);
        return 0;
      } catch (e) {
        return fail(e, 'fd_filestat_set_times');
      }
    },
    fd_pread(fd: number, iovs: number, iovsLen: number, offset: bigint, out: number): number | Blocked {
      try {
        const e = fds.get(fd);
        requireReadable(e);
        need(e, Rights.FD_READ);
        const m = mem();
        m.check(out, 4);
        const base = checkIovecs(m, iovs, iovsLen);
        const d = e.description;
        if (d instanceof RemoteFile) return remote.remotePread(ctx, m, d, base, iovsLen, offset, out);
        m.u32set(out, positionalIo(m, base, iovsLen, offset, (off, len, at) => d.pread(m.u8, off, len, at)));
        return 0;
      } catch (e) {
        return fail(e, 'fd_pread');
      }
    },
    fd_prestat_get(fd: number, out: number): number {
      try {
        const name = preopenName(fds, fd);
        const m = mem();
        const p = m.check(out, 8);
        m.dv.setUint32(p, 0, true); // tag 0 = dir, padding zeroed
        m.dv.setUint32(p + 4, name.length, true);
        return 0;
      } catch (e) {
        return fail(e, 'fd_prestat_get');
      }
    },
    fd_prestat_dir_name(fd: number, path: number, len: number): number {
      try {
        const name = preopenName(fds, fd);
        // wasmtime: a buffer shorter than the name is ENAMETOOLONG (no partial copy).
        if (len >>> 0 < name.length) throw new WasiError(Errno.NAMETOOLONG, 'prestat name buffer too small');
        mem().writeBytes(path, name);
        return 0;
      } catch (e) {
        return fail(e, 'fd_prestat_dir_name');
      }
    },
    fd_pwrite(fd: number, iovs: number, iovsLen: number, offset: bigint, out: number): number | Blocked {
      try {
        const e = fds.get(fd);
        requireWritable(e);
        need(e, Rights.FD_WRITE);
        const m = mem();
        m.check(out, 4);
        const base = checkIovecs(m, iovs, iovsLen);
        const d = e.description;
        if (d instanceof RemoteFile) return remote.remotePwrite(ctx, m, d, base, iovsLen, offset, out);
        m.u32set(out, positionalIo(m, base, iovsLen, offset, (off, len, at) => d.pwrite(m.u8, off, len, at)));
        return 0;
      } catch (e) {
        return fail(e, 'fd_pwrite');
      }
    },
    fd_read(fd: number, iovs: number, iovsLen: number, out: number): number | Blocked {
      try {
        const e = fds.get(fd);
        requireReadable(e);
        need(e, Rights.FD_READ);
        const m = mem();
        m.check(out, 4);
        const base = checkIovecs(m, iovs, iovsLen);
        const d = e.description;
        let total = 0;
        for (let i = 0; i < iovsLen >>> 0; i++) {
          const off = m.dv.getUint32(base + i * 8, true);
          const len = m.dv.getUint32(base + i * 8 + 4, true);
          const n = d.read(m.u8, off, len);
          if (typeof n !== 'number') { // BLOCKED (a typeof test stays inline; === on a symbol does not)
            if (total > 0) break; // got something: return it rather than wait for more
            if (d.fdflags & Fdflags.NONBLOCK) throw new WasiError(Errno.AGAIN, 'would block');
            return ctx.wait({ pollables: [d.pollable] });
          }
          total += n;
          if (n < len) break;
        }
        m.u32set(out, total);
        return 0;
      } catch (e) {
        return fail(e, 'fd_read');
      }
    },
    fd_readdir(fd: number, buf: number, bufLen: number, cookie: bigint, out: number): number | Blocked {
      try {
        const e = fds.get(fd);
        const d = e.description;
        if (d.filetype !== Filetype.DIRECTORY) throw new WasiError(Errno.NOTDIR, 'readdir on a non-directory');
        need(e, Rights.FD_READDIR);
        const m = mem();
        m.check(out, 4);
        m.check(buf, bufLen >>> 0);
        if (d instanceof RemoteDirectory) return remote.remoteReaddir(ctx, m, d, buf, bufLen >>> 0, cookie, out);
        const entries = d instanceof HostDirectory ? d.listFrom(cookie) : d.readdir();
        const start = cookie > BigInt(entries.length) ? entries.length : Number(cookie);
        m.u32set(out, writeDirents(m, buf, bufLen >>> 0, entries, start));
        return 0;
      } catch (e) {
        return fail(e, 'fd_readdir');
      }
    },
    fd_renumber(fd: number, to: number): number {
      try {
        fds.renumber(fd, to);
        return 0;
      } catch (e) {
        return fail(e, 'fd_renumber');
      }
    },
    fd_seek(fd: number, offset: bigint, whence: number, out: number): number {
      try {
        const e = fds.get(fd);
        if (e.description.filetype === Filetype.DIRECTORY) throw new WasiError(Errno.BADF, 'seek on a directory');
        // A pure "tell" needs only FD_TELL (the spec), anything else FD_SEEK.
        need(e, whence === Whence.CUR && offset === 0n ? Rights.FD_TELL : Rights.FD_SEEK);
        if (whence !== Whence.SET && whence !== Whence.CUR && whence !== Whence.END) {
          throw new WasiError(Errno.INVAL, `whence ${whence}`);
        }
        const m = mem();
        m.check(out, 8);
        m.u64set(out, e.description.seek(offset, whence));
        return 0;
      } catch (e) {
        return fail(e, 'fd_seek');
      }
    },
    fd_sync(fd: number): number {
      try {
        const e = fds.get(fd);
        need(e, Rights.FD_SYNC);
        e.description.sync(false);
        return 0;
      } catch (e) {
        return fail(e, 'fd_sync');
      }
    },
    fd_tell(fd: number, out: number): number {
      try {
        const e = fds.get(fd);
        if (e.description.filetype === Filetype.DIRECTORY) throw new WasiError(Errno.BADF, 'tell on a directory');
        need(e, Rights.FD_TELL);
        const m = mem();
        m.check(out, 8);
        m.u64set(out, e.description.seek(0n, Whence.CUR));
        return 0;
      } catch (e) {
        return fail(e, 'fd_tell');
      }
    },
    fd_write(fd: number, iovs: number, iovsLen: number, out: number): number | Blocked {
      try {
        const e = fds.get(fd);
        requireWritable(e);
        need(e, Rights.FD_WRITE);
        const m = ctx.memory().sync();
        m.check(out, 4);
        const base = checkIovecs(m, iovs, iovsLen);
        const d = e.description;
        if (iovsLen > 1 && d.filetype !== Filetype.REGULAR_FILE) {
          const gathered = gatheredWrite(ctx, m, d, base, iovsLen, out);
          if (gathered !== undefined) return gathered;
        }
        let total = 0;
        for (let i = 0; i < iovsLen >>> 0; i++) {
          const off = m.dv.getUint32(base + i * 8, true);
          const len = m.dv.getUint32(base + i * 8 + 4, true);
          if (len === 0) continue;
          const n = d.write(m.u8, off, len);
          if (typeof n !== 'number') { // BLOCKED (a typeof test stays inline; === on a symbol does not)
            if (total > 0) break;
            if (d.fdflags & Fdflags.NONBLOCK) throw new WasiError(Errno.AGAIN, 'would block');
            return ctx.wait({ pollables: [d.pollable] });
          }
          total += n;
          if (n < len) break;
        }
        m.u32set(out, total);
        return 0;
      } catch (e) {
        // Writing to a pipe nobody reads raises SIGPIPE (which kills, unless ignored or caught).
        if (e instanceof WasiError && e.errno === Errno.PIPE) ctx.raise(WASI_SIGPIPE);
        return fail(e, 'fd_write');
      }
    },

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

    poll_oneoff(inPtr: number, outPtr: number, nsubs: number, neventsOut: number): number | Blocked {
      try {
        return pollOneoff(ctx, mem(), inPtr, outPtr, nsubs, neventsOut);
      } catch (e) {
        return fail(e, 'poll_oneoff');
      }
    },
    proc_exit(code: number): number {
      throw new ProcessExit(code >>> 0);
    },
    proc_raise(sig: number): number {
      try {
        if (!isWasiSignal(sig)) throw new WasiError(Errno.INVAL, `signal ${sig}`);
        ctx.raise(sig);
        return 0;
      } catch (e) {
        return fail(e, 'proc_raise');
      }
    },
    sched_yield(): number | Blocked {
      try {
        return ctx.yield() === BLOCKED ? BLOCKED : 0;
      } catch (e) {
        return fail(e, 'sched_yield');
      }
    },
    random_get(buf: number, len: number): number {
      try {
        ctx.randomFill(mem().bytes(buf, len));
        return 0;
      } catch (e) {
        return fail(e, 'random_get');
      }
    },

    // No sockets exist yet, so every fd is either closed (EBADF) or not a socket (ENOTSOCK),
    // which is what wasmtime answers for a file or directory fd.
    sock_accept(fd: number, _flags: number, _out: number): number {
      return notSocket(fds, fd, 'sock_accept', fail);
    },
    sock_recv(fd: number, _ri: number, _riLen: number, _flags: number, _out: number, _oflags: number): number {
      return notSocket(fds, fd, 'sock_recv', fail);
    },
    sock_send(fd: number, _si: number, _siLen: number, _flags: number, _out: number): number {
      return notSocket(fds, fd, 'sock_send', fail);
    },
    sock_shutdown(fd: number, _how: number): number {
      return notSocket(fds, fd, 'sock_shutdown', fail);
    },
  };
  for (const [name, fn] of Object.entries(imports)) if (!MAY_BLOCK.has(name)) markNeverBlocks(fn);
  return imports;
}

/**
 * The imports that may return BLOCKED or use the per-syscall state of deadlineFor and yield; the
 * others are marked NEVER_BLOCKS, so the kernel calls them without its rewind wrapper. They are
 * exactly the imports the instrumenter lets unwind: a blocking call must be able to unwind, and one
 * that may unwind but never blocks would only pay for the wrapper.
 */
export const MAY_BLOCK: ReadonlySet<string> = new Set(WASI_MAY_UNWIND);

// ---- helpers -----------------------------------------------------------------------------------

/** Checks an iovec array and every buffer in it; returns the array's offset. No side effects. */
function checkIovecs(m: GuestMemory, iovs: number, count: number): number {
  const n = count >>> 0;
  const base = m.check(iovs, n * 8);
  for (let i = 0; i < n; i++) {
    m.check(m.dv.getUint32(base + i * 8, true), m.dv.getUint32(base + i * 8 + 4, true));
  }
  return base;
}

/** Small gathered writes to streams are copied into one buffer first (see gatheredWrite). */
const GATHER_LIMIT = 65536;
let gatherBuffer = new Uint8Array(4096);

/**
 * A writev to a pipe or terminal: copied into one buffer and written at once, so that what one
 * call writes (printf's buffered text plus the rest of the line, as wasi-libc writes it) reaches
 * the reader in one piece, not interleaved with another process's output — POSIX makes a pipe
 * write of up to PIPE_BUF bytes atomic. Beyond GATHER_LIMIT: undefined, and the caller writes the
 * iovecs one by one. The description copies what it keeps, so the buffer is reused.
 */
function gatheredWrite(ctx: WasiContext, m: GuestMemory, d: FileDescription, base: number, count: number, out: number): number | Blocked | undefined {
  let len = 0;
  for (let i = 0; i < count; i++) len += m.dv.getUint32(base + i * 8 + 4, true);
  if (len > GATHER_LIMIT) return undefined;
  if (gatherBuffer.length < len) gatherBuffer = new Uint8Array(GATHER_LIMIT);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const off = m.dv.getUint32(base + i * 8, true);
    const n = m.dv.getUint32(base + i * 8 + 4, true);
    gatherBuffer.set(m.u8.subarray(off, off + n), at);
    at += n;
  }
  const n = len === 0 ? 0 : d.write(gatherBuffer, 0, len);
  if (typeof n !== 'number') {
    if (d.fdflags & Fdflags.NONBLOCK) throw new WasiError(Errno.AGAIN, 'would block');
    return ctx.wait({ pollables: [d.pollable] });
  }
  m.u32set(out, n);
  return 0;
}

/** fd_pread/fd_pwrite over an iovec list, from `position`; stops at the first short transfer. */
function positionalIo(
  m: GuestMemory,
  base: number,
  count: number,
  position: bigint,
  transfer: (off: number, len: number, at: bigint) => number,
): number {
  let total = 0;
  let at = position;
  for (let i = 0; i < count >>> 0; i++) {
    const off = m.dv.getUint32(base + i * 8, true);
    const len = m.dv.getUint32(base + i * 8 + 4, true);
    const n = transfer(off, len, at);
    total += n;
    at += BigInt(n);
    if (n < len) break;
  }
  return total;
}

function checkClock(id: number): void {
  // wasmtime has no CPU-time clocks in preview1 and answers EBADF for them; unknown ids are EINVAL.
  if (id === Clockid.PROCESS_CPUTIME || id === Clockid.THREAD_CPUTIME) {
    throw new WasiError(Errno.BADF, 'CPU-time clocks are not supported');
  }
  if (id !== Clockid.REALTIME && id !== Clockid.MONOTONIC) throw new WasiError(Errno.INVAL, `clock ${id}`);
}

function preopenName(fds: FdTable, fd: number): Uint8Array {
  const name = fds.get(fd).preopenName;
  if (name === undefined) throw new WasiError(Errno.BADF, `fd ${fd} is not a preopen`);
  return GuestMemory.encode(name);
}

function notSocket(fds: FdTable, fd: number, name: string, fail: (e: unknown, n: string) => number): number {
  try {
    const d = fds.get(fd).description;
    if (d.filetype === Filetype.SOCKET_STREAM || d.filetype === Filetype.SOCKET_DGRAM) {
      throw new WasiError(Errno.NOTSUP, 'host sockets are not supported yet');
    }
    throw new WasiError(Errno.NOTSOCK, `fd ${fd} is not a socket`);
  } catch (e) {
    return fail(e, name);
  }
}

/** argv/environ as NUL-terminated UTF-8, encoded once per process. */
interface EncodedStrings {
  items: Uint8Array[];
  size: number;
}

function encodeStrings(list: string[]): EncodedStrings {
  const items = list.map((s) => GuestMemory.encode(`${s}\0`));
  return { items, size: items.reduce((n, b) => n + b.length, 0) };
}

function writeStrings(m: GuestMemory, s: EncodedStrings, ptrs: number, buf: number): void {
  m.check(ptrs, s.items.length * 4);
  let p = m.check(buf, s.size);
  for (let i = 0; i < s.items.length; i++) {
    m.u32set(ptrs + i * 4, p);
    m.u8.set(s.items[i]!, p);
    p += s.items[i]!.length;
  }
}

function writeSizes(m: GuestMemory, s: EncodedStrings, countOut: number, sizeOut: number): void {
  m.check(countOut, 4);
  m.check(sizeOut, 4);
  m.u32set(countOut, s.items.length);
  m.u32set(sizeOut, s.size);
}
