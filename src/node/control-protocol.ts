/**
 * The control protocol of a running node (`popcorn boot`), declared once for the CLI and the
 * node: where its socket is, each request with its fields (validated on arrival), each answer,
 * and the lines of a run session.
 *
 * Where: a Unix domain socket `control.sock` in the runtime directory, which is
 * `$POPCORN_RUNTIME_DIR` if set, else `$XDG_RUNTIME_DIR/popcorn-ts`, else `~/.popcorn-ts`. The
 * directory is made 0700 and the socket 0600, so only its user (and root) can connect.
 *
 * Lines of JSON, one object per line, both ways (the control plane, not the hot path). The
 * client's first line is a request `{"op": …, …fields}` (CONTROL_REQUESTS); the node answers
 * with one line `{"ok": true, …}` (ControlReplies) or `{"ok": false, "error": "…", "usage"?: true}`
 * and closes. A request that is not an object, names no known op, or has a field of the wrong
 * type or range is refused with a usage error that names the field.
 *
 * `run` and `restore` without `detach` are sessions: the connection stays open and carries the
 * program's stdio.
 *   node → client (SessionEvent): {"ev":"started","pid":N}, {"ev":"out","fd":1|2,"data":BASE64},
 *                  {"ev":"want"} (the program waits for stdin), then last {"ev":"exit","status":S,"signal":G,"trap":T}
 *   client → node (SESSION_INPUT): {"op":"stdin","data":BASE64}, {"op":"eof"}, {"op":"signal","signal":S}
 * A client that goes away ends its program with SIGHUP.
 */

import type { Socket } from 'node:net';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { MAX_SIGNAL, SIGTERM } from '../kernel/signals.js';
import type { Snapshot } from './observer.js';
import type { ChromeTrace } from './trace.js';

export const NO_NODE_MESSAGE = 'no popcorn node is running (start one with `popcorn boot`)';

/** The runtime directory: the control socket and the node's log live here. */
export function runtimeDir(): string {
  const override = process.env.POPCORN_RUNTIME_DIR;
  if (override !== undefined && override !== '') return override;
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg !== undefined && xdg !== '') return join(xdg, 'popcorn-ts');
  return join(homedir(), '.popcorn-ts');
}

export const socketPath = (): string => join(runtimeDir(), 'control.sock');
export const logPath = (): string => join(runtimeDir(), 'node.log');

/** Make the runtime directory, private to its user. */
export function ensureRuntimeDir(): string {
  const dir = runtimeDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const uid = process.getuid?.();
  if (uid !== undefined && statSync(dir).uid !== uid) throw new Error(`${dir} belongs to another user`);
  return dir;
}

/** Raised by clients when no node answers on the control socket. */
export class NoNodeError extends Error {
  constructor() {
    super(NO_NODE_MESSAGE);
    this.name = 'NoNodeError';
  }
}

/** A request the node refused; `usage` when the request itself was wrong (the CLI's exit 2). */
export class ControlError extends Error {
  constructor(message: string, readonly usage: boolean) {
    super(message);
    this.name = 'ControlError';
  }
}

// ---- requests ----

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

/** One line of `popcorn ps`. */
export interface PsEntry {
  pid: number;
  ppid: number;
  kernel: number;
  state: string;
  cpu_ms: number;
  memory_bytes: number;
  name: string;
  command: string;
}

/** One line of `popcorn kernels`. */
export interface KernelEntry {
  kernel: number;
  node: number;
  endpoint: number;
  processes: number;
  load: number;
  migrations: { in: number; out: number };
  tables: Record<string, number>;
  heap_bytes: number;
  messages: Record<string, number>;
}

/** What the node answers to each op (besides `ok: true`). */
export interface ControlReplies {
  ping: { pid: number; kernels: number; node: number; cluster_kernels: number; members: unknown[] };
  ps: { processes: PsEntry[] };
  kernels: { kernels: KernelEntry[]; host: Record<string, number> };
  kill: Record<string, never>;
  migrate: Record<string, never>;
  shutdown: Record<string, never>;
  /** Detached only; a session answers with SessionEvents. */
  run: { pid: number };
  checkpoint: { bytes: number };
  restore: { pid: number };
  observe: { snapshot: Omit<Snapshot, 'stats'> };
  dashboard: { url: string };
  trace: { trace: ChromeTrace } | { kernels: { kernel: number; recording: boolean; records: number }[] };
}

/** A refusal, as the node writes it. */
export interface ControlRefusal {
  ok: false;
  error: string;
  usage?: true;
}

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

// ---- run sessions ----

/** What a session's client may send after its request. */
export const SESSION_INPUT = z.discriminatedUnion('op', [
  z.object({ op: z.literal('stdin'), data: z.base64() }),
  z.object({ op: z.literal('eof') }),
  z.object({ op: z.literal('signal'), signal: signal.min(1) }),
]);
export type SessionInput = z.output<typeof SESSION_INPUT>;

/** What the node sends a session's client after the request. */
export type SessionEvent =
  | { ev: 'started'; pid: number }
  | { ev: 'out'; fd: 1 | 2; data: string }
  | { ev: 'want' }
  | { ev: 'exit'; status: number; signal: number; trap: string };

/** Check a session's input line; undefined (and `why`) for one the node cannot act on. */
export function parseSessionInput(msg: unknown): { input: SessionInput } | { why: string } {
  const parsed = SESSION_INPUT.safeParse(msg);
  return parsed.success ? { input: parsed.data } : { why: describeIssue(parsed.error.issues[0]) };
}

// ---- both sides: lines of JSON ----

/**
 * Calls `onMessage` for each JSON line received on `socket`. A line that is not JSON ends the
 * connection: nothing after it can be trusted to be framed right.
 */
export function readLines(socket: Socket, onMessage: (msg: unknown) => void): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim() === '') continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        socket.destroy();
        return;
      }
      onMessage(msg);
    }
  });
}

/** Write one line; `done` runs once it is written (or at once if the socket is gone). */
export function sendLine(socket: Socket, msg: object, done?: () => void): void {
  if (socket.destroyed || !socket.writable) {
    done?.();
    return;
  }
  socket.write(`${JSON.stringify(msg)}\n`, () => done?.());
}
