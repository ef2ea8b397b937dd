/**
 * The producer side of the soak benchmark's ring part (bench/soak.ts): sends records 0, 1, 2, …
 * (each 8 bytes: the sequence number, little-endian, in the first 4) through one ring until
 * `count` are sent or the consumer raises STOP, then stores how many it sent in SENT and sets
 * DONE, and rings the consumer.
 */

import { isMainThread, workerData } from 'node:worker_threads';
import { Doorbell } from '../src/msg/doorbell.js';
import { RingProducer, type RingShared } from '../src/msg/ring.js';

export interface RingJob {
  ring: RingShared;
  count: number;
  /** Int32 control words: STOP (consumer → producer), SENT and DONE (producer → consumer). */
  control: SharedArrayBuffer;
}

export const STOP = 0;
export const SENT = 1;
export const DONE = 2;
/** Spin this long on a full ring before sleeping on the doorbell, as kernels do. */
const SPIN_NS = 20_000;

/** Send the records; runs on the worker thread (bench/soak.ts imports this file for its constants). */
function produce(job: RingJob): void {
  const control = new Int32Array(job.control);
  const producer = new RingProducer(job.ring);
  const ourBell = new Doorbell(job.ring.producerBell);
  const record = new Uint8Array(8);
  const view = new DataView(record.buffer);
  let sent = 0;
  for (; sent < job.count; sent++) {
    // Looking at STOP every 4096 records keeps the check off the per-record path.
    if ((sent & 4095) === 0 && Atomics.load(control, STOP) !== 0) break;
    view.setUint32(0, sent >>> 0, true);
    while (!producer.trySend(record)) ourBell.wait(() => producer.awaitSpace(record.length), SPIN_NS, 100);
  }
  Atomics.store(control, SENT, sent);
  Atomics.store(control, DONE, 1);
  new Doorbell(job.ring.consumerBell).ring();
}

if (!isMainThread) produce(workerData as RingJob);
