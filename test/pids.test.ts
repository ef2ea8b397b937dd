/**
 * Global PIDs: distinct across kernels and nodes without coordination, origin readable from the
 * PID, never handed out while taken.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PidAllocator } from '../src/kernel/pids.js';
import { endpointId } from '../src/msg/address.js';

test('PIDs of different kernels and nodes never collide, and name their origin', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 127 }), fc.integer({ min: 0, max: 254 })), { minLength: 2, maxLength: 6, selector: ([n, k]) => `${n}.${k}` }), fc.integer({ min: 1, max: 200 }), (kernels, count) => {
      const seen = new Set<number>();
      for (const [node, local] of kernels) {
        const allocator = new PidAllocator(endpointId(node, local));
        for (let i = 0; i < count; i++) {
          const pid = allocator.next(() => false);
          assert.ok(pid > 0 && pid <= 0x7fffffff, `pid ${pid} fits a positive i32`);
          assert.equal(pid & 0xff, local);
          assert.equal(pid >>> 24, node);
          assert.ok(!seen.has(pid));
          seen.add(pid);
        }
      }
    }),
  );
});

test('a PID still in use is skipped, also after the counter wraps', () => {
  const allocator = new PidAllocator(endpointId(0, 3));
  const first = allocator.next(() => false);
  const taken = new Set([first]);
  for (let i = 0; i < 65_534; i++) taken.add(allocator.next((pid) => taken.has(pid)));
  assert.equal(taken.size, 65_535);
  assert.throws(() => allocator.next((pid) => taken.has(pid)), /all 65535 PIDs are in use/);
  taken.delete(first);
  assert.equal(allocator.next((pid) => taken.has(pid)), first);
});
