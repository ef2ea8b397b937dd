/*
 * sleep.c — sleep for a number of milliseconds, then print "slept".
 *
 *   sleep [MS]          default MS = 100; uses nanosleep (WASI poll_oneoff
 *                       with a clock subscription)
 *
 * Used by: scheduler tests (a sleeping process is parked and does not burn
 * CPU; it wakes after roughly MS), signal tests (interrupting a sleep).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    long ms = argc > 1 ? atol(argv[1]) : 100;
    if (ms < 0) ms = 0;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    if (nanosleep(&ts, NULL) != 0) {
        fprintf(stderr, "sleep: nanosleep: %s\n", strerror(errno));
        return 1;
    }
    printf("slept\n");
    return 0;
}
