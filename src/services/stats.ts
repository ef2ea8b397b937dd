/**
 * The statistics service, kernel side: answers `kernel_stats` with the counters an observer
 * (/metrics, `popcorn top`, the dashboard) wants — CPU time, run queue, messages and bytes per
 * type and per peer, recent events. Everything is read from counters the kernel keeps anyway;
 * the only work done when nobody asks is recording process exits in the event log.
 */

import type { Kernel } from '../kernel/kernel.js';
import type { Payload } from '../protocol.js';
import { TRACE_CAPACITY, Tracer, setTracer } from '../kernel/trace.js';

export function installStatsService(kernel: Kernel): void {
  kernel.onProcessEnd((p, outcome) => {
    const status = outcome.kind === 'exited' ? outcome.status : 134;
    const signal = outcome.kind === 'exited' ? (outcome.signal ?? 0) : 0;
    kernel.events.record('exit', p.pid, status, signal);
  });
  kernel.messenger.on('kernel_stats', (msg, from) => {
    kernel.messenger.reply(from, 'kernel_stats', kernelStats(kernel, msg.since));
  });
  // `popcorn trace`: start afresh or stop; the answer has what the tracer that was on recorded.
  kernel.messenger.on('kernel_trace', (msg, from) => {
    const running = kernel.scheduler.current;
    const next = msg.on ? new Tracer(msg.capacity > 0 ? msg.capacity : TRACE_CAPACITY, msg.pid) : null;
    if (next !== null) next.pid = running?.pid ?? 0;
    const was = setTracer(next);
    kernel.messenger.observer = next;
    // Asked between two checks of a running process: its slice so far.
    if (was !== null && running !== null) was.slice(running.pid, running.name, kernel.scheduler.currentSince, performance.now() - kernel.scheduler.currentSince);
    kernel.messenger.reply(from, 'kernel_trace', { kernel: kernel.id, recording: was !== null, dropped: was?.dropped ?? 0, records: was?.records() ?? [] });
  });
}

function kernelStats(kernel: Kernel, since: number): Payload<'kernel_stats_reply'> {
  const s = kernel.scheduler;
  const traffic = kernel.messenger.traffic;
  return {
    kernel: kernel.id,
    cpu_ms: s.cpuMs + (s.current === null ? 0 : performance.now() - s.currentSince),
    run_queue: s.runnable,
    types: [...traffic.byType()].map(([type, row]) => ({ type: kernel.messenger.messageName(type), ...row })),
    peers: [...traffic.byPeer()].map(([peer, row]) => ({ peer, ...row })),
    events: kernel.events.since(since),
  };
}
