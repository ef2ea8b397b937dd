/**
 * Bulk data to an endpoint of another node, sent ahead of the message that needs it (a process's
 * memory ahead of its image). One big message would be copied five times over: encoded,
 * fragmented, reassembled, decoded, and copied again into where it belongs. Instead the sender
 * sends `bulk` pieces of one frame each straight from its buffer, and the receiver writes each
 * into the place its sink made for the transfer as it arrives: one copy at each end. The message
 * that follows on the same path comes after every piece, and takes the whole by its key.
 *
 * One Bulk per messenger (it handles `bulk`); keys are the caller's (a pid). Within a node, use
 * Handover (handover.ts): nothing needs copying there.
 */

import { nodeOf, type EndpointId } from './address.js';

/** Bytes per piece: one frame on every link, so nothing is fragmented and reassembled. */
export const BULK_PIECE_BYTES = 192 * 1024;

/** Where a transfer's bytes go, made by the receiver when its first piece comes. */
export interface BulkSink<T> {
  /** A place for `total` bytes, and the view they are written into; throws to refuse the transfer. */
  open(total: number, tag: number): { target: T; bytes: Uint8Array };
}

/** Why a transfer cannot be taken. */
export class BulkError extends Error {
  constructor(message: string, readonly refused: boolean) {
    super(message);
    this.name = 'BulkError';
  }
}

interface Incoming<T> {
  from: EndpointId;
  total: number;
  received: number;
  place: { target: T; bytes: Uint8Array } | undefined;
  /** Why the transfer failed (reported when it is taken). */
  error: string | undefined;
  refused: boolean;
}

export class Bulk<T> {
  private readonly incoming = new Map<number, Incoming<T>>();

  constructor(private readonly messenger: BulkLink, private readonly sink: BulkSink<T>) {
    messenger.on('bulk', (msg, from) => this.piece(msg, from.src));
  }

  /** Send `data` to `to` under `key`, in pieces, ahead of whatever is sent to `to` next. */
  send(to: EndpointId, key: number, data: Uint8Array, tag: number): void {
    const total = data.length;
    let offset = 0;
    do {
      const end = Math.min(offset + BULK_PIECE_BYTES, total);
      this.messenger.send(to, 'bulk', { key, offset, total, tag, data: data.subarray(offset, end) });
      offset = end;
    } while (offset < total);
  }

  /** What came from `from` under `key`, whole; it is forgotten here. Throws BulkError otherwise. */
  take(from: EndpointId, key: number): T {
    const incoming = this.incoming.get(key);
    this.incoming.delete(key);
    if (incoming === undefined || incoming.from !== from) throw new BulkError(`nothing came ahead for ${key}`, false);
    if (incoming.error !== undefined) throw new BulkError(incoming.error, incoming.refused);
    if (incoming.place === undefined || incoming.received !== incoming.total) {
      throw new BulkError(`it came incomplete (${incoming.received} of ${incoming.total} bytes)`, false);
    }
    return incoming.place.target;
  }

  /** The transfer for `key` will not be taken (the work it was for failed): drop it. */
  forget(key: number): void {
    this.incoming.delete(key);
  }

  /** Node `node` is gone: what its endpoints were sending will not be completed. */
  forgetNode(node: number): void {
    for (const [key, incoming] of this.incoming) if (nodeOf(incoming.from) === node) this.incoming.delete(key);
  }

  /** Transfers under way or not yet taken. */
  get size(): number {
    return this.incoming.size;
  }

  private piece(msg: BulkPiece, from: EndpointId): void {
    let incoming = this.incoming.get(msg.key);
    if (msg.offset === 0 || incoming === undefined || incoming.from !== from) {
      incoming = { from, total: msg.total, received: 0, place: undefined, error: undefined, refused: false };
      this.incoming.set(msg.key, incoming);
      try {
        incoming.place = this.sink.open(msg.total, msg.tag);
        if (incoming.place.bytes.length < msg.total) throw new RangeError(`the sink made ${incoming.place.bytes.length} bytes for ${msg.total}`);
      } catch (error) {
        incoming.error = error instanceof Error ? error.message : String(error);
        incoming.refused = true;
        incoming.place = undefined;
      }
    }
    const place = incoming.place;
    if (place === undefined) return;
    if (msg.total !== incoming.total || msg.offset + msg.data.length > incoming.total) {
      incoming.error = `a piece at ${msg.offset} of ${msg.data.length} bytes does not fit ${incoming.total} bytes`;
      incoming.place = undefined;
      return;
    }
    place.bytes.set(msg.data, msg.offset);
    incoming.received += msg.data.length;
  }
}

/** What Bulk needs of a Messenger (any Messenger is one: its table includes `bulk`). */
export interface BulkLink {
  send(to: EndpointId, name: 'bulk', piece: BulkPiece): void;
  on(name: 'bulk', handler: (piece: BulkPiece, from: { src: EndpointId }) => void): void;
}

interface BulkPiece {
  key: number;
  offset: number;
  total: number;
  tag: number;
  data: Uint8Array;
}
