/**
 * The control protocol of a running node (`popcorn boot`), declared once for the CLI and the
 * node: where its socket is, each answer, the lines of a run session, and the framing. The
 * requests and their checks are in control-requests.ts.
 *
 * Where: a Unix domain socket `control.sock` in the runtime directory, which is
 * `$POPCORN_RUNTIME_DIR` if set, else `$XDG_RUNTIME_DIR/popcorn-ts`, else `~/.popcorn-ts`. The
 * directory is made 0700 and the socket 0600, so only its user (and root) can connect.
 *
 * Lines of JSON, one object per line, both ways (the control plane, not the hot path). The
 * client's first line is a request `{"op": …, …fields}` (CONTROL_REQUESTS; the node checks it
 * with zod, which the commands never load); the node answers with one line `{"ok": true, …}`
 * (ControlReplies) or `{"ok": false, "error": "…", "usage"?: true}` and closes. A request that is not an object, names no known op, or has a field of the wrong
 * type or range is refused with a usage error that names the field.
 *
 * `run` and `restore` without `detach` are sessions: the connection stays open and carries the
 * program's stdio.
 *   node → client (SessionEvent): {"ev":"started","pid":N}, {"ev":"out","fd":1|2,"data":BASE64},
 *                  {"ev":"want"} (the program waits for stdin), then last {"ev":"exit","status":S,"signal":G,"trap":T}
 *   client → node (SESSION_INPUT, control-requests.ts): {"op":"stdin","data":BASE64}, {"op":"eof"}, {"op":"signal","signal":S}
 * A client that goes away ends its program with SIGHUP.
 */

import type { Socket } from 'node:net';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
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

// ---- answers (the requests: control-requests.ts) ----

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

// ---- run sessions ----

/** What the node sends a session's client after the request. */
export type SessionEvent =
  | { ev: 'started'; pid: number }
  | { ev: 'out'; fd: 1 | 2; data: string }
  | { ev: 'want' }
  | { ev: 'exit'; status: number; signal: number; trap: string };

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
