/**
 * Target: random and mutated inter-kernel frames into a live node, as a peer node's relay would
 * hand them on: the host's messenger relays those for a kernel into its ring. Each is counted
 * (malformed, unroutable, a handler's error) and dropped or answered; afterwards every kernel
 * still answers a real request, and a program still runs.
 */
import fc from 'fast-check';
import { FRAME_HEADER_BYTES, writeHeader } from '../../src/msg/frame.js';
import { MESSAGES } from '../../src/protocol.js';
import type { PopcornNode } from '../../src/node/node.js';
import { startProgram } from '../ssi-helpers.js';
import { bootFuzzNode, LogTail } from './node.js';
import { Counts, concat, fuzzProperty, mutate, mutationArbitrary, type FuzzBudget, type FuzzReport, type Mutation } from './harness.js';

const CASE_MS = 15_000;
/** A frame a kernel obeys from its host by design, not bad input: it would stop the kernel. */
const OBEYED = new Set<number>([MESSAGES.shutdown.id]);
const TYPES = Object.values(MESSAGES).map((m) => m.id).filter((id) => !OBEYED.has(id));

export interface FrameInput {
  type: number;
  flags: number;
  src: number;
  /** Index into the node's endpoints (kernels, host), or a stray endpoint. */
  dst: number;
  request: number;
  payload: Uint8Array;
  /** Applied to the whole frame, header included. */
  mutations: Mutation[];
}

const frameInput: fc.Arbitrary<FrameInput> = fc.record({
  type: fc.oneof(fc.constantFrom(...TYPES), fc.integer({ min: 0, max: 0xffff })),
  flags: fc.integer({ min: 0, max: 3 }),
  src: fc.oneof(fc.constantFrom(0, 1, 0xff, 0x100), fc.nat()),
  dst: fc.oneof(fc.integer({ min: 0, max: 2 }), fc.nat()),
  request: fc.oneof(fc.constant(0), fc.nat({ max: 16 }), fc.nat()),
  payload: fc.uint8Array({ maxLength: 96 }),
  mutations: fc.array(mutationArbitrary, { maxLength: 2 }),
});

function frameOf(input: FrameInput, endpoints: readonly number[]): Uint8Array {
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  const dst = input.dst < endpoints.length ? (endpoints[input.dst] as number) : input.dst;
  writeHeader(new DataView(header.buffer), 0, { type: input.type, flags: input.flags, src: input.src, dst, request: input.request });
  return mutate(concat(header, input.payload), input.mutations);
}

/** Every kernel answers kernel_info; returns their counters summed. */
async function kernelCounters(node: PopcornNode): Promise<{ malformed: number; unroutable: number; handlerErrors: number }> {
  const infos = await node.info(5_000);
  if (infos.length !== node.kernels.length) throw new Error(`${infos.length} of ${node.kernels.length} kernels answered`);
  const sum = (k: 'malformed' | 'unroutable' | 'handlerErrors'): number => infos.reduce((n, i) => n + i.messages[k], 0);
  return { malformed: sum('malformed'), unroutable: sum('unroutable'), handlerErrors: sum('handlerErrors') };
}

export async function fuzzFrames(budget: FuzzBudget): Promise<FuzzReport> {
  const logs = new LogTail();
  const node = await bootFuzzNode(2, logs);
  const endpoints = [...node.kernels, node.self];
  const counts = new Counts();
  try {
    const report = await fuzzProperty('frames', budget, fc.array(frameInput, { minLength: 1, maxLength: 16 }), CASE_MS, async (frames) => {
      const before = await kernelCounters(node);
      for (const input of frames) {
        const frame = frameOf(input, endpoints);
        node.messenger.deliver(frame, 0, frame.length);
      }
      const after = await kernelCounters(node);
      counts.add('frames', frames.length);
      counts.add('kernel malformed', after.malformed - before.malformed);
      counts.add('kernel unroutable', after.unroutable - before.unroutable);
      counts.add('kernel handler errors', after.handlerErrors - before.handlerErrors);
    }, counts);
    counts.add('host malformed', node.messenger.stats.malformed);
    const hello = await startProgram(node, 'hello.wasm', ['after']);
    const exit = await hello.exit();
    if (exit.status !== 0 || !hello.stdout().includes('after')) throw new Error(`a program after the frames ended with ${exit.status}: ${hello.stdout()}\n${logs.text()}`);
    return report;
  } finally {
    await node.shutdown();
  }
}
