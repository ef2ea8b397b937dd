/**
 * Helpers for the single-system-image tests: a node of several kernels whose processes see
 * examples/ as /bin, each process with its own captured stdio.
 */

import { PassThrough } from 'node:stream';
import { PopcornNode, type ExitInfo } from '../src/node/node.js';
import { prepareProgram } from '../src/wasm/loader.js';
import type { NodeLimits } from '../src/kernel/limits.js';
import { example, TEST_CACHE } from './cli-helpers.js';

process.env.POPCORN_CACHE_DIR = TEST_CACHE;


export async function bootNode(kernels: number, limits?: NodeLimits): Promise<PopcornNode> {
  const io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() };
  io.stdout.resume();
  io.stderr.resume();
  return PopcornNode.boot({ kernels, io, limits, log: (text) => process.stderr.write(`node log: ${text}\n`) });
}

/** A process started by the test, with its output as it comes. */
export interface Started {
  pid: number;
  stdin: PassThrough;
  stdout: () => string;
  stderr: () => string;
  /** Resolves when `pattern` has appeared on stdout (rejects after `timeoutMs`). */
  waitFor(pattern: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves with the exit, once its output has all arrived. */
  exit(): Promise<ExitInfo>;
}

export interface StartOptions {
  kernel?: number;
  /** Extra preopens besides /bin (examples/). */
  dirs?: { host: string; guest: string }[];
  /** examples/ subdirectory to preopen as /bin (default: examples/ itself). */
  bin?: string;
}

/** Start examples/FILE with argv[0] = "/bin/FILE". */
export async function startProgram(node: PopcornNode, file: string, args: string[], options: StartOptions = {}): Promise<Started> {
  const { hash } = await prepareProgram(example(file));
  const binHost = example(options.bin ?? '.');
  const argv0 = `/bin/${options.bin === undefined ? file : file.slice(options.bin.length + 1)}`;
  const dirs = [{ host: binHost, guest: '/bin' }, ...(options.dirs ?? [])];
  return attachProcess(node, (streams) =>
    node.start({ hash, name: file, args: [argv0, ...args], env: [], dirs, kernel: options.kernel, streams, module: example(file) }),
  );
}

/** A process that `start` makes with its fds 0–2 on the stream set it is given, its output captured. */
export async function attachProcess(node: PopcornNode, start: (streams: number) => Promise<number>): Promise<Started> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    for (const l of [...listeners]) l();
  });
  stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const set = node.attachStreams({ stdin, stdout, stderr });
  let pid: number;
  try {
    pid = await start(set);
  } catch (error) {
    node.detachStreams(set);
    throw error;
  }
  const exited = node.waitExit(pid).then(async (exit) => {
    await node.flushed(set);
    return exit;
  });
  return {
    pid,
    stdin,
    stdout: () => out,
    stderr: () => err,
    waitFor(pattern, timeoutMs = 20_000) {
      const seen = (): boolean => (typeof pattern === 'string' ? out.includes(pattern) : pattern.test(out));
      if (seen()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for ${String(pattern)}; stdout: ${JSON.stringify(out)} stderr: ${JSON.stringify(err)}`));
        }, timeoutMs);
        const check = (): void => {
          if (!seen()) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve();
        };
        listeners.add(check);
      });
    },
    exit: () => exited,
  };
}
