/**
 * The shared-memory wiring of one node: a doorbell per endpoint (each kernel and the host
 * thread) and one ring per ordered pair of endpoints. Built once on the main thread; each
 * endpoint receives only its own part, and SharedArrayBuffers travel to workers by reference.
 */

import { Doorbell } from './doorbell.js';
import { createRing, type RingShared } from './ring.js';
import { RingInLink, RingOutLink } from './shm-link.js';
import type { MessengerTransport } from './messenger.js';
import { describeEndpoint, type EndpointId } from './address.js';

/** Ring capacities: kernel↔kernel rings are many (K²), host rings carry terminal and module data. */
export const KERNEL_RING_BYTES = 256 * 1024;
export const HOST_RING_BYTES = 1024 * 1024;

/** What one endpoint needs to join the node's message fabric. */
export interface EndpointWiring {
  self: EndpointId;
  bell: SharedArrayBuffer;
  outgoing: { peer: EndpointId; ring: RingShared }[];
  incoming: { peer: EndpointId; ring: RingShared }[];
}

/** Build the rings among `endpoints` (kernels and the host); `host` gets bigger rings. */
export function buildTopology(endpoints: EndpointId[], host: EndpointId): Map<EndpointId, EndpointWiring> {
  const bells = new Map(endpoints.map((e) => [e, new Doorbell()]));
  const wiring = new Map<EndpointId, EndpointWiring>();
  for (const e of endpoints) wiring.set(e, { self: e, bell: (bells.get(e) as Doorbell).buffer, outgoing: [], incoming: [] });
  for (const from of endpoints) {
    for (const to of endpoints) {
      if (from === to) continue;
      const capacity = from === host || to === host ? HOST_RING_BYTES : KERNEL_RING_BYTES;
      const ring = createRing(capacity, bells.get(to) as Doorbell, bells.get(from) as Doorbell);
      (wiring.get(from) as EndpointWiring).outgoing.push({ peer: to, ring });
      (wiring.get(to) as EndpointWiring).incoming.push({ peer: from, ring });
    }
  }
  return wiring;
}

/**
 * Attach an endpoint's rings to its messenger. Returns the endpoint's doorbell. Frames for
 * endpoints without a ring (other nodes') go to `relay` (a kernel's host), if given.
 */
export function attachWiring(messenger: MessengerTransport, wiring: EndpointWiring, relay?: EndpointId): Doorbell {
  const self = describeEndpoint(wiring.self);
  for (const { peer, ring } of wiring.outgoing) {
    const link = new RingOutLink(`ring ${self}→${describeEndpoint(peer)}`, ring);
    messenger.route(peer, link);
    if (peer === relay) messenger.routeDefault(link);
  }
  for (const { peer, ring } of wiring.incoming) {
    messenger.listen(new RingInLink(`ring ${describeEndpoint(peer)}→${self}`, ring));
  }
  return new Doorbell(wiring.bell);
}
