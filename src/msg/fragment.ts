/**
 * Long messages (modules, pages, checkpoints) travel as a series of `fragment` frames, each
 * carrying a slice of the complete original frame. Links are FIFO, so a message's fragments
 * arrive in order: the reassembler insists on it and drops a message whose fragments do not line
 * up, rather than hand over something stitched from the wrong pieces.
 */

import { DecodeError, fixedLayout } from './codec.js';
import { TRANSPORT_MESSAGES } from './message-table.js';

/** The largest message accepted for reassembly: a bound on what a peer can make us allocate. */
export const MAX_MESSAGE_BYTES = 1 << 30;

/**
 * A fragment's payload: its declared fields (message id, total length, offset) as the codec lays
 * them out, then the slice. The sender writes them once per message and patches `offset` per
 * piece; the receiver reads them in place.
 */
export const FRAGMENT_HEADER = fixedLayout(TRANSPORT_MESSAGES.fragment.payload);

/**
 * Bounds on the bytes held for half-received messages (each is allocated whole at its first
 * fragment). A sender sends each message's fragments one after another on a FIFO link, so one
 * source has one message in reassembly at a time: a source may hold one of the largest size. A
 * frame's source is what the peer wrote in it, so every source together is bounded too. A message
 * over either is dropped, each of its fragments counted as malformed.
 */
export interface ReassemblyLimits {
  perSource: number;
  total: number;
}

export const REASSEMBLY_LIMITS: ReassemblyLimits = { perSource: MAX_MESSAGE_BYTES, total: 2 * MAX_MESSAGE_BYTES };

interface Partial {
  src: number;
  buffer: Uint8Array;
  received: number;
}

export class Reassembler {
  private readonly partials = new Map<string, Partial>();
  /** Bytes held per source, and in all. */
  private readonly bySource = new Map<number, number>();
  private total = 0;

  constructor(private readonly limits: ReassemblyLimits = REASSEMBLY_LIMITS) {}

  /**
   * Add one fragment from `src`. Returns the complete frame once the last fragment is in,
   * otherwise undefined. Throws DecodeError for a fragment that does not fit its message, or
   * begins one over the limits.
   */
  add(src: number, message: number, total: number, offset: number, slice: Uint8Array): Uint8Array | undefined {
    const key = `${src}:${message}`;
    let partial = this.partials.get(key);
    if (partial === undefined) {
      if (offset !== 0) throw new DecodeError(`fragment of message ${key} starts at ${offset}, not 0`);
      if (total > MAX_MESSAGE_BYTES) throw new DecodeError(`message ${key} of ${total} B exceeds ${MAX_MESSAGE_BYTES} B`);
      this.reserve(src, key, total);
      partial = { src, buffer: new Uint8Array(total), received: 0 };
      this.partials.set(key, partial);
    }
    if (offset !== partial.received || total !== partial.buffer.length || offset + slice.length > total) {
      this.forget(key, partial);
      throw new DecodeError(`fragment ${offset}+${slice.length}/${total} out of order for message ${key}`);
    }
    partial.buffer.set(slice, offset);
    partial.received += slice.length;
    if (partial.received < total) return undefined;
    this.forget(key, partial);
    return partial.buffer;
  }

  /** Forget the half-received messages of the sources that went away. */
  dropFrom(gone: (src: number) => boolean): void {
    for (const [key, partial] of this.partials) if (gone(partial.src)) this.forget(key, partial);
  }

  /** Messages in flight, for tests and leak checks. */
  get pending(): number {
    return this.partials.size;
  }

  /** Bytes held for them. */
  get heldBytes(): number {
    return this.total;
  }

  private reserve(src: number, key: string, bytes: number): void {
    const mine = this.bySource.get(src) ?? 0;
    if (mine + bytes > this.limits.perSource) {
      throw new DecodeError(`message ${key} of ${bytes} B: its source would hold ${mine + bytes} B in half-received messages, over ${this.limits.perSource} B`);
    }
    if (this.total + bytes > this.limits.total) {
      throw new DecodeError(`message ${key} of ${bytes} B: half-received messages would take ${this.total + bytes} B, over ${this.limits.total} B`);
    }
    this.bySource.set(src, mine + bytes);
    this.total += bytes;
  }

  private forget(key: string, partial: Partial): void {
    this.partials.delete(key);
    const left = (this.bySource.get(partial.src) ?? 0) - partial.buffer.length;
    if (left > 0) this.bySource.set(partial.src, left);
    else this.bySource.delete(partial.src);
    this.total -= partial.buffer.length;
  }
}
