/* Stress for threads and signals: threads faulting at once (each recovers with
 * siglongjmp), a signal storm against busy threads (work must come out exact, restarted
 * calls must not fail), and thread churn that must leave nothing behind.
 *
 *   storm            the checks, one line each
 *   storm host       busy threads while the test sends signals from outside
 *   storm idle       print "ready" and wait (the baseline for churn)
 *   storm churn      1000 threads created and joined, then print "ready" and wait: the
 *                    test counts km's host threads and descriptors meanwhile
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SAY(what, cond) printf("%-52s %s\n", what, (cond) ? "ok" : "FAILED")
#define NFAULTERS 8
#define FAULTS 50
#define NWORKERS 4

static __thread sigjmp_buf jb;
static __thread void *expected;
static atomic_int bad_addr;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    if (si->si_addr != expected) bad_addr++;
    siglongjmp(jb, 1);
}

static void *faulter(void *arg) {
    long id = (long)arg;
    int recovered = 0;
    for (int i = 0; i < FAULTS; i++) {
        expected = (void *)(0x1000 * (id + 1) + i * 8);
        if (sigsetjmp(jb, 1) == 0) {
            *(volatile int *)expected = 1;
        } else {
            recovered++;
        }
    }
    return (void *)(long)recovered;
}

static atomic_int storm_hits, stop_work, eintr_seen;
static void on_usr1(int sig) { (void)sig; storm_hits++; }

struct work { long sum; long calls; int fd; };
static void *worker(void *arg) {
    struct work *w = arg;
    long sum = 0, calls = 0;
    while (!stop_work) {
        for (int i = 0; i < 100000; i++) sum += i & 7;
        if (getppid() <= 0) eintr_seen++;
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL); /* may be cut short by a handler: fine */
        calls++;
    }
    w->sum = sum;
    w->calls = calls;
    return NULL;
}

static void *reader(void *arg) {
    int fd = *(int *)arg;
    char c;
    ssize_t n;
    long got = 0;
    while ((n = read(fd, &c, 1)) != 0) { /* SA_RESTART: never EINTR */
        if (n < 0) { eintr_seen++; break; }
        got++;
    }
    return (void *)got;
}

static void *nothing(void *arg) { return arg; }

static int churn(void) {
    for (int i = 0; i < 1000; i += 8) {
        pthread_t t[8];
        for (int j = 0; j < 8; j++) pthread_create(&t[j], NULL, nothing, NULL);
        for (int j = 0; j < 8; j++) pthread_join(t[j], NULL);
    }
    printf("ready\n");
    fflush(stdout);
    pause();
    return 0;
}

/* signals from outside (the test sends them) while workers run and the main thread
 * reads stdin; ends when stdin closes */
static int from_host(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    struct work w[NWORKERS];
    pthread_t t[NWORKERS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < NWORKERS; i++) pthread_create(&t[i], NULL, worker, &w[i]);
    printf("ready\n");
    char c;
    ssize_t n;
    while ((n = read(0, &c, 1)) > 0) {}
    stop_work = 1;
    int sums_ok = 1;
    for (int i = 0; i < NWORKERS; i++) {
        pthread_join(t[i], NULL);
        sums_ok &= w[i].sum == w[i].calls * 350000L;
    }
    SAY("stdin read to its end: no EINTR (SA_RESTART)", n == 0);
    SAY("work under signals from outside comes out exact", sums_ok);
    SAY("handlers ran", storm_hits > 0);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "churn")) return churn();
    if (argc > 1 && !strcmp(argv[1], "idle")) { printf("ready\n"); pause(); return 0; }
    if (argc > 1 && !strcmp(argv[1], "host")) return from_host();

    /* threads faulting at once */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    pthread_t f[NFAULTERS];
    for (long i = 0; i < NFAULTERS; i++) pthread_create(&f[i], NULL, faulter, (void *)i);
    long total = 0;
    for (int i = 0; i < NFAULTERS; i++) {
        void *r;
        pthread_join(f[i], &r);
        total += (long)r;
    }
    SAY("8 threads x 50 faults, each recovered", total == NFAULTERS * FAULTS);
    SAY("every si_addr right", bad_addr == 0);

    /* a signal storm against busy threads */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    struct work w[NWORKERS];
    pthread_t t[NWORKERS], rd;
    memset(w, 0, sizeof w);
    for (int i = 0; i < NWORKERS; i++) pthread_create(&t[i], NULL, worker, &w[i]);
    int p[2];
    pipe(p);
    pthread_create(&rd, NULL, reader, &p[0]);
    for (int i = 0; i < 2000; i++) {
        if (i % 2) kill(getpid(), SIGUSR1);
        else pthread_kill(t[i / 2 % NWORKERS], SIGUSR1);
        if (i % 10 == 0) pthread_kill(rd, SIGUSR1);
        if (i % 100 == 0) write(p[1], "x", 1);
    }
    stop_work = 1;
    for (int i = 0; i < NWORKERS; i++) pthread_join(t[i], NULL);
    close(p[1]);
    void *got;
    pthread_join(rd, &got);
    int sums_ok = 1;
    for (int i = 0; i < NWORKERS; i++) sums_ok &= w[i].sum == w[i].calls * 350000L;
    SAY("work under a storm of 2000 signals comes out exact", sums_ok);
    SAY("handlers ran", storm_hits > 0);
    SAY("SA_RESTART: no EINTR reached a read", eintr_seen == 0);
    SAY("the pipe's 20 bytes all read", (long)got == 20);
    return 0;
}
