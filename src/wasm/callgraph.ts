/**
 * The call graph, for placing entry checks. Loops get fuel checks at their headers; recursion
 * is the only other way wasm code can run unbounded, so every cycle of the call graph passes a
 * check at the entry of one of its functions. Checking every function instead costs ≈ 2.7×
 * (DESIGN.md).
 */
import binaryen from 'binaryen';
import type { FunctionSummary, Signature } from './summary.js';
import { forEachExpression } from './walk.js';

/**
 * Functions that can be called through a table or a function reference: those in element
 * segments and those named by a ref.func anywhere (a body, or a global's initializer).
 */
export function addressTakenFunctions(
  module: binaryen.Module,
  summaries: readonly FunctionSummary[],
): Set<string> {
  const taken = new Set<string>();
  for (let i = 0; i < module.getNumElementSegments(); i++) {
    const segment = binaryen.getElementSegmentInfo(module.getElementSegmentByIndex(i));
    for (const name of segment.data) taken.add(name);
  }
  for (const summary of summaries) for (const name of summary.refFuncs) taken.add(name);
  for (let i = 0; i < module.getNumGlobals(); i++) {
    const init = binaryen.getGlobalInfo(module.getGlobalByIndex(i)).init;
    if (init === 0) continue; // an imported global has no initializer
    forEachExpression(init, (expr) => {
      if (binaryen.getExpressionId(expr) === binaryen.RefFuncId) {
        taken.add((binaryen.getExpressionInfo(expr) as binaryen.RefFuncInfo).func);
      }
    });
  }
  return taken;
}

const signatureKey = (s: Signature): string => `${s.params}:${s.results}`;

/**
 * The call graph over defined functions. A call_indirect may reach, conservatively, every
 * address-taken function whose signature matches: the table's contents can change at run time.
 * Calls to imports end here: the runtime never re-enters the guest from inside an import.
 */
export function callGraph(summaries: readonly FunctionSummary[], addressTaken: ReadonlySet<string>): Map<string, string[]> {
  const defined = new Set(summaries.map((s) => s.name));
  const bySignature = new Map<string, string[]>();
  for (const s of summaries) {
    if (!addressTaken.has(s.name)) continue;
    const key = signatureKey(s.signature);
    bySignature.set(key, [...(bySignature.get(key) ?? []), s.name]);
  }
  const graph = new Map<string, string[]>();
  for (const s of summaries) {
    const callees = new Set([...s.directCalls].filter((name) => defined.has(name)));
    for (const sig of s.indirectCalls) {
      for (const name of bySignature.get(signatureKey(sig)) ?? []) callees.add(name);
    }
    graph.set(s.name, [...callees]);
  }
  return graph;
}

function isCycle(graph: ReadonlyMap<string, readonly string[]>, component: readonly string[]): boolean {
  const [only] = component;
  return component.length > 1 || (only !== undefined && (graph.get(only)?.includes(only) ?? false));
}

/**
 * A feedback vertex set: functions such that every cycle of the call graph passes through one of
 * them. A check at the entry of each is enough to bound recursion (every path of calls longer
 * than the number of functions passes a check), and costs less than a check in every recursive
 * function: only one per cycle. Greedy: a self-recursive function is always in; otherwise the
 * function with the most calls in and out within its component, then the rest is split again.
 */
export function feedbackVertexSet(graph: ReadonlyMap<string, readonly string[]>): Set<string> {
  const chosen = new Set<string>();
  const pending = stronglyConnectedComponents(graph).filter((c) => isCycle(graph, c));
  for (let component = pending.pop(); component !== undefined; component = pending.pop()) {
    const members = new Set(component);
    const selfLoops = component.filter((name) => graph.get(name)?.includes(name));
    if (selfLoops.length > 0) {
      for (const name of selfLoops) {
        chosen.add(name);
        members.delete(name);
      }
    } else {
      const inDegree = new Map<string, number>();
      for (const name of members) {
        for (const callee of graph.get(name) ?? []) if (members.has(callee)) inDegree.set(callee, (inDegree.get(callee) ?? 0) + 1);
      }
      let best = component[0]!;
      let bestScore = -1;
      for (const name of component) {
        const out = (graph.get(name) ?? []).filter((callee) => members.has(callee)).length;
        const score = out * (inDegree.get(name) ?? 0);
        if (score > bestScore) [best, bestScore] = [name, score];
      }
      chosen.add(best);
      members.delete(best);
    }
    const rest = new Map<string, string[]>();
    for (const name of members) rest.set(name, (graph.get(name) ?? []).filter((callee) => members.has(callee)));
    for (const sub of stronglyConnectedComponents(rest)) if (isCycle(rest, sub)) pending.push(sub);
  }
  return chosen;
}

/**
 * Tarjan's algorithm, iterative: call chains in big programs are deep enough to overflow the JS
 * stack with the textbook recursive version.
 */
export function stronglyConnectedComponents(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const lowlink = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;

  for (const root of graph.keys()) {
    if (index.has(root)) continue;
    // Each frame: a node and how many of its successors have been looked at.
    const frames: { node: string; edge: number }[] = [{ node: root, edge: 0 }];
    index.set(root, next);
    lowlink.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (frames.length > 0) {
      const frame = frames[frames.length - 1]!;
      const successors = graph.get(frame.node) ?? [];
      if (frame.edge < successors.length) {
        const succ = successors[frame.edge++]!;
        if (!index.has(succ)) {
          index.set(succ, next);
          lowlink.set(succ, next++);
          stack.push(succ);
          onStack.add(succ);
          frames.push({ node: succ, edge: 0 });
        } else if (onStack.has(succ)) {
          lowlink.set(frame.node, Math.min(lowlink.get(frame.node)!, index.get(succ)!));
        }
        continue;
      }
      frames.pop();
      const parent = frames[frames.length - 1];
      if (parent) lowlink.set(parent.node, Math.min(lowlink.get(parent.node)!, lowlink.get(frame.node)!));
      if (lowlink.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        components.push(component);
      }
    }
  }
  return components;
}

/**
 * Functions that may change the fuel counter when called: those with a fuel check, and every
 * function that may call one of them (directly or through a table). Imports do not count: the
 * runtime changes the counter only inside preempt, which only checks call (abi.ts).
 */
export function fuelTouchingFunctions(graph: ReadonlyMap<string, readonly string[]>, checked: ReadonlySet<string>): Set<string> {
  const callers = new Map<string, string[]>();
  for (const [caller, callees] of graph) {
    for (const callee of callees) callers.set(callee, [...(callers.get(callee) ?? []), caller]);
  }
  const touching = new Set(checked);
  const work = [...checked];
  for (let name = work.pop(); name !== undefined; name = work.pop()) {
    for (const caller of callers.get(name) ?? []) {
      if (!touching.has(caller)) {
        touching.add(caller);
        work.push(caller);
      }
    }
  }
  return touching;
}
