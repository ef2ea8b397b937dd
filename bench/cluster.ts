/**
 * The cluster benchmark: what crossing from one node to another costs — moving a live process,
 * spawning a child, a message round trip — each measured against the same thing within one node
 * in the same run (the machine is noisy: the ratios are what to read).
 *
 * Setup: two nodes on loopback, as two OS processes. Node A is booted in this process
 * (PopcornNode.boot with `cluster`, founding the cluster, listening on 127.0.0.1); node B is
 * `popcorn boot --foreground -k 2 --no-balance --listen 127.0.0.1:P --join 127.0.0.1:PA
 * --secret-file F` in a child process with its own POPCORN_RUNTIME_DIR, in a temp dir with the
 * secret file (removed once B has joined). Both have 2 kernels and balance off, so nothing moves
 * by itself. The bench waits until B has joined and says it is up, and all 4 kernels answer
 * kernel_info; kernel indices span the cluster, so 0–1 are A's kernels and 2–3 B's. Ports are
 * random high ports, probed first and retried if taken. A third process, the TLS peer, serves the
 * raw TLS floors below (bench/cluster-tls.ts). The children are stopped, and the temp dir
 * removed, on every way out, even should this process die without a word (test/child.ts); the
 * harness is the tests' (test/cluster-node.ts).
 *
 * Part `migrate`: examples/bench/hold.wasm `MIB sleep` (fills MIB MiB with incompressible data,
 * prints "ready", sleeps until killed) starts on kernel 0 (node A). For each size of --sizes
 * (default 1, 64) it makes --moves (default 20) moves across nodes and as many within node A, in
 * rounds: 0 → 2 → 0 (A → B → A), then 0 → 1 → 0, then one raw TLS transfer of the process's
 * memory size, so drift hits all three alike. After each move node.info() gives the destination's
 * migrations.last_us: the kernels' own time from "stopped on the source" to "runnable on the
 * destination" (fds, capture, for a cross move the memory and the image through both hosts and
 * the TLS link, instantiation, restore); the bench checks that the destination counted exactly
 * one more arrival and lists the process, and that no other kernel does. Within a node the memory
 * is handed over, not copied (src/wasm/shared-memory.ts); across nodes it is copied over the link
 * (src/services/memory-transfer.ts). The stop and the arrival of a cross move are stamped by
 * different OS processes (performance.timeOrigin + performance.now(), both from this machine's
 * clock), so a cross figure carries their clocks' skew, which is µs. Before anything is timed a
 * 1 MiB hold makes --warmup (default 10) untimed round trips each way, so every kernel has
 * compiled hold.wasm and the JIT has optimized the migration and relay code.
 *
 *   xmigrate_MIBmib_ms      median last_us (in ms) of the cross-node moves, both directions
 *   migrate_MIBmib_ms       baseline: median last_us of the moves within node A, same run
 *   xmove_rtt_MIBmib_ms     median host-observed node.move() round trip of the cross moves (the
 *                           request to the origin, kernel 0, which passes it on to where the
 *                           process runs; the move; the replies)
 *   move_rtt_MIBmib_ms      the same within node A
 *   tls_MIBmib_ms           floor: median raw TLS transfer of the process's memory size (from this
 *                           process to the peer in 192 KiB writes, as memory-transfer.ts sends
 *                           it, until the peer acknowledged the last byte)
 *
 * Part `spawn`: examples/bench/spawn.wasm `N KERNEL /bin/true.wasm` (examples/bench preopened as
 * /bin; it spawns once untimed, then times N spawn + run + exit + popcorn_wait of true.wasm and
 * prints spawn_us=MEAN) on kernel 0 of node A, with KERNEL 2 (node B), -1 (its own kernel) and 1
 * (node A's other kernel), in turn, --reps times (default 3), --spawns each (default 100).
 *
 *   xspawn_ms               median over reps of the mean cross-node spawn+wait
 *   spawn_local_ms          baseline: the same on the spawner's own kernel (bench/spawn.ts's spawn_local_us)
 *   spawn_remote_ms         the same on kernel 1 of the same node (bench/spawn.ts's spawn_remote_us)
 *
 * Part `rtt`: node A's host sends kernel_info (the cheapest request a kernel answers: there is no
 * ping handler in src) to kernel 2 (node B: A host → TLS → B host → ring → B kernel and back) and
 * to kernel 0 (A host → ring → A kernel and back), one at a time, --pings each (default 1000), in
 * alternating batches after a warm-up, and as many 64-byte raw TLS echoes.
 *
 *   xrtt_us                 median round trip of kernel_info to node B's kernel 0
 *   rtt_local_us            baseline: the same to node A's kernel 0
 *   tls_rtt_us              floor: median raw TLS round trip of a 64-byte message to the peer
 *
 * targets_met: xmigrate_1mib_ms ≤ 5, xmigrate_64mib_ms ≤ 150. A target whose number was not
 * measured (--sizes, --only) is null.
 *
 * A move, spawn or request that fails, a node B that does not join within --timeout-s (default
 * 60), a hold that does not say ready or ends early, fails the benchmark with what happened (and
 * node B's last log lines where they matter).
 *
 * Knobs: --sizes=1,64, --moves=N (per kind and size, rounded up to even), --warmup=N, --reps=N,
 * --spawns=N, --pings=N, --timeout-s=N, --only=migrate,spawn,rtt.
 */

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PopcornNode, type KernelInfo } from '../src/node/node.js';
import { nodeOf, type EndpointId } from '../src/msg/address.js';
import { prepareProgram } from '../src/wasm/loader.js';
import { Resources, type Child } from '../test/child.js';
import { nodeUp, onFreePort, startNode, writeSecret } from '../test/cluster-node.js';
import { eventually } from '../test/cluster-helpers.js';
import { TlsProbe } from './cluster-tls.js';
import type { BenchOptions, BenchResult, BenchValue } from './main.js';
import { Capture, checkMoved, example, Holds, intArg, intListArg, median, onlyParts, preparing, round3 } from './runners.js';

const PARTS = ['migrate', 'spawn', 'rtt'] as const;

const DEFAULT_SIZES = [1, 64];
const DEFAULT_MOVES = 20;
const DEFAULT_WARMUP = 10;
/** Untimed round trips before each timed batch of the rtt part. */
const RTT_WARMUP = 200;
const RTT_BATCHES = 4;

const TARGET_X1MIB_MS = 5;
const TARGET_X64MIB_MS = 150;

const MIB = 1024 * 1024;
/** Kernel indices in the cluster: node A's two, then node B's two. */
const A0 = 0;
const A1 = 1;
const B0 = 2;
const CLUSTER_KERNELS = 4;

/** The two-node cluster: node A here, node B a child process. */
interface Cluster {
  node: PopcornNode;
  b: Child;
  /** Raw TLS to another process, for the transport's floor. */
  tls: TlsProbe;
}

/** Boot node A here on a free port (again on another if the port was taken meanwhile). */
function bootA(secret: Buffer): Promise<{ node: PopcornNode; port: number }> {
  return onFreePort(5, async (port) => {
    const node = await PopcornNode.boot({
      kernels: 2, balance: false, cluster: { listen: { host: '127.0.0.1', port }, secret },
      log: (text) => process.stderr.write(`popcorn A: ${text}\n`),
    });
    return { node, port };
  });
}

/** Start node B joining through node A at `portA`; resolves once it is up and a member of A's cluster. */
function startB(res: Resources, node: PopcornNode, portA: number, secretFile: string, timeoutMs: number, log: (line: string) => void): Promise<Child> {
  const member = (): boolean => node.members.some((m) => m.kernels === 2) && node.clusterKernels.length === CLUSTER_KERNELS;
  return onFreePort(3, async (port) => {
    const started = performance.now();
    const b = res.hold(startNode(
      { kernels: 2, listen: `127.0.0.1:${port}`, join: `127.0.0.1:${portA}`, secretFile },
      { name: 'node B', env: { POPCORN_RUNTIME_DIR: join(res.dir, `run-b-${port}`) }, dir: res.dir, echo: 'node B: ' },
    ));
    try {
      await nodeUp(b, timeoutMs); // its error has node B's output: "cannot listen" there means the port was taken
      await eventually('node A to list node B as a member', async () => (member() ? true : undefined), timeoutMs - (performance.now() - started), 20);
    } catch (error) {
      await b.stop();
      throw new Error(`cluster bench: ${(error as Error).message}`, { cause: error });
    }
    log(`node B: pid ${b.proc.pid}, listening on 127.0.0.1:${port}, joined and up after ${(performance.now() - started).toFixed(0)} ms`);
    return b;
  });
}

/** node.info() of all four kernels, or an error saying which did not answer. */
async function infoAll(node: PopcornNode, what: string): Promise<KernelInfo[]> {
  const info = await node.info();
  if (info.length !== CLUSTER_KERNELS) throw new Error(`${what}: ${info.length} of ${CLUSTER_KERNELS} kernels answered kernel_info`);
  return info;
}

interface SizeResult {
  mib: number;
  /** last_us and host round trips (µs) of the cross-node moves, A → B and B → A alternating. */
  crossUs: number[];
  crossRttUs: number[];
  /** The same within node A. */
  localUs: number[];
  localRttUs: number[];
  /** ms of raw TLS transfers of the process's memory size, one per round trip. */
  tlsMs: number[];
}

/** The migrate part: one hold per size, moved across nodes and within node A, interleaved. */
async function migratePart(c: Cluster, sizes: number[], moves: number, warmup: number, timeoutMs: number, log: (line: string) => void): Promise<SizeResult[]> {
  const { node, b } = c;
  const holds = await Holds.on(node, timeoutMs, log);

  /** Move pid from kernel `from` to `to`: the host round trip (µs) and the destination's last_us, checked. */
  const moveOnce = async (pid: number, from: number, to: number, what: string): Promise<{ rtt: number; lastUs: number; memory: number }> => {
    const before = await infoAll(node, what);
    if (!before[from]!.processes.some((p) => p.pid === pid)) throw new Error(`${what}: pid ${pid} is not on kernel ${from} before the move`);
    const t = performance.now();
    try {
      await node.move(pid, to);
    } catch (error) {
      throw new Error(`${what}: node.move(${pid}, ${to}) failed after ${(performance.now() - t).toFixed(1)} ms: ${(error as Error).message}${b.exitNote()}`, { cause: error });
    }
    const rtt = (performance.now() - t) * 1000;
    const after = await infoAll(node, what);
    const { dest, proc } = checkMoved(before, after, pid, to, what);
    return { rtt, lastUs: dest.migrations.last_us, memory: proc.memory_bytes };
  };

  const results: SizeResult[] = [];
  try {
    {
      const hold = await holds.start(1, A0);
      const started = performance.now();
      for (let i = 0; i < warmup; i++) {
        for (const [from, to] of [[A0, B0], [B0, A0], [A0, A1], [A1, A0]] as const) await moveOnce(hold.pid, from, to, 'warm-up');
      }
      await holds.end(hold);
      log(`warm-up: ${warmup} round trips across nodes and within node A in ${(performance.now() - started).toFixed(0)} ms`);
    }
    for (const mib of sizes) {
      const hold = await holds.start(mib, A0);
      const pid = hold.pid;
      const r: SizeResult = { mib, crossUs: [], crossRttUs: [], localUs: [], localRttUs: [], tlsMs: [] };
      let memoryBytes = mib * MIB;
      for (let i = 0; i < moves / 2; i++) {
        for (const [from, to] of [[A0, B0], [B0, A0], [A0, A1], [A1, A0]] as const) {
          const cross = nodeOf(node.clusterKernels[from]!) !== nodeOf(node.clusterKernels[to]!);
          const m = await moveOnce(pid, from, to, `hold ${mib} MiB round trip ${i + 1}/${moves / 2} (kernel ${from} → ${to})`);
          (cross ? r.crossUs : r.localUs).push(m.lastUs);
          (cross ? r.crossRttUs : r.localRttUs).push(m.rtt);
          memoryBytes = m.memory;
          log(`hold ${mib} MiB ${cross ? 'across nodes' : 'within A  '} ${from} → ${to}: last_us ${m.lastUs.toFixed(0)}, host round trip ${m.rtt.toFixed(0)} µs; `
            + `memory there ${(m.memory / MIB).toFixed(2)} MiB`);
        }
        const ms = await c.tls.transfer(memoryBytes);
        r.tlsMs.push(ms);
        log(`raw TLS transfer of ${(memoryBytes / MIB).toFixed(2)} MiB: ${ms.toFixed(1)} ms`);
      }
      await holds.end(hold);
      results.push(r);
      const ab = r.crossUs.filter((_, i) => i % 2 === 0);
      const ba = r.crossUs.filter((_, i) => i % 2 === 1);
      log(`hold ${mib} MiB: median last_us across nodes ${median(r.crossUs).toFixed(0)} (A → B ${median(ab).toFixed(0)}, B → A ${median(ba).toFixed(0)}; `
        + `min ${Math.min(...r.crossUs).toFixed(0)}, max ${Math.max(...r.crossUs).toFixed(0)}), within A ${median(r.localUs).toFixed(0)}; `
        + `raw TLS transfer ${(median(r.tlsMs) * 1000).toFixed(0)}`);
    }
  } finally {
    await holds.close();
  }
  return results;
}

/** The number after `key=` in a program's output, or an error with the output. */
function field(output: string, key: string, what: string): number {
  const m = new RegExp(`(?:^|\\s)${key}=([\\d.]+)`).exec(output);
  if (m === null) throw new Error(`cluster bench: ${what} printed no ${key}= value:\n${output}`);
  return Number(m[1]);
}

/** The spawn part: spawn.wasm on kernel 0 spawning true.wasm on node B, on its own kernel, on kernel 1; µs, per rep. */
async function spawnPart(c: Cluster, reps: number, spawns: number, timeoutMs: number, log: (line: string) => void): Promise<{ cross: number[]; local: number[]; remote: number[] }> {
  const { node, b } = c;
  const prepare = async (name: string): Promise<string> =>
    (await prepareProgram(example(`bench/${name}.wasm`), preparing(log))).hash;
  const spawnHash = await prepare('spawn');
  await prepare('true'); // the kernels find it by path when spawn.wasm spawns it
  const stdout = new Capture();
  const stderr = new Capture();
  const set = node.attachStreams({ stdin: Readable.from([]), stdout, stderr });

  /** spawn.wasm `spawns kernel /bin/true.wasm` on kernel 0; its spawn_us. */
  const runSpawn = async (kernel: number): Promise<number> => {
    const args = ['/bin/spawn.wasm', String(spawns), String(kernel), '/bin/true.wasm'];
    const what = args.join(' ');
    const pid = await node.start({ hash: spawnHash, name: 'spawn.wasm', args, env: [], dirs: [{ host: example('bench'), guest: '/bin' }], kernel: A0, streams: set });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const exit = await Promise.race([node.waitExit(pid), timedOut]);
    clearTimeout(timer);
    if (exit === 'timeout') await node.kill(pid, 9).catch(() => false);
    await node.flushed(set);
    const output = `--- stdout:\n${stdout.take()}--- stderr:\n${stderr.take()}`;
    if (exit === 'timeout') throw new Error(`cluster bench: ${what} ran past ${timeoutMs / 1000} s (killed)\n${output}${b.exitNote()}`);
    if (exit.status !== 0) throw new Error(`cluster bench: ${what} exited ${exit.status}\n${exit.trap}${output}${b.exitNote()}`);
    return field(output, 'spawn_us', what);
  };

  const cross: number[] = [];
  const local: number[] = [];
  const remote: number[] = [];
  try {
    for (let r = 0; r < reps; r++) {
      cross.push(await runSpawn(B0));
      local.push(await runSpawn(-1));
      remote.push(await runSpawn(A1));
      log(`spawn+wait of true.wasm, rep ${r + 1}/${reps}: on node B ${cross[r]!.toFixed(0)} µs, own kernel ${local[r]!.toFixed(0)} µs, kernel 1 ${remote[r]!.toFixed(0)} µs (mean of ${spawns})`);
    }
  } finally {
    node.detachStreams(set);
  }
  return { cross, local, remote };
}

/** One kernel_info round trip from node A's host to `kernel`, in µs. */
function infoRtt(node: PopcornNode, kernel: EndpointId): Promise<number> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    node.messenger.request(kernel, 'kernel_info', {}, 5_000, (error) => {
      if (error === null) resolve((performance.now() - t) * 1000);
      else reject(error);
    });
  });
}

/** The rtt part: kernel_info to node B's kernel 0 and to node A's kernel 0; raw TLS echo. Each a list of µs. */
async function rttPart(c: Cluster, pings: number, log: (line: string) => void): Promise<{ cross: number[]; local: number[]; tls: number[] }> {
  const { node } = c;
  const kernelB = node.clusterKernels[B0]!;
  const kernelA = node.clusterKernels[A0]!;
  const cross: number[] = [];
  const local: number[] = [];
  const raw: number[] = [];
  const per = Math.ceil(pings / RTT_BATCHES);
  for (let batch = 0; batch < RTT_BATCHES; batch++) {
    const runs: [number[], () => Promise<number>][] = [
      [cross, () => infoRtt(node, kernelB)],
      [local, () => infoRtt(node, kernelA)],
      [raw, () => c.tls.ping()],
    ];
    for (const [into, once] of runs) {
      for (let i = 0; i < (batch === 0 ? RTT_WARMUP : 0); i++) await once();
      for (let i = 0; i < per; i++) into.push(await once());
    }
  }
  log(`round trips (median of ${cross.length}): kernel_info across nodes ${median(cross).toFixed(0)} µs, within A ${median(local).toFixed(0)} µs; raw TLS echo ${median(raw).toFixed(0)} µs`);
  return { cross, local, tls: raw };
}

export async function run({ args, log }: BenchOptions): Promise<BenchResult> {
  const sizes = intListArg(args, 'sizes', DEFAULT_SIZES);
  const moves = 2 * Math.ceil(intArg(args, 'moves', DEFAULT_MOVES) / 2);
  const warmup = intArg(args, 'warmup', DEFAULT_WARMUP);
  const reps = intArg(args, 'reps', 3);
  const spawns = intArg(args, 'spawns', 100);
  const pings = intArg(args, 'pings', 1000);
  const timeoutMs = intArg(args, 'timeout-s', 60) * 1000;
  const doing = onlyParts(args, PARTS);

  const result: BenchResult = { stat: 'median' };
  let x1: number | null = null;
  let x64: number | null = null;

  const res = new Resources('popcorn-bench-cluster-');
  let node: PopcornNode | undefined;
  let probe: TlsProbe | undefined;
  try {
    const secretFile = join(res.dir, 'secret');
    const secret = writeSecret(secretFile);
    const a = await bootA(secret);
    node = a.node;
    const b = await startB(res, node, a.port, secretFile, timeoutMs, log);
    rmSync(secretFile); // node B has read it
    probe = await TlsProbe.open(res, secret, timeoutMs);
    const c: Cluster = { node, b, tls: probe };
    const info = await infoAll(node, 'cluster bench: after node B joined');
    log(`cluster of ${node.members.length + 1} nodes; kernel index=endpoint: ${info.map((k) => `${k.index}=${k.kernel.toString(16)}`).join(' ')}`);

    if (doing('migrate')) {
      for (const r of await migratePart(c, sizes, moves, warmup, timeoutMs, log)) {
        const ms = (us: number[]): number => round3(median(us) / 1000);
        result[`xmigrate_${r.mib}mib_ms`] = ms(r.crossUs);
        result[`migrate_${r.mib}mib_ms`] = ms(r.localUs);
        result[`xmove_rtt_${r.mib}mib_ms`] = ms(r.crossRttUs);
        result[`move_rtt_${r.mib}mib_ms`] = ms(r.localRttUs);
        result[`tls_${r.mib}mib_ms`] = round3(median(r.tlsMs));
        if (r.mib === 1) x1 = median(r.crossUs) / 1000;
        if (r.mib === 64) x64 = median(r.crossUs) / 1000;
      }
      result['moves'] = moves;
    }

    if (doing('spawn')) {
      const s = await spawnPart(c, reps, spawns, timeoutMs, log);
      Object.assign(result, {
        xspawn_ms: round3(median(s.cross) / 1000),
        spawn_local_ms: round3(median(s.local) / 1000),
        spawn_remote_ms: round3(median(s.remote) / 1000),
        spawns,
        spawn_reps: reps,
      });
    }

    if (doing('rtt')) {
      const r = await rttPart(c, pings, log);
      Object.assign(result, {
        xrtt_us: round3(median(r.cross)),
        rtt_local_us: round3(median(r.local)),
        tls_rtt_us: round3(median(r.tls)),
        pings: r.cross.length,
      });
    }
  } finally {
    probe?.close();
    await node?.shutdown();
    await res.release();
  }

  const targets: Record<string, BenchValue> = {
    xmigrate_1mib_ms: x1 === null ? null : x1 <= TARGET_X1MIB_MS,
    xmigrate_64mib_ms: x64 === null ? null : x64 <= TARGET_X64MIB_MS,
  };
  result['targets_met'] = targets;
  return result;
}
