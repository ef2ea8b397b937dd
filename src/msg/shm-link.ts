/**
 * The shared-memory transport: one ring per ordered pair of endpoints on a node. A full ring
 * never blocks the sender (kernel handlers must not block) and never overwrites: frames wait in a
 * local FIFO and are moved by flush(), which the owner's loop calls each round and whenever the
 * consumer rings our doorbell after freeing space.
 */

import type { FrameSink, InLink, OutLink } from './link.js';
import { RingConsumer, RingProducer, type RingShared } from './ring.js';

export class RingOutLink implements OutLink {
  readonly producer: RingProducer;
  readonly maxFrame: number;
  readonly up = true;
  private readonly backlog: (Uint8Array | undefined)[] = [];
  private backlogHead = 0;

  constructor(readonly name: string, shared: RingShared) {
    this.producer = new RingProducer(shared);
    this.maxFrame = this.producer.maxPayload;
  }

  send(frame: Uint8Array): void {
    if (frame.length > this.maxFrame) throw new RangeError(`${this.name}: frame of ${frame.length} B exceeds ${this.maxFrame} B`);
    if (this.backlogHead === this.backlog.length && this.producer.trySend(frame)) return;
    this.backlog.push(frame.slice());
  }

  flush(): boolean {
    while (this.backlogHead < this.backlog.length) {
      const frame = this.backlog[this.backlogHead] as Uint8Array;
      if (!this.producer.trySend(frame)) {
        // Ask the consumer to ring us when it frees space; if space appeared meanwhile, retry now.
        if (!(this.producer.awaitSpace(frame.length) && this.producer.trySend(frame))) {
          this.compact();
          return false;
        }
      }
      // Release each frame once it is in the ring: a long backlog under steady pressure must not
      // keep every frame it ever held alive until it drains completely.
      this.backlog[this.backlogHead++] = undefined;
    }
    // Only when something was queued: setting an array's length is a call into the runtime,
    // and flush() runs after every round of the owner's loop, mostly with nothing queued.
    if (this.backlogHead !== 0) {
      this.backlog.length = 0;
      this.backlogHead = 0;
    }
    return true;
  }

  private compact(): void {
    if (this.backlogHead > 1024 && this.backlogHead * 2 > this.backlog.length) {
      this.backlog.splice(0, this.backlogHead);
      this.backlogHead = 0;
    }
  }

  /** Frames waiting for ring space. */
  get queued(): number {
    return this.backlog.length - this.backlogHead;
  }
}

export class RingInLink implements InLink {
  readonly consumer: RingConsumer;

  constructor(readonly name: string, shared: RingShared) {
    this.consumer = new RingConsumer(shared);
  }

  poll(sink: FrameSink, budget: number): number {
    return this.consumer.poll(sink, budget);
  }

  hasData(): boolean {
    return this.consumer.hasData();
  }
}
