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
 * Known limit: node has no openat()/O_BENEATH, so between our lstat of a component and the host
 * call that uses the final path, another host process could swap a directory for a symlink.
 * Guests cannot do that to each other while a syscall runs (a kernel runs syscalls to completion),
 * but guests on other kernels share the host tree; closing that race needs openat-style host I/O.
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
 * Resolves guest `path` relative to the directory at host path `root`.
 * `followFinal`: follow a symlink in the last component (lookupflags.SYMLINK_FOLLOW); a trailing
 * slash always follows, as in POSIX. A missing last component is allowed (stat undefined) so
 * callers can create it; a missing or non-directory intermediate one is ENOENT / ENOTDIR.
 */
export function resolve(root: string, path: string, followFinal: boolean): Resolved {
  if (path.includes('\0')) throw new WasiError(Errno.ILSEQ, 'NUL in path');
  if (path === '') throw new WasiError(Errno.NOENT, 'empty path');
  if (path.startsWith('/')) throw new WasiError(Errno.PERM, `absolute path ${path}`);

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
      stat = hostLstat(join(root, parts));
      continue;
    }
    if (stat !== undefined && !stat.isDirectory()) {
      throw new WasiError(Errno.NOTDIR, `${parts.join('/')} is not a directory`);
    }
    if (stat === undefined) throw new WasiError(Errno.NOENT, `${parts.join('/')} does not exist`);
    const next = join(root, [...parts, c]);
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

  if (stat === ROOT) stat = hostLstat(root);
  if (mustBeDir && stat !== undefined && !stat.isDirectory()) {
    throw new WasiError(Errno.NOTDIR, `${path} is not a directory`);
  }
  return { hostPath: join(root, parts), parts, stat, endsInDot, trailingSlash };
}

/** Stands for "the root, known to be a directory" during the walk. */
const ROOT = { isDirectory: () => true, isSymbolicLink: () => false } as fs.Stats;

function join(root: string, parts: string[]): string {
  return parts.length === 0 ? root : `${root}/${parts.join('/')}`;
}

function hostLstat(p: string): fs.Stats | undefined {
  return host('lstat', () => fs.lstatSync(p, { throwIfNoEntry: false }));
}
