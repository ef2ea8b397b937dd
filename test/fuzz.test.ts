/**
 * Short fuzz runs, a few seconds per target, from a fixed seed (FUZZ_SEED overrides it): every
 * target's input is refused cleanly or handled, and the system stays up (test/fuzz/). The long
 * runs are `npm run fuzz`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFailure } from './fuzz/harness.js';
import { TARGETS } from './fuzz/targets.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
/** Cases per target: enough to pass every kind of mutation, few enough for seconds. */
const RUNS = 40;
const SECONDS = 4;

for (const [name, fuzz] of Object.entries(TARGETS)) {
  test(`fuzz ${name}: seed ${SEED}`, async () => {
    const report = await fuzz({ seed: SEED, runs: RUNS, seconds: SECONDS });
    assert.equal(report.crashes + report.hangs, 0, describeFailure(report));
    assert.ok(report.tried > 0, 'at least one input tried');
  });
}
