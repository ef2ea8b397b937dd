/**
 * Target: random syscall arguments from a guest. Each case is a WAT program that calls WASI
 * preview1 and popcorn imports with pointers, lengths, fds and flags drawn from the seed (good
 * ones, boundary ones and random ones), exits 3 if any call returns something that is not an
 * errno, and 0 at its end. It runs on a live node with one preopen; a canary file beside the
 * preopen must stay as it was, nothing may appear outside the preopen, and the kernel must stay up.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import type { PopcornNode } from '../../src/node/node.js';
import { instrumentCached } from '../../src/wasm/loader.js';
import { wat } from '../wasm-fixtures.js';
import { Counts, fuzzProperty, within, HangError, type FuzzBudget, type FuzzReport } from './harness.js';
import { bootFuzzNode, LogTail } from './node.js';

const CASE_MS = 20_000;
/** A program that blocks (poll_oneoff on a long clock, say) is killed after this long. */
const RUN_MS = 3_000;
const SIGKILL = 9;
/** The largest WASI errno (ENOTCAPABLE). */
const MAX_ERRNO = 76;

type Param = 'i32' | 'i64';
interface Import { module: 'wasi_snapshot_preview1' | 'popcorn'; name: string; params: Param[]; errno: boolean }

const wasi = (name: string, params: string): Import => ({ module: 'wasi_snapshot_preview1', name, params: params.split('').map((c) => (c === 'L' ? 'i64' : 'i32')), errno: true });
const popcorn = (name: string, params: string, errno = true): Import => ({ ...wasi(name, params), module: 'popcorn', errno });

/** Every import but proc_exit and proc_raise (which end the program by design). i: i32, L: i64. */
const IMPORTS: Import[] = [
  wasi('args_get', 'ii'), wasi('args_sizes_get', 'ii'), wasi('environ_get', 'ii'), wasi('environ_sizes_get', 'ii'),
  wasi('clock_res_get', 'ii'), wasi('clock_time_get', 'iLi'), wasi('fd_advise', 'iLLi'), wasi('fd_allocate', 'iLL'),
  wasi('fd_close', 'i'), wasi('fd_datasync', 'i'), wasi('fd_fdstat_get', 'ii'), wasi('fd_fdstat_set_flags', 'ii'),
  wasi('fd_fdstat_set_rights', 'iLL'), wasi('fd_filestat_get', 'ii'), wasi('fd_filestat_set_size', 'iL'),
  wasi('fd_filestat_set_times', 'iLLi'), wasi('fd_pread', 'iiiLi'), wasi('fd_prestat_get', 'ii'), wasi('fd_prestat_dir_name', 'iii'),
  wasi('fd_pwrite', 'iiiLi'), wasi('fd_read', 'iiii'), wasi('fd_readdir', 'iiiLi'), wasi('fd_renumber', 'ii'), wasi('fd_seek', 'iLii'),
  wasi('fd_sync', 'i'), wasi('fd_tell', 'ii'), wasi('fd_write', 'iiii'), wasi('path_create_directory', 'iii'),
  wasi('path_filestat_get', 'iiiii'), wasi('path_filestat_set_times', 'iiiiLLi'), wasi('path_link', 'iiiiiii'),
  wasi('path_open', 'iiiiiLLii'), wasi('path_readlink', 'iiiiii'), wasi('path_remove_directory', 'iii'), wasi('path_rename', 'iiiiii'),
  wasi('path_symlink', 'iiiii'), wasi('path_unlink_file', 'iii'), wasi('poll_oneoff', 'iiii'), wasi('sched_yield', ''),
  wasi('random_get', 'ii'), wasi('sock_accept', 'iii'), wasi('sock_recv', 'iiiiii'), wasi('sock_send', 'iiiii'), wasi('sock_shutdown', 'ii'),
  popcorn('getpid', '', false), popcorn('getppid', '', false), popcorn('kernel_id', '', false), popcorn('kernel_count', '', false),
  popcorn('spawn', 'iiiiiiii'), popcorn('wait', 'iiii'), popcorn('kill', 'ii'), popcorn('signal', 'iii'), popcorn('pipe', 'i'),
  popcorn('dup2', 'ii'), popcorn('migrate', 'i'),
];

/** Paths the guest may name, placed in its memory at STRINGS_AT: inside, outside, up and absolute. */
const PATHS = ['f', 'd', 'd/g', 'new', 'l', '..', '../canary.txt', 'd/../../canary.txt', '/etc/passwd', '.', 'f/', ''];
const STRINGS_AT = 1024;
const BUFFER_AT = 8192;
const MEMORY_PAGES = 2;

function layout(): { data: string; spans: [number, number][] } {
  const spans: [number, number][] = [];
  let at = STRINGS_AT;
  let data = '';
  for (const p of PATHS) {
    spans.push([at, p.length]);
    data += `(data (i32.const ${at}) "${p}")`;
    at += p.length + 1;
  }
  return { data, spans };
}
const { data: DATA, spans: SPANS } = layout();

const END = MEMORY_PAGES * 65536;
/** Arguments by kind, chosen by the seed: a good value, a boundary, or anything. */
const I32_POOLS: number[][] = [
  [0, 1, 2, 3, 4, 5, 6, 100, -1],
  SPANS.map(([p]) => p),
  SPANS.map(([, n]) => n),
  [BUFFER_AT, BUFFER_AT + 64, 0, END - 1, END - 4, END, END + 1, 0x7fffffff, -1, -8],
  [0, 1, 2, 4, 8, 16, 0x7f, 0xfff, 0x10000],
];
const I64_POOL = ['0', '1', '4096', '-1', '0x7fffffffffffffff', '0x4000000000000000', '1000000000'];

export interface SyscallCall { fn: number; args: number[] }

function argument(param: Param, choice: number): string {
  if (param === 'i64') return `(i64.const ${I64_POOL[choice % I64_POOL.length]})`;
  const pool = choice % (I32_POOLS.length + 1);
  if (pool === I32_POOLS.length) return `(i32.const ${choice | 0})`;
  const values = I32_POOLS[pool] as number[];
  return `(i32.const ${values[(choice >>> 3) % values.length] as number})`;
}

function program(calls: SyscallCall[]): string {
  const imports = IMPORTS.map((f, i) => `(import "${f.module}" "${f.name}" (func $f${i} (param ${f.params.join(' ')}) (result i32)))`).join('\n');
  const body = calls.map(({ fn, args }) => {
    const i = fn % IMPORTS.length;
    const f = IMPORTS[i] as Import;
    const call = `(call $f${i} ${f.params.map((p, k) => argument(p, args[k] ?? 0)).join(' ')})`;
    return f.errno ? `(if (i32.gt_u ${call} (i32.const ${MAX_ERRNO})) (then (call $exit (i32.const 3))))` : `(drop ${call})`;
  }).join('\n');
  return `(module
  ${imports.replaceAll('(param )', '')}
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") ${MEMORY_PAGES})
  ${DATA}
  (func (export "_start") ${body} (call $exit (i32.const 0))))`;
}

const callsArbitrary = fc.array(fc.record({ fn: fc.nat(), args: fc.array(fc.nat(), { minLength: 9, maxLength: 9 }) }), { minLength: 1, maxLength: 24 });

/** The host side: a preopen with a file, a directory and a symlink, and a canary beside it. */
function makeSandbox(): { root: string; preopen: string; canary: string; reset(): void } {
  const root = mkdtempSync(join(tmpdir(), 'popcorn-fuzz-'));
  const preopen = join(root, 'sandbox');
  const canary = join(root, 'canary.txt');
  writeFileSync(canary, 'canary\n');
  const reset = (): void => {
    rmSync(preopen, { recursive: true, force: true });
    mkdirSync(join(preopen, 'd'), { recursive: true });
    writeFileSync(join(preopen, 'f'), 'inside\n');
    writeFileSync(join(preopen, 'd', 'g'), 'deeper\n');
  };
  reset();
  return { root, preopen, canary, reset };
}

async function runOnce(node: PopcornNode, bytes: Uint8Array, preopen: string, counts: Counts): Promise<number> {
  const { info } = await instrumentCached(bytes, { source: 'fuzz-syscalls.wasm' });
  const stdin = new PassThrough();
  stdin.end();
  const sink = (): PassThrough => new PassThrough().resume();
  const streams = node.attachStreams({ stdin, stdout: sink(), stderr: sink() });
  try {
    const pid = await node.start({ hash: info.originalHash, name: 'fuzz', args: ['fuzz'], env: ['A=1'], dirs: [{ host: preopen, guest: '/sandbox' }], streams });
    const exited = node.waitExit(pid);
    try {
      const exit = await within(RUN_MS, 'the program', exited);
      return exit.signal !== 0 ? -exit.signal : exit.status;
    } catch (error) {
      if (!(error instanceof HangError)) throw error;
      counts.add('killed while blocked');
      await node.kill(pid, SIGKILL);
      return -(await exited).signal;
    }
  } finally {
    node.detachStreams(streams);
  }
}

export async function fuzzSyscalls(budget: FuzzBudget): Promise<FuzzReport> {
  const logs = new LogTail();
  const node = await bootFuzzNode(2, logs);
  const sandbox = makeSandbox();
  const counts = new Counts();
  try {
    return await fuzzProperty('syscalls', budget, callsArbitrary, CASE_MS, async (calls) => {
      sandbox.reset();
      const status = await runOnce(node, wat(program(calls)), sandbox.preopen, counts);
      counts.add('calls', calls.length);
      counts.add(status < 0 ? `ended by signal ${-status}` : `exit ${status}`);
      if (status === 3) throw new Error('a call returned a value that is not an errno');
      if (status !== 0 && status > -1) throw new Error(`the program ended with status ${status}\n${logs.text()}`);
      if (readFileSync(sandbox.canary, 'utf8') !== 'canary\n') throw new Error('the canary outside the preopen changed');
      const outside = readdirSync(sandbox.root).sort().join(',');
      if (outside !== 'canary.txt,sandbox') throw new Error(`files appeared outside the preopen: ${outside}`);
      await node.info(5_000);
    }, counts);
  } finally {
    await node.shutdown();
    rmSync(sandbox.root, { recursive: true, force: true });
  }
}
