/*
 * echo_stdin.c — echo stdin line by line, each line prefixed by "> ".
 *
 *   echo_stdin          reads until EOF, then exits 0
 *
 * Every line is written as "> LINE\n" and stdout is flushed right away, so a
 * test can write a line and wait for its echo (interactive / pipe tests). A
 * last line without a trailing newline is echoed with one added. Lines may be
 * of any length.
 *
 * Used by: terminal and pipe tests (stdin delivery, blocking reads that park
 * the process, EOF handling).
 */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n') line[len - 1] = '\0';
        printf("> %s\n", line);
        fflush(stdout);
    }
    free(line);
    return 0;
}
