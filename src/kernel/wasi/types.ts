/**
 * WASI preview1 constants and record layouts (wasi_snapshot_preview1.witx) that more than one
 * file needs. Offsets are in bytes; all integers are little-endian.
 */

export const Filetype = {
  UNKNOWN: 0, BLOCK_DEVICE: 1, CHARACTER_DEVICE: 2, DIRECTORY: 3, REGULAR_FILE: 4,
  SOCKET_DGRAM: 5, SOCKET_STREAM: 6, SYMBOLIC_LINK: 7,
} as const;

export const Whence = { SET: 0, CUR: 1, END: 2 } as const;

export const Fdflags = { APPEND: 1, DSYNC: 2, NONBLOCK: 4, RSYNC: 8, SYNC: 16 } as const;

export const Oflags = { CREAT: 1, DIRECTORY: 2, EXCL: 4, TRUNC: 8 } as const;

export const Lookupflags = { SYMLINK_FOLLOW: 1 } as const;

export const Fstflags = { ATIM: 1, ATIM_NOW: 2, MTIM: 4, MTIM_NOW: 8 } as const;

export const Clockid = { REALTIME: 0, MONOTONIC: 1, PROCESS_CPUTIME: 2, THREAD_CPUTIME: 3 } as const;

export const Eventtype = { CLOCK: 0, FD_READ: 1, FD_WRITE: 2 } as const;

export const Subclockflags = { ABSTIME: 1 } as const;

export const Eventrwflags = { HANGUP: 1 } as const;

/** Rights bits (u64 in the ABI; all fit in 30 bits, so plain numbers here). */
export const Rights = {
  FD_DATASYNC: 1 << 0, FD_READ: 1 << 1, FD_SEEK: 1 << 2, FD_FDSTAT_SET_FLAGS: 1 << 3,
  FD_SYNC: 1 << 4, FD_TELL: 1 << 5, FD_WRITE: 1 << 6, FD_ADVISE: 1 << 7, FD_ALLOCATE: 1 << 8,
  PATH_CREATE_DIRECTORY: 1 << 9, PATH_CREATE_FILE: 1 << 10, PATH_LINK_SOURCE: 1 << 11,
  PATH_LINK_TARGET: 1 << 12, PATH_OPEN: 1 << 13, FD_READDIR: 1 << 14, PATH_READLINK: 1 << 15,
  PATH_RENAME_SOURCE: 1 << 16, PATH_RENAME_TARGET: 1 << 17, PATH_FILESTAT_GET: 1 << 18,
  PATH_FILESTAT_SET_SIZE: 1 << 19, PATH_FILESTAT_SET_TIMES: 1 << 20, FD_FILESTAT_GET: 1 << 21,
  FD_FILESTAT_SET_SIZE: 1 << 22, FD_FILESTAT_SET_TIMES: 1 << 23, PATH_SYMLINK: 1 << 24,
  PATH_REMOVE_DIRECTORY: 1 << 25, PATH_UNLINK_FILE: 1 << 26, POLL_FD_READWRITE: 1 << 27,
  SOCK_SHUTDOWN: 1 << 28, SOCK_ACCEPT: 1 << 29,
} as const;

/** Every right defined by preview1. */
export const ALL_RIGHTS = (1 << 30) - 1;

/** Rights that make sense on a regular file. */
export const FILE_RIGHTS =
  Rights.FD_DATASYNC | Rights.FD_READ | Rights.FD_SEEK | Rights.FD_FDSTAT_SET_FLAGS |
  Rights.FD_SYNC | Rights.FD_TELL | Rights.FD_WRITE | Rights.FD_ADVISE | Rights.FD_ALLOCATE |
  Rights.FD_FILESTAT_GET | Rights.FD_FILESTAT_SET_SIZE | Rights.FD_FILESTAT_SET_TIMES |
  Rights.POLL_FD_READWRITE;

/**
 * Rights that make sense on a directory (what it grants itself, not what it passes on). Never one
 * that path_open reads as "open for writing" (FD_DATASYNC, FD_WRITE, FD_ALLOCATE,
 * FD_FILESTAT_SET_SIZE: path-ops.ts): a program may reopen a directory with the rights
 * fd_fdstat_get gave it (wasi-testsuite's helpers reopen the preopen so), which must not ask to
 * write it (EISDIR). wasmtime's preopens lack them too. fd_datasync of a directory still works:
 * a right the object never has is not checked (access.ts).
 */
export const DIR_RIGHTS =
  Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_SYNC | Rights.FD_ADVISE |
  Rights.PATH_CREATE_DIRECTORY | Rights.PATH_CREATE_FILE | Rights.PATH_LINK_SOURCE |
  Rights.PATH_LINK_TARGET | Rights.PATH_OPEN | Rights.FD_READDIR | Rights.PATH_READLINK |
  Rights.PATH_RENAME_SOURCE | Rights.PATH_RENAME_TARGET | Rights.PATH_FILESTAT_GET |
  Rights.PATH_FILESTAT_SET_SIZE | Rights.PATH_FILESTAT_SET_TIMES | Rights.FD_FILESTAT_GET |
  Rights.FD_FILESTAT_SET_TIMES | Rights.PATH_SYMLINK | Rights.PATH_REMOVE_DIRECTORY |
  Rights.PATH_UNLINK_FILE | Rights.POLL_FD_READWRITE;

/** Rights of a stream (terminal, pipe, in-memory queue): no seek/tell, no sizes. */
export const STREAM_RIGHTS =
  Rights.FD_READ | Rights.FD_WRITE | Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_SYNC |
  Rights.FD_DATASYNC | Rights.FD_ADVISE | Rights.FD_FILESTAT_GET | Rights.POLL_FD_READWRITE;

/** `$filestat`: 64 bytes. */
export interface Filestat {
  dev: bigint;
  ino: bigint;
  filetype: number;
  nlink: bigint;
  size: bigint;
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}
export const FILESTAT_SIZE = 64;

/** One directory entry, as fd_readdir serialises it (`$dirent` header is 24 bytes + name). */
export interface DirEntry {
  name: string;
  ino: bigint;
  filetype: number;
}
export const DIRENT_HEADER = 24;

/** A time to set: a value in ns, 'now', or undefined for "leave unchanged". */
export type TimeSpec = bigint | 'now' | undefined;
