/**
 * Hides the Asyncify scratch pages from the program (see SCRATCH_PAGES in abi.ts): every
 * `memory.size` becomes `memory.size - SCRATCH_PAGES`, and every `memory.grow` reports the
 * program's old size, not the real one. The runtime grows the memory by SCRATCH_PAGES right after
 * instantiation, so the program sees exactly the memory it declared and the scratch region is
 * always the top of real memory. Newly grown pages of the program are the old scratch pages,
 * which the runtime keeps zeroed whenever program code runs.
 */
import binaryen from 'binaryen';
import { SCRATCH_PAGES } from './abi.js';
import { childSlotsOf } from './walk.js';

/** binaryen.js has these at run time; its index.d.ts does not declare them. */
const functions = (binaryen as unknown as { Function: { setBody(func: binaryen.FunctionRef, body: binaryen.ExpressionRef): void } }).Function;
const growDelta = (expr: binaryen.ExpressionRef): binaryen.ExpressionRef =>
  (binaryen.getExpressionInfo(expr) as unknown as { delta: binaryen.ExpressionRef }).delta;

const SIZE_FUNC = 'popcorn$memory_size';
const GROW_FUNC = 'popcorn$memory_grow';

/** Rewrites memory.size and memory.grow in every defined function. Returns how many. */
export function hideScratchPages(module: binaryen.Module): number {
  let rewritten = 0;
  for (let i = 0; i < module.getNumFunctions(); i++) {
    const func = module.getFunctionByIndex(i);
    const info = binaryen.getFunctionInfo(func);
    if (info.module || info.body === 0) continue;
    rewritten += rewriteFunction(module, func, info.body);
  }
  if (rewritten > 0) addRuntime(module);
  return rewritten;
}

function isMemoryOp(expr: binaryen.ExpressionRef): boolean {
  const id = binaryen.getExpressionId(expr);
  return id === binaryen.MemorySizeId || id === binaryen.MemoryGrowId;
}

/** A call to the hidden-scratch version of a memory.size or memory.grow. */
function replacement(module: binaryen.Module, expr: binaryen.ExpressionRef): binaryen.ExpressionRef {
  if (binaryen.getExpressionId(expr) === binaryen.MemorySizeId) return module.call(SIZE_FUNC, [], binaryen.i32);
  return module.call(GROW_FUNC, [growDelta(expr)], binaryen.i32);
}

function rewriteFunction(module: binaryen.Module, func: binaryen.FunctionRef, body: binaryen.ExpressionRef): number {
  let count = 0;
  if (isMemoryOp(body)) {
    functions.setBody(func, replacement(module, body));
    body = binaryen.getFunctionInfo(func).body;
    count++;
  }
  // Iterative walk (deep nesting would overflow JS recursion), replacing children in place.
  const stack = [body];
  for (let expr = stack.pop(); expr !== undefined; expr = stack.pop()) {
    for (const slot of childSlotsOf(expr)) {
      if (isMemoryOp(slot.child)) {
        const call = replacement(module, slot.child);
        slot.replace(call);
        stack.push(call);
        count++;
      } else {
        stack.push(slot.child);
      }
    }
  }
  return count;
}

/** The two helpers: sizes in the program's view, -1 from a failed grow passed through. */
function addRuntime(module: binaryen.Module): void {
  const pages = module.i32.const(SCRATCH_PAGES);
  module.addFunction(SIZE_FUNC, binaryen.none, binaryen.i32, [], module.i32.sub(module.memory.size(), pages));
  const old = module.local.get(1, binaryen.i32);
  module.addFunction(
    GROW_FUNC,
    binaryen.i32,
    binaryen.i32,
    [binaryen.i32],
    module.block(null, [
      module.local.set(1, module.memory.grow(module.local.get(0, binaryen.i32))),
      module.if(
        module.i32.eq(old, module.i32.const(-1)),
        module.i32.const(-1),
        module.i32.sub(module.local.get(1, binaryen.i32), module.i32.const(SCRATCH_PAGES)),
      ),
    ], binaryen.i32),
  );
}
