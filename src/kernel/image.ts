/**
 * A process as data (the PROCESS_IMAGE schema of protocol.ts): what migration sends to another
 * kernel and a checkpoint writes to a file. The execution's part (memory, stack, globals) comes
 * from Execution.capture; the rest is the process's own state. Fds are described apart, by
 * fd-transfer.ts, because giving them away may need other kernels' answers.
 *
 * A process can be captured only off the CPU, unwound, outside a signal handler, and not waiting
 * for another kernel's answer (a spawn or kill in flight), nor holding one its syscall has not
 * yet run again to take (the image does not carry it: on arrival the syscall would send its
 * request again, and a spawn make a second child): `capturable` says so.
 */

import type { Payload } from '../protocol.js';
import type { Process } from './process.js';
import { Operation } from './operation.js';

export type ProcessImage = Payload<'proc_migrate'>;

export function capturable(p: Process): boolean {
  return p.execution.capturable && (p.operation === undefined || p.operation === p.moveRequest || (p.operation.done && !p.inSyscall));
}

/**
 * Everything but the fds. Without `copyMemory` the image has no memory (`handedOver`): the
 * memory itself goes to a kernel of this node (Execution.handOver).
 */
export function captureProcess(p: Process, copyMemory = true): Omit<ProcessImage, 'fds'> {
  const state = p.execution.capture(copyMemory);
  const c = p.context;
  const migrating = p.moveRequest !== undefined && p.operation === p.moveRequest;
  return {
    pid: p.pid, ppid: p.ppid, name: p.name, args: c.args, env: c.env, dirs: p.dirs, hash: p.hash,
    memory: state.memory ?? new Uint8Array(0), stack: state.stack, started: state.started, handedOver: state.memory === null,
    globals: state.globals.map(({ name, value }) =>
      typeof value === 'bigint' ? { name, wide: true, number: 0, bigint: value } : { name, wide: false, number: value, bigint: 0n }),
    dispositions: p.signals.entries().map(([signal, d]) => ({ signal, kind: d.kind === 'ignore' ? 1 : 2, index: d.kind === 'handler' ? d.index : 0 })),
    pending: p.signals.pendingSignals(),
    children: p.children.entries().map(([pid, exit]) => ({ pid, ended: exit !== null, status: exit?.status ?? 0, signal: exit?.signal ?? 0, trap: exit?.trap ?? '' })),
    cpuMs: p.cpuMs, stopped: p.stopped,
    deadlines: c.deadlines, yielded: c.yielded, migrating, stoppedAt: 0, moves: p.moves,
  };
}

/**
 * Give a freshly created process (same module, same fds) the captured state; one `handedOver`
 * was created with the memory handed over.
 */
export function restoreProcess(p: Process, image: ProcessImage): void {
  p.execution.restore({
    memory: image.handedOver ? null : image.memory,
    stack: image.stack,
    started: image.started,
    globals: image.globals.map((g) => ({ name: g.name, value: g.wide ? g.bigint : g.number })),
  });
  for (const d of image.dispositions) p.signals.set(d.signal, d.kind === 1 ? { kind: 'ignore' } : { kind: 'handler', index: d.index });
  for (const signal of image.pending) p.signals.queue(signal);
  p.execution.signalPending = p.signals.hasPending;
  for (const child of image.children) {
    p.children.add(child.pid);
    if (child.ended) p.children.ended(child.pid, { status: child.status, signal: child.signal, trap: child.trap });
  }
  p.cpuMs = image.cpuMs;
  p.moves = image.moves;
  p.stopped = image.stopped;
  p.context.deadlines = [...image.deadlines];
  p.context.yielded = image.yielded;
  if (image.migrating) {
    // The rewind re-runs popcorn_migrate: it finds its operation done and returns 0.
    const arrived = new Operation<void>();
    arrived.complete(null);
    p.operation = arrived;
  }
}
