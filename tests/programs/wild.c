/* Hostile arguments: wild pointers into every syscall family.  Each line prints the
 * result and errno, so the km run must match the native one exactly. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case EFAULT: return "EFAULT"; case EINVAL: return "EINVAL"; case EBADF: return "EBADF";
    case ENOENT: return "ENOENT"; case ENOSYS: return "ENOSYS"; case ENOTTY: return "ENOTTY";
    case ENOMEM: return "ENOMEM"; case EPERM: return "EPERM"; case EAGAIN: return "EAGAIN";
    case ESPIPE: return "ESPIPE"; case EEXIST: return "EEXIST"; case ENOTDIR: return "ENOTDIR";
    case EACCES: return "EACCES"; case EISDIR: return "EISDIR"; case ERANGE: return "ERANGE";
    default: { static char b[16]; snprintf(b, sizeof b, "errno%d", e); return b; }
    }
}

#define T(what, ...) do { errno = 0; long r_ = syscall(__VA_ARGS__); printf("%-32s %ld %s\n", what, r_, r_ < 0 ? ename(errno) : ""); } while (0)

static char *bad[] = { (char *)1, (char *)0x1000, (char *)0xdead00000000, (char *)0x7fffffffffff, (char *)0xffffffffffff0000, (char *)-1 };
#define NBAD (sizeof bad / sizeof bad[0])

int main(void) {
    char ok[256];
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    char *hole = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(hole + 4096, 4096);  /* a hole between two mapped pages */
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int timer = -1;
    syscall(SYS_timer_create, CLOCK_MONOTONIC, NULL, &timer);
    for (unsigned i = 0; i < NBAD; i++) {
        char *b = bad[i];
        printf("-- pointer #%u\n", i);
        T("read", SYS_read, p[0], b, 1);
        T("write", SYS_write, 1, b, 5);
        T("open", SYS_open, b, O_RDONLY);
        T("openat", SYS_openat, AT_FDCWD, b, O_RDONLY);
        T("stat", SYS_stat, b, ok);
        T("stat buf", SYS_stat, "/", b);
        T("fstat", SYS_fstat, 0, b);
        T("newfstatat", SYS_newfstatat, AT_FDCWD, "/", b, 0);
        T("readv iov", SYS_readv, p[0], b, 1);
        T("uname", SYS_uname, b);
        T("getrandom", SYS_getrandom, b, 8, 0);
        T("clock_gettime", SYS_clock_gettime, CLOCK_MONOTONIC, b);
        T("gettimeofday", SYS_gettimeofday, b, NULL);
        T("nanosleep", SYS_nanosleep, b, NULL);
        T("pipe", SYS_pipe, b);
        T("rt_sigaction act", SYS_rt_sigaction, SIGUSR1, b, NULL, 8);
        T("rt_sigaction oldact", SYS_rt_sigaction, SIGUSR1, NULL, b, 8);
        T("rt_sigprocmask", SYS_rt_sigprocmask, SIG_BLOCK, b, NULL, 8);
        T("poll", SYS_poll, b, 1, 0);
        T("select", SYS_select, 1, b, NULL, NULL, NULL);
        T("getcwd", SYS_getcwd, b, 100);
        T("readlink", SYS_readlink, "/proc/self/exe", b, 100);
        T("readlink path", SYS_readlink, b, ok, 100);
        T("getrlimit", SYS_getrlimit, RLIMIT_NOFILE, b);
        T("prlimit64 new", SYS_prlimit64, 0, RLIMIT_CORE, b, NULL);
        T("sigaltstack", SYS_sigaltstack, b, NULL);
        T("set_robust_list", SYS_set_robust_list, b, 24);
        T("sysinfo", SYS_sysinfo, b);
        T("fcntl F_GETLK", SYS_fcntl, 0, F_GETLK, b);
        T("ioctl TIOCGWINSZ", SYS_ioctl, p[0], 0x5413, b);
        T("time", SYS_time, b);
        T("mkdir", SYS_mkdir, b, 0755);
        T("access", SYS_access, b, 0);
        T("chdir", SYS_chdir, b);
        T("getdents64", SYS_getdents64, 0, b, 100);
        T("futex", SYS_futex, b, 1, 1, NULL, NULL, 0);
        T("arch_prctl GET_FS", SYS_arch_prctl, 0x1003, b);
        T("timer_create sevp", SYS_timer_create, CLOCK_MONOTONIC, b, ok);
        T("timer_create timerid", SYS_timer_create, CLOCK_MONOTONIC, NULL, b);
        T("timer_settime", SYS_timer_settime, timer, 0, b, NULL);
        T("timer_gettime", SYS_timer_gettime, timer, b);
        T("signalfd4 mask", SYS_signalfd4, -1, b, 8, 0);
        T("clock_settime", SYS_clock_settime, CLOCK_REALTIME, b);
        T("adjtimex", SYS_adjtimex, b);
    }
    printf("-- iovec with a bad base\n");
    struct iovec iov[2] = { { ok, 1 }, { (void *)0xdead00000000, 10 } };
    T("writev bad second iov", SYS_writev, 1, iov, 2);
    iov[0].iov_len = (size_t)-1;
    T("writev negative len", SYS_writev, 1, iov, 1);
    T("writev too many", SYS_writev, 1, iov, 2000);
    printf("-- a hole between mapped pages\n");
    T("read into hole", SYS_read, p[0], hole + 4096, 1);
    T("write from hole", SYS_write, 1, hole + 4096, 1);
    T("write spanning into hole", SYS_write, 1, hole + 4096 - 2, 4);
    T("read into read-only page", SYS_read, p[0], ro, 1);
    T("stat into read-only page", SYS_stat, "/", ro);
    printf("-- bad descriptors and values\n");
    T("close -1", SYS_close, -1);
    T("read fd 1<<32|0", SYS_read, (1L << 32) | 1000, ok, 1);
    T("dup2 to 1<<20", SYS_dup2, 1, 1 << 20);
    T("fcntl bad cmd", SYS_fcntl, 1, 12345, 0);
    T("lseek bad whence", SYS_lseek, 0, 0, 99);
    T("mmap no type", SYS_mmap, NULL, 4096, PROT_READ, MAP_ANONYMOUS, -1, 0);
    T("munmap beyond", SYS_munmap, 0xffffffffff000000, 4096);
    T("rt_sigaction SIGKILL", SYS_rt_sigaction, SIGKILL, ok, NULL, 8);
    T("rt_sigaction size 4", SYS_rt_sigaction, SIGUSR1, NULL, NULL, 4);
    T("rt_sigaction sig 65", SYS_rt_sigaction, 65, NULL, NULL, 8);
    T("ioctl unknown", SYS_ioctl, 1, 0xdeadbeef, 0);
    T("unknown syscall 1000", 1000);
    T("arch_prctl bad code", SYS_arch_prctl, 0x9999, 0);
    T("set_robust_list bad len", SYS_set_robust_list, ok, 23);
    T("getrandom bad flags", SYS_getrandom, ok, 8, 0x100);
    T("clock_gettime bad clock", SYS_clock_gettime, 12345, ok);
    return 0;
}
