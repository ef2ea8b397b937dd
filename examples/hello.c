/*
 * hello.c — the smallest popcorn program.
 *
 * Prints "Hello from popcorn!" on one line. If it is given arguments, it
 * prints them on a second line, separated by single spaces.
 *
 *   hello            ->  Hello from popcorn!
 *   hello a b c      ->  Hello from popcorn!\na b c
 *
 * Used by: smoke tests (load, run, stdout capture, argv passing), docs.
 */
#include <stdio.h>

int main(int argc, char **argv) {
    puts("Hello from popcorn!");
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            if (i > 1) putchar(' ');
            fputs(argv[i], stdout);
        }
        putchar('\n');
    }
    return 0;
}
