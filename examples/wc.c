/*
 * wc.c — count lines, words and bytes (a basic coreutils wc, no options).
 *
 *   wc                  count stdin:   "      3       5      27"
 *   wc FILE...          one line per FILE: "      3       5      27 FILE",
 *                       and a "total" line when there is more than one FILE
 *
 * Output format: each count right-aligned in a field of width 7, separated by
 * one space, then " NAME" for files. This matches GNU wc reading a pipe; for named
 * files (or stdin redirected from a file) GNU wc picks the field width from the file sizes, so the padding may
 * differ from GNU (the numbers never do). A word is a maximal run of
 * non-whitespace bytes (isspace in the C locale).
 * Errors go to stderr ("wc: FILE: No such file or directory"), exit status 1.
 *
 * Used by: pipe tests (e.g. `cat FILE | wc`), file read tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct counts {
    unsigned long long lines, words, bytes;
};

static int is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Count fd into *c. Returns 0, or -1 with errno set. */
static int count(int fd, struct counts *c) {
    static unsigned char buf[65536];
    int in_word = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0) return 0;
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c->bytes += (unsigned long long)n;
        for (ssize_t i = 0; i < n; i++) {
            unsigned char ch = buf[i];
            if (ch == '\n') c->lines++;
            if (is_space(ch)) {
                in_word = 0;
            } else if (!in_word) {
                in_word = 1;
                c->words++;
            }
        }
    }
}

static void print(const struct counts *c, const char *name) {
    printf("%7llu %7llu %7llu", c->lines, c->words, c->bytes);
    if (name) printf(" %s", name);
    putchar('\n');
}

int main(int argc, char **argv) {
    if (argc < 2) {
        struct counts c = {0, 0, 0};
        if (count(STDIN_FILENO, &c) < 0) {
            fprintf(stderr, "wc: -: %s\n", strerror(errno));
            return 1;
        }
        print(&c, NULL);
        return 0;
    }
    int status = 0;
    struct counts total = {0, 0, 0};
    for (int i = 1; i < argc; i++) {
        struct counts c = {0, 0, 0};
        int fd = strcmp(argv[i], "-") == 0 ? STDIN_FILENO : open(argv[i], O_RDONLY);
        if (fd < 0 || count(fd, &c) < 0) {
            fprintf(stderr, "wc: %s: %s\n", argv[i], strerror(errno));
            status = 1;
            if (fd > STDIN_FILENO) close(fd);
            continue;
        }
        if (fd != STDIN_FILENO) close(fd);
        print(&c, argv[i]);
        total.lines += c.lines;
        total.words += c.words;
        total.bytes += c.bytes;
    }
    if (argc > 2) print(&total, "total");
    return status;
}
