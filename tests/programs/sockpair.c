/* N rounds of a SIZE-byte write into one end of a Unix socketpair and a read of it from
 * the other, in one thread: socket I/O that never waits (an event loop's writes to a
 * socket with room, reads of one with data).  Prints the bytes that came back right.
 * Usage: sockpair N [SIZE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000, size = argc > 2 ? atol(argv[2]) : 64, good = 0;
    int sv[2];
    if (size <= 0 || size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
        perror("sockpair");
        return 1;
    }
    char *out = malloc(size), *in = malloc(size);
    for (long i = 0; i < n; i++) {
        memset(out, 'a' + i % 26, size);
        if (write(sv[0], out, size) != size || read(sv[1], in, size) != size) break;
        good += !memcmp(in, out, size);
    }
    printf("%ld of %ld\n", good, n);
    return good == n ? 0 : 1;
}
