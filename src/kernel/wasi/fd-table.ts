/**
 * A process's file descriptor table: small integers → open file descriptions plus the rights
 * this fd grants. New fds take the lowest free number (POSIX; what programs expect of 0/1/2).
 * Preopened directories are ordinary entries that also carry the name the guest sees
 * (fd_prestat_get), and are added in order from fd 3.
 */
import { Errno, WasiError } from './errno.js';
import type { FileDescription } from './file-description.js';

export interface FdEntry {
  description: FileDescription;
  /** Rights of operations on this fd. */
  rightsBase: number;
  /** Rights that fds opened through this one (path_open) may have at most. */
  rightsInheriting: number;
  /** Set for preopened directories: the guest path it stands for, e.g. "/sandbox". */
  preopenName?: string;
}

/** Limit on the number of open fds (EMFILE beyond it), to bound a guest's host resources. */
export const DEFAULT_MAX_FDS = 1024;

/**
 * How many fd entries, in every fd table of this kernel, refer to each open file description. A
 * description is shared by the fds of a process (dup2) and by processes (a child gets its
 * parent's), and is closed once, when the last entry goes: like the kernel's struct file count.
 */
const references = new WeakMap<FileDescription, number>();

function retain(description: FileDescription): void {
  references.set(description, (references.get(description) ?? 0) + 1);
}

/** Drops one reference; closes the description when it was the last. Errors reach the caller. */
function release(description: FileDescription): void {
  const left = (references.get(description) ?? 1) - 1;
  if (left > 0) {
    references.set(description, left);
    return;
  }
  references.delete(description);
  description.close();
}

export class FdTable {
  private entries: (FdEntry | undefined)[] = [];

  constructor(readonly maxFds = DEFAULT_MAX_FDS) {}

  /** The entry for fd, or EBADF. */
  get(fd: number): FdEntry {
    const e = this.entries[fd];
    if (e === undefined) throw new WasiError(Errno.BADF, `fd ${fd}`);
    return e;
  }

  /** The entry for fd, or undefined (no throw: for poll_oneoff's per-subscription errors). */
  lookup(fd: number): FdEntry | undefined {
    return this.entries[fd];
  }

  /** Installs at the lowest free number (at or above `from`); returns it. */
  add(entry: FdEntry, from = 0): number {
    let fd = from;
    while (fd < this.entries.length && this.entries[fd] !== undefined) fd++;
    if (fd >= this.maxFds) throw new WasiError(Errno.MFILE, 'too many open files');
    retain(entry.description);
    this.entries[fd] = entry;
    return fd;
  }

  /** Installs at a given number (stdio setup, dup2); replaces and closes what was there. */
  set(fd: number, entry: FdEntry): void {
    if (!Number.isInteger(fd) || fd < 0 || fd >= this.maxFds) throw new WasiError(Errno.BADF, `fd ${fd}`);
    const old = this.entries[fd];
    retain(entry.description);
    this.entries[fd] = entry;
    if (old !== undefined) release(old.description);
  }

  /** Adds a preopened directory at the next free fd from 3 (0-2 are stdio even when closed). */
  preopen(description: FileDescription, guestName: string): number {
    return this.add({
      description,
      rightsBase: description.maxRights,
      rightsInheriting: description.maxInheritingRights,
      preopenName: guestName,
    }, 3);
  }

  /** Removes fd and closes its description unless another fd still refers to it. */
  close(fd: number): void {
    const e = this.get(fd);
    this.entries[fd] = undefined;
    this.trim();
    release(e.description);
  }

  /**
   * fd_renumber: atomically moves `from` onto `to`, closing what `to` referred to. Both must
   * be open (wasmtime returns EBADF for a closed `to`, unlike dup2).
   */
  renumber(from: number, to: number): void {
    const e = this.get(from);
    const old = this.get(to);
    if (from === to) return;
    this.entries[to] = e;
    this.entries[from] = undefined;
    this.trim();
    release(old.description);
  }

  /** Open fd numbers in increasing order. */
  fds(): number[] {
    const out: number[] = [];
    this.entries.forEach((e, fd) => e !== undefined && out.push(fd));
    return out;
  }

  /**
   * Closes every fd (process exit). A description that fails to close is reported to `onError`
   * and the rest are still closed.
   */
  closeAll(onError: (error: unknown) => void): void {
    const entries = this.entries;
    this.entries = [];
    for (const e of entries) {
      if (e === undefined) continue;
      try {
        release(e.description);
      } catch (error) {
        onError(error);
      }
    }
  }

  private trim(): void {
    while (this.entries.length > 0 && this.entries[this.entries.length - 1] === undefined) this.entries.pop();
  }
}
