/*
 * The native poller (kernel/nativepoll.py builds and loads it; kernel/poll.py runs it).
 *
 * The polling tier's monitor half, for the calls that need nothing of Python's: the
 * Python poller thread calls km_poll(), which runs with the GIL released, scans the
 * polled vCPUs' slots and makes the calls it may make here itself (ids, fstat, a
 * path's stat, reads, writes (readv, writev too) and seeks of regular files, and those
 * reads and writes of sockets and pipes, and sends and recvs of sockets, that need not
 * wait), so that such a call costs the stub's spin and one host call instead of a trip
 * through the interpreter (~6 us; ~20 us for a stat) or, for a socket's or pipe's, an
 * exit.  Anything else goes back to Python, which serves it as before.
 *
 * Every guest address is checked and translated exactly as memory/window.py's host()
 * does: inside the window, its host address; otherwise a poison address in the guard
 * after it (or a non-canonical one), where the host call fails with EFAULT at the point
 * where Linux would.  Descriptors at or above the guest's floor are the monitor's own:
 * never touched here.  The guest can scribble on its slot at any time: every field is
 * read once into a local, and the slot's state only ever changes by compare-and-swap
 * (the stub takes a request back the same way).
 *
 * The control block is an array of u64 words shared with Python; its layout, the slot's
 * and the constants below come from Python as -D definitions (nativepoll.py), so that
 * the two sides cannot disagree.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* what km_poll returns besides a vCPU id << 2 | what Python is to do */
#define TICK (-1L)      /* idle_rounds rounds, or C_TICK_NS, without a posted call */
#define RUN 0           /* a posted call, not taken: Python serves it (kernel/poll.py _serve) */
#define ANSWER 1        /* taken and made; the result is in the slot: Python answers it */
#define DECLINED 2      /* declined here (a read that would wait): Python counts it */

static inline int64_t raw(long nr, uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    long r = syscall(nr, a, b, c, d);
    return r < 0 ? -(int64_t)errno : r;
}

static inline int64_t raw6(long nr, uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e, uint64_t f) {
    long r = syscall(nr, a, b, c, d, e, f);
    return r < 0 ? -(int64_t)errno : r;
}

/* memory/window.py host(): the host address a host call may use for [addr, addr+len) */
static inline uint64_t host(const uint64_t *c, uint64_t addr, uint64_t len, int *fault) {
    if (len > c[C_GUARD]) {
        *fault = 1;
        return 0;
    }
    if (addr < c[C_SIZE])
        return c[C_BASE] + addr;
    if (addr < c[C_USER_LIMIT])
        return c[C_BASE] + c[C_SIZE] + (addr & 0xFFF);
    return c[C_NONCANONICAL] | (addr & 0xFFF);
}

/* make() found that Python must make the call (stat_call; an iovec array it leaves to the
 * handler, iovec_here): posted again */
#define DECLINE INT64_MIN
/* make() found that the call would wait (a socket's, a pipe's): the vCPU's own thread makes it,
 * the stub exits with the call (SLOT_DECLINED) */
#define WAIT (INT64_MIN + 1)

/* what here() found the descriptor to be */
#define KIND_FILE 1
#define KIND_SOCKET 2
#define KIND_PIPE 3

static int rw_call(uint64_t nr) {
    return nr == SYS_read || nr == SYS_write || nr == SYS_pread64 || nr == SYS_pwrite64 || nr == SYS_readv ||
           nr == SYS_writev || nr == SYS_sendto || nr == SYS_recvfrom;
}

/* The MSG_* flags of a sendto or recvfrom made here: those that change nothing but
 * whether the call waits (or, MSG_MORE, when TCP sends; MSG_PEEK, what stays queued).
 * Any other (MSG_WAITALL, MSG_OOB, MSG_ERRQUEUE, MSG_TRUNC...) is the handler's. */
#define SEND_FLAGS (MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE)
#define RECV_FLAGS (MSG_DONTWAIT | MSG_PEEK)

/* Is this sendto or recvfrom a send or recv (no address: a connected socket's; the
 * address length is then not looked at, by Linux either) with only such flags? */
static int plain_message(uint64_t nr, const int64_t *a) {
    uint32_t flags = (uint32_t)a[3];
    return a[4] == 0 && !(flags & ~(uint32_t)(nr == SYS_sendto ? SEND_FLAGS : RECV_FLAGS));
}

/* Did the program take POSIX record locks on descriptor fd's file (kernel/poll.py
 * posix_locking)?  Linux drops all of a process's such locks on a file when the process
 * closes any descriptor of it: the duplicate made here must never be of such a file. */
static int locked_file(const uint64_t *c, int fd) {
    uint64_t n = __atomic_load_n(&c[C_NLOCKED], __ATOMIC_SEQ_CST);
    struct stat st;
    if (!n)
        return 0;
    if (n > LOCKED_MAX || fstat(fd, &st) != 0)
        return 1;
    for (uint64_t i = 0; i < n; i++)
        if (c[C_LOCKED + 2 * i] == (uint64_t)st.st_dev && c[C_LOCKED + 2 * i + 1] == (uint64_t)st.st_ino)
            return 1;
    return 0;
}

/* May the call in this slot be made here?  Reads and writes of a regular file of the
 * guest's, and (C_STREAMS) read and write of a socket or a pipe of its, which are made
 * without waiting (``stream_call``); any other read or write may block: the vCPU's own
 * thread makes it.  For those, *own becomes a descriptor of the monitor's (at or above
 * the floor) for the same open file, which the call is made on: the program's other
 * threads can close or dup2 over its number meanwhile (a terminal's, whose read would
 * block this thread), never over this one.  It shares the file's offset, as the
 * program's number does.  Not for a file the program holds POSIX locks on: closing the
 * duplicate would drop them (locked_file).  *kind says which kind of file it is.
 *
 * A program with one thread (C_SOLO) has no other thread to change its descriptors while
 * this one waits for the call: the call is made on the program's own number (*dup 0),
 * and the kind of file it names is known until the program makes any call km's handlers
 * serve (Process.epoch), without the three host calls of a duplicate (~1.5 us of a 64 KiB
 * write's 13 here). */
static int kind_of(const struct stat *st) {
    return S_ISREG(st->st_mode) ? KIND_FILE : S_ISSOCK(st->st_mode) ? KIND_SOCKET
                                            : S_ISFIFO(st->st_mode) ? KIND_PIPE : 0;
}

/* Is a call ``nr`` of a file of ``kind`` one for here? */
static int usable(const uint64_t *c, uint64_t nr, int kind) {
    if (nr == SYS_sendto || nr == SYS_recvfrom)
        return kind == KIND_SOCKET && c[C_STREAMS];
    if (nr == SYS_pread64 || nr == SYS_pwrite64)
        return kind == KIND_FILE;
    return kind == KIND_FILE || (kind && c[C_STREAMS]); /* read, write, readv, writev */
}

static int here(uint64_t *c, uint64_t nr, const int64_t *args, int *own, int *dup, int *kind) {
    *own = -1;
    *dup = 0;
    *kind = 0;
    if (!((const uint8_t *)(c + C_NR))[nr])
        return 0;
    if (rw_call(nr)) {
        uint64_t fd = (uint32_t)args[0];
        struct stat st;
        if (fd >= c[C_FLOOR] || __atomic_load_n(&c[C_OWN_SIGNALS], __ATOMIC_ACQUIRE))
            return 0; /* (the monitor's own; or the handler collects the signals it causes) */
        if ((nr == SYS_sendto || nr == SYS_recvfrom) && !plain_message(nr, args))
            return 0;
        if (__atomic_load_n(&c[C_SOLO], __ATOMIC_ACQUIRE)) {
            uint64_t epoch = __atomic_load_n((const uint64_t *)c[C_EPOCH], __ATOMIC_ACQUIRE);
            if (c[C_KNOWN_FD] != fd + 1 || c[C_KNOWN_EPOCH] != epoch) {
                if (fstat((int)fd, &st) != 0 || !kind_of(&st))
                    return 0; /* (EBADF and the like: Python reports it) */
                c[C_KNOWN_FD] = fd + 1;
                c[C_KNOWN_EPOCH] = epoch;
                c[C_KNOWN_KIND] = (uint64_t)kind_of(&st);
            }
            if (!usable(c, nr, (int)c[C_KNOWN_KIND]))
                return 0;
            *kind = (int)c[C_KNOWN_KIND];
            *own = (int)fd;
            return 1;
        }
        if (locked_file(c, (int)fd))
            return 0;
        int d = fcntl((int)fd, F_DUPFD_CLOEXEC, (int)c[C_FLOOR]);
        if (d < 0)
            return 0; /* (EBADF and the like: Python reports it) */
        if (fstat(d, &st) != 0 || !usable(c, nr, *kind = kind_of(&st))) {
            close(d);
            return 0;
        }
        *own = d;
        *dup = 1;
    } else if (nr == SYS_lseek) {
        if ((uint32_t)args[2] > SEEK_MAX)
            return 0; /* EINVAL after a look at the descriptor: rw.lseek */
    }
    return 1;
}

/* Copy between the monitor's memory and guest memory at host address ``remote`` (a
 * host() result): the kernel checks every page, as memory/window.py's copies do, so a
 * hole in the window fails (-1) instead of faulting here. */
static int guest_copy(const uint64_t *c, void *local, uint64_t remote, size_t n, int to_guest) {
    struct iovec l = {local, n}, r = {(void *)remote, n};
    pid_t pid = (pid_t)c[C_PID];
    ssize_t done = to_guest ? process_vm_writev(pid, &l, 1, &r, 1, 0) : process_vm_readv(pid, &l, 1, &r, 1, 0);
    return done == (ssize_t)n ? 0 : -1;
}

static int plain_dev(const uint64_t *c, uint64_t dev) {
    uint64_t n = __atomic_load_n(&c[C_NPLAIN], __ATOMIC_ACQUIRE);
    for (uint64_t i = 0; i < n && i < PLAIN_MAX; i++)
        if (c[C_PLAIN + i] == dev)
            return 1;
    return 0;
}

/* stat, lstat and newfstatat of a path, as syscalls/fs.py's _stat_call answers them, or
 * DECLINE for what Python must look at: a literal /proc/ path (this process's exe, km's
 * threads), a result on a file system not known to be anything but procfs, or of a
 * kind km's own descriptors are (reached through a magic link: fs.py _looked), and a
 * path whose first bytes cannot be read.  The result is fetched into a buffer here and
 * copied to the program only when it may have it; a call declined after it was made is
 * made again by Python (a stat changes nothing). */
static int64_t stat_call(const uint64_t *c, uint64_t nr, const int64_t *a) {
    int fault = 0;
    int64_t dfd = AT_FDCWD;
    uint64_t path = (uint64_t)a[0], buf = (uint64_t)a[1];
    int flags = nr == SYS_lstat ? AT_SYMLINK_NOFOLLOW : 0;
    if (nr == SYS_newfstatat) {
        dfd = (int32_t)a[0];
        if (dfd >= 0 && (uint64_t)dfd >= c[C_FLOOR])
            dfd = -1; /* common.dirfd: one of the monitor's is not open for the program */
        path = (uint64_t)a[1];
        buf = (uint64_t)a[2];
        flags = (int32_t)a[3];
    }
    uint64_t hpath = path ? host(c, path, 1, &fault) : 0;
    char head[6];
    int peeked = 0;
    if (path && path + sizeof head >= path && path + sizeof head <= c[C_SIZE]) {
        if (guest_copy(c, head, hpath, sizeof head, 0) != 0)
            return DECLINE;
        if (memcmp(head, "/proc/", sizeof head) == 0)
            return DECLINE;
        peeked = 1;
    }
    struct stat st;
    int64_t r = raw(SYS_newfstatat, (uint64_t)dfd, hpath, (uint64_t)&st, (uint64_t)(int64_t)flags);
    if (r != 0)
        return r;
    if (!(flags & AT_EMPTY_PATH && peeked && head[0] == 0)) { /* (the program's own descriptor) */
        if (flags & AT_EMPTY_PATH && !peeked)
            return DECLINE;
        unsigned kind = st.st_mode & S_IFMT;
        if (kind == 0 || kind == S_IFCHR || kind == S_IFIFO || kind == S_IFSOCK || !plain_dev(c, st.st_dev))
            return DECLINE;
    }
    uint64_t out = buf ? host(c, buf, sizeof st, &fault) : 0;
    if (!out || fault || guest_copy(c, &st, out, sizeof st, 1) != 0)
        return -EFAULT;
    return 0;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Wait up to wait_ns for ``own`` (a socket or a pipe) to have data (1), in slices of
 * WAIT_SLICE_NS, giving up (0) when the vCPU is kicked (a signal to deliver, the process
 * ending: the thread's settle waits for this call) or a socket has a receive timeout of
 * its own (the thread's read keeps it).  The waiting vCPU spins in its stub meanwhile:
 * only while it is the one slot on (kernel/poll.py READ_WAIT_NS), so that the poller,
 * asleep here, serves nobody else, and the program's other threads have the other CPUs. */
#define WAIT_SLICE_NS 100000
static int await_data(int own, int kind, uint64_t wait_ns, const volatile uint8_t *kick) {
    struct timeval tv = {0, 0};
    socklen_t len = sizeof tv;
    if (kind == KIND_SOCKET &&
        (getsockopt(own, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) != 0 || tv.tv_sec || tv.tv_usec))
        return 0;
    uint64_t start = now_ns();
    for (;;) {
        uint64_t spent = now_ns() - start;
        if (*kick || spent >= wait_ns)
            return 0;
        uint64_t left = wait_ns - spent;
        struct pollfd pfd = {own, POLLIN, 0};
        struct timespec ts = {0, (long)(left < WAIT_SLICE_NS ? left : WAIT_SLICE_NS)};
        int r = ppoll(&pfd, 1, &ts, NULL);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return 0;
    }
}

/* One read or write of ``own`` into or from the buffers iov[0..cnt) (host addresses), a
 * socket (MSG_DONTWAIT, and MSG_NOSIGNAL: the program's SIGPIPE is raised by its thread;
 * with the call's own MSG_* ``flags``) or a pipe (RWF_NOWAIT), that never waits. */
static int64_t nowait(int kind, int reading, uint32_t flags, int own, struct iovec *iov, uint64_t cnt) {
    if (kind == KIND_SOCKET) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = cnt};
        return reading ? raw(SYS_recvmsg, (uint64_t)own, (uint64_t)&m, flags | MSG_DONTWAIT, 0)
                       : raw(SYS_sendmsg, (uint64_t)own, (uint64_t)&m, flags | MSG_DONTWAIT | MSG_NOSIGNAL, 0);
    }
    /* (the current position, -1: a pipe has none; the kernel's pos_l, pos_h) */
    return raw6(reading ? SYS_preadv2 : SYS_pwritev2, (uint64_t)own, (uint64_t)iov, cnt, (uint64_t)-1, 0,
                RWF_NOWAIT);
}

/* A read or write (readv, writev) of a socket or a pipe (``own``), or a socket's send or
 * recv (sendto, recvfrom: ``flags``, its MSG_* flags, 0 for the others), into or from the
 * buffers iov[0..cnt), ``n`` bytes in all, made without waiting: what the vCPU's thread
 * would get from its call, when that call would not wait (MSG_DONTWAIT and O_NONBLOCK make
 * a would-wait EAGAIN the answer).  Otherwise WAIT, having changed nothing (the call would
 * wait: no data yet, no room to write; or an error that only the handler's path answers:
 * a listening socket's EINVAL is perhaps a signalfd's, kernel/signalfd.py; a FIFO refuses
 * RWF_NOWAIT, EOPNOTSUPP, where an anonymous pipe takes it): the vCPU's thread makes the
 * whole call.  A write the file took only part of (*carry: how much) is finished by the
 * vCPU's thread too, waiting as a blocking write does (syscalls/dispatch.py ``_carried``;
 * a pipe takes a write of PIPE_BUF bytes or fewer whole or not at all, as a blocking write
 * needs).  A socket's read waits for SO_RCVLOWAT bytes, which a read that does not wait
 * ignores once any have come: a socket whose mark is not 1 is the vCPU's thread's.  EPIPE:
 * the answer, and *want_exit set (unless MSG_NOSIGNAL), so that the vCPU's thread raises
 * SIGPIPE as after its own write (dispatch.finish; the host's SIGPIPE for a pipe stays
 * blocked on the poller's thread, ignored, as km's threads keep theirs: kernel/signals.py). */
static int64_t stream_call(int kind, uint64_t nr, uint32_t flags, int own, struct iovec *iov, uint64_t cnt,
                           uint64_t n, int64_t *carry, int *want_exit, uint64_t wait_ns,
                           const volatile uint8_t *kick) {
    int blocking = !(flags & MSG_DONTWAIT) && !(fcntl(own, F_GETFL) & O_NONBLOCK);
    int reading = nr == SYS_read || nr == SYS_readv || nr == SYS_recvfrom;
    int64_t r;
    if (reading) {
        int lowat = 1;
        socklen_t len = sizeof lowat;
        if (kind == KIND_SOCKET && blocking &&
            (getsockopt(own, SOL_SOCKET, SO_RCVLOWAT, &lowat, &len) != 0 || lowat > 1))
            return WAIT;
        r = nowait(kind, reading, flags, own, iov, cnt);
        if (r == -EAGAIN && blocking && wait_ns && await_data(own, kind, wait_ns, kick))
            r = nowait(kind, reading, flags, own, iov, cnt);
    } else {
        r = nowait(kind, reading, flags, own, iov, cnt);
        if (blocking && r > 0 && (uint64_t)r < n) {
            *carry = r;
            return WAIT;
        }
        *want_exit = r == -EPIPE && !(flags & MSG_NOSIGNAL);
    }
    if ((r == -EAGAIN && blocking) || r == -EINVAL || r == -EOPNOTSUPP)
        return WAIT;
    return r;
}

/* May a host signal be on its way to the program: pending on the host (another process's
 * kill), or taken by km's signal thread and not posted yet (kernel/signals.py after_wait
 * looks the same way)?  Then a socket's or pipe's call answers with an exit, whose
 * handling collects it first: a signal sent before the write that ended a read must be
 * handled by the time the read returns, as on Linux (CPython's tests; sigcases
 * delivered-after-kill).  Without the addresses (a test's block): none. */
static int signals_in_flight(const uint64_t *c) {
    uint64_t set = 0;
    if (!c[C_POSTING])
        return 0;
    if (__atomic_load_n((const uint8_t *)c[C_POSTING], __ATOMIC_SEQ_CST))
        return 1;
    return raw(SYS_rt_sigpending, (uint64_t)&set, 8, 0, 0) == 0 &&
           (set & __atomic_load_n((const uint64_t *)c[C_SIG_TAKEN], __ATOMIC_SEQ_CST)) != 0;
}

/* stream_call (``n`` bytes in all), answered with an exit when a host signal may be on its way. */
static int64_t streamed(const uint64_t *c, int kind, uint64_t nr, uint32_t flags, int own, struct iovec *iov,
                        uint64_t cnt, uint64_t n, int64_t *carry, int *want_exit, const volatile uint8_t *kick) {
    int64_t r = stream_call(kind, nr, flags, own, iov, cnt, n, carry, want_exit, c[C_READ_WAIT_NS], kick);
    if (r != WAIT && signals_in_flight(c))
        *want_exit = 1;
    return r;
}

/* memory/window.py host_user: host() of [addr, addr+len) for a call that first checks, as
 * Linux's read, write and iovecs do (access_ok), that [addr, addr+count) as the program
 * gave it is user memory, before the count is capped at len: if not, a non-canonical
 * address, which the host refuses with EFAULT at the same point. */
static uint64_t host_user(const uint64_t *c, uint64_t addr, uint64_t count, uint64_t len, int *fault) {
    if (count && (addr + count < addr || addr + count > c[C_USER_LIMIT]))
        return c[C_NONCANONICAL] | (addr & 0xFFF);
    return host(c, addr, len, fault);
}

/* The iovecs a readv or writev made here may have (more: Python's, as UIO_MAXIOV allows). */
#define IOV_HERE 16

/* syscalls/rw.py host_iovec: the program's array of ``cnt`` iovecs at ``addr`` read into
 * iov[], each buffer translated as host_user() does, the lengths capped at MAX_RW in all (*n).
 * 0 when the handler is to make the call instead: no iovec or more than IOV_HERE, an
 * array that cannot be read, a length of 2^63 or more, a buffer longer than the guard
 * (so that it answers EBADF, EFAULT or EINVAL in Linux's order: the descriptor first). */
static int iovec_here(const uint64_t *c, uint64_t addr, uint64_t cnt, struct iovec *iov, uint64_t *n) {
    int fault = 0;
    uint64_t total = 0;
    if (cnt == 0 || cnt > IOV_HERE)
        return 0;
    uint64_t array = host(c, addr, cnt * sizeof *iov, &fault);
    if (fault || guest_copy(c, iov, array, cnt * sizeof *iov, 0) != 0)
        return 0;
    for (uint64_t i = 0; i < cnt; i++) {
        uint64_t base = (uint64_t)iov[i].iov_base, len = iov[i].iov_len;
        if (len >> 63)
            return 0;
        uint64_t capped = len < c[C_MAX_RW] - total ? len : c[C_MAX_RW] - total;
        iov[i].iov_base = (void *)host_user(c, base, len, capped, &fault);
        iov[i].iov_len = capped;
        if (fault)
            return 0;
        total += capped;
    }
    *n = total;
    return 1;
}

/* Make the call (``here`` said yes, for the values in a[]; ``own``: its descriptor). */
static int64_t make(const uint64_t *c, uint64_t nr, const int64_t *a, int own, int kind, int64_t *carry,
                    int *want_exit, const volatile uint8_t *kick) {
    int fault = 0;
    uint64_t fd = (uint32_t)a[0], n, p;
    struct iovec iov[IOV_HERE];
    switch (nr) {
    case SYS_read:
    case SYS_write:
    case SYS_pread64:
    case SYS_pwrite64:
        if ((nr == SYS_pread64 || nr == SYS_pwrite64) && a[3] < 0)
            return -EINVAL; /* before the descriptor, as Linux */
        fd = (uint64_t)own;
        n = (uint64_t)a[2] < c[C_MAX_RW] ? (uint64_t)a[2] : c[C_MAX_RW];
        p = host_user(c, (uint64_t)a[1], (uint64_t)a[2], n, &fault); /* (rw.rw_buffer) */
        if (fault)
            return -EFAULT;
        if (kind == KIND_SOCKET || kind == KIND_PIPE) {
            iov[0] = (struct iovec){(void *)p, n};
            return streamed(c, kind, nr, 0, own, iov, 1, n, carry, want_exit, kick);
        }
        return raw(nr, fd, p, n, (uint64_t)a[3]);
    case SYS_readv:
    case SYS_writev:
        if (!iovec_here(c, (uint64_t)a[1], (uint64_t)a[2], iov, &n))
            return DECLINE;
        if (kind == KIND_SOCKET || kind == KIND_PIPE)
            return streamed(c, kind, nr, 0, own, iov, (uint64_t)a[2], n, carry, want_exit, kick);
        return raw(nr, (uint64_t)own, (uint64_t)iov, (uint64_t)a[2], 0);
    case SYS_sendto:
    case SYS_recvfrom: /* (send and recv: plain_message) */
        /* the length capped as a read's, the buffer not checked beyond it (syscalls/common.py buffer) */
        n = (uint64_t)a[2] < c[C_MAX_RW] ? (uint64_t)a[2] : c[C_MAX_RW];
        p = host(c, (uint64_t)a[1], n, &fault);
        if (fault)
            return -EFAULT;
        iov[0] = (struct iovec){(void *)p, n};
        return streamed(c, kind, nr, (uint32_t)a[3], own, iov, 1, n, carry, want_exit, kick);
    case SYS_lseek:
        if (fd >= c[C_FLOOR])
            return -EBADF;
        return raw(nr, fd, (uint64_t)a[1], (uint32_t)a[2], 0);
    case SYS_stat:
    case SYS_lstat:
    case SYS_newfstatat:
        return stat_call(c, nr, a);
    case SYS_fstat:
        p = (uint64_t)a[1] ? host(c, (uint64_t)a[1], 144, &fault) : 0;
        if (fault)
            return -EFAULT;
        return raw(nr, fd < c[C_FLOOR] ? fd : NEVER_OPEN, p, 0, 0);
    default: /* the ids: no arguments */
        return raw(nr, 0, 0, 0, 0);
    }
}

/* The rewriter's settled sites (kernel/rewrite.py: patched or refused), an open
 * addressing table of (return address, 1 if patched).  A site not in it goes to Python
 * after its call, which counts it towards rewriting. */
static int settled(const uint64_t *c, uint64_t ret, int *patched) {
    const uint64_t *t = c + C_SITES;
    uint64_t h = (ret * 0x9E3779B97F4A7C15ull) >> (64 - SITES_BITS);
    for (int i = 0; i < 16; i++) {
        const uint64_t *e = t + 2 * ((h + i) & ((1u << SITES_BITS) - 1));
        uint64_t at = __atomic_load_n(&e[0], __ATOMIC_ACQUIRE);
        if (at == 0)
            return 0;
        if (at == ret) {
            *patched = e[1] != 0;
            return 1;
        }
    }
    return 0;
}

long km_poll(uint64_t *c, long idle_rounds) {
    long idle = 0;
    uint64_t idle_since = 0;
    for (;;) {
        int posted = 0;
        uint64_t nvid = __atomic_load_n(&c[C_NVID], __ATOMIC_ACQUIRE);
        for (uint64_t v = 0; v < nvid && v < POLL_VCPUS; v++) {
            uint64_t *vc = c + C_VC + v * VC_WORDS;
            uint64_t sa = __atomic_load_n(&vc[V_SLOT], __ATOMIC_ACQUIRE);
            if (!sa)
                continue;
            uint32_t *state = (uint32_t *)(sa + SLOT_STATE);
            volatile int64_t *q = (volatile int64_t *)sa;
            if (__atomic_load_n(state, __ATOMIC_ACQUIRE) != SLOT_POSTED)
                continue;
            posted = 1;
            uint64_t nr = (uint64_t)q[SLOT_NR / 8];
            if (!vc[V_NATIVE] || nr >= 512 || !((const uint8_t *)(c + C_NR))[nr])
                return (long)(v << 2 | RUN);
            __atomic_store_n(&c[C_SERVING], v + 1, __ATOMIC_SEQ_CST); /* (poll.py settle waits for it) */
            uint32_t expected = SLOT_POSTED;
            if (!__atomic_compare_exchange_n(state, &expected, SLOT_TAKEN, 0, __ATOMIC_SEQ_CST,
                                             __ATOMIC_SEQ_CST)) {
                __atomic_store_n(&c[C_SERVING], 0, __ATOMIC_SEQ_CST); /* the stub took it back */
                continue;
            }
            /* Taken: the stub waits for the answer now.  The request is read once, here;
             * whatever the program writes into its slot from now on changes nothing. */
            int64_t a[6];
            nr = (uint64_t)q[SLOT_NR / 8];
            for (int i = 0; i < 6; i++)
                a[i] = q[SLOT_ARGS / 8 + i];
            int own, dup, kind;
            int64_t carry = 0;
            if (nr >= 512 || !here(c, nr, a, &own, &dup, &kind)) {
                /* not one for here (a pipe's read...): posted again, for Python to serve
                 * or decline (the stub, waiting, sees it posted and may take it back) */
                __atomic_store_n(state, SLOT_POSTED, __ATOMIC_SEQ_CST);
                __atomic_store_n(&c[C_SERVING], 0, __ATOMIC_SEQ_CST);
                return (long)(v << 2 | RUN);
            }
            int want_exit = 0;
            int64_t res = make(c, nr, a, own, kind, &carry, &want_exit, (const volatile uint8_t *)vc[V_KICK]);
            if (dup)
                close(own);
            if (res == DECLINE) { /* (as a call not for here, above) */
                __atomic_store_n(state, SLOT_POSTED, __ATOMIC_SEQ_CST);
                __atomic_store_n(&c[C_SERVING], 0, __ATOMIC_SEQ_CST);
                return (long)(v << 2 | RUN);
            }
            if (res == WAIT) {
                /* the stub exits with the call, for its thread to make (syscalls/dispatch.py
                 * ``_carried`` finishes a partial write); the flags before the state, as
                 * the dispatcher reads them once the stub has seen it */
                vc[V_CARRY] = (uint64_t)carry;
                vc[V_DECLINED_NR] = nr;
                vc[V_DECLINED] = 1;
                __atomic_store_n(state, SLOT_DECLINED, __ATOMIC_SEQ_CST);
                __atomic_store_n(&c[C_SERVING], 0, __ATOMIC_SEQ_CST);
                return (long)(v << 2 | DECLINED);
            }
            q[SLOT_RESULT / 8] = res;
            int patched = 0;
            /* (a site not settled is Python's to count once the program is past its
             * warm-up, C_WARM: before, no site is examined, kernel/rewrite.py) */
            if (res == -EFBIG || (c[C_REWRITING] && c[C_SERVED] >= c[C_WARM] &&
                                  !settled(c, (uint64_t)q[SLOT_RCX / 8], &patched)))
                return (long)(v << 2 | ANSWER); /* C_SERVING stays: Python answers, then clears it */
            vc[V_ANSWERED]++;
            vc[V_LAST] = now_ns();
            c[C_SERVED]++;
            c[C_PATCHED] += patched;
            uint32_t *on = (uint32_t *)(sa + SLOT_ON);
            if (c[C_EAGER] && *on < POLL_SPIN_EAGER)
                *on = *on << 1 < POLL_SPIN_EAGER ? *on << 1 : POLL_SPIN_EAGER;
            int attention = want_exit || *(volatile uint8_t *)vc[V_KICK] != 0;
            __atomic_store_n(state, attention ? SLOT_DONE_EXIT : SLOT_DONE, __ATOMIC_SEQ_CST);
            __atomic_store_n(&c[C_SERVING], 0, __ATOMIC_SEQ_CST);
        }
        if (posted) {
            idle = 0;
            idle_since = 0;
        } else if (++idle >= idle_rounds) {
            return TICK;
        } else if (!idle_since) {
            idle_since = now_ns();
        } else if (now_ns() - idle_since > c[C_TICK_NS]) {
            return TICK; /* (a loaded machine: few, long rounds) */
        }
        sched_yield();
    }
}
