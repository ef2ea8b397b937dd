/**
 * Path resolution inside a directory capability. This is the security boundary between a guest
 * and the host file system, so it is deliberately plain: a guest path is walked one component at
 * a time from the directory's host path, `..` pops a component we pushed ourselves, and every
 * symlink met on the way is read and spliced into the walk by hand — the host never resolves a
 * guest-controlled link. Nothing can name a host path outside the root:
 *
 *   absolute guest path                    → EPERM
 *   `..` above the root (directly or via a relative symlink)  → EPERM
 *   symlink with an absolute target        → EPERM
 *   more than MAX_SYMLINKS links followed  → ELOOP
 *   NUL byte in the path                   → EILSEQ
 *
 * Errnos are those of current wasmtime (cap-std reports every escape as its "a path led outside
 * of the filesystem" PermissionDenied, which wasmtime's preview1 turns into EPERM; its
 * interesting_paths test expects ERRNO_PERM for "/dir/nested/file" and for "../../.."). Older
 * wasmtime and node:wasi (uvwasi) say ENOTCAPABLE for the same cases.
 *
 * A host process can swap a directory for a symlink between the walk's look at a component and
 * the host call that uses it, and node has no openat(). So the walk holds every directory it goes
 * through open, each opened from its parent with O_NOFOLLOW|O_DIRECTORY through
 * /proc/PID/fd/N/name (Linux resolves that as openat(N, name) would), and the host call is made
 * on `at`: the last component's name inside its parent's open fd. A symlink put in place of a
 * directory makes that open fail (ELOOP); a directory moved away keeps its fd; and the final
 * component is never followed by the host (callers use l* forms and O_NOFOLLOW).
 *
 * The walk's root is the directory fd's own: a directory the guest opened (and any other that is
 * not a preopen) holds a host fd on it, opened from its parent's as above (HostDirectory.handle),
 * and the walk starts from that fd — never from a path, so a directory renamed away and replaced
 * by a symlink is still the one its fd names, as on Linux. Only a preopen starts from its path:
 * it is the directory the user named with --dir, and the user's host path is its identity.
 */
import * as fs from 'node:fs';
import { Errno, WasiError, host } from './errno.js';

/** Linux's MAXSYMLINKS, which cap-std also uses. */
export const MAX_SYMLINKS = 40;

export interface Resolved {
  /** Host path of the result (root + parts). */
  hostPath: string;
  /** Components below the root; empty for the root itself. */
  parts: string[];
  /** lstat of the result (not followed), or undefined if it does not exist. */
  stat: fs.Stats | undefined;
  /** The guest path's last component was "." or ".." (rmdir "x/." is EINVAL in POSIX). */
  endsInDot: boolean;
  /** The guest path ended in "/": it names a directory, so it cannot be a new file or link. */
  trailingSlash: boolean;
}

/**
 * The directory a walk starts from: a host path (a preopen), or a host fd held on it (`handle`),
 * which the walk uses instead of the path (HostDirectory is one).
 */
export interface DirRoot {
  /** Its host path: where a preopen is; where a held directory was when it was opened. */
  readonly hostPath: string;
  /** A host fd on the directory, owned by the root, or undefined to open `hostPath`. */
  readonly handle: number | undefined;
}

/** A resolution whose directories are held open: `at` is valid until release(). */
export interface ResolvedAt extends Resolved {
  /** The result for host calls: its name in its parent's open fd (/proc/PID/fd/N/name). */
  at: string;
  /** Close the directories the walk held open. */
  release(): void;
}

/**
 * Resolves guest `path` relative to directory `root` (a host path, or a DirRoot).
 * `followFinal`: follow a symlink in the last component (lookupflags.SYMLINK_FOLLOW); a trailing
 * slash always follows, as in POSIX. A missing last component is allowed (stat undefined) so
 * callers can create it; a missing or non-directory intermediate one is ENOENT / ENOTDIR.
 */
export function resolve(root: string | DirRoot, path: string, followFinal: boolean): Resolved {
  const r = resolveAt(root, path, followFinal);
  r.release();
  return r;
}

/** resolve(), then `use` of the result with its directories held open (the host call goes to `at`). */
export function withResolved<T>(root: string | DirRoot, path: string, followFinal: boolean, use: (r: ResolvedAt) => T): T {
  const r = resolveAt(root, path, followFinal);
  try {
    return use(r);
  } finally {
    r.release();
  }
}

/** The walk. The caller must release() the result. */
export function resolveAt(root: string | DirRoot, path: string, followFinal: boolean): ResolvedAt {
  if (path.includes('\0')) throw new WasiError(Errno.ILSEQ, 'NUL in path');
  if (path === '') throw new WasiError(Errno.NOENT, 'empty path');
  if (path.startsWith('/')) throw new WasiError(Errno.PERM, `absolute path ${path}`);
  const r: DirRoot = typeof root === 'string' ? { hostPath: root, handle: undefined } : root;
  const dirs = new OpenDirs(r);
  try {
    return walk(dirs, r.hostPath, path, followFinal);
  } catch (error) {
    dirs.release();
    throw error;
  }
}

function walk(dirs: OpenDirs, root: string, path: string, followFinal: boolean): ResolvedAt {
  const trailingSlash = path.endsWith('/');
  const rawParts = path.split('/').filter((c) => c !== '');
  const last = rawParts[rawParts.length - 1];
  const endsInDot = last === '.' || last === '..';
  // Components still to walk, in reverse so the next one is pop()'d cheaply.
  const todo = rawParts.reverse();
  const parts: string[] = [];
  // The root is a directory we opened; don't pay an lstat for it unless it is the result.
  let stat: fs.Stats | undefined = ROOT;
  let links = 0;
  // The walk's "must be a directory" state for the final result when a trailing slash was given.
  let mustBeDir = trailingSlash;

  while (todo.length > 0) {
    const c = todo.pop()!;
    const isLast = todo.length === 0;
    if (c === '.') {
      continue;
    }
    if (c === '..') {
      // "missing/.." and "file/.." fail as in POSIX: ".." is looked up inside the component.
      if (stat === undefined) throw new WasiError(Errno.NOENT, `${parts.join('/')} does not exist`);
      if (!stat.isDirectory()) throw new WasiError(Errno.NOTDIR, `${parts.join('/')} is not a directory`);
      if (parts.length === 0) throw new WasiError(Errno.PERM, `path ${path} leaves its directory`);
      parts.pop();
      dirs.truncate(parts.length);
      stat = parts.length === 0 ? ROOT : hostLstat(dirs.entry(parts));
      continue;
    }
    if (stat !== undefined && !stat.isDirectory()) {
      throw new WasiError(Errno.NOTDIR, `${parts.join('/')} is not a directory`);
    }
    if (stat === undefined) throw new WasiError(Errno.NOENT, `${parts.join('/')} does not exist`);
    // Looking inside the last component: hold it open first, so it cannot be swapped under us.
    dirs.enter(parts);
    const next = dirs.child(c);
    const st = hostLstat(next);
    if (st?.isSymbolicLink() && (!isLast || followFinal || mustBeDir)) {
      if (++links > MAX_SYMLINKS) throw new WasiError(Errno.LOOP, `too many symlinks in ${path}`);
      const target = host('readlink', () => fs.readlinkSync(next));
      if (target.startsWith('/')) throw new WasiError(Errno.PERM, `symlink ${c} → absolute ${target}`);
      if (target === '') throw new WasiError(Errno.NOENT, `empty symlink ${c}`);
      // The link's components replace it, resolved from the directory that holds the link.
      if (isLast && target.endsWith('/')) mustBeDir = true;
      const linkParts = target.split('/').filter((x) => x !== '');
      for (let i = linkParts.length - 1; i >= 0; i--) todo.push(linkParts[i]!);
      continue;
    }
    parts.push(c);
    stat = st;
  }

  if (stat === ROOT) stat = hostLstat(dirs.entry(parts));
  if (mustBeDir && stat !== undefined && !stat.isDirectory()) {
    throw new WasiError(Errno.NOTDIR, `${path} is not a directory`);
  }
  return { hostPath: join(root, parts), parts, stat, endsInDot, trailingSlash, at: dirs.entry(parts), release: () => dirs.release() };
}

/**
 * The directories of a walk, held open: fds[i] is the directory after i components (fds[0]
 * the root). Each is opened inside the one before it, never by a path the host could redirect.
 * A root that holds a host fd lends it as fds[0] (not closed here); a preopen's is opened by its
 * path.
 */
class OpenDirs {
  private readonly fds: number[];
  /** fds[0] is the root's own handle: release() leaves it open. */
  private readonly borrowed: boolean;

  constructor(root: DirRoot) {
    const handle = root.handle;
    this.borrowed = handle !== undefined;
    // A preopen's own path is the directory capability's (a preopen may well be a symlink).
    this.fds = [handle ?? host('open', () => fs.openSync(root.hostPath, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY))];
  }

  /** Hold the directory after `parts` open (its parent is open already). */
  enter(parts: string[]): void {
    if (this.fds.length > parts.length) return;
    const name = parts[parts.length - 1] as string;
    const parent = this.fds[this.fds.length - 1] as number;
    this.fds.push(host('open', () => fs.openSync(`${pinned(parent)}/${name}`, DIRECTORY_FLAGS)));
  }

  /** Forget the directories below the first `depth` components ("..", after parts.pop()). */
  truncate(depth: number): void {
    while (this.fds.length > depth + 1) fs.closeSync(this.fds.pop() as number);
  }

  /** `name` inside the innermost open directory. */
  child(name: string): string {
    return `${pinned(this.fds[this.fds.length - 1] as number)}/${name}`;
  }

  /** The entry `parts` names: its name in its parent's fd ("." in the root's for the root). */
  entry(parts: string[]): string {
    if (parts.length === 0) return `${pinned(this.fds[0] as number)}/.`;
    return `${pinned(this.fds[parts.length - 1] as number)}/${parts[parts.length - 1] as string}`;
  }

  release(): void {
    const fds = this.fds.splice(0);
    for (let i = this.borrowed ? 1 : 0; i < fds.length; i++) fs.closeSync(fds[i] as number);
  }
}

/** Opened without following a symlink in the last component: a swapped-in link fails with ELOOP. */
export const DIRECTORY_FLAGS = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW;

/**
 * The directory open as `fd`, as a path Linux resolves to it whatever happened to its name since.
 * By pid, not /proc/self: set_times hands the path to a child process (GNU touch, host-times.ts).
 */
export function pinned(fd: number): string {
  return `/proc/${process.pid}/fd/${fd}`;
}

/** Stands for "the root, known to be a directory" during the walk. */
const ROOT = { isDirectory: () => true, isSymbolicLink: () => false } as fs.Stats;

function join(root: string, parts: string[]): string {
  return parts.length === 0 ? root : `${root}/${parts.join('/')}`;
}

function hostLstat(p: string): fs.Stats | undefined {
  return host('lstat', () => fs.lstatSync(p, { throwIfNoEntry: false }));
}
