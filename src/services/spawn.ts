/**
 * The spawn service: popcorn_spawn from a guest (a program found by its path in the parent's
 * directories, with the parent's fds as it maps them, on this kernel or any kernel of the
 * cluster), and proc_start, the request that makes a process on the kernel it is sent to. The
 * process service (process.ts) keeps the origin records and the children tables; spawning sees
 * what it needs of it through Spawner.
 */

import type { Kernel } from '../kernel/kernel.js';
import type { Process } from '../kernel/process.js';
import { Operation } from '../kernel/operation.js';
import type { SpawnRequest } from '../kernel/popcorn-abi.js';
import { Errno, WasiError, errnoName } from '../kernel/wasi/errno.js';
import type { FdEntry } from '../kernel/wasi/fd-table.js';
import type { EndpointId } from '../msg/address.js';
import type { Payload } from '../protocol.js';
import { discardRecords, exportFds, importFds, preopensToHandOn, type FdCarriers } from './fd-transfer.js';
import type { CreateSpec, ProcessDirectory } from './process-directory.js';
import { Programs, ensureModule } from './programs.js';
import { asWasiError } from './remote-error.js';

const REQUEST_TIMEOUT_MS = 30_000;

/** What spawning needs of the process service. */
export interface Spawner extends Pick<ProcessDirectory, 'create'> {
  /** A child exists: file it with its parent, or give it to init if the parent ended meanwhile. */
  adopted(parent: Process, pid: number): void;
}

export class SpawnService {
  private readonly programs: Programs;

  constructor(private readonly kernel: Kernel, private readonly processes: Spawner, private readonly transfer: FdCarriers) {
    this.programs = new Programs(kernel);
    const m = kernel.messenger;
    m.on('proc_start', (msg, from) => {
      const refuse = (error: unknown): void => {
        m.fail(from, error instanceof WasiError ? errnoName(error.errno) : 'ENOEXEC', error instanceof Error ? error.message : String(error));
      };
      ensureModule(kernel, msg.hash, from.src, (missing) => {
        if (missing !== null) {
          discardRecords(transfer, msg.fds);
          refuse(missing);
          return;
        }
        try {
          const pid = this.startFromMessage(msg, from.src);
          m.reply(from, 'proc_start', { pid, kernel: kernel.id });
        } catch (error) {
          refuse(error);
        }
      });
    });
  }

  /** popcorn_spawn: done with the child's pid once it exists, here or on kernel `request.kernel`. */
  spawn(parent: Process, request: SpawnRequest): Operation<number> {
    const op = new Operation<number>();
    const target = request.kernel === -1 ? this.kernel.id : this.kernel.cluster[request.kernel];
    if (target === undefined) throw new WasiError(Errno.INVAL, `no kernel ${request.kernel}: there are ${this.kernel.cluster.length}`);
    const fds = [...preopensToHandOn(parent, target, this.kernel.id), ...childFds(parent, request)];
    this.programs.lookup(parent.dirs, request.path, (error, hash) => {
      if (error !== null || hash === undefined) {
        op.complete(error ?? new WasiError(Errno.NOEXEC, request.path));
        return;
      }
      const name = request.path.split('/').pop() ?? request.path;
      const spec = { ppid: parent.pid, notify: 0, hash, name, args: request.args, env: request.env, dirs: parent.dirs, fds };
      if (target === this.kernel.id) this.spawnHere(parent, spec, op);
      else this.spawnThere(parent, target, spec, op);
    });
    return op;
  }

  private spawnHere(parent: Process, spec: CreateSpec, op: Operation<number>): void {
    try {
      const pid = this.processes.create(spec);
      this.processes.adopted(parent, pid);
      op.complete(null, pid);
    } catch (error) {
      op.complete(asWasiError(error, { fallback: Errno.NOEXEC }));
    }
  }

  private spawnThere(parent: Process, target: EndpointId, spec: CreateSpec, op: Operation<number>): void {
    exportFds(this.transfer, spec.fds, target, (error, records) => {
      if (error !== null) {
        op.complete(asWasiError(error, { fallback: Errno.NOTSUP }));
        return;
      }
      const payload = { ...spec, fds: records };
      this.kernel.messenger.request(target, 'proc_start', payload, REQUEST_TIMEOUT_MS, (failure, reply) => {
        if (failure !== null || reply === undefined) {
          op.complete(asWasiError(failure ?? new Error('no answer'), { fallback: Errno.NOEXEC }));
          return;
        }
        this.processes.adopted(parent, reply.pid);
        op.complete(null, reply.pid);
      });
    });
  }

  /** A process another kernel (or the node) asked for: its fds imported here, then made. */
  private startFromMessage(msg: Payload<'proc_start'>, from: EndpointId): number {
    const fds = importFds(this.transfer, msg.fds);
    try {
      return this.processes.create({ ...msg, notify: msg.ppid === 0 ? msg.notify || from : 0, fds });
    } catch (error) {
      for (const { entry } of fds) entry.description.close();
      throw error;
    }
  }
}

/** The child's fds: the parent's 0–2 unless mapped otherwise, plus every mapping. */
function childFds(parent: Process, request: SpawnRequest): { fd: number; entry: FdEntry }[] {
  const fds: { fd: number; entry: FdEntry }[] = [];
  for (let fd = 0; fd < 3; fd++) {
    const entry = parent.context.fds.lookup(fd);
    if (!request.fds.has(fd) && entry !== undefined) fds.push({ fd, entry });
  }
  for (const [fd, entry] of request.fds) if (entry !== null) fds.push({ fd, entry });
  return fds;
}
