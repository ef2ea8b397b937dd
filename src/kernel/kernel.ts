/**
 * One kernel instance: a worker thread with its own heap, its own processes and its own
 * scheduler, connected to the other kernels and to its node's host thread only by rings.
 *
 * The main loop is a plain synchronous loop, as in a real kernel: drain messages (handlers run to
 * completion), fire timers, run one time slice, and when there is nothing to do spin briefly, then
 * sleep on the doorbell until a message arrives or the next timer is due. The worker's own event
 * loop is never returned to, so nothing here may rely on promises or Node timers.
 */

import { Messenger } from '../msg/messenger.js';
import { MESSAGES, type Protocol } from '../protocol.js';
import { describeEndpoint, type EndpointId } from '../msg/address.js';
import type { Doorbell } from '../msg/doorbell.js';
import { attachWiring, type EndpointWiring } from '../msg/topology.js';
import type { HandoverPorts } from '../msg/handover.js';
import { Scheduler } from './scheduler.js';
import type { Process } from './process.js';
import { monotonicMs } from './clock.js';
import type { SliceOutcome } from './execution.js';
import type { Limits } from './limits.js';
import { EventLog } from './events.js';

/** What the node hands a kernel at boot (the worker's workerData). */
export interface KernelBoot {
  wiring: EndpointWiring;
  /** The node's host thread: terminals, sockets, the operator. */
  host: EndpointId;
  /** Every kernel of the node, this one included. */
  kernels: EndpointId[];
  /** Default time slice. */
  sliceMs: number;
  /** Run the load balancer (src/services/balancer.ts). */
  balance: boolean;
  /** A port to each other kernel, for handing over large buffers (by peer EndpointId). */
  handover: HandoverPorts;
  /** What this kernel enforces: its share of the node's process limit, memory and fds per process. */
  limits: Limits;
}

/** Messages drained per ring per loop round: bounded so processes are not starved by traffic. */
const POLL_BUDGET = 64;
/** How long an idle kernel keeps checking its rings before it sleeps. */
const IDLE_SPIN_MS = 0.05;

/** Services extend the kernel by registering message handlers and end-of-process hooks. */
export type ProcessEndHook = (process: Process, outcome: SliceOutcome) => void;

export class Kernel {
  readonly id: EndpointId;
  readonly messenger: Messenger<Protocol>;
  readonly scheduler: Scheduler;
  readonly processes = new Map<number, Process>();
  readonly host: EndpointId;
  /** This node's kernels (the balancer's domain). */
  readonly kernels: EndpointId[];
  /**
   * Every kernel of the cluster, in index order (this node's `kernels` alone until the host says
   * otherwise with cluster_view): what a kernel index names.
   */
  cluster: EndpointId[];
  readonly limits: Limits;
  /** Spawns, exits, signals and migrations, for observers (src/kernel/events.ts). */
  readonly events = new EventLog();
  private readonly bell: Doorbell;
  private readonly endHooks: ProcessEndHook[] = [];
  /** Work a service does every so often (the balancer's load reports), run from interrupts(). */
  private readonly periodic: { everyMs: number; next: number; fn: () => void }[] = [];
  /** Services that may take a process as it comes off the CPU (a move asked for it). */
  private readonly leaveHooks: ((process: Process) => boolean)[] = [];
  private stopping = false;

  constructor(boot: KernelBoot) {
    this.id = boot.wiring.self;
    this.host = boot.host;
    this.kernels = boot.kernels;
    this.limits = boot.limits;
    this.messenger = new Messenger(MESSAGES, this.id, { onError: (error, context) => this.log(`${context}: ${error.message}`) });
    this.bell = attachWiring(this.messenger, boot.wiring, boot.host);
    this.cluster = boot.kernels;
    this.messenger.on('cluster_view', (msg) => (this.cluster = msg.kernels));
    this.scheduler = new Scheduler({
      sliceMs: boot.sliceMs,
      onEnd: (p, outcome) => this.processEnded(p, outcome),
      onMove: (p) => this.leaveHooks.some((hook) => hook(p)),
    });
  }

  get name(): string {
    return describeEndpoint(this.id);
  }

  /** Called by services: run `hook` whenever a process of this kernel ends. */
  onProcessEnd(hook: ProcessEndHook): void {
    this.endHooks.push(hook);
  }

  /**
   * Called by services: `hook` may take a process as it comes off the CPU (the migration service
   * takes one that is to move); true when it did, and the kernel no longer runs it.
   */
  onLeave(hook: (process: Process) => boolean): void {
    this.leaveHooks.push(hook);
  }

  /** Called by services: run `fn` about every `everyMs` (an idle kernel wakes for it). */
  every(everyMs: number, fn: () => void): void {
    this.periodic.push({ everyMs, next: performance.now() + everyMs, fn });
  }

  /** Tell the operator something (it goes to the host's log). */
  log(text: string, level = 1): void {
    this.messenger.send(this.host, 'log', { level, text: `${this.name}: ${text}` });
  }

  /** Serve until shutdown. */
  serve(): void {
    this.messenger.send(this.host, 'kernel_ready', { kernel: this.id });
    while (!this.stopping || this.scheduler.runnable > 0) {
      this.interrupts();
      if (!this.scheduler.runSlice()) this.idle();
    }
  }

  /** Wait until every queued frame is in a ring: the last messages before the thread ends. */
  drainOutput(): void {
    while (!this.messenger.flush()) this.bell.sleep(() => false, 1);
  }

  /**
   * Everything that is not running a process: messages, request timeouts, timers, frames waiting
   * for ring space. Also called from inside a running process at its preemption checks, so a
   * busy kernel still answers promptly (an interrupt, in kernel terms).
   */
  interrupts(): void {
    this.messenger.poll(POLL_BUDGET);
    this.messenger.tick();
    this.scheduler.fireTimers();
    if (this.periodic.length > 0) this.runPeriodic();
    this.messenger.flush();
  }

  private runPeriodic(): void {
    const now = performance.now();
    for (const task of this.periodic) {
      if (now < task.next) continue;
      task.next = now + task.everyMs;
      task.fn();
    }
  }

  /** Stop after the current round: kill every process, then leave the loop. */
  stop(): void {
    this.stopping = true;
    for (const p of [...this.processes.values()]) this.scheduler.kill(p, 9);
  }

  private idle(): void {
    if (this.stopping) return;
    const spinUntil = performance.now() + IDLE_SPIN_MS;
    while (performance.now() < spinUntil) if (this.messenger.hasInput()) return;
    // Frames waiting for ring space: the consumer rings our bell when it frees some, but only if
    // we are flagged asleep by then. So retry them after raising the flag (sleep's re-check):
    // either they go now, or the retry re-arms the request and the consumer's ring will wake us.
    const backlog = !this.messenger.flush();
    this.bell.sleep(() => this.messenger.hasInput() || (backlog && this.messenger.flush()), this.sleepBudgetMs());
  }

  /** How long the kernel may sleep: until the next process or request deadline. */
  private sleepBudgetMs(): number {
    const timer = this.scheduler.nextDeadline - monotonicMs();
    const now = performance.now();
    const request = this.messenger.nextDeadline - now;
    const periodic = this.periodic.reduce((soonest, task) => Math.min(soonest, task.next - now), Infinity);
    const ms = Math.min(timer, request, periodic, 1000);
    return Math.max(0, ms);
  }

  private processEnded(p: Process, outcome: SliceOutcome): void {
    this.processes.delete(p.pid);
    for (const hook of this.endHooks) hook(p, outcome);
  }
}
