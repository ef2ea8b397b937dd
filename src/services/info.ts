/**
 * The information service, kernel side: answers `kernel_info` with this kernel's processes
 * (what `popcorn ps` shows, zombies included: the origin kernel keeps them), its load, table
 * sizes and its messenger counters (what `popcorn kernels` shows).
 * The answer is built from the kernel's own tables at the moment the request is handled, which is
 * between two slices or at a preemption check of the running process, so a process that is on
 * the CPU shows as `running`.
 */

import { getHeapStatistics } from 'node:v8';
import type { Kernel } from '../kernel/kernel.js';
import type { Payload } from '../protocol.js';

type KernelInfo = Payload<'kernel_info_reply'>;

/** What the other services keep that the answer shows (index.ts joins them). */
export interface InfoSources {
  /** Zombies whose identity this kernel keeps (the process service). */
  zombies(): { pid: number; ppid: number; name: string; args: string[] }[];
  /** The sizes of the services' tables, to show they return to their baseline. */
  tables(): Omit<KernelInfo['tables'], 'processes'>;
  /** Moves in and out (the migration service). */
  migrations(): KernelInfo['migrations'];
}

export function installInfoService(kernel: Kernel, sources: InfoSources): void {
  kernel.messenger.on('kernel_info', (_msg, from) => {
    kernel.messenger.reply(from, 'kernel_info', kernelInfo(kernel, sources));
  });
}

function kernelInfo(kernel: Kernel, sources: InfoSources): KernelInfo {
  const processes = [...kernel.processes.values()].map((p) => ({
    pid: p.pid,
    ppid: p.ppid,
    // A process stopped while blocked stays parked until its wait ends, but it is stopped.
    state: p.stopped && p.state === 'blocked' ? 'stopped' : (p.state as string),
    cpu_ms: p.cpuMs + (p === kernel.scheduler.current ? performance.now() - kernel.scheduler.currentSince : 0),
    memory_bytes: memoryOf(p),
    name: p.name,
    args: [...p.context.args],
  }));
  for (const z of sources.zombies()) processes.push({ ...z, state: 'zombie', cpu_ms: 0, memory_bytes: 0 });
  const running = kernel.scheduler.current === null ? 0 : 1;
  return {
    kernel: kernel.id,
    load: kernel.scheduler.runnable + running,
    processes,
    tables: { processes: kernel.processes.size, ...sources.tables() },
    migrations: sources.migrations(),
    heap_bytes: getHeapStatistics().used_heap_size,
    messages: { ...kernel.messenger.stats },
  };
}

/** A process whose instance is gone (or not yet there) has no memory to report. */
function memoryOf(p: { memoryBytes: number }): number {
  try {
    return p.memoryBytes;
  } catch {
    return 0;
  }
}
