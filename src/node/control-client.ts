/**
 * The client side of the control protocol (src/node/control-protocol.ts): what `popcorn ps`,
 * `kill`, `run` and the other commands use to talk to the running node.
 */

import { createConnection, type Socket } from 'node:net';
import { ControlError, NoNodeError, readLines, sendLine, socketPath, type ControlReplies } from './control-protocol.js';
// Types alone: the commands never load zod (control-requests.ts).
import type { ControlOp, ControlRequestInput, SessionInput } from './control-requests.js';

/** A line from the node: an answer, a refusal or a session event, as sent (the client trusts its node). */
export type NodeLine = Record<string, unknown>;

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
  private readonly queue: NodeLine[] = [];
  private waiter: ((msg: NodeLine | null) => void) | null = null;
  private closed = false;

  constructor(readonly socket: Socket) {
    readLines(socket, (msg) => {
      if (typeof msg === 'object' && msg !== null && !Array.isArray(msg)) this.push(msg as NodeLine);
      else socket.destroy();
    });
    socket.on('close', () => this.end());
    socket.on('error', () => this.end());
  }

  /** Connect; throws NoNodeError when no node is running. */
  static async open(path = socketPath()): Promise<ControlClient> {
    const socket = await connectControl(path);
    if (socket === null) throw new NoNodeError();
    return new ControlClient(socket);
  }

  /** The request that opens the connection, or a session's input after it. */
  send(msg: ControlRequestInput | SessionInput): void {
    sendLine(this.socket, msg);
  }

  /** The next line from the node; null once the connection has closed. */
  next(): Promise<NodeLine | null> {
    const msg = this.queue.shift();
    if (msg !== undefined) return Promise.resolve(msg);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  close(): void {
    this.socket.end();
  }

  private push(msg: NodeLine): void {
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
export async function controlRequest<O extends ControlOp>(request: ControlRequestInput<O>, path = socketPath()): Promise<ControlReplies[O]> {
  const client = await ControlClient.open(path);
  try {
    client.send(request as ControlRequestInput);
    const answer = await client.next();
    if (answer === null) throw new Error('the popcorn node closed the control connection without answering');
    if (answer.ok !== true) throw new ControlError(String(answer.error ?? 'request failed'), answer.usage === true);
    return answer as unknown as ControlReplies[O];
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
