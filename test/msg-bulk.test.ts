/**
 * Bulk transfers (src/msg/bulk.ts): a large buffer goes to another node's endpoint in one-frame
 * pieces and arrives whole in the place the receiver's sink made; a sink that refuses, a transfer
 * cut short and a lost sender's transfer are reported, never taken as whole.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { endpointId } from '../src/msg/address.js';
import { BULK_PIECE_BYTES, Bulk, BulkError } from '../src/msg/bulk.js';
import { Mesh, type MeshKernel } from './mesh-helpers.js';
import { pattern } from './msg-helpers.js';

const A = endpointId(0, 0);
const B = endpointId(1, 0);

/** Two endpoints of two nodes with a Bulk each, whose sink makes a buffer with `open`. */
function pair(open: (total: number, tag: number) => Uint8Array = (total) => new Uint8Array(total)): { mesh: Mesh<MeshKernel>; a: Bulk<Uint8Array>; b: Bulk<Uint8Array> } {
  const mesh = new Mesh<MeshKernel>([A, B], (k) => k);
  const sink = {
    open: (total: number, tag: number): { target: Uint8Array; bytes: Uint8Array } => {
      const bytes = open(total, tag);
      return { target: bytes, bytes };
    },
  };
  return { mesh, a: new Bulk(mesh.kernel(A).messenger, sink), b: new Bulk(mesh.kernel(B).messenger, sink) };
}

test('a large buffer arrives whole, in pieces of one frame, and is taken once by its key', () => {
  const { mesh, a, b } = pair();
  const data = pattern(1, 0, 3 * BULK_PIECE_BYTES + 12345);
  a.send(B, 77, data, 0);
  a.send(B, 78, new Uint8Array(0), 0);
  mesh.pump();
  assert.deepEqual(b.take(A, 77), data);
  assert.deepEqual(b.take(A, 78), new Uint8Array(0));
  assert.throws(() => b.take(A, 77), /nothing came ahead for 77/);
  assert.equal(b.size, 0);
});

test('a sink that refuses, a transfer cut short and a lost sender are reported, not taken', () => {
  const { mesh, a, b } = pair((total, tag) => {
    if (tag === 1) throw new Error('no room');
    return new Uint8Array(total);
  });
  const m = mesh;
  a.send(B, 1, pattern(1, 1, 1000), 1);
  m.pump();
  assert.throws(() => b.take(A, 1), (e: unknown) => e instanceof BulkError && e.refused && /no room/.test(e.message));

  a.send(B, 2, pattern(1, 2, 2 * BULK_PIECE_BYTES), 0);
  while (b.size === 0) m.step(0, 1); // frame by frame, until the first piece has reached B
  assert.throws(() => b.take(A, 2), (e: unknown) => e instanceof BulkError && !e.refused && /incomplete/.test(e.message));
  m.pump();

  a.send(B, 3, pattern(1, 3, 10), 0);
  m.pump();
  b.forgetNode(0);
  assert.throws(() => b.take(A, 3), /nothing came ahead/);
  assert.equal(b.size, 0);
});
