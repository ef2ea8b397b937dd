/**
 * The public WASI conformance suite (WebAssembly/wasi-testsuite, prebuilt tests) run under the
 * real `popcorn run`, as the suite's own Python runner drives a runtime (doc/specification.md,
 * test-runner/): every `X.wasm` of a test directory is a test, `X.json` beside it its spec (the
 * legacy keys args/env/root/exit_code/stdout/stderr, or `operations`), a missing spec the default.
 *
 *   node dist/scripts/conformance.js [--json] [--only SUBSTRING] [--suite DIR] [--jobs N] [--timeout-s S]
 *
 * Each test runs in a fresh process with empty stdin, the spec's environment and nothing else,
 * and its `root` directory — copied to a temporary directory first, so the suite is never
 * written to — preopened as `/` (`--dir COPY::/`, as the wasmtime adapter does). A `read`
 * checks the next characters of stdout or stderr against its payload, as the suite's runner
 * reads exactly that many; `wait` checks the exit status. With --json one JSON object
 * `{passed, total, failures: [{test, reason}]}` goes to stdout; the exit status is 1 if any
 * test failed.
 */
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli/main.js');
const DEFAULT_SUITE = join(ROOT, '../shared/wasi-testsuite');

/**
 * The test directories, relative to the suite, each with the name its tests are reported under.
 * The wasm32-wasip1 tests of the three source languages; tests/proposals/wasi-threads waits for
 * threads.
 */
const TEST_DIRS: { name: string; path: string }[] = [
  { name: 'c', path: 'tests/c/testsuite/wasm32-wasip1' },
  { name: 'rust', path: 'tests/rust/testsuite/wasm32-wasip1' },
  { name: 'assemblyscript', path: 'tests/assemblyscript/testsuite/wasm32-wasip1' },
];

type Operation =
  | { type: 'run'; args: string[]; env: Record<string, string>; root: string | undefined }
  | { type: 'read'; id: 'stdout' | 'stderr'; payload: string }
  | { type: 'wait'; exitCode: number };

interface TestCase {
  /** "rust/path_open_preopen". */
  name: string;
  wasm: string;
  /** The operations, or why the spec cannot be run. */
  operations: Operation[] | { invalid: string };
}

interface Failure {
  test: string;
  reason: string;
}

interface Options {
  json: boolean;
  only: string | undefined;
  suite: string;
  jobs: number;
  timeoutMs: number;
}

// ---- specs -----------------------------------------------------------------------------------

const LEGACY_KEYS = new Set(['args', 'root', 'env', 'exit_code', 'stderr', 'stdout']);

function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`${what} is not a list of strings`);
  return v;
}

function environment(v: unknown): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('env is not an object');
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') throw new Error(`env ${k} is not a string`);
  return v as Record<string, string>;
}

function runOperation(c: Record<string, unknown>, specDir: string): Operation {
  const root = c['root'];
  if (root !== undefined && root !== null && typeof root !== 'string') throw new Error('root is not a string');
  return {
    type: 'run',
    args: strings(c['args'] ?? [], 'args'),
    env: environment(c['env'] ?? {}),
    root: typeof root === 'string' && root !== '' ? join(specDir, root) : undefined,
  };
}

function readOperation(id: unknown, payload: unknown): Operation {
  if (id !== 'stdout' && id !== 'stderr') throw new Error(`read of stream ${String(id)}`);
  if (typeof payload !== 'string') throw new Error('read payload is not a string');
  return { type: 'read', id, payload };
}

function waitOperation(exitCode: unknown): Operation {
  if (!Number.isInteger(exitCode)) throw new Error('exit_code is not an integer');
  return { type: 'wait', exitCode: exitCode as number };
}

/** The legacy keys as operations, as the suite's runner converts them: run, reads, wait. */
function legacyOperations(c: Record<string, unknown>, specDir: string): Operation[] {
  for (const key of Object.keys(c)) if (!LEGACY_KEYS.has(key)) throw new Error(`unknown spec key ${key}`);
  const ops = [runOperation(c, specDir)];
  if (c['stdout'] !== undefined && c['stdout'] !== null) ops.push(readOperation('stdout', c['stdout']));
  if (c['stderr'] !== undefined && c['stderr'] !== null) ops.push(readOperation('stderr', c['stderr']));
  ops.push(waitOperation(c['exit_code'] ?? 0));
  return ops;
}

/** The run/read/wait operations of an operation-based spec; the network ones are refused. */
function specOperations(c: Record<string, unknown>, specDir: string): Operation[] {
  const proposals = strings(c['proposals'] ?? [], 'proposals');
  if (proposals.length > 0) throw new Error(`needs proposals ${proposals.join(', ')}`);
  const list = c['operations'];
  if (!Array.isArray(list)) throw new Error('operations is not a list');
  return list.map((op: Record<string, unknown>) => {
    switch (op['type']) {
      case 'run': return runOperation(op, specDir);
      case 'read': return readOperation(op['id'] ?? 'stdout', op['payload'] ?? '');
      case 'wait': return waitOperation(op['exit_code'] ?? 0);
      default: throw new Error(`unsupported operation ${String(op['type'])}`);
    }
  });
}

/** The operations of `X.wasm` from `X.json`, or the default run + wait. */
function operationsOf(wasm: string): Operation[] | { invalid: string } {
  const specPath = wasm.replace(/\.wasm$/, '.json');
  if (!existsSync(specPath)) return [{ type: 'run', args: [], env: {}, root: undefined }, { type: 'wait', exitCode: 0 }];
  try {
    const c = JSON.parse(readFileSync(specPath, 'utf8')) as Record<string, unknown>;
    return 'operations' in c ? specOperations(c, dirname(specPath)) : legacyOperations(c, dirname(specPath));
  } catch (err) {
    return { invalid: `${specPath}: ${(err as Error).message}` };
  }
}

function findTests(suite: string, only: string | undefined): TestCase[] {
  const tests: TestCase[] = [];
  for (const dir of TEST_DIRS) {
    const path = join(suite, dir.path);
    if (!existsSync(path)) throw new Error(`no test directory ${path} (is --suite the wasi-testsuite checkout?)`);
    for (const file of readdirSync(path).filter((f) => f.endsWith('.wasm')).sort()) {
      const name = `${dir.name}/${basename(file, '.wasm')}`;
      if (only !== undefined && !name.includes(only)) continue;
      const wasm = join(path, file);
      tests.push({ name, wasm, operations: operationsOf(wasm) });
    }
  }
  return tests;
}

// ---- running ---------------------------------------------------------------------------------

/**
 * A fresh, writable copy of a test's root directory. The suite's runner deletes `*.cleanup`
 * leftovers before each test; a copy simply leaves them out. Owner write permission is added
 * back, as a git checkout of the suite has it.
 */
function copyRoot(root: string, scratch: string): string {
  const copy = join(scratch, 'root');
  cpSync(root, copy, { recursive: true, verbatimSymlinks: true, filter: (src) => !src.endsWith('.cleanup') });
  makeWritable(copy);
  return copy;
}

function makeWritable(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  chmodSync(path, st.mode | (st.isDirectory() ? 0o700 : 0o600));
  if (st.isDirectory()) for (const entry of readdirSync(path)) makeWritable(join(path, entry));
}

/** A child's stdout or stderr, read by `read` operations in order, as a pipe is. */
class Output {
  private text = '';
  private consumed = 0;
  private ended = false;
  private waiter: (() => void) | undefined;

  append(chunk: string): void {
    this.text += chunk;
    this.waiter?.();
  }

  end(): void {
    this.ended = true;
    this.waiter?.();
  }

  /** The next `n` characters, or fewer if the stream ends first. */
  async read(n: number): Promise<string> {
    while (this.text.length - this.consumed < n && !this.ended) {
      await new Promise<void>((wake) => (this.waiter = wake));
    }
    const out = this.text.slice(this.consumed, this.consumed + n);
    this.consumed += out.length;
    return out;
  }

  all(): string {
    return this.text;
  }
}

interface Child {
  stdout: Output;
  stderr: Output;
  /** The exit status, or how it ended otherwise. */
  exit: Promise<number | string>;
}

/**
 * `popcorn run` of the test's module, as a user would type it. `abort` kills it (the timeout):
 * its streams then end and its exit settles, so whatever waited on them goes on.
 */
function start(wasm: string, run: Extract<Operation, { type: 'run' }>, scratch: string, abort: AbortSignal): Child {
  const argv = [CLI, 'run'];
  for (const [k, v] of Object.entries(run.env)) argv.push('--env', `${k}=${v}`);
  if (run.root !== undefined) argv.push('--dir', `${copyRoot(run.root, scratch)}::/`);
  argv.push(wasm, ...run.args);
  // A private runtime directory: the test gets a node of its own, never one somebody booted.
  const env = { ...process.env, POPCORN_RUNTIME_DIR: join(scratch, 'runtime') };
  const child = spawn(process.execPath, argv, { cwd: scratch, env, stdio: ['ignore', 'pipe', 'pipe'], signal: abort, killSignal: 'SIGKILL' });
  const stdout = new Output();
  const stderr = new Output();
  child.stdout.setEncoding('utf8').on('data', (d: string) => stdout.append(d)).on('close', () => stdout.end());
  child.stderr.setEncoding('utf8').on('data', (d: string) => stderr.append(d)).on('close', () => stderr.end());
  const exit = new Promise<number | string>((done) => {
    // An abort is reported as an error too, but the child still closes; only a failed spawn has no pid.
    child.on('error', (err) => child.pid === undefined && done(`could not start: ${err.message}`));
    child.on('close', (status, signal) => done(status ?? `killed by ${signal}`));
  });
  return { stdout, stderr, exit };
}

/** What the program printed (its end, if long), to make a failure readable. */
function outputs(child: Child): string {
  const tail = (s: string): string => (s.length > 2000 ? `…${s.slice(-2000)}` : s);
  let text = '';
  if (child.stdout.all() !== '') text += `\n==STDOUT==\n${tail(child.stdout.all())}`;
  if (child.stderr.all() !== '') text += `\n==STDERR==\n${tail(child.stderr.all())}`;
  return text;
}

/** Runs the operations in order; the first unmet expectation is the test's failure. */
async function execute(test: TestCase, ops: Operation[], scratch: string, abort: AbortSignal): Promise<string | undefined> {
  let child: Child | undefined;
  for (const op of ops) {
    if (op.type === 'run') {
      if (child !== undefined) return 'spec error: a run before the previous one was waited for';
      child = start(test.wasm, op, scratch, abort);
    } else if (child === undefined) {
      return `spec error: ${op.type} before run`;
    } else if (op.type === 'read') {
      const got = await child[op.id].read(op.payload.length);
      if (got !== op.payload) return `${op.id}: expected ${JSON.stringify(op.payload)}, got ${JSON.stringify(got)}${outputs(child)}`;
    } else {
      const status = await child.exit;
      if (status !== op.exitCode) return `exit status: expected ${op.exitCode}, got ${status}${outputs(child)}`;
      child = undefined;
    }
  }
  if (child === undefined) return undefined;
  await child.exit;
  return 'spec error: a run without its wait';
}

/** One test in its own scratch directory, bounded by the timeout; undefined when it passed. */
async function runTest(test: TestCase, timeoutMs: number): Promise<string | undefined> {
  if (!Array.isArray(test.operations)) return `invalid spec: ${test.operations.invalid}`;
  const scratch = mkdtempSync(join(tmpdir(), 'popcorn-wasi-'));
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const failure = await execute(test, test.operations, scratch, abort.signal);
    return abort.signal.aborted ? `timed out after ${timeoutMs / 1000} s` : failure;
  } finally {
    clearTimeout(timer);
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Runs the tests, `jobs` at a time, reporting each as it ends; the failures in test order. */
async function runAll(tests: TestCase[], options: Options, report: (test: TestCase, failure: string | undefined, ms: number) => void): Promise<Failure[]> {
  const failures = new Map<TestCase, string>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tests.length) {
      const test = tests[next++]!;
      const t0 = performance.now();
      const failure = await runTest(test, options.timeoutMs);
      if (failure !== undefined) failures.set(test, failure);
      report(test, failure, performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.jobs, tests.length) }, worker));
  return tests.filter((t) => failures.has(t)).map((t) => ({ test: t.name, reason: failures.get(t)! }));
}

// ---- command line ----------------------------------------------------------------------------

const USAGE = `usage: node dist/scripts/conformance.js [--json] [--only SUBSTRING] [--suite DIR] [--jobs N] [--timeout-s S]
  --json            print one JSON object {passed, total, failures: [{test, reason}]}
  --only SUBSTRING  run only the tests whose name (e.g. rust/path_open_preopen) contains it
  --suite DIR       the wasi-testsuite checkout (default ../shared/wasi-testsuite)
  --jobs N          tests run at once (default: half the CPUs, at least 1)
  --timeout-s S     per test, instrumenting its module included (default 180)`;

function positive(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got ${String(value)}`);
  return n;
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    json: false, only: undefined, suite: DEFAULT_SUITE,
    jobs: Math.max(1, Math.floor(availableParallelism() / 2)), timeoutMs: 180_000,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--help' || arg === '-h') throw new Error('');
    else if (arg === '--json') options.json = true;
    else if (arg === '--only') options.only = value();
    else if (arg === '--suite') options.suite = resolve(value());
    else if (arg === '--jobs') options.jobs = positive(arg, value());
    else if (arg === '--timeout-s') options.timeoutMs = positive(arg, value()) * 1000;
    else throw new Error(`unknown argument ${arg}`);
  }
  return options;
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    const message = (err as Error).message;
    process.stderr.write(message === '' ? `${USAGE}\n` : `${message}\n${USAGE}\n`);
    return message === '' ? 0 : 2;
  }
  let tests: TestCase[];
  try {
    tests = findTests(options.suite, options.only);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  if (tests.length === 0) {
    process.stderr.write(`no test matches --only ${String(options.only)}\n`);
    return 2;
  }
  // Progress goes to stderr with --json, so that stdout is the one object.
  const say = (line: string): boolean => (options.json ? process.stderr : process.stdout).write(`${line}\n`);
  const failures = await runAll(tests, options, (test, failure, ms) => {
    say(`${failure === undefined ? 'PASS' : 'FAIL'} ${test.name} (${(ms / 1000).toFixed(1)} s)`);
  });
  const passed = tests.length - failures.length;
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ passed, total: tests.length, failures })}\n`);
  } else {
    for (const f of failures) say(`\n--- ${f.test}\n${f.reason}`);
    say(`\nWASI conformance: ${passed}/${tests.length} passed`);
  }
  return failures.length === 0 ? 0 : 1;
}

process.exitCode = await main();
