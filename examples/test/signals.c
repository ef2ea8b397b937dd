/*
 * signals.c — test helper for popcorn signals; the mode is argv[1]. SIG is a number or a name
 * (HUP INT QUIT ABRT KILL USR1 USR2 PIPE ALRM TERM CHLD CONT STOP TSTP, "SIG" prefix optional).
 *
 *   handle SIG        handler for SIG prints "caught N" (N the signal number) on each delivery;
 *                     prints "ready", reads stdin to EOF, prints "done", exits 0
 *   ignore SIG        SIG ignored; prints "ready", reads stdin to EOF, prints "done", exits 0
 *   catch-kill        tries a handler for SIGKILL, then for SIGSTOP: prints "EINVAL" for each
 *                     refusal (anything else: "accepted N" or "signal N: error"); then "ready",
 *                     reads stdin to EOF, prints "done", exits 0
 *   spin              SIGUSR1 handler prints "tick N" (N = 1, 2, … per delivery); prints "ready",
 *                     then loops forever without output or system calls
 *   sleeper [SIG]     prints "ready", sleeps 60 s (nanosleep), prints "done", exits 0; with SIG,
 *                     a handler for SIG prints "caught N" (the sleep then goes on)
 *   self SIG          handler for SIG prints "caught N" (not installed for KILL and STOP), sends
 *                     SIG to itself with popcorn_kill, prints "after", exits 0
 *   pipe-writer       makes a pipe, closes its read end, writes to it: SIGPIPE (default action)
 *                     ends the process; if the write returns instead, prints "survived SIGPIPE"
 *                     (EPIPE) and exits 1
 *   pipe-writer ignore  the same with SIGPIPE ignored: prints "EPIPE" and exits 0 when the
 *                     write fails with EPIPE
 * Every line is flushed at once (tests read it live). Handlers write with write(2), never stdio,
 * since they may run inside a system call that stdio is in the middle of. Usage errors exit 2,
 * unexpected failures 1.
 *
 * Used by: signal tests (handlers at safe points, SIG_IGN, SIGKILL/SIGSTOP refusal, delivery to
 * blocked, sleeping and spinning processes, self-signals, SIGPIPE).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <popcorn.h>

/* A signal given as a number or a name; exits 2 if s is neither. */
static int parse_signal(const char *s) {
    char *end;
    long n = s != NULL ? strtol(s, &end, 10) : 0;
    if (s != NULL && end != s && *end == '\0' && n > 0 && n <= POPCORN_SIGMAX) return (int)n;
    int named = s != NULL ? popcorn_signal_number(s) : -1;
    if (named > 0) return named;
    fprintf(stderr, "signals: bad signal '%s'\n", s != NULL ? s : "");
    exit(2);
}

static void say(const char *line) {
    printf("%s\n", line);
    fflush(stdout);
}

/* write(2) "PREFIX N\n" on stdout; safe to call from a handler. */
static void write_line(const char *prefix, int n) {
    char buf[48], digits[12];
    size_t len = strlen(prefix), nd = 0;
    memcpy(buf, prefix, len);
    buf[len++] = ' ';
    unsigned u = n < 0 ? 0u - (unsigned)n : (unsigned)n;
    do digits[nd++] = (char)('0' + u % 10); while ((u /= 10) != 0);
    if (n < 0) buf[len++] = '-';
    while (nd > 0) buf[len++] = digits[--nd];
    buf[len++] = '\n';
    (void)write(STDOUT_FILENO, buf, len);
}

static void on_signal(int sig) { write_line("caught", sig); }

static volatile int ticks;
static void on_tick(int sig) {
    (void)sig;
    write_line("tick", ++ticks);
}

/* Read stdin until EOF. Handlers run during the read, which then goes on (SA_RESTART). */
static void read_to_eof(void) {
    char buf[256];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n == 0) return;
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "signals: read: %s\n", strerror(errno));
            exit(1);
        }
    }
}

static void set_handler(int sig, popcorn_sighandler_t handler) {
    if (popcorn_signal(sig, handler) < 0) {
        fprintf(stderr, "signals: signal %d: %s\n", sig, strerror(errno));
        exit(1);
    }
}

/* "ready", stdin to EOF, "done". */
static int wait_for_eof(void) {
    say("ready");
    read_to_eof();
    say("done");
    return 0;
}

static int catch_kill(void) {
    const int sigs[] = {POPCORN_SIGKILL, POPCORN_SIGSTOP};
    for (int i = 0; i < 2; i++) {
        if (popcorn_signal(sigs[i], on_signal) == 0) printf("accepted %d\n", sigs[i]);
        else if (errno == EINVAL) printf("EINVAL\n");
        else printf("signal %d: %s\n", sigs[i], strerror(errno));
        fflush(stdout);
    }
    return wait_for_eof();
}

_Noreturn static void spin(void) {
    set_handler(POPCORN_SIGUSR1, on_tick);
    say("ready");
    /* volatile: every iteration is a real store, so the loop (and its back-edge, a safe point
     * where handlers run) cannot be optimized away */
    static volatile unsigned long long counter;
    for (;;) counter++;
}

static int sleeper(const char *sig) {
    if (sig != NULL) set_handler(parse_signal(sig), on_signal);
    say("ready");
    struct timespec ts = {60, 0};
    while (nanosleep(&ts, &ts) != 0) { /* an EINTR would leave the rest of the time in ts */
        if (errno != EINTR) {
            fprintf(stderr, "signals: nanosleep: %s\n", strerror(errno));
            return 1;
        }
    }
    say("done");
    return 0;
}

static int self(int sig) {
    if (sig != POPCORN_SIGKILL && sig != POPCORN_SIGSTOP) set_handler(sig, on_signal);
    if (popcorn_kill(popcorn_getpid(), sig) < 0) {
        fprintf(stderr, "signals: kill: %s\n", strerror(errno));
        return 1;
    }
    say("after");
    return 0;
}

static int pipe_writer(const char *how) {
    int ignore = how != NULL && strcmp(how, "ignore") == 0;
    if (how != NULL && !ignore) {
        fprintf(stderr, "signals: pipe-writer: expected 'ignore', got '%s'\n", how);
        return 2;
    }
    int p[2];
    if (popcorn_pipe(p) < 0) {
        fprintf(stderr, "signals: pipe: %s\n", strerror(errno));
        return 1;
    }
    close(p[0]);
    if (ignore) set_handler(POPCORN_SIGPIPE, POPCORN_SIG_IGN);
    ssize_t n = write(p[1], "x", 1);
    if (n >= 0) {
        say("wrote");
        return 1;
    }
    if (errno != EPIPE) {
        fprintf(stderr, "signals: write: %s\n", strerror(errno));
        return 1;
    }
    say(ignore ? "EPIPE" : "survived SIGPIPE");
    return ignore ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    const char *arg = argc > 2 ? argv[2] : NULL;
    if (strcmp(mode, "handle") == 0 || strcmp(mode, "ignore") == 0) {
        set_handler(parse_signal(arg), mode[0] == 'h' ? on_signal : POPCORN_SIG_IGN);
        return wait_for_eof();
    }
    if (strcmp(mode, "catch-kill") == 0) return catch_kill();
    if (strcmp(mode, "spin") == 0) spin();
    if (strcmp(mode, "sleeper") == 0) return sleeper(arg);
    if (strcmp(mode, "self") == 0) return self(parse_signal(arg));
    if (strcmp(mode, "pipe-writer") == 0) return pipe_writer(arg);
    fputs("usage: signals handle SIG | ignore SIG | catch-kill | spin | sleeper [SIG] | self SIG"
          " | pipe-writer [ignore]\n",
          stderr);
    return 2;
}
