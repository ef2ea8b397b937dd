/**
 * The composition root of a kernel's services: every service a kernel runs is built here, in one
 * place, and handed the narrow views it needs of the others (compare Popcorn's kernel/popcorn/,
 * one server per distributed service). No service builds another, and none imports another to
 * use it: the kernel (src/kernel) knows none of them.
 *
 * The services that act on processes need one another both ways — the process service delivers a
 * child's SIGCHLD, signals look up the origin's records, migration makes processes through the
 * process service, which finds those in transit through migration — so their views are closures
 * over services built further down. None is called before all exist: services act only from the
 * kernel's loop (messages, slices, timers), which starts after this function returns.
 */

import type { Kernel, KernelBoot } from '../kernel/kernel.js';
import { HostStreamChannels } from '../kernel/host-stream.js';
import type { ProcessSystem } from '../kernel/popcorn-abi.js';
import { Handover } from '../msg/handover.js';
import { nodeOf } from '../msg/address.js';
import { FdCarriers } from './fd-transfer.js';
import { StreamCarrier } from './stream-carrier.js';
import { PipeCarrier } from './pipe-carrier.js';
import { FileCarrier } from './file-carrier.js';
import { DirCarrier } from './dir-carrier.js';
import { installPipeService, type PipeService } from './pipe.js';
import { installFileDeputy, type FileDeputy } from './file-deputy.js';
import { DirDeputy } from './dir-deputy.js';
import { ProcessServer } from './process.js';
import { SignalService } from './signals.js';
import { SpawnService } from './spawn.js';
import { Migration } from './migration.js';
import { installCheckpointService } from './checkpoint.js';
import { installBalancer } from './balancer.js';
import { installInfoService } from './info.js';
import { installStatsService } from './stats.js';

/** The services that keep open descriptions other kernels use, and their registry of carriers. */
interface FdServices {
  carriers: FdCarriers;
  streams: HostStreamChannels;
  pipes: PipeService;
  files: FileDeputy;
  dirs: DirDeputy;
}

/** Build every service of `kernel`, with what its boot data says of them. */
export function installKernelServices(kernel: Kernel, boot: KernelBoot): void {
  const fds = installFdServices(kernel);
  const system: ProcessSystem = {
    kernelIndex: () => kernel.cluster.indexOf(kernel.id),
    kernelCount: () => kernel.cluster.length,
    spawn: (parent, request) => spawner.spawn(parent, request),
    kill: (sender, pid, signal) => signals.kill(sender, pid, signal),
    migrate: (p, index) => migration.requestOwn(p, index),
    reaped: (pid) => processes.reaped(pid),
    raise: (p, signal) => signals.raise(p, signal),
    createPipe: () => fds.pipes.create(),
  };
  const signals: SignalService = new SignalService(kernel, {
    find: (pid) => migration.find(pid),
    whereIs: (pid) => migration.whereIs(pid),
    afterTransit: (pid, again) => migration.afterTransit(pid, again),
    origin: (pid) => processes.origin(pid),
  });
  const processes: ProcessServer = new ProcessServer(kernel, {
    system,
    whereabouts: { find: (pid) => migration.find(pid), whereIs: (pid) => migration.whereIs(pid) },
    signals,
  });
  const migration: Migration = new Migration(kernel, processes, fds.carriers, new Handover(boot.handover));
  // After the process service's end hook: the origin is told of an end first, so what a move's
  // waiter sends on finds the process ended.
  kernel.onProcessEnd((p) => migration.ended(p));
  const spawner = new SpawnService(kernel, processes, fds.carriers);
  installCheckpointService(kernel, processes, migration, fds.carriers, signals);
  if (boot.balance) installBalancer(kernel, migration);
  installNodeLoss(kernel, fds, processes, migration);
  installInfoService(kernel, {
    zombies: () => processes.zombies(),
    tables: () => ({ origins: processes.size, pipes: fds.pipes.size, streams: fds.streams.size, files: fds.files.size, dirs: fds.dirs.size }),
    migrations: () => ({ ...migration.counts }),
  });
  installStatsService(kernel);
}

/** Every kind of fd that can leave this kernel, each with its carrier (fd-transfer.ts). */
function installFdServices(kernel: Kernel): FdServices {
  const carriers = new FdCarriers(kernel.id);
  const streams = new HostStreamChannels(kernel.messenger, kernel.host);
  const pipes = installPipeService(kernel);
  const files = installFileDeputy(kernel);
  const dirs = new DirDeputy(kernel, carriers);
  carriers.register(new StreamCarrier(streams));
  carriers.register(new PipeCarrier(pipes));
  carriers.register(new FileCarrier(files));
  carriers.register(new DirCarrier(dirs));
  return { carriers, streams, pipes, files, dirs };
}

/**
 * A node of the cluster is gone (node_lost, from src/node/cluster.ts), and its kernels with it:
 * requests waiting on them fail at once; pipes lose the ends held there (readers here see EOF,
 * writers EPIPE) and ends here of pipes homed there end too; memory on its way from there is
 * dropped, streams of its host end; then the process service settles the processes it concerned.
 */
function installNodeLoss(kernel: Kernel, fds: FdServices, processes: ProcessServer, migration: Migration): void {
  kernel.messenger.on('node_lost', ({ node, reason }) => {
    kernel.messenger.peersLost((id) => nodeOf(id) === node, `node ${node}`, reason);
    fds.pipes.nodeLost(node);
    migration.memory.forgetNode(node);
    fds.streams.hostLost(node);
    processes.nodeLost(node, reason);
  });
}
