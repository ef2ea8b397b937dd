/*
 * dirs.c — path calls after a move: `dirs KERNEL DIR [PAUSE_MS]` moves itself to kernel KERNEL
 * (-1: stays), prints its kernel, waits PAUSE_MS (default 0: time for a test to look at the
 * kernels), then, in DIR (a preopened directory), makes sub/, writes sub/a.txt, renames it to sub/b.txt,
 * stats and reads it back, lists sub/, removes the file and the directory, printing each result:
 *
 *   kernel K
 *   size 6
 *   read hello
 *   list b.txt
 *   link b.txt                 (a hard link and a symlink, readlink, utimensat, stat)
 *   mtime 1000000000 nlink 2
 *   done
 *
 * After a move to another node the directory stays at the node the process was started on, so
 * every one of these calls is answered there (the cluster tests). Popcorn only (popcorn.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <popcorn.h>

static int fail(const char *what, const char *path) {
    printf("%s %s: %s\n", what, path, strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: dirs KERNEL DIR [PAUSE_MS]\n");
        return 2;
    }
    int kernel = atoi(argv[1]);
    if (kernel >= 0 && popcorn_migrate(kernel) != 0) return fail("migrate", argv[1]);
    printf("kernel %d\n", popcorn_kernel_id());
    fflush(stdout);
    long pause = argc > 3 ? atol(argv[3]) : 0;
    struct timespec ts = {pause / 1000, (pause % 1000) * 1000000L};
    if (pause > 0) nanosleep(&ts, NULL);
    char sub[512], a[600], b[600];
    snprintf(sub, sizeof sub, "%s/sub", argv[2]);
    snprintf(a, sizeof a, "%s/a.txt", sub);
    snprintf(b, sizeof b, "%s/b.txt", sub);
    if (mkdir(sub, 0755) != 0) return fail("mkdir", sub);
    int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) return fail("open", a);
    if (write(fd, "hello\n", 6) != 6) return fail("write", a);
    close(fd);
    if (rename(a, b) != 0) return fail("rename", a);
    struct stat st;
    if (stat(b, &st) != 0) return fail("stat", b);
    printf("size %lld\n", (long long)st.st_size);
    FILE *f = fopen(b, "r");
    if (f == NULL) return fail("fopen", b);
    char line[64] = "";
    if (fgets(line, sizeof line, f) == NULL) return fail("fgets", b);
    fclose(f);
    printf("read %s", line);
    DIR *d = opendir(sub);
    if (d == NULL) return fail("opendir", sub);
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) printf("list %s\n", e->d_name);
    }
    closedir(d);
    char c[600], l[600], target[64] = "";
    snprintf(c, sizeof c, "%s/c.txt", sub);
    snprintf(l, sizeof l, "%s/l", sub);
    if (link(b, c) != 0) return fail("link", c);
    if (symlink("b.txt", l) != 0) return fail("symlink", l);
    ssize_t n = readlink(l, target, sizeof target - 1);
    if (n < 0) return fail("readlink", l);
    printf("link %s\n", target);
    struct timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
    if (utimensat(AT_FDCWD, c, times, 0) != 0) return fail("utimensat", c);
    if (stat(b, &st) != 0) return fail("stat", b);
    printf("mtime %lld nlink %lld\n", (long long)st.st_mtim.tv_sec, (long long)st.st_nlink);
    if (unlink(l) != 0) return fail("unlink", l);
    if (unlink(c) != 0) return fail("unlink", c);
    if (unlink(b) != 0) return fail("unlink", b);
    if (rmdir(sub) != 0) return fail("rmdir", sub);
    printf("done\n");
    fflush(stdout);
    return 0;
}
