/**
 * What a transport offers the messenger. A link carries whole frames, in order, without loss or
 * duplication, between this endpoint and one peer (or a relay toward it). Kernel code never sees
 * links: it addresses endpoints through the Messenger.
 */

/** Called with each received frame: a view valid only during the call. */
export type FrameSink = (bytes: Uint8Array, offset: number, length: number) => void;

/** The sending side of a link. */
export interface OutLink {
  /** For logs and errors: "ring k0→k1", "tcp 127.0.0.1:7000". */
  readonly name: string;
  /** The longest frame sent in one piece; longer ones are fragmented by the messenger. */
  readonly maxFrame: number;
  /** False once the peer is known to be gone; frames sent then are discarded. */
  readonly up: boolean;
  /**
   * Queue one frame (copied before return). Never blocks and never drops while the link is up:
   * when the transport is full, the frame waits in a local queue until flush() moves it.
   */
  send(frame: Uint8Array): void;
  /** Move queued frames into the transport. Returns true when nothing is left queued. */
  flush(): boolean;
}

/** The receiving side of a link that is polled (shared memory). Pushed links call a FrameSink. */
export interface InLink {
  readonly name: string;
  /** Deliver up to `budget` frames. Returns how many were delivered. */
  poll(sink: FrameSink, budget: number): number;
  /** True when a frame is waiting (cheap: one atomic load). */
  hasData(): boolean;
}

/** Raised to waiting requests when the link toward their peer went down. */
export class LinkDownError extends Error {
  constructor(readonly link: string, readonly reason: string) {
    super(`link ${link} is down: ${reason}`);
    this.name = 'LinkDownError';
  }
}
