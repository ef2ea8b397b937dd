/**
 * A node's life: boot, idle, a kernel that dies, orderly shutdown.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { PopcornNode, LOST_STATUS } from '../src/node/node.js';
import { prepareProgram } from '../src/wasm/loader.js';
import { example, sleep, TEST_CACHE } from './cli-helpers.js';

process.env.POPCORN_CACHE_DIR = TEST_CACHE;

function quietIo(): { stdin: PassThrough; stdout: PassThrough; stderr: PassThrough } {
  const io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() };
  io.stdout.resume();
  io.stderr.resume();
  return io;
}


test('idle kernels sleep: an idle node uses almost no CPU', async () => {
  const node = await PopcornNode.boot({ kernels: 2, io: quietIo(), log: () => undefined });
  try {
    await sleep(200);
    const before = process.cpuUsage();
    const t0 = performance.now();
    await sleep(1000);
    const used = process.cpuUsage(before);
    const cpuMs = (used.user + used.system) / 1000;
    const wallMs = performance.now() - t0;
    assert.ok(cpuMs < 0.1 * wallMs, `idle node used ${cpuMs.toFixed(0)} ms of CPU in ${wallMs.toFixed(0)} ms`);
  } finally {
    await node.shutdown();
  }
});

test('a kernel that dies is reported and its processes end with a distinct status', async () => {
  const logs: string[] = [];
  const node = await PopcornNode.boot({ kernels: 2, io: quietIo(), log: (t) => logs.push(t) });
  try {
    const { hash } = await prepareProgram(example('test/spin.wasm'));
    const victim = await node.start({ hash, name: 'spin', args: ['spin', '100000000000'], env: [], dirs: [], kernel: 1 });
    const survivor = await node.start({ hash, name: 'spin', args: ['spin', '20000000'], env: [], dirs: [], kernel: 0 });
    await node.terminateKernel(1);
    const lost = await node.waitExit(victim);
    assert.equal(lost.status, LOST_STATUS);
    assert.ok(logs.some((l) => /kernel k1 died/.test(l)), logs.join('\n'));
    const ok = await node.waitExit(survivor);
    assert.equal(ok.status, 0, 'the other kernel carries on');
  } finally {
    await node.shutdown();
  }
});

test('shutdown ends running processes and every kernel thread', async () => {
  const node = await PopcornNode.boot({ kernels: 2, io: quietIo(), log: () => undefined });
  const { hash } = await prepareProgram(example('test/spin.wasm'));
  const pids = await Promise.all([0, 1].map((kernel) => node.start({ hash, name: 'spin', args: ['spin', '100000000000'], env: [], dirs: [], kernel })));
  const exits = pids.map((pid) => node.waitExit(pid));
  await node.shutdown();
  for (const exit of await Promise.all(exits)) assert.equal(exit.signal, 9);
});
