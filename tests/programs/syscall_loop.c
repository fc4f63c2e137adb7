/* N getppid() calls: the benchmark's cost of one trip into the monitor. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 200000;
    long s = 0;
    for (long i = 0; i < n; i++) s += syscall(SYS_getppid) > 0;
    printf("%ld\n", s);
    return 0;
}
