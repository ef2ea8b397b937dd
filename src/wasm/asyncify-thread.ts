/**
 * An Asyncify worker (see asyncify-workers.ts): runs the pass on each stubbed chunk module it is
 * given and answers with the instrumented module's bytes.
 */
import { parentPort } from 'node:worker_threads';
import binaryen from 'binaryen';
import { configureAsyncify, readBinary } from './asyncify.js';
import type { AsyncifyAnswer, AsyncifyJob } from './asyncify-workers.js';

parentPort?.on('message', (job: AsyncifyJob) => {
  let answer: AsyncifyAnswer;
  try {
    answer = { bytes: asyncifyChunk(job) };
  } catch (error) {
    answer = { error: error instanceof Error ? error.message : String(error) };
  }
  parentPort?.postMessage(answer, 'bytes' in answer ? [answer.bytes.buffer as ArrayBuffer] : []);
});

function asyncifyChunk(job: AsyncifyJob): Uint8Array {
  const module = readBinary(job.bytes, job.features);
  try {
    configureAsyncify(job.unwindingImports);
    module.runPasses(['asyncify']);
    return module.emitBinary();
  } finally {
    binaryen.clearPassArguments();
    module.dispose();
  }
}
