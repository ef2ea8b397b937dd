/**
 * The soak benchmark: many of the same thing, to see that nothing is lost, nothing is duplicated
 * and nothing leaks. Three parts, each bounded by a count and by --seconds (default 180) each, so
 * the whole stays under ten minutes; what a part got through in its time is reported.
 *
 *   ring        --ring (default 10^8) 8-byte records numbered 0, 1, 2, … from a worker thread
 *               (bench/soak-ring-worker.ts) through one 64 KiB ring (src/msg/ring.ts) to this
 *               thread, which checks each number: one below the next expected is a duplicate,
 *               one above it means records were lost; at the end what arrived must equal what the
 *               producer says it sent.
 *               ring_messages, ring_lost, ring_duplicated, ring_msgs_per_s
 *   spawn       --spawns (default 10^5) spawn + wait pairs by examples/bench/spawn.wasm on a node
 *               of 2 kernels (children on its own kernel and on the other, in turns of 1000),
 *               each of which exits 1 if a child does not exit 0
 *               spawns, spawn_failures, spawn_us (mean over all)
 *   migrate     --migrations (default 10^4) moves of one examples/bench/hold.wasm (1 MiB)
 *               between the node's two kernels; at the end it must be listed by exactly one
 *               kernel, and the kernels must have counted as many arrivals as there were moves
 *               migrations, migrations_lost (moves the counters do not show), migrate_us (mean)
 *
 * Around all three: the heap (after a full GC), the RSS and this process's open fds
 * (/proc/self/fd), once after the node booted and warmed up (a few spawns and moves), and again
 * at the end with the node still up; the growth of each is reported.
 *
 * targets_met: lost 0 and duplicated 0 everywhere; heap growth ≤ 16 MiB, RSS growth ≤ 64 MiB
 * (allocators keep some freed memory), fds back at baseline.
 */

import { readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { Doorbell } from '../src/msg/doorbell.js';
import { createRing, RingConsumer } from '../src/msg/ring.js';
import { PopcornNode } from '../src/node/node.js';
import { prepareProgram } from '../src/wasm/loader.js';
import type { BenchOptions, BenchResult, BenchValue } from './main.js';
import { Capture, collectGarbage, example, Holds, intArg, preparing, round3 } from './runners.js';
import { DONE, SENT, STOP, type RingJob } from './soak-ring-worker.js';

const MiB = 1024 * 1024;
const SPAWN_BATCH = 1000;

interface Usage {
  heap: number;
  rss: number;
  fds: number;
}

function usage(): Usage {
  collectGarbage();
  return { heap: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss, fds: readdirSync('/proc/self/fd').length };
}

async function soakRing(count: number, seconds: number, log: (line: string) => void): Promise<Record<string, BenchValue>> {
  const consumerBell = new Doorbell();
  const ring = createRing(64 * 1024, consumerBell, new Doorbell());
  const control = new Int32Array(new SharedArrayBuffer(16));
  const worker = new Worker(new URL('./soak-ring-worker.js', import.meta.url), { workerData: { ring, count, control: control.buffer } satisfies RingJob });
  const ended = new Promise<void>((resolve, reject) => {
    worker.once('exit', () => resolve());
    worker.once('error', reject);
  });
  const consumer = new RingConsumer(ring);
  let expected = 0;
  let received = 0;
  let lost = 0;
  let duplicated = 0;
  const handler = (bytes: Uint8Array, offset: number): void => {
    const seq = (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
    received++;
    if (seq === expected) expected++;
    else if (seq > expected) {
      lost += seq - expected;
      expected = seq + 1;
    } else duplicated++;
  };
  const started = performance.now();
  const deadline = started + seconds * 1000;
  // This thread blocks here (the doorbell's wait), as a kernel thread does: nothing else runs now.
  for (let batches = 0; ; batches++) {
    const done = Atomics.load(control, DONE) !== 0;
    if (consumer.poll(handler, 256) === 0) {
      if (done) break;
      consumerBell.wait(() => consumer.hasData() || Atomics.load(control, DONE) !== 0, 20_000, 100);
    }
    if ((batches & 1023) === 0 && performance.now() > deadline) Atomics.store(control, STOP, 1);
  }
  const ms = performance.now() - started;
  await ended;
  const sent = Atomics.load(control, SENT);
  lost += sent - expected;
  log(`ring: ${received.toLocaleString('en-US')} of ${sent.toLocaleString('en-US')} sent in ${(ms / 1000).toFixed(1)} s`);
  return { ring_messages: received, ring_sent: sent, ring_lost: lost, ring_duplicated: duplicated, ring_msgs_per_s: round3((received * 1000) / ms) };
}

/** A node of 2 kernels whose processes see examples/bench as /bin, stdio captured. */
class SoakNode {
  readonly stdout = new Capture();
  readonly stderr = new Capture();
  private readonly set: number;
  private constructor(readonly node: PopcornNode, private readonly spawnHash: string) {
    this.set = node.attachStreams({ stdin: Readable.from([]), stdout: this.stdout, stderr: this.stderr });
  }

  static async boot(log: (line: string) => void): Promise<SoakNode> {
    const progress = preparing(log);
    const { hash } = await prepareProgram(example('bench/spawn.wasm'), progress);
    await prepareProgram(example('bench/true.wasm'), progress);
    return new SoakNode(await PopcornNode.boot({ kernels: 2, log: (text) => log(`popcorn: ${text}`) }), hash);
  }

  /** `spawn N KERNEL /bin/true.wasm`: the mean µs it printed, or an error with its output. */
  async spawns(n: number, kernel: number): Promise<number> {
    const args = ['/bin/spawn.wasm', String(n), String(kernel), '/bin/true.wasm'];
    const pid = await this.node.start({ hash: this.spawnHash, name: 'spawn.wasm', args, env: [], dirs: [{ host: example('bench'), guest: '/bin' }], kernel: 0, streams: this.set });
    const exit = await this.node.waitExit(pid);
    await this.node.flushed(this.set);
    const out = this.stdout.take();
    const err = this.stderr.take();
    const us = Number(/spawn_us=([\d.]+)/.exec(out)?.[1]);
    if (exit.status !== 0 || !Number.isFinite(us)) throw new Error(`${args.join(' ')}: exit ${JSON.stringify(exit)}\n${out}${err}`);
    return us;
  }
}

async function soakSpawns(soak: SoakNode, count: number, seconds: number, log: (line: string) => void): Promise<Record<string, BenchValue>> {
  const deadline = performance.now() + seconds * 1000;
  let done = 0;
  let failures = 0;
  let totalUs = 0;
  for (let batch = 0; done < count && performance.now() < deadline; batch++) {
    const n = Math.min(SPAWN_BATCH, count - done);
    try {
      totalUs += (await soak.spawns(n, batch % 2 === 0 ? -1 : 1)) * n;
    } catch (error) {
      failures++;
      log(`spawn batch ${batch}: ${(error as Error).message}`);
    }
    done += n;
  }
  log(`spawn: ${done.toLocaleString('en-US')} spawn+wait pairs, ${failures} failed batches`);
  return { spawns: done, spawn_failures: failures, spawn_us: round3(totalUs / Math.max(1, done)) };
}

async function soakMigrations(soak: SoakNode, holds: Holds, count: number, seconds: number, log: (line: string) => void): Promise<Record<string, BenchValue>> {
  const hold = await holds.start(1, 0);
  const arrivals = async (): Promise<number> => (await soak.node.info()).reduce((n, k) => n + k.migrations.in, 0);
  const before = await arrivals();
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  let moves = 0;
  while (moves < count && performance.now() < deadline) await soak.node.move(hold.pid, ++moves % 2);
  const ms = performance.now() - started;
  const listed = (await soak.node.info()).filter((k) => k.processes.some((p) => p.pid === hold.pid)).map((k) => k.index);
  const counted = (await arrivals()) - before;
  await holds.end(hold);
  if (listed.length !== 1 || listed[0] !== moves % 2) throw new Error(`after ${moves} moves pid ${hold.pid} is listed by kernels [${listed.join(', ')}], expected [${moves % 2}]`);
  log(`migrate: ${moves.toLocaleString('en-US')} moves, ${counted} arrivals counted`);
  return { migrations: moves, migrations_lost: moves - counted, migrate_us: round3((ms * 1000) / Math.max(1, moves)) };
}

export async function run({ args, log }: BenchOptions): Promise<BenchResult> {
  const seconds = intArg(args, 'seconds', 180);
  const soak = await SoakNode.boot(log);
  const holds = await Holds.on(soak.node, 60_000, log);
  try {
    // Warm up so that baseline already holds what a first spawn and a first move allocate for good.
    await soak.spawns(10, 1);
    const warm = await holds.start(1, 0);
    for (let i = 1; i <= 10; i++) await soak.node.move(warm.pid, i % 2);
    await holds.end(warm);
    const baseline = usage();
    const ring = await soakRing(intArg(args, 'ring', 100_000_000), seconds, log);
    const spawn = await soakSpawns(soak, intArg(args, 'spawns', 100_000), seconds, log);
    const migrate = await soakMigrations(soak, holds, intArg(args, 'migrations', 10_000), seconds, log);
    const end = usage();
    const growth = {
      heap_growth_mib: round3((end.heap - baseline.heap) / MiB),
      rss_growth_mib: round3((end.rss - baseline.rss) / MiB),
      fds_baseline: baseline.fds,
      fds_growth: end.fds - baseline.fds,
    };
    return {
      ...ring,
      ...spawn,
      ...migrate,
      ...growth,
      targets_met: {
        lost_0: ring.ring_lost === 0 && migrate.migrations_lost === 0 && spawn.spawn_failures === 0,
        duplicated_0: ring.ring_duplicated === 0,
        heap_back: growth.heap_growth_mib <= 16,
        rss_back: growth.rss_growth_mib <= 64,
        fds_back: growth.fds_growth <= 0,
      },
    };
  } finally {
    await holds.close();
    await soak.node.shutdown();
  }
}
