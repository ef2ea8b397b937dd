/*
 * popcorn.h — the popcorn system interface for C programs compiled to wasm32-wasi.
 *
 * Everything WASI offers (files, clocks, stdio, …) is used through wasi-libc as usual; this
 * header declares what popcorn adds. The functions are imports from the wasm module "popcorn";
 * a program that uses one runs only on popcorn (wasmtime and node:wasi refuse the import).
 *
 * Available now:
 *   popcorn_getpid()       the process's PID, unique across every kernel of the system
 *   popcorn_getppid()      the parent's PID; 0 when the process was started by a node
 *                          (popcorn run, popcorn boot) rather than by another process
 *   popcorn_kernel_id()    index of the kernel the process runs on now (0 … count-1)
 *   popcorn_kernel_count() number of kernels in the system
 *
 * Coming with the single system image: spawn, wait, kill, signal handlers, pipes, fd mapping.
 */
#ifndef POPCORN_H
#define POPCORN_H

#define POPCORN_IMPORT(name) __attribute__((import_module("popcorn"), import_name(#name)))

int popcorn_getpid(void) POPCORN_IMPORT(getpid);
int popcorn_getppid(void) POPCORN_IMPORT(getppid);
int popcorn_kernel_id(void) POPCORN_IMPORT(kernel_id);
int popcorn_kernel_count(void) POPCORN_IMPORT(kernel_count);

#endif
