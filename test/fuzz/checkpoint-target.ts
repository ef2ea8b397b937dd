/**
 * Target: mutated checkpoint files restored on a live node. Bytes flipped anywhere (the header,
 * the checksum), and images changed field by field and written again with a correct checksum (a
 * crafted file). Each is refused with a clear error (CheckpointError, or the kernel's reason as
 * "cannot restore …") or runs as a process that is then killed; the kernel stays up.
 */
import fc from 'fast-check';
import { CheckpointError, decodeCheckpoint, encodeCheckpoint } from '../../src/node/checkpoint-file.js';
import type { PopcornNode } from '../../src/node/node.js';
import type { ProcessImage } from '../../src/kernel/image.js';
import { ProgramFileError, prepareProgram } from '../../src/wasm/loader.js';
import { ModuleError } from '../../src/wasm/errors.js';
import { example } from '../cli-helpers.js';
import { Counts, fuzzProperty, mutate, mutationArbitrary, type FuzzBudget, type FuzzReport, type Mutation } from './harness.js';
import { bootFuzzNode, LogTail } from './node.js';

const CASE_MS = 20_000;
const SIGKILL = 9;

/** One field of the image replaced: the n-th leaf (in walk order) gets the n-th candidate of its kind. */
interface FieldChange {
  leaf: number;
  choice: number;
}

export interface CheckpointInput {
  fields: FieldChange[];
  bytes: Mutation[];
}

const NUMBERS = [0, 1, 2, 3, 255, 256, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, -1, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, 1e300];
const BIGINTS = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n)];
const STRINGS = ['', 'x', '/nonexistent/popcorn-fuzz', '..', 'é'.repeat(300)];
const BYTES = (old: Uint8Array): Uint8Array[] => [new Uint8Array(0), old.subarray(0, old.length >> 1), new Uint8Array(old.length + 65536), old.map((b) => b ^ 0x5a)];

type Leaf = { value: unknown; set: (v: unknown) => void };

/** The image's leaves and arrays, in a fixed order. */
function leavesOf(value: unknown, out: Leaf[], set: (v: unknown) => void): void {
  if (value instanceof Uint8Array || typeof value !== 'object' || value === null) {
    out.push({ value, set });
    return;
  }
  if (Array.isArray(value)) {
    // An array is a leaf too: emptied, or its first element repeated.
    out.push({ value, set });
    value.forEach((v, i) => leavesOf(v, out, (n) => (value[i] = n)));
    return;
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) leavesOf(record[key], out, (n) => (record[key] = n));
}

function candidates(value: unknown): unknown[] {
  if (typeof value === 'number') return NUMBERS;
  if (typeof value === 'bigint') return BIGINTS;
  if (typeof value === 'string') return STRINGS;
  if (typeof value === 'boolean') return [!value];
  if (value instanceof Uint8Array) return BYTES(value);
  if (Array.isArray(value)) return [[], value.length > 0 ? [value[0], ...value] : [], value.slice(1)];
  return [value];
}

function changed(original: ProcessImage, fields: FieldChange[]): ProcessImage {
  const image = structuredClone(original);
  for (const change of fields) {
    const leaves: Leaf[] = [];
    leavesOf(image, leaves, () => undefined);
    const leaf = leaves[change.leaf % leaves.length] as Leaf;
    const options = candidates(leaf.value);
    leaf.set(structuredClone(options[change.choice % options.length]));
  }
  return image;
}

const checkpointInput: fc.Arbitrary<CheckpointInput> = fc.record({
  fields: fc.array(fc.record({ leaf: fc.nat(), choice: fc.nat() }), { maxLength: 4 }),
  bytes: fc.array(mutationArbitrary, { maxLength: 2 }),
});

/** The checkpoint of a running spin, taken once. */
async function realCheckpoint(node: PopcornNode): Promise<Uint8Array> {
  const path = example('test/spin.wasm');
  const { hash } = await prepareProgram(path);
  const pid = await node.start({ hash, name: 'spin', args: ['spin', '100000000000', '1000000000000'], env: [], dirs: [], module: path });
  try {
    return await node.checkpoint(pid, true);
  } finally {
    await node.kill(pid, SIGKILL);
    await node.waitExit(pid);
  }
}

function isClearRefusal(error: unknown): boolean {
  if (error instanceof CheckpointError || error instanceof ModuleError || error instanceof ProgramFileError) return true;
  return error instanceof Error && error.constructor === Error && /^cannot restore /.test(error.message);
}

export async function fuzzCheckpoint(budget: FuzzBudget): Promise<FuzzReport> {
  const logs = new LogTail();
  const node = await bootFuzzNode(1, logs);
  const counts = new Counts();
  try {
    const file = await realCheckpoint(node);
    const { header, image } = decodeCheckpoint(file);
    return await fuzzProperty('checkpoint', budget, checkpointInput, CASE_MS, async (input) => {
      let crafted: Uint8Array;
      try {
        crafted = input.fields.length === 0 ? file : encodeCheckpoint(changed(image, input.fields), header.module, header.instrumented);
      } catch {
        counts.add('not encodable'); // a value outside its field's type: no file can hold it
        return;
      }
      const mutated = mutate(crafted, input.bytes);
      try {
        const pid = await node.restore(mutated, { source: 'fuzz.ckpt' });
        counts.add('restored');
        await node.kill(pid, SIGKILL);
        await node.waitExit(pid);
      } catch (error) {
        if (!isClearRefusal(error)) throw error;
        counts.add('refused');
      }
      await node.info(5_000);
    }, counts);
  } finally {
    await node.shutdown();
  }
}
