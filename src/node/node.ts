/**
 * A node: one host OS process running popcorn. It boots K kernel instances (worker threads),
 * wires them with rings, and runs the host endpoint on the main thread: host streams, the
 * cluster, kernel health. A kernel that dies is reported, never ignored: its processes are
 * reported ended with a distinct status. What it does with processes (start, wait, signal,
 * move, checkpoint) is the process client's (process-client.ts), which it extends.
 */

import { Worker } from 'node:worker_threads';
import { cpus } from 'node:os';
import { Messenger } from '../msg/messenger.js';
import { endpointId, hostOf, describeEndpoint, nodeOf, type EndpointId } from '../msg/address.js';
import { handoverPorts } from '../msg/handover.js';
import { AsyncDriver } from '../msg/async-driver.js';
import { attachWiring, buildTopology } from '../msg/topology.js';
import { HostStreams, type HostStreamSet } from './streams.js';
import { originOf } from '../kernel/pids.js';
import { LOST_STATUS } from '../kernel/signals.js';
import { errnoName, hostErrno } from '../kernel/wasi/errno.js';
import { Cluster, type ClusterOptions, type LinkState, type Member } from './cluster.js';
import { installModuleService } from './modules.js';
import { prepareProgram } from '../wasm/loader.js';
import type { KernelBoot } from '../kernel/kernel.js';
import { checkLimits, kernelLimits, type NodeLimits } from '../kernel/limits.js';
import { MESSAGES, type Protocol } from '../protocol.js';
import { ProcessClient } from './process-client.js';

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

export { LOST_STATUS };
export type { ExitInfo, KernelInfo, KernelStats, KernelTrace, RestoreOptions, StartSpec } from './process-client.js';


export class PopcornNode extends ProcessClient {
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
  private stopping = false;
  /** Set while booting: a kernel that dies then fails the boot. */
  private bootFailed: ((error: Error) => void) | null = null;
  readonly sliceMs: number;
  readonly balance: boolean;
  private readonly limits: NodeLimits;
  private readonly log: (text: string) => void;
  private cluster: Cluster | undefined;

  private constructor(options: NodeOptions, readonly node: number, count: number) {
    super();
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
   * kept there, are lost (LOST_STATUS); the kernels settle the rest (src/services/index.ts, on node_lost).
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

  protected kick(): void {
    this.driver.kick();
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
