/**
 * Host streams (the terminal, a run session's stdio) as fds that travel: by (host, stream id),
 * since the host serves any kernel. The host first hears of the handoff when it still owes this
 * kernel input or has writes of it to take, and the input received here and not read goes along.
 */

import type { EndpointId } from '../msg/address.js';
import { HostInput, HostOutput, type HostStreamChannels } from '../kernel/host-stream.js';
import { Errno, WasiError } from '../kernel/wasi/errno.js';
import type { FdTable } from '../kernel/wasi/fd-table.js';
import type { FileDescription } from '../kernel/wasi/file-description.js';
import type { ExportStep, FdCarrier, FdKind, FdRecord, RecordBase } from './fd-transfer.js';

const NOTHING: Uint8Array = new Uint8Array(0);

export class StreamCarrier implements FdCarrier {
  readonly kinds: FdKind[] = ['host_input', 'host_output'];

  constructor(private readonly channels: HostStreamChannels) {}

  carries(d: FileDescription): boolean {
    return d instanceof HostInput || d instanceof HostOutput;
  }

  describe(d: FileDescription, base: RecordBase): { record: FdRecord; steps: ExportStep[] } {
    const end = d as HostInput | HostOutput;
    const desc = end instanceof HostInput
      ? { kind: 'host_input' as const, host: end.home, stream: end.stream, unread: NOTHING }
      : { kind: 'host_output' as const, host: end.home, stream: end.stream };
    const handOff = (done: (error: Error | null) => void): void =>
      end.handOff((error, unread) => {
        if (desc.kind === 'host_input') desc.unread = unread;
        done(error);
      });
    return { record: { ...base, desc }, steps: [{ run: handOff }] };
  }

  adopt(r: FdRecord): FileDescription {
    const desc = r.desc;
    if (desc.kind === 'host_output') return new HostOutput(this.channels.acquire(desc.host, desc.stream));
    if (desc.kind !== 'host_input') throw new WasiError(Errno.INVAL, `fd ${r.fd}: not a host stream`);
    const channel = this.channels.acquire(desc.host, desc.stream);
    channel.preload(desc.unread);
    return new HostInput(channel);
  }

  /** Input that was read here for the record goes back to the channel it came from, if it is still here. */
  discard(r: FdRecord, _holder: EndpointId): void {
    if (r.desc.kind === 'host_input') this.channels.get(r.desc.host, r.desc.stream)?.preload(r.desc.unread);
  }

  /**
   * A checkpoint holds the process's own stdio only, by number (`stream`: 0, 1 or 2): the
   * restorer's stdio takes its place.
   */
  capture(d: FileDescription, base: RecordBase, fds: FdTable): FdRecord {
    const end = d as HostInput | HostOutput;
    const which = [0, 1, 2].find((s) => streamOf(fds.lookup(s)?.description) === end.stream);
    if (which === undefined) throw new WasiError(Errno.NOTSUP, `fd ${base.fd} is a host stream that is not the process's stdin, stdout or stderr`);
    const desc = end instanceof HostInput ? { kind: 'host_input' as const, host: 0, stream: which, unread: NOTHING } : { kind: 'host_output' as const, host: 0, stream: which };
    return { ...base, desc };
  }
}

/** The host stream `d` is on, if it is a host stream end. */
function streamOf(d: FileDescription | undefined): number | undefined {
  return d instanceof HostInput || d instanceof HostOutput ? d.stream : undefined;
}
