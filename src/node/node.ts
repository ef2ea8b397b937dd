/**
 * A node: one host OS process running popcorn. It boots K kernel instances (worker threads),
 * wires them with rings, and runs the host endpoint on the main thread: host streams, process
 * start and exit notices, kernel health. A kernel that dies is reported, never ignored: its
 * processes are reported ended with a distinct status.
 */

import { Worker } from 'node:worker_threads';
import { cpus } from 'node:os';
import { Messenger } from '../msg/messenger.js';
import { endpointId, hostOf, describeEndpoint, nodeOf, type EndpointId } from '../msg/address.js';
import { handoverPorts } from '../msg/handover.js';
import { AsyncDriver } from '../msg/async-driver.js';
import { RemoteError } from '../msg/requests.js';
import { LinkDownError } from '../msg/link.js';
import { attachWiring, buildTopology } from '../msg/topology.js';
import { HostStreams, streamIds, type HostStreamSet } from './streams.js';
import { hostStreamRecords } from '../services/fd-transfer.js';
import { originOf } from '../kernel/pids.js';
import { LOST_STATUS } from '../kernel/signals.js';
import { errnoName, hostErrno } from '../kernel/wasi/errno.js';
import { Cluster, type ClusterOptions, type LinkState, type Member } from './cluster.js';
import { installModuleService } from './modules.js';
import { prepareProgram } from '../wasm/loader.js';
import type { KernelBoot } from '../kernel/kernel.js';
import { checkLimits, kernelLimits, type NodeLimits } from '../kernel/limits.js';
import { MESSAGES, type Payload, type Protocol, type ReplyPayload, type RequestName } from '../protocol.js';
import type { ProcessImage } from '../kernel/image.js';
import {
  closeFileRecords, decodeCheckpoint, encodeCheckpoint, instrumentedHash, openCheckpointFds, prepareCheckpointModule,
} from './checkpoint-file.js';

export interface NodeOptions {
  /** Number of kernel instances; default: one per CPU. */
  kernels?: number;
  /** Time slice in ms. */
  sliceMs?: number;
  /** Move CPU-bound processes from busy kernels to idle ones (src/services/balancer.ts); default on. */
  balance?: boolean;
  /** The popcorn command's own stdio. */
  io?: HostStreamSet;
  /** Where kernel logs go. */
  log?: (text: string) => void;
  /** Join (or found) a cluster of nodes over TLS (src/node/cluster.ts). */
  cluster?: ClusterOptions;
  /** Processes of this node, memory and fds per process (src/kernel/limits.ts). */
  limits?: NodeLimits;
}

/** How a process ended, as its parent learns it. */
export interface ExitInfo {
  pid: number;
  status: number;
  signal: number;
  /** Trap report (wasmtime-shaped) when the program trapped, else ''. */
  trap: string;
}

export { LOST_STATUS };

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

const REQUEST_TIMEOUT_MS = 30_000;
/** A checkpoint waits for the process's next safe point and carries its whole memory. */
const CHECKPOINT_TIMEOUT_MS = 60_000;
/** A process moving between kernels, or briefly uncapturable, is asked again (EAGAIN). */
const CHECKPOINT_RETRIES = 20;
const CHECKPOINT_RETRY_MS = 50;

export class PopcornNode {
  readonly messenger: Messenger<Protocol>;
  /** This node's host endpoint. */
  readonly self: EndpointId;
  /** This node's kernels. */
  readonly kernels: EndpointId[];
  /**
   * Every kernel of the cluster (this node's alone when it is not in one), by node and kernel
   * number: the order of kernel indices (`--on K`, `popcorn migrate PID K`, popcorn_spawn).
   */
  clusterKernels: EndpointId[];
  private readonly workers = new Map<EndpointId, Worker>();
  private readonly streams: HostStreams;
  private readonly driver: AsyncDriver;
  private readonly exits = new Map<number, (info: ExitInfo) => void>();
  /** Ended processes nobody has waited for yet (zombies): their status is kept until waited. */
  private readonly zombies = new Map<number, ExitInfo>();
  private readonly located = new Map<number, EndpointId>();
  /** Module hash → the host path it was last prepared or started from: what a checkpoint records. */
  private readonly modules = new Map<string, string>();
  private stopping = false;
  /** Set while booting: a kernel that dies then fails the boot. */
  private bootFailed: ((error: Error) => void) | null = null;
  readonly sliceMs: number;
  readonly balance: boolean;
  private readonly limits: NodeLimits;
  private readonly log: (text: string) => void;
  private cluster: Cluster | undefined;

  private constructor(options: NodeOptions, readonly node: number, count: number) {
    this.self = hostOf(node);
    this.sliceMs = options.sliceMs ?? 10;
    this.balance = options.balance ?? true;
    this.limits = options.limits ?? {};
    this.log = options.log ?? defaultLog;
    this.kernels = Array.from({ length: count }, (_, i) => endpointId(node, i));
    this.clusterKernels = this.kernels;
    this.messenger = new Messenger(MESSAGES, this.self, { onError: (error, context) => this.log(`${context}: ${error.message}`) });
    const topology = buildTopology([...this.kernels, this.self], this.self);
    const bell = attachWiring(this.messenger, topology.get(this.self) as NonNullable<ReturnType<typeof topology.get>>);
    this.driver = new AsyncDriver(this.messenger, { bell, onError: (error) => this.log(`host: ${String(error)}`) });
    this.streams = new HostStreams(this.messenger, options.io ?? { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
    this.messenger.on('proc_exited', (msg) => this.exited(msg));
    this.messenger.on('module_prepare', (msg, from) => {
      prepareProgram(msg.path).then(
        (program) => {
          this.modules.set(program.hash, msg.path);
          this.messenger.reply(from, 'module_prepare', { hash: program.hash });
        },
        (error: unknown) => this.messenger.fail(from, codeOf(error), error instanceof Error ? error.message : String(error)),
      );
    });
    this.messenger.on('log', (msg) => this.log(msg.text));
    installModuleService(this.messenger, () => this.driver.kick());
    const handover = handoverPorts(this.kernels);
    for (const kernel of this.kernels) this.spawnKernel(kernel, topology.get(kernel) as KernelBoot['wiring'], handover.get(kernel) ?? {});
  }

  /**
   * Boot a node and wait until every kernel is ready. With `cluster`, it first gets its node
   * number from the member it joins (or founds the cluster as node 0), then links to every member.
   */
  static async boot(options: NodeOptions = {}): Promise<PopcornNode> {
    const count = options.kernels ?? cpus().length;
    if (!Number.isInteger(count) || count < 1 || count > 254) throw new RangeError(`--kernels must be 1–254, got ${count}`);
    checkLimits(options.limits ?? {});
    if (options.cluster === undefined) {
      const node = new PopcornNode(options, 0, count);
      await node.ready();
      return node;
    }
    const cluster = new Cluster(options.cluster);
    const node = new PopcornNode(options, await cluster.admit(count), count);
    node.cluster = cluster;
    try {
      // Linked before the kernels are ready: members must hear this node's heartbeats at once.
      await cluster.start(node.messenger, {
        log: node.log,
        delivered: () => node.driver.kick(),
        changed: (members) => node.membersChanged(members),
        lost: (lost, reason) => node.nodeLost(lost, reason),
      });
      node.membersChanged(cluster.members);
      await node.ready();
    } catch (error) {
      await node.shutdown();
      throw error;
    }
    return node;
  }

  /** The other nodes of the cluster (none when this node is not in one). */
  get members(): Member[] {
    return this.cluster?.members ?? [];
  }

  /** The links to the other nodes and how many were lost (none when not in a cluster). */
  get links(): { up: LinkState[]; lost: number } {
    return { up: this.cluster?.links() ?? [], lost: this.cluster?.linksLost ?? 0 };
  }

  /** Nodes joined or left: every kernel learns the cluster's kernels (their indices). */
  private membersChanged(members: Member[]): void {
    const remote = members.flatMap((m) => Array.from({ length: m.kernels }, (_, i) => endpointId(m.node, i)));
    this.clusterKernels = [...this.kernels, ...remote].sort((a, b) => a - b);
    for (const kernel of this.kernels) this.messenger.send(kernel, 'cluster_view', { kernels: this.clusterKernels });
    this.driver.kick();
  }

  /**
   * A node is gone: the processes this host waits for that lived there, or whose identity was
   * kept there, are lost (LOST_STATUS); the kernels settle the rest (ProcessServer.nodeLost).
   */
  private nodeLost(node: number, reason: string): void {
    for (const kernel of this.kernels) this.messenger.send(kernel, 'node_lost', { node, reason });
    this.driver.kick();
    const trap = `popcorn: lost with node ${node} (${reason})\n`;
    for (const pid of new Set([...this.exits.keys(), ...this.located.keys()])) {
      const kernel = this.located.get(pid);
      if (nodeOf(originOf(pid)) === node || (kernel !== undefined && nodeOf(kernel) === node)) {
        this.exited({ pid, ppid: 0, status: LOST_STATUS, signal: 9, trap });
      }
    }
  }

  /** Resolves once every kernel said kernel_ready; rejects if one dies before that. */
  private ready(): Promise<void> {
    const ready = new Set<EndpointId>();
    return new Promise((resolve, reject) => {
      this.messenger.on('kernel_ready', (msg) => {
        ready.add(msg.kernel);
        if (ready.size < this.kernels.length) return;
        this.bootFailed = null;
        resolve();
      });
      this.bootFailed = reject;
      this.driver.start();
    });
  }

  private spawnKernel(id: EndpointId, wiring: KernelBoot['wiring'], handover: KernelBoot['handover']): void {
    const limits = kernelLimits(this.limits, this.kernels.length, this.kernels.indexOf(id));
    const boot: KernelBoot = { wiring, host: this.self, kernels: this.kernels, sliceMs: this.sliceMs, balance: this.balance, handover, limits };
    // Host fds move between kernels (a file given to a child elsewhere): no kernel may own them.
    const worker = new Worker(new URL('../services/kernel-thread.js', import.meta.url), {
      workerData: boot,
      transferList: Object.values(handover),
      trackUnmanagedFds: false,
    });
    worker.on('error', (error) => this.kernelDied(id, error.message));
    worker.on('exit', (code) => {
      if (!this.stopping) this.kernelDied(id, `exited with code ${code}`);
    });
    this.workers.set(id, worker);
  }

  /** A kernel is gone: say so, and end its processes for their waiters. */
  private kernelDied(id: EndpointId, reason: string): void {
    if (!this.workers.has(id)) return;
    this.workers.delete(id);
    this.log(`kernel ${describeEndpoint(id)} died: ${reason}`);
    this.bootFailed?.(new Error(`kernel ${describeEndpoint(id)} died during boot: ${reason}`));
    for (const [pid, kernel] of this.located) {
      if (kernel === id) this.exited({ pid, ppid: 0, status: LOST_STATUS, signal: 9, trap: '' });
    }
  }

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
  private exited(msg: Payload<'proc_exited'>): void {
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
      this.driver.kick();
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

  /** Serve fds 0–2 of processes started with `streams: set` from `io` (a run session). */
  attachStreams(io: HostStreamSet): number {
    return this.streams.attach(io);
  }

  detachStreams(set: number): void {
    this.streams.detach(set);
  }

  /**
   * Forcibly stop a kernel's thread, as a crash would (fault injection for tests and operators).
   * The node reports it and ends the kernel's processes with LOST_STATUS.
   */
  async terminateKernel(index: number): Promise<void> {
    const worker = this.workers.get(this.kernels[index]);
    if (worker !== undefined) await worker.terminate();
  }

  /** Everything written so far has reached the host's stdout and stderr. */
  flushed(set = 0): Promise<void> {
    return this.streams.flushed(set);
  }

  /** Stop every kernel (their processes are killed) and wait for the threads to end. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    this.cluster?.close();
    const live = [...this.workers.entries()];
    await Promise.all(
      live.map(
        ([id, worker]) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => void worker.terminate().then(() => resolve()), 5_000);
            worker.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            this.messenger.request(id, 'shutdown', {}, 5_000, () => undefined);
          }),
      ),
    );
    await this.driver.stop();
    this.streams.close();
  }
}

/** A kernel's refusal without the kernel's name in front (the operator asked the node). */
function remoteMessage(error: unknown): string {
  if (error instanceof RemoteError) return error.detail;
  return error instanceof Error ? error.message : String(error);
}

/** The error code a kernel gets for a program that could not be prepared. */
function codeOf(error: unknown): string {
  // A host error (the file is missing, unreadable, too many open files…) is the real cause; an
  // error without an errno is the module's own (invalid, unknown imports).
  const errno = hostErrno(error);
  return errno === undefined ? 'ENOEXEC' : errnoName(errno);
}

function defaultLog(text: string): void {
  process.stderr.write(`popcorn: ${text}\n`);
}
