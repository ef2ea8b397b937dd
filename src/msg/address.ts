/**
 * Endpoint addresses. Every kernel has a cluster-unique id, and so does each node's host thread
 * (the main thread that owns terminals and sockets). An id is `node << 8 | local`: locals 0–254
 * are kernels, 255 is the node's host. Routing across nodes needs only the node part.
 */

export type EndpointId = number;

export const HOST_LOCAL = 255;

export const endpointId = (node: number, local: number): EndpointId => ((node << 8) | local) >>> 0;
export const nodeOf = (id: EndpointId): number => id >>> 8;
export const localOf = (id: EndpointId): number => id & 0xff;
export const hostOf = (node: number): EndpointId => endpointId(node, HOST_LOCAL);
export const isHost = (id: EndpointId): boolean => localOf(id) === HOST_LOCAL;

/** A readable name for logs: "k3", "n1.k0", "host", "n1.host". */
export function describeEndpoint(id: EndpointId): string {
  const node = nodeOf(id);
  const local = isHost(id) ? 'host' : `k${localOf(id)}`;
  return node === 0 ? local : `n${node}.${local}`;
}
