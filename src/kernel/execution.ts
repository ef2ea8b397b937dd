/**
 * An execution context: one instance of an instrumented module and the machinery to take it off
 * the CPU and put it back (Asyncify unwind and rewind). The same capture serves a context switch,
 * a migration and a checkpoint: once unwound, the whole wasm stack is bytes in `savedStack`, and
 * the rest of the state is linear memory and the exported mutable globals.
 *
 * Every import that may block goes through `wrapImport`: when the program is being rewound, the
 * wrapper first finishes the rewind and then runs the import again from the top. That is why a
 * syscall that blocks must be free of side effects (see wasi/blocking.ts). Imports marked
 * NEVER_BLOCKS are never where a process unwound, so a rewind never reaches them: the program
 * calls them directly.
 *
 * Signal handlers run at safe points: at a preemption check, or as a wrapped import begins
 * (before the syscall itself, so a woken syscall runs the handler and then waits again, as with
 * SA_RESTART). A handler is ordinary guest code called from inside the import: if it blocks or
 * is preempted, the unwind passes through the handler's frames and then the interrupted ones, and
 * the rewind calls the handler again from that same import before finishing there.
 */

import {
  FUEL_EXPORT,
  GLOBAL_EXPORT_PREFIX,
  MEMORY_IMPORT,
  MEMORY_SECTION,
  SCRATCH_BYTES,
  SCRATCH_PAGES,
  WASM_PAGE_BYTES,
  type InstrumentedExports,
  type MemoryLayout,
} from '../wasm/abi.js';
import { tracer } from './trace.js';
import { BLOCKED, ProcessExit, neverBlocks, type WaitSpec } from './wasi/blocking.js';
import { Errno, WasiError } from './wasi/errno.js';

/** Why a slice ended. */
export type SliceOutcome =
  | { kind: 'preempted' }
  | { kind: 'blocked'; wait: WaitSpec }
  | { kind: 'yielded' }
  | { kind: 'exited'; status: number; signal?: number }
  | { kind: 'trapped'; error: Error };

/** What the execution asks of its kernel while it runs. */
export interface ExecutionHooks {
  /**
   * Called when the fuel runs out. Returns true to take the process off the CPU now. The kernel
   * may also handle messages here (interrupt context): it must not touch this instance.
   */
  shouldPreempt(): boolean;
  /** A syscall begins; `rerun` when it is the same call again after the process was woken. */
  beginSyscall(rerun: boolean): void;
  /** The wait registered by the syscall that just returned BLOCKED. */
  takeWait(): WaitSpec | 'yield';
  /** The next caught signal whose handler should run now, if any. */
  takeSignal(): { signal: number; index: number } | undefined;
  /** Per-syscall state of the interrupted syscall, kept aside while a handler makes its own. */
  saveSyscallState(): unknown;
  restoreSyscallState(state: unknown): void;
}

/**
 * Everything of an execution that is not in its module: what migration and checkpoints carry.
 * The program's memory (without popcorn's scratch pages), the unwound stack, and the mutable
 * globals the instrumenter exported (i64 ones as bigints). `memory` is null when the memory
 * itself went along instead (handed over to a kernel of the same node: see `handOver`).
 */
export interface ExecutionState {
  memory: Uint8Array | null;
  stack: Uint8Array;
  started: boolean;
  globals: { name: string; value: number | bigint }[];
}

/** A signal handler that was running when the process unwound: the rewind re-enters it. */
interface ActiveHandler {
  signal: number;
  handler: (signal: number) => void;
  /** What the interrupted syscall had (deadlines, pending operation) before the handler ran. */
  saved: unknown;
  /** The import it interrupted was the re-run of a woken syscall. */
  rerun: boolean;
}

/** Fuel per refill, adapted so the kernel looks at the clock about every CHECK_INTERVAL_MS. */
const CHECK_INTERVAL_MS = 0.5;
const MIN_FUEL = 1_000;
const MAX_FUEL = 50_000_000;
const HEADER_BYTES = 8;

export class Execution {
  readonly instance: WebAssembly.Instance;
  readonly exports: InstrumentedExports;
  /** The unwound wasm stack while the process is off the CPU; null while it runs or before start. */
  savedStack: Uint8Array | null = null;
  private started = false;
  private rewinding = false;
  private rewindBytes = 0;
  private unwindOutcome: SliceOutcome | null = null;
  private readonly fuel: WebAssembly.Global;
  private fuelChunk = 100_000;
  private lastCheck = 0;
  private readonly entry: () => void;
  /** Set by the kernel when a caught signal waits for its handler: checked at every safe point. */
  signalPending = false;
  private activeHandler: ActiveHandler | null = null;
  /** During a rewind: the handler frame still to be re-entered before the rewind ends. */
  private reenterHandler = false;

  private readonly module: ModuleFacts;

  /**
   * `imports` are the program's imports (wasi_snapshot_preview1, popcorn) before wrapping; the
   * runtime module (popcorn_rt) is added here, with the memory: a new one, of at most `maxPages`
   * program pages when given, or `handedOver`, the live memory of the process this execution
   * continues (see `handOver`), which keeps the maximum it was made with.
   */
  constructor(
    module: WebAssembly.Module,
    imports: Record<string, Record<string, (...args: never[]) => unknown>>,
    private readonly hooks: ExecutionHooks,
    { handedOver, maxPages }: { handedOver?: WebAssembly.Memory; maxPages?: number } = {},
  ) {
    this.module = factsOf(module);
    const memory = handedOver ?? newMemory(this.module.layout, maxPages);
    const wrapped: WebAssembly.Imports = { popcorn_rt: { preempt: () => this.preempt(), [MEMORY_IMPORT]: memory } };
    for (const [mod, fns] of Object.entries(imports)) {
      const table: Record<string, (...args: never[]) => unknown> = {};
      for (const [name, fn] of Object.entries(fns)) table[name] = neverBlocks(fn) ? fn : this.wrapImport(fn, name);
      wrapped[mod] = table;
    }
    if (handedOver !== undefined) this.checkHandedOver(handedOver);
    this.instance = new WebAssembly.Instance(module, wrapped);
    this.exports = this.instance.exports as unknown as InstrumentedExports;
    if (handedOver === undefined) this.exports.popcorn_init_memory();
    this.fuel = this.exports[FUEL_EXPORT] as WebAssembly.Global;
    const entry = this.exports._start ?? this.exports._initialize;
    if (entry === undefined) throw new Error('module has neither _start nor _initialize');
    this.entry = entry;
  }

  get memory(): WebAssembly.Memory {
    return this.exports.memory;
  }

  /**
   * Whether the execution can be captured now: off the CPU, unwound (or never started), and not
   * inside a signal handler (whose frames are interleaved with JavaScript's: wait for it to end).
   */
  get capturable(): boolean {
    return this.activeHandler === null && (this.savedStack !== null || !this.started);
  }

  /**
   * Whether the memory itself can go to a new instance (`handOver`): not for a module with a
   * start function, which would run again against it.
   */
  get canHandOver(): boolean {
    return this.module.layout.handover;
  }

  /** The largest the memory may grow, in pages (scratch pages included): the module's. */
  get maximumPages(): number {
    return this.module.layout.maximum;
  }

  /** The program's bytes of memory: all of it but popcorn's scratch pages at the top. */
  get programBytes(): number {
    return this.scratchBase();
  }

  /**
   * A copy of the state (see capturable). Without `copyMemory` the state has no memory: the
   * caller hands the memory over (`handOver`) instead.
   */
  capture(copyMemory = true): ExecutionState {
    if (!this.capturable) throw new Error('execution is not at a point where it can be captured');
    const programBytes = this.scratchBase();
    const globals: ExecutionState['globals'] = [];
    for (const name of this.module.globals) globals.push({ name, value: (this.exports[name] as WebAssembly.Global).value as number | bigint });
    return {
      memory: copyMemory ? new Uint8Array(this.memory.buffer, 0, programBytes).slice() : null,
      stack: this.savedStack?.slice() ?? new Uint8Array(0),
      started: this.started,
      globals,
    };
  }

  /**
   * The live memory, for a new execution of the same module on another kernel of this node to
   * import (its `handedOver`), with a capture(false). This execution must never run again unless
   * that one failed to start.
   */
  handOver(): WebAssembly.Memory {
    if (!this.module.layout.handover) throw new Error('the memory of a module with a start function cannot be handed over');
    return this.memory;
  }

  /**
   * Continue from a captured state: a fresh instance of the same module takes it over (its
   * memory is already the state's when it was handed over).
   */
  restore(state: ExecutionState): void {
    if (state.memory !== null) this.restoreMemory(state.memory);
    for (const { name, value } of state.globals) {
      const global = this.exports[name] as WebAssembly.Global | undefined;
      if (global === undefined) throw new Error(`captured global ${name} is not in the module`);
      global.value = value;
    }
    this.started = state.started;
    this.savedStack = state.started && state.stack.length > 0 ? state.stack.slice() : null;
  }

  private restoreMemory(memory: Uint8Array): void {
    const have = this.scratchBase();
    if (memory.length < have) throw new Error(`captured memory of ${memory.length} bytes is smaller than the module's initial ${have}`);
    const extra = memory.length - have;
    if (extra % WASM_PAGE_BYTES !== 0) throw new Error(`captured memory of ${memory.length} bytes is not whole pages`);
    try {
      if (extra > 0) this.memory.grow(extra / WASM_PAGE_BYTES);
    } catch (error) {
      throw asNoMemory(error, `captured memory of ${memory.length} bytes`);
    }
    // The scratch pages of a fresh instance were never used: they are zero already.
    new Uint8Array(this.memory.buffer, 0, memory.length).set(memory);
  }

  private checkHandedOver(memory: WebAssembly.Memory): void {
    if (!this.module.layout.handover) throw new Error('the memory of a module with a start function cannot be handed over');
    const bytes = memory.buffer.byteLength;
    if (bytes < (this.module.layout.initial + SCRATCH_PAGES) * WASM_PAGE_BYTES) throw new Error(`a handed-over memory of ${bytes} bytes is smaller than the module's`);
  }

  /** Whether `index` names a function in the program's table (a signal handler must). */
  hasFunction(index: number): boolean {
    const table = this.exports.popcorn_table;
    if (table === undefined || !Number.isInteger(index) || index < 0 || index >= table.length) return false;
    return typeof table.get(index) === 'function';
  }

  /** Run until the program is preempted, blocks, yields, exits or traps. */
  run(): SliceOutcome {
    if (this.savedStack !== null) this.beginRewind(this.savedStack);
    else if (this.started) return { kind: 'exited', status: 0 };
    this.started = true;
    this.unwindOutcome = null;
    this.lastCheck = performance.now();
    this.fuel.value = this.fuelChunk;
    try {
      this.entry();
    } catch (error) {
      this.rewinding = false;
      if (error instanceof ProcessExit) return { kind: 'exited', status: error.status, signal: error.signal };
      return { kind: 'trapped', error: error instanceof Error ? error : new Error(String(error)) };
    }
    if (this.unwindOutcome !== null) {
      this.exports.asyncify_stop_unwind();
      this.savedStack = this.finishUnwind();
      return this.unwindOutcome;
    }
    return { kind: 'exited', status: 0 };
  }

  private preempt(): void {
    if (this.rewinding) {
      if (this.reenterHandler && !this.resumeHandler()) return;
      if (this.rewinding) this.endRewind();
      this.fuel.value = this.fuelChunk;
      return;
    }
    this.adaptFuel();
    if (this.hooks.shouldPreempt()) {
      this.startUnwind({ kind: 'preempted' });
      return;
    }
    this.fuel.value = this.fuelChunk;
    if (this.signalPending) this.runHandlers(false);
  }

  /** Keep clock checks about CHECK_INTERVAL_MS apart, whatever the program's loop speed. */
  private adaptFuel(): void {
    const now = performance.now();
    const elapsed = now - this.lastCheck;
    this.lastCheck = now;
    if (elapsed > 0) {
      const scaled = Math.round(this.fuelChunk * Math.min(2, Math.max(0.5, CHECK_INTERVAL_MS / elapsed)));
      this.fuelChunk = Math.min(MAX_FUEL, Math.max(MIN_FUEL, scaled));
    }
  }

  /**
   * The wrapper of an import that may block. The hot ones (fd_read, fd_write, poll_oneoff) take
   * four parameters and get a wrapper with exactly four: no rest array and no spread per call,
   * and a parameter count matching the wasm signature, which V8 calls faster. Others get the
   * general wrapper. The result test looks at typeof first because `===` against a symbol, with
   * numbers in its feedback, is a builtin call in V8 while typeof stays inline.
   */
  private wrapImport(fn: (...args: never[]) => unknown, name: string): (...args: never[]) => unknown {
    const f = fn as (...args: unknown[]) => unknown;
    if (f.length === 4) {
      return (a: unknown, b: unknown, c: unknown, d: unknown) => {
        if (!this.enter()) return 0;
        if (tracer !== null) return this.traced(name, f, [a, b, c, d]);
        const r = f(a, b, c, d);
        return typeof r === 'number' || r !== BLOCKED ? r : this.blocked();
      };
    }
    return (...args: unknown[]) => {
      if (!this.enter()) return 0;
      if (tracer !== null) return this.traced(name, f, args);
      const r = f(...args);
      return typeof r === 'number' || r !== BLOCKED ? r : this.blocked();
    };
  }

  /** An import called while `popcorn trace` records (src/kernel/trace.ts): its time and errno. */
  private traced(name: string, f: (...args: unknown[]) => unknown, args: unknown[]): unknown {
    const start = performance.now();
    const r = f(...args);
    tracer?.syscall(name, start, performance.now(), typeof r === 'number' ? r : r === BLOCKED ? -1 : 0);
    return typeof r === 'number' || r !== BLOCKED ? r : this.blocked();
  }

  /**
   * Before every wrapped import: finish a rewind that reached it (or re-enter the handler that
   * was running from it), run caught signals' handlers, and tell the kernel a syscall begins.
   * False when a handler unwound: the import must return at once, without its syscall.
   */
  private enter(): boolean {
    let rerun = false;
    if (this.rewinding) {
      rerun = this.activeHandler?.rerun ?? true;
      if (this.reenterHandler && !this.resumeHandler()) return false;
      if (this.rewinding) this.endRewind();
    }
    if (this.signalPending && !this.runHandlers(rerun)) return false;
    this.hooks.beginSyscall(rerun);
    return true;
  }

  /**
   * Run the handlers of caught signals, one at a time (a handler is not interrupted by another).
   * False when one unwound (it blocked or was preempted): the process is leaving the CPU.
   */
  private runHandlers(rerun: boolean): boolean {
    while (this.activeHandler === null) {
      const caught = this.hooks.takeSignal();
      this.signalPending = caught !== undefined;
      if (caught === undefined) return true;
      const handler = this.exports.popcorn_table?.get(caught.index) as ((signal: number) => void) | null | undefined;
      if (typeof handler !== 'function') continue;
      this.activeHandler = { signal: caught.signal, handler, saved: this.hooks.saveSyscallState(), rerun };
      if (!this.callHandler()) return false;
    }
    return true;
  }

  /** The rewind reached the import a handler was called from: call it again to rewind into it. */
  private resumeHandler(): boolean {
    this.reenterHandler = false;
    return this.callHandler();
  }

  private callHandler(): boolean {
    const active = this.activeHandler as ActiveHandler;
    active.handler(active.signal);
    if (this.unwindOutcome !== null) return false;
    this.hooks.restoreSyscallState(active.saved);
    this.activeHandler = null;
    return true;
  }

  /** The import returned BLOCKED: unwind the process (the import runs again when it is woken). */
  private blocked(): number {
    const wait = this.hooks.takeWait();
    this.startUnwind(wait === 'yield' ? { kind: 'yielded' } : { kind: 'blocked', wait });
    return 0;
  }

  /** The scratch region is the top of real memory (see SCRATCH_PAGES in abi.ts). */
  private scratchBase(): number {
    return this.memory.buffer.byteLength - SCRATCH_BYTES;
  }

  private startUnwind(outcome: SliceOutcome): void {
    const base = this.scratchBase();
    const words = new Uint32Array(this.memory.buffer, base, 2);
    words[0] = base + HEADER_BYTES;
    words[1] = base + SCRATCH_BYTES;
    this.unwindOutcome = outcome;
    this.exports.asyncify_start_unwind(base);
  }

  /** Copy the saved stack out of the scratch region and zero what was used. */
  private finishUnwind(): Uint8Array {
    const base = this.scratchBase();
    const end = new Uint32Array(this.memory.buffer, base, 1)[0];
    const region = new Uint8Array(this.memory.buffer, base, end - base);
    const saved = region.slice(HEADER_BYTES);
    region.fill(0);
    return saved;
  }

  private beginRewind(stack: Uint8Array): void {
    const base = this.scratchBase();
    const bytes = new Uint8Array(this.memory.buffer, base, HEADER_BYTES + stack.length);
    bytes.set(stack, HEADER_BYTES);
    const words = new Uint32Array(this.memory.buffer, base, 2);
    words[0] = base + HEADER_BYTES + stack.length;
    words[1] = base + SCRATCH_BYTES;
    this.savedStack = null;
    this.rewinding = true;
    this.reenterHandler = this.activeHandler !== null;
    this.rewindBytes = HEADER_BYTES + stack.length;
    this.exports.asyncify_start_rewind(base);
  }

  /** The rewind reached the import that unwound: stop it and zero the scratch it used. */
  private endRewind(): void {
    this.exports.asyncify_stop_rewind();
    this.rewinding = false;
    new Uint8Array(this.memory.buffer, this.scratchBase(), this.rewindBytes).fill(0);
  }
}

/** What an execution needs to know of its module, found once per module. */
interface ModuleFacts {
  /** From MEMORY_SECTION (src/wasm/shared-memory.ts). */
  layout: MemoryLayout;
  /** The exported mutable globals: listing them from the exports object would make a JS function for every exported function. */
  globals: string[];
}

const facts = new WeakMap<WebAssembly.Module, ModuleFacts>();

function factsOf(module: WebAssembly.Module): ModuleFacts {
  let found = facts.get(module);
  if (found === undefined) {
    const [section] = WebAssembly.Module.customSections(module, MEMORY_SECTION);
    if (section === undefined) throw new Error(`the module has no ${MEMORY_SECTION} section: it was not instrumented by this popcorn`);
    const globals = WebAssembly.Module.exports(module).filter((e) => e.kind === 'global' && e.name.startsWith(GLOBAL_EXPORT_PREFIX)).map((e) => e.name);
    found = { layout: JSON.parse(new TextDecoder().decode(section)) as MemoryLayout, globals };
    facts.set(module, found);
  }
  return found;
}

/**
 * A process's memory: the module's initial pages and popcorn's scratch pages above them. It grows
 * at most to the module's maximum, or to `maxPages` of the program's own if that is less: an
 * import may be given a memory with a smaller maximum than it declares, and memory.grow past it
 * returns -1, as under wasmtime's max-memory-size. A module that starts above the limit is
 * refused with ENOMEM, as is a memory V8 cannot reserve (address space or RAM used up).
 */
function newMemory(layout: MemoryLayout, maxPages?: number): WebAssembly.Memory {
  if (layout.initial + SCRATCH_PAGES > layout.maximum) {
    throw new Error(`the module's maximum memory leaves no room for popcorn's ${SCRATCH_PAGES} scratch pages`);
  }
  if (maxPages !== undefined && layout.initial > maxPages) {
    throw new WasiError(Errno.NOMEM, `the module's initial memory of ${layout.initial * WASM_PAGE_BYTES} bytes is over the limit of ${maxPages * WASM_PAGE_BYTES}`);
  }
  const maximum = Math.min(layout.maximum, (maxPages ?? Infinity) + SCRATCH_PAGES);
  try {
    return new WebAssembly.Memory({ initial: layout.initial + SCRATCH_PAGES, maximum, shared: true });
  } catch (error) {
    throw asNoMemory(error, 'a new process memory');
  }
}

/** V8 throws a RangeError for a memory it cannot reserve, or grow past its maximum: ENOMEM. */
function asNoMemory(error: unknown, what: string): unknown {
  return error instanceof RangeError ? new WasiError(Errno.NOMEM, `${what}: ${error.message}`) : error;
}
