/* A program under a fast interval timer whose signal it blocks, making calls
 * meanwhile: bench/bench.py's "blocked fast timers" row.
 *
 *   fastalarm ROUNDS   a 1 ns POSIX timer (SIGRTMIN) and a 1 us setitimer (SIGALRM), both
 *                      blocked; ROUNDS rounds of sigpending, mmap, munmap and sigprocmask;
 *                      prints what was pending and exits 0.
 *   fastalarm wait     the same timers, then "ready" and calls until a signal ends it.
 *
 * On Linux the timers cost nothing while their signals wait: a pending signal takes later
 * expirations as overruns (POSIX) or is merged with them (setitimer's standard signal). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int forever = argc > 1 && !strcmp(argv[1], "wait");
    int rounds = argc > 1 && !forever ? atoi(argv[1]) : 3000;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    sigaddset(&set, SIGALRM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN;
    timer_t t;
    if (timer_create(CLOCK_MONOTONIC, &ev, &t) != 0) return 1;
    struct itimerspec its = {{0, 1}, {0, 1}};
    timer_settime(t, 0, &its, NULL);
    struct itimerval it = {{0, 1}, {0, 1}};
    setitimer(ITIMER_REAL, &it, NULL);
    if (forever) {
        printf("ready\n");
        fflush(stdout);
        for (;;) getppid();
    }
    int both = 0;
    for (int i = 0; i < rounds; i++) {
        sigset_t pending;
        sigpending(&pending);
        both += sigismember(&pending, SIGRTMIN) && sigismember(&pending, SIGALRM);
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(m, 4096);
        sigprocmask(SIG_BLOCK, &set, NULL);
    }
    printf("both pending in %d of %d rounds\n", both, rounds);
    return 0;
}
