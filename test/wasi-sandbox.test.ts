/**
 * The sandbox boundary (sandbox.ts, and path_open through it): every escape attempt fails with
 * wasmtime's errno — `..` above the root, absolute paths, absolute symlinks, relative symlinks
 * climbing out, symlink loops (ELOOP) — and a property test: random paths of `..`, `.`, `//`,
 * names and symlinks (some pointing out) created in a temp dir either resolve to a host path
 * inside the root or fail with one of the expected errnos.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { Errno, WasiError } from '../src/kernel/wasi/errno.js';
import { MAX_SYMLINKS, resolve } from '../src/kernel/wasi/sandbox.js';
import { harness, tempDir } from './wasi-helpers.js';

function errnoOf(fn: () => unknown): number {
  try {
    fn();
    return 0;
  } catch (e) {
    if (e instanceof WasiError) return e.errno;
    throw e;
  }
}

/** A tree: root/{a/{b/, f}, file, outside sibling dir with a secret}. */
function tree(): { top: string; root: string } {
  const top = tempDir('wasi-sandbox-');
  const root = `${top}/root`;
  fs.mkdirSync(`${root}/a/b`, { recursive: true });
  fs.writeFileSync(`${root}/a/f`, 'f');
  fs.writeFileSync(`${root}/file`, 'x');
  fs.mkdirSync(`${top}/outside`);
  fs.writeFileSync(`${top}/outside/secret`, 'secret');
  return { top, root };
}

test('plain resolution: dots, double slashes, .. inside the root', () => {
  const { top, root } = tree();
  try {
    assert.equal(resolve(root, 'a/./b/../f', true).hostPath, `${root}/a/f`);
    assert.equal(resolve(root, 'a//b//', true).hostPath, `${root}/a/b`);
    assert.equal(resolve(root, '.', true).hostPath, root);
    assert.equal(resolve(root, 'a/..', true).parts.length, 0);
    assert.equal(resolve(root, 'new', true).stat, undefined);
    assert.equal(errnoOf(() => resolve(root, 'missing/x', true)), Errno.NOENT);
    assert.equal(errnoOf(() => resolve(root, 'file/x', true)), Errno.NOTDIR);
    assert.equal(errnoOf(() => resolve(root, 'file/..', true)), Errno.NOTDIR);
    assert.equal(errnoOf(() => resolve(root, 'missing/..', true)), Errno.NOENT);
    assert.equal(errnoOf(() => resolve(root, 'file/', true)), Errno.NOTDIR);
  } finally {
    fs.rmSync(top, { recursive: true });
  }
});

test('escapes: .., absolute, absolute symlink, relative symlink out, loops', () => {
  const { top, root } = tree();
  try {
    const EPERM = Errno.PERM; // wasmtime: cap-std escape_attempt → EPERM (uvwasi: ENOTCAPABLE)
    assert.equal(errnoOf(() => resolve(root, '..', true)), EPERM);
    assert.equal(errnoOf(() => resolve(root, '../outside/secret', true)), EPERM);
    assert.equal(errnoOf(() => resolve(root, 'a/../../outside/secret', true)), EPERM);
    assert.equal(errnoOf(() => resolve(root, 'a/b/../../..', true)), EPERM);
    assert.equal(errnoOf(() => resolve(root, '/etc/passwd', true)), EPERM);
    assert.equal(errnoOf(() => resolve(root, `${root}/file`, true)), EPERM, 'even the root itself, absolute');
    fs.symlinkSync('/etc', `${root}/abs`);
    assert.equal(errnoOf(() => resolve(root, 'abs/passwd', true)), EPERM);
    assert.equal(errnoOf(() => resolve(root, 'abs', true)), EPERM);
    assert.equal(resolve(root, 'abs', false).stat?.isSymbolicLink(), true, 'not followed: the link itself');
    assert.equal(errnoOf(() => resolve(root, 'abs/', false)), EPERM, 'a trailing slash follows');
    fs.symlinkSync('../outside', `${root}/up`);
    assert.equal(errnoOf(() => resolve(root, 'up/secret', true)), EPERM);
    fs.symlinkSync('../../../..', `${root}/a/b/upup`);
    assert.equal(errnoOf(() => resolve(root, 'a/b/upup/etc/passwd', true)), EPERM);
    fs.symlinkSync('b/../..', `${root}/a/ok`); // climbs to root exactly: allowed
    assert.equal(resolve(root, 'a/ok/file', true).hostPath, `${root}/file`);
    fs.symlinkSync(`${root}/file`, `${root}/absin`); // absolute even if it points inside
    assert.equal(errnoOf(() => resolve(root, 'absin', true)), EPERM);
    fs.symlinkSync('loop2', `${root}/loop1`);
    fs.symlinkSync('loop1', `${root}/loop2`);
    assert.equal(errnoOf(() => resolve(root, 'loop1', true)), Errno.LOOP);
    assert.equal(errnoOf(() => resolve(root, 'loop1/x', false)), Errno.LOOP);
    fs.symlinkSync('.', `${root}/self`);
    const deep = Array(MAX_SYMLINKS + 1).fill('self').join('/');
    assert.equal(errnoOf(() => resolve(root, `${deep}/file`, true)), Errno.LOOP);
    assert.equal(resolve(root, `${Array(MAX_SYMLINKS).fill('self').join('/')}/file`, true).hostPath, `${root}/file`);
    assert.equal(errnoOf(() => resolve(root, 'file\0', true)), Errno.ILSEQ);
  } finally {
    fs.rmSync(top, { recursive: true });
  }
});

test('a subdirectory fd is its own root: .. out of it is EPERM even inside the preopen', () => {
  const h = harness();
  try {
    fs.mkdirSync(`${h.dir}/sub`);
    fs.writeFileSync(`${h.dir}/top`, 't');
    const [e, sub] = h.open('sub', { rights: 0x4000n | 0x2000n });
    assert.equal(e, 0);
    assert.equal(h.open('../top', { dirfd: sub })[0], Errno.PERM);
    assert.equal(h.open('../top')[0], Errno.PERM);
    assert.equal(h.open('/etc/passwd')[0], Errno.PERM);
    fs.symlinkSync('/etc/passwd', `${h.dir}/pw`);
    assert.equal(h.open('pw')[0], Errno.PERM);
    assert.equal(h.open('pw', { follow: false })[0], Errno.LOOP);
    // path_* calls go through the same resolver
    const [sp, sl] = h.str('../x');
    assert.equal(h.w.path_create_directory!(3, sp, sl), Errno.PERM);
    assert.equal(h.w.path_unlink_file!(3, sp, sl), Errno.PERM);
    const [tp, tl] = h.str('pw/x');
    assert.equal(h.w.path_create_directory!(3, tp, tl), Errno.PERM);
    assert.equal(h.w.path_filestat_get!(3, 1, tp, tl, h.alloc(64)), Errno.PERM);
    // A relative symlink target is stored as given, but following it out is refused; an
    // absolute one is refused at creation, as wasmtime does (wasi-testsuite's symlink_create).
    const [op, ol] = h.str('../../etc');
    const [np, nl] = h.str('esc');
    assert.equal(h.w.path_symlink!(op, ol, 3, np, nl), 0);
    assert.equal(h.open('esc/passwd')[0], Errno.PERM);
    const [ap, al] = h.str('/etc');
    const [anp, anl] = h.str('abs');
    assert.equal(h.w.path_symlink!(ap, al, 3, anp, anl), Errno.PERM);
    assert.equal(fs.existsSync(`${h.dir}/abs`), false);
    // rename/link cannot move things out either
    const [rp, rl] = h.str('top');
    const [dp, dl] = h.str('../stolen');
    assert.equal(h.w.path_rename!(3, rp, rl, 3, dp, dl), Errno.PERM);
    assert.equal(h.w.path_link!(3, 0, rp, rl, 3, dp, dl), Errno.PERM);
    assert.equal(fs.existsSync(path.join(h.dir, '..', 'stolen')), false);
  } finally {
    h.cleanup();
  }
});

test('property: random paths with .., ., //, and symlinks stay inside the root or fail', () => {
  const { top, root } = tree();
  try {
    // Links of every flavour, created once: inside, climbing out, absolute, loops, dangling.
    const links: Record<string, string> = {
      lin: 'a', lup: '..', lup2: 'a/../..', labs: '/etc', lself: '.', lloop: 'lloop',
      ldang: 'nowhere', 'a/lb': 'b', 'a/lout': '../../outside', 'a/b/lroot': '../..',
    };
    for (const [name, target] of Object.entries(links)) fs.symlinkSync(target, `${root}/${name}`);
    const rootReal = fs.realpathSync(root);
    const component = fc.constantFrom('..', '.', '', 'a', 'b', 'f', 'file', 'x', 'lin', 'lup', 'lup2',
      'labs', 'lself', 'lloop', 'ldang', 'lb', 'lout', 'lroot', 'outside', 'secret');
    const guestPath = fc.tuple(fc.boolean(), fc.array(component, { minLength: 1, maxLength: 8 }))
      .map(([abs, parts]) => (abs ? '/' : '') + parts.join('/'));
    const allowed = new Set<number>([Errno.PERM, Errno.NOENT, Errno.NOTDIR, Errno.LOOP]);
    fc.assert(
      fc.property(guestPath, fc.boolean(), (p, follow) => {
        let r;
        try {
          r = resolve(root, p, follow);
        } catch (e) {
          assert.ok(e instanceof WasiError, String(e));
          assert.ok(allowed.has(e.errno), `${p}: errno ${e.errno}`);
          return;
        }
        // Lexically inside, and no parent of the result is a symlink: the host cannot be
        // steered anywhere else. If the result exists, its real path is inside too.
        assert.ok(r.hostPath === root || r.hostPath.startsWith(`${root}/`), r.hostPath);
        assert.ok(!r.parts.includes('..') && !r.parts.includes('.'), r.hostPath);
        for (let i = 1; i < r.parts.length; i++) {
          const prefix = `${root}/${r.parts.slice(0, i).join('/')}`;
          assert.ok(!fs.lstatSync(prefix).isSymbolicLink(), `${prefix} is a link`);
        }
        if (r.stat !== undefined && !r.stat.isSymbolicLink()) {
          const real = fs.realpathSync(r.hostPath);
          assert.ok(real === rootReal || real.startsWith(`${rootReal}/`), real);
        }
        if (p.startsWith('/')) assert.fail(`absolute path ${p} resolved`);
      }),
      { numRuns: 3000 },
    );
  } finally {
    fs.rmSync(top, { recursive: true });
  }
});
