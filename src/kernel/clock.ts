/**
 * The kernels' shared notion of time. performance.now() counts from each thread's own start, so
 * anything compared across kernels (deadlines, timestamps in messages) uses the machine's
 * monotonic clock instead.
 */

/** Monotonic nanoseconds, the same on every thread of the node. */
export const monotonicNs = (): bigint => process.hrtime.bigint();

/** Monotonic milliseconds as a float, the same on every thread of the node. */
export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Wall-clock nanoseconds since the Unix epoch. */
export const realtimeNs = (): bigint => BigInt(Date.now()) * 1_000_000n;
