/* Timers across a snapshot: `snaptimers FILE MODE` (MODE "exit" or "stay", as in
 * snapshot.c) arms setitimer's three timers, POSIX timers (a signalling one with a value,
 * one aimed at a thread, one that never signals) and a signalfd with a signal pending,
 * snapshots itself (km_snapshot), then checks each: the timer ids still work, armed ones
 * still fire, intervals are kept, the signalfd reads its signal.  Remaining times are not
 * printed (they differ run to run), only whether they are in range.  With a third
 * argument "threadclock", a timer on the thread's CPU time, which a snapshot refuses.  Natively the call
 * fails with ENOSYS, so stdout is the same in every run. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "kontain.h"
#if !defined(sigev_notify_thread_id) && defined(__GLIBC__)
#define sigev_notify_thread_id _sigev_un._tid  /* (older glibc) */
#endif

static volatile sig_atomic_t alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

static int wait_for(const sigset_t *set, siginfo_t *info)
{
    int sig;
    do
        sig = sigwaitinfo(set, info);
    while (sig < 0 && errno == EINTR);  /* (SIGALRM's handler ran) */
    return sig;
}

static long ms(struct timespec t) { return t.tv_sec * 1000 + t.tv_nsec / 1000000; }
static long tv_ms(struct timeval t) { return t.tv_sec * 1000 + t.tv_usec / 1000; }

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : NULL;
    int leave = argc > 2 && strcmp(argv[2], "exit") == 0;
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGUSR2);
    sigaddset(&m, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &m, NULL);
    /* setitimer: REAL fires in 300 ms, then every 100 ms; VIRTUAL and PROF far away */
    struct itimerval real = {{0, 100000}, {0, 300000}}, far = {{7, 0}, {50, 0}}, far2 = {{9, 0}, {60, 0}};
    setitimer(ITIMER_REAL, &real, NULL);
    setitimer(ITIMER_VIRTUAL, &far, NULL);
    setitimer(ITIMER_PROF, &far2, NULL);
    /* POSIX timers */
    timer_t sig_timer, thread_timer, quiet_timer, idle_timer;
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1, .sigev_value.sival_int = 4242};
    timer_create(CLOCK_MONOTONIC, &ev, &sig_timer);
    struct sigevent tev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGRTMIN, .sigev_value.sival_int = 77};
    tev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
    timer_create(CLOCK_REALTIME, &tev, &thread_timer);
    struct sigevent nev = {.sigev_notify = SIGEV_NONE};
    timer_create(CLOCK_MONOTONIC, &nev, &quiet_timer);
    timer_create(CLOCK_BOOTTIME, &nev, &idle_timer);  /* never armed */
    timer_t cpu_timer;  /* `snaptimers FILE stay threadclock`: a snapshot refuses it */
    if (argc > 3 && strcmp(argv[3], "threadclock") == 0 && timer_create(CLOCK_THREAD_CPUTIME_ID, &nev, &cpu_timer))
        return 3;
    struct itimerspec in400 = {{0, 50000000}, {0, 400000000}}, in200 = {{0, 0}, {0, 200000000}},
                      in100s = {{3, 0}, {100, 0}};
    timer_settime(sig_timer, 0, &in400, NULL);
    timer_settime(thread_timer, 0, &in200, NULL);
    timer_settime(quiet_timer, 0, &in100s, NULL);
    /* signalfd for SIGUSR2, one pending */
    int sfd = signalfd(-1, &m, SFD_NONBLOCK);
    raise(SIGUSR2);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    printf("before: alarms %d\n", (int)alarms);
    if (path) {
        long r = km_snapshot(path, leave ? KM_SNAPSHOT_EXIT : 0);
        fprintf(stderr, "snapshot call: %ld\n", r);
    }
    struct itimerval it;
    getitimer(ITIMER_VIRTUAL, &it);
    printf("virtual: interval %ld, value in range %d\n", tv_ms(it.it_interval),
           tv_ms(it.it_value) > 40000 && tv_ms(it.it_value) <= 51000);
    getitimer(ITIMER_PROF, &it);
    printf("prof: interval %ld, value in range %d\n", tv_ms(it.it_interval),
           tv_ms(it.it_value) > 50000 && tv_ms(it.it_value) <= 61000);
    getitimer(ITIMER_REAL, &it);
    printf("real: interval %ld, armed %d\n", tv_ms(it.it_interval), it.it_value.tv_sec || it.it_value.tv_usec);
    struct itimerspec ts;
    printf("quiet timer: %d", timer_gettime(quiet_timer, &ts));
    printf(" interval %ld, value in range %d\n", ms(ts.it_interval), ms(ts.it_value) > 90000 && ms(ts.it_value) <= 100000);
    printf("idle timer: %d", timer_gettime(idle_timer, &ts));
    printf(" armed %d\n", ts.it_value.tv_sec || ts.it_value.tv_nsec);
    struct pollfd pfd = {.fd = sfd, .events = POLLIN};
    printf("signalfd readable: %d\n", poll(&pfd, 1, 0));
    struct signalfd_siginfo si;
    printf("signalfd: %zd", read(sfd, &si, sizeof si));
    printf(" signal %s\n", si.ssi_signo == SIGUSR2 ? "SIGUSR2" : "other");
    /* the armed timers fire */
    siginfo_t info;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    for (int i = 0; i < 3; i++) {
        int sig = wait_for(&usr1, &info);
        printf("signal timer: %s value %d id ok %d\n", sig == SIGUSR1 ? "SIGUSR1" : "other", info.si_value.sival_int,
               info.si_timerid == (int)(long)sig_timer);
    }
    timer_delete(sig_timer);
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    int sig = wait_for(&rt, &info);
    printf("thread timer: %s value %d\n", sig == SIGRTMIN ? "SIGRTMIN" : "other", info.si_value.sival_int);
    while (alarms < 4)
        pause();
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("alarms: at least 4\n");
    raise(SIGUSR2);
    printf("signalfd again: %zd\n", read(sfd, &si, sizeof si));
    timer_t later;
    printf("a new timer: %d\n", timer_create(CLOCK_MONOTONIC, &nev, &later));
    return 0;
}
