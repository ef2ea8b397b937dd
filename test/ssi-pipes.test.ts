/**
 * Pipes and the shell across kernels: a pipeline spread over three kernels produces the same
 * bytes as on one kernel; redirections, background jobs and the shell's builtins.
 */

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { PopcornNode } from '../src/node/node.js';
import { bootNode, startProgram } from './ssi-helpers.js';

describe('pipes and the shell', () => {
  let node: PopcornNode;
  let data: string;
  before(async () => {
    node = await bootNode(3);
    data = fs.mkdtempSync(join(tmpdir(), 'popcorn-ssi-'));
    // 3 MiB of text lines: many pipe buffers' worth, so flow control is exercised.
    const lines = Array.from({ length: 3 * 16384 }, (_, i) => `${i} ${randomBytes(24).toString('base64')}`);
    fs.writeFileSync(join(data, 'in.txt'), `${lines.join('\n')}\n`);
  });
  after(async () => {
    await node.shutdown();
    fs.rmSync(data, { recursive: true, force: true });
  });

  async function sh(line: string): Promise<{ status: number; stdout: string; stderr: string }> {
    const p = await startProgram(node, 'sh.wasm', ['-c', line], { dirs: [{ host: data, guest: '/data' }] });
    const exit = await p.exit();
    return { status: exit.status, stdout: p.stdout(), stderr: p.stderr() };
  }

  it('a pipeline across three kernels produces the same bytes as on one kernel', async () => {
    const spread = await sh('cat /data/in.txt | @1 cat | @2 cat > /data/three.txt');
    assert.equal(spread.status, 0, spread.stderr);
    const local = await sh('@0 cat /data/in.txt | @0 cat | @0 cat > /data/one.txt');
    assert.equal(local.status, 0, local.stderr);
    const input = fs.readFileSync(join(data, 'in.txt'));
    assert.ok(fs.readFileSync(join(data, 'three.txt')).equals(input), 'three kernels: same bytes as the input');
    assert.ok(fs.readFileSync(join(data, 'one.txt')).equals(input), 'one kernel: same bytes as the input');
    const counted = await sh('cat /data/in.txt | @1 cat | @2 wc');
    const counted1 = await sh('@0 cat /data/in.txt | @0 cat | @0 wc');
    assert.equal(counted.stdout, counted1.stdout);
    assert.match(counted.stdout, /49152/);
  });

  it('redirections, background jobs, wait and exit status', async () => {
    const r = await sh('echo hello world > /data/greeting; cat < /data/greeting; echo again >> /data/greeting; wc < /data/greeting');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^hello world\n/);
    assert.equal(fs.readFileSync(join(data, 'greeting'), 'utf8'), 'hello world\nagain\n');
    const bg = await sh('@2 echo from the background & wait; echo after');
    assert.match(bg.stdout, /from the background\n(.|\n)*after\n$/);
    const shared = await sh('@1 echo written on kernel 1 > /data/shared; @2 cat /data/shared');
    assert.equal(shared.stdout, 'written on kernel 1\n', 'a file closed on one kernel is seen at once on another');
    const missing = await sh('no-such-program');
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /no-such-program: not found/);
  });
});
