/**
 * The migration service (Popcorn's process migration, within a node): moves a live process to
 * another kernel, in whatever state it is — running (it moves at its next preemption point),
 * blocked (it runs its syscall again on arrival, so it goes on waiting there), stopped, with
 * children, open files, pipe ends and caught signals still to handle.
 *
 * The source takes the process off its scheduler, describes its fds for the destination
 * (fd-transfer.ts: pipe ends are counted at their homes first), captures it (image.ts) and sends
 * proc_migrate. From then on it forwards whatever arrives for the process (signals, its
 * children's exits, a new parent) to the destination, which has it first (one link is FIFO).
 * The destination tells the origin once the process has arrived, so later messages go straight
 * there; until then the origin still sends them to the source, which forwards them behind the
 * image. (Told earlier, the origin's own messages could overtake the image on another link and
 * find no process there.) If the destination refuses, the process resumes where it was.
 *
 * The memory does not travel in the image: it is a shared WebAssembly.Memory
 * (src/wasm/shared-memory.ts), handed over to the destination (src/msg/handover.ts), which
 * instantiates the module over it. Nothing is copied, so a move costs the same whatever the
 * process's size. To another node it goes ahead in pieces (memory-transfer.ts).
 */

import type { Kernel } from '../kernel/kernel.js';
import type { Handover } from '../msg/handover.js';
import type { Process } from '../kernel/process.js';
import { capturable, captureProcess, restoreProcess, type ProcessImage } from '../kernel/image.js';
import { Operation } from '../kernel/operation.js';
import { Errno, WasiError, errnoName, errnoOf } from '../kernel/wasi/errno.js';
import { originOf } from '../kernel/pids.js';
import { nodeOf, type EndpointId } from '../msg/address.js';
import { RemoteError } from '../msg/requests.js';
import { discardRecords, exportFds, importFds, preopensToHandOn, type FdCarriers } from './fd-transfer.js';
import { ensureModule } from './programs.js';
import { MemoryTransfer } from './memory-transfer.js';
import type { ProcessDirectory } from './process-directory.js';

const REQUEST_TIMEOUT_MS = 60_000;
/** How many departed processes the source still forwards messages for (oldest forgotten first). */
const FORWARD_LIMIT = 4096;

type MoveDone = (error: WasiError | null) => void;

export class Migration {
  /** Processes taken off the scheduler whose fds are being prepared: messages still reach them. */
  private readonly departing = new Map<number, Process>();
  /** Processes whose image came from another node and waits for its module to be fetched. */
  private readonly arriving = new Set<number>();
  /** Where processes that left this kernel went, to forward what still comes here for them. */
  private readonly movedTo = new Map<number, EndpointId>();
  /** Who waits for each move in progress (an operator's request, the process's own call). */
  private readonly waiting = new Map<number, MoveDone[]>();
  /** Moves in and out, and how long the last arrival took from stop to runnable here (µs). */
  readonly counts = { in: 0, out: 0, last_us: 0 };
  /** Memory to and from other nodes, sent ahead of the image. */
  readonly memory: MemoryTransfer;

  /** `handover`: to the other kernels of the node, for handing over memory. */
  constructor(
    private readonly kernel: Kernel,
    private readonly server: ProcessDirectory,
    private readonly transfer: FdCarriers,
    private readonly handover: Handover,
  ) {
    kernel.onLeave((p) => this.leave(p));
    this.memory = new MemoryTransfer(kernel);
    const m = kernel.messenger;
    m.on('proc_migrate', (msg, from) => {
      const refuse = (error: unknown): void => {
        m.fail(from, error instanceof WasiError ? errnoName(error.errno) : 'ENOEXEC', error instanceof Error ? error.message : String(error));
      };
      // From another node, the module may have to be fetched first, and the origin asked
      // whether it may run here (only then is this deferred).
      this.arriving.add(msg.pid);
      const fromNode = nodeOf(from.src) !== nodeOf(kernel.id);
      const settled = (): void => {
        this.arriving.delete(msg.pid);
        // What came for it meanwhile finds it here now (or, refused, where it stays).
        this.settle(msg.pid, null);
      };
      const drop = (error: unknown): void => {
        discardRecords(this.transfer, msg.fds);
        this.memory.forget(msg.pid);
        refuse(error);
        settled();
      };
      const proceed = (): void => {
        try {
          this.arrive(msg, from.src, msg.handedOver ? this.takeOver(msg, from.src) : undefined, fromNode);
          m.reply(from, 'proc_migrate', { pid: msg.pid });
        } catch (error) {
          this.memory.forget(msg.pid);
          refuse(error);
        }
        settled();
      };
      ensureModule(kernel, msg.hash, from.src, (missing) => {
        if (missing !== null) drop(missing);
        else if (!fromNode) proceed();
        else {
          this.server.admitArrival(msg.pid, msg.moves, (admitted) => {
            if (admitted) proceed();
            else drop(new WasiError(Errno.SRCH, `process ${msg.pid} was reported lost before it arrived`));
          });
        }
      });
    });
    m.on('proc_moved', (msg) => this.server.relocate(msg.pid, msg.location, msg.moves));
    m.on('proc_move', (msg, from) => {
      this.moveAnywhere(msg.pid, msg.kernel, (error) => {
        if (error === null) m.reply(from, 'proc_move', { pid: msg.pid, kernel: msg.kernel });
        else m.fail(from, errnoName(error.errno), error.message);
      });
    });
  }

  /** A process of this kernel, also while it is leaving. */
  find(pid: number): Process | undefined {
    return this.kernel.processes.get(pid) ?? this.departing.get(pid);
  }

  /** Where a process that left this kernel went, if it did. */
  whereIs(pid: number): EndpointId | undefined {
    return this.movedTo.get(pid);
  }

  /**
   * Where to ask next about a process that is not on this kernel, for a request that follows it
   * (a move, a checkpoint); undefined when it no longer exists. Its origin answers from its
   * record, which knows where it runs and that it has ended; any other kernel follows where the
   * process went from here, else asks the origin. The origin never follows its own forwarding
   * entry: that outlives a process that ended where it went, and the origin and that kernel
   * would then pass the request back and forth for ever.
   */
  nextHop(pid: number): EndpointId | undefined {
    if (originOf(pid) !== this.kernel.id) return this.movedTo.get(pid) ?? originOf(pid);
    // The record may still say here when the process has left again: arrivals elsewhere are told
    // the origin by other links, so a later one can be heard before an earlier one.
    const location = this.server.locationOf(pid);
    return location === this.kernel.id ? this.movedTo.get(pid) : location;
  }

  /**
   * If `pid` is leaving this kernel (its fds are being prepared) or arriving here (its module is
   * being fetched), so that no kernel has it to act on, run `again` once it has gone, stayed or
   * arrived, and say true: a request or signal for it is then handled again, and finds it where
   * it is. A live process is never "no such process" while it moves.
   */
  afterTransit(pid: number, again: () => void): boolean {
    if (!this.departing.has(pid) && !this.arriving.has(pid)) return false;
    this.waitFor(pid, () => again());
    return true;
  }

  /** The process's own popcorn_migrate: the operation completes (on the source) only on failure. */
  requestOwn(p: Process, kernelIndex: number): Operation<void> {
    const target = this.target(kernelIndex);
    const op = new Operation<void>();
    p.moveRequest = op;
    this.waitFor(p.pid, (error) => {
      if (error !== null) op.complete(error);
    });
    p.moveTo = target;
    return op;
  }

  /**
   * Move `pid` to kernel index `kernelIndex`, wherever it runs now: at its origin the record says
   * where; at the kernel it runs on, it moves. `done` runs once it runs there (or failed).
   */
  moveAnywhere(pid: number, kernelIndex: number, done: MoveDone): void {
    let target: EndpointId;
    try {
      target = this.target(kernelIndex);
    } catch (error) {
      done(error as WasiError);
      return;
    }
    const p = this.kernel.processes.get(pid);
    if (p !== undefined) {
      this.move(p, target, done);
      return;
    }
    if (this.afterTransit(pid, () => this.moveAnywhere(pid, kernelIndex, done))) return;
    const there = this.nextHop(pid);
    if (there === undefined || there === this.kernel.id) {
      done(new WasiError(Errno.SRCH, `no process ${pid}`));
      return;
    }
    this.kernel.messenger.request(there, 'proc_move', { pid, kernel: kernelIndex }, REQUEST_TIMEOUT_MS, (error) => {
      const errno = error instanceof RemoteError ? errnoOf(error.code) : undefined;
      done(error === null ? null : new WasiError(errno ?? Errno.SRCH, error.message));
    });
  }

  /** Move a process of this kernel to `target` as soon as it can be captured. */
  move(p: Process, target: EndpointId, done: MoveDone): void {
    if (target === this.kernel.id) {
      done(null);
      return;
    }
    if (p.moveTo !== undefined && p.moveTo !== target) {
      // On its way elsewhere already: once there (or if it stays), it is asked to go on.
      this.waitFor(p.pid, () => this.moveAnywhere(p.pid, this.kernel.cluster.indexOf(target), done));
      return;
    }
    this.waitFor(p.pid, done);
    if (p.moveTo !== undefined) return; // already on its way there: it leaves when it can
    p.moveTo = target;
    // A process that cannot be captured yet (in a handler, waiting for another kernel) leaves
    // when it next comes off the CPU.
    if (capturable(p) && this.kernel.scheduler.detach(p)) this.leave(p);
  }

  /**
   * A process of this kernel ended before it could leave (it was not capturable when the move was
   * asked for, and exited at its next step): a move waiting for it fails, as for any process that
   * is gone, instead of waiting for a departure that never comes.
   */
  ended(p: Process): void {
    if (this.waiting.has(p.pid)) this.settle(p.pid, new WasiError(Errno.SRCH, `no process ${p.pid}: it ended before it could move`));
  }

  private waitFor(pid: number, done: MoveDone): void {
    const list = this.waiting.get(pid);
    if (list === undefined) this.waiting.set(pid, [done]);
    else list.push(done);
  }

  private settle(pid: number, error: WasiError | null): void {
    const list = this.waiting.get(pid) ?? [];
    this.waiting.delete(pid);
    for (const done of list) done(error);
  }

  private target(kernelIndex: number): EndpointId {
    const target = this.kernel.cluster[kernelIndex];
    if (!Number.isInteger(kernelIndex) || target === undefined) throw new WasiError(Errno.INVAL, `no kernel ${kernelIndex}: there are ${this.kernel.cluster.length}`);
    return target;
  }

  /**
   * The process is off the CPU and out of the scheduler's queues (or about to be): send it, or
   * return false to keep it here for now (inside a signal handler, waiting for another kernel).
   */
  private leave(p: Process): boolean {
    if (!capturable(p)) return false;
    const stoppedAt = wallClockMs();
    const target = p.moveTo as EndpointId;
    p.state = 'moving';
    this.kernel.processes.delete(p.pid);
    this.departing.set(p.pid, p);
    // Preopens are made again from the image's dirs within a node; to another node they go as
    // the directories they are here, so paths keep resolving here (dir-deputy.ts).
    const others = p.context.fds.fds().map((fd) => ({ fd, entry: p.context.fds.get(fd) })).filter((f) => f.entry.preopenName === undefined);
    const fds = [...preopensToHandOn(p, target, this.kernel.id), ...others];
    exportFds(this.transfer, fds, target, (error, records) => {
      this.departing.delete(p.pid);
      if (error !== null) this.stay(p, new WasiError(Errno.NOTSUP, error.message));
      else if (p.pendingKill !== undefined) this.stay(p, null);
      else this.send(p, target, records, stoppedAt);
    });
    return true;
  }

  private send(p: Process, target: EndpointId, records: ProcessImage['fds'], stoppedAt: number): void {
    // Apart from the image, the memory goes first: handed over within the node, in pieces to
    // another node (not for a module with a start function: its memory cannot be taken over).
    const apart = p.execution.canHandOver;
    const image: ProcessImage = { ...captureProcess(p, !apart), fds: records, stoppedAt, moves: p.moves + 1 };
    if (apart && this.handover.reaches(target)) this.handover.give(target, p.pid, p.execution.handOver());
    else if (apart) this.memory.send(p, target);
    this.forwardTo(p.pid, target);
    this.counts.out++;
    this.kernel.messenger.request(target, 'proc_migrate', image, REQUEST_TIMEOUT_MS, (error) => {
      if (error instanceof RemoteError && error.code === 'ESRCH') {
        // Its origin reported it lost meanwhile (it declared this node lost): it must not run on.
        p.release();
        this.settle(p.pid, new WasiError(Errno.SRCH, error.message));
        return;
      }
      if (error !== null) {
        this.movedTo.delete(p.pid);
        this.counts.out--;
        this.stay(p, new WasiError(Errno.NOEXEC, `migration to ${target} failed: ${error.message}`));
        return;
      }
      p.release();
      this.settle(p.pid, null);
    });
  }

  /**
   * The live memory handed over with `image` by the port from `source` (Execution.handOver): a
   * shared memory, so nothing is copied, whatever its size. What came before it on the port was
   * for moves that failed on the way. From another node: the memory its pieces were written into.
   */
  private takeOver(image: ProcessImage, source: EndpointId): WebAssembly.Memory {
    if (nodeOf(source) !== nodeOf(this.kernel.id)) return this.memory.take(image.pid, source);
    const memory = this.handover.take(source, image.pid);
    if (memory instanceof WebAssembly.Memory) return memory;
    throw new WasiError(Errno.IO, `the memory of pid ${image.pid} did not come with it`);
  }

  /** The move failed (or a SIGKILL came meanwhile): the process carries on, or ends, here. */
  private stay(p: Process, error: WasiError | null): void {
    p.moveTo = undefined;
    p.moveRequest = undefined;
    p.state = 'stopped';
    this.kernel.processes.set(p.pid, p);
    if (p.pendingKill !== undefined) this.kernel.scheduler.kill(p, p.pendingKill);
    else this.kernel.scheduler.admit(p);
    this.settle(p.pid, error ?? new WasiError(Errno.SRCH, `process ${p.pid} was killed before it could move`));
  }

  private forwardTo(pid: number, target: EndpointId): void {
    this.movedTo.delete(pid);
    this.movedTo.set(pid, target);
    if (this.movedTo.size > FORWARD_LIMIT) this.movedTo.delete(this.movedTo.keys().next().value as number);
  }

  /**
   * A process arrives: build it from its image (and its handed-over memory) and schedule it. The
   * origin learns where it runs now, unless it did already by admitting it (from another node).
   */
  private arrive(image: ProcessImage, source: EndpointId, memory: WebAssembly.Memory | undefined, admitted: boolean): void {
    const fds = importFds(this.transfer, image.fds);
    let p: Process;
    try {
      p = this.server.instantiate(image.pid, { ...image, fds }, memory);
      restoreProcess(p, image);
    } catch (error) {
      for (const { entry } of fds) entry.description.close();
      throw error;
    }
    this.movedTo.delete(image.pid);
    p.arrivedAt = performance.now();
    this.server.register(p);
    if (!admitted) this.server.relocate(image.pid, this.kernel.id, image.moves);
    this.counts.in++;
    this.counts.last_us = (wallClockMs() - image.stoppedAt) * 1000;
    this.kernel.events.record('migrate', image.pid, source, this.counts.last_us);
  }
}

/** A clock all threads of the node share, sub-millisecond precise (each worker's performance.now() has its own origin). */
function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}
