/**
 * The load balancer (MOSIX-style, decentralized): every kernel tells the others its load — the
 * processes that want the CPU, running or runnable; blocked ones do not count — and a kernel
 * that has at least two more than the least loaded one it knows of sends one of its runnable
 * processes there (src/services/migration.ts). Hysteresis keeps things still: a difference of
 * one is left alone (moving would only swap which kernel has the extra one), a kernel moves at
 * most one process per period and counts it against the target until that target's next report,
 * a process that just started or arrived is left in place for a while, and an imbalance must last
 * a few periods (loads reported while processes start or
 * end are noise).
 *
 * An idle kernel reports only when its load changed, so an idle node stays quiet.
 */

import type { Kernel } from '../kernel/kernel.js';
import type { Process } from '../kernel/process.js';
import type { EndpointId } from '../msg/address.js';
import type { Migration } from './migration.js';

/** How often loads are reported and imbalance looked at. */
const PERIOD_MS = 50;
/** A process that just started or arrived stays at least this long (no ping-pong). */
const SETTLE_MS = 200;
/** The smallest load difference worth a move. */
const IMBALANCE = 2;
/** Periods in a row the imbalance must be seen: loads reported while processes start are noise. */
const PERSIST = 2;

export class Balancer {
  /** The last load each other kernel reported (plus what we sent it since). */
  private readonly loads = new Map<EndpointId, number>();
  private lastReported = -1;
  /** Periods in a row this kernel has seen itself overloaded. */
  private overloaded = 0;

  constructor(private readonly kernel: Kernel, private readonly migration: Migration) {
    for (const k of kernel.kernels) if (k !== kernel.id) this.loads.set(k, 0);
    kernel.messenger.on('kernel_load', (msg) => {
      if (this.loads.has(msg.kernel)) this.loads.set(msg.kernel, msg.load);
    });
    kernel.every(PERIOD_MS, () => this.tick());
  }

  private get load(): number {
    return this.kernel.scheduler.runnable + (this.kernel.scheduler.current === null ? 0 : 1);
  }

  private tick(): void {
    const load = this.load;
    if (load > 0 || load !== this.lastReported) this.report(load);
    this.rebalance(load);
  }

  private report(load: number): void {
    this.lastReported = load;
    for (const k of this.loads.keys()) this.kernel.messenger.send(k, 'kernel_load', { kernel: this.kernel.id, load });
  }

  /**
   * While this kernel has IMBALANCE more than the least loaded one (for PERSIST periods), send
   * processes there, one at a time, each counted there at once (until that kernel reports again).
   */
  private rebalance(load: number): void {
    if (this.leastLoaded() === undefined || load - this.least() < IMBALANCE) {
      this.overloaded = 0;
      return;
    }
    if (++this.overloaded < PERSIST) return;
    const moved = new Set<Process>();
    for (let target = this.leastLoaded(); target !== undefined && load - this.least() >= IMBALANCE; target = this.leastLoaded()) {
      const p = this.candidate(moved);
      if (p === undefined) return;
      moved.add(p);
      this.loads.set(target, this.least() + 1);
      load--;
      this.migration.move(p, target, (error) => {
        if (error !== null) this.kernel.log(`balancer: moving pid ${p.pid}: ${error.message}`, 2);
      });
    }
  }

  private leastLoaded(): EndpointId | undefined {
    let target: EndpointId | undefined;
    let least = Infinity;
    for (const [k, l] of this.loads) {
      if (l < least) {
        least = l;
        target = k;
      }
    }
    return target;
  }

  private least(): number {
    return Math.min(...this.loads.values());
  }

  /** A runnable process (it wants the CPU) that has been here a while and is not already leaving. */
  private candidate(taken: Set<Process>): Process | undefined {
    const now = performance.now();
    for (const p of this.kernel.processes.values()) {
      if (!taken.has(p) && p.state === 'runnable' && p.moveTo === undefined && now - p.arrivedAt >= SETTLE_MS) return p;
    }
    return undefined;
  }
}

export function installBalancer(kernel: Kernel, migration: Migration): Balancer {
  return new Balancer(kernel, migration);
}
