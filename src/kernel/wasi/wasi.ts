/**
 * The `wasi_snapshot_preview1` import object. Each import converts its raw wasm arguments,
 * calls the implementation, and turns the outcome into the i32 errno the guest expects:
 *
 *   - a WasiError becomes its errno;
 *   - ProcessExit (proc_exit, a fatal proc_raise) is thrown on to the kernel;
 *   - BLOCKED is returned as is: the kernel's wrapper sees `result === BLOCKED`, unwinds the
 *     process and re-runs the same import later (blocking.ts). Only fd_read, fd_write,
 *     poll_oneoff, sched_yield and the path calls a remote directory answers (MAY_BLOCK) can
 *     return it, and only before any side effect;
 *     every other import is marked NEVER_BLOCKS and is called by the program directly;
 *   - any other exception is a bug in us or the host, never the guest's fault: it is logged
 *     through ctx.log and the guest gets EIO, so the kernel keeps running.
 *
 * Each import is a named function with fixed parameters and its own try/catch (no rest
 * arguments, no closure per call): clock_time_get and small fd_writes are hot.
 *
 * The imports are marshalled by group: fd_* in wasi-fd.ts, path_* in wasi-path.ts; this file has
 * the process's own (args, environ, clocks, random, poll, proc, sched, sock) and puts them
 * together.
 */
import { BLOCKED, ProcessExit, markNeverBlocks, type Blocked } from './blocking.js';
import { Errno, WasiError } from './errno.js';
import { isWasiSignal } from '../signals.js';
import type { FdTable } from './fd-table.js';
import { GuestMemory } from './memory.js';
import { WASI_MAY_UNWIND } from '../../wasm/abi.js';
import { pollOneoff } from './poll.js';
import { Clockid, Filetype } from './types.js';
import type { ImportScope, WasiContext, WasiImports } from './wasi-context.js';
import { fdImports } from './wasi-fd.js';
import { pathImports } from './wasi-path.js';

/** The default disposition for proc_raise while the kernel has no signal handling: terminate. */
export function defaultRaise(signal: number): never {
  throw new ProcessExit(128 + signal, signal);
}

export function createWasiImports(ctx: WasiContext): WasiImports {
  const fds: FdTable = ctx.fds;
  const argv = encodeStrings(ctx.args);
  const envp = encodeStrings(ctx.env);

  function fail(err: unknown, name: string): number {
    if (err instanceof WasiError) return err.errno;
    if (err instanceof ProcessExit) throw err;
    ctx.log?.(`wasi ${name}: unexpected host error`, err);
    return Errno.IO;
  }
  const mem = (): GuestMemory => ctx.memory().sync();
  const scope: ImportScope = { ctx, fds, mem, fail };

  // The groups are joined with Object.assign, not spread into one literal: spreading them cost
  // about 120 µs per process (a local spawn took a third longer), Object.assign about 15 µs, as
  // one literal did (node 20, measured by creating 20,000 import objects).
  const imports: WasiImports = Object.assign(fdImports(scope), pathImports(scope), {

    args_get(argvPtr: number, bufPtr: number): number {
      try {
        writeStrings(mem(), argv, argvPtr, bufPtr);
        return 0;
      } catch (e) {
        return fail(e, 'args_get');
      }
    },
    args_sizes_get(countOut: number, sizeOut: number): number {
      try {
        writeSizes(mem(), argv, countOut, sizeOut);
        return 0;
      } catch (e) {
        return fail(e, 'args_sizes_get');
      }
    },
    environ_get(envPtr: number, bufPtr: number): number {
      try {
        writeStrings(mem(), envp, envPtr, bufPtr);
        return 0;
      } catch (e) {
        return fail(e, 'environ_get');
      }
    },
    environ_sizes_get(countOut: number, sizeOut: number): number {
      try {
        writeSizes(mem(), envp, countOut, sizeOut);
        return 0;
      } catch (e) {
        return fail(e, 'environ_sizes_get');
      }
    },

    clock_res_get(id: number, out: number): number {
      try {
        checkClock(id);
        mem().u64set(out, 1n); // both clocks come from hrtime / Date-based ns: report 1 ns
        return 0;
      } catch (e) {
        return fail(e, 'clock_res_get');
      }
    },
    clock_time_get(id: number, _precision: bigint, out: number): number {
      try {
        let ns: bigint;
        if (id === Clockid.MONOTONIC) ns = ctx.monotonicNs();
        else if (id === Clockid.REALTIME) ns = ctx.realtimeNs();
        else {
          checkClock(id);
          return 0;
        }
        ctx.memory().sync().u64set(out, ns);
        return 0;
      } catch (e) {
        return fail(e, 'clock_time_get');
      }
    },

    poll_oneoff(inPtr: number, outPtr: number, nsubs: number, neventsOut: number): number | Blocked {
      try {
        return pollOneoff(ctx, mem(), inPtr, outPtr, nsubs, neventsOut);
      } catch (e) {
        return fail(e, 'poll_oneoff');
      }
    },
    proc_exit(code: number): number {
      throw new ProcessExit(code >>> 0);
    },
    proc_raise(sig: number): number {
      try {
        if (!isWasiSignal(sig)) throw new WasiError(Errno.INVAL, `signal ${sig}`);
        ctx.raise(sig);
        return 0;
      } catch (e) {
        return fail(e, 'proc_raise');
      }
    },
    sched_yield(): number | Blocked {
      try {
        return ctx.yield() === BLOCKED ? BLOCKED : 0;
      } catch (e) {
        return fail(e, 'sched_yield');
      }
    },
    random_get(buf: number, len: number): number {
      try {
        ctx.randomFill(mem().bytes(buf, len));
        return 0;
      } catch (e) {
        return fail(e, 'random_get');
      }
    },

    // No sockets exist yet, so every fd is either closed (EBADF) or not a socket (ENOTSOCK),
    // which is what wasmtime answers for a file or directory fd.
    sock_accept(fd: number, _flags: number, _out: number): number {
      return notSocket(fds, fd, 'sock_accept', fail);
    },
    sock_recv(fd: number, _ri: number, _riLen: number, _flags: number, _out: number, _oflags: number): number {
      return notSocket(fds, fd, 'sock_recv', fail);
    },
    sock_send(fd: number, _si: number, _siLen: number, _flags: number, _out: number): number {
      return notSocket(fds, fd, 'sock_send', fail);
    },
    sock_shutdown(fd: number, _how: number): number {
      return notSocket(fds, fd, 'sock_shutdown', fail);
    },
  });
  for (const [name, fn] of Object.entries(imports)) if (!MAY_BLOCK.has(name)) markNeverBlocks(fn);
  return imports;
}

/**
 * The imports that may return BLOCKED or use the per-syscall state of deadlineFor and yield; the
 * others are marked NEVER_BLOCKS, so the kernel calls them without its rewind wrapper. They are
 * exactly the imports the instrumenter lets unwind: a blocking call must be able to unwind, and one
 * that may unwind but never blocks would only pay for the wrapper.
 */
export const MAY_BLOCK: ReadonlySet<string> = new Set(WASI_MAY_UNWIND);

// ---- helpers -----------------------------------------------------------------------------------

function checkClock(id: number): void {
  // wasmtime has no CPU-time clocks in preview1 and answers EBADF for them; unknown ids are EINVAL.
  if (id === Clockid.PROCESS_CPUTIME || id === Clockid.THREAD_CPUTIME) {
    throw new WasiError(Errno.BADF, 'CPU-time clocks are not supported');
  }
  if (id !== Clockid.REALTIME && id !== Clockid.MONOTONIC) throw new WasiError(Errno.INVAL, `clock ${id}`);
}

function notSocket(fds: FdTable, fd: number, name: string, fail: (e: unknown, n: string) => number): number {
  try {
    const d = fds.get(fd).description;
    if (d.filetype === Filetype.SOCKET_STREAM || d.filetype === Filetype.SOCKET_DGRAM) {
      throw new WasiError(Errno.NOTSUP, 'host sockets are not supported yet');
    }
    throw new WasiError(Errno.NOTSOCK, `fd ${fd} is not a socket`);
  } catch (e) {
    return fail(e, name);
  }
}

/** argv/environ as NUL-terminated UTF-8, encoded once per process. */
interface EncodedStrings {
  items: Uint8Array[];
  size: number;
}

function encodeStrings(list: string[]): EncodedStrings {
  const items = list.map((s) => GuestMemory.encode(`${s}\0`));
  return { items, size: items.reduce((n, b) => n + b.length, 0) };
}

function writeStrings(m: GuestMemory, s: EncodedStrings, ptrs: number, buf: number): void {
  m.check(ptrs, s.items.length * 4);
  let p = m.check(buf, s.size);
  for (let i = 0; i < s.items.length; i++) {
    m.u32set(ptrs + i * 4, p);
    m.u8.set(s.items[i]!, p);
    p += s.items[i]!.length;
  }
}

function writeSizes(m: GuestMemory, s: EncodedStrings, countOut: number, sizeOut: number): void {
  m.check(countOut, 4);
  m.check(sizeOut, 4);
  m.u32set(countOut, s.items.length);
  m.u32set(sizeOut, s.size);
}
