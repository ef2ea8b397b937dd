import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cachePaths, readCache } from '../src/wasm/cache.js';
import { sha256Hex } from '../src/wasm/hash.js';
import { ModuleError } from '../src/wasm/errors.js';
import { describePrepareEvent, instrumentCached, prepareProgram, ProgramFileError, SLOW_INSTRUMENT_BYTES, type PrepareEvent } from '../src/wasm/loader.js';
import { CacheMissError, compileCached } from '../src/wasm/compiled.js';
import { PROGRAM, wat } from './wasm-fixtures.js';

const program = wat(PROGRAM);
const hash = sha256Hex(program);
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'popcorn-cache-'));
  process.env['POPCORN_CACHE_DIR'] = dir;
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
  delete process.env['POPCORN_CACHE_DIR'];
});

describe('wasm cache', () => {
  it('instruments on a miss, then hits with identical bytes', async () => {
    const first = await instrumentCached(program);
    assert.equal(first.cached, false);
    let missed = false;
    const second = await instrumentCached(program, {}, { onMiss: () => (missed = true) });
    assert.equal(second.cached, true);
    assert.equal(missed, false, 'a hit must not instrument');
    assert.deepEqual(Buffer.from(second.bytes), Buffer.from(first.bytes));
    assert.deepEqual(second.info, first.info);
    assert.ok(!readdirSync(dir).some((name) => name.endsWith('.tmp')), 'temporary files left behind');
  });

  it('discards a corrupt module and rebuilds it', async () => {
    const good = await instrumentCached(program);
    writeFileSync(cachePaths(hash).wasm, good.bytes.subarray(0, 100));
    assert.equal(readCache(hash), undefined);
    const rebuilt = await instrumentCached(program);
    assert.equal(rebuilt.cached, false);
    assert.deepEqual(Buffer.from(rebuilt.bytes), Buffer.from(good.bytes));
    assert.equal((await instrumentCached(program)).cached, true);
  });

  it('discards a corrupt or mismatched sidecar', async () => {
    await instrumentCached(program);
    writeFileSync(cachePaths(hash).info, '{not json');
    assert.equal((await instrumentCached(program)).cached, false);
    writeFileSync(cachePaths(hash).info, JSON.stringify({ originalHash: 'someone else' }));
    assert.equal((await instrumentCached(program)).cached, false);
    assert.equal((await instrumentCached(program)).cached, true);
  });
});

/** `bytes` plus a custom section "pad" of `size` zero bytes (section size as a 3-byte LEB). */
function withPadding(bytes: Uint8Array, size: number): Buffer {
  const payload = Buffer.concat([Buffer.from([3]), Buffer.from('pad'), Buffer.alloc(size)]);
  const n = payload.length;
  const header = Buffer.from([0, 0x80 | (n & 0x7f), 0x80 | ((n >> 7) & 0x7f), (n >> 14) & 0x7f]);
  return Buffer.concat([bytes, header, payload]);
}

describe('wasm loader', () => {
  it('prepares a program and compiles it from the cache synchronously', async () => {
    const path = join(dir, 'prog.wasm');
    writeFileSync(path, program);
    const prepared = await prepareProgram(path);
    assert.equal(prepared.hash, hash);
    assert.equal(prepared.info.kind, 'command');
    const module = compileCached(hash);
    assert.ok(WebAssembly.Module.exports(module).some((e) => e.name === 'popcorn_fuel'));
    assert.equal(compileCached(hash), module, 'compiled modules are kept per thread');
  });

  it('reports slow instrumentation of big modules, once, and not on a cache hit', async () => {
    const big = withPadding(program, SLOW_INSTRUMENT_BYTES + 16);
    assert.ok(WebAssembly.validate(big));
    const path = join(dir, 'big.wasm');
    writeFileSync(path, big);
    const events: PrepareEvent[] = [];
    await prepareProgram(path, { onProgress: (e) => events.push(e) });
    assert.deepEqual(events.map((e) => e.kind), ['instrumenting', 'progress', 'progress', 'done']);
    assert.match(describePrepareEvent(events[0]!) ?? '', /^instrumenting big\.wasm \(\d+ KiB\)…$/);
    assert.deepEqual(events.filter((e) => e.kind === 'progress').map((e) => e.fraction), [0.1, 1]);
    assert.match(describePrepareEvent(events[3]!) ?? '', /^instrumented big\.wasm in \d+\.\d s$/);
    events.length = 0;
    await prepareProgram(path, { onProgress: (e) => events.push(e) });
    assert.deepEqual(events, []);
  });

  it('names a missing file', async () => {
    const path = join(dir, 'nope.wasm');
    await assert.rejects(prepareProgram(path), (err) => err instanceof ProgramFileError && err.message === `no such file: ${path}`);
  });

  it('refuses an invalid module with the path in the message', async () => {
    const path = join(dir, 'junk.wasm');
    writeFileSync(path, 'not wasm');
    await assert.rejects(prepareProgram(path), (err) => err instanceof ModuleError && err.message.startsWith(`${path}: not a valid WebAssembly module`));
  });

  it('throws a typed error for a hash that was never prepared', async () => {
    assert.throws(() => compileCached('0'.repeat(64)), CacheMissError);
  });
});
