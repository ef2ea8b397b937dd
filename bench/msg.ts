/**
 * The messaging benchmark: how fast two worker threads (two kernels) can talk, over each layer we
 * have, in one run so the numbers are comparable.
 *
 *   raw_rtt_ns            SharedArrayBuffer ping-pong, each side spinning on one Int32: the floor.
 *   ring_rtt_ns           64 B round trip through RingProducer/RingConsumer, both sides following
 *                         the doorbell protocol (spin briefly, then sleep); in a ping-pong the
 *                         answer always comes within the spin window, which is what this measures.
 *   postmessage_rtt_ns    64 B round trip through MessagePort.postMessage.
 *   messenger_rtt_ns      ping/pong request through two Messengers over rings (codec, frame
 *                         header, wait stations).
 *   ring_msgs_per_s       one-way 64 B records through one ring, each copied out by the consumer.
 *   ring_gbytes_per_s     one-way 1 MiB records through an 8 MiB ring, copied in and copied out.
 *   messenger_gbytes_per_s  one-way 1 MiB `ping` messages through Messenger + RingOutLink on a
 *                         1 MiB ring, so each message is fragmented and reassembled (and encoded
 *                         and decoded): what a kernel sending a module or a checkpoint gets.
 *   tcp_rtt_us, tcp_gbytes_per_s  loopback TCP between the two workers.
 *
 * Each figure is the median of several rounds after a warm-up round. Knobs: --rounds=N,
 * --spin-ns=N (how long a waiting side spins before sleeping), --quick (fewer iterations).
 */

import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { Doorbell } from '../src/msg/doorbell.js';
import { createRing } from '../src/msg/ring.js';
import type { BenchOptions, BenchResult, BenchValue } from './main.js';
import { CONTROL_BYTES, type Command, type Outcome, type Scenario } from './msg-worker.js';

const KiB = 1024;
const MiB = 1024 * KiB;

interface Params {
  count: number;
  size: number;
  capacity?: number;
  tcpPort?: number;
}

class Pair {
  private readonly workers: [Worker, Worker];

  constructor(private readonly spinNs: number) {
    const url = new URL('./msg-worker.js', import.meta.url);
    this.workers = [new Worker(url), new Worker(url)];
  }

  private ask(worker: Worker, cmd: Command, transfer: MessagePort[]): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: { ok: boolean; outcome?: Outcome; error?: string }): void => {
        worker.off('error', reject);
        if (m.ok) resolve(m.outcome as Outcome);
        else reject(new Error(`${cmd.scenario} (${cmd.role}): ${m.error}`));
      };
      worker.once('message', onMessage);
      worker.once('error', reject);
      worker.postMessage(cmd, transfer);
    });
  }

  /** One round of `scenario` on both workers; resolves to side A's outcome. */
  async round(scenario: Scenario, p: Params): Promise<Outcome> {
    const base = { scenario, count: p.count, size: p.size, spinNs: this.spinNs, control: new SharedArrayBuffer(CONTROL_BYTES), tcpPort: p.tcpPort };
    const a: Command = { ...base, role: 'A' };
    const b: Command = { ...base, role: 'B' };
    const transferA: MessagePort[] = [];
    const transferB: MessagePort[] = [];
    if (p.capacity !== undefined) {
      const bellA = new Doorbell();
      const bellB = new Doorbell();
      // A→B: B's bell rings when data arrives, A's when space frees; and the mirror image.
      const ab = createRing(p.capacity, bellB, bellA);
      const ba = createRing(p.capacity, bellA, bellB);
      Object.assign(a, { ab, ba, bellA: bellA.buffer, bellB: bellB.buffer });
      Object.assign(b, { ab, ba, bellA: bellA.buffer, bellB: bellB.buffer });
    }
    if (scenario === 'postmessage-rtt') {
      const { port1, port2 } = new MessageChannel();
      a.port = port1;
      b.port = port2;
      transferA.push(port1);
      transferB.push(port2);
    }
    const [outcome] = await Promise.all([this.ask(this.workers[0], a, transferA), this.ask(this.workers[1], b, transferB)]);
    return outcome;
  }

  /** Ask only worker B (set-up steps such as opening a listening socket). */
  setupB(scenario: Scenario): Promise<Outcome> {
    return this.ask(this.workers[1], { scenario, role: 'B', count: 0, size: 0, spinNs: this.spinNs, control: new SharedArrayBuffer(CONTROL_BYTES) }, []);
  }

  async close(): Promise<void> {
    for (const w of this.workers) w.postMessage('exit');
    await Promise.all(this.workers.map((w) => new Promise((resolve) => { w.once('exit', resolve); setTimeout(() => void w.terminate(), 2000).unref(); })));
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Nanoseconds per operation: median over `rounds` after one warm-up round. */
async function measure(pair: Pair, scenario: Scenario, p: Params, rounds: number, log: (l: string) => void): Promise<{ ns: number; last: Outcome }> {
  let last = await pair.round(scenario, p); // warm-up: JIT, page faults, socket buffers
  const perOp: number[] = [];
  for (let r = 0; r < rounds; r++) {
    last = await pair.round(scenario, p);
    perOp.push(last.ns / p.count);
  }
  const ns = median(perOp);
  log(`  ${scenario.padEnd(17)} size ${String(p.size).padStart(7)} B  ${ns.toFixed(1).padStart(10)} ns/op  (rounds: ${perOp.map((x) => x.toFixed(0)).join(' ')})`);
  return { ns, last };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

export async function run(options: BenchOptions): Promise<BenchResult> {
  const { args, log } = options;
  const quick = args.quick === true;
  const rounds = Number(args.rounds ?? (quick ? 3 : 7));
  const spinNs = Number(args['spin-ns'] ?? 50_000);
  const scale = quick ? 0.2 : 1;
  const n = (x: number): number => Math.max(1, Math.round(x * scale));
  const started = performance.now();
  const pair = new Pair(spinNs);
  log(`msg: two worker threads, ${rounds} rounds per figure after a warm-up, spin ${spinNs} ns before sleeping`);
  try {
    // --only=raw,ring,... runs a subset (while tuning); the figures it skips come out as NaN.
    const only = typeof args.only === 'string' ? new Set(args.only.split(',')) : undefined;
    const skipped = { ns: NaN, last: { ns: NaN } as Outcome };
    const step = (key: string, scenario: Scenario, p: Params): Promise<{ ns: number; last: Outcome }> =>
      only === undefined || only.has(key) ? measure(pair, scenario, p, rounds, log) : Promise.resolve(skipped);
    const raw = await step('raw', 'raw-rtt', { count: n(200_000), size: 4 });
    const ring = await step('ring', 'ring-rtt', { count: n(200_000), size: 64, capacity: 64 * KiB });
    const pm = await step('postmessage', 'postmessage-rtt', { count: n(20_000), size: 64 });
    const mrtt = await step('messenger', 'messenger-rtt', { count: n(100_000), size: 64, capacity: 64 * KiB });
    const small = await step('stream', 'ring-stream', { count: n(2_000_000), size: 64, capacity: 64 * KiB });
    const big = await step('bulk', 'ring-stream', { count: n(1_000), size: MiB, capacity: 8 * MiB });
    const mbig = await step('messenger-bulk', 'messenger-stream', { count: n(300), size: MiB, capacity: MiB });
    let tcpPort = 0;
    if (only === undefined || only.has('tcp')) tcpPort = ((await pair.setupB('tcp-listen')).extra as Record<string, number>).port;
    const trtt = await step('tcp', 'tcp-rtt', { count: n(20_000), size: 64, tcpPort });
    const tbig = await step('tcp', 'tcp-stream', { count: n(1_000), size: MiB, tcpPort });

    const ringVsRaw = ring.ns / raw.ns;
    const pmVsRing = pm.ns / ring.ns;
    const msgsPerS = 1e9 / small.ns;
    const ringGBps = MiB / big.ns; // bytes per ns = GB/s
    const tcpGBps = MiB / tbig.ns;
    const targets: Record<string, BenchValue> = {
      ring_vs_raw_le_1_5: ringVsRaw <= 1.5,
      postmessage_vs_ring_ge_20: pmVsRing >= 20,
      ring_msgs_per_s_ge_5M: msgsPerS >= 5e6,
      ring_gbytes_per_s_ge_2: ringGBps >= 2,
      tcp_gbytes_per_s_ge_1: tcpGBps >= 1,
    };
    const result: BenchResult = {
      raw_rtt_ns: Math.round(raw.ns),
      ring_rtt_ns: Math.round(ring.ns),
      postmessage_rtt_ns: Math.round(pm.ns),
      messenger_rtt_ns: Math.round(mrtt.ns),
      ring_msgs_per_s: Math.round(msgsPerS),
      ring_gbytes_per_s: round2(ringGBps),
      messenger_gbytes_per_s: round2(MiB / mbig.ns),
      messenger_fragments_per_message: mbig.last.extra?.fragments_per_message ?? 0,
      tcp_rtt_us: round2(trtt.ns / 1000),
      tcp_gbytes_per_s: round2(tcpGBps),
      tcp_transport: 'TcpLink (src/msg/tcp-link.ts) on both ends, 127.0.0.1, frames of 64 B (rtt) and 1 MiB (stream)',
      ring_vs_raw: round2(ringVsRaw),
      postmessage_vs_ring: round2(pmVsRing),
      targets_met: targets,
      all_targets_met: Object.values(targets).every((v) => v === true),
      spin_ns: spinNs,
      rounds,
      seconds: round2((performance.now() - started) / 1000),
    };
    return result;
  } finally {
    await pair.close();
  }
}
