/**
 * The cluster benchmark: what crossing from one node to another costs — moving a live process,
 * spawning a child, a message round trip — each measured against the same thing within one node
 * in the same run (the machine is noisy: the ratios are what to read).
 *
 * Setup: two nodes on loopback, as two OS processes. Node A is booted in this process
 * (PopcornNode.boot with `cluster`, founding the cluster, listening on 127.0.0.1); node B is
 * `node dist/src/cli/main.js boot --foreground -k 2 --no-balance --listen 127.0.0.1:P
 * --join 127.0.0.1:PA --secret-file F` in a child process with its own POPCORN_RUNTIME_DIR, in a
 * temp dir with the secret file (32 random bytes as hex, mode 600; removed once B has joined).
 * Both have 2 kernels and balance off, so nothing moves by itself. The bench waits until B has
 * joined and says it is up, and all 4 kernels answer kernel_info; kernel indices span the
 * cluster, so 0–1 are A's kernels and 2–3 B's. Ports are random high ports, probed first and
 * retried if taken. A third process, the TLS peer, serves the raw TLS floors below. The children
 * are stopped, and the temp dir removed, on every way out: success, failure, and SIGINT/SIGTERM
 * of this process; should this process die without a word (SIGKILL), the children notice within
 * seconds (their parent is gone), stop themselves and remove the temp dir.
 *
 * The raw TLS floors: node:tls with the cluster's settings (TLS_OPTIONS, PSK_IDENTITY, clusterKey
 * of the same secret, setNoDelay), between this process and the TLS peer process — what any
 * message between two nodes pays at least, without popcorn's framing, relays and rings.
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

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tls from 'node:tls';
import { PopcornNode, type KernelInfo } from '../src/node/node.js';
import { clusterKey, PSK_IDENTITY, TLS_OPTIONS } from '../src/node/cluster.js';
import { nodeOf, type EndpointId } from '../src/msg/address.js';
import { prepareProgram } from '../src/wasm/loader.js';
import type { BenchOptions, BenchResult, BenchValue } from './main.js';
import { Capture, checkMoved, example, Holds, intArg, intListArg, median, onlyParts, preparing, ROOT, round3 } from './runners.js';

const PARTS = ['migrate', 'spawn', 'rtt'] as const;

const DEFAULT_SIZES = [1, 64];
const DEFAULT_MOVES = 20;
const DEFAULT_WARMUP = 10;
const TLS_MESSAGE_BYTES = 64;
/** Writes of a raw TLS transfer: as big as the pieces a migrating memory travels in (src/services/memory-transfer.ts). */
const TLS_PIECE_BYTES = 192 * 1024;
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
/** How many of node B's last log bytes an error shows. */
const LOG_TAIL_BYTES = 8 * 1024;

/**
 * Code every child of the bench runs first: once the bench process is gone (killed outright, so
 * it could not clean up), the child stops itself — by SIGTERM where it handles that (node B's
 * clean shutdown), else by exiting — and removes the bench's temp dir as it exits.
 */
const ORPHAN_GUARD = `import { isMainThread } from 'node:worker_threads';
import { rmSync } from 'node:fs';
if (isMainThread) {
  const parent = Number(process.env.POPCORN_BENCH_PARENT);
  const dir = process.env.POPCORN_BENCH_DIR;
  const check = setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      clearInterval(check);
      process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
      if (process.listenerCount('SIGTERM') > 0) process.kill(process.pid, 'SIGTERM');
      else process.exit(0);
    }
  }, 500);
  check.unref();
}`;
const orphanGuardImport = `data:text/javascript,${encodeURIComponent(ORPHAN_GUARD)}`;

/**
 * The TLS peer process: listens on 127.0.0.1 (port 0) and prints its port. A connection's first
 * byte says what it is: 'e', every later byte is echoed back; 's', a sink: transfers of a u32 LE
 * length and that many bytes, each acknowledged with one byte once all of it came.
 */
const TLS_PEER = `import * as tls from 'node:tls';
const psk = Buffer.from(process.env.POPCORN_BENCH_PSK, 'hex');
const identity = process.env.POPCORN_BENCH_IDENTITY;
const server = tls.createServer({ ...JSON.parse(process.env.POPCORN_BENCH_TLS), pskCallback: (_s, id) => (id === identity ? psk : null) }, (socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  let mode;
  let head = Buffer.alloc(0);
  let want = -1;
  let got = 0;
  socket.on('data', (data) => {
    if (mode === undefined) {
      mode = String.fromCharCode(data[0]);
      data = data.subarray(1);
    }
    if (mode === 'e') {
      if (data.length > 0) socket.write(data);
      return;
    }
    while (data.length > 0) {
      if (want < 0) {
        head = Buffer.concat([head, data]);
        if (head.length < 4) return;
        want = head.readUInt32LE(0);
        data = head.subarray(4);
        head = Buffer.alloc(0);
        got = 0;
      }
      const n = Math.min(data.length, want - got);
      got += n;
      data = data.subarray(n);
      if (got === want) {
        socket.write('k');
        want = -1;
      }
    }
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));`;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A random high TCP port on 127.0.0.1 that was free a moment ago. */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = net.createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('cluster bench: found no free port on 127.0.0.1');
}

/** A child process of the bench, its output kept (the tail) for errors. */
class Child {
  readonly proc: ChildProcess;
  /** The child's stdout and stderr as text, the last LOG_TAIL_BYTES of it in `tail`. */
  tail = '';
  stdout = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<void>;

  constructor(dir: string, args: string[], env: Record<string, string>, private readonly prefix: string | undefined) {
    this.proc = spawn(process.execPath, ['--import', orphanGuardImport, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env, POPCORN_BENCH_PARENT: String(process.pid), POPCORN_BENCH_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout?.setEncoding('utf8').on('data', (text: string) => {
      this.stdout += text;
      this.keep(text);
    });
    this.proc.stderr?.setEncoding('utf8').on('data', (text: string) => this.keep(text));
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
      this.proc.once('error', (error) => {
        this.keep(`spawn failed: ${error.message}\n`);
        this.exit ??= { code: null, signal: null };
        resolve();
      });
    });
  }

  private keep(text: string): void {
    this.tail = (this.tail + text).slice(-LOG_TAIL_BYTES);
    if (this.prefix !== undefined) process.stderr.write(text.replace(/^(?=.)/gm, this.prefix));
  }

  /** SIGTERM, then SIGKILL if it has not ended within `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.exit !== undefined) return;
    this.proc.kill('SIGTERM');
    const ended = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!ended) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }

  /** The last resort (process exit, signals): SIGKILL now, synchronously. */
  killNow(): void {
    if (this.exit === undefined) this.proc.kill('SIGKILL');
  }
}

/**
 * What the bench holds outside itself — children and a temp dir — released on every way out:
 * release() from `finally`, and synchronously on process exit and on SIGINT/SIGTERM.
 */
class Resources {
  readonly dir = mkdtempSync(join(tmpdir(), 'popcorn-bench-cluster-'));
  readonly children: Child[] = [];
  private readonly onExit = (): void => this.releaseNow();
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.releaseNow();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };

  constructor() {
    process.on('exit', this.onExit);
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  private releaseNow(): void {
    for (const child of this.children) child.killNow();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async release(): Promise<void> {
    await Promise.all(this.children.map((child) => child.stop()));
    rmSync(this.dir, { recursive: true, force: true });
    process.off('exit', this.onExit);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}

/** The two-node cluster: node A here, node B a child process. */
interface Cluster {
  node: PopcornNode;
  b: Child;
  /** Raw TLS to another process, for the transport's floor. */
  tls: TlsProbe;
}

/** Boot node A here on a free port (retried if the port was taken meanwhile). */
async function bootA(secret: Buffer, log: (line: string) => void): Promise<{ node: PopcornNode; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      const node = await PopcornNode.boot({
        kernels: 2, balance: false, cluster: { listen: { host: '127.0.0.1', port }, secret },
        log: (text) => process.stderr.write(`popcorn A: ${text}\n`),
      });
      return { node, port };
    } catch (error) {
      if (attempt >= 5 || !/cannot listen/.test((error as Error).message)) throw error;
      log(`node A: port ${port} was taken (${(error as Error).message}); again`);
    }
  }
}

/** Start node B joining through node A at `portA`; resolves once it is up and a member of A's cluster. */
async function startB(res: Resources, node: PopcornNode, portA: number, secretFile: string, timeoutMs: number, log: (line: string) => void): Promise<Child> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const started = performance.now();
    const b = new Child(
      res.dir,
      [join(ROOT, 'dist/src/cli/main.js'), 'boot', '--foreground', '-k', '2', '--no-balance',
        '--listen', `127.0.0.1:${port}`, '--join', `127.0.0.1:${portA}`, '--secret-file', secretFile],
      { POPCORN_RUNTIME_DIR: join(res.dir, `run-b${attempt}`) },
      'node B: ',
    );
    res.children.push(b);
    const member = (): boolean => node.members.some((m) => m.kernels === 2) && node.clusterKernels.length === CLUSTER_KERNELS;
    while (b.exit === undefined && !(member() && / up: /.test(b.tail)) && performance.now() - started < timeoutMs) await sleep(20);
    if (b.exit === undefined && member() && / up: /.test(b.tail)) {
      log(`node B: pid ${b.proc.pid}, listening on 127.0.0.1:${port}, joined and up after ${(performance.now() - started).toFixed(0)} ms`);
      return b;
    }
    await b.stop();
    const why = b.exit === undefined ? `did not join within ${timeoutMs / 1000} s` : `exited (${JSON.stringify(b.exit)})`;
    if (attempt < 3 && /cannot listen/.test(b.tail)) {
      log(`node B: port ${port} was taken; again`);
      continue;
    }
    throw new Error(`cluster bench: node B ${why}; its log:\n${b.tail}`);
  }
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
      const bLog = b.exit === undefined ? '' : `\nnode B exited (${JSON.stringify(b.exit)}); its log:\n${b.tail}`;
      throw new Error(`${what}: node.move(${pid}, ${to}) failed after ${(performance.now() - t).toFixed(1)} ms: ${(error as Error).message}${bLog}`, { cause: error });
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
    const bLog = b.exit === undefined ? '' : `\nnode B exited (${JSON.stringify(b.exit)}); its log:\n${b.tail}`;
    if (exit === 'timeout') throw new Error(`cluster bench: ${what} ran past ${timeoutMs / 1000} s (killed)\n${output}${bLog}`);
    if (exit.status !== 0) throw new Error(`cluster bench: ${what} exited ${exit.status}\n${exit.trap}${output}${bLog}`);
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

/**
 * Raw TLS between this process and the TLS peer process, with the cluster's settings: the
 * transport's floor. `ping()` sends TLS_MESSAGE_BYTES on the echo connection and resolves with
 * the µs until all came back; `transfer(bytes)` writes `bytes` on the sink connection in
 * TLS_PIECE_BYTES writes and resolves with the ms until the peer acknowledged all of them.
 */
class TlsProbe {
  private readonly waits = new Map<tls.TLSSocket, { need: number; got: number; resolve: () => void; reject: (error: Error) => void }>();
  private readonly message = randomBytes(TLS_MESSAGE_BYTES);
  private data = Buffer.alloc(0);

  private constructor(private readonly echo: tls.TLSSocket, private readonly sink: tls.TLSSocket) {
    for (const socket of [echo, sink]) {
      socket.on('data', (chunk: Buffer) => {
        const w = this.waits.get(socket);
        if (w === undefined) return;
        w.got += chunk.length;
        if (w.got < w.need) return;
        this.waits.delete(socket);
        w.resolve();
      });
      const fail = (error: Error): void => {
        this.waits.get(socket)?.reject(error);
        this.waits.delete(socket);
      };
      socket.on('error', fail);
      socket.on('close', () => fail(new Error('cluster bench: a TLS probe connection closed')));
    }
  }

  /** Start the peer process (a child of `res`) and open both connections. */
  static async open(res: Resources, secret: Buffer, timeoutMs: number): Promise<TlsProbe> {
    const key = clusterKey(secret);
    const peer = new Child(res.dir, ['--input-type=module', '-e', TLS_PEER], {
      POPCORN_BENCH_PSK: key.toString('hex'), POPCORN_BENCH_IDENTITY: PSK_IDENTITY, POPCORN_BENCH_TLS: JSON.stringify(TLS_OPTIONS),
    }, undefined);
    res.children.push(peer);
    const started = performance.now();
    while (!peer.stdout.includes('\n') && peer.exit === undefined && performance.now() - started < timeoutMs) await sleep(10);
    const port = Number(peer.stdout.trim());
    if (!Number.isInteger(port) || port <= 0) throw new Error(`cluster bench: the TLS peer process did not start: ${JSON.stringify(peer.exit)}\n${peer.tail}`);
    const connect = (mode: string): Promise<tls.TLSSocket> =>
      new Promise((resolve, reject) => {
        const socket = tls.connect({
          ...TLS_OPTIONS, host: '127.0.0.1', port,
          pskCallback: () => ({ psk: key, identity: PSK_IDENTITY }),
          checkServerIdentity: () => undefined,
        });
        socket.once('error', reject);
        socket.once('secureConnect', () => {
          socket.off('error', reject);
          socket.setNoDelay(true);
          socket.write(mode);
          resolve(socket);
        });
      });
    return new TlsProbe(await connect('e'), await connect('s'));
  }

  private wait(socket: tls.TLSSocket, need: number): Promise<void> {
    return new Promise((resolve, reject) => this.waits.set(socket, { need, got: 0, resolve, reject }));
  }

  async ping(): Promise<number> {
    const t = performance.now();
    const back = this.wait(this.echo, TLS_MESSAGE_BYTES);
    this.echo.write(this.message);
    await back;
    return (performance.now() - t) * 1000;
  }

  async transfer(bytes: number): Promise<number> {
    if (this.data.length < bytes) this.data = randomBytes(bytes);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(bytes, 0);
    const t = performance.now();
    const acked = this.wait(this.sink, 1);
    this.sink.write(length);
    for (let offset = 0; offset < bytes; offset += TLS_PIECE_BYTES) this.sink.write(this.data.subarray(offset, Math.min(offset + TLS_PIECE_BYTES, bytes)));
    await acked;
    return performance.now() - t;
  }

  close(): void {
    this.echo.destroy();
    this.sink.destroy();
  }
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

  const res = new Resources();
  let node: PopcornNode | undefined;
  let probe: TlsProbe | undefined;
  try {
    const secret = Buffer.from(randomBytes(32).toString('hex'));
    const secretFile = join(res.dir, 'secret');
    writeFileSync(secretFile, secret, { mode: 0o600 });
    const a = await bootA(secret, log);
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
