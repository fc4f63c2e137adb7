/* Allocates MIB MiB in one malloc and writes every byte: first touch of fresh memory,
 * the benchmark for huge pages (under shadow paging every first touch is a fault).
 * With a second argument, then prints "ready" and sleeps that many seconds (for a look
 * at the process's memory from outside: bench/bench.py --pss). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 64;
    unsigned char *p = malloc(mib << 20);
    if (!p) return 1;
    memset(p, 7, mib << 20);
    unsigned long sum = 0;
    for (long i = 0; i < mib << 20; i += 4096) sum += p[i];
    printf("%lu\n", sum);
    if (argc > 2) {
        printf("ready\n");
        fflush(stdout);
        sleep((unsigned)atoi(argv[2]));
    }
    return sum != 7ul * (mib << 8);
}
