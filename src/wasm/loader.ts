/**
 * Getting a program from a path into the instrumented-module cache: read the file, instrument it
 * (in a worker thread: instrument-worker.ts) or hit the cache, return its hash. Slow the first
 * time (seconds), so it reports progress. Binaryen (megabytes of JavaScript) is loaded only on a
 * cache miss. The kernels' half, hash → compiled module, is compiled.ts.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { readCache, sha256Hex, writeCache } from './cache.js';
import type { InstrumentInfo, InstrumentOptions, InstrumentResult } from './instrument.js';
import { instrumentInWorker } from './instrument-worker.js';

/**
 * Modules above this size get an "instrumenting…" message first. Calibrated so it appears when
 * instrumentation takes about a second or more: measured ≈ 30 KiB/s (an 89 KiB clang -O2
 * program took ≈ 3 s, 140 KiB ≈ 4 s) on a busy 2-core machine.
 */
export const SLOW_INSTRUMENT_BYTES = 24 * 1024;

/** A program file that could not be read. */
export class ProgramFileError extends Error {
  override readonly name = 'ProgramFileError';
  constructor(
    readonly path: string,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

export interface PreparedProgram {
  /** sha256 of the original module: the key for compileCached. */
  hash: string;
  info: InstrumentInfo;
}

export interface PrepareOptions {
  /** Called with human-readable progress when instrumentation is expected to be slow. */
  onProgress?: (message: string) => void;
}

/**
 * Reads, validates and instruments the program at `path` (or finds it in the cache).
 * Throws ProgramFileError for an unreadable file and ModuleError for a refused module.
 */
export async function prepareProgram(path: string, opts: PrepareOptions = {}): Promise<PreparedProgram> {
  const original = readProgramFile(path);
  const kib = Math.round(original.length / 1024);
  // Announced up front, before binaryen is even loaded.
  const announce = original.length > SLOW_INSTRUMENT_BYTES ? opts.onProgress : undefined;
  const started = performance.now();
  const result = await instrumentCached(original, { source: path }, () => announce?.(`instrumenting ${basename(path)} (${kib} KiB)…`));
  if (announce && !result.cached) announce(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { hash: result.info.originalHash, info: result.info };
}

function readProgramFile(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ProgramFileError(path, code, `no such file: ${path}`);
    if (code === 'EISDIR') throw new ProgramFileError(path, code, `is a directory: ${path}`);
    throw new ProgramFileError(path, code, `cannot read ${path}: ${(err as Error).message}`);
  }
}

export interface CachedInstrumentResult extends InstrumentResult {
  /** True when the result came from the cache and no instrumentation ran. */
  cached: boolean;
}

/**
 * Instruments `original`, or returns the cached result of doing so. `onMiss` runs just before
 * instrumentation starts, so a caller can announce the slow path only when it is taken.
 */
export async function instrumentCached(original: Uint8Array, opts: InstrumentOptions = {}, onMiss?: () => void): Promise<CachedInstrumentResult> {
  const hit = readCache(sha256Hex(original));
  if (hit) return { ...hit, cached: true };
  onMiss?.();
  const result = await instrumentInWorker(original, opts);
  writeCache(result);
  return { ...result, cached: false };
}
