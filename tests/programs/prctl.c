/* prctl as Linux answers it: the thread's name (PR_SET/GET_NAME), the TSC mode, the
 * errors of the options that need privileges, and the comm a process has after an exec
 * (the basename of the name given to execve, before symlinks are followed).
 * One line per check, printed with what the call returned, so that a run as root and a
 * run as an unprivileged user each compare with native.
 *   prctl                the thread's name, the TSC mode, the options' errors
 *   prctl exec DIR       comm after exec (DIR: a writable directory)
 *   prctl comm           print this process's comm (prctl, /proc/self/comm, stat) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_SET_TSC
#define PR_GET_TSC 25
#define PR_SET_TSC 26
#define PR_TSC_ENABLE 1
#define PR_TSC_SIGSEGV 2
#endif
#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#define PR_GET_IO_FLUSHER 58
#endif
#ifndef PR_SET_MM
#define PR_SET_MM 35
#endif
#define CAP_NET_RAW_ 13
#define CAP_SYS_ADMIN_ 21
#define PR_SET_MM_START_BRK_ 6
#define PR_SET_MM_MAP_SIZE_ 15
#define PR_SET_VMA_ 0x53564d41

static long pr(long opt, long a2, long a3, long a4, long a5) {
    long r = syscall(SYS_prctl, opt, a2, a3, a4, a5);
    return r < 0 ? -errno : r;
}

#define SHOW(what, expr) do { long r_ = (expr); printf("%-44s %ld\n", what, r_); } while (0)

static void read_file(const char *path, char *out, size_t n) {
    int fd = open(path, O_RDONLY);
    ssize_t r = fd >= 0 ? read(fd, out, n - 1) : -1;
    out[r > 0 ? r : 0] = 0;
    if (fd >= 0) close(fd);
    char *nl = strchr(out, '\n');
    if (nl) *nl = 0;
}

/* comm three ways: PR_GET_NAME, /proc/self/comm, and the (comm) of /proc/self/stat */
static int comm_mode(void) {
    char name[17] = {0}, comm[64], stat[512];
    prctl(PR_GET_NAME, name);
    read_file("/proc/self/comm", comm, sizeof comm);
    read_file("/proc/self/stat", stat, sizeof stat);
    char *open_ = strchr(stat, '('), *close_ = strrchr(stat, ')');
    if (open_ && close_) *close_ = 0;
    printf("prctl %s, comm %s, stat %s\n", name, comm, open_ ? open_ + 1 : "?");
    return 0;
}

static void *thread_name(void *arg) {
    char name[17] = {0}, comm[64], path[64];
    prctl(PR_SET_NAME, "worker-thread-1");
    prctl(PR_GET_NAME, name);
    snprintf(path, sizeof path, "/proc/self/task/%ld/comm", (long)syscall(SYS_gettid));
    read_file(path, comm, sizeof comm);
    printf("a thread's own name: %s, its comm %s\n", name, comm);
    (void)arg;
    return NULL;
}

static void names(void) {
    char buf[32];
    memset(buf, 'X', sizeof buf);
    SHOW("PR_SET_NAME a long name", pr(PR_SET_NAME, (long)"a-name-longer-than-16", 0, 0, 0));
    SHOW("PR_GET_NAME", pr(PR_GET_NAME, (long)buf, 0, 0, 0));
    printf("the name: %s; bytes 15-17: %d %d %d\n", buf, buf[15], buf[16], buf[17]);
    char comm[64];
    read_file("/proc/self/comm", comm, sizeof comm);
    printf("/proc/self/comm: %s\n", comm);
    /* a name at the very end of readable memory, without its NUL: Linux reads 15 bytes */
    char *page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(page + 4096, 4096);
    memcpy(page + 4096 - 15, "fifteen-bytes-x", 15);
    SHOW("PR_SET_NAME of 15 bytes at a page's end", pr(PR_SET_NAME, (long)(page + 4096 - 15), 0, 0, 0));
    pr(PR_GET_NAME, (long)buf, 0, 0, 0);
    printf("the name: %s\n", buf);
    SHOW("PR_SET_NAME of a bad pointer", pr(PR_SET_NAME, 8, 0, 0, 0));
    SHOW("PR_GET_NAME into a bad pointer", pr(PR_GET_NAME, 8, 0, 0, 0));
    SHOW("PR_GET_NAME into the last 15 bytes", pr(PR_GET_NAME, (long)(page + 4096 - 15), 0, 0, 0));
    pthread_t th;
    pthread_create(&th, NULL, thread_name, NULL);
    pthread_join(th, NULL);
    pr(PR_GET_NAME, (long)buf, 0, 0, 0);
    printf("the main thread's name is still: %s\n", buf);
    prctl(PR_SET_NAME, "prctl");
}

static void *tsc_thread(void *arg) {
    int m = 0;
    prctl(PR_GET_TSC, &m);
    *(int *)arg = m;
    return NULL;
}

/* the TSC mode survives exec and is inherited by threads and children */
static int tsc_mode(void) {
    int m = 0, in_thread = 0;
    prctl(PR_GET_TSC, &m);
    pthread_t th;
    pthread_create(&th, NULL, tsc_thread, &in_thread);
    pthread_join(th, NULL);
    pid_t p = fork();
    if (p == 0) {
        int c = 0;
        prctl(PR_GET_TSC, &c);
        _exit(c);
    }
    int st;
    waitpid(p, &st, 0);
    printf("after exec: tsc mode %d, in a new thread %d, in a child %d\n", m, in_thread, WEXITSTATUS(st));
    unsigned lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return 5;
}

static void tsc(const char *self) {
    int mode = -1;
    SHOW("PR_GET_TSC", pr(PR_GET_TSC, (long)&mode, 0, 0, 0));
    printf("tsc mode %d\n", mode);
    SHOW("PR_GET_TSC into a bad pointer", pr(PR_GET_TSC, 8, 0, 0, 0));
    SHOW("PR_SET_TSC 0", pr(PR_SET_TSC, 0, 0, 0, 0));
    SHOW("PR_SET_TSC 3", pr(PR_SET_TSC, 3, 0, 0, 0));
    SHOW("PR_SET_TSC ENABLE", pr(PR_SET_TSC, PR_TSC_ENABLE, 0, 0, 0));
    pid_t p = fork();
    if (p == 0) {  /* rdtsc faults with SIGSEGV once it is disabled */
        if (pr(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0) != 0) _exit(1);
        int m = 0;
        pr(PR_GET_TSC, (long)&m, 0, 0, 0);
        if (m != PR_TSC_SIGSEGV) _exit(2);
        unsigned lo, hi;
        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        _exit(3);
    }
    int st;
    waitpid(p, &st, 0);
    printf("PR_TSC_SIGSEGV then rdtsc: %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
           WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    p = fork();
    if (p == 0) {  /* and works again once enabled */
        pr(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0);
        pr(PR_SET_TSC, PR_TSC_ENABLE, 0, 0, 0);
        unsigned lo, hi;
        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        _exit(4);
    }
    waitpid(p, &st, 0);
    printf("PR_TSC_SIGSEGV, ENABLE, then rdtsc: %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
           WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    p = fork();
    if (p == 0) {
        pr(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0);
        execl(self, "prctl", "tsc-mode", NULL);
        _exit(6);
    }
    waitpid(p, &st, 0);
    printf("PR_TSC_SIGSEGV, exec, then rdtsc: %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
           WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

/* an option that writes an int where arg2 points: what it returned and wrote */
static void show_int(const char *what, long opt) {
    int value = -1;
    long r = pr(opt, (long)&value, 0, 0, 0);
    printf("%-44s %ld, %d\n", what, r, value);
}

/* options with plain arguments: what each returns, in order (a setting is undone later
 * in the list, or by the caller) */
static const struct { const char *what; long opt, a2, a3; } PLAIN[] = {
    {"PR_CAPBSET_READ CAP_SYS_ADMIN", PR_CAPBSET_READ, CAP_SYS_ADMIN_, 0},
    {"PR_CAPBSET_READ 99", PR_CAPBSET_READ, 99, 0},
    {"PR_CAP_AMBIENT IS_SET CAP_NET_RAW", PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_RAW_},
    {"PR_CAP_AMBIENT RAISE CAP_NET_RAW", PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW_},
    {"PR_CAP_AMBIENT 99", PR_CAP_AMBIENT, 99, 0},
    {"PR_GET_SECUREBITS", PR_GET_SECUREBITS, 0, 0},
    {"PR_GET_KEEPCAPS", PR_GET_KEEPCAPS, 0, 0},
    {"PR_SET_KEEPCAPS 2", PR_SET_KEEPCAPS, 2, 0},
    {"PR_SET_DUMPABLE 2", PR_SET_DUMPABLE, 2, 0},
    {"PR_SET_DUMPABLE 0", PR_SET_DUMPABLE, 0, 0},
    {"PR_GET_DUMPABLE", PR_GET_DUMPABLE, 0, 0},
    {"PR_SET_DUMPABLE 1", PR_SET_DUMPABLE, 1, 0},
    {"PR_SET_NO_NEW_PRIVS 2", PR_SET_NO_NEW_PRIVS, 2, 0},
    {"PR_GET_NO_NEW_PRIVS with an argument", PR_GET_NO_NEW_PRIVS, 1, 0},
    {"PR_SET_PDEATHSIG 99", PR_SET_PDEATHSIG, 99, 0},
    {"PR_SET_PDEATHSIG SIGUSR1", PR_SET_PDEATHSIG, 10, 0},
    {"PR_GET_PDEATHSIG into a bad pointer", PR_GET_PDEATHSIG, 8, 0},
    {"PR_SET_TIMERSLACK 1000", PR_SET_TIMERSLACK, 1000, 0},
    {"PR_GET_TIMERSLACK", PR_GET_TIMERSLACK, 0, 0},
    {"PR_SET_THP_DISABLE with arg3", PR_SET_THP_DISABLE, 1, 1},
    {"PR_GET_THP_DISABLE", PR_GET_THP_DISABLE, 0, 0},
    {"PR_SET_CHILD_SUBREAPER 1", PR_SET_CHILD_SUBREAPER, 1, 0},
    {"PR_SET_VMA with a bad attribute", PR_SET_VMA_, 99, 0},
    {"an unknown option", 0x7777, 0, 0},
};

static void permissions(void) {
    for (unsigned i = 0; i < sizeof PLAIN / sizeof PLAIN[0]; i++)
        SHOW(PLAIN[i].what, pr(PLAIN[i].opt, PLAIN[i].a2, PLAIN[i].a3, 0, 0));
    SHOW("PR_SET_SECUREBITS as they are", pr(PR_SET_SECUREBITS, pr(PR_GET_SECUREBITS, 0, 0, 0, 0), 0, 0, 0));
    show_int("PR_GET_PDEATHSIG", PR_GET_PDEATHSIG);
    pr(PR_SET_PDEATHSIG, 0, 0, 0, 0);
    show_int("PR_GET_CHILD_SUBREAPER", PR_GET_CHILD_SUBREAPER);
    pr(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    /* what needs CAP_SYS_RESOURCE: EPERM without it (root may lack it too) */
    SHOW("PR_SET_MM START_BRK", pr(PR_SET_MM, PR_SET_MM_START_BRK_, 0, 0, 0) == -EPERM);
    unsigned size = 0;
    SHOW("PR_SET_MM MAP_SIZE", pr(PR_SET_MM, PR_SET_MM_MAP_SIZE_, (long)&size, 0, 0));
    printf("prctl_mm_map size %u\n", size);
    SHOW("PR_SET_IO_FLUSHER", pr(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == -EPERM);
    SHOW("PR_GET_IO_FLUSHER", pr(PR_GET_IO_FLUSHER, 0, 0, 0, 0) == -EPERM);
}

/* exec checks: comm after exec of a path, a symlink, /proc/self/exe, execveat */
static void exec_comm(const char *dir, const char *self) {
    char link[4096], cmd[8192];
    snprintf(link, sizeof link, "%s/a-symlink-with-a-long-name", dir);
    unlink(link);
    if (symlink(self, link) != 0) { perror("symlink"); return; }
    const char *paths[] = {self, link, "/proc/self/exe"};
    for (int i = 0; i < 3; i++) {
        pid_t p = fork();
        if (p == 0) {
            char *argv[] = {"argv0-is-not-comm", "comm", NULL};
            execv(paths[i], argv);
            _exit(127);
        }
        waitpid(p, NULL, 0);
    }
    /* execveat relative to a directory descriptor, and of the descriptor itself */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    int ffd = open(link, O_RDONLY);
    for (int i = 0; i < 2; i++) {
        pid_t p = fork();
        if (p == 0) {
            char *argv[] = {"argv0-is-not-comm", "comm", NULL};
            if (i == 0) syscall(SYS_execveat, dfd, "a-symlink-with-a-long-name", argv, NULL, 0);
            else syscall(SYS_execveat, ffd, "", argv, NULL, AT_EMPTY_PATH);
            _exit(127);
        }
        waitpid(p, NULL, 0);
    }
    /* a script: comm is the script's name, not its interpreter's */
    char script[4096];
    snprintf(script, sizeof script, "%s/a-script.sh", dir);
    FILE *f = fopen(script, "w");
    fprintf(f, "#!%s comm\n", self);
    fclose(f);
    chmod(script, 0755);
    pid_t p = fork();
    if (p == 0) {
        char *argv[] = {"argv0", NULL};
        execv(script, argv);
        _exit(127);
    }
    waitpid(p, NULL, 0);
    (void)cmd;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && !strcmp(argv[1], "comm")) return comm_mode();
    if (argc > 1 && !strcmp(argv[1], "tsc-mode")) return tsc_mode();
    char self[4096] = {0};
    readlink("/proc/self/exe", self, sizeof self - 1);
    comm_mode();
    if (argc > 2 && !strcmp(argv[1], "exec")) {
        exec_comm(argv[2], self);
        return 0;
    }
    names();
    tsc(self);
    permissions();
    return 0;
}
