/**
 * Giving fds to a process on another kernel. Kernels share nothing, so an open file description
 * cannot be handed over; each kind travels as what names it system-wide, and the receiving kernel
 * builds its own description on it:
 *   - host streams (the terminal, a run session's stdio) by stream id: the host serves any kernel.
 *     The host first hears of the handoff when it still owes this kernel input or has writes
 *     of it to take, and the input received here and not read goes along;
 *   - pipe ends by (home, pipe, end): the sender first has the home count one more reference for
 *     the receiver, so the pipe cannot see its last reader or writer go while the end is in
 *     flight, and the reference goes with the receiver's node if that node is lost;
 *   - host files, to a kernel of the same node, by a new host fd on the same file (host fds
 *     belong to the whole node process, so one kernel may open it and another own it), at the
 *     same offset. The two kernels then have separate offsets, as after open() twice rather
 *     than after fork();
 *   - host files, to a kernel of another node, as remote files: a host fd means nothing in
 *     another node's process, so the file stays open here, with this kernel's file deputy
 *     (file-deputy.ts), and the record names it by (home, handle). The offset is carried as
 *     above. A remote file handed on again keeps its home and handle (the home first counts a
 *     reference for the receiver, as for a pipe end); handed back to its home, it is a host
 *     file there again;
 *   - directories, within a node, like host files: by a new host fd on the same directory,
 *     opened through the sender's own (HostDirectory.openHandle), so the receiver names the
 *     directory the fd named, wherever its path leads now (a directory is never looked up by path
 *     again: sandbox.ts); to another node as remote directories kept at this kernel
 *     (dir-deputy.ts), so paths keep resolving in this node's namespace — preopens too
 *     (preopensToHandOn). A checkpoint's directories are host paths (checkpoint.ts): those
 *     alone are opened by path, when they are restored.
 * Anything else (a kernel-local buffer) cannot travel: ENOTSUP.
 */

import * as fs from 'node:fs';
import { nodeOf, type EndpointId } from '../msg/address.js';
import { HostInput, HostOutput, type HostStreamChannels } from '../kernel/host-stream.js';
import { Errno, WasiError, host } from '../kernel/wasi/errno.js';
import type { FdEntry } from '../kernel/wasi/fd-table.js';
import type { Process } from '../kernel/process.js';
import { RemoteFile } from '../kernel/remote-file.js';
import { RemoteDirectory } from '../kernel/remote-directory.js';
import { HostDirectory, HostFile, type FileDescription } from '../kernel/wasi/file-description.js';
import { STREAM_RIGHTS, Whence } from '../kernel/wasi/types.js';
import type { Payload } from '../protocol.js';
import { PIPE_READ, type PipeService } from './pipe.js';
import type { RemoteDirectoryRef } from '../kernel/remote-directory.js';

export type FdRecord = Payload<'proc_start'>['fds'][number];

const NOTHING = new Uint8Array(0);

/** The `kind` of an FdRecord. */
export const FdKind = {
  HOST_INPUT: 1, HOST_OUTPUT: 2, PIPE_READ: 3, PIPE_WRITE: 4, FILE_READ: 5, FILE_WRITE: 6, FILE_READ_WRITE: 7, DIRECTORY: 8,
  /** A file kept open by kernel `home` (its deputy `id`); `unread` holds a REMOTE_FILE_STATE. */
  REMOTE_FILE: 9,
  /** A directory kept open by kernel `home` (its directory deputy `id`); `path`: the preopen name, if it is one. */
  REMOTE_DIRECTORY: 10,
  /**
   * A directory of this node by a host fd on it (`id`), owned by the receiver; `path` is where it
   * was opened (for messages only). DIRECTORY (by host path) is a checkpoint's.
   */
  DIRECTORY_HANDLE: 11,
} as const;

/**
 * What carries files across nodes (file-deputy.ts): a file stays open on its home kernel, which
 * serves it to the remote holders it deputized it for.
 */
export interface FileCarrier {
  readonly self: EndpointId;
  /** Keep `file` open here for `holder`: its handle, and the state a remote file starts from. */
  deputize(file: HostFile, holder: EndpointId): { handle: number; state: Uint8Array };
  /** A remote file goes on to `holder`: its home is told first; `done` with its offset and state. */
  retain(d: RemoteFile, holder: EndpointId, done: (offset: number, state: Uint8Array) => void): void;
  /** The description of a file another kernel keeps (a REMOTE_FILE record). */
  adopt(home: EndpointId, handle: number, offset: number, fdflags: number, encoded: Uint8Array): FileDescription;
  /** A REMOTE_FILE record that will never be adopted: its home lets go. */
  discard(home: EndpointId, handle: number, encoded: Uint8Array): void;
}

/** What carries directories across nodes (dir-deputy.ts), as FileCarrier does files. */
export interface DirCarrier {
  readonly self: EndpointId;
  deputize(dir: HostDirectory): number;
  retain(ref: RemoteDirectoryRef, done: (error: Error | null) => void): void;
  adopt(r: FdRecord): FileDescription;
  discard(r: FdRecord): void;
}

export interface TransferServices {
  channels: HostStreamChannels;
  pipes: PipeService;
  /** Files across nodes. Without it host files travel by host fd, which is right within a node only. */
  files?: FileCarrier;
  /** Directories across nodes. Without it they travel by host fd, as files do (right within a node only). */
  dirs?: DirCarrier;
}

/** Fds 0, 1, 2 on the streams `ids` (stdin, stdout, stderr) of host `home`: how a node starts a process. */
export function hostStreamRecords(home: EndpointId, ids: number[]): FdRecord[] {
  return ids.map((id, fd) => ({
    fd, kind: fd === 0 ? FdKind.HOST_INPUT : FdKind.HOST_OUTPUT, id, home, path: '', rights: STREAM_RIGHTS, inheriting: 0, fdflags: 0, offset: 0, unread: NOTHING,
  }));
}

/**
 * Describe fds for kernel `target`. `done` gets the records once every pipe end's and remote
 * file's home has counted the new reference, or the first error (what was already prepared is
 * then given back).
 */
export function exportFds(
  services: TransferServices,
  fds: { fd: number; entry: FdEntry }[],
  target: EndpointId,
  done: (error: Error | null, records: FdRecord[]) => void,
): void {
  const records: FdRecord[] = [];
  /** Pipe records whose home has not counted them: not to be given back on failure. */
  const uncounted = new Set<FdRecord>();
  let waiting = 1;
  let failed: Error | null = null;
  const settle = (error: Error | null): void => {
    failed ??= error;
    if (--waiting > 0) return;
    if (failed !== null) discardRecords(services, records.filter((r) => !uncounted.has(r)), target);
    done(failed, failed === null ? records : []);
  };
  try {
    for (const { fd, entry } of fds) {
      const record = exportOne(fd, entry, services, target);
      records.push(record);
      const d = entry.description;
      if (d instanceof RemoteFile) {
        waiting++;
        (services.files as FileCarrier).retain(d, target, (offset, state) => {
          record.offset = offset;
          record.unread = state;
          settle(null);
        });
        continue;
      }
      if (d instanceof HostInput || d instanceof HostOutput) {
        waiting++;
        d.handOff((error, unread) => {
          record.unread = unread;
          settle(error);
        });
        continue;
      }
      if (d instanceof RemoteDirectory) {
        // Its home counts the reference first (a record not counted is not given back).
        waiting++;
        uncounted.add(record);
        (services.dirs as DirCarrier).retain(d.ref, (error) => {
          if (error === null) uncounted.delete(record);
          settle(error);
        });
        continue;
      }
      if (record.kind !== FdKind.PIPE_READ && record.kind !== FdKind.PIPE_WRITE) continue;
      if (record.kind === FdKind.PIPE_READ) {
        waiting++;
        services.pipes.drain(entry.description, (error, unread) => {
          record.unread = unread;
          settle(error);
        });
      }
      waiting++;
      uncounted.add(record);
      services.pipes.retain(pipeRef(record), target, (error: Error | null) => {
        if (error === null) uncounted.delete(record);
        settle(error);
      });
    }
  } catch (error) {
    failed = error instanceof Error ? error : new Error(String(error));
  }
  settle(null);
}

function exportOne(fd: number, entry: FdEntry, services: TransferServices, target: EndpointId): FdRecord {
  const d = entry.description;
  const base = { fd, id: 0, home: 0, path: '', rights: entry.rightsBase, inheriting: entry.rightsInheriting, fdflags: d.fdflags, offset: 0, unread: NOTHING };
  if (d instanceof HostInput) return { ...base, kind: FdKind.HOST_INPUT, id: d.stream, home: d.home };
  if (d instanceof HostOutput) return { ...base, kind: FdKind.HOST_OUTPUT, id: d.stream, home: d.home };
  const dirs = services.dirs;
  if (d instanceof HostDirectory) {
    if (dirs === undefined || nodeOf(target) === nodeOf(dirs.self)) return { ...base, kind: FdKind.DIRECTORY_HANDLE, id: d.openHandle(), path: d.hostPath };
    return { ...base, kind: FdKind.REMOTE_DIRECTORY, id: dirs.deputize(d), home: dirs.self, path: entry.preopenName ?? '' };
  }
  if (d instanceof RemoteDirectory && dirs !== undefined) {
    return { ...base, kind: FdKind.REMOTE_DIRECTORY, id: d.ref.handle, home: d.ref.home, path: entry.preopenName ?? '' };
  }
  const files = services.files;
  if (d instanceof HostFile) {
    if (files === undefined || nodeOf(target) === nodeOf(files.self)) return { ...base, kind: fileKind(d), id: reopen(d), offset: offsetOf(d) };
    const { handle, state } = files.deputize(d, target);
    return { ...base, kind: FdKind.REMOTE_FILE, id: handle, home: files.self, offset: offsetOf(d), unread: state };
  }
  // Offset and state once its operations in flight are answered (exportFds).
  if (d instanceof RemoteFile && files !== undefined) return { ...base, kind: FdKind.REMOTE_FILE, id: d.ref.handle, home: d.ref.home };
  const ref = services.pipes.refOf(d);
  if (ref !== undefined) return { ...base, kind: ref.end === PIPE_READ ? FdKind.PIPE_READ : FdKind.PIPE_WRITE, id: ref.pipe, home: ref.home };
  throw new WasiError(Errno.NOTSUP, `fd ${fd} cannot be given to a process on another kernel`);
}

export const fileKind = (d: HostFile): number => (d.readable && d.writable ? FdKind.FILE_READ_WRITE : d.readable ? FdKind.FILE_READ : FdKind.FILE_WRITE);

/** A second host fd on the same open file (Linux's /proc/self/fd), owned by the receiver. */
export function reopen(d: HostFile): number {
  const C = fs.constants;
  const access = d.readable && d.writable ? C.O_RDWR : d.readable ? C.O_RDONLY : C.O_WRONLY;
  return host('open', () => fs.openSync(`/proc/self/fd/${d.fd}`, access));
}

/** The offset of a host file (0 for one that has none: a FIFO, a device). */
export function offsetOf(d: HostFile): number {
  try {
    return Number(d.seek(0n, Whence.CUR));
  } catch {
    return 0; // not seekable: a FIFO or device has no offset to carry
  }
}

const pipeRef = (r: FdRecord): { home: number; pipe: number; end: 0 | 1 } => ({ home: r.home, pipe: r.id, end: r.kind === FdKind.PIPE_READ ? 0 : 1 });

/**
 * Build this kernel's fd entries from records. Every record is consumed, even after an error, so
 * no pipe reference or host fd is left behind; on error the entries built are closed too.
 */
export function importFds(services: TransferServices, records: FdRecord[]): { fd: number; entry: FdEntry }[] {
  const out: { fd: number; entry: FdEntry }[] = [];
  let failure: unknown;
  for (const r of records) {
    try {
      const description = importOne(services, r);
      description.fdflags = r.fdflags;
      const preopen = r.kind === FdKind.REMOTE_DIRECTORY && r.path !== '' ? { preopenName: r.path } : {};
      out.push({ fd: r.fd, entry: { description, rightsBase: r.rights, rightsInheriting: r.inheriting, ...preopen } });
    } catch (error) {
      failure ??= error;
    }
  }
  if (failure === undefined) return out;
  for (const { entry } of out) entry.description.close();
  throw failure;
}

function importOne(services: TransferServices, r: FdRecord): FileDescription {
  switch (r.kind) {
    case FdKind.HOST_INPUT: {
      const channel = services.channels.acquire(r.home, r.id);
      channel.preload(r.unread);
      return new HostInput(channel);
    }
    case FdKind.HOST_OUTPUT:
      return new HostOutput(services.channels.acquire(r.home, r.id));
    case FdKind.PIPE_READ:
    case FdKind.PIPE_WRITE:
      return services.pipes.adopt(pipeRef(r), r.unread);
    case FdKind.DIRECTORY_HANDLE:
      return new HostDirectory(r.path, r.id);
    case FdKind.DIRECTORY:
      // Only a checkpoint names a directory by path: opened by it now, once, and held from then
      // on. The path is the directory's at the capture; it is trusted as the checkpoint file is.
      return HostDirectory.openPath(r.path);
    case FdKind.FILE_READ:
    case FdKind.FILE_WRITE:
    case FdKind.FILE_READ_WRITE:
      return adoptFile(r);
    case FdKind.REMOTE_FILE:
      if (services.files === undefined) throw new WasiError(Errno.NOTSUP, `fd ${r.fd} is a file of another node, and this kernel has no file deputy`);
      return services.files.adopt(r.home, r.id, r.offset, r.fdflags, r.unread);
    case FdKind.REMOTE_DIRECTORY:
      if (services.dirs === undefined) throw new WasiError(Errno.NOTSUP, `fd ${r.fd} is a directory of another node, and this kernel has no directory deputy`);
      return services.dirs.adopt(r);
    default:
      throw new WasiError(Errno.INVAL, `fd ${r.fd}: unknown kind ${r.kind}`);
  }
}

function adoptFile(r: FdRecord): HostFile {
  let file: HostFile;
  try {
    file = new HostFile(r.id, r.kind !== FdKind.FILE_WRITE, r.kind !== FdKind.FILE_READ, r.fdflags);
  } catch (error) {
    fs.closeSync(r.id);
    throw error;
  }
  if (r.offset > 0) file.seek(BigInt(r.offset), Whence.SET);
  return file;
}

/**
 * Records that will not be used: give back what exporting took (pipe and remote file references,
 * host fds, the input of a host stream where its channel still is: at the kernel that exported).
 * `holder`: the kernel they were made for (pipe references were counted for it); by default the
 * kernel this runs on, which refuses records it was sent.
 */
export function discardRecords(services: TransferServices, records: FdRecord[], holder?: EndpointId): void {
  for (const r of records) {
    if (r.kind === FdKind.HOST_INPUT) services.channels.get(r.home, r.id)?.preload(r.unread);
    else if (r.kind === FdKind.PIPE_READ || r.kind === FdKind.PIPE_WRITE) services.pipes.discard(pipeRef(r), holder ?? services.pipes.self, r.unread);
    else if ((r.kind >= FdKind.FILE_READ && r.kind <= FdKind.FILE_READ_WRITE) || r.kind === FdKind.DIRECTORY_HANDLE) fs.closeSync(r.id);
    else if (r.kind === FdKind.REMOTE_FILE) services.files?.discard(r.home, r.id, r.unread);
    else if (r.kind === FdKind.REMOTE_DIRECTORY) services.dirs?.discard(r);
  }
}

/**
 * The preopens a child or a moving process takes along as fds, to kernel `target`: none when it
 * can make them again from its dirs (within the node they are on), all of them when they must
 * stay where they are (another node, or they are already another node's: dir-deputy.ts).
 */
export function preopensToHandOn(p: Process, target: EndpointId, self: EndpointId): { fd: number; entry: FdEntry }[] {
  const preopens = p.context.fds.fds().map((fd) => ({ fd, entry: p.context.fds.get(fd) })).filter((f) => f.entry.preopenName !== undefined);
  const elsewhere = preopens.some((f) => f.entry.description instanceof RemoteDirectory);
  return elsewhere || nodeOf(target) !== nodeOf(self) ? preopens : [];
}
