/**
 * Handover (src/msg/handover.ts): what one kernel gives another of its node under a key is taken
 * there by that key, a shared memory as the same memory; what was given under other keys before
 * it (work that failed on the way) is dropped; a peer of another node has no port.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Handover, handoverPorts } from '../src/msg/handover.js';

test('a shared memory given under a pid is taken there as the same memory; stale ones are dropped', () => {
  const ports = handoverPorts([0, 1, 2]);
  const k0 = new Handover(ports.get(0) ?? {});
  const k1 = new Handover(ports.get(1) ?? {});
  assert.ok(k0.reaches(1) && k0.reaches(2) && !k0.reaches(256));
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
  new Uint8Array(memory.buffer)[7] = 42;
  k0.give(1, 1024, new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true })); // a move that failed
  k0.give(1, 1025, memory);
  const taken = k1.take(0, 1025);
  assert.ok(taken instanceof WebAssembly.Memory);
  new Uint8Array(taken.buffer)[8] = 43;
  assert.equal(new Uint8Array(memory.buffer)[8], 43, 'the same memory, not a copy');
  assert.equal(new Uint8Array(taken.buffer)[7], 42);
  assert.equal(k1.take(0, 1024), undefined, 'dropped on the way to 1025');
  assert.equal(k1.take(2, 1025), undefined, 'nothing from another kernel');
  assert.throws(() => k0.give(256, 1, memory), /not a kernel of this node/);
  for (const set of ports.values()) for (const port of Object.values(set)) port.close();
});
