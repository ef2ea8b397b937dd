/**
 * Resource limits, after Linux's rlimits: how many processes a node may hold (RLIMIT_NPROC), how
 * much linear memory a process may have (RLIMIT_AS, as wasmtime's max-memory-size), how many fds
 * it may have open (RLIMIT_NOFILE).
 *
 * Kernels share nothing, so the node's process limit is split between them as per-CPU quotas are:
 * each kernel may be the origin of its share of processes, and counts them in its own origin
 * table (live ones and zombies until reaped; a process that migrates still counts at its origin).
 * The sum of the shares is the node's limit, so the node never holds more, with no message on the
 * spawn path; the price is that a spawn onto a full kernel fails (EAGAIN) while another has room.
 */

import { totalmem } from 'node:os';
import { DEFAULT_MAX_FDS } from './wasi/fd-table.js';
import { WASM_PAGE_BYTES } from '../wasm/abi.js';

/** What a kernel enforces (KernelBoot.limits). */
export interface Limits {
  /** Processes this kernel may be the origin of, zombies included: its share of the node's limit. */
  maxProcs: number;
  /** The most linear memory a process may have, in wasm pages; undefined: the module's own maximum. */
  maxMemoryPages?: number;
  /** Open fds per process. */
  maxFds: number;
}

/** The limits of a node as its operator gives them (`--max-procs`, `--max-memory`, `--max-fds`). */
export interface NodeLimits {
  maxProcs?: number;
  /** Bytes; rounded down to whole pages. */
  maxMemoryBytes?: number;
  maxFds?: number;
}

/**
 * The default process limit of a node. V8 reserves 10 GiB of address space for every wasm memory
 * (guard regions), so one host process fits about 12,800 of them in x86-64's 128 TiB: past that
 * every spawn fails. A small process costs about 4 MiB of RAM (popcorn's 1 MiB of scratch pages,
 * its own memory, the instance), so a machine's memory bounds the count as well.
 */
export function defaultMaxProcs(): number {
  return Math.max(1, Math.min(4096, Math.floor(totalmem() / (4 << 20))));
}

/** Kernel `index`'s limits, of `kernels` on a node with `limits`: the process limit split evenly. */
export function kernelLimits(limits: NodeLimits, kernels: number, index: number): Limits {
  const maxProcs = limits.maxProcs ?? defaultMaxProcs();
  const share = Math.floor(maxProcs / kernels) + (index < maxProcs % kernels ? 1 : 0);
  const pages = limits.maxMemoryBytes === undefined ? undefined : Math.floor(limits.maxMemoryBytes / WASM_PAGE_BYTES);
  return { maxProcs: share, maxMemoryPages: pages, maxFds: limits.maxFds ?? DEFAULT_MAX_FDS };
}

/** Refuses limits that make no sense, with what was wrong (before anything boots). */
export function checkLimits(limits: NodeLimits): void {
  const bad = (value: number | undefined, min: number): boolean => value !== undefined && (!Number.isInteger(value) || value < min);
  if (bad(limits.maxProcs, 1)) throw new RangeError(`--max-procs must be an integer ≥ 1, got ${limits.maxProcs}`);
  if (bad(limits.maxFds, 1)) throw new RangeError(`--max-fds must be an integer ≥ 1, got ${limits.maxFds}`);
  if (bad(limits.maxMemoryBytes, WASM_PAGE_BYTES)) {
    throw new RangeError(`--max-memory must be at least one wasm page (64K), got ${limits.maxMemoryBytes} bytes`);
  }
}
