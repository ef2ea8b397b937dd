/**
 * A directory description: what a directory fd refers to, and what answers the path calls made
 * relative to it. The path imports (wasi-path.ts) and fd_readdir decode their arguments, look the
 * directory up with the right they need (dirOf, access.ts) and call one of these methods; the
 * kind of directory decides how the call is done:
 *
 *   - a HostDirectory (host-directory.ts), on this node's disk, resolves the path itself with the
 *     path-ops.ts cores and answers at once;
 *   - a RemoteDirectory (../remote-directory.ts), kept at a kernel of another node, asks its home,
 *     which runs the same cores, and returns BLOCKED until the answer comes (blocking.ts: it has
 *     done nothing else, and the call's re-run takes the answer).
 *
 * Paths are the guest's, already decoded; failures are thrown as WasiError. The last parameter,
 * `ctx`, is where a call that waits keeps its request across its re-runs (ctx.operation): a kind
 * that never waits leaves it out.
 */
import type { Blocked } from './blocking.js';
import type { FdTable } from './fd-table.js';
import { BaseDescription, type FileDescription } from './file-description.js';
import { DIR_RIGHTS, FILE_RIGHTS, Filetype, type DirEntry, type Filestat } from './types.js';
import type { WasiContext } from './wasi-context.js';

export abstract class Directory extends BaseDescription {
  readonly filetype = Filetype.DIRECTORY;
  readonly maxRights = DIR_RIGHTS;
  override readonly maxInheritingRights = DIR_RIGHTS | FILE_RIGHTS;
  readonly writable = false;

  /**
   * The second directory of a link or rename: dir fd `fd`, checked for `right`. One call must
   * reach both (this node's disk; the same home), else EXDEV, as across file systems.
   */
  abstract peerOf(fds: FdTable, fd: number, right: number): this;

  /** path_create_directory: 0, or BLOCKED. */
  abstract createDirectoryAt(path: string, ctx: WasiContext): number | Blocked;

  /** path_filestat_get: the attributes of `path` (of the link itself unless `follow`). */
  abstract statAt(path: string, follow: boolean, ctx: WasiContext): Filestat | Blocked;

  /** path_filestat_set_times, with the guest's times and $fstflags. */
  abstract setTimesAt(path: string, follow: boolean, atim: bigint, mtim: bigint, fst: number, ctx: WasiContext): number | Blocked;

  /** path_link: a hard link `path2` in `to` (this one's peerOf) to `path` here. */
  abstract linkAt(path: string, follow: boolean, to: this, path2: string, ctx: WasiContext): number | Blocked;

  /**
   * path_open: the description of what `path` opened (or created), for a new fd with rights
   * `rights`; `inheriting` is what that fd passes on (a home records it with what it opened).
   */
  abstract openAt(
    path: string, dirflags: number, oflags: number, rights: number, fdflags: number, inheriting: number, ctx: WasiContext,
  ): FileDescription | Blocked;

  /** path_readlink: the link's whole target (the caller truncates it to the guest's buffer). */
  abstract readlinkAt(path: string, ctx: WasiContext): Uint8Array | Blocked;

  /** path_remove_directory: 0, or BLOCKED. */
  abstract removeDirectoryAt(path: string, ctx: WasiContext): number | Blocked;

  /** path_rename: `path` here becomes `path2` in `to` (this one's peerOf). */
  abstract renameAt(path: string, to: this, path2: string, ctx: WasiContext): number | Blocked;

  /** path_symlink: a symlink `path` to `target`. */
  abstract symlinkAt(target: string, path: string, ctx: WasiContext): number | Blocked;

  /** path_unlink_file: 0, or BLOCKED. */
  abstract unlinkFileAt(path: string, ctx: WasiContext): number | Blocked;

  /**
   * fd_readdir: the listing that serves `cookie`, "." and ".." first. Cookie 0 takes a fresh one
   * (a rewind); later cookies index the same one, so a directory changed mid-listing neither
   * repeats nor skips entries of one pass.
   */
  abstract listFrom(cookie: bigint, ctx: WasiContext): DirEntry[] | Blocked;
}
