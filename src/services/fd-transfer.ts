/**
 * Giving fds to a process on another kernel. Kernels share nothing, so an open file description
 * cannot be handed over; each kind travels as what names it system-wide, and the receiving kernel
 * builds its own description on it. Each kind has a carrier (FdCarrier), registered by the
 * service it belongs to; this file is the registry and the join of their asynchronous steps:
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
 *
 * Carriers: stream-carrier.ts (host streams), pipe-carrier.ts, file-carrier.ts (host and remote
 * files), dir-carrier.ts (host and remote directories). A new kind of description (threads' and
 * DSM's, later) is a new carrier and a new case of FD_RECORD's variant (protocol.ts), with no
 * switch to edit here.
 */

import { nodeOf, type EndpointId } from '../msg/address.js';
import type { Process } from '../kernel/process.js';
import { RemoteDirectory } from '../kernel/remote-directory.js';
import { Errno, WasiError } from '../kernel/wasi/errno.js';
import type { FdEntry, FdTable } from '../kernel/wasi/fd-table.js';
import type { FileDescription } from '../kernel/wasi/file-description.js';
import { STREAM_RIGHTS } from '../kernel/wasi/types.js';
import type { Payload } from '../protocol.js';

export type FdRecord = Payload<'proc_start'>['fds'][number];

/** What a record names: one case per kind of description (FD_RECORD in protocol.ts). */
export type FdDescriptor = FdRecord['desc'];
/** The kinds of record, each read by one carrier. */
export type FdKind = FdDescriptor['kind'];
/** The record's description when it is of kind `K`. */
export type DescriptorOf<K extends FdKind> = Extract<FdDescriptor, { kind: K }>;

/** Work an export waits for before its record may be sent (a home counting a reference, input owed). */
export interface ExportStep {
  run(done: (error: Error | null) => void): void;
  /**
   * This step has the home count the receiver's reference. Until it succeeds the record holds no
   * reference, so a failed export must not give it back.
   */
  counts?: boolean;
}

/** The part of a record every kind shares: filled in from the fd entry by the registry. */
export type RecordBase = Omit<FdRecord, 'desc'>;

/**
 * One kind of open description that can leave its kernel: how it is named in a record, how the
 * receiver builds its own description on that, how a record never used gives back what it holds,
 * and how a checkpoint names it.
 */
export interface FdCarrier {
  /** The record kinds this carrier makes and adopts. */
  readonly kinds: readonly FdKind[];
  /** Whether `d` is this carrier's kind of description. */
  carries(d: FileDescription): boolean;
  /** The record of `d` for kernel `target`, and the steps to finish before it is sent. */
  describe(d: FileDescription, base: RecordBase, target: EndpointId, entry: FdEntry): { record: FdRecord; steps?: ExportStep[] };
  /** This kernel's description of a record made for it. */
  adopt(r: FdRecord): FileDescription;
  /** A record that will never be adopted: give back what describing it took, for `holder`. */
  discard(r: FdRecord, holder: EndpointId): void;
  /** The preopen name a record carries, if it is a preopen. */
  preopenOf?(r: FdRecord): string | undefined;
  /**
   * The record of `d` in a checkpoint image, which names files by host path (checkpoint.ts); a
   * carrier without it refuses (ENOTSUP: a checkpoint holds only files and the terminal).
   */
  capture?(d: FileDescription, base: RecordBase, fds: FdTable): FdRecord;
}

/** The carriers of one kernel: each kind of description registered by the service it belongs to. */
export class FdCarriers {
  private readonly carriers: FdCarrier[] = [];
  private readonly byKind = new Map<FdKind, FdCarrier>();

  /** `self`: the kernel they serve, the holder of records it refuses. */
  constructor(readonly self: EndpointId) {}

  register(carrier: FdCarrier): void {
    for (const kind of carrier.kinds) if (this.byKind.has(kind)) throw new Error(`two carriers of fd kind ${kind}`);
    for (const kind of carrier.kinds) this.byKind.set(kind, carrier);
    this.carriers.push(carrier);
  }

  /** The carrier of `d`, or undefined when it cannot leave this kernel. */
  of(d: FileDescription): FdCarrier | undefined {
    return this.carriers.find((c) => c.carries(d));
  }

  describe(fd: number, entry: FdEntry, target: EndpointId): { record: FdRecord; steps?: ExportStep[] } {
    const d = entry.description;
    const carrier = this.of(d);
    if (carrier === undefined) throw new WasiError(Errno.NOTSUP, `fd ${fd} cannot be given to a process on another kernel`);
    return carrier.describe(d, baseOf(fd, entry), target, entry);
  }

  adopt(r: FdRecord): { description: FileDescription; preopenName?: string } {
    const carrier = this.carrierOf(r);
    const description = carrier.adopt(r);
    const preopenName = carrier.preopenOf?.(r);
    return preopenName === undefined ? { description } : { description, preopenName };
  }

  discard(r: FdRecord, holder: EndpointId): void {
    this.byKind.get(r.desc.kind)?.discard(r, holder);
  }

  /** The record of fd `fd` of a process (whose table is `fds`) in a checkpoint image. */
  capture(fd: number, entry: FdEntry, fds: FdTable): FdRecord {
    const d = entry.description;
    const carrier = this.of(d);
    if (carrier?.capture === undefined) throw new WasiError(Errno.NOTSUP, `fd ${fd} cannot be checkpointed: a checkpoint can hold only files and the terminal`);
    return carrier.capture(d, baseOf(fd, entry), fds);
  }

  private carrierOf(r: FdRecord): FdCarrier {
    const carrier = this.byKind.get(r.desc.kind);
    if (carrier === undefined) throw new WasiError(Errno.INVAL, `fd ${r.fd}: no carrier of kind ${r.desc.kind} here`);
    return carrier;
  }
}

function baseOf(fd: number, entry: FdEntry): RecordBase {
  return { fd, rights: entry.rightsBase, inheriting: entry.rightsInheriting, fdflags: entry.description.fdflags };
}

/** Fds 0, 1, 2 on the streams `ids` (stdin, stdout, stderr) of host `host`: how a node starts a process. */
export function hostStreamRecords(host: EndpointId, ids: number[]): FdRecord[] {
  return ids.map((stream, fd) => ({
    fd, rights: STREAM_RIGHTS, inheriting: 0, fdflags: 0,
    desc: fd === 0 ? { kind: 'host_input' as const, host, stream, unread: new Uint8Array(0) } : { kind: 'host_output' as const, host, stream },
  }));
}

/**
 * Describe fds for kernel `target`. `done` gets the records once every step of their carriers
 * has finished (every pipe end's and remote file's home has counted the new reference), or the
 * first error (what was already prepared is then given back).
 */
export function exportFds(
  carriers: FdCarriers,
  fds: { fd: number; entry: FdEntry }[],
  target: EndpointId,
  done: (error: Error | null, records: FdRecord[]) => void,
): void {
  const records: FdRecord[] = [];
  /** Records whose home has not counted them: not to be given back on failure. */
  const uncounted = new Set<FdRecord>();
  let waiting = 1;
  let failed: Error | null = null;
  const settle = (error: Error | null): void => {
    failed ??= error;
    if (--waiting > 0) return;
    if (failed !== null) discardRecords(carriers, records.filter((r) => !uncounted.has(r)), target);
    done(failed, failed === null ? records : []);
  };
  try {
    for (const { fd, entry } of fds) {
      const { record, steps = [] } = carriers.describe(fd, entry, target);
      records.push(record);
      for (const step of steps) {
        waiting++;
        if (step.counts === true) uncounted.add(record);
        step.run((error) => {
          if (error === null && step.counts === true) uncounted.delete(record);
          settle(error);
        });
      }
    }
  } catch (error) {
    failed = error instanceof Error ? error : new Error(String(error));
  }
  settle(null);
}

/**
 * Build this kernel's fd entries from records. Every record is consumed, even after an error, so
 * no pipe reference or host fd is left behind; on error the entries built are closed too.
 */
export function importFds(carriers: FdCarriers, records: FdRecord[]): { fd: number; entry: FdEntry }[] {
  const out: { fd: number; entry: FdEntry }[] = [];
  let failure: unknown;
  for (const r of records) {
    try {
      const { description, preopenName } = carriers.adopt(r);
      description.fdflags = r.fdflags;
      out.push({ fd: r.fd, entry: { description, rightsBase: r.rights, rightsInheriting: r.inheriting, ...(preopenName === undefined ? {} : { preopenName }) } });
    } catch (error) {
      failure ??= error;
    }
  }
  if (failure === undefined) return out;
  for (const { entry } of out) entry.description.close();
  throw failure;
}

/**
 * Records that will not be used: give back what exporting took (pipe and remote file references,
 * host fds, the input of a host stream where its channel still is: at the kernel that exported).
 * `holder`: the kernel they were made for (pipe references were counted for it); by default the
 * kernel this runs on, which refuses records it was sent.
 */
export function discardRecords(carriers: FdCarriers, records: FdRecord[], holder?: EndpointId): void {
  for (const r of records) carriers.discard(r, holder ?? carriers.self);
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
