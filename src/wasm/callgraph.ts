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

/**
 * A feedback vertex set: functions such that every cycle of the call graph passes through one of
 * them. A check at the entry of each is enough to bound recursion (every path of calls longer
 * than the number of functions passes a check), and costs less than a check in every recursive
 * function: only one per cycle. Greedy: a self-recursive function is always in; otherwise the
 * function with the most calls in and out within its component, then the rest is split again.
 *
 * Splitting again after each pick is a pass over the component's calls per pick; on Yosys (one
 * component of 28,404 functions and 4.2 million calls: C++ virtual calls reach every
 * address-taken function of their signature) that took most of 37 minutes with maps of names.
 * So the graph is numbered once and the passes run over arrays: the same picks in the same
 * order, Yosys's 2,199 in about 40 s.
 */
export function feedbackVertexSet(graph: ReadonlyMap<string, readonly string[]>): Set<string> {
  const names = [...graph.keys()];
  const id = new Map<string, number>();
  names.forEach((name, i) => id.set(name, i));
  // Calls as arrays of ids (a callee that is not a node of the graph has no calls: dropped).
  const succ: Int32Array[] = names.map((name) => Int32Array.from((graph.get(name) ?? []).map((c) => id.get(c) ?? -1).filter((c) => c >= 0)));
  const selfLoop = succ.map((s, v) => s.includes(v));
  const isCycle = (c: Int32Array): boolean => c.length > 1 || selfLoop[c[0]!]!;
  const n = names.length;
  // The component being worked on: its members have member[v] === stamp.
  const member = new Int32Array(n);
  let stamp = 0;
  const scc = new SccScratch(n);
  const outDeg = new Int32Array(n);
  const inDeg = new Int32Array(n);

  const chosen = new Set<string>();
  const pending = scc.components(Int32Array.from(names.keys()), succ, member, stamp).filter(isCycle);
  for (let component = pending.pop(); component !== undefined; component = pending.pop()) {
    stamp++;
    for (const v of component) member[v] = stamp;
    const selfLoops = component.filter((v) => selfLoop[v]!);
    if (selfLoops.length > 0) {
      for (const v of selfLoops) {
        chosen.add(names[v]!);
        member[v] = -1;
      }
    } else {
      for (const v of component) outDeg[v] = inDeg[v] = 0;
      for (const v of component) {
        for (const c of succ[v]!) {
          if (member[c] !== stamp) continue;
          outDeg[v]!++;
          inDeg[c]!++;
        }
      }
      let best = component[0]!;
      let bestScore = -1;
      for (const v of component) {
        const score = outDeg[v]! * inDeg[v]!;
        if (score > bestScore) [best, bestScore] = [v, score];
      }
      chosen.add(names[best]!);
      member[best] = -1;
    }
    const rest = component.filter((v) => member[v] === stamp);
    for (const sub of scc.components(rest, succ, member, stamp)) if (isCycle(sub)) pending.push(sub);
  }
  return chosen;
}

/**
 * Tarjan's algorithm over numbered nodes, restricted to `roots` (those with member[v] === stamp),
 * iterative; the same components in the same order as stronglyConnectedComponents on the graph
 * of those nodes (roots in the order given, successors in the order of their calls).
 */
class SccScratch {
  private readonly index: Int32Array;
  private readonly lowlink: Int32Array;
  private readonly onStack: Uint8Array;
  private readonly visit: Int32Array;
  private visitStamp = 0;

  constructor(n: number) {
    this.index = new Int32Array(n);
    this.lowlink = new Int32Array(n);
    this.onStack = new Uint8Array(n);
    this.visit = new Int32Array(n).fill(-1);
  }

  components(roots: Int32Array, succ: readonly Int32Array[], member: Int32Array, stamp: number): Int32Array[] {
    const { index, lowlink, onStack, visit } = this;
    const seen = ++this.visitStamp;
    const stack: number[] = [];
    const frameNode: number[] = [];
    const frameEdge: number[] = [];
    const components: Int32Array[] = [];
    let next = 0;
    /** Tarjan's visit of a node: numbered, on the stack, and a frame to walk its edges from. */
    const enter = (n: number): void => {
      visit[n] = seen;
      index[n] = lowlink[n] = next++;
      stack.push(n);
      onStack[n] = 1;
      frameNode.push(n);
      frameEdge.push(0);
    };
    for (const root of roots) {
      if (visit[root] === seen) continue;
      enter(root);
      while (frameNode.length > 0) {
        const top = frameNode.length - 1;
        const node = frameNode[top]!;
        const successors = succ[node]!;
        let edge = frameEdge[top]!;
        let descended = false;
        while (edge < successors.length) {
          const s = successors[edge++]!;
          if (member[s] !== stamp) continue;
          if (visit[s] !== seen) {
            frameEdge[top] = edge;
            enter(s);
            descended = true;
            break;
          } else if (onStack[s] === 1) {
            if (index[s]! < lowlink[node]!) lowlink[node] = index[s]!;
          }
        }
        if (descended) continue;
        frameNode.pop();
        frameEdge.pop();
        if (frameNode.length > 0) {
          const parent = frameNode[frameNode.length - 1]!;
          if (lowlink[node]! < lowlink[parent]!) lowlink[parent] = lowlink[node]!;
        }
        if (lowlink[node] === index[node]) {
          const component: number[] = [];
          let m: number;
          do {
            m = stack.pop()!;
            onStack[m] = 0;
            component.push(m);
          } while (m !== node);
          components.push(Int32Array.from(component));
        }
      }
    }
    return components;
  }
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
