/**
 * Runs one WASI command under node:wasi, as a child process of its own, so a test or benchmark
 * compares a whole process with a whole `popcorn run`: `node --no-warnings THIS_FILE` with the
 * run described in $POPCORN_NODE_WASI (JSON: wasm, args with argv[0] first, env, preopens as
 * guest → host). stdin, stdout and stderr are this process's; it exits with the program's status.
 *
 * Without $POPCORN_NODE_WASI it does nothing (`node --test dist/test/` loads every file).
 */

import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

export interface NodeWasiRun {
  wasm: string;
  args: string[];
  env: Record<string, string>;
  preopens: Record<string, string>;
}

const spec = process.env['POPCORN_NODE_WASI'];
if (spec !== undefined) {
  const run = JSON.parse(spec) as NodeWasiRun;
  const wasi = new WASI({ version: 'preview1', args: run.args, env: run.env, preopens: run.preopens, returnOnExit: true });
  const module = await WebAssembly.compile(readFileSync(run.wasm));
  const instance = await WebAssembly.instantiate(module, wasi.getImportObject() as WebAssembly.Imports);
  process.exitCode = wasi.start(instance);
}
