/* Answers of calls that third-party suites compare with Linux: ru_maxrss (the program's,
 * not its monitor's), get_robust_list of another task, setpgid of a child that has
 * exec'd (EACCES), setpriority and getpriority of a process group, ioprio_set and
 * ioprio_get of a thread, a group and a user, splice into a
 * signalfd or a /proc file, accept on a signalfd (LTP's accept03) and a timerfd's
 * TFD_IOC_SET_TICKS (which used to hang), timerfd settings (past absolute times, cancel-on-set's rules), openat2's RESOLVE_NO_MAGICLINKS,
 * PR_SET_KEEPCAPS across a change of user, and a child writing into a pipe nobody reads
 * (EPIPE or SIGPIPE, exec'd or not, 20 times over), pidfd_send_signal to the process
 * itself (handled before the call returns, as kill's), /proc/cpuinfo's cpuid_fault flag
 * and ARCH_SET_CPUID agreeing (LTP's arch_prctl01).  One line per check; run as root
 * and as an unprivileged user.
 * ioctls of one kind of file (NS_GET_*, PIDFD_GET_INFO) and device getters.
 *   answers maxrss|robust|setpgid|priority|splice|timerfd|magiclinks|keepcaps|epipe|pidfd|cpuid|ioctls */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

/* (musl's headers have no linux/ ones: the kernel's structures as the ABI gives them) */
struct open_how { unsigned long long flags, mode, resolve; };
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
struct cap_header { unsigned version; int pid; };
struct cap_data { unsigned effective, permitted, inheritable; };
#define CAP_VERSION_3 0x20080522
#ifndef SYS_openat2
#define SYS_openat2 437
#endif

#define MIB (1L << 20)
#define TOUCHED (64 * MIB)
#define CLOSE_KB (16 * 1024)  /* how near a size in KiB must be */

static long ret(long r) { return r < 0 ? -errno : r; }
#define SHOW(what, expr) printf("%-56s %ld\n", what, ret(expr))

static int near(long kib, long bytes) { return labs(kib - bytes / 1024) <= CLOSE_KB; }

static void touch(long bytes) {
    volatile char *m = malloc(bytes);
    for (long i = 0; i < bytes; i += 4096) m[i] = 1;
}

static void maxrss(void) {
    struct rusage self, children, waited;
    getrusage(RUSAGE_SELF, &self);
    printf("ru_maxrss of a small program is small: %d\n", self.ru_maxrss < CLOSE_KB);
    int fds[2];
    pipe(fds);
    pid_t pid = fork();
    if (pid == 0) {
        touch(TOUCHED);
        struct rusage own;
        getrusage(RUSAGE_SELF, &own);
        char ok = near(own.ru_maxrss, TOUCHED);
        write(fds[1], &ok, 1);
        _exit(0);
    }
    char ok = 0;
    read(fds[0], &ok, 1);
    printf("a child that touched 64 MiB: its own ru_maxrss is 64 MiB: %d\n", ok);
    int st;
    wait4(pid, &st, 0, &waited);
    printf("  wait4's ru_maxrss is 64 MiB: %d\n", near(waited.ru_maxrss, TOUCHED));
    getrusage(RUSAGE_CHILDREN, &children);
    printf("  RUSAGE_CHILDREN's ru_maxrss is 64 MiB: %d\n", near(children.ru_maxrss, TOUCHED));
    pid = fork();
    if (pid == 0) {  /* a child's children: none waited for yet */
        struct rusage own;
        getrusage(RUSAGE_CHILDREN, &own);
        _exit(own.ru_maxrss == 0);
    }
    waitpid(pid, &st, 0);
    printf("a new child's RUSAGE_CHILDREN ru_maxrss is 0: %d\n", WEXITSTATUS(st));
}

static void *idle(void *arg) {
    pause();
    return arg;
}

static void robust_lists(int unprivileged) {
    void *head;
    size_t len;
    SHOW("get_robust_list of this process", syscall(SYS_get_robust_list, getpid(), &head, &len));
    pthread_t t;
    pthread_create(&t, NULL, idle, NULL);
    SHOW("get_robust_list of a pid that does not exist", syscall(SYS_get_robust_list, 4000000, &head, &len));
    SHOW("get_robust_list of pid -1", syscall(SYS_get_robust_list, -1, &head, &len));
    if (unprivileged)  /* (root may read another user's) */
        SHOW("get_robust_list of pid 1", syscall(SYS_get_robust_list, 1, &head, &len));
    SHOW("get_robust_list into a bad pointer", syscall(SYS_get_robust_list, 0, (void *)8, &len));
}

static void process_groups(void) {
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/busybox", "busybox", "sleep", "30", (char *)NULL);
        _exit(1);
    }
    int fds[2];
    pipe(fds);
    pid_t plain = fork();
    if (plain == 0) {
        char c;
        close(fds[1]);
        read(fds[0], &c, 1);
        _exit(0);
    }
    close(fds[0]);
    /* a child that has exec'd: wait until it has (its comm is busybox, not this program's) */
    char path[64], comm[32] = {0};
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    for (int i = 0; i < 30000 && strncmp(comm, "busybox", 7); i++) {
        int fd = open(path, O_RDONLY);
        memset(comm, 0, sizeof comm);
        read(fd, comm, sizeof comm - 1);
        close(fd);
        usleep(1000);
    }
    SHOW("setpgid of a child that has exec'd", setpgid(pid, pid));
    SHOW("setpgid of a child that has exec'd, to pgid 0", setpgid(pid, 0));
    SHOW("setpgid of a child that has not", setpgid(plain, plain));
    SHOW("setpgid of a child back to this group", setpgid(plain, getpgrp()));
    kill(pid, SIGKILL);
    close(fds[1]);
    waitpid(pid, NULL, 0);
    waitpid(plain, NULL, 0);
}

static void priorities(int unprivileged) {
    int st;
    pid_t pid = fork();
    if (pid == 0) {  /* a group of its own, and (for root) another user */
        if (!unprivileged) setuid(65534);
        setpgid(0, 0);
        printf("setpriority of this thread, lower nice: %ld\n", ret(setpriority(PRIO_PROCESS, 0, -2)));
        printf("setpriority of the group, lower nice: %ld\n", ret(setpriority(PRIO_PGRP, 0, -2)));
        printf("setpriority of the group, nice 3: %ld\n", ret(setpriority(PRIO_PGRP, 0, 3)));
        errno = 0;
        long prio = getpriority(PRIO_PGRP, 0);
        printf("getpriority of the group: %ld %d\n", prio, errno);
        errno = 0;
        prio = getpriority(PRIO_PROCESS, 0);
        printf("getpriority of this thread: %ld %d\n", prio, errno);
        printf("setpriority of a group that does not exist: %ld\n", ret(setpriority(PRIO_PGRP, 4000000, 3)));
        printf("setpriority of pid 1: %ld\n", ret(setpriority(PRIO_PROCESS, 1, 3)));
        printf("setpriority of a pid that does not exist: %ld\n", ret(setpriority(PRIO_PROCESS, 4000000, 3)));
        printf("setpriority with a bad which: %ld\n", ret(setpriority(7, 0, 3)));
        /* I/O priorities (LTP's ioprio_get01, ioprio_set01-03: ENOSYS under km) */
#define IOPRIO(class, data) (((class) << 13) | (data))
        printf("ioprio_get of this thread: %ld\n", ret(syscall(SYS_ioprio_get, 1, 0)));
        printf("ioprio_set of this thread, best-effort 3: %ld\n", ret(syscall(SYS_ioprio_set, 1, 0, IOPRIO(2, 3))));
        printf("ioprio_get of this thread: %ld\n", ret(syscall(SYS_ioprio_get, 1, 0)));
        printf("ioprio_get of this process by pid: %ld\n", ret(syscall(SYS_ioprio_get, 1, getpid())));
        printf("ioprio_set of the group, best-effort 5: %ld\n", ret(syscall(SYS_ioprio_set, 2, 0, IOPRIO(2, 5))));
        printf("ioprio_get of the group: %ld\n", ret(syscall(SYS_ioprio_get, 2, 0)));
        printf("ioprio_set of the group, idle: %ld\n", ret(syscall(SYS_ioprio_set, 2, 0, IOPRIO(3, 0))));
        printf("ioprio_get of this thread: %ld\n", ret(syscall(SYS_ioprio_get, 1, 0)));
        printf("ioprio_set real-time: %ld\n", ret(syscall(SYS_ioprio_set, 1, 0, IOPRIO(1, 0))));
        printf("ioprio_set of a bad class: %ld\n", ret(syscall(SYS_ioprio_set, 1, 0, IOPRIO(5, 0))));
        printf("ioprio_set of a bad level: %ld\n", ret(syscall(SYS_ioprio_set, 1, 0, IOPRIO(2, 8))));
        printf("ioprio_set with a bad which: %ld\n", ret(syscall(SYS_ioprio_set, 7, 0, IOPRIO(2, 3))));
        printf("ioprio_get with a bad which: %ld\n", ret(syscall(SYS_ioprio_get, 7, 0)));
        printf("ioprio_set of a pid that does not exist: %ld\n", ret(syscall(SYS_ioprio_set, 1, 4000000, IOPRIO(2, 3))));
        printf("ioprio_get of a group that does not exist: %ld\n", ret(syscall(SYS_ioprio_get, 2, 4000000)));
        printf("ioprio_set of pid 1: %ld\n", ret(syscall(SYS_ioprio_set, 1, 1, IOPRIO(2, 3))));
        printf("ioprio_get of this user answers: %d\n", ret(syscall(SYS_ioprio_get, 3, 0)) >= 0);
        _exit(0);
    }
    waitpid(pid, &st, 0);
}

static void hangs(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, 0);
    int p[2];
    pipe(p);
    SHOW("splice from an empty pipe into a signalfd", splice(p[0], NULL, sfd, NULL, 16, 0));
    SHOW("splice from a pipe's write end into a signalfd", splice(p[1], NULL, sfd, NULL, 16, 0));
    SHOW("splice of 0 bytes into a signalfd", splice(p[0], NULL, sfd, NULL, 0, 0));
    SHOW("accept on a signalfd", accept(sfd, NULL, NULL));
    SHOW("accept4 on a signalfd", accept4(sfd, NULL, NULL, SOCK_CLOEXEC));
    int stat = open("/proc/self/stat", O_RDONLY);
    SHOW("splice from an empty pipe into /proc/self/stat", splice(p[0], NULL, stat, NULL, 16, 0));
    SHOW("write to /proc/self/stat opened read-only", write(stat, "x", 1));
    SHOW("/proc/self/stat is close-on-exec without O_CLOEXEC", fcntl(stat, F_GETFD));
    close(stat);
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    uint64_t ticks = 3;
    SHOW("TFD_IOC_SET_TICKS", ioctl(tfd, 0x40085400, &ticks));
    SHOW("TFD_IOC_SET_TICKS of a bad pointer", ioctl(tfd, 0x40085400, (void *)8));
    uint64_t n = 0;
    long r = ret(read(tfd, &n, sizeof n));
    printf("%-56s %ld %llu\n", "then a read", r, (unsigned long long)n);
    close(tfd);
    close(sfd);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static void timerfds(void) {
    alarm(10); /* a hang is a failure, not a stuck test */
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = {0}, old;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    its.it_value.tv_sec = now.tv_sec - 5; /* absolute, in the past: expires at once */
    SHOW("timerfd_settime absolute in the past", timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL));
    uint64_t n = 0;
    SHOW("then a read (8 bytes)", read(tfd, &n, sizeof n));
    printf("%-56s %llu\n", "expirations", (unsigned long long)n);
    its.it_value.tv_sec = 0, its.it_value.tv_nsec = 0;
    SHOW("timerfd_settime 0: disarmed", timerfd_settime(tfd, 0, &its, &old));
    SHOW("timerfd_settime bad flags", timerfd_settime(tfd, 8, &its, NULL));
    its.it_value.tv_nsec = 1000000000;
    SHOW("timerfd_settime nsec out of range", timerfd_settime(tfd, 0, &its, NULL));
    its.it_value.tv_nsec = 0, its.it_value.tv_sec = 100;
    SHOW("cancel-on-set of a monotonic timer", timerfd_settime(tfd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its,
                                                              NULL));
    SHOW("timerfd_settime bad pointer", timerfd_settime(tfd, 0, (void *)8, NULL));
    SHOW("timerfd_gettime bad pointer", timerfd_gettime(tfd, (void *)8));
    close(tfd);
    tfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    clock_gettime(CLOCK_REALTIME, &now);
    its.it_value.tv_sec = now.tv_sec + 100;
    SHOW("cancel-on-set of a realtime timer", timerfd_settime(tfd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its,
                                                             NULL));
    SHOW("a read before it expires (nonblocking)", read(tfd, &n, sizeof n));
    SHOW("cancel-on-set without ABSTIME", timerfd_settime(tfd, TFD_TIMER_CANCEL_ON_SET, &its, NULL));
    close(tfd);
    alarm(0);
}

static long open2(const char *path, unsigned long long resolve) {
    struct open_how how = {.flags = O_RDONLY, .resolve = resolve};
    long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return -errno;
}

static void magiclinks(const char *dir) {
    char link[4096];
    snprintf(link, sizeof link, "%s/to-cwd", dir);
    symlink("/proc/self/cwd", link);
    const char *paths[] = {"/proc/self/exe", "/proc/self/fd/0", "/proc/self/cwd", "/proc/self/root/etc/hostname",
                           "/proc/self", "/proc/thread-self/exe", link, "/etc/hostname"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        const char *name = paths[i] == link ? "a symlink to /proc/self/cwd" : paths[i];
        printf("%-40s plain %ld  no-magiclinks %ld  no-symlinks %ld\n", name, open2(paths[i], 0),
               open2(paths[i], RESOLVE_NO_MAGICLINKS), open2(paths[i], RESOLVE_NO_SYMLINKS));
    }
    unlink(link);
}

/* the effective and permitted sets' low words */
static void show_caps(const char *when) {
    struct cap_header h = {CAP_VERSION_3, 0};
    struct cap_data d[2];
    syscall(SYS_capget, &h, d);
    /* (less CAP_SYS_PTRACE, which a km running as root gives up for itself: docs/security.md) */
    unsigned mask = ~(1u << 19);
    printf("%-40s effective %08x permitted %08x keepcaps %d\n", when, d[0].effective & mask, d[0].permitted & mask,
           prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
}

static void keepcaps(void) {
    SHOW("PR_GET_KEEPCAPS", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
    SHOW("PR_SET_KEEPCAPS 1", prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
    SHOW("PR_GET_KEEPCAPS", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
    SHOW("PR_GET_SECUREBITS", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
    SHOW("PR_SET_KEEPCAPS with more arguments", prctl(PR_SET_KEEPCAPS, 1, 1, 0, 0));
    for (int keep = 0; keep < 2; keep++) {
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_KEEPCAPS, keep, 0, 0, 0);
            show_caps(keep ? "before setresuid (kept)" : "before setresuid");
            long r = ret(setresuid(65534, 65534, 65534));
            printf("%-40s %ld\n", "setresuid to nobody", r);
            show_caps(keep ? "after it (kept)" : "after it");
            SHOW("PR_SET_KEEPCAPS 0 again", prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0));
            _exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
    }
}

/* a child writes into a pipe whose read end is closed: SIGPIPE at its default kills it,
 * ignored it gets EPIPE; directly, through stdout, or after exec */
static void epipe_child(int fd, int ignore) {
    if (ignore)
        signal(SIGPIPE, SIG_IGN);
    else
        signal(SIGPIPE, SIG_DFL);
    long r = write(fd, "x", 1);
    _exit(r < 0 && errno == EPIPE ? 32 : 33);
}

static void epipe(const char *self) {
    int counts[6][4] = {{0}};
    for (int round = 0; round < 20; round++)
        for (int how = 0; how < 6; how++) {
            int p[2];
            pipe(p);
            close(p[0]);
            pid_t pid = fork();
            if (pid == 0) {
                int ignore = how & 1;
                if (how >= 4) { /* exec'd: the new program writes to its stdout */
                    dup2(p[1], 1);
                    char *args[] = {(char *)self, "epipe-writer", ignore ? "1" : "0", NULL};
                    execv(self, args);
                    _exit(34);
                }
                if (how >= 2) {
                    dup2(p[1], 1);
                    epipe_child(1, ignore);
                }
                epipe_child(p[1], ignore);
            }
            close(p[1]);
            int st;
            waitpid(pid, &st, 0);
            if (WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE)
                counts[how][0]++;
            else if (WIFEXITED(st) && WEXITSTATUS(st) == 32)
                counts[how][1]++;
            else
                counts[how][2]++;
        }
    const char *names[] = {"a pipe", "a pipe, SIGPIPE ignored", "stdout", "stdout, SIGPIPE ignored",
                           "stdout after exec", "stdout after exec, SIGPIPE ignored"};
    for (int how = 0; how < 6; how++)
        printf("write to %-40s SIGPIPE %d EPIPE %d other %d\n", names[how], counts[how][0], counts[how][1],
               counts[how][2]);
}

static volatile sig_atomic_t caught, caught_code, caught_value;

static void on_usr1(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    caught = sig;
    caught_code = si->si_code;
    caught_value = si->si_value.sival_int;
}

/* CPython's test_signal: a SIGINT sent to itself through a /proc/PID descriptor must be
 * raised before pidfd_send_signal returns */
static void pidfd_signals(void) {
    struct sigaction sa = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO};
    sigaction(SIGUSR1, &sa, NULL);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", getpid());
    int fds[2] = {(int)syscall(434, getpid(), 0), open(path, O_DIRECTORY)};  /* pidfd_open; /proc/PID */
    const char *names[] = {"a pidfd", "a /proc/PID directory"};
    for (int i = 0; i < 2; i++) {
        caught = caught_code = caught_value = 0;
        long r = syscall(424, fds[i], SIGUSR1, NULL, 0);
        int at_return = caught;
        printf("%s: SIGUSR1 %ld, handled at return %d, si_code %d\n", names[i], r < 0 ? -errno : r,
               at_return == SIGUSR1, caught_code);
        siginfo_t si;
        memset(&si, 0, sizeof si);
        si.si_signo = SIGUSR1;
        si.si_code = SI_QUEUE;
        si.si_value.sival_int = 42 + i;
        caught = 0;
        r = syscall(424, fds[i], SIGUSR1, &si, 0);
        printf("%s: with a siginfo %ld, handled at return %d, si_code %d, value %d\n", names[i],
               r < 0 ? -errno : r, caught == SIGUSR1, caught_code, caught_value);
        si.si_code = SI_KERNEL;
        caught = 0;
        r = syscall(424, fds[i], SIGUSR1, &si, 0);
        printf("%s: an SI_KERNEL siginfo to itself %ld, handled %d\n", names[i], r < 0 ? -errno : r,
               caught == SIGUSR1);
        r = syscall(424, fds[i], SIGUSR2, &si, 0);
        printf("%s: a siginfo of another signal %ld\n", names[i], r < 0 ? -errno : r);
        r = syscall(424, fds[i], SIGUSR1, (void *)8, 0);
        printf("%s: a bad siginfo pointer %ld\n", names[i], r < 0 ? -errno : r);
        printf("%s: signal 0 %ld\n", names[i], syscall(424, fds[i], 0, NULL, 0) < 0 ? -errno : 0L);
        printf("%s: signal 99 %ld\n", names[i], syscall(424, fds[i], 99, NULL, 0) < 0 ? -errno : 0L);
        printf("%s: flags 8 %ld\n", names[i], syscall(424, fds[i], SIGUSR1, NULL, 8) < 0 ? -errno : 0L);
        printf("%s: flags 3 %ld\n", names[i], syscall(424, fds[i], SIGUSR1, NULL, 3) < 0 ? -errno : 0L);
    }
    int null = open("/dev/null", O_RDONLY);
    printf("/dev/null: %ld\n", syscall(424, null, SIGUSR1, NULL, 0) < 0 ? -errno : 0L);
    printf("a closed descriptor: %ld\n", syscall(424, 999, SIGUSR1, NULL, 0) < 0 ? -errno : 0L);
    pid_t child = fork();
    if (child == 0) { pause(); _exit(0); }
    int cfd = (int)syscall(434, child, 0), status;
    printf("a child's pidfd, SIGTERM: %ld\n", syscall(424, cfd, SIGTERM, NULL, 0) < 0 ? -errno : 0L);
    waitpid(child, &status, 0);
    printf("the child: signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
}

/* what /proc/cpuinfo's flags say of CPUID faulting, and what arch_prctl does */
static void cpuid_fault(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[16384];
    int flag = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5) && (strstr(line, " cpuid_fault ") || strstr(line, " cpuid_fault\n")))
            flag = 1;
    if (f) fclose(f);
    long r = syscall(SYS_arch_prctl, 0x1012, 1);  /* ARCH_SET_CPUID: CPUID stays allowed */
    printf("ARCH_SET_CPUID works where cpuinfo has cpuid_fault: %d\n", flag == (r == 0));
    printf("or else fails with ENODEV: %d\n", flag || errno == ENODEV);
}

/* ioctls of one kind of file, and device getters (LTP's ioctl03, ioctl07, ioctl_ns02-04:
 * ENOTTY under km; PIDFD_GET_INFO is what ioctl_pidfd02-06 ask) */
struct pidfd_info72 {
    uint64_t mask, cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
    uint32_t coredump_mask, spare;
};
#define PIDFD_GET_INFO72 _IOWR(0xFF, 11, struct pidfd_info72)
#define PIDFD_GET_INFO32 _IOWR(0xFF, 11, char[32])

static void ioctls(void) {
    int v = -1;
    int fd = open("/dev/urandom", O_RDONLY);
    long r = ret(ioctl(fd, _IOR('R', 0x00, int), &v));
    printf("RNDGETENTCNT: %ld, a count: %d\n", r, r == 0 && v >= 0);
    SHOW("RNDGETENTCNT into a wild pointer", ioctl(fd, _IOR('R', 0x00, int), (void *)0x400000000000UL));
    close(fd);
    fd = open("/dev/net/tun", O_RDWR);
    unsigned features = 0;
    r = fd < 0 ? -1 : ret(ioctl(fd, _IOR('T', 207, unsigned int), &features));
    printf("TUNGETFEATURES (or no tun): %ld, IFF_TUN: %d\n", r, fd < 0 || (features & 1) != 0);
    if (fd >= 0) close(fd);

    int tcp = socket(AF_INET, SOCK_STREAM, 0), udp = socket(AF_INET, SOCK_DGRAM, 0);
    v = -1;
    SHOW("SIOCATMARK of a TCP socket (LTP's sockioctl01)", ioctl(tcp, 0x8905, &v));
    printf("  at the mark: %d\n", v);
    SHOW("SIOCATMARK into NULL", ioctl(tcp, 0x8905, NULL));
    SHOW("SIOCATMARK of a UDP socket", ioctl(udp, 0x8905, &v));
    close(tcp);
    close(udp);

    int ns = open("/proc/self/ns/pid", O_RDONLY);
    SHOW("NS_GET_NSTYPE of ns/pid is CLONE_NEWPID", ioctl(ns, 0xb703) == 0x20000000);
    SHOW("NS_GET_PARENT of the first pid namespace", ioctl(ns, 0xb702));
    int userns = ioctl(ns, 0xb701);
    struct stat a, b;
    fstat(userns, &a);
    stat("/proc/self/ns/user", &b);
    printf("NS_GET_USERNS: a descriptor of ns/user: %d\n", userns >= 0 && a.st_ino == b.st_ino);
    uid_t owner = 12345;
    SHOW("NS_GET_OWNER_UID of the user namespace", ioctl(userns, 0xb704, &owner));
    printf("  the owner is uid 0: %d\n", owner == 0);
    SHOW("NS_GET_OWNER_UID into a wild pointer", ioctl(userns, 0xb704, (void *)0x400000000000UL));
    SHOW("NS_GET_OWNER_UID of a pid namespace", ioctl(ns, 0xb704, &owner));
    int plain = open("/proc/self/status", O_RDONLY);
    SHOW("NS_GET_NSTYPE of another file", ioctl(plain, 0xb703));
    SHOW("NS_GET_USERNS of another file", ioctl(plain, 0xb701));
    SHOW("NS_GET_NSTYPE of a descriptor not open", ioctl(900, 0xb703));
    close(userns);

    int p[2];
    pipe(p);
    pid_t child = fork();
    if (child == 0) {
        char c;
        read(p[0], &c, 1);
        _exit(42);
    }
    int pidfd = syscall(SYS_pidfd_open, child, 0);
    struct pidfd_info72 info = {0};
    SHOW("PIDFD_GET_INFO of a child", ioctl(pidfd, PIDFD_GET_INFO72, &info));
    printf("  pid, tgid, ppid, ruid are the child's: %d %d %d %d\n", info.pid == (uint32_t)child,
           info.tgid == (uint32_t)child, info.ppid == (uint32_t)getpid(), info.ruid == getuid());
    printf("  mask has PID and CREDS, not EXIT: %d\n", (info.mask & 3) == 3 && !(info.mask & 8));
    write(p[1], "x", 1);
    siginfo_t si;
    waitid(P_PID, child, &si, WEXITED | WNOWAIT);
    memset(&info, 0, sizeof info);
    info.mask = 8;  /* PIDFD_INFO_EXIT */
    SHOW("PIDFD_GET_INFO of a child that exited, not reaped", ioctl(pidfd, PIDFD_GET_INFO72, &info));
    printf("  its exit status: %d %d\n", !!(info.mask & 8), info.exit_code);
    SHOW("PIDFD_GET_INFO into a wild pointer", ioctl(pidfd, PIDFD_GET_INFO72, (void *)0x400000000000UL));
    char small[32];
    SHOW("PIDFD_GET_INFO of 32 bytes", ioctl(pidfd, PIDFD_GET_INFO32, small));
    waitpid(child, NULL, 0);
    SHOW("PIDFD_GET_INFO of a child reaped", ioctl(pidfd, PIDFD_GET_INFO72, &info));
    SHOW("PIDFD_GET_INFO of another file", ioctl(plain, PIDFD_GET_INFO72, &info));
    int self = syscall(SYS_pidfd_open, getpid(), 0);
    memset(&info, 0, sizeof info);
    SHOW("PIDFD_GET_INFO of this process", ioctl(self, PIDFD_GET_INFO72, &info));
    printf("  pid and ppid: %d %d\n", info.pid == (uint32_t)getpid(), info.ppid == (uint32_t)getppid());
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 2 && !strcmp(argv[1], "epipe-writer"))
        epipe_child(1, atoi(argv[2]));
    int unprivileged = geteuid() != 0;
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "maxrss")) maxrss();
    else if (!strcmp(what, "robust")) robust_lists(unprivileged);
    else if (!strcmp(what, "setpgid")) process_groups();
    else if (!strcmp(what, "priority")) priorities(unprivileged);
    else if (!strcmp(what, "splice")) hangs();
    else if (!strcmp(what, "timerfd")) timerfds();
    else if (!strcmp(what, "magiclinks")) magiclinks(argc > 2 ? argv[2] : "/tmp");
    else if (!strcmp(what, "keepcaps")) keepcaps();
    else if (!strcmp(what, "epipe")) epipe(argv[0]);
    else if (!strcmp(what, "pidfd")) pidfd_signals();
    else if (!strcmp(what, "cpuid")) cpuid_fault();
    else if (!strcmp(what, "ioctls")) ioctls();
    else return 2;
    return 0;
}
