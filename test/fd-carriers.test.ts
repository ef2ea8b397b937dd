/**
 * Every kind of fd that can leave a kernel, through the registry of carriers (fd-transfer.ts):
 * exported from one kernel, imported on another, used there, closed, and the tables of every
 * kernel back where they were; and exported, then discarded, with the same end. Kernels of two
 * nodes and a host are Messengers in this thread joined by cables the test pumps.
 */

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { endpointId, type EndpointId } from '../src/msg/address.js';
import { HostInput, HostOutput, HostStreamChannels } from '../src/kernel/host-stream.js';
import { RemoteDirectory } from '../src/kernel/remote-directory.js';
import type { Kernel } from '../src/kernel/kernel.js';
import { BLOCKED } from '../src/kernel/wasi/blocking.js';
import { HostFile, type FileDescription } from '../src/kernel/wasi/file-description.js';
import { HostDirectory } from '../src/kernel/wasi/host-directory.js';
import { FILE_RIGHTS, Filetype } from '../src/kernel/wasi/types.js';
import { HostStreams } from '../src/node/streams.js';
import { DirCarrier } from '../src/services/dir-carrier.js';
import { DirDeputy } from '../src/services/dir-deputy.js';
import { FdCarriers, discardRecords, exportFds, importFds, type FdKind, type FdRecord } from '../src/services/fd-transfer.js';
import { FileCarrier } from '../src/services/file-carrier.js';
import { FileDeputy } from '../src/services/file-deputy.js';
import { PipeCarrier } from '../src/services/pipe-carrier.js';
import { PipeService } from '../src/services/pipe.js';
import { StreamCarrier } from '../src/services/stream-carrier.js';
import { Mesh, type MeshKernel } from './mesh-helpers.js';

/** n0.k0 and n0.k1 share a node; n1.k0 is on another; n0's host serves the streams. */
const K0 = endpointId(0, 0);
const K0B = endpointId(0, 1);
const K1 = endpointId(1, 0);
const HOST = endpointId(0, 255);

interface TestKernel extends MeshKernel {
  carriers: FdCarriers;
  channels: HostStreamChannels;
  pipes: PipeService;
  files: FileDeputy;
  dirs: DirDeputy;
}

class Lab extends Mesh<TestKernel> {
  readonly stdin = new PassThrough();
  readonly stdout = new PassThrough();
  private readonly written: Buffer[] = [];

  constructor() {
    super([K0, K0B, K1, HOST], (base) => {
      const carriers = new FdCarriers(base.id);
      const channels = new HostStreamChannels(base.messenger, HOST);
      const pipes = new PipeService(base.messenger, base.id);
      const files = new FileDeputy(base.messenger, base.id, (text) => base.errors.push(new Error(text)));
      const dirs = new DirDeputy({ messenger: base.messenger, id: base.id } as unknown as Kernel, carriers);
      // As the composition root (src/services/index.ts) registers them.
      carriers.register(new StreamCarrier(channels));
      carriers.register(new PipeCarrier(pipes));
      carriers.register(new FileCarrier(files));
      carriers.register(new DirCarrier(dirs));
      return { ...base, carriers, channels, pipes, files, dirs };
    });
    new HostStreams(this.kernel(HOST).messenger, { stdin: this.stdin, stdout: this.stdout, stderr: new PassThrough() });
    this.stdout.on('data', (chunk: Buffer) => this.written.push(chunk));
  }

  /** Pump messages and the host's stream events until nothing moves. */
  async settle(): Promise<void> {
    for (let quiet = 0; quiet < 3;) {
      const moved = this.pump();
      await new Promise((resolve) => setImmediate(resolve));
      quiet = moved === 0 ? quiet + 1 : 0;
    }
  }

  get output(): string {
    return Buffer.concat(this.written).toString();
  }

  /** What every kernel holds for others, and the host fds of this process: back where they were once every description is closed. */
  tables(): Record<string, number> {
    const out: Record<string, number> = { hostFds: fs.readdirSync('/proc/self/fd').length };
    for (const id of [K0, K0B, K1]) {
      const k = this.kernel(id);
      out[`k${id}`] = k.pipes.size + k.files.size + k.dirs.size + k.channels.size;
    }
    return out;
  }

  async export(d: FileDescription, from: EndpointId, to: EndpointId): Promise<FdRecord> {
    let outcome: { error: Error | null; records: FdRecord[] } | undefined;
    exportFds(this.kernel(from).carriers, [{ fd: 3, entry: { description: d, rightsBase: d.maxRights, rightsInheriting: 0 } }], to, (error, records) => (outcome = { error, records }));
    await this.settle();
    assert.ok(outcome !== undefined, 'the export finished');
    assert.equal(outcome.error, null);
    assert.equal(outcome.records.length, 1);
    return outcome.records[0] as FdRecord;
  }
}

/** Run `op` as a kernel would: while BLOCKED, let messages (and the host) move, then again. */
async function rerun<T>(lab: Lab, op: () => T | typeof BLOCKED): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const result = op();
    if (result !== BLOCKED) return result;
    await lab.settle();
  }
  assert.fail('still blocked');
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const scratch = fs.mkdtempSync(join(tmpdir(), 'popcorn-carriers-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

async function readText(lab: Lab, d: FileDescription, len = 64): Promise<string> {
  const buf = new Uint8Array(len);
  return dec(buf.subarray(0, await rerun(lab, () => d.read(buf, 0, len))));
}

interface Case {
  name: string;
  kind: FdKind;
  from: EndpointId;
  to: EndpointId;
  /** The description on `from`, and whatever else the case closes at the end. */
  make(lab: Lab): { d: FileDescription; others?: FileDescription[] };
  /** Use the imported description on `to`; `others` as make returned them. */
  use(lab: Lab, d: FileDescription, others: FileDescription[]): Promise<void>;
}

let files = 0;
function hostFile(content: string): HostFile {
  const path = join(scratch, `f${files++}`);
  fs.writeFileSync(path, content);
  const file = new HostFile(fs.openSync(path, 'r+'), true, true);
  file.seek(2n, 0);
  return file;
}

function hostDir(): HostDirectory {
  const path = fs.mkdtempSync(join(scratch, 'd'));
  fs.writeFileSync(join(path, 'inside'), 'x');
  return HostDirectory.openPath(path);
}

const CASES: Case[] = [
  {
    name: 'a host output stream, to another node', kind: 'host_output', from: K0, to: K1,
    make: (lab) => ({ d: new HostOutput(lab.kernel(K0).channels.acquire(HOST, 1)) }),
    use: async (lab, d) => {
      await rerun(lab, () => d.write(enc('out'), 0, 3));
      await lab.settle();
      assert.match(lab.output, /out$/);
    },
  },
  {
    name: 'a host input stream, within a node', kind: 'host_input', from: K0, to: K0B,
    make: (lab) => ({ d: new HostInput(lab.kernel(K0).channels.acquire(HOST, 0)) }),
    use: async (lab, d) => {
      lab.stdin.write('in');
      assert.equal(await readText(lab, d), 'in');
    },
  },
  {
    name: 'a pipe read end, to another node', kind: 'pipe_read', from: K0, to: K1,
    make: (lab) => {
      const { read, write } = lab.kernel(K0).pipes.create();
      return { d: read, others: [write] };
    },
    use: async (lab, d, [write]) => {
      (write as FileDescription).write(enc('piped'), 0, 5);
      assert.equal(await readText(lab, d), 'piped');
    },
  },
  {
    name: 'a pipe write end, within a node', kind: 'pipe_write', from: K0, to: K0B,
    make: (lab) => {
      const { read, write } = lab.kernel(K0).pipes.create();
      return { d: write, others: [read] };
    },
    use: async (lab, d, [read]) => {
      await rerun(lab, () => d.write(enc('back'), 0, 4));
      assert.equal(await readText(lab, read as FileDescription), 'back');
    },
  },
  {
    name: 'a host file, within a node', kind: 'host_file', from: K0, to: K0B,
    make: () => ({ d: hostFile('abcdef') }),
    use: async (lab, d) => assert.equal(await readText(lab, d), 'cdef', 'read from the offset it had'),
  },
  {
    name: 'a host file, to another node (a remote file)', kind: 'remote_file', from: K0, to: K1,
    make: () => ({ d: hostFile('ghijkl') }),
    use: async (lab, d) => assert.equal(await readText(lab, d), 'ijkl'),
  },
  {
    name: 'a directory, within a node', kind: 'directory_handle', from: K0, to: K0B,
    make: () => ({ d: hostDir() }),
    use: async (_lab, d) => assert.equal(d.stat().filetype, Filetype.DIRECTORY),
  },
  {
    name: 'a directory, to another node (a remote directory)', kind: 'remote_directory', from: K0, to: K1,
    make: () => ({ d: hostDir() }),
    use: async (lab, d) => {
      let answer: { error: Error | null; entries?: { name: string }[] } | undefined;
      (d as RemoteDirectory).call({ op: 'list' }, (error, listed) => (answer = { error, entries: listed?.entries }));
      await lab.settle();
      assert.equal(answer?.error, null);
      assert.deepEqual(answer?.entries?.map((e) => e.name).filter((name) => name === 'inside'), ['inside']);
    },
  },
];

for (const c of CASES) {
  test(`carrier round trip: ${c.name}`, async () => {
    const lab = new Lab();
    const baseline = lab.tables();
    const { d, others = [] } = c.make(lab);
    const record = await lab.export(d, c.from, c.to);
    assert.equal(record.desc.kind, c.kind);
    const [imported] = importFds(lab.kernel(c.to).carriers, [record]);
    assert.ok(imported !== undefined);
    assert.equal(imported.entry.rightsBase, d.maxRights);
    await c.use(lab, imported.entry.description, others);
    imported.entry.description.close();
    d.close();
    for (const o of others) o.close();
    await lab.settle();
    assert.deepEqual(lab.tables(), baseline, 'every reference given back');
    lab.assertNoErrors();
  });

  test(`carrier discard: ${c.name}`, async () => {
    const lab = new Lab();
    const baseline = lab.tables();
    const { d, others = [] } = c.make(lab);
    const record = await lab.export(d, c.from, c.to);
    discardRecords(lab.kernel(c.from).carriers, [record], c.to);
    d.close();
    for (const o of others) o.close();
    await lab.settle();
    assert.deepEqual(lab.tables(), baseline, 'what the export took is given back');
    lab.assertNoErrors();
  });
}

test('the registry refuses a second carrier of a kind, a record of no kind, and a description no carrier takes', () => {
  const carriers = new FdCarriers(K0);
  const pipes = new PipeService(new Mesh([K0], (b) => b).kernel(K0).messenger, K0);
  carriers.register(new PipeCarrier(pipes));
  assert.throws(() => carriers.register(new PipeCarrier(pipes)), /two carriers of fd kind pipe_read/);
  const record: FdRecord = { fd: 4, rights: 0, inheriting: 0, fdflags: 0, desc: { kind: 'directory_path', path: '/' } };
  assert.throws(() => importFds(carriers, [record]), /fd 4: no carrier of kind directory_path here/);
  const file = hostFile('no carrier');
  let error: Error | null | undefined;
  exportFds(carriers, [{ fd: 5, entry: { description: file, rightsBase: FILE_RIGHTS, rightsInheriting: 0 } }], K0, (e) => (error = e));
  assert.match(String(error), /fd 5 cannot be given to a process on another kernel/);
  file.close();
});
