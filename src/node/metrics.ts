/**
 * /metrics: the node's observations in Prometheus's text format (prom-client). A scrape samples
 * the kernels once (src/node/observer.ts); between scrapes nothing is asked of them. The spawn
 * and migration latency histograms are fed from the kernels' event logs, so they count the
 * events seen by some sample (each kernel keeps its last 512).
 */

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventView, Observer, Snapshot } from './observer.js';

type Labels = Record<string, string | number>;

/** Latency buckets, seconds: 10 µs to 1 s. */
const LATENCY_BUCKETS = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1];

export class Metrics {
  readonly registry = new Registry();
  private readonly cpu = this.counter('popcorn_kernel_cpu_seconds_total', 'CPU time of the slices a kernel ran', ['kernel']);
  private readonly runQueue = this.gauge('popcorn_kernel_run_queue', 'processes waiting for the CPU', ['kernel']);
  private readonly processes = this.gauge('popcorn_kernel_processes', 'processes on a kernel, zombies included', ['kernel']);
  private readonly heap = this.gauge('popcorn_kernel_heap_bytes', "the kernel thread's V8 heap in use", ['kernel']);
  private readonly migrations = this.counter('popcorn_kernel_migrations_total', 'processes that moved to (in) and from (out) a kernel', ['kernel', 'direction']);
  private readonly messages = this.counter('popcorn_messages_total', 'messages a kernel sent and received, by type', ['kernel', 'type', 'direction']);
  private readonly bytes = this.counter('popcorn_message_bytes_total', 'bytes a kernel sent and received, by type', ['kernel', 'type', 'direction']);
  private readonly peerMessages = this.counter('popcorn_peer_messages_total', 'messages a kernel sent to and received from each peer endpoint', ['kernel', 'peer', 'direction']);
  private readonly peerBytes = this.counter('popcorn_peer_bytes_total', 'bytes a kernel sent to and received from each peer endpoint', ['kernel', 'peer', 'direction']);
  private readonly processCpu = this.gauge('popcorn_process_cpu_seconds', 'CPU time of a live process', ['pid', 'kernel', 'name']);
  private readonly linksUp = this.gauge('popcorn_cluster_links_up', 'links to other nodes that are up', []);
  private readonly linksLost = this.counter('popcorn_cluster_links_lost_total', 'links to other nodes that went down', []);
  private readonly heartbeat = this.gauge('popcorn_cluster_heartbeat_age_seconds', "since the last heartbeat of each other node", ['peer_node']);
  private readonly spawnLatency = new Histogram({ name: 'popcorn_spawn_seconds', help: 'time for a kernel to create a process', labelNames: ['kernel'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  private readonly migrationLatency = new Histogram({ name: 'popcorn_migration_seconds', help: 'from stop at the source to runnable at the destination', labelNames: ['kernel'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  /** What each counter last reported, so a kernel's running total becomes an increment. */
  private readonly reported = new Map<string, number>();

  constructor(private readonly observer: Observer) {
    observer.onEvents((events) => this.observe(events));
  }

  /** A scrape: sample the kernels, then format. */
  async text(): Promise<string> {
    this.update(await this.observer.sample());
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private update(snap: Snapshot): void {
    for (const k of snap.kernels) {
      const kernel = { kernel: k.index };
      this.set(this.cpu, kernel, k.cpu_ms / 1000);
      this.runQueue.set(kernel, k.run_queue);
      this.processes.set(kernel, k.processes);
      this.heap.set(kernel, k.heap_bytes);
      this.set(this.migrations, { ...kernel, direction: 'in' }, k.migrations_in);
      this.set(this.migrations, { ...kernel, direction: 'out' }, k.migrations_out);
    }
    for (const s of snap.stats) {
      for (const t of s.types) this.both(this.messages, this.bytes, { kernel: s.index, type: t.type }, t);
      for (const p of s.peers) this.both(this.peerMessages, this.peerBytes, { kernel: s.index, peer: p.peer }, p);
    }
    this.processCpu.reset();
    for (const p of snap.processes) if (p.state !== 'zombie') this.processCpu.set({ pid: p.pid, kernel: p.kernel, name: p.name }, p.cpu_ms / 1000);
    this.linksUp.set(snap.links.up.length);
    this.set(this.linksLost, {}, snap.links.lost);
    this.heartbeat.reset();
    for (const l of snap.links.up) this.heartbeat.set({ peer_node: l.node }, l.heartbeatAgeMs / 1000);
  }

  private both(messages: Counter, bytes: Counter, labels: Labels, row: { sent: number; sent_bytes: number; received: number; received_bytes: number }): void {
    this.set(messages, { ...labels, direction: 'sent' }, row.sent);
    this.set(messages, { ...labels, direction: 'received' }, row.received);
    this.set(bytes, { ...labels, direction: 'sent' }, row.sent_bytes);
    this.set(bytes, { ...labels, direction: 'received' }, row.received_bytes);
  }

  /** Bring a counter up to a kernel's running total (counters only go up: a smaller one is a new kernel). */
  private set(counter: Counter, labels: Labels, total: number): void {
    const key = `${(counter as unknown as { name: string }).name}${JSON.stringify(labels)}`;
    const before = this.reported.get(key) ?? 0;
    if (total > before) counter.inc(labels, total - before);
    this.reported.set(key, total);
  }

  private observe(events: EventView[]): void {
    for (const e of events) {
      if (e.kind === 'spawn') this.spawnLatency.observe({ kernel: e.kernel }, e.b / 1e6);
      else if (e.kind === 'migrate') this.migrationLatency.observe({ kernel: e.kernel }, e.b / 1e6);
    }
  }

  private counter(name: string, help: string, labelNames: string[]): Counter {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private gauge(name: string, help: string, labelNames: string[]): Gauge {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }
}
