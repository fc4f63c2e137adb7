/* Calls the polling tier serves (kernel/poll.py), in bursts that switch it on:
 *   flags     the arithmetic flags survive each call, as Linux restores RFLAGS from R11
 *   signals   an interval timer interrupts a tight loop of calls; every result is right
 *   threads   four threads, each in a loop of calls of its own, with reads of a file
 *   sigreads  DIR: 4-byte reads of a file of consecutive numbers, and 1-byte appends to
 *             another, while an interval timer interrupts them: a call made twice (its
 *             first answer lost, as when km took a just-answered call for one never
 *             begun) skips a number or adds a byte
 *   scribble  (km only) junk written into the program's own poll slots while it runs
 *   stuck     (km only) its own slot pinned at "taken" forever: it hangs, until killed
 *   handoff   a thread sleeps 20 ms, makes 3000 calls and ends; then the main thread makes
 *             20000 (km: its slot must be served although the other's was the last one on)
 *   blocks    rounds of 2000 calls, each round followed by a 50 ms sleep (the tier on, its
 *             thread away in a call that blocks: km's poller parks meanwhile)
 *   handback  DIR: calls the tier makes only where they cannot wait (opens, closes, ioctls),
 *             where they can: a FIFO's open waiting for its writer, or interrupted
 *   hostile   DIR: the calls km's native poller makes itself (reads, writes, seeks of a
 *             regular file, fstat), each 300 times, with bad pointers, descriptors above
 *             the program's limit (km's own, under km), junk in a descriptor's upper 32
 *             bits, a negative offset, a bad whence; and stats of paths (hostile_stats);
 *             prints each call's result and errno
 *   renumber  DIR: one descriptor number, written and read in a hot loop, made to name a
 *             regular file, a pipe, another file, a socket, a file opened again after a
 *             close: each call reaches what the number names at that moment (km's native
 *             poller keeps a single-threaded program's file kinds between calls); a file
 *             locked with flock and closed is free again at once; the same in a second
 *             thread, and once more in the main thread after it ended
 *   streams   reads and writes of sockets and pipes in hot loops (km's native poller
 *             makes those that need not wait): an echo through each in the main thread
 *             and in a second one, and with writev and readv; for each, a 4 MiB blocking
 *             write a slow reader drains, and the same as a writev of three parts
 *             (part taken at once, the rest waits), EPIPE with SIGPIPE caught and
 *             ignored, non-blocking reads with nothing there, a read whose data comes
 *             20 ms later, and end of file; a socket's SO_RCVLOWAT 8 with 4 bytes there;
 *             a reset connection's ECONNRESET, then EOF; datagrams; a signalfd's reads; O_ASYNC's SIGIO
 *             come by the time the write that caused it returns
 *   messages  send and recv of sockets (musl makes them as sendto and recvfrom with no
 *             address; km's native poller makes those that need not wait, with the flags
 *             that change only whether they wait): an echo in the main thread and a
 *             second one; a 4 MiB blocking send a slow reader drains; EPIPE with
 *             SIGPIPE, and with MSG_NOSIGNAL none; MSG_DONTWAIT on a blocking socket
 *             (EAGAIN, and a partial send of what fits); MSG_PEEK; MSG_WAITALL; a recv
 *             whose data comes 20 ms later; sendto with no address but a length, and
 *             recvfrom's address of a datagram; bad buffers, a pipe, a file, a closed
 *             descriptor
 * Prints what it checked; the exit status is 0 unless a check failed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <sys/ioctl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <termios.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int failed;
#define CHECK(what, cond) do { if (!(cond)) { printf("FAILED: %s\n", what); failed = 1; } } while (0)

static long raw_getppid_flags(int set, unsigned long *flags_after) {
    long r;
    unsigned long f;
    if (set)
        __asm__ volatile("stc\n\tmov $0x7fffffff, %%r8d\n\tadd $1, %%r8d\n\tmov $110, %%eax\n\tsyscall\n\tpushfq\n\tpop %1"
                         : "=a"(r), "=r"(f) : : "rcx", "r11", "r8", "memory", "cc");
    else
        __asm__ volatile("xor %%r8d, %%r8d\n\tmov $110, %%eax\n\tsyscall\n\tpushfq\n\tpop %1"
                         : "=a"(r), "=r"(f) : : "rcx", "r11", "r8", "memory", "cc");
    *flags_after = f;
    return r;
}

static void flags(void) {
    pid_t pp = getppid();
    int bad = 0;
    /* (a few thousand: with --poll always on a machine whose CPUs are all busy, each
     * call waits for the poller's turn on a CPU, milliseconds) */
    for (int i = 0; i < 4000; i++) {
        unsigned long f;
        long r = raw_getppid_flags(i & 1, &f);
        /* set: CF from stc is lost to add, which sets OF and SF (0x7fffffff + 1) */
        unsigned long want = (i & 1) ? 0x884 : 0x44; /* OF SF PF, or ZF PF from xor (AF: undefined) */
        if (r != pp || (f & 0x8c5) != want) bad++;
    }
    printf("flags kept across 4000 calls: %s\n", bad ? "no" : "yes");
    CHECK("flags", !bad);
    /* answers about the calling thread are about it, not about whoever served the call */
    long wrong = 0;
    for (int i = 0; i < 1000; i++) {
        struct timespec ts;
        if (syscall(SYS_gettid) != getpid()) wrong++;
        if (syscall(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &ts)) wrong++;
    }
    printf("gettid is the main thread's: %s\n", wrong ? "no" : "yes");
    CHECK("gettid", !wrong);
}

static volatile long ticks;
static void on_alarm(int sig) { (void)sig; ticks++; }

/* SIGALRM (handler on_alarm, SA_RESTART) every `usec` microseconds from now; 0: no more */
static void alarm_every(long usec) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, usec}, {0, usec}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void signals(void) {
    alarm_every(2000);
    pid_t pp = getppid(), me = getpid();
    long bad = 0;
    for (long i = 0; i < 20000 || ticks < 10; i++) {
        if (syscall(SYS_getppid) != pp) bad++;
        if (syscall(SYS_getpid) != me) bad++;
        if (i > 10000000) break;
    }
    alarm_every(0);
    printf("results right while a timer interrupts: %s; the handler ran: %s\n", bad ? "no" : "yes",
           ticks >= 10 ? "yes" : "no");
    CHECK("signals", !bad && ticks >= 10);
}

static void sigreads(const char *dir) {
    char p[4096], lp[4096];
    enum { N = 8192 };
    snprintf(p, sizeof p, "%s/kt-sigreads", dir);
    snprintf(lp, sizeof lp, "%s/kt-sigreads-log", dir);
    int fd = open(p, O_CREAT | O_TRUNC | O_RDWR, 0600);
    for (int i = 0; i < N; i += 1024) {
        int32_t chunk[1024];
        for (int j = 0; j < 1024; j++) chunk[j] = i + j;
        write(fd, chunk, sizeof chunk);
    }
    lseek(fd, 0, SEEK_SET);
    int log = open(lp, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0600);
    alarm_every(1000);
    long bad = 0;
    for (int32_t i = 0; i < N; i++) {
        int32_t v = -1;
        if (read(fd, &v, 4) != 4 || v != i) {
            if (!bad) printf("read %d: got %d\n", i, v);
            bad++;
            lseek(fd, 4 * (off_t)(i + 1), SEEK_SET);
        }
        if (write(log, "x", 1) != 1) bad++;
    }
    alarm_every(0);
    struct stat st;
    fstat(log, &st);
    close(fd);
    close(log);
    unlink(p);
    unlink(lp);
    printf("%d reads and appends while a timer interrupts: %s, appended %ld bytes\n", N, bad ? "wrong" : "right",
           (long)st.st_size);
    CHECK("sigreads", !bad && st.st_size == N);
}

static const char *path, *logpath;

static void *worker(void *arg) {
    long id = (long)arg, bad = 0;
    int fd = open(path, O_RDONLY);
    int log = open(logpath, O_WRONLY | O_APPEND);
    char buf[16];
    for (int i = 0; i < 5000; i++) {
        if (write(log, "x", 1) != 1) bad++; /* a call served twice would show in the size */
        if (syscall(SYS_gettid) <= 0) bad++;
        if (pread(fd, buf, 8, id) != 8 || buf[0] != (char)('a' + id)) bad++;
        struct stat st;
        if (fstat(fd, &st) || st.st_size != 16) bad++;
    }
    close(fd);
    close(log);
    return (void *)bad;
}

static void threads(const char *dir) {
    static char p[4096];
    snprintf(p, sizeof p, "%s/kt-polled", dir);
    path = p;
    static char lp[4096];
    snprintf(lp, sizeof lp, "%s/kt-polled-log", dir);
    logpath = lp;
    close(open(lp, O_CREAT | O_TRUNC | O_WRONLY, 0600));
    int fd = open(p, O_CREAT | O_TRUNC | O_RDWR, 0600);
    write(fd, "abcdabcdabcdabcd", 16);
    close(fd);
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    unlink(p);
    struct stat st;
    stat(lp, &st);
    unlink(lp);
    printf("four threads, 20000 calls each: %s; appends: %ld\n", bad ? "wrong results" : "right", (long)st.st_size);
    CHECK("threads", !bad && st.st_size == 20000);
}

static volatile int stop_scribbling;
static void *scribbler(void *arg) {
    (void)arg;
    volatile uint64_t *slots = (volatile uint64_t *)(uintptr_t)0x8000018000ULL; /* layout.POLL_SLOTS */
    uint64_t x = 88172645463325252ULL;
    while (!stop_scribbling) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        slots[(x >> 3) % (4 * 4096 / 8)] = x;
        ((volatile uint32_t *)slots)[(x >> 40) % 32 * 128] = 1; /* post junk requests */
    }
    return NULL;
}

/* A request posted while the poller switches the slot off: the stub finds a spin budget of
 * 0 where it just posted (poll_posted).  Made deterministic by entering the stub there
 * directly, with vCPU 0's slot (this thread's) posted and off.  It must take the request
 * back at once and exit with it; a budget of 0 once made it spin 2^32 times (minutes) with
 * the poller asleep.  Argument: poll_posted's offset in the stub (guest_code.POLL_POSTED). */
static void zerobudget(const char *posted) {
    volatile uint32_t *slot = (volatile uint32_t *)(uintptr_t)0x8000018000ULL; /* layout.POLL_SLOTS: vCPU 0's */
    volatile uint64_t *q = (volatile uint64_t *)slot;
    unsigned long stub = 0x8000014000UL + strtoul(posted, NULL, 0); /* layout.POLL_STUBS: vCPU 0's copy */
    for (int i = 2; i < 11; i++) q[i] = 0; /* no arguments, no flags, no return address */
    q[1] = SYS_getppid;
    slot[1] = 0;                           /* off... */
    slot[0] = 1;                           /* ...and posted */
    long r;
    __asm__ volatile("lea 1f(%%rip), %%rcx\n\t"
                     "pushfq\n\t"
                     "popq %%r11\n\t"
                     "jmp *%1\n"
                     "1:"
                     : "=a"(r) : "r"(stub) : "rcx", "rdx", "r11", "memory", "cc");
    CHECK("getppid", r == getppid());
    printf("zero budget: %s\n", r == getppid() ? "taken back and made" : "wrong answer");
}

static void scribble(void) {
    /* the guest may wreck its own slots: km must neither crash nor serve junk to anyone else */
    pthread_t t;
    pthread_create(&t, NULL, scribbler, NULL);
    for (int i = 0; i < 5000; i++) syscall(SYS_getppid);
    stop_scribbling = 1;
    pthread_join(t, NULL);
    printf("survived\n");
}

static void *wedger(void *arg) {
    (void)arg;
    volatile uint32_t *state = (volatile uint32_t *)(uintptr_t)0x8000018000ULL; /* vCPU 0's slot */
    for (;;) *state = 2; /* "taken", by nobody */
    return NULL;
}

static void stuck(void) {
    /* the main thread's slot says "taken" forever: the program only hangs itself, and a
     * signal from outside still ends it */
    pthread_t t;
    for (int i = 0; i < 2000; i++) syscall(SYS_getppid);
    printf("wedged\n"); /* before: from here on even this write would wait forever */
    pthread_create(&t, NULL, wedger, NULL);
    for (;;) syscall(SYS_getppid);
}

static void *handoff_thread(void *arg) {
    (void)arg;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    pid_t pp = getppid();
    long ok = 0;
    for (int i = 0; i < 3000; i++) ok += syscall(SYS_getppid) == pp;
    return (void *)ok;
}

static void handoff(void) {
    pthread_t t;
    void *ok;
    pthread_create(&t, NULL, handoff_thread, NULL);
    pthread_join(t, &ok);
    pid_t pp = getppid();
    long mine = 0;
    for (int i = 0; i < 20000; i++) mine += syscall(SYS_getppid) == pp;
    CHECK("getppid", (long)ok == 3000 && mine == 20000);
    printf("handoff: %ld and %ld calls\n", (long)ok, mine);
}

static void blocks(void) {
    pid_t pp = getppid();
    long ok = 0;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 2000; i++) ok += syscall(SYS_getppid) == pp;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK("getppid", ok == 8000);
    printf("blocks: %ld calls\n", ok);
}

/* The same call REPS times: every result and errno the same, or a line says which differed. */
#define REPS 300
#define SAME(name, call) do { \
        long first = 0; int first_errno = 0; \
        for (int i_ = 0; i_ < REPS; i_++) { \
            errno = 0; \
            long r_ = (call); \
            if (i_ == 0) { first = r_; first_errno = errno; } \
            else if (r_ != first || errno != first_errno) { printf("FAILED: %s varies: %ld/%d then %ld/%d\n", \
                     name, first, first_errno, r_, errno); failed = 1; break; } \
        } \
        printf("%s: %ld %s\n", name, first, first < 0 ? strerror(first_errno) : "ok"); \
    } while (0)

static void *open_fifo_writer(void *path) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    int fd = open(path, O_WRONLY);
    CHECK("the writer's open", fd >= 0 && write(fd, "hi", 2) == 2);
    close(fd);
    return NULL;
}

/* Calls the tier makes only where they cannot wait, and hands back to the calling thread
 * otherwise (syscalls/common.py polled): an open of a FIFO that waits for its writer, one
 * interrupted by a signal, ioctls of a socket and a non-terminal, closes of a socket and
 * a pipe, and bursts of each (with the tier on, their own calls are polled too). */
static void handback(const char *dir) {
    char fifo[4096], file[4096], b[8] = {0};
    snprintf(fifo, sizeof fifo, "%s/polled-fifo", dir);
    snprintf(file, sizeof file, "%s/polled-file", dir);
    unlink(fifo);
    CHECK("mkfifo", mkfifo(fifo, 0600) == 0);
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_alarm;
    for (int i = 0; i < 300; i++)  /* (rt_sigaction is polled) */
        CHECK("sigaction", sigaction(SIGALRM, &sa, &old) == 0);
    for (int i = 0; i < 300; i++) {  /* opens and closes of a regular file and a directory */
        int fd = open(file, O_CREAT | O_RDWR, 0600), d = open(dir, O_RDONLY | O_DIRECTORY);
        CHECK("open", fd >= 0 && d >= 0);
        CHECK("close", close(fd) == 0 && close(d) == 0);
    }
    pthread_t t;
    pthread_create(&t, NULL, open_fifo_writer, fifo);
    int fd = open(fifo, O_RDONLY);  /* waits for the writer, on this thread */
    ssize_t got = read(fd, b, 7);
    printf("a FIFO's open: %s, read %zd %s\n", fd >= 0 ? "ok" : "failed", got, b);
    close(fd);
    pthread_join(t, NULL);
    alarm(1);
    errno = 0;
    fd = open(fifo, O_RDONLY);  /* no writer: a signal ends it (no SA_RESTART) */
    printf("a FIFO's open, interrupted: %d %s\n", fd, strerror(errno));
    int sv[2], n = -1, p[2];
    struct termios tio;
    CHECK("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 && pipe(p) == 0);
    for (int i = 0; i < 300; i++) {
        CHECK("FIONREAD", ioctl(sv[0], FIONREAD, &n) == 0 && n == 0);
        CHECK("TCGETS of a socket", ioctl(sv[0], TCGETS, &tio) < 0 && errno == ENOTTY);
    }
    struct linger lg = {1, 1};
    CHECK("SO_LINGER", setsockopt(sv[0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    printf("closes of a lingering socket, its peer, a pipe: %d %d %d %d\n", close(sv[0]), close(sv[1]),
           close(p[0]), close(p[1]));
    int again = close(sv[0]);
    printf("close of a closed one: %d %s\n", again, strerror(errno));
    unlink(fifo);
    unlink(file);
}

/* a stat's result as one number: -1 (errno says why), or the size and the file's type */
static long stat_of(long r, const struct stat *st) {
    return r < 0 ? r : (long)st->st_size * 16 + ((st->st_mode & S_IFMT) >> 12);
}

/* Stats of paths (the native poller makes those on file systems it knows are not procfs):
 * bad pointers for the path and the buffer, a path that runs into an unmapped page, a
 * descriptor at the limit, junk flags, /proc paths that name this process, a device. */
static void hostile_stats(const char *dir, int fd, long above) {
    char file[4096], link[4096];
    struct stat st;
    snprintf(file, sizeof file, "%s/polled-hostile", dir);
    snprintf(link, sizeof link, "%s/polled-link", dir);
    unlink(link);
    CHECK("symlink", symlink("polled-hostile", link) == 0);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY), proc = open("/proc", O_RDONLY | O_DIRECTORY);
    CHECK("open the directories", dfd >= 0 && proc >= 0);
    char *pages = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *more = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK("mmap", pages != MAP_FAILED && more != MAP_FAILED && munmap(pages + 4096, 4096) == 0 &&
          munmap(more + 4096, 4096) == 0);
    memcpy(pages + 4096 - 3, "/tm", 3);      /* no NUL before the hole */
    memcpy(more + 4096 - 2, "/", 2);         /* "/" and its NUL, then the hole */
    memcpy(pages + 2048, "/\0", 2);
    SAME("stat", stat_of(syscall(SYS_stat, file, &st), &st));
    SAME("stat of a missing file", stat_of(syscall(SYS_stat, "/nonexistent/polled", &st), &st));
    SAME("stat of a missing file into NULL", syscall(SYS_stat, "/nonexistent/polled", (void *)0));
    SAME("stat into NULL", syscall(SYS_stat, file, (void *)0));
    SAME("stat into the kernel", syscall(SYS_stat, file, (void *)0xffff800000001000UL));
    SAME("stat into page 1", syscall(SYS_stat, file, (void *)0x1000));
    SAME("stat of a NULL path", syscall(SYS_stat, (void *)0, &st));
    SAME("stat of a path in the kernel", syscall(SYS_stat, (void *)0xffff800000001000UL, &st));
    SAME("stat of a non-canonical path", syscall(SYS_stat, (void *)0x0000900000000000UL, &st));
    SAME("stat of a path at a hole", syscall(SYS_stat, pages + 4096 - 3, &st));
    SAME("stat of a short path before a hole", stat_of(syscall(SYS_stat, more + 4096 - 2, &st), &st) > 0);
    SAME("stat of a short path", stat_of(syscall(SYS_stat, pages + 2048, &st), &st) > 0);
    SAME("lstat of a symlink", stat_of(syscall(SYS_lstat, link, &st), &st));
    SAME("stat of a symlink", stat_of(syscall(SYS_stat, link, &st), &st));
    SAME("newfstatat", stat_of(syscall(SYS_newfstatat, dfd, "polled-hostile", &st, 0), &st));
    SAME("newfstatat, no follow", stat_of(syscall(SYS_newfstatat, dfd, "polled-link", &st, AT_SYMLINK_NOFOLLOW), &st));
    SAME("newfstatat of an empty path", stat_of(syscall(SYS_newfstatat, fd, "", &st, AT_EMPTY_PATH), &st));
    SAME("newfstatat of an empty path, no flag", syscall(SYS_newfstatat, fd, "", &st, 0));
    SAME("newfstatat of an empty path at the limit", syscall(SYS_newfstatat, (int)above, "", &st, AT_EMPTY_PATH));
    SAME("newfstatat at the limit's descriptor", syscall(SYS_newfstatat, (int)above, "polled-hostile", &st, 0));
    SAME("newfstatat at junk over a descriptor", stat_of(syscall(SYS_newfstatat, 0x900000000UL | (unsigned)dfd,
                                                                 "polled-hostile", &st, 0), &st));
    SAME("newfstatat with junk flags", syscall(SYS_newfstatat, dfd, "polled-hostile", &st, 0x12340000));
    SAME("newfstatat into the kernel", syscall(SYS_newfstatat, dfd, "polled-hostile", (void *)0xffff800000001000UL, 0));
    SAME("stat of /dev/null", stat_of(syscall(SYS_stat, "/dev/null", &st), &st));
    SAME("stat of /proc/self/exe (the program)", stat_of(syscall(SYS_stat, "/proc/self/exe", &st), &st));
    char name[64];
    snprintf(name, sizeof name, "/proc/self/fd/%ld", above);
    SAME("stat of the limit's descriptor in /proc", syscall(SYS_stat, name, &st));
    snprintf(name, sizeof name, "self/fd/%ld", above);
    SAME("newfstatat of the limit's descriptor in /proc", syscall(SYS_newfstatat, proc, name, &st, 0));
    SAME("newfstatat of /proc's self/fd/0", syscall(SYS_newfstatat, proc, "self/fd/0", &st, 0) == 0);
    close(dfd);
    close(proc);
    munmap(pages, 4096);
    munmap(more, 4096);
    unlink(link);
}

static void hostile(const char *dir) {
    char path[4096], buf[64] = "0123456789abcdef";
    snprintf(path, sizeof path, "%s/polled-hostile", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    CHECK("open", fd >= 0);
    CHECK("write", write(fd, buf, 16) == 16);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    long above = rl.rlim_cur < 65536 ? (long)rl.rlim_cur : 65536;  /* never open: the limit */
    struct stat st;
    SAME("pread", syscall(SYS_pread64, fd, buf, 8, 0));
    SAME("pread into NULL", syscall(SYS_pread64, fd, (void *)0, 8, 0));
    SAME("pread into page 1", syscall(SYS_pread64, fd, (void *)0x1000, 8, 0));
    SAME("pread into the kernel", syscall(SYS_pread64, fd, (void *)0xffff800000001000UL, 8, 0));
    SAME("pread into a non-canonical address", syscall(SYS_pread64, fd, (void *)0x0000900000000000UL, 8, 0));
    SAME("pread at a negative offset", syscall(SYS_pread64, fd, buf, 8, -1L));
    SAME("pread of a bad descriptor at a negative offset", syscall(SYS_pread64, (int)above, buf, 8, -1L));
    SAME("pread of the limit's descriptor", syscall(SYS_pread64, (int)above, buf, 8, 0));
    SAME("pread with junk over the descriptor", syscall(SYS_pread64, 0x500000000UL | (unsigned)fd, buf, 8, 0));
    SAME("pwrite from the kernel", syscall(SYS_pwrite64, fd, (void *)0xffff800000001000UL, 8, 0));
    SAME("pwrite from page 1", syscall(SYS_pwrite64, fd, (void *)0x1000, 8, 0));
    SAME("pwrite of 0 bytes from the kernel", syscall(SYS_pwrite64, fd, (void *)0xffff800000001000UL, 0, 0));
    SAME("pwrite", syscall(SYS_pwrite64, fd, buf, 16, 0));
    SAME("lseek", syscall(SYS_lseek, fd, 3, SEEK_SET));
    SAME("lseek with a bad whence", syscall(SYS_lseek, fd, 0, 7));
    SAME("lseek of the limit's descriptor", syscall(SYS_lseek, (int)above, 0, SEEK_SET));
    SAME("lseek before the start", syscall(SYS_lseek, fd, -5L, SEEK_SET));
    SAME("read at 3", (syscall(SYS_lseek, fd, 3, SEEK_SET), syscall(SYS_read, fd, buf, 4)));
    SAME("read into the kernel", syscall(SYS_read, fd, (void *)0xffff800000001000UL, 4));
    /* the whole range as given must be user memory before the count is capped (access_ok) */
    SAME("read of a count past the user limit", syscall(SYS_read, fd, buf, 1UL << 47));
    SAME("read of a count of -1", syscall(SYS_read, fd, buf, -1L));
    SAME("write of a count past the user limit", syscall(SYS_write, fd, buf, 1UL << 47));
    SAME("pread of a count of -1", syscall(SYS_pread64, fd, buf, -1L, 0));
    SAME("pwrite of a count past the user limit", syscall(SYS_pwrite64, fd, buf, 1UL << 47, 0));
    SAME("write of a count past the user limit to a bad descriptor", syscall(SYS_write, (int)above, buf, 1UL << 47));
    /* readv and writev of a regular file (the Python poller makes them, on its own duplicate) */
    struct iovec iov[2] = {{buf, 4}, {buf + 8, 4}}, wild[2] = {{buf, 4}, {(void *)0xffff800000001000UL, 4}};
    SAME("readv", (syscall(SYS_lseek, fd, 0, SEEK_SET), syscall(SYS_readv, fd, iov, 2)));
    SAME("readv into the kernel", syscall(SYS_readv, fd, wild, 2));
    SAME("readv of a NULL vector", syscall(SYS_readv, fd, (void *)0, 2));
    SAME("readv of a vector in the kernel", syscall(SYS_readv, fd, (void *)0xffff800000001000UL, 1));
    SAME("readv of too many", syscall(SYS_readv, fd, iov, 1025));
    SAME("readv of the limit's descriptor", syscall(SYS_readv, (int)above, iov, 2));
    SAME("writev", syscall(SYS_writev, fd, iov, 2));
    SAME("writev from the kernel", syscall(SYS_writev, fd, wild, 2));
    SAME("writev of a NULL vector", syscall(SYS_writev, fd, (void *)0, 1));
    /* (km's native poller reads at most 16 iovecs itself; more, or one it cannot use, are Python's) */
    struct iovec many[17], huge[2] = {{buf, 4}, {buf, 1UL << 63}}, empty[2] = {{(void *)0xffff800000001000UL, 0}, {buf, 4}};
    for (int i = 0; i < 17; i++) many[i] = (struct iovec){buf + i % 8, 1};
    SAME("readv of 16", (syscall(SYS_lseek, fd, 0, SEEK_SET), syscall(SYS_readv, fd, many, 16)));
    SAME("readv of 17", (syscall(SYS_lseek, fd, 0, SEEK_SET), syscall(SYS_readv, fd, many, 17)));
    SAME("writev of 16", (syscall(SYS_lseek, fd, 0, SEEK_SET), syscall(SYS_writev, fd, many, 16)));
    SAME("writev of 17", (syscall(SYS_lseek, fd, 0, SEEK_SET), syscall(SYS_writev, fd, many, 17)));
    SAME("readv of none", syscall(SYS_readv, fd, iov, 0));
    SAME("readv of a length of 2^63", syscall(SYS_readv, fd, huge, 2));
    SAME("writev of a length of 2^63", syscall(SYS_writev, fd, huge, 2));
    SAME("writev of an empty buffer in the kernel", (syscall(SYS_lseek, fd, 0, SEEK_SET),
                                                     syscall(SYS_writev, fd, empty, 2)));
    SAME("readv of 16 at the limit's descriptor", syscall(SYS_readv, (int)above, many, 16));
    SAME("readv of 16 of junk over the descriptor", (syscall(SYS_lseek, fd, 0, SEEK_SET),
                                                     syscall(SYS_readv, 0x300000000UL | (unsigned)fd, many, 16)));
    char *edge = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK("mmap", edge != MAP_FAILED && munmap(edge + 4096, 4096) == 0);
    memcpy(edge + 4096 - 8, &iov[0].iov_base, 8);  /* an iovec whose length is in the hole */
    SAME("readv of a vector running into a hole", syscall(SYS_readv, fd, edge + 4096 - 8, 1));
    SAME("writev of a vector running into a hole", syscall(SYS_writev, fd, edge + 4096 - 8, 1));
    munmap(edge, 4096);
    int ro = open(path, O_RDONLY);
    CHECK("open read-only", ro >= 0);
    SAME("writev to a read-only descriptor, bad vector", syscall(SYS_writev, ro, (void *)0, 1));
    SAME("write to a read-only descriptor", syscall(SYS_write, ro, buf, 4));
    SAME("pwrite to a read-only descriptor", syscall(SYS_pwrite64, ro, buf, 4, 0));
    close(ro);
    SAME("size after them", (syscall(SYS_fstat, fd, &st), (long)st.st_size));
    SAME("write of the limit's descriptor", syscall(SYS_write, (int)above, buf, 4));
    SAME("fstat", (syscall(SYS_fstat, fd, &st), (long)st.st_size));
    SAME("fstat into NULL", syscall(SYS_fstat, fd, (void *)0));
    SAME("fstat into the kernel", syscall(SYS_fstat, fd, (void *)0xffff800000001000UL));
    SAME("fstat of the limit's descriptor", syscall(SYS_fstat, (int)above, &st));
    SAME("fstat with junk over the descriptor", (syscall(SYS_fstat, 0x700000000UL | (unsigned)fd, &st),
                                                 (long)st.st_size));
    hostile_stats(dir, fd, above);
    buf[4] = 0;
    printf("read: %s\n", buf);
    close(fd);
    unlink(path);
}

static const char *renumber_dir;
static int sigpipes;
static void on_sigpipe(int sig) { (void)sig; __atomic_add_fetch(&sigpipes, 1, __ATOMIC_SEQ_CST); }

/* ``rounds`` writes of one byte to the number, then one read back where it can be read */
static long hot_writes(int fd, int rounds, char c) {
    long n = 0;
    for (int i = 0; i < rounds; i++) n += write(fd, &c, 1) == 1;
    return n;
}

static void *renumber_once(void *arg) {
    char path[3][256], buf[512];
    int fd = 9, p[2], sv[2];
    long tag = (long)arg;
    for (int i = 0; i < 3; i++) snprintf(path[i], sizeof path[i], "%s/renumber-%ld-%d", renumber_dir, tag, i);
    int a = open(path[0], O_RDWR | O_CREAT | O_TRUNC, 0600), b = open(path[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK("pipe", pipe(p) == 0);
    CHECK("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    dup2(a, fd);
    printf("file a: %ld\n", hot_writes(fd, 300, 'a'));
    dup2(p[1], fd);  /* the number names the pipe now */
    printf("pipe: %ld", hot_writes(fd, 200, 'p'));
    printf(" read back %zd\n", read(p[0], buf, sizeof buf));
    dup2(p[0], fd);  /* its read end: a read of what is there must not wait for more */
    CHECK("pipe refill", write(p[1], "xyz", 3) == 3);
    printf("pipe read end: %zd\n", read(fd, buf, sizeof buf));
    dup2(b, fd);
    printf("file b: %ld\n", hot_writes(fd, 300, 'b'));
    int q[2];  /* a pipe with no reader: a write gets EPIPE and SIGPIPE, which a file never gives */
    CHECK("pipe", pipe(q) == 0);
    close(q[0]);
    dup2(q[1], fd);
    errno = 0;
    long r = write(fd, "x", 1);
    printf("reader gone: %ld %s, SIGPIPE %d\n", r, strerror(errno), __atomic_exchange_n(&sigpipes, 0, __ATOMIC_SEQ_CST));
    close(q[1]);
    dup2(b, fd);
    printf("file b again: %ld\n", hot_writes(fd, 300, 'B'));
    dup2(sv[0], fd);
    printf("socket: %ld", hot_writes(fd, 100, 's'));
    printf(" read back %zd\n", read(sv[1], buf, sizeof buf));
    close(fd);
    CHECK("reopen takes the number", open(path[2], O_RDWR | O_CREAT | O_TRUNC, 0600) == fd);
    printf("file c: %ld\n", hot_writes(fd, 300, 'c'));
    CHECK("flock", flock(fd, LOCK_EX) == 0);
    printf("file c, locked: %ld\n", hot_writes(fd, 300, 'C'));
    close(fd);  /* the last descriptor of that open file: its lock goes with it */
    int again = open(path[2], O_RDONLY);
    printf("lock free after the close: %s\n", flock(again, LOCK_EX | LOCK_NB) == 0 ? "yes" : "no");
    close(again);
    struct stat st;
    for (int i = 0; i < 3; i++) {
        stat(path[i], &st);
        printf("size %d: %ld\n", i, (long)st.st_size);
        unlink(path[i]);
    }
    close(a), close(b), close(p[0]), close(p[1]), close(sv[0]), close(sv[1]);
    return NULL;
}

static void renumber(const char *dir) {
    pthread_t t;
    renumber_dir = dir;
    signal(SIGPIPE, on_sigpipe);
    renumber_once((void *)1L);
    CHECK("thread", pthread_create(&t, NULL, renumber_once, (void *)2L) == 0);
    pthread_join(t, NULL);
    renumber_once((void *)3L);
}

static volatile sig_atomic_t pipes_seen, sigios;
static void count_sigpipe(int sig) { (void)sig; pipes_seen++; }
static void count_sigio(int sig) { (void)sig; sigios++; }

/* n rounds of a 64-byte write and read through a socketpair (or a pipe), the bytes checked */
static long stream_echo(int n, int pipes) {
    int sv[2];
    long good = 0;
    char out[64], in[64];
    if (pipes ? pipe(sv) : socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return -1;
    for (int i = 0; i < n; i++) {
        memset(out, 'a' + i % 26, sizeof out);
        if (write(sv[1], out, sizeof out) != sizeof out || read(sv[0], in, sizeof in) != sizeof in) break;
        good += !memcmp(in, out, sizeof in);
    }
    close(sv[0]);
    close(sv[1]);
    return good;
}

/* n rounds of a 64-byte writev in two parts and a readv into three through a socketpair
 * (or a pipe), the bytes checked */
static long vec_echo(int n, int pipes) {
    int sv[2];
    long good = 0;
    char out[64], in[64];
    if (pipes ? pipe(sv) : socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return -1;
    struct iovec wv[2] = {{out, 20}, {out + 20, 44}}, rv[3] = {{in, 1}, {in + 1, 0}, {in + 1, 63}};
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 64; j++) out[j] = (char)('a' + (i + j) % 26);
        if (writev(sv[1], wv, 2) != sizeof out || readv(sv[0], rv, 3) != sizeof in) break;
        good += !memcmp(in, out, sizeof in);
    }
    close(sv[0]);
    close(sv[1]);
    return good;
}

static long sock_echo(int n) { return stream_echo(n, 0); }
static void *sock_echo_thread(void *arg) { return (void *)sock_echo((int)(long)arg); }
static void *pipe_echo_thread(void *arg) { return (void *)stream_echo((int)(long)arg, 1); }

#define BIG (4 << 20)
static void *slow_reader(void *arg) {
    int fd = (int)(long)arg;
    static char buf[4096];
    long got = 0, bad = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0) break;
        for (ssize_t i = 0; i < r; i++) bad += buf[i] != (char)((got + i) * 7 % 251);
        got += r;
        if (got < 65536) usleep(1000);  /* the writer's socket is full meanwhile */
    }
    return (void *)(got == BIG && !bad ? 1L : 0L);
}

static void *late_writer(void *arg) {
    int fd = (int)(long)arg;
    if (write(fd, "abcd", 4) != 4) return NULL;
    usleep(20000);
    if (write(fd, "efgh", 4) != 4) return NULL;
    return NULL;
}

static void streams(void) {
    pthread_t t;
    void *res;
    int sv[2];
    printf("socketpair echo, main thread: %ld of 1000\n", sock_echo(1000));
    CHECK("thread", pthread_create(&t, NULL, sock_echo_thread, (void *)1000L) == 0);
    pthread_join(t, &res);
    printf("socketpair echo, second thread: %ld of 1000\n", (long)res);

    printf("socketpair writev/readv echo: %ld of 1000\n", vec_echo(1000, 0));
    printf("pipe writev/readv echo: %ld of 1000\n", vec_echo(1000, 1));
    printf("pipe echo, main thread: %ld of 1000\n", stream_echo(1000, 1));
    CHECK("thread", pthread_create(&t, NULL, pipe_echo_thread, (void *)1000L) == 0);
    pthread_join(t, &res);
    printf("pipe echo, second thread: %ld of 1000\n", (long)res);

    char c;
    char *big = malloc(BIG);
    for (long i = 0; i < BIG; i++) big[i] = (char)(i * 7 % 251);
    for (int pipes = 0; pipes < 2; pipes++) {
        const char *what = pipes ? "pipe" : "socketpair";
        /* a blocking write larger than the socket (pipe) takes at once, its reader slow */
        CHECK(what, (pipes ? pipe(sv) : socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) == 0);
        sock_echo(300);  /* (hot) */
        CHECK("thread", pthread_create(&t, NULL, slow_reader, (void *)(long)sv[0]) == 0);
        ssize_t w = write(sv[1], big, BIG);
        close(sv[1]);
        pthread_join(t, &res);
        printf("%s: 4 MiB blocking write: %zd, read back %s\n", what, w, res ? "whole" : "WRONG");
        close(sv[0]);
        /* the same as a writev of three parts (the rest of the part taken at once is in any of them) */
        CHECK(what, (pipes ? pipe(sv) : socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) == 0);
        vec_echo(300, pipes);
        CHECK("thread", pthread_create(&t, NULL, slow_reader, (void *)(long)sv[0]) == 0);
        struct iovec parts[3] = {{big, 1000}, {big + 1000, 70000}, {big + 71000, BIG - 71000}};
        w = writev(sv[1], parts, 3);
        close(sv[1]);
        pthread_join(t, &res);
        printf("%s: 4 MiB blocking writev: %zd, read back %s\n", what, w, res ? "whole" : "WRONG");
        close(sv[0]);

        /* EPIPE: SIGPIPE caught, then ignored */
        CHECK(what, (pipes ? pipe(sv) : socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) == 0);
        close(sv[0]);
        signal(SIGPIPE, count_sigpipe);
        int epipe = 0;
        for (int i = 0; i < 300; i++) {
            sock_echo(10);
            epipe += write(sv[1], "x", 1) == -1 && errno == EPIPE;
        }
        printf("%s: EPIPE, SIGPIPE caught: %d writes, %d signals\n", what, epipe, (int)pipes_seen);
        signal(SIGPIPE, SIG_IGN);
        epipe = 0;
        for (int i = 0; i < 300; i++) epipe += write(sv[1], "x", 1) == -1 && errno == EPIPE;
        printf("%s: EPIPE, SIGPIPE ignored: %d writes, %d signals\n", what, epipe, (int)pipes_seen);
        close(sv[1]);
        pipes_seen = 0;

        /* non-blocking, nothing to read, with data now and then */
        CHECK(what, (pipes ? pipe2(sv, O_NONBLOCK) : socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv)) == 0);
        int again = 0, data = 0;
        for (int i = 0; i < 3000; i++) {
            if (i % 3 == 0) CHECK("write", write(sv[1], "y", 1) == 1);
            ssize_t r = read(sv[0], &c, 1);
            again += r == -1 && errno == EAGAIN;
            data += r == 1 && c == 'y';
        }
        printf("%s: non-blocking reads: %d data, %d EAGAIN\n", what, data, again);
        close(sv[0]);
        close(sv[1]);

        /* a read that waits for a writer a moment later, and one at end of file */
        CHECK(what, (pipes ? pipe(sv) : socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) == 0);
        sock_echo(300);
        CHECK("thread", pthread_create(&t, NULL, late_writer, (void *)(long)sv[1]) == 0);
        char got[16] = {0};
        ssize_t r = read(sv[0], got, 4);
        pthread_join(t, NULL);
        close(sv[1]);
        ssize_t more = read(sv[0], got + 4, 4), end = read(sv[0], got + 8, 4);
        printf("%s: late data: read %zd, %zd, then %zd: \"%s\"\n", what, r, more, end, got);
        close(sv[0]);
    }
    free(big);

    /* SO_RCVLOWAT: a blocking read waits for 8 bytes though 4 are there */
    CHECK("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    int lowat = 8;
    CHECK("SO_RCVLOWAT", setsockopt(sv[1], SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) == 0);
    sock_echo(300);
    CHECK("thread", pthread_create(&t, NULL, late_writer, (void *)(long)sv[0]) == 0);
    char eight[16] = {0};
    ssize_t r = read(sv[1], eight, sizeof eight);
    pthread_join(t, NULL);
    printf("SO_RCVLOWAT 8: read %zd \"%s\"\n", r, eight);
    close(sv[0]);
    close(sv[1]);

    /* a reset connection: ECONNRESET once, then end of file */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0), cl = socket(AF_INET, SOCK_STREAM, 0);
    CHECK("listen", bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0 &&
                    getsockname(l, (struct sockaddr *)&a, &alen) == 0);
    CHECK("connect", connect(cl, (struct sockaddr *)&a, sizeof a) == 0);
    int acc = accept(l, NULL, NULL);
    struct linger lg = {1, 0};
    CHECK("SO_LINGER", setsockopt(acc, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    sock_echo(300);
    close(acc);
    usleep(10000);
    errno = 0;
    r = read(cl, &c, 1);
    printf("reset: read %zd %s", r, strerror(errno));
    errno = 0;
    r = read(cl, &c, 1);
    printf(", then %zd %s\n", r, r ? strerror(errno) : "");
    close(cl);
    close(l);

    /* datagrams keep their bounds */
    CHECK("socketpair", socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
    char dg[100];
    sock_echo(300);
    for (int i = 1; i <= 3; i++) CHECK("send", write(sv[0], "datagrams", (size_t)i * 3) == i * 3);
    printf("datagrams:");
    for (int i = 0; i < 3; i++) printf(" %zd", read(sv[1], dg, sizeof dg));
    printf("\n");
    close(sv[0]);
    close(sv[1]);

    /* a signalfd (under km a listening socket whose reads km serves: EINVAL natively) */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    int sfd = signalfd(-1, &usr1, 0), got = 0;
    for (int i = 0; i < 300; i++) {
        struct signalfd_siginfo si;
        sock_echo(10);
        raise(SIGUSR1);
        got += read(sfd, &si, sizeof si) == sizeof si && si.ssi_signo == SIGUSR1;
    }
    printf("signalfd: %d of 300 read\n", got);
    close(sfd);

    /* O_ASYNC: the SIGIO a write causes has come when the write returns (last: km's
     * polling tier leaves reads and writes to the handlers from then on) */
    CHECK("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    signal(SIGIO, count_sigio);
    CHECK("F_SETOWN", fcntl(sv[1], F_SETOWN, getpid()) == 0);
    CHECK("O_ASYNC", fcntl(sv[1], F_SETFL, O_ASYNC | O_NONBLOCK) == 0);
    int in_time = 0;
    for (int i = 0; i < 300; i++) {
        int before = sigios;
        sock_echo(10);
        CHECK("write", write(sv[0], "z", 1) == 1);
        in_time += sigios == before + 1;
        CHECK("read", read(sv[1], &c, 1) == 1);
    }
    printf("O_ASYNC: %d of 300 writes' SIGIO in time\n", in_time);
    close(sv[0]);
    close(sv[1]);
}

/* n rounds of a 64-byte send and recv through a socketpair, the bytes checked */
static long msg_echo(int n) {
    int sv[2];
    long good = 0;
    char out[64], in[64];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return -1;
    for (int i = 0; i < n; i++) {
        memset(out, 'A' + i % 26, sizeof out);
        if (send(sv[1], out, sizeof out, 0) != sizeof out || recv(sv[0], in, sizeof in, 0) != sizeof in) break;
        good += !memcmp(in, out, sizeof in);
    }
    close(sv[0]);
    close(sv[1]);
    return good;
}

static void *msg_echo_thread(void *arg) { return (void *)msg_echo((int)(long)arg); }

static void *slow_receiver(void *arg) {
    int fd = (int)(long)arg;
    static char buf[4096];
    long got = 0, bad = 0;
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0) break;
        for (ssize_t i = 0; i < r; i++) bad += buf[i] != (char)((got + i) * 7 % 251);
        got += r;
        if (got < 65536) usleep(1000);
    }
    return (void *)(got == BIG && !bad ? 1L : 0L);
}

/* "result errno" of a call, as the line's next words */
static void said(long r) { printf(" %ld %s", r, r < 0 ? strerror(errno) : "-"); }

static void messages(const char *dir) {
    pthread_t t;
    void *res;
    int sv[2];
    char c, buf[64];
    printf("send/recv echo, main thread: %ld of 1000\n", msg_echo(1000));
    CHECK("thread", pthread_create(&t, NULL, msg_echo_thread, (void *)1000L) == 0);
    pthread_join(t, &res);
    printf("send/recv echo, second thread: %ld of 1000\n", (long)res);

    /* a blocking send larger than the socket takes at once, its reader slow */
    char *big = malloc(BIG);
    for (long i = 0; i < BIG; i++) big[i] = (char)(i * 7 % 251);
    CHECK("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    msg_echo(300);
    CHECK("thread", pthread_create(&t, NULL, slow_receiver, (void *)(long)sv[0]) == 0);
    ssize_t w = send(sv[1], big, BIG, 0);
    close(sv[1]);
    pthread_join(t, &res);
    printf("4 MiB blocking send: %zd, received %s\n", w, res ? "whole" : "WRONG");
    close(sv[0]);

    /* MSG_DONTWAIT on a blocking socket: what fits, then EAGAIN; nothing to read: EAGAIN */
    CHECK("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    msg_echo(300);
    errno = 0;
    w = send(sv[1], big, BIG, MSG_DONTWAIT);
    printf("MSG_DONTWAIT send of 4 MiB: %s", w > 0 && w < BIG ? "part" : "WRONG");
    int again = 0;
    for (int i = 0; i < 300; i++) again += send(sv[1], "x", 1, MSG_DONTWAIT) == -1 && errno == EAGAIN;
    printf(", then %d of 300 EAGAIN\n", again);
    close(sv[0]);
    close(sv[1]);
    CHECK("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    int data = 0;
    again = 0;
    for (int i = 0; i < 3000; i++) {
        if (i % 3 == 0) CHECK("send", send(sv[1], "y", 1, 0) == 1);
        ssize_t r = recv(sv[0], &c, 1, MSG_DONTWAIT);
        again += r == -1 && errno == EAGAIN;
        data += r == 1 && c == 'y';
    }
    printf("MSG_DONTWAIT recv: %d data, %d EAGAIN\n", data, again);

    /* MSG_PEEK leaves the bytes; MSG_MORE sends them all the same on a Unix socket */
    int peeked = 0;
    for (int i = 0; i < 300; i++) {
        char p1[8] = {0}, p2[8] = {0};
        CHECK("send", send(sv[1], "peek", 4, i % 2 ? MSG_MORE : 0) == 4);
        peeked += recv(sv[0], p1, sizeof p1, MSG_PEEK) == 4 && recv(sv[0], p2, sizeof p2, 0) == 4 &&
                  !memcmp(p1, "peek", 4) && !memcmp(p2, "peek", 4);
    }
    printf("MSG_PEEK then recv: %d of 300\n", peeked);

    /* MSG_WAITALL, and a plain recv, each waiting for data that comes 20 ms later */
    for (int waitall = 0; waitall < 2; waitall++) {
        char got[16] = {0};
        msg_echo(300);
        CHECK("thread", pthread_create(&t, NULL, late_writer, (void *)(long)sv[1]) == 0);
        ssize_t r = recv(sv[0], got, 8, waitall ? MSG_WAITALL : 0);
        pthread_join(t, NULL);
        if (!waitall) r += recv(sv[0], got + r, 8, 0);
        printf("%s: %zd \"%s\"\n", waitall ? "MSG_WAITALL" : "late data", r, got);
    }

    /* sendto with no address ignores the address's length; a datagram's recvfrom gives its sender */
    int sent = 0;
    for (int i = 0; i < 300; i++)
        sent += syscall(SYS_sendto, sv[1], "len", 3, 0, NULL, 12345) == 3 && recv(sv[0], buf, sizeof buf, 0) == 3;
    printf("sendto, no address, junk length: %d of 300\n", sent);
    close(sv[0]);
    close(sv[1]);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)}, from;
    socklen_t alen = sizeof a, flen;
    int u = socket(AF_INET, SOCK_DGRAM, 0), v = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK("bind", bind(u, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(u, (struct sockaddr *)&a, &alen) == 0);
    int same = 0;
    for (int i = 0; i < 300; i++) {
        struct sockaddr_in mine;
        socklen_t mlen = sizeof mine;
        flen = sizeof from;
        memset(&from, 0, sizeof from);
        same += sendto(v, "dgram", 5, 0, (struct sockaddr *)&a, sizeof a) == 5 &&
                recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen) == 5 &&
                getsockname(v, (struct sockaddr *)&mine, &mlen) == 0 && from.sin_port == mine.sin_port;
    }
    printf("UDP sendto and recvfrom with addresses: %d of 300\n", same);
    char trunc[2];
    CHECK("sendto", sendto(v, "dgram", 5, 0, (struct sockaddr *)&a, sizeof a) == 5);
    printf("MSG_TRUNC: %zd\n", recv(u, trunc, sizeof trunc, MSG_TRUNC));
    close(u);
    close(v);

    /* EPIPE: SIGPIPE caught; with MSG_NOSIGNAL, no signal */
    CHECK("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    close(sv[0]);
    signal(SIGPIPE, count_sigpipe);
    pipes_seen = 0;
    for (int nosig = 0; nosig < 2; nosig++) {
        int epipe = 0;
        for (int i = 0; i < 300; i++) {
            msg_echo(10);
            epipe += send(sv[1], "x", 1, nosig ? MSG_NOSIGNAL : 0) == -1 && errno == EPIPE;
        }
        printf("EPIPE%s: %d sends, %d signals\n", nosig ? ", MSG_NOSIGNAL" : "", epipe, (int)pipes_seen);
        pipes_seen = 0;
    }
    close(sv[1]);
    signal(SIGPIPE, SIG_DFL);

    /* what is no connected socket's send or recv: each 300 times, hot */
    char path[256];
    snprintf(path, sizeof path, "%s/messages-file", dir);
    int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600), p[2];
    CHECK("pipe", pipe(p) == 0);
    CHECK("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK("send", send(sv[1], "data", 4, 0) == 4);
    struct { const char *what; int fd; void *buf; int flags; } bad[] = {
        {"recv, NULL buffer", sv[0], NULL, 0},
        {"recv, kernel buffer", sv[0], (void *)0xffffffff80000000UL, 0},
        {"recv, non-canonical buffer", sv[0], (void *)0x0000900000000000UL, 0},
        {"send, page-1 buffer", sv[1], (void *)4096, 0},
        {"recv of a pipe", p[0], buf, 0},
        {"send to a file", f, buf, 0},
        {"recv, closed descriptor", 900, buf, 0},
        {"the data after them", sv[0], buf, MSG_DONTWAIT},
        {"recv, flags not for a poller, nothing there", sv[0], buf, MSG_CMSG_CLOEXEC | MSG_DONTWAIT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long r = 0;
        int first_errno = 0, differ = 0;
        for (int j = 0; j < 300; j++) {
            errno = 0;
            long rj = bad[i].what[0] == 's' ? send(bad[i].fd, bad[i].buf, 4, bad[i].flags)
                                            : recv(bad[i].fd, bad[i].buf, 4, bad[i].flags);
            if (j == 0) r = rj, first_errno = errno;
            differ += rj != r || errno != first_errno;
        }
        errno = first_errno;
        printf("%s:", bad[i].what);
        said(r);
        printf(", %d differ\n", differ);
    }
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
    close(f);
    unlink(path);
    free(big);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "flags";
    if (!strcmp(mode, "flags")) flags();
    else if (!strcmp(mode, "signals")) signals();
    else if (!strcmp(mode, "threads")) threads(argc > 2 ? argv[2] : "/tmp");
    else if (!strcmp(mode, "sigreads")) sigreads(argc > 2 ? argv[2] : "/tmp");
    else if (!strcmp(mode, "scribble")) scribble();
    else if (!strcmp(mode, "stuck")) stuck();
    else if (!strcmp(mode, "blocks")) blocks();
    else if (!strcmp(mode, "handoff")) handoff();
    else if (!strcmp(mode, "hostile")) hostile(argc > 2 ? argv[2] : "/tmp");
    else if (!strcmp(mode, "handback")) handback(argc > 2 ? argv[2] : "/tmp");
    else if (!strcmp(mode, "renumber")) renumber(argc > 2 ? argv[2] : "/tmp");
    else if (!strcmp(mode, "streams")) streams();
    else if (!strcmp(mode, "messages")) messages(argc > 2 ? argv[2] : "/tmp");
    else if (!strcmp(mode, "zerobudget")) zerobudget(argc > 2 ? argv[2] : "0");
    return failed;
}
