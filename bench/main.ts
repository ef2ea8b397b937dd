/**
 * The benchmark entry point: `node dist/bench/main.js NAME [--json] [--key=value ...]`.
 *
 * Each benchmark is a module bench/NAME.ts exporting `run(options)`, which resolves to a flat
 * record of numbers, strings, booleans and nulls (a nested `targets_met` record is allowed too). With
 * --json exactly one JSON object goes to stdout, so scripts and CI can parse it; anything else a
 * benchmark wants to say goes to stderr. Without --json the result is printed as a table.
 *
 * To add a benchmark, write bench/NAME.ts and add one line to BENCHMARKS below.
 */

export type BenchValue = number | string | boolean | null;
export type BenchResult = Record<string, BenchValue | Record<string, BenchValue>>;

export interface BenchOptions {
  /** True with --json: the benchmark must keep stdout clean. */
  json: boolean;
  /** Every `--key=value` or `--flag` given after NAME, for benchmark-specific knobs. */
  args: Record<string, string | true>;
  /** Progress and notes for people; goes to stderr. */
  log: (line: string) => void;
}

type BenchModule = { run(options: BenchOptions): Promise<BenchResult> };

/** The registry: one line per benchmark, loaded lazily so one bench never pays for another. */
const BENCHMARKS: Record<string, { describe: string; load: () => Promise<BenchModule> }> = {
  msg: { describe: 'messaging layer: raw SAB, ring, postMessage, Messenger, TCP', load: () => import('./msg.js') },
  compute: { describe: 'examples/bench CPU programs: popcorn vs node:wasi vs native', load: () => import('./compute.js') },
  syscall: { describe: 'ns per WASI call (clock, write, open): popcorn vs node:wasi', load: () => import('./syscall.js') },
  scale: { describe: 'CPU-bound processes: 2×K on one kernel vs spread over K kernels', load: () => import('./scale.js') },
  spawn: { describe: 'spawn+wait from a process (local, remote) vs node:wasi; pipe throughput', load: () => import('./spawn.js') },
  migrate: { describe: 'live migration time by memory size (1, 64, 256 MiB) vs memcpy; load balancer speedup', load: () => import('./migrate.js') },
  soak: { describe: 'many ring messages, spawn/wait pairs and migrations: nothing lost or duplicated, memory and fds back at baseline', load: () => import('./soak.js') },
  cluster: { describe: 'two nodes over TLS on loopback: migration, spawn, round trip across nodes vs within one', load: () => import('./cluster.js') },
  programs: { describe: 'real programs (sqlite3, flite, Yosys): popcorn run vs node:wasi, instrumentation time, start-up', load: () => import('./programs.js') },
};

function usage(): string {
  const lines = Object.entries(BENCHMARKS).map(([name, b]) => `  ${name.padEnd(10)} ${b.describe}`);
  return `usage: node dist/bench/main.js NAME [--json] [--key=value ...]\nbenchmarks:\n${lines.join('\n')}`;
}

function parseArgs(argv: string[]): { name: string | undefined; json: boolean; args: Record<string, string | true> } {
  let name: string | undefined;
  let json = false;
  const args: Record<string, string | true> = {};
  for (const arg of argv) {
    if (arg === '--json') json = true;
    else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      if (eq < 0) args[arg.slice(2)] = true;
      else args[arg.slice(2, eq)] = arg.slice(eq + 1);
    } else if (name === undefined) name = arg;
    else throw new Error(`unexpected argument ${arg}`);
  }
  return { name, json, args };
}

function formatValue(v: BenchValue): string {
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

function printTable(name: string, result: BenchResult): void {
  const rows: [string, string][] = [];
  for (const [key, value] of Object.entries(result)) {
    if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) rows.push([`${key}.${k}`, formatValue(v)]);
    else rows.push([key, formatValue(value)]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`benchmark ${name}`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage()}`);
    return 2;
  }
  const { name, json, args } = parsed;
  if (name === undefined || !Object.hasOwn(BENCHMARKS, name)) {
    console.error(`${name === undefined ? 'no benchmark named' : `unknown benchmark "${name}"`}; known: ${Object.keys(BENCHMARKS).join(', ')}\n${usage()}`);
    return 2;
  }
  const bench = await BENCHMARKS[name].load();
  const result = await bench.run({ json, args, log: (line) => console.error(line) });
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else printTable(name, result);
  return 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exitCode = 1;
  },
);
