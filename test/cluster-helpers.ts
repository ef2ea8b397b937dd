/**
 * A cluster driven through the `popcorn` command, for the cluster tests and the stress script:
 * nodes as real OS processes (`popcorn boot --listen … --join …`, test/cluster-node.ts), each
 * with its own runtime directory (control socket, node.log), sharing one secret file and one
 * module cache; `popcorn` commands against any of them; long-running sessions; and a cleanup
 * that leaves no node behind, even after a failed test.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT, TEST_CACHE, example, popcorn, sleep, type RunResult } from './cli-helpers.js';
import { bootArgs, isAlive, onFreePort, writeSecret } from './cluster-node.js';
import { prepareProgram } from '../src/wasm/loader.js';

/** A node of the cluster, as the tests drive it. */
export interface ClusterNode {
  /** Its node number (0 for the founder, then 1, 2, … in the order they joined). */
  readonly node: number;
  /** Its runtime directory (POPCORN_RUNTIME_DIR): control socket and node.log. */
  readonly dir: string;
  /** Its cluster address, "127.0.0.1:PORT". */
  readonly listen: string;
  /** The pid of its OS process (`popcorn boot --foreground`). */
  readonly pid: number;
  /** Run `popcorn ARGS` against this node; resolves when it exits. */
  cli(args: string[], options?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  /**
   * Start `popcorn ARGS` against this node without waiting for it (a run session). Its stdin is
   * closed at once, unless `keepStdin`: then it stays open until the caller ends `child.stdin`.
   */
  session(args: string[], options?: { keepStdin?: boolean }): Session;
  /** Its node.log so far. */
  log(): string;
  /** Whether its OS process is still alive. */
  alive(): boolean;
}

/** A `popcorn` command still running, its output as it comes. */
export interface Session {
  readonly child: ChildProcess;
  stdout(): Buffer;
  stderr(): string;
  /** Resolves once `pattern` has appeared on stdout; rejects after `timeoutMs` or if it exits first. */
  waitFor(pattern: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves when it has exited (stdout as text). */
  done: Promise<RunResult & { bytes: Buffer }>;
}

export interface Cluster {
  readonly root: string;
  readonly secretFile: string;
  readonly cache: string;
  readonly nodes: ClusterNode[];
  /**
   * Boot one more node joining through `via` (default: the last node), with its own module cache
   * `cache` if given (default: the shared one); rejects if it fails.
   */
  join(via?: ClusterNode, kernels?: number, cache?: string): Promise<ClusterNode>;
  /**
   * `popcorn boot` for a node that is expected to fail (e.g. a wrong secret): its result, and
   * its runtime directory. A node that came up anyway is tracked and shut down with the others.
   */
  tryBoot(args: { join: ClusterNode; secretFile: string; kernels?: number }): Promise<{ result: RunResult; dir: string }>;
  /** Shut every node down (popcorn shutdown, then SIGKILL for any left), stop sessions, remove files. */
  close(): Promise<void>;
}

/** Every module the cluster tests run, prepared before any node boots (see `bootCluster`). */
export const MODULES = [
  'hello.wasm', 'whoami.wasm', 'cat.wasm', 'wc.wasm', 'echo.wasm', 'sh.wasm',
  'bench/spawn.wasm', 'bench/true.wasm',
  'test/family.wasm', 'test/migrate.wasm', 'test/dirs.wasm', 'test/spin.wasm', 'test/exit_code.wasm', 'test/echo_stdin.wasm', 'test/trap.wasm',
];

const BOOT_ATTEMPTS = 6;

/**
 * Form a cluster of `count` nodes of `kernels` kernels each on loopback: node 0 founds it, each
 * next node joins through the one before (so joining through a non-founder is exercised too).
 *
 * Every module the tests use is instrumented first, into the shared cache, so that no test waits
 * seconds for a node to instrument one (the last test of cluster.test.ts does that on purpose).
 */
export async function bootCluster(count: number, kernels = 2): Promise<Cluster> {
  const root = mkdtempSync(join(tmpdir(), 'popcorn-cluster-'));
  const secretFile = join(root, 'secret');
  writeSecret(secretFile);
  const cache = TEST_CACHE;
  const previousCache = process.env.POPCORN_CACHE_DIR;
  process.env.POPCORN_CACHE_DIR = cache;
  try {
    for (const m of MODULES) await prepareProgram(example(m));
  } finally {
    if (previousCache === undefined) delete process.env.POPCORN_CACHE_DIR;
    else process.env.POPCORN_CACHE_DIR = previousCache;
  }

  const nodes: ClusterNode[] = [];
  const pids = new Set<number>();
  const dirs: string[] = [];
  const sessions = new Set<ChildProcess>();
  let nextDir = 0;

  const envOf = (dir: string, nodeCache = cache): Record<string, string> => ({ POPCORN_RUNTIME_DIR: dir, POPCORN_CACHE_DIR: nodeCache });
  const newDir = (): string => {
    const dir = join(root, `node${nextDir++}`);
    mkdirSync(dir, { mode: 0o700 });
    dirs.push(dir);
    return dir;
  };

  /** `popcorn boot` (in the background) on a free port, again on another if that one was taken. */
  const boot = (dir: string, through: string | undefined, bootKernels: number, secret: string, nodeCache = cache): Promise<{ result: RunResult; listen: string; pid: number | undefined }> =>
    onFreePort(BOOT_ATTEMPTS, async (port) => {
      const listen = `127.0.0.1:${port}`;
      const result = await popcorn(bootArgs({ kernels: bootKernels, listen, join: through, secretFile: secret }), { env: envOf(dir, nodeCache), timeoutMs: 40_000 });
      const pid = /pid (\d+)/.exec(result.stdout)?.[1];
      if (pid !== undefined) pids.add(Number(pid));
      return { result, listen, pid: pid === undefined ? undefined : Number(pid) };
    }, ({ result }) => (result.status === 0 ? '' : result.stderr));

  const makeNode = (node: number, dir: string, listen: string, pid: number, nodeCache = cache): ClusterNode => {
    const env = envOf(dir, nodeCache);
    return {
      node,
      dir,
      listen,
      pid,
      cli: (args, options = {}) => popcorn(args, { env, timeoutMs: options.timeoutMs ?? 30_000, ...(options.input === undefined ? {} : { input: options.input }) }),
      session: (args, options = {}) => {
        const s = startSession(args, env, options);
        sessions.add(s.child);
        void s.done.finally(() => sessions.delete(s.child));
        return s;
      },
      log: () => {
        try {
          return readFileSync(join(dir, 'node.log'), 'utf8');
        } catch {
          return '';
        }
      },
      alive: () => isAlive(pid),
    };
  };

  const cluster: Cluster = {
    root,
    secretFile,
    cache,
    nodes,
    async join(via, joinKernels = kernels, nodeCache = cache) {
      const dir = newDir();
      const through = via === undefined && nodes.length === 0 ? undefined : (via ?? (nodes.at(-1) as ClusterNode)).listen;
      const { result, listen, pid } = await boot(dir, through, joinKernels, secretFile, nodeCache);
      if (result.status !== 0 || pid === undefined) {
        throw new Error(`popcorn boot${through === undefined ? '' : ` --join ${through}`} failed (${String(result.status)}): ${result.stderr}${result.stdout}`);
      }
      const number = /node (\d+) of a cluster/.exec(result.stdout)?.[1];
      const node = makeNode(number === undefined ? 0 : Number(number), dir, listen, pid, nodeCache);
      nodes.push(node);
      return node;
    },
    async tryBoot({ join: via, secretFile: secret, kernels: k = kernels }) {
      const dir = newDir();
      const { result } = await boot(dir, via.listen, k, secret);
      return { result, dir };
    },
    async close() {
      for (const child of sessions) child.kill('SIGKILL');
      // Shut down every node whose control socket is there; a dead node's is left behind.
      await Promise.all(
        dirs.map(async (dir) => {
          if (!existsSync(join(dir, 'control.sock'))) return;
          await popcorn(['shutdown'], { env: envOf(dir), timeoutMs: 15_000 }).catch(() => undefined);
        }),
      );
      for (const pid of pids) {
        for (let i = 0; i < 20 && isAlive(pid); i++) await sleep(50);
        if (isAlive(pid)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
      }
      rmSync(root, { recursive: true, force: true });
    },
  };

  try {
    for (let i = 0; i < count; i++) await cluster.join();
  } catch (error) {
    await cluster.close();
    throw error;
  }
  return cluster;
}

/** `popcorn ARGS` as a child process, its output collected as it comes. */
export function startSession(args: string[], env: Record<string, string>, options: { keepStdin?: boolean } = {}): Session {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout?.on('data', (d: Buffer) => {
    out.push(d);
    for (const l of [...listeners]) l();
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  if (options.keepStdin !== true) child.stdin?.end();
  const done = new Promise<RunResult & { bytes: Buffer }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => {
      const bytes = Buffer.concat(out);
      for (const l of [...listeners]) l();
      resolve({ status, signal, stdout: bytes.toString('utf8'), stderr: err, bytes });
    });
  });
  let exited = false;
  void done.then(() => (exited = true));
  return {
    child,
    stdout: () => Buffer.concat(out),
    stderr: () => err,
    done,
    waitFor(pattern, timeoutMs = 20_000) {
      const seen = (): boolean => {
        const text = Buffer.concat(out).toString('utf8');
        return typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text);
      };
      if (seen()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const fail = (why: string): void => {
          clearTimeout(timer);
          listeners.delete(check);
          reject(new Error(`${why} waiting for ${String(pattern)} from popcorn ${args.join(' ')}; stdout: ${JSON.stringify(Buffer.concat(out).toString('utf8'))} stderr: ${JSON.stringify(err)}`));
        };
        const timer = setTimeout(() => fail('timed out'), timeoutMs);
        const check = (): void => {
          if (seen()) {
            clearTimeout(timer);
            listeners.delete(check);
            resolve();
          } else if (exited || child.exitCode !== null) fail('it exited');
        };
        listeners.add(check);
      });
    },
  };
}

/** Poll `probe` until it returns a value other than undefined; rejects after `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
