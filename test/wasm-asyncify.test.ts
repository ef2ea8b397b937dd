import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import binaryen from 'binaryen';
import { planChunks } from '../src/wasm/asyncify.js';
import { instrument } from '../src/wasm/instrument.js';

/** The module as text, with the Asyncify runtime's functions under their export names. */
function normalizedText(bytes: Uint8Array): string {
  const module = binaryen.readBinary(bytes);
  try {
    let text = module.emitText();
    for (const match of text.matchAll(/\(export "(asyncify_[a-z_]+)" \(func \$([^)]+)\)\)/g)) {
      const [, exported, internal] = match;
      text = text.replace(new RegExp(`\\$${internal ?? ''}(?=[\\s)])`, 'g'), `$${exported ?? ''}`);
    }
    return text;
  } finally {
    module.dispose();
  }
}

describe('chunked Asyncify', () => {
  it('instruments a real program exactly as one Asyncify run over the whole module does', async () => {
    const original = readFileSync(new URL('../../examples/test/fileio.wasm', import.meta.url));
    const whole = await instrument(original, { workers: 1 });
    const fractions: number[] = [];
    const chunked = await instrument(original, { workers: 2, forceChunks: 5 }, (f) => fractions.push(f));
    assert.equal(normalizedText(chunked.bytes), normalizedText(whole.bytes));
    assert.deepEqual(chunked.info, whole.info);
    assert.equal(fractions.length, 6, 'once before Asyncify, then once per chunk');
    assert.deepEqual(fractions, [...fractions].sort((a, b) => a - b), 'progress only goes forward');
    assert.equal(fractions.at(-1), 1);
  });

  it('plans chunks of similar size, largest work first, each function in exactly one', () => {
    const sizes = new Map([['a', 100], ['b', 60], ['c', 50], ['d', 10], ['e', 5]]);
    const chunks = planChunks([...sizes.keys(), 'added'], sizes, 3);
    assert.deepEqual(chunks.flat().sort(), ['a', 'added', 'b', 'c', 'd', 'e']);
    const weight = (chunk: string[]): number => chunk.reduce((sum, name) => sum + (sizes.get(name) ?? 1), 0);
    assert.deepEqual(chunks.map(weight), [100, 65, 61]);
    assert.deepEqual(planChunks(['x'], new Map(), 4), [['x']], 'no empty chunks');
  });
});
