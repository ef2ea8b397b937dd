/**
 * `popcorn compile PROG.wasm…`: instrument ahead of time, as `wasmtime compile` compiles, so the
 * first `popcorn run` starts at once. The result goes to the cache (`popcorn cache ls`); the
 * command prints each module's content hash, the name of its cache entry.
 */
import { cachePaths } from '../wasm/cache.js';
import { prepareProgram } from '../wasm/loader.js';
import { instrumentProgress } from './progress.js';

export async function compileCommand(modules: string[]): Promise<number> {
  for (const module of modules) {
    const program = await prepareProgram(module, { onProgress: instrumentProgress() });
    process.stdout.write(`${program.hash}  ${module}  ${cachePaths(program.hash).wasm}\n`);
  }
  return 0;
}
