/* Signal behaviours third-party suites (LTP, Go, busybox) found different under km,
 * one mode per behaviour: `sigcases MODE`.  Every mode prints the same thing and ends
 * the same way natively and under km, whatever the machine's load: nothing here
 * depends on timing (a signal that must interrupt a call is sent until the call
 * reports it, never once after a sleep). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t caught[65];
static void count(int sig) { caught[sig]++; }

static void on(int sig, void (*h)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

static void block(int how, int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(how, &s, NULL);
}

/* -- 1: a thread other than the main one dies of a signal ------------------------- */
static void *null_deref(void *arg) {
    (void)arg;
    *(volatile int *)0 = 1;
    return NULL;
}

static void *aborts(void *arg) {
    (void)arg;
    abort();
}

static int thread_death(void *(*fn)(void *)) {
    pthread_t t;
    printf("before the thread\n");
    fflush(stdout);
    pthread_create(&t, NULL, fn, NULL);
    pthread_join(t, NULL);
    printf("not reached\n");
    return 0;
}

/* -- 2: SA_RESETHAND resets the handler only, the flags stay ----------------------- */
static void with_info(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    caught[sig] = si->si_signo == sig;
}

static int resethand(void) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = with_info;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_RESTART;
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    sigaction(SIGUSR1, NULL, &old);
    printf("handler ran with its siginfo: %d\n", caught[SIGUSR1]);
    printf("handler now SIG_DFL: %d\n", old.sa_handler == SIG_DFL);
    printf("SA_SIGINFO %d SA_RESETHAND %d SA_RESTART %d mask kept %d\n", !!(old.sa_flags & SA_SIGINFO),
           !!(old.sa_flags & SA_RESETHAND), !!(old.sa_flags & SA_RESTART), sigismember(&old.sa_mask, SIGUSR2));
    return 0;
}

struct mode {
    const char *name;
    int (*run)(void);
};

static int thread_segv(void) { return thread_death(null_deref); }
static int thread_abort(void) { return thread_death(aborts); }

static const struct mode modes[] = {
    {"thread-segv", thread_segv},
    {"thread-abort", thread_abort},
    {"resethand", resethand},
};

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; argc > 1 && i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(argv[1], modes[i].name))
            return modes[i].run();
    fprintf(stderr, "usage: sigcases MODE\n");
    return 2;
}
