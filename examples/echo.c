/*
 * echo.c — write the arguments, separated by single spaces, and a newline.
 *
 *   echo [-n] [ARG...]  -n (only as the first argument) leaves out the newline
 *
 * Nothing else is interpreted: no other options, no backslash escapes. Exits 0, or 1 if the
 * output could not be written (e.g. EPIPE when SIGPIPE is ignored).
 *
 * Used by: sh (echo is not a builtin there), pipeline and redirection tests.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    int newline = 1, i = 1;
    if (argc > 1 && strcmp(argv[1], "-n") == 0) {
        newline = 0;
        i = 2;
    }
    for (int first = i; i < argc; i++) {
        if (i > first) putchar(' ');
        fputs(argv[i], stdout);
    }
    if (newline) putchar('\n');
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
