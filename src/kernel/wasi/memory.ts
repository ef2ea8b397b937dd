/**
 * A process's linear memory as seen by the syscalls. Every guest pointer goes through a bounds
 * check here, so a guest that passes garbage gets EFAULT and the kernel keeps running.
 *
 * Memory can grow under our feet: memory.grow detaches the old ArrayBuffer of a non-shared
 * memory (our views' length drops to 0), and gives a shared one a longer buffer (our views keep
 * the old length). So `sync()` — called at the start of every syscall — only looks whether our
 * byte view still has a first element, and `check()` re-reads `memory.buffer` (a getter that
 * costs ~45 ns, too much for the hot path) only when an access seems out of bounds, then checks
 * again. Accessors allocate nothing, because clock_time_get and small writes are hot.
 *
 * Measured costs that shaped this (node 20, a call from wasm): once any ArrayBuffer has been
 * detached (every memory.grow does it) `u8.byteLength` is a ~20 ns builtin call while an element
 * read stays inline; DataView.setBigUint64 is a ~10 ns builtin call while a BigUint64Array store
 * is inline.
 */
import { Errno, WasiError } from './errno.js';

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export class GuestMemory {
  /** Byte view of the whole memory; valid until the next growth (call `sync()` first). */
  u8!: Uint8Array;
  /** DataView over the same bytes, for little-endian multi-byte access. */
  dv!: DataView;
  /** The same bytes as u64s (little-endian hosts only), for aligned bigint stores. */
  private u64!: BigUint64Array | null;
  private buffer!: ArrayBufferLike;
  /** Bytes our views cover (a shared memory's Uint8Array may track growth; the DataView may not). */
  private size = 0;

  constructor(readonly memory: WebAssembly.Memory) {
    this.refresh();
  }

  /** Rebuilds the views if the memory grew since the last call. Cheap when it did not. */
  sync(): this {
    // A detached view (the memory grew) has no elements; an empty memory just refreshes each time.
    if (this.u8[0] === undefined) this.refresh();
    return this;
  }

  private refresh(): void {
    this.buffer = this.memory.buffer;
    this.u8 = new Uint8Array(this.buffer);
    this.dv = new DataView(this.buffer);
    this.size = this.dv.byteLength;
    this.u64 = LITTLE_ENDIAN && this.size % 8 === 0 ? new BigUint64Array(this.buffer) : null;
  }

  /**
   * Checks that [ptr, ptr+len) lies inside memory and returns ptr as an unsigned offset.
   * May rebuild the views: read `u8`/`dv` only after calling it (`this.dv.f(this.check(..))`
   * would use the old view, as JS evaluates `this.dv` before the arguments).
   * Pointers arrive from wasm as signed i32, hence the `>>> 0`.
   */
  check(ptr: number, len: number): number {
    const p = ptr >>> 0;
    if (p + len <= this.size && len >= 0) return p;
    this.refresh(); // grown since? look again (rare: only on an apparent fault)
    if (p + len > this.size || len < 0) throw new WasiError(Errno.FAULT, `pointer ${p}+${len}`);
    return p;
  }

  u8get(ptr: number): number {
    const p = this.check(ptr, 1);
    return this.u8[p]!;
  }
  u8set(ptr: number, v: number): void {
    const p = this.check(ptr, 1);
    this.u8[p] = v;
  }
  u16get(ptr: number): number {
    const p = this.check(ptr, 2);
    return this.dv.getUint16(p, true);
  }
  u16set(ptr: number, v: number): void {
    const p = this.check(ptr, 2);
    this.dv.setUint16(p, v, true);
  }
  u32get(ptr: number): number {
    const p = this.check(ptr, 4);
    return this.dv.getUint32(p, true);
  }
  u32set(ptr: number, v: number): void {
    const p = this.check(ptr, 4);
    this.dv.setUint32(p, v, true);
  }
  u64get(ptr: number): bigint {
    const p = this.check(ptr, 8);
    return this.dv.getBigUint64(p, true);
  }
  u64set(ptr: number, v: bigint): void {
    const p = this.check(ptr, 8);
    if ((p & 7) === 0 && this.u64 !== null) this.u64[p >>> 3] = v;
    else this.dv.setBigUint64(p, v, true);
  }
  /** Writes a non-negative number below 2^53 as a u64 without building a bigint. */
  u64setNum(ptr: number, v: number): void {
    const p = this.check(ptr, 8);
    const hi = Math.floor(v / 0x1_0000_0000);
    this.dv.setUint32(p, v - hi * 0x1_0000_0000, true);
    this.dv.setUint32(p + 4, hi, true);
  }
  i64get(ptr: number): bigint {
    const p = this.check(ptr, 8);
    return this.dv.getBigInt64(p, true);
  }
  i64set(ptr: number, v: bigint): void {
    const p = this.check(ptr, 8);
    this.dv.setBigInt64(p, v, true);
  }

  /** A view (not a copy) of guest bytes; it aliases memory until the next growth. */
  bytes(ptr: number, len: number): Uint8Array {
    const p = this.check(ptr, len >>> 0);
    return this.u8.subarray(p, p + (len >>> 0));
  }

  /** Copies `src` into guest memory at ptr. */
  writeBytes(ptr: number, src: Uint8Array): void {
    const p = this.check(ptr, src.length);
    this.u8.set(src, p);
  }

  /** Decodes a UTF-8 string; invalid UTF-8 is EILSEQ, as wasmtime reports for bad paths. */
  string(ptr: number, len: number): string {
    const b = this.bytes(ptr, len);
    try {
      // A copy, because TextDecoder refuses views of a SharedArrayBuffer (shared memories).
      return utf8Decoder.decode(b.buffer instanceof ArrayBuffer ? b : b.slice());
    } catch {
      throw new WasiError(Errno.ILSEQ, 'string is not valid UTF-8');
    }
  }

  /** Encodes a string as UTF-8 (no terminator); returns the byte count. */
  static encode(s: string): Uint8Array {
    return utf8Encoder.encode(s);
  }

  /**
   * Reads an iovec/ciovec array (`{buf: u32, len: u32}[]`) and checks every buffer, calling
   * `each(offset, len)` with validated offsets into `u8`. Stops early when `each` returns false.
   * Everything is checked before the first call, so a bad iovec faults with no side effect.
   */
  iovecs(iovs: number, count: number, each: (off: number, len: number) => boolean): void {
    const base = this.check(iovs, (count >>> 0) * 8);
    const n = count >>> 0;
    for (let i = 0; i < n; i++) {
      this.check(this.dv.getUint32(base + i * 8, true), this.dv.getUint32(base + i * 8 + 4, true));
    }
    for (let i = 0; i < n; i++) {
      const off = this.dv.getUint32(base + i * 8, true);
      const len = this.dv.getUint32(base + i * 8 + 4, true);
      if (!each(off, len)) return;
    }
  }
}
