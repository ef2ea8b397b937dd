/*
 * burn.c — a fixed amount of pure integer work, no memory traffic and no
 * system calls until the end: ITERS rounds of an xorshift64 step mixed into
 * a multiply-add accumulator. The final value is printed, so the loop cannot
 * be optimized away, and it depends only on ITERS.
 *
 *   burn [ITERS]        default ITERS = DEFAULT_ITERS (~1 s under popcorn on
 *                       the dev machine); tests use small counts
 *
 * Prints:  burn checksum: 550000000 iterations -> 3cb7c110782cbc6e
 *
 * Used by: bench/scale.ts (2×K copies on one kernel vs spread over K kernels:
 * the work is identical and independent, so the speedup is the kernels' own).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define DEFAULT_ITERS 550000000ULL

int main(int argc, char **argv) {
    unsigned long long iters = argc > 1 ? strtoull(argv[1], NULL, 10) : DEFAULT_ITERS;
    if (iters == 0) {
        fprintf(stderr, "usage: burn [ITERS]   (ITERS a positive integer)\n");
        return 2;
    }
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    uint64_t acc = 0;
    for (unsigned long long i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        acc = acc * 6364136223846793005ULL + (x ^ i);
    }
    printf("burn checksum: %llu iterations -> %016llx\n", iters, (unsigned long long)acc);
    return 0;
}
