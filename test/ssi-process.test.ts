/**
 * One process space across kernels: a parent waits for a child on another kernel, orphans go to
 * init, WNOHANG, ECHILD, spawn errors, and a thousand spawns leave every table as it was.
 */

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PopcornNode } from '../src/node/node.js';
import { bootNode, startProgram } from './ssi-helpers.js';

const family = (node: PopcornNode, args: string[], kernel = 0): ReturnType<typeof startProgram> =>
  startProgram(node, 'test/family.wasm', args, { bin: 'test', kernel });

describe('processes across kernels', () => {
  let node: PopcornNode;
  before(async () => {
    node = await bootNode(3);
  });
  after(async () => {
    await node.shutdown();
  });

  it('a parent on kernel 0 waits for its child on kernel 1 and gets its exit status', async () => {
    const p = await family(node, ['wait', '1']);
    const exit = await p.exit();
    assert.equal(exit.status, 0, p.stdout() + p.stderr());
    const child = /child pid=(\d+) ppid=(\d+) kernel=(\d+)/.exec(p.stdout());
    assert.ok(child, p.stdout());
    assert.equal(Number(child[2]), p.pid, 'the child sees its parent');
    assert.equal(child[3], '1', 'the child ran on kernel 1');
    assert.match(p.stdout(), new RegExp(`child ${child[1]} exited 7 on kernel 1 ok`));
  });

  it('an orphan is re-parented to init (ppid 1) when its parent exits', async () => {
    const p = await family(node, ['orphan', '2']);
    assert.equal((await p.exit()).status, 0);
    await p.waitFor('orphan ppid=1');
  });

  it('WNOHANG returns at once while the child runs; ECHILD without children; spawn errors', async () => {
    for (const [args, expected] of [[['wnohang'], 'wnohang ok'], [['echild'], 'ECHILD'], [['badspawn'], 'ENOENT\nEINVAL']] as const) {
      const p = await family(node, [...args]);
      const exit = await p.exit();
      assert.equal(exit.status, 0, `${args.join(' ')}: ${p.stdout()}${p.stderr()}`);
      assert.ok(p.stdout().includes(expected), `${args.join(' ')}: ${p.stdout()}`);
    }
  });

  it('1,000 processes spawned and reaped leave process tables and memory at their baseline', async () => {
    const warm = await family(node, ['many', '20', '1']);
    await warm.exit();
    const baseline = await node.info();
    for (const kernel of ['-1', '1']) {
      const p = await family(node, ['many', '500', kernel]);
      assert.equal((await p.exit()).status, 0, p.stdout() + p.stderr());
      assert.match(p.stdout(), /many ok 500/);
    }
    const now = await node.info();
    for (const [i, k] of now.entries()) {
      assert.deepEqual(k.tables, baseline[i]!.tables, `kernel ${i}'s tables are back at their baseline`);
      assert.equal(k.processes.length, 0, `kernel ${i} has no process left`);
      // Garbage collection runs when it likes: allow what one collection cycle may leave behind.
      assert.ok(k.heap_bytes < baseline[i]!.heap_bytes + 32 * 2 ** 20, `kernel ${i} heap ${k.heap_bytes} vs ${baseline[i]!.heap_bytes}`);
    }
  });
});
