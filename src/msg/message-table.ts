/**
 * What a Messenger is typed over: a table of message types, each declared once with its wire id,
 * its payload schema and, for a request, the name of its reply (Barrelfish's Flounder interface).
 * The messaging layer knows no application message; the application's table (src/protocol.ts)
 * includes TRANSPORT_MESSAGES, the two this layer sends itself, and the Messenger infers every
 * payload and reply type from it.
 */

import { compile, type Codec, type Schema, type ValueOf } from './codec.js';

/** One message type. Ids are part of the wire format. */
export interface MessageSpec {
  readonly id: number;
  readonly payload: Schema;
  /** For a request: the name of the message that answers it. */
  readonly reply?: string;
}

export type MessageTable = { readonly [name: string]: MessageSpec };

/** The messages the messaging layer sends on its own; every table includes them. */
export const TRANSPORT_MESSAGES = {
  /** A piece of a frame too long for the link; reassembled before dispatch. */
  fragment: { id: 1, payload: { message: 'u32', total: 'u32', offset: 'u32' } },
  /** The answer to a request that failed; `code` is a stable identifier, `message` for people. */
  error: { id: 3, payload: { code: 'str', message: 'str' } },
  /**
   * A piece of a bulk transfer (bulk.ts): `total` bytes for `key`, these at `offset`; `tag` is
   * the sender's word to the receiver's sink (how to make the place the bytes go).
   */
  bulk: { id: 6, payload: { key: 'u32', offset: 'u32', total: 'u32', tag: 'u32', data: 'bytes' } },
} as const;

/** A table a Messenger can carry: the application's messages and the transport's. */
export type WireTable = MessageTable & typeof TRANSPORT_MESSAGES;

export type NameOf<T extends MessageTable> = keyof T & string;
export type PayloadOf<T extends MessageTable, N extends NameOf<T>> = ValueOf<T[N]['payload']>;
/** The names in `T` that expect a reply. */
export type RequestOf<T extends MessageTable> = {
  [N in NameOf<T>]: T[N] extends { reply: NameOf<T> } ? N : never;
}[NameOf<T>];
export type ReplyNameOf<T extends MessageTable, N extends RequestOf<T>> = T[N] extends { reply: infer R extends NameOf<T> } ? R : never;
export type ReplyPayloadOf<T extends MessageTable, N extends RequestOf<T>> = PayloadOf<T, ReplyNameOf<T, N>>;

/** One compiled message type. */
export interface MessageType {
  readonly id: number;
  readonly name: string;
  readonly codec: Codec<unknown>;
  /** For a request, the type of its reply (set once, as the table is compiled). */
  reply: MessageType | undefined;
}

/** A table's types, by id and by name. */
export interface CompiledTable {
  readonly byId: ReadonlyMap<number, MessageType>;
  readonly byName: ReadonlyMap<string, MessageType>;
}

const compiled = new WeakMap<MessageTable, CompiledTable>();

/**
 * Compile `table` once (messengers of one table share the result). Throws on a table that
 * cannot be carried: two types with one id, a reply naming no type, or a transport message
 * redeclared with another id.
 */
export function compileTable(table: MessageTable): CompiledTable {
  const known = compiled.get(table);
  if (known !== undefined) return known;
  const byId = new Map<number, MessageType>();
  const byName = new Map<string, MessageType>();
  for (const [name, spec] of Object.entries(table)) {
    const clash = byId.get(spec.id);
    if (clash !== undefined) throw new Error(`message types ${clash.name} and ${name} share id ${spec.id}`);
    const type: MessageType = { id: spec.id, name, codec: compile(spec.payload) as Codec<unknown>, reply: undefined };
    byId.set(spec.id, type);
    byName.set(name, type);
  }
  for (const [name, spec] of Object.entries(table)) {
    if (spec.reply === undefined) continue;
    const reply = byName.get(spec.reply);
    if (reply === undefined) throw new Error(`${name} is answered by ${spec.reply}, which the table does not declare`);
    (byName.get(name) as MessageType).reply = reply;
  }
  for (const [name, spec] of Object.entries(TRANSPORT_MESSAGES)) {
    if (table[name]?.id !== spec.id) throw new Error(`the table must declare the transport's ${name} with id ${spec.id}`);
  }
  const result = { byId, byName };
  compiled.set(table, result);
  return result;
}
