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

static unsigned long mix(unsigned long x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdUL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53UL; return x ^ (x >> 33);
}

static void *worker(void *arg) {
    struct work *w = arg;
    int p[2];
    if (pipe(p)) { w->wrong++; return NULL; }
    pid_t ppid = getppid(), tid = (pid_t)syscall(SYS_gettid);
    do {  /* (at least one round, however soon input ends) */
        unsigned long a = 0, b = 0;
        for (unsigned long i = 0; i < 20000; i++) {  /* the same sum two ways: registers must survive */
            a += mix(i + (unsigned long)w->id);
            b = b + mix(i + (unsigned long)w->id);
        }
        if (a != b) w->wrong++;
        double x = 0, y = 0;  /* and the FPU's (SSE) registers */
        for (int i = 0; i < 2000; i++) {
            x += (double)mix((unsigned long)i) * 1e-19;
            *(volatile double *)&y = y + (double)mix((unsigned long)i) * 1e-19;
        }
        if (x != y) w->wrong++;
        if (getppid() != ppid || syscall(SYS_gettid) != tid) w->wrong++;
        char out[16], in[16] = {0};
        snprintf(out, sizeof out, "r%ld-%d", w->rounds, w->id);
        if (write(p[1], out, strlen(out)) != (ssize_t)strlen(out) || read(p[0], in, sizeof in) != (ssize_t)strlen(out)
            || strcmp(in, out)) w->wrong++;
        struct pollfd pfd = {p[0], POLLIN, 0};
        if (poll(&pfd, 1, 1) != 0) w->wrong++;  /* nothing to read: times out after 1 ms */
        int before = hits;
        if (pthread_kill(pthread_self(), SIGUSR1) || hits != before + 1) w->wrong++;
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
