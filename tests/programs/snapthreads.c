/* A multi-threaded program snapshotted mid-work (`snapthreads FILE [exit|stay]`): four
 * workers computing (FPU and SSE state live), one thread waiting on a condition variable
 * (a futex), one blocked reading a pipe, one sleeping, one in sigsuspend; the main thread snapshots itself
 * once every worker is past a quarter of its work.  After the snapshot the main thread
 * wakes the waiter, feeds the reader and signals the thread in sigsuspend; everything is printed at the end, so every
 * run, native (ENOSYS), original or resumed, prints the same. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "kontain.h"

#define WORKERS 4
#define ITER 4000000

static atomic_int progress[WORKERS];
static double results[WORKERS];
static long shared_count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int go;
static int pipefd[2];
static char got[32];
static int naps;
static volatile sig_atomic_t usr1;

static void on_usr1(int sig) { usr1 = sig; }

/* waits in sigsuspend (a call km serves by waiting itself: resumed, it is made again) for
 * the SIGUSR1 that main sends with pthread_kill (by the thread id the C library keeps) */
static void *suspender(void *arg)
{
    sigset_t none;
    sigemptyset(&none);
    while (!usr1)
        sigsuspend(&none);
    return arg;
}

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    double x = 1.0 + id, y = 0.5;
    for (int i = 0; i < ITER; i++) {
        x = x * 0.999999 + y;
        y = y * 1.0000001 - 1e-9 * (i % 7);
        if (i % 100000 == 0) {
            atomic_store(&progress[id], i);
            pthread_mutex_lock(&lock);
            shared_count += id + 1;
            pthread_mutex_unlock(&lock);
        }
    }
    atomic_store(&progress[id], ITER);
    results[id] = x + y;
    return NULL;
}

static void *waiter(void *arg)
{
    pthread_mutex_lock(&lock);
    while (!go)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return arg;
}

static void *reader(void *arg)
{
    ssize_t n = read(pipefd[0], got, sizeof got - 1);
    if (n < 0) strcpy(got, "read failed");
    return arg;
}

static void *sleeper(void *arg)
{
    for (int i = 0; i < 3; i++) {
        struct timespec ts = {0, 30 * 1000 * 1000};
        nanosleep(&ts, NULL);
        naps++;
    }
    return arg;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : NULL;
    int leave = argc > 2 && strcmp(argv[2], "exit") == 0;
    if (pipe(pipefd)) return 2;
    pthread_t w[WORKERS], t[4];
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &m, NULL);  /* (every thread: only sigsuspend takes it) */
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    for (long i = 0; i < WORKERS; i++) pthread_create(&w[i], NULL, worker, (void *)i);
    pthread_create(&t[0], NULL, waiter, NULL);
    pthread_create(&t[1], NULL, reader, NULL);
    pthread_create(&t[2], NULL, sleeper, NULL);
    pthread_create(&t[3], NULL, suspender, NULL);
    for (int i = 0; i < WORKERS; i++)
        while (atomic_load(&progress[i]) < ITER / 4) sched_yield();
    if (path) {
        long r = km_snapshot(path, leave ? KM_SNAPSHOT_EXIT : 0);
        fprintf(stderr, "snapshot call: %ld\n", r);
    }
    pthread_mutex_lock(&lock);
    go = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    if (write(pipefd[1], "through the pipe", 16) != 16) return 3;
    pthread_kill(t[3], SIGUSR1);
    for (int i = 0; i < WORKERS; i++) pthread_join(w[i], NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < WORKERS; i++) printf("worker %d: %.9f\n", i, results[i]);
    printf("shared count %ld, reader got '%s', naps %d, usr1 %d\n", shared_count, got, naps, (int)usr1);
    return 0;
}
