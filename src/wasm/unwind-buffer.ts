/**
 * The Asyncify data buffer: where an unwinding stack is saved until it is rewound. Its first
 * two i32 words are Asyncify's header (next free byte, end of buffer); the saved frames follow.
 *
 * Where it lives: one page grown at the top of the process's own memory before the guest runs.
 * That is safe because a WASI guest only uses memory it was given: its static data and stack lie
 * below `__heap_base`, wasi-libc's malloc starts from the linker's `__heap_end` (never from
 * `memory.size`) and asks `memory.grow` for more, which returns pages above ours. The page also
 * travels with the memory on migration and checkpoint, so a process captured while unwound
 * carries its saved stack with it.
 */

const PAGE = 65536;
const HEADER_BYTES = 8;

export interface UnwindBuffer {
  /** Address of the header, the argument of asyncify_start_unwind / asyncify_start_rewind. */
  readonly addr: number;
  /** Total bytes, header included. */
  readonly size: number;
}

/**
 * Grows `memory` by `pages` and returns a buffer over the new pages. Call it once per process,
 * before the guest's first instruction, so no guest allocation can sit above it.
 */
export function reserveUnwindBuffer(memory: WebAssembly.Memory, pages = 1): UnwindBuffer {
  const addr = memory.grow(pages) * PAGE;
  const buffer = { addr, size: pages * PAGE };
  resetUnwindBuffer(memory, buffer);
  return buffer;
}

/** Empties the buffer before an unwind; a rewind consumes what the matching unwind saved. */
export function resetUnwindBuffer(memory: WebAssembly.Memory, buffer: UnwindBuffer): void {
  const view = new DataView(memory.buffer);
  view.setUint32(buffer.addr, buffer.addr + HEADER_BYTES, true);
  view.setUint32(buffer.addr + 4, buffer.addr + buffer.size, true);
}
