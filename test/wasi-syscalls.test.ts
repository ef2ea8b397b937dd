/**
 * Every wasi_snapshot_preview1 import, driven directly against a real WebAssembly.Memory and a
 * temp directory preopened as fd 3: results, layouts, and the errnos of the error paths (bad fd,
 * bad pointer → EFAULT, not a directory, exists, not empty, ...), with wasmtime's choices.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { BLOCKED, ProcessExit } from '../src/kernel/wasi/blocking.js';
import { Errno } from '../src/kernel/wasi/errno.js';
import { Filetype, Oflags, Rights } from '../src/kernel/wasi/types.js';
import { ALL, harness, type Harness } from './wasi-helpers.js';

const BAD_PTR = 0x7fff_fff0; // far beyond a 1-page memory
const E = Errno;

function withH(fn: (h: Harness) => void, opts?: Parameters<typeof harness>[0]): () => void {
  return () => {
    const h = harness(opts);
    try {
      fn(h);
    } finally {
      h.cleanup();
    }
  };
}

/** Creates a file with content via the host. */
function put(h: Harness, name: string, content = ''): void {
  fs.writeFileSync(`${h.dir}/${name}`, content);
}

function write(h: Harness, fd: number, s: string): [number, number] {
  const [p, l] = h.str(s);
  const out = h.alloc(4);
  const r = h.w.fd_write!(fd, h.iov([p, l]), 1, out) as number;
  return [r, h.u32(out)];
}

function read(h: Harness, fd: number, n: number): [number | symbol, string] {
  const buf = h.alloc(n);
  const out = h.alloc(4);
  const r = h.w.fd_read!(fd, h.iov([buf, n]), 1, out);
  return [r, r === 0 ? h.text(buf, h.u32(out)) : ''];
}

test('args and environ: sizes, pointers, NUL-terminated strings', withH((h) => {
  const c = h.alloc(4), s = h.alloc(4);
  assert.equal(h.w.args_sizes_get!(c, s), 0);
  assert.equal(h.u32(c), 2);
  assert.equal(h.u32(s), 'prog\0é\0'.length + 1); // é is two bytes
  const argv = h.alloc(8), buf = h.alloc(16);
  assert.equal(h.w.args_get!(argv, buf), 0);
  assert.equal(h.text(h.u32(argv), 4), 'prog');
  assert.equal(h.text(h.u32(argv + 4), 2), 'é');
  assert.equal(h.u8[h.u32(argv + 4) + 2], 0);
  assert.equal(h.w.environ_sizes_get!(c, s), 0);
  assert.deepEqual([h.u32(c), h.u32(s)], [1, 4]);
  const envp = h.alloc(4), ebuf = h.alloc(8);
  assert.equal(h.w.environ_get!(envp, ebuf), 0);
  assert.equal(h.text(h.u32(envp), 3), 'A=1');
  assert.equal(h.w.args_get!(BAD_PTR, buf), E.FAULT);
  assert.equal(h.w.args_get!(argv, BAD_PTR), E.FAULT);
  assert.equal(h.w.args_sizes_get!(BAD_PTR, s), E.FAULT);
  assert.equal(h.w.environ_get!(envp, -1), E.FAULT);
}, { args: ['prog', 'é'], env: ['A=1'] }));

test('clocks: time, resolution, unsupported and invalid ids, EFAULT', withH((h) => {
  const out = h.alloc(8);
  assert.equal(h.w.clock_time_get!(1, 0n, out), 0);
  const a = h.u64(out);
  assert.equal(h.w.clock_time_get!(1, 0n, out), 0);
  assert.ok(h.u64(out) >= a);
  assert.equal(h.w.clock_time_get!(0, 0n, out), 0);
  assert.ok(h.u64(out) > 1_577_836_800n * 1_000_000_000n);
  assert.equal(h.w.clock_res_get!(1, out), 0);
  assert.equal(h.u64(out), 1n);
  assert.equal(h.w.clock_time_get!(2, 0n, out), E.BADF); // CPU-time clocks: wasmtime says EBADF
  assert.equal(h.w.clock_res_get!(3, out), E.BADF);
  assert.equal(h.w.clock_time_get!(9, 0n, out), E.INVAL);
  assert.equal(h.w.clock_time_get!(1, 0n, BAD_PTR), E.FAULT);
  assert.equal(h.w.clock_time_get!(1, 0n, 65536 - 4), E.FAULT); // straddles the end
}));

test('random_get fills the buffer; EFAULT out of bounds', withH((h) => {
  const p = h.alloc(64);
  assert.equal(h.w.random_get!(p, 64), 0);
  assert.ok(h.u8.slice(p, p + 64).some((b) => b !== 0));
  assert.equal(h.w.random_get!(65530, 64), E.FAULT);
  assert.equal(h.w.random_get!(0, 0), 0);
}));

test('proc_exit throws ProcessExit; proc_raise terminates by default; sched_yield', withH((h) => {
  assert.throws(() => h.w.proc_exit!(3), (e: unknown) => e instanceof ProcessExit && e.status === 3);
  assert.throws(() => h.w.proc_raise!(15), (e: unknown) => e instanceof ProcessExit && e.status === 143 && e.signal === 15);
  assert.equal(h.w.proc_raise!(99), E.INVAL);
  assert.equal(h.w.sched_yield!(), BLOCKED); // first run: requeue
  assert.equal(h.w.sched_yield!(), 0); // the re-run after the requeue
}));

test('fd_write/fd_read on stdio streams; BLOCKED on an empty stdin; EOF', withH((h) => {
  assert.deepEqual(write(h, 1, 'hello'), [0, 5]);
  assert.equal(h.stdout.text(), 'hello');
  // two iovecs gathered in order
  const [p1, l1] = h.str('ab'), [p2, l2] = h.str('cd');
  const out = h.alloc(4);
  assert.equal(h.w.fd_write!(1, h.iov([p1, l1], [p2, l2]), 2, out), 0);
  assert.equal(h.stdout.text(), 'abcd');
  // empty stdin: BLOCKED, with the wait registered and nothing written
  const [r] = read(h, 0, 8);
  assert.equal(r, BLOCKED);
  assert.ok(h.ctx.pendingWait?.pollables.length === 1);
  h.stdin.push('xyz');
  assert.deepEqual(read(h, 0, 2), [0, 'xy']);
  assert.deepEqual(read(h, 0, 8), [0, 'z']);
  // two iovecs scattered in order (stdio's fread uses readv: the caller's buffer, then its own)
  h.stdin.push('scatter');
  const [b1] = h.str('....'), [b2] = h.str('.....');
  const got = h.alloc(4);
  assert.equal(h.w.fd_read!(0, h.iov([b1, 4], [b2, 5]), 2, got), 0);
  assert.equal(h.u32(got), 7);
  assert.equal(h.text(b1, 4) + h.text(b2, 3), 'scatter');
  h.stdin.end();
  assert.deepEqual(read(h, 0, 8), [0, '']);
  // NONBLOCK turns the wait into EAGAIN
  h.stdin.fdflags = 0;
  const h2 = h.ctx.fds.get(2).description;
  assert.equal(h2.filetype, Filetype.UNKNOWN);
}));

test('fd_read on an empty stream with NONBLOCK is EAGAIN', withH((h) => {
  assert.equal(h.w.fd_fdstat_set_flags!(0, 4), 0);
  assert.equal(read(h, 0, 4)[0], E.AGAIN);
}));

test('fd_* on bad fds are EBADF; bad iovecs are EFAULT with no side effect', withH((h) => {
  const out = h.alloc(8);
  for (const fd of [99, -1, 1 << 30]) {
    assert.equal(h.w.fd_write!(fd, h.iov(), 0, out), E.BADF);
    assert.equal(h.w.fd_read!(fd, h.iov(), 0, out), E.BADF);
    assert.equal(h.w.fd_close!(fd), E.BADF);
    assert.equal(h.w.fd_seek!(fd, 0n, 0, out), E.BADF);
    assert.equal(h.w.fd_tell!(fd, out), E.BADF);
    assert.equal(h.w.fd_fdstat_get!(fd, out), E.BADF);
    assert.equal(h.w.fd_filestat_get!(fd, out), E.BADF);
    assert.equal(h.w.fd_sync!(fd), E.BADF);
    assert.equal(h.w.fd_datasync!(fd), E.BADF);
    assert.equal(h.w.fd_prestat_get!(fd, out), E.BADF);
    assert.equal(h.w.fd_renumber!(fd, 1), E.BADF);
    assert.equal(h.w.fd_advise!(fd, 0n, 0n, 0), E.BADF);
    assert.equal(h.w.fd_allocate!(fd, 0n, 1n), E.BADF);
    assert.equal(h.w.fd_filestat_set_size!(fd, 0n), E.BADF);
    assert.equal(h.w.fd_filestat_set_times!(fd, 0n, 0n, 0), E.BADF);
    assert.equal(h.w.fd_fdstat_set_flags!(fd, 0), E.BADF);
    assert.equal(h.w.fd_fdstat_set_rights!(fd, 0n, 0n), E.BADF);
    assert.equal(h.w.fd_pread!(fd, h.iov(), 0, 0n, out), E.BADF);
    assert.equal(h.w.fd_pwrite!(fd, h.iov(), 0, 0n, out), E.BADF);
    assert.equal(h.w.fd_readdir!(fd, out, 8, 0n, out), E.BADF);
    assert.equal(h.w.sock_accept!(fd, 0, out), E.BADF);
  }
  // an iovec whose buffer runs past the end: EFAULT and stdout untouched
  const [p] = h.str('ok');
  assert.equal(h.w.fd_write!(1, h.iov([p, 2], [65000, 1000]), 2, out), E.FAULT);
  assert.equal(h.stdout.length, 0);
  assert.equal(h.w.fd_write!(1, BAD_PTR, 1, out), E.FAULT);
  assert.equal(h.w.fd_write!(1, h.iov([p, 2]), 1, BAD_PTR), E.FAULT);
  assert.equal(h.stdout.length, 0);
  h.stdin.push('q');
  assert.equal(h.w.fd_read!(0, h.iov([65530, 100]), 1, out), E.FAULT);
  assert.equal(h.stdin.length, 1); // not consumed
}));

test('files: create, write, seek, tell, read, pread/pwrite, set size, stat, sync', withH((h) => {
  const [e0, fd] = h.open('f', { oflags: Oflags.CREAT | Oflags.TRUNC });
  assert.equal(e0, 0);
  assert.ok(fd >= 4);
  assert.deepEqual(write(h, fd, 'hello, world'), [0, 12]);
  const off = h.alloc(8);
  assert.equal(h.w.fd_tell!(fd, off), 0);
  assert.equal(h.u64(off), 12n);
  assert.equal(h.w.fd_seek!(fd, 0n, 0, off), 0);
  assert.deepEqual(read(h, fd, 5), [0, 'hello']);
  assert.equal(h.w.fd_seek!(fd, -3n, 2, off), 0);
  assert.equal(h.u64(off), 9n);
  assert.equal(h.w.fd_seek!(fd, -100n, 0, off), E.INVAL);
  assert.equal(h.w.fd_seek!(fd, 0n, 7, off), E.INVAL);
  assert.equal(h.w.fd_seek!(fd, 0n, 0, BAD_PTR), E.FAULT);
  const buf = h.alloc(8), n = h.alloc(4);
  assert.equal(h.w.fd_pread!(fd, h.iov([buf, 5]), 1, 7n, n), 0);
  assert.equal(h.text(buf, h.u32(n)), 'world');
  const [hp, hl] = h.str('HE');
  assert.equal(h.w.fd_pwrite!(fd, h.iov([hp, hl]), 1, 0n, n), 0);
  assert.equal(h.w.fd_tell!(fd, off), 0);
  assert.equal(h.u64(off), 9n, 'pread/pwrite do not move the position');
  assert.equal(h.w.fd_filestat_set_size!(fd, 5n), 0);
  const st = h.alloc(64);
  assert.equal(h.w.fd_filestat_get!(fd, st), 0);
  assert.equal(h.u8[st + 16], Filetype.REGULAR_FILE);
  assert.equal(h.u64(st + 32), 5n);
  assert.equal(h.u64(st + 24), 1n);
  assert.equal(fs.readFileSync(`${h.dir}/f`, 'utf8'), 'HEllo');
  assert.equal(h.w.fd_sync!(fd), 0);
  assert.equal(h.w.fd_datasync!(fd), 0);
  assert.equal(h.w.fd_advise!(fd, 0n, 0n, 1), 0);
  assert.equal(h.w.fd_advise!(fd, 0n, 0n, 9), E.INVAL);
  assert.equal(h.w.fd_allocate!(fd, 0n, 100n), 0);
  assert.equal(fs.statSync(`${h.dir}/f`).size, 100);
  assert.equal(h.w.fd_filestat_get!(fd, BAD_PTR), E.FAULT);
  assert.equal(h.w.fd_close!(fd), 0);
  assert.equal(h.w.fd_close!(fd), E.BADF);
}));

test('open modes: read-only rejects writes (EBADF), append appends, set_flags toggles append', withH((h) => {
  put(h, 'f', 'abc');
  const [, ro] = h.open('f', { rights: BigInt(Rights.FD_READ | Rights.FD_SEEK | Rights.FD_TELL) });
  assert.equal(write(h, ro, 'x')[0], E.BADF);
  assert.equal(h.w.fd_filestat_set_size!(ro, 0n), E.BADF);
  const n = h.alloc(4);
  assert.equal(h.w.fd_pwrite!(ro, h.iov(), 0, 0n, n), E.BADF);
  const [, wo] = h.open('f', { rights: BigInt(Rights.FD_WRITE | Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_SEEK), fdflags: 1 });
  assert.equal(read(h, wo, 1)[0], E.BADF);
  assert.deepEqual(write(h, wo, 'de'), [0, 2]);
  assert.equal(fs.readFileSync(`${h.dir}/f`, 'utf8'), 'abcde');
  const fst = h.alloc(24);
  assert.equal(h.w.fd_fdstat_get!(wo, fst), 0);
  assert.equal(h.u8[fst], Filetype.REGULAR_FILE);
  assert.equal(h.dv.getUint16(fst + 2, true), 1);
  assert.equal(h.w.fd_fdstat_set_flags!(wo, 0), 0);
  assert.equal(h.w.fd_fdstat_set_flags!(wo, 16), E.INVAL); // SYNC cannot change after open
  assert.equal(h.w.fd_seek!(wo, 0n, 0, h.alloc(8)), 0);
  assert.deepEqual(write(h, wo, 'X'), [0, 1]); // no longer appending: overwrites at 0
  assert.equal(fs.readFileSync(`${h.dir}/f`, 'utf8'), 'Xbcde');
}));

test('path_open errors: ENOENT, EEXIST, ENOTDIR, EISDIR, ELOOP, EILSEQ, EFAULT, non-dir base', withH((h) => {
  put(h, 'f');
  fs.mkdirSync(`${h.dir}/d`);
  fs.symlinkSync('f', `${h.dir}/link`);
  assert.equal(h.open('missing')[0], E.NOENT);
  assert.equal(h.open('f', { oflags: Oflags.CREAT | Oflags.EXCL })[0], E.EXIST);
  assert.equal(h.open('link', { oflags: Oflags.CREAT | Oflags.EXCL })[0], E.EXIST);
  assert.equal(h.open('f', { oflags: Oflags.DIRECTORY })[0], E.NOTDIR);
  assert.equal(h.open('f/x')[0], E.NOTDIR);
  assert.equal(h.open('f/')[0], E.NOTDIR);
  assert.equal(h.open('d', { rights: BigInt(Rights.FD_WRITE) })[0], E.ISDIR);
  assert.equal(h.open('d', { oflags: Oflags.TRUNC })[0], E.ISDIR);
  assert.equal(h.open('link', { follow: false })[0], E.LOOP);
  assert.equal(h.open('link')[0], 0);
  assert.equal(h.open('f\0')[0], E.ILSEQ);
  assert.equal(h.open('')[0], E.NOENT);
  assert.equal(h.open('d/', { oflags: Oflags.DIRECTORY, rights: BigInt(Rights.FD_READDIR) })[0], 0);
  assert.equal(h.open('d', { oflags: Oflags.DIRECTORY })[0], E.ISDIR); // all rights = write access
  const [, fd] = h.open('f');
  assert.equal(h.open('x', { dirfd: fd })[0], E.NOTDIR);
  assert.equal(h.open('x', { dirfd: 1 })[0], E.NOTDIR);
  assert.equal(h.open('x', { dirfd: 77 })[0], E.BADF);
  const [p, l] = h.str('f');
  assert.equal(h.w.path_open!(3, 1, p, l, 0, ALL, ALL, 0, BAD_PTR), E.FAULT);
  assert.equal(h.w.path_open!(3, 1, BAD_PTR, 4, 0, ALL, ALL, 0, h.alloc(4)), E.FAULT);
  // A bad out pointer must not leave a created file behind.
  const [np, nl] = h.str('new');
  assert.equal(h.w.path_open!(3, 1, np, nl, Oflags.CREAT, ALL, ALL, 0, BAD_PTR), E.FAULT);
  assert.equal(fs.existsSync(`${h.dir}/new`), false);
  // invalid UTF-8 path
  const bad = h.alloc(2);
  h.u8.set([0xff, 0xfe], bad);
  assert.equal(h.w.path_open!(3, 1, bad, 2, 0, ALL, ALL, 0, h.alloc(4)), E.ILSEQ);
}));

test('directories: fd_read/fd_write EISDIR, fd_seek EBADF, readdir with cookies and a small buffer', withH((h) => {
  for (const n of ['a', 'bb', 'ccc']) put(h, n);
  fs.mkdirSync(`${h.dir}/sub`);
  assert.equal(read(h, 3, 4)[0], E.ISDIR);
  assert.equal(write(h, 3, 'x')[0], E.ISDIR);
  const out = h.alloc(8);
  assert.equal(h.w.fd_seek!(3, 0n, 0, out), E.BADF);
  assert.equal(h.w.fd_tell!(3, out), E.BADF);
  assert.equal(h.w.fd_filestat_set_size!(3, 0n), E.BADF);
  const buf = h.alloc(4096), used = h.alloc(4);
  assert.equal(h.w.fd_readdir!(3, buf, 4096, 0n, used), 0);
  const names: string[] = [];
  let p = buf;
  const end = buf + h.u32(used);
  const types: Record<string, number> = {};
  const inodes: Record<string, bigint> = {};
  while (p < end) {
    const len = h.u32(p + 16);
    const name = h.text(p + 24, len);
    names.push(name);
    types[name] = h.u8[p + 20]!;
    inodes[name] = h.u64(p + 8);
    p += 24 + len;
  }
  assert.deepEqual(names.sort(), ['.', '..', 'a', 'bb', 'ccc', 'sub']);
  // No d_ino is 0: wasi-libc's scandir() would fstatat() the entry, and for ".." from a directory
  // that is not a preopen that is EPERM (Yosys's scandir failed so). ".." has "."'s, as in wasmtime.
  for (const [name, ino] of Object.entries(inodes)) assert.notEqual(ino, 0n, `d_ino of ${name}`);
  assert.equal(inodes['..'], inodes['.']);
  assert.equal(types.sub, Filetype.DIRECTORY);
  assert.equal(types.a, Filetype.REGULAR_FILE);
  // A buffer too small for everything is filled completely (bufused == buf_len): more to come.
  assert.equal(h.w.fd_readdir!(3, buf, 30, 0n, used), 0);
  assert.equal(h.u32(used), 30);
  // Resuming at the cookie of the third entry returns the rest.
  const next = h.u64(buf); // d_next of the first entry
  assert.equal(h.w.fd_readdir!(3, buf, 4096, next + 1n, used), 0);
  assert.ok(h.u32(used) > 0);
  assert.equal(h.w.fd_readdir!(3, buf, 4096, 1000n, used), 0);
  assert.equal(h.u32(used), 0);
  assert.equal(h.w.fd_readdir!(1, buf, 4096, 0n, used), E.NOTDIR);
  assert.equal(h.w.fd_readdir!(3, BAD_PTR, 4096, 0n, used), E.FAULT);
}));

test('prestat: name of fd 3, EBADF for non-preopens, ENAMETOOLONG for a short buffer', withH((h) => {
  const out = h.alloc(8);
  assert.equal(h.w.fd_prestat_get!(3, out), 0);
  assert.equal(h.u8[out], 0);
  assert.equal(h.u32(out + 4), '/sandbox'.length);
  const name = h.alloc(16);
  assert.equal(h.w.fd_prestat_dir_name!(3, name, 8), 0);
  assert.equal(h.text(name, 8), '/sandbox');
  assert.equal(h.w.fd_prestat_dir_name!(3, name, 4), E.NAMETOOLONG);
  assert.equal(h.w.fd_prestat_get!(1, out), E.BADF);
  assert.equal(h.w.fd_prestat_get!(4, out), E.BADF);
  assert.equal(h.w.fd_prestat_get!(3, BAD_PTR), E.FAULT);
}));

test('renumber moves an fd and closes the target; both must be open', withH((h) => {
  put(h, 'f', 'data');
  const [, a] = h.open('f');
  const [, b] = h.open('f');
  assert.equal(h.w.fd_renumber!(a, b), 0);
  assert.deepEqual(read(h, b, 4), [0, 'data']);
  assert.equal(read(h, a, 4)[0], E.BADF);
  assert.equal(h.w.fd_renumber!(b, 40), E.BADF);
  assert.equal(h.w.fd_renumber!(b, b), 0);
  // lowest free fd is reused
  const [, c] = h.open('f');
  assert.equal(c, a);
}));

test('rights can only be dropped; a dropped right is ENOTCAPABLE', withH((h) => {
  put(h, 'f', 'abc');
  const [, fd] = h.open('f');
  const st = h.alloc(24);
  assert.equal(h.w.fd_fdstat_get!(fd, st), 0);
  const base = h.u64(st + 8);
  assert.ok((base & BigInt(Rights.FD_READ)) !== 0n);
  assert.equal(h.w.fd_fdstat_set_rights!(fd, base & ~BigInt(Rights.FD_READ), 0n), 0);
  assert.equal(read(h, fd, 1)[0], E.NOTCAPABLE);
  assert.equal(h.w.fd_fdstat_set_rights!(fd, base, 0n), E.NOTCAPABLE);
  // a directory without PATH_OPEN
  assert.equal(h.w.fd_fdstat_set_rights!(3, BigInt(Rights.FD_READDIR), ALL), E.NOTCAPABLE); // inheriting grows
  assert.equal(h.w.fd_fdstat_get!(3, st), 0);
  assert.equal(h.w.fd_fdstat_set_rights!(3, BigInt(Rights.FD_READDIR), h.u64(st + 16)), 0);
  assert.equal(h.open('f')[0], E.NOTCAPABLE);
}));

test('times: fd and path set_times, now, EINVAL for time+now', withH((h) => {
  put(h, 'f');
  const [p, l] = h.str('f');
  const s = 1_000_000_000n * 1_000_000_000n;
  assert.equal(h.w.path_filestat_set_times!(3, 1, p, l, s, s * 2n, 1 | 4), 0);
  let st = fs.statSync(`${h.dir}/f`);
  assert.equal(Math.round(st.atimeMs / 1000), 1_000_000_000);
  assert.equal(Math.round(st.mtimeMs / 1000), 2_000_000_000);
  const [, fd] = h.open('f');
  assert.equal(h.w.fd_filestat_set_times!(fd, 0n, s, 4), 0); // mtime only
  st = fs.statSync(`${h.dir}/f`);
  assert.equal(Math.round(st.atimeMs / 1000), 1_000_000_000);
  assert.equal(Math.round(st.mtimeMs / 1000), 1_000_000_000);
  assert.equal(h.w.fd_filestat_set_times!(fd, 0n, 0n, 8), 0); // mtime now
  assert.ok(Math.abs(fs.statSync(`${h.dir}/f`).mtimeMs - Date.now()) < 5000);
  assert.equal(h.w.fd_filestat_set_times!(fd, 0n, 0n, 1 | 2), E.INVAL);
  assert.equal(h.w.path_filestat_set_times!(3, 1, p, l, 0n, 0n, 4 | 8), E.INVAL);
  const [mp, ml] = h.str('missing');
  assert.equal(h.w.path_filestat_set_times!(3, 1, mp, ml, 0n, 0n, 2), E.NOENT);
}));

test('times are kept to the nanosecond: the one set and the one left alone, by fd, path and on a symlink', withH((h) => {
  put(h, 'f');
  fs.symlinkSync('f', `${h.dir}/sym`);
  const [, fd] = h.open('f');
  const st = h.alloc(64);
  const times = (): [bigint, bigint] => [h.u64(st + 40), h.u64(st + 48)];
  // A time a program read and shifted by a few ns, as wasi-testsuite's fd_filestat_set does.
  assert.equal(h.w.fd_filestat_get!(fd, st), 0);
  const [atim, mtim] = times();
  assert.equal(h.w.fd_filestat_set_times!(fd, 0n, mtim - 100n, 4), 0);
  assert.equal(h.w.fd_filestat_get!(fd, st), 0);
  assert.deepEqual(times(), [atim, mtim - 100n]);
  const odd = 1_700_000_000_123_456_789n;
  assert.equal(h.w.fd_filestat_set_times!(fd, odd, 0n, 1), 0);
  assert.equal(h.w.fd_filestat_get!(fd, st), 0);
  assert.deepEqual(times(), [odd, mtim - 100n]);
  const [p, l] = h.str('f');
  assert.equal(h.w.path_filestat_set_times!(3, 1, p, l, odd + 1n, odd + 2n, 1 | 4), 0);
  assert.equal(h.w.path_filestat_get!(3, 1, p, l, st), 0);
  assert.deepEqual(times(), [odd + 1n, odd + 2n]);
  // Without SYMLINK_FOLLOW the link's own times change, not its target's.
  const [sp, sl] = h.str('sym');
  assert.equal(h.w.path_filestat_set_times!(3, 0, sp, sl, 0n, odd + 3n, 4), 0);
  assert.equal(h.w.path_filestat_get!(3, 0, sp, sl, st), 0);
  assert.equal(times()[1], odd + 3n);
  assert.equal(h.w.path_filestat_get!(3, 1, sp, sl, st), 0);
  assert.deepEqual(times(), [odd + 1n, odd + 2n]);
  // A whole second and a whole microsecond come out exact too.
  assert.equal(h.w.fd_filestat_set_times!(fd, 5_000_000_000n, 1_699_999_999_999_999_000n, 1 | 4), 0);
  assert.equal(h.w.fd_filestat_get!(fd, st), 0);
  assert.deepEqual(times(), [5_000_000_000n, 1_699_999_999_999_999_000n]);
}));

test('path_create_directory / remove_directory / unlink_file errnos', withH((h) => {
  const s = (x: string) => h.str(x);
  const mk = (x: string) => h.w.path_create_directory!(3, ...s(x));
  const rm = (x: string) => h.w.path_remove_directory!(3, ...s(x));
  const un = (x: string) => h.w.path_unlink_file!(3, ...s(x));
  assert.equal(mk('d'), 0);
  assert.equal(mk('d'), E.EXIST);
  assert.equal(mk('.'), E.EXIST);
  assert.equal(mk('nope/d'), E.NOENT);
  put(h, 'd/f');
  put(h, 'file');
  assert.equal(mk('file/x'), E.NOTDIR);
  assert.equal(rm('d'), E.NOTEMPTY);
  assert.equal(rm('file'), E.NOTDIR);
  assert.equal(rm('missing'), E.NOENT);
  assert.equal(rm('.'), E.INVAL);
  assert.equal(rm('d/.'), E.INVAL);
  assert.equal(un('d'), E.ISDIR);
  assert.equal(un('missing'), E.NOENT);
  assert.equal(un('file/'), E.NOTDIR);
  assert.equal(un('d/f'), 0);
  assert.equal(rm('d'), 0);
  assert.equal(un('file'), 0);
  assert.deepEqual(fs.readdirSync(h.dir), []);
  assert.equal(h.w.path_create_directory!(3, BAD_PTR, 3), E.FAULT);
  assert.equal(h.w.path_create_directory!(1, ...s('x')), E.NOTDIR);
}));

test('rename, link, symlink, readlink, path_filestat_get', withH((h) => {
  const s = (x: string) => h.str(x);
  put(h, 'f', 'hello');
  assert.equal(h.w.path_rename!(3, ...s('f'), 3, ...s('g')), 0);
  assert.equal(h.w.path_rename!(3, ...s('f'), 3, ...s('h')), E.NOENT);
  assert.equal(h.w.path_link!(3, 0, ...s('g'), 3, ...s('hard')), 0);
  assert.equal(h.w.path_link!(3, 0, ...s('g'), 3, ...s('hard')), E.EXIST);
  assert.equal(h.w.path_link!(3, 0, ...s('nope'), 3, ...s('h2')), E.NOENT);
  const st = h.alloc(64);
  assert.equal(h.w.path_filestat_get!(3, 1, ...s('g'), st), 0);
  assert.equal(h.u64(st + 24), 2n);
  assert.equal(h.u64(st + 32), 5n);
  assert.equal(h.w.path_symlink!(...s('g'), 3, ...s('sym')), 0);
  assert.equal(h.w.path_symlink!(...s('g'), 3, ...s('sym')), E.EXIST);
  assert.equal(h.w.path_filestat_get!(3, 0, ...s('sym'), st), 0);
  assert.equal(h.u8[st + 16], Filetype.SYMBOLIC_LINK);
  assert.equal(h.w.path_filestat_get!(3, 1, ...s('sym'), st), 0);
  assert.equal(h.u8[st + 16], Filetype.REGULAR_FILE);
  assert.equal(h.w.path_filestat_get!(3, 1, ...s('missing'), st), E.NOENT);
  assert.equal(h.w.path_filestat_get!(3, 1, ...s('g'), BAD_PTR), E.FAULT);
  const buf = h.alloc(16), used = h.alloc(4);
  assert.equal(h.w.path_readlink!(3, ...s('sym'), buf, 16, used), 0);
  assert.equal(h.text(buf, h.u32(used)), 'g');
  assert.equal(h.w.path_readlink!(3, ...s('g'), buf, 16, used), E.INVAL);
  assert.equal(h.w.path_readlink!(3, ...s('missing'), buf, 16, used), E.NOENT);
  fs.symlinkSync('a-long-target', `${h.dir}/long`);
  assert.equal(h.w.path_readlink!(3, ...s('long'), buf, 4, used), 0);
  assert.equal(h.text(buf, h.u32(used)), 'a-lo'); // truncated like POSIX readlink
  fs.mkdirSync(`${h.dir}/d`);
  put(h, 'd/x');
  assert.equal(h.w.path_rename!(3, ...s('d'), 3, ...s('g')), E.NOTDIR);
  assert.equal(h.w.path_rename!(3, ...s('g'), 3, ...s('d')), E.ISDIR);
  assert.equal(h.w.path_link!(3, 0, ...s('d'), 3, ...s('dl')), E.PERM);
}));

test('a trailing slash names a directory: no new file, link or symlink by such a name', withH((h) => {
  const s = (x: string) => h.str(x);
  put(h, 'f');
  fs.mkdirSync(`${h.dir}/d`);
  // Linux's errnos, which wasmtime passes on: ENOENT for link and symlink, EISDIR for O_CREAT.
  assert.equal(h.w.path_symlink!(...s('target'), 3, ...s('new/')), E.NOENT);
  assert.equal(h.w.path_link!(3, 0, ...s('f'), 3, ...s('new/')), E.NOENT);
  assert.equal(h.open('new/', { oflags: Oflags.CREAT })[0], E.ISDIR);
  assert.equal(fs.existsSync(`${h.dir}/new`), false);
  // A name that exists: EEXIST for a directory, ENOTDIR for a file ("f/" is not one).
  assert.equal(h.w.path_symlink!(...s('target'), 3, ...s('d/')), E.EXIST);
  assert.equal(h.w.path_symlink!(...s('target'), 3, ...s('f/')), E.NOTDIR);
  assert.equal(h.w.path_link!(3, 0, ...s('f'), 3, ...s('d/')), E.EXIST);
  // Without the slash they are ordinary names, and a directory may take one.
  assert.equal(h.w.path_symlink!(...s('target'), 3, ...s('new')), 0);
  assert.equal(h.w.path_create_directory!(3, ...s('nd/')), 0);
  assert.ok(fs.statSync(`${h.dir}/nd`).isDirectory());
}));

test('poll_oneoff: EINVAL for none, clock timeouts block then fire, fd readiness, bad fd', withH((h) => {
  const SUB = 48, EV = 32;
  const subs = h.alloc(SUB * 3), evs = h.alloc(EV * 3), n = h.alloc(4);
  const clock = (i: number, ud: bigint, timeout: bigint, flags = 0, id = 1) => {
    const p = subs + i * SUB;
    h.u8.fill(0, p, p + SUB);
    h.dv.setBigUint64(p, ud, true);
    h.dv.setUint8(p + 8, 0);
    h.dv.setUint32(p + 16, id, true);
    h.dv.setBigUint64(p + 24, timeout, true);
    h.dv.setUint16(p + 40, flags, true);
  };
  const fdsub = (i: number, ud: bigint, type: number, fd: number) => {
    const p = subs + i * SUB;
    h.u8.fill(0, p, p + SUB);
    h.dv.setBigUint64(p, ud, true);
    h.dv.setUint8(p + 8, type);
    h.dv.setUint32(p + 16, fd, true);
  };
  assert.equal(h.w.poll_oneoff!(subs, evs, 0, n), E.INVAL);
  assert.equal(h.w.poll_oneoff!(BAD_PTR, evs, 1, n), E.FAULT);
  // zero timeout: ready at once
  clock(0, 7n, 0n);
  assert.equal(h.w.poll_oneoff!(subs, evs, 1, n), 0);
  assert.equal(h.u32(n), 1);
  assert.equal(h.u64(evs), 7n);
  // 50 ms relative: first run blocks with the deadline; the re-run after it reports the event
  h.ctx.deadlines = [];
  h.ctx.deadlineIndex = 0;
  clock(0, 8n, 50_000_000n);
  assert.equal(h.w.poll_oneoff!(subs, evs, 1, n), BLOCKED);
  const dl = h.ctx.pendingWait!.deadlineNs!;
  h.ctx.deadlineIndex = 0;
  assert.equal(h.w.poll_oneoff!(subs, evs, 1, n), BLOCKED, 'still before the deadline');
  assert.equal(h.ctx.pendingWait!.deadlineNs, dl, 're-run keeps the same deadline');
  while (process.hrtime.bigint() < dl) { /* spin 50ms */ }
  h.ctx.deadlineIndex = 0;
  assert.equal(h.w.poll_oneoff!(subs, evs, 1, n), 0);
  assert.equal(h.u64(evs), 8n);
  // absolute realtime deadline in the past: ready
  clock(0, 9n, 1n, 1, 0);
  assert.equal(h.w.poll_oneoff!(subs, evs, 1, n), 0);
  assert.equal(h.dv.getUint16(evs + 8, true), 0);
  // fds: stdout writable, empty stdin not readable, bad fd → event with EBADF
  fdsub(0, 1n, 2, 1);
  fdsub(1, 2n, 1, 0);
  fdsub(2, 3n, 1, 99);
  assert.equal(h.w.poll_oneoff!(subs, evs, 3, n), 0);
  assert.equal(h.u32(n), 2);
  assert.deepEqual([h.u64(evs), h.u64(evs + EV)], [1n, 3n]);
  assert.equal(h.dv.getUint16(evs + EV + 8, true), E.BADF);
  // only the empty stdin: BLOCKED on its pollable; after data arrives it is reported with nbytes
  fdsub(0, 5n, 1, 0);
  assert.equal(h.w.poll_oneoff!(subs, evs, 1, n), BLOCKED);
  assert.equal(h.ctx.pendingWait!.deadlineNs, undefined);
  h.stdin.push('abc');
  assert.equal(h.w.poll_oneoff!(subs, evs, 1, n), 0);
  assert.equal(h.u64(evs + 16), 3n);
  // unsupported clock id → event error EINVAL
  clock(0, 4n, 0n, 0, 2);
  assert.equal(h.w.poll_oneoff!(subs, evs, 1, n), 0);
  assert.equal(h.dv.getUint16(evs + 8, true), E.INVAL);
}));

test('sockets: EBADF for a closed fd, ENOTSOCK otherwise', withH((h) => {
  const out = h.alloc(8);
  assert.equal(h.w.sock_accept!(3, 0, out), E.NOTSOCK);
  assert.equal(h.w.sock_recv!(0, out, 0, 0, out, out), E.NOTSOCK);
  assert.equal(h.w.sock_send!(1, out, 0, 0, out), E.NOTSOCK);
  assert.equal(h.w.sock_shutdown!(1, 2), E.NOTSOCK);
  assert.equal(h.w.sock_shutdown!(55, 2), E.BADF);
}));

test('memory growth: syscalls see the new pages', withH((h) => {
  const out = 65536 + 100;
  assert.equal(h.w.clock_time_get!(1, 0n, out), E.FAULT);
  h.memory.grow(1);
  assert.equal(h.w.clock_time_get!(1, 0n, out), 0);
  assert.ok(h.u64(out) > 0n);
}));

test('an unexpected host exception becomes EIO and is logged, never thrown', () => {
  const h = harness();
  const logged: string[] = [];
  h.ctx.log = (m) => logged.push(m);
  h.ctx.randomFill = () => {
    throw new TypeError('boom');
  };
  try {
    assert.equal(h.w.random_get!(h.alloc(4), 4), E.IO);
    assert.equal(logged.length, 1);
  } finally {
    h.cleanup();
  }
});
