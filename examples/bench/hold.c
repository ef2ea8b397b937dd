/*
 * hold.c — a process with MIB MiB of live, incompressible memory that runs
 * until it is killed: something to migrate. It mallocs MIB MiB, fills every
 * byte with xorshift64 output (non-zero words, so every page is touched and
 * nothing about the data is cheap to send), prints "ready" (flushed), then
 *
 *   spin   loops on the CPU forever (a counter kept in a volatile; no clock,
 *          no system calls), so it is moved while running
 *   sleep  sleeps forever in nanosleep (one hour at a time), so it is moved
 *          while blocked
 *
 *   hold MIB [spin|sleep]      default mode: sleep; MIB 1 … 3072
 *
 * Prints:  ready
 * Exits 2 on bad arguments, 1 if the memory cannot be had; never otherwise.
 *
 * Used by: bench/migrate.ts (migration time by memory size: 1, 64, 256 MiB).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_MIB 3072

static volatile uint64_t sink;

int main(int argc, char **argv) {
    long mib = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    const char *mode = argc > 2 ? argv[2] : "sleep";
    int spin = strcmp(mode, "spin") == 0;
    if (argc < 2 || argc > 3 || mib < 1 || mib > MAX_MIB || (!spin && strcmp(mode, "sleep") != 0)) {
        fprintf(stderr, "usage: hold MIB [spin|sleep]   (MIB 1-%d)\n", MAX_MIB);
        return 2;
    }
    size_t words = (size_t)mib * 1024 * 1024 / sizeof(uint64_t);
    uint64_t *memory = malloc(words * sizeof(uint64_t));
    if (memory == NULL) {
        fprintf(stderr, "hold: cannot allocate %ld MiB\n", mib);
        return 1;
    }
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < words; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memory[i] = x; /* xorshift64 never yields 0 from a non-zero state */
    }
    sink = memory[words - 1];
    printf("ready\n");
    fflush(stdout);

    if (spin) {
        for (;;) sink = sink + 1;
    }
    struct timespec hour = {3600, 0};
    for (;;) nanosleep(&hour, NULL);
}
