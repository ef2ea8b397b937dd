/*
 * spawn.c — process creation cost, measured inside a popcorn process: spawns
 * PROGRAM (no arguments) N times on KERNEL with popcorn_spawn, waiting for
 * each with popcorn_wait before the next, and prints the mean time of one
 * spawn + run + exit + wait, timed with clock_gettime(CLOCK_MONOTONIC).
 * One untimed spawn comes first, so the target kernel has compiled PROGRAM.
 *
 *   spawn N KERNEL PROGRAM    KERNEL: a kernel index, or -1 for this process's
 *                             own (POPCORN_ANY_KERNEL); PROGRAM: a path in
 *                             this process's preopens, e.g. /bin/true.wasm
 *
 * Prints:  spawn_us=412.7
 * Exits 1 (with a message on stderr) if a spawn or wait fails or a child does
 * not exit 0.
 *
 * Used by: bench/spawn.ts (spawn_local_us with KERNEL -1, spawn_remote_us with
 * KERNEL 1, PROGRAM /bin/true.wasm). Runs only on popcorn (popcorn.h imports).
 */
#include <popcorn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Spawn PROGRAM on KERNEL, wait for it; 0 when it exited 0. */
static int spawn_and_wait(char *program, int kernel) {
    char *argv[] = {program, NULL};
    int pid = popcorn_spawn(program, argv, NULL, NULL, 0, kernel);
    if (pid < 0) {
        fprintf(stderr, "spawn: popcorn_spawn %s on kernel %d: %s\n", program, kernel, strerror(errno));
        return -1;
    }
    int status = 0;
    if (popcorn_wait(pid, &status, 0) != pid) {
        fprintf(stderr, "spawn: popcorn_wait %d: %s\n", pid, strerror(errno));
        return -1;
    }
    if (!POPCORN_WIFEXITED(status) || POPCORN_WEXITSTATUS(status) != 0) {
        fprintf(stderr, "spawn: %s (pid %d) ended with status 0x%x\n", program, pid, status);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: spawn N KERNEL PROGRAM   (KERNEL -1 = this process's own)\n");
        return 2;
    }
    long n = atol(argv[1]);
    int kernel = atoi(argv[2]);
    char *program = argv[3];
    if (n <= 0) {
        fprintf(stderr, "spawn: N must be positive\n");
        return 2;
    }
    if (spawn_and_wait(program, kernel) != 0) return 1; /* warm-up, untimed */
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
        if (spawn_and_wait(program, kernel) != 0) return 1;
    }
    long long end = now_ns();
    printf("spawn_us=%.1f\n", (double)(end - start) / 1e3 / (double)n);
    return 0;
}
