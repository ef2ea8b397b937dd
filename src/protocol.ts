/**
 * Every inter-kernel message type, declared once with its payload schema (compare Barrelfish's
 * Flounder interfaces and Popcorn's DEFINE_PCN_KMSG). The payload's TypeScript type is inferred
 * from the schema; services register handlers by message name. A message that expects an answer
 * names its `reply` type; the answer travels with the request's id.
 *
 * Ids are part of the wire format: never renumber, only add. Bump PROTOCOL_VERSION when a schema
 * changes incompatibly; peers compare it in the `hello` handshake.
 */

import type { Schema, ValueOf } from './msg/codec.js';

export const PROTOCOL_VERSION = 1;

interface MessageSpec {
  readonly id: number;
  readonly payload: Schema;
  readonly reply?: string;
}

export const MESSAGES = {
  // ---- messaging layer (src/msg) ----
  /** A piece of a frame too long for the link; reassembled before dispatch. */
  fragment: { id: 1, payload: { message: 'u32', total: 'u32', offset: 'u32' } },
  /** First frame on a link between nodes: protocol version and who is speaking. */
  hello: { id: 2, payload: { version: 'u16', node: 'u32', name: 'str' } },
  /** The answer to a request that failed; `code` is a stable identifier, `message` for people. */
  error: { id: 3, payload: { code: 'str', message: 'str' } },
  /** Round-trip probe, used by tests and benchmarks. */
  ping: { id: 4, payload: { seq: 'u32', data: 'bytes' }, reply: 'pong' },
  pong: { id: 5, payload: { seq: 'u32', data: 'bytes' } },

  // ---- node and kernel lifecycle (src/node, src/kernel/kernel.ts) ----
  /** A kernel finished booting and serves messages. */
  kernel_ready: { id: 20, payload: { kernel: 'u32' } },
  /** Stop: the kernel ends its processes (SIGKILL) and its loop, then answers. */
  shutdown: { id: 21, payload: {}, reply: 'shutdown_done' },
  shutdown_done: { id: 22, payload: { kernel: 'u32' } },
  /** Something a kernel wants the operator to see (warnings, guest faults it survived). */
  log: { id: 23, payload: { level: 'u8', text: 'str' } },

  // ---- processes (src/services/process.ts) ----
  /**
   * Start a process on the receiving kernel from a module in the instrumented-module cache. The
   * kernel is the process's origin: it allocates the PID (src/kernel/pids.ts) and answers with it.
   */
  proc_start: {
    id: 30,
    payload: {
      /** Who hears of its end: the endpoint that gets proc_exited. */
      parent: 'u32',
      /** Content hash of the original module; the kernel loads the instrumented one by it. */
      hash: 'str',
      /** The name shown in ps and in trap messages (usually the module's file name). */
      name: 'str',
      args: ['str'],
      env: ['str'],
      dirs: [{ host: 'str', guest: 'str' }],
      /** Host streams behind fds 0, 1 and 2. */
      stdio: ['u32'],
      sliceMs: 'f64',
    },
    reply: 'proc_started',
  },
  proc_started: { id: 31, payload: { pid: 'u32', kernel: 'u32' } },
  /**
   * A process ended. `signal` is 0 for a normal exit; `trap` holds the trap message and wasm
   * backtrace when it trapped (then status is 128 + SIGABRT, as wasmtime exits).
   */
  proc_exited: { id: 32, payload: { pid: 'u32', status: 'i32', signal: 'u8', trap: 'str' } },
  /** Deliver a signal to a process. */
  proc_kill: { id: 33, payload: { pid: 'u32', signal: 'u8' } },

  // ---- host streams: the terminal, files and pipes of the popcorn command (src/node/streams.ts) ----
  /** Bytes for a host stream (stdout, stderr). The host answers with stream_credit once written. */
  stream_write: { id: 40, payload: { stream: 'u32', data: 'bytes' } },
  /** That many bytes of the kernel's writes to a stream are out of the pipeline: flow control. */
  stream_credit: { id: 41, payload: { stream: 'u32', bytes: 'u32' } },
  /** A reader on the kernel waits for a host stream (stdin): send what there is. */
  stream_want: { id: 42, payload: { stream: 'u32' } },
  /** Bytes read from a host stream; `eof` once it has ended. */
  stream_data: { id: 43, payload: { stream: 'u32', data: 'bytes', eof: 'bool' } },

  // ---- information: what ps and `popcorn kernels` show (src/services/info.ts) ----
  /** Ask a kernel for its processes, load and message counters. */
  kernel_info: { id: 60, payload: {}, reply: 'kernel_info_reply' },
  kernel_info_reply: {
    id: 61,
    payload: {
      kernel: 'u32',
      /** Processes waiting for the CPU (the run queue), plus the one on it, if any. */
      load: 'u32',
      processes: [{
        pid: 'u32',
        /** The endpoint (or, later, the process) told when it ends. */
        parent: 'u32',
        state: 'str',
        cpu_ms: 'f64',
        memory_bytes: 'f64',
        name: 'str',
        args: ['str'],
      }],
      /** The kernel's messenger counters (MessengerStats). */
      messages: {
        sent: 'f64', received: 'f64', relayed: 'f64', fragmentsSent: 'f64', malformed: 'f64', unroutable: 'f64', lateReplies: 'f64', handlerErrors: 'f64',
      },
    },
  },
} as const satisfies Record<string, MessageSpec>;

export type MessageName = keyof typeof MESSAGES;
export type Payload<N extends MessageName> = ValueOf<(typeof MESSAGES)[N]['payload']>;

/** Message names that expect a reply, and the reply's name. */
export type RequestName = { [N in MessageName]: (typeof MESSAGES)[N] extends { reply: MessageName } ? N : never }[MessageName];
export type ReplyName<N extends RequestName> = (typeof MESSAGES)[N] extends { reply: infer R extends MessageName } ? R : never;
export type ReplyPayload<N extends RequestName> = Payload<ReplyName<N>>;
