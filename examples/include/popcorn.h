/*
 * popcorn.h — the popcorn system interface for C programs compiled to wasm32-wasi.
 *
 * Everything WASI offers (files, clocks, stdio, …) is used through wasi-libc as usual; this
 * header declares what popcorn adds: processes, signals and pipes, across every kernel of the
 * system. The functions are imports from the wasm module "popcorn"; a program that uses one runs
 * only on popcorn (wasmtime and node:wasi refuse the import).
 *
 * Conventions: the popcorn_* functions below behave like their POSIX namesakes. On failure they
 * return -1 and set errno (the values of wasi-libc's <errno.h>). The raw imports (__popcorn_*)
 * return 0 or an errno instead and are not meant to be called directly.
 *
 * Identity
 *   popcorn_getpid()        this process's PID, unique across every kernel of the system
 *   popcorn_getppid()       the parent's PID; 0 when the process was started by a node
 *                           (popcorn run, popcorn boot), 1 once its parent has exited (init)
 *   popcorn_kernel_id()     index of the kernel the process runs on now (0 … count-1)
 *   popcorn_kernel_count()  number of kernels in the system
 *
 * Processes
 *   popcorn_spawn(path, argv, envp, fds, nfds, kernel)
 *       Start the WebAssembly program at `path` (a path in this process's preopened
 *       directories, as open() takes it) with arguments `argv` (NULL-terminated; argv[0] is the
 *       program name) and environment `envp` (NULL-terminated; NULL = this process's own).
 *       The child sees the same preopened directories. Its fds 0, 1 and 2 are this process's
 *       0, 1 and 2 unless `fds` (an array of `nfds` mappings) says otherwise: each mapping gives
 *       child fd `child_fd` this process's fd `parent_fd` (the same open file description, as
 *       fork+dup2 would), or closes it in the child when `parent_fd` is -1. The preopened
 *       directories take the fds from 3 up, as WASI programs expect; a mapped fd above 2 must
 *       not collide with them (EINVAL).
 *       `kernel` is the kernel index to run on, or POPCORN_ANY_KERNEL for this process's kernel.
 *       Returns the child's PID. The call returns once the child exists; errors: ENOENT (no such
 *       program), ENOEXEC (not a valid or runnable module), EBADF (a bad parent_fd), EINVAL (a bad
 *       child_fd or kernel), EFAULT, ENOMEM (its initial memory is over the node's --max-memory,
 *       or the host has none left), EAGAIN (the kernel it would run on holds its share of the
 *       node's --max-procs, zombies included).
 *   popcorn_wait(pid, &status, options)
 *       Wait for a child to end (pid -1: any child) and reap it; returns its PID. With
 *       POPCORN_WNOHANG returns 0 at once when no child has ended. ECHILD when there is no such
 *       child. `status` (may be NULL) decodes with the POPCORN_W* macros, as <sys/wait.h>.
 *   popcorn_kill(pid, sig)
 *       Send signal `sig` to process `pid`, on whatever kernel it runs. Signal 0 checks that the
 *       process exists. ESRCH: no such process; EINVAL: no such signal.
 *
 * Signals (Linux numbers; POSIX default actions)
 *   popcorn_signal(sig, handler)
 *       Set what `sig` does to this process: POPCORN_SIG_DFL (the default action),
 *       POPCORN_SIG_IGN (nothing), or a handler `void handler(int sig)`, which runs at the
 *       process's next safe point (a system call or a loop back-edge), wherever the process runs.
 *       A process blocked in read, wait or sleep runs the handler and then goes on waiting (as
 *       with SA_RESTART). SIGKILL and SIGSTOP cannot be caught or ignored (EINVAL).
 *       Returns 0.
 *   popcorn_signal_number(name)
 *       The number of the signal named "TERM" or "SIGTERM" (any case), or -1.
 *
 * Migration
 *   popcorn_migrate(kernel)
 *       Move this process to kernel `kernel` (0 … count-1) and return there: memory, fds (with
 *       their offsets), pipes, children, signal handlers and pending signals go with it; the PID
 *       and parent stay. Returns 0 at once when already there. EINVAL: no such kernel; ENOTSUP:
 *       an fd that cannot move (see popcorn_spawn).
 * Pipes and fds
 *   popcorn_pipe(fds)       fds[0] = read end, fds[1] = write end. The ends may be given to
 *                           children on any kernel: blocking reads and writes, end of file once
 *                           the last writer closes, EPIPE and SIGPIPE once the last reader closes.
 *   popcorn_dup2(old, new)  make fd `new` refer to what `old` refers to (closing `new` first);
 *                           returns `new`. EBADF: `new` is past the node's --max-fds.
 *                           popcorn_pipe fails with EMFILE when no fd is left below it.
 */
#ifndef POPCORN_H
#define POPCORN_H

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#define POPCORN_IMPORT(name) __attribute__((import_module("popcorn"), import_name(#name)))

/* ---- signal numbers (Linux) ---- */
#define POPCORN_SIGHUP 1
#define POPCORN_SIGINT 2
#define POPCORN_SIGQUIT 3
#define POPCORN_SIGABRT 6
#define POPCORN_SIGKILL 9
#define POPCORN_SIGUSR1 10
#define POPCORN_SIGUSR2 12
#define POPCORN_SIGPIPE 13
#define POPCORN_SIGALRM 14
#define POPCORN_SIGTERM 15
#define POPCORN_SIGCHLD 17
#define POPCORN_SIGCONT 18
#define POPCORN_SIGSTOP 19
#define POPCORN_SIGTSTP 20

/* Highest signal number (Linux's SIGSYS). */
#define POPCORN_SIGMAX 31

typedef void (*popcorn_sighandler_t)(int);
#define POPCORN_SIG_DFL ((popcorn_sighandler_t)0)
#define POPCORN_SIG_IGN ((popcorn_sighandler_t)-1)

/* ---- wait ---- */
#define POPCORN_WNOHANG 1
#define POPCORN_WEXITSTATUS(s) (((s) >> 8) & 0xff)
#define POPCORN_WTERMSIG(s) ((s) & 0x7f)
#define POPCORN_WIFEXITED(s) (POPCORN_WTERMSIG(s) == 0)
#define POPCORN_WIFSIGNALED(s) (POPCORN_WTERMSIG(s) != 0)

/* ---- spawn ---- */
#define POPCORN_ANY_KERNEL (-1)
struct popcorn_fd_map {
    int child_fd;  /* the fd number in the child */
    int parent_fd; /* this process's fd it gets, or -1 to leave child_fd closed */
};

/* ---- raw imports: 0 or an errno ---- */
int popcorn_getpid(void) POPCORN_IMPORT(getpid);
int popcorn_getppid(void) POPCORN_IMPORT(getppid);
int popcorn_kernel_id(void) POPCORN_IMPORT(kernel_id);
int popcorn_kernel_count(void) POPCORN_IMPORT(kernel_count);
int __popcorn_spawn(const char *path, size_t path_len, char *const argv[], char *const envp[],
                    const struct popcorn_fd_map *fds, int nfds, int kernel, int *pid)
    POPCORN_IMPORT(spawn);
int __popcorn_wait(int pid, int *status, int options, int *reaped) POPCORN_IMPORT(wait);
int __popcorn_kill(int pid, int sig) POPCORN_IMPORT(kill);
/* action: 0 default, 1 ignore, 2 run `handler` (an index into the function table). */
int __popcorn_signal(int sig, int action, popcorn_sighandler_t handler) POPCORN_IMPORT(signal);
int __popcorn_pipe(int fds[2]) POPCORN_IMPORT(pipe);
int __popcorn_dup2(int oldfd, int newfd) POPCORN_IMPORT(dup2);
int __popcorn_migrate(int kernel) POPCORN_IMPORT(migrate);

/* ---- the POSIX-shaped interface ---- */
static inline int __popcorn_result(int err, int value) {
    if (err != 0) {
        errno = err;
        return -1;
    }
    return value;
}

static inline int popcorn_spawn(const char *path, char *const argv[], char *const envp[],
                                const struct popcorn_fd_map *fds, int nfds, int kernel) {
    int pid = 0;
    int err = __popcorn_spawn(path, strlen(path), argv, envp, fds, nfds, kernel, &pid);
    return __popcorn_result(err, pid);
}

static inline int popcorn_wait(int pid, int *status, int options) {
    int reaped = 0;
    int err = __popcorn_wait(pid, status, options, &reaped);
    return __popcorn_result(err, reaped);
}

static inline int popcorn_kill(int pid, int sig) {
    return __popcorn_result(__popcorn_kill(pid, sig), 0);
}

static inline int popcorn_signal(int sig, popcorn_sighandler_t handler) {
    int action = handler == POPCORN_SIG_DFL ? 0 : handler == POPCORN_SIG_IGN ? 1 : 2;
    return __popcorn_result(__popcorn_signal(sig, action, handler), 0);
}

static inline int popcorn_pipe(int fds[2]) {
    return __popcorn_result(__popcorn_pipe(fds), 0);
}

static inline int popcorn_migrate(int kernel) {
    return __popcorn_result(__popcorn_migrate(kernel), 0);
}

static inline int popcorn_dup2(int oldfd, int newfd) {
    return __popcorn_result(__popcorn_dup2(oldfd, newfd), newfd);
}

/* The number of a signal named "TERM" or "SIGTERM" (any case), or -1 (for shells and tools). */
static inline int popcorn_signal_number(const char *name) {
    static const struct {
        const char *name;
        int sig;
    } names[] = {
        {"HUP", POPCORN_SIGHUP},   {"INT", POPCORN_SIGINT},   {"QUIT", POPCORN_SIGQUIT},
        {"ABRT", POPCORN_SIGABRT}, {"KILL", POPCORN_SIGKILL}, {"USR1", POPCORN_SIGUSR1},
        {"USR2", POPCORN_SIGUSR2}, {"PIPE", POPCORN_SIGPIPE}, {"ALRM", POPCORN_SIGALRM},
        {"TERM", POPCORN_SIGTERM}, {"CHLD", POPCORN_SIGCHLD}, {"CONT", POPCORN_SIGCONT},
        {"STOP", POPCORN_SIGSTOP}, {"TSTP", POPCORN_SIGTSTP},
    };
    if (strncasecmp(name, "SIG", 3) == 0) name += 3;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i].name) == 0) return names[i].sig;
    return -1;
}

#endif
