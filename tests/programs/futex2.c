/* futex2: futex_waitv, futex_wait, futex_wake, futex_requeue (raw system calls): their
 * errors, and waits that other threads end.  One line per check. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NR_futex_waitv 449
#define NR_futex_wake 454
#define NR_futex_wait 455
#define NR_futex_requeue 456
#define FUTEX2_SIZE_U32 0x02
#define FUTEX2_PRIVATE 128
#define FLAGS (FUTEX2_SIZE_U32 | FUTEX2_PRIVATE)
#define SAY(what, cond) printf("%-56s %s\n", what, (cond) ? "ok" : "FAILED")

struct waitv { uint64_t val, uaddr; uint32_t flags, reserved; };

static uint32_t words[4];
static volatile int woke_index = -2;

static long err(long r) { return r == -1 ? -errno : r; }

static void in(struct timespec *ts, long ms) {  /* an absolute CLOCK_MONOTONIC time */
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_nsec += ms * 1000000;
    ts->tv_sec += ts->tv_nsec / 1000000000;
    ts->tv_nsec %= 1000000000;
}

static void *waiter(void *arg) {
    (void)arg;
    struct waitv w[2] = {{0, (uintptr_t)&words[0], FLAGS, 0}, {0, (uintptr_t)&words[1], FLAGS, 0}};
    struct timespec ts;
    in(&ts, 10000);
    woke_index = (int)err(syscall(NR_futex_waitv, w, 2, 0, &ts, CLOCK_MONOTONIC));
    return 0;
}

static void *waiter2(void *arg) {
    struct timespec ts;
    in(&ts, 10000);
    *(long *)arg = err(syscall(NR_futex_wait, &words[2], 0, 0xFFFFFFFFul, FLAGS, &ts, CLOCK_MONOTONIC));
    return 0;
}

/* how many wait on ``word`` now: requeued from it to words[3] and back (0 woken) */
static long waiting_on(uint32_t *word) {
    struct waitv pair[2] = {{0, (uintptr_t)word, FLAGS, 0}, {0, (uintptr_t)&words[3], FLAGS, 0}};
    long n = err(syscall(NR_futex_requeue, pair, 0, 0, 100));
    struct waitv back[2] = {{0, (uintptr_t)&words[3], FLAGS, 0}, {0, (uintptr_t)word, FLAGS, 0}};
    syscall(NR_futex_requeue, back, 0, 0, 100);
    return n;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct waitv w = {0, (uintptr_t)&words[0], FLAGS, 0};
    struct timespec ts;
    in(&ts, 1);
    SAY("futex_waitv: flags EINVAL", err(syscall(NR_futex_waitv, &w, 1, 1, NULL, 0)) == -EINVAL);
    SAY("futex_waitv: no futexes EINVAL", err(syscall(NR_futex_waitv, &w, 0, 0, NULL, 0)) == -EINVAL);
    SAY("futex_waitv: 129 futexes EINVAL", err(syscall(NR_futex_waitv, &w, 129, 0, NULL, 0)) == -EINVAL);
    SAY("futex_waitv: NULL array EINVAL", err(syscall(NR_futex_waitv, NULL, 1, 0, NULL, 0)) == -EINVAL);
    SAY("futex_waitv: bad clock EINVAL", err(syscall(NR_futex_waitv, &w, 1, 0, &ts, CLOCK_TAI)) == -EINVAL);
    void *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, 4096);
    SAY("futex_waitv: array unmapped EFAULT", err(syscall(NR_futex_waitv, gone, 1, 0, NULL, 0)) == -EFAULT);
    SAY("futex_waitv: timeout unmapped EFAULT", err(syscall(NR_futex_waitv, &w, 1, 0, gone, CLOCK_MONOTONIC)) == -EFAULT);
    struct waitv bad = {0, (uintptr_t)gone, FLAGS, 0};
    SAY("futex_waitv: word unmapped EFAULT", err(syscall(NR_futex_waitv, &bad, 1, 0, NULL, 0)) == -EFAULT);
    struct waitv odd = {0, (uintptr_t)&words[0] + 1, FLAGS, 0};
    SAY("futex_waitv: word unaligned EINVAL", err(syscall(NR_futex_waitv, &odd, 1, 0, NULL, 0)) == -EINVAL);
    struct waitv far = {0, 1ul << 62, FLAGS, 0};
    SAY("futex_waitv: word far away EFAULT", err(syscall(NR_futex_waitv, &far, 1, 0, NULL, 0)) == -EFAULT);
    struct waitv resv = {0, (uintptr_t)&words[0], FLAGS, 1};
    SAY("futex_waitv: reserved field EINVAL", err(syscall(NR_futex_waitv, &resv, 1, 0, NULL, 0)) == -EINVAL);
    struct waitv differs = {1, (uintptr_t)&words[0], FLAGS, 0};
    SAY("futex_waitv: value differs EAGAIN", err(syscall(NR_futex_waitv, &differs, 1, 0, NULL, 0)) == -EAGAIN);
    SAY("futex_waitv: times out ETIMEDOUT", err(syscall(NR_futex_waitv, &w, 1, 0, &ts, CLOCK_MONOTONIC)) == -ETIMEDOUT);
    in(&ts, 1);
    SAY("futex_wait: times out ETIMEDOUT",
        err(syscall(NR_futex_wait, &words[0], 0, 0xFFFFFFFFul, FLAGS, &ts, CLOCK_MONOTONIC)) == -ETIMEDOUT);
    SAY("futex_wait: value differs EAGAIN", err(syscall(NR_futex_wait, &words[0], 5, 0xFFFFFFFFul, FLAGS, NULL, 0)) == -EAGAIN);
    SAY("futex_wait: word unmapped EFAULT", err(syscall(NR_futex_wait, gone, 0, 0xFFFFFFFFul, FLAGS, NULL, 0)) == -EFAULT);
    SAY("futex_wake: nobody waits 0", err(syscall(NR_futex_wake, &words[0], 0xFFFFFFFFul, 1, FLAGS)) == 0);
    SAY("futex_wake: word unaligned EINVAL", err(syscall(NR_futex_wake, (char *)&words[0] + 2, 0xFFFFFFFFul, 1, FLAGS)) == -EINVAL);
    SAY("futex_requeue: NULL EINVAL", err(syscall(NR_futex_requeue, NULL, 0, 1, 1)) == -EINVAL);
    SAY("futex_requeue: array unmapped EFAULT", err(syscall(NR_futex_requeue, gone, 0, 1, 1)) == -EFAULT);

    /* a thread in futex_waitv on two words, woken through the second */
    pthread_t th;
    pthread_create(&th, NULL, waiter, NULL);
    while (waiting_on(&words[1]) != 1) usleep(1000);
    SAY("futex_wake of the second word wakes one", err(syscall(NR_futex_wake, &words[1], 0xFFFFFFFFul, 1, FLAGS)) == 1);
    pthread_join(th, NULL);
    SAY("... futex_waitv returns its index (1)", woke_index == 1);

    /* a thread in futex_wait, requeued to another word and woken there */
    long r2 = -2;
    pthread_create(&th, NULL, waiter2, &r2);
    while (waiting_on(&words[2]) != 1) usleep(1000);
    struct waitv pair[2] = {{0, (uintptr_t)&words[2], FLAGS, 0}, {0, (uintptr_t)&words[0], FLAGS, 0}};
    SAY("futex_requeue moves the waiter", err(syscall(NR_futex_requeue, pair, 0, 0, 1)) == 1);
    SAY("futex_wake of the other word wakes it", err(syscall(NR_futex_wake, &words[0], 0xFFFFFFFFul, 1, FLAGS)) == 1);
    pthread_join(th, NULL);
    SAY("... futex_wait returns 0", r2 == 0);
    return 0;
}
