/**
 * The memory of a process migrating to a kernel of another node. Within a node the memory is
 * handed over (a shared memory, posted to the other thread); across nodes it must be copied, and
 * one big image would be copied five times over: captured, encoded, reassembled, decoded, and
 * written into a fresh memory whose pages the kernel then faults in one by one. Instead the
 * source sends it ahead of the image as a bulk transfer (src/msg/bulk.ts) straight from the live
 * memory (the process is stopped), and the destination writes each piece into the process's new
 * memory as it arrives: one copy at each end, and the page faults overlap the transfer. The image
 * follows on the same path (so after every piece) with `handedOver` set, and the arrival takes
 * the memory from here as it would from the handover.
 */

import type { Kernel } from '../kernel/kernel.js';
import type { Process } from '../kernel/process.js';
import { SCRATCH_PAGES, WASM_PAGE_BYTES } from '../wasm/abi.js';
import { Errno, WasiError } from '../kernel/wasi/errno.js';
import type { EndpointId } from '../msg/address.js';
import { Bulk, BulkError } from '../msg/bulk.js';

const MAX_PAGES = 65536;

export class MemoryTransfer {
  private readonly bulk: Bulk<WebAssembly.Memory>;

  constructor(kernel: Kernel) {
    // The receiving end makes the process's new memory as the first piece comes.
    this.bulk = new Bulk(kernel.messenger, { open: (total, maximum) => {
      const memory = newMemory(total, maximum);
      return { target: memory, bytes: new Uint8Array(memory.buffer, 0, total) };
    } });
  }

  /** Send `p`'s memory ahead of its image to `target` (a kernel of another node). */
  send(p: Process, target: EndpointId): void {
    const live = new Uint8Array(p.execution.memory.buffer, 0, p.execution.programBytes);
    this.bulk.send(target, p.pid, live, p.execution.maximumPages);
  }

  /** The memory that came ahead of `pid`'s image from `source`, whole; it is forgotten here. */
  take(pid: number, source: EndpointId): WebAssembly.Memory {
    try {
      return this.bulk.take(source, pid);
    } catch (error) {
      if (!(error instanceof BulkError)) throw error;
      throw new WasiError(error.refused ? Errno.NOMEM : Errno.IO, `the memory of pid ${pid}: ${error.message}`);
    }
  }

  /** A move from `source` failed, or its node was lost: drop what came for it. */
  forget(pid: number): void {
    this.bulk.forget(pid);
  }

  /** Node `node` is gone: what its kernels were sending will not be completed. */
  forgetNode(node: number): void {
    this.bulk.forgetNode(node);
  }
}

/** A process's memory of `total` program bytes, with the scratch pages above, as Execution makes it. */
function newMemory(total: number, maximum: number): WebAssembly.Memory {
  const pages = total / WASM_PAGE_BYTES + SCRATCH_PAGES;
  if (!Number.isInteger(pages) || !Number.isInteger(maximum) || pages > maximum || maximum > MAX_PAGES) {
    throw new Error(`${total} bytes in a memory of at most ${maximum} pages is not a process memory`);
  }
  return new WebAssembly.Memory({ initial: pages, maximum, shared: true });
}
