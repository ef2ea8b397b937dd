/**
 * The directory deputy: directories of processes that moved to another node. Paths a process
 * opens must resolve in the namespace of the node it was started on (MOSIX: its home node), not
 * in the filesystem of whatever node it runs on now. So when a directory fd — a preopen, or one
 * it opened — goes to a kernel of another node, the kernel that had it keeps it here, as its
 * home, and the process gets a RemoteDirectory (src/kernel/remote-directory.ts) whose path calls
 * are dir_call requests this home runs with the same code as local calls (path-ops.ts). A file
 * opened that way stays here too: it goes back as a remote file (the file deputy).
 *
 * What is kept is a description of its own (HostDirectory.reopen): for a directory the process
 * opened, a host fd on that directory, so the home's path calls start from the directory the
 * process's fd named, never from a path the host could have redirected since (a preopen is kept
 * by its path, as everywhere). It is closed when its last reference goes.
 *
 * References are counted as for deputy files: one per description anywhere; dir_attach before
 * a holder hands one on, dir_detach when a description closes; the last one drops the entry.
 * Bad input: an unknown handle is EBADF; a path call's failure goes back as its errno.
 */

import type { Kernel } from '../kernel/kernel.js';
import type { Envelope } from '../msg/messenger.js';
import type { EndpointId } from '../msg/address.js';
import type { Payload } from '../protocol.js';
import { RemoteDirectory, type DirAnswer, type DirCall, type RemoteDirectoryLinks, type RemoteDirectoryRef } from '../kernel/remote-directory.js';
import { Errno, WasiError, errnoName } from '../kernel/wasi/errno.js';
import { asWasiError } from './remote-error.js';
import { HostFile, type FileDescription } from '../kernel/wasi/file-description.js';
import { HostDirectory } from '../kernel/wasi/host-directory.js';
import {
  createDirectoryIn, linkIn, openIn, readlinkIn, removeDirectoryIn, renameIn, setTimesIn, statIn, symlinkIn, unlinkFileIn,
} from '../kernel/wasi/path-ops.js';
import { exportFds, importFds, type FdCarriers } from './fd-transfer.js';

/** A path call at a home that cannot be reached fails as a file system's whose server is gone. */
const HOME_CALL = { fallback: Errno.IO, unreachable: Errno.IO };

/** A path call may wait for the home's disk, and opening a file there for its deputy. */
const REQUEST_TIMEOUT_MS = 60_000;

interface Kept {
  /** Owned here: closed with the entry. */
  dir: HostDirectory;
  refs: number;
}

export class DirDeputy {
  private readonly kept = new Map<number, Kept>();
  private readonly byDir = new WeakMap<HostDirectory, number>();
  private nextHandle = 1;
  /** RemoteDirectory descriptions open here. */
  private remotes = 0;
  private readonly links: RemoteDirectoryLinks;

  constructor(private readonly kernel: Kernel, private readonly transfer: FdCarriers) {
    this.links = { call: (ref, call, done) => this.call(ref, call, done), release: (ref) => this.release(ref) };
    const m = kernel.messenger;
    m.on('dir_attach', (msg, from) => {
      const kept = this.kept.get(msg.handle);
      if (kept === undefined) m.fail(from, 'EBADF', `no deputy directory ${msg.handle} here`);
      else {
        kept.refs++;
        m.reply(from, 'dir_attach', { handle: msg.handle });
      }
    });
    m.on('dir_detach', (msg) => this.detach(msg.handle, msg.refs));
    m.on('dir_call', (msg, from) => this.serve(msg, from));
  }

  get self(): EndpointId {
    return this.kernel.id;
  }

  /** Directories kept here for other kernels, plus remote directories open here. */
  get size(): number {
    return this.kept.size + this.remotes;
  }

  // ---- giving directories away ----

  /**
   * Keep `dir` here for a kernel of another node, counting one reference: its handle. What is
   * kept is a copy of it (the caller's description stays the caller's to close).
   */
  deputize(dir: HostDirectory): number {
    let handle = this.byDir.get(dir);
    if (handle === undefined || !this.kept.has(handle)) {
      handle = this.nextHandle++;
      this.kept.set(handle, { dir: dir.reopen(), refs: 0 });
      this.byDir.set(dir, handle);
    }
    (this.kept.get(handle) as Kept).refs++;
    return handle;
  }

  /** A remote directory is handed on: its home counts one more reference first. */
  retain(ref: RemoteDirectoryRef, done: (error: Error | null) => void): void {
    if (ref.home === this.self) {
      const kept = this.kept.get(ref.handle);
      if (kept !== undefined) kept.refs++;
      done(kept === undefined ? new WasiError(Errno.BADF, `no deputy directory ${ref.handle} here`) : null);
      return;
    }
    this.kernel.messenger.request(ref.home, 'dir_attach', { handle: ref.handle }, REQUEST_TIMEOUT_MS, (error) => done(error));
  }

  /** The description for a record: the directory itself again at its home, else a remote one. */
  adopt(home: EndpointId, handle: number): FileDescription {
    if (home === this.self) {
      const kept = this.kept.get(handle);
      if (kept === undefined) throw new WasiError(Errno.BADF, `no deputy directory ${handle} here`);
      // The same directory, through the kept one's handle (not its path, which may lead elsewhere now).
      const dir = kept.dir.reopen();
      this.detach(handle, 1);
      return dir;
    }
    this.remotes++;
    return new RemoteDirectory({ home, handle }, this.links);
  }

  /** A record that will not be used: give its reference back. */
  discard(home: EndpointId, handle: number): void {
    if (home === this.self) this.detach(handle, 1);
    else this.kernel.messenger.send(home, 'dir_detach', { handle, refs: 1 });
  }

  private release(ref: RemoteDirectoryRef): void {
    this.remotes--;
    this.kernel.messenger.send(ref.home, 'dir_detach', { handle: ref.handle, refs: 1 });
  }

  private detach(handle: number, refs: number): void {
    const kept = this.kept.get(handle);
    if (kept === undefined) return;
    kept.refs -= refs;
    if (kept.refs > 0) return;
    this.kept.delete(handle);
    kept.dir.close();
  }

  // ---- path calls: asked here, answered at the home ----

  private call(ref: RemoteDirectoryRef, call: DirCall, done: (error: WasiError | null, answer?: DirAnswer) => void): void {
    this.kernel.messenger.request(ref.home, 'dir_call', { handle: ref.handle, call }, REQUEST_TIMEOUT_MS, (error, reply) => {
      if (error !== null || reply === undefined) {
        done(asWasiError(error ?? new Error('no answer'), HOME_CALL));
        return;
      }
      try {
        const opened = importFds(this.transfer, reply.fds)[0]?.entry.description;
        done(null, { description: opened, stat: reply.stat[0], entries: reply.entries, target: reply.target });
      } catch (failure) {
        done(asWasiError(failure, HOME_CALL));
      }
    });
  }

  /** At the home: run a path call in this node's namespace. */
  private serve(msg: Payload<'dir_call'>, from: Envelope): void {
    const m = this.kernel.messenger;
    const empty = { fds: [], stat: [], entries: [], target: new Uint8Array(0) };
    try {
      const dir = this.dirOf(msg.handle);
      const call = msg.call;
      switch (call.op) {
        case 'open':
          this.open(dir, call, from);
          return;
        case 'stat':
          m.reply(from, 'dir_call', { ...empty, stat: [statIn(dir, call.path, call.follow)] });
          return;
        case 'mkdir':
          createDirectoryIn(dir, call.path);
          break;
        case 'rmdir':
          removeDirectoryIn(dir, call.path);
          break;
        case 'unlink':
          unlinkFileIn(dir, call.path);
          break;
        case 'rename':
          renameIn(dir, call.path, this.dirOf(call.to), call.path2);
          break;
        case 'link':
          linkIn(dir, call.path, call.follow, this.dirOf(call.to), call.path2);
          break;
        case 'symlink':
          symlinkIn(dir, call.target, call.path);
          break;
        case 'readlink':
          m.reply(from, 'dir_call', { ...empty, target: readlinkIn(dir, call.path) });
          return;
        case 'times':
          setTimesIn(dir, call.path, call.follow, call.atim, call.mtim, call.fst);
          break;
        case 'list':
          m.reply(from, 'dir_call', { ...empty, entries: dir.readdir() });
          return;
      }
      m.reply(from, 'dir_call', empty);
    } catch (error) {
      const wasi = asWasiError(error, { fallback: Errno.IO });
      m.fail(from, errnoName(wasi.errno), wasi.message);
    }
  }

  /** Open at the home, and send the new description back as a record (a remote file or directory). */
  private open(dir: HostDirectory, call: Extract<DirCall, { op: 'open' }>, from: Envelope): void {
    const m = this.kernel.messenger;
    const description = openIn(dir, call.path, call.dirflags, call.oflags, call.rights, call.fdflags);
    const entry = { description, rightsBase: call.rights, rightsInheriting: call.inheriting };
    exportFds(this.transfer, [{ fd: 0, entry }], from.src, (error, records) => {
      // A file went to the file deputy, a directory to the directory deputy: each keeps its own copy.
      if (description instanceof HostFile || description instanceof HostDirectory) description.close();
      if (error !== null) {
        const wasi = asWasiError(error, { fallback: Errno.IO });
        m.fail(from, errnoName(wasi.errno), wasi.message);
      } else m.reply(from, 'dir_call', { fds: records, stat: [], entries: [], target: new Uint8Array(0) });
    });
  }

  private dirOf(handle: number): HostDirectory {
    const kept = this.kept.get(handle);
    if (kept === undefined) throw new WasiError(Errno.BADF, `no deputy directory ${handle} here`);
    return kept.dir;
  }
}
