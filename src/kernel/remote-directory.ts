/**
 * A directory kept open at a kernel of another node (its home: the directory deputy,
 * src/services/dir-deputy.ts), as a process that moved to this node sees it: its preopens and the
 * directories it opened. Paths are resolved at the home, in the namespace of the node where the
 * process was started, not here: each path call is a request (src/kernel/wasi/remote-paths.ts),
 * and a file opened through it stays at the home too (a RemoteFile).
 */

import type { EndpointId } from '../msg/address.js';
import type { Payload } from '../protocol.js';
import { BaseDescription, type FileDescription } from './wasi/file-description.js';
import type { WasiError } from './wasi/errno.js';
import { DIR_RIGHTS, FILE_RIGHTS, Filetype, type DirEntry, type Filestat } from './wasi/types.js';

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

export class RemoteDirectory extends BaseDescription {
  readonly filetype = Filetype.DIRECTORY;
  readonly maxRights = DIR_RIGHTS;
  override readonly maxInheritingRights = DIR_RIGHTS | FILE_RIGHTS;
  readonly readable = false;
  readonly writable = false;
  /** The entries of the last listing (fd_readdir asks again at cookie 0). */
  listing: DirEntry[] | undefined;

  constructor(readonly ref: RemoteDirectoryRef, private readonly links: RemoteDirectoryLinks) {
    super();
  }

  /** Ask the home; `done` runs once, with the answer or the error. */
  call(call: DirCall, done: (error: WasiError | null, answer?: DirAnswer) => void): void {
    this.links.call(this.ref, call, done);
  }

  /** Only what is known here: a directory (its attributes are the home's, and cost a round trip). */
  override stat(): Filestat {
    return { dev: 0n, ino: 0n, filetype: Filetype.DIRECTORY, nlink: 1n, size: 0n, atim: 0n, mtim: 0n, ctim: 0n };
  }

  override close(): void {
    this.links.release(this.ref);
  }
}
