/* poll, ppoll, select and pselect on pipes, with and without timeouts. */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/select.h>
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
    return 0;
}
