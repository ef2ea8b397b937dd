/**
 * Wait stations (Popcorn's name): each outstanding request is a continuation keyed by request id.
 * Exactly one of three things ends it: the response, a timeout, or the loss of the link toward the
 * peer. Whatever arrives later for the same id is a late reply, counted and dropped.
 */

export type Continuation = (error: Error | null, payload?: unknown) => void;

/** The request got no answer by its deadline. */
export class RequestTimeoutError extends Error {
  constructor(readonly request: string, readonly peer: string, readonly timeoutMs: number) {
    super(`request ${request} to ${peer} timed out after ${timeoutMs} ms`);
    this.name = 'RequestTimeoutError';
  }
}

/**
 * The codes the messaging layer answers with itself when the peer could not serve a request at
 * all: no route to it, no handler for the message there, a handler that threw.
 */
export const TransportCode = { NoRoute: 'EHOSTUNREACH', NoHandler: 'ENOSYS', HandlerFailed: 'EFAULT' } as const;

/** The peer answered with an `error` message. */
export class RemoteError extends Error {
  /** @param detail the peer's own message; `message` puts the peer's name in front of it. */
  constructor(readonly code: string, readonly detail: string, readonly peer: string) {
    super(`${peer}: ${detail}`);
    this.name = 'RemoteError';
  }
}

interface Station {
  continuation: Continuation;
  /** The message type id the answer must have (besides `error`); 0: any. */
  replyType: number;
  deadline: number;
  dst: number;
  describe: string;
  timeoutMs: number;
}

export class WaitStations {
  private readonly stations = new Map<number, Station>();
  private nextId = 1;
  private nextDeadline = Infinity;

  /**
   * `report` receives what a continuation throws: a failing continuation must not stop the
   * others (expire and failWhere end many at once) nor escape into the transport or the timer.
   * Without it the exception propagates to whoever completed the station.
   */
  constructor(private readonly report?: (error: unknown, describe: string) => void) {}

  /** Open a station; returns the request id to put in the frame. */
  open(dst: number, describe: string, timeoutMs: number, now: number, continuation: Continuation, replyType = 0): number {
    let id = this.nextId;
    // After 2^32 requests ids wrap: skip any still waiting (a very long request must not be
    // answered by the reply meant for a newer one).
    while (this.stations.has(id)) id = id === 0xffffffff ? 1 : id + 1;
    this.nextId = id === 0xffffffff ? 1 : id + 1;
    const deadline = now + timeoutMs;
    this.stations.set(id, { continuation, replyType, deadline, dst, describe, timeoutMs });
    if (deadline < this.nextDeadline) this.nextDeadline = deadline;
    return id;
  }

  /** Close the station with this id and hand it the outcome. False if there was none (late). */
  complete(id: number, error: Error | null, payload?: unknown): boolean {
    const station = this.stations.get(id);
    if (station === undefined) return false;
    this.stations.delete(id);
    if (this.report === undefined) {
      station.continuation(error, payload);
      return true;
    }
    try {
      station.continuation(error, payload);
    } catch (thrown) {
      this.report(thrown, station.describe);
    }
    return true;
  }

  /** The reply type the station `id` expects (0: any), or undefined if there is no such station. */
  replyTypeOf(id: number): number | undefined {
    return this.stations.get(id)?.replyType;
  }

  /** Fail every station whose deadline has passed. Cheap when none has. */
  expire(now: number, peerName: (dst: number) => string): void {
    if (now < this.nextDeadline) return;
    let next = Infinity;
    for (const [id, s] of this.stations) {
      if (s.deadline <= now) this.complete(id, new RequestTimeoutError(s.describe, peerName(s.dst), s.timeoutMs));
      else if (s.deadline < next) next = s.deadline;
    }
    this.nextDeadline = next;
  }

  /** Fail every station waiting on a destination for which `lost` says true. */
  failWhere(lost: (dst: number) => boolean, error: Error): void {
    for (const [id, s] of this.stations) if (lost(s.dst)) this.complete(id, error);
  }

  /** The earliest deadline, for a thread deciding how long it may sleep. */
  get earliestDeadline(): number {
    return this.nextDeadline;
  }

  get size(): number {
    return this.stations.size;
  }
}
