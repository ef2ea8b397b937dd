/**
 * Handover: objects too large for the rings (a process's shared memory, whatever its size) passed
 * between the threads of one node without a copy. Each pair of a node's kernels has a
 * MessagePort pair beside its rings (handoverPorts, made by the node at boot); a sender gives an
 * object under a key (a pid), and the receiver takes it when the ring message that needs it
 * arrives. Objects given under other keys before it were for work that failed on the way: they
 * are dropped. Across nodes there is no handover: the caller sends the data in messages.
 */

import { MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { EndpointId } from './address.js';

/** One endpoint's ports, by the peer each leads to (KernelBoot.handover). */
export type HandoverPorts = Record<number, MessagePort>;

/** A port pair for each pair of `kernels`: what each kernel's Handover is built on. */
export function handoverPorts(kernels: EndpointId[]): Map<EndpointId, HandoverPorts> {
  const ports = new Map<EndpointId, HandoverPorts>(kernels.map((k) => [k, {}]));
  kernels.forEach((a, i) => {
    for (const b of kernels.slice(i + 1)) {
      const { port1, port2 } = new MessageChannel();
      (ports.get(a) as HandoverPorts)[b] = port1;
      (ports.get(b) as HandoverPorts)[a] = port2;
    }
  });
  return ports;
}

export class Handover {
  constructor(private readonly ports: HandoverPorts) {}

  /** Whether objects can be handed to `peer` (a kernel of this node). */
  reaches(peer: EndpointId): boolean {
    return this.ports[peer] !== undefined;
  }

  /** Hand `value` (a shared memory, or anything structured-clonable) to `peer` under `key`. */
  give(peer: EndpointId, key: number, value: unknown): void {
    const port = this.ports[peer];
    if (port === undefined) throw new RangeError(`no handover port to ${peer}: it is not a kernel of this node`);
    port.postMessage({ key, value });
  }

  /** What `peer` handed under `key`, or undefined if it has not come; earlier objects under other keys are dropped. */
  take(peer: EndpointId, key: number): unknown {
    const port = this.ports[peer];
    if (port === undefined) return undefined;
    for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
      const handed = m.message as { key: number; value: unknown };
      if (handed.key === key) return handed.value;
    }
    return undefined;
  }
}
