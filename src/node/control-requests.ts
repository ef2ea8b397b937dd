/**
 * The control protocol's requests as zod schemas, their types, and the checks the node runs on
 * what clients send (control-protocol.ts declares the rest). Only the node loads this module at
 * run time; the commands import its types alone: zod takes a tenth of a second to load, which
 * every `popcorn` command would pay otherwise.
 */

import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { MAX_SIGNAL, SIGTERM } from '../kernel/signals.js';
import { ControlError } from './control-protocol.js';

const pid = z.number().int().positive();
/** A kernel index of the cluster; the node checks that the kernel exists. */
const kernelIndex = z.number().int().nonnegative();
const absolutePath = z.string().refine((path) => isAbsolute(path), 'must be an absolute path');
const signal = z.number().int().min(0).max(MAX_SIGNAL);

/** Every request, by op, with its fields. Defaults are what the node assumes when a field is absent. */
export const CONTROL_REQUESTS = {
  ping: z.object({}),
  ps: z.object({}),
  kernels: z.object({}),
  /** Signal 0 only checks that the process exists. */
  kill: z.object({ pid, signal: signal.default(SIGTERM) }),
  /** Answered once the process runs on `kernel`. */
  migrate: z.object({ pid, kernel: kernelIndex }),
  /** Answered once the kernels have stopped and the socket is gone. */
  shutdown: z.object({}),
  /** Start a program; detached, its stdio is the node's log and the answer carries its pid. */
  run: z.object({
    module: z.string().min(1),
    name: z.string().min(1).optional(),
    args: z.array(z.string()).default([]),
    env: z.array(z.string()).default([]),
    dirs: z.array(z.object({ host: z.string(), guest: z.string() })).default([]),
    on: kernelIndex.optional(),
    detach: z.boolean().default(false),
  }),
  /** Answered once `file` is written; `stop` ends the process after the capture. */
  checkpoint: z.object({ pid, file: absolutePath, stop: z.boolean().default(false) }),
  /** Start a checkpointed process again, as run starts a program. */
  restore: z.object({ file: absolutePath, on: kernelIndex.optional(), detach: z.boolean().default(false) }),
  /** What top shows (src/node/observer.ts). */
  observe: z.object({}),
  /** The web view, started if it is not running (default 127.0.0.1:0). */
  dashboard: z.object({ http: z.string().min(1).optional() }),
  /** Record for `seconds` (of `pid` alone, or everything for 0); `status` stops a stray trace. */
  trace: z.object({ seconds: z.number().positive().max(3600).default(5), pid: z.number().int().nonnegative().default(0), status: z.boolean().default(false) }),
};

export type ControlOp = keyof typeof CONTROL_REQUESTS;
/** Fields of a request; zod types a request without any as a record of nevers. */
type Fields<T> = string extends keyof T ? object : T;
/** A request as the node sees it, validated, with its defaults filled in. */
export type ControlRequest = { [O in ControlOp]: { op: O } & Fields<z.output<(typeof CONTROL_REQUESTS)[O]>> }[ControlOp];
/** A request as a client writes it: optional fields may be left out. */
export type ControlRequestInput<O extends ControlOp = ControlOp> = { [P in O]: { op: P } & Fields<z.input<(typeof CONTROL_REQUESTS)[P]>> }[O];

/**
 * Check a client's first line. Throws ControlError (a usage error) that names what is wrong: not
 * an object, an unknown op, or the first field of the wrong type or range.
 */
export function parseControlRequest(msg: unknown): ControlRequest {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw new ControlError('a request must be a JSON object', true);
  const op = (msg as { op?: unknown }).op;
  if (typeof op !== 'string' || !Object.hasOwn(CONTROL_REQUESTS, op)) throw new ControlError(`unknown request ${JSON.stringify(op) ?? 'without an op'}`, true);
  const parsed = CONTROL_REQUESTS[op as ControlOp].safeParse(msg);
  if (!parsed.success) throw new ControlError(`invalid ${op} request: ${describeIssue(parsed.error.issues[0])}`, true);
  return { op, ...parsed.data } as ControlRequest;
}

function describeIssue(issue: z.core.$ZodIssue | undefined): string {
  if (issue === undefined) return 'malformed';
  const field = issue.path.join('.');
  return field === '' ? issue.message : `${field}: ${issue.message}`;
}

/** What a session's client may send after its request. */
export const SESSION_INPUT = z.discriminatedUnion('op', [
  z.object({ op: z.literal('stdin'), data: z.base64() }),
  z.object({ op: z.literal('eof') }),
  z.object({ op: z.literal('signal'), signal: signal.min(1) }),
]);
export type SessionInput = z.output<typeof SESSION_INPUT>;

/** Check a session's input line: the input, or `why` the node cannot act on it. */
export function parseSessionInput(msg: unknown): { input: SessionInput } | { why: string } {
  const parsed = SESSION_INPUT.safeParse(msg);
  return parsed.success ? { input: parsed.data } : { why: describeIssue(parsed.error.issues[0]) };
}
