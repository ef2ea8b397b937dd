/**
 * Rewrites a WASI module so popcorn can run it: fuel checks (preemption points), Binaryen's
 * Asyncify (so a running stack can be unwound to the kernel and rewound later), and exports of
 * every piece of state a process capture needs. The contract with the runtime is in abi.ts.
 */
import { availableParallelism } from 'node:os';
import binaryen from 'binaryen';
import { asyncify, readBinary } from './asyncify.js';
import {
  FUEL_EXPORT, GLOBAL_EXPORT_PREFIX, INIT_MEMORY_EXPORT, MEMORY_EXPORT, POPCORN_IMPORTS, POPCORN_MAY_UNWIND, POPCORN_MODULE, TABLE_EXPORT, WASI_MODULE, WASI_MAY_UNWIND,
} from './abi.js';
import { addressTakenFunctions, callGraph, feedbackVertexSet, fuelTouchingFunctions } from './callgraph.js';
import { sha256Hex } from './hash.js';
import { ModuleError } from './errors.js';
import { addFuelChecks, addFuelRuntime, unrollSelfRecursion, PREEMPT_QUALIFIED } from './fuel.js';
import { hideScratchPages } from './scratch.js';
import { importSharedMemory } from './shared-memory.js';
import { summarizeFunction, type FunctionSummary } from './summary.js';
import { UnsupportedExpressionError } from './walk.js';

/** Import modules a guest may use (WASI names are checked at instantiation; popcorn's here). */
export const ALLOWED_IMPORT_MODULES: readonly string[] = [WASI_MODULE, POPCORN_MODULE];

/**
 * WebAssembly features accepted. Exception handling and tail calls are left out because
 * Asyncify cannot unwind through them; GC, memory64 and multi-memory because Node 20 does not
 * run them (and the walker does not know their instructions).
 */
const F = binaryen.Features;
const ACCEPTED_FEATURES =
  F.MutableGlobals | F.NontrappingFPToInt | F.SIMD128 | F.BulkMemory | F.BulkMemoryOpt | F.SignExt |
  F.ReferenceTypes | F.Multivalue | F.ExtendedConst | F.CallIndirectOverlong | F.Atomics;

/** Names the instrumented module exports for popcorn; a guest that already uses one is refused. */
const RESERVED_EXPORT_PREFIXES = [FUEL_EXPORT, GLOBAL_EXPORT_PREFIX, TABLE_EXPORT, INIT_MEMORY_EXPORT, 'asyncify_'];

export type ProgramKind = 'command' | 'reactor';

export interface InstrumentInfo {
  kind: ProgramKind;
  /** sha256 (hex) of the original bytes: the cache key, and the program's identity. */
  originalHash: string;
  /** Indices (in the original global index space) of mutable globals, exported as popcorn_global_<i>. */
  mutableGlobals: number[];
  /** The original function imports, as "module.field". */
  imports: string[];
}

export interface InstrumentResult {
  bytes: Uint8Array;
  info: InstrumentInfo;
}

export interface InstrumentOptions {
  /** Path or name of the module, used in error messages. */
  source?: string;
  /** Threads for the Asyncify step (default: one per CPU); 1 keeps it on the calling thread. */
  workers?: number;
  /** Cut Asyncify into this many chunks even for a small module (tests of the chunked path). */
  forceChunks?: number;
}

/** What a long instrumentation reports as it goes: the fraction done, 0..1. */
export type InstrumentProgress = (fraction: number) => void;

/**
 * Share of the time that goes before Asyncify (reading, checks, fuel): Asyncify's chunks make
 * up the rest of the progress. Measured on sqlite3 (≈ 8 %) and smaller C programs.
 */
const PREPARE_SHARE = 0.1;

/** Instruments `original`. Rejects with ModuleError for a module popcorn refuses to run. */
export async function instrument(original: Uint8Array, opts: InstrumentOptions = {}, onProgress?: InstrumentProgress): Promise<InstrumentResult> {
  const source = opts.source ?? '<module>';
  validateWithEngine(original, source);
  const module = readWithBinaryen(original, source);
  try {
    validateWithBinaryen(module, source);
    const info = inspect(module, source, sha256Hex(original));
    const bytes = await rewrite(module, source, info, opts, onProgress);
    if (!WebAssembly.validate(bytes)) {
      throw new Error(`instrumenting ${source} produced an invalid module (a popcorn bug)`);
    }
    return { bytes, info };
  } finally {
    module.dispose();
  }
}

/** The preamble of a component (the component model's binary: layer 1, version 0x0d). */
const COMPONENT_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/** V8 validates first: it is fast, and it is the engine that will run the module. */
function validateWithEngine(bytes: Uint8Array, source: string): void {
  if (WebAssembly.validate(bytes)) return;
  if (COMPONENT_PREAMBLE.every((byte, i) => bytes[i] === byte)) {
    throw new ModuleError(source, 'is a WebAssembly component (the component model of WASI 0.2 and later); popcorn runs core modules of WASI preview 1 (wasm32-wasip1)');
  }
  try {
    new WebAssembly.Module(bytes);
  } catch (err) {
    throw new ModuleError(source, `not a valid WebAssembly module: ${(err as Error).message}`);
  }
  throw new ModuleError(source, 'not a valid WebAssembly module');
}

/**
 * Binaryen's reader is stricter than V8 where V8 only warns: a malformed "name" section, for one,
 * is skipped by V8 and makes binaryen throw a non-Error object (found by fuzzing).
 */
function readWithBinaryen(bytes: Uint8Array, source: string): binaryen.Module {
  const { value, printed } = capturingStderr(() => {
    try {
      return readBinary(bytes, ACCEPTED_FEATURES);
    } catch (thrown) {
      const what = (thrown as { message?: unknown } | null)?.message;
      return typeof what === 'string' ? what : String(thrown);
    }
  });
  if (typeof value !== 'string') return value;
  throw new ModuleError(source, `binaryen cannot read it (${value})${printed === '' ? '' : `: ${printed}`}`);
}

/**
 * Binaryen's validator catches what V8 accepts but popcorn cannot instrument (a feature outside
 * ACCEPTED_FEATURES).
 */
function validateWithBinaryen(module: binaryen.Module, source: string): void {
  const { value: valid, printed } = capturingStderr(() => module.validate());
  if (!valid) throw new ModuleError(source, `uses a WebAssembly feature popcorn does not support: ${printed}`);
}

/** Runs `work`; binaryen prints its findings to stderr, so they are captured for a message. */
function capturingStderr<T>(work: () => T): { value: T; printed: string } {
  const write = process.stderr.write;
  const printed: string[] = [];
  process.stderr.write = ((chunk: string | Uint8Array): boolean => {
    printed.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: work(), printed: printed.join('').split('\n').slice(0, 6).join('\n').trim() };
  } finally {
    process.stderr.write = write;
  }
}

/** Checks everything popcorn requires of a module and gathers its InstrumentInfo. */
function inspect(module: binaryen.Module, source: string, originalHash: string): InstrumentInfo {
  checkMemory(module, source);
  checkNonFunctionImports(module, source);
  return {
    kind: programKind(module, source),
    originalHash,
    mutableGlobals: mutableGlobalIndices(module),
    imports: functionImports(module, source),
  };
}

function checkMemory(module: binaryen.Module, source: string): void {
  if (!module.hasMemory()) throw new ModuleError(source, 'has no linear memory (a WASI program needs one)');
  const memory = module.getMemoryInfo();
  if (memory.module) {
    throw new ModuleError(source, `imports its memory (${memory.module}.${memory.base}); popcorn gives each process its own memory, so the module must define it`);
  }
}

function checkNonFunctionImports(module: binaryen.Module, source: string): void {
  for (let i = 0; i < module.getNumTables(); i++) {
    const table = binaryen.getTableInfo(module.getTableByIndex(i));
    if (table.module) throw new ModuleError(source, `imports a table (${table.module}.${table.base}); the module must define its tables`);
  }
  for (let i = 0; i < module.getNumGlobals(); i++) {
    const global = binaryen.getGlobalInfo(module.getGlobalByIndex(i));
    if (global.module) throw new ModuleError(source, `imports a global (${global.module}.${global.base}); popcorn provides only function imports`);
  }
}

/** Function imports as "module.field"; refuses any outside ALLOWED_IMPORT_MODULES. */
function functionImports(module: binaryen.Module, source: string): string[] {
  const imports: string[] = [];
  for (let i = 0; i < module.getNumFunctions(); i++) {
    const func = binaryen.getFunctionInfo(module.getFunctionByIndex(i));
    if (func.module) imports.push(`${func.module}.${func.base}`);
  }
  const unknown = imports.filter((name) => !ALLOWED_IMPORT_MODULES.includes(name.slice(0, name.indexOf('.'))));
  const newerWasi = unknown.filter((name) => name.startsWith('wasi:'));
  if (newerWasi.length > 0) {
    throw new ModuleError(source, `imports ${newerWasi.join(', ')}: interfaces of WASI 0.2 or later, which popcorn does not provide (it provides WASI preview 1, wasi_snapshot_preview1)`);
  }
  if (unknown.length > 0) {
    throw new ModuleError(source, `imports ${unknown.join(', ')}, which popcorn does not provide (allowed import modules: ${ALLOWED_IMPORT_MODULES.join(', ')})`);
  }
  const prefix = `${POPCORN_MODULE}.`;
  const unknownPopcorn = imports.filter((name) => name.startsWith(prefix) && !POPCORN_IMPORTS.includes(name.slice(prefix.length)));
  if (unknownPopcorn.length > 0) {
    throw new ModuleError(source, `imports ${unknownPopcorn.join(', ')}, which the popcorn module does not have (it has ${POPCORN_IMPORTS.join(', ')})`);
  }
  return imports;
}

function exportsOf(module: binaryen.Module): binaryen.ExportInfo[] {
  const exports: binaryen.ExportInfo[] = [];
  for (let i = 0; i < module.getNumExports(); i++) exports.push(binaryen.getExportInfo(module.getExportByIndex(i)));
  return exports;
}

/** A command exports `_start`, a reactor `_initialize` (WASI application ABI); not both. */
function programKind(module: binaryen.Module, source: string): ProgramKind {
  const exports = exportsOf(module);
  const reserved = exports.find((e) => RESERVED_EXPORT_PREFIXES.some((prefix) => e.name.startsWith(prefix)));
  if (reserved) throw new ModuleError(source, `exports "${reserved.name}", a name popcorn reserves for itself`);
  const named = (name: string): boolean => exports.some((e) => e.name === name && e.kind === binaryen.ExternalFunction);
  const [start, initialize] = [named('_start'), named('_initialize')];
  if (start && initialize) throw new ModuleError(source, 'exports both _start and _initialize; a WASI module is either a command or a reactor');
  if (start) return 'command';
  if (initialize) return 'reactor';
  throw new ModuleError(source, 'exports neither _start (a command) nor _initialize (a reactor)');
}

/** Indices of mutable globals. Imported globals are refused, so these are module indices too. */
function mutableGlobalIndices(module: binaryen.Module): number[] {
  const indices: number[] = [];
  for (let i = 0; i < module.getNumGlobals(); i++) {
    if (binaryen.getGlobalInfo(module.getGlobalByIndex(i)).mutable) indices.push(i);
  }
  return indices;
}

/** Instruments the module and returns the result's bytes. */
async function rewrite(module: binaryen.Module, source: string, info: InstrumentInfo, opts: InstrumentOptions, onProgress?: InstrumentProgress): Promise<Uint8Array> {
  const summaries = summarizeDefinedFunctions(module, source);
  const graph = callGraph(summaries, addressTakenFunctions(module, summaries));
  const entryChecked = feedbackVertexSet(graph);
  const checked = new Set([...entryChecked, ...summaries.filter((s) => s.loops.length > 0).map((s) => s.name)]);
  exportState(module, info);
  addFuelRuntime(module);
  const touching = fuelTouchingFunctions(graph, checked);
  // After the call graph: unrolling adds no calls, only more calls to the same functions.
  unrollSelfRecursion(module, summaries, entryChecked);
  addFuelChecks(module, summaries, entryChecked, touching);
  hideScratchPages(module);
  importSharedMemory(module, memoryName(module));
  onProgress?.(PREPARE_SHARE);
  return asyncify(module, {
    unwindingImports: [PREEMPT_QUALIFIED, ...info.imports.filter(mayUnwind)],
    summaries,
    preempting: checked,
    workers: opts.workers ?? availableParallelism(),
    ...(opts.forceChunks === undefined ? {} : { forceChunks: opts.forceChunks }),
    onProgress: (fraction) => onProgress?.(PREPARE_SHARE + (1 - PREPARE_SHARE) * fraction),
  });
}

function summarizeDefinedFunctions(module: binaryen.Module, source: string): FunctionSummary[] {
  const summaries: FunctionSummary[] = [];
  for (let i = 0; i < module.getNumFunctions(); i++) {
    const func = module.getFunctionByIndex(i);
    const { name, module: importedFrom } = binaryen.getFunctionInfo(func);
    if (importedFrom) continue;
    try {
      summaries.push(summarizeFunction(func));
    } catch (err) {
      if (err instanceof UnsupportedExpressionError) throw new ModuleError(source, `function ${name}: ${err.message}`);
      throw err;
    }
  }
  return summaries;
}

/** Exports mutable globals, the memory and the table, so a process can be captured from outside. */
function exportState(module: binaryen.Module, info: InstrumentInfo): void {
  for (const index of info.mutableGlobals) {
    const { name } = binaryen.getGlobalInfo(module.getGlobalByIndex(index));
    module.addGlobalExport(name, `${GLOBAL_EXPORT_PREFIX}${index}`);
  }
  if (!exportsOf(module).some((e) => e.name === MEMORY_EXPORT && e.kind === binaryen.ExternalMemory)) {
    module.addMemoryExport(memoryName(module), MEMORY_EXPORT);
  }
  if (module.getNumTables() > 0) {
    module.addTableExport(binaryen.getTableInfo(module.getTableByIndex(0)).name, TABLE_EXPORT);
  }
}

/**
 * Asyncify is restricted to the imports that may unwind: preempt, and the few WASI and popcorn
 * calls that may have to wait (WASI_MAY_UNWIND, POPCORN_MAY_UNWIND). Code that reaches only the
 * other WASI calls (clock_time_get in a loop, say) is then not instrumented for their sake.
 * Indirect calls stay instrumented (no asyncify-ignore-indirect): any function pointer may lead
 * to a fuel check.
 */
function mayUnwind(qualified: string): boolean {
  const dot = qualified.indexOf('.');
  const [module, name] = [qualified.slice(0, dot), qualified.slice(dot + 1)];
  if (module === WASI_MODULE) return WASI_MAY_UNWIND.includes(name);
  if (module === POPCORN_MODULE) return POPCORN_MAY_UNWIND.includes(name);
  return true;
}

/**
 * The internal name of the module's only memory. binaryen.js cannot tell it: it is "0" unless the
 * memory is exported (then the export names it) or the name section names it (then validation of
 * the instrumented module fails).
 */
function memoryName(module: binaryen.Module): string {
  return exportsOf(module).find((e) => e.kind === binaryen.ExternalMemory)?.value ?? '0';
}
