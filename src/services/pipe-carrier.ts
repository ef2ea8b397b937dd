/**
 * Pipe ends as fds that travel: by (home, pipe, end). The sender first has the home count one
 * more reference for the receiver, so the pipe cannot see its last reader or writer go while the
 * end is in flight, and the reference goes with the receiver's node if that node is lost. A read
 * end takes along what this kernel's proxy received and the process did not read.
 */

import type { EndpointId } from '../msg/address.js';
import { Errno, WasiError } from '../kernel/wasi/errno.js';
import type { FileDescription } from '../kernel/wasi/file-description.js';
import type { ExportStep, FdCarrier, FdKind, FdRecord, RecordBase } from './fd-transfer.js';
import { PIPE_READ, PIPE_WRITE, type PipeEndRef, type PipeService } from './pipe.js';

export class PipeCarrier implements FdCarrier {
  readonly kinds: FdKind[] = ['pipe_read', 'pipe_write'];

  constructor(private readonly pipes: PipeService) {}

  carries(d: FileDescription): boolean {
    return this.pipes.refOf(d) !== undefined;
  }

  describe(d: FileDescription, base: RecordBase, target: EndpointId): { record: FdRecord; steps: ExportStep[] } {
    const ref = this.pipes.refOf(d) as PipeEndRef;
    const retain: ExportStep = { run: (done) => this.pipes.retain(ref, target, done), counts: true };
    if (ref.end === PIPE_WRITE) return { record: { ...base, desc: { kind: 'pipe_write', home: ref.home, pipe: ref.pipe } }, steps: [retain] };
    const desc = { kind: 'pipe_read' as const, home: ref.home, pipe: ref.pipe, unread: new Uint8Array(0) as Uint8Array };
    const drain: ExportStep = {
      run: (done) => this.pipes.drain(d, (error, unread) => {
        desc.unread = unread;
        done(error);
      }),
    };
    return { record: { ...base, desc }, steps: [drain, retain] };
  }

  adopt(r: FdRecord): FileDescription {
    return this.pipes.adopt(refOf(r), r.desc.kind === 'pipe_read' ? r.desc.unread : undefined);
  }

  discard(r: FdRecord, holder: EndpointId): void {
    this.pipes.discard(refOf(r), holder, r.desc.kind === 'pipe_read' ? r.desc.unread : undefined);
  }

  capture(_d: FileDescription, base: RecordBase): FdRecord {
    const fd = base.fd;
    throw new WasiError(Errno.NOTSUP, `fd ${fd} is a pipe end: a checkpoint can hold only files and the terminal`);
  }
}

function refOf(r: FdRecord): PipeEndRef {
  const desc = r.desc;
  if (desc.kind !== 'pipe_read' && desc.kind !== 'pipe_write') throw new WasiError(Errno.INVAL, `fd ${r.fd}: not a pipe end`);
  return { home: desc.home, pipe: desc.pipe, end: desc.kind === 'pipe_read' ? PIPE_READ : PIPE_WRITE };
}
