import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CLI, example, popcorn } from './cli-helpers.js';

const cache = mkdtempSync(join(tmpdir(), 'popcorn-cli-cache-'));
const env = { POPCORN_CACHE_DIR: cache };
after(() => rmSync(cache, { recursive: true, force: true }));

describe('popcorn compile and popcorn cache', () => {
  it('compiles ahead of time, lists, bounds and cleans the cache', async () => {
    const compiled = await popcorn(['compile', example('wc.wasm'), example('echo.wasm')], { env });
    assert.equal(compiled.status, 0, compiled.stderr);
    const lines = compiled.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? '', /^[0-9a-f]{64} {2}.*wc\.wasm {2}.*\.wasm$/);
    assert.match(compiled.stderr, /instrumented wc\.wasm in \d+\.\d s/, 'plain progress lines when stderr is not a terminal');

    const run = await popcorn(['run', example('echo.wasm'), 'cached'], { env });
    assert.equal(run.stdout, 'cached\n');
    assert.equal(run.stderr, '', 'a compiled module is not instrumented again');

    const listed = JSON.parse((await popcorn(['cache', 'ls', '--json'], { env })).stdout) as { entries: { hash: string; bytes: number }[] };
    assert.equal(listed.entries.length, 2);
    assert.ok(listed.entries.every((e) => e.bytes > 0));
    assert.match((await popcorn(['cache', 'ls'], { env })).stdout, /2 entries, \d+ KiB of 2\.00 GiB/);

    // A bound below two entries: writing a third drops the least recently used ones.
    const bounded = await popcorn(['compile', example('cat.wasm')], { env: { ...env, POPCORN_CACHE_MAX: '80K' } });
    assert.equal(bounded.status, 0, bounded.stderr);
    const kept = JSON.parse((await popcorn(['cache', 'ls', '--json'], { env })).stdout) as { entries: { hash: string }[] };
    assert.deepEqual(kept.entries.map((e) => e.hash), [bounded.stdout.slice(0, 64)], 'only the entry just written fits');

    const cleaned = await popcorn(['cache', 'clean'], { env });
    assert.match(cleaned.stdout, /^removed \d+ KiB from /);
    assert.deepEqual(readdirSync(cache), []);
  });

  it('a compile killed while instrumenting leaves no entry, and the next run instruments afresh', async () => {
    const child = spawn(process.execPath, [CLI, 'compile', example('sh.wasm')], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    await new Promise<void>((resolve) => {
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        if (stderr.includes('instrumenting sh.wasm')) resolve();
      });
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('close', resolve));
    assert.deepEqual(readdirSync(cache).filter((name) => !name.endsWith('.tmp')), [], 'no entry, whole or torn');
    const run = await popcorn(['run', example('sh.wasm')], { env, input: 'exit 3\n' });
    assert.equal(run.status, 3, run.stderr);
    assert.match(run.stderr, /instrumented sh\.wasm in/, 'instrumented afresh');
    assert.equal((await popcorn(['cache', 'ls', '--json'], { env })).stdout.includes('"entries":[{'), true);
  });

  it('names a module file that is not there', async () => {
    const result = await popcorn(['compile', join(tmpdir(), 'nope.wasm')], { env });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /no such file/);
  });
});
