/**
 * Running a catalog program (test/programs/catalog.ts) three ways, each a whole OS process, and
 * what a run leaves behind:
 *
 *   runPopcorn    `node dist/src/cli/main.js run --dir … WASM ARGS` — the real CLI, one node of its own
 *   runNodeWasi   node:wasi in a child process (test/programs/node-wasi-child.ts), same argv and preopens
 *   runMigrated   on a node booted with `popcorn boot`: `popcorn run --on 0 …` through it, while
 *                 `popcorn migrate PID K` moves the process from kernel to kernel
 *
 * Each run gets a fresh scratch directory with the scenario's inputs; its outcome is stdout (bytes),
 * stderr (text, without popcorn's own `popcorn: …` lines such as "instrumenting…"), the exit status,
 * and the sha256 of every file left in the scratch directory.
 */

import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Program, Scenario } from './catalog.js';
import { ROOT, sha256, type Fetched } from './fetch.js';
import type { NodeWasiRun } from './node-wasi-child.js';
import { sleep, TEST_CACHE } from '../cli-helpers.js';

export const CLI = join(ROOT, 'dist/src/cli/main.js');
const NODE_WASI_CHILD = fileURLToPath(new URL('./node-wasi-child.js', import.meta.url));


export interface Outcome {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  /** Relative path → sha256, every file in the scratch directory after the run. */
  files: Record<string, string>;
  /** Wall time of the whole process, ms. */
  ms: number;
}

export interface Spawned {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  ms: number;
}

/** Spawn `node ARGS`, feed `stdin`, collect everything; rejects after `timeoutMs` (killing it). */
export function spawnNode(args: string[], options: { env?: Record<string, string>; stdin?: string; timeoutMs: number; cwd?: string }): { done: Promise<Spawned>; pid: number | undefined } {
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const done = new Promise<Spawned>((resolve, reject) => {
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${args.slice(0, 3).join(' ')}… timed out after ${options.timeoutMs} ms; stderr so far:\n${err.slice(-4000)}`));
    }, options.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout: Buffer.concat(out), stderr: err, ms: performance.now() - started });
    });
  });
  child.stdin.on('error', () => {});
  child.stdin.end(options.stdin ?? '');
  return { done, pid: child.pid };
}

/** A fresh scratch directory holding the scenario's inputs. */
export function makeScratch(scenario: Scenario): string {
  const dir = mkdtempSync(join(tmpdir(), 'popcorn-prog-'));
  for (const pre of scenario.dirs) if (pre.scratch !== undefined) mkdirSync(join(dir, pre.scratch), { recursive: true });
  for (const [rel, input] of Object.entries(scenario.inputs ?? {})) {
    const path = join(dir, rel);
    mkdirSync(dirname(path), { recursive: true });
    if (typeof input === 'string') writeFileSync(path, input);
    else copyFileSync(join(ROOT, input.copy), path);
  }
  return dir;
}

/** The scenario's preopens as host → guest for this scratch directory. */
export function preopens(scenario: Scenario, scratch: string, fetched: Fetched): { host: string; guest: string }[] {
  return scenario.dirs.map((pre) => {
    if (pre.scratch !== undefined) return { host: join(scratch, pre.scratch), guest: pre.guest };
    const host = pre.resource === undefined ? undefined : fetched.resources[pre.resource];
    if (host === undefined) throw new Error(`no resource ${String(pre.resource)} was fetched (have: ${Object.keys(fetched.resources).join(', ') || 'none'})`);
    return { host, guest: pre.guest };
  });
}

/** Every file under `dir`, by relative path, with its sha256. */
export function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else files[path] = entry.isFile() ? sha256(readFileSync(join(dir, path))) : `(${entry.isSymbolicLink() ? 'symlink' : 'special'})`;
    }
  };
  walk('');
  return Object.fromEntries(Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** stderr without popcorn's own lines ("popcorn: instrumenting…", "popcorn: done in…"). */
export const programStderr = (text: string): string =>
  text
    .split('\n')
    .filter((line) => !line.startsWith('popcorn: '))
    .join('\n');

function popcornArgs(program: Fetched, scenario: Scenario, scratch: string): string[] {
  const args: string[] = [];
  for (const { host, guest } of preopens(scenario, scratch, program)) args.push('--dir', `${host}::${guest}`);
  for (const [k, v] of Object.entries(scenario.env ?? {})) args.push('--env', `${k}=${v}`);
  return [...args, program.wasm, ...scenario.args];
}

function outcome(spawned: Spawned, scratch: string): Outcome {
  return { ...spawned, stderr: programStderr(spawned.stderr), files: snapshot(scratch) };
}

export interface RunOptions {
  /** The instrumented-module cache for popcorn (default TEST_CACHE). */
  cacheDir?: string;
  timeoutMs?: number;
  /** Keep the scratch directory (the caller removes it); by default it is removed. */
  keep?: (scratch: string) => void;
}

/** `popcorn run` (the real CLI, its own node) on a fresh scratch directory. */
export async function runPopcorn(program: Fetched, scenario: Scenario, options: RunOptions = {}): Promise<Outcome> {
  const scratch = makeScratch(scenario);
  try {
    const env = { POPCORN_CACHE_DIR: options.cacheDir ?? TEST_CACHE, POPCORN_RUNTIME_DIR: join(scratch, '..', `${basename(scratch)}-no-node`) };
    const run = spawnNode([CLI, 'run', ...popcornArgs(program, scenario, scratch)], { env, stdin: scenario.stdin, timeoutMs: options.timeoutMs ?? 60 * 60_000 });
    return outcome(await run.done, scratch);
  } finally {
    if (options.keep) options.keep(scratch);
    else rmSync(scratch, { recursive: true, force: true });
  }
}

/** The same run under node:wasi, in a child process. */
export async function runNodeWasi(program: Fetched, scenario: Scenario, options: RunOptions = {}): Promise<Outcome> {
  const scratch = makeScratch(scenario);
  try {
    const spec: NodeWasiRun = {
      wasm: program.wasm,
      args: [basename(program.wasm), ...scenario.args],
      env: scenario.env ?? {},
      preopens: Object.fromEntries(preopens(scenario, scratch, program).map(({ host, guest }) => [guest, host])),
    };
    const run = spawnNode(['--no-warnings', NODE_WASI_CHILD], { env: { POPCORN_NODE_WASI: JSON.stringify(spec) }, stdin: scenario.stdin, timeoutMs: options.timeoutMs ?? 10 * 60_000 });
    return outcome(await run.done, scratch);
  } finally {
    if (options.keep) options.keep(scratch);
    else rmSync(scratch, { recursive: true, force: true });
  }
}

interface PsEntry {
  pid: number;
  kernel: number;
  state: string;
  name: string;
  command: string;
}


/** A node in the background (`popcorn boot`), with its own runtime directory. */
export class BootedNode {
  private constructor(
    readonly kernels: number,
    private readonly runtime: string,
    private readonly env: Record<string, string>,
  ) {}

  static async boot(kernels: number, cacheDir = TEST_CACHE): Promise<BootedNode> {
    const runtime = mkdtempSync(join(tmpdir(), 'popcorn-prog-rt-'));
    const node = new BootedNode(kernels, runtime, { POPCORN_RUNTIME_DIR: runtime, POPCORN_CACHE_DIR: cacheDir });
    const boot = await node.cli(['boot', '--kernels', String(kernels), '--no-balance']);
    if (boot.status !== 0) throw new Error(`popcorn boot failed (${String(boot.status)}): ${boot.stderr}${boot.stdout.toString()}`);
    return node;
  }

  cli(args: string[], timeoutMs = 60_000): Promise<Spawned> {
    return spawnNode([CLI, ...args], { env: this.env, timeoutMs }).done;
  }

  async ps(): Promise<PsEntry[]> {
    const r = await this.cli(['ps', '--json']);
    if (r.status !== 0) throw new Error(`popcorn ps failed: ${r.stderr}`);
    return JSON.parse(r.stdout.toString()) as PsEntry[];
  }

  async shutdown(): Promise<void> {
    await this.cli(['shutdown']).catch(() => undefined);
    rmSync(this.runtime, { recursive: true, force: true });
  }

  /**
   * `popcorn run --on 0 …` through this node; while it runs, move the process to the next kernel
   * every `everyMs` (at most `hops` times). Resolves with the outcome and the kernels it was moved to.
   */
  async runMigrated(program: Fetched, scenario: Scenario, options: RunOptions & { hops: number; everyMs: number }): Promise<Outcome & { moves: number[] }> {
    const scratch = makeScratch(scenario);
    try {
      const session = spawnNode([CLI, 'run', '--on', '0', ...popcornArgs(program, scenario, scratch)], {
        env: this.env,
        stdin: scenario.stdin,
        timeoutMs: options.timeoutMs ?? 60 * 60_000,
      });
      let finished = false;
      const done = session.done.finally(() => (finished = true));
      const name = basename(program.wasm);
      const moves: number[] = [];
      let pid: number | undefined;
      while (!finished && moves.length < options.hops) {
        const list = await this.ps();
        const p = pid === undefined ? list.find((q) => q.name === name || q.command.startsWith(`${name} `)) : list.find((q) => q.pid === pid);
        if (p === undefined) {
          if (pid !== undefined) break; // it has exited
          await sleep(20);
          continue;
        }
        pid = p.pid;
        const to = (p.kernel + 1) % this.kernels;
        const moved = await this.cli(['migrate', String(p.pid), String(to)]);
        if (moved.status === 0) moves.push(to);
        else if (!/no process|not found|exited|gone/i.test(moved.stderr)) throw new Error(`popcorn migrate ${p.pid} ${to} failed (${String(moved.status)}): ${moved.stderr}`);
        await Promise.race([sleep(options.everyMs), done]);
      }
      const result = outcome(await done, scratch);
      return { ...result, moves };
    } finally {
      if (options.keep) options.keep(scratch);
      else rmSync(scratch, { recursive: true, force: true });
    }
  }
}

/** The differences between two outcomes, as lines (empty when they are the same). */
export function differences(a: Outcome, b: Outcome, aName: string, bName: string): string[] {
  const diffs: string[] = [];
  if (a.status !== b.status || a.signal !== b.signal) diffs.push(`exit: ${aName} ${String(a.status ?? a.signal)}, ${bName} ${String(b.status ?? b.signal)}`);
  if (!a.stdout.equals(b.stdout)) {
    let at = 0;
    while (at < a.stdout.length && at < b.stdout.length && a.stdout[at] === b.stdout[at]) at++;
    const around = (buf: Buffer): string => JSON.stringify(buf.subarray(Math.max(0, at - 40), at + 80).toString('utf8'));
    diffs.push(`stdout differs at byte ${at} (${aName} ${a.stdout.length} bytes, ${bName} ${b.stdout.length}):\n  ${aName}: ${around(a.stdout)}\n  ${bName}: ${around(b.stdout)}`);
  }
  if (a.stderr !== b.stderr) diffs.push(`stderr differs:\n  ${aName}: ${JSON.stringify(a.stderr.slice(-600))}\n  ${bName}: ${JSON.stringify(b.stderr.slice(-600))}`);
  for (const path of new Set([...Object.keys(a.files), ...Object.keys(b.files)])) {
    if (a.files[path] !== b.files[path]) diffs.push(`file ${path}: ${aName} ${a.files[path] ?? 'absent'}, ${bName} ${b.files[path] ?? 'absent'}`);
  }
  return diffs;
}

/** What a scenario's `expect` says that this outcome does not give (empty when it all holds). */
export function unmet(program: Program, scenario: Scenario, o: Outcome): string[] {
  const problems: string[] = [];
  if (o.status !== scenario.expect.status) problems.push(`${program.name} exited ${String(o.status ?? o.signal)}, expected ${scenario.expect.status}; stderr: ${o.stderr.slice(-800)}`);
  const text = o.stdout.toString('utf8');
  for (const s of scenario.expect.stdout ?? []) if (!text.includes(s)) problems.push(`stdout lacks ${JSON.stringify(s)}; it ends ${JSON.stringify(text.slice(-400))}`);
  for (const [path, sum] of Object.entries(scenario.expect.files ?? {})) {
    if (o.files[path] !== sum) problems.push(`${path}: sha256 ${o.files[path] ?? 'absent'}, the catalog pins ${sum}`);
  }
  return problems;
}
