/**
 * `popcorn run` end to end: the real command, real worker-thread kernels, real programs.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { example, popcorn } from './cli-helpers.js';

test('hello prints its greeting and arguments, exit 0', async () => {
  const r = await popcorn(['run', '--kernels', '2', example('hello.wasm'), 'a', 'b c']);
  assert.equal(r.stdout, 'Hello from popcorn!\na b c\n');
  assert.equal(r.status, 0);
});

test('the exit status of the program is the exit status of popcorn', async () => {
  const r = await popcorn(['run', '-k', '1', example('test/exit_code.wasm'), '7']);
  assert.equal(r.status, 7);
});

test('--on starts the program on the given kernel (the popcorn ABI says where it runs)', async () => {
  const r = await popcorn(['run', '-k', '3', '--on', '2', example('whoami.wasm')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^pid \d+ ppid 0 kernel 2 of 3\n$/);
  const first = await popcorn(['run', '-k', '2', example('whoami.wasm')]);
  assert.match(first.stdout, /kernel 0 of 2/);
});

test('--on a kernel that does not exist is a usage error', async () => {
  const r = await popcorn(['run', '-k', '2', '--on', '5', example('hello.wasm')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--on 5: this node has kernels 0–1/);
});

test('a trap prints the reason and a named wasm backtrace, exit 134 as wasmtime', async () => {
  const r = await popcorn(['run', '-k', '1', example('test/trap.wasm')]);
  assert.equal(r.status, 134);
  assert.match(r.stdout, /trap: calling level_one/);
  assert.match(r.stderr, /failed to run main module `trap.wasm`/);
  assert.match(r.stderr, /trap\.wasm!level_three/);
  assert.match(r.stderr, /trap\.wasm!level_two/);
  assert.match(r.stderr, /wasm trap: wasm `unreachable` instruction executed/);
  const three = r.stderr.indexOf('level_three');
  const two = r.stderr.indexOf('level_two');
  assert.ok(three < two, 'innermost frame first');
});

test('stdin reaches the program and EOF ends it', async () => {
  const r = await popcorn(['run', '-k', '1', example('test/echo_stdin.wasm')], { input: 'one\ntwo\n' });
  assert.equal(r.stdout, '> one\n> two\n');
  assert.equal(r.status, 0);
});

test('--env sets variables and --dir preopens directories (HOST::GUEST)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'popcorn-dir-'));
  try {
    writeFileSync(join(dir, 'in.txt'), 'alpha beta\ngamma\n');
    const r = await popcorn(['run', '-k', '1', '--dir', `${dir}::/data`, example('wc.wasm'), '/data/in.txt']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\s+2\s+3\s+17 \/data\/in.txt/);
    const cat = await popcorn(['run', '-k', '1', '--dir', `${dir}::/data`, example('cat.wasm'), '/data/nope']);
    assert.equal(cat.status, 1);
    assert.match(cat.stderr, /cat: \/data\/nope/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an invalid module is refused with a message that names the problem', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'popcorn-bad-'));
  try {
    const bad = join(dir, 'bad.wasm');
    writeFileSync(bad, 'not wasm at all');
    const r = await popcorn(['run', '-k', '1', bad]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad\.wasm.*not a valid WebAssembly module/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing module file is a clear error', async () => {
  const r = await popcorn(['run', '-k', '1', '/nonexistent/prog.wasm']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /\/nonexistent\/prog\.wasm/);
  assert.match(r.stderr, /no such file/i);
});

test('bad CLI arguments are usage errors', async () => {
  const r = await popcorn(['run', '--kernels', 'zero', example('hello.wasm')]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--kernels must be an integer/);
  const d = await popcorn(['run', '-k', '1', '--dir', '::x', example('hello.wasm')]);
  assert.equal(d.status, 2);
  assert.match(d.stderr, /invalid --dir/);
});

test('every example prints byte-identical output to node:wasi on the uninstrumented module', async () => {
  const { WASI } = await import('node:wasi');
  const cases: [string, string[]][] = [
    ['hello.wasm', ['x', 'y']],
    ['bench/nbody.wasm', ['1000']],
    ['bench/fib.wasm', ['20']],
    ['bench/sort.wasm', ['1000']],
    ['bench/sha256.wasm', ['1']],
    ['bench/matmul.wasm', ['16']],
    ['test/recurse.wasm', ['4']],
    ['test/spin.wasm', ['100000', '10000', 'x']],
  ];
  for (const [file, args] of cases) {
    const dir = mkdtempSync(join(tmpdir(), 'popcorn-ref-'));
    try {
      const outPath = join(dir, 'out');
      const { openSync, closeSync } = await import('node:fs');
      const out = openSync(outPath, 'w');
      const wasi = new WASI({ version: 'preview1', args: [file.split('/').pop() as string, ...args], env: {}, stdout: out, returnOnExit: true });
      const module = await WebAssembly.compile(readFileSync(example(file)));
      const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasi.wasiImport } as WebAssembly.Imports);
      wasi.start(instance);
      closeSync(out);
      const expected = readFileSync(outPath, 'utf8');
      const r = await popcorn(['run', '-k', '1', example(file), ...args]);
      assert.equal(r.status, 0, `${file}: ${r.stderr}`);
      assert.equal(r.stdout, expected, file);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
