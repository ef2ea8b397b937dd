/**
 * Helpers for the observability tests: a node in the background with its dashboard, programs on
 * it, and waiting for a condition with a deadline.
 */

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { popcorn, type RunResult } from './cli-helpers.js';

export const SPIN = ['examples/test/spin.wasm', '100000000000', '1000000000000'];

export interface ObservedNode {
  env: Record<string, string>;
  cli: (args: string[]) => Promise<RunResult>;
  /** The dashboard's URL, token included, and its parts. */
  url: string;
  base: string;
  token: string;
  /** Start a program detached; its PID. */
  start: (args: string[], on: number) => Promise<number>;
  cleanup: () => Promise<void>;
}

/** Boot `kernels` kernels (no balancer: the tests move processes themselves) with --http. */
export async function bootObserved(kernels: number): Promise<ObservedNode> {
  const dir = mkdtempSync(join(tmpdir(), 'popcorn-obs-'));
  const env = { POPCORN_RUNTIME_DIR: dir };
  // The first run of a program instruments it, which takes a while on a busy machine.
  const cli = (args: string[]): Promise<RunResult> => popcorn(args, { env, timeoutMs: 180_000 });
  const cleanup = async (): Promise<void> => {
    if (existsSync(join(dir, 'control.sock'))) await cli(['shutdown']).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  const boot = await cli(['boot', '--kernels', String(kernels), '--no-balance', '--http', '127.0.0.1:0']);
  assert.equal(boot.status, 0, boot.stderr);
  const url = /dashboard: (\S+)/.exec(boot.stdout)?.[1];
  assert.ok(url !== undefined, boot.stdout);
  const start = async (args: string[], on: number): Promise<number> => {
    const r = await cli(['run', '--detach', '--on', String(on), ...args]);
    assert.equal(r.status, 0, r.stderr);
    return Number(r.stdout.trim());
  };
  return { env, cli, url, base: url.slice(0, url.indexOf('/?')), token: url.slice(url.indexOf('token=') + 6), start, cleanup };
}

/** Poll `check` until it returns something other than undefined, or fail after `ms`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
