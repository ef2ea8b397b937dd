/**
 * The frame: one message on any transport. A fixed 16-byte header, then the payload encoded by
 * the message type's schema (src/protocol.ts). Relays read only the header.
 *
 *   0  u16 type      message type id
 *   2  u16 flags     RESPONSE, ERROR
 *   4  u32 src       sending endpoint
 *   8  u32 dst       receiving endpoint
 *  12  u32 request   request id (0: not a request or response)
 */

export const FRAME_HEADER_BYTES = 16;

export const enum FrameFlag {
  /** Answers the request with the same id. */
  Response = 1,
  /** A response whose payload is an `error` message instead of the declared reply. */
  Error = 2,
}

export interface FrameHeader {
  type: number;
  flags: number;
  src: number;
  dst: number;
  request: number;
}

export function writeHeader(view: DataView, at: number, h: FrameHeader): void {
  view.setUint16(at, h.type, true);
  view.setUint16(at + 2, h.flags, true);
  view.setUint32(at + 4, h.src, true);
  view.setUint32(at + 8, h.dst, true);
  view.setUint32(at + 12, h.request, true);
}

export function readHeader(view: DataView, at: number): FrameHeader {
  return {
    type: view.getUint16(at, true),
    flags: view.getUint16(at + 2, true),
    src: view.getUint32(at + 4, true),
    dst: view.getUint32(at + 8, true),
    request: view.getUint32(at + 12, true),
  };
}
