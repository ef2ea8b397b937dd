/**
 * The kernel worker's entry point: build the kernel from the boot data, install its services
 * (index.ts), serve until shutdown. It lives with the services, the layer that composes a kernel;
 * the kernel itself (src/kernel) knows none of them.
 */

import { workerData } from 'node:worker_threads';
import { Kernel, type KernelBoot } from '../kernel/kernel.js';
import { installKernelServices } from './index.js';

// Deep wasm backtraces: the default of 10 frames cuts traps short.
Error.stackTraceLimit = 64;

const boot = workerData as KernelBoot;
const kernel = new Kernel(boot);
installKernelServices(kernel, boot);

let shutdownRequest: { src: number; request: number } | undefined;
kernel.messenger.on('shutdown', (_msg, from) => {
  shutdownRequest = from;
  kernel.stop();
});
kernel.serve();
if (shutdownRequest !== undefined) kernel.messenger.reply(shutdownRequest, 'shutdown', { kernel: kernel.id });
kernel.drainOutput();
