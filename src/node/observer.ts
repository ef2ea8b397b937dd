/**
 * What observers of a node see (/metrics, `popcorn top`, the dashboard): one snapshot built from
 * kernel_info and kernel_stats of every kernel, with rates against the previous snapshot and the
 * recent events of the whole cluster. Nothing is asked of the kernels unless someone samples.
 */

import { nodeOf, type EndpointId } from '../msg/address.js';
import type { KernelStats, PopcornNode } from './node.js';
import type { KernelEvent } from '../kernel/events.js';

export interface KernelView {
  index: number;
  endpoint: EndpointId;
  node: number;
  cpu_ms: number;
  /** Busy fraction of one CPU since the previous snapshot, 0–1. */
  cpu: number;
  run_queue: number;
  load: number;
  processes: number;
  migrations_in: number;
  migrations_out: number;
  sent: number;
  received: number;
  /** Messages sent and received per second since the previous snapshot. */
  msgs_per_s: number;
  heap_bytes: number;
}

export interface ProcessView {
  pid: number;
  ppid: number;
  kernel: number;
  state: string;
  cpu_ms: number;
  /** Fraction of one CPU since the previous snapshot. */
  cpu: number;
  memory_bytes: number;
  name: string;
  command: string;
}

export interface EventView extends KernelEvent {
  /** The kernel index that recorded it. */
  kernel: number;
}

export interface Snapshot {
  at: number;
  node: number;
  kernels: KernelView[];
  processes: ProcessView[];
  /** matrix[i][j]: messages kernel i sent to kernel j since boot; bytes likewise. */
  matrix: number[][];
  matrix_bytes: number[][];
  /** Per message type, summed over kernels: messages and bytes sent, received. */
  types: { type: string; sent: number; sent_bytes: number; received: number; received_bytes: number }[];
  /** The newest events of the cluster, oldest first. */
  events: EventView[];
  links: { up: { node: number; listen: string; heartbeatAgeMs: number }[]; lost: number };
  /** The raw per-kernel stats, for /metrics. */
  stats: KernelStats[];
}

/** Events kept on the node for the timeline. */
const EVENTS_KEPT = 1000;

export class Observer {
  private readonly seen = new Map<EndpointId, number>();
  private readonly events: EventView[] = [];
  private previous: { at: number; cpu: Map<string, number>; msgs: Map<number, number> } | undefined;
  private readonly listeners: ((events: EventView[]) => void)[] = [];

  constructor(private readonly node: PopcornNode) {}

  /** Called with every batch of new events (the latency histograms of /metrics). */
  onEvents(listener: (events: EventView[]) => void): void {
    this.listeners.push(listener);
  }

  async sample(): Promise<Snapshot> {
    const [infos, stats] = await Promise.all([this.node.info(), this.node.stats((k) => this.seen.get(k) ?? 0)]);
    const at = performance.timeOrigin + performance.now();
    this.collect(stats);
    const dt = this.previous === undefined ? 0 : (at - this.previous.at) / 1000;
    const rate = (now: number, before: number | undefined): number => (dt > 0 && before !== undefined ? Math.max(0, now - before) / dt : 0);
    const cpu = new Map<string, number>();
    const msgs = new Map<number, number>();
    const byIndex = new Map(stats.map((s) => [s.index, s]));
    const kernels: KernelView[] = infos.map((k) => {
      const s = byIndex.get(k.index);
      const cpuMs = s?.cpu_ms ?? 0;
      const traffic = k.messages.sent + k.messages.received;
      cpu.set(`k${k.index}`, cpuMs);
      msgs.set(k.index, traffic);
      return {
        index: k.index, endpoint: k.kernel, node: nodeOf(k.kernel), cpu_ms: cpuMs,
        cpu: rate(cpuMs, this.previous?.cpu.get(`k${k.index}`)) / 1000,
        run_queue: s?.run_queue ?? 0, load: k.load, processes: k.processes.length,
        migrations_in: k.migrations.in, migrations_out: k.migrations.out,
        sent: k.messages.sent, received: k.messages.received,
        msgs_per_s: rate(traffic, this.previous?.msgs.get(k.index)), heap_bytes: k.heap_bytes,
      };
    });
    const processes: ProcessView[] = infos.flatMap((k) => k.processes.map((p) => {
      cpu.set(`p${p.pid}`, p.cpu_ms);
      return {
        pid: p.pid, ppid: p.ppid, kernel: k.index, state: p.state, cpu_ms: p.cpu_ms,
        cpu: rate(p.cpu_ms, this.previous?.cpu.get(`p${p.pid}`)) / 1000,
        memory_bytes: p.memory_bytes, name: p.name, command: p.args.join(' '),
      };
    })).sort((a, b) => a.pid - b.pid);
    this.previous = { at, cpu, msgs };
    return { at, node: this.node.node, kernels, processes, ...this.matrices(stats), types: sumTypes(stats), events: this.events.slice(-200), links: this.node.links, stats };
  }

  /** Keep the new events, remember how far each kernel's were read, tell the listeners. */
  private collect(stats: KernelStats[]): void {
    const fresh: EventView[] = [];
    for (const s of stats) {
      const last = s.events.at(-1);
      if (last !== undefined) this.seen.set(s.kernel, last.seq);
      for (const e of s.events) fresh.push({ ...e, kind: e.kind as KernelEvent['kind'], kernel: s.index });
    }
    if (fresh.length === 0) return;
    fresh.sort((a, b) => a.at - b.at);
    this.events.push(...fresh);
    if (this.events.length > EVENTS_KEPT) this.events.splice(0, this.events.length - EVENTS_KEPT);
    for (const listener of this.listeners) listener(fresh);
  }

  /** Kernel-to-kernel traffic, by kernel index; messages to hosts are left out. */
  private matrices(stats: KernelStats[]): { matrix: number[][]; matrix_bytes: number[][] } {
    const index = new Map(this.node.clusterKernels.map((k, i) => [k, i]));
    const n = this.node.clusterKernels.length;
    const matrix = Array.from({ length: n }, () => new Array<number>(n).fill(0));
    const bytes = Array.from({ length: n }, () => new Array<number>(n).fill(0));
    for (const s of stats) {
      for (const p of s.peers) {
        const j = index.get(p.peer);
        if (j === undefined || s.index >= n) continue;
        matrix[s.index]![j] = p.sent;
        bytes[s.index]![j] = p.sent_bytes;
      }
    }
    return { matrix, matrix_bytes: bytes };
  }
}

function sumTypes(stats: KernelStats[]): Snapshot['types'] {
  const sums = new Map<string, Snapshot['types'][number]>();
  for (const s of stats) {
    for (const t of s.types) {
      const sum = sums.get(t.type) ?? { type: t.type, sent: 0, sent_bytes: 0, received: 0, received_bytes: 0 };
      sum.sent += t.sent;
      sum.sent_bytes += t.sent_bytes;
      sum.received += t.received;
      sum.received_bytes += t.received_bytes;
      sums.set(t.type, sum);
    }
  }
  return [...sums.values()].sort((a, b) => b.sent - a.sent);
}

/** A snapshot without each kernel's raw counters: what top and the page are sent. */
export function publicView(snap: Snapshot): Omit<Snapshot, 'stats'> {
  const rest: Partial<Snapshot> = { ...snap };
  delete rest.stats;
  return rest as Omit<Snapshot, 'stats'>;
}
