/**
 * `popcorn boot`: start a node in the background with a control socket (src/node/control.ts).
 * The command spawns itself detached as `popcorn boot --foreground`, with stdio to the node's log
 * in the runtime directory, waits until the socket answers, and returns.
 */

import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PopcornNode } from '../node/node.js';
import { ControlServer, controlRequest, ensureRuntimeDir, logPath, socketPath } from '../node/control.js';

export interface BootOptions {
  kernels?: number;
  sliceMs?: number;
  /** false with --no-balance. */
  balance?: boolean;
  foreground?: boolean;
}

const BOOT_TIMEOUT_MS = 30_000;

/** Start a node in the background; resolves with the exit status of `popcorn boot`. */
export async function bootCommand(options: BootOptions): Promise<number> {
  if (options.foreground === true) return foreground(options);
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
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  child.unref();
  const deadline = performance.now() + BOOT_TIMEOUT_MS;
  while (performance.now() < deadline) {
    const answer = await ping(true);
    if (answer !== undefined) {
      process.stdout.write(`popcorn node started: pid ${answer}, ${await kernelCount()} kernels, control socket ${socketPath()}, log ${log}\n`);
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
    const answer = await controlRequest({ op: 'ping' });
    return Number(answer.pid);
  } catch (error) {
    if (!quiet && !(error instanceof Error && error.name === 'NoNodeError')) throw error;
    return undefined;
  }
}

async function kernelCount(): Promise<number> {
  return Number((await controlRequest({ op: 'ping' })).kernels);
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

/** The node itself: boot the kernels, serve the control socket until shutdown or SIGTERM. */
async function foreground(options: BootOptions): Promise<number> {
  ensureRuntimeDir();
  const log = (text: string): void => void process.stderr.write(`popcorn: ${text}\n`);
  const node = await PopcornNode.boot({ kernels: options.kernels, sliceMs: options.sliceMs, balance: options.balance, log });
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= node.shutdown());
  let server: ControlServer;
  try {
    server = await ControlServer.listen(node, socketPath(), { shutdown: stop, log });
  } catch (error) {
    await stop();
    throw error;
  }
  log(`node ${process.pid} up: ${node.kernels.length} kernels, control socket ${server.path}`);
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
