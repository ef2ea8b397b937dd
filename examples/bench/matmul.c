/*
 * matmul.c — dense double-precision matrix multiply C = A * B (N x N), with
 * the cache-friendly i-k-j loop order.
 *
 *   matmul [N]          default N = DEFAULT_N (~1 s natively at -O2)
 *                       tests use N = 16
 *
 * A and B are filled with small exact binary fractions, so every product and
 * partial sum is computed identically by native and wasm builds. Prints:
 *   matmul checksum: n=512 sum=123456.000000000 trace=789.000000000
 *
 * Used by: bench/ (floating point + memory loads, 3 x 8*N*N bytes of memory).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_N 1000

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : DEFAULT_N;
    if (n < 1) n = 1;
    size_t cells = (size_t)n * (size_t)n;
    double *a = malloc(cells * sizeof *a);
    double *b = malloc(cells * sizeof *b);
    double *c = calloc(cells, sizeof *c);
    if (!a || !b || !c) {
        fprintf(stderr, "matmul: out of memory for n=%ld\n", n);
        return 1;
    }
    for (long i = 0; i < n; i++) {
        for (long j = 0; j < n; j++) {
            a[i * n + j] = (double)((i * 7 + j * 3) % 17) / 8.0 - 1.0;
            b[i * n + j] = (double)((i * 5 + j * 11) % 13) / 4.0 - 1.5;
        }
    }
    for (long i = 0; i < n; i++) {
        double *ci = c + i * n;
        for (long k = 0; k < n; k++) {
            double aik = a[i * n + k];
            const double *bk = b + k * n;
            for (long j = 0; j < n; j++) ci[j] += aik * bk[j];
        }
    }
    double sum = 0.0, trace = 0.0;
    for (long i = 0; i < n; i++) {
        trace += c[i * n + i];
        for (long j = 0; j < n; j++) sum += c[i * n + j];
    }
    printf("matmul checksum: n=%ld sum=%.9f trace=%.9f\n", n, sum, trace);
    free(a);
    free(b);
    free(c);
    return 0;
}
