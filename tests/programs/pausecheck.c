/* Work that notices if it is disturbed: four threads compute, call the kernel (polled
 * calls, calls that exit, a pipe round trip, a blocking wait with a timeout, a signal to
 * themselves) and check every answer, until standard input ends.  Under
 * `km --pause-check N` the monitor pauses all of them at arbitrary moments, reads every
 * thread's registers and resumes them (tests/guest/test_runstate.py): nothing may show.
 * Prints one line per thread with its count of wrong answers (0), natively and under km. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NTHREADS 4
static atomic_int stop;
static __thread int hits;
static void on_usr1(int sig) { (void)sig; hits++; }

struct work { int id; long wrong; long rounds; };

/* A wrong answer: counted, and said on stderr (which check, in which round) so that a
 * failure under km says what the program saw. */
static void wrong(struct work *w, const char *what, long got) {
    w->wrong++;
    fprintf(stderr, "pausecheck: thread %d, round %ld: %s (got %ld)\n", w->id, w->rounds, what, got);
}

static unsigned long mix(unsigned long x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdUL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53UL; return x ^ (x >> 33);
}

static void *worker(void *arg) {
    struct work *w = arg;
    int p[2];
    if (pipe(p)) { wrong(w, "pipe", errno); return NULL; }
    pid_t ppid = getppid(), tid = (pid_t)syscall(SYS_gettid);
    do {  /* (at least one round, however soon input ends) */
        unsigned long a = 0, b = 0;
        for (unsigned long i = 0; i < 20000; i++) {  /* the same sum two ways: registers must survive */
            a += mix(i + (unsigned long)w->id);
            b = b + mix(i + (unsigned long)w->id);
        }
        if (a != b) wrong(w, "integer registers", (long)(a - b));
        double x = 0, y = 0;  /* and the FPU's (SSE) registers */
        for (int i = 0; i < 2000; i++) {
            x += (double)mix((unsigned long)i) * 1e-19;
            *(volatile double *)&y = y + (double)mix((unsigned long)i) * 1e-19;
        }
        if (x != y) wrong(w, "SSE registers", 0);
        long id = getppid();
        if (id != ppid) wrong(w, "getppid", id);
        id = syscall(SYS_gettid);
        if (id != tid) wrong(w, "gettid", id);
        char out[16], in[16] = {0};
        snprintf(out, sizeof out, "r%ld-%d", w->rounds, w->id);
        ssize_t n = write(p[1], out, strlen(out));
        if (n != (ssize_t)strlen(out)) wrong(w, "pipe write", n < 0 ? -errno : n);
        n = read(p[0], in, sizeof in);
        if (n != (ssize_t)strlen(out)) wrong(w, "pipe read", n < 0 ? -errno : n);
        else if (strcmp(in, out)) wrong(w, "pipe read's bytes", n);
        struct pollfd pfd = {p[0], POLLIN, 0};
        int r = poll(&pfd, 1, 1);  /* nothing to read: times out after 1 ms */
        if (r != 0) wrong(w, "poll", r < 0 ? -errno : r);
        int before = hits;
        r = pthread_kill(pthread_self(), SIGUSR1);
        if (r) wrong(w, "pthread_kill", r);
        else if (hits != before + 1) wrong(w, "SIGUSR1 handler runs", hits - before);
        w->rounds++;
    } while (!atomic_load(&stop));
    return NULL;
}

int main(void) {
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t[NTHREADS];
    struct work w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct work){i, 0, 0};
        pthread_create(&t[i], NULL, worker, &w[i]);
    }
    char buf[256];
    while (read(0, buf, sizeof buf) > 0) {}
    atomic_store(&stop, 1);
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], NULL);
        printf("thread %d: %ld wrong answers\n", i, w[i].wrong);
    }
    return 0;
}
