/**
 * The control socket of a running node (`popcorn boot`): how `popcorn ps`, `kill`, `kernels`,
 * `shutdown` and `run` talk to a node in the background.
 *
 * Where: a Unix domain socket `control.sock` in the runtime directory, which is
 * `$POPCORN_RUNTIME_DIR` if set, else `$XDG_RUNTIME_DIR/popcorn-ts`, else `~/.popcorn-ts`. The
 * directory is made 0700 and the socket 0600, so only its user (and root) can connect. A socket
 * file with no listener behind it (a node that died) is replaced by the next boot.
 *
 * Protocol: newline-delimited JSON, one object per line, both ways (the control plane, not the hot
 * path). The client's first line is a request `{"op": …}`; the node answers with one line
 * `{"ok": true, …}` or `{"ok": false, "error": "…", "usage"?: true}` and closes:
 *
 *   {"op":"ping"}                              → {"ok":true,"pid":N,"kernels":K}
 *   {"op":"ps"}                                → {"ok":true,"processes":[{pid,ppid,kernel,state,cpu_ms,memory_bytes,name,command}]}
 *   {"op":"kernels"}                           → {"ok":true,"kernels":[{kernel,endpoint,processes,load,messages}],"host":{…}}
 *   {"op":"kill","pid":N,"signal":S}           → {"ok":true} | {"ok":false,"error":"no process with pid N"}
 *   {"op":"migrate","pid":N,"kernel":K}        → {"ok":true} once it runs on kernel K | {"ok":false,"error":"…"}
 *   {"op":"shutdown"}                          → {"ok":true} once the kernels have stopped and the socket is gone
 *   {"op":"run","module":PATH,"args":[…],"env":[…],"dirs":[{host,guest}],"on":K?,"detach":true}
 *                                              → {"ok":true,"pid":N}   (the program's stdio: the node's log)
 *   {"op":"checkpoint","pid":N,"file":PATH,"stop":B}
 *                                              → {"ok":true,"bytes":B} once PATH (absolute) is written
 *   {"op":"restore","file":PATH,"on":K?,"detach":true}
 *                                              → {"ok":true,"pid":N}   (as run --detach)
 *   {"op":"observe"}                           → {"ok":true,"snapshot":{…}}  (src/node/observer.ts: what top shows)
 *   {"op":"dashboard","http":"HOST:PORT"?}     → {"ok":true,"url":URL}  the web view, started if it is not running (default 127.0.0.1:0)
 *   {"op":"trace","seconds":S,"pid":P?}        → {"ok":true,"trace":{traceEvents,…}} after S seconds of recording (src/node/trace.ts)
 *   {"op":"trace","status":true}               → {"ok":true,"kernels":[{kernel,recording,records}]}  (stops a stray trace)
 *
 * `run` and `restore` without `detach` are sessions: the connection stays open and carries the
 * program's stdio.
 *   node → client: {"ev":"started","pid":N}, {"ev":"out","fd":1|2,"data":BASE64},
 *                  {"ev":"want"} (the program waits for stdin), then last {"ev":"exit","status":S,"signal":G,"trap":T}
 *   client → node: {"op":"stdin","data":BASE64}, {"op":"eof"}, {"op":"signal","signal":S}
 * A client that goes away ends its program with SIGHUP.
 */

import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { chmodSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import type { PopcornNode } from './node.js';
import { nodeOf } from '../msg/address.js';
import { describePrepareEvent, prepareProgram } from '../wasm/loader.js';
import { readCheckpointFile, writeCheckpointFile } from './checkpoint-file.js';
import { Observer, publicView } from './observer.js';
import { chromeTrace } from './trace.js';
import type { Dashboard } from './dashboard/server.js';
import { parseAddress } from './cluster.js';
import { SIGTERM, isValidSignal } from '../kernel/signals.js';

export const NO_NODE_MESSAGE = 'no popcorn node is running (start one with `popcorn boot`)';

/** The runtime directory: the control socket and the node's log live here. */
export function runtimeDir(): string {
  const override = process.env.POPCORN_RUNTIME_DIR;
  if (override !== undefined && override !== '') return override;
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg !== undefined && xdg !== '') return join(xdg, 'popcorn-ts');
  return join(homedir(), '.popcorn-ts');
}

export const socketPath = (): string => join(runtimeDir(), 'control.sock');
export const logPath = (): string => join(runtimeDir(), 'node.log');

/** Make the runtime directory, private to its user. */
export function ensureRuntimeDir(): string {
  const dir = runtimeDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const uid = process.getuid?.();
  if (uid !== undefined && statSync(dir).uid !== uid) throw new Error(`${dir} belongs to another user`);
  return dir;
}

/** Raised by clients when no node answers on the control socket. */
export class NoNodeError extends Error {
  constructor() {
    super(NO_NODE_MESSAGE);
    this.name = 'NoNodeError';
  }
}

/** An answer from the node that says the request failed. */
export class ControlError extends Error {
  constructor(message: string, readonly usage: boolean) {
    super(message);
    this.name = 'ControlError';
  }
}

export type ControlMessage = Record<string, unknown>;

// ---- both sides: lines of JSON ----

/** Calls `onMessage` for each JSON line received on `socket`; a line that does not parse ends the connection. */
function readLines(socket: Socket, onMessage: (msg: ControlMessage) => void): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim() === '') continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        socket.destroy();
        return;
      }
      if (typeof msg === 'object' && msg !== null && !Array.isArray(msg)) onMessage(msg as ControlMessage);
      else socket.destroy();
    }
  });
}

function sendLine(socket: Socket, msg: ControlMessage, done?: () => void): void {
  if (socket.destroyed || !socket.writable) {
    done?.();
    return;
  }
  socket.write(`${JSON.stringify(msg)}\n`, () => done?.());
}

// ---- client side ----

/** Connect to the node's control socket; null when no node listens there. */
export function connectControl(path = socketPath()): Promise<Socket | null> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') resolve(null);
      else reject(new Error(`cannot connect to ${path}: ${error.message}`));
    });
  });
}

/** A client of the control socket: send lines, receive lines in order. */
export class ControlClient {
  private readonly queue: ControlMessage[] = [];
  private waiter: ((msg: ControlMessage | null) => void) | null = null;
  private closed = false;

  constructor(readonly socket: Socket) {
    readLines(socket, (msg) => this.push(msg));
    socket.on('close', () => this.end());
    socket.on('error', () => this.end());
  }

  /** Connect; throws NoNodeError when no node is running. */
  static async open(path = socketPath()): Promise<ControlClient> {
    const socket = await connectControl(path);
    if (socket === null) throw new NoNodeError();
    return new ControlClient(socket);
  }

  send(msg: ControlMessage): void {
    sendLine(this.socket, msg);
  }

  /** The next message from the node; null once the connection has closed. */
  next(): Promise<ControlMessage | null> {
    const msg = this.queue.shift();
    if (msg !== undefined) return Promise.resolve(msg);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  close(): void {
    this.socket.end();
  }

  private push(msg: ControlMessage): void {
    const w = this.waiter;
    this.waiter = null;
    if (w !== null) w(msg);
    else this.queue.push(msg);
  }

  private end(): void {
    this.closed = true;
    const w = this.waiter;
    this.waiter = null;
    w?.(null);
  }
}

/** One request, one answer. Throws NoNodeError when no node runs, ControlError when it refuses. */
export async function controlRequest(request: ControlMessage, path = socketPath()): Promise<ControlMessage> {
  const client = await ControlClient.open(path);
  try {
    client.send(request);
    const answer = await client.next();
    if (answer === null) throw new Error('the popcorn node closed the control connection without answering');
    if (answer.ok !== true) throw new ControlError(String(answer.error ?? 'request failed'), answer.usage === true);
    return answer;
  } finally {
    client.close();
  }
}

/** True when a node answers on the control socket. */
export async function nodeRunning(path = socketPath()): Promise<boolean> {
  try {
    await controlRequest({ op: 'ping' }, path);
    return true;
  } catch {
    return false;
  }
}

// ---- node side ----

const SIGHUP = 1;

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
  private async handle(socket: Socket, msg: ControlMessage): Promise<RunSession | undefined> {
    const answer = (reply: ControlMessage): undefined => {
      sendLine(socket, { ok: true, ...reply }, () => socket.end());
      return undefined;
    };
    switch (msg.op) {
      case 'ping':
        return answer({ pid: process.pid, kernels: this.node.kernels.length, node: this.node.node, cluster_kernels: this.node.clusterKernels.length, members: this.node.members });
      case 'ps':
        return answer({ processes: await this.ps() });
      case 'kernels':
        return answer({ kernels: await this.kernels(), host: { ...this.node.messenger.stats } });
      case 'kill': {
        const pid = Number(msg.pid);
        const signal = Number(msg.signal ?? SIGTERM);
        if (!isValidSignal(signal)) throw new ControlError(`invalid signal ${String(msg.signal)}`, true);
        if (!Number.isInteger(pid) || !(await this.node.kill(pid, signal))) throw new ControlError(`no process with pid ${String(msg.pid)}`, false);
        return answer({});
      }
      case 'migrate': {
        const pid = Number(msg.pid);
        const kernel = Number(msg.kernel);
        if (!Number.isInteger(kernel) || kernel < 0 || kernel >= this.node.clusterKernels.length) {
          throw new ControlError(`no kernel ${String(msg.kernel)}: ${kernelRange(this.node)}`, true);
        }
        if (!Number.isInteger(pid)) throw new ControlError(`invalid pid ${String(msg.pid)}`, true);
        try {
          await this.node.move(pid, kernel);
        } catch (error) {
          throw new ControlError(error instanceof Error ? error.message : String(error), false);
        }
        return answer({});
      }
      case 'shutdown':
        this.close(socket);
        await this.options.shutdown();
        sendLine(socket, { ok: true }, () => socket.end());
        return undefined;
      case 'run':
        return this.run(socket, msg);
      case 'checkpoint': {
        const pid = Number(msg.pid);
        if (!Number.isInteger(pid) || pid <= 0) throw new ControlError(`invalid pid ${String(msg.pid)}`, true);
        const file = msg.file;
        if (typeof file !== 'string' || !isAbsolute(file)) throw new ControlError('checkpoint needs the absolute path of the file to write', true);
        try {
          return answer({ bytes: await writeCheckpointFile(file, () => this.node.checkpoint(pid, msg.stop === true)) });
        } catch (error) {
          throw new ControlError(error instanceof Error ? error.message : String(error), false);
        }
      }
      case 'restore':
        return this.restore(socket, msg);
      case 'observe':
        return answer({ snapshot: publicView(await this.observer.sample()) });
      case 'dashboard':
        return answer({ url: await this.dashboard(typeof msg.http === 'string' ? msg.http : undefined) });
      case 'trace':
        return answer(await this.trace(msg));
      default:
        throw new ControlError(`unknown request ${JSON.stringify(msg.op)}`, true);
    }
  }

  /** `popcorn trace`: one at a time (starting a trace throws away what another recorded). */
  private async trace(msg: ControlMessage): Promise<ControlMessage> {
    if (this.tracing) throw new ControlError('a trace is already being taken on this node', false);
    const pid = msg.pid === undefined ? 0 : Number(msg.pid);
    if (!Number.isInteger(pid) || pid < 0) throw new ControlError(`invalid pid ${String(msg.pid)}`, true);
    const seconds = msg.seconds === undefined ? 5 : Number(msg.seconds);
    if (msg.status !== true && !(seconds > 0 && seconds <= 3600)) throw new ControlError(`invalid seconds ${String(msg.seconds)}`, true);
    this.tracing = true;
    try {
      if (msg.status === true) {
        const kernels = await this.node.trace(false, 0);
        return { kernels: kernels.map((k) => ({ kernel: k.index, recording: k.recording, records: k.records.length })) };
      }
      await this.node.trace(true, pid);
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      return { trace: chromeTrace(await this.node.trace(false, pid), this.node.clusterKernels, pid) };
    } finally {
      this.tracing = false;
    }
  }

  private async ps(): Promise<ControlMessage[]> {
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

  private async kernels(): Promise<ControlMessage[]> {
    const infos = await this.node.info();
    return infos.map((k) => ({ kernel: k.index, node: nodeOf(k.kernel), endpoint: k.kernel, processes: k.processes.length, load: k.load, migrations: k.migrations, tables: k.tables, heap_bytes: k.heap_bytes, messages: k.messages }));
  }

  private async run(socket: Socket, msg: ControlMessage): Promise<RunSession | undefined> {
    const module = String(msg.module);
    const args = stringArray(msg.args);
    const env = stringArray(msg.env);
    const dirs = Array.isArray(msg.dirs) ? (msg.dirs as { host: unknown; guest: unknown }[]).map((d) => ({ host: String(d.host), guest: String(d.guest) })) : [];
    const on = this.kernelOption(msg.on);
    const program = await prepareProgram(module, {
      onProgress: (event) => {
        const line = describePrepareEvent(event);
        if (line !== undefined) this.options.log(line);
      },
    });
    const name = String(msg.name ?? module.split('/').pop());
    const spec = { hash: program.hash, name, args: [name, ...args], env, dirs, kernel: on, module };
    return this.serve(socket, name, msg.detach === true, (streams) => this.node.start({ ...spec, streams }));
  }

  /** Start a checkpointed process again, as `run` starts a program. */
  private async restore(socket: Socket, msg: ControlMessage): Promise<RunSession | undefined> {
    const file = msg.file;
    if (typeof file !== 'string' || !isAbsolute(file)) throw new ControlError('restore needs the absolute path of the checkpoint file', true);
    const on = this.kernelOption(msg.on);
    const checkpoint = readCheckpointFile(file);
    const name = file.split('/').pop() ?? file;
    const start = async (streams?: number): Promise<number> => {
      try {
        return await this.node.restore(checkpoint, { kernel: on, streams, source: file });
      } catch (error) {
        throw new ControlError(error instanceof Error ? error.message : String(error), false);
      }
    };
    return this.serve(socket, name, msg.detach === true, start);
  }

  /** `--on K` of run and restore: undefined (kernel 0) or a kernel of this node. */
  private kernelOption(value: unknown): number | undefined {
    const on = value === undefined || value === null ? undefined : Number(value);
    if (on !== undefined && (!Number.isInteger(on) || on < 0 || on >= this.node.clusterKernels.length)) {
      throw new ControlError(`--on ${String(value)}: ${kernelRange(this.node)}`, true);
    }
    return on;
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
    const session = new RunSession(socket);
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

function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

/** The node side of a `popcorn run` through a running node: the program's stdio over the connection. */
class RunSession {
  readonly io: { stdin: Readable; stdout: Writable; stderr: Writable };
  private wantSent = false;
  private kill: ((signal: number) => void) | undefined;
  private done = false;
  private stdinEnded = false;

  constructor(private readonly socket: Socket) {
    const output = (fd: number): Writable =>
      new Writable({
        write: (chunk: Buffer, _encoding, callback) => sendLine(socket, { ev: 'out', fd, data: chunk.toString('base64') }, () => callback()),
      });
    this.io = {
      stdin: new Readable({
        read: () => {
          if (this.wantSent) return;
          this.wantSent = true;
          sendLine(socket, { ev: 'want' });
        },
      }),
      stdout: output(1),
      stderr: output(2),
    };
    socket.on('close', () => {
      if (!this.done) this.kill?.(SIGHUP);
      this.endStdin();
    });
  }

  started(pid: number, kill: (signal: number) => void): void {
    this.kill = kill;
    sendLine(this.socket, { ev: 'started', pid });
  }

  /** A line from the client after the request. */
  input(msg: ControlMessage): void {
    if (msg.op === 'stdin' && typeof msg.data === 'string') {
      if (this.stdinEnded) return;
      this.wantSent = false;
      this.io.stdin.push(Buffer.from(msg.data, 'base64'));
    } else if (msg.op === 'eof') {
      this.endStdin();
    } else if (msg.op === 'signal') {
      const signal = Number(msg.signal);
      if (isValidSignal(signal) && signal !== 0) this.kill?.(signal);
    }
  }

  private endStdin(): void {
    if (this.stdinEnded) return;
    this.stdinEnded = true;
    this.io.stdin.push(null);
  }

  exited(exit: { status: number; signal: number; trap: string }): void {
    this.done = true;
    sendLine(this.socket, { ev: 'exit', status: exit.status, signal: exit.signal, trap: exit.trap }, () => this.socket.end());
  }
}

/** "this node has kernels 0–3", or the cluster's range. */
function kernelRange(node: PopcornNode): string {
  const last = node.clusterKernels.length - 1;
  return node.members.length === 0 ? `this node has kernels 0–${last}` : `the cluster has kernels 0–${last}`;
}
