/**
 * The content hash that names a program. Its own module so that instrument.ts (which records
 * the hash) and cache.ts (which stores instrument.ts's results under it) do not import each other.
 */
import { createHash } from 'node:crypto';

/** The content hash that names a program: sha256 of the original module, hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
