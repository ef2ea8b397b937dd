/**
 * The fd_* imports (see wasi.ts for the contract every import keeps): reads and writes, seeks,
 * attributes, flags and rights, directory listings and the preopens' names.
 */
import { BLOCKED, type Blocked } from './blocking.js';
import { dirOf, need, requireReadable, requireWritable, timesFrom } from './access.js';
import { Errno, WasiError } from './errno.js';
import type { FdTable } from './fd-table.js';
import type { FileDescription } from './file-description.js';
import { writeDirents, writeFdstat, writeFilestat } from './layout.js';
import { GuestMemory } from './memory.js';
import * as remote from './remote-calls.js';
import { RemoteFile } from '../remote-file.js';
import { Fdflags, Filetype, Rights, Whence } from './types.js';
import type { ImportScope, WasiContext, WasiImports } from './wasi-context.js';

/** SIGPIPE in WASI's $signal numbering (the same as Linux's). */
const WASI_SIGPIPE = 13;

export function fdImports({ ctx, fds, mem, fail }: ImportScope): WasiImports {
  return {
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
        const d = dirOf(fds, fd, Rights.FD_READDIR);
        const m = mem();
        m.check(out, 4);
        m.check(buf, bufLen >>> 0);
        const entries = d.listFrom(cookie, ctx);
        if (entries === BLOCKED) return BLOCKED;
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
  };
}

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

function preopenName(fds: FdTable, fd: number): Uint8Array {
  const name = fds.get(fd).preopenName;
  if (name === undefined) throw new WasiError(Errno.BADF, `fd ${fd} is not a preopen`);
  return GuestMemory.encode(name);
}
