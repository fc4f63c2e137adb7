/* A loopback TCP echo: a server thread echoes what a client in the main thread sends,
 * N messages of SIZE bytes, one round trip each.  Usage: echo N [SIZE] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static long n, size;
static int listener;

static int full(int fd, char *buf, long len, int writing) {
    for (long done = 0; done < len;) {
        long r = writing ? write(fd, buf + done, len - done) : read(fd, buf + done, len - done);
        if (r <= 0) return -1;
        done += r;
    }
    return 0;
}

static void *serve(void *arg) {
    (void)arg;
    int c = accept(listener, NULL, NULL);
    char *buf = malloc(size);
    for (long i = 0; i < n; i++)
        if (full(c, buf, size, 0) || full(c, buf, size, 1)) break;
    close(c);
    return NULL;
}

int main(int argc, char **argv) {
    n = argc > 1 ? atol(argv[1]) : 10000;
    size = argc > 2 ? atol(argv[2]) : 64;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) || listen(listener, 1) ||
        getsockname(listener, (struct sockaddr *)&a, &alen)) {
        perror("echo: listen");
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, serve, NULL);
    int c = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (connect(c, (struct sockaddr *)&a, sizeof a)) {
        perror("echo: connect");
        return 1;
    }
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char *out = malloc(size), *in = malloc(size);
    long good = 0;
    for (long i = 0; i < n; i++) {
        memset(out, 'a' + i % 26, size);
        if (full(c, out, size, 1) || full(c, in, size, 0)) break;
        good += !memcmp(in, out, size);
    }
    pthread_join(t, NULL);
    printf("%ld of %ld echoed\n", good, n);
    return good == n ? 0 : 1;
}
