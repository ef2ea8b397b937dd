/**
 * Directories as fds that travel. Within a node, like host files: by a new host fd on the same
 * directory, opened through the sender's own (HostDirectory.openHandle), so the receiver names
 * the directory the fd named, wherever its path leads now (a directory is never looked up by path
 * again: sandbox.ts). To another node, as remote directories kept at this kernel (dir-deputy.ts),
 * so paths keep resolving in this node's namespace, preopens too (preopensToHandOn). A
 * checkpoint's directories are host paths (checkpoint.ts): those alone are opened by path, when
 * they are restored.
 */

import * as fs from 'node:fs';
import { nodeOf, type EndpointId } from '../msg/address.js';
import { RemoteDirectory } from '../kernel/remote-directory.js';
import { Errno, WasiError } from '../kernel/wasi/errno.js';
import type { FdEntry } from '../kernel/wasi/fd-table.js';
import type { FileDescription } from '../kernel/wasi/file-description.js';
import { HostDirectory } from '../kernel/wasi/host-directory.js';
import type { ExportStep, FdCarrier, FdKind, FdRecord, RecordBase } from './fd-transfer.js';
import { hostPathOf } from './host-path.js';
import type { DirDeputy } from './dir-deputy.js';

export class DirCarrier implements FdCarrier {
  readonly kinds: FdKind[] = ['directory_handle', 'remote_directory', 'directory_path'];

  /** `deputy`: directories across nodes; without it they travel by host fd, as files do (right within a node only). */
  constructor(private readonly deputy?: DirDeputy) {}

  carries(d: FileDescription): boolean {
    return d instanceof HostDirectory || (d instanceof RemoteDirectory && this.deputy !== undefined);
  }

  describe(d: FileDescription, base: RecordBase, target: EndpointId, entry: FdEntry): { record: FdRecord; steps?: ExportStep[] } {
    const deputy = this.deputy;
    const preopen = entry.preopenName ?? '';
    if (d instanceof HostDirectory) {
      if (deputy === undefined || nodeOf(target) === nodeOf(deputy.self)) return { record: { ...base, desc: { kind: 'directory_handle', hostFd: d.openHandle(), path: d.hostPath } } };
      return { record: { ...base, desc: { kind: 'remote_directory', home: deputy.self, handle: deputy.deputize(d), preopen } } };
    }
    // A remote directory handed on: its home counts the reference first (a record not counted is not given back).
    const { ref } = d as RemoteDirectory;
    const retain = (done: (error: Error | null) => void): void => (deputy as DirDeputy).retain(ref, done);
    return { record: { ...base, desc: { kind: 'remote_directory', home: ref.home, handle: ref.handle, preopen } }, steps: [{ run: retain, counts: true }] };
  }

  adopt(r: FdRecord): FileDescription {
    const desc = r.desc;
    switch (desc.kind) {
      case 'directory_handle':
        return new HostDirectory(desc.path, desc.hostFd);
      case 'directory_path':
        // Only a checkpoint names a directory by path: opened by it now, once, and held from then
        // on. The path is the directory's at the capture; it is trusted as the checkpoint file is.
        return HostDirectory.openPath(desc.path);
      case 'remote_directory':
        if (this.deputy === undefined) throw new WasiError(Errno.NOTSUP, `fd ${r.fd} is a directory of another node, and this kernel has no directory deputy`);
        return this.deputy.adopt(desc.home, desc.handle);
      default:
        throw new WasiError(Errno.INVAL, `fd ${r.fd}: not a directory`);
    }
  }

  discard(r: FdRecord): void {
    const desc = r.desc;
    if (desc.kind === 'directory_handle') fs.closeSync(desc.hostFd);
    else if (desc.kind === 'remote_directory') this.deputy?.discard(desc.home, desc.handle);
  }

  preopenOf(r: FdRecord): string | undefined {
    return r.desc.kind === 'remote_directory' && r.desc.preopen !== '' ? r.desc.preopen : undefined;
  }

  /** A checkpoint names a directory by where it is now (it may have been renamed since it was opened). */
  capture(d: FileDescription, base: RecordBase): FdRecord {
    const fd = base.fd;
    if (!(d instanceof HostDirectory)) throw new WasiError(Errno.NOTSUP, `fd ${fd} is a directory of another node: a checkpoint holds directories by path, so take it where the directory is`);
    const held = d.handle;
    return { ...base, desc: { kind: 'directory_path', path: held === undefined ? d.hostPath : hostPathOf(fd, held, 'directory') } };
  }
}
