/**
 * Host files as fds that travel. To a kernel of the same node: by a new host fd on the same file
 * (host fds belong to the whole node process, so one kernel may open it and another own it), at
 * the same offset; the two kernels then have separate offsets, as after open() twice rather than
 * after fork(). To a kernel of another node: as remote files. A host fd means nothing in another
 * node's process, so the file stays open here with this kernel's file deputy (file-deputy.ts),
 * and the record names it by (home, handle), with the offset as above. A remote file handed on
 * again keeps its home and handle (the home first counts a reference for the receiver, as for a
 * pipe end); handed back to its home, it is a host file there again.
 */

import * as fs from 'node:fs';
import { describeEndpoint, nodeOf, type EndpointId } from '../msg/address.js';
import { RemoteFile } from '../kernel/remote-file.js';
import { Errno, WasiError } from '../kernel/wasi/errno.js';
import { HostFile, type FileDescription } from '../kernel/wasi/file-description.js';
import { Whence } from '../kernel/wasi/types.js';
import { FdKind, type ExportStep, type FdCarrier, type FdRecord, type RecordBase } from './fd-transfer.js';
import { hostPathOf } from './host-path.js';
import type { FileDeputy } from './file-deputy.js';

const HOST_KINDS: readonly number[] = [FdKind.FILE_READ, FdKind.FILE_WRITE, FdKind.FILE_READ_WRITE];

export class FileCarrier implements FdCarrier {
  readonly kinds = [...HOST_KINDS, FdKind.REMOTE_FILE];

  /** `deputy`: files across nodes; without it host files travel by host fd, right within a node only. */
  constructor(private readonly deputy?: FileDeputy) {}

  carries(d: FileDescription): boolean {
    return d instanceof HostFile || (d instanceof RemoteFile && this.deputy !== undefined);
  }

  describe(d: FileDescription, base: RecordBase, target: EndpointId): { record: FdRecord; steps?: ExportStep[] } {
    const deputy = this.deputy;
    if (d instanceof HostFile) {
      if (deputy === undefined || nodeOf(target) === nodeOf(deputy.self)) return { record: { ...base, kind: fileKind(d), id: d.openHandle(), offset: d.offset } };
      const { handle, state } = deputy.deputize(d, target);
      return { record: { ...base, kind: FdKind.REMOTE_FILE, id: handle, home: deputy.self, offset: d.offset, unread: state } };
    }
    // A remote file: its offset and state once its operations in flight are answered.
    const remote = d as RemoteFile;
    const record = { ...base, kind: FdKind.REMOTE_FILE, id: remote.ref.handle, home: remote.ref.home };
    const retain = (done: (error: Error | null) => void): void =>
      (deputy as FileDeputy).retain(remote, target, (offset, state) => {
        record.offset = offset;
        record.unread = state;
        done(null);
      });
    return { record, steps: [{ run: retain }] };
  }

  adopt(r: FdRecord): FileDescription {
    if (r.kind !== FdKind.REMOTE_FILE) return adoptHostFile(r);
    if (this.deputy === undefined) throw new WasiError(Errno.NOTSUP, `fd ${r.fd} is a file of another node, and this kernel has no file deputy`);
    return this.deputy.adopt(r.home, r.id, r.offset, r.fdflags, r.unread);
  }

  discard(r: FdRecord): void {
    if (r.kind === FdKind.REMOTE_FILE) this.deputy?.discard(r.home, r.id, r.unread);
    else fs.closeSync(r.id);
  }

  /** A checkpoint names a host file by its path now (it may have been renamed) and its offset. */
  capture(d: FileDescription, base: RecordBase, fd: number): FdRecord {
    if (d instanceof RemoteFile) {
      throw new WasiError(Errno.NOTSUP, `fd ${fd} is a file kept open by ${describeEndpoint(d.ref.home)}, on another node: a checkpoint holds files by path, so take it where the file was opened`);
    }
    const file = d as HostFile;
    return { ...base, kind: fileKind(file), path: hostPathOf(fd, file.fd, 'file'), offset: file.offset };
  }
}

const fileKind = (d: HostFile): number => (d.readable && d.writable ? FdKind.FILE_READ_WRITE : d.readable ? FdKind.FILE_READ : FdKind.FILE_WRITE);

/** A host fd made for this kernel (a FILE_* record), at the record's offset. */
function adoptHostFile(r: FdRecord): HostFile {
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
