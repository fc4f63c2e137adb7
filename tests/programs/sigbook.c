/* The bookkeeping half of signals: sigaction round trips, masks, sigaltstack, and
 * what a signal sent to oneself does with its default or ignored disposition. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void handler(int sig) { (void)sig; }

int main(int argc, char **argv) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigaddset(&sa.sa_mask, SIGUSR2);
    printf("sigaction set: %d\n", sigaction(SIGUSR1, &sa, NULL));
    printf("sigaction get: %d\n", sigaction(SIGUSR1, NULL, &old));
    printf("handler kept: %d flags kept: %d mask kept: %d\n", old.sa_handler == handler,
           (old.sa_flags & SA_RESTART) != 0, sigismember(&old.sa_mask, SIGUSR2));
    printf("SIGKILL: %d\n", sigaction(SIGKILL, &sa, NULL));
    sigset_t set, cur;
    sigemptyset(&set); sigaddset(&set, SIGINT); sigaddset(&set, SIGKILL);
    printf("block: %d\n", sigprocmask(SIG_BLOCK, &set, NULL));
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("SIGINT blocked: %d SIGKILL blocked: %d\n", sigismember(&cur, SIGINT), sigismember(&cur, SIGKILL));
    printf("unblock: %d\n", sigprocmask(SIG_UNBLOCK, &set, &cur));
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("SIGINT blocked: %d\n", sigismember(&cur, SIGINT));
    stack_t ss = { .ss_sp = malloc(SIGSTKSZ), .ss_size = SIGSTKSZ, .ss_flags = 0 }, oss;
    printf("sigaltstack: %d\n", sigaltstack(&ss, NULL));
    printf("sigaltstack get: %d size kept: %d\n", sigaltstack(NULL, &oss), oss.ss_size == SIGSTKSZ);
    ss.ss_size = 100;
    printf("sigaltstack too small: %d\n", sigaltstack(&ss, NULL));
    signal(SIGUSR2, SIG_IGN);
    printf("raise ignored SIGUSR2: %d\n", raise(SIGUSR2));
    sigemptyset(&set); sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    printf("still here\n");
    fflush(stdout);
    if (argc > 1) {
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        kill(getpid(), SIGTERM);  /* default action: the program dies of SIGTERM */
        printf("not reached\n");
    }
    return 0;
}
