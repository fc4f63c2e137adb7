/* chroot(2) into an empty directory, then use what km imports at first use (sockets,
 * epoll, signalfd, timers, fork and wait): km's chroot moves the monitor's root too, so
 * it must have imported all of it before (kontain/lazy.py). */
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2 || chroot(argv[1]) != 0 || chdir("/") != 0) {
        perror("chroot");
        return 2;
    }
    int sv[2];
    printf("socketpair %d\n", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    printf("send %zd\n", send(sv[0], "ping", 4, 0));
    char buf[8];
    printf("recv %zd\n", recv(sv[1], buf, sizeof buf, 0));
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = sv[1]};
    printf("epoll %d %d\n", ep >= 0, epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev));
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, NULL);
    printf("signalfd %d\n", signalfd(-1, &m, 0) >= 0);
    struct timespec ts = {0, 1000};
    printf("nanosleep %d\n", nanosleep(&ts, NULL));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(7);
    int status = 0;
    int waited = waitpid(pid, &status, 0) == pid;
    printf("waitpid %d status %d\n", waited, WEXITSTATUS(status));
    printf("getcwd %s\n", getcwd(buf, sizeof buf));
    return 0;
}
