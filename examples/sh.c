/*
 * sh.c — a small POSIX-like shell whose jobs spread over every kernel of the system.
 *
 *   sh                  read commands from stdin ("$ " prompt on stderr when stdin is a terminal)
 *   sh -c 'LINE'        run LINE (newlines in it separate commands like ';')
 *   sh SCRIPT           run the commands in the file SCRIPT
 *
 * Language (one line at a time; quotes and '\' do not continue a command onto the next line):
 *   words         'single' and "double" quotes, backslash escapes, # comments at a word start
 *   expansions    $? (last status), $$ (shell PID), $! (PID printed for the last background
 *                 job, 0 before any), $NAME and ${NAME} (environment); outside
 *                 single quotes; an expansion is never split into several words, and an unquoted
 *                 word that expands to nothing is dropped
 *   a ; b         run a, then b (a newline does the same)
 *   a | b | c     a pipeline: stage i runs on kernel (kernel_id + i) % kernel_count, so a
 *                 three-stage pipeline on a three-kernel system uses every kernel
 *   @N cmd        run this command on kernel N (an unquoted first word @N)
 *   < f  > f  >> f  2> f  2>> f  2>&1
 *                 redirections, applied left to right; they win over the pipe for their fd
 *   cmd &         run the job in the background and print "[PID]" (its last stage) on stderr
 *   builtins      wait [PID...]   wait for every background job, or for each PID (status of
 *                                 the last one; 127 if PID is not a child)
 *                 kill [-SIG] PID...   SIG a number or a name (HUP INT QUIT ABRT KILL USR1 USR2
 *                                 PIPE ALRM TERM CHLD CONT STOP TSTP, "SIG" prefix optional);
 *                                 default TERM
 *                 exit [N]        exit with N, or with the last status
 *                 Builtins run in the shell itself: they cannot be piped, redirected or sent to
 *                 the background (status 2 with a message).
 * Program lookup: a word with a '/' is a path ("./x" and "x/y" are taken from "/"); any other is
 * looked up in each $PATH directory (default "/bin"). For both, NAME is tried, then NAME.wasm.
 *
 * Status: a command's status is its exit status, or 128+SIG when a signal ended it; a pipeline's
 * is its last stage's. "sh: NAME: not found" is 127, a program that cannot be started 126, a
 * redirection that cannot be opened 1 ("sh: FILE: No such file or directory"), a syntax error 2
 * (the rest of that line is skipped). The shell exits with the last status.
 *
 * Children get the shell's own fds 0-2 unless a pipe or a redirection replaces them, passed with
 * struct popcorn_fd_map. The shell opens redirection files itself and closes its copies (and its
 * pipe ends) right after the spawn, so that end of file and EPIPE reach the children.
 *
 * Used by: the single-system-image showcase and tests (pipelines across kernels, jobs, signals).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <popcorn.h>

/* ------------------------------------------------------------------------------------------ */
/* Growable strings and word lists                                                             */

struct str {
    char *s;
    size_t len, cap;
};

static void str_addn(struct str *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *s2 = realloc(b->s, cap);
        if (s2 == NULL) {
            fputs("sh: out of memory\n", stderr);
            exit(2);
        }
        b->s = s2;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void str_addc(struct str *b, char c) { str_addn(b, &c, 1); }
static void str_adds(struct str *b, const char *s) { str_addn(b, s, strlen(s)); }

/* A NULL-terminated list of malloc'd strings, ready to be an argv. */
struct words {
    char **v;
    int n, cap;
};

static void words_add(struct words *w, char *s) {
    if (w->n + 2 > w->cap) {
        w->cap = w->cap ? w->cap * 2 : 8;
        w->v = realloc(w->v, (size_t)w->cap * sizeof *w->v);
        if (w->v == NULL) {
            fputs("sh: out of memory\n", stderr);
            exit(2);
        }
    }
    w->v[w->n++] = s;
    w->v[w->n] = NULL;
}

static void words_free(struct words *w) {
    for (int i = 0; i < w->n; i++) free(w->v[i]);
    free(w->v);
    w->v = NULL;
    w->n = w->cap = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Shell state                                                                                 */

static int last_status;
static int last_background_pid; /* $! */

/* Background children, so that `wait` knows them and `wait PID` can report a status that was
 * collected earlier (finished jobs are reaped before each input line, to not pile up zombies). */
#define MAX_JOBS 128
struct job {
    int pid;
    int done;   /* reaped already; status is valid */
    int status; /* shell-style status (0-255) */
};
static struct job jobs[MAX_JOBS];
static int njobs;

/* The shell-style status of a popcorn wait status: exit code, or 128+signal. */
static int shell_status(int wstatus) {
    if (POPCORN_WIFSIGNALED(wstatus)) return 128 + POPCORN_WTERMSIG(wstatus);
    return POPCORN_WEXITSTATUS(wstatus);
}

/* ------------------------------------------------------------------------------------------ */
/* Lexer: turns a line into words and operators, expanding $ as it goes. It runs just ahead of
 * the executor (one pipeline at a time), so "$?" sees the status of the command before it.   */

enum tok_kind { TK_WORD, TK_PIPE, TK_SEMI, TK_AMP, TK_REDIR, TK_END, TK_ERROR };
enum redir_mode { R_IN, R_OUT, R_APPEND, R_DUP_OUT };

struct token {
    enum tok_kind kind;
    char *word;           /* TK_WORD: malloc'd text */
    int quoted;           /* TK_WORD: some part was quoted or escaped */
    int fd;               /* TK_REDIR: the child fd it sets */
    enum redir_mode mode; /* TK_REDIR */
    const char *text;     /* the operator's text, for error messages */
};

struct lexer {
    const char *p;
};

static int is_name_char(char c, int first) {
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (!first && c >= '0' && c <= '9');
}

/* Expand the $ at lx->p (pointing just after the '$') into w. */
static void expand_dollar(struct lexer *lx, struct str *w) {
    char num[16];
    const char *p = lx->p;
    if (*p == '?' || *p == '$' || *p == '!') {
        snprintf(num, sizeof num, "%d",
                 *p == '?' ? last_status : *p == '$' ? popcorn_getpid() : last_background_pid);
        str_adds(w, num);
        lx->p = p + 1;
        return;
    }
    int braced = *p == '{';
    const char *name = p + braced;
    const char *end = name;
    while (is_name_char(*end, end == name)) end++;
    if (end == name || (braced && *end != '}')) {
        str_addc(w, '$'); /* not an expansion: a literal '$' */
        return;
    }
    char *var = strndup(name, (size_t)(end - name));
    const char *val = var ? getenv(var) : NULL;
    if (val != NULL) str_adds(w, val);
    free(var);
    lx->p = end + braced;
}

/* Lex a double-quoted part; lx->p is just after the opening quote. Returns -1 if unterminated. */
static int lex_double_quoted(struct lexer *lx, struct str *w) {
    for (;;) {
        char c = *lx->p;
        if (c == '\0') return -1;
        lx->p++;
        if (c == '"') return 0;
        if (c == '\\' && *lx->p == '\n') {
            lx->p++; /* a line continuation: both go */
        } else if (c == '\\' && *lx->p != '\0' && strchr("$`\"\\", *lx->p) != NULL) {
            str_addc(w, *lx->p++); /* POSIX: inside "", '\' escapes only these */
        } else if (c == '$') {
            expand_dollar(lx, w);
        } else {
            str_addc(w, c);
        }
    }
}

/* Lex one word starting at lx->p into t. Returns 0, or -1 on an unterminated quote. */
static int lex_word(struct lexer *lx, struct token *t) {
    struct str w = {0};
    int quoted = 0;
    str_adds(&w, ""); /* so w.s is never NULL */
    for (;;) {
        char c = *lx->p;
        if (c == '\0' || strchr(" \t\r\n;|&<>", c) != NULL) break;
        lx->p++;
        if (c == '\\') {
            quoted = 1;
            if (*lx->p == '\n') lx->p++; /* a line continuation: both go */
            else if (*lx->p != '\0') str_addc(&w, *lx->p++);
        } else if (c == '\'') {
            const char *end = strchr(lx->p, '\'');
            if (end == NULL) goto unterminated;
            str_addn(&w, lx->p, (size_t)(end - lx->p));
            lx->p = end + 1;
            quoted = 1;
        } else if (c == '"') {
            if (lex_double_quoted(lx, &w) < 0) goto unterminated;
            quoted = 1;
        } else if (c == '$') {
            expand_dollar(lx, &w);
        } else {
            str_addc(&w, c);
        }
    }
    t->kind = TK_WORD;
    t->word = w.s;
    t->quoted = quoted;
    return 0;
unterminated:
    free(w.s);
    fputs("sh: syntax error: unterminated quote\n", stderr);
    return -1;
}

/* Lex a redirection operator at lx->p if there is one ("2>" only at a word start). */
static int lex_redir(struct lexer *lx, struct token *t) {
    static const struct {
        const char *text;
        int fd;
        enum redir_mode mode;
    } ops[] = {
        /* longest first, so ">>" is not read as ">" */
        {"2>&1", 2, R_DUP_OUT}, {"2>>", 2, R_APPEND}, {"2>", 2, R_OUT},
        {">>", 1, R_APPEND},    {">", 1, R_OUT},      {"<", 0, R_IN},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t n = strlen(ops[i].text);
        if (strncmp(lx->p, ops[i].text, n) == 0) {
            lx->p += n;
            t->kind = TK_REDIR;
            t->fd = ops[i].fd;
            t->mode = ops[i].mode;
            t->text = ops[i].text;
            return 1;
        }
    }
    return 0;
}

/* The next token. Words that expand to nothing (unquoted) are skipped. */
static void next_token(struct lexer *lx, struct token *t) {
    memset(t, 0, sizeof *t);
    for (;;) {
        while (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r') lx->p++;
        char c = *lx->p;
        if (c == '#') { /* a comment runs to the end of the line */
            while (*lx->p != '\0' && *lx->p != '\n') lx->p++;
            continue;
        }
        if (c == '\0') {
            t->kind = TK_END;
            t->text = "newline";
            return;
        }
        if (lex_redir(lx, t)) return;
        if (c == '\n' || c == ';' || c == '|' || c == '&') {
            lx->p++;
            t->kind = c == '|' ? TK_PIPE : c == '&' ? TK_AMP : TK_SEMI;
            t->text = c == '|' ? "|" : c == '&' ? "&" : c == ';' ? ";" : "newline";
            return;
        }
        if (lex_word(lx, t) < 0) {
            t->kind = TK_ERROR;
            return;
        }
        if (t->word[0] != '\0' || t->quoted) return;
        free(t->word);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Parser: one pipeline at a time                                                              */

struct redir {
    int fd;
    enum redir_mode mode;
    char *path; /* NULL for 2>&1 */
};

struct command {
    struct words argv;
    int kernel; /* from @N, or -1 */
    struct redir *redirs;
    int nredirs;
};

struct pipeline {
    struct command *cmds;
    int n;
    int background;
};

static void pipeline_free(struct pipeline *pl) {
    for (int i = 0; i < pl->n; i++) {
        struct command *c = &pl->cmds[i];
        words_free(&c->argv);
        for (int j = 0; j < c->nredirs; j++) free(c->redirs[j].path);
        free(c->redirs);
    }
    free(pl->cmds);
    memset(pl, 0, sizeof *pl);
}

static struct command *pipeline_add(struct pipeline *pl) {
    pl->cmds = realloc(pl->cmds, (size_t)(pl->n + 1) * sizeof *pl->cmds);
    if (pl->cmds == NULL) {
        fputs("sh: out of memory\n", stderr);
        exit(2);
    }
    struct command *c = &pl->cmds[pl->n++];
    memset(c, 0, sizeof *c);
    c->kernel = -1;
    return c;
}

/* Report a syntax error; returns parse_pipeline's code for one. */
static int syntax_error(const char *near) {
    fprintf(stderr, "sh: syntax error near unexpected '%s'\n", near);
    return -2;
}

/* "@N" as an unquoted first word: the kernel to run on. Returns N, or -1 if w is not one. */
static int kernel_prefix(const struct token *t) {
    const char *w = t->word;
    if (t->quoted || w[0] != '@') return -1;
    size_t digits = strlen(w + 1);
    if (digits == 0 || strspn(w + 1, "0123456789") != digits) return -1;
    return digits > 6 ? 999999 : atoi(w + 1); /* too big for any system: refused at spawn */
}

/* Add a redirection token (and the word after it) to c. Returns 0 or -2 (syntax error). */
static int parse_redir(struct lexer *lx, const struct token *op, struct command *c) {
    struct redir r = {op->fd, op->mode, NULL};
    if (op->mode != R_DUP_OUT) {
        struct token t;
        next_token(lx, &t);
        if (t.kind == TK_ERROR) return -2;
        if (t.kind != TK_WORD) return syntax_error(t.text);
        r.path = t.word;
    }
    c->redirs = realloc(c->redirs, (size_t)(c->nredirs + 1) * sizeof *c->redirs);
    if (c->redirs == NULL) {
        fputs("sh: out of memory\n", stderr);
        exit(2);
    }
    c->redirs[c->nredirs++] = r;
    return 0;
}

/*
 * Parse the next pipeline into pl: commands separated by '|', ended by ';', '&', a newline or
 * the end of the line. Returns 1 for a pipeline, 0 for an empty one (nothing to run), -1 at the
 * end of the line, -2 on a syntax error (already reported).
 */
static int parse_pipeline(struct lexer *lx, struct pipeline *pl) {
    struct command *c = pipeline_add(pl);
    struct token t;
    for (;;) {
        next_token(lx, &t);
        int empty = c->argv.n == 0 && c->nredirs == 0 && c->kernel < 0;
        switch (t.kind) {
        case TK_ERROR:
            return -2;
        case TK_WORD:
            if (c->argv.n == 0 && c->kernel < 0 && kernel_prefix(&t) >= 0) {
                c->kernel = kernel_prefix(&t);
                free(t.word);
            } else {
                words_add(&c->argv, t.word);
            }
            break;
        case TK_REDIR:
            if (parse_redir(lx, &t, c) < 0) return -2;
            break;
        case TK_PIPE:
            if (c->argv.n == 0) return syntax_error(t.text);
            c = pipeline_add(pl);
            break;
        default: /* TK_SEMI, TK_AMP, TK_END */
            if (empty && pl->n == 1 && t.kind != TK_AMP) return t.kind == TK_END ? -1 : 0;
            if (c->argv.n == 0 && (c->kernel >= 0 || pl->n > 1 || t.kind == TK_AMP))
                return syntax_error(t.text);
            pl->background = t.kind == TK_AMP;
            return 1;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Program lookup                                                                              */

/* True if path names something that is not a directory. */
static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* Try DIR/NAME then DIR/NAME.wasm (DIR NULL for NAME alone); on success out holds the path. */
static int try_program(const char *dir, const char *name, struct str *out) {
    const char *first = dir != NULL ? dir : name;
    out->len = 0;
    if (first[0] != '/') str_addc(out, '/'); /* relative: taken from "/" */
    if (dir != NULL) {
        str_adds(out, dir);
        if (dir[0] != '\0' && dir[strlen(dir) - 1] != '/') str_addc(out, '/');
    }
    str_adds(out, name);
    if (is_file(out->s)) return 1;
    size_t n = out->len;
    if (n >= 5 && strcmp(out->s + n - 5, ".wasm") == 0) return 0;
    str_adds(out, ".wasm");
    return is_file(out->s);
}

/* Find the program for name. Returns a malloc'd path, or NULL. */
static char *find_program(const char *name) {
    struct str path = {0};
    if (strchr(name, '/') != NULL) {
        while (strncmp(name, "./", 2) == 0) name += 2;
        if (try_program(NULL, name, &path)) return path.s;
    } else {
        const char *dirs = getenv("PATH");
        if (dirs == NULL || dirs[0] == '\0') dirs = "/bin";
        while (*dirs != '\0') {
            size_t n = strcspn(dirs, ":");
            char *dir = strndup(dirs, n);
            int found = dir != NULL && try_program(dir, name, &path);
            free(dir);
            if (found) return path.s;
            dirs += n + (dirs[n] == ':');
        }
    }
    free(path.s);
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Builtins                                                                                    */

/* A signal given as a number or a name (with or without "SIG"). Returns -1 if unknown. */
static int parse_signal(const char *s) {
    char *end;
    long n = strtol(s, &end, 10);
    if (end != s && *end == '\0') return n >= 0 && n <= POPCORN_SIGMAX ? (int)n : -1;
    return popcorn_signal_number(s);
}

/* A PID argument; returns 0 and sets *pid, or -1 if s is not an integer. */
static int parse_pid(const char *s, int *pid) {
    char *end;
    long n = strtol(s, &end, 10);
    if (end == s || *end != '\0') return -1;
    *pid = (int)n;
    return 0;
}

static int builtin_kill(char **argv) {
    int sig = POPCORN_SIGTERM, i = 1, status = 0;
    if (argv[1] != NULL && argv[1][0] == '-' && argv[1][1] != '\0') {
        sig = parse_signal(argv[1] + 1);
        if (sig < 0) {
            fprintf(stderr, "sh: kill: %s: invalid signal\n", argv[1] + 1);
            return 2;
        }
        i = 2;
    }
    if (argv[i] == NULL) {
        fputs("usage: kill [-SIGNAL] PID...\n", stderr);
        return 2;
    }
    for (; argv[i] != NULL; i++) {
        int pid;
        if (parse_pid(argv[i], &pid) < 0) {
            fprintf(stderr, "sh: kill: %s: arguments must be process IDs\n", argv[i]);
            status = 1;
        } else if (popcorn_kill(pid, sig) < 0) {
            fprintf(stderr, "sh: kill: %d: %s\n", pid, strerror(errno));
            status = 1;
        }
    }
    return status;
}

/* Collect every background job that has ended, without blocking. */
static void reap_jobs(void) {
    for (int i = 0; i < njobs; i++) {
        int ws;
        if (!jobs[i].done && popcorn_wait(jobs[i].pid, &ws, POPCORN_WNOHANG) == jobs[i].pid) {
            jobs[i].done = 1;
            jobs[i].status = shell_status(ws);
        }
    }
}

/* Wait for (or look up) one child; returns its shell-style status, 127 if it is not a child. */
static int wait_one(int pid) {
    for (int i = 0; i < njobs; i++) {
        if (jobs[i].pid != pid) continue;
        int ws, status = jobs[i].status;
        if (!jobs[i].done) status = popcorn_wait(pid, &ws, 0) == pid ? shell_status(ws) : 127;
        jobs[i] = jobs[--njobs]; /* a status is reported once, then forgotten */
        return status;
    }
    fprintf(stderr, "sh: wait: pid %d is not a child of this shell\n", pid);
    return 127;
}

static int builtin_wait(char **argv) {
    if (argv[1] == NULL) {
        for (int i = 0; i < njobs; i++) {
            int ws;
            if (!jobs[i].done) popcorn_wait(jobs[i].pid, &ws, 0);
        }
        njobs = 0;
        return 0;
    }
    int status = 0;
    for (int i = 1; argv[i] != NULL; i++) {
        int pid;
        if (parse_pid(argv[i], &pid) < 0) {
            fprintf(stderr, "sh: wait: %s: not a pid\n", argv[i]);
            status = 2;
        } else {
            status = wait_one(pid);
        }
    }
    return status;
}

static int builtin_exit(char **argv) {
    int status = last_status;
    if (argv[1] != NULL) {
        char *end;
        long n = strtol(argv[1], &end, 10);
        if (end == argv[1] || *end != '\0') {
            fprintf(stderr, "sh: exit: %s: numeric argument required\n", argv[1]);
            exit(2);
        }
        status = (int)(n & 0xff);
    }
    exit(status);
}

static int is_builtin(const char *name) {
    return strcmp(name, "wait") == 0 || strcmp(name, "kill") == 0 || strcmp(name, "exit") == 0;
}

static int run_builtin(const struct pipeline *pl) {
    const struct command *c = &pl->cmds[0];
    char **argv = c->argv.v;
    if (pl->n > 1 || pl->background || c->nredirs > 0) {
        fprintf(stderr, "sh: %s: builtins cannot be piped, redirected or sent to the background\n",
                argv[0]);
        return 2;
    }
    if (strcmp(argv[0], "wait") == 0) return builtin_wait(argv);
    if (strcmp(argv[0], "kill") == 0) return builtin_kill(argv);
    return builtin_exit(argv);
}

/* ------------------------------------------------------------------------------------------ */
/* Running pipelines                                                                           */

/*
 * Apply c's redirections to fds[0..2] (the shell fds the child's 0-2 get), opening files into
 * opened[] (the caller closes them). Returns 0, or 1 if a file could not be opened.
 */
static int apply_redirs(const struct command *c, int fds[3], int opened[], int *nopened) {
    for (int i = 0; i < c->nredirs; i++) {
        const struct redir *r = &c->redirs[i];
        if (r->mode == R_DUP_OUT) {
            fds[2] = fds[1];
            continue;
        }
        int flags = r->mode == R_IN       ? O_RDONLY
                    : r->mode == R_APPEND ? O_WRONLY | O_CREAT | O_APPEND
                                          : O_WRONLY | O_CREAT | O_TRUNC;
        int fd = open(r->path, flags, 0666);
        if (fd < 0) {
            fprintf(stderr, "sh: %s: %s\n", r->path, strerror(errno));
            return 1;
        }
        opened[(*nopened)++] = fd;
        fds[r->fd] = fd;
    }
    return 0;
}

/* Spawn c with fds[0..2]; returns the PID, or -1 with *status set (the error already reported). */
static int spawn_command(const struct command *c, const int fds[3], int kernel, int *status) {
    int count = popcorn_kernel_count();
    if (kernel >= count) {
        fprintf(stderr, "sh: @%d: no such kernel (kernels 0-%d)\n", kernel, count - 1);
        *status = 2;
        return -1;
    }
    char *path = find_program(c->argv.v[0]);
    if (path == NULL) {
        fprintf(stderr, "sh: %s: not found\n", c->argv.v[0]);
        *status = 127;
        return -1;
    }
    /* Only the fds that differ from the default (the shell's own 0-2) are mapped, so a closed
     * shell fd that the child does not use anyway is not an error. */
    struct popcorn_fd_map map[3];
    int nmap = 0;
    for (int fd = 0; fd < 3; fd++)
        if (fds[fd] != fd) map[nmap++] = (struct popcorn_fd_map){fd, fds[fd]};
    int pid = popcorn_spawn(path, c->argv.v, NULL, map, nmap, kernel);
    if (pid < 0) {
        int err = errno;
        fprintf(stderr, "sh: %s: %s\n", c->argv.v[0], err == ENOENT ? "not found" : strerror(err));
        *status = err == ENOENT ? 127 : 126;
    }
    free(path);
    return pid;
}

/*
 * Start one stage of a pipeline with stdin in_fd and stdout out_fd (-1: the shell's own).
 * Returns the PID, or -1 with *status set.
 */
static int start_stage(const struct command *c, int in_fd, int out_fd, int kernel, int *status) {
    int fds[3] = {in_fd >= 0 ? in_fd : 0, out_fd >= 0 ? out_fd : 1, 2};
    int opened[16], nopened = 0;
    int pid = -1;
    if (c->nredirs > (int)(sizeof opened / sizeof opened[0])) {
        fputs("sh: too many redirections\n", stderr);
        *status = 2;
    } else if ((*status = apply_redirs(c, fds, opened, &nopened)) == 0) {
        if (c->argv.n > 0) pid = spawn_command(c, fds, kernel, status);
    }
    for (int i = 0; i < nopened; i++) close(opened[i]);
    return pid;
}

/* Remember the PIDs of a background job; prints "[PID]" of its last stage. */
static void add_job(const int *pids, int n) {
    reap_jobs();
    if (njobs + n > MAX_JOBS) { /* full: forget the finished jobs nobody asked about */
        int keep = 0;
        for (int i = 0; i < njobs; i++)
            if (!jobs[i].done) jobs[keep++] = jobs[i];
        njobs = keep;
    }
    for (int i = 0; i < n; i++) {
        if (pids[i] <= 0) continue;
        if (njobs == MAX_JOBS) {
            fprintf(stderr, "sh: too many background jobs; %d will not be waited for\n", pids[i]);
            continue;
        }
        jobs[njobs++] = (struct job){pids[i], 0, 0};
    }
    if (pids[n - 1] > 0) {
        fprintf(stderr, "[%d]\n", pids[n - 1]);
        last_background_pid = pids[n - 1];
    }
}

/* Wait for every started stage; returns the status of the last stage. */
static int wait_stages(const int *pids, int *statuses, int n) {
    for (int i = 0; i < n; i++) {
        int ws;
        if (pids[i] > 0) statuses[i] = popcorn_wait(pids[i], &ws, 0) == pids[i] ? shell_status(ws) : 127;
    }
    return statuses[n - 1];
}

/*
 * Run a pipeline of external programs. Each pipe is made just before the stage that writes it,
 * and the shell closes its copies of both ends as soon as the two stages that use them exist.
 */
static int run_programs(const struct pipeline *pl) {
    int *pids = calloc((size_t)pl->n, sizeof *pids);
    int *statuses = calloc((size_t)pl->n, sizeof *statuses);
    if (pids == NULL || statuses == NULL) {
        fputs("sh: out of memory\n", stderr);
        exit(2);
    }
    int base = popcorn_kernel_id(), count = popcorn_kernel_count();
    int in_fd = -1, n = pl->n;
    for (int i = 0; i < pl->n; i++) {
        int p[2] = {-1, -1};
        if (i < pl->n - 1 && popcorn_pipe(p) < 0) {
            fprintf(stderr, "sh: pipe: %s\n", strerror(errno));
            statuses[i] = 1;
            n = i + 1; /* start no more stages; the ones running see EOF or EPIPE */
        }
        const struct command *c = &pl->cmds[i];
        int kernel = c->kernel >= 0 ? c->kernel : (base + i) % count;
        if (statuses[i] == 0) pids[i] = start_stage(c, in_fd, p[1], kernel, &statuses[i]);
        if (in_fd >= 0) close(in_fd);
        if (p[1] >= 0) close(p[1]);
        in_fd = p[0];
        if (n == i + 1) break;
    }
    if (in_fd >= 0) close(in_fd);
    int status = 0;
    if (pl->background) add_job(pids, n);
    else status = wait_stages(pids, statuses, n);
    free(pids);
    free(statuses);
    return status;
}

static int run_pipeline(const struct pipeline *pl) {
    const struct command *c = &pl->cmds[0];
    if (c->argv.n > 0 && is_builtin(c->argv.v[0])) return run_builtin(pl);
    return run_programs(pl);
}

/* Run every command of one line (or of a whole -c string). */
static void run_line(const char *line) {
    struct lexer lx = {line};
    for (;;) {
        struct pipeline pl = {0};
        int r = parse_pipeline(&lx, &pl);
        if (r == 1) last_status = run_pipeline(&pl);
        pipeline_free(&pl);
        if (r == -1) return;
        if (r == -2) {
            last_status = 2;
            return; /* the rest of the line is not run */
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Input                                                                                       */

/* Lines from an fd. For stdin the shell reads one byte at a time so that it never takes input
 * meant for the programs it starts (they read the same stdin after the command line). */
struct reader {
    int fd;
    size_t chunk;
    char buf[4096];
    size_t pos, len;
};

/* Read one line (without its '\n') into line. Returns 1, or 0 at end of input. */
static int read_line(struct reader *r, struct str *line) {
    line->len = 0;
    str_adds(line, "");
    for (;;) {
        if (r->pos == r->len) {
            ssize_t n = read(r->fd, r->buf, r->chunk);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) fprintf(stderr, "sh: read: %s\n", strerror(errno));
            if (n <= 0) return line->len > 0;
            r->pos = 0;
            r->len = (size_t)n;
        }
        char c = r->buf[r->pos++];
        if (c == '\n') return 1;
        str_addc(line, c);
    }
}

static void run_fd(int fd, int interactive) {
    struct reader r = {.fd = fd, .chunk = fd == 0 ? 1 : sizeof r.buf};
    struct str line = {0};
    for (;;) {
        if (njobs > 0) reap_jobs();
        if (interactive) fputs("$ ", stderr);
        if (!read_line(&r, &line)) break;
        run_line(line.s);
    }
    free(line.s);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-c") == 0) {
        if (argc < 3) {
            fputs("sh: -c: option requires an argument\n", stderr);
            return 2;
        }
        run_line(argv[2]);
    } else if (argc > 1) {
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0) {
            fprintf(stderr, "sh: %s: %s\n", argv[1], strerror(errno));
            return 127;
        }
        run_fd(fd, 0);
        close(fd);
    } else {
        run_fd(0, isatty(0));
    }
    return last_status;
}
