/**
 * The host's client of the kernels' process service: start a program, wait for its exit, signal,
 * move, checkpoint and restore processes, and ask every kernel what ps, top and trace show. It
 * keeps what the host knows of the processes it started: where each runs, and exits nobody has
 * waited for yet. PopcornNode (node.ts) is one, and adds what makes a node: its kernels, their
 * wiring and lifecycle, its streams and its cluster.
 */

import type { Messenger } from '../msg/messenger.js';
import type { EndpointId } from '../msg/address.js';
import { RemoteError } from '../msg/requests.js';
import { LinkDownError } from '../msg/link.js';
import { streamIds } from './streams.js';
import { hostStreamRecords } from '../services/fd-transfer.js';
import { originOf } from '../kernel/pids.js';
import type { Payload, Protocol, ReplyPayload, RequestName } from '../protocol.js';
import type { ProcessImage } from '../kernel/image.js';
import {
  closeFileRecords, decodeCheckpoint, encodeCheckpoint, instrumentedHash, openCheckpointFds, prepareCheckpointModule,
} from './checkpoint-file.js';

const REQUEST_TIMEOUT_MS = 30_000;
/** A checkpoint waits for the process's next safe point and carries its whole memory. */
const CHECKPOINT_TIMEOUT_MS = 60_000;
/** A process moving between kernels, or briefly uncapturable, is asked again (EAGAIN). */
const CHECKPOINT_RETRIES = 20;
const CHECKPOINT_RETRY_MS = 50;

/** How a process ended, as its parent learns it. */
export interface ExitInfo {
  pid: number;
  status: number;
  signal: number;
  /** Trap report (wasmtime-shaped) when the program trapped, else ''. */
  trap: string;
}

export interface StartSpec {
  hash: string;
  name: string;
  args: string[];
  env: string[];
  dirs: { host: string; guest: string }[];
  /** Kernel index on this node; default 0. */
  kernel?: number;
  /** The stream set behind fds 0–2 (from attachStreams); default 0, the node's own stdio. */
  streams?: number;
  /** The module's host path, if known: a checkpoint of the process records it. */
  module?: string;
}

export interface RestoreOptions {
  /** Kernel index on this node; default 0. */
  kernel?: number;
  /** The stream set behind fds 0–2 (from attachStreams); default 0, the node's own stdio. */
  streams?: number;
  /** What to call the checkpoint in errors (its file name). */
  source?: string;
}

/** One kernel's answer to kernel_info, with its index on this node. */
export type KernelInfo = ReplyPayload<'kernel_info'> & { index: number };
export type KernelStats = ReplyPayload<'kernel_stats'> & { index: number };
export type KernelTrace = ReplyPayload<'kernel_trace'> & { index: number };

export abstract class ProcessClient {
  abstract readonly messenger: Messenger<Protocol>;
  /** This node's host endpoint. */
  abstract readonly self: EndpointId;
  /** This node's kernels. */
  abstract readonly kernels: EndpointId[];
  /** Every kernel of the cluster, in index order. */
  abstract clusterKernels: EndpointId[];
  protected readonly exits = new Map<number, (info: ExitInfo) => void>();
  /** Ended processes nobody has waited for yet (zombies): their status is kept until waited. */
  protected readonly zombies = new Map<number, ExitInfo>();
  /** Where each process this host started runs, as far as it knows. */
  protected readonly located = new Map<number, EndpointId>();
  /** Module hash → the host path it was last prepared or started from: what a checkpoint records. */
  protected readonly modules = new Map<string, string>();

  /** Have the messenger act on what was just sent (the host's driver sleeps otherwise). */
  protected abstract kick(): void;

  /** Start a program; resolves with its pid once the kernel has it running. */
  start(spec: StartSpec): Promise<number> {
    const kernelIndex = spec.kernel ?? 0;
    const kernel = this.clusterKernels[kernelIndex];
    if (kernel === undefined) return Promise.reject(new RangeError(`no kernel ${kernelIndex}: the cluster has ${this.clusterKernels.length}`));
    if (spec.module !== undefined) this.modules.set(spec.hash, spec.module);
    const payload: Payload<'proc_start'> = {
      ppid: 0, notify: this.self, hash: spec.hash, name: spec.name, args: spec.args, env: spec.env, dirs: spec.dirs,
      fds: hostStreamRecords(this.self, streamIds(spec.streams ?? 0)),
    };
    return this.ask(kernel, 'proc_start', payload, REQUEST_TIMEOUT_MS, (reply) => {
      // A process may end before its start is acknowledged: then it is a zombie already.
      if (!this.zombies.has(reply.pid)) this.located.set(reply.pid, kernel);
      return reply.pid;
    });
  }

  /** Resolves when the process ends (at once if it already has). */
  waitExit(pid: number): Promise<ExitInfo> {
    const zombie = this.zombies.get(pid);
    if (zombie !== undefined) {
      this.zombies.delete(pid);
      return Promise.resolve(zombie);
    }
    return new Promise((resolve) => this.exits.set(pid, resolve));
  }

  /** A process ended: hand its status to the waiter, or keep it until someone waits. */
  protected exited(msg: Payload<'proc_exited'>): void {
    this.located.delete(msg.pid);
    const waiter = this.exits.get(msg.pid);
    this.exits.delete(msg.pid);
    if (waiter !== undefined) waiter(msg);
    else this.zombies.set(msg.pid, msg);
  }

  /**
   * Send a signal to any process of the node (its origin kernel finds it). Resolves false when
   * there is no such process.
   */
  kill(pid: number, signal: number): Promise<boolean> {
    const origin = originOf(pid);
    if (!Number.isInteger(pid) || pid <= 0 || !this.clusterKernels.includes(origin)) return Promise.resolve(false);
    return this.ask(origin, 'proc_signal', { pid, signal }, REQUEST_TIMEOUT_MS, () => true).catch((error: unknown) => {
      if (error instanceof RemoteError && error.code === 'ESRCH') return false;
      throw error;
    });
  }

  /**
   * Move a process to kernel index `kernel` (its origin passes the request to where it runs).
   * Resolves once it runs there; rejects with the kernel's reason (no such process or kernel).
   */
  move(pid: number, kernel: number): Promise<void> {
    const origin = originOf(pid);
    if (!Number.isInteger(pid) || pid <= 0 || !this.clusterKernels.includes(origin)) return Promise.reject(new Error(`no process with pid ${pid}`));
    // Where it runs is noted as the answer comes, before an exit that follows it is handled.
    const moved = (): void => void this.located.set(pid, this.clusterKernels[kernel] as EndpointId);
    return this.ask(origin, 'proc_move', { pid, kernel }, REQUEST_TIMEOUT_MS, moved).catch((error: unknown) => {
      throw error instanceof RemoteError ? new Error(error.detail) : error;
    });
  }

  /**
   * Checkpoint a process (its origin passes the request to where it runs): resolves with the
   * checkpoint file's bytes (checkpoint-file.ts) once it was captured at its next safe point. It
   * runs on, or stays stopped (as by SIGSTOP) with `stop`. Rejects with the kernel's reason: no
   * such process, an fd a file cannot hold (a pipe end), children.
   */
  async checkpoint(pid: number, stop = false): Promise<Uint8Array> {
    const origin = originOf(pid);
    if (!Number.isInteger(pid) || pid <= 0 || !this.clusterKernels.includes(origin)) throw new Error(`no process with pid ${pid}`);
    for (let attempt = 0; ; attempt++) {
      try {
        const image: ProcessImage = await this.ask(origin, 'proc_checkpoint', { pid, stop }, CHECKPOINT_TIMEOUT_MS);
        return encodeCheckpoint(image, this.modules.get(image.hash) ?? '', instrumentedHash(image.hash));
      } catch (error) {
        const again = error instanceof RemoteError && error.code === 'EAGAIN' && attempt < CHECKPOINT_RETRIES;
        if (!again) throw new Error(`cannot checkpoint process ${pid}: ${remoteMessage(error)}`);
        await new Promise((resolve) => setTimeout(resolve, CHECKPOINT_RETRY_MS));
      }
    }
  }

  /**
   * Start a checkpointed process again (a checkpoint file's bytes) as a new process: a new PID,
   * ppid 0, fds 0–2 on stream set `streams`, its files reopened by path. Resolves with the PID;
   * rejects, having started nothing, when the checkpoint cannot be restored (checkpoint-file.ts).
   */
  async restore(checkpoint: Uint8Array, options: RestoreOptions = {}): Promise<number> {
    const kernelIndex = options.kernel ?? 0;
    const kernel = this.clusterKernels[kernelIndex];
    if (kernel === undefined) throw new RangeError(`no kernel ${kernelIndex}: the cluster has ${this.clusterKernels.length}`);
    const source = options.source ?? 'the checkpoint';
    const { header, image } = decodeCheckpoint(checkpoint, source);
    await prepareCheckpointModule(header);
    if (header.module !== '') this.modules.set(header.hash, header.module);
    const fds = openCheckpointFds(image, this.self, streamIds(options.streams ?? 0));
    const started = (reply: ReplyPayload<'proc_restore'>): number => {
      if (!this.zombies.has(reply.pid)) this.located.set(reply.pid, kernel);
      return reply.pid;
    };
    return this.ask(kernel, 'proc_restore', { notify: this.self, image: { ...image, fds } }, REQUEST_TIMEOUT_MS, started).catch((error: unknown) => {
      // Sent, the kernel consumed the host fds (closing them on failure); not sent, they are ours.
      if (error instanceof LinkDownError) closeFileRecords(fds);
      throw new Error(`cannot restore ${source}: ${remoteMessage(error)}`);
    });
  }

  /** The index on this node of the kernel a live process runs on, or undefined. */
  kernelOf(pid: number): number | undefined {
    const kernel = this.located.get(pid);
    return kernel === undefined ? undefined : this.clusterKernels.indexOf(kernel);
  }

  /**
   * Ask every kernel of the cluster for its processes, load and message counters (ps, `popcorn
   * kernels`). A kernel of another node that does not answer (its node was just lost) is left
   * out; one of this node's is an error.
   */
  async info(timeoutMs = 5_000): Promise<KernelInfo[]> {
    return this.askKernels('kernel_info', () => ({}), timeoutMs);
  }

  /**
   * Ask every kernel for its observer counters and its events after `since(kernel)` (metrics,
   * top, the dashboard), as info() asks.
   */
  stats(since: (kernel: EndpointId) => number, timeoutMs = 5_000): Promise<KernelStats[]> {
    return this.askKernels('kernel_stats', (kernel) => ({ since: since(kernel) }), timeoutMs);
  }

  /**
   * Start (`on`) or stop `popcorn trace` on every kernel; each answers with what it had recorded
   * (src/kernel/trace.ts), as info() asks.
   */
  trace(on: boolean, pid: number, capacity = 0, timeoutMs = 10_000): Promise<KernelTrace[]> {
    return this.askKernels('kernel_trace', () => ({ on, pid, capacity }), timeoutMs);
  }

  /**
   * One request to a kernel as a promise. `settle` runs as the reply is delivered, before any
   * message behind it: what it notes (where a process runs) is in place when an exit that follows
   * the reply is handled. Rejects with the error that ended the request.
   */
  private ask<N extends RequestName, T = ReplyPayload<N>>(kernel: EndpointId, name: N, payload: Payload<N>, timeoutMs: number, settle: (reply: ReplyPayload<N>) => T = (reply) => reply as T): Promise<T> {
    return new Promise((resolve, reject) => {
      this.kick();
      this.messenger.request(kernel, name, payload, timeoutMs, (error, reply) => {
        if (error !== null || reply === undefined) reject(error ?? new Error(`${name}: empty reply`));
        else resolve(settle(reply));
      });
    });
  }

  private async askKernels<N extends 'kernel_info' | 'kernel_stats' | 'kernel_trace'>(name: N, payload: (kernel: EndpointId) => Payload<N>, timeoutMs: number): Promise<(ReplyPayload<N> & { index: number })[]> {
    const ask = (kernel: EndpointId, index: number): Promise<ReplyPayload<N> & { index: number }> =>
      this.ask(kernel, name, payload(kernel), timeoutMs, (reply) => Object.assign(reply, { index }));
    const kernels = this.clusterKernels; // the view asked: it may change while the answers come
    const answers = await Promise.allSettled(kernels.map(ask));
    return answers.flatMap((answer, index) => {
      if (answer.status === 'fulfilled') return [answer.value];
      if (this.kernels.includes(kernels[index] as EndpointId)) throw answer.reason;
      return [];
    });
  }
}

/** A kernel's refusal without the kernel's name in front (the operator asked the node). */
function remoteMessage(error: unknown): string {
  if (error instanceof RemoteError) return error.detail;
  return error instanceof Error ? error.message : String(error);
}
