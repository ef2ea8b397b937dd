/*
 * fileio.c — files used through fds that move with the process, driven by argv[1]:
 *
 *   rw PATH K [K2]       opens PATH read-write (created, truncated), writes "hello, ", moves to
 *                        kernel K, writes "world\n", then checks fstat, tell, seek and read
 *                        (to the end of the file, twice); moves to K2 if given, then truncates
 *                        to 5 bytes and checks size, seek to the end and read again, tries
 *                        pread (prints "pread ERRNO-NAME" or "pread ok"), fsyncs and closes.
 *                        Prints "rw ok on kernel K"
 *   append PATH K        opens PATH for appending, writes "a\n", moves to K, writes "b\n",
 *                        prints "append tell T" (the offset after the second write) and closes
 *   write PATH N K       writes N blocks of 4096 bytes (block i is 'A' + i % 26), moving to K
 *                        after the first half; checks fstat; prints "write ok on kernel K"
 *   read PATH K          reads PATH in pieces of 1000 bytes with read(2), moving to K after the
 *                        first piece, and the same again from the start through stdio (fread);
 *                        prints "read BYTES HASH" for each pass (FNV-1a, hex)
 *
 * Any mismatch prints "FAIL: what" on stderr and exits 1. Used by test/file-deputy.test.ts.
 * Runs only on popcorn (popcorn.h imports).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <popcorn.h>

static void fail(const char *what) {
    fprintf(stderr, "FAIL: %s (errno %d: %s)\n", what, errno, strerror(errno));
    exit(1);
}

static void expect(int ok, const char *what) {
    if (!ok) fail(what);
}

static void move_to(int kernel) {
    if (popcorn_migrate(kernel) != 0) fail("popcorn_migrate");
    expect(popcorn_kernel_id() == kernel, "runs on the kernel it moved to");
}

static void write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) fail("write");
        p += n;
        len -= (size_t)n;
    }
}

static const char *errno_name(int e) {
    switch (e) {
    case ENOTSUP: return "ENOTSUP";
    case ESPIPE: return "ESPIPE";
    case EBADF: return "EBADF";
    case EIO: return "EIO";
    default: return "other";
    }
}

static int rw(const char *path, int k, int k2) {
    char buf[64];
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) fail("open");
    write_all(fd, "hello, ", 7);
    move_to(k);
    write_all(fd, "world\n", 6);
    struct stat st;
    expect(fstat(fd, &st) == 0 && st.st_size == 13, "fstat after the writes: 13 bytes");
    expect(lseek(fd, 0, SEEK_CUR) == 13, "tell after the writes: 13");
    expect(lseek(fd, 7, SEEK_SET) == 7, "seek to 7");
    ssize_t n = read(fd, buf, sizeof buf);
    expect(n == 6 && memcmp(buf, "world\n", 6) == 0, "read from 7: \"world\\n\"");
    expect(read(fd, buf, sizeof buf) == 0, "read at the end: 0");
    expect(lseek(fd, 0, SEEK_SET) == 0, "seek to 0");
    n = read(fd, buf, sizeof buf);
    expect(n == 13 && memcmp(buf, "hello, world\n", 13) == 0, "read all again");
    expect(lseek(fd, 0, SEEK_END) == 13, "seek to the end: 13");
    if (k2 >= 0) move_to(k2);
    expect(ftruncate(fd, 5) == 0, "ftruncate to 5");
    expect(fstat(fd, &st) == 0 && st.st_size == 5, "fstat after ftruncate: 5 bytes");
    expect(lseek(fd, 0, SEEK_END) == 5, "seek to the end: 5");
    expect(lseek(fd, 0, SEEK_SET) == 0, "seek to 0 again");
    n = read(fd, buf, sizeof buf);
    expect(n == 5 && memcmp(buf, "hello", 5) == 0, "read after ftruncate: \"hello\"");
    if (pread(fd, buf, 2, 1) == 2 && memcmp(buf, "el", 2) == 0) printf("pread ok\n");
    else printf("pread %s\n", errno_name(errno));
    expect(pwrite(fd, "L", 1, 3) == 1 && pwrite(fd, "l", 1, 3) == 1, "pwrite at 3, twice");
    expect(lseek(fd, 0, SEEK_CUR) == 5, "pread and pwrite leave the offset");
    expect(fsync(fd) == 0, "fsync");
    expect(close(fd) == 0, "close");
    printf("rw ok on kernel %d\n", popcorn_kernel_id());
    return 0;
}

static int append(const char *path, int k) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) fail("open");
    write_all(fd, "a\n", 2);
    move_to(k);
    write_all(fd, "b\n", 2);
    printf("append tell %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    expect(close(fd) == 0, "close");
    return 0;
}

static int write_blocks(const char *path, long blocks, int k) {
    static char block[4096];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) fail("open");
    for (long i = 0; i < blocks; i++) {
        if (i == blocks / 2) move_to(k);
        memset(block, 'A' + (int)(i % 26), sizeof block);
        write_all(fd, block, sizeof block);
    }
    struct stat st;
    expect(fstat(fd, &st) == 0 && st.st_size == blocks * 4096, "fstat after the writes");
    expect(close(fd) == 0, "close");
    printf("write ok on kernel %d\n", popcorn_kernel_id());
    return 0;
}

static uint32_t fnv(uint32_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static int read_file(const char *path, int k) {
    static unsigned char buf[1000];
    int fd = open(path, O_RDONLY);
    if (fd < 0) fail("open");
    uint32_t h = 2166136261u;
    long total = 0;
    for (int first = 1;; first = 0) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) fail("read");
        if (n == 0) break;
        h = fnv(h, buf, (size_t)n);
        total += n;
        if (first) move_to(k);
    }
    printf("read %ld %08x\n", total, h);
    if (lseek(fd, 0, SEEK_SET) != 0) fail("seek to 0");
    FILE *f = fdopen(fd, "r");
    if (f == NULL) fail("fdopen");
    h = 2166136261u;
    total = 0;
    size_t n;
    while ((n = fread(buf, 1, 777, f)) > 0) {
        h = fnv(h, buf, n);
        total += (long)n;
    }
    expect(!ferror(f), "fread");
    printf("read %ld %08x\n", total, h);
    fclose(f);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "rw") == 0 && argc > 3) return rw(argv[2], atoi(argv[3]), argc > 4 ? atoi(argv[4]) : -1);
    if (strcmp(mode, "append") == 0 && argc > 3) return append(argv[2], atoi(argv[3]));
    if (strcmp(mode, "write") == 0 && argc > 4) return write_blocks(argv[2], atol(argv[3]), atoi(argv[4]));
    if (strcmp(mode, "read") == 0 && argc > 3) return read_file(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: fileio rw PATH K [K2] | append PATH K | write PATH N K | read PATH K\n");
    return 2;
}
