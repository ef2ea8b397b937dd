/**
 * Fuel checks: the preemption points of an instrumented module. A check decrements the fuel
 * counter and calls `popcorn_rt.preempt` once it drops below zero. They sit at every loop header
 * and at the entry of enough recursive functions that every cycle of calls passes one
 * (callgraph.ts), so no code runs unbounded without passing a check. `preempt` either refills the
 * fuel or unwinds the process (Asyncify), which is why the checks go in before the Asyncify pass.
 *
 * The counter lives in an exported global, but a function with loops keeps it in a local while
 * it runs, so that the check in a hot loop is a register decrement and a branch (a global is a
 * load and a store every iteration, ≈ 30–50 % on tight loops). The local is loaded from the
 * global at entry and written back before every call that may use the counter (fuelTouching in
 * callgraph.ts), at every return and at the end; it is reloaded after such calls. Functions with
 * only an entry check use the global directly: they are small and call much, so a local would
 * cost more syncs than it saves.
 */
import binaryen from 'binaryen';
import { FUEL_EXPORT, PREEMPT_IMPORT, RUNTIME_MODULE } from './abi.js';
import type { FunctionSummary } from './summary.js';
import { childSlotsOf, forEachExpression, type ChildSlot } from './walk.js';

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
  Block: { getName(block: Expr): string | null; setName(block: Expr, name: string): void };
  Break: { getName(br: Expr): string; setName(br: Expr, name: string): void };
  Switch: {
    getNames(sw: Expr): string[];
    setNames(sw: Expr, names: string[]): void;
    getDefaultName(sw: Expr): string;
    setDefaultName(sw: Expr, name: string): void;
  };
  LocalGet: { getIndex(get: Expr): number; setIndex(get: Expr, index: number): void };
  LocalSet: { getIndex(set: Expr): number; setIndex(set: Expr, index: number): void };
  Call: { setOperandAt(call: Expr, index: number, operand: Expr): void; setTarget(call: Expr, target: string): void };
  CallIndirect: { setOperandAt(call: Expr, index: number, operand: Expr): void; setTarget(call: Expr, target: Expr): void };
  _BinaryenFunctionAddVar(func: binaryen.FunctionRef, type: binaryen.Type): number;
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

/**
 * Inserts the checks: at every loop header, and at the entry of the functions in `entryChecked`.
 * `touching` are the functions that may change the counter (calls to them sync the local).
 */
export function addFuelChecks(
  module: binaryen.Module,
  summaries: readonly FunctionSummary[],
  entryChecked: ReadonlySet<string>,
  touching: ReadonlySet<string>,
): FuelCheckCounts {
  const counts: FuelCheckCounts = { loops: 0, entries: 0 };
  const labels = new LabelMaker();
  for (const summary of summaries) {
    const func = module.getFunction(summary.name);
    const entry = entryChecked.has(summary.name);
    if (summary.loops.length > 0) {
      new LocalFuel(module, func, labels, touching).instrument(summary.loops, entry);
    } else if (entry) {
      checkEntryWithGlobal(module, func);
    }
    counts.loops += summary.loops.length;
    if (entry) counts.entries++;
  }
  return counts;
}

/** Loop-free self-recursive functions up to this many expressions are unrolled… */
const UNROLL_MAX_EXPRESSIONS = 400;
/** …by up to this many levels, as long as the unrolled body stays under this many expressions. */
const UNROLL_MAX_LEVELS = 3;
const UNROLLED_MAX_EXPRESSIONS = 1600;

/**
 * Cuts the entry checks and the calls of small self-recursive functions without loops (fib,
 * tree walks): each self-call of `f` is replaced by a copy of `f`'s body (inlined: arguments go
 * to fresh locals, `return` becomes a branch out of the copy), and so on for the self-calls in
 * the copies, up to UNROLL_MAX_LEVELS deep; the self-calls left in the innermost copies stay
 * calls to `f`. A call of `f` then runs up to four levels of the recursion for one entry check
 * and one call, and every cycle still passes that check. Fewer calls matter twice: on a
 * call-bound function an entry check costs as much as the call, and Asyncify adds its
 * bookkeeping to every call that may unwind. On fib (same process, node:wasi = 1): an unchecked
 * twin called in place of the copy ≈ 2.0×, one level of inlining ≈ 1.4×, two ≈ 1.0–1.1×, three
 * ≈ 0.85–1.05×.
 * A copy runs at most once per call of `f` (no loops), so its fresh locals start at zero as the
 * originals do. Returns the names of the functions unrolled.
 */
export function unrollSelfRecursion(
  module: binaryen.Module,
  summaries: readonly FunctionSummary[],
  entryChecked: ReadonlySet<string>,
): string[] {
  const unrolled: string[] = [];
  const labels = new LabelMaker();
  for (const summary of summaries) {
    const name = summary.name;
    if (!entryChecked.has(name) || summary.loops.length > 0 || !summary.directCalls.has(name)) continue;
    const func = module.getFunction(name);
    const info = binaryen.getFunctionInfo(func);
    const size = countExpressions(info.body);
    if (size > UNROLL_MAX_EXPRESSIONS) continue;
    const localTypes = [...binaryen.expandType(info.params), ...(info.vars ?? [])];
    const pristine = module.copyExpression(info.body);
    let [root, total, levels] = [info.body, size, 0];
    for (; levels < UNROLL_MAX_LEVELS; levels++) {
      const sites = selfCallSlots(root, name);
      if (sites.length === 0 || total + sites.length * size > UNROLLED_MAX_EXPRESSIONS) break;
      total += sites.length * size;
      // Innermost first: a replacement keeps the call's operands, so outer slots stay valid.
      for (const slot of sites.reverse()) {
        const base = localTypes.map((type) => accessors._BinaryenFunctionAddVar(func, type))[0] ?? 0;
        const call = binaryen.getExpressionInfo(slot.child) as binaryen.CallInfo;
        const exit = labels.make('inline');
        const copy = inlinedCopy(module, module.copyExpression(pristine), base, exit);
        const args = call.operands.map((operand, i) => module.local.set(base + i, operand));
        const block = module.block(exit, [...args, copy], info.results);
        if (slot.child === root) root = block;
        else slot.replace(block);
      }
    }
    if (levels === 0) continue;
    accessors.Function.setBody(func, root);
    unrolled.push(name);
  }
  return unrolled;
}

function countExpressions(root: Expr): number {
  let size = 0;
  forEachExpression(root, () => void size++);
  return size;
}

/** The slots of the direct calls to `target` under `body` (outermost first). */
function selfCallSlots(body: Expr, target: string): ChildSlot[] {
  const found: ChildSlot[] = [];
  const stack: ChildSlot[] = [{ child: body, replace: () => undefined }];
  for (let slot = stack.pop(); slot !== undefined; slot = stack.pop()) {
    const expr = slot.child;
    if (
      binaryen.getExpressionId(expr) === binaryen.CallId &&
      binaryen.getExpressionType(expr) !== binaryen.unreachable &&
      (binaryen.getExpressionInfo(expr) as binaryen.CallInfo).target === target
    ) {
      found.push(slot);
    }
    stack.push(...childSlotsOf(expr));
  }
  return found;
}

/**
 * Makes `copy` (a copy of a function body) fit inside another instance of that function: local i
 * becomes local base + i, labels get fresh names (Binaryen wants them unique per function) and
 * `return X` becomes `br $exit X`. Returns the (possibly replaced) root.
 */
function inlinedCopy(module: binaryen.Module, copy: Expr, base: number, exit: string): Expr {
  const renamed = new Map<string, string>();
  const rename = (label: string): string => {
    let fresh = renamed.get(label);
    if (fresh === undefined) renamed.set(label, (fresh = `${label}$${exit}`));
    return fresh;
  };
  let root = copy;
  const returns: ChildSlot[] = [];
  const stack: ChildSlot[] = [{ child: copy, replace: (e) => (root = e) }];
  for (let slot = stack.pop(); slot !== undefined; slot = stack.pop()) {
    const expr = slot.child;
    switch (binaryen.getExpressionId(expr)) {
      case binaryen.LocalGetId:
        accessors.LocalGet.setIndex(expr, base + accessors.LocalGet.getIndex(expr));
        break;
      case binaryen.LocalSetId:
        accessors.LocalSet.setIndex(expr, base + accessors.LocalSet.getIndex(expr));
        break;
      case binaryen.BlockId: {
        const label = accessors.Block.getName(expr);
        if (label) accessors.Block.setName(expr, rename(label));
        break;
      }
      case binaryen.BreakId:
        accessors.Break.setName(expr, rename(accessors.Break.getName(expr)));
        break;
      case binaryen.SwitchId:
        accessors.Switch.setNames(expr, accessors.Switch.getNames(expr).map(rename));
        accessors.Switch.setDefaultName(expr, rename(accessors.Switch.getDefaultName(expr)));
        break;
      case binaryen.ReturnId:
        returns.push(slot);
        break;
    }
    stack.push(...childSlotsOf(expr));
  }
  // Innermost first, as above.
  for (const slot of returns.reverse()) {
    const value = (binaryen.getExpressionInfo(slot.child) as binaryen.ReturnInfo).value;
    slot.replace(module.br(exit, 0, value === 0 ? undefined : value));
  }
  return root;
}

const preempt = (module: binaryen.Module): Expr => module.call(PREEMPT_FUNC, [], binaryen.none);
const fuelGlobal = (module: binaryen.Module): Expr => module.global.get(FUEL_GLOBAL, binaryen.i32);

/** `if ((fuel = fuel - 1) < 0) preempt(); body`, for a function that keeps no local counter. */
function checkEntryWithGlobal(module: binaryen.Module, func: binaryen.FunctionRef): void {
  const m = module;
  const body = binaryen.getFunctionInfo(func).body;
  const next = accessors._BinaryenFunctionAddVar(func, binaryen.i32);
  const burn = m.global.set(FUEL_GLOBAL, m.local.tee(next, m.i32.sub(fuelGlobal(m), m.i32.const(1)), binaryen.i32));
  const check = m.if(m.i32.lt_s(m.local.get(next, binaryen.i32), m.i32.const(0)), preempt(m));
  accessors.Function.setBody(func, m.block(null, [burn, check, body], binaryen.getExpressionType(body)));
}

/** Fresh label names, unique across the module. */
class LabelMaker {
  private next = 0;
  make(role: string): string {
    return `popcorn$${role}${this.next++}`;
  }
}

/** Rewrites one function with loops so that it keeps the counter in a local (see the top). */
class LocalFuel {
  private readonly resultType: binaryen.Type;
  private readonly fuel: number;
  private readonly exit: string;
  /** One local per type for call results: each is read right after it is set. */
  private readonly results = new Map<binaryen.Type, number>();

  constructor(
    private readonly module: binaryen.Module,
    private readonly func: binaryen.FunctionRef,
    private readonly labels: LabelMaker,
    private readonly touching: ReadonlySet<string>,
  ) {
    const info = binaryen.getFunctionInfo(func);
    this.resultType = info.results;
    this.fuel = this.addLocal(binaryen.i32);
    this.exit = labels.make('return');
  }

  instrument(loops: readonly Expr[], entryCheck: boolean): void {
    const m = this.module;
    let body = binaryen.getFunctionInfo(this.func).body;
    // Calls and returns first: the loop rewrite below moves loop bodies, which would invalidate
    // slots that point into a loop node.
    body = this.rewriteCallsAndReturns(body);
    for (const loop of loops) this.checkLoop(loop);
    const prologue = [m.local.set(this.fuel, fuelGlobal(m))];
    if (entryCheck) prologue.push(m.if(this.burn(), this.coldPreempt()));
    const writeBack = m.global.set(FUEL_GLOBAL, this.get());
    const inner = m.block(this.exit, [body], this.resultType);
    let wrapped: Expr;
    if (this.resultType === binaryen.none) {
      wrapped = m.block(null, [...prologue, inner, writeBack], binaryen.none);
    } else {
      const result = this.addLocal(this.resultType);
      wrapped = m.block(null, [...prologue, m.local.set(result, inner), writeBack, m.local.get(result, this.resultType)], this.resultType);
    }
    accessors.Function.setBody(this.func, wrapped);
  }

  private addLocal(type: binaryen.Type): number {
    return accessors._BinaryenFunctionAddVar(this.func, type);
  }

  private resultLocal(type: binaryen.Type): number {
    let local = this.results.get(type);
    if (local === undefined) this.results.set(type, (local = this.addLocal(type)));
    return local;
  }

  private get(): Expr {
    return this.module.local.get(this.fuel, binaryen.i32);
  }

  /** `(fuel = fuel - 1) < 0` */
  private burn(): Expr {
    const m = this.module;
    return m.i32.lt_s(m.local.tee(this.fuel, m.i32.sub(this.get(), m.i32.const(1)), binaryen.i32), m.i32.const(0));
  }

  /** Write back, preempt, reload. */
  private coldPreempt(): Expr {
    const m = this.module;
    return m.block(null, [m.global.set(FUEL_GLOBAL, this.get()), preempt(m), m.local.set(this.fuel, fuelGlobal(m))], binaryen.none);
  }

  /** Returns the (possibly replaced) root. */
  private rewriteCallsAndReturns(body: Expr): Expr {
    let root = body;
    const rootSlot: ChildSlot = { child: body, replace: (e) => (root = e) };
    const stack: ChildSlot[] = [rootSlot];
    const edits: { slot: ChildSlot; kind: 'call' | 'return' }[] = [];
    for (let slot = stack.pop(); slot !== undefined; slot = stack.pop()) {
      const expr = slot.child;
      const id = binaryen.getExpressionId(expr);
      if (id === binaryen.ReturnId) edits.push({ slot, kind: 'return' });
      else if (this.needsSync(expr, id)) edits.push({ slot, kind: 'call' });
      stack.push(...childSlotsOf(expr));
    }
    // Innermost first: a rewrite keeps the node it wraps, so outer slots stay valid.
    for (const { slot, kind } of edits.reverse()) {
      slot.replace(kind === 'return' ? this.returnToExit(slot.child) : this.syncCall(slot.child));
    }
    return root;
  }

  private needsSync(expr: Expr, id: number): boolean {
    if (binaryen.getExpressionType(expr) === binaryen.unreachable) return false; // never made
    if (id === binaryen.CallIndirectId) return true;
    if (id !== binaryen.CallId) return false;
    const target = (binaryen.getExpressionInfo(expr) as binaryen.CallInfo).target;
    return this.touching.has(target);
  }

  /** `return X` becomes `br $exit X`, so the write-back at the end runs. */
  private returnToExit(ret: Expr): Expr {
    const value = (binaryen.getExpressionInfo(ret) as binaryen.ReturnInfo).value;
    return this.module.br(this.exit, 0, value === 0 ? undefined : value);
  }

  /**
   * `global = fuel; [result =] call; fuel = global; [result]`. The write-back must come after
   * the operands: if one of them contains a loop (whose checks move the local), the operands
   * are first evaluated into locals.
   */
  private syncCall(call: Expr): Expr {
    const m = this.module;
    const pre: Expr[] = [];
    if (containsLoop(call)) pre.push(...this.spillOperands(call));
    pre.push(m.global.set(FUEL_GLOBAL, this.get()));
    const reload = m.local.set(this.fuel, fuelGlobal(m));
    const type = binaryen.getExpressionType(call);
    if (type === binaryen.none) return m.block(null, [...pre, call, reload], binaryen.none);
    const result = this.resultLocal(type);
    return m.block(null, [...pre, m.local.set(result, call), reload, m.local.get(result, type)], type);
  }

  private spillOperands(call: Expr): Expr[] {
    const m = this.module;
    const isIndirect = binaryen.getExpressionId(call) === binaryen.CallIndirectId;
    const info = binaryen.getExpressionInfo(call) as unknown as { operands: Expr[]; target: Expr };
    const operands: { value: Expr; put: (e: Expr) => void }[] = info.operands.map((value, i) => ({
      value,
      put: (e: Expr) => (isIndirect ? accessors.CallIndirect : accessors.Call).setOperandAt(call, i, e),
    }));
    if (isIndirect) operands.push({ value: info.target, put: (e) => accessors.CallIndirect.setTarget(call, e) });
    const spills: Expr[] = [];
    for (const { value, put } of operands) {
      // Fresh locals: a nested call may spill too, while these still hold their values.
      const type = binaryen.getExpressionType(value);
      const local = this.addLocal(type);
      spills.push(m.local.set(local, value));
      put(m.local.get(local, type));
    }
    return spills;
  }

  /**
   * Puts a check at the header of `loop $l (body)`, keeping the call to preempt *out* of the loop:
   *
   *     loop $retry                        ;; the original loop node, renamed
   *       block $exit
   *         block $cold
   *           br $exit (loop $l (br_if $cold (fuel = fuel - 1) < 0) body)
   *         global = fuel; call preempt; fuel = global   ;; cold path,
   *         br $retry                                     ;; then re-enter $l from its header
   *
   * A loop that contains a call is expensive twice over: V8 does not unroll it and spills around
   * the call, and Asyncify guards every iteration for a rewind that could land inside it. With
   * the call outside, a hot loop pays only for the decrement and the branch.
   * The original node stays in place (its parent is not known here), so it becomes $retry.
   * Re-entering $l runs its check again: that is why preempt must refill at least 1 (abi.ts).
   */
  private checkLoop(loop: Expr): void {
    const m = this.module;
    const type = binaryen.getExpressionType(loop);
    const [retry, exit, cold] = [this.labels.make('retry'), this.labels.make('exit'), this.labels.make('cold')];
    const inner = m.loop(accessors.Loop.getName(loop), m.block(null, [m.br(cold, this.burn()), accessors.Loop.getBody(loop)], type));
    const coldPath = [this.coldPreempt(), m.br(retry)];
    let body: Expr;
    if (type === binaryen.unreachable) {
      // The loop never falls through: nothing to exit with; the block keeps the type unreachable.
      body = m.block(null, [m.block(cold, [inner], binaryen.none), ...coldPath], binaryen.unreachable);
    } else if (type === binaryen.none) {
      body = m.block(exit, [m.block(cold, [inner, m.br(exit)], binaryen.none), ...coldPath], binaryen.none);
    } else {
      body = m.block(exit, [m.block(cold, [m.br(exit, 0, inner)], binaryen.none), ...coldPath], type);
    }
    accessors.Loop.setName(loop, retry);
    accessors.Loop.setBody(loop, body);
  }
}

function containsLoop(call: Expr): boolean {
  let found = false;
  forEachExpression(call, (expr) => {
    if (binaryen.getExpressionId(expr) === binaryen.LoopId) found = true;
  });
  return found;
}
