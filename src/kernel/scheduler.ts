/**
 * The per-kernel scheduler: round-robin time slices over a run queue. A process that must wait
 * is parked, not spun: it sleeps until a watched object wakes it or its deadline passes. The
 * kernel thread itself never blocks on a process.
 */

import type { SliceOutcome } from './execution.js';
import type { Process, SafePointTask } from './process.js';
import { TimerHeap } from './timer-heap.js';
import type { WaitSpec } from './wasi/blocking.js';
import { monotonicMs } from './clock.js';
import { tracer } from './trace.js';

export interface SchedulerOptions {
  /** Length of a time slice when others are waiting for the CPU. */
  sliceMs: number;
  /** Called once a process has ended (exit, trap or kill) and left the scheduler. */
  onEnd: (process: Process, outcome: SliceOutcome) => void;
  /**
   * Called when a process that is to move to another kernel (Process.moveTo) comes off the CPU
   * still alive. True when it has left this kernel: the scheduler then forgets it.
   */
  onMove: (process: Process) => boolean;
}

export class Scheduler {
  private readonly runQueue: Process[] = [];
  private readonly sleepers = new TimerHeap<Process>();
  /** The process on the CPU, if any. */
  current: Process | null = null;
  /** When the current process's slice began (performance.now()): ps adds it to its CPU time. */
  currentSince = 0;
  /** CPU time of every slice this scheduler ran, ms (the kernel's busy time). */
  cpuMs = 0;
  private sliceEnd = 0;

  constructor(private readonly options: SchedulerOptions) {}

  get runnable(): number {
    return this.runQueue.length;
  }

  /** Earliest wake-up deadline of a sleeping process (monotonic ms), or Infinity. */
  get nextDeadline(): number {
    return this.sleepers.next;
  }

  /** Queue a process to run, unless it is stopped: then it waits for continue(). */
  admit(process: Process): void {
    if (process.stopped) {
      process.state = 'stopped';
      return;
    }
    process.state = 'runnable';
    this.runQueue.push(process);
  }

  /**
   * Asked by a running process when its fuel runs out: give up the CPU if its slice is over and
   * someone else is waiting, or if it has been told to stop.
   */
  shouldPreempt(): boolean {
    const p = this.current;
    if (p === null) return false;
    if (p.pendingKill !== undefined || p.stopped || p.moveTo !== undefined || p.safePointTasks.length > 0) return true;
    return this.runQueue.length > 0 && performance.now() >= this.sliceEnd;
  }

  /** Run the next runnable process for one slice. Returns false when none was runnable. */
  runSlice(): boolean {
    const p = this.runQueue.shift();
    if (p === undefined) return false;
    this.current = p;
    p.state = 'running';
    const start = performance.now();
    this.currentSince = start;
    this.sliceEnd = start + this.options.sliceMs;
    if (tracer !== null) tracer.pid = p.pid;
    const outcome = p.run();
    const ran = performance.now() - start;
    if (tracer !== null) {
      // Tracing may have begun during the slice: the tracer keeps the part since then.
      tracer.pid = 0;
      tracer.slice(p.pid, p.name, start, ran);
    }
    p.cpuMs += ran;
    this.cpuMs += ran;
    this.current = null;
    this.settle(p, outcome);
    return true;
  }

  private settle(p: Process, outcome: SliceOutcome): void {
    if (p.pendingKill !== undefined && outcome.kind !== 'exited' && outcome.kind !== 'trapped') {
      this.end(p, { kind: 'exited', status: 128 + p.pendingKill, signal: p.pendingKill });
      return;
    }
    // Safe-point work first (a checkpoint is taken here, then the process may move on).
    if (outcome.kind !== 'exited' && outcome.kind !== 'trapped') this.offerSafePoint(p);
    // A process to move leaves as it comes off the CPU; a blocked one runs its syscall again on arrival.
    if (p.moveTo !== undefined && outcome.kind !== 'exited' && outcome.kind !== 'trapped' && this.options.onMove(p)) return;
    switch (outcome.kind) {
      case 'preempted':
      case 'yielded':
        this.admit(p);
        return;
      case 'blocked':
        this.park(p, outcome.wait);
        return;
      case 'exited':
      case 'trapped':
        this.end(p, outcome);
    }
  }

  /**
   * Take a process that is not on the CPU out of the scheduler, to move it: true when done (the
   * caller must then hand it on), false when it is running (it leaves when it comes off the CPU).
   */
  detach(p: Process): boolean {
    if (p.state === 'running') return false;
    if (p.state === 'blocked') this.unpark(p);
    else if (p.state === 'runnable') this.dequeue(p);
    // Its last safe point here: what waits for one is done now, or not at all.
    this.offerSafePoint(p);
    this.cancelSafePoint(p);
    return true;
  }

  /**
   * Run `task` at the process's next safe point: at once if it is off the CPU (and the task is
   * done then), else each time it comes off the CPU until it is. A running process is asked to
   * give up the CPU at its next preemption check.
   */
  atSafePoint(p: Process, task: SafePointTask): void {
    if (p.state !== 'running' && task.offer(p)) return;
    p.safePointTasks.push(task);
  }

  private offerSafePoint(p: Process): void {
    if (p.safePointTasks.length === 0) return;
    for (const task of p.safePointTasks.splice(0)) if (!task.offer(p)) p.safePointTasks.push(task);
  }

  private cancelSafePoint(p: Process): void {
    for (const task of p.safePointTasks.splice(0)) task.cancel(p);
  }

  private park(p: Process, wait: WaitSpec): void {
    p.state = 'blocked';
    const wake = (): void => this.wake(p);
    p.cancelWait = wait.pollables.map((pollable) => pollable.watch(wake));
    if (wait.deadlineNs !== undefined) this.sleepers.push(Number(wait.deadlineNs) / 1e6, p);
  }

  /** Make a blocked process runnable again; it will retry the syscall it blocked in. */
  wake(p: Process): void {
    if (p.state !== 'blocked') return;
    this.unpark(p);
    this.admit(p);
  }

  private unpark(p: Process): void {
    for (const cancel of p.cancelWait) cancel();
    p.cancelWait = [];
    this.sleepers.remove(p);
  }

  /** Wake every sleeper whose deadline has passed. */
  fireTimers(): void {
    if (this.sleepers.size === 0) return;
    for (const p of this.sleepers.popDue(monotonicMs())) this.wake(p);
  }

  /**
   * Stop a process with a fatal signal. A running one stops at its next preemption check, a
   * runnable or blocked one at once.
   */
  kill(p: Process, signal: number): void {
    p.pendingKill = signal;
    if (p.state === 'running') return;
    if (p.state === 'blocked') this.unpark(p);
    else if (p.state === 'runnable') this.dequeue(p);
    else if (p.state !== 'stopped') return;
    this.end(p, { kind: 'exited', status: 128 + signal, signal });
  }

  /**
   * SIGSTOP: a runnable process leaves the run queue now, a running one at its next preemption
   * check; a blocked one finishes its wait and then stays stopped.
   */
  stop(p: Process): void {
    p.stopped = true;
    if (p.state === 'runnable') {
      this.dequeue(p);
      p.state = 'stopped';
    }
  }

  /** SIGCONT: a stopped process runs again. */
  continue(p: Process): void {
    p.stopped = false;
    if (p.state === 'stopped') this.admit(p);
  }

  private dequeue(p: Process): void {
    const i = this.runQueue.indexOf(p);
    if (i >= 0) this.runQueue.splice(i, 1);
  }

  private end(p: Process, outcome: SliceOutcome): void {
    p.state = 'exited';
    this.cancelSafePoint(p);
    this.options.onEnd(p, outcome);
  }
}
