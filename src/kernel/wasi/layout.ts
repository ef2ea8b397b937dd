/**
 * Serialisers for the WASI records syscalls write into guest memory. Pointers are checked by
 * GuestMemory; callers check the whole record first when a partial write would be a side effect.
 */
import type { GuestMemory } from './memory.js';
import { DIRENT_HEADER, FILESTAT_SIZE, type DirEntry, type Filestat } from './types.js';

/** `$filestat` (64 bytes): dev, ino, filetype(u8 @16), nlink @24, size, atim, mtim, ctim. */
export function writeFilestat(mem: GuestMemory, ptr: number, st: Filestat): void {
  const p = mem.check(ptr, FILESTAT_SIZE);
  const dv = mem.dv;
  dv.setBigUint64(p, st.dev, true);
  dv.setBigUint64(p + 8, st.ino, true);
  dv.setUint32(p + 16, st.filetype, true); // u8 + zeroed padding
  dv.setUint32(p + 20, 0, true);
  dv.setBigUint64(p + 24, st.nlink, true);
  dv.setBigUint64(p + 32, st.size, true);
  dv.setBigUint64(p + 40, st.atim, true);
  dv.setBigUint64(p + 48, st.mtim, true);
  dv.setBigUint64(p + 56, st.ctim, true);
}

/** `$fdstat` (24 bytes): filetype u8 @0, flags u16 @2, rights_base u64 @8, inheriting @16. */
export function writeFdstat(
  mem: GuestMemory, ptr: number, filetype: number, flags: number, base: number, inheriting: number,
): void {
  const p = mem.check(ptr, 24);
  const dv = mem.dv;
  dv.setUint32(p, 0, true);
  dv.setUint8(p, filetype);
  dv.setUint16(p + 2, flags, true);
  dv.setUint32(p + 4, 0, true);
  dv.setBigUint64(p + 8, BigInt(base), true);
  dv.setBigUint64(p + 16, BigInt(inheriting), true);
}

/**
 * Writes entries from index `start` as `$dirent` records (d_next u64, d_ino u64, d_namlen u32,
 * d_type u8) each followed by its name, into buf[0, len). The last record is cut off at the end
 * of the buffer, which is how a guest learns there is more (bufused == buf_len). Returns bufused.
 */
export function writeDirents(mem: GuestMemory, buf: number, len: number, entries: DirEntry[], start: number): number {
  const base = mem.check(buf, len);
  const scratch = new Uint8Array(DIRENT_HEADER);
  const sdv = new DataView(scratch.buffer);
  let used = 0;
  for (let i = start; i < entries.length && used < len; i++) {
    const e = entries[i]!;
    const name = new TextEncoder().encode(e.name);
    sdv.setBigUint64(0, BigInt(i + 1), true); // cookie of the next entry
    sdv.setBigUint64(8, e.ino, true);
    sdv.setUint32(16, name.length, true);
    sdv.setUint32(20, e.filetype, true);
    const record = new Uint8Array(DIRENT_HEADER + name.length);
    record.set(scratch, 0);
    record.set(name, DIRENT_HEADER);
    const n = Math.min(record.length, len - used);
    mem.u8.set(record.subarray(0, n), base + used);
    used += n;
  }
  return used;
}
