/**
 * The checkpoint service, kernel side: capture a process into an image a file can hold without
 * moving it, and start a process again from such an image. The capture is migration's
 * (image.ts); what differs is when it is taken and how fds are described.
 *
 * When: only off the CPU and capturable (image.ts). A process that is not — running, preempted
 * inside a signal handler, waiting for another kernel's answer — gets a safe-point task
 * (Scheduler.atSafePoint): a running one gives up the CPU at its next preemption check, and the
 * task captures it the first time it is off the CPU and capturable, before anything else happens
 * to it there (a move it was asked to make comes after). A process that could stay uncapturable
 * for ever (blocked or stopped inside a handler, or waiting for another kernel) is refused at
 * once with EAGAIN, one that stays uncapturable for CAPTURE_WAIT_MS is refused then. With
 * `stop`, the process is stopped (SIGSTOP) right after its capture, so the image runs on.
 *
 * Fds: a file outlives the kernels and the node, so each fd is described by what names it on the
 * host: a host file by path (readlink of /proc/self/fd/N), offset and access mode; a directory
 * by path too (that of the directory its host fd holds, found the same way): a restore opens it
 * by that path again, which names the same directory unless the host moved things meanwhile —
 * the checkpoint file is trusted like a program the user runs; a host stream by the stdio fd (0–2) whose stream it is — a restore gives it the
 * restoring command's stdio. Preopens are made again from the image's dirs. Pipe ends and
 * anything else cannot be in a file: the checkpoint fails and the process runs on untouched. So
 * does a process with children: they are not in the image, and a restored wait() would wait for
 * ever.
 *
 * Time: deadlines (a sleep, a poll's timeout) travel as ns left at the capture, so a restore on a
 * later boot (another monotonic clock) sleeps what was left.
 *
 * Routing is proc_move's: the origin passes the request to where the process runs (or went), and
 * the image comes back the same way.
 */

import type { Kernel } from '../kernel/kernel.js';
import type { Process } from '../kernel/process.js';
import { capturable, captureProcess, restoreProcess, type ProcessImage } from '../kernel/image.js';
import { monotonicNs } from '../kernel/clock.js';
import { GLOBAL_EXPORT_PREFIX } from '../wasm/abi.js';
import { Errno, WasiError, errnoName, errnoOf } from '../kernel/wasi/errno.js';
import { SIGSTOP } from '../kernel/signals.js';
import { RemoteError, RequestTimeoutError } from '../msg/requests.js';
import type { EndpointId } from '../msg/address.js';
import { importFds, type FdCarriers, type FdRecord } from './fd-transfer.js';
import type { Migration } from './migration.js';
import type { ProcessDirectory } from './process-directory.js';
import type { SignalService } from './signals.js';

const REQUEST_TIMEOUT_MS = 60_000;
/** How long a process may stay uncapturable (inside a signal handler) once asked for. */
const CAPTURE_WAIT_MS = 10_000;

type Done = (error: WasiError | null, image?: ProcessImage) => void;

export function installCheckpointService(
  kernel: Kernel, server: ProcessDirectory, migration: Migration, transfer: FdCarriers, signals: Pick<SignalService, 'deliver'>,
): void {
  const service = new CheckpointService(kernel, server, migration, transfer, signals);
  const m = kernel.messenger;
  m.on('proc_checkpoint', (msg, from) => {
    service.checkpoint(msg.pid, msg.stop, (error, image) => {
      if (error === null && image !== undefined) m.reply(from, 'proc_checkpoint', image);
      else m.fail(from, errnoName(error?.errno ?? Errno.IO), error?.context ?? error?.message ?? 'no image');
    });
  });
  m.on('proc_restore', (msg, from) => {
    try {
      const pid = service.restore(msg.image, msg.notify || from.src);
      m.reply(from, 'proc_restore', { pid, kernel: kernel.id });
    } catch (error) {
      const wasi = error instanceof WasiError ? error : undefined;
      m.fail(from, wasi === undefined ? 'ENOEXEC' : errnoName(wasi.errno), wasi?.context ?? messageOf(error));
    }
  });
}

class CheckpointService {
  constructor(
    private readonly kernel: Kernel,
    private readonly server: ProcessDirectory,
    private readonly migration: Migration,
    private readonly transfer: FdCarriers,
    private readonly signals: Pick<SignalService, 'deliver'>,
  ) {}

  /** Checkpoint `pid` wherever it runs: here, or ask where it is (this kernel may be its origin). */
  checkpoint(pid: number, stop: boolean, done: Done): void {
    const p = this.kernel.processes.get(pid);
    if (p !== undefined) {
      this.checkpointHere(p, stop, done);
      return;
    }
    const migration = this.migration;
    if (migration.afterTransit(pid, () => this.checkpoint(pid, stop, done))) return;
    const there = migration.nextHop(pid);
    if (there === undefined || there === this.kernel.id) {
      done(new WasiError(Errno.SRCH, `no process ${pid}`));
      return;
    }
    this.kernel.messenger.request(there, 'proc_checkpoint', { pid, stop }, REQUEST_TIMEOUT_MS, (error, image) => {
      done(error === null ? null : relayed(error, pid), image);
    });
  }

  private checkpointHere(p: Process, stop: boolean, done: Done): void {
    if (p.pendingKill !== undefined) {
      done(new WasiError(Errno.SRCH, `process ${p.pid} is being killed`));
      return;
    }
    // Blocked or stopped, it may not come off its wait (or be continued) for a long time.
    if ((p.state === 'blocked' || p.state === 'stopped') && !capturable(p)) {
      const why = p.execution.capturable ? 'waiting for another kernel' : 'inside a signal handler';
      done(new WasiError(Errno.AGAIN, `process ${p.pid} is ${p.state} ${why}: try again`));
      return;
    }
    const deadline = performance.now() + CAPTURE_WAIT_MS;
    this.kernel.scheduler.atSafePoint(p, {
      offer: (q) => {
        if (capturable(q)) {
          this.take(q, stop, done);
          return true;
        }
        if (performance.now() < deadline) return false;
        done(new WasiError(Errno.TIMEDOUT, `process ${q.pid} was not at a point where it can be captured for ${CAPTURE_WAIT_MS / 1000} s (inside a signal handler)`));
        return true;
      },
      cancel: (q) => {
        if (q.state === 'exited') done(new WasiError(Errno.SRCH, `process ${q.pid} ended before it could be checkpointed`));
        else done(new WasiError(Errno.AGAIN, `process ${q.pid} moved to another kernel: try again`));
      },
    });
  }

  /** The process is at a safe point: capture it, then stop it if asked. */
  private take(p: Process, stop: boolean, done: Done): void {
    let image: ProcessImage;
    try {
      image = this.capture(p);
    } catch (error) {
      done(error instanceof WasiError ? error : new WasiError(Errno.IO, messageOf(error)));
      return;
    }
    if (stop) this.signals.deliver(p, SIGSTOP);
    done(null, image);
  }

  private capture(p: Process): ProcessImage {
    const children = p.children.entries().map(([pid]) => pid);
    if (children.length > 0) {
      throw new WasiError(Errno.NOTSUP, `process ${p.pid} has children (${children.join(', ')}): a checkpoint holds a single process`);
    }
    const fds = this.describeFds(p);
    const image = captureProcess(p);
    const now = monotonicNs();
    return { ...image, fds, deadlines: image.deadlines.map((d) => d - now), stoppedAt: performance.timeOrigin + performance.now() };
  }

  /** The fds as a file can hold them (see the top of this file): each carrier's capture; throws for one it cannot. */
  private describeFds(p: Process): FdRecord[] {
    const table = p.context.fds;
    const records: FdRecord[] = [];
    for (const fd of table.fds()) {
      const entry = table.get(fd);
      if (entry.preopenName === undefined) records.push(this.transfer.capture(fd, entry, table));
    }
    return records;
  }

  /**
   * Start a process from a checkpoint image on this kernel, its origin; returns the new PID. The
   * image's fds are ready to import (the node opened the files); every one is consumed.
   */
  restore(image: ProcessImage, notify: EndpointId): number {
    const fds = importFds(this.transfer, image.fds);
    try {
      // The file is as trusted as a program the user runs, but a damaged one must not reach
      // further than the state a capture makes.
      if (image.children.length > 0) throw new WasiError(Errno.INVAL, 'the image has children: it is corrupt');
      if (image.handedOver) throw new WasiError(Errno.INVAL, 'the image has no memory: it is corrupt');
      const stray = image.globals.find((g) => !g.name.startsWith(GLOBAL_EXPORT_PREFIX));
      if (stray !== undefined) throw new WasiError(Errno.INVAL, `the image sets ${stray.name}, which is not a captured global: it is corrupt`);
      const now = monotonicNs();
      const state: ProcessImage = { ...image, ppid: 0, children: [], stopped: false, deadlines: image.deadlines.map((left) => now + left) };
      const spec = { ppid: 0, notify, hash: image.hash, name: image.name, args: image.args, env: image.env, dirs: image.dirs, fds };
      return this.server.create(spec, (p) => restoreProcess(p, state));
    } catch (error) {
      for (const { entry } of fds) entry.description.close();
      throw error;
    }
  }
}

/** A failure of the kernel the request was passed to, as this kernel's own. */
function relayed(error: Error, pid: number): WasiError {
  if (error instanceof RemoteError) return new WasiError(errnoOf(error.code) ?? Errno.IO, error.detail);
  if (error instanceof RequestTimeoutError) return new WasiError(Errno.TIMEDOUT, `process ${pid}: ${error.message}`);
  return new WasiError(Errno.SRCH, `no process ${pid} (${error.message})`);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
