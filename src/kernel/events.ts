/**
 * A kernel's recent events — spawns, exits, signals, migrations — for the timeline of the
 * dashboard, `popcorn top` and the latency histograms of /metrics. These are rare compared with
 * messages, so recording one is an object in a bounded ring; nobody formats them until asked
 * (kernel_stats, with the sequence number of the last event the asker has seen).
 */

import { tracer } from './trace.js';

export type EventKind = 'spawn' | 'exit' | 'signal' | 'migrate';

export interface KernelEvent {
  /** Per kernel, from 1: the asker passes the last one it has. */
  seq: number;
  /** Wall-clock ms (performance.timeOrigin + now: comparable across the node's threads). */
  at: number;
  kind: EventKind;
  pid: number;
  /**
   * spawn: the parent pid, and µs to create the process; exit: status and signal; signal: the
   * signal; migrate: the kernel it came from, and µs from stop there to runnable here.
   */
  a: number;
  b: number;
}

/** Events kept per kernel; an asker that falls further behind misses the oldest. */
const CAPACITY = 512;

export class EventLog {
  private readonly ring: KernelEvent[] = [];
  private seq = 0;

  record(kind: EventKind, pid: number, a = 0, b = 0): void {
    this.ring.push({ seq: ++this.seq, at: performance.timeOrigin + performance.now(), kind, pid, a, b });
    if (this.ring.length > CAPACITY) this.ring.shift();
    if (tracer !== null) tracer.event(kind, pid, a, b);
  }

  /** The events after `seq`, oldest first. */
  since(seq: number): KernelEvent[] {
    const first = this.ring.findIndex((e) => e.seq > seq);
    return first < 0 ? [] : this.ring.slice(first);
  }
}
