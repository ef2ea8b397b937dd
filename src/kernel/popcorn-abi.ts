/**
 * The `popcorn` import module: what a program can ask of the operating system beyond WASI
 * (declared for C in examples/include/popcorn.h). This first part answers who and where the
 * process is; process creation, waiting, signals and pipes come with the single system image.
 * None of these can block, so they are not Asyncify unwind points (see WASI_MAY_UNWIND).
 */

import { markNeverBlocks } from './wasi/blocking.js';

/** What the ABI needs to know about the calling process and its kernel. */
export interface PopcornAbiContext {
  pid: number;
  /** 0 when the process was started by a node rather than by another process. */
  ppid: number;
  /** Index of the kernel the process runs on now. */
  kernel: () => number;
  /** Number of kernels in the system. */
  kernels: () => number;
}

export type PopcornImports = Record<string, () => number>;

export function createPopcornImports(ctx: PopcornAbiContext): PopcornImports {
  return {
    getpid: markNeverBlocks(() => ctx.pid),
    getppid: markNeverBlocks(() => ctx.ppid),
    kernel_id: markNeverBlocks(() => ctx.kernel()),
    kernel_count: markNeverBlocks(() => ctx.kernels()),
  };
}
