/**
 * Fuel checks: the preemption points of an instrumented module. A check decrements the exported
 * fuel counter and calls `popcorn_rt.preempt` once it drops below zero. They sit at every loop
 * header and at the entry of every function that may recurse, so no code runs unbounded without
 * passing one. `preempt` either refills the fuel or unwinds the process (Asyncify), which is why
 * the checks go in before the Asyncify pass.
 */
import binaryen from 'binaryen';
import { FUEL_EXPORT, PREEMPT_IMPORT, RUNTIME_MODULE } from './abi.js';
import type { FunctionSummary } from './summary.js';

type Expr = binaryen.ExpressionRef;

/** binaryen.js accessors that its index.d.ts leaves out. */
interface BodyAccessors {
  Loop: {
    getName(loop: Expr): string;
    setName(loop: Expr, name: string): void;
    getBody(loop: Expr): Expr;
    setBody(loop: Expr, body: Expr): void;
  };
  Function: { setBody(func: binaryen.FunctionRef, body: Expr): void };
}
const accessors = binaryen as unknown as BodyAccessors;

/** Internal names; '$' cannot come from a C identifier, so they do not clash with guest names. */
const FUEL_GLOBAL = 'popcorn$fuel';
const PREEMPT_FUNC = 'popcorn$preempt';

/** The asyncify-imports entry for the preempt import. */
export const PREEMPT_QUALIFIED = `${RUNTIME_MODULE}.${PREEMPT_IMPORT}`;

export interface FuelCheckCounts {
  loops: number;
  entries: number;
}

/** Adds the fuel global (exported, starting at 0: the runtime sets it) and the preempt import. */
export function addFuelRuntime(module: binaryen.Module): void {
  module.addGlobal(FUEL_GLOBAL, binaryen.i32, true, module.i32.const(0));
  module.addGlobalExport(FUEL_GLOBAL, FUEL_EXPORT);
  module.addFunctionImport(PREEMPT_FUNC, RUNTIME_MODULE, PREEMPT_IMPORT, binaryen.none, binaryen.none);
}

/** `fuel = fuel - 1; fuel < 0` */
function burnFuel(module: binaryen.Module): Expr {
  const fuel = (): Expr => module.global.get(FUEL_GLOBAL, binaryen.i32);
  return module.block(
    null,
    [module.global.set(FUEL_GLOBAL, module.i32.sub(fuel(), module.i32.const(1))), module.i32.lt_s(fuel(), module.i32.const(0))],
    binaryen.i32,
  );
}

const preempt = (module: binaryen.Module): Expr => module.call(PREEMPT_FUNC, [], binaryen.none);

/** Inserts the checks; returns how many of each kind. */
export function addFuelChecks(
  module: binaryen.Module,
  summaries: readonly FunctionSummary[],
  recursive: ReadonlySet<string>,
): FuelCheckCounts {
  const counts: FuelCheckCounts = { loops: 0, entries: 0 };
  const labels = new LabelMaker();
  for (const summary of summaries) {
    for (const loop of summary.loops) {
      checkLoop(module, loop, labels);
      counts.loops++;
    }
    if (recursive.has(summary.name)) {
      checkEntry(module, module.getFunction(summary.name));
      counts.entries++;
    }
  }
  return counts;
}

/** `if (burnFuel) preempt(); body`, typed like the body it replaces. */
function checkEntry(module: binaryen.Module, func: binaryen.FunctionRef): void {
  const body = binaryen.getFunctionInfo(func).body;
  const check = module.if(burnFuel(module), preempt(module));
  accessors.Function.setBody(func, module.block(null, [check, body], binaryen.getExpressionType(body)));
}

/** Fresh label names, unique across the module. */
class LabelMaker {
  private next = 0;
  make(role: string): string {
    return `popcorn$${role}${this.next++}`;
  }
}

/**
 * Puts a check at the header of `loop $l (body)`, keeping the call to preempt *out* of the loop:
 *
 *     loop $retry                        ;; the original loop node, renamed
 *       block $exit
 *         block $cold
 *           br $exit (loop $l (br_if $cold (burnFuel)) body)
 *         call preempt                   ;; cold path, then re-enter $l from its header
 *         br $retry
 *
 * A loop that contains a call is expensive twice over: V8 does not unroll it and spills around
 * the call, and Asyncify guards every iteration for a rewind that could land inside it. With
 * the call outside, a hot loop pays only for the decrement and the branch.
 * The original node stays in place (its parent is not known here), so it becomes $retry.
 * Re-entering $l runs its check again: that is why preempt must refill at least 1 (abi.ts).
 */
function checkLoop(module: binaryen.Module, loop: Expr, labels: LabelMaker): void {
  const type = binaryen.getExpressionType(loop);
  const [retry, exit, cold] = [labels.make('retry'), labels.make('exit'), labels.make('cold')];
  const inner = module.loop(
    accessors.Loop.getName(loop),
    module.block(null, [module.br(cold, burnFuel(module)), accessors.Loop.getBody(loop)], type),
  );
  const coldPath = [preempt(module), module.br(retry)];
  let body: Expr;
  if (type === binaryen.unreachable) {
    // The loop never falls through: nothing to exit with; the block keeps the type unreachable.
    body = module.block(null, [module.block(cold, [inner], binaryen.none), ...coldPath], binaryen.unreachable);
  } else if (type === binaryen.none) {
    body = module.block(exit, [module.block(cold, [inner, module.br(exit)], binaryen.none), ...coldPath], binaryen.none);
  } else {
    body = module.block(exit, [module.block(cold, [module.br(exit, 0, inner)], binaryen.none), ...coldPath], type);
  }
  accessors.Loop.setName(loop, retry);
  accessors.Loop.setBody(loop, body);
}
