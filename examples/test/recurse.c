/*
 * recurse.c — CPU work whose only hot path is deep recursion: the Ackermann
 * function A(3, N), computed naively. The hot function has no loops at all,
 * so a runtime that only checks for preemption at loop headers never regains
 * control while it runs; it must also check on (some) function entries.
 *
 *   recurse [N]         default N = 9: A(3, 9) = 4093, ~11 million calls,
 *                       recursion depth ~4 100; each +1 on N is ~4x the calls
 *                       and 2x the depth (N = 10: ~45 M calls, depth ~8 200).
 *                       tests use N = 4 (A(3, 4) = 125, depth ~130).
 *
 * Prints:  recurse: ack(3, 9) = 4093
 *
 * disable_tail_calls stops clang's tail-recursion elimination from turning
 * the outer call into a loop (check: no `loop` instruction in the .wasm).
 *
 * Used by: preemption tests (a recursion-only process must still be
 * time-sliced and migratable), stack-depth tests for the instrumentation.
 */
#include <stdio.h>
#include <stdlib.h>

#if defined(__has_attribute)
#if __has_attribute(disable_tail_calls)
#define NO_TAIL_CALLS __attribute__((disable_tail_calls))
#endif
#endif
#ifndef NO_TAIL_CALLS
#define NO_TAIL_CALLS /* gcc: native reference build only */
#endif

__attribute__((noinline)) NO_TAIL_CALLS
static unsigned ack(unsigned m, unsigned n) {
    return m == 0 ? n + 1 : n == 0 ? ack(m - 1, 1) : ack(m - 1, ack(m, n - 1));
}

int main(int argc, char **argv) {
    unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 9;
    printf("recurse: ack(3, %u) = %u\n", n, ack(3, n));
    return 0;
}
