/**
 * `popcorn boot`: start a node in the background with a control socket (src/node/control.ts).
 * The command spawns itself detached as `popcorn boot --foreground`, with stdio to the node's log
 * in the runtime directory, waits until the socket answers, and returns.
 */

import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PopcornNode } from '../node/node.js';
import type { ControlServer } from '../node/control-server.js';
import { controlRequest } from '../node/control-client.js';
import { ensureRuntimeDir, logPath, socketPath } from '../node/control-protocol.js';
import { ClusterError, parseAddress, type ClusterOptions } from '../node/cluster.js';
import { UsageError } from './usage.js';

export interface BootOptions {
  kernels?: number;
  sliceMs?: number;
  /** false with --no-balance. */
  balance?: boolean;
  listen?: string;
  join?: string;
  secretFile?: string;
  foreground?: boolean;
  /** Serve the dashboard and /metrics on HOST:PORT. */
  http?: string;
  maxProcs?: number;
  /** Bytes. */
  maxMemory?: number;
  maxFds?: number;
}

const BOOT_TIMEOUT_MS = 30_000;

/** Start a node in the background; resolves with the exit status of `popcorn boot`. */
export async function bootCommand(options: BootOptions): Promise<number> {
  const cluster = clusterOptions(options); // bad cluster options fail here, before anything starts
  if (options.foreground === true) return foreground(options, cluster);
  const running = await ping();
  if (running !== undefined) {
    process.stderr.write(`popcorn: a popcorn node is already running (pid ${running}, control socket ${socketPath()})\n`);
    return 1;
  }
  ensureRuntimeDir();
  const log = logPath();
  const fd = openSync(log, 'w', 0o600);
  const args = [fileURLToPath(new URL('./main.js', import.meta.url)), 'boot', '--foreground'];
  if (options.kernels !== undefined) args.push('--kernels', String(options.kernels));
  if (options.sliceMs !== undefined) args.push('--slice-ms', String(options.sliceMs));
  if (options.balance === false) args.push('--no-balance');
  if (options.maxProcs !== undefined) args.push('--max-procs', String(options.maxProcs));
  if (options.maxMemory !== undefined) args.push('--max-memory', String(options.maxMemory));
  if (options.maxFds !== undefined) args.push('--max-fds', String(options.maxFds));
  if (options.listen !== undefined) args.push('--listen', options.listen);
  if (options.join !== undefined) args.push('--join', options.join);
  if (options.secretFile !== undefined) args.push('--secret-file', resolve(options.secretFile));
  if (options.http !== undefined) args.push('--http', options.http);
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  child.unref();
  const deadline = performance.now() + BOOT_TIMEOUT_MS;
  while (performance.now() < deadline) {
    const answer = await ping(true);
    if (answer !== undefined) {
      process.stdout.write(`popcorn node started: pid ${answer}, ${await describeNode()}, control socket ${socketPath()}, log ${log}\n`);
      // The same address as the node's own: whichever asks first starts it there.
      if (options.http !== undefined) process.stdout.write(`dashboard: ${String((await controlRequest({ op: 'dashboard', http: options.http })).url)}\n`);
      return 0;
    }
    if (exited !== undefined) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  process.stderr.write(`popcorn: the node did not start${exited !== undefined ? ` (exit ${exited})` : ''}; its log (${log}):\n${tail(log)}`);
  if (exited === undefined) child.kill('SIGKILL');
  return 1;
}

/** The pid of the running node, or undefined when none answers. */
async function ping(quiet = false): Promise<number | undefined> {
  try {
    return (await controlRequest({ op: 'ping' })).pid;
  } catch (error) {
    if (!quiet && !(error instanceof Error && error.name === 'NoNodeError')) throw error;
    return undefined;
  }
}

/** "2 kernels", or "node 1 of a cluster of 3 nodes, 2 of its 6 kernels". */
async function describeNode(): Promise<string> {
  const { kernels, members, node, cluster_kernels: clusterKernels } = await controlRequest({ op: 'ping' });
  if (members.length === 0 && clusterKernels === kernels) return `${kernels} kernels`;
  return `node ${node} of a cluster of ${members.length + 1} nodes, ${kernels} of its ${clusterKernels} kernels`;
}

/** --listen, --join and --secret-file as the node takes them; undefined without --listen. */
function clusterOptions(options: BootOptions): ClusterOptions | undefined {
  if (options.listen === undefined) {
    if (options.join !== undefined) throw new UsageError('--join needs --listen HOST:PORT: the other nodes connect to this one too');
    if (options.secretFile !== undefined) throw new UsageError('--secret-file is for a cluster: give --listen HOST:PORT');
    return undefined;
  }
  if (options.secretFile === undefined) throw new UsageError('--listen needs --secret-file PATH: cluster links are authenticated with a shared secret');
  try {
    return {
      listen: parseAddress(options.listen),
      join: options.join === undefined ? undefined : parseAddress(options.join),
      secret: readSecret(options.secretFile),
    };
  } catch (error) {
    if (error instanceof ClusterError) throw new UsageError(error.message);
    throw error;
  }
}

/** The secret file's bytes; it must be private to its owner, as ssh wants of a key. */
function readSecret(path: string): Uint8Array {
  let mode: number;
  let secret: Buffer;
  try {
    mode = statSync(path).mode;
    secret = readFileSync(path);
  } catch (error) {
    throw new UsageError(`--secret-file ${path}: ${(error as Error).message}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new UsageError(`--secret-file ${path} can be read by others (mode ${(mode & 0o777).toString(8)}): chmod 600 ${path}`);
  }
  const trimmed = secret.subarray(0, secret.length - (secret.at(-1) === 0x0a ? 1 : 0));
  if (trimmed.length < 16) throw new UsageError(`--secret-file ${path}: the secret must be at least 16 bytes`);
  return trimmed;
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

/** The node itself: boot the kernels, serve the control socket until shutdown or SIGTERM. */
async function foreground(options: BootOptions, cluster: ClusterOptions | undefined): Promise<number> {
  ensureRuntimeDir();
  const log = (text: string): void => void process.stderr.write(`popcorn: ${text}\n`);
  const limits = { maxProcs: options.maxProcs, maxMemoryBytes: options.maxMemory, maxFds: options.maxFds };
  const node = await PopcornNode.boot({ kernels: options.kernels, sliceMs: options.sliceMs, balance: options.balance, log, cluster, limits });
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= node.shutdown());
  let server: ControlServer;
  try {
    // Loaded here, not with the command: its request checks (zod) would slow every command.
    const { ControlServer } = await import('../node/control-server.js');
    server = await ControlServer.listen(node, socketPath(), { shutdown: stop, log });
  } catch (error) {
    await stop();
    throw error;
  }
  const where = cluster === undefined ? '' : `, node ${node.node} of a cluster (listening on ${options.listen ?? ''})`;
  log(`node ${process.pid} up: ${node.kernels.length} kernels${where}, control socket ${server.path}`);
  if (options.http !== undefined) {
    try {
      log(`dashboard: ${await server.dashboard(options.http)}`);
    } catch (error) {
      server.close();
      await stop();
      throw error;
    }
  }
  const onSignal = (): void => {
    server.close();
    void stop();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (stopped !== undefined) {
        clearInterval(check);
        void stopped.then(resolve);
      }
    }, 50);
  });
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  log('node stopped');
  return 0;
}
