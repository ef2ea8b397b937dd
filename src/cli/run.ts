/**
 * `popcorn run`: boot a node (or, later, use a running one), run one WASI program on it with the
 * command's stdio, and exit with the program's status, as `wasmtime run` does. Ctrl-C sends
 * SIGINT to the program; a second Ctrl-C sends SIGKILL.
 */

import { basename, resolve } from 'node:path';
import { PopcornNode } from '../node/node.js';
import { prepareProgram } from '../wasm/loader.js';
import { UsageError } from './usage.js';

export interface RunOptions {
  kernels?: number;
  on?: number;
  dir: string[];
  env: string[];
  sliceMs?: number;
}

const SIGINT = 2;
const SIGKILL = 9;

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
  const program = await prepareProgram(modulePath, { onProgress: (text) => process.stderr.write(`popcorn: ${text}\n`) });
  const node = await PopcornNode.boot({ kernels: options.kernels, sliceMs: options.sliceMs });
  try {
    if (options.on !== undefined && (options.on < 0 || options.on >= node.kernels.length)) {
      throw new UsageError(`--on ${options.on}: this node has kernels 0–${node.kernels.length - 1}`);
    }
    const name = basename(modulePath);
    const pid = await node.start({ hash: program.hash, name, args: [name, ...args], env, dirs, kernel: options.on });
    let interrupts = 0;
    const onSigint = (): void => node.kill(pid, ++interrupts === 1 ? SIGINT : SIGKILL);
    process.on('SIGINT', onSigint);
    const exit = await node.waitExit(pid);
    process.off('SIGINT', onSigint);
    await node.flushed();
    if (exit.trap !== '') process.stderr.write(exit.trap);
    return exit.status;
  } finally {
    await node.shutdown();
  }
}
