/**
 * How a failed request to another kernel reads as the failure of the syscall that made it: one
 * rule for every service that answers a guest with the result of a request.
 */

import { LinkDownError } from '../msg/link.js';
import { RemoteError, RequestTimeoutError, TransportCode } from '../msg/requests.js';
import { Errno, WasiError, errnoOf } from '../kernel/wasi/errno.js';

export interface ErrnoChoice {
  /** The errno of a failure that names none. */
  fallback: number;
  /**
   * The errno when the peer could not serve the request: no route or link to it, no answer in
   * time, no handler there, a handler that threw. Unset: the transport's own (EHOSTUNREACH,
   * ETIMEDOUT, ENOSYS, EFAULT). A file's I/O sets EIO, as Linux does for a file system whose
   * server is gone: a guest's read cannot meaningfully fail with EHOSTUNREACH.
   */
  unreachable?: number;
  /** What the call was about, put before the error's message. */
  context?: string;
}

const TRANSPORT_CODES: ReadonlySet<string> = new Set(Object.values(TransportCode));

/**
 * A WasiError stays as it is; a peer's error answer carries the errno it names; a peer that could
 * not serve is `unreachable`; anything else is `fallback`.
 */
export function asWasiError(error: unknown, choice: ErrnoChoice): WasiError {
  if (error instanceof WasiError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const text = choice.context === undefined ? message : `${choice.context}: ${message}`;
  const unreachable = (own: number): WasiError => new WasiError(choice.unreachable ?? own, text);
  if (error instanceof RequestTimeoutError) return unreachable(Errno.TIMEDOUT);
  if (error instanceof LinkDownError) return unreachable(Errno.HOSTUNREACH);
  if (error instanceof RemoteError) {
    const errno = errnoOf(error.code);
    if (errno !== undefined && TRANSPORT_CODES.has(error.code)) return unreachable(errno);
    if (errno !== undefined) return new WasiError(errno, text);
  }
  return new WasiError(choice.fallback, text);
}
