/**
 * A cluster under real network faults. Each node is `popcorn boot --foreground` in a network
 * namespace of its own, made by this test (test/netns-helpers.ts): the nodes reach each other only
 * through a TCP relay in this process that holds every chunk 50 ms each way, and each namespace
 * drops 5 % of the packets it receives (nftables `numgen random`; this machine's kernel has no
 * netem). The nodes are driven through their control sockets (Unix sockets, reachable from
 * outside the namespaces) with the real `popcorn` command.
 *
 *   a. Under delay and loss, runs across nodes print what node:wasi prints, ps and kill reach
 *      other nodes, and a process moved across all three nodes while it copies stdin to stdout
 *      loses and duplicates nothing.
 *      Over a link limited to 8 MiB/s, a 32 MiB move (~4 s, twice the loss timeout) completes
 *      and no node is declared lost.
 *   b. A partition (a veth taken down): the others declare the node lost within a bound, a request
 *      caught by it and requests after it fail instead of hanging, streams between the
 *      surviving nodes (and on the island) lose nothing, the island's processes are reported lost
 *      to parents elsewhere (137); after healing, a node boots again in that namespace, joins
 *      with a new node number, and runs work.
 *   c. A node killed with SIGKILL in the middle of a migration — the source early in the move, the
 *      destination (the source being the origin, then another node) — with a 32 MiB process:
 *      it ends up alive on exactly one surviving kernel (and a signal reaches it), or reported
 *      lost to its run (137); never both, never silently gone; and the migrate command returns.
 *      The source killed at the very end of a move is a test of its own: its last bytes may still
 *      carry the process to the destination after the origin reported it lost (137); the origin
 *      then refuses it there before it runs or is listed, so the report stays true.
 *
 * Skips, saying why, when not root or when network namespaces or nftables are unavailable. The
 * tests share one cluster and run in order; `after` removes namespaces, veths and processes
 * whatever happened.
 */

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WASI } from 'node:wasi';
import { TEST_CACHE, example, sleep } from './cli-helpers.js';
import { eventually, type Session } from './cluster-helpers.js';
import { NetLab, netnsSkipReason, type Feed, type LabNode } from './netns-helpers.js';
import { prepareProgram } from '../src/wasm/loader.js';
import type { PsEntry } from '../src/node/control-protocol.js';

const SKIP = netnsSkipReason();
const skip = SKIP ?? false;

const DELAY_MS = 50;
const LOSS_PERCENT = 5;
/** The bound on detecting a partition: 2 s by design (docs/cluster.md), with room for a loaded 2-core machine. */
const DETECT_BOUND_MS = 5_000;
/** A request that must fail fast: at most this long, CLI start-up included. */
const FAIL_FAST_MS = 5_000;
const MIB = 1 << 20;
const HOLD_MIB = 32;
/** Runs until killed; a progress line every 10^7 iterations. */
const FOREVER = ['100000000000', '10000000'];

let lab: NetLab | undefined;
let n0: LabNode;
let n1: LabNode;
let n2: LabNode;
/** The node in namespace 2 now: node 2, then the one that rejoined after the partition, then test c's (kernel 2 each time). */
let inNs2: LabNode | undefined;
const timings: string[] = [];

interface Outcome {
  stdout: string;
  stderr: string;
  status: number | null;
}

/** What `program ARGS` (stdin `input`) prints under node:wasi on the uninstrumented module. */
function nodeWasi(program: string, args: string[], input = ''): Outcome {
  const dir = mkdtempSync(join(tmpdir(), 'popcorn-netns-ref-'));
  try {
    writeFileSync(join(dir, 'in'), input);
    const fds = { stdin: openSync(join(dir, 'in'), 'r'), stdout: openSync(join(dir, 'out'), 'w'), stderr: openSync(join(dir, 'err'), 'w') };
    let status: number;
    try {
      const wasi = new WASI({ version: 'preview1', args: [program.split('/').pop() as string, ...args], env: {}, returnOnExit: true, ...fds });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(example(program))), { wasi_snapshot_preview1: wasi.wasiImport } as WebAssembly.Imports);
      status = wasi.start(instance);
    } finally {
      for (const fd of Object.values(fds)) closeSync(fd);
    }
    return { stdout: readFileSync(join(dir, 'out'), 'utf8'), stderr: readFileSync(join(dir, 'err'), 'utf8'), status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Text lines of base64: what the cat streams carry. */
const lines = (bytes: number, tag: string): string =>
  randomBytes(bytes).toString('base64').match(/.{1,76}/g)!.map((l) => `${tag} ${l}\n`).join('');

const CAT_INPUT = lines(192 * 1024, 'ref');
const CASES: { program: string; args: string[]; input?: string }[] = [
  { program: 'hello.wasm', args: ['across', 'the net'] },
  { program: 'test/spin.wasm', args: ['3000000', '1000000', 'x'] },
  { program: 'test/exit_code.wasm', args: ['7'] },
  { program: 'cat.wasm', args: [], input: CAT_INPUT },
];
let references: Outcome[] = [];

before(async () => {
  if (SKIP !== undefined) return;
  // node:wasi runs on this thread, which also runs the relay: before the lab exists.
  references = CASES.map((c) => nodeWasi(c.program, c.args, c.input));
  const previous = process.env.POPCORN_CACHE_DIR;
  process.env.POPCORN_CACHE_DIR = TEST_CACHE;
  try {
    for (const m of ['hello.wasm', 'whoami.wasm', 'cat.wasm', 'test/spin.wasm', 'test/exit_code.wasm', 'bench/hold.wasm']) await prepareProgram(example(m));
  } finally {
    if (previous === undefined) delete process.env.POPCORN_CACHE_DIR;
    else process.env.POPCORN_CACHE_DIR = previous;
  }
  lab = await NetLab.create({ namespaces: 3, delayMs: DELAY_MS, lossPercent: LOSS_PERCENT });
  n0 = await lab.boot(0);
  n1 = await lab.boot(1, { join: n0 });
  n2 = await lab.boot(2, { join: n1 });
  inNs2 = n2;
}, { timeout: 90_000 });

after(async () => {
  await lab?.close();
  if (timings.length > 0) console.log(`# netns timings: ${timings.join('; ')}`);
});

async function ps(node: LabNode): Promise<PsEntry[]> {
  const r = await node.cli(['ps', '--json']);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as PsEntry[];
}

async function kernelNodes(node: LabNode): Promise<number[]> {
  const r = await node.cli(['kernels', '--json']);
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { kernels: { node: number }[] }).kernels.map((k) => k.node);
}

/** The one process whose command starts with `command`, as `node` sees it (waits for it). */
function findProcess(node: LabNode, command: string): Promise<PsEntry> {
  return eventually(`a process '${command}' in ps`, async () => {
    const found = (await ps(node)).filter((p) => p.command.startsWith(command));
    assert.ok(found.length <= 1, `more than one '${command}': ${JSON.stringify(found)}`);
    return found[0];
  }, 15_000);
}

/** The last lines of every node's log, for a failure's message. */
function nodeLogs(): string {
  const nodes = new Set([n0, n1, n2, inNs2].filter((n): n is LabNode => n !== undefined));
  return [...nodes].map((n) => `\n--- node ${n.node} (namespace ${n.ns}) log:\n${n.log().split('\n').slice(-12).join('\n')}`).join('');
}

/** `fn`'s result and how long it took, in ms. */
async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await fn();
  return [value, performance.now() - start];
}

test('a. with 50 ms delay and 5 % loss: runs across nodes print what node:wasi prints; ps, kill and a move across all nodes work', { skip, timeout: 90_000 }, async () => {
  const net = lab as NetLab;
  for (const node of [n0, n1, n2]) assert.deepEqual(await kernelNodes(node), [0, 1, 2], `node ${node.node}'s view`);
  assert.deepEqual([n0.node, n1.node, n2.node], [0, 1, 2]);

  // Every program from each node on the next node's kernel (the four at once), against node:wasi.
  for (const [from, on] of [[n0, 1], [n1, 2], [n2, 0]] as const) {
    const [runs, ms] = await timed(() => Promise.all(CASES.map((c) =>
      from.cli(['run', '--on', String(on), example(c.program), ...c.args], { timeoutMs: 60_000, ...(c.input === undefined ? {} : { input: c.input }) }))));
    timings.push(`${CASES.length} runs from node ${from.node} on kernel ${on}: ${ms.toFixed(0)} ms`);
    for (const [i, r] of runs.entries()) {
      const ref = references[i] as Outcome;
      const what = `${CASES[i]?.program} from node ${from.node} on kernel ${on}`;
      assert.equal(r.status, ref.status, `${what}: ${r.stderr}`);
      assert.equal(r.stdout, ref.stdout, what);
      assert.equal(r.stderr, ref.stderr, what);
    }
  }

  // ps and kill across nodes: a detached process on node 2, listed by all, killed from node 1.
  const detached = await n0.cli(['run', '--detach', '--on', '2', example('test/spin.wasm'), ...FOREVER, 'detached']);
  assert.equal(detached.status, 0, detached.stderr);
  const pid = Number(detached.stdout.trim());
  for (const node of [n0, n1, n2]) {
    const p = await findProcess(node, 'spin.wasm 100000000000 10000000 detached');
    assert.equal(p.pid, pid);
    assert.equal(p.kernel, 2);
  }
  const kill = await n1.cli(['kill', '-KILL', String(pid)]);
  assert.equal(kill.status, 0, kill.stderr);
  for (const node of [n0, n1, n2]) {
    await eventually(`the killed process to leave node ${node.node}'s ps`, async () => ((await ps(node)).some((p) => p.pid === pid) ? undefined : true));
  }
  const again = await n2.cli(['kill', String(pid)]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, new RegExp(`no process with pid ${pid}`));

  // cat copies its stdin (at node 1) to its stdout (node 1) while it is moved to every node.
  const feed = n1.feed(['run', '--on', '0', example('cat.wasm')]);
  let sent = '';
  const send = async (tag: string): Promise<void> => {
    const chunk = lines(48 * 1024, tag);
    sent += chunk;
    await feed.write(chunk);
    await feed.waitFor(chunk.slice(-40), 30_000);
  };
  await send('home');
  const cat = await findProcess(n2, 'cat.wasm');
  assert.equal(cat.kernel, 0);
  for (const [asker, to] of [[n2, 1], [n0, 2], [n1, 0]] as const) {
    const [moved, ms] = await timed(() => asker.cli(['migrate', String(cat.pid), String(to)]));
    assert.equal(moved.status, 0, `migrate to ${to} from node ${asker.node}: ${moved.stderr}${nodeLogs()}`);
    timings.push(`move to kernel ${to} ${ms.toFixed(0)} ms (CLI included)`);
    assert.equal((await ps(n0)).find((p) => p.pid === cat.pid)?.kernel, to);
    await send(`on${to}`);
  }
  feed.end();
  const done = await feed.done;
  assert.equal(done.status, 0, done.stderr);
  assert.equal(done.stderr, '');
  assert.ok(done.stdout === sent, `cat's output is its input, byte for byte (${done.stdout.length} of ${sent.length} bytes)`);
  assert.equal((references[3] as Outcome).stdout, CAT_INPUT, 'as node:wasi prints it: its input');

  // The faults were real: bytes crossed the relays, and every namespace dropped packets.
  for (const [i, j] of [[0, 1], [1, 0], [1, 2], [2, 1], [0, 2], [2, 0]] as const) assert.ok(net.flow(i, j) > 0, `bytes went from namespace ${i} to ${j} through the relay`);
  const dropped = [0, 1, 2].map((i) => net.dropped(i));
  timings.push(`packets dropped by namespace in a: ${dropped.join(', ')}`);
  for (const [i, d] of dropped.entries()) assert.ok(d > 0, `namespace ${i} dropped packets`);
});

test('a. over a link slower than the loss timeout allows for (8 MiB/s), a 32 MiB move completes and no node is declared lost', { skip, timeout: 60_000 }, async () => {
  const net = lab as NetLab;
  const since = new Map([n0, n1, await memberInNs2()].map((n) => [n, n.log().length]));
  const hold = await startHold();
  net.relayStallMs();
  net.setRate(8 * MIB);
  let moved: Awaited<ReturnType<LabNode['cli']>>;
  let ms: number;
  try {
    [moved, ms] = await timed(() => n0.cli(['migrate', String(hold.pid), '2'], { timeoutMs: 40_000 }));
  } finally {
    net.setRate(0);
  }
  const stall = net.relayStallMs();
  timings.push(`a ${HOLD_MIB} MiB move over an 8 MiB/s link: ${ms.toFixed(0)} ms (the relay stalled ${stall.toFixed(0)} ms at worst)`);
  assert.equal(moved.status, 0, `${moved.stderr} (the relay stalled ${stall.toFixed(0)} ms at worst)${nodeLogs()}`);
  assert.ok(ms > 2_000, `the move outlasted the loss timeout (${ms.toFixed(0)} ms), so the heartbeats behind it were late`);
  for (const [node, at] of since) assert.doesNotMatch(node.log().slice(at), /lost/, `node ${node.node} declared no node lost${nodeLogs()}`);
  assert.equal((await ps(n1)).find((p) => p.pid === hold.pid)?.kernel, 2);
  assert.equal((await n1.cli(['kill', '-TERM', String(hold.pid)])).status, 0);
  assert.equal((await hold.session.done).status, 143);
});

test('b. a partitioned node is declared lost within 5 s, requests to it fail fast, nothing else is lost; healed, it rejoins as a new node', { skip, timeout: 90_000 }, async () => {
  const net = lab as NetLab;
  // The node in namespace 2 (node 2, unless an earlier test lost it): kernel 2.
  const cut = await memberInNs2();
  const k = cut.node;
  // Streams: cat on node 1 from node 0 (the surviving side), cat on node k from node k (the
  // island), cat on node k from node 0 (lost with node k).
  const survivor = n0.feed(['run', '--on', '1', example('cat.wasm')]);
  const island = cut.feed(['run', '--on', '2', example('cat.wasm')]);
  const lost = n0.feed(['run', '--on', '2', example('cat.wasm')]);
  const sent = new Map<Feed, string>([[survivor, ''], [island, '']]);
  let serial = 0;
  const send = async (f: Feed, wait: boolean): Promise<void> => {
    const chunk = lines(4 * 1024, `s${serial++}`);
    if (f !== lost) sent.set(f, (sent.get(f) as string) + chunk);
    await f.write(chunk);
    if (wait) await f.waitFor(chunk.slice(-40), 30_000);
  };
  await Promise.all([survivor, island, lost].map((f) => send(f, true)));

  const t0 = performance.now();
  net.partition(2);
  // A request caught by the partition: a run on node k's kernel, asked for right after the cut.
  const caught = timed(() => n0.cli(['run', '--on', '2', example('hello.wasm')], { timeoutMs: 40_000 }));
  // The surviving side and the island keep streaming while the partition is detected.
  let pumping = true;
  const pump = (async () => {
    while (pumping) {
      await Promise.all([send(survivor, false), send(island, false)]);
      await sleep(100);
    }
  })();
  pump.catch(() => undefined); // awaited below; if the test fails first, after() ends the streams
  const detections = await Promise.all([
    n0.waitForLog(new RegExp(`node ${k} lost`), 15_000),
    n1.waitForLog(new RegExp(`node ${k} lost`), 15_000),
    cut.waitForLog(/node 0 lost/, 15_000),
    cut.waitForLog(/node 1 lost/, 15_000),
  ]);
  const [byN0, byN1, n0ByN2, n1ByN2] = detections.map((t) => t - t0) as [number, number, number, number];
  timings.push(`partition detected by node 0 in ${byN0.toFixed(0)} ms, by node 1 in ${byN1.toFixed(0)} ms; node ${k} lost nodes 0 and 1 in ${n0ByN2.toFixed(0)}, ${n1ByN2.toFixed(0)} ms`);
  for (const ms of [byN0, byN1, n0ByN2, n1ByN2]) assert.ok(ms <= DETECT_BOUND_MS, `detected in ${ms.toFixed(0)} ms (bound ${DETECT_BOUND_MS})`);
  assert.match(n0.log(), new RegExp(`node ${k} lost: no heartbeat for 2 s`), 'a silent link, not a closed one');

  // The request caught by the partition failed once it was detected, not after its 30 s timeout.
  const [caughtRun, caughtMs] = await caught;
  timings.push(`request caught by the partition failed after ${caughtMs.toFixed(0)} ms`);
  assert.notEqual(caughtRun.status, 0, caughtRun.stdout);
  assert.ok(caughtMs <= DETECT_BOUND_MS + FAIL_FAST_MS, `it failed after ${caughtMs.toFixed(0)} ms: ${caughtRun.stderr}`);

  // Later requests to it fail at once: its kernel is gone from the cluster.
  const [gone, goneMs] = await timed(() => n0.cli(['run', '--on', '2', example('hello.wasm')]));
  timings.push(`a run on the lost node's kernel failed in ${goneMs.toFixed(0)} ms`);
  assert.equal(gone.status, 2, gone.stderr);
  assert.match(gone.stderr, /--on 2/);
  assert.ok(goneMs <= FAIL_FAST_MS, `${goneMs.toFixed(0)} ms`);
  assert.deepEqual(await kernelNodes(n0), [0, 1]);
  assert.deepEqual(await kernelNodes(n1), [0, 1]);
  assert.deepEqual(await kernelNodes(cut), [k], 'the island sees only itself');

  // Its process started from node 0 is reported lost there.
  const lostRun = await lost.done;
  assert.equal(lostRun.status, 137, lostRun.stderr);
  assert.match(lostRun.stderr, new RegExp(`lost with node ${k}`));

  await sleep(500);
  pumping = false;
  await pump;
  for (const [f, what] of [[survivor, 'the surviving side'], [island, 'the island']] as const) {
    f.end();
    const r = await f.done;
    const expected = sent.get(f) as string;
    assert.equal(r.status, 0, `${what}: ${r.stderr}`);
    assert.ok(r.stdout === expected, `${what}: the output is the input, byte for byte (${r.stdout.length} of ${expected.length} bytes)`);
  }

  // Heal; the island's node stops (its shutdown does not wait for anyone) and a node boots in
  // its namespace again: it joins with a new number, and works.
  await net.heal(2);
  const [down, downMs] = await timed(() => cut.cli(['shutdown'], { timeoutMs: 15_000 }));
  assert.equal(down.status, 0, down.stderr);
  await Promise.race([cut.exited, sleep(10_000).then(() => assert.fail('the island node did not exit after shutdown'))]);
  timings.push(`the island node shut down in ${downMs.toFixed(0)} ms`);
  const [back, joinMs] = await timed(() => net.boot(2, { join: n1 }));
  inNs2 = back;
  timings.push(`rejoined as node ${back.node} in ${joinMs.toFixed(0)} ms`);
  assert.ok(back.node > k, `a new node number (${back.node}), never ${k} again`);
  for (const node of [n0, n1, back]) assert.deepEqual(await kernelNodes(node), [0, 1, back.node], `node ${node.node}'s view`);
  const who = await n0.cli(['run', '--on', '2', example('whoami.wasm')]);
  assert.equal(who.status, 0, who.stderr);
  assert.match(who.stdout, /kernel 2 of 3\n$/);
  for (const [from, on] of [[back, 0], [n1, 2]] as const) {
    const r = await from.cli(['run', '--on', String(on), example('cat.wasm')], { input: CAT_INPUT, timeoutMs: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout === (references[3] as Outcome).stdout, `cat from node ${from.node} on kernel ${on}`);
  }
});

/**
 * After node `victim` was killed mid-migration of `pid` (run by `session` from node 0): once the
 * survivors have dropped it, the process is either listed exactly once, on the same kernel, by
 * every survivor — and then SIGTERM from a survivor ends its run with 143 — or its run ended
 * 137, reported lost with the victim, and no survivor lists it. Anything else fails: listed yet
 * reported lost (both), neither listed nor reported within 15 s (silently gone).
 */
async function settle(session: Session, pid: number, victim: LabNode, survivors: LabNode[]): Promise<string> {
  for (const node of survivors) await node.waitForLog(new RegExp(`node ${victim.node} lost`), 10_000);
  const deadline = performance.now() + 15_000;
  for (;;) {
    const ended = await Promise.race([session.done, sleep(0).then(() => undefined)]);
    const seen = await Promise.all(survivors.map(async (node) => (await ps(node)).filter((p) => p.pid === pid)));
    for (const [i, list] of seen.entries()) {
      assert.ok(list.length <= 1, `node ${survivors[i]?.node} lists process ${pid} more than once: ${JSON.stringify(list)}`);
    }
    if (ended !== undefined) {
      assert.equal(ended.status, 137, `the run ended, but not as lost: ${ended.stderr}`);
      assert.match(ended.stderr, new RegExp(`lost with node ${victim.node}`));
      assert.ok(seen.every((list) => list.length === 0),
        `process ${pid} was reported lost to its run (137), yet it runs on: ${JSON.stringify(seen)}`);
      return 'lost (137)';
    }
    const kernels = new Set(seen.map((list) => list[0]?.kernel));
    if (seen.every((list) => list.length === 1) && kernels.size === 1) {
      const term = await (survivors.at(-1) as LabNode).cli(['kill', '-TERM', String(pid)]);
      assert.equal(term.status, 0, `the process runs on, and a signal reaches it: ${term.stderr}`);
      const r = await session.done;
      assert.equal(r.status, 143, `SIGTERM ended its run: ${r.stderr}`);
      assert.equal(r.stdout, 'ready\n');
      return `alive on kernel ${String([...kernels][0])}`;
    }
    assert.ok(performance.now() < deadline, `process ${pid} is neither running (ps: ${JSON.stringify(seen)}) nor reported lost to its run${nodeLogs()}`);
    await sleep(200);
  }
}

/** A HOLD_MIB MiB process run from node 0 on kernel 0 (its origin), ready. */
async function startHold(): Promise<{ session: Session; pid: number }> {
  const session = n0.session(['run', '--on', '0', example('bench/hold.wasm'), String(HOLD_MIB), 'sleep']);
  await session.waitFor('ready', 30_000);
  const { pid } = await findProcess(n0, `hold.wasm ${HOLD_MIB}`);
  return { session, pid };
}

/** A node booted in namespace 2 (kernel 2), once the one there before is gone. */
async function freshNodeInNs2(): Promise<LabNode> {
  const net = lab as NetLab;
  if (inNs2?.alive() === true) {
    process.kill(inNs2.pid, 'SIGKILL');
    await inNs2.exited;
    for (const node of [n0, n1]) await node.waitForLog(new RegExp(`node ${inNs2.node} lost`), 10_000);
  }
  inNs2 = await net.boot(2, { join: n0 });
  assert.deepEqual(await kernelNodes(n0), [0, 1, inNs2.node]);
  return inNs2;
}

/** The node in namespace 2 if it is alive and a member for nodes 0 and 1, else a fresh one. */
async function memberInNs2(): Promise<LabNode> {
  if (inNs2?.alive() === true) {
    const member = inNs2.node;
    if ((await kernelNodes(n0)).includes(member) && (await kernelNodes(n1)).includes(member)) return inNs2;
  }
  return freshNodeInNs2();
}

/**
 * `popcorn migrate PID KERNEL` from node 0; node `victim` is killed with SIGKILL the moment
 * `atBytes` more have gone from namespace `fromNs` to `toNs` through the relay. Returns what the
 * command said and how long it took; fails if the move ended before the kill.
 */
async function moveAndKill(pid: number, kernel: number, fromNs: number, toNs: number, victim: LabNode, atBytes: number): Promise<string> {
  const net = lab as NetLab;
  let killed = false;
  const cancel = net.onFlow(fromNs, toNs, net.flow(fromNs, toNs) + atBytes, () => {
    process.kill(victim.pid, 'SIGKILL');
    killed = true;
  });
  const [moved, ms] = await timed(() => n0.cli(['migrate', String(pid), String(kernel)], { timeoutMs: 40_000 }));
  cancel();
  assert.ok(killed, `node ${victim.node} was killed mid-move (the move ended first: ${moved.status} ${moved.stderr})${nodeLogs()}`);
  return `migrate exited ${String(moved.status)} after ${ms.toFixed(0)} ms${moved.stderr === '' ? '' : ` (${moved.stderr.trim()})`}`;
}

test('c. a node killed mid-migration (source early, destination): the process is alive on exactly one side or reported lost, never both, never gone', { skip, timeout: 100_000 }, async () => {
  const survivors = [n0, n1];
  // The source dies early: a process of node 0 moved to namespace 2's node, then on to node 1;
  // the source is killed once a quarter of its memory went through.
  let x = await freshNodeInNs2();
  let hold = await startHold();
  const [there, thereMs] = await timed(() => n0.cli(['migrate', String(hold.pid), '2'], { timeoutMs: 40_000 }));
  assert.equal(there.status, 0, `${there.stderr}${nodeLogs()}`);
  timings.push(`a ${HOLD_MIB} MiB move across nodes: ${thereMs.toFixed(0)} ms (CLI included)`);
  let move = await moveAndKill(hold.pid, 1, 2, 1, x, (HOLD_MIB / 4) * MIB);
  timings.push(`source killed early in a move: ${move}; the process: ${await settle(hold.session, hold.pid, x, survivors)}`);

  // The destination dies, the source being the origin: the destination never ran it, so it runs
  // on where it was.
  x = await freshNodeInNs2();
  hold = await startHold();
  move = await moveAndKill(hold.pid, 2, 0, 2, x, (HOLD_MIB * 3 / 4) * MIB);
  const atOrigin = await settle(hold.session, hold.pid, x, survivors);
  timings.push(`destination killed mid-move, from the origin: ${move}; the process: ${atOrigin}`);
  assert.equal(atOrigin, 'alive on kernel 0', 'the destination never ran it: it runs on at the source');

  // The destination dies, the source being another node than the origin: the same.
  x = await freshNodeInNs2();
  hold = await startHold();
  const toOne = await n0.cli(['migrate', String(hold.pid), '1'], { timeoutMs: 40_000 });
  assert.equal(toOne.status, 0, `${toOne.stderr}${nodeLogs()}`);
  move = await moveAndKill(hold.pid, 2, 1, 2, x, (HOLD_MIB / 2) * MIB);
  const atSource = await settle(hold.session, hold.pid, x, survivors);
  timings.push(`destination killed mid-move, from another node than the origin: ${move}; the process: ${atSource}`);
  assert.equal(atSource, 'alive on kernel 1', 'the destination never ran it: it runs on at the source');
});

test('c. a node killed at the very end of a migration off it: the process is alive on exactly one side or reported lost, never both', {
  skip,
  timeout: 60_000,
}, async () => {
  // Killed when all but 2 MiB of its memory went through the relay: its OS still sends what
  // the node had written to its sockets, so the destination may get the whole image after the
  // source is gone, while the origin learns of the loss first.
  const x = await freshNodeInNs2();
  const hold = await startHold();
  const there = await n0.cli(['migrate', String(hold.pid), '2'], { timeoutMs: 40_000 });
  assert.equal(there.status, 0, `${there.stderr}${nodeLogs()}`);
  const move = await moveAndKill(hold.pid, 1, 2, 1, x, (HOLD_MIB - 2) * MIB);
  timings.push(`source killed at the end of a move: ${move}`);
  timings.push(`... the process: ${await settle(hold.session, hold.pid, x, [n0, n1])}`);
});
