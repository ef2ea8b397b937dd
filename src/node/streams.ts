/**
 * Host streams: the popcorn command's own stdin, stdout and stderr (a terminal, a file or a pipe),
 * served on the main thread because they need its event loop. Kernels reach them by messages:
 * writes come in as stream_write and are answered with stream_credit once the bytes left, which is
 * the kernels' flow control; a reader that waits sends stream_want and gets stream_data.
 */

import type { Readable, Writable } from 'node:stream';
import type { Messenger } from '../msg/messenger.js';
import type { EndpointId } from '../msg/address.js';

export const STDIN_STREAM = 0;
export const STDOUT_STREAM = 1;
export const STDERR_STREAM = 2;

export interface HostStreamSet {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

export class HostStreams {
  private readonly waiting = new Set<EndpointId>();
  private stdinEnded = false;
  private pendingWrites = 0;
  private drained: (() => void)[] = [];
  private listening = false;

  constructor(private readonly messenger: Messenger, private readonly io: HostStreamSet) {
    messenger.on('stream_write', (msg, from) => this.write(msg.stream, msg.data, from.src));
    messenger.on('stream_want', (msg, from) => this.want(msg.stream, from.src));
  }

  private write(stream: number, data: Uint8Array, from: EndpointId): void {
    const target = stream === STDERR_STREAM ? this.io.stderr : stream === STDOUT_STREAM ? this.io.stdout : undefined;
    if (target === undefined) return;
    this.pendingWrites++;
    target.write(data, () => {
      this.messenger.send(from, 'stream_credit', { stream, bytes: data.length });
      if (--this.pendingWrites === 0) for (const resolve of this.drained.splice(0)) resolve();
    });
  }

  /** Resolves once every write received so far has left the process. */
  flushed(): Promise<void> {
    return this.pendingWrites === 0 ? Promise.resolve() : new Promise((resolve) => this.drained.push(resolve));
  }

  private want(stream: number, from: EndpointId): void {
    if (stream !== STDIN_STREAM) return;
    if (this.stdinEnded) {
      this.messenger.send(from, 'stream_data', { stream, data: new Uint8Array(0), eof: true });
      return;
    }
    this.waiting.add(from);
    this.readStdin();
  }

  /** Read stdin only while some kernel waits for it, so an unread terminal is left alone. */
  private readStdin(): void {
    if (this.listening) {
      this.io.stdin.resume();
      return;
    }
    this.listening = true;
    this.io.stdin.on('data', (chunk: Buffer) => {
      this.io.stdin.pause();
      this.deliver(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length), false);
    });
    this.io.stdin.on('end', () => {
      this.stdinEnded = true;
      this.deliver(new Uint8Array(0), true);
    });
    this.io.stdin.on('error', () => {
      this.stdinEnded = true;
      this.deliver(new Uint8Array(0), true);
    });
    this.io.stdin.resume();
  }

  /** A chunk goes to one waiting kernel (bytes are read once); the end of input to all. */
  private deliver(data: Uint8Array, eof: boolean): void {
    const takers = eof ? [...this.waiting] : [...this.waiting].slice(0, 1);
    for (const kernel of takers) {
      this.waiting.delete(kernel);
      this.messenger.send(kernel, 'stream_data', { stream: STDIN_STREAM, data, eof });
    }
    if (!eof && this.waiting.size > 0) this.io.stdin.resume();
  }

  /** Stop reading stdin so the host process can exit. */
  close(): void {
    this.io.stdin.pause();
    this.io.stdin.removeAllListeners('data');
    if ('unref' in this.io.stdin && typeof this.io.stdin.unref === 'function') this.io.stdin.unref();
  }
}
