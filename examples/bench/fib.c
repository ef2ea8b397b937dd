/*
 * fib.c — naive doubly-recursive Fibonacci.
 *
 * This is the "deep recursion is the only hot path" benchmark: the hot code is
 * a single recursive function with NO loops in it, so a runtime that only
 * places preemption checks at loop headers never gets control back while it
 * runs. disable_tail_calls stops clang's tail-recursion elimination from
 * turning one of the two calls into a loop (check: the function has no
 * `loop` instruction in the .wasm).
 *
 *   fib [N]             default N = DEFAULT_N (~1 s natively at -O2)
 *                       tests use N = 20 (fib(20) = 6765)
 *
 * Prints:  fib checksum: fib(35) = 9227465
 *
 * Used by: bench/ (call overhead, cost of function-entry fuel checks),
 * preemption tests (a recursion-only process must still be time-sliced).
 */
#include <stdio.h>
#include <stdlib.h>

#define DEFAULT_N 41

#if defined(__has_attribute)
#if __has_attribute(disable_tail_calls)
#define NO_TAIL_CALLS __attribute__((disable_tail_calls))
#endif
#endif
#ifndef NO_TAIL_CALLS
#define NO_TAIL_CALLS /* gcc: native reference build only */
#endif

__attribute__((noinline)) NO_TAIL_CALLS
static unsigned long long fib(int n) {
    return n < 2 ? (unsigned long long)n : fib(n - 1) + fib(n - 2);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : DEFAULT_N;
    printf("fib checksum: fib(%d) = %llu\n", n, fib(n));
    return 0;
}
