/**
 * Where a host fd's file or directory is now, for a checkpoint, which names files by path: found
 * through Linux's /proc, so one renamed since it was opened has its new name.
 */

import * as fs from 'node:fs';
import { Errno, WasiError } from '../kernel/wasi/errno.js';

/**
 * The host path of guest fd `fd`'s file or directory (open as host fd `hostFd`), found now: one
 * renamed since it was opened has its new name.
 */
export function hostPathOf(fd: number, hostFd: number, what: 'file' | 'directory'): string {
  let path: string;
  try {
    path = fs.readlinkSync(`/proc/self/fd/${hostFd}`);
  } catch (error) {
    throw new WasiError(Errno.NOTSUP, `fd ${fd}: cannot find the path of its ${what} (${error instanceof Error ? error.message : String(error)}); checkpoints of files need Linux's /proc`);
  }
  const DELETED = ' (deleted)';
  if (path.endsWith(DELETED)) throw new WasiError(Errno.NOTSUP, `fd ${fd}: its ${what} ${path.slice(0, -DELETED.length)} was deleted: a checkpoint holds files by path`);
  if (!path.startsWith('/')) throw new WasiError(Errno.NOTSUP, `fd ${fd} is ${path}, not a file: a checkpoint can hold only files and the terminal`);
  return path;
}

