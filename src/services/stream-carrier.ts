/**
 * Host streams (the terminal, a run session's stdio) as fds that travel: by (host, stream id),
 * since the host serves any kernel. The host first hears of the handoff when it still owes this
 * kernel input or has writes of it to take, and the input received here and not read goes along.
 */

import type { EndpointId } from '../msg/address.js';
import { HostInput, HostOutput, type HostStreamChannels } from '../kernel/host-stream.js';
import { Errno, WasiError } from '../kernel/wasi/errno.js';
import type { FileDescription } from '../kernel/wasi/file-description.js';
import { FdKind, type ExportStep, type FdCarrier, type FdRecord, type RecordBase } from './fd-transfer.js';

export class StreamCarrier implements FdCarrier {
  readonly kinds = [FdKind.HOST_INPUT, FdKind.HOST_OUTPUT];

  constructor(private readonly channels: HostStreamChannels) {}

  carries(d: FileDescription): boolean {
    return d instanceof HostInput || d instanceof HostOutput;
  }

  describe(d: FileDescription, base: RecordBase): { record: FdRecord; steps: ExportStep[] } {
    const end = d as HostInput | HostOutput;
    const record = { ...base, kind: end instanceof HostInput ? FdKind.HOST_INPUT : FdKind.HOST_OUTPUT, id: end.stream, home: end.home };
    const handOff = (done: (error: Error | null) => void): void =>
      end.handOff((error, unread) => {
        record.unread = unread;
        done(error);
      });
    return { record, steps: [{ run: handOff }] };
  }

  adopt(r: FdRecord): FileDescription {
    const channel = this.channels.acquire(r.home, r.id);
    if (r.kind === FdKind.HOST_OUTPUT) return new HostOutput(channel);
    channel.preload(r.unread);
    return new HostInput(channel);
  }

  /** Input that was read here for the record goes back to the channel it came from, if it is still here. */
  discard(r: FdRecord, _holder: EndpointId): void {
    if (r.kind === FdKind.HOST_INPUT) this.channels.get(r.home, r.id)?.preload(r.unread);
  }

  /** A checkpoint holds the process's own stdio only, by number: the restorer's stdio takes its place. */
  capture(d: FileDescription, base: RecordBase, fd: number, stdio: (stream: number) => number | undefined): FdRecord {
    const end = d as HostInput | HostOutput;
    const which = stdio(end.stream);
    if (which === undefined) throw new WasiError(Errno.NOTSUP, `fd ${fd} is a host stream that is not the process's stdin, stdout or stderr`);
    return { ...base, kind: end instanceof HostInput ? FdKind.HOST_INPUT : FdKind.HOST_OUTPUT, id: which };
  }
}
