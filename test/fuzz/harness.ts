/**
 * The fuzzing harness: every target is a fast-check property over inputs drawn from a seed, run
 * for a number of cases or a time budget, each case bounded by a timeout (a case that outlives it
 * is a hang). What a run found is a FuzzReport: the seed and the counterexample reproduce it.
 */
import fc from 'fast-check';

export interface FuzzBudget {
  seed: number;
  /** Stop after this many cases (default: unbounded, until `seconds`). */
  runs?: number;
  /** Stop after this long (default: unbounded, until `runs`). */
  seconds?: number;
}

export interface FuzzReport {
  target: string;
  seed: number;
  /** Inputs tried, shrinking included. */
  tried: number;
  crashes: number;
  hangs: number;
  /** Target-specific counts (refusals, valid inputs, ...). */
  counts: Record<string, number>;
  /** The failure: its message and the (shrunk) counterexample, to reproduce with `seed`. */
  failure?: { message: string; counterexample: string };
}

/** A case that did not finish within its timeout. */
export class HangError extends Error {
  override readonly name = 'HangError';
}

/** `work`, or a HangError after `ms`. */
export async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HangError(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** Counts kept by a target while it runs, reported with its result. */
export class Counts {
  readonly values: Record<string, number> = {};
  add(name: string, n = 1): void {
    this.values[name] = (this.values[name] ?? 0) + n;
  }
}

/**
 * Runs `check` on inputs from `arbitrary` within `budget`, each case bounded by `caseMs`.
 * `check` throws (or rejects) for a crash; a HangError from `within` counts as a hang.
 */
export async function fuzzProperty<T>(
  target: string, budget: FuzzBudget, arbitrary: fc.Arbitrary<T>, caseMs: number, check: (input: T) => Promise<void>, counts = new Counts(),
): Promise<FuzzReport> {
  let tried = 0;
  /** The first input that hung: the target is stuck after it, so shrinking cannot go on. */
  let hung: { input: T; error: HangError } | undefined;
  const property = fc.asyncProperty(arbitrary, async (input) => {
    if (hung !== undefined) throw hung.error;
    tried++;
    try {
      await within(caseMs, `a ${target} case`, check(input));
    } catch (error) {
      if (error instanceof HangError) hung = { input, error };
      throw error;
    }
  });
  const result = await fc.check(property, {
    seed: budget.seed,
    numRuns: budget.runs ?? Number.MAX_SAFE_INTEGER,
    ...(budget.seconds === undefined ? {} : { interruptAfterTimeLimit: budget.seconds * 1000, markInterruptAsFailure: false }),
  });
  const report: FuzzReport = { target, seed: budget.seed, tried, crashes: 0, hangs: 0, counts: counts.values };
  // Interrupted before any case finished, fast-check reports a failure with no counterexample:
  // the time ran out (a slow first case on a loaded machine), nothing was found.
  if (hung !== undefined || (result.failed && result.counterexample !== null)) {
    const error = hung?.error ?? result.errorInstance;
    if (hung !== undefined) report.hangs = 1;
    else report.crashes = 1;
    report.failure = {
      message: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      counterexample: fc.stringify(hung === undefined ? result.counterexample : [hung.input]),
    };
  }
  return report;
}

/** A failed report as the message of an assertion: enough to reproduce it. */
export function describeFailure(report: FuzzReport): string {
  if (report.failure === undefined) return `${report.target}: no failure`;
  return `${report.target} failed with seed ${report.seed} after ${report.tried} inputs: ${report.failure.message}\ncounterexample: ${report.failure.counterexample}`;
}

/** A byte mutation: what fuzzers do to a valid input to find the parsers' edges. */
export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'truncate'; at: number };

/** Positions are fractions of the length, so a mutation applies to any input. */
export const mutationArbitrary: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0x41) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

export function mutate(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array<ArrayBuffer> {
  let bytes = input.slice();
  for (const m of mutations) {
    const at = bytes.length === 0 ? 0 : m.at % bytes.length;
    switch (m.kind) {
      case 'flip':
        if (bytes.length > 0) bytes[at] = (bytes[at] as number) ^ (1 << m.bit);
        break;
      case 'set':
        if (bytes.length > 0) bytes[at] = m.value;
        break;
      case 'insert':
        bytes = concat(bytes.subarray(0, at), m.bytes, bytes.subarray(at));
        break;
      case 'delete':
        bytes = concat(bytes.subarray(0, at), bytes.subarray(at + m.length));
        break;
      case 'truncate':
        bytes = bytes.slice(0, at);
        break;
    }
  }
  return bytes;
}

export function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
