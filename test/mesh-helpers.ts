/**
 * Kernels as Messengers in this thread, each pair joined by in-memory cables that the test pumps
 * frame by frame, so every interleaving of messages and syscalls is reproducible. The services
 * under test (pipes, file and directory deputies) are built on each kernel's messenger by the
 * test (test/pipe.test.ts, test/file-deputy.test.ts).
 */

import assert from 'node:assert/strict';
import { Messenger } from '../src/msg/messenger.js';
import type { EndpointId } from '../src/msg/address.js';
import { MESSAGES, type Protocol } from '../src/protocol.js';
import { Cable } from './msg-helpers.js';

/** What every kernel of a mesh has; the test adds its services. */
export interface MeshKernel {
  id: EndpointId;
  messenger: Messenger<Protocol>;
  /** Failures of handlers and continuations: a clean test ends with none. */
  errors: Error[];
}

export class Mesh<K extends MeshKernel> {
  /** In the order of the ids given. */
  readonly kernels: K[] = [];
  /** One per ordered pair, with the messenger it delivers to. */
  readonly cables: { cable: Cable; to: Messenger<Protocol> }[] = [];
  /** Kernels cut off (a lost node): nothing is delivered to them any more. */
  protected readonly lost = new Set<Messenger<Protocol>>();
  private readonly byId = new Map<EndpointId, K>();
  private readonly byPair = new Map<string, Cable>();

  constructor(ids: EndpointId[], services: (base: MeshKernel) => K) {
    for (const id of ids) {
      const errors: Error[] = [];
      const messenger = new Messenger(MESSAGES, id, { onError: (error) => errors.push(error) });
      const kernel = services({ id, messenger, errors });
      this.kernels.push(kernel);
      this.byId.set(id, kernel);
    }
    for (const a of this.kernels) {
      for (const b of this.kernels) {
        if (a === b) continue;
        const cable = new Cable(`${a.id}→${b.id}`);
        a.messenger.route(b.id, cable);
        b.messenger.listen(cable);
        this.cables.push({ cable, to: b.messenger });
        this.byPair.set(`${a.id}→${b.id}`, cable);
      }
    }
  }

  /** The kernel with endpoint id `id`. */
  kernel(id: EndpointId): K {
    const k = this.byId.get(id);
    assert.ok(k !== undefined, `no kernel ${id} in the mesh`);
    return k;
  }

  /** The cable that carries frames from `from` to `to`. */
  cable(from: EndpointId, to: EndpointId): Cable {
    const cable = this.byPair.get(`${from}→${to}`);
    assert.ok(cable !== undefined, `no cable ${from}→${to}`);
    return cable;
  }

  /** Deliver every message, and those they cause, until all is quiet; how many were delivered. */
  pump(): number {
    let total = 0;
    for (let rounds = 0; rounds < 100_000; rounds++) {
      let moved = 0;
      for (const k of this.kernels) if (!this.lost.has(k.messenger)) moved += k.messenger.poll(1 << 20);
      if (moved === 0) return total;
      total += moved;
    }
    assert.fail('messages kept flowing');
  }

  /** Deliver up to `count` frames waiting on one cable (by index, wrapping). */
  step(index: number, count: number): void {
    const { cable, to } = this.cables[index % this.cables.length] as { cable: Cable; to: Messenger<Protocol> };
    cable.poll((bytes, offset, length) => to.deliver(bytes, offset, length), count);
  }

  /** After the test: no handler failed on a kernel still in the mesh. */
  assertNoErrors(): void {
    for (const k of this.kernels) if (!this.lost.has(k.messenger)) assert.deepEqual(k.errors, [], `errors on ${k.id}`);
  }
}
