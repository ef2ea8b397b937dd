/*
 * exit_code.c — exit with a given status.
 *
 *   exit_code [STATUS]  exits with STATUS (default 0), printing nothing.
 *                       STATUS is taken modulo 256 by the host, as on POSIX.
 *
 * Used by: process tests (exit status through proc_exit, wait, the CLI's own
 * exit code).
 */
#include <stdlib.h>

int main(int argc, char **argv) {
    return argc > 1 ? atoi(argv[1]) : 0;
}
