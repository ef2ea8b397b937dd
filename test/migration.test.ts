/**
 * Live migration between kernels: a computation moved 100 times gives the unmigrated result;
 * processes move while blocked on a pipe (which keeps flowing both ways), with a child running,
 * with a file open mid-write, and with a caught signal still pending; the operator moves running
 * processes; bad requests are refused.
 */

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PopcornNode } from '../src/node/node.js';
import { bootNode, startProgram } from './ssi-helpers.js';
import { sleep } from './cli-helpers.js';

describe('migration', () => {
  let node: PopcornNode;
  let data: string;
  before(async () => {
    node = await bootNode(3);
    data = fs.mkdtempSync(join(tmpdir(), 'popcorn-migrate-'));
  });
  after(async () => {
    await node.shutdown();
    fs.rmSync(data, { recursive: true, force: true });
  });

  const where = async (pid: number): Promise<{ kernel: number; state: string } | undefined> => {
    for (const k of await node.info()) {
      const p = k.processes.find((q) => q.pid === pid);
      if (p !== undefined) return { kernel: k.index, state: p.state };
    }
    return undefined;
  };
  const migrate = (args: string[]): ReturnType<typeof startProgram> =>
    startProgram(node, 'test/migrate.wasm', args, { bin: 'test', dirs: [{ host: data, guest: '/data' }] });

  it('a computation migrated 100 times prints the same checksum as an unmigrated run', async () => {
    const still = await migrate(['compute', '300', '0']);
    const moved = await migrate(['compute', '300', '100']);
    assert.equal((await still.exit()).status, 0, still.stderr());
    assert.equal((await moved.exit()).status, 0, moved.stderr());
    const checksum = (text: string): string => /checksum (\w+)/.exec(text)?.[1] ?? 'none';
    assert.equal(checksum(moved.stdout()), checksum(still.stdout()));
    assert.match(moved.stdout(), /kernel 1/, '100 hops over 3 kernels end on kernel 1');
  });

  it('a process moves with a file open mid-write, and with a child running', async () => {
    const file = await migrate(['file', '/data/halves.txt']);
    assert.equal((await file.exit()).status, 0, file.stderr());
    assert.equal(fs.readFileSync(join(data, 'halves.txt'), 'utf8'), 'first half\nsecond half\n');
    const parent = await migrate(['child']);
    assert.equal((await parent.exit()).status, 0, parent.stderr());
    assert.match(parent.stdout(), /child \d+ exited 5, parent on kernel 1/);
  });

  it('a stage blocked reading a pipe moves, back and forth, and the pipeline delivers every byte', async () => {
    const sh = await startProgram(node, 'sh.wasm', ['-c', 'cat | @1 cat | @2 cat > /data/piped.txt'], { dirs: [{ host: data, guest: '/data' }] });
    let middle: number | undefined;
    for (let i = 0; i < 100 && middle === undefined; i++) {
      await sleep(20);
      middle = (await node.info())[1]!.processes.find((p) => p.name === 'cat.wasm')?.pid;
    }
    assert.ok(middle !== undefined, 'the middle stage runs on kernel 1');
    const chunks: string[] = [];
    const feed = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const line = `${chunks.length} ${'x'.repeat(chunks.length % 100)}\n`;
        chunks.push(line);
        sh.stdin.write(line);
      }
      await sleep(50);
    };
    await feed(200);
    // It has read what there was and waits on the pipe again (give a busy machine a moment; ask
    // once per look, since bytes still on their way may wake it right after).
    let state: string | undefined;
    for (let i = 0; i < 100 && state !== 'blocked'; i++) {
      await sleep(100);
      state = (await where(middle))?.state;
    }
    assert.equal(state, 'blocked');
    for (const kernel of [2, 0, 1, 2]) {
      await node.move(middle, kernel);
      assert.equal((await where(middle))?.kernel, kernel);
      await feed(200);
    }
    sh.stdin.end();
    assert.equal((await sh.exit()).status, 0, sh.stderr());
    assert.equal(fs.readFileSync(join(data, 'piped.txt'), 'utf8'), chunks.join(''));
  });

  it('a reader of the terminal moves while input keeps coming; every line is read there, and written in order', async () => {
    // Each move leaves the host owing the old kernel input (cat waits for it), and stdout
    // writes of the old kernel in flight: both must end up where the process went.
    const cat = await startProgram(node, 'cat.wasm', [], { kernel: 0 });
    const lines: string[] = [];
    for (let move = 1; move <= 40; move++) {
      for (let i = 0; i < 10; i++) {
        const line = `${lines.length} ${'y'.repeat(lines.length % 50)}\n`;
        lines.push(line);
        cat.stdin.write(line);
      }
      await node.move(cat.pid, move % 3);
    }
    cat.stdin.end();
    assert.equal((await cat.exit()).status, 0, cat.stderr());
    assert.equal(cat.stdout(), lines.join(''));
  });

  it('a move asked for while the process is already moving takes it on to where it was asked to go', async () => {
    // cat waits for its terminal, so it leaves only once the host has heard (a handoff): the
    // second request comes while no kernel has it. spin is on the CPU: the second request comes
    // while it is on its way to the first kernel.
    const cat = await startProgram(node, 'cat.wasm', [], { kernel: 0 });
    const spin = await startProgram(node, 'test/signals.wasm', ['spin'], { bin: 'test', kernel: 0 });
    await spin.waitFor('ready');
    for (const p of [cat, spin]) {
      let at = 0;
      for (let round = 0; round < 15; round++) {
        const [first, second] = [(at + 1) % 3, (at + 2) % 3];
        await Promise.all([node.move(p.pid, first), node.move(p.pid, second)]);
        at = second;
        assert.equal((await where(p.pid))?.kernel, second, `round ${round}: moved to ${first}, then asked for ${second}`);
      }
    }
    cat.stdin.end();
    assert.equal((await cat.exit()).status, 0, cat.stderr());
    assert.ok(await node.kill(spin.pid, 9));
    assert.equal((await spin.exit()).signal, 9);
  });

  it('a caught signal pending while the process is stopped is handled after the move', async () => {
    const p = await startProgram(node, 'test/signals.wasm', ['handle', '10'], { bin: 'test' });
    await p.waitFor('ready');
    assert.ok(await node.kill(p.pid, 19));
    assert.ok(await node.kill(p.pid, 10));
    await sleep(50);
    assert.ok(!p.stdout().includes('caught'), 'a stopped process runs no handler');
    await node.move(p.pid, 2);
    assert.deepEqual(await where(p.pid), { kernel: 2, state: 'stopped' });
    assert.ok(await node.kill(p.pid, 18));
    await p.waitFor('caught 10');
    p.stdin.end();
    assert.equal((await p.exit()).status, 0);
    assert.match(p.stdout(), /done/);
  });

  it('the operator moves a running process; signals and exit reach it where it went', async () => {
    const spin = await startProgram(node, 'test/signals.wasm', ['spin'], { bin: 'test' });
    await spin.waitFor('ready');
    for (const kernel of [1, 2, 1]) {
      await node.move(spin.pid, kernel);
      assert.equal((await where(spin.pid))?.kernel, kernel);
    }
    assert.ok(await node.kill(spin.pid, 10));
    await spin.waitFor('tick 1');
    assert.ok(await node.kill(spin.pid, 9));
    assert.equal((await spin.exit()).signal, 9);
    const counts = await node.info();
    assert.ok(counts.some((k) => k.migrations.in > 0) && counts.some((k) => k.migrations.out > 0));
  });

  it('refuses to move a process that does not exist, or to a kernel that does not', async () => {
    await assert.rejects(node.move(255 * 256, 1), /no process/);
    const p = await migrate(['bad']);
    assert.equal((await p.exit()).status, 0);
    assert.match(p.stdout(), /EINVAL/);
    const sleeper = await startProgram(node, 'test/signals.wasm', ['sleeper'], { bin: 'test' });
    await sleeper.waitFor('ready');
    await assert.rejects(node.move(sleeper.pid, 7), /no kernel 7/);
    assert.ok(await node.kill(sleeper.pid, 9));
    await sleeper.exit();
  });

  it('a move asked for a process that ended after leaving its origin is refused at once', async () => {
    // The origin still holds a forwarding entry to where it sent the process; it must answer from
    // its record (ended) rather than follow that entry to a kernel that sends the request back.
    const sleeper = await startProgram(node, 'test/signals.wasm', ['sleeper'], { bin: 'test' });
    await sleeper.waitFor('ready');
    await node.move(sleeper.pid, 1);
    await node.move(sleeper.pid, 2);
    assert.ok(await node.kill(sleeper.pid, 9));
    assert.equal((await sleeper.exit()).signal, 9);
    for (const kernel of [0, 1, 2]) await assert.rejects(node.move(sleeper.pid, kernel), /no process/);
    const sent = (await node.info()).reduce((n, k) => n + k.messages.sent, 0);
    await assert.rejects(node.move(sleeper.pid, 1), /no process/);
    const after = (await node.info()).reduce((n, k) => n + k.messages.sent, 0);
    assert.ok(after - sent < 50, `a refused move cost ${after - sent} messages`);
  });

  it('a parent moved while it spawns and waits makes each child once', async () => {
    // Each spawn waits for kernel 2's answer; a move between the answer and the spawn's re-run
    // used to lose the answer (the image does not carry it), so the spawn was sent again on
    // arrival and made a second child. Moves are aimed at that window for a bounded time.
    const children = 40;
    const family = await startProgram(node, 'test/family.wasm', ['many', String(children), '2'], { bin: 'test', kernel: 0 });
    let kernel = 0;
    const deadline = performance.now() + 30_000;
    for (let moves = 1; !family.stdout().includes('many ok') && performance.now() < deadline; moves++) {
      kernel = kernel === 0 ? 1 : 0;
      await node.move(family.pid, kernel).catch((error: unknown) => assert.match(String(error), /no process/));
      await sleep(moves % 3); // the operator's pace: the process gets the CPU between moves
    }
    if (!family.stdout().includes('many ok')) {
      await node.kill(family.pid, 9);
      assert.fail(`the parent did not finish: ${JSON.stringify(family.stdout().slice(-300))}`);
    }
    const exit = await family.exit();
    assert.equal(exit.status, 0, family.stdout() + family.stderr());
    const made = family.stdout().split('\n').filter((l) => l.startsWith('child pid=')).length;
    assert.equal(made, children, `${children} spawns made ${made} children`);
  });
});
