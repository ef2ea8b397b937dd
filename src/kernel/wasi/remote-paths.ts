/**
 * The calls on a directory or file of another node (a RemoteDirectory or RemoteFile: the process
 * moved here from the node they are on). Each is a request to their home, which resolves paths
 * in its own namespace: the call sends it once, returns BLOCKED having done nothing else, and its
 * re-run after the answer came (the request waits in ctx.operation) finishes the call.
 */

import type { Blocked } from './blocking.js';
import type { WasiContext } from './wasi-context.js';
import type { FdTable } from './fd-table.js';
import type { GuestMemory } from './memory.js';
import { Errno, WasiError } from './errno.js';
import { need } from './access.js';
import { addOpened, openRights, writeLink } from './path-ops.js';
import { writeDirents, writeFilestat } from './layout.js';
import { Lookupflags, Rights } from './types.js';
import { Operation } from '../operation.js';
import { RemoteDirectory, type DirAnswer, type DirCall } from '../remote-directory.js';
import type { RemoteFile } from '../remote-file.js';

/** The remote directory behind dir fd `fd`, checked for `right`; undefined for a local one. */
export function remoteDirOf(fds: FdTable, fd: number, right: number): RemoteDirectory | undefined {
  const e = fds.get(fd);
  if (!(e.description instanceof RemoteDirectory)) return undefined;
  need(e, right);
  return e.description;
}

/** Start the request once (`start`), wait for its answer across re-runs, then `take` it. */
function whenAnswered<A, T>(ctx: WasiContext, start: (done: (error: WasiError | null, answer?: A) => void) => void, take: (answer: A) => T): T | Blocked {
  let op = ctx.operation as Operation<A> | undefined;
  if (op === undefined) {
    const sent = new Operation<A>();
    ctx.operation = sent;
    start((error, answer) => sent.complete(error, answer));
    op = sent;
  }
  if (!op.done) return ctx.wait({ pollables: [op] });
  return take(op.result());
}

/** Send `call` to the directory's home once, wait for the answer, then `take` it. */
function ask<T>(ctx: WasiContext, dir: RemoteDirectory, call: DirCall, take: (answer: DirAnswer) => T): T | Blocked {
  return whenAnswered(ctx, (done) => dir.call(call, done), take);
}

export function remoteOpen(
  ctx: WasiContext, fds: FdTable, mem: GuestMemory, dir: RemoteDirectory, fd: number, dirflags: number, path: string,
  oflags: number, rightsBase: bigint, rightsInheriting: bigint, fdflags: number, out: number,
): number | Blocked {
  const { base, inheriting } = openRights(fds.get(fd), oflags, rightsBase, rightsInheriting, fdflags);
  mem.check(out, 4);
  return ask(ctx, dir, { op: 'open', path, dirflags, oflags, rights: base, inheriting, fdflags }, (answer) => {
    const description = answer.description;
    if (description === undefined) throw new WasiError(Errno.IO, 'open: the home sent no file');
    mem.u32set(out, addOpened(fds, description, base, inheriting));
    return 0;
  });
}

export function remoteStat(ctx: WasiContext, mem: GuestMemory, dir: RemoteDirectory, flags: number, path: string, out: number): number | Blocked {
  mem.check(out, 64);
  return ask(ctx, dir, { op: 'stat', path, follow: (flags & Lookupflags.SYMLINK_FOLLOW) !== 0 }, (answer) => {
    if (answer.stat === undefined) throw new WasiError(Errno.IO, 'stat: the home sent no attributes');
    writeFilestat(mem, out, answer.stat);
    return 0;
  });
}

/** mkdir, rmdir, unlink: nothing comes back but success or the error. */
export function remoteChange(ctx: WasiContext, dir: RemoteDirectory, op: 'mkdir' | 'rmdir' | 'unlink', path: string): number | Blocked {
  return ask(ctx, dir, { op, path }, () => 0);
}

export function remoteRename(ctx: WasiContext, fds: FdTable, from: RemoteDirectory, path: string, newFd: number, path2: string): number | Blocked {
  const to = remoteDirOf(fds, newFd, Rights.PATH_RENAME_TARGET);
  if (to === undefined || to.ref.home !== from.ref.home) throw new WasiError(Errno.XDEV, 'rename: the directories are on different nodes');
  return ask(ctx, from, { op: 'rename', path, to: to.ref.handle, path2 }, () => 0);
}

/** fd_readdir: the listing comes whole at cookie 0 and serves the later cookies. */
export function remoteReaddir(ctx: WasiContext, mem: GuestMemory, dir: RemoteDirectory, buf: number, bufLen: number, cookie: bigint, out: number): number | Blocked {
  const write = (): number => {
    const entries = dir.listing ?? [];
    const start = cookie > BigInt(entries.length) ? entries.length : Number(cookie);
    mem.u32set(out, writeDirents(mem, buf, bufLen, entries, start));
    return 0;
  };
  if (cookie !== 0n && dir.listing !== undefined) return write();
  return ask(ctx, dir, { op: 'list' }, (answer) => {
    dir.listing = answer.entries ?? [];
    return write();
  });
}

/** Both directories of a two-path call, at the same home (else EXDEV, as across filesystems). */
function pairOf(fds: FdTable, from: RemoteDirectory, newFd: number, right: number, what: string): RemoteDirectory {
  const to = remoteDirOf(fds, newFd, right);
  if (to === undefined || to.ref.home !== from.ref.home) throw new WasiError(Errno.XDEV, `${what}: the directories are on different nodes`);
  return to;
}

export function remoteLink(ctx: WasiContext, fds: FdTable, from: RemoteDirectory, follow: boolean, path: string, newFd: number, path2: string): number | Blocked {
  const to = pairOf(fds, from, newFd, Rights.PATH_LINK_TARGET, 'link');
  return ask(ctx, from, { op: 'link', path, follow, to: to.ref.handle, path2 }, () => 0);
}

export function remoteSymlink(ctx: WasiContext, dir: RemoteDirectory, target: string, path: string): number | Blocked {
  return ask(ctx, dir, { op: 'symlink', path, target }, () => 0);
}

export function remoteReadlink(ctx: WasiContext, mem: GuestMemory, dir: RemoteDirectory, path: string, buf: number, bufLen: number, out: number): number | Blocked {
  mem.check(buf, bufLen >>> 0);
  mem.check(out, 4);
  return ask(ctx, dir, { op: 'readlink', path }, (answer) => {
    writeLink(mem, answer.target ?? new Uint8Array(0), buf, bufLen, out);
    return 0;
  });
}

export function remoteSetTimes(ctx: WasiContext, dir: RemoteDirectory, flags: number, path: string, atim: bigint, mtim: bigint, fst: number): number | Blocked {
  return ask(ctx, dir, { op: 'times', path, follow: (flags & Lookupflags.SYMLINK_FOLLOW) !== 0, atim, mtim, fst }, () => 0);
}

/** fd_pread on a file of another node: one request for the iovecs' total, scattered into them. */
export function remotePread(ctx: WasiContext, mem: GuestMemory, file: RemoteFile, base: number, count: number, position: bigint, out: number): number | Blocked {
  const iovecs = iovecsOf(mem, base, count);
  const total = iovecs.reduce((sum, [, len]) => sum + len, 0);
  return whenAnswered<Uint8Array, number>(ctx, (done) => file.readAt(Number(position), total, done), (data) => {
    let at = 0;
    for (const [off, len] of iovecs) {
      const n = Math.min(len, data.length - at);
      if (n <= 0) break;
      mem.writeBytes(off, data.subarray(at, at + n));
      at += n;
    }
    mem.u32set(out, at);
    return 0;
  });
}

/** fd_pwrite on a file of another node: the iovecs gathered into one request. */
export function remotePwrite(ctx: WasiContext, mem: GuestMemory, file: RemoteFile, base: number, count: number, position: bigint, out: number): number | Blocked {
  return whenAnswered<number, number>(ctx, (done) => {
    const data = gather(mem, iovecsOf(mem, base, count));
    file.writeAt(Number(position), data, (error) => done(error, data.length));
  }, (n) => {
    mem.u32set(out, n);
    return 0;
  });
}

function iovecsOf(mem: GuestMemory, base: number, count: number): [number, number][] {
  const iovecs: [number, number][] = [];
  for (let i = 0; i < count >>> 0; i++) iovecs.push([mem.dv.getUint32(base + i * 8, true), mem.dv.getUint32(base + i * 8 + 4, true)]);
  return iovecs;
}

function gather(mem: GuestMemory, iovecs: [number, number][]): Uint8Array {
  const data = new Uint8Array(iovecs.reduce((sum, [, len]) => sum + len, 0));
  let at = 0;
  for (const [off, len] of iovecs) {
    data.set(mem.u8.subarray(off, off + len), at);
    at += len;
  }
  return data;
}
