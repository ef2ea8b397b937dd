/**
 * Shared by the wasi-* tests: a guest memory we write arguments into by hand, a standalone WASI
 * context over a fresh temp directory preopened as fd 3, and small encoders for iovecs/strings.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BufferedStream } from '../src/kernel/wasi/file-description.js';
import { WasiError } from '../src/kernel/wasi/errno.js';
import { createWasiContext, type ProcessContext } from '../src/kernel/wasi/context.js';
import { createWasiImports } from '../src/kernel/wasi/wasi.js';
import type { WasiImports } from '../src/kernel/wasi/wasi-context.js';

export function tempDir(prefix = 'wasi-test-'): string {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
}

export interface Harness {
  dir: string;
  ctx: ProcessContext;
  w: WasiImports;
  memory: WebAssembly.Memory;
  dv: DataView;
  u8: Uint8Array;
  stdin: BufferedStream;
  stdout: BufferedStream;
  /** Writes a string at a scratch address; returns [ptr, len]. */
  str(s: string): [number, number];
  /** Builds an iovec array for the given buffers (ptr, len pairs); returns its ptr. */
  iov(...bufs: [number, number][]): number;
  /** A fresh scratch pointer with `n` bytes (8-aligned). */
  alloc(n: number): number;
  u32(ptr: number): number;
  u64(ptr: number): bigint;
  text(ptr: number, len: number): string;
  /** path_open relative to fd 3 with common defaults; returns [errno, fd]. */
  open(p: string, opts?: { oflags?: number; rights?: bigint; fdflags?: number; follow?: boolean; dirfd?: number }): [number, number];
  cleanup(): void;
}

export const ALL = 0x3fff_ffffn;

export function harness(opts: { args?: string[]; env?: string[]; pages?: number } = {}): Harness {
  const dir = tempDir();
  const stdin = new BufferedStream();
  const stdout = new BufferedStream();
  const ctx = createWasiContext({
    args: opts.args ?? ['prog'], env: opts.env ?? [], stdio: [stdin, stdout, new BufferedStream()],
    preopens: { '/sandbox': dir },
    log: (m, e) => { throw new Error(`unexpected host error in ${m}: ${String(e)}`); },
  });
  const memory = new WebAssembly.Memory({ initial: opts.pages ?? 1 });
  ctx.setMemory(memory);
  let next = 1024;
  const h: Harness = {
    dir, ctx, w: createWasiImports(ctx), memory, stdin, stdout,
    get dv() { return new DataView(memory.buffer); },
    get u8() { return new Uint8Array(memory.buffer); },
    alloc(n) {
      const p = next;
      next += Math.ceil(n / 8) * 8 + 8;
      return p;
    },
    str(s) {
      const b = new TextEncoder().encode(s);
      const p = h.alloc(b.length);
      h.u8.set(b, p);
      return [p, b.length];
    },
    iov(...bufs) {
      const p = h.alloc(bufs.length * 8);
      bufs.forEach(([ptr, len], i) => {
        h.dv.setUint32(p + i * 8, ptr, true);
        h.dv.setUint32(p + i * 8 + 4, len, true);
      });
      return p;
    },
    u32: (p) => h.dv.getUint32(p, true),
    u64: (p) => h.dv.getBigUint64(p, true),
    text: (p, len) => new TextDecoder().decode(h.u8.slice(p, p + len)),
    open(p, o = {}) {
      const [sp, sl] = h.str(p);
      const out = h.alloc(4);
      const errno = h.w.path_open!(o.dirfd ?? 3, o.follow === false ? 0 : 1, sp, sl, o.oflags ?? 0,
        o.rights ?? ALL, ALL, o.fdflags ?? 0, out) as number;
      return [errno, errno === 0 ? h.u32(out) : -1];
    },
    cleanup() {
      ctx.fds.closeAll((error) => {
        throw error;
      });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

/** The errno `fn` throws as a WasiError, or undefined when it does not throw (anything else is rethrown). */
export function errnoOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof WasiError) return error.errno;
    throw error;
  }
  return undefined;
}
