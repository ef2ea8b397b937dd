/**
 * On-disk cache of instrumented modules, keyed by the sha256 of the original bytes and the
 * instrumentation version: `<hash>-v<version>.wasm` plus `<hash>-v<version>.json` holding the
 * InstrumentInfo. Instrumenting takes seconds; a cache hit takes a file read.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { INSTRUMENTATION_VERSION } from './abi.js';
import { parseByteSize } from '../sizes.js';
import type { InstrumentInfo, InstrumentResult } from './instrument.js';

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
  markUsed(paths);
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
  evictBeyond(cacheLimit(), entry.info.originalHash);
}

/** The sidecar's time is the entry's last use: least recently used entries go first. */
function markUsed(paths: CachePaths): void {
  const now = new Date();
  try {
    utimesSync(paths.info, now, now);
  } catch (err) {
    // Another process removed the entry after we read it: we have its bytes, nothing to mark.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** The default bound on the cache's size: instrumented modules are 1–3× their original. */
export const DEFAULT_CACHE_LIMIT = 2 * 1024 ** 3;

/** POPCORN_CACHE_MAX (a size such as 512M), else DEFAULT_CACHE_LIMIT. */
export function cacheLimit(): number {
  const text = process.env['POPCORN_CACHE_MAX'];
  if (text === undefined || text === '') return DEFAULT_CACHE_LIMIT;
  const bytes = parseByteSize(text);
  if (bytes === undefined) throw new Error(`POPCORN_CACHE_MAX='${text}' is not a size (such as 512M or 2G)`);
  return bytes;
}

/** One instrumented module in the cache. */
export interface CacheEntry {
  hash: string;
  /** The instrumentation version it was made by (older ones are never used, only listed). */
  version: number;
  /** The module and its sidecar. */
  bytes: number;
  lastUsed: Date;
}

const ENTRY_NAME = /^([0-9a-f]{64})-v(\d+)\.json$/;

/** The entries of the cache, most recently used first. */
export function listCache(): CacheEntry[] {
  const dir = cacheDir();
  if (!existsSync(dir)) return [];
  const entries: CacheEntry[] = [];
  for (const name of readdirSync(dir)) {
    const m = ENTRY_NAME.exec(name);
    if (m === null) continue;
    const info = statOrUndefined(join(dir, name));
    const wasm = statOrUndefined(join(dir, name.replace(/\.json$/, '.wasm')));
    if (info === undefined) continue;
    entries.push({ hash: m[1] ?? '', version: Number(m[2]), bytes: info.size + (wasm?.size ?? 0), lastUsed: info.mtime });
  }
  return entries.sort((a, b) => b.lastUsed.getTime() - a.lastUsed.getTime());
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Removes entries, least recently used first, until the cache holds at most `limit` bytes. */
export function evictBeyond(limit: number, keep?: string): CacheEntry[] {
  const entries = listCache();
  let total = entries.reduce((sum, e) => sum + e.bytes, 0);
  const evicted: CacheEntry[] = [];
  for (const entry of entries.reverse()) {
    if (total <= limit) break;
    if (entry.hash === keep && entry.version === INSTRUMENTATION_VERSION) continue;
    removeEntry(entry);
    total -= entry.bytes;
    evicted.push(entry);
  }
  return evicted;
}

/** Empties the cache: every entry and any temporary file a killed writer left. Returns the bytes freed. */
export function cleanCache(): number {
  const dir = cacheDir();
  if (!existsSync(dir)) return 0;
  let freed = 0;
  for (const name of readdirSync(dir)) {
    if (!ENTRY_NAME.test(name) && !/^[0-9a-f]{64}-v\d+\.wasm$/.test(name) && !name.endsWith('.tmp')) continue;
    const path = join(dir, name);
    freed += statOrUndefined(path)?.size ?? 0;
    rmSync(path, { force: true });
  }
  return freed;
}

function removeEntry(entry: CacheEntry): void {
  const stem = join(cacheDir(), `${entry.hash}-v${entry.version}`);
  // The sidecar first: a reader that finds no sidecar treats the entry as absent.
  rmSync(`${stem}.json`, { force: true });
  rmSync(`${stem}.wasm`, { force: true });
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
