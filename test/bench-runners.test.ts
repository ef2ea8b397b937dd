/**
 * The benchmarks' node:wasi runner in worker threads, as the scale benchmark runs it: each run
 * closes the stdout file it opened, once. A thread's fs.close of an fd it does not hold (closed
 * already, or another thread's) is what Node warns about: "closed but not opened in unmanaged
 * mode" — and by then the number may be another thread's open file.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { example } from './cli-helpers.js';

/** Runs runNodeWasi `runs` times in a worker; its output each time and the warnings it got. */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const warnings = [];
process.on('warning', (w) => {
  if (w.name !== 'ExperimentalWarning') warnings.push(w.message);
});
import(workerData.runners).then(({ runNodeWasi }) => {
  const outputs = [];
  for (let i = 0; i < workerData.runs; i++) outputs.push(runNodeWasi(workerData.wasm, [String(i)]).stdout);
  setImmediate(() => parentPort.postMessage({ outputs, warnings })); // warnings come on the next tick
});
`;

function runInWorker(runs: number): Promise<{ outputs: string[]; warnings: string[] }> {
  const runners = new URL('../bench/runners.js', import.meta.url).href;
  const worker = new Worker(WORKER, { eval: true, workerData: { runners, wasm: example('hello.wasm'), runs } });
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the worker exited with code ${code} before it answered`)));
  });
}

test('node:wasi runs in two workers at once each close their own stdout file, once', async () => {
  const runs = 5;
  const results = await Promise.all([runInWorker(runs), runInWorker(runs)]);
  for (const { outputs, warnings } of results) {
    assert.deepEqual(warnings, []);
    assert.deepEqual(outputs, Array.from({ length: runs }, (_, i) => `Hello from popcorn!\n${i}\n`));
  }
});
