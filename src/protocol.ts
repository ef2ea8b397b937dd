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
} as const satisfies Record<string, MessageSpec>;

export type MessageName = keyof typeof MESSAGES;
export type Payload<N extends MessageName> = ValueOf<(typeof MESSAGES)[N]['payload']>;

/** Message names that expect a reply, and the reply's name. */
export type RequestName = { [N in MessageName]: (typeof MESSAGES)[N] extends { reply: MessageName } ? N : never }[MessageName];
export type ReplyName<N extends RequestName> = (typeof MESSAGES)[N] extends { reply: infer R extends MessageName } ? R : never;
export type ReplyPayload<N extends RequestName> = Payload<ReplyName<N>>;
