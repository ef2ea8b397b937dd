/**
 * The stress scenarios across nodes (see scripts/stress.ts): a cluster of two nodes of two kernels
 * each on loopback, as OS processes driven through the `popcorn` command (test/cluster-helpers.ts),
 * so kernels 0–1 are node 0's and 2–3 node 1's.
 */

import type { PsEntry } from '../src/node/control-protocol.js';
import { example } from '../test/cli-helpers.js';
import { bootCluster, eventually, type Cluster, type ClusterNode } from '../test/cluster-helpers.js';
import type { Scenario, ScenarioRun } from './stress-local.js';
import { assertExit, RunFailure, within } from './stress-tally.js';

const KERNELS_PER_NODE = 2;
const RUN_LIMIT_MS = 90_000;
const BIN = ['--dir', `${example('.')}::/bin`];

async function ps(node: ClusterNode): Promise<PsEntry[]> {
  const r = await node.cli(['ps', '--json']);
  if (r.status !== 0) throw new RunFailure(`ps on node ${node.node}: ${r.stderr}`);
  return JSON.parse(r.stdout) as PsEntry[];
}

async function kernelCount(node: ClusterNode): Promise<number> {
  const r = await node.cli(['kernels', '--json']);
  if (r.status !== 0) throw new RunFailure(`kernels on node ${node.node}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { kernels: unknown[] }).kernels.length;
}

async function migrate(asker: ClusterNode, pid: number, to: number): Promise<void> {
  const r = await asker.cli(['migrate', String(pid), String(to)]);
  if (r.status !== 0) throw new RunFailure(`migrate ${pid} to kernel ${to} from node ${asker.node}: ${r.stderr}`);
}

/** Waits for its stdin to end before it prints, so it is still there for both moves however slow they are. */
const COMPUTE = [example('test/migrate.wasm'), 'compute', '200000', '0', 'stdin'];

/**
 * migrate.wasm compute started on node 0, moved to node 1 (asked from node 0) and back (asked
 * from node 1), computing or already waiting for its stdin to end: it prints what an unmoved run
 * prints.
 */
export const crossNodeMove: Scenario = {
  name: 'cross-node-move',
  describe: 'a process moved to the other node and back (2 nodes on loopback); output checked',
  async open(): Promise<ScenarioRun> {
    const cluster = await bootCluster(2, KERNELS_PER_NODE);
    const [n0, n1] = cluster.nodes as [ClusterNode, ClusterNode];
    const still = await n0.cli(['run', '--on', '0', ...COMPUTE], { input: '', timeoutMs: RUN_LIMIT_MS });
    assertExit('the unmoved run', { status: still.status, signal: null }, { status: 0 }, still.stderr);
    return {
      async once() {
        const session = n0.session(['run', '--on', '0', ...COMPUTE], { keepStdin: true });
        const p = await eventually('the computation in ps', async () => (await ps(n0)).find((q) => q.command.startsWith('migrate.wasm')), 20_000);
        await migrate(n0, p.pid, 2 + (p.pid % KERNELS_PER_NODE));
        await migrate(n1, p.pid, 0);
        session.child.stdin?.end();
        const done = await within(RUN_LIMIT_MS, 'the moved computation', session.done);
        assertExit('the moved computation', { status: done.status, signal: null }, { status: 0 }, done.stderr);
        if (done.stdout !== still.stdout) throw new RunFailure(`moved run printed ${JSON.stringify(done.stdout)}, unmoved ${JSON.stringify(still.stdout)}`);
      },
      close: () => cluster.close(),
    };
  },
};

/** Runs until killed; a progress line every 10^7 iterations. */
const FOREVER = ['100000000000', '10000000'];
const SURVIVOR = { n: 400_000_000, every: 100_000_000 };
const spinLines = (id: string, every: number, count: number): string =>
  Array.from({ length: count }, (_, i) => `spin ${id} ${(i + 1) * every}\n`).join('');

/**
 * A pipeline `spin | cat | cat` with its middle stage on node 1 and the others on node 0, and a
 * finite spin on node 0 beside it; node 1 is killed (SIGKILL) while the pipeline flows. The
 * pipeline must end (its first stage gets EPIPE or SIGPIPE, its last EOF, or the shell hears they
 * were lost), what it printed must be a whole prefix of what spin writes, and the survivor must
 * print everything. A fresh node 1 joins before each run.
 */
export const nodeKillPipeline: Scenario = {
  name: 'node-kill-pipeline',
  describe: 'a pipeline whose middle stage\'s node is killed: the rest end, nothing of a survivor lost',
  async open(): Promise<ScenarioRun> {
    const cluster: Cluster = await bootCluster(1, KERNELS_PER_NODE);
    const n0 = cluster.nodes[0]!;
    return {
      async once() {
        const n1 = await cluster.join(n0);
        const pipeline = n0.session(['run', '--on', '0', ...BIN, example('sh.wasm'), '-c', `@0 /bin/test/spin ${FOREVER.join(' ')} a | @2 /bin/cat | @1 /bin/cat`]);
        const survivor = n0.session(['run', '--on', '1', example('test/spin.wasm'), String(SURVIVOR.n), String(SURVIVOR.every), 'survivor']);
        await Promise.all([pipeline.waitFor('spin a 20000000', 30_000), survivor.waitFor('spin survivor ', 30_000)]);
        process.kill(n1.pid, 'SIGKILL');
        const ended = await within(RUN_LIMIT_MS, 'the pipeline after its middle node was killed', pipeline.done).catch(async (error: unknown) => {
          // Say which stages are still there and in what state: that is where it hangs.
          const left = (await ps(n0)).map((q) => `${q.pid} ${q.command} on kernel ${q.kernel}: ${q.state}`);
          throw new RunFailure(`${(error as Error).message}\nstill listed on node 0: ${left.join('; ')}`, error instanceof RunFailure ? error.counts : {});
        });
        const lines = ended.stdout.split('\n').length - 1;
        if (ended.stdout !== spinLines('a', 10_000_000, lines)) {
          throw new RunFailure(`the pipeline's output is not a whole prefix of spin's: ${JSON.stringify(ended.stdout.slice(-200))}`, { bytes_corrupt: ended.stdout.length });
        }
        const carried = await within(RUN_LIMIT_MS, 'the survivor', survivor.done);
        assertExit('the survivor', { status: carried.status, signal: null }, { status: 0 }, carried.stderr);
        const expected = `${spinLines('survivor', SURVIVOR.every, SURVIVOR.n / SURVIVOR.every)}spin survivor done\n`;
        if (carried.stdout !== expected) throw new RunFailure(`the survivor printed ${JSON.stringify(carried.stdout)}`, { bytes_lost: Math.max(0, expected.length - carried.stdout.length) });
        await eventually('node 0 to drop the killed node\'s kernels', async () => ((await kernelCount(n0)) === KERNELS_PER_NODE ? true : undefined), 30_000);
      },
      close: () => cluster.close(),
    };
  },
};
