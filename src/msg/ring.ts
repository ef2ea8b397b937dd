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
 */

import { Doorbell } from './doorbell.js';

const HEAD = 0; // int32 index of the producer's counter
const TAIL = 32; // byte 128: the consumer's counter
const PRODUCER_WAITING = 64; // byte 256: set by a producer that found the ring full
const DATA_OFFSET = 384;
const HEADER_BYTES = 8;
const PAD_LENGTH = 0xffffffff;
/** The check word makes a record header self-validating: garbage is detected, not trusted. */
const CHECK_SALT = 0x5a17c0de;

const checkWord = (length: number): number => (length ^ CHECK_SALT) | 0;
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
  /** Size of the record between reserve() and commit(). */
  private pendingSize = 0;
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
      this.writeHeader(pos, PAD_LENGTH);
      this.head = (this.head + untilEnd) >>> 0;
    }
    const at = this.head & this.mask;
    this.writeHeader(at, length);
    this.pendingSize = size;
    return at + HEADER_BYTES;
  }

  /** Publish the record written after reserve(), and wake the consumer if it sleeps. */
  commit(): void {
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

  /**
   * Int32Array elements are in the platform's byte order; the ring is only ever shared between
   * threads of one process, so that is the order both ends use. (The wire format of frames
   * inside the payload stays little-endian: that is the codec's business.)
   */
  private writeHeader(at: number, length: number): void {
    const w = at >> 2;
    this.words[w] = length | 0;
    this.words[w + 1] = checkWord(length);
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

  /** True when at least one record is waiting. */
  hasData(): boolean {
    return (Atomics.load(this.ctl, HEAD) >>> 0) !== this.tail;
  }

  /**
   * Deliver up to `budget` records to `handler` (NAPI-style batch), then publish the new tail
   * once. Returns the number delivered. A corrupt header is counted and everything published so
   * far is skipped: the consumer resynchronises at the producer's head rather than trust garbage.
   */
  poll(handler: RecordHandler, budget = 64): number {
    const head = Atomics.load(this.ctl, HEAD) >>> 0;
    let delivered = 0;
    while (this.tail !== head && delivered < budget) {
      const at = this.tail & this.mask;
      const w = at >> 2;
      const length = this.words[w] >>> 0;
      if (this.words[w + 1] !== checkWord(length) || !this.fits(at, length, head)) {
        this.stats.corrupt++;
        this.tail = head;
        break;
      }
      if (length === PAD_LENGTH) {
        this.tail = (this.tail + this.capacity - at) >>> 0;
        continue;
      }
      const size = align8(HEADER_BYTES + length);
      // The tail is published once per batch, not per record: one shared write per wake-up.
      handler(this.bytes, at + HEADER_BYTES, length);
      this.tail = (this.tail + size) >>> 0;
      this.stats.records++;
      this.stats.bytes += size;
      delivered++;
    }
    Atomics.store(this.ctl, TAIL, this.tail | 0);
    this.releaseProducer();
    return delivered;
  }

  /** A record header is plausible only if its record lies within the published bytes. */
  private fits(at: number, length: number, head: number): boolean {
    const published = (head - this.tail) >>> 0;
    if (length === PAD_LENGTH) return this.capacity - at <= published;
    return length <= this.maxPayload && align8(HEADER_BYTES + length) <= published && at + HEADER_BYTES + length <= this.capacity;
  }

  private releaseProducer(): void {
    if (Atomics.load(this.ctl, PRODUCER_WAITING) !== 0) {
      Atomics.store(this.ctl, PRODUCER_WAITING, 0);
      this.producerBell.ring();
    }
  }
}
