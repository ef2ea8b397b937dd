/**
 * The node side of a `popcorn run` (or `restore`) through a running node: the program's stdio
 * travels over the client's control connection as session lines (src/node/control-protocol.ts).
 */

import type { Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { SIGHUP } from '../kernel/signals.js';
import { sendLine, type SessionEvent } from './control-protocol.js';
import { parseSessionInput } from './control-requests.js';

export class RunSession {
  readonly io: { stdin: Readable; stdout: Writable; stderr: Writable };
  private wantSent = false;
  private kill: ((signal: number) => void) | undefined;
  private done = false;
  private stdinEnded = false;

  constructor(private readonly socket: Socket, private readonly log: (text: string) => void) {
    const output = (fd: 1 | 2): Writable =>
      new Writable({
        write: (chunk: Buffer, _encoding, callback) => this.emit({ ev: 'out', fd, data: chunk.toString('base64') }, () => callback()),
      });
    this.io = {
      stdin: new Readable({
        read: () => {
          if (this.wantSent) return;
          this.wantSent = true;
          this.emit({ ev: 'want' });
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
    this.emit({ ev: 'started', pid });
  }

  /** A line from the client after the request: stdin, its end, or a signal for the program. */
  input(msg: unknown): void {
    const parsed = parseSessionInput(msg);
    if ('why' in parsed) {
      this.log(`a run session sent a line the node cannot act on (${parsed.why}): ignored`);
      return;
    }
    const { input } = parsed;
    if (input.op === 'stdin') {
      if (this.stdinEnded) return;
      this.wantSent = false;
      this.io.stdin.push(Buffer.from(input.data, 'base64'));
    } else if (input.op === 'eof') {
      this.endStdin();
    } else {
      this.kill?.(input.signal);
    }
  }

  exited(exit: { status: number; signal: number; trap: string }): void {
    this.done = true;
    this.emit({ ev: 'exit', status: exit.status, signal: exit.signal, trap: exit.trap }, () => this.socket.end());
  }

  private endStdin(): void {
    if (this.stdinEnded) return;
    this.stdinEnded = true;
    this.io.stdin.push(null);
  }

  private emit(event: SessionEvent, done?: () => void): void {
    sendLine(this.socket, event, done);
  }
}
