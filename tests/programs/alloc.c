/* Allocates MiB chunks until malloc fails or the count in argv[1] is reached; prints how
 * many it got (for km --memory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    long want = argc > 1 ? atol(argv[1]) : 64, got = 0;
    for (; got < want; got++) {
        char *p = malloc(1 << 20);
        if (!p) break;
        memset(p, 1, 1 << 20);
    }
    printf("%ld\n", got);
    return got == want ? 0 : 1;
}
