/**
 * The programs benchmark: the real programs of test/programs/catalog.ts (sqlite3 on
 * shared/programs/sqlite3/work.sql, flite, Yosys), each a whole `popcorn run` process against a
 * whole node process running the same module under node:wasi, with the same arguments and
 * preopens (their `bench` runs); plus how long a program takes to start.
 *
 *   NAME_instrument_s     instrumenting the module with an empty cache (a temporary POPCORN_CACHE_DIR;
 *                         null with --warm, which uses the tests' cache and times no instrumentation)
 *   NAME_popcorn_ms       median wall time of `popcorn run` (cached module), the whole process
 *   NAME_node_wasi_ms     median wall time of `node` running it under node:wasi, the whole process
 *   NAME_ratio            popcorn / node:wasi
 *   hello_start_ms        `popcorn run examples/hello.wasm` (cached), the whole process: start-up cost
 *   hello_start_node_wasi_ms  the same module in a node process under node:wasi
 *   geomean_ratio         geometric mean of the NAME_ratio
 *
 * Every run's stdout, stderr, exit status and files must be node:wasi's; a difference fails the
 * benchmark. Knobs: --runs=N (default 3; hello runs 5×N), --only=sqlite3,flite, --warm.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROGRAMS, type Scenario } from '../test/programs/catalog.js';
import { fetchProgram, type Fetched } from '../test/programs/fetch.js';
import { differences, runNodeWasi, runPopcorn, unmet, type Outcome } from '../test/programs/run.js';
import { TEST_CACHE } from '../test/cli-helpers.js';
import { prepareProgram } from '../src/wasm/loader.js';
import type { BenchOptions, BenchResult, BenchValue } from './main.js';
import { example, geomean, intArg, median, round3 } from './runners.js';

function same(popcorn: Outcome, wasi: Outcome, what: string): void {
  const diffs = differences(popcorn, wasi, 'popcorn', 'node:wasi');
  if (diffs.length > 0) throw new Error(`${what}: popcorn and node:wasi differ:\n${diffs.join('\n')}`);
}

export async function run({ args, log }: BenchOptions): Promise<BenchResult> {
  const runs = intArg(args, 'runs', 3);
  const warm = args['warm'] === true;
  const only = typeof args['only'] === 'string' ? args['only'].split(',') : undefined;
  const programs = only ? PROGRAMS.filter((p) => only.includes(p.name)) : PROGRAMS;
  if (programs.length === 0) throw new Error(`--only=${String(args['only'])}: known programs are ${PROGRAMS.map((p) => p.name).join(', ')}`);

  const cacheDir = warm ? TEST_CACHE : mkdtempSync(join(tmpdir(), 'popcorn-bench-programs-'));
  const previous = process.env['POPCORN_CACHE_DIR'];
  process.env['POPCORN_CACHE_DIR'] = cacheDir;
  const result: Record<string, BenchValue> = { runs, stat: 'median', cache: warm ? 'warm' : 'empty' };
  const ratios: number[] = [];
  try {
    for (const program of programs) {
      const fetched: Fetched = await fetchProgram(program, log);
      const scenario: Scenario = program.runs.bench;
      if (warm) {
        result[`${program.name}_instrument_s`] = null;
        await prepareProgram(fetched.wasm);
      } else {
        log(`${program.name}: instrumenting with an empty cache…`);
        const started = performance.now();
        await prepareProgram(fetched.wasm);
        result[`${program.name}_instrument_s`] = round3((performance.now() - started) / 1000);
        log(`${program.name}: instrumented in ${String(result[`${program.name}_instrument_s`])} s`);
      }
      const popcornMs: number[] = [];
      const wasiMs: number[] = [];
      for (let i = 0; i < runs; i++) {
        const wasi = await runNodeWasi(fetched, scenario);
        const problems = unmet(program, scenario, wasi);
        if (problems.length > 0) throw new Error(`${program.name} under node:wasi: ${problems.join('\n')}`);
        const popcorn = await runPopcorn(fetched, scenario, { cacheDir });
        same(popcorn, wasi, program.name);
        wasiMs.push(wasi.ms);
        popcornMs.push(popcorn.ms);
        log(`${program.name} run ${i + 1}/${runs}: popcorn ${popcorn.ms.toFixed(0)} ms, node:wasi ${wasi.ms.toFixed(0)} ms`);
      }
      const p = median(popcornMs);
      const w = median(wasiMs);
      result[`${program.name}_popcorn_ms`] = Math.round(p);
      result[`${program.name}_node_wasi_ms`] = Math.round(w);
      result[`${program.name}_ratio`] = round3(p / w);
      ratios.push(p / w);
    }

    // Start-up: hello.wasm, a few milliseconds of work, in a whole process each way.
    const hello: Fetched = { wasm: example('hello.wasm'), resources: {} };
    const helloRun: Scenario = { args: [], dirs: [], expect: { status: 0 } };
    await prepareProgram(hello.wasm);
    const start: number[] = [];
    const startWasi: number[] = [];
    for (let i = 0; i < 5 * runs; i++) {
      const wasi = await runNodeWasi(hello, helloRun);
      const popcorn = await runPopcorn(hello, helloRun, { cacheDir });
      same(popcorn, wasi, 'hello.wasm');
      startWasi.push(wasi.ms);
      start.push(popcorn.ms);
    }
    result['hello_start_ms'] = Math.round(median(start));
    result['hello_start_node_wasi_ms'] = Math.round(median(startWasi));
    result['geomean_ratio'] = round3(geomean(ratios));
  } finally {
    if (previous === undefined) delete process.env['POPCORN_CACHE_DIR'];
    else process.env['POPCORN_CACHE_DIR'] = previous;
    if (!warm) rmSync(cacheDir, { recursive: true, force: true });
  }
  return result;
}
