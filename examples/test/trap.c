/*
 * trap.c — die on a wasm trap three named calls deep.
 *
 *   trap                prints "trap: calling level_one" (flushed), then
 *                       main -> level_one -> level_two -> level_three, which
 *                       executes __builtin_trap() (wasm `unreachable`).
 *
 * The functions are noinline (and each does a little work after its call, so
 * none is a tail call), and the .wasm keeps its "name" section, so a runtime
 * can print a backtrace with level_three / level_two / level_one / main.
 *
 * Used by: trap handling tests (process killed, not the kernel; exit status;
 * backtrace with function names).
 */
#include <stdio.h>

static volatile int sink;

__attribute__((noinline)) static void level_three(int x) {
    sink = x;
    __builtin_trap();
}

__attribute__((noinline)) static void level_two(int x) {
    level_three(x + 1);
    sink += x;
}

__attribute__((noinline)) static void level_one(int x) {
    level_two(x + 1);
    sink += x;
}

int main(void) {
    printf("trap: calling level_one\n");
    fflush(stdout);
    level_one(1);
    printf("trap: not reached\n");
    return 0;
}
