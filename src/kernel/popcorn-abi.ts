/**
 * The `popcorn` import module: what a program can ask of the operating system beyond WASI
 * (declared and documented for C in examples/include/popcorn.h): who and where it is, process
 * creation and waiting, signals, pipes and fd duplication, across every kernel of the system.
 *
 * Each call returns 0 or a WASI errno, like the WASI calls, and writes results through guest
 * pointers. spawn, wait and kill may wait (for another kernel's answer, for a child to end): they
 * follow the blocking rule of wasi/blocking.ts (nothing changed before BLOCKED; the request they
 * sent is kept in Process.operation across re-runs). The others never block and are called by the
 * program directly (markNeverBlocks).
 */

import { markNeverBlocks, ProcessExit, type Blocked } from './wasi/blocking.js';
import { Errno, WasiError } from './wasi/errno.js';
import type { FdEntry } from './wasi/fd-table.js';
import type { FileDescription } from './wasi/file-description.js';
import type { GuestMemory } from './wasi/memory.js';
import type { Operation } from './operation.js';
import type { Process } from './process.js';
import { isCatchable, isValidSignal, waitStatus } from './signals.js';

/** A spawn as the program asked for it, checked and decoded. */
export interface SpawnRequest {
  /** Guest path of the program (absolute; relative paths are taken from "/"). */
  path: string;
  args: string[];
  env: string[];
  /** Explicit fd mappings: child fd → the parent's entry, or null to leave it closed. */
  fds: Map<number, FdEntry | null>;
  /** Kernel index, or -1 for the parent's own kernel. */
  kernel: number;
}

/** What the ABI needs from the kernel's process service. */
export interface ProcessSystem {
  /** Index of the kernel the process runs on, and how many there are. */
  kernelIndex(): number;
  kernelCount(): number;
  /** Start a child; the operation completes with its PID (at once when it runs here). */
  spawn(parent: Process, request: SpawnRequest): Operation<number>;
  /** Send a signal to any process; completes at once for a process on this kernel. */
  kill(sender: Process, pid: number, signal: number): Operation<void>;
  /**
   * Move the process to kernel index `kernel` (popcorn_migrate). The operation completes here
   * only if the move fails; on success the call returns on the other kernel.
   */
  migrate(p: Process, kernel: number): Operation<void>;
  /** The parent collected `pid`'s exit status: its PID may be reused. */
  reaped(pid: number): void;
  /** A signal the process raised itself (proc_raise, SIGPIPE): may throw ProcessExit. */
  raise(p: Process, signal: number): void;
  createPipe(): { read: FileDescription; write: FileDescription };
}

export const WNOHANG = 1;
const SIG_DEFAULT = 0;
const SIG_IGNORE = 1;
const SIG_HANDLER = 2;
/** Bounds on what a spawn may pass, so a guest cannot make the kernel build huge messages. */
const MAX_ARGS = 4096;
const MAX_ARG_BYTES = 1 << 20;
const MAX_FD_MAPS = 1024;

type Import = (...args: never[]) => number | Blocked;

export function createPopcornImports(p: Process, system: ProcessSystem): Record<string, Import> {
  const ctx = p.context;
  const mem = (): GuestMemory => ctx.memory().sync();
  const fail = (error: unknown): number => {
    if (error instanceof WasiError) return error.errno;
    if (error instanceof ProcessExit) throw error;
    ctx.log?.('popcorn call: unexpected host error', error);
    return Errno.IO;
  };

  return {
    getpid: markNeverBlocks(() => p.pid),
    getppid: markNeverBlocks(() => p.ppid),
    kernel_id: markNeverBlocks(() => system.kernelIndex()),
    kernel_count: markNeverBlocks(() => system.kernelCount()),

    spawn(pathPtr: number, pathLen: number, argvPtr: number, envpPtr: number, fdsPtr: number, nfds: number, kernel: number, pidOut: number): number | Blocked {
      try {
        let op = p.operation as Operation<number> | undefined;
        if (op === undefined) {
          const m = mem();
          m.check(pidOut, 4);
          op = system.spawn(p, {
            path: m.string(pathPtr, pathLen),
            args: readStrings(m, argvPtr),
            env: envpPtr === 0 ? [...ctx.env] : readStrings(m, envpPtr),
            fds: readFdMaps(m, p, fdsPtr, nfds),
            kernel,
          });
          p.operation = op;
        }
        if (!op.done) return ctx.wait({ pollables: [op] });
        mem().u32set(pidOut, op.result());
        return 0;
      } catch (error) {
        return fail(error);
      }
    },

    wait(pid: number, statusPtr: number, options: number, reapedOut: number): number | Blocked {
      try {
        if ((pid <= 0 && pid !== -1) || (options & ~WNOHANG) !== 0) throw new WasiError(Errno.INVAL, `wait(${pid}, options ${options})`);
        const m = mem();
        m.check(reapedOut, 4);
        if (statusPtr !== 0) m.check(statusPtr, 4);
        if (pid === -1 ? p.children.size === 0 : !p.children.has(pid)) throw new WasiError(Errno.CHILD, `wait(${pid})`);
        const reaped = p.children.reap(pid);
        if (reaped === undefined) {
          if ((options & WNOHANG) === 0) return ctx.wait({ pollables: [p.children.events] });
          m.u32set(reapedOut, 0);
          return 0;
        }
        system.reaped(reaped.pid);
        if (statusPtr !== 0) m.u32set(statusPtr, waitStatus(reaped.exit.status, reaped.exit.signal));
        m.u32set(reapedOut, reaped.pid);
        return 0;
      } catch (error) {
        return fail(error);
      }
    },

    kill(pid: number, signal: number): number | Blocked {
      try {
        if (!isValidSignal(signal)) throw new WasiError(Errno.INVAL, `signal ${signal}`);
        // Process groups (pid 0, -pgid) and "every process" (-1) are not part of popcorn.
        if (pid <= 0) throw new WasiError(Errno.INVAL, `kill(${pid}): process groups are not supported`);
        let op = p.operation as Operation<void> | undefined;
        if (op === undefined) {
          op = system.kill(p, pid, signal);
          p.operation = op;
        }
        if (!op.done) return ctx.wait({ pollables: [op] });
        op.result();
        return 0;
      } catch (error) {
        return fail(error);
      }
    },

    migrate(kernel: number): number | Blocked {
      try {
        let op = p.operation as Operation<void> | undefined;
        if (op === undefined) {
          if (kernel === system.kernelIndex()) return 0;
          op = system.migrate(p, kernel);
          p.operation = op;
        }
        if (!op.done) return ctx.wait({ pollables: [op] });
        op.result();
        return 0;
      } catch (error) {
        return fail(error);
      }
    },

    signal: markNeverBlocks((signal: number, action: number, handler: number): number => {
      try {
        if (!isValidSignal(signal) || signal === 0 || !isCatchable(signal)) throw new WasiError(Errno.INVAL, `signal ${signal}`);
        if (action === SIG_DEFAULT) p.signals.set(signal, { kind: 'default' });
        else if (action === SIG_IGNORE) p.signals.set(signal, { kind: 'ignore' });
        else if (action === SIG_HANDLER && p.execution.hasFunction(handler)) p.signals.set(signal, { kind: 'handler', index: handler });
        else throw new WasiError(Errno.INVAL, `signal ${signal}: action ${action}, handler ${handler}`);
        return 0;
      } catch (error) {
        return fail(error);
      }
    }),

    pipe: markNeverBlocks((fdsOut: number): number => {
      try {
        mem().check(fdsOut, 8);
        const { read, write } = system.createPipe();
        const r = addFd(p, read);
        let w: number;
        try {
          w = addFd(p, write);
        } catch (error) {
          ctx.fds.close(r);
          write.close();
          throw error;
        }
        mem().u32set(fdsOut, r);
        mem().u32set(fdsOut + 4, w);
        return 0;
      } catch (error) {
        return fail(error);
      }
    }),

    dup2: markNeverBlocks((oldFd: number, newFd: number): number => {
      try {
        const e = ctx.fds.get(oldFd);
        if (newFd !== oldFd) ctx.fds.set(newFd, { description: e.description, rightsBase: e.rightsBase, rightsInheriting: e.rightsInheriting });
        return 0;
      } catch (error) {
        return fail(error);
      }
    }),
  };
}

function addFd(p: Process, description: FileDescription): number {
  return p.context.fds.add({ description, rightsBase: description.maxRights, rightsInheriting: 0 });
}

/** A NUL-terminated array of pointers to NUL-terminated strings (argv, envp). */
function readStrings(m: GuestMemory, arrayPtr: number): string[] {
  const out: string[] = [];
  let bytes = 0;
  for (let i = 0; ; i++) {
    const ptr = m.u32get(arrayPtr + 4 * i);
    if (ptr === 0) return out;
    if (i >= MAX_ARGS) throw new WasiError(Errno.TOOBIG, `more than ${MAX_ARGS} strings`);
    const s = readCString(m, ptr, MAX_ARG_BYTES - bytes);
    bytes += s.length + 1;
    out.push(s);
  }
}

function readCString(m: GuestMemory, ptr: number, limit: number): string {
  let end = ptr;
  while (m.u8get(end) !== 0) {
    if (end - ptr >= limit) throw new WasiError(Errno.TOOBIG, `arguments over ${MAX_ARG_BYTES} bytes`);
    end++;
  }
  return m.string(ptr, end - ptr);
}

/**
 * The fd mappings of a spawn: `nfds` pairs {child_fd, parent_fd}. The preopens take the child's
 * fds from 3 up, so a mapping onto one of them is EINVAL; a parent fd that is not open is EBADF.
 */
function readFdMaps(m: GuestMemory, p: Process, ptr: number, count: number): Map<number, FdEntry | null> {
  if (count < 0 || count > MAX_FD_MAPS) throw new WasiError(Errno.INVAL, `${count} fd mappings`);
  const preopens = p.dirs.length;
  const maps = new Map<number, FdEntry | null>();
  for (let i = 0; i < count; i++) {
    const childFd = m.u32get(ptr + 8 * i) | 0;
    const parentFd = m.u32get(ptr + 8 * i + 4) | 0;
    if (childFd < 0 || childFd >= p.context.fds.maxFds || (childFd >= 3 && childFd < 3 + preopens)) {
      throw new WasiError(Errno.INVAL, `child fd ${childFd}`);
    }
    maps.set(childFd, parentFd === -1 ? null : p.context.fds.get(parentFd));
  }
  return maps;
}
