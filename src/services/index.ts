/**
 * The composition root of a kernel's services: every service a kernel runs is built here, in one
 * place, and installed on the kernel it serves (compare Popcorn's kernel/popcorn/, one server per
 * distributed service). The process service builds the services that act on processes
 * (migration, checkpoint, the balancer); info and stats read what it and the kernel keep.
 */

import type { Kernel, KernelBoot } from '../kernel/kernel.js';
import { Handover } from '../msg/handover.js';
import { installProcessService } from './process.js';
import { installInfoService } from './info.js';
import { installStatsService } from './stats.js';

/** Build every service of `kernel`, with what its boot data says of them. */
export function installKernelServices(kernel: Kernel, boot: KernelBoot): void {
  installInfoService(kernel, installProcessService(kernel, { balance: boot.balance, handover: new Handover(boot.handover) }));
  installStatsService(kernel);
}
