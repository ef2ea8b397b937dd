/**
 * Generic traversal of Binaryen IR. Binaryen's JS API has no child iterator, so the children of
 * every expression kind popcorn accepts are listed here by field name of
 * `binaryen.getExpressionInfo`. A kind that is not listed is refused, never skipped: a skipped
 * subtree could hide a loop, and a loop without a fuel check can hold a kernel forever.
 */
import binaryen from 'binaryen';

type ExpressionRef = binaryen.ExpressionRef;

/** Kinds that have no child expressions (several have no getters in binaryen.js at all). */
const LEAVES: ReadonlySet<number> = new Set([
  binaryen.NopId,
  binaryen.UnreachableId,
  binaryen.ConstId,
  binaryen.LocalGetId,
  binaryen.GlobalGetId,
  binaryen.MemorySizeId,
  binaryen.AtomicFenceId,
  binaryen.DataDropId,
  binaryen.RefNullId,
  binaryen.RefFuncId,
  binaryen.TableSizeId,
]);

/** Child fields, in evaluation order, of every kind with children that popcorn accepts. */
const CHILD_FIELDS: ReadonlyMap<number, readonly string[]> = new Map<number, readonly string[]>([
  [binaryen.BlockId, ['children']],
  [binaryen.IfId, ['condition', 'ifTrue', 'ifFalse']],
  [binaryen.LoopId, ['body']],
  [binaryen.BreakId, ['value', 'condition']],
  [binaryen.SwitchId, ['value', 'condition']],
  [binaryen.CallId, ['operands']],
  [binaryen.CallIndirectId, ['operands', 'target']],
  [binaryen.LocalSetId, ['value']],
  [binaryen.GlobalSetId, ['value']],
  [binaryen.LoadId, ['ptr']],
  [binaryen.StoreId, ['ptr', 'value']],
  [binaryen.UnaryId, ['value']],
  [binaryen.BinaryId, ['left', 'right']],
  [binaryen.SelectId, ['ifTrue', 'ifFalse', 'condition']],
  [binaryen.DropId, ['value']],
  [binaryen.ReturnId, ['value']],
  [binaryen.MemoryGrowId, ['delta']],
  [binaryen.AtomicRMWId, ['ptr', 'value']],
  [binaryen.AtomicCmpxchgId, ['ptr', 'expected', 'replacement']],
  [binaryen.AtomicWaitId, ['ptr', 'expected', 'timeout']],
  [binaryen.AtomicNotifyId, ['ptr', 'notifyCount']],
  [binaryen.SIMDExtractId, ['vec']],
  [binaryen.SIMDReplaceId, ['vec', 'value']],
  [binaryen.SIMDShuffleId, ['left', 'right']],
  [binaryen.SIMDTernaryId, ['a', 'b', 'c']],
  [binaryen.SIMDShiftId, ['vec', 'shift']],
  [binaryen.SIMDLoadId, ['ptr']],
  [binaryen.SIMDLoadStoreLaneId, ['ptr', 'vec']],
  [binaryen.MemoryInitId, ['dest', 'offset', 'size']],
  [binaryen.MemoryCopyId, ['dest', 'source', 'size']],
  [binaryen.MemoryFillId, ['dest', 'value', 'size']],
  [binaryen.RefIsNullId, ['value']],
  [binaryen.RefEqId, ['left', 'right']],
  [binaryen.TableGetId, ['index']],
  [binaryen.TableSetId, ['index', 'value']],
  [binaryen.TableGrowId, ['value', 'delta']],
  [binaryen.TupleMakeId, ['operands']],
  [binaryen.TupleExtractId, ['tuple']],
]);

/** Binaryen's name of an expression kind, for error messages ("TableFillId"). */
export function kindName(id: number): string {
  return KIND_NAMES.get(id) ?? `expression kind ${id}`;
}

/** Expression kind → name, built once: childSlotsOf needs it for every expression it visits. */
const KIND_NAMES: ReadonlyMap<number, string> = (() => {
  const table = binaryen as unknown as Record<string, unknown>;
  const names = new Map<number, string>();
  for (const key of Object.keys(table)) {
    const id = table[key];
    if (key.endsWith('Id') && typeof id === 'number' && !names.has(id)) names.set(id, key);
  }
  return names;
})();

/** An expression kind the walker does not know; it may contain code that needs fuel checks. */
export class UnsupportedExpressionError extends Error {
  constructor(readonly kind: number) {
    super(`unsupported instruction (${kindName(kind)})`);
  }
}

/** The direct children of `expr`. Throws UnsupportedExpressionError for an unknown kind. */
export function childrenOf(expr: ExpressionRef): ExpressionRef[] {
  const id = binaryen.getExpressionId(expr);
  if (LEAVES.has(id)) return [];
  const fields = CHILD_FIELDS.get(id);
  if (fields === undefined) throw new UnsupportedExpressionError(id);
  const info = binaryen.getExpressionInfo(expr) as unknown as Record<string, unknown>;
  const children: ExpressionRef[] = [];
  for (const field of fields) {
    const value = info[field];
    // An absent optional child (a br without a value, an if without else) reads as 0.
    if (Array.isArray(value)) children.push(...(value as ExpressionRef[]).filter((e) => e !== 0));
    else if (typeof value === 'number' && value !== 0) children.push(value);
  }
  return children;
}

/**
 * Calls `visit` on `root` and every expression below it. Iterative, because compiled code nests
 * deeply (a big C `switch` becomes hundreds of nested blocks) and JS recursion would overflow.
 */
export function forEachExpression(root: ExpressionRef, visit: (expr: ExpressionRef) => void): void {
  const stack: ExpressionRef[] = [root];
  for (let expr = stack.pop(); expr !== undefined; expr = stack.pop()) {
    visit(expr);
    stack.push(...childrenOf(expr));
  }
}

/** A child position of an expression: the child, and how to put another expression there. */
export interface ChildSlot {
  child: ExpressionRef;
  replace(expr: ExpressionRef): void;
}

type Setter = (parent: ExpressionRef, ...args: number[]) => void;

/**
 * The child positions of `expr`, for rewrites that replace an expression by another. Setters
 * follow binaryen.js's naming: field `value` of a Drop is set by `binaryen.Drop.setValue`, item i
 * of `children`/`operands` by `setChildAt`/`setOperandAt`.
 */
export function childSlotsOf(expr: ExpressionRef): ChildSlot[] {
  const id = binaryen.getExpressionId(expr);
  if (LEAVES.has(id)) return [];
  const fields = CHILD_FIELDS.get(id);
  if (fields === undefined) throw new UnsupportedExpressionError(id);
  const wrapper = (binaryen as unknown as Record<string, Record<string, Setter>>)[kindName(id).replace(/Id$/, '')];
  const info = binaryen.getExpressionInfo(expr) as unknown as Record<string, unknown>;
  const slots: ChildSlot[] = [];
  for (const field of fields) {
    const value = info[field];
    if (Array.isArray(value)) {
      const setAt = wrapper[field === 'children' ? 'setChildAt' : 'setOperandAt'];
      (value as ExpressionRef[]).forEach((child, i) => {
        if (child !== 0) slots.push({ child, replace: (e) => setAt(expr, i, e) });
      });
    } else if (typeof value === 'number' && value !== 0) {
      const set = wrapper[`set${field[0].toUpperCase()}${field.slice(1)}`];
      slots.push({ child: value, replace: (e) => set(expr, e) });
    }
  }
  return slots;
}
