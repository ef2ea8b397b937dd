/*
 * migrate.c — process migration from the program's side, driven by argv[1]:
 *
 *   compute N [HOPS [stdin]]
 *                     a checksum over N rounds of integer and floating-point work, moving to
 *                     kernel (k+1) mod count between rounds HOPS times (0: never); prints
 *                     "checksum HEX" and "kernel K" (where it ended). The checksum must not
 *                     depend on HOPS. With "stdin", it reads stdin to its end before it prints,
 *                     so whoever moves it from outside knows it is still there until then.
 *   file PATH         writes "first half\n" to PATH, migrates to the next kernel, writes
 *                     "second half\n" through the same fd, closes it, prints "file on kernel K"
 *   child             spawns itself as "child-sleep" on its own kernel, migrates to the next
 *                     kernel, waits for the child: "child PID exited 5, parent on kernel K"
 *   child-sleep       sleeps 200 ms, exits 5
 *   bad               popcorn_migrate(999): prints "EINVAL"
 *
 * Used by test/migration.test.ts. Runs only on popcorn (popcorn.h imports).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <popcorn.h>

static void say(const char *fmt, int a, int b) {
    printf(fmt, a, b);
    fflush(stdout);
}

static int next_kernel(void) {
    return (popcorn_kernel_id() + 1) % popcorn_kernel_count();
}

static int hop(void) {
    if (popcorn_migrate(next_kernel()) != 0) {
        fprintf(stderr, "migrate: popcorn_migrate: %s\n", strerror(errno));
        exit(1);
    }
    return 0;
}

/* Work that leaves state in locals, globals-in-memory and the heap across each migration. */
static void drain_stdin(void) {
    char buf[256];
    while (read(0, buf, sizeof buf) > 0) {
    }
}

static int compute(long rounds, long hops, int wait_stdin) {
    uint64_t *heap = calloc(4096, sizeof *heap);
    uint64_t x = 0x9e3779b97f4a7c15u;
    double f = 1.0;
    long every = hops > 0 ? rounds / hops : 0;
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < 4096; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            heap[i] += x;
            f = f * 1.0000001 + (double)(x & 0xff) * 1e-9;
        }
        if (every > 0 && (r + 1) % every == 0) hop();
    }
    uint64_t sum = (uint64_t)(f * 1e6);
    for (int i = 0; i < 4096; i++) sum = sum * 31 + heap[i];
    free(heap);
    if (wait_stdin) drain_stdin();
    printf("checksum %016llx\n", (unsigned long long)sum);
    say("kernel %d\n", popcorn_kernel_id(), 0);
    return 0;
}

static int file(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    const char first[] = "first half\n", second[] = "second half\n";
    if (write(fd, first, strlen(first)) < 0) return 1;
    hop();
    if (write(fd, second, strlen(second)) < 0) return 1;
    if (close(fd) != 0) return 1;
    say("file on kernel %d\n", popcorn_kernel_id(), 0);
    return 0;
}

static int child(const char *self) {
    char *argv[] = {(char *)self, "child-sleep", NULL};
    int pid = popcorn_spawn(self, argv, NULL, NULL, 0, POPCORN_ANY_KERNEL);
    if (pid < 0) {
        perror("spawn");
        return 1;
    }
    hop();
    int st;
    if (popcorn_wait(pid, &st, 0) != pid) {
        perror("wait");
        return 1;
    }
    printf("child %d exited %d, ", pid, POPCORN_WEXITSTATUS(st));
    say("parent on kernel %d\n", popcorn_kernel_id(), 0);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "compute") == 0 && argc > 2) return compute(atol(argv[2]), argc > 3 ? atol(argv[3]) : 0, argc > 4 && strcmp(argv[4], "stdin") == 0);
    if (strcmp(mode, "file") == 0 && argc > 2) return file(argv[2]);
    if (strcmp(mode, "child") == 0) return child(argv[0]);
    if (strcmp(mode, "child-sleep") == 0) {
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
        return 5;
    }
    if (strcmp(mode, "bad") == 0) {
        if (popcorn_migrate(999) != 0 && errno == EINVAL) say("EINVAL\n", 0, 0);
        return 0;
    }
    fprintf(stderr, "usage: migrate compute N [HOPS [stdin]] | file PATH | child | bad\n");
    return 2;
}
