/* poll, ppoll, select and pselect on pipes, with and without timeouts. */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/personality.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    int p[2];
    pipe(p);
    struct pollfd fds[3] = { { p[0], POLLIN, 0 }, { p[1], POLLOUT, 0 }, { 1000000, POLLIN, 0 } };
    int r = poll(fds, 3, 0);
    printf("poll empty: %d revents %x %x %x\n", r, fds[0].revents, fds[1].revents, fds[2].revents);
    write(p[1], "x", 1);
    r = poll(fds, 2, 100);
    printf("poll data: %d revents %x %x\n", r, fds[0].revents, fds[1].revents);
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    sigset_t mask; sigemptyset(&mask);
    r = ppoll(fds, 1, &ts, &mask);
    printf("ppoll: %d revents %x\n", r, fds[0].revents);
    fd_set rs, ws; FD_ZERO(&rs); FD_ZERO(&ws); FD_SET(p[0], &rs); FD_SET(p[1], &ws);
    struct timeval tv = { 0, 1000 };
    r = select(p[1] + 1, &rs, &ws, NULL, &tv);
    printf("select: %d read %d write %d\n", r, FD_ISSET(p[0], &rs), FD_ISSET(p[1], &ws));
    char c; read(p[0], &c, 1);
    FD_ZERO(&rs); FD_SET(p[0], &rs);
    struct timespec t2 = { 0, 20 * 1000 * 1000 };
    r = pselect(p[0] + 1, &rs, NULL, NULL, &t2, &mask);
    printf("pselect timeout: %d\n", r);
    fds[0].revents = 0;
    r = poll(fds, 1, 30);
    printf("poll timeout: %d\n", r);
    close(p[1]);
    r = poll(fds, 1, 0);
    printf("poll hangup: %d revents %x\n", r, fds[0].revents);

    /* the time left is written back, except under personality STICKY_TIMEOUTS (LTP's
     * personality02); raw pselect6 and ppoll: the C library may pass a copy */
    int q[2];
    pipe(q);
    for (int sticky = 0; sticky < 2; sticky++) {
        personality(PER_LINUX | (sticky ? STICKY_TIMEOUTS : 0));
        struct timeval stv = {0, 10000};
        FD_ZERO(&rs); FD_SET(q[0], &rs);
        r = select(q[0] + 1, &rs, NULL, NULL, &stv);
        printf("sticky %d: select %d, timeout left %ld.%06ld\n", sticky, r, (long)stv.tv_sec, (long)stv.tv_usec);
        struct timespec sts = {0, 10000000};
        FD_ZERO(&rs); FD_SET(q[0], &rs);
        r = syscall(SYS_pselect6, q[0] + 1, &rs, NULL, NULL, &sts, NULL);
        printf("sticky %d: pselect6 %d, timeout left %ld.%09ld\n", sticky, r, (long)sts.tv_sec, sts.tv_nsec);
        struct pollfd qf = {q[0], POLLIN, 0};
        sts.tv_sec = 0; sts.tv_nsec = 10000000;
        r = syscall(SYS_ppoll, &qf, 1, &sts, NULL, 8);
        printf("sticky %d: ppoll %d, timeout left %ld.%09ld\n", sticky, r, (long)sts.tv_sec, sts.tv_nsec);
    }
    personality(PER_LINUX);
    return 0;
}
