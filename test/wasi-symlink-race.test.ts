/**
 * The sandbox against a host process that swaps a directory inside the preopen for a symlink to
 * a directory outside it, as fast as it can, while the guest's path calls run: no call may reach
 * outside (the secret is never read, the outside's files never changed, nothing appears there).
 * Then the same against a directory fd a guest opened (path_open O_DIRECTORY): the host renames
 * that very directory away and puts a symlink to outside in its place; the fd names the directory,
 * not the path, so its calls go on acting inside the directory it was opened on.
 * Linux only: the walk holds directories open through /proc (sandbox.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { Errno, WasiError } from '../src/kernel/wasi/errno.js';
import { HostFile } from '../src/kernel/wasi/file-description.js';
import { HostDirectory } from '../src/kernel/wasi/host-directory.js';
import {
  createDirectoryIn, linkIn, openIn, readlinkIn, removeDirectoryIn, renameIn, setTimesIn, statIn, symlinkIn, unlinkFileIn,
} from '../src/kernel/wasi/path-ops.js';
import { DIR_RIGHTS, Fstflags, Oflags, Rights } from '../src/kernel/wasi/types.js';
import { ALL, harness, tempDir, type Harness } from './wasi-helpers.js';

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

// ---- a directory fd whose own directory is swapped ---------------------------------------------

/**
 * Swaps root/d (a directory) and root/dlink (a symlink to outside) with renames for `ms`, then
 * prints how many swaps it made (one each way per cycle) and exits, root/d a directory again.
 */
const TIMED_SWAPPER = `
const fs = require('node:fs');
const [root, ms] = process.argv.slice(1);
process.stdout.write('ready\\n');
const end = Date.now() + Number(ms);
let swaps = 0;
while (Date.now() < end) {
  try {
    fs.renameSync(root + '/d', root + '/d.real');
    fs.renameSync(root + '/dlink', root + '/d');
    swaps++;
    fs.renameSync(root + '/d', root + '/dlink');
    fs.renameSync(root + '/d.real', root + '/d');
    swaps++;
  } catch {}
}
process.stdout.write(swaps + '\\n');`;

/** Host fds of this process now (the directory fds must all be given back). */
const hostFds = (): number => fs.readdirSync('/proc/self/fd').length;

/** A guest's view: path calls through the imports, with its strings and buffers made once. */
class Guest {
  private readonly strings = new Map<string, [number, number]>();
  private readonly buf: number;
  private readonly iov: number;
  private readonly out: number;
  private readonly stat: number;

  constructor(readonly h: Harness) {
    this.buf = h.alloc(4096);
    this.iov = h.iov([this.buf, 4096]);
    this.out = h.alloc(8);
    this.stat = h.alloc(64);
  }

  private s(text: string): [number, number] {
    let s = this.strings.get(text);
    if (s === undefined) {
      s = this.h.str(text);
      this.strings.set(text, s);
    }
    return s;
  }

  /** path_open (a directory's rights by default); returns [errno, fd]. */
  open(dirfd: number, path: string, oflags = 0, rights = BigInt(DIR_RIGHTS)): [number, number] {
    const [p, l] = this.s(path);
    const errno = this.h.w.path_open!(dirfd, 0, p, l, oflags, rights, ALL, 0, this.out) as number;
    return [errno, errno === 0 ? this.h.u32(this.out) : -1];
  }

  /** The whole content of `path` in `dirfd`, or the errno of the first call that failed. */
  readFile(dirfd: number, path: string): string | number {
    const [errno, fd] = this.open(dirfd, path, 0, BigInt(Rights.FD_READ));
    if (errno !== 0) return errno;
    try {
      const r = this.h.w.fd_read!(fd, this.iov, 1, this.out) as number;
      return r === 0 ? this.h.text(this.buf, this.h.u32(this.out)) : r;
    } finally {
      this.h.w.fd_close!(fd);
    }
  }

  /** Creates `path` (O_EXCL) and closes it. */
  create(dirfd: number, path: string): number {
    const [errno, fd] = this.open(dirfd, path, Oflags.CREAT | Oflags.EXCL, BigInt(Rights.FD_WRITE));
    if (errno === 0) this.h.w.fd_close!(fd);
    return errno;
  }

  /** path_filestat_get (not following); the inode, or the errno. */
  inoOf(dirfd: number, path: string): bigint | number {
    const [p, l] = this.s(path);
    const errno = this.h.w.path_filestat_get!(dirfd, 0, p, l, this.stat) as number;
    return errno === 0 ? this.h.u64(this.stat + 8) : errno;
  }

  /** fd_filestat_get: the inode, or the errno. */
  fdIno(fd: number): bigint | number {
    const errno = this.h.w.fd_filestat_get!(fd, this.stat) as number;
    return errno === 0 ? this.h.u64(this.stat + 8) : errno;
  }

  /** fd_readdir from cookie 0: the names, or the errno. */
  list(fd: number): string[] | number {
    const errno = this.h.w.fd_readdir!(fd, this.buf, 4096, 0n, this.out) as number;
    if (errno !== 0) return errno;
    const names: string[] = [];
    const end = this.buf + this.h.u32(this.out);
    for (let p = this.buf; p < end; p += 24 + this.h.u32(p + 16)) names.push(this.h.text(p + 24, this.h.u32(p + 16)));
    return names.sort();
  }

  /** A one-path call by import name (path_create_directory, path_unlink_file, ...). */
  call(name: 'path_create_directory' | 'path_remove_directory' | 'path_unlink_file', dirfd: number, path: string): number {
    const [p, l] = this.s(path);
    return this.h.w[name]!(dirfd, p, l) as number;
  }

  rename(dirfd: number, from: string, to: string): number {
    const [p, l] = this.s(from);
    const [q, m] = this.s(to);
    return this.h.w.path_rename!(dirfd, p, l, dirfd, q, m) as number;
  }

  symlink(target: string, dirfd: number, path: string): number {
    const [p, l] = this.s(target);
    const [q, m] = this.s(path);
    return this.h.w.path_symlink!(p, l, dirfd, q, m) as number;
  }

  readlink(dirfd: number, path: string): string | number {
    const [p, l] = this.s(path);
    const errno = this.h.w.path_readlink!(dirfd, p, l, this.buf, 4096, this.out) as number;
    return errno === 0 ? this.h.text(this.buf, this.h.u32(this.out)) : errno;
  }

  /** path_filestat_set_times of `path` to `ns` (both times). */
  setTimes(dirfd: number, path: string, ns: bigint): number {
    const [p, l] = this.s(path);
    return this.h.w.path_filestat_set_times!(dirfd, 0, p, l, ns, ns, Fstflags.ATIM | Fstflags.MTIM) as number;
  }
}

/** root/d (the directory the guest opens) with a file, and outside, beside root, with its own. */
function layout(h: Harness): { outside: string; inner: fs.Stats; outer: fs.Stats; outerDir: fs.Stats } {
  const outside = tempDir('wasi-race-outside-');
  fs.mkdirSync(`${h.dir}/d`);
  fs.writeFileSync(`${h.dir}/d/secret`, 'inside');
  fs.writeFileSync(`${outside}/secret`, 'SECRET');
  fs.writeFileSync(`${outside}/victim`, 'keep');
  return { outside, inner: fs.statSync(`${h.dir}/d`), outer: fs.statSync(`${outside}/secret`), outerDir: fs.statSync(outside) };
}

test('a directory fd names its directory: renamed away and replaced by a symlink to outside, the fd still acts inside it', (t) => {
  if (process.platform !== 'linux') return t.skip('directories are held through /proc, which is Linux');
  const h = harness({ pages: 2 });
  const { outside, inner, outer, outerDir } = layout(h);
  const g = new Guest(h);
  const fdsBefore = hostFds();
  try {
    const [errno, d] = g.open(3, 'd', Oflags.DIRECTORY);
    assert.equal(errno, 0);
    fs.renameSync(`${h.dir}/d`, `${h.dir}/d.moved`);
    fs.symlinkSync(outside, `${h.dir}/d`);

    assert.equal(g.readFile(d, 'secret'), 'inside');
    assert.equal(g.create(d, 'new'), 0);
    assert.ok(fs.existsSync(`${h.dir}/d.moved/new`), 'created in the directory the fd names');
    assert.equal(g.call('path_create_directory', d, 'sub'), 0);
    assert.ok(fs.statSync(`${h.dir}/d.moved/sub`).isDirectory());
    assert.equal(g.call('path_unlink_file', d, 'victim'), Errno.NOENT, "outside's victim is not in the fd's directory");
    assert.deepEqual(g.list(d), ['.', '..', 'new', 'secret', 'sub']);
    assert.equal(g.fdIno(d), BigInt(inner.ino), 'fd_filestat_get: the directory itself');
    assert.equal(g.inoOf(d, '.'), BigInt(inner.ino), 'path_filestat_get of "."');
    // fd_filestat_set_times on the fd sets the held directory's times, not outside's.
    const ns = 1_000_000_000_123_456_789n;
    assert.equal(h.w.fd_filestat_set_times!(d, ns, ns, Fstflags.ATIM | Fstflags.MTIM), 0);
    assert.equal(fs.statSync(`${h.dir}/d.moved`, { bigint: true }).mtimeNs, ns);
    assert.equal(fs.statSync(outside).mtimeMs, outerDir.mtimeMs, "outside's times were not set");

    // A second fd on the same description (renumbered over a fresh one) and a directory opened
    // through the fd hold the same directory; closing them gives every host fd back, once.
    const [, again] = g.open(3, '.', Oflags.DIRECTORY);
    const [, sub] = g.open(d, 'sub', Oflags.DIRECTORY);
    assert.equal(h.w.fd_renumber!(d, again), 0);
    assert.equal(g.readFile(again, 'secret'), 'inside');
    assert.equal(g.inoOf(sub, '..'), Errno.PERM, '".." above a directory fd leaves it');
    assert.equal(h.w.fd_close!(sub), 0);
    assert.equal(h.w.fd_close!(again), 0);
    assert.equal(hostFds(), fdsBefore, 'every host fd a directory held is closed');

    assert.deepEqual(fs.readdirSync(outside).sort(), ['secret', 'victim'], 'nothing made or removed outside');
    assert.equal(fs.readFileSync(`${outside}/secret`, 'utf8'), 'SECRET');
    assert.equal(fs.statSync(`${outside}/secret`).mtimeMs, outer.mtimeMs);
  } finally {
    h.cleanup();
    fs.rmSync(outside, { recursive: true, force: true });
  }
});

test('a directory fd whose directory is swapped for a symlink to outside, as fast as can be: its calls stay inside', { timeout: 60_000 }, async (t) => {
  if (process.platform !== 'linux') return t.skip('directories are held through /proc, which is Linux');
  const h = harness({ pages: 2 });
  const { outside, inner, outer } = layout(h);
  fs.symlinkSync(outside, `${h.dir}/dlink`);
  const g = new Guest(h);
  const [errno, d] = g.open(3, 'd', Oflags.DIRECTORY);
  assert.equal(errno, 0);
  const secretIno = BigInt(fs.statSync(`${h.dir}/d/secret`).ino);
  const child = spawn(process.execPath, ['-e', TIMED_SWAPPER, h.dir, String(RACE_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let printed = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (printed += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const counts = { rounds: 0, calls: 0, failed: 0, escapes: 0 };
    const failures = new Map<string, number>();
    /** A call that must succeed (the fd's directory is never touched by the swaps). */
    const expect = (what: string, ok: boolean, escaped = false): void => {
      counts.calls++;
      if (escaped) counts.escapes++;
      if (!ok) {
        counts.failed++;
        failures.set(what, (failures.get(what) ?? 0) + 1);
      }
    };
    const end = performance.now() + RACE_MS;
    while (performance.now() < end) {
      counts.rounds++;
      const text = g.readFile(d, 'secret');
      expect('read', text === 'inside', text === 'SECRET');
      const ino = g.inoOf(d, 'secret');
      expect('stat', ino === secretIno, ino === BigInt(outer.ino));
      const self = g.fdIno(d);
      expect('fd_filestat_get', self === BigInt(inner.ino));
      const names = g.list(d);
      expect('readdir', Array.isArray(names) && names.includes('secret'), Array.isArray(names) && names.includes('victim'));
      const unlinked = g.call('path_unlink_file', d, 'victim');
      expect('unlink outside', unlinked === Errno.NOENT, unlinked === 0);
      expect('create', g.create(d, 'made') === 0);
      expect('unlink', g.call('path_unlink_file', d, 'made') === 0);
      expect('mkdir', g.call('path_create_directory', d, 'sub') === 0);
      expect('rename', g.rename(d, 'sub', 'sub2') === 0);
      expect('rmdir', g.call('path_remove_directory', d, 'sub2') === 0);
      expect('symlink', g.symlink('x', d, 'link') === 0);
      expect('readlink', g.readlink(d, 'link') === 'x');
      expect('unlink link', g.call('path_unlink_file', d, 'link') === 0);
      expect('set times', g.setTimes(d, 'secret', 1_000_000_000n) === 0);
    }
    await exited;
    const swaps = Number(printed.split('\n')[1]);
    t.diagnostic(`${counts.calls} calls through the fd in ${counts.rounds} rounds of ${RACE_MS} ms, ${swaps} swaps of its directory, ${counts.escapes} escapes, ${counts.failed} failed`);
    assert.ok(swaps > 100, `the host swapped the directory (${swaps} swaps)`);
    assert.equal(counts.escapes, 0, 'a call through the fd reached outside');
    assert.deepEqual(Object.fromEntries(failures), {}, 'every call through the fd acted on its directory');
    assert.deepEqual(fs.readdirSync(outside).sort(), ['secret', 'victim'], 'nothing was made, moved or removed outside');
    assert.equal(fs.readFileSync(`${outside}/secret`, 'utf8'), 'SECRET');
    assert.equal(fs.statSync(`${outside}/secret`).mtimeMs, outer.mtimeMs, "the outside file's times were not set");
    assert.deepEqual(fs.readdirSync(`${h.dir}/d`), ['secret'], 'the directory the fd names has what the calls left');
    assert.equal(fs.statSync(`${h.dir}/d/secret`).mtimeMs, 1000, 'the times were set inside');
  } finally {
    child.kill('SIGKILL');
    h.cleanup();
    fs.rmSync(outside, { recursive: true, force: true });
  }
});
