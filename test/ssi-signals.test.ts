/**
 * Signals delivered wherever the process runs and whatever it is doing: handlers run at the next
 * safe point, SIGKILL and SIGSTOP cannot be caught, SIGSTOP/SIGCONT pause and resume, SIGPIPE
 * kills a writer to a pipe without readers, and kill reaches a process blocked on a pipe whose
 * home is another kernel.
 */

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PopcornNode } from '../src/node/node.js';
import { bootNode, startProgram } from './ssi-helpers.js';
import { sleep } from './cli-helpers.js';

const signals = (node: PopcornNode, args: string[], kernel = 0): ReturnType<typeof startProgram> =>
  startProgram(node, 'test/signals.wasm', args, { bin: 'test', kernel });

describe('signals', () => {
  let node: PopcornNode;
  before(async () => {
    node = await bootNode(3);
  });
  after(async () => {
    await node.shutdown();
  });

  it('a handler runs in a process blocked in read on another kernel, and the read goes on', async () => {
    const p = await signals(node, ['handle', '10'], 2);
    await p.waitFor('ready');
    assert.ok(await node.kill(p.pid, 10));
    await p.waitFor('caught 10');
    assert.ok(await node.kill(p.pid, 10));
    await p.waitFor(/caught 10\n(.|\n)*caught 10/);
    p.stdin.end();
    const exit = await p.exit();
    assert.equal(exit.status, 0, p.stdout());
    assert.match(p.stdout(), /done/);
  });

  it('an ignored signal does nothing; SIGKILL and SIGSTOP can be neither caught nor ignored', async () => {
    const p = await signals(node, ['catch-kill'], 1);
    await p.waitFor('ready');
    assert.match(p.stdout(), /EINVAL\nEINVAL\n/);
    const q = await signals(node, ['ignore', '15'], 1);
    await q.waitFor('ready');
    assert.ok(await node.kill(q.pid, 15));
    await sleep(100);
    assert.ok(await node.kill(q.pid, 0), 'still alive after an ignored SIGTERM');
    for (const s of [p, q]) assert.ok(await node.kill(s.pid, 9));
    assert.deepEqual([(await p.exit()).signal, (await q.exit()).signal], [9, 9]);
  });

  it('a handler interrupts a busy loop at its next safe point', async () => {
    const p = await signals(node, ['spin'], 1);
    await p.waitFor('ready');
    assert.ok(await node.kill(p.pid, 10));
    await p.waitFor('tick 1');
    assert.ok(await node.kill(p.pid, 15));
    const exit = await p.exit();
    assert.deepEqual([exit.signal, exit.status], [15, 128 + 15]);
  });

  it('SIGTERM ends a process asleep; a signal a process sends itself acts before kill returns', async () => {
    const p = await signals(node, ['sleeper'], 2);
    await p.waitFor('ready');
    assert.ok(await node.kill(p.pid, 15));
    assert.equal((await p.exit()).signal, 15);
    assert.ok(!p.stdout().includes('done'));
    const self = await signals(node, ['self', '9'], 0);
    assert.equal((await self.exit()).signal, 9);
    assert.ok(!self.stdout().includes('after'), self.stdout());
    const caught = await signals(node, ['self', '15'], 1);
    assert.equal((await caught.exit()).status, 0);
    assert.match(caught.stdout(), /caught 15\nafter/, 'the handler ran before kill() returned to the program');
  });

  it('SIGSTOP pauses a child on another kernel and SIGCONT resumes it', async () => {
    const p = await startProgram(node, 'test/family.wasm', ['stop-cont', '2'], { bin: 'test' });
    const exit = await p.exit();
    assert.equal(exit.status, 0, p.stdout() + p.stderr());
    assert.match(p.stdout(), /stopped(.|\n)*resumed ok/);
    assert.match(p.stdout(), /count 5/);
  });

  it('kill reaches a process blocked reading a pipe whose home is another kernel', async () => {
    const p = await startProgram(node, 'test/family.wasm', ['kill-blocked', '1'], { bin: 'test' });
    const exit = await p.exit();
    assert.equal(exit.status, 0, p.stdout() + p.stderr());
    assert.match(p.stdout(), /killed by signal 15/);
  });

  it('writing to a pipe without readers raises SIGPIPE, or fails with EPIPE when it is ignored', async () => {
    const dies = await signals(node, ['pipe-writer']);
    assert.equal((await dies.exit()).signal, 13);
    const lives = await signals(node, ['pipe-writer', 'ignore']);
    assert.equal((await lives.exit()).status, 0);
    assert.match(lives.stdout(), /EPIPE/);
  });

  it('ps shows processes on every kernel with their states, zombies included', async () => {
    const sleepers = await Promise.all([0, 1, 2].map((k) => signals(node, ['sleeper'], k)));
    const spinner = await signals(node, ['spin'], 1);
    const parent = await startProgram(node, 'test/family.wasm', ['zombie', '2'], { bin: 'test' });
    await Promise.all([...sleepers, spinner].map((s) => s.waitFor('ready')));
    await parent.waitFor(/zombie \d+/);
    const zombiePid = Number(/zombie (\d+)/.exec(parent.stdout())![1]);
    const stopped = sleepers[2]!;
    assert.ok(await node.kill(stopped.pid, 19));
    await sleep(50);
    const infos = await node.info();
    const state = new Map(infos.flatMap((k) => k.processes.map((p) => [p.pid, { state: p.state, kernel: k.index }])));
    sleepers.forEach((s, k) => assert.equal(state.get(s.pid)?.kernel, k));
    assert.equal(state.get(sleepers[0]!.pid)?.state, 'blocked');
    assert.equal(state.get(stopped.pid)?.state, 'stopped');
    assert.match(state.get(spinner.pid)?.state ?? '', /running|runnable/);
    assert.deepEqual(state.get(zombiePid), { state: 'zombie', kernel: 2 }, 'an unreaped child is a zombie on its origin kernel');
    assert.equal(state.get(parent.pid)?.state, 'blocked');
    for (const s of [...sleepers, spinner]) assert.ok(await node.kill(s.pid, 9));
    await Promise.all([...sleepers, spinner].map((s) => s.exit()));
    assert.equal((await parent.exit()).status, 0);
    assert.match(parent.stdout(), /reaped/);
  });
});
