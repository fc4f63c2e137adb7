/* `bigsnap MIB FILE`: fill MIB MiB with data, snapshot to FILE (and end); a resumed run
 * reads all of it (checksum), says so, and waits for its stdin to end: for measuring
 * what a snapshot of a big program costs (bench/snapshot.py).  Prints how long the
 * snapshot call took (the original run) to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "kontain.h"

int main(int argc, char **argv)
{
    size_t size = (size_t)atol(argv[1]) << 20;
    unsigned long *mem = malloc(size);
    for (size_t i = 0; i < size / 8; i++) mem[i] = i * 2654435761u;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    long r = km_snapshot(argv[2], 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (r == 0) {
        fprintf(stderr, "snapshot took %.1f ms\n", (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
        return 0;
    }
    unsigned long sum = 0;
    for (size_t i = 0; i < size / 8; i += 512) sum += mem[i];
    printf("resumed %lu\n", sum);
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) ;
    return 0;
}
