/**
 * Rights of directories and path_open, as wasi-testsuite and wasmtime expect them: a directory
 * is reopened with any subset of its own rights (the preopen's, as the suite's helpers do before
 * every test); rights it cannot pass on are narrowed away, never an error; asking to write a
 * directory is EISDIR; a dropped right is ENOTCAPABLE, O_TRUNC included.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { Errno } from '../src/kernel/wasi/errno.js';
import { Oflags, Rights } from '../src/kernel/wasi/types.js';
import { ALL, harness, type Harness } from './wasi-helpers.js';

const E = Errno;

function rightsOf(h: Harness, fd: number): { base: bigint; inheriting: bigint } {
  const st = h.alloc(24);
  assert.equal(h.w.fd_fdstat_get!(fd, st), 0);
  return { base: h.u64(st + 8), inheriting: h.u64(st + 16) };
}

/** path_open of `path` relative to `dirfd` with exactly these rights; [errno, fd]. */
function openWith(h: Harness, dirfd: number, path: string, oflags: number, base: bigint, inheriting: bigint): [number, number] {
  const [p, l] = h.str(path);
  const out = h.alloc(4);
  const errno = h.w.path_open!(dirfd, 0, p, l, oflags, base, inheriting, 0, out) as number;
  return [errno, errno === 0 ? h.u32(out) : -1];
}

/** The bits of a rights mask, each as its own mask. */
function bits(mask: bigint): bigint[] {
  const out: bigint[] = [];
  for (let b = 1n; b <= mask; b <<= 1n) if (mask & b) out.push(b);
  return out;
}

test('a preopen reopened with its own rights, as the testsuite does, gets the same rights', () => {
  const h = harness();
  try {
    const own = rightsOf(h, 3);
    for (const oflags of [0, Oflags.DIRECTORY]) {
      const [errno, fd] = openWith(h, 3, '.', oflags, own.base, own.inheriting);
      assert.equal(errno, 0);
      assert.deepEqual(rightsOf(h, fd), own);
    }
  } finally {
    h.cleanup();
  }
});

test('property: any subset of a directory\'s rights reopens it with exactly that subset', () => {
  const h = harness();
  try {
    fs.mkdirSync(`${h.dir}/sub`);
    const own = rightsOf(h, 3);
    const subset = (mask: bigint) => fc.subarray(bits(mask)).map((xs) => xs.reduce((a, b) => a | b, 0n));
    fc.assert(fc.property(subset(own.base), subset(own.inheriting), fc.constantFrom('.', 'sub', 'sub/'), (base, inheriting, path) => {
      const [errno, fd] = openWith(h, 3, path, Oflags.DIRECTORY, base, inheriting);
      assert.equal(errno, 0);
      try {
        assert.deepEqual(rightsOf(h, fd), { base, inheriting });
      } finally {
        h.w.fd_close!(fd);
      }
    }), { numRuns: 200 });
  } finally {
    h.cleanup();
  }
});

test('rights a directory cannot pass on are narrowed away; asking to write it is EISDIR', () => {
  const h = harness();
  try {
    // wasmtime opens for writing when any of these is asked, and a directory cannot be written.
    for (const right of [Rights.FD_WRITE, Rights.FD_DATASYNC, Rights.FD_ALLOCATE, Rights.FD_FILESTAT_SET_SIZE]) {
      assert.equal(openWith(h, 3, '.', Oflags.DIRECTORY, BigInt(right), 0n)[0], E.ISDIR);
    }
    assert.equal(openWith(h, 3, '.', Oflags.DIRECTORY, BigInt(Rights.FD_READ | Rights.FD_WRITE), 0n)[0], E.ISDIR);
    // Reading rights a directory has no use for (FD_READ, FD_SEEK) and undefined bits are ignored.
    const [errno, fd] = openWith(h, 3, '.', 0, BigInt(Rights.FD_READ | Rights.FD_SEEK | Rights.FD_READDIR) | (1n << 40n), 0n);
    assert.equal(errno, 0);
    assert.equal(rightsOf(h, fd).base, BigInt(Rights.FD_READDIR));
    // Once the preopen stops passing FD_READDIR on, a reopen asking for it is granted without it.
    const own = rightsOf(h, 3);
    assert.equal(h.w.fd_fdstat_set_rights!(3, own.base, own.inheriting & ~BigInt(Rights.FD_READDIR)), 0);
    const [e2, narrowed] = openWith(h, 3, '.', Oflags.DIRECTORY, own.base, 0n);
    assert.equal(e2, 0);
    assert.equal(rightsOf(h, narrowed).base, own.base & ~BigInt(Rights.FD_READDIR));
    const buf = h.alloc(256);
    assert.equal(h.w.fd_readdir!(narrowed, buf, 256, 0n, h.alloc(4)), E.NOTCAPABLE);
  } finally {
    h.cleanup();
  }
});

test('O_TRUNC needs PATH_FILESTAT_SET_SIZE, O_CREAT PATH_CREATE_FILE: ENOTCAPABLE once dropped', () => {
  const h = harness();
  try {
    fs.writeFileSync(`${h.dir}/f`, 'content');
    const own = rightsOf(h, 3);
    assert.ok(own.base & BigInt(Rights.PATH_FILESTAT_SET_SIZE));
    const [errno, fd] = h.open('f', { oflags: Oflags.TRUNC, rights: 0n });
    assert.equal(errno, 0);
    h.w.fd_close!(fd);
    assert.equal(fs.statSync(`${h.dir}/f`).size, 0);
    fs.writeFileSync(`${h.dir}/f`, 'content');
    const dropped = own.base & ~BigInt(Rights.PATH_FILESTAT_SET_SIZE | Rights.PATH_CREATE_FILE);
    assert.equal(h.w.fd_fdstat_set_rights!(3, dropped, own.inheriting), 0);
    assert.equal(h.open('f', { oflags: Oflags.TRUNC, rights: 0n })[0], E.NOTCAPABLE);
    assert.equal(h.open('new', { oflags: Oflags.CREAT, rights: ALL })[0], E.NOTCAPABLE);
    assert.equal(fs.readFileSync(`${h.dir}/f`, 'utf8'), 'content');
    assert.equal(fs.existsSync(`${h.dir}/new`), false);
    assert.equal(h.open('f', { rights: BigInt(Rights.FD_READ) })[0], 0); // a plain open still works
  } finally {
    h.cleanup();
  }
});
