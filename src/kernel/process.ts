/**
 * A process as its kernel holds it: identity, WASI state (fd table, args, environment) and one
 * execution context. Kept apart from the execution so that threads (several contexts over one
 * memory) can come later without reshaping the process.
 */

import { Execution, type SliceOutcome } from './execution.js';
import { SCRATCH_BYTES } from '../wasm/abi.js';
import type { WaitSpec } from './wasi/blocking.js';
import type { FileDescription } from './wasi/file-description.js';
import { createWasiContext, type ProcessContext } from './wasi/context.js';
import { createWasiImports } from './wasi/wasi.js';
import { createPopcornImports } from './popcorn-abi.js';

export type ProcessState = 'runnable' | 'running' | 'blocked' | 'stopped' | 'exited';

export interface ProcessSpec {
  pid: number;
  /** The endpoint told when the process ends. */
  parent: number;
  name: string;
  args: string[];
  env: string[];
  /** guest path → host directory */
  dirs: { host: string; guest: string }[];
  stdio: [FileDescription, FileDescription, FileDescription];
  /** Where the process runs: for the popcorn ABI's kernel_id and kernel_count. */
  kernel: number;
  kernels: number;
}

export class Process {
  readonly pid: number;
  readonly parent: number;
  readonly name: string;
  state: ProcessState = 'runnable';
  /** CPU time consumed, in ms. */
  cpuMs = 0;
  /** A fatal signal to act on at the next chance. */
  pendingKill: number | undefined;
  /** Stopped by SIGSTOP (or a terminal stop signal) until SIGCONT. */
  stopped = false;
  /** Cancels the watches of a blocked process. */
  cancelWait: (() => void)[] = [];
  readonly context: ProcessContext;
  readonly execution: Execution;

  /**
   * `shouldPreempt` is asked at each preemption check (the kernel handles its interrupts there);
   * `log` reports host failures inside syscalls.
   */
  constructor(spec: ProcessSpec, module: WebAssembly.Module, shouldPreempt: () => boolean, log: (message: string) => void) {
    this.pid = spec.pid;
    this.parent = spec.parent;
    this.name = spec.name;
    this.context = createWasiContext({
      args: spec.args,
      env: spec.env,
      stdio: spec.stdio,
      preopens: Object.fromEntries(spec.dirs.map((d) => [d.guest, d.host])),
      log: (message, err) => log(`pid ${this.pid}: ${message}: ${err instanceof Error ? err.message : String(err)}`),
    });
    const wasi = createWasiImports(this.context);
    const popcorn = createPopcornImports({ pid: spec.pid, ppid: 0, kernel: () => spec.kernel, kernels: () => spec.kernels });
    this.execution = new Execution(module, { wasi_snapshot_preview1: wasi, popcorn }, {
      shouldPreempt,
      beginSyscall: (rerun) => this.beginSyscall(rerun),
      takeWait: () => this.takeWait(),
    });
    this.context.setMemory(this.execution.memory);
  }

  /** Run one slice. */
  run(): SliceOutcome {
    return this.execution.run();
  }

  /** Linear memory size in bytes, as ps shows it. */
  get memoryBytes(): number {
    return this.execution.memory.buffer.byteLength - SCRATCH_BYTES;
  }

  /**
   * A syscall starts. A re-run after a wake-up keeps the deadlines the first run handed out
   * (so a poll does not restart its timer); a fresh call starts clean.
   */
  private beginSyscall(rerun: boolean): void {
    this.context.deadlineIndex = 0;
    if (rerun) return;
    if (this.context.deadlines.length > 0) this.context.deadlines = [];
    this.context.yielded = false;
  }

  private takeWait(): WaitSpec | 'yield' {
    const wait = this.context.pendingWait;
    this.context.pendingWait = undefined;
    return wait ?? 'yield';
  }

  /** Close every fd: the process is gone. */
  release(): void {
    this.context.fds.closeAll();
  }
}
