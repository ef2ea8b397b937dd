/**
 * Instrumentation off the main thread. Binaryen works synchronously for seconds on a large
 * program, and a node's main thread must not stop for that long: it relays every message between
 * its kernels and the other nodes, serves the terminal and the control socket, and sends the
 * heartbeats without which the other nodes declare it lost. So the loader hands the work to one
 * worker thread, started on the first cache miss and kept (unreferenced) for the next.
 *
 * The worker's side is instrument-thread.ts.
 */

import { Worker } from 'node:worker_threads';
import { ModuleError } from './errors.js';
import type { InstrumentOptions, InstrumentProgress, InstrumentResult } from './instrument.js';

/** A job for the worker. */
export interface InstrumentJob {
  id: number;
  original: Uint8Array;
  opts: InstrumentOptions;
}

/** The worker's answers: progress as it goes, then the result or what was thrown (a ModuleError is rebuilt here). */
export type InstrumentAnswer =
  | { id: number; progress: number }
  | { id: number; result: InstrumentResult }
  | { id: number; error: { module: boolean; source: string; reason: string; message: string } };

let worker: Worker | undefined;
let nextId = 1;
interface PendingJob {
  resolve: (r: InstrumentResult) => void;
  reject: (e: Error) => void;
  onProgress: InstrumentProgress | undefined;
}
const pending = new Map<number, PendingJob>();

/** instrument(original, opts) in the instrumentation worker; rejects with its ModuleError. */
export function instrumentInWorker(original: Uint8Array, opts: InstrumentOptions, onProgress?: InstrumentProgress): Promise<InstrumentResult> {
  const w = (worker ??= startWorker());
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, onProgress });
    w.ref(); // a job in progress keeps the process alive; an idle worker does not
    w.postMessage({ id, original, opts } satisfies InstrumentJob);
  });
}

function startWorker(): Worker {
  const w = new Worker(new URL('./instrument-thread.js', import.meta.url));
  w.unref();
  w.on('message', (answer: InstrumentAnswer) => {
    const job = pending.get(answer.id);
    if ('progress' in answer) {
      job?.onProgress?.(answer.progress);
      return;
    }
    pending.delete(answer.id);
    if (pending.size === 0) w.unref();
    if (job === undefined) return;
    if ('result' in answer) job.resolve(answer.result);
    else job.reject(answer.error.module ? new ModuleError(answer.error.source, answer.error.reason) : new Error(answer.error.message));
  });
  const fail = (error: Error): void => {
    worker = undefined;
    for (const job of pending.values()) job.reject(new Error(`the instrumentation worker failed: ${error.message}`));
    pending.clear();
  };
  w.on('error', fail);
  w.on('exit', (code) => fail(new Error(`it exited with code ${code}`)));
  return w;
}
