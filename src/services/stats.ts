/**
 * The statistics service, kernel side: answers `kernel_stats` with the counters an observer
 * (/metrics, `popcorn top`, the dashboard) wants — CPU time, run queue, messages and bytes per
 * type and per peer, recent events. Everything is read from counters the kernel keeps anyway;
 * the only work done when nobody asks is recording process exits in the event log.
 */

import type { Kernel } from '../kernel/kernel.js';
import type { Payload } from '../protocol.js';
import { messageName } from '../msg/messenger.js';

export function installStatsService(kernel: Kernel): void {
  kernel.onProcessEnd((p, outcome) => {
    const status = outcome.kind === 'exited' ? outcome.status : 134;
    const signal = outcome.kind === 'exited' ? (outcome.signal ?? 0) : 0;
    kernel.events.record('exit', p.pid, status, signal);
  });
  kernel.messenger.on('kernel_stats', (msg, from) => {
    kernel.messenger.reply(from, 'kernel_stats', kernelStats(kernel, msg.since));
  });
}

function kernelStats(kernel: Kernel, since: number): Payload<'kernel_stats_reply'> {
  const s = kernel.scheduler;
  const traffic = kernel.messenger.traffic;
  return {
    kernel: kernel.id,
    cpu_ms: s.cpuMs + (s.current === null ? 0 : performance.now() - s.currentSince),
    run_queue: s.runnable,
    types: [...traffic.byType()].map(([type, row]) => ({ type: messageName(type), ...row })),
    peers: [...traffic.byPeer()].map(([peer, row]) => ({ peer, ...row })),
    events: kernel.events.since(since),
  };
}
