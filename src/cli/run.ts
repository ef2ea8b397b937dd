/**
 * `popcorn run`: run one WASI program with the command's stdio, and exit with the program's
 * status, as `wasmtime run` does. Ctrl-C sends SIGINT to the program; a second Ctrl-C sends
 * SIGKILL. The program runs on the running node (`popcorn boot`) if there is one — its stdio
 * relayed over the control connection — else on a node embedded in this command. `--kernels`,
 * `--slice-ms`, `--no-balance` and the limits (`--max-procs`, `--max-memory`, `--max-fds`)
 * describe an embedded node and always get one. `--detach` starts the program on the
 * running node, prints its PID and returns; its output goes to the node's log.
 */

import { basename, resolve } from 'node:path';
import { PopcornNode } from '../node/node.js';
import { prepareProgram } from '../wasm/loader.js';
import { instrumentProgress } from './progress.js';
import { UsageError } from './usage.js';
import { SIGINT, SIGKILL } from '../kernel/signals.js';
import { ControlClient, connectControl, controlRequest } from '../node/control-client.js';
import { ControlError } from '../node/control-protocol.js';
import type { ControlRequestInput } from '../node/control-requests.js';

export interface RunOptions {
  kernels?: number;
  on?: number;
  dir: string[];
  env: string[];
  sliceMs?: number;
  /** false with --no-balance. */
  balance?: boolean;
  detach?: boolean;
  maxProcs?: number;
  /** Bytes. */
  maxMemory?: number;
  maxFds?: number;
}

/** `--dir HOST[::GUEST]`, wasmtime's syntax: without a guest path the host path is used as is. */
export function parseDir(spec: string): { host: string; guest: string } {
  const at = spec.indexOf('::');
  const host = at < 0 ? spec : spec.slice(0, at);
  const guest = at < 0 ? spec : spec.slice(at + 2);
  if (host === '' || guest === '') throw new UsageError(`invalid --dir '${spec}': expected HOST[::GUEST]`);
  return { host: resolve(host), guest };
}

/** `--env NAME=VAL`, or `--env NAME` to pass the host's value through, as wasmtime does. */
export function parseEnv(spec: string): string | undefined {
  const at = spec.indexOf('=');
  const name = at < 0 ? spec : spec.slice(0, at);
  if (name === '' || name.includes('\0')) throw new UsageError(`invalid --env '${spec}': expected NAME=VALUE`);
  if (at >= 0) return spec;
  const value = process.env[name];
  return value === undefined ? undefined : `${name}=${value}`;
}

/** Run a program; resolves with the exit status for the popcorn command. */
export async function runCommand(modulePath: string, args: string[], options: RunOptions): Promise<number> {
  const dirs = options.dir.map(parseDir);
  const env = options.env.map(parseEnv).filter((e): e is string => e !== undefined);
  const program = await prepareProgram(modulePath, { onProgress: instrumentProgress() });
  const limits = { maxProcs: options.maxProcs, maxMemoryBytes: options.maxMemory, maxFds: options.maxFds };
  const embedded = options.kernels !== undefined || options.sliceMs !== undefined || options.balance === false || Object.values(limits).some((v) => v !== undefined);
  const request: ControlRequestInput<'run'> = { op: 'run', module: resolve(modulePath), name: basename(modulePath), args, env, dirs, on: options.on };
  if (options.detach === true) {
    if (embedded) throw new UsageError('--detach runs on the running node: --kernels, --slice-ms, --no-balance and the --max-* limits do not apply');
    const answer = await controlRequest({ ...request, detach: true }).catch(usageOf);
    process.stdout.write(`${answer.pid}\n`);
    return 0;
  }
  if (!embedded) {
    const socket = await connectControl();
    if (socket !== null) return runOnNode(new ControlClient(socket), request);
  }
  const node = await PopcornNode.boot({ kernels: options.kernels, sliceMs: options.sliceMs, balance: options.balance, limits });
  try {
    if (options.on !== undefined && (options.on < 0 || options.on >= node.kernels.length)) {
      throw new UsageError(`--on ${options.on}: this node has kernels 0–${node.kernels.length - 1}`);
    }
    const name = basename(modulePath);
    const pid = await node.start({ hash: program.hash, name, args: [name, ...args], env, dirs, kernel: options.on, module: resolve(modulePath) });
    return await superviseEmbedded(node, pid);
  } finally {
    await node.shutdown();
  }
}

/**
 * Wait for a program of a node embedded in this command, whose stdio is the command's: Ctrl-C
 * sends it SIGINT, a second one SIGKILL. Resolves with its exit status.
 */
export async function superviseEmbedded(node: PopcornNode, pid: number): Promise<number> {
  let interrupts = 0;
  const onSigint = (): void => {
    node.kill(pid, ++interrupts === 1 ? SIGINT : SIGKILL).catch((error: unknown) => process.stderr.write(`popcorn: ${String(error)}\n`));
  };
  process.on('SIGINT', onSigint);
  const exit = await node.waitExit(pid);
  process.off('SIGINT', onSigint);
  await node.flushed();
  if (exit.trap !== '') process.stderr.write(exit.trap);
  return exit.status;
}

/** A refusal the node marks as a usage mistake (a bad --on) is one here too. */
export function usageOf(error: unknown): never {
  if (error instanceof ControlError && error.usage) throw new UsageError(error.message);
  throw error;
}

/**
 * Run through the running node (a `run` or `restore` request that opens a session): relay the
 * program's stdio and signals over the connection; resolves with its exit status.
 */
export async function runOnNode(client: ControlClient, request: ControlRequestInput<'run' | 'restore'>): Promise<number> {
  client.send(request);
  let stdinListening = false;
  const wantInput = (): void => {
    if (stdinListening) {
      process.stdin.resume();
      return;
    }
    stdinListening = true;
    process.stdin.on('data', (chunk: Buffer) => {
      process.stdin.pause();
      client.send({ op: 'stdin', data: chunk.toString('base64') });
    });
    process.stdin.on('end', () => client.send({ op: 'eof' }));
    process.stdin.on('error', () => client.send({ op: 'eof' }));
  };
  let interrupts = 0;
  const onSigint = (): void => client.send({ op: 'signal', signal: ++interrupts === 1 ? SIGINT : SIGKILL });
  process.on('SIGINT', onSigint);
  try {
    for (;;) {
      const msg = await client.next();
      if (msg === null) throw new Error('lost the connection to the popcorn node');
      if (msg.ok === false) {
        if (msg.usage === true) throw new UsageError(String(msg.error));
        throw new Error(String(msg.error));
      }
      if (msg.ev === 'out') {
        const target = msg.fd === 2 ? process.stderr : process.stdout;
        if (!target.write(Buffer.from(String(msg.data), 'base64'))) {
          client.socket.pause();
          target.once('drain', () => client.socket.resume());
        }
      } else if (msg.ev === 'want') {
        wantInput();
      } else if (msg.ev === 'exit') {
        if (typeof msg.trap === 'string' && msg.trap !== '') process.stderr.write(msg.trap);
        return Number(msg.status);
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
    client.close();
    if (stdinListening) {
      process.stdin.pause();
      process.stdin.removeAllListeners('data');
      // A terminal or pipe can be unref'd; a file (`< FILE`) is an fs.ReadStream, which cannot.
      if (typeof (process.stdin as { unref?: unknown }).unref === 'function') process.stdin.unref();
    }
  }
}
