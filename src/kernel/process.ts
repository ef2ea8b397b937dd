/**
 * A process as its kernel holds it: identity, WASI state (fd table, args, environment), signal
 * dispositions, children, and one execution context. Kept apart from the execution so that
 * threads (several contexts over one memory) can come later without reshaping the process.
 */

import { Execution, type SliceOutcome } from './execution.js';
import { SCRATCH_BYTES } from '../wasm/abi.js';
import type { WaitSpec } from './wasi/blocking.js';
import type { FdEntry } from './wasi/fd-table.js';
import { createWasiContext, type ProcessContext } from './wasi/context.js';
import { createWasiImports } from './wasi/wasi.js';
import { SignalState, linuxSignalOfWasi } from './signals.js';
import { WaitQueue, type Operation } from './operation.js';
import type { Limits } from './limits.js';

/** `moving`: taken off this kernel's scheduler, on its way to another kernel. */
export type ProcessState = 'runnable' | 'running' | 'blocked' | 'stopped' | 'moving' | 'exited';

/**
 * Work that needs its process at a safe point — off the CPU, between two slices — without taking
 * it off this kernel: a checkpoint. The scheduler offers it the process at every such point until
 * it is done; meanwhile a running process gives up the CPU at its next preemption check.
 */
export interface SafePointTask {
  /**
   * The process is off the CPU, alive (it may still not be capturable: inside a signal handler,
   * or waiting for another kernel, see image.ts). True when done; false to be offered the next
   * time. It may stop the process (the scheduler then parks it stopped), not end or move it.
   */
  offer(p: Process): boolean;
  /** The process ended, or left for another kernel, before the task was done. */
  cancel(p: Process): void;
}

/** How a process ended, as its parent learns it. */
export interface ExitRecord {
  status: number;
  /** The signal that killed it, else 0. */
  signal: number;
  /** The trap report when it trapped, else ''. */
  trap: string;
}

export interface ProcessSpec {
  pid: number;
  /** Content hash of the original module (what a process image names). */
  hash: string;
  /** The parent's PID: 0 when a node started the process, 1 once orphaned. */
  ppid: number;
  name: string;
  args: string[];
  env: string[];
  /** guest path → host directory; they take fds 3, 4, … in this order. */
  dirs: { host: string; guest: string }[];
  /** The fds the process starts with besides its preopens (0–2, and any mapped above them). */
  fds: { fd: number; entry: FdEntry }[];
  /** What proc_raise does: the kernel applies the signal's disposition (may throw ProcessExit). */
  raise: (p: Process, signal: number) => void;
  /** The popcorn ABI's imports for the process (popcorn-abi.ts, bound to the kernel's services). */
  popcornImports: (p: Process) => Record<string, (...args: never[]) => unknown>;
  /** The live memory of a process arriving from a kernel of this node (Execution.handOver). */
  memory?: WebAssembly.Memory;
  /** Its kernel's limits: the most memory and open fds it may have. */
  limits: Limits;
}

export class Process {
  readonly pid: number;
  readonly hash: string;
  /** Changes once, when the parent exits first (1: init). */
  ppid: number;
  readonly name: string;
  /** The preopened directories; a child gets the same. */
  readonly dirs: { host: string; guest: string }[];
  state: ProcessState = 'runnable';
  /** CPU time consumed, in ms. */
  cpuMs = 0;
  /** A fatal signal to act on at the next chance. */
  pendingKill: number | undefined;
  /** Stopped by SIGSTOP (or a terminal stop signal) until SIGCONT. */
  stopped = false;
  /** Cancels the watches of a blocked process. */
  cancelWait: (() => void)[] = [];
  readonly signals = new SignalState();
  readonly children = new Children();
  /** Set when the process is to move to that kernel (an EndpointId) as soon as it can. */
  moveTo: number | undefined;
  /** Since when it is on this kernel (performance.now(): started or arrived): the balancer lets it settle. */
  arrivedAt = performance.now();
  /** How many times it has moved between kernels (its image carries the count). */
  moves = 0;
  /** The operation of the process's own popcorn_migrate call, while it waits to move. */
  moveRequest: Operation<unknown> | undefined;
  /** Work waiting for the process's next safe point (Scheduler.atSafePoint). */
  readonly safePointTasks: SafePointTask[] = [];
  /** The request the current syscall waits for, kept across its re-runs (operation.ts). */
  get operation(): Operation<unknown> | undefined {
    return this.context.operation;
  }

  set operation(op: Operation<unknown> | undefined) {
    this.context.operation = op;
  }
  readonly context: ProcessContext;
  readonly execution: Execution;

  /**
   * `shouldPreempt` is asked at each preemption check (the kernel handles its interrupts there);
   * `log` reports host failures inside syscalls.
   */
  constructor(spec: ProcessSpec, module: WebAssembly.Module, shouldPreempt: () => boolean, log: (message: string) => void) {
    this.pid = spec.pid;
    this.hash = spec.hash;
    this.ppid = spec.ppid;
    this.name = spec.name;
    this.dirs = spec.dirs;
    this.context = createWasiContext({
      args: spec.args,
      env: spec.env,
      // Preopens come as fds when the process comes from another node (they stay there).
      preopens: spec.fds.some((f) => f.entry.preopenName !== undefined) ? {} : Object.fromEntries(spec.dirs.map((d) => [d.guest, d.host])),
      maxFds: spec.limits.maxFds,
      log: (message, err) => log(`pid ${this.pid}: ${message}: ${err instanceof Error ? err.message : String(err)}`),
    });
    for (const { fd, entry } of spec.fds) this.context.fds.set(fd, entry);
    this.context.raise = (signal) => spec.raise(this, linuxSignalOfWasi(signal));
    const wasi = createWasiImports(this.context);
    const popcorn = spec.popcornImports(this);
    this.execution = new Execution(module, { wasi_snapshot_preview1: wasi, popcorn }, {
      shouldPreempt,
      beginSyscall: (rerun) => this.beginSyscall(rerun),
      takeWait: () => this.takeWait(),
      takeSignal: () => this.signals.take(),
      saveSyscallState: () => this.saveSyscallState(),
      restoreSyscallState: (state) => this.restoreSyscallState(state as SyscallState),
    }, { handedOver: spec.memory, maxPages: spec.limits.maxMemoryPages });
    this.context.setMemory(this.execution.memory);
  }

  /**
   * Whether it came off the CPU inside a syscall (blocked, or sched_yield), which runs again from
   * the top when it next runs: until then the answer of the syscall's operation is in this
   * process only (image.ts: capturable).
   */
  inSyscall = false;

  /** Run one slice. */
  run(): SliceOutcome {
    const outcome = this.execution.run();
    this.inSyscall = outcome.kind === 'blocked' || outcome.kind === 'yielded';
    return outcome;
  }

  /** Linear memory size in bytes, as ps shows it. */
  get memoryBytes(): number {
    return this.execution.memory.buffer.byteLength - SCRATCH_BYTES;
  }

  /**
   * A syscall starts. A re-run after a wake-up keeps the deadlines and the operation the first
   * run started (so a poll does not restart its timer, a spawn is not sent twice); a fresh call
   * starts clean.
   */
  private beginSyscall(rerun: boolean): void {
    this.context.deadlineIndex = 0;
    if (rerun) return;
    if (this.context.deadlines.length > 0) this.context.deadlines = [];
    this.context.yielded = false;
    this.operation = undefined;
  }

  private takeWait(): WaitSpec | 'yield' {
    const wait = this.context.pendingWait;
    this.context.pendingWait = undefined;
    return wait ?? 'yield';
  }

  /** A signal handler is about to make syscalls of its own: keep the interrupted one's state. */
  private saveSyscallState(): SyscallState {
    const c = this.context;
    return { deadlines: c.deadlines, deadlineIndex: c.deadlineIndex, yielded: c.yielded, operation: this.operation };
  }

  private restoreSyscallState(state: SyscallState): void {
    this.context.deadlines = state.deadlines;
    this.context.deadlineIndex = state.deadlineIndex;
    this.context.yielded = state.yielded;
    this.operation = state.operation;
  }

  /** Close every fd: the process is gone. */
  release(): void {
    this.context.fds.closeAll((error) => this.context.log?.('closing an fd at exit', error));
  }
}

interface SyscallState {
  deadlines: bigint[];
  deadlineIndex: number;
  yielded: boolean;
  operation: Operation<unknown> | undefined;
}

/**
 * A process's children and, for those that have ended, their exit records until wait() reaps
 * them: the parent's half of the zombie (the origin kernel keeps the PID reserved meanwhile).
 */
export class Children {
  private readonly table = new Map<number, ExitRecord | null>();
  /**
   * Exits of children whose spawn has not been answered here yet. A child on another kernel can
   * end before its spawn's answer reaches the parent: the answer comes straight from the child's
   * kernel, the exit through the parent's origin (and on from where the parent was), on other
   * links. The exit waits here for the child to be added.
   */
  private readonly early = new Map<number, ExitRecord>();
  /** Notified whenever a child ends: wait() blocks on it. */
  readonly events = new WaitQueue();

  get size(): number {
    return this.table.size;
  }

  add(pid: number): void {
    const exit = this.early.get(pid);
    this.early.delete(pid);
    this.table.set(pid, exit ?? null);
    if (exit !== undefined) this.events.notify();
  }

  has(pid: number): boolean {
    return this.table.has(pid);
  }

  /**
   * A child ended (its origin says this process is its parent). False when it had ended
   * already, or was reaped: nothing is kept then.
   */
  ended(pid: number, exit: ExitRecord): boolean {
    const known = this.table.get(pid);
    if (known === undefined && !this.table.has(pid)) {
      if (this.early.has(pid)) return false;
      this.early.set(pid, exit);
      return true;
    }
    if (known !== null) return false;
    this.table.set(pid, exit);
    this.events.notify();
    return true;
  }

  /** An ended child matching `pid` (-1: any), removed from the table; undefined if none has ended. */
  reap(pid: number): { pid: number; exit: ExitRecord } | undefined {
    for (const [child, exit] of this.table) {
      if (exit === null || (pid !== -1 && child !== pid)) continue;
      this.table.delete(child);
      return { pid: child, exit };
    }
    return undefined;
  }

  /** Every child, with its exit record if it has ended (for a process image). */
  entries(): [number, ExitRecord | null][] {
    return [...this.table];
  }

  /** Every child, with its exit record if it has ended; the table is emptied (the parent exits). */
  drain(): [number, ExitRecord | null][] {
    const all: [number, ExitRecord | null][] = [...this.table, ...this.early];
    this.table.clear();
    this.early.clear();
    return all;
  }
}
