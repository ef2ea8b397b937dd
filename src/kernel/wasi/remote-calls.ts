/**
 * Calls answered at another node: on a directory or file there (a RemoteDirectory or RemoteFile:
 * the process moved here from the node they are on). Each is a request to their home: the call
 * sends it once, returns BLOCKED having done nothing else, and its re-run after the answer came
 * (the request waits in ctx.operation) finishes the call (whenAnswered). A RemoteDirectory's path
 * calls are its own methods (../remote-directory.ts); fd_pread and fd_pwrite on a remote file are
 * here.
 */

import type { Blocked } from './blocking.js';
import type { WasiContext } from './wasi-context.js';
import type { GuestMemory } from './memory.js';
import type { WasiError } from './errno.js';
import { Operation } from '../operation.js';
import type { RemoteFile } from '../remote-file.js';

/** Start the request once (`start`), wait for its answer across re-runs, then `take` it. */
export function whenAnswered<A, T>(ctx: WasiContext, start: (done: (error: WasiError | null, answer?: A) => void) => void, take: (answer: A) => T): T | Blocked {
  let op = ctx.operation as Operation<A> | undefined;
  if (op === undefined) {
    const sent = new Operation<A>();
    ctx.operation = sent;
    start((error, answer) => sent.complete(error, answer));
    op = sent;
  }
  if (!op.done) return ctx.wait({ pollables: [op] });
  return take(op.result());
}

/** fd_pread on a file of another node: one request for the iovecs' total, scattered into them. */
export function remotePread(ctx: WasiContext, mem: GuestMemory, file: RemoteFile, base: number, count: number, position: bigint, out: number): number | Blocked {
  const iovecs = iovecsOf(mem, base, count);
  const total = iovecs.reduce((sum, [, len]) => sum + len, 0);
  return whenAnswered<Uint8Array, number>(ctx, (done) => file.readAt(Number(position), total, done), (data) => {
    let at = 0;
    for (const [off, len] of iovecs) {
      const n = Math.min(len, data.length - at);
      if (n <= 0) break;
      mem.writeBytes(off, data.subarray(at, at + n));
      at += n;
    }
    mem.u32set(out, at);
    return 0;
  });
}

/** fd_pwrite on a file of another node: the iovecs gathered into one request. */
export function remotePwrite(ctx: WasiContext, mem: GuestMemory, file: RemoteFile, base: number, count: number, position: bigint, out: number): number | Blocked {
  return whenAnswered<number, number>(ctx, (done) => {
    const data = gather(mem, iovecsOf(mem, base, count));
    file.writeAt(Number(position), data, (error) => done(error, data.length));
  }, (n) => {
    mem.u32set(out, n);
    return 0;
  });
}

function iovecsOf(mem: GuestMemory, base: number, count: number): [number, number][] {
  const iovecs: [number, number][] = [];
  for (let i = 0; i < count >>> 0; i++) iovecs.push([mem.dv.getUint32(base + i * 8, true), mem.dv.getUint32(base + i * 8 + 4, true)]);
  return iovecs;
}

function gather(mem: GuestMemory, iovecs: [number, number][]): Uint8Array {
  const data = new Uint8Array(iovecs.reduce((sum, [, len]) => sum + len, 0));
  let at = 0;
  for (const [off, len] of iovecs) {
    data.set(mem.u8.subarray(off, off + len), at);
    at += len;
  }
  return data;
}
