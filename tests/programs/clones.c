/* clone and clone3 for a new process, as Linux does them: CLONE_PARENT, the exit signal
 * the parent asked for (clone3's exit_signal, clone's CSIGNAL byte), CLONE_PIDFD, the
 * errors of bad arguments and of the flags an unprivileged caller cannot use.  One line
 * per check, with what the calls returned; run as root and as an unprivileged user. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __WALL
#define __WALL 0x40000000
#define __WCLONE 0x80000000
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x1000
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#define CLONE_NEWTIME_ 0x80
#define CLONE_INTO_CGROUP_ 0x200000000ULL
#define CLONE_CLEAR_SIGHAND_ 0x100000000ULL

struct clone_args_ {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

static long clone3_(struct clone_args_ *a, size_t size) {
    long r = syscall(435, a, size);
    return r < 0 ? -errno : r;
}

static long clone_(unsigned long flags, void *ptid) {
    long r = syscall(SYS_clone, flags, 0, ptid, 0, 0);
    return r < 0 ? -errno : r;
}

static volatile sig_atomic_t got_usr2, got_chld, usr2_code, usr2_status, usr2_pid, chld_pid;

static void on_usr2(int sig, siginfo_t *si, void *uc) {
    got_usr2++; usr2_code = si->si_code; usr2_status = si->si_status; usr2_pid = si->si_pid;
    (void)sig; (void)uc;
}

static void on_chld(int sig, siginfo_t *si, void *uc) {
    got_chld++; chld_pid = si->si_pid;
    (void)sig; (void)uc;
}

static int reap(pid_t pid, int flags) {
    int st = 0;
    pid_t r = waitpid(pid, &st, flags);
    if (r < 0) return -errno;
    return r == pid ? (WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st)) : -1000;
}

/* a child that exits with `code`; -errno if clone failed */
static long spawn3(uint64_t flags, int exit_signal, int code, int *pidfd) {
    struct clone_args_ a = {0};
    a.flags = flags;
    a.exit_signal = exit_signal;
    a.pidfd = (uintptr_t)pidfd;
    long pid = clone3_(&a, sizeof a);
    if (pid == 0) _exit(code);
    return pid;
}

static void exit_signals(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr2;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_sigaction = on_chld;
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    sigaddset(&block, SIGCHLD);

    /* clone3 with SIGUSR2: the parent gets SIGUSR2 (CLD_EXITED) and no SIGCHLD; the
     * child is a "clone" child: only __WALL or __WCLONE waits see it */
    sigprocmask(SIG_BLOCK, &block, &old);
    long pid = spawn3(0, SIGUSR2, 7, NULL);
    printf("clone3 exit_signal SIGUSR2: a child %s\n", pid > 0 ? "made" : "NOT made");
    siginfo_t si;
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    int sig = sigwaitinfo(&usr2, &si);  /* the exit signal itself, whenever it comes */
    printf("  the parent got signal %d, si_code %d, si_status %d, si_pid is the child %d\n", sig, si.si_code,
           si.si_status, si.si_pid == pid);
    printf("  waitpid without __WALL: %d\n", reap(pid, WNOHANG));
    printf("  waitpid(-1) without __WALL: %d\n", reap(-1, WNOHANG));
    printf("  waitpid __WCLONE: %d\n", reap(pid, __WCLONE));
    sigset_t pending;
    sigpending(&pending);
    printf("  SIGCHLD pending: %d\n", sigismember(&pending, SIGCHLD));
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* the same through the handler, reaped with __WALL */
    got_usr2 = got_chld = 0;
    pid = spawn3(0, SIGUSR2, 9, NULL);
    printf("  __WALL: %d\n", reap(pid, __WALL));
    while (!got_usr2) usleep(1000);
    printf("  the handler ran: SIGUSR2 %d (code %d, status %d, pid is the child %d), SIGCHLD %d\n", got_usr2,
           usr2_code, usr2_status, usr2_pid == pid, got_chld);

    /* exit signal 0: no signal at all */
    got_usr2 = got_chld = 0;
    pid = spawn3(0, 0, 4, NULL);
    printf("clone3 exit_signal 0: waitpid __WALL %d; signals %d %d\n", reap(pid, __WALL), got_usr2, got_chld);

    /* clone (the old one) with SIGUSR2 in its CSIGNAL byte */
    got_usr2 = got_chld = 0;
    pid = clone_(SIGUSR2, NULL);
    if (pid == 0) _exit(5);
    printf("clone SIGUSR2: waitpid __WCLONE %d\n", reap(pid, __WCLONE));
    while (!got_usr2) usleep(1000);
    printf("  SIGUSR2 %d, SIGCHLD %d\n", got_usr2, got_chld);

    /* SIGCHLD children are not seen by __WCLONE */
    pid = spawn3(0, SIGCHLD, 6, NULL);
    usleep(1000);
    printf("clone3 SIGCHLD: waitpid __WCLONE %d, then plain %d\n", reap(pid, __WCLONE | WNOHANG) == -ECHILD,
           reap(pid, 0));

    printf("clone3 exit_signal 65: %ld\n", spawn3(0, 65, 0, NULL));
    printf("clone3 exit_signal 0x100: %ld\n", spawn3(0, 0x100, 0, NULL));
    signal(SIGUSR2, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
}

static void parent_flag(void) {
    /* CLONE_PARENT: the grandchild's parent is this process, which can wait for it */
    int gp[2], pp[2];
    pipe(gp);
    pipe(pp);
    pid_t me = getpid();
    pid_t child = fork();
    if (child == 0) {
        long g = clone_(CLONE_PARENT | SIGCHLD, NULL);
        if (g == 0) {
            pid_t parent = getppid();
            write(pp[1], &parent, sizeof parent);
            _exit(11);
        }
        write(gp[1], &g, sizeof g);
        _exit(reap(g, 0) == -ECHILD ? 0 : 1);  /* not this process's child */
    }
    long g = 0;
    pid_t parent = 0;
    read(gp[0], &g, sizeof g);
    if (g > 0) read(pp[0], &parent, sizeof parent);
    printf("CLONE_PARENT: grandchild made %d, its parent is this process %d\n", g > 0, parent == me);
    printf("  the child could not wait for it: %d\n", reap(child, 0));
    printf("  this process reaps it: %d\n", g > 0 ? reap(g, 0) : -1);
    close(gp[0]); close(gp[1]); close(pp[0]); close(pp[1]);
    printf("CLONE_PARENT with CLONE_THREAD-less CLONE_SIGHAND: %ld\n", clone_(CLONE_PARENT | CLONE_SIGHAND, NULL));
}

static void pidfds(void) {
    int pidfd = -1;
    long pid = spawn3(CLONE_PIDFD, SIGCHLD, 3, &pidfd);
    printf("clone3 CLONE_PIDFD: pidfd %s, close-on-exec %d\n", pidfd > 2 ? "set" : "NOT set",
           pidfd >= 0 && (fcntl(pidfd, F_GETFD) & FD_CLOEXEC));
    struct pollfd p = {pidfd, POLLIN, 0};
    printf("  poll says the child ended: %d\n", poll(&p, 1, 10000) == 1 && (p.revents & POLLIN));
    siginfo_t si = {0};
    long r = syscall(SYS_waitid, 3 /* P_PIDFD */, pidfd, &si, WEXITED, NULL);
    printf("  waitid(P_PIDFD): %ld, status %d, pid is the child %d\n", r, si.si_status, si.si_pid == pid);
    close(pidfd);

    /* a pidfd can signal its process */
    pidfd = -1;
    pid = clone3_(&(struct clone_args_){.flags = CLONE_PIDFD, .exit_signal = SIGCHLD, .pidfd = (uintptr_t)&pidfd},
                  sizeof(struct clone_args_));
    if (pid == 0) { pause(); _exit(0); }
    printf("  pidfd_send_signal SIGTERM: %ld\n", syscall(424, pidfd, SIGTERM, NULL, 0));
    printf("  the child died of it: %d\n", reap(pid, 0));
    close(pidfd);

    /* clone with CLONE_PIDFD: the pidfd goes where parent_tid points */
    int fd = -1;
    pid = clone_(CLONE_PIDFD | SIGCHLD, &fd);
    if (pid == 0) _exit(2);
    printf("clone CLONE_PIDFD: pidfd %s; reaped %d\n", fd > 2 ? "set" : "NOT set", reap(pid, 0));
    if (fd >= 0) close(fd);
    printf("clone CLONE_PIDFD|CLONE_PARENT_SETTID: %ld\n", clone_(CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, &fd));
    printf("clone3 CLONE_PIDFD|CLONE_DETACHED: %ld\n",
           clone3_(&(struct clone_args_){.flags = CLONE_PIDFD | 0x400000, .pidfd = (uintptr_t)&fd}, 88));

    /* a pidfd pointer that cannot be written: EFAULT, and no child is left behind */
    char *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    long bad[] = {8, (long)page, -4096};
    for (int i = 0; i < 3; i++) {
        pid = clone3_(&(struct clone_args_){.flags = CLONE_PIDFD, .exit_signal = SIGCHLD, .pidfd = bad[i]},
                      sizeof(struct clone_args_));
        if (pid == 0) _exit(0);
        printf("clone3 CLONE_PIDFD to a bad pointer %d: %ld; a child left: %d\n", i, pid, reap(-1, WNOHANG) != -ECHILD);
    }
    pid = clone_(CLONE_PIDFD | SIGCHLD, (void *)8);
    if (pid == 0) _exit(0);
    printf("clone CLONE_PIDFD to a bad pointer: %ld; a child left: %d\n", pid, reap(-1, WNOHANG) != -ECHILD);
    printf("clone3 with a bad args pointer: %ld\n", clone3_((void *)8, 88));
    printf("clone3 of size 63: %ld\n", clone3_(&(struct clone_args_){0}, 63));
}

static void on_usr1(int sig) { (void)sig; }

static void clear_sighand(void) {
    /* CLONE_CLEAR_SIGHAND: the child's caught signals are back at SIG_DFL, ignored stay */
    signal(SIGUSR1, on_usr1);
    signal(SIGHUP, SIG_IGN);
    struct clone_args_ a = {.flags = CLONE_CLEAR_SIGHAND_, .exit_signal = SIGCHLD};
    long pid = clone3_(&a, sizeof a);
    if (pid == 0) {
        struct sigaction u, h;
        sigaction(SIGUSR1, NULL, &u);
        sigaction(SIGHUP, NULL, &h);
        _exit((u.sa_handler == SIG_DFL) + 2 * (h.sa_handler == SIG_IGN));
    }
    printf("clone3 CLONE_CLEAR_SIGHAND: %d\n", pid > 0 ? reap(pid, 0) : (int)pid);
    signal(SIGUSR1, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
}

static void privileges(void) {
    static const struct { const char *name; unsigned long flag; } ns[] = {
        {"CLONE_NEWNS", CLONE_NEWNS}, {"CLONE_NEWUTS", CLONE_NEWUTS}, {"CLONE_NEWIPC", CLONE_NEWIPC},
        {"CLONE_NEWPID", CLONE_NEWPID}, {"CLONE_NEWNET", CLONE_NEWNET}, {"CLONE_NEWCGROUP", CLONE_NEWCGROUP},
        {"CLONE_NEWTIME", CLONE_NEWTIME_},
    };
    int unprivileged = geteuid() != 0;
    for (unsigned i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        long pid;
        if (ns[i].flag != CLONE_NEWTIME_) {  /* (in clone's CSIGNAL byte) */
            pid = clone_(ns[i].flag | SIGCHLD, NULL);
            if (pid == 0) _exit(0);
            if (pid > 0) reap(pid, __WALL);
            /* root may natively; km answers as for an unprivileged caller */
            if (unprivileged) printf("clone %s: %ld\n", ns[i].name, pid);
        }
        pid = spawn3(ns[i].flag, SIGCHLD, 0, NULL);
        if (pid > 0) reap(pid, __WALL);
        if (unprivileged) printf("clone3 %s: %ld\n", ns[i].name, pid);
    }
    printf("clone CLONE_NEWNS|CLONE_FS: %ld\n", clone_(CLONE_NEWNS | CLONE_FS | SIGCHLD, NULL));
    printf("clone CLONE_NEWUSER|CLONE_FS: %ld\n", clone_(CLONE_NEWUSER | CLONE_FS | SIGCHLD, NULL));
    printf("clone CLONE_NEWUSER|CLONE_THREAD: %ld\n", clone_(CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM, NULL));
    printf("clone CLONE_NEWPID|CLONE_THREAD: %ld\n", clone_(CLONE_NEWPID | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM, NULL));
    /* set_tid needs CAP_SYS_ADMIN; its size is checked first */
    pid_t tids[40] = {0};
    tids[0] = 1;
    struct clone_args_ a = {.exit_signal = SIGCHLD, .set_tid = (uintptr_t)tids, .set_tid_size = 1};
    long r = clone3_(&a, sizeof a);
    if (r == 0) _exit(0);
    if (unprivileged) printf("clone3 set_tid of pid 1: %ld\n", r > 0 ? (long)-1000 : r);  /* (root: EEXIST) */
    a.set_tid_size = 40;
    printf("clone3 set_tid_size 40: %ld\n", clone3_(&a, sizeof a));
    a.set_tid = 0; a.set_tid_size = 1;
    printf("clone3 set_tid_size without set_tid: %ld\n", clone3_(&a, sizeof a));
    a.set_tid = (uintptr_t)tids; a.set_tid_size = 0;
    printf("clone3 set_tid without set_tid_size: %ld\n", clone3_(&a, sizeof a));
    struct clone_args_ c = {.exit_signal = SIGCHLD, .cgroup = 3};
    r = clone3_(&c, sizeof c);
    if (r == 0) _exit(0);
    printf("clone3 cgroup without CLONE_INTO_CGROUP (ignored): %d\n", r > 0 ? reap(r, 0) : (int)r);
    c.flags = CLONE_INTO_CGROUP_;
    c.cgroup = 9999;
    printf("clone3 CLONE_INTO_CGROUP of a bad fd: %ld\n", clone3_(&c, sizeof c));
    struct clone_args_ h = {.flags = CLONE_CLEAR_SIGHAND_ | CLONE_SIGHAND | CLONE_VM | CLONE_THREAD};
    printf("clone3 CLONE_CLEAR_SIGHAND|CLONE_SIGHAND: %ld\n", clone3_(&h, sizeof h));
    struct clone_args_ u = {.flags = 1ULL << 40, .exit_signal = SIGCHLD};
    printf("clone3 an unknown flag: %ld\n", clone3_(&u, sizeof u));
}

/* children with another exit signal made while other threads come and go */
static volatile int stop_churn;
static void *nothing(void *arg) { free(malloc(1000)); return arg; }
static void *churn(void *arg) {
    while (!stop_churn) {
        pthread_t t;
        pthread_create(&t, NULL, nothing, NULL);
        pthread_join(t, NULL);
    }
    return arg;
}

static int churning(int n) {
    signal(SIGUSR2, SIG_IGN);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, churn, NULL);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        long pid = spawn3(0, SIGUSR2, 3, NULL);
        ok += pid > 0 && reap(pid, __WALL) == 3;
    }
    stop_churn = 1;
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    printf("%d of %d children made and reaped while threads came and went\n", ok, n);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 2 && !strcmp(argv[1], "churn")) return churning(atoi(argv[2]));
    exit_signals();
    parent_flag();
    pidfds();
    clear_sighand();
    privileges();
    printf("no child left: %d\n", reap(-1, __WALL | WNOHANG) == -ECHILD);
    return 0;
}
