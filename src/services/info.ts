/**
 * The information service, kernel side: answers `kernel_info` with this kernel's processes
 * (what `popcorn ps` shows), its load and its messenger counters (what `popcorn kernels` shows).
 * The answer is built from the kernel's own tables at the moment the request is handled, which is
 * between two slices or at a preemption check of the running process, so a process that is on
 * the CPU shows as `running`.
 */

import type { Kernel } from '../kernel/kernel.js';
import type { Payload } from '../protocol.js';

export function installInfoService(kernel: Kernel): void {
  kernel.messenger.on('kernel_info', (_msg, from) => {
    kernel.messenger.reply(from, 'kernel_info', kernelInfo(kernel));
  });
}

export function kernelInfo(kernel: Kernel): Payload<'kernel_info_reply'> {
  const processes = [...kernel.processes.values()].map((p) => ({
    pid: p.pid,
    parent: p.parent,
    state: p.state,
    cpu_ms: p.cpuMs + (p === kernel.scheduler.current ? performance.now() - kernel.scheduler.currentSince : 0),
    memory_bytes: memoryOf(p),
    name: p.name,
    args: [...p.context.args],
  }));
  const running = kernel.scheduler.current === null ? 0 : 1;
  return { kernel: kernel.id, load: kernel.scheduler.runnable + running, processes, messages: { ...kernel.messenger.stats } };
}

/** A process whose instance is gone (or not yet there) has no memory to report. */
function memoryOf(p: { memoryBytes: number }): number {
  try {
    return p.memoryBytes;
  } catch {
    return 0;
  }
}
