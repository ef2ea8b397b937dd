/**
 * Running a WASI program without the kernel: a wrapper that turns BLOCKED into a synchronous
 * sleep-and-retry. Used by tests, benchmarks and simple tools. It is correct for the same reason
 * the kernel's unwind/rewind is: a syscall that returns BLOCKED has done nothing, so calling it
 * again after the wait is the same call. It blocks the calling thread, so it is no substitute for
 * the kernel's scheduler.
 */
import { BLOCKED, ProcessExit, type WaitSpec } from './blocking.js';
import { createWasiContext, type ContextOptions, type ProcessContext } from './context.js';
import { createWasiImports } from './wasi.js';
import type { WasiImports } from './wasi-context.js';

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Sleeps the thread until the deadline passes. Nothing else runs on this thread, so a pollable
 * (a BufferedStream fed by this thread) cannot become ready while we sleep: a wait on pollables
 * alone would hang forever and is refused; with a deadline it ends at the deadline.
 */
function performWait(ctx: ProcessContext, spec: WaitSpec): void {
  if (spec.pollables.some((p) => p.readReady() || p.writeReady())) return;
  if (spec.deadlineNs === undefined) {
    if (spec.pollables.length === 0) return;
    throw new Error('standalone WASI: a read or write would wait forever (no data and no writer)');
  }
  for (;;) {
    const left = spec.deadlineNs - ctx.monotonicNs();
    if (left <= 0n) return;
    Atomics.wait(sleepCell, 0, 0, Math.max(Number(left) / 1e6, 0.01));
  }
}

/** Imports whose BLOCKED results are waited out synchronously, then the syscall re-run. */
export function syncImports(ctx: ProcessContext, imports: WasiImports = createWasiImports(ctx)): WasiImports {
  const out: WasiImports = {};
  for (const [name, fn] of Object.entries(imports)) {
    out[name] = (...args: unknown[]) => {
      ctx.deadlines = [];
      ctx.yielded = false;
      for (;;) {
        ctx.deadlineIndex = 0;
        const r = fn(...args);
        if (r !== BLOCKED) return r;
        const spec = ctx.pendingWait;
        ctx.pendingWait = undefined;
        if (spec !== undefined) performWait(ctx, spec);
      }
    };
  }
  return out;
}

/** Instantiates and runs a WASI command module to completion; returns its exit status. */
export async function runStandalone(module: WebAssembly.Module, opts: ContextOptions = {}): Promise<number> {
  const ctx = createWasiContext(opts);
  const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: syncImports(ctx) });
  const memory = instance.exports.memory;
  if (!(memory instanceof WebAssembly.Memory)) throw new Error('module exports no memory');
  ctx.setMemory(memory);
  const start = instance.exports._start;
  if (typeof start !== 'function') throw new Error('module exports no _start');
  try {
    (start as () => void)();
    return 0;
  } catch (err) {
    if (err instanceof ProcessExit) return err.status;
    throw err;
  } finally {
    ctx.fds.closeAll((error) => ctx.log?.('closing an fd at exit', error));
  }
}
