/*
 * true.c — does nothing and exits 0: the cheapest possible program, so spawning
 * it measures process creation, start-up and exit, nothing else.
 *
 * Used by: bench/spawn.ts (examples/bench/spawn.c spawns it; node:wasi runs it
 * for comparison).
 */
int main(void) { return 0; }
