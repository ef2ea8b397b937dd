/**
 * Target: mutated modules through the loader's instrumentation (the worker the loader uses).
 * Every input is refused with a ModuleError or becomes a valid instrumented module; any other
 * error, a dead worker or a hang is a bug.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { ModuleError } from '../../src/wasm/errors.js';
import { instrumentInWorker } from '../../src/wasm/instrument-worker.js';
import { PROGRAM, contextSwitchProgram, wat } from '../wasm-fixtures.js';
import { Counts, concat, fuzzProperty, mutate, mutationArbitrary, type FuzzBudget, type FuzzReport, type Mutation } from './harness.js';

/** Instrumenting a small module takes well under a second; a big refusal too. */
const CASE_MS = 20_000;

/** A WASI command that writes and reads memory and calls imports that may and may not unwind. */
const WASI_COMMAND = `
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "popcorn" "getpid" (func $getpid (result i32)))
  (memory (export "memory") 1 4)
  (data (i32.const 16) "hi\\n")
  (global $n (mut i32) (i32.const 0))
  (func $loop (param $k i32)
    (loop $l
      (global.set $n (i32.add (global.get $n) (call $getpid)))
      (br_if $l (i32.lt_u (global.get $n) (local.get $k)))))
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 3))
    (call $loop (i32.const 10))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 0))))`;

/** The seeds: small valid modules (cheap to instrument when a mutation keeps them valid) and a real program. */
function seedModules(): Uint8Array[] {
  return [
    wat(PROGRAM),
    wat(contextSwitchProgram(3, 10, 5)),
    wat(WASI_COMMAND),
    new Uint8Array(readFileSync(new URL('../../../examples/test/trap.wasm', import.meta.url))),
  ];
}

/** A module's sections: id and payload, after the 8-byte preamble. Stops at the first that does not parse. */
function sections(bytes: Uint8Array): { id: number; payload: Uint8Array }[] {
  const out: { id: number; payload: Uint8Array }[] = [];
  let at = 8;
  while (at < bytes.length) {
    const id = bytes[at++] as number;
    let size = 0;
    for (let shift = 0; at < bytes.length && shift < 35; shift += 7) {
      const b = bytes[at++] as number;
      size |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
    }
    if (size < 0 || at + size > bytes.length) break;
    out.push({ id, payload: bytes.subarray(at, at + size) });
    at += size;
  }
  return out;
}

function leb(n: number): Uint8Array {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return new Uint8Array(out);
}

function assemble(list: { id: number; payload: Uint8Array }[], preamble: Uint8Array): Uint8Array {
  return concat(preamble, ...list.flatMap((s) => [new Uint8Array([s.id]), leb(s.payload.length), s.payload]));
}

/** Mutations that keep the byte structure and change the module's meaning. */
type SectionMutation =
  | { kind: 'drop'; at: number }
  | { kind: 'duplicate'; at: number }
  | { kind: 'swap'; at: number; with: number }
  | { kind: 'custom'; name: string; payload: Uint8Array }
  | { kind: 'rename'; from: string; to: string }
  | { kind: 'bytes'; at: number; mutations: Mutation[] };

/** Names popcorn checks: changing one should give a refusal that names it. */
const NAMES = ['_start', '_initialize', 'memory', 'wasi_snapshot_preview1', 'popcorn', 'proc_exit', 'fd_write', 'getpid', 'popcorn_fuel', 'asyncify_get_state', 'popcorn.memory', 'name'];

const sectionMutation: fc.Arbitrary<SectionMutation> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), with: fc.nat() }),
  fc.record({ kind: fc.constant('custom' as const), name: fc.constantFrom('popcorn.memory', 'name', 'x'), payload: fc.uint8Array({ maxLength: 24 }) }),
  fc.record({ kind: fc.constant('rename' as const), from: fc.constantFrom(...NAMES), to: fc.constantFrom(...NAMES, '_stars', 'wasi_unstable', 'env') }),
  fc.record({ kind: fc.constant('bytes' as const), at: fc.nat(), mutations: fc.array(mutationArbitrary, { minLength: 1, maxLength: 3 }) }),
);

function applySection(bytes: Uint8Array, m: SectionMutation): Uint8Array {
  const list = sections(bytes);
  const preamble = bytes.subarray(0, 8);
  if (m.kind === 'custom') {
    const name = new TextEncoder().encode(m.name);
    return assemble([...list, { id: 0, payload: concat(leb(name.length), name, m.payload) }], preamble);
  }
  if (m.kind === 'rename') return renameAll(bytes, m.from, m.to);
  if (list.length === 0) return bytes;
  const i = m.at % list.length;
  switch (m.kind) {
    case 'drop':
      return assemble(list.filter((_, j) => j !== i), preamble);
    case 'duplicate':
      return assemble([...list.slice(0, i + 1), ...list.slice(i)], preamble);
    case 'swap': {
      const j = m.with % list.length;
      const swapped = list.slice();
      [swapped[i], swapped[j]] = [list[j] as (typeof list)[number], list[i] as (typeof list)[number]];
      return assemble(swapped, preamble);
    }
    case 'bytes': {
      const s = list[i] as (typeof list)[number];
      return assemble(list.map((t, j) => (j === i ? { id: s.id, payload: mutate(s.payload, m.mutations) } : t)), preamble);
    }
  }
}

/** Renames a length-prefixed name everywhere it occurs (import, export and custom section names). */
function renameAll(bytes: Uint8Array, from: string, to: string): Uint8Array {
  const enc = new TextEncoder();
  const hex = (x: Uint8Array): string => Buffer.from(x).toString('hex');
  const [a, b] = [hex(concat(leb(from.length), enc.encode(from))), hex(concat(leb(to.length), enc.encode(to)))];
  // Per section, so each keeps a correct size when the name's length changes.
  const renamed = sections(bytes).map((s) => ({ id: s.id, payload: new Uint8Array(Buffer.from(hex(s.payload).split(a).join(b), 'hex')) }));
  return assemble(renamed, bytes.subarray(0, 8));
}

export type WasmInput = { seed: number; section: SectionMutation[]; bytes: Mutation[] };

export const wasmInput: fc.Arbitrary<WasmInput> = fc.record({
  seed: fc.nat(),
  section: fc.array(sectionMutation, { maxLength: 3 }),
  bytes: fc.array(mutationArbitrary, { maxLength: 2 }),
});

export async function fuzzWasm(budget: FuzzBudget): Promise<FuzzReport> {
  const seeds = seedModules();
  const counts = new Counts();
  return fuzzProperty('wasm', budget, wasmInput, CASE_MS, async (input) => {
    let module = seeds[input.seed % seeds.length] as Uint8Array;
    for (const m of input.section) module = applySection(module, m);
    module = mutate(module, input.bytes);
    try {
      const result = await instrumentInWorker(module, { source: 'fuzz.wasm' });
      if (!WebAssembly.validate(result.bytes)) throw new Error('the instrumented module is not valid');
      counts.add('instrumented');
    } catch (error) {
      if (!(error instanceof ModuleError)) throw error;
      counts.add('refused');
    }
  }, counts);
}
