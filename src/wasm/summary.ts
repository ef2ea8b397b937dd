/**
 * One pass over every defined function, collecting what both the call graph and the fuel-check
 * placement need, so each function body is walked only once.
 */
import binaryen from 'binaryen';
import { forEachExpression } from './walk.js';

/** A function signature, as Binaryen's interned (params, results) type pair. */
export interface Signature {
  params: binaryen.Type;
  results: binaryen.Type;
}

export interface FunctionSummary {
  name: string;
  signature: Signature;
  /** Every loop in the body: each gets a fuel check at its header. */
  loops: binaryen.ExpressionRef[];
  /** Targets of direct calls (defined functions and imports alike). */
  directCalls: Set<string>;
  /** Signatures of call_indirect sites: each may reach any address-taken function of that type. */
  indirectCalls: Signature[];
  /** Functions whose address this body takes with ref.func (they become callable indirectly). */
  refFuncs: Set<string>;
  /** Expressions in the body: the measure of how much work instrumenting it is. */
  size: number;
}

/** Summarizes one defined function. Throws UnsupportedExpressionError from the walk. */
export function summarizeFunction(func: binaryen.FunctionRef): FunctionSummary {
  const info = binaryen.getFunctionInfo(func);
  const summary: FunctionSummary = {
    name: info.name,
    signature: { params: info.params, results: info.results },
    loops: [],
    directCalls: new Set(),
    indirectCalls: [],
    refFuncs: new Set(),
    size: 0,
  };
  forEachExpression(info.body, (expr) => record(summary, expr));
  return summary;
}

function record(summary: FunctionSummary, expr: binaryen.ExpressionRef): void {
  summary.size++;
  switch (binaryen.getExpressionId(expr)) {
    case binaryen.LoopId:
      summary.loops.push(expr);
      break;
    case binaryen.CallId:
      summary.directCalls.add((binaryen.getExpressionInfo(expr) as binaryen.CallInfo).target);
      break;
    case binaryen.CallIndirectId: {
      const info = binaryen.getExpressionInfo(expr) as unknown as Signature;
      summary.indirectCalls.push({ params: info.params, results: info.results });
      break;
    }
    case binaryen.RefFuncId:
      summary.refFuncs.add((binaryen.getExpressionInfo(expr) as binaryen.RefFuncInfo).func);
      break;
  }
}
