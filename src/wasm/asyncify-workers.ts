/**
 * The worker threads of a chunked Asyncify run (asyncify.ts): each takes the next chunk as it
 * becomes free, so a large chunk on one thread does not hold up the small ones. The chunk bytes
 * are made on demand, one at a time, because each is a whole (stubbed) module.
 *
 * The worker's side is asyncify-thread.ts.
 */
import { Worker } from 'node:worker_threads';

/** A chunk for a worker: a stubbed module to run Asyncify on. */
export interface AsyncifyJob {
  bytes: Uint8Array;
  features: number;
  unwindingImports: string;
}

/** A worker's answer: the instrumented module, or what went wrong. */
export type AsyncifyAnswer = { bytes: Uint8Array } | { error: string };

export interface ChunkRun {
  /** How many chunks there are. */
  count: number;
  /** The bytes of chunk `index` (called once per chunk, when a worker is free for it). */
  emit(index: number): Uint8Array;
  /** Takes the instrumented bytes of chunk `index` (called once per chunk, in completion order). */
  take(index: number, bytes: Uint8Array): void;
  features: number;
  unwindingImports: string;
  workers: number;
}

/** Runs every chunk on up to `run.workers` threads; rejects with the first failure. */
export async function asyncifyInWorkers(run: ChunkRun): Promise<void> {
  const threads = Array.from({ length: Math.min(run.workers, run.count) }, () => new Worker(new URL('./asyncify-thread.js', import.meta.url)));
  let next = 0;
  const serve = async (worker: Worker): Promise<void> => {
    for (let index = next++; index < run.count; index = next++) {
      const bytes = run.emit(index);
      run.take(index, await ask(worker, { bytes, features: run.features, unwindingImports: run.unwindingImports }));
    }
  };
  try {
    await Promise.all(threads.map(serve));
  } finally {
    await Promise.all(threads.map((t) => t.terminate()));
  }
}

function ask(worker: Worker, job: AsyncifyJob): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (answer: AsyncifyAnswer): void => {
      cleanup();
      if ('bytes' in answer) resolve(answer.bytes);
      else reject(new Error(`Asyncify failed on a chunk: ${answer.error}`));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(new Error(`an Asyncify worker failed: ${error.message}`));
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new Error(`an Asyncify worker exited with code ${code}`));
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage(job, [job.bytes.buffer as ArrayBuffer]);
  });
}
