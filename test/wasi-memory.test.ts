/**
 * GuestMemory: every access inside the memory works, every access that reaches past its end
 * (or a negative i32 pointer) is EFAULT and touches nothing; views follow memory.grow.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Errno, WasiError } from '../src/kernel/wasi/errno.js';
import { GuestMemory } from '../src/kernel/wasi/memory.js';

const PAGE = 65536;
const OPS = [['u8', 1], ['u16', 2], ['u32', 4], ['u64', 8], ['i64', 8], ['bytes', 16], ['str', 5]] as const;
const pointer = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.integer({ min: PAGE - 20, max: PAGE + 4 }), // around the end, where off-by-ones live
);

function isFault(e: unknown): boolean {
  return e instanceof WasiError && e.errno === Errno.FAULT;
}

test('property: accesses are in bounds or EFAULT, and a fault writes nothing', () => {
  const mem = new GuestMemory(new WebAssembly.Memory({ initial: 1 }));
  fc.assert(
    fc.property(pointer, fc.constantFrom(...OPS), (ptr, [kind, size]) => {
      const inBounds = ptr >= 0 && ptr + size <= PAGE;
      const before = mem.u8.slice();
      try {
        if (kind === 'u8') mem.u8set(ptr, 0xab);
        else if (kind === 'u16') mem.u16set(ptr, 0xabcd);
        else if (kind === 'u32') mem.u32set(ptr, 0xdeadbeef);
        else if (kind === 'u64') mem.u64set(ptr, 0x0123456789abcdefn);
        else if (kind === 'i64') mem.i64set(ptr, -5n);
        else if (kind === 'bytes') mem.writeBytes(ptr, new Uint8Array(16).fill(7));
        else mem.string(ptr, 5);
        assert.ok(inBounds, `access at ${ptr} should have faulted`);
        if (kind === 'u32') assert.equal(mem.u32get(ptr), 0xdeadbeef);
        if (kind === 'i64') assert.equal(mem.i64get(ptr), -5n);
        if (kind === 'u64') assert.equal(mem.u64get(ptr), 0x0123456789abcdefn);
      } catch (e) {
        if (kind === 'str' && e instanceof WasiError && e.errno === Errno.ILSEQ) return; // random bytes
        assert.ok(isFault(e), String(e));
        assert.ok(!inBounds, `in-bounds access at ${ptr} faulted`);
        assert.deepEqual(mem.u8, before, 'a faulting access wrote nothing');
      }
    }),
    { numRuns: 2000 },
  );
});

test('iovecs: all checked before the first callback', () => {
  const mem = new GuestMemory(new WebAssembly.Memory({ initial: 1 }));
  mem.u32set(0, 100);
  mem.u32set(4, 10);
  mem.u32set(8, PAGE - 5);
  mem.u32set(12, 10);
  let calls = 0;
  assert.throws(() => mem.iovecs(0, 2, () => ++calls > 0), isFault);
  assert.equal(calls, 0);
  mem.iovecs(0, 1, (off, len) => {
    assert.deepEqual([off, len], [100, 10]);
    return true;
  });
  assert.throws(() => mem.iovecs(PAGE - 4, 1, () => true), isFault);
});

test('views follow memory.grow; u64setNum writes large numbers', () => {
  const wm = new WebAssembly.Memory({ initial: 1 });
  const mem = new GuestMemory(wm);
  assert.throws(() => mem.sync().u32set(PAGE + 8, 1), isFault);
  wm.grow(2);
  mem.sync().u32set(PAGE + 8, 42);
  assert.equal(mem.u32get(PAGE + 8), 42);
  mem.u64setNum(0, 2 ** 40 + 3);
  assert.equal(mem.u64get(0), 2n ** 40n + 3n);
});

test('strings: UTF-8 decode, invalid bytes are EILSEQ', () => {
  const mem = new GuestMemory(new WebAssembly.Memory({ initial: 1 }));
  mem.writeBytes(10, new TextEncoder().encode('héllo'));
  assert.equal(mem.string(10, 6), 'héllo');
  mem.writeBytes(0, new Uint8Array([0xc3, 0x28]));
  assert.throws(() => mem.string(0, 2), (e: unknown) => e instanceof WasiError && e.errno === Errno.ILSEQ);
});

test('shared memory (threads later): works and sees growth', () => {
  const wm = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
  const mem = new GuestMemory(wm);
  mem.writeBytes(0, new TextEncoder().encode('abc'));
  assert.equal(mem.string(0, 3), 'abc');
  wm.grow(1);
  mem.sync().u32set(PAGE + 4, 7);
  assert.equal(mem.u32get(PAGE + 4), 7);
});
