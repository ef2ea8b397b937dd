/**
 * The load balancer: an idle kernel picks up CPU-bound work from a busy one, and with equal load
 * nothing moves.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootNode, startProgram, type Started } from './ssi-helpers.js';
import { sleep } from './cli-helpers.js';

const spinners = async (node: Awaited<ReturnType<typeof bootNode>>, kernels: number[]): Promise<Started[]> => {
  const started = await Promise.all(kernels.map((kernel) => startProgram(node, 'test/signals.wasm', ['spin'], { bin: 'test', kernel })));
  await Promise.all(started.map((s) => s.waitFor('ready')));
  return started;
};

test('an idle kernel picks up work from a busy one', async () => {
  const node = await bootNode(2);
  try {
    const spin = await spinners(node, [0, 0, 0, 0]);
    let placement: number[] = [];
    for (let i = 0; i < 50; i++) {
      await sleep(100);
      placement = (await node.info()).map((k) => k.processes.length);
      if (placement[0] === 2 && placement[1] === 2) break;
    }
    assert.deepEqual(placement, [2, 2], 'four spinners end up two per kernel');
    const [k0, k1] = await node.info();
    assert.ok(k0!.migrations.out >= 2 && k1!.migrations.in >= 2, JSON.stringify([k0!.migrations, k1!.migrations]));
    for (const s of spin) assert.ok(await node.kill(s.pid, 9));
    await Promise.all(spin.map((s) => s.exit()));
  } finally {
    await node.shutdown();
  }
});

test('with equal load nothing moves', async () => {
  const node = await bootNode(2);
  try {
    const spin = await spinners(node, [0, 1, 0, 1]);
    await sleep(1500);
    for (const k of await node.info()) assert.deepEqual([k.migrations.in, k.migrations.out], [0, 0], `kernel ${k.index}`);
    for (const s of spin) assert.ok(await node.kill(s.pid, 9));
    await Promise.all(spin.map((s) => s.exit()));
  } finally {
    await node.shutdown();
  }
});
