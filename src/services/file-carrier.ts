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
import type { DescriptorOf, ExportStep, FdCarrier, FdKind, FdRecord, RecordBase } from './fd-transfer.js';
import { hostPathOf } from './host-path.js';
import type { FileDeputy } from './file-deputy.js';

export class FileCarrier implements FdCarrier {
  readonly kinds: FdKind[] = ['host_file', 'remote_file', 'file_path'];

  /** `deputy`: files across nodes; without it host files travel by host fd, right within a node only. */
  constructor(private readonly deputy?: FileDeputy) {}

  carries(d: FileDescription): boolean {
    return d instanceof HostFile || (d instanceof RemoteFile && this.deputy !== undefined);
  }

  describe(d: FileDescription, base: RecordBase, target: EndpointId): { record: FdRecord; steps?: ExportStep[] } {
    const deputy = this.deputy;
    if (d instanceof HostFile) {
      if (deputy === undefined || nodeOf(target) === nodeOf(deputy.self)) {
        return { record: { ...base, desc: { kind: 'host_file', hostFd: d.openHandle(), readable: d.readable, writable: d.writable, offset: d.offset } } };
      }
      const { handle, state } = deputy.deputize(d, target);
      return { record: { ...base, desc: { kind: 'remote_file', home: deputy.self, handle, offset: d.offset, state } } };
    }
    // A remote file: its offset and state once its operations in flight are answered.
    const remote = d as RemoteFile;
    const desc: DescriptorOf<'remote_file'> = { kind: 'remote_file', home: remote.ref.home, handle: remote.ref.handle, offset: 0, state: EMPTY_STATE };
    const retain = (done: (error: Error | null) => void): void =>
      (deputy as FileDeputy).retain(remote, target, (offset, state) => {
        desc.offset = offset;
        desc.state = state;
        done(null);
      });
    return { record: { ...base, desc }, steps: [{ run: retain }] };
  }

  adopt(r: FdRecord): FileDescription {
    const desc = r.desc;
    switch (desc.kind) {
      case 'host_file':
        return adoptHostFile(desc.hostFd, desc, r.fdflags);
      case 'remote_file':
        if (this.deputy === undefined) throw new WasiError(Errno.NOTSUP, `fd ${r.fd} is a file of another node, and this kernel has no file deputy`);
        return this.deputy.adopt(desc.home, desc.handle, desc.offset, r.fdflags, desc.state);
      default:
        // A checkpoint's file_path is opened by the node (checkpoint-file.ts) into a host_file.
        throw new WasiError(Errno.INVAL, `fd ${r.fd}: a ${desc.kind} record must be opened by the node first`);
    }
  }

  discard(r: FdRecord): void {
    const desc = r.desc;
    if (desc.kind === 'remote_file') this.deputy?.discard(desc.home, desc.handle, desc.state.holder);
    else if (desc.kind === 'host_file') fs.closeSync(desc.hostFd);
  }

  /** A checkpoint names a host file by its path now (it may have been renamed) and its offset. */
  capture(d: FileDescription, base: RecordBase): FdRecord {
    const fd = base.fd;
    if (d instanceof RemoteFile) {
      throw new WasiError(Errno.NOTSUP, `fd ${fd} is a file kept open by ${describeEndpoint(d.ref.home)}, on another node: a checkpoint holds files by path, so take it where the file was opened`);
    }
    const file = d as HostFile;
    return { ...base, desc: { kind: 'file_path', path: hostPathOf(fd, file.fd, 'file'), readable: file.readable, writable: file.writable, offset: file.offset } };
  }
}

/** A remote file's state before its home answered (replaced before the record is sent). */
const EMPTY_STATE: DescriptorOf<'remote_file'>['state'] = {
  holder: 0, readable: false, writable: false, error: 0, unread: new Uint8Array(0),
  stat: { dev: 0n, ino: 0n, filetype: 0, nlink: 0n, size: 0n, atim: 0n, mtim: 0n, ctim: 0n },
};

/** A host fd made for this kernel, at the record's offset. */
function adoptHostFile(hostFd: number, access: { readable: boolean; writable: boolean; offset: number }, fdflags: number): HostFile {
  let file: HostFile;
  try {
    file = new HostFile(hostFd, access.readable, access.writable, fdflags);
  } catch (error) {
    fs.closeSync(hostFd);
    throw error;
  }
  if (access.offset > 0) file.seek(BigInt(access.offset), Whence.SET);
  return file;
}
