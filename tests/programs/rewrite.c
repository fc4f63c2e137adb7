/* Syscall sites rewritten by km (kernel/rewrite.py): the same output natively and under km.
 *
 *   rewrite calls N          N rounds of getppid, write (/dev/null), read (a file), lseek
 *   rewrite signals N R      writes to a pipe a child drains, SIGALRM every 300 us
 *                            (R: 1 SA_RESTART, 0 not): every write's result is legal and
 *                            the child reads exactly what was written
 *   rewrite threads T N      T threads calling getppid N times each, from the same site
 *   rewrite forkexec N       calls, fork: the child calls more and execs "calls"
 *   rewrite code N [core]    the first bytes of getppid before and after N calls (not
 *                            compared with native: under km the site reads as a jmp);
 *                            then SIGSEGV if asked (km --core: the core file shows b8)
 *   rewrite gs N             N calls, GS base read and set (arch_prctl), N calls more
 *   rewrite raw N            N calls through syscall(3)
 *   rewrite rawsignals N R   signals, every call through syscall(3) (musl's: the jump covers
 *                            `mov 0x18(%rdx),%rdx; syscall`), the reader's blocking reads too
 *   rewrite rawthreads T N   threads, through syscall(3), while SIGALRM every 200 us lands in
 *                            whichever thread it finds (handler: SA_RESTART)
 *   rewrite writable N       N calls, getppid's code made writable: its bytes, N calls more
 *   rewrite unmap N          N calls, km's trampoline page unmapped (if any), N calls more
 *   rewrite futexwake T      T threads wait on a futex word that never changes, moved
 *                            (FUTEX_CMP_REQUEUE) to a second one, which proves them inside
 *                            their wait; getppid made hot (its site rewritten: the other
 *                            threads paused); then T wakes of one each on the second word:
 *                            each finds a waiter (LTP's futex_wake02)
 *   rewrite rerun N          syscall(3)'s site made hot, then N calls of tgkill(self,
 *                            SIGUSR1) through it, whose handler makes the call run again as
 *                            getppid (its frame's RIP back on the `syscall`, RAX the number):
 *                            each returns the parent's pid
 *   rewrite forkpause MB [first]  a fork made while another thread's site turns hot: the
 *                            fork waits for the address space (a thread maps MB MiB with
 *                            MAP_POPULATE meanwhile) while the other thread pauses the
 *                            process to rewrite (Go's runtime TestSignalDuringExec: the
 *                            child inherited the pause and hung in its first blocking
 *                            call); with "first", that site is the program's first (its
 *                            trampoline page is mapped then, and the fork went first);
 *                            the child reads a pipe, makes a site hot of its own, exits
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define ARCH_SET_GS 0x1001
#define ARCH_GET_GS 0x1004
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

static int raw;  /* the calls go through syscall(3) */
static ssize_t do_write(int fd, const void *b, size_t n) { return raw ? syscall(SYS_write, fd, b, n) : write(fd, b, n); }
static ssize_t do_read(int fd, void *b, size_t n) { return raw ? syscall(SYS_read, fd, b, n) : read(fd, b, n); }
static pid_t do_getppid(void) { return raw ? syscall(SYS_getppid) : getppid(); }

/* syscall(3)'s site made hot before signals come (a signal frame returning to a `syscall`
   keeps a jump from ever covering it: the point is the site already rewritten) */
static void warm(void) {
    for (int i = 0; raw && i < 3000; i++) do_getppid();
}

static long calls(long n) {
    int zero = open("/proc/self/exe", O_RDONLY), null = open("/dev/null", O_WRONLY);
    char buf[64];
    long ok = 0;
    pid_t pp = getppid();
    for (long i = 0; i < n; i++) {
        ok += getppid() == pp;
        ok += write(null, buf, sizeof buf) == sizeof buf;
        ok += pread(zero, buf, 16, 0) == 16 && buf[1] == 'E';
        ok += lseek(zero, i, SEEK_SET) == i;
    }
    close(zero);
    close(null);
    return ok;
}

static volatile long alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

static int signals(long n, int restart) {
    int p[2];
    if (pipe(p) < 0) return 1;
    int back[2];
    if (pipe(back) < 0) return 1;
    pid_t child = fork();
    if (child == 0) {
        close(p[1]);
        close(back[0]);
        char buf[4096];
        long got[2] = {0, 0};
        ssize_t r;
        while ((r = do_read(p[0], buf, sizeof buf)) > 0) {
            got[0] += r;
            for (ssize_t i = 0; i < r; i++) got[1] += (unsigned char)buf[i];
            if ((got[0] & 0xffff) < 4096) usleep(50);
        }
        if (write(back[1], got, sizeof got) != sizeof got) _exit(1);
        _exit(0);
    }
    close(back[1]);
    close(p[0]);
    warm();
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = restart ? SA_RESTART : 0};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = {{0, 300}, {0, 300}};
    setitimer(ITIMER_REAL, &it, 0);
    static char buf[20000];
    long total = 0, sum = 0, bad = 0;
    for (long i = 0; i < n; i++) {
        for (size_t j = 0; j < sizeof buf; j++) buf[j] = (char)(i + j);
        ssize_t r = do_write(p[1], buf, sizeof buf);
        if (r > 0) {
            total += r;
            for (ssize_t j = 0; j < r; j++) sum += (unsigned char)buf[j];
        } else if (!(r < 0 && errno == EINTR && !restart)) {
            bad++;
        }
        do_getppid();
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, 0);
    close(p[1]);
    long got[2] = {-1, -1};
    while (read(back[0], got, sizeof got) < 0 && errno == EINTR) {}
    int st;
    waitpid(child, &st, 0);
    printf("the child read what was written: %s; writes with a wrong result: %ld; child status %d\n",
           got[0] == total && got[1] == sum ? "yes" : "no", bad, WEXITSTATUS(st));
    return 0;
}

static volatile int armed;
static void make_it_again(int sig, siginfo_t *si, void *arg) {
    (void)sig, (void)si;
    ucontext_t *uc = arg;
    if (!armed) return;
    armed = 0;
    uc->uc_mcontext.gregs[REG_RIP] -= 2;  /* the `syscall` itself: a short site's jump covers it */
    uc->uc_mcontext.gregs[REG_RAX] = SYS_getppid;
}

static int rerun(long n) {
    for (int i = 0; i < 3000; i++) syscall(SYS_getppid);
    struct sigaction sa = {.sa_sigaction = make_it_again, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, 0);
    pid_t pp = getppid(), me = getpid(), tid = (pid_t)syscall(SYS_gettid);
    long ok = 0;
    for (long i = 0; i < n; i++) {
        armed = 1;
        long r = syscall(SYS_tgkill, me, tid, SIGUSR1);
        ok += r == pp && !armed;
    }
    printf("rerun: %ld of %ld calls made again by their handler\n", ok, n);
    return 0;
}

static long per_thread;
static void *hammer(void *arg) {
    long ok = 0;
    pid_t pp = getppid();
    for (long i = 0; i < per_thread; i++) ok += do_getppid() == pp;
    return (void *)ok;
}

static int threads(int t, long n) {
    pthread_t th[64];
    per_thread = n;
    if (raw) {
        warm();
        struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, 0);
        struct itimerval it = {{0, 200}, {0, 200}};
        setitimer(ITIMER_REAL, &it, 0);
    }
    if (t > 64) t = 64;
    for (int i = 0; i < t; i++) pthread_create(&th[i], 0, hammer, 0);
    long ok = 0;
    for (int i = 0; i < t; i++) {
        void *r;
        pthread_join(th[i], &r);
        ok += (long)r;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, 0);
    printf("threads: %ld of %ld calls right\n", ok, (long)t * n);
    return 0;
}

static int forkexec(long n, char *self) {
    printf("parent: %ld\n", calls(n));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        printf("child: %ld\n", calls(n));
        fflush(stdout);
        char arg[32];
        snprintf(arg, sizeof arg, "%ld", n);
        execl(self, self, "calls", arg, (char *)0);
        _exit(127);
    }
    int st;
    waitpid(c, &st, 0);
    printf("parent again: %ld, child status %d\n", calls(n), WEXITSTATUS(st));
    return 0;
}

static void show(const char *when) {
    const unsigned char *p = (const unsigned char *)(void *)getppid;
    if (getenv("SHOW_ADDRESS")) printf("getppid at %p\n", (void *)p);
    printf("%s:", when);
    for (int i = 0; i < 7; i++) printf(" %02x", p[i]);
    printf("\n");
}

static long gs_word = 0x1234567;

static int gs(long n) {
    unsigned long base = 1;
    long ok = 0;
    for (long i = 0; i < n; i++) ok += getppid() > 0;
    syscall(SYS_arch_prctl, ARCH_GET_GS, &base);
    printf("GS base at first: %lx\n", base);
    if (syscall(SYS_arch_prctl, ARCH_SET_GS, &gs_word) != 0) return 1;
    for (long i = 0; i < n; i++) ok += getppid() > 0;
    long w;
    __asm__ volatile("mov %%gs:0, %0" : "=r"(w));
    syscall(SYS_arch_prctl, ARCH_GET_GS, &base);
    printf("GS base set: %s, %%gs:0 = %lx, calls %ld\n", base == (unsigned long)&gs_word ? "yes" : "no", w, ok);
    return 0;
}

/* getppid's code made writable (and executable) after its site was rewritten: the
   program must then read its original bytes, and the calls still work */
static int writable(long n) {
    long ok = 0;
    for (long i = 0; i < n; i++) ok += getppid() > 0;
    unsigned long page = (unsigned long)(void *)getppid & ~4095UL;
    if (mprotect((void *)page, 8192, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) return 1;
    const unsigned char *p = (const unsigned char *)(void *)getppid;
    printf("first byte now %02x\n", p[0]);
    for (long i = 0; i < n; i++) ok += getppid() > 0;
    printf("writable: %ld\n", ok);
    return 0;
}

/* whatever mapping km keeps its trampolines in goes away (munmap): the calls still work */
static int unmap(long n) {
    long ok = 0;
    for (long i = 0; i < n; i++) ok += getppid() > 0;
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned long lo, hi;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "[km-syscalls]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2) munmap((void *)lo, hi - lo);
    if (f) fclose(f);
    for (long i = 0; i < n; i++) ok += getppid() > 0;
    printf("unmapped: %ld\n", ok);
    return 0;
}

#define FUTEX_WAIT_PRIVATE 128  /* (musl-gcc has no kernel headers) */
#define FUTEX_WAKE_PRIVATE 129
#define FUTEX_CMP_REQUEUE_PRIVATE 132
static int fa, fb;  /* the futex words: never changed while the waiters wait */
static volatile int go;

static void *futex_waiter(void *arg) {
    (void)arg;
    while (!go) syscall(SYS_futex, &fa, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return 0;
}

static int futexwake(int t) {
    pthread_t th[64];
    if (t > 64) t = 64;
    for (int i = 0; i < t; i++) pthread_create(&th[i], 0, futex_waiter, 0);
    /* a waiter is in its wait once FUTEX_CMP_REQUEUE moved it from fa to fb */
    long moved = 0;
    while (moved < t) {
        long r = syscall(SYS_futex, &fa, FUTEX_CMP_REQUEUE_PRIVATE, 0, (long)INT_MAX, &fb, 0);
        if (r > 0) moved += r;
        else usleep(1000);
    }
    long ok = 0;
    for (int i = 0; i < 100; i++) ok += getppid() > 0;
    printf("calls: %ld\nwakes:", ok);
    for (int i = 0; i < t; i++) printf(" %ld", (long)syscall(SYS_futex, &fb, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
    printf("\n");
    fflush(stdout);
    go = 1;  /* the woken ones wait on fa again, or find it changed: every waiter ends */
    __atomic_store_n(&fa, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &fa, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    syscall(SYS_futex, &fb, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    for (int i = 0; i < t; i++) pthread_join(th[i], 0);
    return 0;
}

/* a site of this program's own, `mov $SYS_getppid,%eax; syscall`, called only where
   forkpause says */
static __attribute__((noinline)) long own_site(void) {
    long r;
    __asm__ volatile("mov $110, %%eax\n\tsyscall" : "=a"(r) : : "rcx", "r11", "memory");
    return r;
}

static size_t populate_bytes;

static void *populate(void *arg) {
    (void)arg;
    void *m = mmap(0, populate_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (m != MAP_FAILED) munmap(m, populate_bytes);
    return 0;
}

static void *turn_hot(void *arg) {
    (void)arg;
    usleep(60000);  /* (the fork is waiting for the address space by then) */
    own_site();
    return 0;
}

static int forkpause(long mb, int first) {
    int p[2];
    if (pipe(p) < 0 || write(p[1], "x", 1) != 1) return 1;
    if (!first)
        for (int i = 0; i < 20; i++) getppid();  /* a site rewritten alone: km's trampoline page is there */
    for (int i = 0; i < 7; i++) own_site();  /* one call short of hot (km --rewrite-after 0) */
    populate_bytes = (size_t)mb << 20;
    pthread_t big, hot;  /* (both made first: a thread's stack is a mapping too) */
    pthread_create(&hot, 0, turn_hot, 0);
    pthread_create(&big, 0, populate, 0);
    usleep(20000);  /* (the mapping under way) */
    pid_t child = fork();
    if (child == 0) {
        char c = 0;
        int ok = read(p[0], &c, 1) == 1 && c == 'x';
        for (int i = 0; i < 20; i++) ok &= getppid() > 0;
        _exit(ok ? 0 : 1);
    }
    int st = 0, waited = 0;
    pid_t w = 0;
    while ((w = waitpid(child, &st, WNOHANG)) == 0 && waited++ < 1000) usleep(10000);
    if (w == 0) {
        kill(child, SIGKILL);
        waitpid(child, &st, 0);
        printf("child: hung\n");
    } else {
        printf("child: exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    pthread_join(big, 0);
    pthread_join(hot, 0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    long n = atol(argv[2]);
    if (!strncmp(argv[1], "raw", 3) && argv[1][3]) {
        raw = 1;
        argv[1] += 3;
    }
    if (!strcmp(argv[1], "calls")) {
        printf("calls: %ld\n", calls(n));
        return 0;
    }
    if (!strcmp(argv[1], "signals") && argc > 3) return signals(n, atoi(argv[3]));
    if (!strcmp(argv[1], "threads") && argc > 3) return threads((int)n, atol(argv[3]));
    if (!strcmp(argv[1], "forkexec")) return forkexec(n, argv[0]);
    if (!strcmp(argv[1], "rerun")) return rerun(n);
    if (!strcmp(argv[1], "gs")) return gs(n);
    if (!strcmp(argv[1], "writable")) return writable(n);
    if (!strcmp(argv[1], "unmap")) return unmap(n);
    if (!strcmp(argv[1], "futexwake")) return futexwake((int)n);
    if (!strcmp(argv[1], "forkpause")) return forkpause(n, argc > 3 && !strcmp(argv[3], "first"));
    if (!strcmp(argv[1], "raw")) {  /* syscall(): glibc's site is `mov 0x8(%rsp),%r9` */
        long ok = 0;
        for (long i = 0; i < n; i++) ok += syscall(SYS_getppid) == getppid();
        printf("raw: %ld\n", ok);
        return 0;
    }
    if (!strcmp(argv[1], "code")) {
        show("before");
        long ok = 0;
        for (long i = 0; i < n; i++) ok += getppid() > 0;
        show("after");
        printf("%ld\n", ok);
        fflush(stdout);
        if (argc > 3) raise(SIGSEGV);  /* a core file (km --core) */
        return 0;
    }
    return 2;
}
