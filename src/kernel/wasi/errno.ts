/**
 * WASI preview1 errno numbers, the typed error that carries one through the syscall code, and
 * the mapping from Node's host error codes. Syscall implementations throw `WasiError`; the import
 * wrapper in wasi.ts turns it into the return value, so no syscall body needs errno plumbing.
 */

/** `$errno` from wasi_snapshot_preview1.witx, in declaration order (the value is the index). */
export const Errno = {
  SUCCESS: 0, TOOBIG: 1, ACCES: 2, ADDRINUSE: 3, ADDRNOTAVAIL: 4, AFNOSUPPORT: 5, AGAIN: 6,
  ALREADY: 7, BADF: 8, BADMSG: 9, BUSY: 10, CANCELED: 11, CHILD: 12, CONNABORTED: 13,
  CONNREFUSED: 14, CONNRESET: 15, DEADLK: 16, DESTADDRREQ: 17, DOM: 18, DQUOT: 19, EXIST: 20,
  FAULT: 21, FBIG: 22, HOSTUNREACH: 23, IDRM: 24, ILSEQ: 25, INPROGRESS: 26, INTR: 27, INVAL: 28,
  IO: 29, ISCONN: 30, ISDIR: 31, LOOP: 32, MFILE: 33, MLINK: 34, MSGSIZE: 35, MULTIHOP: 36,
  NAMETOOLONG: 37, NETDOWN: 38, NETRESET: 39, NETUNREACH: 40, NFILE: 41, NOBUFS: 42, NODEV: 43,
  NOENT: 44, NOEXEC: 45, NOLCK: 46, NOLINK: 47, NOMEM: 48, NOMSG: 49, NOPROTOOPT: 50, NOSPC: 51,
  NOSYS: 52, NOTCONN: 53, NOTDIR: 54, NOTEMPTY: 55, NOTRECOVERABLE: 56, NOTSOCK: 57, NOTSUP: 58,
  NOTTY: 59, NXIO: 60, OVERFLOW: 61, OWNERDEAD: 62, PERM: 63, PIPE: 64, PROTO: 65,
  PROTONOSUPPORT: 66, PROTOTYPE: 67, RANGE: 68, ROFS: 69, SPIPE: 70, SRCH: 71, STALE: 72,
  TIMEDOUT: 73, TXTBSY: 74, XDEV: 75, NOTCAPABLE: 76,
} as const;
export type ErrnoName = keyof typeof Errno;

const NAMES: string[] = [];
for (const [name, value] of Object.entries(Errno)) NAMES[value] = name === 'TOOBIG' ? 'E2BIG' : `E${name}`;

/** "ENOENT" for 44: for logs and test messages. */
export function errnoName(errno: number): string {
  return NAMES[errno] ?? `errno ${errno}`;
}

/** A syscall failure with its WASI errno and, for the kernel log, what was being done. */
export class WasiError extends Error {
  constructor(
    readonly errno: number,
    readonly context?: string,
  ) {
    super(context === undefined ? errnoName(errno) : `${errnoName(errno)}: ${context}`);
    this.name = 'WasiError';
  }
}

/** Host (libuv/POSIX) error code → WASI errno. Unknown codes become EIO. */
const FROM_HOST: Record<string, number> = {
  E2BIG: Errno.TOOBIG, EACCES: Errno.ACCES, EADDRINUSE: Errno.ADDRINUSE,
  EADDRNOTAVAIL: Errno.ADDRNOTAVAIL, EAFNOSUPPORT: Errno.AFNOSUPPORT, EAGAIN: Errno.AGAIN,
  EWOULDBLOCK: Errno.AGAIN, EALREADY: Errno.ALREADY, EBADF: Errno.BADF, EBUSY: Errno.BUSY,
  ECANCELED: Errno.CANCELED, ECONNABORTED: Errno.CONNABORTED, ECONNREFUSED: Errno.CONNREFUSED,
  ECONNRESET: Errno.CONNRESET, EDQUOT: Errno.DQUOT, EEXIST: Errno.EXIST, EFAULT: Errno.FAULT,
  EFBIG: Errno.FBIG, EHOSTUNREACH: Errno.HOSTUNREACH, EILSEQ: Errno.ILSEQ, EINTR: Errno.INTR,
  EINVAL: Errno.INVAL, EIO: Errno.IO, EISDIR: Errno.ISDIR, ELOOP: Errno.LOOP, EMFILE: Errno.MFILE,
  EMLINK: Errno.MLINK, EMSGSIZE: Errno.MSGSIZE, ENAMETOOLONG: Errno.NAMETOOLONG,
  ENETDOWN: Errno.NETDOWN, ENETUNREACH: Errno.NETUNREACH, ENFILE: Errno.NFILE,
  ENOBUFS: Errno.NOBUFS, ENODEV: Errno.NODEV, ENOENT: Errno.NOENT, ENOMEM: Errno.NOMEM,
  ENOSPC: Errno.NOSPC, ENOSYS: Errno.NOSYS, ENOTCONN: Errno.NOTCONN, ENOTDIR: Errno.NOTDIR,
  ENOTEMPTY: Errno.NOTEMPTY, ENOTSOCK: Errno.NOTSOCK, ENOTSUP: Errno.NOTSUP,
  EOPNOTSUPP: Errno.NOTSUP, ENOTTY: Errno.NOTTY, ENXIO: Errno.NXIO, EOVERFLOW: Errno.OVERFLOW,
  EPERM: Errno.PERM, EPIPE: Errno.PIPE, ERANGE: Errno.RANGE, EROFS: Errno.ROFS,
  ESPIPE: Errno.SPIPE, ESRCH: Errno.SRCH, ESTALE: Errno.STALE, ETIMEDOUT: Errno.TIMEDOUT,
  ETXTBSY: Errno.TXTBSY, EXDEV: Errno.XDEV,
};

/** The WASI errno for a host error thrown by `node:fs`, or undefined if it is not one. */
export function hostErrno(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  return FROM_HOST[code] ?? Errno.IO;
}

/** Runs a host call, turning a node:fs error into a WasiError with `what` as its context. */
export function host<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const errno = hostErrno(err);
    if (errno === undefined) throw err;
    throw new WasiError(errno, `${what}: ${(err as Error).message}`);
  }
}

/** 44 for "ENOENT": the errno a remote kernel named in an `error` answer (undefined if none). */
export function errnoOf(name: string): number | undefined {
  const errno = NAMES.indexOf(name);
  return errno > 0 ? errno : undefined;
}
