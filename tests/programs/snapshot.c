/* Snapshotted mid-work: `snapshot FILE MODE` computes ten steps, printing each, and
 * snapshots itself after the fifth (km_snapshot, kontain.h).  MODE "exit": the
 * original run ends there and a resumed run finishes the work; "stay": both go on.
 * Natively the call fails with ENOSYS and the program just goes on, so stdout is the
 * same in every case: what an uninterrupted run prints.  Kept across the snapshot: FPU
 * and SSE registers (live doubles), a file's offset, a pipe's queued bytes, a signal
 * handler and mask, cwd, umask, brk and a big heap, an mmap'd file. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include "kontain.h"

static volatile sig_atomic_t got;
static void on_usr1(int sig) { got = sig; }

static double work(int step, double x)
{
    for (int i = 0; i < 200000; i++)
        x = x * 1.0000001 + (double)(i % (step + 3)) * 1e-9;
    return x;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : NULL;
    int leave = argc > 2 && strcmp(argv[2], "exit") == 0;
    /* `snapshot FILE stay socket`: a socket open, which a snapshot refuses */
    int sock = argc > 3 && strcmp(argv[3], "socket") == 0 ? socket(AF_INET, SOCK_STREAM, 0) : -1;
    /* `snapshot FILE stay mqueue`: a POSIX message queue open (its name removed at once) */
    if (argc > 3 && strcmp(argv[3], "mqueue") == 0) {
        char qname[64];
        snprintf(qname, sizeof qname, "/kt-snapshot-%d", (int)getpid());
        sock = mq_open(qname, O_RDWR | O_CREAT | O_EXCL, 0600, NULL);
        mq_unlink(qname);
    }
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);  /* unflushed output crosses the snapshot too */
    int fd = open("/etc/passwd", O_RDONLY);
    char head[8];
    if (fd < 0 || read(fd, head, 4) != 4) return 2;
    int p[2];
    if (pipe(p)) return 3;
    if (write(p[1], "queued bytes", 12) != 12) return 4;
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m, NULL);
    umask(027);
    size_t big = 64 << 20;
    unsigned char *heap = malloc(big);
    for (size_t i = 0; i < big; i += 4096) heap[i] = (unsigned char)(i >> 12);
    char *brk0 = (char *)syscall(SYS_brk, 0);  /* (musl's sbrk does not move the break) */
    if ((char *)syscall(SYS_brk, brk0 + 8192) != brk0 + 8192) return 5;
    strcpy(brk0, "on the brk heap");
    int mfd = open("/etc/hostname", O_RDONLY);
    char *mapped = mfd >= 0 ? mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, mfd, 0) : MAP_FAILED;
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);  /* armed across the snapshot */
    struct itimerspec its = {.it_value = {0, 200 * 1000 * 1000}};
    timerfd_settime(tfd, 0, &its, NULL);
    int efd = eventfd(2, 0), ep = epoll_create1(0);  /* an epoll set watching an eventfd */
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x4b4d};
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
    double a = 1.0, b = 2.0;
    for (int step = 0; step < 10; step++) {
        a = work(step, a);
        b = b * 0.5 + a;
        printf("step %d: %.9f %.9f\n", step, a, b);
        if (step == 4 && path) {
            long r = km_snapshot(path, leave ? KM_SNAPSHOT_EXIT : 0);
            fprintf(stderr, "snapshot call: %ld\n", r);
        }
    }
    char rest[8] = {0};
    if (read(fd, rest, 4) != 4) return 6;
    char q[16] = {0};
    if (read(p[0], q, 12) != 12) return 7;
    raise(SIGUSR1);
    sigprocmask(SIG_BLOCK, NULL, &m);
    mode_t um = umask(0);
    unsigned long sum = 0;
    for (size_t i = 0; i < big; i += 4096) sum += heap[i];
    printf("file: %.4s%.4s pipe: %s signal: %d usr2 blocked: %d umask: %03o heap: %lu brk: %s mapped: %d\n",
           head, rest, q, (int)got, sigismember(&m, SIGUSR2), (unsigned)um, sum, brk0,
           mapped != MAP_FAILED && mapped[0] != 0);
    unsigned long long ticks = 0, count = 0;
    struct epoll_event got_ev = {0};
    int n = epoll_wait(ep, &got_ev, 1, 1000);
    if (read(efd, &count, 8) != 8 || read(tfd, &ticks, 8) != 8) return 8;
    printf("epoll: %d %llx eventfd: %llu timerfd: %s\n", n, (unsigned long long)got_ev.data.u64, count,
           ticks >= 1 ? "fired" : "not");
    if (sock >= 0) close(sock);
    return 0;
}
