/**
 * Resource limits: a fork bomb held at the node's process limit (EAGAIN, zombies counted) while
 * ps and kill still answer, and the node back at its baseline after; the memory ceiling
 * (memory.grow fails past it, ENOMEM at spawn above it); the fd limit (EMFILE); the options.
 */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { KernelInfo, PopcornNode } from '../src/node/node.js';
import { kernelLimits } from '../src/kernel/limits.js';
import { bootNode, startProgram } from './ssi-helpers.js';
import { CLI, TEST_CACHE, example, popcorn, sleep } from './cli-helpers.js';
import { prepareProgram } from '../src/wasm/loader.js';

const SIGKILL = 9;
const SIGSTOP = 19;
const limits = (node: PopcornNode, args: string[], dirs?: { host: string; guest: string }[]): ReturnType<typeof startProgram> =>
  startProgram(node, 'test/limits.wasm', args, { bin: 'test', dirs });
const openFds = (): number => fs.readdirSync('/proc/self/fd').length;
const everyProcess = (info: KernelInfo[]): KernelInfo['processes'] => info.flatMap((k) => k.processes);

/** `node.info()`, timed. */
async function timedInfo(node: PopcornNode): Promise<{ info: KernelInfo[]; ms: number }> {
  const start = performance.now();
  const info = await node.info();
  return { info, ms: performance.now() - start };
}

/** Poll `node.info()` until `done` holds (or fail after `timeoutMs`). */
async function infoUntil(node: PopcornNode, done: (info: KernelInfo[]) => boolean, what: string, timeoutMs = 10_000): Promise<KernelInfo[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const info = await node.info();
    if (done(info)) return info;
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}: ${JSON.stringify(everyProcess(info).map((p) => [p.pid, p.state]))}`);
    await sleep(20);
  }
}

/**
 * Stop every process, round after round, until none is left running, then kill them all: a
 * stopped process spawns no more, and holds its slot, so the bomb cannot grow back meanwhile.
 */
async function stopThenKill(node: PopcornNode): Promise<void> {
  await infoUntil(node, (info) => {
    const live = everyProcess(info).filter((p) => p.state !== 'stopped' && p.state !== 'zombie');
    for (const p of live) void node.kill(p.pid, SIGSTOP);
    return live.length === 0;
  }, 'every process of the bomb is stopped');
  const stopped = everyProcess(await node.info()).filter((p) => p.state === 'stopped');
  await Promise.all(stopped.map((p) => node.kill(p.pid, SIGKILL)));
}

describe('the process limit', () => {
  it('a fork bomb stays at --max-procs 64 with EAGAIN; ps and kill answer within a second; killed, the node is back at its baseline', async () => {
    const node = await bootNode(2, { maxProcs: 64 });
    try {
      const warm = await limits(node, ['zombies']);
      await warm.exit();
      const baseline = await infoUntil(node, (info) => everyProcess(info).length === 0, 'the warm-up is gone');
      const fdsBefore = openFds();

      const bomb = await limits(node, ['bomb']);
      await bomb.waitFor('spawn: EAGAIN');
      // Each kernel's origin table is its count (a ps is not atomic: a process moving between
      // two kernels as they answer may show on both, or on neither).
      const origins = (info: KernelInfo[]): number[] => info.map((k) => k.tables.origins);
      await infoUntil(node, (info) => origins(info).every((n) => n === 32), 'the bomb fills both kernels');

      for (let i = 0; i < 5; i++) {
        const { info, ms } = await timedInfo(node);
        assert.ok(ms < 1000, `ps answered in ${ms.toFixed(0)} ms`);
        assert.ok(origins(info).every((n) => n <= 32), `over a kernel's share of 32: ${origins(info).join(', ')}`);
        const victim = everyProcess(info).at(-1)!;
        const start = performance.now();
        await node.kill(victim.pid, 0);
        assert.ok(performance.now() - start < 1000, `kill answered in ${(performance.now() - start).toFixed(0)} ms`);
        await sleep(100);
      }

      await stopThenKill(node);
      const exit = await bomb.exit();
      assert.equal(exit.signal, SIGKILL, 'the bomb was killed');
      const after = await infoUntil(node, (info) => info.every((k, i) => k.processes.length === 0 && JSON.stringify(k.tables) === JSON.stringify(baseline[i]!.tables)), 'the tables are back at their baseline');
      for (const [i, k] of after.entries()) {
        // Garbage collection runs when it likes: allow what one collection cycle may leave behind.
        assert.ok(k.heap_bytes < baseline[i]!.heap_bytes + 32 * 2 ** 20, `kernel ${i} heap ${k.heap_bytes} vs ${baseline[i]!.heap_bytes}`);
      }
      assert.equal(openFds(), fdsBefore, 'host fds are back at their baseline');
      const failures = bomb.stdout().split('\n').filter((line) => line !== '');
      assert.ok(failures.length > 0);
      for (const line of failures) assert.equal(line, 'spawn: EAGAIN', 'every failed spawn names the limit');

      const again = await limits(node, ['exit']);
      assert.equal((await again.exit()).status, 0, 'the node spawns again');
    } finally {
      await node.shutdown();
    }
  });

  it('zombies count until they are reaped, as in Linux', async () => {
    const node = await bootNode(1, { maxProcs: 4 });
    try {
      const p = await limits(node, ['zombies']);
      assert.equal((await p.exit()).status, 0, p.stdout() + p.stderr());
      assert.equal(p.stdout(), 'zombies 3 EAGAIN\nstill EAGAIN\nafter reap ok\n');
    } finally {
      await node.shutdown();
    }
  });

  it("splits a node's limit between its kernels, the shares summing to it", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 254 }), (maxProcs, kernels) => {
      const shares = Array.from({ length: kernels }, (_, i) => kernelLimits({ maxProcs }, kernels, i).maxProcs);
      assert.equal(shares.reduce((a, b) => a + b, 0), maxProcs);
      assert.ok(Math.max(...shares) - Math.min(...shares) <= 1, 'evenly');
    }));
  });
});

describe('the memory ceiling', () => {
  it('memory.grow fails (-1) at --max-memory, and malloc returns NULL', async () => {
    const node = await bootNode(1, { maxMemoryBytes: 4 << 20 });
    try {
      const p = await limits(node, ['grow']);
      assert.equal((await p.exit()).status, 0, p.stderr());
      // 4 MiB is 64 pages; malloc's own data and the stack take some of them.
      assert.match(p.stdout(), /^malloc [0-3] MiB, grow fails at 64 pages\n$/);
    } finally {
      await node.shutdown();
    }
  });

  it('a module whose initial memory is over the ceiling is refused with ENOMEM', async () => {
    const node = await bootNode(1, { maxMemoryBytes: 64 << 10 });
    try {
      await assert.rejects(limits(node, ['exit']), /ENOMEM: the module's initial memory of \d+ bytes is over the limit of 65536/);
    } finally {
      await node.shutdown();
    }
    const run = await popcorn(['run', '-k', '1', '--max-memory', '64K', example('hello.wasm')]);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /ENOMEM/);
  });

  it('a memory the host cannot reserve is ENOMEM, not ENOEXEC', async () => {
    // What a fork bomb met at 12,600 processes: V8 reserves 10 GiB of address space per wasm
    // memory, so under a 4 GB address-space limit no process memory can be made at all.
    await prepareProgram(example('hello.wasm'));
    const script = `ulimit -v 4000000 && exec "${process.execPath}" "${CLI}" run -k 1 "${example('hello.wasm')}"`;
    const r = await new Promise<{ status: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn('bash', ['-c', script], { env: { ...process.env, POPCORN_CACHE_DIR: TEST_CACHE }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stderr }));
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /ENOMEM: a new process memory: WebAssembly\.Memory\(\): could not allocate memory/);
  });
});

describe('the fd limit', () => {
  it('path_open and pipe fail with EMFILE at --max-fds, dup2 past it with EBADF', async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'popcorn-limits-'));
    fs.writeFileSync(join(dir, 'f'), 'x');
    const node = await bootNode(1, { maxFds: 16 });
    try {
      const p = await limits(node, ['fds', '/data/f'], [{ host: dir, guest: '/data' }]);
      assert.equal((await p.exit()).status, 0, p.stdout() + p.stderr());
      // fds 0–2 are stdio, 3 and 4 the preopens: 5–15 are left.
      assert.equal(p.stdout(), 'opened 11 EMFILE\npipe EMFILE\ndup2 EBADF\npipe ok\n');
    } finally {
      await node.shutdown();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('limit options', () => {
  it('refuses a bad --max-procs, --max-memory or --max-fds with a usage error', async () => {
    for (const [option, value] of [['--max-procs', '0'], ['--max-memory', '1.5G'], ['--max-memory', '12X'], ['--max-fds', '-1']] as const) {
      const r = await popcorn(['run', option, value, example('hello.wasm')]);
      assert.notEqual(r.status, 0, `${option} ${value}`);
      assert.match(r.stderr, new RegExp(`${option}`), `${option} ${value}: ${r.stderr}`);
    }
    const ok = await popcorn(['run', '-k', '1', '--max-procs', '8', '--max-memory', '1G', '--max-fds', '64', example('hello.wasm')]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, 'Hello from popcorn!\n');
  });
});
