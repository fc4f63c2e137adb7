/* N rounds of mmap, touch every page, munmap: the mmap churn benchmark. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 2000, pages = argc > 2 ? atol(argv[2]) : 16;
    long sum = 0;
    for (long i = 0; i < n; i++) {
        char *p = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 1;
        for (long j = 0; j < pages; j++) p[j * 4096] = (char)j;
        sum += p[(pages - 1) * 4096];
        munmap(p, pages * 4096);
    }
    printf("%ld\n", sum);
    return 0;
}
