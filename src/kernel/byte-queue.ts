/**
 * The bytes of a pipe, at its home or in a reader proxy: a queue of chunks that remembers whose
 * bytes they are (which remote writer is owed credit for them) as they leave.
 */

import type { EndpointId } from '../msg/address.js';

/** Small writes are gathered into chunks of this size, so each does not allocate its own. */
const CHUNK_BYTES = 4096;
/** The owner of bytes no remote writer is owed credit for. */
export const NO_OWNER = -1;
/** Told, as bytes leave a queue, whose they were and how many. */
export type Spent = (owner: EndpointId, bytes: number) => void;

interface Chunk {
  bytes: Uint8Array;
  /** Unread bytes are bytes[start, end). */
  start: number;
  end: number;
  /** The remote writer to credit when these bytes leave, or NO_OWNER. */
  owner: number;
  /** Made by copyIn: later small writes may fill its room after `end`. */
  spare: boolean;
}

/**
 * The bytes in a pipe (or in a reader proxy's buffer): a FIFO of chunks, so a write is one copy
 * in and a read one copy out, whatever their sizes. Chunks received in messages are kept as they
 * came, with the writer to credit for them.
 */
export class ByteQueue {
  private chunks: (Chunk | undefined)[] = [];
  private first = 0;
  private total = 0;

  get size(): number {
    return this.total;
  }

  /** Appends a copy of src[off, off+len). */
  copyIn(src: Uint8Array, off: number, len: number): void {
    this.total += len;
    const last = this.chunks[this.chunks.length - 1];
    if (last !== undefined && last.spare) {
      const k = Math.min(len, last.bytes.length - last.end);
      last.bytes.set(src.subarray(off, off + k), last.end);
      last.end += k;
      off += k;
      len -= k;
    }
    if (len === 0) return;
    const bytes = new Uint8Array(Math.max(len, CHUNK_BYTES));
    bytes.set(src.subarray(off, off + len));
    this.chunks.push({ bytes, start: 0, end: len, owner: NO_OWNER, spare: true });
  }

  /** Puts `bytes` itself back in front: bytes a reader elsewhere had taken and not read. */
  prepend(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.total += bytes.length;
    if (this.first > 0) this.chunks[--this.first] = { bytes, start: 0, end: bytes.length, owner: NO_OWNER, spare: false };
    else this.chunks.unshift({ bytes, start: 0, end: bytes.length, owner: NO_OWNER, spare: false });
  }

  /** Appends `bytes` itself (it must not change afterwards), written by `owner`. */
  append(bytes: Uint8Array, owner: number): void {
    if (bytes.length === 0) return;
    this.total += bytes.length;
    this.chunks.push({ bytes, start: 0, end: bytes.length, owner, spare: false });
  }

  /** Moves up to `len` bytes into dst[off, ...); returns how many. */
  copyOut(dst: Uint8Array, off: number, len: number, spent?: Spent): number {
    let at = off;
    return this.drain(len, (piece) => {
      dst.set(piece, at);
      at += piece.length;
    }, spent);
  }

  /**
   * Removes up to `len` bytes and returns them: a view into the queue when they lie in one chunk
   * (valid until the next copyIn), else a new array.
   */
  take(len: number, spent?: Spent): Uint8Array {
    const n = Math.min(len, this.total);
    const c = this.chunks[this.first];
    if (c !== undefined && c.end - c.start >= n) {
      const view = c.bytes.subarray(c.start, c.start + n);
      this.drain(n, () => {}, spent);
      return view;
    }
    const out = new Uint8Array(n);
    this.copyOut(out, 0, n, spent);
    return out;
  }

  /** Drops everything. */
  clear(spent?: Spent): void {
    this.drain(this.total, () => {}, spent);
  }

  private drain(len: number, sink: (piece: Uint8Array) => void, spent: Spent | undefined): number {
    let done = 0;
    while (done < len && this.total > 0) {
      const c = this.chunks[this.first] as Chunk;
      const k = Math.min(len - done, c.end - c.start);
      if (k > 0) {
        sink(c.bytes.subarray(c.start, c.start + k));
        c.start += k;
        done += k;
        this.total -= k;
        if (c.owner !== NO_OWNER) spent?.(c.owner, k);
      }
      if (c.start === c.end) this.retire(c);
    }
    return done;
  }

  /** The front chunk is used up: drop it, or keep it for the next small writes if it is the last. */
  private retire(c: Chunk): void {
    if (c.spare && this.first === this.chunks.length - 1) {
      c.start = c.end = 0;
      return;
    }
    this.chunks[this.first++] = undefined;
    if (this.first === this.chunks.length) {
      this.chunks.length = 0;
      this.first = 0;
    } else if (this.first >= 64 && this.first * 2 >= this.chunks.length) {
      // Shift the array only now and then, so draining a long queue stays linear.
      this.chunks.splice(0, this.first);
      this.first = 0;
    }
  }
}
