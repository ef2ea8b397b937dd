/*
 * wasi_probe.c — exercise many WASI preview1 calls through libc and print one
 * deterministic line per check.
 *
 *   wasi_probe [DIR [VAR]]
 *       DIR  a preopened directory to work in (default "."); the probe
 *            creates and removes its own entries there and leaves DIR as it
 *            found it (it also clears leftovers of an interrupted run first)
 *       VAR  an environment variable to print (default POPCORN_PROBE)
 *
 * Each line is "NAME: RESULT" where RESULT is "ok", a value, or an errno name
 * (ENOENT, ENOTCAPABLE, ...). Nothing time- or inode-dependent is printed, and
 * directory listings are sorted and leave out "." and "..", so two runs (and
 * two runtimes that agree) print the same text — with one exception: the
 * "poll stdout" line depends on what stdout is (node:wasi answers "1 ready"
 * for a pipe but EPERM for a regular file), so compare with stdout a pipe.
 *
 * The "escape ..." checks try to leave the sandbox: "../x", an absolute
 * "/etc/passwd", a symlink to /etc created by the probe itself, and a
 * relative "../../.." symlink. Under a correct WASI runtime every one fails;
 * if any of them opens a file the line says "ESCAPED" and the exit status
 * is 2 (natively, outside any sandbox, that is expected). Otherwise exit 0.
 *
 * Used by: the runtime team's WASI conformance tests (compare its output
 * under popcorn with node:wasi / an expected file).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- errno names ---------------------------------------------------------- */

static const char *errno_name(int e) {
    switch (e) {
#define E(x) case x: return #x;
        E(EPERM) E(ENOENT) E(EIO) E(EBADF) E(EAGAIN) E(ENOMEM) E(EACCES)
        E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR)
        E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(EFBIG) E(ENOSPC) E(ESPIPE)
        E(EROFS) E(EMLINK) E(EPIPE) E(ERANGE) E(ENAMETOOLONG) E(ENOSYS)
        E(ENOTEMPTY) E(ELOOP) E(EOVERFLOW) E(EINTR) E(ENOTSUP) E(ESRCH)
#ifdef ENOTCAPABLE
        E(ENOTCAPABLE)
#endif
#undef E
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno %d", e);
        return buf;
    }
    }
}

/* ---- helpers -------------------------------------------------------------- */

static char dir[512];
static int escaped;

/* dir + "/" + name, in a rotating set of buffers so two can be live at once. */
static const char *P(const char *name) {
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* Print "name: ok" when rc >= 0, else "name: ERRNO". Returns rc. */
static long check(const char *name, long rc) {
    if (rc < 0)
        printf("%s: %s\n", name, errno_name(errno));
    else
        printf("%s: ok\n", name);
    return rc;
}

/* Like check, for open(): closes the fd if the open succeeded. */
static void check_open(const char *name, int fd) {
    check(name, fd);
    if (fd >= 0) close(fd);
}

/* An escape attempt: opening must fail. */
static void escape(const char *name, const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        printf("%s: ESCAPED (opened %s)\n", name, path);
        escaped = 1;
        close(fd);
    } else {
        printf("%s: %s\n", name, errno_name(errno));
    }
}

static const char *file_type(mode_t m) {
    return S_ISREG(m) ? "regular" : S_ISDIR(m) ? "directory" : S_ISLNK(m) ? "symlink"
         : S_ISCHR(m) ? "char" : S_ISBLK(m) ? "block" : S_ISFIFO(m) ? "fifo"
         : S_ISSOCK(m) ? "socket" : "unknown";
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Print "name: a b c" — the sorted entries of path, without "." and "..". */
static void list_dir(const char *name, const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        printf("%s: %s\n", name, errno_name(errno));
        return;
    }
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    printf("%s:", name);
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf(n ? "\n" : " (empty)\n");
}

/* Remove everything this probe may create, ignoring errors. */
static void cleanup(void) {
    static const char *files[] = {"probe_dir/a", "probe_dir/b", "probe_dir/c", "probe_dir/d",
                                  "probe_file", "probe_renamed", "probe_hard", "probe_sym",
                                  "probe_escape", "probe_up", "probe_dangling"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(P(files[i]));
    rmdir(P("probe_dir/sub"));
    rmdir(P("probe_dir"));
}

/* ---- the checks ----------------------------------------------------------- */

static void probe_args_env(int argc, char **argv, const char *var) {
    printf("argc: %d\n", argc);
    for (int i = 1; i < argc; i++) printf("argv[%d]: %s\n", i, argv[i]);
    const char *v = getenv(var);
    printf("getenv %s: %s\n", var, v ? v : "(unset)");
}

static void probe_file_io(void) {
    const char *path = P("probe_file");
    int fd = (int)check("open create", open(path, O_CREAT | O_RDWR | O_TRUNC, 0644));
    if (fd < 0) return;
    const char msg[] = "hello, probe\n";
    printf("write: %ld\n", (long)write(fd, msg, sizeof msg - 1));
    printf("tell after write: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    printf("seek set 0: %ld\n", (long)lseek(fd, 0, SEEK_SET));
    char buf[64] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    printf("read: %ld \"%.*s\"\n", (long)n, n > 0 ? (int)n - 1 : 0, buf); /* minus the \n */
    printf("read at eof: %ld\n", (long)read(fd, buf, sizeof buf));
    printf("seek end: %ld\n", (long)lseek(fd, 0, SEEK_END));
    printf("seek cur -3: %ld\n", (long)lseek(fd, -3, SEEK_CUR));
    check("seek negative", lseek(fd, -100, SEEK_SET));
    n = pread(fd, buf, 5, 7);
    printf("pread 5 at 7: %ld \"%.*s\"\n", (long)n, n > 0 ? (int)n : 0, buf);
    printf("pwrite 2 at 0: %ld\n", (long)pwrite(fd, "HE", 2, 0));
    printf("tell after pread/pwrite: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    check("ftruncate 5", ftruncate(fd, 5));
    struct stat st;
    if (check("fstat", fstat(fd, &st)) == 0)
        printf("fstat: %s size %lld\n", file_type(st.st_mode), (long long)st.st_size);
    check("fsync", fsync(fd));
    check("fdatasync", fdatasync(fd));
    check("close", close(fd));
    check("close again", close(fd));
    check("read closed fd", read(fd, buf, 1));

    if (check("stat", stat(path, &st)) == 0)
        printf("stat: %s size %lld nlink %lu\n", file_type(st.st_mode), (long long)st.st_size,
               (unsigned long)st.st_nlink);
    fd = open(path, O_RDONLY);
    n = read(fd, buf, sizeof buf);
    printf("reread: %ld \"%.*s\"\n", (long)n, n > 0 ? (int)n : 0, buf);
    check("write to O_RDONLY", write(fd, "x", 1));
    close(fd);
    fd = open(path, O_WRONLY | O_APPEND);
    printf("append write: %ld\n", (long)write(fd, "!!", 2));
    close(fd);
    stat(path, &st);
    printf("size after append: %lld\n", (long long)st.st_size);

    check_open("open O_EXCL existing", open(path, O_CREAT | O_EXCL | O_WRONLY, 0644));
    check_open("open missing", open(P("probe_missing"), O_RDONLY));
    check_open("open dir O_WRONLY", open(dir, O_WRONLY));
    check_open("open file as dir", open(P("probe_file/x"), O_RDONLY));
}

static void probe_times(void) {
    const char *path = P("probe_file");
    struct timespec ts[2] = {{1000000000, 0}, {1500000000, 0}};
    check("utimensat", utimensat(AT_FDCWD, path, ts, 0));
    struct stat st;
    if (stat(path, &st) == 0)
        printf("times after utimensat: atime %lld mtime %lld\n", (long long)st.st_atim.tv_sec,
               (long long)st.st_mtim.tv_sec);
    int fd = open(path, O_RDWR);
    struct timespec ts2[2] = {{1200000000, 0}, {1300000000, 0}};
    check("futimens", futimens(fd, ts2));
    if (fstat(fd, &st) == 0)
        printf("times after futimens: atime %lld mtime %lld\n", (long long)st.st_atim.tv_sec,
               (long long)st.st_mtim.tv_sec);
    close(fd);
}

static void probe_dirs(void) {
    check("mkdir", mkdir(P("probe_dir"), 0755));
    check("mkdir existing", mkdir(P("probe_dir"), 0755));
    struct stat st;
    if (check("stat dir", stat(P("probe_dir"), &st)) == 0)
        printf("stat dir: %s\n", file_type(st.st_mode));
    list_dir("readdir empty", P("probe_dir"));
    const char *names[] = {"probe_dir/c", "probe_dir/a", "probe_dir/b"};
    for (int i = 0; i < 3; i++) close(open(P(names[i]), O_CREAT | O_WRONLY, 0644));
    check("mkdir sub", mkdir(P("probe_dir/sub"), 0755));
    list_dir("readdir", P("probe_dir"));
    check("rename a -> d", rename(P("probe_dir/a"), P("probe_dir/d")));
    check("rename missing", rename(P("probe_dir/a"), P("probe_dir/e")));
    list_dir("readdir after rename", P("probe_dir"));
    check("rmdir non-empty", rmdir(P("probe_dir")));
    check("rmdir file", rmdir(P("probe_dir/b")));
    check("unlink dir", unlink(P("probe_dir/sub")));
    check("opendir file", opendir(P("probe_dir/b")) ? 0 : -1);
    check("rename file", rename(P("probe_file"), P("probe_renamed")));
    check("rename back", rename(P("probe_renamed"), P("probe_file")));
}

static void probe_links(void) {
    char buf[256];
    struct stat st;
    check("symlink", symlink("probe_file", P("probe_sym")));
    ssize_t n = readlink(P("probe_sym"), buf, sizeof buf);
    if (n >= 0) printf("readlink: %.*s\n", (int)n, buf);
    else printf("readlink: %s\n", errno_name(errno));
    check("readlink regular file", readlink(P("probe_file"), buf, sizeof buf));
    if (check("lstat symlink", lstat(P("probe_sym"), &st)) == 0)
        printf("lstat symlink: %s\n", file_type(st.st_mode));
    if (check("stat through symlink", stat(P("probe_sym"), &st)) == 0)
        printf("stat through symlink: %s size %lld\n", file_type(st.st_mode), (long long)st.st_size);
    int fd = open(P("probe_sym"), O_RDONLY);
    n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    printf("read through symlink: %ld\n", (long)n);
    if (fd >= 0) close(fd);
    check_open("open O_NOFOLLOW symlink", open(P("probe_sym"), O_RDONLY | O_NOFOLLOW));
    check("symlink dangling", symlink("probe_nowhere", P("probe_dangling")));
    check_open("open dangling", open(P("probe_dangling"), O_RDONLY));

    check("link", link(P("probe_file"), P("probe_hard")));
    if (stat(P("probe_file"), &st) == 0) printf("nlink after link: %lu\n", (unsigned long)st.st_nlink);
    check("link existing", link(P("probe_file"), P("probe_hard")));
    check("unlink hard", unlink(P("probe_hard")));
    if (stat(P("probe_file"), &st) == 0) printf("nlink after unlink: %lu\n", (unsigned long)st.st_nlink);
}

static void probe_poll_clock_random(void) {
    struct pollfd p = {STDOUT_FILENO, POLLOUT, 0};
    int r = poll(&p, 1, 1000);
    if (r < 0) printf("poll stdout: %s\n", errno_name(errno));
    else printf("poll stdout: %d ready, POLLOUT %s\n", r, (p.revents & POLLOUT) ? "yes" : "no");
    r = poll(NULL, 0, 10);
    printf("poll timeout only: %d\n", r);

    struct timespec a, b;
    int ok = clock_gettime(CLOCK_MONOTONIC, &a) == 0;
    volatile unsigned spin = 0;
    for (int i = 0; i < 100000; i++) spin += (unsigned)i;
    (void)spin;
    ok = ok && clock_gettime(CLOCK_MONOTONIC, &b) == 0;
    int mono = ok && (b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec));
    printf("clock monotonic: %s\n", mono ? "yes" : "no");
    ok = clock_gettime(CLOCK_REALTIME, &a) == 0;
    printf("clock realtime after 2020: %s\n", ok && a.tv_sec > 1577836800 ? "yes" : "no");
    struct timespec res;
    printf("clock_getres monotonic: %s\n", clock_getres(CLOCK_MONOTONIC, &res) == 0 ? "ok" : errno_name(errno));

    unsigned char rnd[300];
    memset(rnd, 0, sizeof rnd);
    if (getentropy(rnd, 32) == 0) {
        int nonzero = 0;
        for (int i = 0; i < 32; i++) nonzero |= rnd[i];
        printf("getentropy: %d bytes%s\n", 32, nonzero ? "" : " (all zero!)");
    } else {
        printf("getentropy: %s\n", errno_name(errno));
    }
    check("getentropy 257 bytes", getentropy(rnd, 257) == 0 ? 0 : -1);
}

static void probe_escapes(void) {
    escape("escape ../x", "../x");
    escape("escape DIR/../x", P("../x"));
    escape("escape /etc/passwd", "/etc/passwd");
    check("symlink /etc", symlink("/etc", P("probe_escape")));
    escape("escape through /etc symlink", P("probe_escape/passwd"));
    check("symlink ../../..", symlink("../../..", P("probe_up")));
    escape("escape through ../../.. symlink", P("probe_up/etc/passwd"));
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : ".");
    const char *var = argc > 2 ? argv[2] : "POPCORN_PROBE";
    setvbuf(stdout, NULL, _IOLBF, 0);

    cleanup();
    probe_args_env(argc, argv, var);
    probe_file_io();
    probe_times();
    probe_dirs();
    probe_links();
    probe_poll_clock_random();
    probe_escapes();

    check("unlink file", unlink(P("probe_file")));
    check("unlink missing", unlink(P("probe_file")));
    cleanup();
    check("rmdir missing", rmdir(P("probe_dir")));
    list_dir("final dir listing", dir);
    printf("done%s\n", escaped ? " (ESCAPED)" : "");
    return escaped ? 2 : 0;
}
