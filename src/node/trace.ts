/**
 * `popcorn trace`, node side: what every kernel recorded (src/kernel/trace.ts), written in the
 * Chrome Trace Event format that Perfetto (ui.perfetto.dev) and chrome://tracing open. Each kernel
 * is a trace process ("kernel N"), each guest pid a thread of it (thread 0: the kernel itself,
 * for messages received outside any process's slice):
 *   - "X" sched: a time slice of a process, named by its program;
 *   - "X" syscall: an import that may block (fd_read, fd_write, poll_oneoff, path_open, …), nested
 *     in its slice, args {errno, blocked}; imports that never block are not recorded;
 *   - "X" msg: a message sent or received (0 µs), args {type, bytes, peer, request}; a request
 *     and its reply are joined by flows ("s" where sent, "f" where received, the same id);
 *   - "i" event: spawn, exit, signal, migrate (args from, to) of a process.
 */

import type { EndpointId } from '../msg/address.js';
import type { KernelTrace } from './node.js';
import { TraceKind, type TraceRecord } from '../kernel/trace.js';

export interface ChromeEvent {
  ph: string;
  name: string;
  cat?: string;
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  id?: number;
  bp?: string;
  s?: string;
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: ChromeEvent[];
  displayTimeUnit: 'ms';
  otherData: { kernels: { kernel: number; records: number; dropped: number }[]; pid: number | null };
}

/** The Chrome trace of `traces`; `kernels` maps a kernel endpoint to its index; `pid` 0: all. */
export function chromeTrace(traces: KernelTrace[], kernels: readonly EndpointId[], pid: number): ChromeTrace {
  const indexOf = (endpoint: number): number | string => {
    const i = kernels.indexOf(endpoint);
    return i < 0 ? `endpoint ${endpoint}` : i;
  };
  // A request's flow: sent by kernel K as request q, answered to K for q.
  const flowKey = (t: KernelTrace, r: TraceRecord): string | undefined => {
    if (r.c === 0 || (r.kind !== TraceKind.Send && r.kind !== TraceKind.Receive)) return undefined;
    const requester = (r.kind === TraceKind.Send) === (r.f === 0) ? t.kernel : r.b;
    return `${r.f === 0 ? 'q' : 'r'}:${requester}:${r.c}`;
  };
  const sends = new Map<string, number>();
  const receives = new Map<string, number>();
  for (const t of traces) {
    for (const r of t.records) {
      const key = flowKey(t, r);
      if (key === undefined) continue;
      const seen = r.kind === TraceKind.Send ? sends : receives;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
  }
  const flowIds = new Map<string, number>();
  const events: ChromeEvent[] = [];
  const threads = new Map<string, { pid: number; tid: number; name: string }>();
  for (const t of traces) {
    const k = t.index;
    events.push({ ph: 'M', name: 'process_name', ts: 0, pid: k, tid: 0, args: { name: `kernel ${k}` } });
    events.push({ ph: 'M', name: 'process_sort_index', ts: 0, pid: k, tid: 0, args: { sort_index: k } });
    threads.set(`${k}:0`, { pid: k, tid: 0, name: 'kernel' });
    for (const r of t.records) {
      const tid = r.pid;
      switch (r.kind) {
        case TraceKind.Slice:
          threads.set(`${k}:${tid}`, { pid: k, tid, name: `${r.name} (pid ${tid})` });
          events.push({ ph: 'X', cat: 'sched', name: r.name, ts: r.ts, dur: r.dur, pid: k, tid });
          break;
        case TraceKind.Syscall:
          events.push({ ph: 'X', cat: 'syscall', name: r.name, ts: r.ts, dur: r.dur, pid: k, tid, args: { errno: r.a < 0 ? null : r.a, blocked: r.a < 0 } });
          break;
        case TraceKind.Send:
        case TraceKind.Receive: {
          const key = flowKey(t, r);
          const paired = key !== undefined && sends.has(key) && receives.has(key);
          // With --pid, a message received is kept when it answers or asks something of that process.
          if (pid !== 0 && r.pid !== pid && !paired) break;
          const send = r.kind === TraceKind.Send;
          events.push({
            ph: 'X', cat: 'msg', name: `${send ? 'send' : 'recv'} ${r.name}`, ts: r.ts, dur: 0, pid: k, tid,
            args: { type: r.name, bytes: r.a, [send ? 'to' : 'from']: indexOf(r.b), request: r.c, reply: r.f === 1 },
          });
          if (paired) {
            let id = flowIds.get(key);
            if (id === undefined) flowIds.set(key, (id = flowIds.size + 1));
            events.push({ ph: send ? 's' : 'f', cat: 'msg', name: r.f === 1 ? 'reply' : 'request', id, ts: r.ts, pid: k, tid, ...(send ? {} : { bp: 'e' }) });
          }
          break;
        }
        case TraceKind.Event:
          events.push({
            ph: 'i', s: 't', cat: 'event', name: r.name, ts: r.ts, pid: k, tid,
            args: r.name === 'migrate' ? { pid: tid, from: indexOf(r.a), to: k, us: r.b } : { pid: tid, a: r.a, b: r.b },
          });
          break;
      }
    }
  }
  for (const th of threads.values()) events.push({ ph: 'M', name: 'thread_name', ts: 0, pid: th.pid, tid: th.tid, args: { name: th.name } });
  events.sort((a, b) => a.ts - b.ts);
  return {
    traceEvents: events,
    displayTimeUnit: 'ms',
    otherData: { kernels: traces.map((t) => ({ kernel: t.index, records: t.records.length, dropped: t.dropped })), pid: pid === 0 ? null : pid },
  };
}
