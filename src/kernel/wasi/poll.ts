/**
 * poll_oneoff. It never waits itself: it reports what is ready now, or, when nothing is, asks
 * the kernel to park the process on the fds' Pollables and the earliest clock deadline and
 * returns BLOCKED. The kernel re-runs it after a wake-up; relative timeouts were turned into
 * absolute deadlines through ctx.deadlineFor, which gives the same deadline on the re-run, so a
 * timer does not restart and an expired one is reported.
 */
import type { Blocked, Pollable } from './blocking.js';
import { Errno, WasiError } from './errno.js';
import type { FdTable } from './fd-table.js';
import type { GuestMemory } from './memory.js';
import { Clockid, Eventtype, Filetype, Subclockflags } from './types.js';
import type { WasiContext } from './wasi-context.js';

const SUBSCRIPTION_SIZE = 48;
const EVENT_SIZE = 32;

interface Ready {
  userdata: bigint;
  error: number;
  type: number;
  nbytes: bigint;
}

export function pollOneoff(
  ctx: WasiContext, mem: GuestMemory, inPtr: number, outPtr: number, nsubs: number, neventsOut: number,
): number | Blocked {
  const n = nsubs >>> 0;
  if (n === 0) throw new WasiError(Errno.INVAL, 'poll_oneoff with no subscriptions');
  const subs = mem.check(inPtr, n * SUBSCRIPTION_SIZE);
  mem.check(outPtr, n * EVENT_SIZE);
  mem.check(neventsOut, 4);

  const ready: Ready[] = [];
  const pollables: Pollable[] = [];
  let deadline: bigint | undefined;
  for (let i = 0; i < n; i++) {
    const s = subs + i * SUBSCRIPTION_SIZE;
    const userdata = mem.dv.getBigUint64(s, true);
    const tag = mem.dv.getUint8(s + 8);
    if (tag === Eventtype.CLOCK) {
      const d = clockDeadline(ctx, mem, s + 16);
      if (typeof d === 'number') ready.push({ userdata, error: d, type: tag, nbytes: 0n });
      else if (d <= ctx.monotonicNs()) ready.push({ userdata, error: 0, type: tag, nbytes: 0n });
      else if (deadline === undefined || d < deadline) deadline = d;
    } else if (tag === Eventtype.FD_READ || tag === Eventtype.FD_WRITE) {
      const fd = mem.dv.getUint32(s + 16, true);
      const r = fdReadiness(ctx.fds, fd, tag);
      if (r.pollable !== undefined) pollables.push(r.pollable);
      else ready.push({ userdata, error: r.error, type: tag, nbytes: r.nbytes });
    } else {
      throw new WasiError(Errno.INVAL, `subscription tag ${tag}`);
    }
  }

  if (ready.length === 0) {
    const spec = deadline === undefined ? { pollables } : { pollables, deadlineNs: deadline };
    return ctx.wait(spec);
  }
  for (let i = 0; i < ready.length; i++) writeEvent(mem, outPtr + i * EVENT_SIZE, ready[i]!);
  mem.u32set(neventsOut, ready.length);
  return 0;
}

/**
 * A clock subscription's absolute monotonic deadline, or an errno for the event. Absolute
 * realtime deadlines are converted with the current offset between the clocks; a relative one
 * on either clock counts from now on the monotonic clock (the kernel's timers run on it).
 */
function clockDeadline(ctx: WasiContext, mem: GuestMemory, p: number): bigint | number {
  const id = mem.dv.getUint32(p, true);
  const timeout = mem.dv.getBigUint64(p + 8, true);
  const flags = mem.dv.getUint16(p + 24, true);
  if (id !== Clockid.REALTIME && id !== Clockid.MONOTONIC) return Errno.INVAL;
  if (!(flags & Subclockflags.ABSTIME)) return ctx.deadlineFor(timeout);
  if (id === Clockid.MONOTONIC) return timeout;
  return ctx.monotonicNs() + (timeout - ctx.realtimeNs());
}

/** An fd subscription: ready now (error/nbytes), or the Pollable to wait on. */
function fdReadiness(
  fds: FdTable, fd: number, tag: number,
): { error: number; nbytes: bigint; pollable?: Pollable } {
  const e = fds.lookup(fd);
  if (e === undefined) return { error: Errno.BADF, nbytes: 0n };
  const d = e.description;
  if (tag === Eventtype.FD_READ) {
    if (d.filetype === Filetype.DIRECTORY) return { error: Errno.ISDIR, nbytes: 0n };
    if (!d.pollable.readReady()) return { error: 0, nbytes: 0n, pollable: d.pollable };
    return { error: 0, nbytes: d.readableBytes() };
  }
  if (d.filetype === Filetype.DIRECTORY) return { error: Errno.ISDIR, nbytes: 0n };
  if (!d.pollable.writeReady()) return { error: 0, nbytes: 0n, pollable: d.pollable };
  return { error: 0, nbytes: 0n };
}

/** `$event` (32 bytes): userdata u64, error u16 @8, type u8 @10, nbytes u64 @16, flags u16 @24. */
function writeEvent(mem: GuestMemory, p: number, ev: Ready): void {
  const dv = mem.dv;
  mem.u8.fill(0, p, p + EVENT_SIZE);
  dv.setBigUint64(p, ev.userdata, true);
  dv.setUint16(p + 8, ev.error, true);
  dv.setUint8(p + 10, ev.type);
  dv.setBigUint64(p + 16, ev.nbytes, true);
}
