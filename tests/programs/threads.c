/* pthreads: create/join, mutex, condvar, barrier, rwlock, TLS, cancellation, detached
 * threads, many threads at once and thousands in turn, signals to threads.
 * One line per check. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SAY(what, cond) printf("%-44s %s\n", what, (cond) ? "ok" : "FAILED")

static __thread int tls_value = 7;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long counter;
static int queue[64], qhead, qtail, produced_done;
static pthread_barrier_t barrier;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static atomic_int arrived, sig_hits;
static atomic_long tids_sum;

static void *compute(void *arg) {
    long n = (long)arg, s = 0;
    for (long i = 0; i < 2000000; i++) s += i % (n + 3);
    tls_value = (int)n;
    return (void *)(s + tls_value - tls_value);
}
static void *bump(void *arg) {
    for (int i = 0; i < 20000; i++) { pthread_mutex_lock(&mu); counter++; pthread_mutex_unlock(&mu); }
    return arg;
}
static void *producer(void *arg) {
    (void)arg;
    for (int i = 1; i <= 1000; i++) {
        pthread_mutex_lock(&mu);
        while ((qtail + 1) % 64 == qhead) pthread_cond_wait(&cv, &mu);
        queue[qtail] = i; qtail = (qtail + 1) % 64;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
    }
    pthread_mutex_lock(&mu); produced_done = 1; pthread_cond_broadcast(&cv); pthread_mutex_unlock(&mu);
    return NULL;
}
static void *consumer(void *arg) {
    long sum = 0;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (qhead == qtail && !produced_done) pthread_cond_wait(&cv, &mu);
        if (qhead == qtail && produced_done) { pthread_mutex_unlock(&mu); break; }
        sum += queue[qhead]; qhead = (qhead + 1) % 64;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
    }
    *(long *)arg = sum;
    return NULL;
}
static void *at_barrier(void *arg) {
    atomic_fetch_add(&arrived, 1);
    int r = pthread_barrier_wait(&barrier);
    return (void *)(long)(r == PTHREAD_BARRIER_SERIAL_THREAD);
}
static void *reader(void *arg) {
    for (int i = 0; i < 2000; i++) { pthread_rwlock_rdlock(&rw); (void)counter; pthread_rwlock_unlock(&rw); }
    return arg;
}
static void *writer(void *arg) {
    for (int i = 0; i < 500; i++) { pthread_rwlock_wrlock(&rw); counter++; pthread_rwlock_unlock(&rw); }
    return arg;
}
static void *sleeper(void *arg) {
    (void)arg;
    for (;;) { pause(); }
    return NULL;
}
static void *tid_of(void *arg) { (void)arg; atomic_fetch_add(&tids_sum, syscall(SYS_gettid) != getpid()); return NULL; }
static void on_usr1(int sig) { (void)sig; atomic_fetch_add(&sig_hits, 1); }
static void *wait_usr1(void *arg) {
    (void)arg;
    while (atomic_load(&sig_hits) == 0) usleep(1000);
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pthread_t th[300];
    void *ret;
    long ok = 1;
    for (long i = 0; i < 4; i++) pthread_create(&th[i], NULL, compute, (void *)i);
    for (long i = 0; i < 4; i++) { pthread_join(th[i], &ret); ok &= ret != NULL; }
    SAY("4 threads compute and join", ok);
    SAY("TLS is per thread", tls_value == 7);
    counter = 0;
    for (long i = 0; i < 4; i++) pthread_create(&th[i], NULL, bump, NULL);
    for (long i = 0; i < 4; i++) pthread_join(th[i], NULL);
    SAY("mutex: 4 x 20000 increments", counter == 80000);
    long s1 = 0, s2 = 0;
    pthread_create(&th[0], NULL, producer, NULL);
    pthread_create(&th[1], NULL, consumer, &s1);
    pthread_create(&th[2], NULL, consumer, &s2);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    SAY("condvar producer/consumers", s1 + s2 == 500500);
    pthread_barrier_init(&barrier, NULL, 8);
    long serial = 0;
    for (long i = 0; i < 8; i++) pthread_create(&th[i], NULL, at_barrier, NULL);
    for (long i = 0; i < 8; i++) { pthread_join(th[i], &ret); serial += (long)ret; }
    SAY("barrier of 8: one serial thread", serial == 1 && arrived == 8);
    counter = 0;
    for (long i = 0; i < 3; i++) pthread_create(&th[i], NULL, reader, NULL);
    for (long i = 3; i < 5; i++) pthread_create(&th[i], NULL, writer, NULL);
    for (long i = 0; i < 5; i++) pthread_join(th[i], NULL);
    SAY("rwlock: 2 writers x 500", counter == 1000);
    /* cancellation of a thread blocked in pause() */
    pthread_create(&th[0], NULL, sleeper, NULL);
    usleep(20000);
    pthread_cancel(th[0]);
    pthread_join(th[0], &ret);
    SAY("pthread_cancel of a thread in pause()", ret == PTHREAD_CANCELED);
    /* many at once */
    tids_sum = 0;
    pthread_attr_t small; pthread_attr_init(&small); pthread_attr_setstacksize(&small, 64 * 1024);
    int made = 0;
    for (int i = 0; i < 200; i++) made += pthread_create(&th[i], &small, tid_of, NULL) == 0;
    for (int i = 0; i < made; i++) pthread_join(th[i], NULL);
    SAY("200 threads at once, each its own tid", made == 200 && tids_sum == 200);
    /* thousands in turn */
    int joined = 0;
    for (int i = 0; i < 1000; i++) {
        if (pthread_create(&th[0], &small, tid_of, NULL)) break;
        joined += pthread_join(th[0], NULL) == 0;
    }
    SAY("1000 threads created and joined in turn", joined == 1000);
    /* detached threads */
    pthread_attr_t det; pthread_attr_init(&det); pthread_attr_setdetachstate(&det, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < 10; i++) pthread_create(&th[i], &det, tid_of, NULL);
    usleep(50000);
    SAY("detached threads run", 1);
    /* a signal to one thread */
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_usr1; sigaction(SIGUSR1, &sa, NULL);
    pthread_create(&th[0], NULL, wait_usr1, NULL);
    pthread_kill(th[0], SIGUSR1);
    pthread_join(th[0], NULL);
    SAY("pthread_kill reaches the thread", sig_hits == 1);
    return 0;
}
