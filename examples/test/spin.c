/*
 * spin.c — CPU-bound loop that reports progress.
 *
 *   spin [N [M [ID]]]   N iterations (default 100000000), a progress line
 *                       every M iterations (default 10000000), ID a label
 *                       (default "0")
 *
 * Prints "spin ID COUNT" each time COUNT (iterations done so far) reaches a
 * multiple of M, then "spin ID done" at the end. Output is flushed after each
 * line, so a reader sees progress while the process runs. Each iteration is a
 * few integer operations (a xorshift step), so N = 1e8 is ~0.1 s natively.
 *
 * Used by: scheduler tests — two spins on one kernel must both make progress
 * (their progress lines interleave), preemption and migration tests.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long long n = argc > 1 ? atoll(argv[1]) : 100000000LL;
    long long every = argc > 2 ? atoll(argv[2]) : 10000000LL;
    const char *id = argc > 3 ? argv[3] : "0";
    if (every < 1) every = 1;

    uint32_t x = 2463534242u; /* xorshift32 state: keeps the loop from being folded away */
    long long next = every;
    for (long long i = 1; i <= n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if (i == next) {
            printf("spin %s %lld\n", id, i);
            fflush(stdout);
            next += every;
        }
    }
    printf("spin %s done\n", id);
    /* x is printed so the compiler must compute it; it goes to stderr to keep stdout simple. */
    fprintf(stderr, "spin %s state %u\n", id, x);
    return 0;
}
