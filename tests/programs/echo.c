/* A loopback TCP echo: a server thread echoes what a client in the main thread sends,
 * N messages of SIZE bytes, one round trip each; with "pipes", through two pipes
 * instead of a connection.  Usage: echo N [SIZE [pipes]] */
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
static int listener, pipes, to_server[2], to_client[2];

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
    int in = pipes ? to_server[0] : accept(listener, NULL, NULL), out = pipes ? to_client[1] : in;
    char *buf = malloc(size);
    for (long i = 0; i < n; i++)
        if (full(in, buf, size, 0) || full(out, buf, size, 1)) break;
    close(in);
    if (out != in) close(out);
    return NULL;
}

int main(int argc, char **argv) {
    n = argc > 1 ? atol(argv[1]) : 10000;
    size = argc > 2 ? atol(argv[2]) : 64;
    pipes = argc > 3 && !strcmp(argv[3], "pipes");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    pthread_t t;
    int c = -1, in, out, one = 1;
    if (pipes) {
        if (pipe(to_server) || pipe(to_client)) {
            perror("echo: pipe");
            return 1;
        }
        in = to_client[0];
        out = to_server[1];
        pthread_create(&t, NULL, serve, NULL);
    } else {
        listener = socket(AF_INET, SOCK_STREAM, 0);
        if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) || listen(listener, 1) ||
            getsockname(listener, (struct sockaddr *)&a, &alen)) {
            perror("echo: listen");
            return 1;
        }
        pthread_create(&t, NULL, serve, NULL);
        c = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c, (struct sockaddr *)&a, sizeof a)) {
            perror("echo: connect");
            return 1;
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        in = out = c;
    }
    char *msg = malloc(size), *back = malloc(size);
    long good = 0;
    for (long i = 0; i < n; i++) {
        memset(msg, 'a' + i % 26, size);
        if (full(out, msg, size, 1) || full(in, back, size, 0)) break;
        good += !memcmp(back, msg, size);
    }
    pthread_join(t, NULL);
    printf("%ld of %ld echoed\n", good, n);
    return good == n ? 0 : 1;
}
