/* Linux AIO through the raw system calls (as libaio makes them): contexts, every kind of
 * request km serves, completions taken by io_getevents and from the ring itself, eventfd
 * notification, the errors in Linux's order, a wait that a signal or another thread's
 * submit ends, a forked child without its parent's contexts.  Prints what it sees; the
 * test compares that with a native run.  Usage: aio DIR */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kt_aio.h"

struct ring {
    unsigned id, nr, head, tail, magic, compat, incompat, header;
    struct io_event events[];
};

static long setup(unsigned n, aio_context_t *c) { return syscall(SYS_io_setup, n, c); }
static long destroy(aio_context_t c) { return syscall(SYS_io_destroy, c); }
static long submit(aio_context_t c, long n, struct iocb **v) { return syscall(SYS_io_submit, c, n, v); }
static long getevents(aio_context_t c, long min, long n, struct io_event *e, struct timespec *t) {
    return syscall(SYS_io_getevents, c, min, n, e, t);
}
static long cancel(aio_context_t c, struct iocb *cb, struct io_event *e) { return syscall(SYS_io_cancel, c, cb, e); }

static const char *err(long r) {
    static char buf[64];
    if (r >= 0) {
        snprintf(buf, sizeof buf, "%ld", r);
        return buf;
    }
    switch (errno) {
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case EINTR: return "EINTR";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    }
    snprintf(buf, sizeof buf, "errno %d", errno);
    return buf;
}

static struct iocb cb[8];
static struct iocb *cbs[8];

static void prep(struct iocb *c, int op, int fd, void *buf, size_t n, long long off, uint64_t data) {
    memset(c, 0, sizeof *c);
    c->aio_lio_opcode = op;
    c->aio_fildes = fd;
    c->aio_buf = (uintptr_t)buf;
    c->aio_nbytes = n;
    c->aio_offset = off;
    c->aio_data = data;
    c->aio_key = 0x1234;
}

static int which(uint64_t obj) {
    for (int i = 0; i < 8; i++)
        if (obj == (uintptr_t)&cb[i])
            return i;
    return -1;
}

static int by_data(const void *a, const void *b) {
    uint64_t x = ((const struct io_event *)a)->data, y = ((const struct io_event *)b)->data;
    return x < y ? -1 : x > y;
}

/* (in data order: Linux completes an fsync later than the reads and writes around it) */
static void show(const char *what, struct io_event *e, long n) {
    if (n > 1)
        qsort(e, n, sizeof *e, by_data);
    printf("%s: %ld events:", what, n);
    for (long i = 0; i < n; i++)
        printf(" [data %llu iocb %d res %lld res2 %lld]", (unsigned long long)e[i].data, which(e[i].obj),
               (long long)e[i].res, (long long)e[i].res2);
    printf("\n");
}

static void on_alarm(int s) { (void)s; }

static aio_context_t shared_ctx;
static int shared_fd;
static char shared_buf[16];

static void *late_submit(void *arg) {
    (void)arg;
    usleep(30000);
    prep(&cb[7], IOCB_CMD_PREAD, shared_fd, shared_buf, 5, 0, 77);
    struct iocb *one = &cb[7];
    long r = submit(shared_ctx, 1, &one);
    printf("the other thread's submit: %s\n", err(r));
    fflush(stdout);
    return NULL;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/aio-file", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int rdonly = open(path, O_RDONLY), wronly = open(path, O_WRONLY);
    for (int i = 0; i < 8; i++)
        cbs[i] = &cb[i];

    /* io_setup's checks */
    aio_context_t ctx = 1;
    printf("setup, *ctxp not 0: %s\n", err(setup(4, &ctx)));
    ctx = 0;
    printf("setup of 0 events: %s\n", err(setup(0, &ctx)));
    printf("setup, ctxp unmapped: %s\n", err(setup(4, (aio_context_t *)8)));
    printf("setup of 2^28 events: %s\n", err(setup(1u << 28, &ctx)));
    printf("setup past aio-max-nr: %s\n", err(setup(65537, &ctx)));
    long r = setup(16, &ctx);
    printf("setup of 16: %s, context %s\n", err(r), ctx ? "set" : "0");
    struct ring *ring = (struct ring *)ctx;
    printf("ring: id %u magic %#x compat %u incompat %u header %u head %u tail %u nr %s\n", ring->id, ring->magic,
           ring->compat, ring->incompat, ring->header, ring->head, ring->tail, ring->nr >= 32 ? ">= 32" : "small");

    /* every request km serves, in one submit */
    char w1[] = "hello, aio", r1[16] = {0}, a[4] = "abc", b[4] = "def", ra[3] = {0}, rb[3] = {0};
    struct iovec wv[2] = {{a, 3}, {b, 3}}, rv[2] = {{ra, 3}, {rb, 3}};
    prep(&cb[0], IOCB_CMD_PWRITE, fd, w1, 10, 0, 100);
    prep(&cb[1], IOCB_CMD_PWRITEV, fd, wv, 2, 10, 101);
    prep(&cb[2], IOCB_CMD_FSYNC, fd, NULL, 0, 0, 102);
    prep(&cb[3], IOCB_CMD_FDSYNC, fd, NULL, 0, 0, 103);
    prep(&cb[4], IOCB_CMD_PREAD, fd, r1, 10, 0, 104);
    prep(&cb[5], IOCB_CMD_PREADV, fd, rv, 2, 10, 105);
    r = submit(ctx, 6, cbs);
    printf("submit of 6: %s; aio_key now %#x\n", err(r), cb[0].aio_key);
    printf("ring after: head %u\n", ring->head);
    struct io_event ev[16];
    r = getevents(ctx, 6, 16, ev, NULL);
    show("getevents", ev, r);
    printf("read back: \"%s\" \"%.3s\" \"%.3s\"\n", r1, ra, rb);

    /* completions taken from the ring itself, as libaio does, then the rest */
    prep(&cb[0], IOCB_CMD_PREAD, fd, r1, 5, 0, 200);
    prep(&cb[1], IOCB_CMD_PREAD, fd, r1 + 5, 5, 5, 201);
    printf("submit of 2: %s\n", err(submit(ctx, 2, cbs)));
    unsigned head = ring->head;
    struct io_event first = ring->events[head];
    ring->head = (head + 1) % ring->nr;
    show("taken from the ring", &first, 1);
    r = getevents(ctx, 1, 16, ev, NULL);
    show("then getevents", ev, r);

    /* io_submit's checks */
    printf("submit, no such context: %s\n", err(submit(ctx + 4096, 1, cbs)));
    printf("submit of -1: %s\n", err(submit(ctx, -1, cbs)));
    printf("submit of 0: %s\n", err(submit(ctx, 0, cbs)));
    printf("submit, array unmapped: %s\n", err(submit(ctx, 1, (struct iocb **)8)));
    struct iocb *bad = (struct iocb *)8;
    printf("submit, iocb unmapped: %s\n", err(submit(ctx, 1, &bad)));
    prep(&cb[0], IOCB_CMD_PREAD, 999, r1, 5, 0, 1);
    printf("submit, no such descriptor: %s\n", err(submit(ctx, 1, cbs)));
    prep(&cb[0], IOCB_CMD_PREAD, fd, r1, 5, 0, 1);
    cb[0].aio_reserved2 = 1;
    printf("submit, reserved field set: %s\n", err(submit(ctx, 1, cbs)));
    prep(&cb[0], 99, fd, r1, 5, 0, 1);
    printf("submit, unknown command: %s\n", err(submit(ctx, 1, cbs)));
    prep(&cb[0], IOCB_CMD_PREAD, fd, r1, (size_t)-1, 0, 1);
    printf("submit, negative count: %s\n", err(submit(ctx, 1, cbs)));
    prep(&cb[0], IOCB_CMD_PREAD, wronly, r1, 5, 0, 1);
    printf("submit, read of a write-only descriptor: %s\n", err(submit(ctx, 1, cbs)));
    prep(&cb[0], IOCB_CMD_PWRITE, rdonly, w1, 5, 0, 1);
    printf("submit, write of a read-only descriptor: %s\n", err(submit(ctx, 1, cbs)));
    prep(&cb[0], IOCB_CMD_FSYNC, fd, w1, 5, 0, 1);
    printf("submit, fsync with a buffer: %s\n", err(submit(ctx, 1, cbs)));
    prep(&cb[0], IOCB_CMD_PREAD, fd, r1, 5, -1, 1);
    printf("submit, negative offset: %s\n", err(submit(ctx, 1, cbs)));
    prep(&cb[0], IOCB_CMD_PREAD, fd, (void *)0xffff800000000000ull, 5, 0, 1);
    printf("submit, buffer in the kernel's half: %s\n", err(submit(ctx, 1, cbs)));
    prep(&cb[0], IOCB_CMD_PREAD, fd, r1, 5, 0, 1);
    cb[0].aio_rw_flags = 0x40000000;
    printf("submit, unknown RWF flag: %s\n", err(submit(ctx, 1, cbs)));
    prep(&cb[0], IOCB_CMD_PREAD, fd, r1, 5, 0, 1);
    cb[0].aio_flags = IOCB_FLAG_IOPRIO;
    cb[0].aio_reqprio = 7 << 13;
    printf("submit, no such I/O class: %s\n", err(submit(ctx, 1, cbs)));
    prep(&cb[0], IOCB_CMD_PREAD, fd, r1, 5, 0, 1);
    cb[0].aio_flags = IOCB_FLAG_RESFD;
    cb[0].aio_resfd = fd;
    printf("submit, RESFD not an eventfd: %s\n", err(submit(ctx, 1, cbs)));
    cb[0].aio_resfd = 999;
    printf("submit, RESFD not open: %s\n", err(submit(ctx, 1, cbs)));
    /* the first good, the second not: the count of those taken */
    prep(&cb[0], IOCB_CMD_PREAD, fd, r1, 5, 0, 300);
    prep(&cb[1], IOCB_CMD_PREAD, 999, r1, 5, 0, 301);
    printf("submit, second request bad: %s\n", err(submit(ctx, 2, cbs)));
    /* a buffer the program has not mapped (but may): the request is taken, its read faults */
    prep(&cb[2], IOCB_CMD_PREAD, fd, (void *)4096, 5, 0, 302);
    printf("submit, buffer not mapped: %s\n", err(submit(ctx, 1, &cbs[2])));
    r = getevents(ctx, 2, 16, ev, NULL);
    show("getevents", ev, r);

    /* eventfd notification */
    int efd = eventfd(0, 0);
    prep(&cb[0], IOCB_CMD_PREAD, fd, r1, 5, 0, 400);
    cb[0].aio_flags = IOCB_FLAG_RESFD;
    cb[0].aio_resfd = efd;
    printf("submit with RESFD: %s\n", err(submit(ctx, 1, cbs)));
    uint64_t count = 0;
    r = read(efd, &count, 8);
    printf("eventfd read: %s, count %llu\n", err(r), (unsigned long long)count);
    r = getevents(ctx, 1, 16, ev, NULL);
    show("getevents", ev, r);

    /* a pipe: no positions; a read of what is there */
    int p[2];
    pipe(p);
    write(p[1], "piped", 5);
    prep(&cb[0], IOCB_CMD_PREAD, p[0], r1, 16, 12345, 500);
    prep(&cb[1], IOCB_CMD_PWRITE, p[1], w1, 4, 777, 501);
    printf("submit to a pipe: %s\n", err(submit(ctx, 2, cbs)));
    r = getevents(ctx, 2, 16, ev, NULL);
    show("getevents", ev, r);
    memset(r1, 0, sizeof r1);
    printf("pipe holds: %s \"%s\"\n", err(read(p[0], r1, sizeof r1)), r1);

    /* io_getevents' checks and waits */
    struct timespec zero = {0, 0}, ms = {0, 20000000};
    printf("getevents, min > nr: %s\n", err(getevents(ctx, 2, 1, ev, &zero)));
    printf("getevents, min < 0: %s\n", err(getevents(ctx, -1, 1, ev, &zero)));
    printf("getevents, no such context: %s\n", err(getevents(ctx + 4096, 0, 1, ev, &zero)));
    printf("getevents, timeout unmapped: %s\n", err(getevents(ctx, 0, 1, ev, (struct timespec *)8)));
    printf("getevents, nothing there, zero timeout: %s\n", err(getevents(ctx, 1, 1, ev, &zero)));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = getevents(ctx, 1, 1, ev, &ms);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long waited = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("getevents, 20 ms: %s, waited %s\n", err(r), waited >= 19 ? "at least 20 ms" : "less");
    prep(&cb[0], IOCB_CMD_PREAD, fd, r1, 5, 0, 600);
    submit(ctx, 1, cbs);
    printf("getevents, events unmapped: %s\n", err(getevents(ctx, 1, 1, (struct io_event *)8, &zero)));
    r = getevents(ctx, 1, 16, ev, &zero);
    show("then", ev, r);

    /* a signal ends the wait (every 30 ms: one that came before the wait began, on a busy
     * machine, leaves the next to end it) */
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 30000}, {0, 30000}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
    r = getevents(ctx, 1, 1, ev, NULL);
    setitimer(ITIMER_REAL, &off, NULL);
    printf("getevents until a signal: %s\n", err(r));

    /* io_pgetevents: a mask of a wrong size */
    struct {
        const sigset_t *mask;
        size_t size;
    } usig = {NULL, 0};
    sigset_t set;
    sigemptyset(&set);
    usig.mask = &set;
    usig.size = 7;
    printf("pgetevents, mask size 7: %s\n", err(syscall(SYS_io_pgetevents, ctx, 0, 1, ev, &zero, &usig)));
    usig.size = 8;
    printf("pgetevents, mask size 8: %s\n", err(syscall(SYS_io_pgetevents, ctx, 0, 1, ev, &zero, &usig)));

    /* another thread's submit ends the wait */
    shared_ctx = ctx;
    shared_fd = fd;
    pthread_t th;
    pthread_create(&th, NULL, late_submit, NULL);
    r = getevents(ctx, 1, 1, ev, NULL);
    pthread_join(th, NULL);  /* (its line first, whichever thread the scheduler runs first) */
    show("getevents, woken by the other thread", ev, r);

    /* io_cancel: nothing is in flight */
    prep(&cb[0], IOCB_CMD_PREAD, fd, r1, 5, 0, 700);
    submit(ctx, 1, cbs);
    getevents(ctx, 1, 1, ev, NULL);
    printf("cancel, completed: %s\n", err(cancel(ctx, &cb[0], ev)));
    cb[0].aio_key = 5;
    printf("cancel, key not 0: %s\n", err(cancel(ctx, &cb[0], ev)));
    printf("cancel, iocb unmapped: %s\n", err(cancel(ctx, (struct iocb *)8, ev)));

    /* the ring fills up: EAGAIN before it overflows */
    long taken = 0;
    for (int i = 0; i < 100000; i++) {
        prep(&cb[0], IOCB_CMD_PREAD, fd, r1, 1, 0, i);
        r = submit(ctx, 1, cbs);
        if (r != 1)
            break;
        taken++;
    }
    printf("filling the ring: stopped with %s after %s\n", err(r), taken > 16 && taken < (long)ring->nr ? "some" : "too many or few");
    long drained = 0;
    while ((r = getevents(ctx, 0, 16, ev, &zero)) > 0)
        drained += r;
    printf("drained all: %s\n", drained == taken ? "yes" : "no");

    /* a forked child has none of its parent's contexts */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        prep(&cb[0], IOCB_CMD_PREAD, fd, r1, 5, 0, 800);
        r = submit(ctx, 1, cbs);
        printf("child's submit: %s\n", err(r));
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);

    /* the ring moved whole with mremap: the context follows it (its id is the new address) */
    size_t ring_len = (sizeof *ring + ring->nr * sizeof(struct io_event) + 4095) & ~4095ul;
    void *to = mmap(NULL, ring_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *moved = mremap((void *)ctx, ring_len, ring_len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    printf("mremap of the ring: %s\n", moved == to ? "moved" : strerror(errno));
    prep(&cb[0], IOCB_CMD_PREAD, fd, r1, 5, 0, 900);
    printf("submit to the old address: %s\n", err(submit(ctx, 1, cbs)));
    ctx = (aio_context_t)to;
    printf("submit to the new one: %s\n", err(submit(ctx, 1, cbs)));
    r = getevents(ctx, 1, 16, ev, NULL);
    show("getevents", ev, r);

    /* a context whose ring the program unmapped is no context */
    aio_context_t other = 0;
    setup(1, &other);
    munmap((void *)other, (sizeof(struct ring) + ((struct ring *)other)->nr * sizeof(struct io_event) + 4095) & ~4095ul);
    printf("submit, ring unmapped: %s\n", err(submit(other, 1, cbs)));
    printf("getevents, ring unmapped: %s\n", err(getevents(other, 0, 1, ev, &zero)));
    printf("destroy, ring unmapped: %s\n", err(destroy(other)));

    /* io_destroy */
    printf("destroy: %s\n", err(destroy(ctx)));
    printf("destroy again: %s\n", err(destroy(ctx)));
    printf("submit after destroy: %s\n", err(submit(ctx, 1, cbs)));
    unlink(path);
    return 0;
}
