/**
 * The sandbox against a host process that swaps a directory inside the preopen for a symlink to
 * a directory outside it, as fast as it can, while the guest's path calls run: no call may reach
 * outside (the secret is never read, the outside's files never changed, nothing appears there).
 * Linux only: the walk holds directories open through /proc (sandbox.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { WasiError } from '../src/kernel/wasi/errno.js';
import { HostDirectory, HostFile } from '../src/kernel/wasi/file-description.js';
import {
  createDirectoryIn, linkIn, openIn, readlinkIn, removeDirectoryIn, renameIn, setTimesIn, statIn, symlinkIn, unlinkFileIn,
} from '../src/kernel/wasi/path-ops.js';
import { Fstflags, Rights } from '../src/kernel/wasi/types.js';
import { tempDir } from './wasi-helpers.js';

const RACE_MS = 4_000;

/** Swaps root/d (a directory) and root/dlink (a symlink to outside) with renames until killed. */
const SWAPPER = `
const fs = require('node:fs');
const [root] = process.argv.slice(1);
process.stdout.write('ready\\n');
for (;;) {
  try {
    fs.renameSync(root + '/d', root + '/d.real');
    fs.renameSync(root + '/dlink', root + '/d');
    fs.renameSync(root + '/d', root + '/dlink');
    fs.renameSync(root + '/d.real', root + '/d');
  } catch {}
}`;

/** A guest's call: a refusal (any errno) is fine, only reaching outside is not. */
function attempt(call: () => void): boolean {
  try {
    call();
    return true;
  } catch (error) {
    if (error instanceof WasiError) return false;
    throw error;
  }
}

test('a directory swapped for a symlink to outside never leads a path call out of the preopen', { timeout: 60_000 }, async (t) => {
  if (process.platform !== 'linux') return t.skip('the walk holds directories open through /proc, which is Linux');
  const top = tempDir('wasi-race-');
  const root = `${top}/root`;
  const outside = `${top}/outside`;
  fs.mkdirSync(`${root}/d`, { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(`${root}/d/secret`, 'inside');
  fs.writeFileSync(`${outside}/secret`, 'SECRET');
  fs.writeFileSync(`${outside}/victim`, 'keep');
  fs.symlinkSync(outside, `${root}/dlink`);
  const before = fs.statSync(`${outside}/secret`);
  const dir = new HostDirectory(root);
  const child = spawn(process.execPath, ['-e', SWAPPER, root], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const counts = { opens: 0, reads: 0, escapes: 0, calls: 0 };
    const buf = new Uint8Array(16);
    const end = performance.now() + RACE_MS;
    while (performance.now() < end) {
      attempt(() => {
        const f = openIn(dir, 'd/secret', 0, 0, Rights.FD_READ, 0);
        counts.opens++;
        try {
          const n = (f as HostFile).read(buf, 0, buf.length);
          counts.reads++;
          if (Buffer.from(buf.subarray(0, n)).toString() !== 'inside') counts.escapes++;
        } finally {
          f.close();
        }
      });
      // Every other path call, each aimed at outside's files through the swapped name.
      const calls = [
        () => statIn(dir, 'd/secret', false),
        () => setTimesIn(dir, 'd/secret', false, 0n, 0n, Fstflags.ATIM | Fstflags.MTIM),
        () => unlinkFileIn(dir, 'd/victim'),
        () => createDirectoryIn(dir, 'd/made'),
        () => removeDirectoryIn(dir, 'd/made'),
        () => symlinkIn(dir, 'x', 'd/link'),
        () => unlinkFileIn(dir, 'd/link'),
        () => linkIn(dir, 'd/secret', false, dir, 'd/hard'),
        () => unlinkFileIn(dir, 'd/hard'),
        () => renameIn(dir, 'd/secret', dir, 'd/moved'),
        () => renameIn(dir, 'd/moved', dir, 'd/secret'),
        () => readlinkIn(dir, 'd/link'),
      ];
      for (const call of calls) if (attempt(call)) counts.calls++;
      attempt(() => {
        if (statIn(dir, 'd/secret', false).ino === BigInt(before.ino)) counts.escapes++;
      });
    }
    t.diagnostic(`${counts.opens} opens, ${counts.reads} reads, ${counts.calls} other calls done in ${RACE_MS} ms of swaps`);
    assert.ok(counts.reads > 0, 'some opens won the race');
    assert.equal(counts.escapes, 0, 'the secret outside was read or stat-ed');
    assert.deepEqual(fs.readdirSync(outside).sort(), ['secret', 'victim'], 'nothing was made, moved or removed outside');
    assert.equal(fs.readFileSync(`${outside}/secret`, 'utf8'), 'SECRET');
    assert.equal(fs.statSync(`${outside}/secret`).mtimeMs, before.mtimeMs, "the outside file's times were not set");
  } finally {
    child.kill('SIGKILL');
    fs.rmSync(top, { recursive: true, force: true });
  }
});
