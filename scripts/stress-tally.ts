/**
 * What the stress harness counts for one scenario, and the checks that fill it in: a byte stream
 * of numbered records (loss, duplication and reordering each told apart), exit statuses, and runs
 * that do not end in time (hangs).
 */

import type { ExitInfo } from '../src/node/node.js';

export interface Tally {
  runs: number;
  failures: number;
  bytes_lost: number;
  bytes_duplicated: number;
  bytes_reordered: number;
  /** Bytes that are not a record at all (a record cut or spliced by a fault). */
  bytes_corrupt: number;
  wrong_exit_statuses: number;
  hangs: number;
  /** How many runs failed for each reason (the first line of its message, numbers blanked). */
  failure_kinds: Record<string, number>;
  /** The first failure's message, in full. */
  first_failure: string | null;
}

export const newTally = (): Tally => ({
  runs: 0, failures: 0, bytes_lost: 0, bytes_duplicated: 0, bytes_reordered: 0, bytes_corrupt: 0, wrong_exit_statuses: 0, hangs: 0, failure_kinds: {}, first_failure: null,
});

/** A run's failure; `counts` are added to the tally alongside it. */
export class RunFailure extends Error {
  constructor(message: string, readonly counts: Partial<Pick<Tally, 'bytes_lost' | 'bytes_duplicated' | 'bytes_reordered' | 'bytes_corrupt' | 'wrong_exit_statuses' | 'hangs'>> = {}) {
    super(message);
  }
}

export function recordFailure(tally: Tally, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  tally.failures++;
  tally.first_failure ??= message;
  // Kinds group like failures: pids, counts and offsets differ from run to run.
  const kind = (message.split('\n')[0] ?? '').replace(/\d+/g, 'N').slice(0, 120);
  tally.failure_kinds[kind] = (tally.failure_kinds[kind] ?? 0) + 1;
  if (error instanceof RunFailure) {
    for (const [key, n] of Object.entries(error.counts) as [keyof RunFailure['counts'], number][]) tally[key] += n;
  }
}

/** Record `seq` of a stream: 8 decimal digits and a newline (9 bytes). */
export const RECORD_BYTES = 9;
export const record = (seq: number): string => `${String(seq).padStart(8, '0')}\n`;

export interface StreamCheck {
  lost: number;
  duplicated: number;
  reordered: number;
  corrupt: number;
}

/**
 * Compare what arrived with records 0..count-1 in order. A record seen twice is duplicated; one
 * that comes after a later one is reordered; one that never came is lost; anything that does not
 * parse as a record is corrupt.
 */
export function checkStream(text: string, count: number): StreamCheck {
  const seen = new Uint8Array(count);
  const result: StreamCheck = { lost: 0, duplicated: 0, reordered: 0, corrupt: 0 };
  let highest = -1;
  const lines = text.split('\n');
  const tail = lines.pop() ?? '';
  result.corrupt += tail.length;
  for (const line of lines) {
    const seq = /^\d{8}$/.test(line) ? Number(line) : -1;
    if (seq < 0 || seq >= count) result.corrupt += line.length + 1;
    else if (seen[seq] === 1) result.duplicated += RECORD_BYTES;
    else {
      seen[seq] = 1;
      if (seq < highest) result.reordered += RECORD_BYTES;
      highest = Math.max(highest, seq);
    }
  }
  for (let i = 0; i < count; i++) if (seen[i] === 0) result.lost += RECORD_BYTES;
  return result;
}

/** Throws a RunFailure with the counts when the stream is not exactly records 0..count-1. */
export function assertStream(what: string, text: string, count: number, detail = ''): void {
  const c = checkStream(text, count);
  if (c.lost + c.duplicated + c.reordered + c.corrupt === 0) return;
  throw new RunFailure(`${what}: ${c.lost} bytes lost, ${c.duplicated} duplicated, ${c.reordered} reordered, ${c.corrupt} corrupt of ${count * RECORD_BYTES}${detail === '' ? '' : `\n${detail}`}`, {
    bytes_lost: c.lost, bytes_duplicated: c.duplicated, bytes_reordered: c.reordered, bytes_corrupt: c.corrupt,
  });
}

/** Throws a RunFailure (one wrong exit status) unless `exit` is `expected`. */
export function assertExit(what: string, exit: ExitInfo | { status: number | null; signal: number | null }, expected: { status?: number; signal?: number }, detail = ''): void {
  const ok = (expected.status === undefined || exit.status === expected.status) && (expected.signal === undefined || exit.signal === expected.signal);
  if (!ok) throw new RunFailure(`${what}: wrong exit ${JSON.stringify(exit)}, expected ${JSON.stringify(expected)}${detail === '' ? '' : `\n${detail}`}`, { wrong_exit_statuses: 1 });
}

/** `promise`, or a RunFailure counted as a hang after `ms`. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RunFailure(`${what}: no end within ${ms / 1000} s`, { hangs: 1 })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
