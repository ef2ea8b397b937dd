/**
 * Per message type and per peer traffic counters of a messenger: messages and bytes sent and
 * received. Counting is a few integer increments per message; nothing is formatted until someone
 * asks (kernel_stats), so an unobserved kernel pays only the increments.
 *
 * A message is counted once, whole, however many fragments carried it; relayed frames are not
 * counted here (the messenger's `relayed` counter has them).
 */

import type { EndpointId } from './address.js';

/** Counts of one type or one peer: [sent, sent bytes, received, received bytes]. */
export type TrafficCounts = Float64Array;

const SENT = 0;
const SENT_BYTES = 1;
const RECEIVED = 2;
const RECEIVED_BYTES = 3;

export interface TrafficRow {
  sent: number;
  sent_bytes: number;
  received: number;
  received_bytes: number;
}

export class Traffic {
  /** By type id (a u16, and a table declares few): indexed, no hashing. */
  private readonly types: (TrafficCounts | undefined)[] = [];
  private readonly peers = new Map<EndpointId, TrafficCounts>();
  /** The peer counted last: a conversation repeats it, and a hit costs no lookup. */
  private lastPeer = -1;
  private lastPeerCounts: TrafficCounts = new Float64Array(4);

  sent(type: number, dst: EndpointId, bytes: number): void {
    add(this.ofType(type), SENT, bytes);
    add(this.ofPeer(dst), SENT, bytes);
  }

  received(type: number, src: EndpointId, bytes: number): void {
    add(this.ofType(type), RECEIVED, bytes);
    add(this.ofPeer(src), RECEIVED, bytes);
  }

  /** The counters by message type id. */
  byType(): Map<number, TrafficRow> {
    const byId = new Map<number, TrafficCounts>();
    this.types.forEach((c, type) => byId.set(type, c as TrafficCounts));
    return rows(byId);
  }

  /** The counters by peer endpoint. */
  byPeer(): Map<EndpointId, TrafficRow> {
    return rows(this.peers);
  }

  private ofType(type: number): TrafficCounts {
    return (this.types[type] ??= new Float64Array(4));
  }

  private ofPeer(peer: EndpointId): TrafficCounts {
    if (peer !== this.lastPeer) {
      this.lastPeerCounts = counts(this.peers, peer);
      this.lastPeer = peer;
    }
    return this.lastPeerCounts;
  }
}

function counts(map: Map<number, TrafficCounts>, key: number): TrafficCounts {
  let c = map.get(key);
  if (c === undefined) map.set(key, (c = new Float64Array(4)));
  return c;
}

function add(c: TrafficCounts, at: typeof SENT | typeof RECEIVED, bytes: number): void {
  c[at]! += 1;
  c[at + 1]! += bytes;
}

function rows(map: Map<number, TrafficCounts>): Map<number, TrafficRow> {
  const out = new Map<number, TrafficRow>();
  for (const [key, c] of map) out.set(key, { sent: c[SENT]!, sent_bytes: c[SENT_BYTES]!, received: c[RECEIVED]!, received_bytes: c[RECEIVED_BYTES]! });
  return out;
}
