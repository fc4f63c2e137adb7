/* Socketpairs across a snapshot: `snapsock FILE MODE` (MODE "exit" or "stay", as in
 * snapshot.c) fills socketpairs of each type with messages queued both ways, shuts some
 * ends down, closes one pair's other end, snapshots itself (km_snapshot), then reads
 * everything back and prints it.  Natively the call fails with ENOSYS, so stdout is the
 * same in every run: what an uninterrupted run prints. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "kontain.h"

static void drain(const char *name, int fd)
{
    char buf[256];
    printf("%s:", name);
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) {
            printf(" [%s]\n", errno == EAGAIN ? "empty" : strerror(errno));
            return;
        }
        if (n == 0) {
            int type = 0;
            socklen_t len = sizeof type;
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
            if (type == SOCK_DGRAM) {  /* an empty datagram */
                printf(" <>");
                continue;
            }
            printf(" [eof]\n");
            return;
        }
        printf(" <%.*s>", (int)n, buf);
    }
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : NULL;
    int leave = argc > 2 && strcmp(argv[2], "exit") == 0;
    signal(SIGPIPE, SIG_IGN);
    int st[2], dg[2], sp[2], lone[2], half[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) ||
        socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, lone) ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, half))
        return 2;
    send(st[0], "stream one", 10, 0);
    send(st[0], "+two", 4, 0);
    send(st[1], "back", 4, 0);
    send(dg[0], "dgram a", 7, 0);
    send(dg[0], "", 0, 0);
    send(dg[0], "dgram c", 7, 0);
    send(dg[1], "reply", 5, 0);
    send(sp[0], "packet 1", 8, 0);
    send(sp[0], "packet 2", 8, 0);
    send(sp[1], "answer", 6, 0);
    shutdown(sp[0], SHUT_WR);  /* sp[1] reads its packets, then the end */
    send(lone[0], "left behind", 11, 0);
    close(lone[0]);  /* lone[1]'s peer is gone */
    send(half[1], "before shutdown", 15, 0);
    shutdown(half[1], SHUT_RD);  /* half[0] cannot send any more */
    int dup_end = dup(st[1]);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x5150};
    epoll_ctl(ep, EPOLL_CTL_ADD, st[1], &ev);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    printf("before\n");
    if (path) {
        long r = km_snapshot(path, leave ? KM_SNAPSHOT_EXIT : 0);
        fprintf(stderr, "snapshot call: %ld\n", r);
    }
    struct epoll_event got = {0};
    int n = epoll_wait(ep, &got, 1, 1000);
    printf("epoll: %d %llx\n", n, (unsigned long long)got.data.u64);
    drain("stream to 1", dup_end);
    drain("stream to 0", st[0]);
    drain("dgram to 1", dg[1]);
    drain("dgram to 0", dg[0]);
    drain("seqpacket to 1", sp[1]);
    drain("seqpacket to 0", sp[0]);
    printf("seqpacket 0 sends: %s\n", send(sp[0], "x", 1, 0) < 0 ? strerror(errno) : "ok");
    drain("lone", lone[1]);
    printf("lone sends: %s\n", send(lone[1], "x", 1, 0) < 0 ? strerror(errno) : "ok");
    drain("half to 0", half[0]);
    printf("half 0 sends: %s\n", send(half[0], "x", 1, 0) < 0 ? strerror(errno) : "ok");
    printf("half 1 sends: %s\n", send(half[1], "y", 1, 0) < 0 ? strerror(errno) : "ok");
    drain("half to 0 again", half[0]);
    send(st[0], "after", 5, 0);
    drain("stream to 1 after", st[1]);
    return 0;
}
