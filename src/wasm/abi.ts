/**
 * The contract between the instrumenter (src/wasm/instrument.ts) and the runtime that executes
 * instrumented modules (src/kernel/). Every name a rewritten module imports or exports for
 * popcorn's own use is declared here, once.
 */

/** Import module of the runtime hooks the instrumenter adds. */
export const RUNTIME_MODULE = 'popcorn_rt';

/**
 * `popcorn_rt.preempt: () -> ()` is called by instrumented code when the fuel counter drops below
 * zero (at a loop header, or at the entry of a function that may recurse). The runtime either
 * refills the fuel and returns, or starts an Asyncify unwind to take the process off the CPU.
 * The refill must be at least 1: after preempt returns at a loop header, the loop is re-entered
 * and that header's check runs again, so a refill of 0 would preempt forever.
 */
export const PREEMPT_IMPORT = 'preempt';

/**
 * `popcorn_rt.memory`: the process's linear memory, shared, made by the runtime (or handed over
 * by the kernel the process migrated from). The module's own memory becomes this import
 * (shared-memory.ts); the module still exports it as MEMORY_EXPORT.
 */
export const MEMORY_IMPORT = 'memory';

/** Custom section with the module's MemoryLayout (JSON), read by the runtime before instantiating. */
export const MEMORY_SECTION = 'popcorn.memory';

/** How to make, and how to take over, the memory of an instrumented module (MEMORY_SECTION). */
export interface MemoryLayout {
  /** The module's initial pages (the runtime adds SCRATCH_PAGES). */
  initial: number;
  /** The maximum pages of the imported memory, scratch pages included. */
  maximum: number;
  /**
   * Whether a live memory may be handed to a new instance: the module's data is copied in by
   * INIT_MEMORY_EXPORT, not by instantiation, and no start function runs against it.
   */
  handover: boolean;
}

/** Exported `() -> ()`: copies the module's data into a new process's memory (shared-memory.ts). */
export const INIT_MEMORY_EXPORT = 'popcorn_init_memory';

/**
 * Exported mutable i32 global: the fuel counter. Each check decrements it by one. The runtime may
 * change it only inside preempt and while no program code runs (between slices): functions with
 * loops keep the counter in a local and sync it only around calls that may reach a check, never
 * around the program's other imports.
 */
export const FUEL_EXPORT = 'popcorn_fuel';

/**
 * Every mutable global of the original module (the shadow stack pointer among them) is exported
 * as `popcorn_global_<index>` so a process's complete state can be captured from outside.
 */
export const GLOBAL_EXPORT_PREFIX = 'popcorn_global_';

/** The function table, exported so the kernel can call guest function pointers (signal handlers). */
export const TABLE_EXPORT = 'popcorn_table';

/** The linear memory is always exported under this name (in addition to the module's own name). */
export const MEMORY_EXPORT = 'memory';

/** The WASI preview 1 import module. */
export const WASI_MODULE = 'wasi_snapshot_preview1';

/**
 * The WASI imports the runtime may unwind the process from (they may have to wait). Every other
 * WASI import must return or throw, never unwind: the instrumenter leaves code that reaches only
 * them without Asyncify's bookkeeping, so an unwind started there would corrupt the stack. Every
 * `popcorn` import and preempt may unwind. The kernel's set (MAY_BLOCK in src/kernel/wasi/wasi.ts)
 * is made from this list, so the two cannot disagree.
 */
export const WASI_MAY_UNWIND: readonly string[] = [
  'fd_read', 'fd_write', 'poll_oneoff', 'sched_yield',
  // A directory or file of another node answers these by message (src/kernel/remote-directory.ts,
  // src/kernel/wasi/remote-calls.ts).
  'fd_pread', 'fd_pwrite', 'fd_readdir', 'path_create_directory', 'path_filestat_get', 'path_filestat_set_times', 'path_link',
  'path_open', 'path_readlink', 'path_remove_directory', 'path_rename', 'path_symlink', 'path_unlink_file',
];

/** popcorn's own import module (src/kernel/popcorn-abi.ts, examples/include/popcorn.h). */
export const POPCORN_MODULE = 'popcorn';
/** Every function of the popcorn module; a program importing another name is refused at load. */
export const POPCORN_IMPORTS: readonly string[] = ['getpid', 'getppid', 'kernel_id', 'kernel_count', 'spawn', 'wait', 'kill', 'signal', 'pipe', 'dup2', 'migrate'];
/** The popcorn imports that may wait (for a child, for another kernel): the others never unwind. */
export const POPCORN_MAY_UNWIND: readonly string[] = ['spawn', 'wait', 'kill', 'migrate'];

/** Values returned by asyncify_get_state. */
export const enum AsyncifyState {
  Normal = 0,
  Unwinding = 1,
  Rewinding = 2,
}

/** The typed export surface of an instrumented module instance. */
export interface InstrumentedExports {
  memory: WebAssembly.Memory;
  popcorn_fuel: WebAssembly.Global;
  popcorn_table?: WebAssembly.Table;
  popcorn_init_memory: () => void;
  asyncify_start_unwind(dataAddr: number): void;
  asyncify_stop_unwind(): void;
  asyncify_start_rewind(dataAddr: number): void;
  asyncify_stop_rewind(): void;
  asyncify_get_state(): number;
  _start?: () => void;
  _initialize?: () => void;
  [name: string]: unknown;
}

/**
 * The Asyncify scratch region: the top SCRATCH_PAGES of linear memory, hidden from the program.
 *
 * Asyncify needs memory to save the wasm stack while unwinding, but a popcorn process owns all of
 * its linear memory: allocators in older wasi-libc (and TinyGo) take everything up to memory.size
 * at their first call, so pages grown behind the program's back would be handed out by malloc.
 * Instead the runtime creates the memory SCRATCH_PAGES larger than the module declares, and the
 * instrumenter rewrites every `memory.size` and `memory.grow` so the program sees SCRATCH_PAGES fewer pages:
 * the scratch region is always the top of real memory. The runtime uses it only while no program
 * code runs (during an unwind or rewind), copies the saved stack out to the process's own state,
 * and zeroes what it used, so the pages the program later grows into are zero as it expects.
 */
export const SCRATCH_PAGES = 16;
export const WASM_PAGE_BYTES = 65536;
export const SCRATCH_BYTES = SCRATCH_PAGES * WASM_PAGE_BYTES;

/**
 * Bump whenever the instrumenter's output for a given input changes (placement of checks, pass
 * options, binaryen version, this ABI): it is part of the cache key, so stale instrumented
 * modules are never used.
 */
export const INSTRUMENTATION_VERSION = 9;
