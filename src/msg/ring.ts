/**
 * A single-producer/single-consumer ring of variable-length records in a SharedArrayBuffer
 * (Barrelfish's URPC channel, Popcorn's pcn_kmsg ring).
 *
 * Layout: the producer's head and the consumer's tail are free-running u32 byte counters, each on
 * its own 128-byte block so the two threads never write the same cache line (nor its adjacent-line
 * prefetch partner). Records are 8-byte aligned: an 8-byte header (length, check word) and the
 * payload. A record never wraps: when it does not fit before the end, a pad record fills the rest
 * and the record starts at offset 0, so the consumer always sees a payload as one contiguous view.
 * Hence the largest payload is half the capacity minus the header; longer messages are fragmented
 * one layer up.
 *
 * Publication is per record: the header's second word is a stamp derived from the length and the
 * record's absolute position, stored last (atomically). The consumer spins on the stamp in the
 * record itself, so a message costs one cache-line transfer on the critical path instead of two
 * (the head counter, then the record). Consumed bytes are zeroed, so a slot never holds a stale
 * stamp: a non-zero stamp at the tail is a record or corruption, never old data. The head counter
 * is still published after the stamp; it tells corruption (head moved, stamp wrong) from a record
 * not yet written (head not moved).
 */

import { Doorbell } from './doorbell.js';

const HEAD = 0; // int32 index of the producer's counter
const TAIL = 32; // byte 128: the consumer's counter
const PRODUCER_WAITING = 64; // byte 256: set by a producer that found the ring full
const DATA_OFFSET = 384;
const HEADER_BYTES = 8;
const PAD_LENGTH = 0xffffffff;
const STAMP_SALT = 0x5a17c0de;

/**
 * The stamp of a record of `length` bytes at absolute position `position`: never 0 (the value of
 * zeroed memory), different for the same slot on every lap, and a function of the length, so a
 * header whose words disagree is recognised as garbage.
 */
const stampOf = (length: number, position: number): number => (Math.imul(length, 0x9e3779b1) ^ position ^ STAMP_SALT) | 1;
const align8 = (n: number): number => (n + 7) & ~7;

/** The shared part of a ring, passed to the other thread (SharedArrayBuffers clone by reference). */
export interface RingShared {
  buffer: SharedArrayBuffer;
  /** Rung when data arrives: the consumer's doorbell. */
  consumerBell: SharedArrayBuffer;
  /** Rung when space frees while the producer waits: the producer's doorbell. */
  producerBell: SharedArrayBuffer;
}

/** Counters a ring end keeps about itself, for `popcorn kernels` and tests. */
export interface RingStats {
  records: number;
  bytes: number;
  corrupt: number;
}

/** Allocate the shared memory of a ring with `capacity` data bytes (a power of two ≥ 4 KiB). */
export function createRing(capacity: number, consumerBell: Doorbell, producerBell: Doorbell): RingShared {
  if (capacity < 4096 || (capacity & (capacity - 1)) !== 0) {
    throw new RangeError(`ring capacity must be a power of two ≥ 4096, got ${capacity}`);
  }
  return {
    buffer: new SharedArrayBuffer(DATA_OFFSET + capacity),
    consumerBell: consumerBell.buffer,
    producerBell: producerBell.buffer,
  };
}

abstract class RingEnd {
  protected readonly ctl: Int32Array;
  /**
   * The data area as 32-bit words, for record headers. Headers are 8-aligned, so a header is two
   * whole words; an Int32Array element access compiles to one load or store, where a DataView
   * call with an endianness argument costs noticeably more on the per-record path.
   */
  protected readonly words: Int32Array;
  readonly bytes: Uint8Array;
  readonly capacity: number;
  protected readonly mask: number;
  /** The largest payload one record can carry. */
  readonly maxPayload: number;
  readonly stats: RingStats = { records: 0, bytes: 0, corrupt: 0 };

  constructor(readonly shared: RingShared) {
    this.ctl = new Int32Array(shared.buffer, 0, DATA_OFFSET / 4);
    this.capacity = shared.buffer.byteLength - DATA_OFFSET;
    this.mask = this.capacity - 1;
    this.bytes = new Uint8Array(shared.buffer, DATA_OFFSET, this.capacity);
    this.words = new Int32Array(shared.buffer, DATA_OFFSET, this.capacity / 4);
    this.maxPayload = this.capacity / 2 - HEADER_BYTES;
  }
}

/** The sending end. Only one thread may own it. */
export class RingProducer extends RingEnd {
  private head: number;
  private cachedTail: number;
  /** Size and payload length of the record between reserve() and commit(). */
  private pendingSize = 0;
  private pendingLength = 0;
  private readonly consumerBell: Doorbell;

  constructor(shared: RingShared) {
    super(shared);
    this.head = Atomics.load(this.ctl, HEAD) >>> 0;
    this.cachedTail = Atomics.load(this.ctl, TAIL) >>> 0;
    this.consumerBell = new Doorbell(shared.consumerBell);
  }

  /**
   * Reserve room for a payload of `length` bytes. Returns the offset in `bytes` to write it at,
   * or -1 when the ring is too full now (the caller queues and retries; nothing is overwritten).
   * Must be followed by commit() before the next reserve().
   */
  reserve(length: number): number {
    if (length > this.maxPayload) throw new RangeError(`record of ${length} B exceeds ring limit ${this.maxPayload} B`);
    const size = align8(HEADER_BYTES + length);
    const pos = this.head & this.mask;
    const untilEnd = this.capacity - pos;
    const needed = size <= untilEnd ? size : untilEnd + size;
    if (!this.hasRoom(needed)) return -1;
    if (size > untilEnd) {
      this.words[pos >> 2] = PAD_LENGTH | 0;
      Atomics.store(this.words, (pos >> 2) + 1, stampOf(PAD_LENGTH, this.head));
      this.head = (this.head + untilEnd) >>> 0;
    }
    const at = this.head & this.mask;
    this.words[at >> 2] = length | 0;
    this.pendingSize = size;
    this.pendingLength = length;
    return at + HEADER_BYTES;
  }

  /** Publish the record written after reserve(), and wake the consumer if it sleeps. */
  commit(): void {
    const at = this.head & this.mask;
    Atomics.store(this.words, (at >> 2) + 1, stampOf(this.pendingLength, this.head));
    this.head = (this.head + this.pendingSize) >>> 0;
    this.stats.records++;
    this.stats.bytes += this.pendingSize;
    Atomics.store(this.ctl, HEAD, this.head | 0);
    this.consumerBell.ring();
  }

  /** Copy `payload` in as one record. Returns false when the ring is too full now. */
  trySend(payload: Uint8Array): boolean {
    const at = this.reserve(payload.length);
    if (at < 0) return false;
    this.bytes.set(payload, at);
    this.commit();
    return true;
  }

  /**
   * Ask the consumer to ring our doorbell when it frees space. Returns true if space of `length`
   * is already there (then nobody will ring). Call before sleeping on a full ring.
   */
  awaitSpace(length: number): boolean {
    Atomics.store(this.ctl, PRODUCER_WAITING, 1);
    const size = align8(HEADER_BYTES + length);
    return this.hasRoom(2 * size);
  }

  /** Room check against the cached tail first: the shared tail is read only when that says full. */
  private hasRoom(needed: number): boolean {
    if (((this.head - this.cachedTail) >>> 0) + needed <= this.capacity) return true;
    this.cachedTail = Atomics.load(this.ctl, TAIL) >>> 0;
    return ((this.head - this.cachedTail) >>> 0) + needed <= this.capacity;
  }
}

/** Receives each record as a view into the ring, valid only during the call. */
export type RecordHandler = (bytes: Uint8Array, offset: number, length: number) => void;

/** The receiving end. Only one thread may own it. */
export class RingConsumer extends RingEnd {
  private tail: number;
  private readonly producerBell: Doorbell;

  constructor(shared: RingShared) {
    super(shared);
    this.tail = Atomics.load(this.ctl, TAIL) >>> 0;
    this.producerBell = new Doorbell(shared.producerBell);
  }

  /** True when at least one record (or corruption to report) is waiting. */
  hasData(): boolean {
    return this.stampValid(this.tail & this.mask) || ((Atomics.load(this.ctl, HEAD) - this.tail) | 0) > 0;
  }

  /**
   * Deliver up to `budget` records to `handler` (NAPI-style batch), then publish the new tail
   * once. Returns the number delivered. A corrupt header is counted and everything published so
   * far is skipped: the consumer resynchronises at the producer's head rather than trust garbage.
   */
  poll(handler: RecordHandler, budget = 64): number {
    let delivered = 0;
    while (delivered < budget) {
      const at = this.tail & this.mask;
      if (!this.stampValid(at) && !this.confirmRecord(at)) break;
      const length = this.words[at >> 2] >>> 0;
      if (length === PAD_LENGTH) {
        this.words[(at >> 2) + 1] = 0;
        this.tail = (this.tail + this.capacity - at) >>> 0;
        continue;
      }
      const size = align8(HEADER_BYTES + length);
      handler(this.bytes, at + HEADER_BYTES, length);
      this.bytes.fill(0, at, at + size);
      this.tail = (this.tail + size) >>> 0;
      this.stats.records++;
      this.stats.bytes += size;
      delivered++;
    }
    // The tail is published once per batch, not per record: one shared write per wake-up.
    Atomics.store(this.ctl, TAIL, this.tail | 0);
    this.releaseProducer();
    return delivered;
  }

  /** The record at `at` (the tail) is published and its header is self-consistent. */
  private stampValid(at: number): boolean {
    const w = at >> 2;
    const stamp = Atomics.load(this.words, w + 1);
    if (stamp === 0) return false;
    const length = this.words[w] >>> 0;
    return stamp === stampOf(length, this.tail) && this.plausible(at, length);
  }

  /**
   * The stamp at the tail is not valid: either nothing was sent yet (the head has not moved) or
   * the header is corrupt (the head moved past it, and the producer stores the stamp before the
   * head). Corruption is counted and the published bytes are dropped.
   */
  private confirmRecord(at: number): boolean {
    const head = Atomics.load(this.ctl, HEAD) >>> 0;
    // The head may still point before a pad record the consumer already skipped (the producer
    // publishes the pad's stamp at once and the head at the next commit): not ahead means nothing.
    if (((head - this.tail) | 0) <= 0) return false;
    if (this.stampValid(at)) return true;
    this.stats.corrupt++;
    this.zero(this.tail, head);
    this.tail = head;
    return false;
  }

  /** A header is plausible only if its record lies within the ring. */
  private plausible(at: number, length: number): boolean {
    if (length === PAD_LENGTH) return true;
    return length <= this.maxPayload && at + HEADER_BYTES + length <= this.capacity;
  }

  /** Zero the bytes between two absolute positions (wrapping), keeping slots free of stale stamps. */
  private zero(from: number, to: number): void {
    const start = from & this.mask;
    const count = (to - from) >>> 0;
    const first = Math.min(count, this.capacity - start);
    this.bytes.fill(0, start, start + first);
    if (count > first) this.bytes.fill(0, 0, count - first);
  }

  private releaseProducer(): void {
    if (Atomics.load(this.ctl, PRODUCER_WAITING) !== 0) {
      Atomics.store(this.ctl, PRODUCER_WAITING, 0);
      this.producerBell.ring();
    }
  }
}
