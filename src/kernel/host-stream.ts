/**
 * File descriptions for the host streams (the popcorn command's stdin, stdout, stderr) as a
 * kernel sees them. The host owns them (invariant: one owner per resource); a kernel only sends
 * messages. Writes are asynchronous with credit-based flow control: a kernel may have up to
 * WRITE_WINDOW bytes in flight per stream, and a writer beyond that blocks until credit returns.
 * Reads ask the host for data only while someone waits, so an unread terminal is left alone.
 */

import { isatty } from 'node:tty';
import type { Messenger } from '../msg/messenger.js';
import type { Protocol } from '../protocol.js';
import { nodeOf, type EndpointId } from '../msg/address.js';
import { BLOCKED, type Blocked, type Pollable } from './wasi/blocking.js';
import { BaseDescription, BufferedStream } from './wasi/file-description.js';
import { Filetype, STREAM_RIGHTS } from './wasi/types.js';

/** Bytes a kernel may have in flight to one host stream before writers wait. */
export const WRITE_WINDOW = 1 << 20;
/** How long a handoff waits for the host's answer. */
const HANDOFF_TIMEOUT_MS = 30_000;

/** A terminal is a character device to WASI (isatty() looks at this); anything else is unknown. */
const filetypeOf = (fd: number): number => (isatty(fd) ? Filetype.CHARACTER_DEVICE : Filetype.UNKNOWN);

/**
 * The host streams this kernel uses, by host and stream id (stream ids are per host: a process
 * started from another node writes to that node's terminal). A channel lives while a process's
 * fd refers to it or its writes are still in flight; run sessions come and go, their channels
 * with them.
 */
export class HostStreamChannels {
  private readonly channels = new Map<number, HostStreamChannel>();

  /** `host`: this kernel's own host, whose streams may be this process's terminal. */
  constructor(private readonly messenger: Messenger<Protocol>, private readonly host: EndpointId) {
    messenger.on('stream_credit', (msg, from) => this.get(from.src, msg.stream)?.credit(msg.bytes));
    messenger.on('stream_data', (msg, from) => this.get(from.src, msg.stream)?.received(msg.data, msg.eof));
  }

  /** The channel for `stream` of host `home`, counted as one more user until its description is closed. */
  acquire(home: EndpointId, stream: number): HostStreamChannel {
    const key = channelKey(home, stream);
    let c = this.channels.get(key);
    if (c === undefined) {
      const filetype = home === this.host ? filetypeOf(stream) : Filetype.UNKNOWN;
      c = new HostStreamChannel(stream, this.messenger, home, filetype, () => this.channels.delete(key));
      this.channels.set(key, c);
    }
    c.users++;
    return c;
  }

  get(home: EndpointId, stream: number): HostStreamChannel | undefined {
    return this.channels.get(channelKey(home, stream));
  }

  get size(): number {
    return this.channels.size;
  }

  /** The hosts of node `node` are gone: nothing of theirs will be credited. */
  hostLost(node: number): void {
    for (const c of [...this.channels.values()]) if (nodeOf(c.host) === node) c.abandon();
  }
}

/** Both are u32: the key stays an exact number. */
const channelKey = (home: EndpointId, stream: number): number => home * 0x1_0000_0000 + stream;

/** One host stream as seen from this kernel: shared by every process of the kernel that uses it. */
export class HostStreamChannel {
  /** Open descriptions on this channel. */
  users = 0;
  private inFlight = 0;
  private readonly writeWatchers = new Set<() => void>();
  /** Bytes ever sent, and ever credited (the host writes a stream's bytes in order). */
  private sent = 0;
  private credited = 0;
  /** Who waits for the bytes sent up to `upTo` to be written (an exiting process: whenWritten). */
  private readonly writtenWatchers: { upTo: number; fn: () => void }[] = [];
  /** Received input not yet read (input streams only). */
  readonly input = new BufferedStream({ writable: true, readable: true });
  private wanting = false;
  /** Readers parked on the input: they still wait after an end was handed on (handOff). */
  private readonly inputWatchers = new Set<() => void>();

  constructor(
    readonly stream: number,
    private readonly messenger: Messenger<Protocol>,
    readonly host: EndpointId,
    readonly filetype: number,
    private readonly onIdle: () => void,
  ) {}

  /** A description on this channel was closed. */
  release(): void {
    this.users--;
    this.dropIfIdle();
  }

  private dropIfIdle(): void {
    if (this.users <= 0 && this.inFlight === 0) this.onIdle();
  }

  get writable(): boolean {
    return this.inFlight < WRITE_WINDOW;
  }

  send(data: Uint8Array): void {
    this.inFlight += data.length;
    this.sent += data.length;
    this.messenger.send(this.host, 'stream_write', { stream: this.stream, data });
  }

  /** The host wrote `bytes` of ours: writers waiting for the window may go on. */
  credit(bytes: number): void {
    this.inFlight = Math.max(0, this.inFlight - bytes);
    this.credited += bytes;
    for (const wake of [...this.writeWatchers]) wake();
    this.settleWritten();
    this.dropIfIdle();
  }

  /**
   * Run `fn` once every byte sent so far has been written by the host (at once if it has).
   * Later writes of other processes sharing the channel do not delay it.
   */
  whenWritten(fn: () => void): void {
    if (this.credited >= this.sent) fn();
    else this.writtenWatchers.push({ upTo: this.sent, fn });
  }

  /** The host is gone (its node was lost): nothing in flight will be credited, nor input sent. */
  abandon(): void {
    this.credited = this.sent;
    this.inFlight = 0;
    this.wanting = false;
    this.settleWritten();
    this.dropIfIdle();
  }

  private settleWritten(): void {
    if (this.writtenWatchers.length === 0) return;
    const due = this.writtenWatchers.filter((w) => w.upTo <= this.credited);
    if (due.length === 0) return;
    this.writtenWatchers.splice(0, this.writtenWatchers.length, ...this.writtenWatchers.filter((w) => w.upTo > this.credited));
    for (const w of due) w.fn();
  }

  watchWritable(fn: () => void): () => void {
    this.writeWatchers.add(fn);
    return () => this.writeWatchers.delete(fn);
  }

  /** Ask the host for input, once until it answers. */
  want(): void {
    if (this.wanting) return;
    this.wanting = true;
    this.messenger.send(this.host, 'stream_want', { stream: this.stream });
  }

  received(data: Uint8Array, eof: boolean): void {
    this.wanting = false;
    this.input.push(data);
    if (eof) this.input.end();
  }

  /** A reader waits for input: the host is asked for some. */
  watchInput(fn: () => void): () => void {
    if (!this.input.pollable.readReady()) this.want();
    const wake = (): void => fn(); // one entry per watch, even for the same fn
    this.inputWatchers.add(wake);
    const cancel = this.input.pollable.watch(wake);
    return () => {
      this.inputWatchers.delete(wake);
      cancel();
    };
  }

  /**
   * An end of this stream goes to another kernel (a spawn, a migration), where its reads and
   * writes must come after those made here. The host may still be taking writes sent from here,
   * or owe this kernel input (the next chunk would come here, where nobody may read it): then it
   * is asked to send no more input here, and answers after both (a link is FIFO both ways).
   * `done` gets the input received here and not read, which the end takes along to be read
   * first (as a pipe reader proxy's unread bytes, see RemoteReader.drain). Readers still
   * waiting here ask again.
   */
  handOff(done: (error: Error | null, unread: Uint8Array) => void): void {
    if (!this.wanting && this.inFlight === 0) {
      done(null, this.input.drain());
      return;
    }
    this.messenger.request(this.host, 'stream_handoff', { stream: this.stream }, HANDOFF_TIMEOUT_MS, (error) => {
      this.wanting = false;
      done(error, this.input.drain());
      if (this.inputWatchers.size > 0) this.want();
    });
  }

  /** Input another kernel had received and not read, handed on with an end: it is read first. */
  preload(data: Uint8Array): void {
    if (data.length === 0) return;
    const later = this.input.drain();
    this.input.push(data);
    this.input.push(later);
  }
}

/** A process's fd on a host stream: what output and input ends have in common. */
abstract class HostStreamEnd extends BaseDescription {
  readonly maxRights = STREAM_RIGHTS;
  readonly filetype: number;

  constructor(protected readonly channel: HostStreamChannel) {
    super();
    this.filetype = channel.filetype;
  }

  /** The host stream's id: with `home`, what another kernel needs to reach the same stream. */
  get stream(): number {
    return this.channel.stream;
  }

  /** The host (endpoint) the stream belongs to. */
  get home(): EndpointId {
    return this.channel.host;
  }

  override close(): void {
    this.channel.release();
  }

  /** Hand the end on (see HostStreamChannel.handOff). */
  handOff(done: (error: Error | null, unread: Uint8Array) => void): void {
    this.channel.handOff(done);
  }
}

/** A process's fd on a host output stream. */
export class HostOutput extends HostStreamEnd {
  readonly readable = false;
  readonly writable = true;
  override readonly pollable: Pollable = {
    readReady: () => false,
    writeReady: () => this.channel.writable,
    watch: (fn) => this.channel.watchWritable(fn),
  };

  override write(buf: Uint8Array, off: number, len: number): number | Blocked {
    if (len === 0) return 0;
    if (!this.channel.writable) return BLOCKED;
    this.channel.send(buf.slice(off, off + len));
    return len;
  }

  /** Run `fn` once what was written here so far has reached the host's stream. */
  whenWritten(fn: () => void): void {
    this.channel.whenWritten(fn);
  }
}

/** A process's fd on a host input stream. */
export class HostInput extends HostStreamEnd {
  readonly readable = true;
  readonly writable = false;
  override readonly pollable: Pollable = {
    readReady: () => this.channel.input.pollable.readReady(),
    writeReady: () => false,
    watch: (fn) => this.channel.watchInput(fn),
  };

  override read(buf: Uint8Array, off: number, len: number): number | Blocked {
    const n = this.channel.input.read(buf, off, len);
    if (n === BLOCKED) this.channel.want();
    return n;
  }

  override readableBytes(): bigint {
    return this.channel.input.readableBytes();
  }
}
