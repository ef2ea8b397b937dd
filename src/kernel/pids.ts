/**
 * Global PIDs without coordination (MOSIX's home-node scheme): a process's PID is allocated by
 * its origin kernel as `counter × 256 + kernel-local index`, with the node number above bit 24,
 * so every kernel of every node (nodes 0–127, to keep PIDs positive as a C int) hands out
 * distinct PIDs, and the origin of any PID is known by arithmetic: signals and waits can always
 * be routed to the kernel that keeps its identity.
 */

import { endpointId, localOf, nodeOf, type EndpointId } from '../msg/address.js';

const COUNTER_LIMIT = 1 << 16;

export class PidAllocator {
  private counter = 0;

  constructor(private readonly kernel: EndpointId) {}

  /** The next PID for which `inUse` says false. */
  next(inUse: (pid: number) => boolean): number {
    for (let tries = 0; tries < COUNTER_LIMIT; tries++) {
      this.counter = (this.counter % (COUNTER_LIMIT - 1)) + 1;
      const pid = ((nodeOf(this.kernel) << 24) | (this.counter << 8) | localOf(this.kernel)) >>> 0;
      if (!inUse(pid)) return pid;
    }
    throw new Error(`kernel ${this.kernel}: all ${COUNTER_LIMIT - 1} PIDs are in use`);
  }
}

/** The kernel that allocated `pid` and keeps its identity: its origin. */
export function originOf(pid: number): EndpointId {
  return endpointId(pid >>> 24, pid & 0xff);
}
