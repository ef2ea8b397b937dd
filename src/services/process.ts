/**
 * The process service, kernel side (Popcorn's process_server): creates processes, keeps the
 * identity of those it created (it is their origin kernel), and carries exits to parents. The
 * services that act on processes (spawn.ts, signals.ts, migration.ts, checkpoint.ts, the
 * balancer) see it through narrow views (process-directory.ts), and it sees them through theirs;
 * the composition root (index.ts) builds them all and joins them.
 *
 * The origin of a PID is known from the PID itself (pids.ts), so anyone can reach it. The origin
 * keeps a record per process it created — parent, where the process runs, and, once it has ended
 * until its parent reaps it, that it is a zombie — and the PID is not handed out again while the
 * record exists. A message about a process goes to its origin, which acts on it or passes it on
 * to where the process runs.
 *
 * An exit travels: where it ran → its origin (proc_ended) → the parent's origin → where the parent
 * runs (proc_exited), which files it in the parent's children table until wait() reaps it
 * (proc_reaped back to the child's origin frees the PID). A node-started process (ppid 0) reports
 * to the node's `notify` endpoint instead; an orphan (ppid 1, init) is reaped at once. A parent
 * that exits first reaps its zombie children and hands its live ones to init (proc_reparent).
 */

import type { Kernel } from '../kernel/kernel.js';
import { Process, type ExitRecord } from '../kernel/process.js';
import type { SliceOutcome } from '../kernel/execution.js';
import { HostOutput } from '../kernel/host-stream.js';
import { formatTrap, TRAP_EXIT_STATUS } from '../kernel/trap.js';
import { compileCached } from '../wasm/compiled.js';
import type { Payload } from '../protocol.js';
import { PidAllocator, originOf } from '../kernel/pids.js';
import { createPopcornImports, type ProcessSystem } from '../kernel/popcorn-abi.js';
import { Errno, WasiError } from '../kernel/wasi/errno.js';
import { RemoteError } from '../msg/requests.js';
import { nodeOf, type EndpointId } from '../msg/address.js';
import { LOST_STATUS, SIGCHLD, SIGKILL } from '../kernel/signals.js';
import type { CreateSpec, ProcessDirectory, Whereabouts } from './process-directory.js';
import type { SignalService } from './signals.js';

/** What the origin kernel keeps about each process it created. */
interface OriginRecord {
  ppid: number;
  /** Who hears of the end of a node-started process (ppid 0). */
  notify: EndpointId;
  /** The kernel the process runs on, as of its move number `moves`. */
  location: EndpointId;
  moves: number;
  /** Ended, not yet reaped by its parent: the PID stays taken. */
  zombie: boolean;
  /** For ps, which shows zombies too. */
  name: string;
  args: string[];
}

/** The parent of an orphan: as in Unix, "init" adopts it and reaps it when it ends. */
export const INIT_PID = 1;
const REQUEST_TIMEOUT_MS = 30_000;

/** What the process service sees of the services it works with (built by index.ts). */
export interface ProcessServiceViews {
  /** The guest's popcorn_* calls (popcorn-abi.ts), each answered by the service that owns it. */
  system: ProcessSystem;
  /** This kernel's processes, also those leaving, and where those that left went (migration.ts). */
  whereabouts: Whereabouts;
  /** Signals to processes: a child's SIGCHLD, a kill of one that must not run on. */
  signals: Pick<SignalService, 'deliver' | 'raise' | 'signalHere'>;
}

export class ProcessServer implements ProcessDirectory {
  private readonly origins = new Map<number, OriginRecord>();
  private readonly pids: PidAllocator;

  constructor(private readonly kernel: Kernel, private readonly views: ProcessServiceViews) {
    this.pids = new PidAllocator(kernel.id);
    this.listen();
    kernel.onProcessEnd((p, outcome) => this.ended(p, outcome));
  }

  /** How many processes this kernel keeps the identity of, zombies included (kernel_info). */
  get size(): number {
    return this.origins.size;
  }

  /** Zombies whose identity this kernel keeps, as ps shows them. */
  zombies(): { pid: number; ppid: number; name: string; args: string[] }[] {
    const out = [];
    for (const [pid, r] of this.origins) if (r.zombie) out.push({ pid, ppid: r.ppid, name: r.name, args: r.args });
    return out;
  }

  /** At the origin: the record of `pid`, as a signal sees it (undefined: no such process). */
  origin(pid: number): { zombie: boolean; location: EndpointId } | undefined {
    return this.origins.get(pid);
  }

  private listen(): void {
    const m = this.kernel.messenger;
    m.on('proc_ended', (msg) => this.endedAtOrigin(msg.pid, msg));
    m.on('proc_exited', (msg) => this.childExited(msg));
    m.on('proc_reaped', (msg) => this.reapedAtOrigin(msg.pid));
    m.on('proc_reparent', (msg) => this.reparent(msg.pid, msg.ppid));
    m.on('proc_arrival', (msg, from) => {
      if (this.claim(msg.pid, msg.location, msg.moves)) m.reply(from, 'proc_arrival', { pid: msg.pid });
      else m.fail(from, 'ESRCH', `process ${msg.pid} was reported ended before it arrived`);
    });
  }

  // ---- creation ----

  /**
   * Make a process on this kernel, which becomes its origin. The fds are retained, not taken.
   * `prepare` gives the new process a state before it is scheduled (a restored checkpoint's).
   */
  create(spec: CreateSpec, prepare?: (p: Process) => void): number {
    // RLIMIT_NPROC: this kernel's share of the node's limit, zombies included (limits.ts).
    const began = performance.now();
    const { maxProcs } = this.kernel.limits;
    if (this.origins.size >= maxProcs) throw new WasiError(Errno.AGAIN, `${this.kernel.name} holds ${maxProcs} processes, its share of the node's limit`);
    const pid = this.pids.next((pid) => this.origins.has(pid));
    const p = this.instantiate(pid, spec);
    prepare?.(p);
    this.origins.set(pid, { ppid: spec.ppid, notify: spec.notify, location: this.kernel.id, moves: 0, zombie: false, name: spec.name, args: spec.args });
    this.register(p);
    this.kernel.events.record('spawn', pid, spec.ppid, (performance.now() - began) * 1000);
    return pid;
  }

  /**
   * A Process for `pid` on this kernel, not yet scheduled: a new one, or one arriving (with its
   * live `memory` when a kernel of this node handed it over).
   */
  instantiate(pid: number, spec: Omit<CreateSpec, 'notify'>, memory?: WebAssembly.Memory): Process {
    const module = compileCached(spec.hash);
    const k = this.kernel;
    return new Process(
      { pid, hash: spec.hash, ppid: spec.ppid, name: spec.name, args: spec.args, env: spec.env, dirs: spec.dirs, fds: spec.fds, memory, limits: k.limits,
        raise: (p, signal) => this.views.signals.raise(p, signal), popcornImports: (p) => createPopcornImports(p, this.views.system) },
      module,
      () => {
        k.interrupts();
        return k.scheduler.shouldPreempt();
      },
      (text) => k.log(text),
    );
  }

  /** Schedule a process on this kernel. */
  register(p: Process): void {
    this.kernel.processes.set(p.pid, p);
    this.kernel.scheduler.admit(p);
  }

  /**
   * The origin learns that a process arrived on `location` (a kernel of this node as the one it
   * left) by its move number `moves`. News of an earlier move that comes late (another kernel
   * told it on another link) changes nothing.
   */
  relocate(pid: number, location: EndpointId, moves: number): void {
    const origin = originOf(pid);
    if (origin !== this.kernel.id) {
      this.kernel.messenger.send(origin, 'proc_moved', { pid, location, moves });
      return;
    }
    if (this.claim(pid, location, moves)) return;
    // Its end was told first (its node was declared lost while it moved within it): it must not
    // run on unseen, its parent heard 137.
    if (location === this.kernel.id) this.views.signals.signalHere(pid, SIGKILL);
    else this.kernel.messenger.send(location, 'proc_kill', { pid, signal: SIGKILL });
  }

  /**
   * May a process that came from another node run here, after its move number `moves`? Its
   * origin says before it runs or is listed anywhere, and records it here if so. No when the
   * origin has already reported it ended: lost with its source node, whose operating system still
   * delivered the last bytes of the move. Its parent heard 137, so it must never be seen running.
   * An origin that cannot be asked (its node is gone too) cannot refuse: it runs on, as any
   * process whose origin was lost does.
   */
  admitArrival(pid: number, moves: number, answer: (admitted: boolean) => void): void {
    const origin = originOf(pid);
    if (origin === this.kernel.id) {
      answer(this.claim(pid, origin, moves));
      return;
    }
    const arrival = { pid, location: this.kernel.id, moves };
    this.kernel.messenger.request(origin, 'proc_arrival', arrival, REQUEST_TIMEOUT_MS, (error) => {
      answer(!(error instanceof RemoteError && error.code === 'ESRCH'));
    });
  }

  /** At the origin: record that `pid` runs on `location` after move `moves`. False when it has ended. */
  private claim(pid: number, location: EndpointId, moves: number): boolean {
    const record = this.origins.get(pid);
    if (record === undefined || record.zombie) return false;
    if (moves >= record.moves) {
      record.location = location;
      record.moves = moves;
    }
    return true;
  }

  /** Where a process this kernel is the origin of runs (undefined: no such live process). */
  locationOf(pid: number): EndpointId | undefined {
    const record = this.origins.get(pid);
    return record === undefined || record.zombie ? undefined : record.location;
  }

  /** A child exists: file it with its parent, or give it to init if the parent ended meanwhile. */
  adopted(parent: Process, pid: number): void {
    if (parent.state === 'exited') this.reparent(pid, INIT_PID);
    else parent.children.add(pid);
  }

  // ---- exits, zombies, reaping ----

  /** A process of this kernel ended: close its fds, settle its children, tell its origin. */
  private ended(p: Process, outcome: SliceOutcome): void {
    const outputs = hostOutputs(p);
    p.release();
    for (const [child, exit] of p.children.drain()) {
      if (exit === null) this.reparent(child, INIT_PID);
      else this.reaped(child);
    }
    const exit = exitRecord(p, outcome);
    // Its exit is told once its output is on the terminal: its output and its exit take
    // different paths (it writes to its host, its exit goes to its origin, then its parent or
    // host), and a parent that prints after wait() must not print before its child.
    whenAllWritten(outputs, () => {
      const origin = originOf(p.pid);
      if (origin === this.kernel.id) this.endedAtOrigin(p.pid, exit);
      else this.kernel.messenger.send(origin, 'proc_ended', { pid: p.pid, ...exit });
    });
  }

  private endedAtOrigin(pid: number, exit: ExitRecord): void {
    const record = this.origins.get(pid);
    if (record === undefined || record.zombie) return;
    if (record.ppid === 0) {
      this.origins.delete(pid);
      this.kernel.messenger.send(record.notify, 'proc_exited', { pid, ppid: 0, ...exit });
    } else if (record.ppid === INIT_PID) {
      this.origins.delete(pid);
    } else {
      record.zombie = true;
      const msg = { pid, ppid: record.ppid, ...exit };
      const parentOrigin = originOf(record.ppid);
      if (parentOrigin === this.kernel.id) this.childExited(msg);
      else this.kernel.messenger.send(parentOrigin, 'proc_exited', msg);
    }
  }

  /** At the parent's origin, or where the parent runs: file the exit with the parent. */
  private childExited(msg: Payload<'proc_exited'>): void {
    const parent = this.views.whereabouts.find(msg.ppid);
    if (parent !== undefined) {
      if (parent.children.ended(msg.pid, msg)) this.views.signals.deliver(parent, SIGCHLD);
      else this.reaped(msg.pid);
      return;
    }
    const moved = this.views.whereabouts.whereIs(msg.ppid);
    if (moved !== undefined) {
      this.kernel.messenger.send(moved, 'proc_exited', msg);
      return;
    }
    const record = this.origins.get(msg.ppid);
    if (record !== undefined && !record.zombie && record.location !== this.kernel.id) {
      this.kernel.messenger.send(record.location, 'proc_exited', msg);
      return;
    }
    // The parent is gone: nobody will wait, the PID is free.
    this.reaped(msg.pid);
  }

  reaped(pid: number): void {
    const origin = originOf(pid);
    if (origin === this.kernel.id) this.reapedAtOrigin(pid);
    else this.kernel.messenger.send(origin, 'proc_reaped', { pid });
  }

  private reapedAtOrigin(pid: number): void {
    if (this.origins.get(pid)?.zombie === true) this.origins.delete(pid);
  }

  /** A new parent (init, when the old one ended): at the origin, then where the process runs. */
  private reparent(pid: number, ppid: number): void {
    const origin = originOf(pid);
    if (origin !== this.kernel.id) {
      // Here on its way from the origin to where the process runs (this kernel, or where it went).
      const here = this.views.whereabouts.find(pid);
      const moved = this.views.whereabouts.whereIs(pid);
      if (here !== undefined) here.ppid = ppid;
      else if (moved !== undefined) this.kernel.messenger.send(moved, 'proc_reparent', { pid, ppid });
      else this.kernel.messenger.send(origin, 'proc_reparent', { pid, ppid });
      return;
    }
    const record = this.origins.get(pid);
    if (record === undefined) return;
    if (record.zombie) {
      // It ended before learning of its new parent: init reaps it.
      if (ppid === INIT_PID) this.origins.delete(pid);
      return;
    }
    record.ppid = ppid;
    const local = this.views.whereabouts.find(pid);
    if (local !== undefined) local.ppid = ppid;
    else this.kernel.messenger.send(record.location, 'proc_reparent', { pid, ppid });
  }

  // ---- a lost node (src/node/cluster.ts) ----

  /**
   * Node `node` is gone, and its kernels with it (index.ts tells every service). Processes whose
   * identity this kernel keeps and that ran there end, lost (their parents learn it as from any
   * exit); children of processes here whose identity was kept there end the same way, since no
   * origin is left to report them. Processes here whose origin was there run on; those whose
   * parent's identity was kept there are orphans, re-parented to init as when a parent ends (else
   * they would be zombies for ever: no parent is left to reap them).
   */
  nodeLost(node: number, reason: string): void {
    const there = (id: EndpointId): boolean => nodeOf(id) === node;
    const exit: ExitRecord = { status: LOST_STATUS, signal: SIGKILL, trap: `popcorn: lost with node ${node} (${reason})\n` };
    for (const [pid, record] of [...this.origins]) {
      if (!record.zombie && there(record.location)) this.endedAtOrigin(pid, exit);
    }
    for (const [pid, record] of [...this.origins]) {
      if (record.ppid !== 0 && record.ppid !== INIT_PID && there(originOf(record.ppid))) this.reparent(pid, INIT_PID);
    }
    for (const p of this.kernel.processes.values()) {
      for (const [child, ended] of p.children.entries()) {
        if (ended === null && there(originOf(child)) && p.children.ended(child, exit)) this.views.signals.deliver(p, SIGCHLD);
      }
    }
  }
}


function exitRecord(p: Process, outcome: SliceOutcome): ExitRecord {
  if (outcome.kind === 'exited') return { status: outcome.status, signal: outcome.signal ?? 0, trap: '' };
  if (outcome.kind === 'trapped') return { status: TRAP_EXIT_STATUS, signal: 0, trap: formatTrap(p.name, outcome.error) };
  return { status: 0, signal: 0, trap: '' };
}

/** The host output streams a process writes to (its output goes there, apart from its exit). */
function hostOutputs(p: Process): HostOutput[] {
  const outputs = new Set<HostOutput>();
  for (const fd of p.context.fds.fds()) {
    const d = p.context.fds.get(fd).description;
    if (d instanceof HostOutput) outputs.add(d);
  }
  return [...outputs];
}

/** Run `fn` once each output has written what it was given so far. */
function whenAllWritten(outputs: HostOutput[], fn: () => void): void {
  let left = outputs.length + 1;
  const one = (): void => {
    if (--left === 0) fn();
  };
  for (const out of outputs) out.whenWritten(one);
  one();
}
