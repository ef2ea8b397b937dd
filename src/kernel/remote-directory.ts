/**
 * A directory kept open at a kernel of another node (its home: the directory deputy,
 * src/services/dir-deputy.ts), as a process that moved to this node sees it: its preopens and the
 * directories it opened. Paths are resolved at the home, in the namespace of the node where the
 * process was started, not here: each path call is a request, which the call waits for
 * (BLOCKED until the answer comes: whenAnswered, src/kernel/wasi/remote-calls.ts), and a file
 * opened through it stays at the home too (a RemoteFile).
 */

import type { EndpointId } from '../msg/address.js';
import type { Payload } from '../protocol.js';
import { need } from './wasi/access.js';
import type { Blocked } from './wasi/blocking.js';
import { Directory } from './wasi/directory.js';
import { Errno, WasiError } from './wasi/errno.js';
import type { FdTable } from './wasi/fd-table.js';
import type { FileDescription } from './wasi/file-description.js';
import { whenAnswered } from './wasi/remote-calls.js';
import type { DirEntry, Filestat } from './wasi/types.js';
import type { WasiContext } from './wasi/wasi-context.js';

/** A deputy directory, named system-wide. */
export interface RemoteDirectoryRef {
  home: EndpointId;
  handle: number;
}

/** What a path call asks of the home (the other directory of a rename is at the same home). */
export type DirCall = Payload<'dir_call'>['call'];

/** The home's answer: the new description (open), the attributes (stat), the entries (list), the link's target (readlink). */
export interface DirAnswer {
  description?: FileDescription;
  stat?: Filestat;
  entries?: DirEntry[];
  target?: Uint8Array;
}

/** How a remote directory reaches its home. */
export interface RemoteDirectoryLinks {
  call(ref: RemoteDirectoryRef, call: DirCall, done: (error: WasiError | null, answer?: DirAnswer) => void): void;
  /** The last description here closed: give the reference back. */
  release(ref: RemoteDirectoryRef): void;
}

/** The answer of a call that brings back nothing but its success. */
const succeeded = (): number => 0;

export class RemoteDirectory extends Directory {
  readonly readable = false;
  /** The entries of the last listing (fd_readdir asks again at cookie 0). */
  private listing: DirEntry[] | undefined;

  constructor(readonly ref: RemoteDirectoryRef, private readonly links: RemoteDirectoryLinks) {
    super();
  }

  /** Ask the home; `done` runs once, with the answer or the error. */
  call(call: DirCall, done: (error: WasiError | null, answer?: DirAnswer) => void): void {
    this.links.call(this.ref, call, done);
  }

  /** Send `call` to the home once, wait for the answer, then `take` it. */
  private ask<T>(ctx: WasiContext, call: DirCall, take: (answer: DirAnswer) => T): T | Blocked {
    return whenAnswered(ctx, (done) => this.call(call, done), take);
  }

  // ---- path calls, asked at the home ----

  /** The second directory of a link or rename must be at the same home: one request does both. */
  peerOf(fds: FdTable, fd: number, right: number): this {
    const e = fds.get(fd);
    const d = e.description;
    if (!(d instanceof RemoteDirectory)) throw new WasiError(Errno.XDEV, 'the directories are on different nodes');
    need(e, right);
    if (d.ref.home !== this.ref.home) throw new WasiError(Errno.XDEV, 'the directories are on different nodes');
    return d as this;
  }

  createDirectoryAt(path: string, ctx: WasiContext): number | Blocked {
    return this.ask(ctx, { op: 'mkdir', path }, succeeded);
  }

  statAt(path: string, follow: boolean, ctx: WasiContext): Filestat | Blocked {
    return this.ask(ctx, { op: 'stat', path, follow }, (answer) => {
      if (answer.stat === undefined) throw new WasiError(Errno.IO, 'stat: the home sent no attributes');
      return answer.stat;
    });
  }

  setTimesAt(path: string, follow: boolean, atim: bigint, mtim: bigint, fst: number, ctx: WasiContext): number | Blocked {
    return this.ask(ctx, { op: 'times', path, follow, atim, mtim, fst }, succeeded);
  }

  linkAt(path: string, follow: boolean, to: this, path2: string, ctx: WasiContext): number | Blocked {
    return this.ask(ctx, { op: 'link', path, follow, to: to.ref.handle, path2 }, succeeded);
  }

  openAt(
    path: string, dirflags: number, oflags: number, rights: number, fdflags: number, inheriting: number, ctx: WasiContext,
  ): FileDescription | Blocked {
    return this.ask(ctx, { op: 'open', path, dirflags, oflags, rights, inheriting, fdflags }, (answer) => {
      if (answer.description === undefined) throw new WasiError(Errno.IO, 'open: the home sent no file');
      return answer.description;
    });
  }

  readlinkAt(path: string, ctx: WasiContext): Uint8Array | Blocked {
    return this.ask(ctx, { op: 'readlink', path }, (answer) => answer.target ?? new Uint8Array(0));
  }

  removeDirectoryAt(path: string, ctx: WasiContext): number | Blocked {
    return this.ask(ctx, { op: 'rmdir', path }, succeeded);
  }

  renameAt(path: string, to: this, path2: string, ctx: WasiContext): number | Blocked {
    return this.ask(ctx, { op: 'rename', path, to: to.ref.handle, path2 }, succeeded);
  }

  symlinkAt(target: string, path: string, ctx: WasiContext): number | Blocked {
    return this.ask(ctx, { op: 'symlink', path, target }, succeeded);
  }

  unlinkFileAt(path: string, ctx: WasiContext): number | Blocked {
    return this.ask(ctx, { op: 'unlink', path }, succeeded);
  }

  /** The listing comes whole at cookie 0 and serves the later cookies. */
  listFrom(cookie: bigint, ctx: WasiContext): DirEntry[] | Blocked {
    if (cookie !== 0n && this.listing !== undefined) return this.listing;
    return this.ask(ctx, { op: 'list' }, (answer) => (this.listing = answer.entries ?? []));
  }

  override close(): void {
    this.links.release(this.ref);
  }
}
