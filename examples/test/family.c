/*
 * family.c — test helper for popcorn processes (spawn, wait, kill, orphans); the mode is argv[1].
 * It spawns itself: argv[0] must be a path that popcorn_spawn accepts (e.g. "/bin/family.wasm"
 * with "/bin" preopened), and children get the same argv[0]. KERNEL is a kernel index or -1
 * (POPCORN_ANY_KERNEL: the parent's kernel); it may be left out and is then -1.
 *
 *   wait [KERNEL]       spawns "child-exit 7" there, waits: "child PID exited 7 on kernel K ok"
 *                       (K = KERNEL, or the parent's kernel for -1)
 *   child-exit N        prints "child pid=P ppid=Q kernel=K", exits N
 *   orphan [KERNEL]     spawns "child-sleep" there, prints "parent exits", exits 0 at once
 *   child-sleep         sleeps 300 ms, prints "orphan ppid=X" (1 once its parent has exited)
 *   many N [KERNEL]     N times: spawn "child-exit 0" there and wait for it; then "many ok N"
 *                       (each child prints its own "child pid=…" line first)
 *   zombie [KERNEL]     spawns a silent "child-exit 0" there and leaves it unreaped for 1.5 s
 *                       (ps shows a zombie): "zombie PID", then "reaped"
 *   wnohang [KERNEL]    spawns "child-nap 200" there; popcorn_wait(pid, WNOHANG) must return 0,
 *                       then a blocking wait the PID: "wnohang ok"
 *   child-nap MS        sleeps MS milliseconds, exits 0, prints nothing
 *   kill-blocked [KERNEL]  spawns "child-read" there with fd 0 the read end of a pipe whose write
 *                       end stays open, sleeps 100 ms, sends SIGTERM, waits: "killed by signal 15"
 *   child-read          reads fd 0 until EOF, exits 0, prints nothing
 *   stop-cont [KERNEL]  spawns "child-count" there, after 20 ms sends SIGSTOP and prints
 *                       "stopped", after 300 ms more sends SIGCONT, waits: "resumed ok" (only if
 *                       the child exited 0 and no sooner than the SIGCONT, i.e. it was stopped)
 *   child-count         prints "count N" for N = 1..5, sleeping 50 ms between them
 *   echild              popcorn_wait(-1) without children: "ECHILD"
 *   badspawn            spawns "/bin/nonexistent.wasm": "ENOENT"; then itself on kernel 999:
 *                       "EINVAL"
 * Anything unexpected is reported on stdout or stderr and makes the exit status 1; usage errors
 * exit 2. stdout is flushed after each line (children share it, and tests read it live).
 *
 * Used by: process tests (spawn on any kernel, wait and exit statuses, reparenting to init,
 * WNOHANG, ECHILD, kill of a process blocked on a pipe, SIGSTOP/SIGCONT, spawn errors).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <popcorn.h>

static char *self; /* argv[0]: our own path, to spawn children */

/* printf, then flush: children write to the same stdout, and tests read it live. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static void msleep(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A whole-number argument; exits 2 (usage) if s is not one. NULL gives dflt. */
static int int_arg(const char *s, int dflt) {
    if (s == NULL) return dflt;
    char *end;
    long n = strtol(s, &end, 10);
    if (end == s || *end != '\0') {
        fprintf(stderr, "family: '%s' is not a number\n", s);
        exit(2);
    }
    return (int)n;
}

/* Spawn `self MODE [ARG]` on kernel with the given fd mappings; exits 1 if that fails. */
static int spawn_self(int kernel, const char *mode, const char *arg,
                      const struct popcorn_fd_map *fds, int nfds) {
    char *argv[] = {self, (char *)mode, (char *)arg, NULL};
    int pid = popcorn_spawn(self, argv, NULL, fds, nfds, kernel);
    if (pid < 0) {
        fprintf(stderr, "family: spawn %s on kernel %d: %s\n", mode, kernel, strerror(errno));
        exit(1);
    }
    return pid;
}

/* Blocking wait for pid; returns its wait status, exits 1 if the wait fails. */
static int wait_child(int pid) {
    int st;
    if (popcorn_wait(pid, &st, 0) != pid) {
        fprintf(stderr, "family: wait %d: %s\n", pid, strerror(errno));
        exit(1);
    }
    return st;
}

/* True if st says "exited with code"; otherwise reports it. */
static int exited_with(int pid, int st, int code) {
    if (POPCORN_WIFEXITED(st) && POPCORN_WEXITSTATUS(st) == code) return 1;
    if (POPCORN_WIFSIGNALED(st)) say("child %d killed by signal %d\n", pid, POPCORN_WTERMSIG(st));
    else say("child %d exited %d\n", pid, POPCORN_WEXITSTATUS(st));
    return 0;
}

static void signal_child(int pid, int sig) {
    if (popcorn_kill(pid, sig) < 0) {
        fprintf(stderr, "family: kill %d %d: %s\n", pid, sig, strerror(errno));
        exit(1);
    }
}

static int child_exit(int code) {
    say("child pid=%d ppid=%d kernel=%d\n", popcorn_getpid(), popcorn_getppid(),
        popcorn_kernel_id());
    return code;
}

static int do_wait(int kernel) {
    /* read before the spawn: this process could move to another kernel later */
    int where = kernel == POPCORN_ANY_KERNEL ? popcorn_kernel_id() : kernel;
    int pid = spawn_self(kernel, "child-exit", "7", NULL, 0);
    if (!exited_with(pid, wait_child(pid), 7)) return 1;
    say("child %d exited 7 on kernel %d ok\n", pid, where);
    return 0;
}

static int orphan(int kernel) {
    spawn_self(kernel, "child-sleep", NULL, NULL, 0);
    say("parent exits\n");
    return 0;
}

static int child_sleep(void) {
    msleep(300);
    say("orphan ppid=%d\n", popcorn_getppid());
    return 0;
}

static int many(int n, int kernel) {
    for (int i = 0; i < n; i++) {
        int pid = spawn_self(kernel, "child-exit", "0", NULL, 0);
        if (!exited_with(pid, wait_child(pid), 0)) return 1;
    }
    say("many ok %d\n", n);
    return 0;
}

/* Leave a child unreaped for a while, so ps can show it as a zombie. */
static int zombie(int kernel) {
    struct popcorn_fd_map quiet[] = {{1, -1}};
    int pid = spawn_self(kernel, "child-exit", "0", quiet, 1);
    say("zombie %d\n", pid);
    msleep(1500);
    if (!exited_with(pid, wait_child(pid), 0)) return 1;
    say("reaped\n");
    return 0;
}

static int wnohang(int kernel) {
    int pid = spawn_self(kernel, "child-nap", "200", NULL, 0);
    int st, r = popcorn_wait(pid, &st, POPCORN_WNOHANG);
    if (r != 0) {
        say("wnohang: popcorn_wait returned %d (errno %d), expected 0\n", r, r < 0 ? errno : 0);
        return 1;
    }
    if (!exited_with(pid, wait_child(pid), 0)) return 1;
    say("wnohang ok\n");
    return 0;
}

static int child_read(void) {
    char buf[256];
    ssize_t n;
    while ((n = read(STDIN_FILENO, buf, sizeof buf)) != 0) {
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "family: child-read: %s\n", strerror(errno));
            return 1;
        }
    }
    return 0;
}

static int kill_blocked(int kernel) {
    int p[2];
    if (popcorn_pipe(p) < 0) {
        fprintf(stderr, "family: pipe: %s\n", strerror(errno));
        return 1;
    }
    struct popcorn_fd_map map[] = {{0, p[0]}};
    int pid = spawn_self(kernel, "child-read", NULL, map, 1);
    close(p[0]); /* the child has it; p[1] stays open so the child's read blocks */
    msleep(100);
    signal_child(pid, POPCORN_SIGTERM);
    int st = wait_child(pid);
    close(p[1]);
    if (!POPCORN_WIFSIGNALED(st)) {
        say("child %d exited %d\n", pid, POPCORN_WEXITSTATUS(st));
        return 1;
    }
    say("killed by signal %d\n", POPCORN_WTERMSIG(st));
    return POPCORN_WTERMSIG(st) == POPCORN_SIGTERM ? 0 : 1;
}

static int child_count(void) {
    for (int n = 1; n <= 5; n++) {
        say("count %d\n", n);
        if (n < 5) msleep(50);
    }
    return 0;
}

static int stop_cont(int kernel) {
    int pid = spawn_self(kernel, "child-count", NULL, NULL, 0);
    msleep(20);
    signal_child(pid, POPCORN_SIGSTOP);
    say("stopped\n");
    msleep(300);
    /* Running, the child would be done by now (200 ms of sleeps); stopped, it has not ended
     * (a stopped child is not reported by wait, there is no WUNTRACED). */
    int st;
    if (popcorn_wait(pid, &st, POPCORN_WNOHANG) == pid) {
        say("stop-cont: child ended before SIGCONT\n");
        return 1;
    }
    signal_child(pid, POPCORN_SIGCONT);
    if (!exited_with(pid, wait_child(pid), 0)) return 1;
    say("resumed ok\n");
    return 0;
}

static int echild(void) {
    int st, r = popcorn_wait(-1, &st, 0);
    if (r < 0 && errno == ECHILD) {
        say("ECHILD\n");
        return 0;
    }
    say("echild: popcorn_wait returned %d (errno %d)\n", r, r < 0 ? errno : 0);
    return 1;
}

/* Report a spawn that should have failed with errno `want` (printed as `name`). */
static int expect_spawn_error(int pid, int want, const char *name) {
    if (pid >= 0) {
        wait_child(pid);
        say("badspawn: %s expected, but spawn returned pid %d\n", name, pid);
        return 1;
    }
    if (errno != want) {
        say("badspawn: %s expected, got %s\n", name, strerror(errno));
        return 1;
    }
    say("%s\n", name);
    return 0;
}

static int badspawn(void) {
    char *missing_argv[] = {(char *)"/bin/nonexistent.wasm", NULL};
    int pid = popcorn_spawn(missing_argv[0], missing_argv, NULL, NULL, 0, POPCORN_ANY_KERNEL);
    int failed = expect_spawn_error(pid, ENOENT, "ENOENT");
    char *self_argv[] = {self, (char *)"child-exit", (char *)"0", NULL};
    pid = popcorn_spawn(self, self_argv, NULL, NULL, 0, 999);
    return failed | expect_spawn_error(pid, EINVAL, "EINVAL");
}

int main(int argc, char **argv) {
    self = argv[0];
    const char *mode = argc > 1 ? argv[1] : "";
    const char *a = argc > 2 ? argv[2] : NULL, *b = argc > 3 ? argv[3] : NULL;
    if (strcmp(mode, "wait") == 0) return do_wait(int_arg(a, POPCORN_ANY_KERNEL));
    if (strcmp(mode, "child-exit") == 0) return child_exit(int_arg(a, 0));
    if (strcmp(mode, "orphan") == 0) return orphan(int_arg(a, POPCORN_ANY_KERNEL));
    if (strcmp(mode, "child-sleep") == 0) return child_sleep();
    if (strcmp(mode, "many") == 0 && a != NULL) return many(int_arg(a, 0), int_arg(b, -1));
    if (strcmp(mode, "zombie") == 0) return zombie(int_arg(a, POPCORN_ANY_KERNEL));
    if (strcmp(mode, "wnohang") == 0) return wnohang(int_arg(a, POPCORN_ANY_KERNEL));
    if (strcmp(mode, "child-nap") == 0) {
        msleep(int_arg(a, 200));
        return 0;
    }
    if (strcmp(mode, "kill-blocked") == 0) return kill_blocked(int_arg(a, POPCORN_ANY_KERNEL));
    if (strcmp(mode, "child-read") == 0) return child_read();
    if (strcmp(mode, "stop-cont") == 0) return stop_cont(int_arg(a, POPCORN_ANY_KERNEL));
    if (strcmp(mode, "child-count") == 0) return child_count();
    if (strcmp(mode, "echild") == 0) return echild();
    if (strcmp(mode, "badspawn") == 0) return badspawn();
    fputs("usage: family wait|orphan|wnohang|kill-blocked|stop-cont [KERNEL] | many N [KERNEL]"
          " | echild | badspawn | child-exit N | child-sleep | child-nap MS | child-read"
          " | child-count\n",
          stderr);
    return 2;
}
