/**
 * Loaded first (`node --import`) by every child of a harness (test/child.ts): once the harness
 * process is gone — killed outright, so it could not clean up — the child stops itself, by
 * SIGTERM where it handles that (a node's clean shutdown), else by exiting, and removes the
 * harness's temp dir as it exits.
 *
 * Without $POPCORN_HARNESS_PARENT it does nothing (`node --test dist/test/` loads every file).
 */

import { rmSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

const parent = process.env['POPCORN_HARNESS_PARENT'];
const dir = process.env['POPCORN_HARNESS_DIR'];

/** Whether the harness process still runs. */
function parentAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// A node's kernels are worker threads, loaded with the same --import: one guard per process.
if (isMainThread && parent !== undefined) {
  const check = setInterval(() => {
    if (parentAlive(Number(parent))) return;
    clearInterval(check);
    if (dir !== undefined) process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    if (process.listenerCount('SIGTERM') > 0) process.kill(process.pid, 'SIGTERM');
    else process.exit(0);
  }, 500);
  check.unref();
}
