/* What the system call fuzzer (fuzz.c) found, one small case per bug:
 *
 *     fuzz_found CASE
 *
 * Each case prints what it saw, so that tests/guest/test_fuzz.py can compare a km run
 * with a native one. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define FUTEX_WAIT 0
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/time.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHOW(what, call) (r = (call), printf("%-40s %ld %s\n", what, r, r < 0 ? strerror(errno) : ""))

/* clone/clone3 whose child exits at once, in assembly (it needs no stack) */
long forkcall(long nr, long a0, long a1, long a2, long a3, long a4);
__asm__(".text\n.globl forkcall\nforkcall:\n"
        "  mov %rdi, %rax\n  mov %rsi, %rdi\n  mov %rdx, %rsi\n  mov %rcx, %rdx\n"
        "  mov %r8, %r10\n  mov %r9, %r8\n  syscall\n  test %rax, %rax\n  jnz 1f\n"
        "  mov $60, %eax\n  mov $7, %edi\n  syscall\n  ud2\n1:\n  ret\n");

static void report_child(const char *what, long r) {
    if (r < 0) {
        printf("%s: %s\n", what, strerror((int)-r));
        return;
    }
    int status;
    if (waitpid((pid_t)r, &status, __WALL) != r) {
        printf("%s: child, but no wait: %s\n", what, strerror(errno));
        return;
    }
    printf("%s: child %s %d\n", what, WIFEXITED(status) ? "exited" : "killed by",
           WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

struct clone_args_ {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

/* clone's stack argument is only a register value for the child: a kernel or
 * non-canonical address is the child's problem (it faults when it uses it) */
static int clone_stack(void) {
    static const uint64_t stacks[] = {0xffffffffff600000ULL, 0x8000000000000000ULL, 0x800000000000ULL, ~0ULL};
    for (unsigned i = 0; i < sizeof stacks / sizeof stacks[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "fork, stack %#llx", (unsigned long long)stacks[i]);
        report_child(what, forkcall(SYS_clone, SIGCHLD, (long)stacks[i], 0, 0, 0));
        snprintf(what, sizeof what, "vfork, stack %#llx", (unsigned long long)stacks[i]);
        report_child(what, forkcall(SYS_clone, CLONE_VM | CLONE_VFORK | SIGCHLD, (long)stacks[i], 0, 0, 0));
        /* a thread: its tid word is cleared (and woken) when it ends */
        static volatile int tid;
        tid = -1;
        long r = forkcall(SYS_clone, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                          CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID, (long)stacks[i], 0, (long)&tid, 0);
        if (r > 0)
            while (tid != 0) syscall(SYS_futex, &tid, FUTEX_WAIT, tid, NULL, NULL, 0);
        printf("thread, stack %#llx: %s\n", (unsigned long long)stacks[i], r > 0 ? "ended" : strerror((int)-r));
    }
    return 0;
}

/* clone3 checks its stack (stack_size without stack, stack without stack_size, a range
 * past the user address space) before anything else */
static int clone3_stack(void) {
    static const uint64_t cases[][2] = {
        {0, 4096}, {0x10000, 0}, {0xffffffffffff0000ULL, 0x20000}, {0x7ffffffff000ULL, 4096},
        {0xffffffffff600000ULL, 4096}, {0x8000000000000000ULL, 8}, {0x1000, 4096},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct clone_args_ ca = {.exit_signal = SIGCHLD, .stack = cases[i][0], .stack_size = cases[i][1]};
        char what[80];
        snprintf(what, sizeof what, "clone3, stack %#llx size %#llx", (unsigned long long)cases[i][0],
                 (unsigned long long)cases[i][1]);
        report_child(what, forkcall(SYS_clone3, (long)&ca, sizeof ca, 0, 0, 0));
    }
    static const uint64_t signals[] = {0, SIGCHLD, 65, 0x100 | SIGCHLD, ~0ULL};
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct clone_args_ ca = {.exit_signal = signals[i]};
        char what[80];
        snprintf(what, sizeof what, "clone3, exit signal %#llx", (unsigned long long)signals[i]);
        report_child(what, forkcall(SYS_clone3, (long)&ca, sizeof ca, 0, 0, 0));
    }
    return 0;
}

static volatile int handled;
static void on_usr1(int sig) {
    stack_t ss;
    sigaltstack(NULL, &ss);
    handled = sig;
    printf("handler: on the alternate stack %d, flags %#x\n", (char *)&ss < (char *)ss.ss_sp + ss.ss_size, ss.ss_flags);
}

/* SS_AUTODISARM (1 << 31) in ss_flags: a valid flag, reported back by sigaltstack and
 * in the signal frame */
static int altstack_autodisarm(void) {
    static char stack[64 * 1024];
    stack_t ss = {.ss_sp = stack, .ss_size = sizeof stack, .ss_flags = SS_AUTODISARM}, old;
    printf("sigaltstack: %d\n", sigaltstack(&ss, NULL));
    sigaltstack(NULL, &old);
    printf("flags back: %#x\n", old.ss_flags);
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_ONSTACK};
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("handled %d\n", handled);
    sigaltstack(NULL, &old);
    printf("after: flags %#x\n", old.ss_flags);
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("handled again %d\n", handled);
    return 0;
}

/* a signalfd with a signal pending takes no descriptor of the program's: km kept one
 * of its own (the connection that makes the file readable) at the lowest free number,
 * where the program could close it, and then failed with internal errors */
static int signalfd_fds(void) {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, NULL);
    int sfd = signalfd(-1, &m, 0);
    raise(SIGUSR1);
    int fd = open("/dev/null", O_RDONLY);
    printf("next descriptor: signalfd + %d\n", fd - sfd);
    int closed = 0;
    for (int i = sfd + 1; i < 64; i++) /* none of them is the program's */
        if (i != fd && close(i) == 0) closed++;
    printf("closed %d others\n", closed);
    struct signalfd_siginfo si;
    for (int round = 0; round < 2; round++) {
        ssize_t n = read(sfd, &si, sizeof si);
        printf("read %zd: signal %u\n", n, n > 0 ? si.ssi_signo : 0);
        raise(SIGUSR1);
    }
    return 0;
}

/* ppoll, pselect6, epoll_pwait and epoll_pwait2 with a signal mask: the mask is the
 * program's, for the duration of the call.  km gave it to its own host thread, where a
 * signal the program handles (SIGALRM of its own interval timer) took its default
 * action on km: km died by SIGALRM.  A pending signal the mask lets through ends the
 * call at once; one it blocks does not; the old mask is back after the call. */
static volatile int alarms, usr1s;
static void on_alarm(int sig) { (void)sig; alarms++; }
static void on_usr1_count(int sig) { (void)sig; usr1s++; }

static long masked_wait(int which, const sigset_t *mask) {
    struct timespec ts = {0, 200 * 1000 * 1000};
    static int ep = -1;
    if (ep < 0) ep = epoll_create1(0);
    struct epoll_event ev;
    struct { const sigset_t *ss; size_t len; } pmask = {mask, 8};
    switch (which) {
    case 0: return syscall(SYS_ppoll, NULL, 0, &ts, mask, 8);
    case 1: return syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts, &pmask);
    case 2: return syscall(SYS_epoll_pwait, ep, &ev, 1, 200, mask, 8);
    default: return syscall(SYS_epoll_pwait2, ep, &ev, 1, &ts, mask, 8);
    }
}

static int masked_waits(void) {
    static const char *const names[] = {"ppoll", "pselect6", "epoll_pwait", "epoll_pwait2"};
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = on_usr1_count;
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t none, usr1, old;
    sigemptyset(&none);
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    for (int which = 0; which < 4; which++) {
        /* its own timer's signal, handled, while the mask is empty: EINTR */
        struct itimerval it = {{0, 2000}, {0, 2000}}, off = {{0, 0}, {0, 0}};
        alarms = 0;
        setitimer(ITIMER_REAL, &it, NULL);
        long r = masked_wait(which, &none);
        int e = errno;
        setitimer(ITIMER_REAL, &off, NULL);
        printf("%s, empty mask, a timer running: %ld %s, handled %s\n", names[which], r, r < 0 ? strerror(e) : "",
               alarms ? "yes" : "no");
        /* SIGUSR1 blocked, pending: the mask lets it through, EINTR at once, then the old mask */
        sigprocmask(SIG_BLOCK, &usr1, NULL);
        raise(SIGUSR1);
        usr1s = 0;
        r = masked_wait(which, &none);
        e = errno;
        sigprocmask(SIG_SETMASK, NULL, &old);
        printf("%s, pending signal let through: %ld %s, handled %d, blocked again %d\n", names[which], r,
               r < 0 ? strerror(e) : "", usr1s, sigismember(&old, SIGUSR1));
        /* the mask blocks it: the call times out, the signal stays pending, handled after */
        raise(SIGUSR1);
        usr1s = 0;
        r = masked_wait(which, &usr1);
        int during = usr1s;
        sigprocmask(SIG_UNBLOCK, &usr1, NULL);
        printf("%s, pending signal the mask blocks: %ld, handled %d during, %d after\n", names[which], r, during, usr1s);
    }
    return 0;
}

/* RLIMIT_NPROC at 0 (for a user without privileges): fork, vfork and clone fail with
 * EAGAIN.  km's own fork failed the same way and came out as an internal error. */
static int nproc_fork(void) {
    struct rlimit none = {0, 0};
    printf("setrlimit: %d\n", setrlimit(RLIMIT_NPROC, &none));
    report_child("fork", forkcall(SYS_fork, 0, 0, 0, 0, 0));
    report_child("vfork", forkcall(SYS_vfork, 0, 0, 0, 0, 0));
    report_child("clone", forkcall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
    return 0;
}

/* a thread that exits at once (forkcall), waited for through CLONE_CHILD_CLEARTID;
 * clone's result */
static long one_thread(void) {
    static char stack[64 * 1024];
    static volatile int tid = -1;
    long r = forkcall(SYS_clone, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                      CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID, (long)(stack + sizeof stack), 0, (long)&tid, 0);
    if (r > 0)
        while (tid != 0) syscall(SYS_futex, &tid, FUTEX_WAIT, tid, NULL, NULL, 0);
    return r;
}

static void report_thread(void) {
    long r = one_thread();
    printf("thread: %s\n", r > 0 ? "ended" : strerror((int)-r));
}

/* the same for a thread: clone(CLONE_THREAD) fails with EAGAIN */
static int nproc_thread(void) {
    struct rlimit none = {0, 0};
    printf("setrlimit: %d\n", setrlimit(RLIMIT_NPROC, &none));
    report_thread();
    return 0;
}

/* signals 32 and 33 (the C library's own, for a glibc program): the program may handle
 * them.  glibc's pthread_create unblocks them in the thread that creates a thread, so
 * km's threads had them unblocked at their default action: sent to the program's process
 * group, they ended km. */
void restorer32(void);
__asm__(".text\nrestorer32:\n  mov $15, %eax\n  syscall\n  ud2\n");
static volatile int got32, got33;
static void on_32_33(int sig) { if (sig == 32) got32++; else got33++; }

static int signal_32_33(void) {
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } act = {on_32_33, 0x04000000, restorer32, 0};
    for (int sig = 32; sig <= 33; sig++) syscall(SYS_rt_sigaction, sig, &act, NULL, 8);
    setsid(); /* its own process group: kill(0, ...) reaches only itself */
    /* a thread, so that km's thread that made it is one glibc touched */
    one_thread();
    for (int round = 0; round < 20; round++) {
        kill(0, 32);
        kill(0, 33);
        kill(getpid(), 32);
    }
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    printf("signal 32 handled: %s, signal 33 handled: %s\n", got32 ? "yes" : "no", got33 ? "yes" : "no");
    return 0;
}

/* select and pselect6 with nfds far above any descriptor: Linux reads the sets only
 * as far as its descriptor table goes.  km read nfds bits of each (256 MiB for INT_MAX):
 * EFAULT, or a MemoryError (an internal error) when that much could not be had. */
static int select_huge_nfds(void) {
    fd_set *r = malloc(sizeof *r);
    static const int nfds[] = {0x7fffffff, 1 << 20, 65536};
    for (unsigned i = 0; i < sizeof nfds / sizeof nfds[0]; i++) {
        FD_ZERO(r);
        FD_SET(1, r);
        struct timeval tv = {0, 0};
        long n = syscall(SYS_select, nfds[i], NULL, r, NULL, &tv);
        printf("select(%#x): %ld %s\n", nfds[i], n, n < 0 ? strerror(errno) : "");
        struct timespec ts = {0, 0};
        FD_ZERO(r);
        FD_SET(1, r);
        n = syscall(SYS_pselect6, nfds[i], NULL, r, NULL, &ts, NULL);
        printf("pselect6(%#x): %ld %s\n", nfds[i], n, n < 0 ? strerror(errno) : "");
    }
    return 0;
}

/* RLIMIT_SIGPENDING at 0 limits the signals a program can queue, not the ones the kernel
 * sends it (its interval timer's SIGALRM).  km gave the limit to its own process, where
 * it stopped the signal km interrupts a blocking call with: the program's read of an
 * empty pipe was never interrupted, km hung. */
static int sigpending_zero(void) {
    struct rlimit none = {0, 0}, got;
    printf("setrlimit: %d\n", setrlimit(RLIMIT_SIGPENDING, &none));
    getrlimit(RLIMIT_SIGPENDING, &got);
    printf("getrlimit: %llu %llu\n", (unsigned long long)got.rlim_cur, (unsigned long long)got.rlim_max);
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 10000}, {0, 10000}}, off = {{0, 0}, {0, 0}};
    int p[2];
    pipe(p);
    alarms = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    char c;
    long r = read(p[0], &c, 1);
    int e = errno;
    setitimer(ITIMER_REAL, &off, NULL);
    printf("read of an empty pipe: %ld %s, handled %s\n", r, r < 0 ? strerror(e) : "", alarms ? "yes" : "no");
    return 0;
}

/* RLIMIT_FSIZE limits the files a program writes, not what it reads from /proc: km
 * writes the /proc/self files it makes up into a memfd, which failed with EFBIG under
 * a small limit (an internal error, and the memfd left open). */
static int fsize_proc(void) {
    struct rlimit small = {0, 0};
    signal(SIGXFSZ, SIG_IGN);
    printf("setrlimit: %d\n", setrlimit(RLIMIT_FSIZE, &small));
    static const char *const files[] = {"/proc/self/maps", "/proc/self/auxv", "/proc/self/cmdline"};
    for (unsigned i = 0; i < sizeof files / sizeof files[0]; i++) {
        int fd = open(files[i], O_RDONLY);
        char buf[4096];
        long n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
        printf("%s: %s\n", files[i], fd < 0 ? strerror(errno) : n > 8 ? "read" : "empty");
        if (fd >= 0) close(fd);
    }
    int fd = open("/dev/null", O_RDONLY);
    printf("next descriptor: %d\n", fd);
    return 0;
}

/* A signalfd watches signals that the program also handles, sent both by itself and by
 * its interval timer: km updated the signalfd's readiness from two threads at once (the
 * vCPU thread and the signal thread), and both could close the same descriptor (EBADF,
 * an internal error, or a descriptor of another file closed). */
static volatile int usr2s;
static void on_usr2(int sig) { (void)sig; usr2s++; }

/* SIGALRM from an interval timer of ``interval_us`` and SIGUSR2 handled, a signalfd of
 * SIGUSR2 made, then ``round(sfd)`` run again and again for 3 s; returns the signalfd */
static int signalfd_storm(long interval_us, void (*round)(int sfd)) {
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    int sfd = signalfd(-1, &m, SFD_NONBLOCK);
    struct itimerval it = {{0, interval_us}, {0, interval_us}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        round(sfd);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 3000000000L);
    setitimer(ITIMER_REAL, &off, NULL);
    return sfd;
}

static void pending_a_moment(int sfd) {
    (void)sfd;
    kill(getpid(), SIGUSR2); /* pending a moment: the signalfd is readable */
    kill(getpid(), SIGUSR1); /* and no longer */
}

static int signalfd_race(void) {
    struct sigaction sa = {.sa_handler = on_usr1_count};
    sigaction(SIGUSR1, &sa, NULL);
    int sfd = signalfd_storm(500, pending_a_moment);
    int fd = open("/dev/null", O_RDONLY);
    printf("signalfd %d, then descriptor %d; handled SIGUSR1 %s, SIGUSR2 %s, SIGALRM %s\n", sfd, fd,
           usr1s ? "yes" : "no", usr2s ? "yes" : "no", alarms ? "yes" : "no");
    return 0;
}

/* mlockall(MCL_FUTURE) locks the program's future mappings.  km passed it to its own
 * process, where it locked every later allocation of km's too: the stack of the host
 * thread for a new guest thread failed past RLIMIT_MEMLOCK, an internal error in clone. */
static int mlockall_future(void) {
    printf("mlockall: %d\n", mlockall(MCL_FUTURE));
    report_thread();
    printf("munlockall: %d\n", munlockall());
    printf("mlockall(MCL_ONFAULT): %d\n", mlockall(MCL_ONFAULT) ? errno : 0);
    return 0;
}

/* execve of a FIFO (or a socket): Linux refuses anything but a regular file, EACCES.
 * km opened it to read its header, and the open of a FIFO waited for a writer: km hung
 * (found by the fuzzer, whose random path names a FIFO it made). */
static int exec_fifo(void) {
    unlink("fifo-x");
    mknod("fifo-x", S_IFIFO | 0755, 0);
    unlink("sock-x");
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "sock-x"};
    bind(s, (struct sockaddr *)&un, sizeof un);
    chmod("sock-x", 0755);
    static const char *const paths[] = {"fifo-x", "./fifo-x", "sock-x", "/dev/null"};
    for (unsigned i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char *argv[] = {(char *)paths[i], NULL};
        int r = execve(paths[i], argv, argv + 1);
        printf("execve %s: %d %s\n", paths[i], r, strerror(errno));
    }
    unlink("fifo-x");
    unlink("sock-x");
    return 0;
}

/* The same, while the program closes descriptors it does not have (as the fuzzer does):
 * the signal thread's transient socket() or accept4() descriptor, at the lowest free
 * number, could be closed by the program first; km's own close then failed (EBADF). */
static void closing_others(int sfd) {
    kill(getpid(), SIGUSR2);
    for (int round = 0; round < 20; round++)
        for (int fd = sfd + 1; fd < sfd + 4; fd++) close(fd);
}

static int signalfd_close_race(void) {
    signalfd_storm(300, closing_others);
    printf("handled SIGUSR2 %s, SIGALRM %s\n", usr2s ? "yes" : "no", alarms ? "yes" : "no");
    return 0;
}

/* Past RLIMIT_FSIZE a write, truncate or fallocate fails with EFBIG and Linux sends
 * SIGXFSZ (its default action ends the program, with a core).  km's own process got
 * the signal (and ignored it): the program never did.  The fuzzer handles SIGXFSZ, so
 * this one was found reading km's comment that it raised it. */
static volatile int xfszs;
static void on_xfsz(int sig) { (void)sig; xfszs++; }

static int fsize_sigxfsz(void) {
    struct rlimit small = {100, 100};
    setrlimit(RLIMIT_FSIZE, &small);
    int fd = open("big", O_RDWR | O_CREAT | O_TRUNC, 0644);
    char buf[200] = {0};
    struct sigaction sa = {.sa_handler = on_xfsz};
    sigaction(SIGXFSZ, &sa, NULL);
    long r = write(fd, buf, sizeof buf);
    printf("write 200: %ld, SIGXFSZ %d\n", r, xfszs);
    r = write(fd, buf, sizeof buf);
    printf("write 200 more: %ld %s, SIGXFSZ %d\n", r, r < 0 ? strerror(errno) : "", xfszs);
    r = ftruncate(fd, 1000);
    printf("ftruncate 1000: %ld %s, SIGXFSZ %d\n", r, r < 0 ? strerror(errno) : "", xfszs);
    r = pwrite(fd, buf, 10, 1 << 20);
    printf("pwrite at 1 MiB: %ld %s, SIGXFSZ %d\n", r, r < 0 ? strerror(errno) : "", xfszs);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGXFSZ, &sa, NULL);
    pid_t pid = fork();
    if (pid == 0) {
        write(fd, buf, sizeof buf);
        _exit(0);
    }
    report_child("a child that writes past it, SIGXFSZ at its default", pid);
    return 0;
}

/* A directory descriptor is not looked at for an absolute path: openat(100000, "/x")
 * opens /x.  km refused a descriptor number in its own range (EBADF), open or not. */
static int dirfd_absolute(void) {
    static const int dirfds[] = {100000, 0x7fffffff, 65535};
    for (unsigned i = 0; i < sizeof dirfds / sizeof dirfds[0]; i++) {
        int fd = openat(dirfds[i], "/dev/null", O_RDONLY);
        printf("openat(%d, \"/dev/null\"): %s\n", dirfds[i], fd >= 0 ? "opened" : strerror(errno));
        if (fd >= 0) close(fd);
        struct stat st;
        int r = fstatat(dirfds[i], "/", &st, 0);
        printf("fstatat(%d, \"/\"): %d %s\n", dirfds[i], r, r < 0 ? strerror(errno) : "");
        r = fchmodat(dirfds[i], "/proc/self/comm", 0644, 0);
        printf("fchmodat(%d, \"/proc/self/comm\"): %d %s\n", dirfds[i], r, r < 0 ? strerror(errno) : "");
        r = mkdirat(dirfds[i], "relative", 0755);
        printf("mkdirat(%d, \"relative\"): %d %s\n", dirfds[i], r, r < 0 ? strerror(errno) : "");
    }
    return 0;
}

/* Argument checks in Linux's order (compared call by call, native against km):
 * clone takes CLONE_IO, CLONE_SYSVSEM and CLONE_DETACHED for a new process (km said
 * EINVAL); clone3 says E2BIG for a size past a page (km: EINVAL); mlock2 checks its
 * flags before its range (km: ENOMEM first). */
static int flag_checks(void) {
    static const struct { const char *name; long flags; } clones[] = {
        {"CLONE_IO", 0x80000000L}, {"CLONE_SYSVSEM", CLONE_SYSVSEM}, {"CLONE_DETACHED", 0x400000L},
    };
    for (unsigned i = 0; i < sizeof clones / sizeof clones[0]; i++)
        report_child(clones[i].name, forkcall(SYS_clone, clones[i].flags | SIGCHLD, 0, 0, 0, 0));
    struct clone_args_ ca = {.exit_signal = SIGCHLD};
    static const unsigned long sizes[] = {4097, 0x804e09081ea6c22cUL, 63};
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "clone3, size %#lx", sizes[i]);
        report_child(what, forkcall(SYS_clone3, (long)&ca, (long)sizes[i], 0, 0, 0));
    }
    long r = syscall(SYS_mlock2, (void *)0x1000, 0xbe88e4ec7c9021b1UL, 55);
    printf("mlock2 with bad flags, unmapped: %ld %s\n", r, strerror(errno));
    return 0;
}

/* Linux looks at the descriptor (not open, not writable, not seekable, not a socket)
 * before it reads an iovec or a msghdr; km read those first and said EFAULT or EINVAL
 * where Linux says EBADF, EINVAL, ESPIPE or ENOTSOCK (compared call by call). */
static int fd_errors_first(void) {
    int ep = epoll_create1(0), p[2], file = open("/dev/null", O_RDWR);
    pipe(p);
    struct iovec huge[2] = {{NULL, ~0UL >> 1}, {NULL, ~0UL >> 1}};
    void *bad = (void *)0xffff800000000000UL;
    long r;
    SHOW("writev(epoll fd, bad iov)", writev(ep, bad, 8));
    SHOW("writev(closed fd, huge iov)", writev(1000, huge, 2));
    SHOW("readv(closed fd, bad iov)", readv(1000, bad, 1));
    SHOW("preadv(pipe, bad iov)", preadv(p[0], bad, 2, 512));
    SHOW("pwritev(pipe, huge iov)", pwritev(p[1], huge, 2, 0));
    struct msghdr m = {.msg_control = (void *)1, .msg_controllen = (1 << 20) + 1};
    SHOW("sendmsg(file, huge control)", syscall(SYS_sendmsg, file, &m, 0));
    SHOW("sendmsg(closed fd, bad msghdr)", syscall(SYS_sendmsg, 1000, bad, 0));
    SHOW("recvmsg(file, bad msghdr)", syscall(SYS_recvmsg, file, bad, 0));
    SHOW("sendmsg(file, MSG_CMSG_COMPAT, bad)", syscall(SYS_sendmsg, file, bad, 0x80000000));
    SHOW("sendmmsg(file, bad vector)", syscall(SYS_sendmmsg, file, bad, 8, 0));
    SHOW("recvmmsg(file, bad vector)", syscall(SYS_recvmmsg, file, bad, 2, 0, NULL));
    return 0;
}

/* execve opens the program before it reads argv and envp: a missing or unrunnable
 * program is ENOENT or EACCES even with a bad argv (km read argv first: EFAULT). */
static int exec_order(void) {
    char **bad = (char **)0xffff800000000000UL;
    static const char *const paths[] = {"no-such-program", "/", "/dev/null", "/etc/passwd"};
    for (unsigned i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int r = execve(paths[i], bad, bad);
        printf("execve(%s, bad argv): %d %s\n", paths[i], r, strerror(errno));
    }
    return 0;
}

/* Offsets and whence before descriptors: pread64 and friends refuse a negative offset
 * (EINVAL) before they look at the descriptor (km: EBADF first); lseek looks at the
 * descriptor before whence (km: EINVAL first). */
static int offsets_first(void) {
    char buf[16];
    struct iovec v = {buf, sizeof buf};
    long r;
    SHOW("pread64(-1, offset -4096)", syscall(SYS_pread64, -1, buf, 16, -4096L));
    SHOW("pwrite64(100000, offset -1)", syscall(SYS_pwrite64, 100000, buf, 16, -1L));
    SHOW("preadv(-1, offset -2)", syscall(SYS_preadv, -1, &v, 1, -2L, 0));
    SHOW("pwritev(-1, offset -2)", syscall(SYS_pwritev, -1, &v, 1, -2L, 0));
    SHOW("lseek(1000, 0, whence 5)", syscall(SYS_lseek, 1000, 0, 5));
    return 0;
}

/* socketpair writes its two descriptor numbers before it makes the sockets: a bad
 * address is EFAULT whatever the family (km: EAFNOSUPPORT, EOPNOTSUPP first). */
static int socketpair_efault(void) {
    long r;
    int *bad = (int *)0xffff800000000000UL;
    SHOW("socketpair(AF_INET6, bad sv)", syscall(SYS_socketpair, AF_INET6, SOCK_STREAM, 0, bad));
    SHOW("socketpair(AF_UNSPEC, bad sv)", syscall(SYS_socketpair, AF_UNSPEC, SOCK_STREAM, 0, bad));
    SHOW("socketpair(AF_UNIX, read-only sv)", syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, (void *)socketpair_efault));
    int sv[2];
    SHOW("socketpair(AF_INET6, good sv)", syscall(SYS_socketpair, AF_INET6, SOCK_STREAM, 0, sv));
    return 0;
}

/* A msghdr's negative msg_namelen is EINVAL before its msg_iovlen is EMSGSIZE. */
static int msghdr_namelen(void) {
    long r;
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    char name[16];
    struct msghdr m = {.msg_name = name, .msg_namelen = (socklen_t)-1, .msg_iovlen = 2000};
    SHOW("recvmsg(namelen -1, iovlen 2000)", syscall(SYS_recvmsg, sv[0], &m, MSG_DONTWAIT));
    SHOW("sendmsg(namelen -1, iovlen 2000)", syscall(SYS_sendmsg, sv[0], &m, 0));
    return 0;
}

/* Descriptor arguments km handed on to the kernel: a descriptor that is not open (-1,
 * or one in km's own range) is EBADF only where Linux looks at it, after what it checks
 * first (inotify_add_watch's mask).  And three calls whose first checks km made in
 * another order: getrlimit's resource before its pointer (NULL is EFAULT), the siginfo
 * of rt_sigqueueinfo before anything (E2BIG for an unknown si_code with bytes past the
 * kernel's part, which a known one never carries to the handler), setgroups' permission
 * before its size. */
static volatile int queued_tail_zero = -1;
static void on_queued(int sig, siginfo_t *si, void *ctx) {
    (void)sig; (void)ctx;
    const unsigned char *b = (const unsigned char *)si;
    queued_tail_zero = 1;
    for (int i = 48; i < 128; i++)
        if (b[i]) queued_tail_zero = 0;
}

static int checks_in_order(void) {
    long r;
    SHOW("inotify_add_watch(-1, mask 0)", syscall(SYS_inotify_add_watch, -1, "/", 0));
    SHOW("inotify_add_watch(1 << 30, mask 0)", syscall(SYS_inotify_add_watch, 1 << 30, "/", 0));
    SHOW("getrlimit(RLIMIT_NOFILE, NULL)", syscall(SYS_getrlimit, RLIMIT_NOFILE, NULL));
    SHOW("getrlimit(RLIMIT_STACK, NULL)", syscall(SYS_getrlimit, RLIMIT_STACK, NULL));
    SHOW("getrlimit(100, NULL)", syscall(SYS_getrlimit, 100, NULL));
    SHOW("setgroups(100000, NULL)", syscall(SYS_setgroups, 100000, NULL));
    struct sigaction sa = {.sa_sigaction = on_queued, .sa_flags = SA_SIGINFO};
    sigaction(SIGUSR1, &sa, NULL);
    unsigned char info[128];
    memset(info, 0, sizeof info);
    int code = -8; /* no layout the kernel knows */
    memcpy(info + 8, &code, 4);
    info[100] = 1;
    SHOW("rt_sigqueueinfo(self, unknown code, tail set)", syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, info));
    SHOW("rt_sigqueueinfo(self, 1000, unknown code, tail set)", syscall(SYS_rt_sigqueueinfo, getpid(), 1000, info));
    SHOW("rt_tgsigqueueinfo(self, 0, unknown code, tail set)",
         syscall(SYS_rt_tgsigqueueinfo, getpid(), 0, SIGUSR1, info));
    info[100] = 0;
    SHOW("rt_sigqueueinfo(self, unknown code, tail clear)", syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, info));
    printf("handler saw a clear tail: %d\n", queued_tail_zero);
    code = SI_QUEUE;
    memcpy(info + 8, &code, 4);
    info[100] = 1;
    queued_tail_zero = -1;
    SHOW("rt_sigqueueinfo(self, SI_QUEUE, tail set)", syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, info));
    printf("handler saw a clear tail: %d\n", queued_tail_zero);
    SHOW("rt_sigqueueinfo(self, 1000, SI_QUEUE)", syscall(SYS_rt_sigqueueinfo, getpid(), 1000, info));
    SHOW("rt_sigqueueinfo(self, 0, SI_QUEUE)", syscall(SYS_rt_sigqueueinfo, getpid(), 0, info));
    SHOW("rt_sigqueueinfo(1, 0, SI_QUEUE)", syscall(SYS_rt_sigqueueinfo, 1, 0, info));
    SHOW("rt_tgsigqueueinfo(self, 0x7ffffff0, SI_QUEUE)",
         syscall(SYS_rt_tgsigqueueinfo, getpid(), 0x7ffffff0, SIGUSR1, info));
    SHOW("rt_tgsigqueueinfo(self, self, 1000, SI_QUEUE)",
         syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), 1000, info));
    code = SI_TKILL;
    memcpy(info + 8, &code, 4);
    SHOW("rt_tgsigqueueinfo(self, 0x7ffffff0, SI_TKILL)",
         syscall(SYS_rt_tgsigqueueinfo, getpid(), 0x7ffffff0, SIGUSR1, info));
    return 0;
}

/* Descriptors that are not open (one never opened, or one in km's own range, above the
 * hard RLIMIT_NOFILE the program started with) in calls that look at something else
 * first: km refused the descriptor (EBADF) before it, or looked at the other thing
 * first where Linux looks at the descriptor first.  And mmap ignores prot bits it does
 * not know (mprotect refuses them). */
static int closed_fds_in_order(void) {
    long r;
    struct rlimit nofile;
    getrlimit(RLIMIT_NOFILE, &nofile);
    long fds[] = {300, (long)nofile.rlim_max + 1, (long)nofile.rlim_max + 5};
    const char *names[] = {"closed", "past the hard limit + 1", "past the hard limit + 5"};
    char *bad = (char *)0xdead00000000UL;
    struct timespec wrong = {0, 2000000000L};
    struct epoll_event ev[2];
    sigset_t none;
    sigemptyset(&none);
    for (int i = 0; i < 3; i++) {
        long fd = fds[i];
        printf("-- %s\n", names[i]);
        SHOW("epoll_ctl(fd, ADD, fd, bad event)", syscall(SYS_epoll_ctl, fd, EPOLL_CTL_ADD, fd, bad));
        SHOW("epoll_wait(fd, maxevents -1)", syscall(SYS_epoll_wait, fd, ev, -1, 0));
        SHOW("epoll_pwait(fd, sigsetsize 16)", syscall(SYS_epoll_pwait, fd, ev, 2, 0, &none, 16));
        SHOW("epoll_pwait(fd, bad mask)", syscall(SYS_epoll_pwait, fd, ev, -1, 0, bad, 8));
        SHOW("epoll_pwait2(fd, nsec 2e9)", syscall(SYS_epoll_pwait2, fd, ev, 2, &wrong, NULL, 8));
        SHOW("epoll_pwait2(fd, bad timeout)", syscall(SYS_epoll_pwait2, fd, ev, 2, bad, NULL, 8));
        SHOW("recvmmsg(fd, MSG_CMSG_COMPAT)", syscall(SYS_recvmmsg, fd, bad, 1, 0x80000000, NULL));
        SHOW("recvmmsg(fd, bad timeout)", syscall(SYS_recvmmsg, fd, bad, 1, 0, bad));
        SHOW("recvmmsg(fd, nsec 2e9)", syscall(SYS_recvmmsg, fd, bad, 1, 0, &wrong));
        SHOW("sendfile(fd, fd, bad offset)", syscall(SYS_sendfile, fd, fd, bad, 10));
        SHOW("sendfile(1, fd, NULL)", syscall(SYS_sendfile, 1, fd, NULL, 10));
        SHOW("vmsplice(fd, bad iov, flags ~0)", syscall(SYS_vmsplice, fd, bad, 1, ~0U));
        SHOW("inotify_add_watch(fd, mask 0)", syscall(SYS_inotify_add_watch, fd, "/", 0));
        SHOW("close(fd)", syscall(SYS_close, fd));
        SHOW("fcntl(fd, F_GETFD)", syscall(SYS_fcntl, fd, F_GETFD));
        SHOW("mmap(fd, MAP_SHARED)", syscall(SYS_mmap, 0, 4096, PROT_READ, MAP_SHARED, fd, 0));
    }
    r = syscall(SYS_mmap, 0, 8192, PROT_READ | PROT_WRITE | 0x100000 | 0x8000, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap(prot with unknown bits): %s\n", r > 0 ? "mapped" : strerror(errno));
    if (r > 0) SHOW("mprotect(prot with unknown bits)", syscall(SYS_mprotect, r, 4096, PROT_READ | 0x100000));
    return 0;
}

/* select, pselect6 and ppoll read and check their timeout before anything else (km
 * looked at nfds or the descriptors first), and an ioctl km does not know of a
 * descriptor that is not open is EBADF, not ENOTTY. */
static int timeouts_first(void) {
    long r;
    char *bad = (char *)0xdead00000000UL;
    struct timeval tv_neg = {0, -1}, tv_carry = {-1, 2000000}, tv_neg_carry = {1, -2000000};
    struct timespec ts_wrong = {0, 2000000000L}, ts_neg = {-1, 0};
    SHOW("select(-1, bad timeout)", syscall(SYS_select, -1, NULL, NULL, NULL, bad));
    SHOW("select(-1, usec -1)", syscall(SYS_select, -1, NULL, NULL, NULL, &tv_neg));
    SHOW("select(-1, {-1, 2000000})", syscall(SYS_select, -1, NULL, NULL, NULL, &tv_carry));
    SHOW("select(-1, {1, -2000000})", syscall(SYS_select, -1, NULL, NULL, NULL, &tv_neg_carry));
    SHOW("pselect6(-1, bad timeout)", syscall(SYS_pselect6, -1, NULL, NULL, NULL, bad, NULL));
    SHOW("pselect6(-1, nsec 2e9)", syscall(SYS_pselect6, -1, NULL, NULL, NULL, &ts_wrong, NULL));
    SHOW("pselect6(1, bad set, sec -1)", syscall(SYS_pselect6, 1, bad, NULL, NULL, &ts_neg, NULL));
    SHOW("ppoll(bad fds, bad timeout)", syscall(SYS_ppoll, bad, 1, bad, NULL, 8));
    SHOW("ppoll(bad fds, nsec 2e9)", syscall(SYS_ppoll, bad, 1, &ts_wrong, NULL, 8));
    SHOW("ppoll(bad fds, nsec 2e9, sigsetsize 4)", syscall(SYS_ppoll, bad, 1, &ts_wrong, bad, 4));
    SHOW("ioctl(300, 14)", syscall(SYS_ioctl, 300, 14, NULL));
    SHOW("ioctl(1 << 30, 14)", syscall(SYS_ioctl, 1 << 30, 14, NULL));
    return 0;
}

/* System V calls that may wait, while an interval timer's signal keeps coming: Linux
 * fails one with EINTR only if it would wait.  km failed every one a signal kept from
 * starting with EINTR, also a semop with a bad id (EINVAL), a semop that never waits, a
 * msgrcv with a message there.  And a buffer in the vDSO (readable, on Linux) was EFAULT
 * for every system call: the host reads km's window, where the vDSO had nothing. */
#include <sys/auxv.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
static int ipc_not_interrupted(void) {
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    int sem = semget(IPC_PRIVATE, 1, 0600), q = msgget(IPC_PRIVATE, 0600);
    /* every 2 ms: a signal costs km a few hundred microseconds on PVM (exits), and at
     * 300 us, as this was, the program did little else on a slower host (115 s) */
    struct itimerval it = {{0, 2000}, {0, 2000}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
    int bad_semop = 0, semop_up = 0, bad_msgsnd = 0, msgrcv_there = 0, other = 0;
    struct sembuf up = {0, 1, 0};
    struct { long type; char text[8]; } m = {1, "x"};
    for (int i = 0; i < 3000; i++) {
        long r = syscall(SYS_semop, -1, &up, 1);
        if (r < 0 && errno == EINVAL) bad_semop++; else other++;
        r = syscall(SYS_semop, sem, &up, 1);
        if (r == 0) semop_up++; else other++;
        r = syscall(SYS_msgsnd, -1, &m, 1, 0);
        if (r < 0 && errno == EINVAL) bad_msgsnd++; else other++;
        if (syscall(SYS_msgsnd, q, &m, 1, IPC_NOWAIT) == 0) {
            r = syscall(SYS_msgrcv, q, &m, 8, 0, 0);
            if (r == 1) msgrcv_there++; else other++;
        }
    }
    setitimer(ITIMER_REAL, &off, NULL);
    semctl(sem, 0, IPC_RMID);
    msgctl(q, IPC_RMID, NULL);
    printf("semop bad id EINVAL %d, semop up %d, msgsnd bad id EINVAL %d, msgrcv with a message %d, other %d\n",
           bad_semop, semop_up, bad_msgsnd, msgrcv_there, other);
    return 0;
}

/* The vDSO as a buffer, and CRIU's ARCH_MAP_VDSO_* while one is mapped (EEXIST; km:
 * EINVAL).  (A km without a vDSO for its programs, on hardware KVM, says so.) */
static int vdso_calls(void) {
    char *vdso = (char *)getauxval(AT_SYSINFO_EHDR);
    if (!vdso) {
        printf("no vdso\n");
        return 0;
    }
    int p[2];
    pipe(p);
    long r;
    SHOW("write(pipe, vdso, 4)", syscall(SYS_write, p[1], vdso, 4));
    SHOW("msgsnd(-1, vdso)", syscall(SYS_msgsnd, -1, vdso + 0x100, 1, 0));
    SHOW("arch_prctl(ARCH_MAP_VDSO_64)", syscall(SYS_arch_prctl, 0x2003, 0x100000));
    SHOW("arch_prctl(ARCH_MAP_VDSO_32)", syscall(SYS_arch_prctl, 0x2002, 0x100000));
    return 0;
}

/* waitid looks at its options and its id's sign before a P_PIDFD's descriptor (km:
 * EBADF first). */
static int waitid_order(void) {
    long r;
    struct rlimit nofile;
    getrlimit(RLIMIT_NOFILE, &nofile);
    siginfo_t si;
    SHOW("waitid(P_PIDFD, 300, options 0)", syscall(SYS_waitid, P_PIDFD, 300, &si, 0, NULL));
    SHOW("waitid(P_PIDFD, hard limit + 1, options 0)", syscall(SYS_waitid, P_PIDFD, nofile.rlim_max + 1, &si, 0, NULL));
    SHOW("waitid(P_PIDFD, hard limit + 1, WEXITED)", syscall(SYS_waitid, P_PIDFD, nofile.rlim_max + 1, &si, WEXITED, NULL));
    SHOW("waitid(P_PIDFD, -1, WEXITED)", syscall(SYS_waitid, P_PIDFD, -1, &si, WEXITED, NULL));
    SHOW("waitid(5, 1, WEXITED)", syscall(SYS_waitid, 5, 1, &si, WEXITED, NULL));
    /* recvfrom and sendto check their buffer (access_ok) before the descriptor */
    char *kernel = (char *)0xffffffff81000000UL;
    SHOW("recvfrom(hard limit + 1, kernel address)", syscall(SYS_recvfrom, nofile.rlim_max + 1, kernel, 100, 0, NULL, NULL));
    SHOW("sendto(hard limit + 1, kernel address)", syscall(SYS_sendto, nofile.rlim_max + 1, kernel, 100, 0, NULL, 0));
    return 0;
}

/* timer_create looks at the clock (EINVAL, EOPNOTSUPP) before the sigevent; km
 * refused a sigevent it does not serve (EINVAL) first. */
static int timer_clock_first(void) {
    long r;
    timer_t id;
    struct sigevent bad = {.sigev_notify = 99}, big = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = 1000};
    static const int clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE, 10, 100, -1};
    for (unsigned i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "timer_create(%d, notify 99)", clocks[i]);
        SHOW(what, syscall(SYS_timer_create, clocks[i], &bad, &id));
        snprintf(what, sizeof what, "timer_create(%d, signal 1000)", clocks[i]);
        SHOW(what, syscall(SYS_timer_create, clocks[i], &big, &id));
    }
    return 0;
}

/* More first checks in Linux's order, from the traces: rt_sigaction reads the new
 * action before it looks at the signal, and an EFAULT writing the old one leaves the
 * change made; kill of a bad signal to no process is ESRCH; execveat reads its path
 * before its flags; signalfd4 its mask before its flags; pselect6 its {mask, size} pair
 * before its timeout.  And sched_setaffinity's length is an unsigned int: km, checking
 * a whole u64 range against the address space, said EFAULT for a high half. */
static void on_usr1_plain(int sig) { (void)sig; }

static int more_orders(void) {
    long r;
    char *bad = (char *)0xdead00000000UL;
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } act = {on_usr1_plain, 0, 0, 0}, old;
    SHOW("rt_sigaction(-1, bad act)", syscall(SYS_rt_sigaction, -1, bad, NULL, 8));
    SHOW("rt_sigaction(SIGKILL, bad act)", syscall(SYS_rt_sigaction, SIGKILL, bad, NULL, 8));
    SHOW("rt_sigaction(SIGUSR1, act, bad oact)", syscall(SYS_rt_sigaction, SIGUSR1, &act, bad, 8));
    syscall(SYS_rt_sigaction, SIGUSR1, NULL, &old, 8);
    printf("SIGUSR1's handler set all the same: %d\n", old.handler == (void *)on_usr1_plain);
    SHOW("kill(0x7fffffff, -1)", syscall(SYS_kill, 0x7fffffff, -1));
    SHOW("kill(self, -1)", syscall(SYS_kill, getpid(), -1));
    SHOW("execveat(bad path, flags ~0)", syscall(SYS_execveat, AT_FDCWD, bad, NULL, NULL, ~0));
    SHOW("execveat(\"\", flags 0x10)", syscall(SYS_execveat, AT_FDCWD, "", NULL, NULL, 0x10));
    SHOW("signalfd4(-1, bad mask, flags ~0)", syscall(SYS_signalfd4, -1, bad, 8, ~0));
    struct timespec wrong = {0, 2000000000L};
    SHOW("pselect6(0, nsec 2e9, bad pair)", syscall(SYS_pselect6, 0, NULL, NULL, NULL, &wrong, bad));
    /* (at 64 GiB - 64 KiB: under km the top of its window, which a length of 2 GiB passes) */
    unsigned char *mask = mmap((void *)0xFFFFF0000UL, 8192, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    memset(mask, 0xff, 8192);
    SHOW("sched_setaffinity(0, 0xffffffff, mask)", syscall(SYS_sched_setaffinity, 0, 0xffffffffUL, mask));
    /* (an unsigned int: the kernel never sees the high half) */
    SHOW("sched_setaffinity(0, 0x40000000ffffffff)", syscall(SYS_sched_setaffinity, 0, 0x40000000ffffffffUL, mask));
    r = syscall(SYS_sched_getaffinity, 0, 0xfffffff8UL, mask);
    printf("sched_getaffinity(0, 0xfffffff8): %s\n", r > 0 ? "its mask's size" : strerror(errno));
    SHOW("sched_getaffinity(0, 0xffffffff)", syscall(SYS_sched_getaffinity, 0, 0xffffffffUL, mask));
    return 0;
}

/* mprotect's checks in Linux's order (a zero length is done before the protection's
 * bits are looked at; PROT_SEM is a bit it takes; a length that wraps is ENOMEM), and
 * poll's nfds is an unsigned int (km took all 64 bits: EINVAL). */
static int mprotect_poll_order(void) {
    long r;
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SHOW("mprotect(p, 0, prot 0xc2a07252)", syscall(SYS_mprotect, p, 0, 0xc2a07252));
    SHOW("mprotect(p, 4096, PROT_READ | PROT_SEM)", syscall(SYS_mprotect, p, 4096, PROT_READ | 0x8));
    SHOW("mprotect(p, 4096, prot 0x10)", syscall(SYS_mprotect, p, 4096, 0x10));
    SHOW("mprotect(p, ~0, PROT_READ)", syscall(SYS_mprotect, p, ~0UL, PROT_READ));
    SHOW("mprotect(p + 1, 0, prot 0x10)", syscall(SYS_mprotect, p + 1, 0, 0x10));
    SHOW("poll(NULL, 1 << 32, 0)", syscall(SYS_poll, NULL, 1UL << 32, 0));
    SHOW("ppoll(NULL, 1 << 32, zero)", syscall(SYS_ppoll, NULL, 1UL << 32, &(struct timespec){0, 0}, NULL, 8));
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(void);
} cases[] = {
    {"clone-stack", clone_stack},
    {"clone3-stack", clone3_stack},
    {"altstack-autodisarm", altstack_autodisarm},
    {"signalfd-fds", signalfd_fds},
    {"masked-waits", masked_waits},
    {"nproc-fork", nproc_fork},
    {"nproc-thread", nproc_thread},
    {"signal-32-33", signal_32_33},
    {"select-huge-nfds", select_huge_nfds},
    {"sigpending-zero", sigpending_zero},
    {"fsize-proc", fsize_proc},
    {"signalfd-race", signalfd_race},
    {"mlockall-future", mlockall_future},
    {"exec-fifo", exec_fifo},
    {"signalfd-close-race", signalfd_close_race},
    {"fsize-sigxfsz", fsize_sigxfsz},
    {"dirfd-absolute", dirfd_absolute},
    {"flag-checks", flag_checks},
    {"fd-errors-first", fd_errors_first},
    {"exec-order", exec_order},
    {"offsets-first", offsets_first},
    {"socketpair-efault", socketpair_efault},
    {"msghdr-namelen", msghdr_namelen},
    {"checks-in-order", checks_in_order},
    {"closed-fds-in-order", closed_fds_in_order},
    {"timeouts-first", timeouts_first},
    {"ipc-not-interrupted", ipc_not_interrupted},
    {"vdso-calls", vdso_calls},
    {"waitid-order", waitid_order},
    {"timer-clock-first", timer_clock_first},
    {"more-orders", more_orders},
    {"mprotect-poll-order", mprotect_poll_order},
};

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (unsigned i = 0; argc == 2 && i < sizeof cases / sizeof cases[0]; i++)
        if (!strcmp(argv[1], cases[i].name)) return cases[i].fn();
    fprintf(stderr, "usage: fuzz_found CASE\n");
    return 2;
}
