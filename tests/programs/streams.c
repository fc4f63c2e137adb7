/* N rounds of a SIZE-byte write and a read of it back, in one thread, through a Unix
 * socketpair (the default; "messages": with send and recv, which musl makes as sendto
 * and recvfrom; "vectors": writev and readv, in two parts), a pipe, or /dev/null and
 * /dev/zero ("devices": the read is of zeros):
 * I/O that never waits, as an event loop's writes to a socket with room and reads of one
 * with data.  Prints how many rounds came back right.
 * Usage: streams N [SIZE [socketpair|messages|vectors|pipe|devices]] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000, size = argc > 2 ? atol(argv[2]) : 64, good = 0;
    const char *kind = argc > 3 ? argv[3] : "socketpair";
    int fds[2], devices = !strcmp(kind, "devices"), messages = !strcmp(kind, "messages"), ok;
    int vectors = !strcmp(kind, "vectors");
    if (!strcmp(kind, "pipe"))
        ok = pipe(fds) == 0;
    else if (devices)
        ok = (fds[1] = open("/dev/zero", O_RDONLY)) >= 0 && (fds[0] = open("/dev/null", O_WRONLY)) >= 0;
    else
        ok = socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0;
    if (size <= 0 || size > 65536 || !ok) {
        perror("streams");
        return 1;
    }
    /* (a pipe: fds[1] is written, fds[0] read; the others the other way round) */
    int w = fds[!strcmp(kind, "pipe")], r = fds[!!strcmp(kind, "pipe")];
    char *out = malloc(size), *in = malloc(size);
    struct iovec wv[2] = {{out, size / 2}, {out + size / 2, size - size / 2}};
    struct iovec rv[2] = {{in, size / 3}, {in + size / 3, size - size / 3}};
    for (long i = 0; i < n; i++) {
        memset(out, devices ? 0 : 'a' + i % 26, size);
        if (messages   ? send(w, out, size, 0) != size || recv(r, in, size, 0) != size
            : vectors ? writev(w, wv, 2) != size || readv(r, rv, 2) != size
                      : write(w, out, size) != size || read(r, in, size) != size)
            break;
        good += !memcmp(in, out, size);
    }
    printf("%ld of %ld\n", good, n);
    return good == n ? 0 : 1;
}
