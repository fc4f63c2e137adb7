/* Ways out of the VM through /proc, tried as an attacker would (tests/guest/test_escape.py).
 * Under km the program and the monitor are one host process, so /proc/<pid> is km's own:
 * none of these may reach the monitor's threads, memory or descriptors.
 *
 *   escape threads   /proc/self/task and every /proc/<tid> of this process: only the
 *                    program's own threads exist (comparable with a native run)
 *   escape fds       every way of naming a descriptor above the program's limit
 *                    (where km keeps its own): none exists (comparable with native)
 *   escape mem       this process's memory through every spelling of /proc/.../mem,
 *                    pagemap and map_files: each line says "opened" or the error
 *   escape parent    a forked child opens its parent's memory and descriptors
 *   escape child     a parent opens its child's memory and descriptors
 *   escape other PID another process's memory (a native process of the same user)
 *   escape drop DIR  as root: drop to nobody, then look at a root-only file in DIR in
 *                    a tight loop (calls the polling tier serves): every look fails
 *   escape unshare FILE  close_range(CLOSE_RANGE_UNSHARE) on a file, then reads of it
 *   escape poison    (km only: natively, as root, it would do it) madvise MADV_HWPOISON and
 *                    MADV_SOFT_OFFLINE of its own page, which act on the host's physical
 *                    page: prints each result and errno, and whether the page still reads
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NTHREADS 3
static pid_t tids[NTHREADS + 1];
static int hold[2];

static void *sleeper(void *arg) {
    tids[(long)arg] = (pid_t)syscall(SYS_gettid);
    char c;
    (void)!read(hold[0], &c, 1);
    return NULL;
}

static int ours(pid_t t) {
    for (int i = 0; i <= NTHREADS; i++)
        if (tids[i] == t) return 1;
    return 0;
}

static long tgid_of(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    long tgid = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Tgid:", 5)) tgid = atol(line + 5);
    fclose(f);
    return tgid;
}

static void threads(void) {
    pthread_t th[NTHREADS];
    (void)!pipe(hold);
    tids[0] = getpid();
    for (long i = 1; i <= NTHREADS; i++) pthread_create(&th[i - 1], NULL, sleeper, (void *)i);
    for (int i = 1; i <= NTHREADS; i++)
        while (!__atomic_load_n(&tids[i], __ATOMIC_SEQ_CST)) sched_yield();
    DIR *d = opendir("/proc/self/task");
    int listed = 0, strangers = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.') {
            listed++;
            strangers += !ours(atoi(de->d_name));
        }
    if (d) closedir(d);
    printf("/proc/self/task lists %d threads, %d not the program's\n", listed, strangers);
    /* a thread's directory exists even where no listing shows it: look around */
    int found = 0, mem_opened = 0;
    char path[128];
    pid_t me = getpid();
    for (pid_t t = me > 64 ? me - 64 : 1; t < me + 512; t++) {
        if (ours(t)) continue;
        const char *fmts[] = {"/proc/%d/status", "/proc/self/task/%d/status"};
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, fmts[k], t);
            if (tgid_of(path) == me) {
                found++;
                snprintf(path, sizeof path, k ? "/proc/self/task/%d/mem" : "/proc/%d/mem", t);
                int m = open(path, O_RDWR);
                if (m >= 0) { mem_opened++; close(m); }
            }
        }
    }
    printf("other threads of this process reachable: %d (their memory opened: %d)\n", found, mem_opened);
    /* thread-self is the calling thread */
    char link[64] = {0};
    (void)!readlink("/proc/thread-self", link, sizeof link - 1);
    char want[64];
    snprintf(want, sizeof want, "%d/task/%d", me, me);
    printf("thread-self is the main thread: %s\n", strcmp(link, want) ? "no" : "yes");
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Threads:", 8)) printf("status %s", line);
    if (f) fclose(f);
    f = fopen("/proc/self/stat", "r");
    if (f && fgets(line, sizeof line, f)) {
        char *p = strrchr(line, ')');
        int field = 2;
        for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " "))
            if (++field == 20) printf("stat num_threads %s\n", tok);
    }
    if (f) fclose(f);
}

static int attempts, reached;
static void try_open(const char *what, const char *path, int flags) {
    int fd = open(path, flags);
    attempts++;
    if (fd >= 0) {
        reached++;
        printf("reached: %s (%s)\n", what, path);
        close(fd);
    }
}

static void fds(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    long lo = (long)rl.rlim_max, hi = lo + 128;  /* (km keeps its own right above the limit) */
    if (lo > 1 << 20) lo = 1 << 20, hi = lo;  /* unlimited: nothing can live above it */
    int open_fds = 0;
    for (long n = lo; n < hi; n++) open_fds += fcntl((int)n, F_GETFD) >= 0;
    printf("descriptors open above the limit: %d\n", open_fds);
    /* every name of a descriptor at or above the hard limit */
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
    int pdir = open("/proc/self", O_RDONLY | O_DIRECTORY);
    char tmpl[] = "/tmp/kt-escape-XXXXXX";
    char *dir = mkdtemp(tmpl);
    char link1[128], link2[128];
    snprintf(link1, sizeof link1, "%s/fdlink", dir);
    snprintf(link2, sizeof link2, "%s/selflink", dir);
    (void)!symlink("/proc/self/fd", link1);
    (void)!symlink("/proc/self", link2);
    int stats = 0, links = 0;
    for (long n = lo; n < hi; n++) {
        char path[160];
        const char *fmts[] = {"/proc/self/fd/%ld", "/dev/fd/%ld", "/proc/thread-self/fd/%ld", "/proc/%ld/fd/%ld",
                              "%s/%ld", "%s/fd/%ld"};
        for (int k = 0; k < 6; k++) {
            if (k == 3) snprintf(path, sizeof path, fmts[k], (long)getpid(), n);
            else if (k == 4) snprintf(path, sizeof path, fmts[k], link1, n);
            else if (k == 5) snprintf(path, sizeof path, fmts[k], link2, n);
            else snprintf(path, sizeof path, fmts[k], n);
            try_open("fd by path", path, O_RDONLY);
            try_open("fd by path, O_PATH", path, O_PATH);
            struct stat st;
            stats += stat(path, &st) == 0 || lstat(path, &st) == 0;
            char buf[64];
            links += readlink(path, buf, sizeof buf) > 0;
        }
        char name[32];
        snprintf(name, sizeof name, "%ld", n);
        int r = openat(dfd, name, O_RDONLY);
        attempts++;
        if (r >= 0) { reached++; printf("reached: openat(fd dir, %s)\n", name); close(r); }
        snprintf(name, sizeof name, "fd/%ld", n);
        r = openat(pdir, name, O_RDONLY);
        attempts++;
        if (r >= 0) { reached++; printf("reached: openat(pid dir, %s)\n", name); close(r); }
    }
    unlink(link1);
    unlink(link2);
    rmdir(dir);
    printf("monitor descriptors reached: %d opened, %d stat, %d readlink\n", reached, stats, links);
}

static void mem(void) {
    char path[256];
    pid_t me = getpid();
    try_open("mem", "/proc/self/mem", O_RDWR);
    snprintf(path, sizeof path, "/proc/%d/mem", me);
    try_open("mem by pid", path, O_RDWR);
    try_open("thread-self mem", "/proc/thread-self/mem", O_RDWR);
    snprintf(path, sizeof path, "/proc/self/task/%d/mem", me);
    try_open("task mem", path, O_RDWR);
    try_open("dots", "//proc/./self/../self//mem", O_RDWR);
    try_open("root magic link", "/proc/self/root/proc/self/mem", O_RDWR);
    try_open("pagemap", "/proc/self/pagemap", O_RDONLY);
    try_open("task pagemap", "/proc/thread-self/pagemap", O_RDONLY);
    try_open("syscall", "/proc/self/syscall", O_RDONLY);
    char tmpl[] = "/tmp/kt-escape-XXXXXX";
    char *dir = mkdtemp(tmpl);
    snprintf(path, sizeof path, "%s/a", dir);
    (void)!symlink("/proc/self", path);
    char via[300];
    snprintf(via, sizeof via, "%s/mem", path);
    try_open("symlink to /proc/self", via, O_RDWR);
    unlink(path);
    (void)!symlink("/proc/self/mem", path);
    try_open("symlink to mem", path, O_RDWR);
    unlink(path);
    snprintf(via, sizeof via, "/proc/%d/mem", me);
    (void)!symlink(via, path);
    try_open("symlink to /proc/PID/mem", path, O_RDWR);
    unlink(path);
    rmdir(dir);
    int pdir = open("/proc/self", O_RDONLY | O_DIRECTORY);
    int r = openat(pdir, "mem", O_RDWR);
    attempts++;
    if (r >= 0) { reached++; printf("reached: openat(/proc/self, mem)\n"); close(r); }
    int proc = open("/proc", O_RDONLY | O_DIRECTORY);
    r = openat(proc, "self/mem", O_RDWR);
    attempts++;
    if (r >= 0) { reached++; printf("reached: openat(/proc, self/mem)\n"); close(r); }
    snprintf(path, sizeof path, "/dev/fd/%d/mem", pdir);
    try_open("a /proc/self descriptor through /dev/fd", path, O_RDWR);
    int opath = open("/proc/self/mem", O_PATH);
    if (opath >= 0) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", opath);
        try_open("O_PATH reopened", path, O_RDWR);
    }
    if (chdir("/proc/self") == 0) {
        try_open("relative", "mem", O_RDWR);
        try_open("cwd magic link", "/proc/self/cwd/mem", O_RDWR);
        try_open("relative pagemap", "pagemap", O_RDONLY);
    }
    DIR *d = opendir("/proc/self/map_files");
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.') {
            snprintf(path, sizeof path, "/proc/self/map_files/%s", de->d_name);
            try_open("map_files", path, O_RDONLY);
            break;
        }
    if (d) closedir(d);
    printf("this process's memory reached %d times in %d attempts\n", reached, attempts);
}

static void other_memory(pid_t pid, const char *who) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", pid);
    int fd = open(path, O_RDWR);
    printf("%s memory: %s\n", who, fd >= 0 ? "opened" : strerror(errno));
    if (fd >= 0) close(fd);
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    int listed = 0, opened = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.') {
            listed++;
            char p[128];
            snprintf(p, sizeof p, "/proc/%d/fd/%s", pid, de->d_name);
            int f = open(p, O_RDONLY);
            if (f >= 0) { opened++; close(f); }
        }
    printf("%s descriptors: %s (%d opened)\n", who, d ? "listed" : strerror(errno), opened);
    (void)listed;
    if (d) closedir(d);
}

static int drop(const char *dir) {
    char secret[512];
    snprintf(secret, sizeof secret, "%s/secret", dir);
    long before = 0;
    for (int i = 0; i < 1000; i++) {  /* (calls the polling tier serves: it is running, as root) */
        struct stat st;
        before += stat(secret, &st) == 0;
    }
    printf("before setuid: secret seen %ld times\n", before);
    if (setgroups(0, NULL) || setgid(65534) || setuid(65534)) {
        perror("dropping privileges");
        return 1;
    }
    long seen = 0, uid0 = 0;
    for (int i = 0; i < 1000; i++) {
        struct stat st;
        seen += stat(secret, &st) == 0;
        seen += access(secret, R_OK) == 0;
        uid0 += getuid() == 0 || geteuid() == 0;
    }
    printf("after setuid: secret seen %ld times, uid 0 seen %ld times\n", seen, uid0);
    return 0;
}

/* After dropping root, calls of every family (km imports some of them only at first
 * use: their files must not have to be readable by the new user). */
static int drop_then_call(void) {
    if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
        perror("dropping privileges");
        return 1;
    }
    struct winsize ws;
    printf("ioctl(TIOCGWINSZ): %s\n", ioctl(0, TIOCGWINSZ, &ws) == 0 ? "ok" : strerror(errno));
    struct iovec iov[2] = {{"write", 5}, {"v\n", 2}};
    printf("writev: %zd\n", writev(1, iov, 2));
    struct rlimit rl = {0, 0};
    printf("setrlimit(RLIMIT_CORE): %s\n", setrlimit(RLIMIT_CORE, &rl) == 0 ? "ok" : strerror(errno));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    printf("epoll_create1: %s\n", ep >= 0 ? "ok" : strerror(errno));
    int sv[2];
    printf("socketpair: %s\n", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 ? "ok" : strerror(errno));
    struct timespec ts = {0, 1000};
    printf("nanosleep: %s\n", nanosleep(&ts, NULL) == 0 ? "ok" : strerror(errno));
    timer_t timer;
    struct sigevent sev = {.sigev_notify = SIGEV_NONE};
    printf("timer_create: %s\n", timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0 ? "ok" : strerror(errno));
    int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    char *seg = shm >= 0 ? shmat(shm, NULL, 0) : (char *)-1;
    printf("shmget and shmat: %s\n", seg != (char *)-1 ? "ok" : strerror(errno));
    if (shm >= 0) shmctl(shm, IPC_RMID, NULL);
    pid_t child = fork();
    if (child == 0) {
        char *args[] = {"/bin/true", NULL};
        execv(args[0], args);
        _exit(127);
    }
    int st = 0;
    waitpid(child, &st, 0);
    printf("fork and exec of /bin/true: %d\n", WEXITSTATUS(st));
    printf("uid %d euid %d\n", (int)getuid(), (int)geteuid());
    return 0;
}

static int unshare_read(const char *file) {
    int fd = open(file, O_RDONLY);
    if (fd < 0) { perror(file); return 1; }
    for (int i = 0; i < 500; i++) {  /* (calls the polling tier serves: it is running before) */
        char c;
        (void)!pread(fd, &c, 1, 0);
    }
    long r = syscall(SYS_close_range, fd, fd, 2 /* CLOSE_RANGE_UNSHARE */);
    printf("close_range(UNSHARE): %ld\n", r);
    long got = 0;  /* (few calls: --poll always on a loaded machine costs up to ~20 ms each) */
    for (int i = 0; i < 500; i++) {
        char c;
        got += pread(fd, &c, 1, 0) == 1;
    }
    printf("reads of the closed descriptor that returned data: %ld\n", got);
    return 0;
}

static int poison(void) {
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p[0] = 'p';
    static const struct { int advice; const char *name; } ways[] = {{100, "MADV_HWPOISON"}, {101, "MADV_SOFT_OFFLINE"}};
    for (int i = 0; i < 2; i++) {
        errno = 0;
        int r = madvise(p, pg, ways[i].advice);
        printf("%s: %d %s\n", ways[i].name, r, r ? strerror(errno) : "");
    }
    printf("the page reads: %c\n", p[0]);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "threads";
    if (!strcmp(mode, "threads")) threads();
    else if (!strcmp(mode, "fds")) fds();
    else if (!strcmp(mode, "mem")) mem();
    else if (!strcmp(mode, "parent")) {
        pid_t parent = getpid();
        pid_t c = fork();
        if (c == 0) { other_memory(parent, "parent's"); _exit(0); }
        int st;
        waitpid(c, &st, 0);
    } else if (!strcmp(mode, "child")) {
        int go[2];
        (void)!pipe(go);
        pid_t c = fork();
        if (c == 0) { char x; close(go[1]); (void)!read(go[0], &x, 1); _exit(0); }
        other_memory(c, "child's");
        close(go[1]);
        int st;
        waitpid(c, &st, 0);
    } else if (!strcmp(mode, "other") && argc > 2) other_memory(atoi(argv[2]), "other process's");
    else if (!strcmp(mode, "drop") && argc > 2) return drop(argv[2]);
    else if (!strcmp(mode, "unshare") && argc > 2) return unshare_read(argv[2]);
    else if (!strcmp(mode, "dropcalls")) return drop_then_call();
    else if (!strcmp(mode, "poison")) return poison();
    else { fprintf(stderr, "usage: escape threads|fds|mem|parent|child|other PID|drop DIR|unshare FILE\n"); return 2; }
    return 0;
}
