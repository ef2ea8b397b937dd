/**
 * The memory of a process migrating to a kernel of another node. Within a node the memory is
 * handed over (a shared memory, posted to the other thread); across nodes it must be copied, and
 * one big image would be copied five times over: captured, encoded, reassembled, decoded, and
 * written into a fresh memory whose pages the kernel then faults in one by one. Instead the
 * source sends it ahead of the image in pieces (proc_memory) straight from the live memory (the
 * process is stopped), and the destination writes each piece into the process's new memory as
 * it arrives: one copy at each end, and the page faults overlap the transfer. The image follows
 * on the same path (so after every piece) with `handedOver` set, and the arrival takes the
 * memory from here as it would from the handover port.
 */

import type { Kernel } from '../kernel/kernel.js';
import type { Process } from '../kernel/process.js';
import { SCRATCH_PAGES, WASM_PAGE_BYTES } from '../wasm/abi.js';
import { Errno, WasiError } from '../kernel/wasi/errno.js';
import { nodeOf, type EndpointId } from '../msg/address.js';
import type { Payload } from '../protocol.js';

/** Bytes per proc_memory: one frame on every link, so nothing is fragmented and reassembled. */
const PIECE_BYTES = 192 * 1024;
const MAX_PAGES = 65536;

interface Incoming {
  from: EndpointId;
  memory: WebAssembly.Memory | undefined;
  total: number;
  received: number;
  /** Why the memory could not be made (refused when the image comes). */
  error: string | undefined;
}

export class MemoryTransfer {
  private readonly incoming = new Map<number, Incoming>();

  constructor(private readonly kernel: Kernel) {
    kernel.messenger.on('proc_memory', (msg, from) => this.piece(msg, from.src));
  }

  /** Send `p`'s memory ahead of its image to `target` (a kernel of another node). */
  send(p: Process, target: EndpointId): void {
    const total = p.execution.programBytes;
    const live = new Uint8Array(p.execution.memory.buffer, 0, total);
    const maximum = p.execution.maximumPages;
    for (let offset = 0; offset < total; offset += PIECE_BYTES) {
      const data = live.subarray(offset, Math.min(offset + PIECE_BYTES, total));
      this.kernel.messenger.send(target, 'proc_memory', { pid: p.pid, offset, total, maximum, data });
    }
  }

  /** The memory that came ahead of `pid`'s image from `source`, whole; it is forgotten here. */
  take(pid: number, source: EndpointId): WebAssembly.Memory {
    const incoming = this.incoming.get(pid);
    this.incoming.delete(pid);
    if (incoming === undefined || incoming.from !== source) throw new WasiError(Errno.IO, `the memory of pid ${pid} did not come ahead of it`);
    if (incoming.error !== undefined) throw new WasiError(Errno.NOMEM, `the memory of pid ${pid}: ${incoming.error}`);
    if (incoming.memory === undefined || incoming.received !== incoming.total) {
      throw new WasiError(Errno.IO, `the memory of pid ${pid} came incomplete (${incoming.received} of ${incoming.total} bytes)`);
    }
    return incoming.memory;
  }

  /** A move from `source` failed, or its node was lost: drop what came for it. */
  forget(pid: number): void {
    this.incoming.delete(pid);
  }

  /** Node `node` is gone: what its kernels were sending will not be completed. */
  forgetNode(node: number): void {
    for (const [pid, incoming] of this.incoming) if (nodeOf(incoming.from) === node) this.incoming.delete(pid);
  }

  private piece(msg: Payload<'proc_memory'>, from: EndpointId): void {
    let incoming = this.incoming.get(msg.pid);
    if (msg.offset === 0 || incoming === undefined || incoming.from !== from) {
      incoming = { from, memory: undefined, total: msg.total, received: 0, error: undefined };
      this.incoming.set(msg.pid, incoming);
      try {
        incoming.memory = newMemory(msg.total, msg.maximum);
      } catch (error) {
        incoming.error = error instanceof Error ? error.message : String(error);
      }
    }
    const memory = incoming.memory;
    if (memory === undefined) return;
    if (msg.total !== incoming.total || msg.offset + msg.data.length > incoming.total) {
      incoming.error = `a piece at ${msg.offset} of ${msg.data.length} bytes does not fit ${incoming.total} bytes`;
      incoming.memory = undefined;
      return;
    }
    new Uint8Array(memory.buffer, msg.offset, msg.data.length).set(msg.data);
    incoming.received += msg.data.length;
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
