/**
 * The per-kernel scheduler on real kernels: fairness between CPU-bound processes, preemption of
 * a program whose only hot path is recursion, and a process blocked on input not holding up the
 * others.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { PopcornNode } from '../src/node/node.js';
import { prepareProgram } from '../src/wasm/loader.js';
import { example, sleep, TEST_CACHE } from './cli-helpers.js';

process.env.POPCORN_CACHE_DIR = TEST_CACHE;

interface Harness {
  node: PopcornNode;
  stdout: () => string;
  stdin: PassThrough;
}

async function bootOne(): Promise<Harness> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let text = '';
  stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
  stderr.resume();
  const node = await PopcornNode.boot({ kernels: 1, sliceMs: 10, io: { stdin, stdout, stderr }, log: () => undefined });
  return { node, stdout: () => text, stdin };
}

async function start(node: PopcornNode, file: string, args: string[]): Promise<number> {
  const { hash } = await prepareProgram(example(file));
  return node.start({ hash, name: file, args: [file, ...args], env: [], dirs: [] });
}


/** The last progress count each spin reported. */
function progress(text: string): Map<string, number> {
  const last = new Map<string, number>();
  for (const m of text.matchAll(/^spin (\w+) (\d+)$/gm)) last.set(m[1], Number(m[2]));
  return last;
}

test('two CPU-bound processes on one kernel progress within 20% of each other', async () => {
  const h = await bootOne();
  try {
    const a = await start(h.node, 'test/spin.wasm', ['100000000000', '1000000', 'a']);
    const b = await start(h.node, 'test/spin.wasm', ['100000000000', '1000000', 'b']);
    await sleep(2000);
    await h.node.kill(a, 9);
    await h.node.kill(b, 9);
    await Promise.all([h.node.waitExit(a), h.node.waitExit(b)]);
    const counts = progress(h.stdout());
    const ca = counts.get('a') ?? 0;
    const cb = counts.get('b') ?? 0;
    assert.ok(ca > 0 && cb > 0, `both ran: a=${ca} b=${cb}`);
    assert.ok(Math.abs(ca - cb) / Math.max(ca, cb) <= 0.2, `within 20%: a=${ca} b=${cb}`);
  } finally {
    await h.node.shutdown();
  }
});

test('a program whose only hot path is deep recursion is preempted too', async () => {
  const h = await bootOne();
  try {
    const r = await start(h.node, 'test/recurse.wasm', ['12']);
    const s = await start(h.node, 'test/spin.wasm', ['100000000000', '1000000', 's']);
    await sleep(1500);
    const text = h.stdout();
    assert.ok(!text.includes('recurse:'), 'the recursion is still running');
    assert.ok((progress(text).get('s') ?? 0) > 0, 'the spinner got the CPU while the recursion ran');
    await h.node.kill(r, 9);
    await h.node.kill(s, 9);
    const exits = await Promise.all([h.node.waitExit(r), h.node.waitExit(s)]);
    assert.deepEqual(exits.map((e) => e.signal), [9, 9]);
  } finally {
    await h.node.shutdown();
  }
});

test('a process blocked reading stdin does not stop the others', async () => {
  const h = await bootOne();
  try {
    const reader = await start(h.node, 'test/echo_stdin.wasm', []);
    const spin = await start(h.node, 'test/spin.wasm', ['20000000', '10000000', 'z']);
    const done = await h.node.waitExit(spin);
    assert.equal(done.status, 0);
    assert.match(h.stdout(), /spin z done/);
    h.stdin.write('late line\n');
    h.stdin.end();
    const echoed = await h.node.waitExit(reader);
    assert.equal(echoed.status, 0);
    assert.match(h.stdout(), /> late line/);
  } finally {
    await h.node.shutdown();
  }
});

test('a sleeping process is parked and wakes after its time', async () => {
  const h = await bootOne();
  try {
    const t0 = performance.now();
    const p = await start(h.node, 'test/sleep.wasm', ['200']);
    const exit = await h.node.waitExit(p);
    const elapsed = performance.now() - t0;
    assert.equal(exit.status, 0);
    assert.match(h.stdout(), /slept/);
    assert.ok(elapsed >= 190, `slept ${elapsed} ms`);
  } finally {
    await h.node.shutdown();
  }
});

test('SIGSTOP pauses a process and SIGCONT resumes it; SIGCHLD is ignored by default', async () => {
  const h = await bootOne();
  try {
    const p = await start(h.node, 'test/spin.wasm', ['100000000000', '1000000', 'p']);
    await sleep(400);
    await h.node.kill(p, 19);
    await sleep(200);
    const stopped = progress(h.stdout()).get('p') ?? 0;
    await sleep(500);
    assert.equal(progress(h.stdout()).get('p') ?? 0, stopped, 'no progress while stopped');
    await h.node.kill(p, 17);
    await h.node.kill(p, 18);
    await sleep(500);
    assert.ok((progress(h.stdout()).get('p') ?? 0) > stopped, 'progress again after SIGCONT');
    await h.node.kill(p, 15);
    const exit = await h.node.waitExit(p);
    assert.equal(exit.signal, 15);
    assert.equal(exit.status, 143);
  } finally {
    await h.node.shutdown();
  }
});
