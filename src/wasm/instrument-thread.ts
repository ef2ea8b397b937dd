/**
 * The instrumentation worker (see instrument-worker.ts): instrument each job as it comes, answer
 * with the result or with what was thrown.
 */

import { parentPort } from 'node:worker_threads';
import { ModuleError } from './errors.js';
import { instrument } from './instrument.js';
import type { InstrumentAnswer, InstrumentJob } from './instrument-worker.js';

parentPort?.on('message', async (job: InstrumentJob) => {
  let answer: InstrumentAnswer;
  try {
    answer = { id: job.id, result: await instrument(job.original, job.opts, (progress) => parentPort?.postMessage({ id: job.id, progress } satisfies InstrumentAnswer)) };
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    const module = e instanceof ModuleError;
    answer = { id: job.id, error: { module, source: module ? e.source : '', reason: module ? e.reason : '', message: e.message } };
  }
  parentPort?.postMessage(answer);
});
