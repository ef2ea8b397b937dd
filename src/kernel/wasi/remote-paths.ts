/**
 * The path calls on a directory of another node (a RemoteDirectory: the process moved here from
 * the node its directories are on). Each is a request to the directory's home, which resolves
 * the path in its own namespace: the call sends it once, returns BLOCKED having done nothing else,
 * and its re-run after the answer came (the request waits in ctx.operation) finishes the call.
 * path_link, path_symlink, path_readlink and path_filestat_set_times are not among the calls that
 * may wait: on a remote directory they are ENOTSUP.
 */

import type { Blocked } from './blocking.js';
import type { WasiContext } from './wasi.js';
import type { FdTable } from './fd-table.js';
import type { GuestMemory } from './memory.js';
import { Errno, WasiError } from './errno.js';
import { need } from './access.js';
import { addOpened, openRights } from './path-ops.js';
import { writeDirents, writeFilestat } from './layout.js';
import { Lookupflags, Rights } from './types.js';
import { Operation } from '../operation.js';
import { RemoteDirectory, type DirAnswer, type DirCall } from '../remote-directory.js';

/** The remote directory behind dir fd `fd`, checked for `right`; undefined for a local one. */
export function remoteDirOf(fds: FdTable, fd: number, right: number): RemoteDirectory | undefined {
  const e = fds.get(fd);
  if (!(e.description instanceof RemoteDirectory)) return undefined;
  need(e, right);
  return e.description;
}

/** Send `call` once, wait for the answer, then `take` it. */
function ask<T>(ctx: WasiContext, dir: RemoteDirectory, call: DirCall, take: (answer: DirAnswer) => T): T | Blocked {
  let op = ctx.operation as Operation<DirAnswer> | undefined;
  if (op === undefined) {
    const sent = new Operation<DirAnswer>();
    ctx.operation = sent;
    dir.call(call, (error, answer) => sent.complete(error, answer));
    op = sent;
  }
  if (!op.done) return ctx.wait({ pollables: [op] });
  return take(op.result());
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
