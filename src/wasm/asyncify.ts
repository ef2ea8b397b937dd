/**
 * Asyncify, the last and by far the longest step of instrumentation (≈ 90 % of it on sqlite3),
 * spread over worker threads.
 *
 * Binaryen's Asyncify pass is function-parallel in native builds, but binaryen.js runs it on one
 * thread. Its per-function work depends only on the function's own body and on which functions
 * and imports "can change the state" (may unwind); so the module is cut into chunks of
 * functions, and each chunk goes to a worker as a module in which every function outside the
 * chunk is a stub that says only whether it can change the state: a call to
 * `asyncify.start_unwind` if it can (Asyncify then treats it as runtime code: it instruments its
 * callers but not the stub), `unreachable` if it cannot. The whole-module answer comes from the
 * same rule Asyncify applies (stateChangers), so each chunk is instrumented exactly as a single
 * run would instrument it. The instrumented bodies are copied back into the module (all
 * binaryen.js modules share one heap, so an expression copies across modules), in the original
 * order of functions, and the Asyncify runtime (its two globals and five exported functions) is
 * taken from the first chunk.
 *
 * Chunks finish one by one, which is also what the progress of a long instrumentation is.
 */
import binaryen from 'binaryen';
import type { FunctionSummary } from './summary.js';
import { forEachExpression } from './walk.js';
import { asyncifyInWorkers } from './asyncify-workers.js';

/**
 * Asyncify's optimize level. Optimizing while it runs (Asyncify then flattens and re-optimizes
 * the functions it instruments) matters: at level 0 the output ran 1.4–4.8× slower. Level 1 ran
 * as fast as level 2 on the compute benchmarks and instruments faster; a full -O3 afterwards took
 * seconds and gained nothing measurable.
 */
export const ASYNCIFY_OPTIMIZE_LEVEL = 1;

/** Modules with fewer expressions in their defined functions are instrumented in one piece. */
export const CHUNKED_MIN_EXPRESSIONS = 60_000;

/** The Asyncify runtime that a chunked run takes from its first chunk: two globals, five functions. */
const ASYNCIFY_GLOBALS = 2;
const ASYNCIFY_FUNCTIONS = ['asyncify_start_unwind', 'asyncify_stop_unwind', 'asyncify_start_rewind', 'asyncify_stop_rewind', 'asyncify_get_state'];
/** The import a state-changing stub calls; Asyncify removes it again. */
const STUB_UNWIND = 'popcorn$stub_unwind';

/** binaryen.js takes the feature set as a second argument; its index.d.ts does not say so. */
export const readBinary = binaryen.readBinary as (bytes: Uint8Array, features: binaryen.Features) => binaryen.Module;

/** binaryen.js accessors that its index.d.ts leaves out. */
const functions = (binaryen as unknown as { Function: { setBody(func: binaryen.FunctionRef, body: binaryen.ExpressionRef): void } }).Function;

export interface AsyncifyOptions {
  /** Qualified names ("module.field") of the imports that may unwind. */
  unwindingImports: readonly string[];
  /** Summaries of the module's original functions (sizes and calls); see stateChangers. */
  summaries: readonly FunctionSummary[];
  /** Functions that got a fuel check (at a loop header or the entry): they call preempt. */
  preempting: ReadonlySet<string>;
  /** Worker threads to use; 1 runs Asyncify on this thread. */
  workers: number;
  /** Chunk even a small module (tests of the chunked path). */
  forceChunks?: number;
  /** Called with the fraction done (0..1) as chunks finish. */
  onProgress?: (fraction: number) => void;
}

/** Runs Asyncify on `module` and returns the result's bytes (`module` is then spent). */
export async function asyncify(module: binaryen.Module, opts: AsyncifyOptions): Promise<Uint8Array> {
  const total = opts.summaries.reduce((sum, s) => sum + s.size, 0);
  const chunks = opts.forceChunks ?? (total >= CHUNKED_MIN_EXPRESSIONS && opts.workers > 1 ? opts.workers * 4 : 1);
  if (chunks <= 1) {
    asyncifyInPlace(module, opts.unwindingImports);
    opts.onProgress?.(1);
    return module.emitBinary();
  }
  const changers = stateChangers(module, opts);
  // The chunks' instrumented bodies name memories, globals, segments and tables as a module read
  // from bytes does; so the module they go back into is one read from bytes too.
  binaryen.setDebugInfo(true);
  const canonical = readBinary(module.emitBinary(), module.getFeatures());
  try {
    const plan = planChunks(definedFunctions(canonical), sizesOf(opts.summaries), chunks);
    await asyncifyChunked(canonical, changers, plan, opts);
    return canonical.emitBinary();
  } finally {
    canonical.dispose();
  }
}

/** Sets Asyncify's options (a process-wide setting of binaryen.js) for the next run. */
export function configureAsyncify(unwindingImports: string): void {
  binaryen.setOptimizeLevel(ASYNCIFY_OPTIMIZE_LEVEL);
  binaryen.setShrinkLevel(0);
  binaryen.setDebugInfo(true); // keep the name section: traps then name the function
  binaryen.setPassArgument('asyncify-imports', unwindingImports);
}

/** Asyncify over the whole module on this thread. */
export function asyncifyInPlace(module: binaryen.Module, unwindingImports: readonly string[]): void {
  configureAsyncify(unwindingImports.join(','));
  try {
    module.runPasses(['asyncify']);
  } finally {
    binaryen.clearPassArguments();
  }
}

/** Names of the defined functions, in module order. */
function definedFunctions(module: binaryen.Module): string[] {
  const names: string[] = [];
  for (let i = 0; i < module.getNumFunctions(); i++) {
    const info = binaryen.getFunctionInfo(module.getFunctionByIndex(i));
    if (!info.module) names.push(info.name);
  }
  return names;
}

function sizesOf(summaries: readonly FunctionSummary[]): Map<string, number> {
  return new Map(summaries.map((s) => [s.name, s.size]));
}

/**
 * Cuts the functions into `count` chunks of similar size, largest functions first so that the
 * longest pieces of work start first (functions the summaries do not know, added by the
 * instrumenter, are small).
 */
export function planChunks(names: readonly string[], sizes: ReadonlyMap<string, number>, count: number): string[][] {
  const chunks = Array.from({ length: count }, () => ({ names: [] as string[], size: 0 }));
  const bySize = [...names].sort((a, b) => (sizes.get(b) ?? 1) - (sizes.get(a) ?? 1));
  for (const name of bySize) {
    const smallest = chunks.reduce((min, c) => (c.size < min.size ? c : min));
    smallest.names.push(name);
    smallest.size += sizes.get(name) ?? 1;
  }
  return chunks.filter((c) => c.names.length > 0).sort((a, b) => b.size - a.size).map((c) => c.names);
}

/**
 * The defined functions that can change the state, by Asyncify's own rule: a function can if it
 * calls an unwinding import (preempt included), makes an indirect call, or calls a function that
 * can. Functions added after the summaries were taken (the instrumenter's own helpers) are walked
 * here.
 */
export function stateChangers(module: binaryen.Module, opts: Pick<AsyncifyOptions, 'unwindingImports' | 'summaries' | 'preempting'>): Set<string> {
  const unwinding = unwindingImportNames(module, opts.unwindingImports);
  const calls = new Map<string, Set<string>>();
  const changers = new Set<string>();
  const known = new Map(opts.summaries.map((s) => [s.name, s]));
  for (const name of definedFunctions(module)) {
    const summary = known.get(name) ?? summarizeCalls(module, name);
    calls.set(name, summary.directCalls);
    const direct = opts.preempting.has(name) || summary.indirectCalls.length > 0 || [...summary.directCalls].some((c) => unwinding.has(c));
    if (direct) changers.add(name);
  }
  const callers = new Map<string, string[]>();
  for (const [caller, callees] of calls) {
    for (const callee of callees) callers.set(callee, [...(callers.get(callee) ?? []), caller]);
  }
  const work = [...changers];
  for (let name = work.pop(); name !== undefined; name = work.pop()) {
    for (const caller of callers.get(name) ?? []) {
      if (changers.has(caller)) continue;
      changers.add(caller);
      work.push(caller);
    }
  }
  return changers;
}

/** Internal names of the imported functions that may unwind. */
function unwindingImportNames(module: binaryen.Module, qualified: readonly string[]): Set<string> {
  const wanted = new Set(qualified);
  const names = new Set<string>();
  for (let i = 0; i < module.getNumFunctions(); i++) {
    const info = binaryen.getFunctionInfo(module.getFunctionByIndex(i));
    if (info.module && wanted.has(`${info.module}.${info.base}`)) names.add(info.name);
  }
  return names;
}

function summarizeCalls(module: binaryen.Module, name: string): Pick<FunctionSummary, 'directCalls' | 'indirectCalls'> {
  const summary = { directCalls: new Set<string>(), indirectCalls: [] as FunctionSummary['indirectCalls'] };
  forEachExpression(binaryen.getFunctionInfo(module.getFunction(name)).body, (expr) => {
    const id = binaryen.getExpressionId(expr);
    if (id === binaryen.CallId) summary.directCalls.add((binaryen.getExpressionInfo(expr) as binaryen.CallInfo).target);
    if (id === binaryen.CallIndirectId) summary.indirectCalls.push({ params: binaryen.none, results: binaryen.none });
  });
  return summary;
}

/** One instrumented function, copied out of a chunk's module. */
interface InstrumentedFunction {
  vars: binaryen.Type[];
  body: binaryen.ExpressionRef;
}

async function asyncifyChunked(module: binaryen.Module, changers: ReadonlySet<string>, chunks: string[][], opts: AsyncifyOptions): Promise<void> {
  const order = definedFunctions(module);
  const original = new Map(order.map((name) => [name, binaryen.getFunctionInfo(module.getFunction(name)).body]));
  module.addFunctionImport(STUB_UNWIND, 'asyncify', 'start_unwind', binaryen.i32, binaryen.none);
  const emitChunk = (index: number): Uint8Array => emitWithStubs(module, new Set(chunks[index]), changers, original);
  const instrumented = new Map<string, InstrumentedFunction>();
  let first: binaryen.Module | undefined;
  try {
    const sizes = sizesOf(opts.summaries);
    const total = order.reduce((sum, name) => sum + (sizes.get(name) ?? 1), 0);
    let done = 0;
    await asyncifyInWorkers({
      count: chunks.length,
      emit: emitChunk,
      features: module.getFeatures(),
      unwindingImports: opts.unwindingImports.join(','),
      workers: opts.workers,
      take: (index, bytes) => {
        const result = readBinary(bytes, module.getFeatures());
        copyOut(module, result, chunks[index] ?? [], instrumented);
        if (first === undefined) first = result;
        else result.dispose();
        done += (chunks[index] ?? []).reduce((sum, name) => sum + (sizes.get(name) ?? 1), 0);
        opts.onProgress?.(done / total);
      },
    });
    for (const [name, body] of original) functions.setBody(module.getFunction(name), body);
    module.removeFunction(STUB_UNWIND);
    if (first === undefined) throw new Error('chunked Asyncify produced no chunk');
    reassemble(module, order, instrumented, first);
  } finally {
    first?.dispose();
  }
}

/** The module with every function outside `chunk` a stub, as bytes; the bodies are put back. */
function emitWithStubs(module: binaryen.Module, chunk: ReadonlySet<string>, changers: ReadonlySet<string>, original: ReadonlyMap<string, binaryen.ExpressionRef>): Uint8Array {
  for (const name of original.keys()) {
    if (chunk.has(name)) continue;
    const stub = changers.has(name)
      ? module.block(null, [module.call(STUB_UNWIND, [module.i32.const(0)], binaryen.none), module.unreachable()], binaryen.unreachable)
      : module.unreachable();
    functions.setBody(module.getFunction(name), stub);
  }
  binaryen.setDebugInfo(true);
  const bytes = module.emitBinary();
  for (const [name, body] of original) functions.setBody(module.getFunction(name), body);
  return bytes;
}

/** Copies the chunk's instrumented functions (bodies and locals) into `module`'s arena. */
function copyOut(module: binaryen.Module, result: binaryen.Module, chunk: readonly string[], into: Map<string, InstrumentedFunction>): void {
  for (const name of chunk) {
    const info = binaryen.getFunctionInfo(result.getFunction(name));
    into.set(name, { vars: [...(info.vars ?? [])], body: module.copyExpression(info.body) });
  }
}

/**
 * Puts the instrumented functions in place. binaryen.js cannot replace a function's locals, so
 * every defined function is removed and added again, in the original order (the binary keeps
 * the order of the function list, and so stays the same for the same input); then the Asyncify
 * runtime is copied from the first chunk's module.
 */
function reassemble(module: binaryen.Module, order: readonly string[], instrumented: ReadonlyMap<string, InstrumentedFunction>, first: binaryen.Module): void {
  for (const name of order) {
    const info = binaryen.getFunctionInfo(module.getFunction(name));
    const replacement = instrumented.get(name) ?? { vars: [...(info.vars ?? [])], body: info.body };
    module.removeFunction(name);
    module.addFunction(name, info.params, info.results, replacement.vars, replacement.body);
  }
  copyRuntime(module, first);
}

/**
 * Copies the Asyncify runtime from a chunk's module: its two globals, the last ones of that
 * module (the instrumented bodies name them as that module does: they are unnamed, so they get
 * their index as a name when it is read back), and its five exported functions.
 */
function copyRuntime(module: binaryen.Module, first: binaryen.Module): void {
  const [own, theirs] = [module.getNumGlobals(), first.getNumGlobals()];
  if (theirs - own !== ASYNCIFY_GLOBALS) throw new Error(`chunked Asyncify: expected ${ASYNCIFY_GLOBALS} new globals, found ${theirs - own}`);
  for (let i = own; i < theirs; i++) {
    const info = binaryen.getGlobalInfo(first.getGlobalByIndex(i));
    if (module.getGlobal(info.name) !== 0) throw new Error(`chunked Asyncify: the module already has a global named ${info.name}`);
    module.addGlobal(info.name, info.type, info.mutable, module.copyExpression(info.init));
  }
  const exports = new Map<string, string>();
  for (let i = 0; i < first.getNumExports(); i++) {
    const info = binaryen.getExportInfo(first.getExportByIndex(i));
    if (info.kind === binaryen.ExternalFunction) exports.set(info.name, info.value);
  }
  for (const name of ASYNCIFY_FUNCTIONS) {
    const internal = exports.get(name);
    if (internal === undefined) throw new Error(`chunked Asyncify: the chunk does not export ${name}`);
    const info = binaryen.getFunctionInfo(first.getFunction(internal));
    module.addFunction(name, info.params, info.results, [...(info.vars ?? [])], module.copyExpression(info.body));
    module.addFunctionExport(name, name);
  }
}
