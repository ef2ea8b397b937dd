/**
 * A cluster of three nodes on loopback, each a real OS process (`popcorn boot --listen/--join`),
 * driven through the real `popcorn` command of each node: runs on another node's kernels, spawn
 * and wait, pipelines, kill and migration across nodes; then the failures — a wrong secret, a
 * peer that sends garbage, and a node killed with SIGKILL in the middle of a run.
 *
 * The tests share one cluster and run in order: the kill -9 test kills node 2 (and a new node
 * joins), and the last one may leave the cluster split if its node stalls.
 */

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { example } from './cli-helpers.js';
import { bootCluster, eventually, type Cluster, type ClusterNode } from './cluster-helpers.js';
import { writeSecret } from './cluster-node.js';
import { PSK_IDENTITY, TLS_OPTIONS, clusterKey } from '../src/node/cluster.js';
import { PROTOCOL_VERSION } from '../src/protocol.js';
import { INSTRUMENTATION_VERSION } from '../src/wasm/abi.js';
import type { KernelEntry, PsEntry } from '../src/node/control-protocol.js';

const KERNELS_PER_NODE = 2;
/** Runs until killed; a progress line every 10^7 iterations (a few per second). */
const FOREVER = ['100000000000', '10000000'];

let cluster: Cluster;
let n0: ClusterNode;
let n1: ClusterNode;
let n2: ClusterNode;
let data: string;

before(async () => {
  data = mkdtempSync(join(tmpdir(), 'popcorn-cluster-data-'));
  cluster = await bootCluster(3, KERNELS_PER_NODE);
  [n0, n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
});

after(async () => {
  await cluster?.close();
  if (data !== undefined) rmSync(data, { recursive: true, force: true });
});

async function ps(node: ClusterNode): Promise<PsEntry[]> {
  const r = await node.cli(['ps', '--json']);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as PsEntry[];
}

async function kernels(node: ClusterNode): Promise<KernelEntry[]> {
  const r = await node.cli(['kernels', '--json']);
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { kernels: KernelEntry[] }).kernels;
}

/** The one process whose command line starts with `command`, as `node` sees it (waits for it). */
function findProcess(node: ClusterNode, command: string): Promise<PsEntry> {
  return eventually(`a process '${command}' in ps`, async () => {
    const found = (await ps(node)).filter((p) => p.command.startsWith(command));
    assert.ok(found.length <= 1, `more than one '${command}': ${JSON.stringify(found)}`);
    return found[0];
  });
}

const run = (node: ClusterNode, on: number, program: string, args: string[] = [], extra: string[] = [], input?: string): ReturnType<ClusterNode['cli']> =>
  node.cli(['run', '--on', String(on), ...extra, example(program), ...args], input === undefined ? {} : { input });

const BIN = ['--dir', `${example('.')}::/bin`];

test('the nodes form one cluster: node numbers in join order, every node sees all six kernels in node order', async () => {
  assert.deepEqual(cluster.nodes.map((n) => n.node), [0, 1, 2]);
  for (const node of cluster.nodes) {
    const ks = await kernels(node);
    assert.deepEqual(ks.map((k) => k.kernel), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(ks.map((k) => k.node), [0, 0, 1, 1, 2, 2]);
  }
  assert.match(n1.log(), /node 2 \(127\.0\.0\.1:\d+, 2 kernels\) joined/);
  assert.match(n0.log(), /node 2 \(127\.0\.0\.1:\d+, 2 kernels\) joined/, 'node 2 joined through node 1, and linked to node 0 too');
});

test('a run from one node on a kernel of another prints exactly what a local run prints', async () => {
  // whoami from every node onto a kernel of every node.
  for (const from of cluster.nodes) {
    for (const on of [0, 3, 5]) {
      const r = await run(from, on, 'whoami.wasm');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^pid \\d+ ppid 0 kernel ${on} of 6\\n$`), `from node ${from.node} --on ${on}`);
    }
  }
  const cases: { program: string; args: string[]; input?: string }[] = [
    { program: 'hello.wasm', args: ['a', 'b c'] },
    { program: 'test/echo_stdin.wasm', args: [], input: 'one\ntwo\nthree\n' },
    { program: 'test/exit_code.wasm', args: ['7'] },
    { program: 'test/trap.wasm', args: [] },
    { program: 'test/spin.wasm', args: ['300000', '100000', 'x'] },
  ];
  for (const c of cases) {
    const local = await run(n0, 0, c.program, c.args, [], c.input);
    for (const [node, on] of [[n0, 5], [n1, 4], [n2, 0]] as const) {
      const remote = await run(node, on, c.program, c.args, [], c.input);
      const what = `${c.program} from node ${node.node} on kernel ${on}`;
      assert.equal(remote.stdout, local.stdout, what);
      assert.equal(remote.stderr, local.stderr, what);
      assert.equal(remote.status, local.status, what);
    }
  }
  const trap = await run(n1, 5, 'test/trap.wasm');
  assert.equal(trap.status, 134);
  assert.match(trap.stderr, /trap\.wasm!level_three/, 'the trap report crosses nodes');
});

/** family spawns itself by argv[0] ("family.wasm"; relative paths start at "/"). */
const FAMILY = ['--dir', `${example('test')}::/`];

test('spawn and wait across nodes: children on other nodes, their exit statuses reach the parent', async () => {
  const wait = await run(n1, 0, 'test/family.wasm', ['wait', '4'], FAMILY);
  assert.equal(wait.status, 0, wait.stderr);
  assert.match(wait.stdout, /^child \d+ exited 7 on kernel 4 ok$/m);

  const many = await run(n0, 5, 'test/family.wasm', ['many', '5', '2'], FAMILY);
  assert.equal(many.status, 0, many.stderr);
  assert.match(many.stdout, /many ok 5\n$/);
  // (Whether every child's own line arrives is the next test's business.)
  for (const line of many.stdout.trimEnd().split('\n').slice(0, -1)) assert.match(line, /^child pid=\d+ ppid=\d+ kernel=2$/);

  const spawn = await run(n2, 4, 'bench/spawn.wasm', ['3', '1', '/bin/bench/true.wasm'], BIN);
  assert.equal(spawn.status, 0, spawn.stderr);
  assert.match(spawn.stdout, /^spawn_us=[\d.]+\n$/);

  // The shell on node 0; its last command runs on its own kernel, after the others.
  const sh = await run(n0, 1, 'sh.wasm', ['-c', '@3 /bin/whoami; @2 /bin/test/exit_code 3; echo $?; @4 /bin/test/exit_code 5; echo $?; @5 /bin/test/trap; echo $?; exit 6'], BIN);
  assert.equal(sh.status, 6, sh.stderr);
  assert.match(sh.stdout, /^pid \d+ ppid \d+ kernel 3 of 6\n3\n5\ntrap: calling level_one\n134\n$/);
});

test("a child's output on another node reaches the run session before its parent's next line, every time", async () => {
  // The child prints (and flushes) its line, then exits 7; the parent waits for it, then prints
  // its own line and exits. Once wait() returned, the child's write has happened: its line must
  // come first, and must not be lost when the session ends right after the parent.
  for (let i = 0; i < 30; i++) {
    const from = cluster.nodes[i % 3] as ClusterNode;
    const on = [0, 2, 4][i % 3] as number;
    const child = [3, 5, 1, 4][i % 4] as number;
    const r = await run(from, on, 'test/family.wasm', ['wait', String(child)], FAMILY);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^child pid=(\\d+) ppid=\\d+ kernel=${child}\\nchild \\1 exited 7 on kernel ${child} ok\\n$`),
      `run ${i}: from node ${from.node}, parent on kernel ${on}, child on kernel ${child}: stdout ${JSON.stringify(r.stdout)}`);
  }
});

test('a pipeline whose stages run on three nodes delivers every byte', async () => {
  const input = randomBytes(3 << 20);
  writeFileSync(join(data, 'in'), input);
  const dirs = [...BIN, '--dir', `${data}::/data`];

  // The shell on node 1, the stages on nodes 2, 0, 1; the last writes a file the shell opened.
  const toFile = await n2.cli(['run', '--on', '3', ...dirs, example('sh.wasm'), '-c', '@4 cat /data/in | @0 cat | @2 cat > /data/out'], { timeoutMs: 60_000 });
  assert.equal(toFile.status, 0, toFile.stderr);
  assert.ok(readFileSync(join(data, 'out')).equals(input), 'the file written at the end of the pipeline is the input, byte for byte');

  // From node 0's command, the shell on node 1, the stages on nodes 2, 0, 1: stdout, as bytes.
  const session = n0.session(['run', '--on', '2', ...dirs, example('sh.wasm'), '-c', '@5 cat /data/in | @1 cat | @3 cat']);
  const bytes = await session.done;
  assert.equal(bytes.status, 0, bytes.stderr);
  assert.equal(bytes.bytes.length, input.length);
  assert.ok(bytes.bytes.equals(input), 'stdout of the pipeline is the input, byte for byte');

  const wc = await n0.cli(['run', '--on', '4', ...dirs, example('sh.wasm'), '-c', '@1 cat /data/in | @3 cat | @5 wc']);
  assert.equal(wc.status, 0, wc.stderr);
  const newlines = input.reduce((count, byte) => count + (byte === 0x0a ? 1 : 0), 0);
  const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\n$/.exec(wc.stdout);
  assert.ok(m !== null, wc.stdout);
  assert.equal(Number(m[1]), newlines);
  assert.equal(Number(m[3]), input.length);
});

test('popcorn kill from one node reaches a process on another; its waiter learns how it ended', async () => {
  // A detached process on node 2's kernel, seen by every node, killed from node 1.
  const detached = await n0.cli(['run', '--detach', '--on', '5', example('test/spin.wasm'), ...FOREVER, 'detached']);
  assert.equal(detached.status, 0, detached.stderr);
  const pid = Number(detached.stdout.trim());
  for (const node of cluster.nodes) {
    const p = await findProcess(node, 'spin.wasm 100000000000 10000000 detached');
    assert.equal(p.pid, pid);
    assert.equal(p.kernel, 5);
    assert.equal(p.ppid, 0);
    assert.match(p.state, /^(running|runnable)$/);
  }
  const kill = await n1.cli(['kill', '-TERM', String(pid)]);
  assert.equal(kill.status, 0, kill.stderr);
  await eventually('the killed process to leave ps', async () => ((await ps(n2)).some((p) => p.pid === pid) ? undefined : true));

  // A run session on node 0 whose process is on node 1, killed from node 2.
  const session = n0.session(['run', '--on', '3', example('test/spin.wasm'), ...FOREVER, 'session']);
  await session.waitFor('spin session 10000000');
  const target = await findProcess(n2, 'spin.wasm 100000000000 10000000 session');
  assert.equal(target.kernel, 3);
  const killed = await n2.cli(['kill', '-KILL', String(target.pid)]);
  assert.equal(killed.status, 0, killed.stderr);
  const ended = await session.done;
  assert.equal(ended.status, 128 + 9, ended.stderr);

  // A parent on node 0 waits for its child on node 2, which is killed from node 1.
  const parent = n1.session(['run', '--on', '1', ...BIN, example('sh.wasm'), '-c', `@4 /bin/test/spin ${FOREVER.join(' ')} child & wait $!; echo status $?`]);
  await parent.waitFor('spin child 10000000');
  const child = await findProcess(n0, '/bin/test/spin 100000000000 10000000 child');
  const sh = (await ps(n2)).find((p) => p.pid === child.ppid);
  assert.ok(sh !== undefined && sh.command.startsWith('sh.wasm'), 'its parent is the shell');
  assert.equal(sh.kernel, 1);
  assert.equal(child.kernel, 4);
  const term = await n1.cli(['kill', String(child.pid)]);
  assert.equal(term.status, 0, term.stderr);
  const waited = await parent.done;
  assert.equal(waited.status, 0, waited.stderr);
  assert.match(waited.stdout, /status 143\n$/, 'the shell waited for its child on another node: 128 + SIGTERM');

  const unknown = await n0.cli(['kill', '-9', String(pid)]);
  assert.equal(unknown.status, 1, 'the killed process is gone on every node');
  assert.match(unknown.stderr, new RegExp(`no process with pid ${pid}`));
});

test('a computation migrated to the other nodes and back prints what an unmigrated run prints', async () => {
  const rounds = '400000'; // about 6 s on the dev machine; the three moves take about 2 s
  // The unmigrated run, at the same time on a kernel of its own (both print "kernel K" last).
  const unmigrated = n2.session(['run', '--on', '1', example('test/migrate.wasm'), 'compute', rounds, '0']);
  const before = await kernels(n0);
  const session = n0.session(['run', '--on', '0', example('test/migrate.wasm'), 'compute', rounds, '0']);
  const p = await eventually('the process to migrate', async () => (await ps(n1)).find((q) => q.command.startsWith('migrate.wasm') && q.kernel === 0));
  // There (node 2), across (node 1) and back (node 0), each move asked from a different node.
  for (const [asker, to, observer] of [[n1, 4, n2], [n2, 2, n0], [n0, 0, n1]] as const) {
    const moved = await asker.cli(['migrate', String(p.pid), String(to)]);
    assert.equal(moved.status, 0, `migrate to ${to} from node ${asker.node}: ${moved.stderr}`);
    const now = (await ps(observer)).find((q) => q.pid === p.pid);
    assert.ok(now !== undefined, `process ${p.pid} still runs after the move to ${to} (make the computation longer if this fails)`);
    assert.equal(now.kernel, to);
  }
  const [done, still] = await Promise.all([session.done, unmigrated.done]);
  assert.equal(still.status, 0, still.stderr);
  assert.match(still.stdout, /^checksum [0-9a-f]{16}\nkernel 1\n$/);
  assert.equal(done.status, 0, done.stderr);
  assert.equal(done.stdout, still.stdout.replace('kernel 1', 'kernel 0'), 'the same checksum, and it ended where it started');

  const after = await kernels(n1);
  for (const k of [4, 2, 0]) {
    assert.ok((after[k]?.migrations.in ?? 0) > (before[k]?.migrations.in ?? 0), `kernel ${k} counted an arrival`);
  }

  // The program moves itself: 12 hops of (kernel + 1) mod 6 go round all three nodes twice.
  const home = await run(n2, 0, 'test/migrate.wasm', ['compute', '3000', '0']);
  const hopped = await run(n2, 0, 'test/migrate.wasm', ['compute', '3000', '12']);
  assert.equal(hopped.status, 0, hopped.stderr);
  assert.equal(hopped.stdout, home.stdout);
  const fromNode1 = await run(n0, 3, 'test/migrate.wasm', ['compute', '3000', '5']);
  assert.equal(fromNode1.status, 0, fromNode1.stderr);
  assert.equal(fromNode1.stdout, home.stdout.replace('kernel 0', 'kernel 2'), 'five hops from kernel 3 end on kernel 2');
});

test('a node with the wrong secret is refused, and the cluster is unchanged', async () => {
  const wrong = join(cluster.root, 'wrong-secret');
  writeSecret(wrong);
  const { result } = await cluster.tryBoot({ join: n0, secretFile: wrong });
  assert.equal(result.status, 1, result.stdout);
  assert.match(result.stderr, /cannot join 127\.0\.0\.1:\d+: TLS handshake failed: wrong secret/);
  await eventually('the refusal in node 0\'s log', async () =>
    /refused a connection from 127\.0\.0\.1:\d+: TLS handshake failed: wrong secret/.test(n0.log()) ? true : undefined);
  assert.equal((await kernels(n0)).length, 6);
  const r = await run(n2, 1, 'hello.wasm');
  assert.equal(r.stdout, 'Hello from popcorn!\n');
});

/** A TLS client with the cluster's key that says hello as a new node; resolves with its welcome. */
async function fakeNode(to: ClusterNode): Promise<{ socket: tls.TLSSocket; welcome: { popcorn: string; node: number } }> {
  const psk = clusterKey(readFileSync(cluster.secretFile));
  const [host, port] = to.listen.split(':') as [string, string];
  const socket = tls.connect({
    ...TLS_OPTIONS,
    host,
    port: Number(port),
    pskCallback: () => ({ psk, identity: PSK_IDENTITY }),
    checkServerIdentity: () => undefined,
  });
  socket.on('error', () => undefined); // the member may reset the link we broke
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  const hello = { popcorn: 'hello', protocol: PROTOCOL_VERSION, instrumentation: INSTRUMENTATION_VERSION, node: null, listen: '127.0.0.1:1', kernels: 1 };
  socket.write(`${JSON.stringify(hello)}\n`);
  const line = await new Promise<string>((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      socket.off('data', onData);
      socket.pause();
      resolve(text.slice(0, nl));
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before the welcome: ${text}`)));
  });
  return { socket, welcome: JSON.parse(line) as { popcorn: string; node: number } };
}

test('a garbage length prefix or a truncated frame closes only that link', async () => {
  const garbage = await fakeNode(n0);
  assert.equal(garbage.welcome.popcorn, 'welcome');
  assert.ok(garbage.welcome.node >= 3, `a new node number: ${garbage.welcome.node}`);
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32LE(0xffffffff, 0);
  garbage.socket.write(prefix);
  const lostGarbage = new RegExp(`node ${garbage.welcome.node} lost: malformed length prefix 4294967295`);
  await eventually('the garbage link to be closed', async () => (lostGarbage.test(n0.log()) ? true : undefined));
  garbage.socket.destroy();

  const truncated = await fakeNode(n0);
  assert.equal(truncated.welcome.popcorn, 'welcome');
  assert.ok(truncated.welcome.node > garbage.welcome.node, 'node numbers are not reused');
  const frame = Buffer.alloc(4 + 10, 0xab);
  frame.writeUInt32LE(100, 0);
  truncated.socket.end(frame);
  const lostTruncated = new RegExp(`node ${truncated.welcome.node} lost: (peer closed the connection|connection closed)`);
  await eventually('the truncated link to be closed', async () => (lostTruncated.test(n0.log()) ? true : undefined));

  // Only those links: no real node was lost, and the cluster works across all three.
  for (const node of cluster.nodes) assert.doesNotMatch(node.log(), /node [012] lost/, `node ${node.node}'s log`);
  await eventually('node 0 to forget the fake nodes', async () => ((await kernels(n0)).length === 6 ? true : undefined));
  const r = await run(n0, 5, 'hello.wasm', ['after']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'Hello from popcorn!\nafter\n');
  const sh = await run(n2, 0, 'sh.wasm', ['-c', '@1 /bin/echo one two | @3 /bin/cat | @5 /bin/wc'], BIN);
  assert.match(sh.stdout, /^\s+1\s+2\s+8\n$/);
});

test('after a move to another node, paths still resolve at the node the process was started on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'popcorn-cluster-dirs-'));
  try {
    // Started on node 0's kernel 0 with /data preopened there; it moves itself to node 2.
    const s = n0.session(['run', '--on', '0', '--dir', `${dir}::/data`, example('test/dirs.wasm'), '4', '/data', '1500']);
    await s.waitFor('kernel 4\n');
    const during = await kernels(n1);
    assert.ok(during[0]!.tables.dirs >= 1, `node 0's kernel keeps /data for it: ${JSON.stringify(during[0]!.tables)}`);
    assert.ok(during[4]!.tables.dirs >= 1, `node 2's kernel holds it as a remote directory: ${JSON.stringify(during[4]!.tables)}`);
    const r = await s.done;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'kernel 4\nsize 6\nread hello\nlist b.txt\nlink b.txt\nmtime 1000000000 nlink 2\ndone\n');
    assert.deepEqual(readdirSync(dir), [], 'everything it made, it removed');
    const after = await eventually('the directory deputies to be released', async () => {
      const ks = await kernels(n1);
      return ks[0]!.tables.dirs === 0 && ks[4]!.tables.dirs === 0 && ks[0]!.tables.files === 0 ? ks : undefined;
    });
    assert.equal(after.length, 6);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** What `done` resolves to within `ms`, or undefined: a test that would hang fails instead. */
async function within<T>(ms: number, done: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, ms, undefined)));
  try {
    return await Promise.race([done, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('kill -9 of a node mid-run: the others report its processes lost and carry on; pipes through it end', async () => {
  // On node 2: a run session's process (from node 0) and a shell's child (the shell on node 0).
  const onLost = n0.session(['run', '--on', '4', example('test/spin.wasm'), ...FOREVER, 'lost']);
  const parent = n1.session(['run', '--on', '0', ...BIN, example('sh.wasm'), '-c', `@5 /bin/test/spin ${FOREVER.join(' ')} orphan & wait $!; echo status $?`]);
  // Pipes through node 2: a pipeline whose middle stage is there (its pipes are homed on node 0,
  // where the shell is), and one whose shell is there (its pipe is homed there; the stages not).
  const piped = n0.session(['run', '--on', '0', ...BIN, example('sh.wasm'), '-c', `@0 /bin/test/spin ${FOREVER.join(' ')} piped | @4 /bin/cat | @1 /bin/cat`]);
  const homeless = n1.session(['run', '--on', '5', ...BIN, example('sh.wasm'), '-c', `@2 /bin/test/spin ${FOREVER.join(' ')} homeless | @1 /bin/cat`]);
  // Elsewhere: a finite computation on node 0, run from node 1, that must finish normally.
  const survivor = n1.session(['run', '--on', '1', example('test/spin.wasm'), '600000000', '100000000', 'survivor']);
  await Promise.all([
    onLost.waitFor('spin lost 10000000'), parent.waitFor('spin orphan 10000000'), survivor.waitFor('spin survivor 100000000'),
    piped.waitFor('spin piped 10000000'), homeless.waitFor('spin homeless 10000000'),
  ]);

  process.kill(n2.pid, 'SIGKILL');

  // The pipeline ends: spin gets EPIPE (its reader was lost), the last cat EOF (its writer was).
  const ended = await within(30_000, piped.done);
  assert.ok(ended !== undefined, `the pipeline through node 2 did not end; node 0 lists ${JSON.stringify(await ps(n0))}`);
  const lines = ended.stdout.split('\n').length - 1;
  const expected = Array.from({ length: lines }, (_, i) => `spin piped ${(i + 1) * 10_000_000}\n`).join('');
  assert.equal(ended.stdout, expected, 'a whole prefix of what spin wrote');
  // The stages of the shell on node 2 end too: its pipe went with it (EPIPE for spin, EOF for cat).
  const lostShell = await within(30_000, homeless.done);
  assert.equal(lostShell?.status, 137, lostShell?.stderr);
  let left: PsEntry[] = [];
  await eventually('the stages of the shell lost with node 2 to end', async () => {
    left = (await ps(n0)).filter((p) => /^\/bin\/(cat|test\/spin .* (piped|homeless))$/.test(p.command));
    return left.length === 0 ? true : undefined;
  }, 30_000).catch((error: Error) => assert.fail(`${error.message}: ${JSON.stringify(left)}`));

  const lost = await onLost.done;
  assert.equal(lost.status, 137, lost.stderr);
  assert.match(lost.stderr, /lost with node 2/);
  const waited = await parent.done;
  assert.equal(waited.status, 0, waited.stderr);
  assert.match(waited.stdout, /status 137\n$/, 'the shell on node 0 learned its child on node 2 was lost');
  const carried = await survivor.done;
  assert.equal(carried.status, 0, carried.stderr);
  assert.match(carried.stdout, /spin survivor 600000000\nspin survivor done\n$/);

  for (const node of [n0, n1]) {
    await eventually(`node ${node.node} to log the loss`, async () => (/node 2 lost/.test(node.log()) ? true : undefined));
    const ks = await eventually(`node ${node.node} to drop node 2's kernels`, async () => {
      const list = await kernels(node);
      return list.length === 4 ? list : undefined;
    });
    assert.deepEqual(ks.map((k) => k.node), [0, 0, 1, 1]);
    const list = await ps(node);
    assert.ok(!list.some((p) => p.kernel >= 4), JSON.stringify(list));
  }

  // The remaining nodes carry on: runs across them, a pipeline over both.
  const r = await run(n1, 0, 'hello.wasm', ['still']);
  assert.equal(r.stdout, 'Hello from popcorn!\nstill\n');
  const w = await run(n0, 3, 'whoami.wasm');
  assert.match(w.stdout, /kernel 3 of 4\n$/);
  const sh = await run(n0, 1, 'sh.wasm', ['-c', '@1 /bin/echo one two | @2 /bin/cat | @3 /bin/wc'], BIN);
  assert.match(sh.stdout, /^\s+1\s+2\s+8\n$/);
  const gone = await run(n0, 5, 'hello.wasm');
  assert.equal(gone.status, 2);
  assert.match(gone.stderr, /--on 5/);

  // A node joins again: a new number, never node 2's, and its kernels are 4–5.
  const again = await cluster.join(n1);
  assert.ok(again.node > 2, `new node number ${again.node}`);
  const back = await run(n0, 5, 'whoami.wasm');
  assert.equal(back.status, 0, back.stderr);
  assert.match(back.stdout, /kernel 5 of 6\n$/);
});

/** `module` with one more custom section: the same program, a module (hash) no cache has seen. */
function freshCopy(module: string): Buffer {
  const name = Buffer.from('popcorn-test-nonce');
  const payload = Buffer.concat([Buffer.from([name.length]), name, randomBytes(16)]);
  return Buffer.concat([readFileSync(module), Buffer.from([0, payload.length]), payload]);
}

test('a node preparing a program nobody has run yet keeps its peers (instrumenting takes seconds)', async () => {
  const members = cluster.nodes.filter((n) => n !== n2);
  const logged = new Map(members.map((n) => [n, n.log().length]));
  // Spawned on node 1's kernel: node 1's host instruments the new module before it can start.
  writeFileSync(join(data, 'fresh.wasm'), freshCopy(example('sh.wasm')));
  const r = await run(n0, 2, 'bench/spawn.wasm', ['1', '-1', '/data/fresh.wasm'], ['--dir', `${data}::/data`]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^spawn_us=[\d.]+\n$/);
  for (const node of members) {
    assert.doesNotMatch(node.log().slice(logged.get(node)), /lost/, `node ${node.node}'s log`);
    assert.equal((await kernels(node)).length, 6, `node ${node.node} still sees every kernel`);
  }
});

test('a node with an empty module cache fetches programs by content hash from the node that asks', async () => {
  const own = mkdtempSync(join(tmpdir(), 'popcorn-own-cache-'));
  try {
    const bare = await cluster.join(n0, 1, own);
    const kernel = (await kernels(n0)).find((k) => k.node === bare.node)?.kernel;
    assert.ok(kernel !== undefined, 'the new node has a kernel');
    assert.deepEqual(readdirSync(own), [], 'it starts with nothing');
    // A run from node 0 on its kernel: the module comes from node 0's cache.
    const hello = await run(n0, kernel, 'hello.wasm', ['x']);
    assert.equal(hello.status, 0, hello.stderr);
    assert.equal(hello.stdout, 'Hello from popcorn!\nx\n');
    assert.ok(readdirSync(own).some((f) => f.endsWith('.wasm')), 'the module is in its cache now');
    // A migration brings its module along the same way, and the process comes back whole.
    const spin = n0.session(['run', '--on', '0', example('test/spin.wasm'), ...FOREVER]);
    await spin.waitFor(/spin 0 \d+/);
    const pid = (await findProcess(n0, 'spin.wasm')).pid;
    for (const to of [kernel, 0]) {
      const moved = await n0.cli(['migrate', String(pid), String(to)]);
      assert.equal(moved.status, 0, moved.stderr);
    }
    assert.equal(readdirSync(own).filter((f) => f.endsWith('.wasm')).length, 2, 'spin.wasm was fetched for the move');
    assert.equal((await n0.cli(['kill', '-KILL', String(pid)])).status, 0);
    assert.equal((await spin.done).status, 137);
  } finally {
    rmSync(own, { recursive: true, force: true });
  }
});
