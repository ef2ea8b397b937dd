/** Shared by the msg-* tests and the msg-worker: deterministic payloads, sizes, waiting. */

import { createHash } from 'node:crypto';
import type { FrameSink, InLink, OutLink } from '../src/msg/link.js';

/** A payload that depends on (seed, seq, size) everywhere, so a misplaced slice is noticed. */
export function pattern(seed: number, seq: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(seq + 1, 0x85ebca6b)) | 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    out[i] = x;
    if (i + 1 < size) out[i + 1] = x >>> 8;
    if (i + 2 < size) out[i + 2] = x >>> 16;
    if (i + 3 < size) out[i + 3] = x >>> 24;
  }
  return out;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

export const sha256 = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(bytes).digest());

/** A small seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mostly small messages, some medium, a few of several MiB (fragmented on any link). */
export function messageSize(random: () => number, big: number): number {
  const r = random();
  if (r < 0.7) return Math.floor(random() * 300);
  if (r < 0.93) return Math.floor(random() * 70_000);
  return Math.floor(random() * big);
}

/** Resolve once `cond` holds, checking every few ms; reject after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * One direction between two in-memory kernels (pipe and file-deputy tests): frames wait here
 * until the test delivers them. Small frames, so big messages are fragmented; `up` may be
 * cleared to cut it.
 */
export class Cable implements OutLink, InLink {
  readonly maxFrame = 16 * 1024;
  up = true;
  private readonly frames: Uint8Array[] = [];

  constructor(readonly name: string) {}

  send(frame: Uint8Array): void {
    this.frames.push(frame.slice());
  }
  flush(): boolean {
    return true;
  }
  poll(sink: FrameSink, budget: number): number {
    let n = 0;
    for (; n < budget && this.frames.length > 0; n++) {
      const frame = this.frames.shift() as Uint8Array;
      sink(frame, 0, frame.length);
    }
    return n;
  }
  hasData(): boolean {
    return this.frames.length > 0;
  }
}
