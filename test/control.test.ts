/**
 * A node in the background and the commands that talk to it: `popcorn boot`, `run --detach`, `ps`,
 * `kill`, `kernels`, `run` through the node, `shutdown`, and the control socket's permissions.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, TEST_CACHE, example, popcorn, type RunResult } from './cli-helpers.js';
import type { PsEntry } from '../src/node/control-protocol.js';

const SPIN = ['examples/test/spin.wasm', '100000000000', '1000000000000'];

function withNode(): { dir: string; env: Record<string, string>; cli: (args: string[], input?: string) => Promise<RunResult>; socket: string; cleanup: () => Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), 'popcorn-rt-'));
  const env = { POPCORN_RUNTIME_DIR: dir };
  const cli = (args: string[], input?: string): Promise<RunResult> => popcorn(args, { env, timeoutMs: 20_000, ...(input === undefined ? {} : { input }) });
  const socket = join(dir, 'control.sock');
  const cleanup = async (): Promise<void> => {
    if (existsSync(socket)) await cli(['shutdown']).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, env, cli, socket, cleanup };
}

async function ps(cli: (args: string[]) => Promise<RunResult>): Promise<PsEntry[]> {
  const r = await cli(['ps', '--json']);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as PsEntry[];
}

/** Try to connect to `socket` as user nobody; resolves with the error code ('OK' if it connected). */
function connectAsNobody(socket: string): Promise<string> {
  const script = `const s = require('node:net').createConnection(${JSON.stringify(socket)});
s.on('connect', () => { process.stdout.write('OK'); s.destroy(); });
s.on('error', (e) => process.stdout.write(e.code));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { uid: 65534, gid: 65534, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', () => resolve(out));
  });
}

test('boot, run --detach, ps, kill, kernels, run through the node, shutdown', async () => {
  const { dir, env, cli, socket, cleanup } = withNode();
  try {
    const none = await cli(['ps']);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /no popcorn node is running \(start one with `popcorn boot`\)/);

    const boot = await cli(['boot', '--kernels', '2']);
    assert.equal(boot.status, 0, boot.stderr);
    assert.match(boot.stdout, /popcorn node started/);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(socket).mode & 0o777, 0o600);

    const again = await cli(['boot']);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already running/);

    const a = await cli(['run', '--detach', '--on', '0', ...SPIN, 'a']);
    const b = await cli(['run', '--detach', '--on', '1', ...SPIN, 'b']);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(b.status, 0, b.stderr);
    const pidA = Number(a.stdout.trim());
    const pidB = Number(b.stdout.trim());
    assert.ok(pidA > 0 && pidB > 0 && pidA !== pidB);

    const list = await ps(cli);
    const pa = list.find((p) => p.pid === pidA);
    const pb = list.find((p) => p.pid === pidB);
    assert.ok(pa !== undefined && pb !== undefined, JSON.stringify(list));
    assert.equal(pa.kernel, 0);
    assert.equal(pb.kernel, 1);
    for (const p of [pa, pb]) {
      assert.match(p.state, /^(running|runnable)$/);
      assert.equal(p.ppid, 0);
      assert.ok(p.memory_bytes > 0);
      assert.match(p.command, /^spin\.wasm 100000000000 /);
    }

    const kernels = await cli(['kernels', '--json']);
    assert.equal(kernels.status, 0, kernels.stderr);
    const k = JSON.parse(kernels.stdout) as { kernels: { kernel: number; processes: number; load: number; messages: { sent: number; received: number } }[] };
    assert.deepEqual(k.kernels.map((x) => x.kernel), [0, 1]);
    for (const x of k.kernels) {
      assert.equal(x.processes, 1);
      assert.ok(x.load >= 1);
      assert.ok(x.messages.sent > 0 && x.messages.received > 0);
    }

    const kill = await cli(['kill', '-TERM', String(pidA)]);
    assert.equal(kill.status, 0, kill.stderr);
    let after = await ps(cli);
    for (let i = 0; i < 40 && after.some((p) => p.pid === pidA); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      after = await ps(cli);
    }
    assert.ok(!after.some((p) => p.pid === pidA), 'the killed process is gone');
    assert.ok(after.some((p) => p.pid === pidB), 'the other one still runs');

    const unknown = await cli(['kill', '-s', 'KILL', '99999']);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no process with pid 99999/);

    // Without --detach, run goes through the node with its stdio relayed.
    const hello = await cli(['run', example('hello.wasm'), 'x']);
    assert.equal(hello.status, 0, hello.stderr);
    assert.equal(hello.stdout, 'Hello from popcorn!\nx\n');
    const echo = await cli(['run', '--on', '1', example('test/echo_stdin.wasm')], 'one\ntwo\n');
    assert.equal(echo.stdout, '> one\n> two\n');
    // stdin a file (`< FILE`): an fs.ReadStream, not a pipe or a terminal
    const input = join(dir, 'input.txt');
    writeFileSync(input, 'three\n');
    const fromFile = spawnSync(process.execPath, [CLI, 'run', example('test/echo_stdin.wasm')], {
      env: { ...process.env, POPCORN_CACHE_DIR: TEST_CACHE, ...env },
      stdio: [openSync(input, 'r'), 'pipe', 'pipe'],
      encoding: 'utf8',
    });
    assert.equal(fromFile.status, 0, fromFile.stderr);
    assert.equal(fromFile.stdout, '> three\n');
    const status = await cli(['run', example('test/exit_code.wasm'), '7']);
    assert.equal(status.status, 7);

    const down = await cli(['shutdown']);
    assert.equal(down.status, 0, down.stderr);
    assert.equal(existsSync(socket), false, 'the socket is removed');
    const gone = await cli(['kernels']);
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /no popcorn node is running/);
  } finally {
    await cleanup();
  }
});

test('the control socket refuses other users', { skip: process.getuid?.() !== 0 ? 'needs root to run as another user' : false }, async () => {
  const { dir, cli, socket, cleanup } = withNode();
  try {
    const boot = await cli(['boot', '--kernels', '1']);
    assert.equal(boot.status, 0, boot.stderr);
    assert.equal(await connectAsNobody(socket), 'EACCES', 'the 0700 directory keeps others out');
    chmodSync(dir, 0o711);
    assert.equal(await connectAsNobody(socket), 'EACCES', 'and so does the 0600 socket itself');
    chmodSync(dir, 0o700);
  } finally {
    await cleanup();
  }
});

test('a stale socket left by a dead node is replaced by the next boot', async () => {
  const { cli, socket, cleanup } = withNode();
  try {
    const boot = await cli(['boot', '--kernels', '1']);
    assert.equal(boot.status, 0, boot.stderr);
    const pid = Number(/pid (\d+)/.exec(boot.stdout)?.[1]);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(existsSync(socket), 'a killed node leaves its socket behind');
    const ps = await cli(['ps']);
    assert.equal(ps.status, 1);
    assert.match(ps.stderr, /no popcorn node is running/);
    const again = await cli(['boot', '--kernels', '1']);
    assert.equal(again.status, 0, again.stderr);
    assert.equal((await cli(['ps'])).status, 0);
  } finally {
    await cleanup();
  }
});
