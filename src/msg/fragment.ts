/**
 * Long messages (modules, pages, checkpoints) travel as a series of `fragment` frames, each
 * carrying a slice of the complete original frame. Links are FIFO, so a message's fragments
 * arrive in order: the reassembler insists on it and drops a message whose fragments do not line
 * up, rather than hand over something stitched from the wrong pieces.
 */

import { DecodeError } from './codec.js';

/** The largest message accepted for reassembly: a bound on what a peer can make us allocate. */
export const MAX_MESSAGE_BYTES = 1 << 30;

/** Fragment payload header: message id, total length, offset — then the slice. */
export const FRAGMENT_HEADER_BYTES = 12;

interface Partial {
  buffer: Uint8Array;
  received: number;
}

export class Reassembler {
  private readonly partials = new Map<string, Partial>();

  /**
   * Add one fragment from `src`. Returns the complete frame once the last fragment is in,
   * otherwise undefined. Throws DecodeError for a fragment that does not fit its message.
   */
  add(src: number, message: number, total: number, offset: number, slice: Uint8Array): Uint8Array | undefined {
    const key = `${src}:${message}`;
    let partial = this.partials.get(key);
    if (partial === undefined) {
      if (offset !== 0) throw new DecodeError(`fragment of message ${key} starts at ${offset}, not 0`);
      if (total > MAX_MESSAGE_BYTES) throw new DecodeError(`message ${key} of ${total} B exceeds ${MAX_MESSAGE_BYTES} B`);
      partial = { buffer: new Uint8Array(total), received: 0 };
      this.partials.set(key, partial);
    }
    if (offset !== partial.received || total !== partial.buffer.length || offset + slice.length > total) {
      this.partials.delete(key);
      throw new DecodeError(`fragment ${offset}+${slice.length}/${total} out of order for message ${key}`);
    }
    partial.buffer.set(slice, offset);
    partial.received += slice.length;
    if (partial.received < total) return undefined;
    this.partials.delete(key);
    return partial.buffer;
  }

  /** Forget the half-received messages of a peer that went away. */
  dropFrom(src: number): void {
    for (const key of this.partials.keys()) if (key.startsWith(`${src}:`)) this.partials.delete(key);
  }

  /** Messages in flight, for tests and leak checks. */
  get pending(): number {
    return this.partials.size;
  }
}
