/*
 * sort.c — sort a PRNG-generated array of 32-bit integers with a top-down
 * merge sort (plus insertion sort for short runs).
 * Memory-bound: the array and its scratch buffer are 8 bytes per element, so
 * the default size touches ~32 MiB of linear memory.
 *
 *   sort [N]            default N = DEFAULT_N elements (~1 s natively at -O2)
 *                       tests use N = 1000
 *
 * Prints:  sort checksum: n=4000000 sorted=yes hash=0123456789abcdef
 * where hash is an FNV-1a style hash of the sorted array.
 *
 * Used by: bench/ (memory traffic, memory.grow), migration tests (a large
 * linear memory to move between kernels or nodes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_N 4000000L

/* xorshift64*: small, fast, and the same on every platform. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

static void insertion_sort(uint32_t *a, size_t n) {
    for (size_t i = 1; i < n; i++) {
        uint32_t v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > v) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

/* Sort a[0..n) using tmp[0..n) as scratch. */
static void merge_sort(uint32_t *a, uint32_t *tmp, size_t n) {
    if (n <= 32) {
        insertion_sort(a, n);
        return;
    }
    size_t mid = n / 2;
    merge_sort(a, tmp, mid);
    merge_sort(a + mid, tmp + mid, n - mid);
    size_t i = 0, j = mid, k = 0;
    while (i < mid && j < n) tmp[k++] = a[i] <= a[j] ? a[i++] : a[j++];
    while (i < mid) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : DEFAULT_N;
    if (n < 0) n = 0;
    uint32_t *a = malloc((size_t)n * sizeof *a + 1);
    uint32_t *tmp = malloc((size_t)n * sizeof *tmp + 1);
    if (!a || !tmp) {
        fprintf(stderr, "sort: out of memory for %ld elements\n", n);
        return 1;
    }
    for (long i = 0; i < n; i++) a[i] = rng();
    merge_sort(a, tmp, (size_t)n);

    int sorted = 1;
    uint64_t hash = 0xcbf29ce484222325ull;
    for (long i = 0; i < n; i++) {
        if (i > 0 && a[i - 1] > a[i]) sorted = 0;
        hash = (hash ^ a[i]) * 0x100000001b3ull;
    }
    printf("sort checksum: n=%ld sorted=%s hash=%016llx\n", n, sorted ? "yes" : "no",
           (unsigned long long)hash);
    free(a);
    free(tmp);
    return sorted ? 0 : 1;
}
