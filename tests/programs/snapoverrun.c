/* A POSIX timer's pending signal across a snapshot: a 2 ms timer whose signal is blocked
 * expires ~30 times before the snapshot; when the resumed run takes the signal, its
 * si_overrun counts those expirations too (km leaves a pending timer's next signals on
 * the host, which counts them: a resume has no such count unless the snapshot kept it).
 * Usage: snapoverrun [SNAPSHOT [exit|stay]]; natively the snapshot call is ENOSYS. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "kontain.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : NULL;
    int leave = argc > 2 && strcmp(argv[2], "exit") == 0;
    int sig = SIGRTMIN + 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = sig};
    timer_t t;
    timer_create(CLOCK_MONOTONIC, &ev, &t);
    struct itimerspec its = {{0, 2000000}, {0, 2000000}};
    double start = now_ms();
    timer_settime(t, 0, &its, NULL);
    struct timespec pause = {0, 60000000};
    while (nanosleep(&pause, &pause) != 0) {
    }
    double before = now_ms();  /* expirations until here: at least (before - start) / 2 - 1 */
    long r = km_snapshot(path, leave ? KM_SNAPSHOT_EXIT : 0);
    fprintf(stderr, "snapshot call: %ld\n", r);
    siginfo_t info;
    struct timespec zero = {0, 0};
    int got = sigtimedwait(&set, &info, &zero);
    long least = (long)((before - start) / 2) - 1;
    printf("signal: %s; its overruns count the expirations before the snapshot: %s\n", got == sig ? "yes" : "no",
           info.si_overrun + 1 >= least ? "yes" : "no");
    if (info.si_overrun + 1 < least)
        fprintf(stderr, "overrun %d, at least %ld expected\n", info.si_overrun, least - 1);
    return 0;
}
