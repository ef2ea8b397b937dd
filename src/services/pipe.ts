/**
 * The pipe service: pipes homed on this kernel, the proxies of pipes homed elsewhere, and the
 * pipe_* messages between them (src/kernel/pipe.ts has the pipe itself).
 *
 * An end is handed to another kernel in two steps. The sender has the home count one more
 * reference (retain: pipe_attach, answered once counted), so the end cannot see its last
 * reference go while it is in flight; the receiver then takes the reference over (adopt). The
 * home counts references per end in total, not per kernel: a reference counted at one kernel's
 * request is given back by another's.
 *
 * Messages can be late (data for a proxy that has closed, credit for one that went idle): those
 * are dropped. Messages that cannot be right at any time (a pipe homed elsewhere, an end that is
 * neither 0 nor 1) throw a PipeMessageError, which the messenger counts and reports through its
 * onError; the kernel goes on.
 */

import type { Kernel } from '../kernel/kernel.js';
import type { Envelope, Messenger } from '../msg/messenger.js';
import { describeEndpoint, type EndpointId } from '../msg/address.js';
import type { Payload } from '../protocol.js';
import {
  PIPE_READ, PIPE_WRITE, Pipe, PipeEnd, PipeReadEnd, RemoteReader, RemoteWriter,
  type HomeLinks, type PipeEndKind, type PipeEndRef, type ProxyLinks,
} from '../kernel/pipe.js';
import { Errno, WasiError } from '../kernel/wasi/errno.js';
import type { FileDescription } from '../kernel/wasi/file-description.js';

export { PIPE_READ, PIPE_WRITE, type PipeEndRef } from '../kernel/pipe.js';

/** How long retain waits for the home to count a reference. */
const ATTACH_TIMEOUT_MS = 30_000;

/** A pipe message that is wrong whatever the timing. */
export class PipeMessageError extends Error {
  override readonly name = 'PipeMessageError';
}

export function installPipeService(kernel: Kernel): PipeService {
  return new PipeService(kernel.messenger, kernel.id);
}

export class PipeService {
  private readonly pipes = new Map<number, Pipe>();
  /** Proxies of pipes homed elsewhere, by "home/pipe". */
  private readonly readers = new Map<string, RemoteReader>();
  private readonly writers = new Map<string, RemoteWriter>();
  private nextPipe = 1;
  private readonly homeLinks: HomeLinks;
  private readonly proxyLinks: ProxyLinks;

  constructor(private readonly messenger: Messenger, private readonly self: EndpointId) {
    const m = messenger;
    this.homeLinks = {
      credit: (writer, pipe, bytes) => m.send(writer, 'pipe_credit', { home: self, pipe, bytes }),
      data: (reader, pipe, data, eof) => m.send(reader, 'pipe_data', { home: self, pipe, data, eof }),
      broken: (writer, pipe) => m.send(writer, 'pipe_broken', { home: self, pipe }),
      freed: (pipe) => this.pipes.delete(pipe),
    };
    this.proxyLinks = {
      write: (ref, data) => m.send(ref.home, 'pipe_write', { home: ref.home, pipe: ref.pipe, data }),
      want: (ref, bytes) => m.send(ref.home, 'pipe_want', { home: ref.home, pipe: ref.pipe, bytes }),
      pause: (ref, done) => m.request(ref.home, 'pipe_pause', { home: ref.home, pipe: ref.pipe }, ATTACH_TIMEOUT_MS, (error) => done(error)),
      detach: (ref, refs) => m.send(ref.home, 'pipe_detach', { home: ref.home, pipe: ref.pipe, end: ref.end, refs }),
      idle: (proxy) => this.forget(proxy),
    };
    this.listen();
  }

  /** A new pipe homed on this kernel: its read and write ends (each counts as one reference). */
  create(): { read: FileDescription; write: FileDescription } {
    const id = this.newPipeId();
    const pipe = new Pipe(this.self, id, this.homeLinks);
    this.pipes.set(id, pipe);
    return { read: pipe.open(PIPE_READ), write: pipe.open(PIPE_WRITE) };
  }

  /** If `d` is a pipe end (local or proxy), which end of which pipe. */
  refOf(d: FileDescription): PipeEndRef | undefined {
    return d instanceof PipeEnd ? { ...d.ref } : undefined;
  }

  /**
   * Count one more reference to the end at its home, before handing it to another kernel. `done`
   * runs once the home has counted it: at once here, after a pipe_attach round trip otherwise.
   */
  retain(ref: PipeEndRef, done: (error: Error | null) => void): void {
    if (ref.home !== this.self) {
      const payload = { home: ref.home, pipe: ref.pipe, end: ref.end };
      this.messenger.request(ref.home, 'pipe_attach', payload, ATTACH_TIMEOUT_MS, (error) => done(error));
      return;
    }
    if (this.pipes.get(ref.pipe)?.attach(ref.end) === true) done(null);
    else done(new WasiError(Errno.BADF, `${describeRef(ref)} has no reference left to count`));
  }

  /**
   * Before a read end is handed to another kernel: the bytes this kernel's proxy had received and
   * not read (they travel with the end, see adopt), once the home has stopped sending here.
   */
  drain(d: FileDescription, done: (error: Error | null, unread: Uint8Array) => void): void {
    if (d instanceof PipeReadEnd) d.drain(done);
    else done(null, new Uint8Array(0));
  }

  /**
   * Take over one retained reference: a new description holding it, on the pipe itself when this
   * kernel is home, else on this kernel's proxy of the end. Its close() gives the reference back.
   * `unread`: bytes drained from the proxy the end came from, to be read first.
   */
  adopt(ref: PipeEndRef, unread: Uint8Array = new Uint8Array(0)): FileDescription {
    if (ref.home === this.self) {
      const pipe = this.pipes.get(ref.pipe);
      if (pipe === undefined) throw new WasiError(Errno.BADF, `${describeRef(ref)} does not exist`);
      if (unread.length > 0) pipe.unread(unread);
      return pipe.adopt(ref.end);
    }
    const proxy = this.proxyOf({ home: ref.home, pipe: ref.pipe, end: ref.end });
    if (proxy instanceof RemoteReader) proxy.preload(unread);
    return proxy.open();
  }

  /** Pipes homed here plus proxies here. */
  get size(): number {
    return this.pipes.size + this.readers.size + this.writers.size;
  }

  private newPipeId(): number {
    while (this.pipes.has(this.nextPipe) || this.nextPipe === 0) this.nextPipe = (this.nextPipe + 1) >>> 0;
    const id = this.nextPipe;
    this.nextPipe = (id + 1) >>> 0;
    return id;
  }

  private proxyOf(ref: PipeEndRef): RemoteReader | RemoteWriter {
    const key = keyOf(ref);
    if (ref.end === PIPE_READ) {
      let reader = this.readers.get(key);
      if (reader === undefined) this.readers.set(key, (reader = new RemoteReader(ref, this.proxyLinks)));
      return reader;
    }
    let writer = this.writers.get(key);
    if (writer === undefined) this.writers.set(key, (writer = new RemoteWriter(ref, this.proxyLinks)));
    return writer;
  }

  private forget(proxy: RemoteReader | RemoteWriter): void {
    const map: Map<string, RemoteReader | RemoteWriter> = proxy instanceof RemoteReader ? this.readers : this.writers;
    const key = keyOf(proxy.ref);
    if (map.get(key) === proxy) map.delete(key);
  }

  // ---- messages ----

  private listen(): void {
    const m = this.messenger;
    m.on('pipe_attach', (msg, from) => this.attach(msg, from));
    m.on('pipe_detach', (msg, from) => this.homed(msg)?.detach(from.src, endOf(msg.end), msg.refs));
    m.on('pipe_write', (msg, from) => this.homed(msg)?.remoteWrite(from.src, msg.data));
    m.on('pipe_want', (msg, from) => this.homed(msg)?.want(from.src, msg.bytes));
    m.on('pipe_pause', (msg, from) => {
      this.homed(msg)?.pause(from.src);
      m.reply(from, 'pipe_pause', { home: msg.home, pipe: msg.pipe });
    });
    m.on('pipe_credit', (msg, from) => this.writers.get(this.proxyKey(msg, from))?.credit(msg.bytes));
    m.on('pipe_broken', (msg, from) => this.writers.get(this.proxyKey(msg, from))?.markBroken());
    m.on('pipe_data', (msg, from) => this.readers.get(this.proxyKey(msg, from))?.received(msg.data, msg.eof));
  }

  private attach(msg: Payload<'pipe_attach'>, from: Envelope): void {
    const end = endOf(msg.end);
    if (this.homed(msg)?.attach(end) !== true) {
      this.messenger.fail(from, 'EBADF', `${describeRef({ ...msg, end })} has no reference left to count`);
      return;
    }
    this.messenger.reply(from, 'pipe_attach', { home: msg.home, pipe: msg.pipe });
  }

  /** The pipe a message to its home names; undefined once it is gone (the message is late). */
  private homed(msg: { home: number; pipe: number }): Pipe | undefined {
    if (msg.home !== this.self) throw new PipeMessageError(`pipe ${msg.pipe} of ${describeEndpoint(msg.home)} is not homed on ${describeEndpoint(this.self)}`);
    return this.pipes.get(msg.pipe);
  }

  /** The proxy key of a message from a pipe's home, which must be the sender. */
  private proxyKey(msg: { home: number; pipe: number }, from: Envelope): string {
    if (from.src !== msg.home) throw new PipeMessageError(`${describeEndpoint(from.src)} spoke for pipe ${msg.pipe} of ${describeEndpoint(msg.home)}`);
    return keyOf(msg);
  }
}

function keyOf(ref: { home: number; pipe: number }): string {
  return `${ref.home}/${ref.pipe}`;
}

function endOf(end: number): PipeEndKind {
  if (end !== PIPE_READ && end !== PIPE_WRITE) throw new PipeMessageError(`pipe end ${end}`);
  return end;
}

function describeRef(ref: PipeEndRef): string {
  return `${ref.end === PIPE_READ ? 'the read end' : 'the write end'} of pipe ${ref.pipe} of ${describeEndpoint(ref.home)}`;
}
