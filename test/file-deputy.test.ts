/**
 * Files across nodes (src/services/file-deputy.ts, src/kernel/remote-file.ts): a host file given
 * to a kernel of another node stays open at its home, and the process uses it by messages.
 *
 * First with kernels as Messengers in this thread, joined by in-memory links the test pumps (as
 * test/pipe.test.ts does): random sequences of reads, writes, seeks, truncations, appends and
 * hand-overs between kernels give the bytes node's fs gives; references come back; bad requests
 * are refused; a lost home fails operations with EIO; a directory fd goes as the directory it
 * names, whatever the host did to its path. Then with two real nodes in a cluster:
 * processes moved to the other node mid-write and mid-read, a child spawned there with
 * redirections, and the home's node going away.
 */

import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { endpointId, nodeOf, type EndpointId } from '../src/msg/address.js';
import { RemoteError } from '../src/msg/requests.js';
import { HostStreamChannels } from '../src/kernel/host-stream.js';
import { RemoteFile } from '../src/kernel/remote-file.js';
import { BLOCKED } from '../src/kernel/wasi/blocking.js';
import { Errno } from '../src/kernel/wasi/errno.js';
import { HostFile, type FileDescription } from '../src/kernel/wasi/file-description.js';
import { HostDirectory } from '../src/kernel/wasi/host-directory.js';
import { openIn } from '../src/kernel/wasi/path-ops.js';
import { DIR_RIGHTS, FILE_RIGHTS, Fdflags, Oflags, Rights, Whence } from '../src/kernel/wasi/types.js';
import { RemoteDirectory, type DirAnswer, type DirCall } from '../src/kernel/remote-directory.js';
import type { Kernel } from '../src/kernel/kernel.js';
import { DirDeputy } from '../src/services/dir-deputy.js';
import { PipeService } from '../src/services/pipe.js';
import { FileDeputy } from '../src/services/file-deputy.js';
import { FdCarriers, exportFds, importFds, type FdRecord } from '../src/services/fd-transfer.js';
import { StreamCarrier } from '../src/services/stream-carrier.js';
import { PipeCarrier } from '../src/services/pipe-carrier.js';
import { FileCarrier } from '../src/services/file-carrier.js';
import { DirCarrier } from '../src/services/dir-carrier.js';
import { PopcornNode, type KernelInfo } from '../src/node/node.js';
import { prepareProgram } from '../src/wasm/loader.js';
import { startProgram } from './ssi-helpers.js';
import { example, sleep } from './cli-helpers.js';
import { freePort } from './cluster-node.js';
import { Mesh, type MeshKernel } from './mesh-helpers.js';
import { errnoOf } from './wasi-helpers.js';

// ---- kernels of several nodes, in this thread ------------------------------------------------

interface TestKernel extends MeshKernel {
  files: FileDeputy;
  /** Set by the tests of directories. */
  dirs?: DirDeputy;
  /** The kernel's fd carriers, as its process service registers them. */
  services: FdCarriers;
}

/** Kernels n0.k0 and n0.k1 (one node), n1.k0 and n2.k0 (two others). */
const K0 = endpointId(0, 0);
const K0B = endpointId(0, 1);
const K1 = endpointId(1, 0);
const K2 = endpointId(2, 0);

class Cluster extends Mesh<TestKernel> {
  constructor(ids: EndpointId[] = [K0, K0B, K1, K2]) {
    super(ids, (base) => {
      const files = new FileDeputy(base.messenger, base.id, (text) => base.errors.push(new Error(text)));
      const channels = new HostStreamChannels(base.messenger, endpointId(nodeOf(base.id), 255));
      const services = new FdCarriers(base.id);
      services.register(new StreamCarrier(channels));
      services.register(new PipeCarrier(new PipeService(base.messenger, base.id)));
      services.register(new FileCarrier(files));
      return { ...base, files, services };
    });
  }

  k(id: EndpointId): TestKernel {
    return this.kernel(id);
  }

  /** The records fd-transfer makes on `from` for `to` (pumped until the homes counted them). */
  exportTo(d: FileDescription, from: EndpointId, to: EndpointId): FdRecord[] {
    let outcome: { error: Error | null; records: FdRecord[] } | undefined;
    const entry = { description: d, rightsBase: d.maxRights, rightsInheriting: 0 };
    exportFds(this.k(from).services, [{ fd: 3, entry }], to, (error, records) => (outcome = { error, records }));
    this.pump();
    assert.ok(outcome !== undefined, 'the export finished');
    assert.equal(outcome.error, null);
    return outcome.records;
  }

  /** Move a description from kernel `from` to `to` as a migration does: export, import there, close here. */
  hand(d: FileDescription, from: EndpointId, to: EndpointId): FileDescription {
    const records = this.exportTo(d, from, to);
    const [imported] = importFds(this.k(to).services, records);
    d.close();
    return (imported as { entry: { description: FileDescription } }).entry.description;
  }

  /** After everything closed: no file kept or used anywhere, and no handler failed. */
  assertClean(): void {
    this.pump();
    for (const k of this.kernels) assert.equal(k.files.size, 0, `files left on ${k.id}`);
    this.assertNoErrors();
  }
}

// ---- helpers ---------------------------------------------------------------------------------

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Run `op` as the kernel would: while it says BLOCKED, let the messages flow and run it again. */
function rerun<T>(cluster: Cluster, op: () => T | typeof BLOCKED): T {
  for (let i = 0; i < 1000; i++) {
    const result = op();
    if (result !== BLOCKED) return result;
    cluster.pump();
  }
  return assert.fail('still blocked after 1000 wake-ups');
}

function writeAll(cluster: Cluster, d: FileDescription, data: Uint8Array): void {
  for (let at = 0; at < data.length;) at += rerun(cluster, () => d.write(data, at, data.length - at));
}

function readSome(cluster: Cluster, d: FileDescription, len: number): Uint8Array {
  const buf = new Uint8Array(len);
  return buf.subarray(0, rerun(cluster, () => d.read(buf, 0, len)));
}

const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

let scratch: string;
before(() => {
  scratch = fs.mkdtempSync(join(tmpdir(), 'popcorn-deputy-'));
});
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

let files = 0;
/** A new host file opened read-write on `path` (created empty), as path_open makes one. */
function hostFile(content = ''): { file: HostFile; path: string } {
  const path = join(scratch, `f${files++}`);
  fs.writeFileSync(path, content);
  return { file: new HostFile(fs.openSync(path, 'r+'), true, true), path };
}

// ---- in this thread --------------------------------------------------------------------------

describe('a file of another node, through its deputy', () => {
  test('within a node a file travels by host fd; to another node it stays home and goes by handle', () => {
    const c = new Cluster();
    const { file } = hostFile('abc');
    const [local] = c.exportTo(file, K0, K0B);
    assert.ok(local !== undefined && local.desc.kind === 'host_file' && local.desc.readable && local.desc.writable, 'same node: a re-opened host fd');
    importFds(c.k(K0B).services, [local])[0]?.entry.description.close();
    const [remote] = c.exportTo(file, K0, K1);
    assert.ok(remote !== undefined);
    assert.equal(remote.desc.kind, 'remote_file');
    assert.equal(remote.desc.home, K0);
    assert.equal(c.k(K0).files.kept, 1, 'the home keeps it');
    const d = importFds(c.k(K1).services, [remote])[0]?.entry.description as RemoteFile;
    assert.ok(d instanceof RemoteFile);
    assert.equal(dec(readSome(c, d, 10)), 'abc');
    file.close();
    assert.equal(dec(readSome(c, d, 10)), '', 'the home keeps it open after the exporter closes its own');
    d.close();
    c.assertClean();
  });

  test('random reads, writes, seeks, truncations, appends and moves give the bytes node:fs gives', () => {
    const fdsBefore = openFds();
    const op = fc.oneof(
      fc.record({ op: fc.constant('write' as const), data: fc.uint8Array({ maxLength: 3000 }) }),
      fc.record({ op: fc.constant('big' as const), size: fc.integer({ min: 60_000, max: 200_000 }), fill: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant('read' as const), len: fc.integer({ min: 0, max: 5000 }) }),
      fc.record({ op: fc.constant('seek' as const), whence: fc.constantFrom(Whence.SET, Whence.CUR, Whence.END), offset: fc.integer({ min: -3000, max: 6000 }) }),
      fc.record({ op: fc.constant('truncate' as const), size: fc.integer({ min: 0, max: 8000 }) }),
      fc.record({ op: fc.constant('stat' as const) }),
      fc.record({ op: fc.constant('append' as const) }),
      fc.record({ op: fc.constant('sync' as const) }),
      fc.record({ op: fc.constant('move' as const), to: fc.constantFrom(K0, K0B, K1, K2) }),
    );
    const step = fc.record({ op, pump: fc.boolean() });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), fc.constantFrom(K1, K2), (steps, first) => {
        const c = new Cluster();
        const { file, path } = hostFile();
        const modelPath = `${path}.model`;
        const model = fs.openSync(modelPath, 'w+');
        let pos = 0;
        let append = false;
        // The process starts on K0 and moves to another node at once.
        let here = first;
        let d = c.hand(file, K0, here);
        try {
          for (const { op: s, pump } of steps) {
            const size = (): number => fs.fstatSync(model).size;
            if (s.op === 'write' || s.op === 'big') {
              const data = s.op === 'write' ? s.data : new Uint8Array(s.size).fill(s.fill);
              writeAll(c, d, data);
              // Linux moves an O_APPEND offset to the end only for a write of at least one byte.
              if (append && data.length > 0) pos = size();
              fs.writeSync(model, data, 0, data.length, pos);
              pos += data.length;
            } else if (s.op === 'read') {
              const got = readSome(c, d, s.len);
              const want = new Uint8Array(s.len);
              const n = fs.readSync(model, want, 0, s.len, pos);
              assert.ok(got.length <= n && (got.length > 0 || n === 0 || s.len === 0), `read ${s.len} at ${pos}: ${got.length} bytes, fs gives ${n}`);
              assert.deepEqual(got, want.subarray(0, got.length));
              pos += got.length;
            } else if (s.op === 'seek') {
              const base = s.whence === Whence.SET ? 0 : s.whence === Whence.CUR ? pos : size();
              const next = base + s.offset;
              if (next < 0) {
                assert.equal(errnoOf(() => d.seek(BigInt(s.offset), s.whence)), Errno.INVAL);
              } else {
                assert.equal(d.seek(BigInt(s.offset), s.whence), BigInt(next));
                pos = next;
              }
            } else if (s.op === 'truncate') {
              d.setSize(BigInt(s.size));
              fs.ftruncateSync(model, s.size);
            } else if (s.op === 'stat') {
              assert.equal(d.stat().size, BigInt(size()));
              assert.equal(d.seek(0n, Whence.CUR), BigInt(pos), 'tell');
            } else if (s.op === 'append') {
              append = !append;
              d.fdflags ^= Fdflags.APPEND;
            } else if (s.op === 'sync') {
              d.sync(false);
            } else if (s.op === 'move' && s.to !== here) {
              d = c.hand(d, here, s.to);
              here = s.to;
              if (nodeOf(here) !== 0) assert.ok(d instanceof RemoteFile, `a remote file on node ${nodeOf(here)}`);
            }
            if (pump) c.pump();
          }
          d.close();
          c.pump();
          assert.deepEqual(new Uint8Array(fs.readFileSync(path)), new Uint8Array(fs.readFileSync(modelPath)));
          c.assertClean();
        } finally {
          fs.closeSync(model);
        }
      }),
      { numRuns: 80 },
    );
    assert.equal(openFds(), fdsBefore, 'every host fd a deputy opened is closed');
  });

  test('a description given on keeps its home and handle; the home closes the file when the last one closes', () => {
    const c = new Cluster();
    const { file, path } = hostFile();
    const [r1] = c.exportTo(file, K0, K1);
    const [r2] = c.exportTo(file, K0, K1);
    const handleOf = (r: FdRecord | undefined): number | undefined => (r?.desc.kind === 'remote_file' ? r.desc.handle : undefined);
    assert.ok(handleOf(r1) !== undefined);
    assert.equal(handleOf(r1), handleOf(r2), 'one deputy per description');
    assert.equal(c.k(K0).files.kept, 1);
    const a = importFds(c.k(K1).services, [r1 as FdRecord])[0]?.entry.description as RemoteFile;
    const b = importFds(c.k(K1).services, [r2 as FdRecord])[0]?.entry.description as RemoteFile;
    file.close();
    const fdsBefore = openFds();
    writeAll(c, a, enc('one '));
    const onward = c.hand(b, K1, K2) as RemoteFile;
    assert.deepEqual(onward.ref, a.ref, 'handed on from n1 to n2: the same home and handle');
    onward.seek(4n, Whence.SET);
    writeAll(c, onward, enc('two'));
    a.close();
    c.pump();
    assert.equal(c.k(K0).files.kept, 1, 'n2 still holds it');
    assert.equal(openFds(), fdsBefore, 'the deputy has its own host fd, open after the exporter closed its own');
    onward.close();
    c.pump();
    assert.equal(c.k(K0).files.kept, 0);
    assert.equal(openFds(), fdsBefore - 1, 'closed with the last reference');
    assert.equal(fs.readFileSync(path, 'utf8'), 'one two');
    c.assertClean();
  });

  test('a move waits for the writes on their way: the next kernel reads them', () => {
    const c = new Cluster();
    const { file } = hostFile();
    let d = c.hand(file, K0, K1);
    const data = new Uint8Array(50_000).fill(7);
    assert.equal(d.write(data, 0, data.length), data.length, 'within the credit: written at once');
    let records: FdRecord[] | undefined;
    exportFds(c.k(K1).services, [{ fd: 3, entry: { description: d, rightsBase: FILE_RIGHTS, rightsInheriting: 0 } }], K2, (_e, r) => (records = r));
    assert.equal(records, undefined, 'the export waits for the write to be answered');
    c.pump();
    assert.ok(records !== undefined);
    d.close();
    d = importFds(c.k(K2).services, records)[0]?.entry.description as FileDescription;
    assert.equal(d.seek(0n, Whence.CUR), 50_000n, 'the offset came with it');
    d.seek(0n, Whence.SET);
    assert.deepEqual(readSome(c, d, 60_000), data);
    d.close();
    c.assertClean();
  });

  test('reads block and are answered; stat and seek to the end need no round trip', () => {
    const c = new Cluster();
    const { file } = hostFile('0123456789');
    const d = c.hand(file, K0, K1);
    const buf = new Uint8Array(4);
    assert.equal(d.read(buf, 0, 4), BLOCKED, 'the first run asks the home');
    assert.equal(d.seek(0n, Whence.CUR), 0n, 'and changed nothing');
    c.pump();
    assert.equal(d.read(buf, 0, 4), 4, 'the run after the answer takes it');
    assert.equal(dec(buf), '0123');
    assert.equal(d.stat().size, 10n);
    assert.equal(d.seek(-2n, Whence.END), 8n);
    assert.equal(dec(readSome(c, d, 100)), '89');
    assert.equal(readSome(c, d, 100).length, 0, 'end of file');
    assert.equal(errnoOf(() => d.pread(buf, 0, 4, 0n)), Errno.NOTSUP, 'pread goes by readAt (fd_pread waits for the home)');
    d.close();
    c.assertClean();
  });

  test('a read on its way when the file moves: the next kernel reads at the same offset', () => {
    const c = new Cluster();
    const { file } = hostFile('0123456789');
    const d = c.hand(file, K0, K1);
    d.seek(3n, Whence.SET);
    const buf = new Uint8Array(4);
    assert.equal(d.read(buf, 0, 4), BLOCKED);
    const next = c.hand(d, K1, K2);
    assert.equal(dec(readSome(c, next, 4)), '3456');
    next.close();
    c.assertClean();
  });

  test('a stream (a FIFO) keeps its order: bytes received and not read go with it to the next kernel', () => {
    const c = new Cluster();
    const path = join(scratch, `fifo${files++}`);
    execFileSync('mkfifo', [path]);
    const fifo = new HostFile(fs.openSync(path, 'r+'), true, true); // O_RDWR: opening never waits
    const d = c.hand(fifo, K0, K1);
    assert.ok(d instanceof RemoteFile);
    assert.equal(errnoOf(() => d.seek(0n, Whence.SET)), Errno.SPIPE);
    assert.equal(errnoOf(() => d.pread(new Uint8Array(1), 0, 1, 0n)), Errno.SPIPE);
    writeAll(c, d, enc('hello, fifo'));
    c.pump();
    const buf = new Uint8Array(5);
    assert.equal(d.read(buf, 0, 5), BLOCKED);
    c.pump(); // the home read 5 bytes from the FIFO for us: they are out of it now
    const next = c.hand(d, K1, K2);
    assert.equal(dec(readSome(c, next, 5)), 'hello', 'the bytes read for K1 came with the file');
    assert.equal(dec(readSome(c, next, 100)), ', fifo');
    next.close();
    c.assertClean();
  });

  test('the home refuses unknown handles and kernels that hold none with EBADF, bad offsets with EINVAL, and goes on', () => {
    const c = new Cluster();
    const { file } = hostFile('data');
    const d = c.hand(file, K0, K1) as RemoteFile;
    const ask = (from: EndpointId, handle: number, position = 0): string => {
      let answer = 'none';
      c.k(from).messenger.request(K0, 'file_read', { handle, position, len: 4 }, 1000, (error) => {
        answer = error === null ? 'ok' : error instanceof RemoteError ? error.code : error.message;
      });
      c.pump();
      return answer;
    };
    assert.equal(ask(K1, d.ref.handle), 'ok');
    assert.equal(ask(K1, d.ref.handle + 1000), 'EBADF', 'an unknown handle');
    assert.equal(ask(K2, d.ref.handle), 'EBADF', 'a kernel that holds no reference');
    assert.equal(ask(K1, d.ref.handle, -1), 'EINVAL');
    assert.equal(ask(K1, d.ref.handle, 0.5), 'EINVAL');
    let attached = 'none';
    c.k(K2).messenger.request(K0, 'file_attach', { handle: d.ref.handle, holder: K2 }, 1000, (error) => (attached = error instanceof RemoteError ? error.code : 'ok'));
    c.pump();
    assert.equal(attached, 'EBADF', 'only a holder may count a reference for another kernel');
    c.k(K2).messenger.send(K0, 'file_detach', { handle: d.ref.handle, holder: K2, refs: 5 });
    c.k(K2).messenger.send(K0, 'file_detach', { handle: 4242, holder: K2, refs: 1 });
    c.pump();
    assert.equal(c.k(K0).files.kept, 1, 'references of another kernel are not given back by a stranger');
    assert.equal(dec(readSome(c, d, 10)), 'data');
    d.close();
    c.assertClean();
  });

  test('a home that is gone: operations fail with EIO, one on its way too, and closing is clean', () => {
    const c = new Cluster();
    const { file } = hostFile('data');
    const d = c.hand(file, K0, K1);
    const buf = new Uint8Array(4);
    assert.equal(d.read(buf, 0, 4), BLOCKED);
    const k1 = c.k(K1);
    c.cable(K1, K0).up = false;
    k1.messenger.peersLost((dst) => nodeOf(dst) === 0, 'node 0', 'test');
    assert.equal(errnoOf(() => d.read(buf, 0, 4)), Errno.IO, 'the read on its way');
    assert.equal(errnoOf(() => d.read(buf, 0, 4)), Errno.IO, 'a new read');
    assert.equal(d.write(buf, 0, 4), 4, 'a write goes out without waiting');
    assert.equal(errnoOf(() => d.write(buf, 0, 4)), Errno.IO, 'and its failure comes with the next');
    d.close();
    assert.equal(k1.files.size, 0);
    assert.deepEqual(k1.errors, []);
  });

  test('a holder whose node left the cluster is forgotten after two sweeps', () => {
    const c = new Cluster();
    const { file } = hostFile();
    const d = c.hand(file, K0, K1);
    const home = c.k(K0).files;
    home.sweep([K0, K0B, K1, K2]);
    home.sweep([K0, K0B, K1, K2]);
    assert.equal(home.kept, 1);
    home.sweep([K0, K0B, K2]);
    assert.equal(home.kept, 1, 'one sweep is not enough (a node may be joining)');
    home.sweep([K0, K0B, K2]);
    assert.equal(home.kept, 0, 'the second closes it');
    assert.equal(errnoOf(() => readSome(c, d, 4)), Errno.BADF);
    d.close();
    c.pump();
  });

  test('a directory fd goes as the directory it names: by host fd within a node, kept open at its home for another', () => {
    const c = new Cluster();
    for (const id of [K0, K0B, K1]) {
      const k = c.k(id);
      k.dirs = new DirDeputy({ messenger: k.messenger, id } as unknown as Kernel, k.services);
      k.services.register(new DirCarrier(k.dirs));
    }
    const root = fs.mkdtempSync(join(scratch, 'dirs-'));
    const outside = fs.mkdtempSync(join(scratch, 'outside-'));
    fs.mkdirSync(join(root, 'd'));
    fs.writeFileSync(join(root, 'd', 'secret'), 'inside');
    fs.writeFileSync(join(outside, 'secret'), 'SECRET');
    const secretIno = BigInt(fs.statSync(join(root, 'd', 'secret')).ino);
    const fdsBefore = openFds();
    const readIn = (dir: HostDirectory): string => {
      const f = openIn(dir, 'secret', 0, 0, Rights.FD_READ, 0) as HostFile;
      const buf = new Uint8Array(16);
      try {
        return dec(buf.subarray(0, f.read(buf, 0, 16)));
      } finally {
        f.close();
      }
    };
    /** The host renames the directory `name` away and puts a symlink to outside in its place. */
    const swap = (name: string, away: string): void => {
      fs.renameSync(join(root, name), join(root, away));
      fs.symlinkSync(outside, join(root, name));
    };
    const d = openIn(new HostDirectory(root), 'd', 0, Oflags.DIRECTORY, DIR_RIGHTS, 0) as HostDirectory;
    // Within the node (a move or a spawn to K0B): a host fd on the same directory.
    const records = c.exportTo(d, K0, K0B);
    assert.equal(records[0]?.desc.kind, 'directory_handle');
    swap('d', 'd1');
    const [here] = importFds(c.k(K0B).services, records);
    d.close();
    const local = here?.entry.description as HostDirectory;
    assert.equal(readIn(local), 'inside', 'the directory the fd named, not where its path leads now');
    // To another node: kept at K0B, which answers the path calls through the directory it holds.
    const remote = c.hand(local, K0B, K1) as RemoteDirectory;
    assert.ok(remote instanceof RemoteDirectory);
    assert.equal(c.k(K0B).dirs?.size, 1);
    swap('d1', 'd2');
    const ask = (call: DirCall): DirAnswer => {
      let outcome: { error: Error | null; answer?: DirAnswer } | undefined;
      remote.call(call, (error, answer) => (outcome = { error, ...(answer === undefined ? {} : { answer }) }));
      c.pump();
      assert.equal(outcome?.error, null);
      return outcome?.answer as DirAnswer;
    };
    assert.equal(ask({ op: 'stat', path: 'secret', follow: false }).stat?.ino, secretIno);
    assert.deepEqual(ask({ op: 'list' }).entries?.map((e) => e.name).sort(), ['.', '..', 'secret']);
    ask({ op: 'mkdir', path: 'made' });
    assert.ok(fs.statSync(join(root, 'd2', 'made')).isDirectory(), 'made in the held directory');
    // Back home: the directory again, through the kept one's fd.
    swap('d2', 'd3');
    const back = c.hand(remote, K1, K0B) as HostDirectory;
    assert.ok(back instanceof HostDirectory);
    assert.equal(readIn(back), 'inside');
    back.close();
    c.pump();
    assert.equal(c.k(K0B).dirs?.size, 0, 'the home let go of the directory with its last reference');
    assert.equal(openFds(), fdsBefore, 'every host fd on the directory was closed');
    assert.deepEqual(fs.readdirSync(outside), ['secret']);
    c.assertClean();
  });

  test('a record a kernel must not adopt (a checkpoint\'s file by path, which the node opens) is refused without taking anything', () => {
    const c = new Cluster();
    const record: FdRecord = { fd: 3, rights: FILE_RIGHTS, inheriting: 0, fdflags: 0, desc: { kind: 'file_path', path: '/etc/hostname', readable: true, writable: false, offset: 0 } };
    assert.equal(errnoOf(() => importFds(c.k(K1).services, [record])), Errno.INVAL);
    c.assertClean();
  });
});

// ---- two nodes -------------------------------------------------------------------------------

/** The programs these tests run (and sh spawns), instrumented up front. */
const PROGRAMS = ['test/checkpoint.wasm', 'test/migrate.wasm', 'test/fileio.wasm', 'sh.wasm', 'cat.wasm'];

/**
 * Two nodes of one kernel each, in this process. Their hosts share this thread, so the programs
 * are made ready first: instrumenting one on the thread would hold up both nodes' heartbeats.
 */
async function bootPair(): Promise<[PopcornNode, PopcornNode]> {
  for (const program of PROGRAMS) await prepareProgram(example(program));
  const secret = randomBytes(32);
  const [p0, p1] = [await freePort(), await freePort()];
  const boot = (listen: number, join?: number): Promise<PopcornNode> => {
    const io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() };
    io.stdout.resume();
    io.stderr.resume();
    return PopcornNode.boot({
      kernels: 1, balance: false, io, log: (text) => process.stderr.write(`node log: ${text}\n`),
      cluster: { listen: { host: '127.0.0.1', port: listen }, secret, ...(join === undefined ? {} : { join: { host: '127.0.0.1', port: join } }) },
    });
  };
  const first = await boot(p0);
  try {
    return [first, await boot(p1, p0)];
  } catch (error) {
    await first.shutdown();
    throw error;
  }
}

describe('files of processes that moved to another node', () => {
  let n0: PopcornNode;
  let n1: PopcornNode;
  let data: string;
  before(async () => {
    [n0, n1] = await bootPair();
    data = fs.mkdtempSync(join(tmpdir(), 'popcorn-deputy-nodes-'));
  });
  after(async () => {
    await n1?.shutdown();
    await n0?.shutdown();
    fs.rmSync(data, { recursive: true, force: true });
  });

  const dirs = (): { host: string; guest: string }[] => [{ host: data, guest: '/data' }];
  const run = (file: string, args: string[]): ReturnType<typeof startProgram> => startProgram(n0, file, args, { bin: 'test', dirs: dirs() });
  const files = async (): Promise<number[]> => (await n0.info()).sort((a, b) => a.index - b.index).map((k: KernelInfo) => k.tables.files);
  /** Deputies and remote descriptions go once the detach messages are through. */
  const settled = async (): Promise<number[]> => {
    let seen = await files();
    for (let i = 0; i < 100 && seen.some((n) => n !== 0); i++) {
      await sleep(20);
      seen = await files();
    }
    return seen;
  };

  it('a process moved mid-write keeps writing through one fd, and the file stays open at its home', async () => {
    const p = await startProgram(n0, 'test/checkpoint.wasm', ['count', '15', '/data/rounds.txt'], { bin: 'test', dirs: dirs() });
    await p.waitFor('round 3');
    await n0.move(p.pid, 1);
    await p.waitFor('round 5');
    const during = await files();
    const where = (await n0.info()).find((k) => k.processes.some((q) => q.pid === p.pid));
    assert.equal(where?.index, 1, 'it runs on node 1');
    assert.deepEqual(during, [1, 1], 'a deputy at the home (node 0), a remote file on node 1');
    const exit = await p.exit();
    assert.equal(exit.status, 0, p.stderr());
    const rounds = Array.from({ length: 15 }, (_, i) => `round ${i + 1}\n`).join('');
    assert.equal(fs.readFileSync(join(data, 'rounds.txt'), 'utf8'), rounds);
    assert.match(p.stdout(), /checksum /);
    assert.deepEqual(await settled(), [0, 0], 'the home closed it when the process did');
  });

  it('a process holding a file of another node cannot be checkpointed there, and says why', async () => {
    const p = await startProgram(n0, 'test/checkpoint.wasm', ['count', '1000', '/data/held.txt'], { bin: 'test', dirs: dirs() });
    try {
      await p.waitFor('round 1');
      await n0.move(p.pid, 1);
      await assert.rejects(n0.checkpoint(p.pid), /fd \d+ is a file kept open by k0, on another node/);
      await n0.move(p.pid, 0);
      const image = await n0.checkpoint(p.pid);
      assert.ok(image.length > 0, 'back home, it can');
    } finally {
      await n0.kill(p.pid, 9);
    }
    assert.equal((await p.exit()).signal, 9);
    assert.deepEqual(await settled(), [0, 0]);
  });

  it('migrate.wasm file: the halves written before and after the move make the whole file', async () => {
    const p = await run('test/migrate.wasm', ['file', '/data/halves.txt']);
    assert.equal((await p.exit()).status, 0, p.stderr());
    assert.match(p.stdout(), /file on kernel 1/);
    assert.equal(fs.readFileSync(join(data, 'halves.txt'), 'utf8'), 'first half\nsecond half\n');
  });

  it('after the move: fstat, tell, seek, read, ftruncate and fsync behave; back home it is a host file again', async () => {
    const away = await run('test/fileio.wasm', ['rw', '/data/rw1.txt', '1']);
    assert.equal((await away.exit()).status, 0, away.stderr());
    assert.match(away.stdout(), /pread ok\nrw ok on kernel 1/);
    assert.equal(fs.readFileSync(join(data, 'rw1.txt'), 'utf8'), 'hello');
    const back = await run('test/fileio.wasm', ['rw', '/data/rw2.txt', '1', '0']);
    assert.equal((await back.exit()).status, 0, back.stderr());
    assert.match(back.stdout(), /pread ok\nrw ok on kernel 0/);
    assert.equal(fs.readFileSync(join(data, 'rw2.txt'), 'utf8'), 'hello');
    assert.deepEqual(await settled(), [0, 0]);
  });

  it('appends land at the end, and the offset follows', async () => {
    fs.writeFileSync(join(data, 'log.txt'), 'x\n');
    const p = await run('test/fileio.wasm', ['append', '/data/log.txt', '1']);
    assert.equal((await p.exit()).status, 0, p.stderr());
    assert.equal(fs.readFileSync(join(data, 'log.txt'), 'utf8'), 'x\na\nb\n');
    assert.match(p.stdout(), /append tell 6/);
  });

  it('a megabyte written in blocks across the move arrives whole and in order', async () => {
    const p = await run('test/fileio.wasm', ['write', '/data/blocks.bin', '256', '1']);
    assert.equal((await p.exit()).status, 0, p.stderr());
    const got = fs.readFileSync(join(data, 'blocks.bin'));
    assert.equal(got.length, 256 * 4096);
    for (let i = 0; i < 256; i++) assert.equal(got[i * 4096 + 4095], 65 + (i % 26), `block ${i}`);
  });

  it('a file read across the move, by read(2) and by stdio, gives every byte', async () => {
    const content = randomBytes(300_000);
    fs.writeFileSync(join(data, 'in.bin'), content);
    let h = 2166136261;
    for (const byte of content) h = Math.imul(h ^ byte, 16777619) >>> 0;
    const line = `read ${content.length} ${h.toString(16).padStart(8, '0')}`;
    const p = await run('test/fileio.wasm', ['read', '/data/in.bin', '1']);
    assert.equal((await p.exit()).status, 0, p.stderr());
    assert.equal(p.stdout(), `${line}\n${line}\n`);
  });

  it('a child spawned on the other node gets the shell\'s redirections as files of the shell\'s kernel', async () => {
    const text = Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join('');
    fs.writeFileSync(join(data, 'text.txt'), text);
    const sh = await startProgram(n0, 'sh.wasm', ['-c', '@1 cat < /data/text.txt > /data/copy.txt; @1 cat /data/text.txt >> /data/copy.txt; echo done'], { dirs: dirs() });
    assert.equal((await sh.exit()).status, 0, sh.stderr());
    assert.equal(sh.stdout(), 'done\n');
    assert.equal(fs.readFileSync(join(data, 'copy.txt'), 'utf8'), text + text, sh.stderr());
    assert.deepEqual(await settled(), [0, 0]);
  });
});

describe('a file whose home node is lost', () => {
  it('fails the process\'s writes with EIO there; the node and its kernel go on', async () => {
    const [n0, n1] = await bootPair();
    const data = fs.mkdtempSync(join(tmpdir(), 'popcorn-deputy-lost-'));
    try {
      const p = await startProgram(n0, 'test/checkpoint.wasm', ['count', '1000', '/data/rounds.txt'], { bin: 'test', dirs: [{ host: data, guest: '/data' }] });
      await p.waitFor('round 2');
      await n0.move(p.pid, 1);
      await p.waitFor('round 4');
      await n0.shutdown();
      for (let i = 0; i < 200 && n1.members.length > 0; i++) await sleep(25);
      assert.deepEqual(n1.members, [], 'node 1 saw node 0 go');
      // The process runs on at node 1 (its origin is gone); its next write fails, and it exits 1.
      let left: KernelInfo | undefined;
      for (let i = 0; i < 200; i++) {
        left = (await n1.info())[0];
        if (left !== undefined && !left.processes.some((q) => q.pid === p.pid)) break;
        await sleep(25);
      }
      assert.ok(left !== undefined, 'node 1 answers');
      assert.equal(left.processes.some((q) => q.pid === p.pid), false, 'the process ended');
      assert.equal(left.tables.files, 0, 'its remote file is closed');
      assert.equal(left.messages.handlerErrors, 0);
    } finally {
      await n1.shutdown();
      fs.rmSync(data, { recursive: true, force: true });
    }
  });
});
