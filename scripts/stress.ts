/**
 * The stress harness: `node dist/scripts/stress.js [--runs N] [--seconds S] [--only A,B] [--hogs N] [--json]`.
 *
 * Repeats each scenario (scripts/stress-local.ts, scripts/stress-cluster.ts) up to --runs times
 * (default 1000) or for --seconds (default 30) per scenario, whichever comes first, while CPU
 * hogs — --hogs worker threads (default: one per core) spinning in a loop — keep every core busy,
 * so that the kernels' threads are preempted at awkward moments. The hogs start before the first
 * scenario and are terminated at the end, whatever happened.
 *
 * A run that throws is a failure; a run that does not end in time is a hang (counted, and the
 * scenario's node or cluster is then closed and opened again, since what hung may still hold it).
 * Prints one JSON object with --json (a line per scenario otherwise): per scenario the runs, the
 * failures, bytes lost, duplicated, reordered and corrupt, wrong exit statuses, hangs, failures
 * by kind, and the first failure's message. Exits 1 when any run failed.
 */

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { crossNodeMove, nodeKillPipeline } from './stress-cluster.js';
import { checkpointMove, pipeMigration, signalMoves, spawnStorm, type Scenario, type ScenarioRun } from './stress-local.js';
import { newTally, recordFailure, RunFailure, type Tally } from './stress-tally.js';

const SCENARIOS: Scenario[] = [pipeMigration, checkpointMove, signalMoves, spawnStorm, crossNodeMove, nodeKillPipeline];

interface Options {
  runs: number;
  seconds: number;
  only: Scenario[];
  hogs: number;
  json: boolean;
}

function usage(): string {
  return `usage: stress [--runs N] [--seconds S] [--only A,B] [--hogs N] [--json]\nscenarios:\n${SCENARIOS.map((s) => `  ${s.name.padEnd(20)} ${s.describe}`).join('\n')}`;
}

/** Both `--key value` and `--key=value`. */
function parseOptions(argv: string[]): Options {
  const options: Options = { runs: 1000, seconds: 30, only: SCENARIOS, hogs: availableParallelism(), json: false };
  const count = (key: string, value: string | undefined, min: number): number => {
    const n = Number(value);
    if (value === undefined || !Number.isInteger(n) || n < min) throw new Error(`--${key} needs an integer ≥ ${min}, got ${String(value)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    if (flag === '--json') options.json = true;
    else if (flag === '--runs') options.runs = count('runs', value(), 1);
    else if (flag === '--seconds') options.seconds = count('seconds', value(), 1);
    else if (flag === '--hogs') options.hogs = count('hogs', value(), 0);
    else if (flag === '--only') {
      const names = (value() ?? '').split(',');
      const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
      if (unknown.length > 0) throw new Error(`--only: unknown scenario ${unknown.join(', ')}`);
      options.only = SCENARIOS.filter((s) => names.includes(s.name));
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  return options;
}

/** Worker threads that spin until terminated. */
function startHogs(count: number): Worker[] {
  return Array.from({ length: count }, () => new Worker('for (;;) {}', { eval: true }));
}

async function runScenario(scenario: Scenario, options: Options, log: (line: string) => void): Promise<Tally & { seconds: number }> {
  const tally = newTally();
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  let open: ScenarioRun | undefined;
  try {
    while (tally.runs < options.runs && performance.now() < deadline) {
      open ??= await scenario.open(log);
      tally.runs++;
      try {
        await open.once();
      } catch (error) {
        recordFailure(tally, error);
        if (tally.failures <= 3) log(`${scenario.name} run ${tally.runs}: ${(error as Error).message.split('\n')[0]}`);
        if (error instanceof RunFailure && (error.counts.hangs ?? 0) > 0) {
          await open.close().catch(() => undefined);
          open = undefined;
        }
      }
    }
  } catch (error) {
    recordFailure(tally, new Error(`could not set up: ${(error as Error).message}`));
  } finally {
    await open?.close().catch((error: unknown) => recordFailure(tally, new Error(`close: ${(error as Error).message}`)));
  }
  const seconds = Number(((performance.now() - started) / 1000).toFixed(1));
  log(`${scenario.name}: ${tally.runs} runs, ${tally.failures} failures in ${seconds} s`);
  return { ...tally, seconds };
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage()}`);
    return 2;
  }
  const log = (line: string): void => console.error(line);
  const hogs = startHogs(options.hogs);
  const result: Record<string, unknown> = { hogs: options.hogs, runs_limit: options.runs, seconds_limit: options.seconds };
  try {
    for (const scenario of options.only) result[scenario.name] = await runScenario(scenario, options, log);
  } finally {
    await Promise.all(hogs.map((h) => h.terminate()));
  }
  const failed = options.only.some((s) => (result[s.name] as Tally).failures > 0);
  if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else for (const s of options.only) console.log(`${s.name}: ${JSON.stringify(result[s.name])}`);
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    // Whatever a hung scenario left behind (a session, a timer) must not keep the harness up.
    process.exit(code);
  },
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
