/**
 * Host streams: stdin, stdout and stderr of the popcorn command (a terminal, a file or a pipe), or
 * of a `popcorn run` client of a running node (relayed over its control connection), served on
 * the main thread because they need its event loop. Kernels reach them by messages: writes come
 * in as stream_write and are answered with stream_credit once the bytes left, which is the
 * kernels' flow control; a reader that waits sends stream_want and gets stream_data. A kernel
 * that hands an end on to another kernel first sends stream_handoff (HostStreamChannel.handOff).
 *
 * Streams come in sets of three: set S has stdin 3S, stdout 3S+1, stderr 3S+2. Set 0 is the
 * node's own stdio; `attach` adds one per run session.
 */

import type { Readable, Writable } from 'node:stream';
import type { Messenger } from '../msg/messenger.js';
import type { Protocol } from '../protocol.js';
import type { EndpointId } from '../msg/address.js';

export const STDIN_STREAM = 0;
export const STDOUT_STREAM = 1;
export const STDERR_STREAM = 2;

export interface HostStreamSet {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

/** The three stream ids of set `set`, as proc_start's stdio. */
export const streamIds = (set: number): number[] => [3 * set, 3 * set + 1, 3 * set + 2];

class StreamSet {
  readonly waiting = new Set<EndpointId>();
  stdinEnded = false;
  pendingWrites = 0;
  drained: (() => void)[] = [];
  listening = false;
  constructor(readonly io: HostStreamSet) {}
}

export class HostStreams {
  private readonly sets = new Map<number, StreamSet>();
  private nextSet = 1;

  constructor(private readonly messenger: Messenger<Protocol>, io: HostStreamSet) {
    this.sets.set(0, new StreamSet(io));
    messenger.on('stream_write', (msg, from) => this.write(msg.stream, msg.data, from.src));
    messenger.on('stream_want', (msg, from) => this.want(msg.stream, from.src));
    messenger.on('stream_handoff', (msg, from) => {
      // Its writes so far were taken (in order, above). An input end: what was sent it is on
      // its way, and it waits no more. Only for stdin: the same kernel may still wait for input
      // for another process while an output end of this set leaves it.
      if (msg.stream % 3 === STDIN_STREAM) this.sets.get(Math.floor(msg.stream / 3))?.waiting.delete(from.src);
      messenger.reply(from, 'stream_handoff', { stream: msg.stream });
    });
  }

  /** Add a set of streams; returns its number (see streamIds). */
  attach(io: HostStreamSet): number {
    const set = this.nextSet++;
    this.sets.set(set, new StreamSet(io));
    return set;
  }

  /** Forget a set: later writes to it are dropped (and still credited). */
  detach(set: number): void {
    const s = this.sets.get(set);
    if (s === undefined || set === 0) return;
    this.sets.delete(set);
    this.stopReading(s);
  }

  private write(stream: number, data: Uint8Array, from: EndpointId): void {
    const s = this.sets.get(Math.floor(stream / 3));
    const role = stream % 3;
    const target = s === undefined ? undefined : role === STDERR_STREAM ? s.io.stderr : role === STDOUT_STREAM ? s.io.stdout : undefined;
    if (s === undefined || target === undefined) {
      this.messenger.send(from, 'stream_credit', { stream, bytes: data.length });
      return;
    }
    s.pendingWrites++;
    target.write(data, () => {
      this.messenger.send(from, 'stream_credit', { stream, bytes: data.length });
      if (--s.pendingWrites === 0) for (const resolve of s.drained.splice(0)) resolve();
    });
  }

  /** Resolves once every write received so far for `set` has left the process. */
  flushed(set = 0): Promise<void> {
    const s = this.sets.get(set);
    return s === undefined || s.pendingWrites === 0 ? Promise.resolve() : new Promise((resolve) => s.drained.push(resolve));
  }

  private want(stream: number, from: EndpointId): void {
    const s = this.sets.get(Math.floor(stream / 3));
    if (stream % 3 !== STDIN_STREAM) return;
    if (s === undefined || s.stdinEnded) {
      this.messenger.send(from, 'stream_data', { stream, data: new Uint8Array(0), eof: true });
      return;
    }
    s.waiting.add(from);
    this.readStdin(s, stream);
  }

  /** Read stdin only while some kernel waits for it, so an unread terminal is left alone. */
  private readStdin(s: StreamSet, stream: number): void {
    if (s.listening) {
      s.io.stdin.resume();
      return;
    }
    s.listening = true;
    s.io.stdin.on('data', (chunk: Buffer) => {
      s.io.stdin.pause();
      // A chunk that comes when no kernel waits (a resume raced a delivery) goes back, unread.
      if (s.waiting.size === 0) s.io.stdin.unshift(chunk);
      else this.deliver(s, stream, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length), false);
    });
    s.io.stdin.on('end', () => {
      s.stdinEnded = true;
      this.deliver(s, stream, new Uint8Array(0), true);
    });
    s.io.stdin.on('error', () => {
      s.stdinEnded = true;
      this.deliver(s, stream, new Uint8Array(0), true);
    });
    s.io.stdin.resume();
  }

  /** A chunk goes to one waiting kernel (bytes are read once); the end of input to all. */
  private deliver(s: StreamSet, stream: number, data: Uint8Array, eof: boolean): void {
    const takers = eof ? [...s.waiting] : [...s.waiting].slice(0, 1);
    for (const kernel of takers) {
      s.waiting.delete(kernel);
      this.messenger.send(kernel, 'stream_data', { stream, data, eof });
    }
    if (!eof && s.waiting.size > 0) s.io.stdin.resume();
  }

  private stopReading(s: StreamSet): void {
    s.io.stdin.pause();
    s.io.stdin.removeAllListeners('data');
    if ('unref' in s.io.stdin && typeof s.io.stdin.unref === 'function') s.io.stdin.unref();
  }

  /** Stop reading stdin so the host process can exit. */
  close(): void {
    for (const s of this.sets.values()) this.stopReading(s);
  }
}
