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

/* -- 3: every catchable signal sent by another process, held, then released one by
 * one (LTP's sighold/sigrelse): SIGILL, SIGSEGV, SIGBUS, SIGFPE, SIGTRAP included (not the
 * stop signals and SIGCONT, which discard each other when sent).
 * Signal 64 is km's own, 32-34 the C libraries'. */
static int held_sig(int sig) {
    return sig != SIGKILL && sig != SIGSTOP && sig != SIGCONT && sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU &&
           (sig < 32 || (sig > 34 && sig < 64));
}

static int held_from_parent(void) {
    int ready[2], sent[2];
    pipe(ready);
    pipe(sent);
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t all, pending;
        sigemptyset(&all);
        for (int sig = 1; sig < 64; sig++)
            if (held_sig(sig)) {
                on(sig, count, 0);
                sigaddset(&all, sig);
            }
        sigprocmask(SIG_BLOCK, &all, NULL);
        write(ready[1], "r", 1);
        char c;
        read(sent[0], &c, 1);
        int missing;
        do {  /* kill() has returned in the parent: every signal is pending (km: soon) */
            sigpending(&pending);
            missing = 0;
            for (int sig = 1; sig < 64; sig++)
                missing += held_sig(sig) && !sigismember(&pending, sig);
            if (missing)
                sched_yield();
        } while (missing);
        int early = 0, wrong = 0;
        for (int sig = 1; sig < 64; sig++)
            early += caught[sig];
        for (int sig = 1; sig < 64; sig++)
            if (held_sig(sig)) {
                sigset_t one;
                sigemptyset(&one);
                sigaddset(&one, sig);
                sigprocmask(SIG_UNBLOCK, &one, NULL);  /* the handler runs on the way out */
                if (caught[sig] != 1) {
                    printf("signal %d caught %d times\n", sig, caught[sig]);
                    wrong++;
                }
            }
        printf("child: caught while held %d, wrong counts %d\n", early, wrong);
        _exit(0);
    }
    char c;
    read(ready[0], &c, 1);
    for (int sig = 1; sig < 64; sig++)
        if (held_sig(sig))
            kill(pid, sig);
    write(sent[1], "s", 1);
    int status;
    waitpid(pid, &status, 0);
    printf("parent: child exited %d signalled %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
           WIFSIGNALED(status) ? WTERMSIG(status) : 0);
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
    {"held-from-parent", held_from_parent},
};

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; argc > 1 && i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(argv[1], modes[i].name))
            return modes[i].run();
    fprintf(stderr, "usage: sigcases MODE\n");
    return 2;
}
