/*
 * limits.c — test helper for popcorn's resource limits; the mode is argv[1]. argv[0] must be a
 * path that popcorn_spawn accepts (e.g. "/bin/limits.wasm" with "/bin" preopened).
 *
 *   bomb                a fork bomb: starts copies of itself ("bomb") in the background, forever,
 *                       on every kernel in turn, never waiting for them; each copy reports the first failure of each kind
 *                       as "spawn: ENAME" and tries again 10 ms later, so the bomb stays at the
 *                       node's process limit until it is killed
 *   zombies             spawns "exit" children and leaves them unreaped until a spawn fails, then
 *                       "zombies N ENAME"; 200 ms later (they are all zombies) spawns again:
 *                       "still ENAME"; reaps one and spawns again: "after reap ok"
 *   exit                exits 0 at once
 *   grow                mallocs 1 MiB blocks until malloc returns NULL, then grows memory a page
 *                       at a time until memory.grow fails (-1): "malloc N MiB, grow fails at P pages"
 *   fds PATH            opens PATH until it fails: "opened N ENAME"; then a pipe: "pipe ENAME";
 *                       dup2 onto fd 100000: "dup2 ENAME"; closes two fds, a pipe again: "pipe ok"
 * Unexpected failures print "unexpected: …" and exit 1. stdout is line-buffered.
 *
 * Used by: test/limits.test.ts (RLIMIT_NPROC-like process limit, memory ceiling, fd limit).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <popcorn.h>

static char *self;

/* The errnos a limit may give, by name (tests match names, not messages). */
static const char *errname(int e) {
    switch (e) {
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EMFILE: return "EMFILE";
    case EBADF: return "EBADF";
    case ENOEXEC: return "ENOEXEC";
    case ENOENT: return "ENOENT";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return strerror(e);
    }
}

static int spawn_self(const char *mode, int kernel) {
    char *argv[] = {self, (char *)mode, NULL};
    return popcorn_spawn(self, argv, NULL, NULL, 0, kernel);
}

static int bomb(void) {
    int seen[256] = {0};
    for (unsigned n = 0;; n++) {
        if (spawn_self("bomb", n % popcorn_kernel_count()) >= 0) continue;
        int e = errno;
        if (e >= 256 || !seen[e]) printf("spawn: %s\n", errname(e));
        if (e < 256) seen[e] = 1;
        usleep(10000);
    }
}

static int zombies(void) {
    int n = 0;
    while (spawn_self("exit", POPCORN_ANY_KERNEL) >= 0) n++;
    printf("zombies %d %s\n", n, errname(errno));
    usleep(200000);
    int pid = spawn_self("exit", POPCORN_ANY_KERNEL);
    if (pid >= 0) {
        printf("unexpected: a spawn succeeded with %d zombies\n", n);
        return 1;
    }
    printf("still %s\n", errname(errno));
    int status;
    if (popcorn_wait(-1, &status, 0) < 0) {
        printf("unexpected: wait: %s\n", strerror(errno));
        return 1;
    }
    pid = spawn_self("exit", POPCORN_ANY_KERNEL);
    if (pid < 0) {
        printf("unexpected: after reap: %s\n", errname(errno));
        return 1;
    }
    printf("after reap ok\n");
    return 0;
}

/* Where grow keeps each block: an allocation nobody could see would be optimized away. */
static void *volatile block;

static int grow(void) {
    unsigned mib = 0;
    while ((block = malloc(1 << 20)) != NULL) mib++;
    while (__builtin_wasm_memory_grow(0, 1) != (size_t)-1) {
    }
    printf("malloc %u MiB, grow fails at %lu pages\n", mib, (unsigned long)__builtin_wasm_memory_size(0));
    return 0;
}

static int fds(const char *path) {
    int n = 0, last = -1;
    for (;;) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) break;
        last = fd;
        n++;
    }
    printf("opened %d %s\n", n, errname(errno));
    int p[2];
    if (popcorn_pipe(p) == 0) {
        printf("unexpected: a pipe with every fd taken\n");
        return 1;
    }
    printf("pipe %s\n", errname(errno));
    if (popcorn_dup2(0, 100000) >= 0) {
        printf("unexpected: dup2 onto fd 100000 succeeded\n");
        return 1;
    }
    printf("dup2 %s\n", errname(errno));
    if (last < 0 || close(last) != 0 || close(last - 1) != 0 || popcorn_pipe(p) != 0) {
        printf("unexpected: pipe after closing two fds: %s\n", strerror(errno));
        return 1;
    }
    printf("pipe ok\n");
    return 0;
}

int main(int argc, char **argv) {
    self = argv[0];
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "bomb") == 0) return bomb();
    if (strcmp(mode, "zombies") == 0) return zombies();
    if (strcmp(mode, "exit") == 0) return 0;
    if (strcmp(mode, "grow") == 0) return grow();
    if (strcmp(mode, "fds") == 0 && argc > 2) return fds(argv[2]);
    fprintf(stderr, "usage: limits bomb | zombies | exit | grow | fds PATH\n");
    return 2;
}
