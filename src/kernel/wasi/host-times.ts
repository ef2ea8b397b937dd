/**
 * Setting a host file's access and modification times to the nanosecond, as WASI's
 * fd_filestat_set_times and path_filestat_set_times promise (wasmtime calls utimensat; a program
 * may set a time and expect fd_filestat_get to give it back exactly).
 *
 * node's utimes family cannot: it takes seconds as a double and libuv keeps only microseconds of
 * them. So the time is first set through node, rounded so that libuv lands on the exact
 * microsecond — that call gives the host's errnos (EPERM, EACCES, EROFS…) — and when the file
 * system then holds something else than what was asked (a time with nanoseconds), GNU touch,
 * which parses `@SECONDS.NANOSECONDS` and calls utimensat, sets the exact value. It runs only
 * for times that are not whole microseconds, blocks the kernel for its ~ms, and is best effort:
 * where it is missing or fails, the time stays exact to the microsecond.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { host } from './errno.js';
import type { TimeSpec } from './types.js';

type Stat = () => fs.BigIntStats;

/** ns since the epoch → the seconds to give node so that libuv's truncation to µs is exact. */
function toSeconds(ns: bigint): number {
  // libuv computes the µs from the double; aiming at the middle of the µs keeps the double's
  // rounding error (≈ 0.1 µs today) from tipping it into the previous one.
  return (Number(ns / 1000n) + 0.5) / 1e6;
}

/** The times to set, in ns: "leave" is the current value, "now" the clock's. */
function resolveTimes(current: fs.BigIntStats, atim: TimeSpec, mtim: TimeSpec): [bigint, bigint] {
  const now = BigInt(Date.now()) * 1_000_000n;
  const pick = (spec: TimeSpec, was: bigint): bigint => (spec === undefined ? was : spec === 'now' ? now : spec);
  return [pick(atim, current.atimeNs), pick(mtim, current.mtimeNs)];
}

/** Sets the times of the file open as host fd `fd`. */
export function setFdTimes(fd: number, atim: TimeSpec, mtim: TimeSpec): void {
  const stat: Stat = () => host('fstat', () => fs.fstatSync(fd, { bigint: true }));
  const [a, m] = resolveTimes(stat(), atim, mtim);
  host('futimes', () => fs.futimesSync(fd, toSeconds(a), toSeconds(m)));
  // touch's "-" is the file open as its stdout: the same open file, wherever its path is.
  makeExact(stat, exactTarget(atim, a), exactTarget(mtim, m), ['-'], fd);
}

/** Sets the times of `hostPath`, or of the symlink itself when not following. */
export function setPathTimes(hostPath: string, atim: TimeSpec, mtim: TimeSpec, follow: boolean): void {
  const stat: Stat = () => host('stat', () => (follow ? fs.statSync(hostPath, { bigint: true }) : fs.lstatSync(hostPath, { bigint: true })));
  const [a, m] = resolveTimes(stat(), atim, mtim);
  host('utimes', () => (follow ? fs.utimesSync(hostPath, toSeconds(a), toSeconds(m)) : fs.lutimesSync(hostPath, toSeconds(a), toSeconds(m))));
  makeExact(stat, exactTarget(atim, a), exactTarget(mtim, m), follow ? ['--', hostPath] : ['-h', '--', hostPath], 'ignore');
}

/**
 * The time that must come out exact: a given one, or the one to leave as it was (node cannot
 * leave a time alone, it sets both); "now" is whatever the clock said.
 */
function exactTarget(spec: TimeSpec, ns: bigint): bigint | undefined {
  return spec === 'now' ? undefined : ns;
}

/** Corrects each time (`a`, `m`) the host does not hold as asked, with touch. */
function makeExact(stat: Stat, a: bigint | undefined, m: bigint | undefined, target: string[], stdout: number | 'ignore'): void {
  const st = stat();
  const fix = (flag: string, ns: bigint): void => {
    const date = `@${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`;
    spawnSync('touch', ['-c', flag, '-d', date, ...target], { stdio: ['ignore', stdout, 'ignore'] });
  };
  if (a !== undefined && st.atimeNs !== a) fix('-a', a);
  if (m !== undefined && st.mtimeNs !== m) fix('-m', m);
}
