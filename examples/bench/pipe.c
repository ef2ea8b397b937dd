/*
 * pipe.c — pipe throughput between two popcorn processes: creates a pipe,
 * spawns itself (argv[0] is the program's path) with --sink on KERNEL, the
 * child's fd 0 being the read end, writes BYTES to the write end in 64 KiB
 * writes, closes it, and waits for the child. Timed with
 * clock_gettime(CLOCK_MONOTONIC) from the first write to the child's exit,
 * so the spawn itself is not counted.
 *
 *   pipe BYTES KERNEL         KERNEL: a kernel index, or -1 for this
 *                             process's own (POPCORN_ANY_KERNEL)
 *   pipe --sink BYTES         (the child) reads fd 0 in 64 KiB reads until end
 *                             of file; exits 1 if it got other than BYTES
 *
 * Prints:  bytes=268435456 seconds=0.123456
 * Exits 1 (with a message on stderr) on any failure, including the sink's.
 *
 * Used by: bench/spawn.ts (pipe_gbytes_per_s, the sink on kernel 1; the
 * bench runs it as /bin/pipe.wasm). Runs only on popcorn (popcorn.h imports).
 */
#include <popcorn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

static unsigned char buffer[CHUNK];

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int sink(unsigned long long expected) {
    unsigned long long total = 0;
    for (;;) {
        ssize_t got = read(0, buffer, CHUNK);
        if (got < 0) {
            perror("pipe --sink: read");
            return 1;
        }
        if (got == 0) break;
        total += (unsigned long long)got;
    }
    if (total != expected) {
        fprintf(stderr, "pipe --sink: got %llu bytes, expected %llu\n", total, expected);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--sink") == 0) return sink(strtoull(argv[2], NULL, 10));
    if (argc != 3) {
        fprintf(stderr, "usage: pipe BYTES KERNEL   (KERNEL -1 = this process's own)\n");
        return 2;
    }
    unsigned long long bytes = strtoull(argv[1], NULL, 10);
    int kernel = atoi(argv[2]);

    int fds[2];
    if (popcorn_pipe(fds) != 0) {
        perror("pipe: popcorn_pipe");
        return 1;
    }
    char *child_argv[] = {argv[0], "--sink", argv[1], NULL};
    struct popcorn_fd_map map[] = {{0, fds[0]}};
    int pid = popcorn_spawn(argv[0], child_argv, NULL, map, 1, kernel);
    if (pid < 0) {
        fprintf(stderr, "pipe: popcorn_spawn %s on kernel %d: %s\n", argv[0], kernel, strerror(errno));
        return 1;
    }
    close(fds[0]); /* only the child reads */

    for (size_t i = 0; i < CHUNK; i++) buffer[i] = (unsigned char)(i * 131u);
    long long start = now_ns();
    unsigned long long left = bytes;
    while (left > 0) {
        size_t want = left < CHUNK ? (size_t)left : CHUNK;
        ssize_t put = write(fds[1], buffer, want);
        if (put <= 0) {
            perror("pipe: write");
            return 1;
        }
        left -= (unsigned long long)put;
    }
    close(fds[1]);
    int status = 0;
    if (popcorn_wait(pid, &status, 0) != pid) {
        perror("pipe: popcorn_wait");
        return 1;
    }
    long long end = now_ns();
    if (!POPCORN_WIFEXITED(status) || POPCORN_WEXITSTATUS(status) != 0) {
        fprintf(stderr, "pipe: the sink (pid %d) ended with status 0x%x\n", pid, status);
        return 1;
    }
    printf("bytes=%llu seconds=%.6f\n", bytes, (double)(end - start) / 1e9);
    return 0;
}
