/**
 * The composition root of a kernel's services: every service a kernel runs is built here, in one
 * place, and installed on the kernel it serves (compare Popcorn's kernel/popcorn/, one server per
 * distributed service). The process service builds the services that act on processes
 * (migration, checkpoint, the balancer); info and stats read what it and the kernel keep.
 */

import type { Kernel } from '../kernel/kernel.js';
import { installProcessService } from './process.js';
import { installInfoService } from './info.js';
import { installStatsService } from './stats.js';

export function installKernelServices(kernel: Kernel): void {
  installInfoService(kernel, installProcessService(kernel));
  installStatsService(kernel);
}
