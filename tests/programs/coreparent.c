/* A parent sees whether its child dumped core: WCOREDUMP in wait4's status, CLD_DUMPED
 * in waitid's si_code and in its SIGCHLD's.  Each child ends by a signal whose default
 * action dumps core (or not), under RLIMIT_CORE as given; the cores go to the cwd.
 * Prints one line per child, compared with a native run. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t chld_code, chld_status;

static void on_chld(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)uc;
    chld_code = si->si_code;
    chld_status = si->si_status;
}

/* how the child ends: 'a' abort, 'q' SIGQUIT, 's' SIGSEGV by a null write, 't' SIGTERM,
 * 'z' abort with RLIMIT_CORE 0, 'x' exit(3) */
static pid_t child(char how)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    switch (how) {
    case 'a': abort();
    case 'q': raise(SIGQUIT); break;
    case 's': *(volatile int *)0 = 1; break;
    case 't': raise(SIGTERM); break;
    case 'z': {
        struct rlimit rl = {0, 0};
        setrlimit(RLIMIT_CORE, &rl);
        abort();
    }
    }
    _exit(3);
}

static void settle(void)
{
    /* the SIGCHLD of a reaped child has been delivered on the way out of the wait */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

int main(int argc, char **argv)
{
    const char *hows = argc > 1 ? argv[1] : "aqstzx";
    if (argc > 2) {
        struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
        if (strcmp(argv[2], "infinity") != 0)
            rl.rlim_cur = rl.rlim_max = strtoul(argv[2], NULL, 0);
        if (setrlimit(RLIMIT_CORE, &rl) != 0)
            perror("setrlimit");
    }
    struct sigaction sa = {0};
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    for (const char *h = hows; *h; h++) {
        int status = 0;
        chld_code = chld_status = 0;
        pid_t pid = child(*h);
        if (waitpid(pid, &status, 0) != pid)
            perror("waitpid");
        settle();
        printf("%c wait4: signaled=%d sig=%d core=%d exited=%d code=%d sigchld: code=%d status=%d\n", *h,
               WIFSIGNALED(status), WIFSIGNALED(status) ? WTERMSIG(status) : 0,
               WIFSIGNALED(status) ? !!WCOREDUMP(status) : 0, WIFEXITED(status),
               WIFEXITED(status) ? WEXITSTATUS(status) : 0, chld_code, chld_status);
        siginfo_t si;
        memset(&si, 0, sizeof si);
        pid = child(*h);
        if (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) != 0)
            perror("waitid");
        int code1 = si.si_code;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, pid, &si, WEXITED) != 0)
            perror("waitid");
        settle();
        printf("%c waitid: code=%d (nowait %d) status=%d\n", *h, si.si_code, code1, si.si_status);
    }
    return 0;
}
