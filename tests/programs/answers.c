/* Answers of calls that third-party suites compare with Linux: ru_maxrss (the program's,
 * not its monitor's), get_robust_list of another task, setpgid of a child that has
 * exec'd (EACCES), setpriority and getpriority of a process group, splice into a
 * signalfd or a /proc file and a timerfd's TFD_IOC_SET_TICKS (which used to hang).  One
 * line per check; run as root and as an unprivileged user.
 *   answers maxrss|robust|setpgid|priority|splice */
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
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

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

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int unprivileged = geteuid() != 0;
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "maxrss")) maxrss();
    else if (!strcmp(what, "robust")) robust_lists(unprivileged);
    else if (!strcmp(what, "setpgid")) process_groups();
    else if (!strcmp(what, "priority")) priorities(unprivileged);
    else if (!strcmp(what, "splice")) hangs();
    else return 2;
    return 0;
}
