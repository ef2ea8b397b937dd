/**
 * `popcorn trace`, kernel side: a bounded buffer of what this kernel did — each process's time
 * slices, its syscalls that may block, the messages sent and received, spawn/exit/signal/migrate
 * events — that the node collects (kernel_trace) and writes as a Chrome trace (src/node/trace.ts).
 *
 * Off by default and free when off: `tracer` is null, and each hot path (a slice, a blocking
 * import, an event) tests only that; messages are seen as the messenger's observer, which the
 * trace service sets to the same tracer (src/msg knows nothing of kernels). One kernel per worker
 * thread, so this module's state is the kernel's own; the host thread's messenger never has one.
 */

import type { MessageObserver } from '../msg/messenger.js';

/** What a record is: its `kind`. */
export const TraceKind = { Slice: 0, Syscall: 1, Send: 2, Receive: 3, Event: 4 } as const;

export interface TraceRecord {
  kind: number;
  /** Start, µs on the clock all the node's threads share (performance.timeOrigin + now). */
  ts: number;
  dur: number;
  /** The guest process (0: none was on the CPU). */
  pid: number;
  /** Program, syscall, message type or event kind. */
  name: string;
  /** Syscall: errno (-1 blocked); message: bytes; event: its first value. */
  a: number;
  /** Message: the peer endpoint; event: its second value. */
  b: number;
  /** Message: the request id (0: none). */
  c: number;
  /** Message: 1 when it is a response. */
  f: number;
}

/** Records kept per kernel unless told otherwise; the oldest go first. */
export const TRACE_CAPACITY = 100_000;

export class Tracer implements MessageObserver {
  private readonly ring: TraceRecord[] = [];
  private next = 0;
  dropped = 0;
  /** The pid on this kernel's CPU now (0: none). */
  pid = 0;

  constructor(private readonly capacity: number, readonly only: number) {}

  get size(): number {
    return this.ring.length;
  }

  private push(r: TraceRecord): void {
    if (this.only !== 0 && r.pid !== this.only && r.kind !== TraceKind.Receive) return;
    if (this.ring.length < this.capacity) {
      this.ring.push(r);
      return;
    }
    this.ring[this.next] = r;
    this.next = (this.next + 1) % this.capacity;
    this.dropped++;
  }

  /** performance.now() when recording began. */
  readonly started = performance.now();

  /** A slice of `pid` that began at `start` (performance.now()) and ran `ms`: the part since recording began. */
  slice(pid: number, name: string, start: number, ms: number): void {
    const from = Math.max(start, this.started);
    this.push({ kind: TraceKind.Slice, ts: toUs(from), dur: Math.max(0, start + ms - from) * 1000, pid, name, a: 0, b: 0, c: 0, f: 0 });
  }

  /** A syscall of the process on the CPU: `errno`, or -1 when it blocked. */
  syscall(name: string, start: number, end: number, errno: number): void {
    this.push({ kind: TraceKind.Syscall, ts: toUs(start), dur: (end - start) * 1000, pid: this.pid, name, a: errno, b: 0, c: 0, f: 0 });
  }

  sent(name: string, bytes: number, to: number, request: number, response: boolean): void {
    this.message(TraceKind.Send, name, bytes, to, request, response);
  }

  received(name: string, bytes: number, from: number, request: number, response: boolean): void {
    this.message(TraceKind.Receive, name, bytes, from, request, response);
  }

  private message(kind: number, name: string, bytes: number, peer: number, request: number, response: boolean): void {
    this.push({ kind, ts: toUs(performance.now()), dur: 0, pid: this.pid, name, a: bytes, b: peer, c: request, f: response ? 1 : 0 });
  }

  event(name: string, pid: number, a: number, b: number): void {
    this.push({ kind: TraceKind.Event, ts: toUs(performance.now()), dur: 0, pid, name, a, b, c: 0, f: 0 });
  }

  /** Everything buffered, oldest first. */
  records(): TraceRecord[] {
    return [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }
}

function toUs(now: number): number {
  return (performance.timeOrigin + now) * 1000;
}

/** This kernel's tracer: null unless a trace is being taken. */
export let tracer: Tracer | null = null;

/** Start recording (a fresh buffer), or stop (null); the tracer that was recording. */
export function setTracer(next: Tracer | null): Tracer | null {
  const was = tracer;
  tracer = next;
  return was;
}
