/**
 * The pipe service: pipes homed on this kernel, the proxies of pipes homed elsewhere, and the
 * pipe_* messages between them (src/kernel/pipe.ts has the pipe itself).
 *
 * An end is handed to another kernel in two steps. The sender has the home count one more
 * reference for the receiver (retain: pipe_attach, answered once counted), so the end cannot see
 * its last reference go while it is in flight; the receiver then takes the reference over
 * (adopt). The home counts references per end and per holding kernel: the receiver's proxy
 * gives back what it took over (pipe_detach), and a record that is dropped unused is given back
 * for the kernel it was meant for (discard: pipe_discard).
 *
 * A lost node (nodeLost, on node_lost: src/services/index.ts): pipes homed here drop the references its
 * kernels held, or that were on their way to them, so the ends left see EOF or EPIPE as if those
 * kernels had closed theirs; proxies here of pipes homed there end as the pipe did — readers
 * read what they had received, then EOF; writers get EPIPE. Nothing is sent there any more.
 *
 * Messages can be late (data for a proxy that has closed, credit for one that went idle): those
 * are dropped. Messages that cannot be right at any time (a pipe homed elsewhere, an end that is
 * neither 0 nor 1) throw a PipeMessageError, which the messenger counts and reports through its
 * onError; the kernel goes on.
 */

import type { Kernel } from '../kernel/kernel.js';
import type { Envelope, Messenger } from '../msg/messenger.js';
import { describeEndpoint, nodeOf, type EndpointId } from '../msg/address.js';
import type { Payload, Protocol } from '../protocol.js';
import { Pipe, type HomeLinks } from '../kernel/pipe.js';
import { PIPE_READ, PIPE_WRITE, PipeEnd, PipeReadEnd, type PipeEndKind, type PipeEndRef } from '../kernel/pipe-end.js';
import { RemoteReader, RemoteWriter, type ProxyLinks } from '../kernel/pipe-proxy.js';
import { Errno, WasiError, errnoName } from '../kernel/wasi/errno.js';
import type { FileDescription } from '../kernel/wasi/file-description.js';

export { PIPE_READ, PIPE_WRITE, type PipeEndRef } from '../kernel/pipe-end.js';

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
  /** Nodes lost (numbers are never reused): their kernels hold nothing and are sent nothing. */
  private readonly lostNodes = new Set<number>();
  private readonly homeLinks: HomeLinks;
  private readonly proxyLinks: ProxyLinks;

  constructor(private readonly messenger: Messenger<Protocol>, readonly self: EndpointId) {
    const m = messenger;
    // Credit for bytes a lost writer wrote, and the like, would only be counted as unroutable.
    const to = (kernel: EndpointId, send: () => void): void => {
      if (!this.isLost(kernel)) send();
    };
    this.homeLinks = {
      credit: (writer, pipe, bytes) => to(writer, () => m.send(writer, 'pipe_credit', { home: self, pipe, bytes })),
      data: (reader, pipe, data, eof) => to(reader, () => m.send(reader, 'pipe_data', { home: self, pipe, data, eof })),
      broken: (writer, pipe) => to(writer, () => m.send(writer, 'pipe_broken', { home: self, pipe })),
      freed: (pipe) => this.pipes.delete(pipe),
    };
    this.proxyLinks = {
      write: (ref, data) => to(ref.home, () => m.send(ref.home, 'pipe_write', { home: ref.home, pipe: ref.pipe, data })),
      want: (ref, bytes) => to(ref.home, () => m.send(ref.home, 'pipe_want', { home: ref.home, pipe: ref.pipe, bytes })),
      pause: (ref, done) => {
        if (this.isLost(ref.home)) done(null); // nothing more will come: what was received is all
        else m.request(ref.home, 'pipe_pause', { home: ref.home, pipe: ref.pipe }, ATTACH_TIMEOUT_MS, (error) => done(error));
      },
      detach: (ref, refs) => to(ref.home, () => m.send(ref.home, 'pipe_detach', { home: ref.home, pipe: ref.pipe, end: ref.end, refs })),
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
   * Count one more reference to the end at its home, for kernel `holder`, which will take it over
   * (adopt), before handing it there. `done` runs once the home has counted it: at once here,
   * after a pipe_attach round trip otherwise. An end of a pipe whose home was lost needs no
   * counting: it travels as the dead end it is (EOF, EPIPE) wherever it goes.
   */
  retain(ref: PipeEndRef, holder: EndpointId, done: (error: Error | null) => void): void {
    if (this.isLost(ref.home)) {
      done(null);
      return;
    }
    if (ref.home !== this.self) {
      const payload = { home: ref.home, pipe: ref.pipe, end: ref.end, holder };
      this.messenger.request(ref.home, 'pipe_attach', payload, ATTACH_TIMEOUT_MS, (error) => done(error));
      return;
    }
    done(this.countFor(this.pipes.get(ref.pipe), ref, holder) ?? null);
  }

  /**
   * A reference retained for `holder` will not be used (the spawn or move it was for failed): give
   * it back. `unread`: bytes drained from this kernel's proxy for it, put back where they were.
   */
  discard(ref: PipeEndRef, holder: EndpointId, unread: Uint8Array = new Uint8Array(0)): void {
    if (ref.home === this.self) {
      const pipe = this.pipes.get(ref.pipe);
      if (pipe === undefined) return;
      if (unread.length > 0) pipe.unread(unread);
      pipe.discard(ref.end, holder);
      return;
    }
    // Bytes a proxy here had received go back to it if it is still in use, else they are lost
    // with it, as when it closes.
    if (unread.length > 0) this.readers.get(keyOf(ref))?.preload(unread);
    if (!this.isLost(ref.home)) this.messenger.send(ref.home, 'pipe_discard', { home: ref.home, pipe: ref.pipe, end: ref.end, holder });
  }

  /**
   * Node `node` is gone, and its kernels with it: pipes homed here drop the references those
   * kernels held (so the ends left see EOF or EPIPE and their waiters wake), and proxies here of
   * pipes homed there end as their pipe did: readers read what they had, then EOF; writers EPIPE.
   */
  nodeLost(node: number): void {
    this.lostNodes.add(node);
    const there = (kernel: EndpointId): boolean => nodeOf(kernel) === node;
    for (const pipe of [...this.pipes.values()]) pipe.kernelsLost(there);
    for (const reader of [...this.readers.values()]) if (there(reader.ref.home)) reader.homeLost();
    for (const writer of [...this.writers.values()]) if (there(writer.ref.home)) writer.homeLost();
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

  private isLost(kernel: EndpointId): boolean {
    return this.lostNodes.size > 0 && this.lostNodes.has(nodeOf(kernel));
  }

  /** This kernel's proxy of an end; a new one of a pipe whose home is lost is born at its end. */
  private proxyOf(ref: PipeEndRef): RemoteReader | RemoteWriter {
    const key = keyOf(ref);
    const lost = this.isLost(ref.home);
    if (ref.end === PIPE_READ) {
      let reader = this.readers.get(key);
      if (reader === undefined) {
        this.readers.set(key, (reader = new RemoteReader(ref, this.proxyLinks)));
        if (lost) reader.homeLost();
      }
      return reader;
    }
    let writer = this.writers.get(key);
    if (writer === undefined) {
      this.writers.set(key, (writer = new RemoteWriter(ref, this.proxyLinks)));
      if (lost) writer.homeLost();
    }
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
    m.on('pipe_discard', (msg) => this.homed(msg)?.discard(endOf(msg.end), msg.holder));
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
    const refused = this.countFor(this.homed(msg), { ...msg, end }, msg.holder);
    if (refused !== undefined) this.messenger.fail(from, errnoName(refused.errno), refused.message);
    else this.messenger.reply(from, 'pipe_attach', { home: msg.home, pipe: msg.pipe });
  }

  /**
   * Count a reference to an end of `pipe` (homed here) for `holder`; why not, if it cannot be.
   * A holder whose node was lost would never give it back (the request may have crossed the
   * news of the loss): refused, so the spawn or move it was for fails here and now.
   */
  private countFor(pipe: Pipe | undefined, ref: PipeEndRef, holder: EndpointId): WasiError | undefined {
    if (this.isLost(holder)) return new WasiError(Errno.HOSTUNREACH, `${describeEndpoint(holder)} was lost with its node`);
    if (pipe?.attach(ref.end, holder) !== true) return new WasiError(Errno.BADF, `${describeRef(ref)} has no reference left to count`);
    return undefined;
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
