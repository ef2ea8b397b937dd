/**
 * Which functions may take part in recursion. Loops get fuel checks at their headers; recursion
 * is the only other way wasm code can run unbounded, so every function on a call-graph cycle
 * gets a check at its entry too. Checking every function instead costs ≈ 2.7× (DESIGN.md).
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
function callGraph(summaries: readonly FunctionSummary[], addressTaken: ReadonlySet<string>): Map<string, string[]> {
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

/** Functions in a cycle of the call graph: a strongly connected component of size > 1, or a self loop. */
export function recursiveFunctions(
  summaries: readonly FunctionSummary[],
  addressTaken: ReadonlySet<string>,
): Set<string> {
  const graph = callGraph(summaries, addressTaken);
  const recursive = new Set<string>();
  for (const component of stronglyConnectedComponents(graph)) {
    const [only] = component;
    if (component.length > 1 || (only !== undefined && graph.get(only)?.includes(only))) {
      for (const name of component) recursive.add(name);
    }
  }
  return recursive;
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
