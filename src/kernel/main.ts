/**
 * The kernel worker's entry point: build the kernel from the boot data, install the services,
 * serve until shutdown.
 */

import { workerData } from 'node:worker_threads';
import { Kernel, type KernelBoot } from './kernel.js';
import { installProcessService } from '../services/process.js';
import { installInfoService } from '../services/info.js';
import { installStatsService } from '../services/stats.js';

// Deep wasm backtraces: the default of 10 frames cuts traps short.
Error.stackTraceLimit = 64;

const kernel = new Kernel(workerData as KernelBoot);
installInfoService(kernel, installProcessService(kernel));
installStatsService(kernel);

let shutdownRequest: { src: number; request: number } | undefined;
kernel.messenger.on('shutdown', (_msg, from) => {
  shutdownRequest = from;
  kernel.stop();
});
kernel.serve();
if (shutdownRequest !== undefined) kernel.messenger.reply(shutdownRequest, 'shutdown', { kernel: kernel.id });
kernel.drainOutput();
