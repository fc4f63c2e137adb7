/* CPU-bound work with no syscalls in the loop: the benchmark's compute row, and a
 * check that guest code runs at native speed (its output is a checksum). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000000;
    uint64_t x = 88172645463325252ULL, sum = 0;
    for (long i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        sum += x % 1000003;
    }
    double d = 0;
    for (long i = 1; i < n / 10; i++) d += 1.0 / ((double)i * i);
    printf("%llu %.12f\n", (unsigned long long)sum, d);
    return 0;
}
