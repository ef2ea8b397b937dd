/**
 * The node's side of the control socket (the protocol: src/node/control-protocol.ts): it listens
 * on the runtime directory's `control.sock` (0600), validates each connection's request and
 * serves it. A socket file with no listener behind it (a node that died) is replaced by the next
 * boot.
 */

import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, unlinkSync } from 'node:fs';
import type { PopcornNode } from './node.js';
import { nodeOf } from '../msg/address.js';
import { describePrepareEvent, prepareProgram } from '../wasm/loader.js';
import { readCheckpointFile, writeCheckpointFile } from './checkpoint-file.js';
import { Observer, publicView } from './observer.js';
import { chromeTrace } from './trace.js';
import type { Dashboard } from './dashboard/server.js';
import { parseAddress } from './cluster.js';
import { connectControl } from './control-client.js';
import { ControlError, readLines, sendLine, type ControlReplies, type KernelEntry, type PsEntry } from './control-protocol.js';
import { parseControlRequest, type ControlOp, type ControlRequest } from './control-requests.js';
import { RunSession } from './run-session.js';

export interface ControlServerOptions {
  /** Called after a `shutdown` request, before it is answered: stop the node. */
  shutdown: () => Promise<void>;
  log: (text: string) => void;
}

/** The node's control socket server. */
export class ControlServer {
  private readonly sockets = new Set<Socket>();
  private closing = false;
  /** Samples the kernels for observe, the dashboard and /metrics; idle until one asks. */
  private readonly observer: Observer;
  private tracing = false;
  private web: Promise<Dashboard> | undefined;

  private constructor(private readonly node: PopcornNode, private readonly server: Server, readonly path: string, private readonly options: ControlServerOptions) {
    server.on('connection', (socket) => this.accept(socket));
    this.observer = new Observer(node);
  }

  /** Start the web view on `address` (HOST:PORT) unless it runs; its URL, with the token. */
  async dashboard(address = '127.0.0.1:0'): Promise<string> {
    const { host, port } = parseAddress(address);
    // Loaded on first use: express and prom-client would add about a second to every command.
    this.web ??= import('./dashboard/server.js').then(({ Dashboard }) => Dashboard.start(this.node, this.observer, { host, port, log: this.options.log }));
    try {
      return (await this.web).url;
    } catch (error) {
      this.web = undefined;
      throw new ControlError(`cannot serve the dashboard on ${address}: ${error instanceof Error ? error.message : String(error)}`, false);
    }
  }

  /**
   * Listen on `path` (0600). An existing socket with a live node behind it is an error; one with
   * nobody listening is stale and replaced.
   */
  static async listen(node: PopcornNode, path: string, options: ControlServerOptions): Promise<ControlServer> {
    const existing = await connectControl(path).catch(() => null);
    if (existing !== null) {
      existing.destroy();
      throw new Error(`a popcorn node is already running (control socket ${path})`);
    }
    try {
      unlinkSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const server = createServer();
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(umask);
    }
    chmodSync(path, 0o600);
    return new ControlServer(node, server, path, options);
  }

  /** Stop listening and remove the socket; open connections (but `keep`) are ended. */
  close(keep?: Socket): void {
    if (this.closing) return;
    this.closing = true;
    // Not awaited: the server's close waits for every connection, the shutdown requester's too.
    this.server.close();
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
    for (const socket of this.sockets) if (socket !== keep) socket.end();
    void this.web?.then((web) => web.close(), () => undefined);
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let first = true;
    let session: RunSession | undefined;
    readLines(socket, (msg) => {
      if (!first) {
        session?.input(msg);
        return;
      }
      first = false;
      this.handle(socket, msg).then(
        (s) => (session = s),
        (error: unknown) => {
          const usage = error instanceof ControlError && error.usage;
          sendLine(socket, { ok: false, error: error instanceof Error ? error.message : String(error), ...(usage ? { usage } : {}) }, () => socket.end());
        },
      );
    });
  }

  /** Serve one request; a run session stays open and is returned. */
  private async handle(socket: Socket, msg: unknown): Promise<RunSession | undefined> {
    const request = parseControlRequest(msg);
    const answer = <O extends ControlOp>(_op: O, reply: ControlReplies[O]): undefined => {
      sendLine(socket, { ok: true, ...reply }, () => socket.end());
      return undefined;
    };
    switch (request.op) {
      case 'ping':
        return answer('ping', { pid: process.pid, kernels: this.node.kernels.length, node: this.node.node, cluster_kernels: this.node.clusterKernels.length, members: this.node.members });
      case 'ps':
        return answer('ps', { processes: await this.ps() });
      case 'kernels':
        return answer('kernels', { kernels: await this.kernels(), host: { ...this.node.messenger.stats } });
      case 'kill':
        if (!(await this.node.kill(request.pid, request.signal))) throw new ControlError(`no process with pid ${request.pid}`, false);
        return answer('kill', {});
      case 'migrate':
        this.checkKernel(request.kernel, `no kernel ${request.kernel}`);
        await failure(this.node.move(request.pid, request.kernel));
        return answer('migrate', {});
      case 'shutdown':
        this.close(socket);
        await this.options.shutdown();
        return answer('shutdown', {});
      case 'run':
        return this.run(socket, request);
      case 'checkpoint':
        return answer('checkpoint', { bytes: await failure(writeCheckpointFile(request.file, () => this.node.checkpoint(request.pid, request.stop))) });
      case 'restore':
        return this.restore(socket, request);
      case 'observe':
        return answer('observe', { snapshot: publicView(await this.observer.sample()) });
      case 'dashboard':
        return answer('dashboard', { url: await this.dashboard(request.http) });
      case 'trace':
        return answer('trace', await this.trace(request));
    }
  }

  /** `popcorn trace`: one at a time (starting a trace throws away what another recorded). */
  private async trace(request: Extract<ControlRequest, { op: 'trace' }>): Promise<ControlReplies['trace']> {
    if (this.tracing) throw new ControlError('a trace is already being taken on this node', false);
    this.tracing = true;
    try {
      if (request.status) {
        const kernels = await this.node.trace(false, 0);
        return { kernels: kernels.map((k) => ({ kernel: k.index, recording: k.recording, records: k.records.length })) };
      }
      await this.node.trace(true, request.pid);
      await new Promise((resolve) => setTimeout(resolve, request.seconds * 1000));
      return { trace: chromeTrace(await this.node.trace(false, request.pid), this.node.clusterKernels, request.pid) };
    } finally {
      this.tracing = false;
    }
  }

  private async ps(): Promise<PsEntry[]> {
    const infos = await this.node.info();
    return infos.flatMap((k) =>
      k.processes.map((p) => ({
        pid: p.pid,
        ppid: p.ppid,
        kernel: k.index,
        state: p.state,
        cpu_ms: Math.round(p.cpu_ms * 1000) / 1000,
        memory_bytes: p.memory_bytes,
        name: p.name,
        command: p.args.join(' '),
      })),
    ).sort((a, b) => a.pid - b.pid);
  }

  private async kernels(): Promise<KernelEntry[]> {
    const infos = await this.node.info();
    return infos.map((k) => ({ kernel: k.index, node: nodeOf(k.kernel), endpoint: k.kernel, processes: k.processes.length, load: k.load, migrations: k.migrations, tables: k.tables, heap_bytes: k.heap_bytes, messages: k.messages }));
  }

  private async run(socket: Socket, request: Extract<ControlRequest, { op: 'run' }>): Promise<RunSession | undefined> {
    if (request.on !== undefined) this.checkKernel(request.on, `--on ${request.on}`);
    const program = await prepareProgram(request.module, {
      onProgress: (event) => {
        const line = describePrepareEvent(event);
        if (line !== undefined) this.options.log(line);
      },
    });
    const name = request.name ?? request.module.split('/').pop() ?? request.module;
    const spec = { hash: program.hash, name, args: [name, ...request.args], env: request.env, dirs: request.dirs, kernel: request.on, module: request.module };
    return this.serve(socket, name, request.detach, (streams) => this.node.start({ ...spec, streams }));
  }

  /** Start a checkpointed process again, as `run` starts a program. */
  private async restore(socket: Socket, request: Extract<ControlRequest, { op: 'restore' }>): Promise<RunSession | undefined> {
    if (request.on !== undefined) this.checkKernel(request.on, `--on ${request.on}`);
    const checkpoint = readCheckpointFile(request.file);
    const name = request.file.split('/').pop() ?? request.file;
    const start = (streams?: number): Promise<number> => failure(this.node.restore(checkpoint, { kernel: request.on, streams, source: request.file }));
    return this.serve(socket, name, request.detach, start);
  }

  /** A kernel index the request names must be one of the cluster's: a usage error otherwise. */
  private checkKernel(index: number, what: string): void {
    if (index >= this.node.clusterKernels.length) throw new ControlError(`${what}: ${kernelRange(this.node)}`, true);
  }

  /**
   * Start a program for a client with `start(streams)`: detached (its stdio the node's log), or
   * as a session whose connection carries its stdio until it exits.
   */
  private async serve(socket: Socket, name: string, detach: boolean, start: (streams?: number) => Promise<number>): Promise<RunSession | undefined> {
    if (detach) {
      const pid = await start();
      // Reap it when it ends, so its status does not stay behind as a zombie.
      void this.node.waitExit(pid).then((exit) => this.options.log(`pid ${pid} (${name}) exited with status ${exit.status}${exit.trap === '' ? '' : `\n${exit.trap}`}`));
      sendLine(socket, { ok: true, pid }, () => socket.end());
      return undefined;
    }
    const session = new RunSession(socket, this.options.log);
    const set = this.node.attachStreams(session.io);
    let pid: number;
    try {
      pid = await start(set);
    } catch (error) {
      this.node.detachStreams(set);
      throw error;
    }
    session.started(pid, (signal) => {
      this.node.kill(pid, signal).catch((error: unknown) => this.options.log(`signal ${signal} to pid ${pid}: ${String(error)}`));
    });
    void this.node.waitExit(pid).then(async (exit) => {
      await this.node.flushed(set);
      this.node.detachStreams(set);
      session.exited(exit);
    });
    return session;
  }
}

/** The node failed to do what was asked (not a usage mistake): the same message, as a refusal. */
async function failure<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof ControlError) throw error;
    throw new ControlError(error instanceof Error ? error.message : String(error), false);
  }
}

/** "this node has kernels 0–3", or the cluster's range. */
function kernelRange(node: PopcornNode): string {
  const last = node.clusterKernels.length - 1;
  return node.members.length === 0 ? `this node has kernels 0–${last}` : `the cluster has kernels 0–${last}`;
}
