/**
 * End to end: examples/test/wasi_probe.wasm (a C program exercising WASI through wasi-libc) runs
 * under our imports and under node:wasi, each in a fresh temp dir; stdout must match line for
 * line, except the lines where node:wasi (uvwasi) differs from wasmtime and we follow wasmtime.
 * Those are listed with both answers, so a change on either side shows up here.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { WASI } from 'node:wasi';
import { BufferedStream } from '../src/kernel/wasi/file-description.js';
import { runStandalone } from '../src/kernel/wasi/standalone.js';
import { tempDir } from './wasi-helpers.js';

const PROBE = new URL('../../examples/test/wasi_probe.wasm', import.meta.url);

/** line prefix → [node:wasi, ours (wasmtime)] */
const WASMTIME_DIFFERS: Record<string, [string, string]> = {
  // wasmtime/Linux: O_NOFOLLOW on a symlink is ELOOP; uvwasi opens the link target.
  'open O_NOFOLLOW symlink': ['ok', 'ELOOP'],
  // uvwasi's stdout lacks poll rights; our stdout (a BufferedStream) is always writable.
  'poll stdout': ['EPERM', '1 ready, POLLOUT yes'],
  // cap-std escape → EPERM in current wasmtime; uvwasi (and old wasmtime) say ENOTCAPABLE.
  'escape DIR/../x': ['ENOTCAPABLE', 'EPERM'],
  // uvwasi refuses to create symlinks whose target leaves the sandbox; wasmtime refuses only
  // absolute targets (as uvwasi: "symlink /etc" is EPERM on both, wasi-testsuite's
  // symlink_create), stores relative ones and refuses to follow them out, hence EPERM instead
  // of ENOENT on use.
  'symlink ../../..': ['ENOTCAPABLE', 'ok'],
  'escape through ../../.. symlink': ['ENOENT', 'EPERM'],
};

const ARGS = ['wasi_probe', '/sandbox'];
const ENV = { POPCORN_PROBE: 'probe-value' };

async function runNode(mod: WebAssembly.Module, dir: string): Promise<string> {
  const outFile = `${tempDir('wasi-probe-out-')}/out`;
  const fd = fs.openSync(outFile, 'w');
  try {
    const wasi = new WASI({
      version: 'preview1', args: ARGS, env: ENV, preopens: { '/sandbox': dir }, stdout: fd, returnOnExit: true,
    });
    const instance = await WebAssembly.instantiate(mod, wasi.getImportObject() as WebAssembly.Imports);
    assert.equal(wasi.start(instance), 0);
  } finally {
    fs.closeSync(fd);
  }
  return fs.readFileSync(outFile, 'utf8');
}

async function runOurs(mod: WebAssembly.Module, dir: string): Promise<string> {
  const stdin = new BufferedStream();
  stdin.end();
  const stdout = new BufferedStream();
  const status = await runStandalone(mod, {
    args: ARGS, env: ENV, stdio: [stdin, stdout, new BufferedStream()], preopens: { '/sandbox': dir },
    log: (m, e) => assert.fail(`${m}: ${String(e)}`),
  });
  assert.equal(status, 0, 'probe exit status (2 means a sandbox escape)');
  return stdout.text();
}

test('wasi_probe prints the same as under node:wasi, modulo wasmtime-vs-uvwasi errnos', { skip: !fs.existsSync(PROBE) }, async () => {
  const mod = await WebAssembly.compile(fs.readFileSync(PROBE));
  const [dirA, dirB] = [tempDir('wasi-probe-'), tempDir('wasi-probe-')];
  const node = (await runNode(mod, dirA)).split('\n');
  const ours = (await runOurs(mod, dirB)).split('\n');
  assert.equal(ours.length, node.length, ours.join('\n'));
  for (let i = 0; i < node.length; i++) {
    const key = node[i]!.split(': ')[0]!;
    const differs = WASMTIME_DIFFERS[key];
    if (differs !== undefined && node[i] === `${key}: ${differs[0]}`) {
      assert.equal(ours[i], `${key}: ${differs[1]}`);
    } else {
      assert.equal(ours[i], node[i]);
    }
  }
  assert.ok(ours.includes('done'));
  assert.deepEqual(fs.readdirSync(dirB), [], 'the probe cleaned up after itself');
  fs.rmSync(dirA, { recursive: true });
  fs.rmSync(dirB, { recursive: true });
});
