/**
 * The narrow views the services that act on processes have of one another, declared apart so
 * that none imports another to use it (index.ts builds them and joins them): what migration,
 * checkpoints and spawning need of the process service (process.ts) — making and scheduling
 * processes, and the origin's record of where each runs — and what the process service and
 * signals need of migration: where this kernel's processes are.
 */

import type { EndpointId } from '../msg/address.js';
import type { Process } from '../kernel/process.js';
import type { FdEntry } from '../kernel/wasi/fd-table.js';

/** A process to make on this kernel. */
export interface CreateSpec {
  ppid: number;
  /** Who hears of its exit when it has no parent process (a node's host), else 0. */
  notify: EndpointId;
  hash: string;
  name: string;
  args: string[];
  env: string[];
  dirs: { host: string; guest: string }[];
  fds: { fd: number; entry: FdEntry }[];
}

export interface ProcessDirectory {
  /** Make a process here, with a new pid, `prepare` run on it before it is scheduled. */
  create(spec: CreateSpec, prepare?: (p: Process) => void): number;
  /** Build (not schedule) process `pid` from `spec`, over `memory` when it was handed over. */
  instantiate(pid: number, spec: Omit<CreateSpec, 'notify'>, memory?: WebAssembly.Memory): Process;
  /** Schedule a process on this kernel. */
  register(p: Process): void;
  /** At its origin: where `pid` runs (undefined: no such live process). */
  locationOf(pid: number): EndpointId | undefined;
  /** Tell the origin that `pid` arrived on `location` by its move number `moves`. */
  relocate(pid: number, location: EndpointId, moves: number): void;
  /** Ask the origin whether `pid`, come from another node, may run here. */
  admitArrival(pid: number, moves: number, answer: (admitted: boolean) => void): void;
}

/** Where a process is, as this kernel knows it (migration.ts keeps those leaving and gone). */
export interface Whereabouts {
  /** The process `pid` if it runs on this kernel, also while it is leaving. */
  find(pid: number): Process | undefined;
  /** Where `pid` went from here, if it left. */
  whereIs(pid: number): EndpointId | undefined;
}
