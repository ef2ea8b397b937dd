/**
 * On-disk cache of instrumented modules, keyed by the sha256 of the original bytes and the
 * instrumentation version: `<hash>-v<version>.wasm` plus `<hash>-v<version>.json` holding the
 * InstrumentInfo. Instrumenting takes seconds; a cache hit takes a file read.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { INSTRUMENTATION_VERSION } from './abi.js';
import type { InstrumentInfo, InstrumentResult } from './instrument.js';

/** The content hash that names a program: sha256 of the original module, hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** POPCORN_CACHE_DIR (tests), else $XDG_CACHE_HOME/popcorn-ts, else ~/.cache/popcorn-ts. */
export function cacheDir(): string {
  const override = process.env['POPCORN_CACHE_DIR'];
  if (override) return override;
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg ? xdg : join(homedir(), '.cache'), 'popcorn-ts');
}

export interface CachePaths {
  wasm: string;
  info: string;
}

/** A module's identity: the hex sha256 of its bytes. Anything else names no cache entry. */
export function isModuleHash(hash: string): boolean {
  return /^[0-9a-f]{64}$/.test(hash);
}

/** Only for a hash that isModuleHash: any other string could lead out of the cache directory. */
export function cachePaths(hash: string): CachePaths {
  if (!isModuleHash(hash)) throw new RangeError(`not a module hash: ${JSON.stringify(hash.slice(0, 80))}`);
  const stem = join(cacheDir(), `${hash}-v${INSTRUMENTATION_VERSION}`);
  return { wasm: `${stem}.wasm`, info: `${stem}.json` };
}

/**
 * The cached entry for `hash`, or undefined. An entry that fails validation (a torn or tampered
 * file, a sidecar for another module) is deleted so that the caller rebuilds it.
 */
export function readCache(hash: string): InstrumentResult | undefined {
  if (!isModuleHash(hash)) return undefined;
  const paths = cachePaths(hash);
  let entry: InstrumentResult;
  try {
    entry = { bytes: readFileSync(paths.wasm), info: JSON.parse(readFileSync(paths.info, 'utf8')) as InstrumentInfo };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (!(err instanceof SyntaxError)) throw err;
    discard(paths);
    return undefined;
  }
  if (entry.info.originalHash !== hash || !WebAssembly.validate(entry.bytes)) {
    discard(paths);
    return undefined;
  }
  return entry;
}

/** Whether an entry for `hash` is on disk (not validated: readCache does that). */
export function cacheHas(hash: string): boolean {
  if (!isModuleHash(hash)) return false;
  return existsSync(cachePaths(hash).info);
}

function discard(paths: CachePaths): void {
  rmSync(paths.wasm, { force: true });
  rmSync(paths.info, { force: true });
}

/**
 * Stores an entry. Each file is written to a private temporary name and renamed into place, so a
 * concurrent reader (another popcorn node sharing the cache) sees a whole file or none. The
 * sidecar goes last: a reader that finds it also finds the module.
 */
export function writeCache(entry: InstrumentResult): void {
  const paths = cachePaths(entry.info.originalHash);
  mkdirSync(cacheDir(), { recursive: true });
  atomicWrite(paths.wasm, entry.bytes);
  atomicWrite(paths.info, JSON.stringify(entry.info));
}

function atomicWrite(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
