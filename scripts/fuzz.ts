/**
 * Long fuzz runs: `npm run fuzz -- [--seconds S] [--seed N] [--only TARGET] [--json]`. The time
 * is shared evenly between the targets; prints per target the inputs tried, crashes and hangs
 * found, and the seed (with --json, one JSON object). Exits 1 if anything was found.
 */
import { parseArgs } from 'node:util';
import { describeFailure, type FuzzReport } from '../test/fuzz/harness.js';
import { TARGETS } from '../test/fuzz/targets.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string' },
    only: { type: 'string', multiple: true },
    json: { type: 'boolean', default: false },
  },
});

const seconds = Number(values.seconds);
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const names = values.only ?? Object.keys(TARGETS);
for (const name of names) if (!(name in TARGETS)) throw new Error(`no fuzz target ${name} (targets: ${Object.keys(TARGETS).join(', ')})`);
if (!Number.isFinite(seconds) || seconds <= 0 || !Number.isInteger(seed)) throw new Error('--seconds must be positive and --seed an integer');

const reports: FuzzReport[] = [];
for (const name of names) {
  const started = performance.now();
  const report = await (TARGETS[name] as (typeof TARGETS)[string])({ seed, seconds: seconds / names.length });
  reports.push(report);
  if (!values.json) {
    const s = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`${name}: ${report.tried} inputs in ${s} s, ${report.crashes} crashes, ${report.hangs} hangs ${JSON.stringify(report.counts)}`);
    if (report.failure !== undefined) console.log(describeFailure(report));
  }
}
if (values.json) console.log(JSON.stringify({ seed, seconds, targets: Object.fromEntries(reports.map((r) => [r.target, r])) }));
const found = reports.some((r) => r.crashes + r.hangs > 0);
// Kernels, sockets and the instrumentation worker of the targets are closed; exit for any left.
process.exit(found ? 1 : 0);
