/*
 * cat.c — concatenate files to standard output (a basic coreutils cat).
 *
 *   cat                 copy stdin to stdout
 *   cat FILE...         copy each FILE in turn; "-" means stdin
 *
 * Errors ("cat: FILE: No such file or directory") go to stderr; cat goes on
 * with the remaining files and exits 1 if any failed, 0 otherwise.
 *
 * Used by: tests of file reads, pipes (stdin/stdout), the shell-style examples.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *prog = "cat";

/* Write all of buf, retrying short writes. Returns 0 or -1 (errno set). */
static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Copy fd to stdout. name is used in error messages. Returns 0 or 1. */
static int copy(int fd, const char *name) {
    static char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0) return 0;
        if (n < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "%s: %s: %s\n", prog, name, strerror(errno));
            return 1;
        }
        if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0) {
            fprintf(stderr, "%s: write error: %s\n", prog, strerror(errno));
            return 1;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 2) return copy(STDIN_FILENO, "-");
    int status = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-") == 0) {
            status |= copy(STDIN_FILENO, "-");
            continue;
        }
        int fd = open(argv[i], O_RDONLY);
        if (fd < 0) {
            fprintf(stderr, "%s: %s: %s\n", prog, argv[i], strerror(errno));
            status = 1;
            continue;
        }
        status |= copy(fd, argv[i]);
        close(fd);
    }
    return status;
}
