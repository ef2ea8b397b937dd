/*
 * checkpoint.c — a program to checkpoint and restore, driven by argv[1]:
 *
 *   count ROUNDS [PATH]  ROUNDS rounds of integer and floating-point work, 20 ms apart; prints
 *                        "round R" after each (and writes the same line to PATH, if given,
 *                        through one fd kept open), then "checksum HEX". The checksum depends
 *                        only on ROUNDS: a run checkpointed, killed and restored prints the
 *                        checksum of an uninterrupted one.
 *   pipe                 makes a pipe (fds 4 and 5 beside the preopen at 3), prints "ready" and
 *                        sleeps until killed: a process a checkpoint must refuse.
 *
 * Used by test/checkpoint.test.ts. Runs only on popcorn (popcorn.h imports).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <popcorn.h>

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* State in locals, in static memory and on the heap, all of it carried by a checkpoint. */
static uint64_t rounds_done;

static int count(long rounds, const char *path) {
    int fd = -1;
    if (path != NULL) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            perror(path);
            return 1;
        }
    }
    uint64_t *heap = calloc(2048, sizeof *heap);
    uint64_t x = 0x9e3779b97f4a7c15u;
    double f = 1.0;
    for (long r = 1; r <= rounds; r++) {
        for (int k = 0; k < 16; k++) {
            for (int i = 0; i < 2048; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                heap[i] += x;
                f = f * 1.0000001 + (double)(x & 0xff) * 1e-9;
            }
        }
        rounds_done++;
        char line[32];
        int n = snprintf(line, sizeof line, "round %ld\n", r);
        fputs(line, stdout);
        fflush(stdout);
        if (fd >= 0 && write(fd, line, (size_t)n) != n) {
            perror("write");
            return 1;
        }
        pause_ms(20);
    }
    uint64_t sum = (uint64_t)(f * 1e6) + rounds_done;
    for (int i = 0; i < 2048; i++) sum = sum * 31 + heap[i];
    free(heap);
    if (fd >= 0 && close(fd) != 0) return 1;
    printf("checksum %016llx\n", (unsigned long long)sum);
    return 0;
}

static int pipe_and_sleep(void) {
    int fds[2];
    if (popcorn_pipe(fds) != 0) {
        perror("pipe");
        return 1;
    }
    printf("ready %d %d\n", fds[0], fds[1]);
    fflush(stdout);
    for (;;) pause_ms(1000);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "count") == 0 && argc > 2) return count(atol(argv[2]), argc > 3 ? argv[3] : NULL);
    if (strcmp(mode, "pipe") == 0) return pipe_and_sleep();
    fprintf(stderr, "usage: checkpoint count ROUNDS [PATH] | pipe\n");
    return 2;
}
