/*
 * whoami.c — print who and where this process is, through popcorn.h.
 *
 *   whoami              prints "pid P ppid Q kernel K of N"
 *
 * Used by: the popcorn ABI test (--on K must show kernel K; N is --kernels).
 */
#include <stdio.h>
#include <popcorn.h>

int main(void) {
    printf("pid %d ppid %d kernel %d of %d\n", popcorn_getpid(), popcorn_getppid(),
           popcorn_kernel_id(), popcorn_kernel_count());
    return 0;
}
