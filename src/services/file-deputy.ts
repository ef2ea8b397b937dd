/**
 * The file deputy (MOSIX's deputy, Popcorn's syscall forwarding): host files of processes on
 * other nodes. A host fd means something only inside the node process that opened it, so a file
 * cannot follow a process to another node the way it follows one to another kernel of its node
 * (a re-open, file-carrier.ts). Instead the kernel that gives it away keeps it open, in its
 * deputy table, and becomes its home; the process gets a RemoteFile (src/kernel/remote-file.ts)
 * whose operations are file_* requests to the home.
 *
 * A deputy is named system-wide by (home, handle). The home counts references per holding
 * kernel: one per description, on any kernel, on it. A reference is counted before a record
 * naming the file travels (at the home when it exports the file itself, by file_attach when a
 * holder hands it on), and given back by file_detach when the description closes — or by whoever
 * drops a record that will not be used. The file is closed when the last reference goes. Holders
 * on a node that has left the cluster are forgotten by a sweep (two in a row must miss them).
 *
 * Bad input: a request for a handle the home does not know, or that the asking kernel holds no
 * reference to, is refused with EBADF; a failed host call is refused with its errno; the home
 * never throws for a remote. A home that is gone (its node lost) fails each operation with EIO.
 */

import * as fs from 'node:fs';
import type { Kernel } from '../kernel/kernel.js';
import type { Envelope, Messenger } from '../msg/messenger.js';
import { describeEndpoint, nodeOf, type EndpointId } from '../msg/address.js';
import type { ValueOf } from '../msg/codec.js';
import type { REMOTE_FILE_STATE, ReplyPayload, RequestName, Protocol } from '../protocol.js';
import {
  MAX_REMOTE_READ, RemoteFile, seekableType,
  type FileChange, type RemoteFileLinks, type RemoteFileRef,
} from '../kernel/remote-file.js';
import { Errno, WasiError, errnoName } from '../kernel/wasi/errno.js';
import { asWasiError } from './remote-error.js';
import { HostFile, type FileDescription } from '../kernel/wasi/file-description.js';
import { Whence, type TimeSpec } from '../kernel/wasi/types.js';

/** How long a file request may go unanswered (a lost node fails them at once). */
const REQUEST_TIMEOUT_MS = 60_000;
/** How often the home looks for holders whose node left the cluster. */
const SWEEP_MS = 5_000;

/** What a remote_file record carries for its holder (REMOTE_FILE_STATE). */
export type RemoteFileRecordState = ValueOf<typeof REMOTE_FILE_STATE>;

/** A file kept here for kernels of other nodes. */
interface Deputy {
  handle: number;
  /** This deputy's own host fd on the file (positional I/O only: its offset is never used). */
  file: HostFile;
  /** The description it was made from: exported again, it reuses this deputy. */
  origin: HostFile;
  seekable: boolean;
  /** References per holding kernel. */
  holders: Map<EndpointId, number>;
  /** Holders the last sweep did not find in the cluster. */
  absent: Set<EndpointId>;
}

export function installFileDeputy(kernel: Kernel): FileDeputy {
  const deputy = new FileDeputy(kernel.messenger, kernel.id, (text) => kernel.log(text));
  kernel.every(SWEEP_MS, () => deputy.sweep(kernel.cluster));
  return deputy;
}

export class FileDeputy {
  private readonly deputies = new Map<number, Deputy>();
  private readonly byFile = new WeakMap<HostFile, Deputy>();
  private nextHandle = 1;
  /** RemoteFile descriptions open on this kernel. */
  private remotes = 0;
  private readonly links: RemoteFileLinks;

  constructor(private readonly messenger: Messenger<Protocol>, readonly self: EndpointId, private readonly log: (text: string) => void = () => {}) {
    this.links = this.proxyLinks();
    this.listen();
  }

  /** Files kept here for other kernels, plus descriptions here of files kept elsewhere. */
  get size(): number {
    return this.deputies.size + this.remotes;
  }

  /** Files kept here for other kernels. */
  get kept(): number {
    return this.deputies.size;
  }

  // ---- giving files away ----

  /**
   * Keep host file `file` of this kernel here for `holder` (a kernel of another node), counting
   * one reference for it: the handle, and the state its record carries.
   */
  deputize(file: HostFile, holder: EndpointId): { handle: number; state: RemoteFileRecordState } {
    let d = this.byFile.get(file);
    if (d === undefined) {
      const fd = file.openHandle();
      let copy: HostFile;
      try {
        copy = new HostFile(fd, file.readable, file.writable);
      } catch (error) {
        closeQuietly(fd);
        throw error;
      }
      d = { handle: this.newHandle(), file: copy, origin: file, seekable: seekableType(copy.filetype), holders: new Map(), absent: new Set() };
      this.deputies.set(d.handle, d);
      this.byFile.set(file, d);
    }
    let stat;
    try {
      stat = d.file.stat();
    } catch (error) {
      this.release(d.handle, holder, 0); // closes a deputy nobody holds yet
      throw error;
    }
    count(d, holder, 1);
    return { handle: d.handle, state: { holder, readable: file.readable, writable: file.writable, stat, error: 0, unread: new Uint8Array(0) } };
  }

  /**
   * A remote file goes on to `holder`: once its operations so far are answered, its home counts a
   * reference for `holder`. `done` gets the offset and the state for the record. It does not
   * fail: if the home cannot count it (it is gone), the state carries EIO and the receiver's
   * operations fail as this kernel's would.
   */
  retain(d: RemoteFile, holder: EndpointId, done: (offset: number, state: RemoteFileRecordState) => void): void {
    d.settle((offset, state) => {
      const { home, handle } = d.ref;
      const attached = (error: Error | null): void => {
        done(offset, { holder, ...state, error: error === null ? state.error : Errno.IO });
      };
      if (home === this.self) attached(this.attachHere(handle, this.self, holder));
      else this.messenger.request(home, 'file_attach', { handle, holder }, REQUEST_TIMEOUT_MS, (error) => attached(error));
    });
  }

  /**
   * Take over a reference counted for this kernel: a RemoteFile on it — or, back at the home, a
   * host file of its own again (unless bytes of a stream came with it: those are read first).
   */
  adopt(home: EndpointId, handle: number, offset: number, fdflags: number, state: RemoteFileRecordState): FileDescription {
    if (home === this.self && state.unread.length === 0) return this.adoptHere(handle, state.holder, offset, fdflags);
    this.remotes++;
    return new RemoteFile({ home, handle }, this.links, state, offset, fdflags);
  }

  /** A record that will not be used: give its reference back. */
  discard(home: EndpointId, handle: number, holder: EndpointId): void {
    if (home === this.self) this.release(handle, holder, 1);
    else this.messenger.send(home, 'file_detach', { handle, holder, refs: 1 });
  }

  /** Forget holders of nodes that left the cluster (`cluster`: its kernels now). */
  sweep(cluster: readonly EndpointId[]): void {
    if (this.deputies.size === 0) return;
    const alive = new Set(cluster);
    for (const d of [...this.deputies.values()]) {
      for (const holder of [...d.holders.keys()]) {
        if (alive.has(holder) || nodeOf(holder) === nodeOf(this.self)) {
          d.absent.delete(holder);
        } else if (!d.absent.has(holder)) {
          d.absent.add(holder);
        } else {
          this.log(`file ${d.handle}: ${describeEndpoint(holder)} left the cluster holding it`);
          this.release(d.handle, holder, Infinity);
        }
      }
    }
  }

  private adoptHere(handle: number, holder: EndpointId, offset: number, fdflags: number): HostFile {
    const d = this.deputies.get(handle);
    if (d === undefined) throw new WasiError(Errno.BADF, `file ${handle} of ${describeEndpoint(this.self)} is gone`);
    try {
      const fd = d.file.openHandle();
      let file: HostFile;
      try {
        file = new HostFile(fd, d.file.readable, d.file.writable, fdflags);
      } catch (error) {
        closeQuietly(fd);
        throw error;
      }
      if (d.seekable && offset > 0) file.seek(BigInt(offset), Whence.SET);
      return file;
    } finally {
      this.release(handle, holder, 1);
    }
  }

  private newHandle(): number {
    while (this.deputies.has(this.nextHandle) || this.nextHandle === 0) this.nextHandle = (this.nextHandle + 1) >>> 0;
    const handle = this.nextHandle;
    this.nextHandle = (handle + 1) >>> 0;
    return handle;
  }

  /** `holder` gives back `refs` references (never more than it has); the last one closes the file. */
  private release(handle: number, holder: EndpointId, refs: number): void {
    const d = this.deputies.get(handle);
    if (d === undefined) return; // late: the file is closed already
    const held = d.holders.get(holder) ?? 0;
    const left = held - Math.min(held, refs);
    if (left > 0) d.holders.set(holder, left);
    else d.holders.delete(holder);
    if (d.holders.size > 0) return;
    this.deputies.delete(handle);
    this.byFile.delete(d.origin);
    try {
      d.file.close();
    } catch (error) {
      this.log(`file ${handle}: close failed: ${messageOf(error)}`);
    }
  }

  /** Count a reference for `holder`, asked by `asker` (who must hold one). Null, or why not. */
  private attachHere(handle: number, asker: EndpointId, holder: EndpointId): WasiError | null {
    const d = this.deputies.get(handle);
    if (d === undefined || (asker !== this.self && !d.holders.has(asker))) return new WasiError(Errno.BADF, `file ${handle} is not held by ${describeEndpoint(asker)}`);
    count(d, holder, 1);
    return null;
  }

  // ---- the home: requests from holders ----

  private listen(): void {
    const m = this.messenger;
    m.on('file_attach', (msg, from) => this.serve(from, 'file_attach', () => {
      const refused = this.attachHere(msg.handle, from.src, msg.holder);
      if (refused !== null) throw refused;
      return { handle: msg.handle };
    }));
    m.on('file_detach', (msg) => this.release(msg.handle, msg.holder, msg.refs));
    m.on('file_read', (msg, from) => this.serve(from, 'file_read', () => {
      const d = this.held(msg.handle, from.src);
      const len = Math.min(msg.len, MAX_REMOTE_READ);
      const buf = new Uint8Array(len);
      const n = d.seekable ? d.file.pread(buf, 0, len, BigInt(offsetArg(msg.position))) : d.file.read(buf, 0, len);
      return { data: buf.subarray(0, n), stat: d.file.stat() };
    }));
    m.on('file_write', (msg, from) => this.serve(from, 'file_write', () => {
      const d = this.held(msg.handle, from.src);
      return { end: writeAll(d, msg.position, msg.append, msg.data), stat: d.file.stat() };
    }));
    m.on('file_set_size', (msg, from) => this.serve(from, 'file_set_size', () => {
      const d = this.held(msg.handle, from.src);
      d.file.setSize(BigInt(offsetArg(msg.size)));
      return { stat: d.file.stat() };
    }));
    m.on('file_allocate', (msg, from) => this.serve(from, 'file_allocate', () => {
      const d = this.held(msg.handle, from.src);
      d.file.allocate(BigInt(offsetArg(msg.offset)), BigInt(offsetArg(msg.len)));
      return { stat: d.file.stat() };
    }));
    m.on('file_set_times', (msg, from) => this.serve(from, 'file_set_times', () => {
      const d = this.held(msg.handle, from.src);
      d.file.setTimes(timeArg(msg.atimHow, msg.atim), timeArg(msg.mtimHow, msg.mtim));
      return { stat: d.file.stat() };
    }));
    m.on('file_sync', (msg, from) => this.serve(from, 'file_sync', () => {
      const d = this.held(msg.handle, from.src);
      d.file.sync(msg.dataOnly);
      return { stat: d.file.stat() };
    }));
  }

  /** The deputy `handle`, if `asker` holds a reference to it; else EBADF. */
  private held(handle: number, asker: EndpointId): Deputy {
    const d = this.deputies.get(handle);
    if (d === undefined || !d.holders.has(asker)) throw new WasiError(Errno.BADF, `no file ${handle} of ${describeEndpoint(this.self)} is held by ${describeEndpoint(asker)}`);
    return d;
  }

  /** Answer a request with what `work` returns, or refuse it with the errno it threw. */
  private serve<N extends RequestName>(from: Envelope, name: N, work: () => ReplyPayload<N>): void {
    let reply: ReplyPayload<N>;
    try {
      reply = work();
    } catch (error) {
      if (!(error instanceof WasiError)) this.log(`${name} from ${describeEndpoint(from.src)}: ${messageOf(error)}`);
      const errno = error instanceof WasiError ? error.errno : Errno.IO;
      this.messenger.fail(from, errnoName(errno), messageOf(error));
      return;
    }
    this.messenger.reply(from, name, reply);
  }

  // ---- holders: requests to homes ----

  private proxyLinks(): RemoteFileLinks {
    const m = this.messenger;
    const t = REQUEST_TIMEOUT_MS;
    const failure = (error: Error | null, ref: RemoteFileRef): WasiError | null => (error === null ? null : asWasiError(error, { fallback: Errno.IO, unreachable: Errno.IO, context: `file ${ref.handle} of ${describeEndpoint(ref.home)}` }));
    return {
      read: (ref, position, len, done) => {
        m.request(ref.home, 'file_read', { handle: ref.handle, position, len }, t, (error, reply) => done(failure(error, ref), reply?.data, reply?.stat));
      },
      write: (ref, position, append, data, done) => {
        m.request(ref.home, 'file_write', { handle: ref.handle, position, append, data }, t, (error, reply) => done(failure(error, ref), reply?.end, reply?.stat));
      },
      change: (ref, change, done) => {
        const answered = (error: Error | null, reply?: ReplyPayload<'file_sync'>): void => done(failure(error, ref), reply?.stat);
        const { home, handle } = ref;
        switch (change.op) {
          case 'size': m.request(home, 'file_set_size', { handle, size: change.size }, t, answered); break;
          case 'allocate': m.request(home, 'file_allocate', { handle, offset: change.offset, len: change.len }, t, answered); break;
          case 'times': m.request(home, 'file_set_times', { handle, ...timesPayload(change) }, t, answered); break;
          case 'sync': m.request(home, 'file_sync', { handle, dataOnly: change.dataOnly }, t, answered); break;
        }
      },
      close: (ref) => {
        this.remotes--;
        // A message even to this kernel (a stream adopted back home): it comes after the writes sent.
        m.send(ref.home, 'file_detach', { handle: ref.handle, holder: this.self, refs: 1 });
      },
    };
  }
}

function count(d: Deputy, holder: EndpointId, refs: number): void {
  d.holders.set(holder, (d.holders.get(holder) ?? 0) + refs);
  d.absent.delete(holder);
}

/** Writes all of `data` at `position` (at the end when `append`; a stream has no position); returns where it ended. */
function writeAll(d: Deputy, position: number, append: boolean, data: Uint8Array): number {
  const at = !d.seekable ? 0 : append ? Number(d.file.stat().size) : offsetArg(position);
  let done = 0;
  while (done < data.length) {
    const n = d.seekable ? d.file.pwrite(data, done, data.length - done, BigInt(at + done)) : d.file.write(data, done, data.length - done);
    if (n <= 0) throw new WasiError(Errno.IO, `wrote ${done} of ${data.length} bytes`);
    done += n;
  }
  return at + done;
}

/** An offset or length from a message: a whole number of bytes a file can have. */
function offsetArg(value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new WasiError(Errno.INVAL, `offset ${value}`);
  return value;
}

/** file_set_times's `how`: 0 leave, 1 now, 2 the value. */
function timeArg(how: number, ns: bigint): TimeSpec {
  if (how === 0) return undefined;
  if (how === 1) return 'now';
  if (how === 2) return ns;
  throw new WasiError(Errno.INVAL, `time ${how}`);
}

function timesPayload(change: Extract<FileChange, { op: 'times' }>): { atim: bigint; mtim: bigint; atimHow: number; mtimHow: number } {
  const how = (t: TimeSpec): number => (t === undefined ? 0 : t === 'now' ? 1 : 2);
  const ns = (t: TimeSpec): bigint => (typeof t === 'bigint' ? t : 0n);
  return { atim: ns(change.atim), mtim: ns(change.mtim), atimHow: how(change.atim), mtimHow: how(change.mtim) };
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // nothing more to do with an fd that will not close
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
