/**
 * `popcorn cache ls|clean`: the instrumented-module cache ($XDG_CACHE_HOME/popcorn-ts). It keeps
 * itself within POPCORN_CACHE_MAX (default 2G), dropping the least recently used entries.
 */
import { cacheDir, cacheLimit, cleanCache, listCache } from '../wasm/cache.js';
import { INSTRUMENTATION_VERSION } from '../wasm/abi.js';
import { formatBytes } from '../sizes.js';
import { table } from './ps.js';

export function cacheListCommand(options: { json?: boolean }): number {
  const entries = listCache();
  if (options.json === true) {
    process.stdout.write(`${JSON.stringify({ dir: cacheDir(), limit_bytes: cacheLimit(), entries: entries.map((e) => ({ ...e, lastUsed: e.lastUsed.toISOString() })) })}\n`);
    return 0;
  }
  const rows = entries.map((e) => [e.hash, e.version === INSTRUMENTATION_VERSION ? String(e.version) : `${e.version} (stale)`, formatBytes(e.bytes), e.lastUsed.toISOString()]);
  process.stdout.write(table(['HASH', 'VERSION', 'SIZE', 'LAST USED'], rows));
  const total = entries.reduce((sum, e) => sum + e.bytes, 0);
  process.stdout.write(`${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}, ${formatBytes(total)} of ${formatBytes(cacheLimit())} in ${cacheDir()}\n`);
  return 0;
}

export function cacheCleanCommand(): number {
  const freed = cleanCache();
  process.stdout.write(`removed ${formatBytes(freed)} from ${cacheDir()}\n`);
  return 0;
}
