/**
 * Getting a program from a path into the instrumented-module cache: read the file, instrument it
 * (in a worker thread: instrument-worker.ts) or hit the cache, return its hash. Slow the first
 * time (seconds), so it reports progress. Binaryen (megabytes of JavaScript) is loaded only on a
 * cache miss. The kernels' half, hash → compiled module, is compiled.ts.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { readCache, writeCache } from './cache.js';
import { sha256Hex } from './hash.js';
import { formatBytes } from '../sizes.js';
import type { InstrumentInfo, InstrumentOptions, InstrumentProgress, InstrumentResult } from './instrument.js';
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

/** What a slow instrumentation reports, in order: it starts, it progresses, it is done. */
export type PrepareEvent =
  | { kind: 'instrumenting'; name: string; bytes: number }
  | { kind: 'progress'; name: string; fraction: number }
  | { kind: 'done'; name: string; seconds: number };

export interface PrepareOptions {
  /** Called as instrumentation goes, when it is expected to be slow (SLOW_INSTRUMENT_BYTES). */
  onProgress?: (event: PrepareEvent) => void;
}

/** One line for a log: the start and the end of an instrumentation (not each step). */
export function describePrepareEvent(event: PrepareEvent): string | undefined {
  if (event.kind === 'instrumenting') return `instrumenting ${event.name} (${formatBytes(event.bytes)})…`;
  if (event.kind === 'done') return `instrumented ${event.name} in ${event.seconds.toFixed(1)} s`;
  return undefined;
}


/**
 * Reads, validates and instruments the program at `path` (or finds it in the cache).
 * Throws ProgramFileError for an unreadable file and ModuleError for a refused module.
 */
export async function prepareProgram(path: string, opts: PrepareOptions = {}): Promise<PreparedProgram> {
  const original = readProgramFile(path);
  const name = basename(path);
  // Announced up front, before binaryen is even loaded.
  const report = original.length > SLOW_INSTRUMENT_BYTES ? opts.onProgress : undefined;
  const started = performance.now();
  const result = await instrumentCached(original, { source: path }, {
    onMiss: () => report?.({ kind: 'instrumenting', name, bytes: original.length }),
    onProgress: (fraction) => report?.({ kind: 'progress', name, fraction }),
  });
  if (!result.cached) report?.({ kind: 'done', name, seconds: (performance.now() - started) / 1000 });
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

export interface InstrumentCallbacks {
  /** Runs just before instrumentation starts, so a caller announces the slow path only when taken. */
  onMiss?: () => void;
  /** The fraction of the instrumentation done, as it goes. */
  onProgress?: InstrumentProgress;
}

/** Instruments `original`, or returns the cached result of doing so. */
export async function instrumentCached(original: Uint8Array, opts: InstrumentOptions = {}, callbacks: InstrumentCallbacks = {}): Promise<CachedInstrumentResult> {
  const hit = readCache(sha256Hex(original));
  if (hit) return { ...hit, cached: true };
  callbacks.onMiss?.();
  const result = await instrumentInWorker(original, opts, callbacks.onProgress);
  writeCache(result);
  return { ...result, cached: false };
}
