/**
 * The hardware ceiling of the scale benchmark (bench/scale.ts): one worker thread that runs
 * examples/bench/burn.wasm `runs` times in a row under node:wasi, with no popcorn in the way, and
 * posts the milliseconds it took. Run alone and then K at once, it shows how much the machine
 * itself slows down when all its cores are busy (shared caches, clock boost that only a few busy
 * cores get), which no kernel design can win back.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { runNodeWasi } from './runners.js';

export interface BurnJob {
  wasm: string;
  iters: number;
  runs: number;
}

const job = workerData as BurnJob;
const started = performance.now();
for (let i = 0; i < job.runs; i++) runNodeWasi(job.wasm, [String(job.iters)]);
parentPort?.postMessage(performance.now() - started);
