/**
 * A node of a cluster as an OS process, for every harness that boots them
 * (test/cluster-helpers.ts, test/netns-helpers.ts, bench/cluster.ts): the shared secret, a free
 * port, the `popcorn boot` command line, a node in the foreground as a child of the harness, and
 * whether a node's process still runs.
 */

import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { CLI } from './cli-helpers.js';
import { Child, type ChildOptions } from './child.js';

/** What makes a node a node of a cluster: `popcorn boot`'s cluster options. */
export interface NodeSpec {
  kernels: number;
  /** Where it listens, "HOST:PORT". */
  listen: string;
  /** The address of a node to join through; none: it founds the cluster. */
  join?: string | undefined;
  secretFile: string;
}

/**
 * Write a new cluster secret (32 random bytes, in base64) to `path`, private to its owner as
 * `popcorn boot` insists; returns the secret as the nodes read it.
 */
export function writeSecret(path: string): Buffer {
  const secret = Buffer.from(randomBytes(32).toString('base64'));
  writeFileSync(path, secret, { mode: 0o600 });
  chmodSync(path, 0o600); // mode only applies to a new file
  return secret;
}

/** A random high TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = net.createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('found no free port on 127.0.0.1');
}

/** What a node says when another process took its port meanwhile (src/node/cluster.ts). */
const PORT_TAKEN = /cannot listen/;

/**
 * `start` something on a free port of 127.0.0.1, again on another while the port was taken
 * meanwhile — what it threw, or what `failure` finds in what it returned, says so — `attempts`
 * times in all: what the last attempt returned, or threw.
 */
export async function onFreePort<T>(attempts: number, start: (port: number) => Promise<T>, failure: (result: T) => string = () => ''): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const last = attempt >= attempts;
    try {
      const result = await start(await freePort());
      if (last || !PORT_TAKEN.test(failure(result))) return result;
    } catch (error) {
      if (last || !PORT_TAKEN.test((error as Error).message)) throw error;
    }
  }
}

/** `popcorn boot` for the node `spec` (the CLI's arguments, after the script). */
export function bootArgs(spec: NodeSpec): string[] {
  const join = spec.join === undefined ? [] : ['--join', spec.join];
  return ['boot', '-k', String(spec.kernels), '--listen', spec.listen, ...join, '--secret-file', spec.secretFile];
}

/**
 * `popcorn boot --foreground --no-balance` for the node `spec`, as a child of the harness: its
 * log is the child's output. Balance is off so that nothing moves unless the harness moves it.
 */
export function startNode(spec: NodeSpec, options: Omit<ChildOptions, 'script' | 'args'>): Child {
  return new Child({ ...options, script: CLI, args: [...bootArgs(spec), '--foreground', '--no-balance'] });
}

/** How a node in the foreground says it is up, with its node number (src/cli/boot.ts). */
const UP = /node \d+ up: .*node (\d+) of a cluster/;

/** Resolves with the node number of `node`, started by startNode, once it says it is up. */
export async function nodeUp(node: Child, timeoutMs: number): Promise<number> {
  await node.waitFor(UP, timeoutMs);
  return Number(UP.exec(node.output)?.[1]);
}

/**
 * Whether process `pid` runs: it exists (EPERM: someone else's, but it exists) and is not a
 * zombie (a node's process is nobody's child once `popcorn boot` returns).
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: take kill's word
  }
}
