import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Execution, type SliceOutcome } from '../src/kernel/execution.js';
import { ProcessExit, neverBlocks } from '../src/kernel/wasi/blocking.js';
import { MAY_BLOCK } from '../src/kernel/wasi/wasi.js';
import {
  AsyncifyState, MEMORY_SECTION, POPCORN_IMPORTS, POPCORN_MAY_UNWIND, SCRATCH_BYTES, SCRATCH_PAGES, WASI_MAY_UNWIND, type InstrumentedExports, type MemoryLayout,
} from '../src/wasm/abi.js';
import { createPopcornImports, type ProcessSystem } from '../src/kernel/popcorn-abi.js';
import type { Process } from '../src/kernel/process.js';
import { createWasiContext } from '../src/kernel/wasi/context.js';
import { feedbackVertexSet, stronglyConnectedComponents } from '../src/wasm/callgraph.js';
import fc from 'fast-check';
import { ModuleError } from '../src/wasm/errors.js';
import { instrument } from '../src/wasm/instrument.js';
import { sha256Hex } from '../src/wasm/hash.js';
import { contextSwitchProgram, contextSwitchResult, PROGRAM, wat } from './wasm-fixtures.js';

const program = wat(PROGRAM);
const instrumented = await instrument(program, { source: 'program.wasm' });

type Fn = (...args: number[]) => number;

/** Instantiates the instrumented program; preempt refills the fuel to `refill` and counts. */
function instantiate(refill: number, onPreempt?: (exports: InstrumentedExports) => void) {
  const counter = { preempts: 0 };
  const imports = {
    wasi_snapshot_preview1: { proc_exit: () => {} },
    popcorn_rt: {
      preempt: () => {
        counter.preempts++;
        exports.popcorn_fuel.value = refill;
        onPreempt?.(exports);
      },
    },
  };
  const module = new WebAssembly.Module(instrumented.bytes);
  const { initial, maximum } = layoutOf(module);
  // As the runtime does: the scratch region is the top of a memory made SCRATCH_PAGES larger.
  const memory = new WebAssembly.Memory({ initial: initial + SCRATCH_PAGES, maximum, shared: true });
  const instance = new WebAssembly.Instance(module, { ...imports, popcorn_rt: { ...imports.popcorn_rt, memory } });
  const exports = instance.exports as unknown as InstrumentedExports;
  exports.popcorn_init_memory();
  exports.popcorn_fuel.value = refill;
  return { exports, counter, fn: (name: string) => exports[name] as Fn };
}

function layoutOf(module: WebAssembly.Module): MemoryLayout {
  const [section] = WebAssembly.Module.customSections(module, MEMORY_SECTION);
  assert.ok(section !== undefined, `no ${MEMORY_SECTION} section`);
  return JSON.parse(new TextDecoder().decode(section)) as MemoryLayout;
}

async function refusal(bytes: Uint8Array): Promise<string> {
  try {
    await instrument(bytes, { source: 'bad.wasm' });
  } catch (err) {
    assert.ok(err instanceof ModuleError, `expected ModuleError, got ${String(err)}`);
    assert.equal(err.source, 'bad.wasm');
    return err.message;
  }
  assert.fail('module was accepted');
}

describe('instrument: result', () => {
  it('describes the module', () => {
    assert.equal(instrumented.info.kind, 'command');
    assert.equal(instrumented.info.originalHash, sha256Hex(program));
    assert.deepEqual(instrumented.info.mutableGlobals, [0, 2]);
    assert.deepEqual(instrumented.info.imports, ['wasi_snapshot_preview1.proc_exit']);
  });

  it('exports state and the asyncify and fuel interface', () => {
    const names = WebAssembly.Module.exports(new WebAssembly.Module(instrumented.bytes)).map((e) => e.name);
    for (const name of ['memory', 'popcorn_fuel', 'popcorn_table', 'popcorn_global_0', 'popcorn_global_2', 'asyncify_start_unwind', 'asyncify_stop_unwind', 'asyncify_start_rewind', 'asyncify_stop_rewind', 'asyncify_get_state']) {
      assert.ok(names.includes(name), `missing export ${name}`);
    }
    assert.ok(!names.includes('popcorn_global_1'), 'an immutable global was exported');
    const { exports } = instantiate(1000);
    assert.equal((exports['popcorn_global_0'] as WebAssembly.Global).value, 4096);
    assert.equal((exports['popcorn_global_2'] as WebAssembly.Global).value, 2);
  });

  it('imports its memory, shared; its data is copied in by popcorn_init_memory, not by instantiation', async () => {
    const bytes = wat('(module (memory 2 10) (data (i32.const 16) "abc") (func (export "_start")))');
    const module = new WebAssembly.Module((await instrument(bytes)).bytes);
    assert.deepEqual(WebAssembly.Module.imports(module).filter((i) => i.kind === 'memory'), [{ module: 'popcorn_rt', name: 'memory', kind: 'memory' }]);
    assert.deepEqual(layoutOf(module), { initial: 2, maximum: 10 + SCRATCH_PAGES, handover: true });
    const memory = new WebAssembly.Memory({ initial: 2 + SCRATCH_PAGES, maximum: 10 + SCRATCH_PAGES, shared: true });
    const live = new Uint8Array(memory.buffer);
    live.set([1, 2, 3], 16);
    const instance = new WebAssembly.Instance(module, { popcorn_rt: { preempt: () => {}, memory } });
    assert.deepEqual([...live.subarray(16, 19)], [1, 2, 3], 'a live memory is left as it is');
    (instance.exports as unknown as InstrumentedExports).popcorn_init_memory();
    assert.equal(Buffer.from(live.subarray(16, 19)).toString(), 'abc');

    const started = wat('(module (memory 1) (data (i32.const 8) "x") (func $s) (start $s) (func (export "_start")))');
    const layout = layoutOf(new WebAssembly.Module((await instrument(started)).bytes));
    assert.equal(layout.handover, false, 'a start function would run again against a handed-over memory');
    assert.equal(layout.maximum, 65536, 'no declared maximum: as large as wasm32 allows');
  });

  it('keeps function names for traps', () => {
    assert.ok(Buffer.from(instrumented.bytes).includes(Buffer.from('squares')));
  });

  it('flags reactors', async () => {
    const reactor = wat('(module (memory 1) (func (export "_initialize")))');
    assert.equal((await instrument(reactor)).info.kind, 'reactor');
  });
});

describe('instrument: fuel checks', () => {
  it('checks at every loop header', () => {
    // count(99) runs its loop body 100 times. With fuel 10 every 11th check preempts, and the
    // re-entered header checks again: each slice runs 10 bodies, so 100 bodies take 9 preempts.
    const { fn, counter } = instantiate(10);
    assert.equal(fn('count')(99), 99);
    assert.equal(counter.preempts, 9);
  });

  it('keeps value-producing loops correct', () => {
    const { fn, counter } = instantiate(1);
    assert.equal(fn('squares')(10), 285);
    assert.equal(counter.preempts, 9);
  });

  it('checks at the entry of one function per cycle of calls only', () => {
    // Fuel 0, refilled to 0: every check preempts, so preempts = checks passed.
    // even/odd: one of the two carries the check (odd, the one chosen), so even(4) passes 2.
    // fact recurses into itself: three levels of its self-calls are inlined (unrolled), the
    // innermost copy calls fact again, so fact(5) checks at 5 and 1.
    const cases: [string, number, number, number][] = [
      ['leaf', 1, 8, 0],
      ['twice', 1, 15, 0],
      ['fact', 5, 120, 2],
      ['even', 4, 1, 2],
      ['isum', 3, 6, 4],
    ];
    for (const [name, arg, result, checks] of cases) {
      const { fn, counter } = instantiate(0);
      assert.equal(fn(name)(arg), result, name);
      assert.equal(counter.preempts, checks, `checks passed in ${name}(${arg})`);
    }
  });

  it('counts every check exactly across calls between functions with loops', () => {
    // The counter is kept in a local per function: nothing may be lost at calls and returns.
    for (const [n, m, refill] of [[10, 5, 3], [7, 40, 10], [30, 0, 1]] as const) {
      let fuel = refill;
      let expected = 0;
      const check = (): void => {
        fuel--;
        while (fuel < 0) {
          expected++;
          fuel = refill - 1; // refilled; a loop header is re-entered, so it checks again
        }
      };
      for (let i = 0; ; i++) {
        check();
        if (i === n) break;
        for (let j = 0; j <= m; j++) check();
      }
      const { fn, counter } = instantiate(refill);
      assert.equal(fn('outer')(n, m), n * m);
      assert.equal(counter.preempts, expected, `outer(${n}, ${m}) with fuel ${refill}`);
    }
  });

  it('finds strongly connected components', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c', 'a']],
      ['c', []],
      ['d', ['d']],
    ]);
    const components = stronglyConnectedComponents(graph).map((c) => c.sort().join());
    assert.deepEqual(components.sort(), ['a,b', 'c', 'd']);
  });

  it('picks entry checks that break every cycle, exactly as the greedy over names did', () => {
    const graphs = fc.integer({ min: 1, max: 40 }).chain((n) =>
      fc.array(fc.array(fc.integer({ min: 0, max: n - 1 }), { maxLength: 6 }), { minLength: n, maxLength: n }),
    );
    fc.assert(
      fc.property(graphs, (lists) => {
        const graph = new Map(lists.map((callees, i) => [`f${i}`, [...new Set(callees)].map((c) => `f${c}`)]));
        const chosen = feedbackVertexSet(graph);
        assert.deepEqual([...chosen], [...greedyOverNames(graph)]);
        const rest = new Map([...graph].filter(([f]) => !chosen.has(f)).map(([f, callees]) => [f, callees.filter((c) => !chosen.has(c))]));
        for (const c of stronglyConnectedComponents(rest)) {
          assert.ok(c.length === 1 && !rest.get(c[0]!)!.includes(c[0]!), `a cycle is left: ${c.join()}`);
        }
      }),
      { numRuns: 300 },
    );
  });
});

/** The greedy feedback vertex set as it was first written (maps of names, one SCC pass per pick): the reference. */
function greedyOverNames(graph: ReadonlyMap<string, readonly string[]>): Set<string> {
  const isCycle = (g: ReadonlyMap<string, readonly string[]>, c: readonly string[]): boolean => c.length > 1 || (g.get(c[0]!)?.includes(c[0]!) ?? false);
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
      for (const name of members) for (const callee of graph.get(name) ?? []) if (members.has(callee)) inDegree.set(callee, (inDegree.get(callee) ?? 0) + 1);
      let best = component[0]!;
      let bestScore = -1;
      for (const name of component) {
        const score = (graph.get(name) ?? []).filter((callee) => members.has(callee)).length * (inDegree.get(name) ?? 0);
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
 * Runs `call` to completion while preempt unwinds the stack as often as it can (fuel 1), with the
 * runtime's protocol: the unwind data lives in the scratch region at the top of memory. Between
 * the unwind and the rewind it runs other guest code, as a kernel would run another process.
 */
function runWithContextSwitches(name: string, ...args: number[]): { result: number; switches: number } {
  const header = (ex: InstrumentedExports): number => {
    const base = ex.memory.buffer.byteLength - SCRATCH_BYTES;
    new Uint32Array(ex.memory.buffer, base, 2).set([base + 8, base + SCRATCH_BYTES]);
    return base;
  };
  let saved = 0;
  const { exports, fn } = instantiate(1, (ex) => {
    if (ex.asyncify_get_state() === AsyncifyState.Rewinding) {
      ex.asyncify_stop_rewind(); // back where we unwound: carry on
      return;
    }
    ex.asyncify_start_unwind(header(ex));
  });
  let switches = 0;
  for (;;) {
    const result = fn(name)(...args);
    if (exports.asyncify_get_state() !== AsyncifyState.Unwinding) return { result, switches };
    exports.asyncify_stop_unwind();
    switches++;
    const base = exports.memory.buffer.byteLength - SCRATCH_BYTES;
    saved = Math.max(saved, new Uint32Array(exports.memory.buffer, base, 1)[0]! - base);
    const stack = new Uint8Array(exports.memory.buffer, base, saved).slice();
    assert.equal(fn('twice')(1), 15); // another computation on the same instance in between
    new Uint8Array(exports.memory.buffer, base, stack.length).set(stack);
    exports.asyncify_start_rewind(base);
  }
}

describe('instrument: asyncify unwind and rewind', () => {
  it('treats as unwind points every WASI call the kernel may block in', () => {
    // Code that reaches only the other WASI calls is left without Asyncify's bookkeeping.
    for (const name of MAY_BLOCK) assert.ok(WASI_MAY_UNWIND.includes(name), name);
  });

  it('resumes a loop after each unwind with its locals intact', () => {
    assert.deepEqual(runWithContextSwitches('squares', 20), { result: 2470, switches: 19 });
  });

  it('resumes deep recursion (many frames saved and restored)', () => {
    const expected = Array.from({ length: 200 }, (_, i) => i + 1).reduce((s, n) => s + n + (n % 3), 0);
    // 51 entry checks (deep runs four levels per call: three are inlined copies), every second
    // one unwinds: the deepest unwind saves 50 frames of four levels' locals each.
    assert.deepEqual(runWithContextSwitches('deep', 200), { result: expected, switches: 25 });
  });

  it('resumes mutual and indirect recursion, and loops that call loops', () => {
    assert.equal(runWithContextSwitches('even', 9).result, 0);
    assert.equal(runWithContextSwitches('isum', 30).result, 465);
    assert.equal(runWithContextSwitches('outer', 9, 4).result, 36);
  });
});

const [recurse, spin, fib] = [150, 30_000_000, 27];
const contextSwitchModule = new WebAssembly.Module((await instrument(wat(contextSwitchProgram(recurse, spin, fib)))).bytes);

describe('instrument: under the runtime (Execution)', () => {
  const module = contextSwitchModule;
  const imports = {
    wasi_snapshot_preview1: {
      proc_exit: (status: number) => {
        throw new ProcessExit(status);
      },
    },
  };
  const hooks = {
    shouldPreempt: () => true, beginSyscall: () => undefined, takeWait: () => 'yield' as const,
    takeSignal: () => undefined, saveSyscallState: () => undefined, restoreSyscallState: () => undefined,
  };

  it('two processes preempted in deep recursion and in recursion-only code run to the right result', () => {
    const processes = [new Execution(module, imports, hooks), new Execution(module, imports, hooks)];
    const outcomes: SliceOutcome[][] = [[], []];
    let maxSaved = 0;
    for (let running = true; running; ) {
      running = false;
      processes.forEach((p, i) => {
        const last = outcomes[i]!.at(-1);
        if (last !== undefined && last.kind !== 'preempted') return;
        outcomes[i]!.push(p.run());
        maxSaved = Math.max(maxSaved, p.savedStack?.length ?? 0);
        running = true;
      });
    }
    const expected = contextSwitchResult(recurse, spin, fib);
    for (const list of outcomes) {
      assert.deepEqual(list.at(-1), { kind: 'exited', status: expected, signal: undefined });
      assert.ok(list.length >= 4, `preempted ${list.length - 1} times`);
    }
    assert.ok(maxSaved > recurse * 8, `an unwind saved the deep stack (${maxSaved} bytes)`);
  });
});

describe('instrument: refusals', () => {
  it('refuses bytes that are not WebAssembly', async () => {
    assert.match(await refusal(new Uint8Array([1, 2, 3, 4])), /bad\.wasm: not a valid WebAssembly module/);
  });

  it('refuses a truncated module', async () => {
    assert.match(await refusal(program.subarray(0, program.length - 10)), /not a valid WebAssembly module/);
  });

  it('refuses a component, and a module of WASI 0.2 or later, naming what it is', async () => {
    const component = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]);
    assert.match(await refusal(component), /is a WebAssembly component .*popcorn runs core modules of WASI preview 1/);
    const p2 = wat('(module (import "wasi:cli/environment@0.2.0" "get-arguments" (func (param i32))) (memory 1) (func (export "_start")))');
    assert.match(await refusal(p2), /imports wasi:cli\/environment@0\.2\.0\.get-arguments: interfaces of WASI 0\.2 or later/);
  });

  it('refuses a module whose name section binaryen cannot read (V8 only warns)', async () => {
    // Found by fuzzing: binaryen threw a non-Error object, reported as "[object Object]".
    const name = new TextEncoder().encode('name');
    const garbage = new Uint8Array([0, 1 + name.length + 7, name.length, ...name, 0, 0, 0, 0, 0, 0, 0]);
    const bytes = new Uint8Array([...program, ...garbage]);
    assert.ok(WebAssembly.validate(bytes), 'V8 accepts it');
    assert.match(await refusal(bytes), /bad\.wasm: binaryen cannot read it \(error in parsing wasm binary\)/);
  });

  it('names an unknown import', async () => {
    const bytes = wat('(module (import "env" "foo" (func)) (memory 1) (func (export "_start") (call 0)))');
    assert.match(await refusal(bytes), /imports env\.foo, which popcorn does not provide/);
  });

  it('accepts the functions of the popcorn module and refuses names it does not have', async () => {
    const bytes = wat('(module (import "popcorn" "getpid" (func (result i32))) (memory 1) (func (export "_start") (drop (call 0))))');
    assert.deepEqual((await instrument(bytes)).info.imports, ['popcorn.getpid']);
    const unknown = wat('(module (import "popcorn" "whatever" (func)) (memory 1) (func (export "_start") (call 0)))');
    assert.match(await refusal(unknown), /imports popcorn\.whatever, which the popcorn module does not have/);
  });

  it('treats as unwind points exactly the popcorn calls the kernel may block in', () => {
    const blocking = Object.entries(createPopcornImports(fakeProcess(), {} as ProcessSystem)).filter(([, fn]) => !neverBlocks(fn)).map(([name]) => name);
    assert.deepEqual(blocking.sort(), [...POPCORN_MAY_UNWIND].sort());
    assert.deepEqual(Object.keys(createPopcornImports(fakeProcess(), {} as ProcessSystem)).sort(), [...POPCORN_IMPORTS].sort());
  });

  it('refuses a module without memory', async () => {
    assert.match(await refusal(wat('(module (func (export "_start")))')), /has no linear memory/);
  });

  it('refuses an imported memory', async () => {
    assert.match(await refusal(wat('(module (import "wasi_snapshot_preview1" "mem" (memory 1)) (func (export "_start")))')), /imports its memory/);
  });

  it('refuses an imported table', async () => {
    assert.match(await refusal(wat('(module (import "wasi_snapshot_preview1" "t" (table 1 funcref)) (memory 1) (func (export "_start")))')), /imports a table/);
  });

  it('refuses a module that is neither a command nor a reactor', async () => {
    assert.match(await refusal(wat('(module (memory 1) (func (export "main")))')), /neither _start .* nor _initialize/);
  });

  it('refuses reserved export names', async () => {
    assert.match(await refusal(wat('(module (memory 1) (func (export "_start")) (func (export "asyncify_get_state")))')), /reserves/);
  });
});

/** Just enough of a process to build its popcorn imports. */
function fakeProcess(): Process {
  return { context: createWasiContext() } as unknown as Process;
}
