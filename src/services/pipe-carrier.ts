/**
 * Pipe ends as fds that travel: by (home, pipe, end). The sender first has the home count one
 * more reference for the receiver, so the pipe cannot see its last reader or writer go while the
 * end is in flight, and the reference goes with the receiver's node if that node is lost. A read
 * end takes along what this kernel's proxy received and the process did not read.
 */

import type { EndpointId } from '../msg/address.js';
import { Errno, WasiError } from '../kernel/wasi/errno.js';
import type { FileDescription } from '../kernel/wasi/file-description.js';
import { FdKind, type ExportStep, type FdCarrier, type FdRecord, type RecordBase } from './fd-transfer.js';
import { PIPE_READ, type PipeEndRef, type PipeService } from './pipe.js';

export class PipeCarrier implements FdCarrier {
  readonly kinds = [FdKind.PIPE_READ, FdKind.PIPE_WRITE];

  constructor(private readonly pipes: PipeService) {}

  carries(d: FileDescription): boolean {
    return this.pipes.refOf(d) !== undefined;
  }

  describe(d: FileDescription, base: RecordBase, target: EndpointId): { record: FdRecord; steps: ExportStep[] } {
    const ref = this.pipes.refOf(d) as PipeEndRef;
    const record = { ...base, kind: ref.end === PIPE_READ ? FdKind.PIPE_READ : FdKind.PIPE_WRITE, id: ref.pipe, home: ref.home };
    const steps: ExportStep[] = [];
    if (ref.end === PIPE_READ) {
      steps.push({
        run: (done) => this.pipes.drain(d, (error, unread) => {
          record.unread = unread;
          done(error);
        }),
      });
    }
    steps.push({ run: (done) => this.pipes.retain(ref, target, done), counts: true });
    return { record, steps };
  }

  adopt(r: FdRecord): FileDescription {
    return this.pipes.adopt(refOf(r), r.unread);
  }

  discard(r: FdRecord, holder: EndpointId): void {
    this.pipes.discard(refOf(r), holder, r.unread);
  }

  capture(_d: FileDescription, _base: RecordBase, fd: number): FdRecord {
    throw new WasiError(Errno.NOTSUP, `fd ${fd} is a pipe end: a checkpoint can hold only files and the terminal`);
  }
}

const refOf = (r: FdRecord): PipeEndRef => ({ home: r.home, pipe: r.id, end: r.kind === FdKind.PIPE_READ ? 0 : 1 });
