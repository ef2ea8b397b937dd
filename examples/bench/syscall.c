/*
 * syscall.c — system call cost: runs N calls of one kind and prints the
 * elapsed time per call, measured inside the program with
 * clock_gettime(CLOCK_MONOTONIC), so the runtime's start-up is not counted.
 *
 *   syscall MODE [N]    MODE: clock  clock_gettime(CLOCK_MONOTONIC)
 *                                    (WASI clock_time_get)
 *                             write  open("/dev/null") once, then N 1-byte
 *                                    write()s (WASI fd_write)
 *                             open   N open("/dev/null") + close() pairs (WASI
 *                                    fd_fdstat_get of the preopen, path_open,
 *                                    fd_close: what wasi-libc's open does)
 *                       default N = 1000000 (clock, write), 100000 (open)
 *
 * Under WASI /dev must be a preopen: `popcorn run --dir /dev::/dev`,
 * node:wasi preopens {'/dev': '/dev'}. Prints one line:
 *   syscall clock: 1000000 calls, 41.3 ns/call
 *
 * Used by: bench/syscall.ts (popcorn's syscall path vs node:wasi).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: syscall clock|write|open [N]\n");
        return 2;
    }
    const char *mode = argv[1];
    int is_open = strcmp(mode, "open") == 0;
    long n = argc > 2 ? atol(argv[2]) : is_open ? 100000L : 1000000L;
    if (n <= 0) {
        fprintf(stderr, "syscall: N must be positive\n");
        return 2;
    }
    volatile long long sink = 0;
    long long start, end;
    if (strcmp(mode, "clock") == 0) {
        start = now_ns();
        for (long i = 0; i < n; i++) sink += now_ns();
        end = now_ns();
    } else if (strcmp(mode, "write") == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd < 0) die("open /dev/null");
        char c = 'x';
        start = now_ns();
        for (long i = 0; i < n; i++) {
            if (write(fd, &c, 1) != 1) die("write /dev/null");
        }
        end = now_ns();
        close(fd);
    } else if (is_open) {
        start = now_ns();
        for (long i = 0; i < n; i++) {
            int fd = open("/dev/null", O_RDONLY);
            if (fd < 0) die("open /dev/null");
            if (close(fd) != 0) die("close");
        }
        end = now_ns();
    } else {
        fprintf(stderr, "syscall: unknown mode '%s' (clock, write or open)\n", mode);
        return 2;
    }
    (void)sink;
    printf("syscall %s: %ld calls, %.1f ns/call\n", mode, n, (double)(end - start) / (double)n);
    return 0;
}
