/**
 * The signal service: kill(2) across kernels and nodes, and what a signal does when it reaches
 * its process. A signal goes to the process's origin (proc_signal), which knows where the process
 * runs and passes it on (proc_kill); a kernel it reaches delivers it, or follows the process if
 * it is on its way elsewhere. The process service (process.ts) owns the origin records and
 * migration the processes in transit; this service sees them through SignalRoutes.
 */

import type { Kernel } from '../kernel/kernel.js';
import type { Process } from '../kernel/process.js';
import { originOf } from '../kernel/pids.js';
import { Operation } from '../kernel/operation.js';
import { ProcessExit } from '../kernel/wasi/blocking.js';
import { Errno, WasiError } from '../kernel/wasi/errno.js';
import { SIGCONT, SIGKILL, defaultAction } from '../kernel/signals.js';
import type { EndpointId } from '../msg/address.js';
import type { Whereabouts } from './process-directory.js';
import { asWasiError } from './remote-error.js';

const REQUEST_TIMEOUT_MS = 30_000;

/** Where a signal finds its process: this kernel's processes, those in transit, the origin's records. */
export interface SignalRoutes extends Whereabouts {
  /** If `pid` is on its way here, run `again` once it arrived (or failed to), and say true. */
  afterTransit(pid: number, again: () => void): boolean;
  /** At the origin: the record of `pid` (undefined: no such process). */
  origin(pid: number): { zombie: boolean; location: EndpointId } | undefined;
}

export class SignalService {
  constructor(private readonly kernel: Kernel, private readonly routes: SignalRoutes) {
    const m = kernel.messenger;
    m.on('proc_kill', (msg) => this.signalHere(msg.pid, msg.signal));
    m.on('proc_signal', (msg, from) => {
      if (this.signalAtOrigin(msg.pid, msg.signal)) m.reply(from, 'proc_signal', { pid: msg.pid });
      else m.fail(from, 'ESRCH', `no process ${msg.pid}`);
    });
  }

  /** kill(pid, signal) from `sender`: done once the origin took it (ESRCH if there is no such process). */
  kill(sender: Process, pid: number, signal: number): Operation<void> {
    const op = new Operation<void>();
    const local = this.routes.find(pid);
    if (local !== undefined) {
      this.deliver(local, signal);
      if (local === sender) dieNowIfKilled(sender);
      op.complete(null);
    } else if (originOf(pid) === this.kernel.id) {
      op.complete(this.signalAtOrigin(pid, signal) ? null : new WasiError(Errno.SRCH, `kill(${pid})`));
    } else {
      this.kernel.messenger.request(originOf(pid), 'proc_signal', { pid, signal }, REQUEST_TIMEOUT_MS, (error) => {
        op.complete(error === null ? null : asWasiError(error, { fallback: Errno.SRCH }));
      });
    }
    return op;
  }

  /** raise(signal) (proc_raise): a fatal one ends the process inside the call. */
  raise(p: Process, signal: number): void {
    this.deliver(p, signal);
    dieNowIfKilled(p);
  }

  /** A signal for a process the origin sent here: it runs here, is on its way here, or went on. */
  signalHere(pid: number, signal: number): void {
    const p = this.routes.find(pid);
    const moved = this.routes.whereIs(pid);
    if (p !== undefined) this.deliver(p, signal);
    else if (this.routes.afterTransit(pid, () => this.signalHere(pid, signal))) return;
    else if (moved !== undefined) this.kernel.messenger.send(moved, 'proc_kill', { pid, signal });
  }

  /** Signal a process this kernel is the origin of. False when there is no such process. */
  private signalAtOrigin(pid: number, signal: number): boolean {
    const record = this.routes.origin(pid);
    if (record === undefined) return false;
    if (record.zombie) return true;
    const local = this.routes.find(pid);
    if (local !== undefined) this.deliver(local, signal);
    else this.kernel.messenger.send(record.location, 'proc_kill', { pid, signal });
    return true;
  }

  /**
   * A signal reaches a process of this kernel, whatever its state. SIGKILL and SIGSTOP act at
   * once; SIGCONT resumes before anything else; a caught signal waits for its handler at the
   * next safe point (a blocked process is woken for it, and goes back to waiting after).
   */
  deliver(p: Process, signal: number): void {
    if (signal === 0 || p.state === 'exited') return;
    this.kernel.events.record('signal', p.pid, signal);
    const s = this.kernel.scheduler;
    if (signal === SIGKILL) {
      s.kill(p, signal);
      return;
    }
    if (signal === SIGCONT) s.continue(p);
    const disposition = p.signals.disposition(signal);
    if (disposition.kind === 'ignore') return;
    if (disposition.kind === 'handler') {
      p.signals.queue(signal);
      p.execution.signalPending = true;
      s.wake(p);
      return;
    }
    const action = defaultAction(signal);
    if (action === 'terminate') s.kill(p, signal);
    else if (action === 'stop') s.stop(p);
  }
}

/** A process that signalled itself fatally ends inside that very call, as in POSIX. */
function dieNowIfKilled(p: Process): void {
  if (p.pendingKill !== undefined) throw new ProcessExit(128 + p.pendingKill, p.pendingKill);
}
