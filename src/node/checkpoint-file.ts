/**
 * The checkpoint file (docs/checkpoint.md): one line of JSON that says what the file is and
 * holds, for people and tools (`head -1 FILE`), then the process image encoded with the protocol
 * codec (PROCESS_IMAGE in src/protocol.ts) — the image that migration carries, with its fds
 * described by host path (src/services/checkpoint.ts).
 *
 *   {"format":"popcorn-checkpoint","version":1,"created":…,"pid":…,"name":…,"args":[…],
 *    "module":PATH,"hash":SHA256,"instrumented":SHA256,"memory_bytes":…,"cpu_ms":…,
 *    "stopped":…,"fds":["0 stdin", "3 preopen /data = /host/dir", "4 file /x (write, offset 12)"],
 *    "body_bytes":N,"body_sha256":SHA256}\n
 *   <N bytes of image>
 *
 * A file that cannot be restored says exactly why, and nothing is started: not a checkpoint,
 * another format version, truncated or corrupt, a module that changed or that the instrumentation
 * now builds differently (the saved wasm stack fits only the same instrumented module), a file
 * or directory that is gone. This module also does the host's half of a restore: get the module
 * into the cache, reopen the files.
 */

import * as fs from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { PROCESS_IMAGE } from '../protocol.js';
import { DecodeError, Reader, Writer, compile } from '../msg/codec.js';
import { isModuleHash, readCache } from '../wasm/cache.js';
import { sha256Hex } from '../wasm/hash.js';
import { prepareProgram } from '../wasm/loader.js';
import type { ProcessImage } from '../kernel/image.js';
import type { FdRecord } from '../services/fd-transfer.js';
import type { EndpointId } from '../msg/address.js';

export const CHECKPOINT_FORMAT = 'popcorn-checkpoint';
/** Bump whenever PROCESS_IMAGE or the header changes incompatibly. */
export const CHECKPOINT_VERSION = 3;
/** A header longer than this is not one (args and env are short in practice). */
const MAX_HEADER_BYTES = 1 << 20;

export interface CheckpointHeader {
  format: string;
  version: number;
  /** When it was taken (ISO 8601). */
  created: string;
  /** The PID it had; a restored process gets a new one. */
  pid: number;
  name: string;
  args: string[];
  /** The module's host path when the node knew it ('' if not): a restore prepares it from there if the cache lacks it. */
  module: string;
  /** sha256 of the original module. */
  hash: string;
  /** sha256 of the instrumented module the process ran: its saved stack fits only that one. */
  instrumented: string;
  memory_bytes: number;
  cpu_ms: number;
  /** It was stopped (SIGSTOP) when captured; a restore starts it running. */
  stopped: boolean;
  /** Its fds, for people; the image's records are what a restore uses. */
  fds: string[];
  body_bytes: number;
  body_sha256: string;
}

/** Why a checkpoint cannot be written or restored; the message says it all. */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

const codec = compile(PROCESS_IMAGE);

/** The file for `image`. `module` is the module's host path if known. */
export function encodeCheckpoint(image: ProcessImage, module: string, instrumented: string): Uint8Array {
  const w = new Writer(image.memory.length + image.stack.length + 4096);
  codec.encode(w, image);
  const body = w.bytes.subarray(0, w.pos);
  const header: CheckpointHeader = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    created: new Date(image.stoppedAt || Date.now()).toISOString(),
    pid: image.pid,
    name: image.name,
    args: image.args,
    module,
    hash: image.hash,
    instrumented,
    memory_bytes: image.memory.length,
    cpu_ms: Math.round(image.cpuMs * 1000) / 1000,
    stopped: image.stopped,
    fds: describeFds(image),
    body_bytes: body.length,
    body_sha256: sha256Hex(body),
  };
  const line = Buffer.from(`${JSON.stringify(header)}\n`, 'utf8');
  const file = new Uint8Array(line.length + body.length);
  file.set(line, 0);
  file.set(body, line.length);
  return file;
}

/** Read a checkpoint file's header and image; `source` names it in errors. Throws CheckpointError. */
export function decodeCheckpoint(file: Uint8Array, source = 'the checkpoint'): { header: CheckpointHeader; image: ProcessImage } {
  const notOne = new CheckpointError(`${source} is not a popcorn checkpoint (it does not begin with a ${CHECKPOINT_FORMAT} header)`);
  const nl = file.subarray(0, MAX_HEADER_BYTES).indexOf(0x0a);
  if (nl < 0) throw notOne;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(file.buffer, file.byteOffset, nl).toString('utf8'));
  } catch {
    throw notOne;
  }
  if (typeof parsed !== 'object' || parsed === null || (parsed as { format?: unknown }).format !== CHECKPOINT_FORMAT) throw notOne;
  const header = parsed as CheckpointHeader;
  if (header.version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(`${source} is a version ${String(header.version)} popcorn checkpoint; this popcorn reads version ${CHECKPOINT_VERSION}`);
  }
  if (!wellFormed(header)) throw new CheckpointError(`${source} is corrupt: its header lacks fields or has fields of the wrong type`);
  // The hash names a file in the module cache: a crafted one must not lead anywhere else.
  if (!isModuleHash(header.hash) || (header.instrumented !== '' && !isModuleHash(header.instrumented))) {
    throw new CheckpointError(`${source} is corrupt: its module hash is not a sha256`);
  }
  const body = file.subarray(nl + 1);
  if (body.length < header.body_bytes) throw new CheckpointError(`${source} is truncated: its image has ${body.length} of ${header.body_bytes} bytes`);
  if (body.length > header.body_bytes) throw new CheckpointError(`${source} is corrupt: ${body.length - header.body_bytes} bytes follow its image`);
  if (sha256Hex(body) !== header.body_sha256) throw new CheckpointError(`${source} is corrupt: its image does not match the checksum in its header`);
  let image: ProcessImage;
  try {
    const r = new Reader(body);
    image = codec.decode(r);
    if (r.pos !== body.length) throw new DecodeError(`${body.length - r.pos} bytes left after the image`);
  } catch (error) {
    if (error instanceof DecodeError) throw new CheckpointError(`${source} is corrupt: ${error.message}`);
    throw error;
  }
  if (image.hash !== header.hash) throw new CheckpointError(`${source} is corrupt: its header names module ${header.hash}, its image ${image.hash}`);
  return { header, image };
}

function wellFormed(h: CheckpointHeader): boolean {
  const str = (v: unknown): boolean => typeof v === 'string';
  return str(h.hash) && str(h.module) && str(h.instrumented) && str(h.name) && str(h.body_sha256) && Number.isSafeInteger(h.body_bytes) && h.body_bytes >= 0;
}

const STDIO = ['stdin', 'stdout', 'stderr'];

/** The fds of an image as the header lists them: "4 file /tmp/out (write, offset 12)". */
export function describeFds(image: ProcessImage): string[] {
  const lines = new Map<number, string>();
  image.dirs.forEach((d, i) => lines.set(3 + i, `${3 + i} preopen ${d.guest} = ${d.host}`));
  for (const r of image.fds) lines.set(r.fd, `${r.fd} ${describeRecord(r)}`);
  return [...lines].sort((a, b) => a[0] - b[0]).map(([, line]) => line);
}

function describeRecord(r: FdRecord): string {
  const desc = r.desc;
  switch (desc.kind) {
    case 'host_input':
    case 'host_output': {
      const name = STDIO[desc.stream] ?? `stdio ${desc.stream}`;
      return desc.stream === r.fd ? name : `${name} (as fd ${desc.stream})`;
    }
    case 'directory_path':
      return `directory ${desc.path}`;
    case 'file_path':
      return `file ${desc.path} (${accessOf(desc)}, offset ${desc.offset})`;
    default:
      return `unexpected ${desc.kind}`;
  }
}

const accessOf = (a: { readable: boolean; writable: boolean }): string => (a.readable && a.writable ? 'read-write' : a.readable ? 'read' : 'write');

/** sha256 of the instrumented module for `hash` in the cache, or '' when it is not there. */
export function instrumentedHash(hash: string): string {
  const entry = readCache(hash);
  return entry === undefined ? '' : sha256Hex(entry.bytes);
}

// ---- files ----

/**
 * Write a checkpoint to `path` atomically (a temporary file beside it, then rename), private to
 * its user (memory may hold secrets). The temporary file is made before `produce` runs, so a
 * path that cannot be written fails before the process is touched. Returns the size.
 */
export async function writeCheckpointFile(path: string, produce: () => Promise<Uint8Array>): Promise<number> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'wx', 0o600);
  } catch (error) {
    throw new CheckpointError(`cannot write ${path}: ${messageOf(error)}`);
  }
  try {
    const bytes = await produce();
    fs.writeFileSync(fd, bytes);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, path);
    return bytes.length;
  } catch (error) {
    if (fd >= 0) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw error;
  }
}

export function readCheckpointFile(path: string): Uint8Array {
  try {
    return fs.readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CheckpointError(code === 'ENOENT' ? `no such file: ${path}` : `cannot read ${path}: ${messageOf(error)}`);
  }
}

// ---- the host's half of a restore ----

/**
 * Make sure the instrumented module the image ran is in the cache: there already, or prepared
 * again from the module's recorded path — if that file still holds the same module, and the
 * instrumentation still builds the same instrumented module from it.
 */
export async function prepareCheckpointModule(header: CheckpointHeader): Promise<void> {
  let entry = readCache(header.hash);
  if (entry === undefined) {
    if (header.module === '') throw new CheckpointError(`module ${header.name} (${header.hash}) is not in the module cache, and the checkpoint does not say where its file is`);
    if (!fs.existsSync(header.module)) throw new CheckpointError(`module ${header.module} no longer exists, and its hash ${header.hash} is not in the module cache`);
    const program = await prepareProgram(header.module);
    if (program.hash !== header.hash) throw new CheckpointError(`module ${header.module} has changed since the checkpoint: hash ${program.hash}, was ${header.hash}`);
    entry = readCache(header.hash);
    if (entry === undefined) throw new CheckpointError(`module ${header.module} could not be put in the module cache`);
  }
  const instrumented = sha256Hex(entry.bytes);
  if (header.instrumented !== '' && instrumented !== header.instrumented) {
    throw new CheckpointError(
      `module ${header.name} is instrumented differently by this popcorn (${instrumented}, was ${header.instrumented}): the checkpoint's saved stack would not fit it`,
    );
  }
}

/**
 * The image's fds as proc_start takes them: stdio on the streams `stdio` of host `home` (fds 0–2 of the
 * restoring session), files opened again by path (their offset is set by the kernel),
 * directories checked. Throws CheckpointError for what is gone; nothing stays open then.
 */
export function openCheckpointFds(image: ProcessImage, home: EndpointId, stdio: number[]): FdRecord[] {
  for (const d of image.dirs) {
    if (!isDirectory(d.host)) throw new CheckpointError(`preopened directory ${d.host} (${d.guest} in the process) no longer exists`);
  }
  const opened: number[] = [];
  try {
    return image.fds.map((r): FdRecord => {
      const desc = r.desc;
      switch (desc.kind) {
        case 'host_input':
        case 'host_output': {
          const stream = stdio[desc.stream];
          if (stream === undefined) throw new CheckpointError(`fd ${r.fd} names stdio ${desc.stream}: the checkpoint is corrupt`);
          return { ...r, desc: { ...desc, host: home, stream } };
        }
        case 'directory_path':
          if (!isDirectory(desc.path)) throw new CheckpointError(`fd ${r.fd}: directory ${desc.path} no longer exists`);
          return r;
        case 'file_path': {
          const hostFd = openFile(r.fd, desc);
          opened.push(hostFd);
          return { ...r, desc: { kind: 'host_file', hostFd, readable: desc.readable, writable: desc.writable, offset: desc.offset } };
        }
        default:
          throw new CheckpointError(`fd ${r.fd} is a ${desc.kind}, which a checkpoint does not hold: the checkpoint is corrupt`);
      }
    });
  } catch (error) {
    closeHostFds(opened);
    throw error;
  }
}

/** Close the host fds of file records that will not be sent after all. */
export function closeFileRecords(records: FdRecord[]): void {
  closeHostFds(records.flatMap((r) => (r.desc.kind === 'host_file' ? [r.desc.hostFd] : [])));
}

function closeHostFds(fds: number[]): void {
  for (const fd of fds) fs.closeSync(fd);
}

function openFile(fd: number, file: { path: string; readable: boolean; writable: boolean }): number {
  const C = fs.constants;
  const access = file.readable && file.writable ? C.O_RDWR : file.readable ? C.O_RDONLY : C.O_WRONLY;
  try {
    return fs.openSync(file.path, access);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CheckpointError(`fd ${fd}: file ${file.path} no longer exists`);
    throw new CheckpointError(`fd ${fd}: cannot open ${file.path} (${accessOf(file)}): ${messageOf(error)}`);
  }
}

function isDirectory(path: string): boolean {
  try {
    return fs.statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
