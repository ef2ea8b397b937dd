/**
 * Checkpoint/restore: a computation checkpointed mid-run (wherever it runs), killed and restored
 * prints the checksum of an uninterrupted run and leaves its file whole; --stop leaves it stopped
 * until SIGCONT; a process with a pipe end is refused and runs on; files that cannot be restored
 * (not a checkpoint, another version, truncated, corrupt, a changed or missing module, a file that
 * is gone) say why, start nothing, and the node goes on; and the commands, through a node.
 */

import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PopcornNode } from '../src/node/node.js';
import { decodeCheckpoint, encodeCheckpoint } from '../src/node/checkpoint-file.js';
import { sha256Hex } from '../src/wasm/hash.js';
import { attachProcess, bootNode, startProgram, type Started } from './ssi-helpers.js';
import { example, popcorn, sleep, type RunResult } from './cli-helpers.js';
import type { PsEntry } from '../src/node/control-protocol.js';

const checksum = (text: string): string => /checksum (\w+)/.exec(text)?.[1] ?? `none in ${JSON.stringify(text)}`;
const rounds = (n: number, from = 1): string => Array.from({ length: n - from + 1 }, (_, i) => `round ${from + i}\n`).join('');

describe('checkpoint and restore', () => {
  let node: PopcornNode;
  let data: string;
  before(async () => {
    node = await bootNode(2);
    data = fs.mkdtempSync(join(tmpdir(), 'popcorn-checkpoint-'));
  });
  after(async () => {
    await node.shutdown();
    fs.rmSync(data, { recursive: true, force: true });
  });

  const count = (args: string[], kernel?: number): Promise<Started> =>
    startProgram(node, 'test/checkpoint.wasm', ['count', ...args], { bin: 'test', kernel, dirs: [{ host: data, guest: '/data' }] });
  const restore = (file: Uint8Array, kernel?: number): Promise<Started> => attachProcess(node, (streams) => node.restore(file, { kernel, streams }));
  const where = async (pid: number): Promise<{ kernel: number; state: string } | undefined> => {
    for (const k of await node.info()) {
      const p = k.processes.find((q) => q.pid === pid);
      if (p !== undefined) return { kernel: k.index, state: p.state };
    }
    return undefined;
  };
  const processCount = async (): Promise<number> => (await node.info()).reduce((n, k) => n + k.processes.length, 0);

  it('a computation checkpointed mid-run on another kernel, killed and restored, ends as an uninterrupted run', async () => {
    const still = await count(['25']);
    const p = await count(['25', '/data/rounds.txt']);
    await node.move(p.pid, 1); // the request goes to its origin (kernel 0), which passes it on
    await p.waitFor('round 5\n');
    const file = await node.checkpoint(p.pid);
    assert.ok(await node.kill(p.pid, 9));
    assert.equal((await p.exit()).signal, 9);

    const { header, image } = decodeCheckpoint(file);
    assert.equal(header.pid, p.pid);
    assert.equal(header.module, example('test/checkpoint.wasm'));
    assert.equal(image.ppid, 0);
    assert.ok(header.fds.some((f) => /^3 preopen \/bin = /.test(f)), header.fds.join('; '));
    assert.ok(header.fds.some((f) => f.startsWith(`5 file ${join(data, 'rounds.txt')} (write, offset `)), header.fds.join('; '));
    assert.deepEqual(header.fds.slice(0, 3), ['0 stdin', '1 stdout', '2 stderr']);

    const r = await restore(file);
    assert.notEqual(r.pid, p.pid);
    const exit = await r.exit();
    assert.equal(exit.status, 0, r.stderr());
    assert.equal((await still.exit()).status, 0);
    assert.equal(checksum(r.stdout()), checksum(still.stdout()));
    const first = Number(/^round (\d+)\n/.exec(r.stdout())?.[1]);
    assert.ok(first > 5, `the restored process goes on from the checkpoint: ${r.stdout()}`);
    assert.ok(r.stdout().startsWith(rounds(25, first)));
    assert.equal(fs.readFileSync(join(data, 'rounds.txt'), 'utf8'), rounds(25), 'the file is whole: reopened at its offset');
  });

  it('a process on the CPU is captured at its next preemption check, also while it moves between kernels', async () => {
    // After computing, each waits for its stdin to end: however slow the machine, p is still there
    // for every move and checkpoint (it may have finished computing, then it is captured blocked).
    const compute = (kernel: number): Promise<Started> => startProgram(node, 'test/migrate.wasm', ['compute', '30000', '0', 'stdin'], { bin: 'test', kernel });
    const [p, still] = await Promise.all([compute(0), compute(1)]);
    still.stdin.end();
    await sleep(100);
    const moves = async (): Promise<void> => {
      for (const kernel of [1, 0, 1]) await node.move(p.pid, kernel);
    };
    // Awaited together from the start: a failed move fails the test there, never unhandled.
    const [files] = await Promise.all([Promise.all([1, 2, 3, 4, 5].map(() => node.checkpoint(p.pid))), moves()]);
    const file = await node.checkpoint(p.pid, true);
    assert.equal((await where(p.pid))?.state, 'stopped');
    assert.ok(await node.kill(p.pid, 9));
    assert.ok(decodeCheckpoint(file).header.cpu_ms > 0);
    const restored = await Promise.all([file, files[2] as Uint8Array].map((f) => restore(f)));
    assert.equal((await still.exit()).status, 0);
    for (const r of restored) {
      r.stdin.end();
      assert.equal((await r.exit()).status, 0, r.stderr());
      assert.equal(checksum(r.stdout()), checksum(still.stdout()));
    }
  });

  it('--stop leaves the process stopped until SIGCONT; its checkpoint runs on when restored', async () => {
    const p = await count(['12']);
    await p.waitFor('round 3\n');
    const file = await node.checkpoint(p.pid, true);
    assert.equal((await where(p.pid))?.state, 'stopped');
    const seen = p.stdout();
    await sleep(150);
    assert.equal(p.stdout(), seen, 'a stopped process prints nothing');
    assert.equal(decodeCheckpoint(file).header.stopped, false, 'captured before it was stopped');

    const r = await restore(file, 1);
    assert.equal((await where(r.pid))?.kernel, 1);
    assert.equal((await r.exit()).status, 0, r.stderr());
    assert.ok(await node.kill(p.pid, 18));
    assert.equal((await p.exit()).status, 0);
    assert.equal(checksum(r.stdout()), checksum(p.stdout()));
  });

  it('a caught signal still pending in a stopped process is handled after the restore', async () => {
    const p = await startProgram(node, 'test/signals.wasm', ['handle', '10'], { bin: 'test' });
    await p.waitFor('ready');
    assert.ok(await node.kill(p.pid, 19));
    assert.ok(await node.kill(p.pid, 10));
    const file = await node.checkpoint(p.pid);
    assert.ok(await node.kill(p.pid, 9));
    assert.equal(decodeCheckpoint(file).header.stopped, true);
    const r = await restore(file);
    await r.waitFor('caught 10');
    r.stdin.end();
    assert.equal((await r.exit()).status, 0);
    assert.match(r.stdout(), /done/);
  });

  it('refuses a process with a pipe end, and one that does not exist; the process runs on', async () => {
    const p = await startProgram(node, 'test/checkpoint.wasm', ['pipe'], { bin: 'test' });
    await p.waitFor('ready 4 5');
    await assert.rejects(node.checkpoint(p.pid, true), /fd 4 is a pipe end: a checkpoint can hold only files and the terminal/);
    assert.notEqual((await where(p.pid))?.state, 'stopped');
    await assert.rejects(node.checkpoint(255 * 256), /no process/);
    await assert.rejects(node.checkpoint(p.pid + 256), /no process/);
    assert.ok(await node.kill(p.pid, 9));
    assert.equal((await p.exit()).signal, 9);
  });

  it('a checkpoint that cannot be restored says why, starts nothing, and the node goes on', async () => {
    const output = join(data, 'gone.txt');
    const p = await count(['14', '/data/gone.txt']);
    await p.waitFor('round 2\n');
    const file = await node.checkpoint(p.pid, true);
    assert.ok(await node.kill(p.pid, 9));
    await p.exit();
    const { header, image } = decodeCheckpoint(file);
    const nl = file.indexOf(0x0a);
    const body = file.subarray(nl + 1);
    const withHeader = (changes: Record<string, unknown>, newBody = body): Uint8Array =>
      Buffer.concat([Buffer.from(`${JSON.stringify({ ...header, ...changes })}\n`), newBody]);
    const flipped = Buffer.from(file);
    flipped[nl + 1 + Math.floor(body.length / 2)] ^= 0x40;
    const garbage = new Uint8Array(16).fill(0xff);
    const otherModule = join(data, 'checkpoint.wasm');
    fs.copyFileSync(example('hello.wasm'), otherModule);
    const fakeHash = 'f'.repeat(64);

    const processes = await processCount();
    const refusals: [Uint8Array, RegExp][] = [
      [Buffer.from('hello\nworld\n'), /the checkpoint is not a popcorn checkpoint/],
      [withHeader({ version: 4 }), /is a version 4 popcorn checkpoint; this popcorn reads version 3/],
      [file.subarray(0, file.length - 100), /is truncated: its image has \d+ of \d+ bytes/],
      [flipped, /is corrupt: its image does not match the checksum in its header/],
      [withHeader({ body_bytes: garbage.length, body_sha256: sha256Hex(garbage) }, garbage), /is corrupt: truncated: need/],
      [encodeCheckpoint({ ...image, hash: fakeHash }, otherModule, ''), new RegExp(`module ${otherModule} has changed since the checkpoint: hash [0-9a-f]{64}, was ${fakeHash}`)],
      [encodeCheckpoint({ ...image, hash: fakeHash }, '/nonexistent/checkpoint.wasm', ''), /module \/nonexistent\/checkpoint.wasm no longer exists, and its hash f+ is not in the module cache/],
      [encodeCheckpoint(image, header.module, 'a'.repeat(64)), /is instrumented differently by this popcorn/],
      // Found by fuzzing: the hash named a file in the cache directory, so this one led out of it.
      [encodeCheckpoint({ ...image, hash: `../../${image.hash}` }, header.module, header.instrumented), /is corrupt: its module hash is not a sha256/],
      [encodeCheckpoint({ ...image, hash: 'é'.repeat(300) }, header.module, header.instrumented), /is corrupt: its module hash is not a sha256/],
    ];
    for (const [bytes, why] of refusals) await assert.rejects(node.restore(bytes), why);
    fs.renameSync(output, `${output}.away`);
    await assert.rejects(node.restore(file), new RegExp(`fd 5: file ${output} no longer exists`));
    fs.renameSync(`${output}.away`, output);
    assert.equal(await processCount(), processes, 'nothing was started');

    const r = await restore(file);
    assert.equal((await r.exit()).status, 0, r.stderr());
    assert.match(r.stdout(), /round 14\nchecksum/);
    assert.equal(fs.readFileSync(output, 'utf8'), rounds(14));
  });
});

test('popcorn checkpoint and restore through a running node', async () => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'popcorn-rt-'));
  const env = { POPCORN_RUNTIME_DIR: dir };
  const cli = (args: string[]): Promise<RunResult> => popcorn(args, { env, timeoutMs: 60_000 });
  const state = async (pid: number): Promise<string | undefined> => {
    const r = await cli(['ps', '--json']);
    return (JSON.parse(r.stdout) as PsEntry[]).find((p) => p.pid === pid)?.state;
  };
  const file = join(dir, 'count.ckpt');
  try {
    const boot = await cli(['boot', '--kernels', '2']);
    assert.equal(boot.status, 0, boot.stderr);
    // 600 rounds of 20 ms: it is still running when the checkpoint comes, however slow each CLI
    // command is on a loaded machine (each can take seconds); 60 rounds ended first under load.
    const started = await cli(['run', '--detach', '--on', '1', 'examples/test/checkpoint.wasm', 'count', '600']);
    assert.equal(started.status, 0, started.stderr);
    const pid = Number(started.stdout.trim());

    const taken = await cli(['checkpoint', String(pid), file, '--stop']);
    assert.equal(taken.status, 0, taken.stderr);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.match(fs.readFileSync(file).subarray(0, 60).toString(), /^\{"format":"popcorn-checkpoint","version":3,/);
    assert.equal(await state(pid), 'stopped');
    assert.equal((await cli(['kill', '-KILL', String(pid)])).status, 0);

    const [restored, reference] = await Promise.all([cli(['restore', file]), cli(['run', 'examples/test/checkpoint.wasm', 'count', '600'])]);
    assert.equal(restored.status, 0, restored.stderr);
    assert.equal(reference.status, 0, reference.stderr);
    assert.match(restored.stdout, /round 600\nchecksum/);
    assert.doesNotMatch(restored.stdout, /^round 1\n/, 'it goes on from where it was');
    assert.equal(checksum(restored.stdout), checksum(reference.stdout));

    const detached = await cli(['restore', '--detach', '--on', '1', file]);
    assert.equal(detached.status, 0, detached.stderr);
    assert.ok(Number(detached.stdout.trim()) > 0);

    const piped = await cli(['run', '--detach', 'examples/test/checkpoint.wasm', 'pipe']);
    const refused = await cli(['checkpoint', piped.stdout.trim(), join(dir, 'pipe.ckpt')]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /popcorn: cannot checkpoint process \d+: fd 3 is a pipe end: a checkpoint can hold only files and the terminal/);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('pipe')), [], 'no file, not even a temporary one');
    await cli(['kill', '-KILL', piped.stdout.trim()]);

    const missing = await cli(['restore', join(dir, 'nothing.ckpt')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /popcorn: no such file: .*nothing\.ckpt/);
  } finally {
    await cli(['shutdown']).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
