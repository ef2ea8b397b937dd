/**
 * The kernels' half of program loading: content hash → compiled WebAssembly.Module, from the
 * on-disk cache that prepareProgram (loader.ts) filled. Synchronous, because kernels run a loop
 * with no event loop; and free of binaryen, which kernels never load. Compiled modules are kept
 * per thread, so starting a program a second time on a kernel costs only instantiation.
 */
import { cacheHas, readCache } from './cache.js';

/** A hash with no valid instrumented module in the cache (never prepared, or the entry is corrupt). */
export class CacheMissError extends Error {
  override readonly name = 'CacheMissError';
  constructor(readonly hash: string) {
    super(`no instrumented module for ${hash} in the cache; prepareProgram must run first`);
  }
}

const compiled = new Map<string, WebAssembly.Module>();

/** The compiled instrumented module for `hash`, synchronously. Throws CacheMissError. */
export function compileCached(hash: string): WebAssembly.Module {
  let module = compiled.get(hash);
  if (module === undefined) {
    const entry = readCache(hash);
    if (entry === undefined) throw new CacheMissError(hash);
    module = new WebAssembly.Module(entry.bytes);
    compiled.set(hash, module);
  }
  return module;
}

/** Whether compileCached(hash) can find the module on this node (compiled, or in the cache). */
export function moduleAvailable(hash: string): boolean {
  return compiled.has(hash) || cacheHas(hash);
}
