/* Access taken away by mprotect and mmap, where km leaves its memslots allowing more than
 * the mapping (memory/slots.py, loose slots): every forbidden access must still fault
 * with its exact address and code, and the access must succeed once a handler gives it
 * back.  Each case prints what the SIGSEGV handler saw (the offset of si_addr in the
 * mapping, si_code) and what memory holds after; run natively and under km, the output
 * must be the same.
 *   loose relro     a writable mapping, part of it made read-only, written
 *   loose hole      part of a writable mapping made PROT_NONE, read then written
 *   loose new-ro    a new read-only mapping, part of it made writable, the rest written
 *   loose file      a private file mapping, read-only, written
 *   loose fork      a read-only part written by a forked child
 *   loose flip N    N rounds of read-only / write fault / writable again
 *   loose threads N one thread flips a page read-only and back, N times, while another
 *                   writes next to it (never a fault) and a third writes to it (faults)
 *   loose touch     a forked child's first touches of its parent's memory (km registers
 *                   each memslot then) by SSE moves, a string move, a locked add, the vDSO */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
static char *base;               /* the mapping the handler's offsets are relative to */
static volatile long faults;
static volatile long region_faults;
static volatile int give_prot = PROT_READ | PROT_WRITE;  /* what the handler gives the faulting page */
static int quiet;
static char *watch;  /* threads: the one page that may fault */

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    char *page = (char *)((unsigned long)si->si_addr & ~(unsigned long)(PAGE - 1));
    faults++;
    if (watch && page != watch) region_faults++;
    if (!quiet) {
        char line[96];
        int n = snprintf(line, sizeof line, "fault at +%#lx code %d\n", (long)((char *)si->si_addr - base),
                         si->si_code);
        write(1, line, n);
    }
    if (mprotect(page, PAGE, give_prot) != 0) {
        char line[96];
        int n = snprintf(line, sizeof line, "mprotect of +%#lx failed: %m\n", (long)(page - base));
        write(1, line, n);
        _exit(99);
    }
}

static void handle(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
}

static char *map(size_t pages, int prot) {
    char *p = mmap(NULL, pages * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    return p;
}

static void relro(void) {
    base = map(4, PROT_READ | PROT_WRITE);
    memset(base, 'a', 4 * PAGE);
    mprotect(base + PAGE, 2 * PAGE, PROT_READ);  /* the middle: a RELRO of a library */
    printf("read %c%c\n", base[PAGE + 5], base[2 * PAGE + 7]);
    base[3 * PAGE + 1] = 'b';                     /* beside it: no fault */
    base[PAGE + 0x123] = 'c';                     /* faults, given back, done again */
    base[2 * PAGE + 0x10] = 'd';
    printf("now %c %c %c, %ld faults\n", base[PAGE + 0x123], base[2 * PAGE + 0x10], base[3 * PAGE + 1], faults);
}

static void hole(void) {
    base = map(3, PROT_READ | PROT_WRITE);
    memset(base, 'h', 3 * PAGE);
    mprotect(base + PAGE, PAGE, PROT_NONE);  /* a guard page in the middle */
    base[0] = 'x';
    base[2 * PAGE] = 'y';
    volatile char *v = base;
    give_prot = PROT_READ;
    char c = v[PAGE + 8];            /* faults (read), given back read-only */
    give_prot = PROT_READ | PROT_WRITE;
    v[PAGE + 9] = 'z';               /* faults (write), given back writable */
    printf("hole read %c, wrote %c, %ld faults\n", c, base[PAGE + 9], faults);
}

static void new_ro(void) {
    base = map(3, PROT_READ);
    mprotect(base + PAGE, PAGE, PROT_READ | PROT_WRITE);  /* a loader's data over its reservation */
    base[PAGE + 3] = 'm';
    mprotect(base + PAGE, PAGE, PROT_READ);               /* ... and its RELRO */
    base[2 * PAGE + 4] = 'n';                             /* faults */
    base[PAGE + 5] = 'o';                                 /* faults */
    base[6] = 'p';                                        /* faults */
    printf("new-ro %c %c %c %c, %ld faults\n", base[PAGE + 3], base[2 * PAGE + 4], base[PAGE + 5], base[6], faults);
}

static void file(void) {
    char path[] = "/tmp/kt-loose-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) exit(2);
    unlink(path);
    char buf[2 * PAGE];
    memset(buf, 'f', sizeof buf);
    if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) exit(2);
    base = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED) exit(2);
    base[PAGE + 2] = 'g';  /* faults; given back writable (a private copy) */
    char back;
    pread(fd, &back, 1, PAGE + 2);
    printf("file %c %c (file still %c), %ld faults\n", base[PAGE + 1], base[PAGE + 2], back, faults);
}

static void child_writes(void) {
    base = map(2, PROT_READ | PROT_WRITE);
    memset(base, 'k', 2 * PAGE);
    mprotect(base, PAGE, PROT_READ);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        base[PAGE + 1] = 'l';  /* no fault */
        base[0x40] = 'q';      /* faults in the child */
        printf("child %c %c, %ld faults\n", base[0x40], base[PAGE + 1], faults);
        exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    base[0x41] = 'r';  /* faults in the parent too */
    printf("parent %c %c %c, %ld faults, child status %d\n", base[0x40], base[0x41], base[PAGE + 1], faults,
           WEXITSTATUS(st));
}

static void flip(long n) {
    base = map(2, PROT_READ | PROT_WRITE);
    quiet = 1;
    for (long i = 0; i < n; i++) {
        mprotect(base, PAGE, PROT_READ);
        base[i % PAGE] = (char)i;  /* faults every round */
        base[PAGE + i % PAGE] = 1;
    }
    long sum = 0;
    for (int i = 0; i < PAGE; i++) sum += (unsigned char)base[i];
    printf("flip %ld rounds, %ld faults, sum %ld\n", n, faults, sum);
}

static volatile int stop;
static long rounds;

static void *flipper(void *arg) {
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        mprotect(base + PAGE, PAGE, PROT_READ);
        mprotect(base + PAGE, PAGE, PROT_READ | PROT_WRITE);
    }
    stop = 1;
    return NULL;
}

static void *neighbour(void *arg) {
    long n = 0;
    while (!stop) {
        base[(n * 64) % PAGE] = (char)n;           /* the page before */
        base[2 * PAGE + (n * 64) % PAGE] = (char)n; /* the page after */
        n++;
    }
    *(long *)arg = n;
    return NULL;
}

static void threads(long n) {
    base = map(3, PROT_READ | PROT_WRITE);
    quiet = 1;
    watch = base + PAGE;
    rounds = n;
    long wrote = 0;
    pthread_t a, b;
    long before = faults;
    pthread_create(&b, NULL, neighbour, &wrote);
    pthread_create(&a, NULL, flipper, NULL);
    long writes = 0;
    while (!stop) {
        base[PAGE + (writes * 8) % PAGE] = 'w';  /* on the flipped page: faults now and then */
        writes++;
    }
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    /* faults only on the flipped page: the neighbours never fault (their faults would
     * show as a wrong count of bytes, and as faults outside the page) */
    printf("threads: %s, neighbours wrote %s\n", faults - before <= writes ? "faults bounded" : "too many faults",
           wrote > 0 ? "yes" : "no");
    printf("page faults outside the flipped page: %ld\n", region_faults);
}

static void child_touches(void) {
    enum { REGIONS = 6 };
    char *r[REGIONS];
    for (int i = 0; i < REGIONS; i++) {  /* apart: PROT_NONE between, so none shares a slot */
        char *p = map(3, PROT_NONE);
        r[i] = p + PAGE;
        mprotect(r[i], PAGE, i == REGIONS - 1 ? PROT_READ : PROT_READ | PROT_WRITE);
        if (i < REGIONS - 1) memset(r[i], 'A' + i, PAGE);
    }
    base = r[REGIONS - 1];
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char out[16] = {0};
        __asm__ volatile("movdqu (%0), %%xmm0\n\tmovdqu %%xmm0, (%1)" : : "r"(r[0] + 16), "r"(r[1] + 32) : "xmm0", "memory");
        __asm__ volatile("movdqu (%0), %%xmm1\n\tmovdqu %%xmm1, (%1)" : : "r"(r[1] + 32), "r"(out) : "xmm1", "memory");
        char *src = r[2], *dst = r[3] + 100;
        long n = 64;
        __asm__ volatile("rep movsb" : "+S"(src), "+D"(dst), "+c"(n) : : "memory");
        long add = 5;
        __asm__ volatile("lock xaddq %0, (%1)" : "+r"(add) : "r"(r[4]) : "memory");
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        r[5][1] = 'x';  /* the read-only one: faults */
        printf("child %.4s %c %c %lx %c, %ld faults\n", out, r[3][100], r[3][163], (unsigned long)add & 0xff,
               r[5][1], faults);
        exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("parent %c %c, child status %d\n", r[1][32], r[4][0], WEXITSTATUS(st));
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    handle();
    const char *how = argv[1];
    long n = argc > 2 ? atol(argv[2]) : 0;
    if (!strcmp(how, "relro")) relro();
    else if (!strcmp(how, "hole")) hole();
    else if (!strcmp(how, "new-ro")) new_ro();
    else if (!strcmp(how, "file")) file();
    else if (!strcmp(how, "fork")) child_writes();
    else if (!strcmp(how, "flip")) flip(n);
    else if (!strcmp(how, "threads")) threads(n);
    else if (!strcmp(how, "touch")) child_touches();
    else return 2;
    return 0;
}
