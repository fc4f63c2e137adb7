/* The system call fuzzer (tests/guest/test_fuzz.py, `make fuzz`, docs/debugging.md).
 *
 *     fuzz [-p] [-t] [-T FIRST] [-x] SEED NCALLS [DIR]
 *
 * Issues NCALLS raw system calls chosen by a PRNG seeded with SEED, with hostile
 * arguments, in directory DIR (default: the current one, which must be its own), then
 * exits 0.  -p prints progress on stderr; -t prints every call and its result (-T FIRST:
 * from call FIRST on), with addresses shown by the region they point into, so that the
 * trace of a native run and of a km run can be compared line by line; -x also dumps
 * the structures the arguments point to.
 *
 * Its fate (exit status, or the signal that kills it) must depend on SEED alone,
 * natively and under km, so that the two can be compared.  Hence:
 *   - every decision comes from the PRNG, never from a result;
 *   - addresses come only from pools of regions it owns or hostile ones nothing can map
 *     (never arbitrary values that could hit its own code or stack in one run only);
 *     structures the kernel reads are rebuilt before every call;
 *   - memory calls that could destroy it (MAP_FIXED, munmap, mprotect, mremap, madvise)
 *     only touch a region kept for them; whatever a mapping call creates elsewhere is
 *     unmapped right after;
 *   - every signal that can reach it asynchronously has a handler (no SA_RESTART, so a
 *     5 ms interval timer ends any blocking call with EINTR); whatever a call changed
 *     of that (dispositions, mask, ITIMER_REAL, FS base) is put back right after it;
 *     signals it sends go to itself, and only signals it handles;
 *   - children (fork, vfork, clone, clone3) exit at once, in assembly, with every signal
 *     blocked;
 *   - calls that could end it, stop it, hang it past signals, leak system-wide objects,
 *     or escape its directory are left out (exit, rt_sigreturn, ptrace, seccomp, rseq
 *     with a valid length, SysV IPC objects but private ones, message queues, keys, io_uring_setup, bpf,
 *     userfaultfd, ...).
 * Nothing here names what it guards against in words a log scan would take for a
 * monitor failure.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <unistd.h>

typedef uint64_t u64;
typedef int64_t s64;
typedef uint32_t u32;

#define PG 4096UL
#define LOG_FD 500 /* a copy of stderr for -p/-t; the fd pool never names it */
#define FIRST_FD 3
#define SIG_SETMASK 2
#define CLEAN_EVERY 256 /* calls between clean-ups (descriptors, children, cwd, limits) */
#define TICK_US 5000    /* the interval timer that ends blocking calls */

/* ---- raw system calls ---------------------------------------------------------------- */

static inline long sc6(long n, long a, long b, long c, long d, long e, long f) {
    register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#define sc0(n) sc6(n, 0, 0, 0, 0, 0, 0)
#define sc1(n, a) sc6(n, (long)(a), 0, 0, 0, 0, 0)
#define sc2(n, a, b) sc6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sc3(n, a, b, c) sc6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sc4(n, a, b, c, d) sc6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* fork, vfork, clone, clone3: the child (result 0) exits at once, in assembly: it uses
 * no stack, so any stack, shared or not, is safe for it. */
long fuzz_forkcall(long nr, long a0, long a1, long a2, long a3, long a4);
__asm__(".text\n.globl fuzz_forkcall\n.type fuzz_forkcall,@function\nfuzz_forkcall:\n"
        "  mov %rdi, %rax\n  mov %rsi, %rdi\n  mov %rdx, %rsi\n  mov %rcx, %rdx\n"
        "  mov %r8, %r10\n  mov %r9, %r8\n  syscall\n  test %rax, %rax\n  jnz 1f\n"
        "  mov $60, %eax\n  xor %edi, %edi\n  syscall\n  ud2\n1:\n  ret\n");

/* the signal trampoline: rt_sigreturn */
void fuzz_restorer(void);
__asm__(".text\n.globl fuzz_restorer\n.type fuzz_restorer,@function\nfuzz_restorer:\n"
        "  mov $15, %eax\n  syscall\n  ud2\n");

/* read-only bytes in the text segment: a buffer the kernel must refuse to write into
 * (EFAULT).  Checked at the end: if anything wrote them, the exit status is 3. */
extern const unsigned char ro_area[];
__asm__(".text\n.balign 4096\n.globl ro_area\nro_area:\n.fill 8192,1,0xcc\n.text\n");
#define RO_SIZE 8192

/* ---- the PRNG -------------------------------------------------------------------------- */

static u64 rng;
static u64 rnd(void) { /* splitmix64 */
    u64 z = (rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static u64 below(u64 n) { return n ? rnd() % n : 0; }
static int one_in(u64 n) { return below(n) == 0; }
#define PICK(arr) ((arr)[below(sizeof(arr) / sizeof((arr)[0]))])

/* ---- memory it owns -------------------------------------------------------------------- */
/* One reservation, carved into regions separated by PROT_NONE guards:
 *   S scratch (random bytes, rebuilt before every call; its end meets guard G)
 *   T prepared structures (rebuilt before every call)
 *   P path strings (written once; the last one has no NUL before its guard)
 *   M the region memory calls may change (rebuilt at every clean-up)
 *   K a stack for clone children, D words for child tids, A an alternate signal stack */
enum { SCRATCH_PAGES = 4, T_PAGES = 4, P_PAGES = 3, M_PAGES = 32, K_PAGES = 4, D_PAGES = 1, A_PAGES = 4 };
static char *base, *S_, *G_, *T_, *P_, *M_, *K_, *D_, *A_;
#define S_SIZE (SCRATCH_PAGES * PG)
#define M_SIZE (M_PAGES * PG)
static u64 heap0, vdso, self_pid;
static char scratch_dir[4096];

struct ksigaction { u64 handler, flags, restorer, mask; };
struct kiovec { u64 base, len; };
struct kmsghdr { u64 name; u32 namelen, pad; u64 iov, iovlen, control, controllen; int32_t flags, pad2; };
struct kmmsghdr { struct kmsghdr h; u32 len, pad; };
struct kts { s64 sec, nsec; };
struct ksigevent { u64 value; int32_t signo, notify; int32_t tid; int32_t pad[11]; };
struct kclone_args { u64 flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup; };
struct kpollfd { int32_t fd; int16_t events, revents; };
struct __attribute__((packed)) kepoll_event { u32 events; u64 data; };
struct ksched_attr { u32 size, policy; u64 flags; int32_t nice; u32 priority; u64 runtime, deadline, period; u32 umin, umax; };
struct kwaitv { u64 val, uaddr; u32 flags, reserved; };
struct kstack { u64 sp; int32_t flags, pad; u64 size; };

/* the prepared structures, at T_ */
struct prepared {
    struct kiovec iov[16];
    struct kiovec riov[8];
    struct kmsghdr msg;
    struct kmmsghdr mmsg[4];
    unsigned char cmsg[256];
    struct ksigaction act;
    u64 sigset[2];
    u64 safeset[2]; /* never blocks SIGALRM: for calls that wait */
    struct kts ts[4];
    struct kts its[2];   /* itimerspec */
    s64 itv[4];          /* itimerval */
    s64 tv[4];           /* timeval[2] */
    u64 fdset[3][16];
    struct kpollfd pfd[8];
    struct kepoll_event ev[4];
    struct kclone_args ca;
    u64 how[3];          /* open_how */
    u64 rlim[2];
    u64 argv[6];
    u64 envp[6];
    unsigned char sa[128];
    int32_t socklen[2];
    struct ksigevent sev;
    struct kstack ss;
    struct ksched_attr attr;
    unsigned char siginfo[128];
    u32 futex[4];
    struct kwaitv waitv[4];
    s64 off[2];
    u64 cpuset[16];
    u64 robust[3];
    u64 landlock[3];
    u32 udesc[4];
    u32 caphdr[2], capdata[6];
    u64 pselect_arg[2];
    u64 flock[4];
    u64 pages[4];
    int32_t ints[8];
    u64 mountattr[4];
    int16_t sops[12];    /* struct sembuf[4]: sem_num, sem_op, sem_flg */
};
#define TS ((struct prepared *)T_)

/* ---- pools of values ----------------------------------------------------------------- */

static const u64 hostile_ptrs[] = {
    0, 1, 0x800, 0xff8, 0x1000 - 1,               /* below mmap_min_addr */
    0xdead00000000ULL, 0x800000000ULL,             /* canonical, never mapped */
    0xFFFFFF000ULL, 0xFFFFFFFF8ULL,                /* the last bytes of a 64 GiB window */
    0x7ffffffff000ULL, 0x7ffffffffffULL << 4,      /* TASK_SIZE and past it */
    0x800000000000ULL, 0x8000000000000000ULL,      /* non-canonical */
    0xffff800000000000ULL, 0xffffffff81000000ULL, 0xffffffffff600000ULL, /* kernel, vsyscall */
    0xfffffffffffff000ULL, ~0ULL,
};

static u64 hostile(void) {
    switch (below(6)) {
    case 0: return (u64)G_ + below(4) * PG + (one_in(2) ? 0 : below(PG));   /* the PROT_NONE guard */
    case 1: return (u64)S_ + S_SIZE - 1 - below(7);                           /* any 8 bytes cross into the guard */
    case 2: return (u64)P_ + P_PAGES * PG - 1 - below(7);                     /* the same, after the paths */
    default: return PICK(hostile_ptrs);
    }
}

/* a pointer to bytes the kernel reads or writes as such */
static u64 buf(void) {
    switch (below(16)) {
    case 0: case 1: case 2: return (u64)S_ + (one_in(3) ? below(S_SIZE) : 0);
    case 3: return (u64)S_ + PG * below(SCRATCH_PAGES) + (one_in(2) ? 1 : 0);
    case 4: return (u64)S_ + S_SIZE - 1 - below(32);
    case 5: return (u64)T_ + (one_in(2) ? 0 : below(T_PAGES * PG));
    case 6: case 7: return (u64)M_ + PG * below(M_PAGES) + (one_in(4) ? below(PG) : 0);
    case 8: return 0;
    case 9: return (u64)ro_area + below(RO_SIZE);
    case 10: return one_in(2) ? heap0 : vdso + below(2 * PG);
    default: return hostile();
    }
}

/* a pointer to a structure the kernel interprets, where its content cannot change the
 * program's fate: one prepared for it (given), random bytes, or hostile */
static u64 sptr(void *prepared) {
    switch (below(10)) {
    case 0: return 0;
    case 1: return (u64)S_;
    case 2: return (u64)ro_area;
    case 3: case 4: return hostile();
    default: return (u64)prepared;
    }
}

/* the same where the content matters (sigactions, sigsets of waits, sigevents, clone
 * args): the prepared one (safe by construction), NULL, or a pointer that faults */
static u64 safeptr(void *prepared) {
    switch (below(8)) {
    case 0: return 0;
    case 1: case 2: return hostile();
    default: return (u64)prepared;
    }
}

static const u64 lens[] = {
    0, 1, 2, 7, 8, 16, 24, 28, 64, 100, 128, 255, 256, 4095, 4096, 4097, 8192, 16384, 16385, 65536,
    0x7ffff000, 0x7fffffff, 0x80000000ULL, 0xffffffffULL, 0x100000000ULL, 1ULL << 40, 1ULL << 62,
    0x7fffffffffffffffULL, 0xfffffffffffff000ULL, ~0ULL,
};
static u64 len(void) { return one_in(8) ? rnd() : PICK(lens); }
static u64 small_len(void) { return below(4) ? below(S_SIZE + 64) : PICK(lens); }

static const u64 ints[] = {
    0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 31, 32, 63, 64, 65, 127, 128, 255, 256, 1024, 4096, 65535, 65536,
    0x7fffffff, 0x80000000ULL, 0xffffffffULL, 0x100000000ULL, 0x100000001ULL,
    ~0ULL, ~0ULL - 1, 0xffffffff80000000ULL, 0x7fffffffffffffffULL, 0x8000000000000000ULL,
};
static u64 anyint(void) {
    switch (below(20)) {
    case 0: case 1: case 2: return rnd();
    case 3: return rnd() & 0xffffffff;
    case 4: case 5: case 6: return below(70);
    case 7: case 8: case 9: case 10: case 11: case 12: return below(8);
    default: return PICK(ints);
    }
}
static u64 bits(void) { /* flags: none, one, a few low ones, or noise */
    switch (below(20)) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: return 0;
    case 7: case 8: case 9: case 10: return 1ULL << below(12);
    case 11: case 12: case 13: return rnd() & 0xff;
    case 14: case 15: return rnd() & rnd() & 0xffffffff;
    case 16: case 17: return rnd() & 0xffffffff;
    case 18: return 1ULL << below(64);
    default: return rnd();
    }
}
static u64 junk(void) { return one_in(2) ? rnd() : PICK(ints); }

static const s64 offs[] = {
    0, 1, 512, 4095, 4096, 65536, (1 << 20) - 1, 0x7fffffff, 0x80000000LL, 1LL << 32, 1LL << 40, 1LL << 62,
    0x7fffffffffffffffLL, -1, -4096, (s64)0x8000000000000000ULL,
};
/* never the address of anything it has mapped (/proc/self/mem) */
static u64 off(void) { return (u64)PICK(offs); }

static const int32_t fds[] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
    23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 35, 40, 64, 255, 1023, 1024, 65535, 100000, 0x7fffffff, -1, -100, (int32_t)0x80000000,
};
/* descriptors from the hard RLIMIT_NOFILE it started with up: not open natively; under
 * km, the monitor's own (kernel/fdtable.py keeps them there: /dev/kvm, the VM, the
 * vCPUs, its signalfd...), which the program must find exactly as closed */
static u64 nofile0;
static const u32 above_nofile[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 64, 255, 1024, 1055};
static u64 fd(void) {
    if (one_in(10)) return nofile0 + PICK(above_nofile);
    u64 v = (u64)(s64)PICK(fds);
    if (one_in(16)) v = (v & 0xffffffff) | (rnd() << 32); /* an int argument: the high half is noise */
    return v;
}
static u64 fd_not2(void) { /* a descriptor to close or replace: never stderr, where km writes */
    u64 v;
    do v = fd(); while ((int32_t)v == 2);
    return v;
}
static u64 dirfd(void) { return one_in(3) ? (u64)(s64)-100 : fd(); }

/* pids: to ask about, and to act on (only itself, or none) */
static u64 pid_q(void) {
    static const s64 p[] = {0, 1, -1, 2, 0x7fffffff, (s64)0x80000000LL, 4194305, -4194305};
    return one_in(3) ? self_pid : (u64)PICK(p);
}
static u64 pid_t_(void) {
    static const s64 p[] = {0x7fffffff, 4194305, (s64)(int32_t)0x80000000, -4194305};
    switch (below(4)) {
    case 0: return (u64)PICK(p);
    case 1: return (u64)-(s64)self_pid; /* its own process group: it is a session leader */
    default: return self_pid;
    }
}
static u64 pid_self_or_none(void) { return one_in(2) ? (one_in(2) ? 0 : self_pid) : (u64)0x7fffffff; }

/* signals: every one it may receive has its handler, except these */
static int unhandled(int s) { return s == 4 || s == 5 || s == 6 || s == 7 || s == 8 || s == 9 || s == 11 || s == 19 || s == 31; }
static int default_ignores(int s) { return s == 17 || s == 18 || s == 23 || s == 28; }
static u64 sig_send(void) { /* 0, a handled signal, or an invalid number */
    int s;
    switch (below(8)) {
    case 0: return 0;
    case 1: { static const s64 bad[] = {65, 128, -1, 0x7fffffff, 1000}; return (u64)PICK(bad); }
    default: do s = 1 + (int)below(64); while (unhandled(s)); break;
    }
    return one_in(16) ? ((u64)s | (rnd() << 32)) : (u64)s;
}
static u64 sig_any(void) {
    u64 s = one_in(8) ? (u64)(s64)PICK(((const s64[]){-1, 65, 0x7fffffff, 1000})) : below(66);
    return one_in(16) ? (s & 0xffffffff) | (rnd() << 32) : s;
}
static u64 sigsetsize(void) { return below(6) ? 8 : PICK(((const u64[]){0, 4, 7, 16, 128, ~0ULL})); }

/* ---- paths ------------------------------------------------------------------------------- */

static const char *const path_list[] = {
    "f0", "f1", "f2", "d", "d/f", "d/d2", "fifo", "sock", "ln", "ln2", "nx", "nx/nx", "f0/x", "d/", ".", "",
    "/", "/dev/null", "/dev/zero", "/dev/full", "/dev/urandom", "/etc/passwd", "/etc/shadow",
    "/proc/self", "/proc/self/maps", "/proc/self/exe", "/proc/self/mem", "/proc/self/auxv", "/proc/self/environ",
    "/proc/self/cmdline", "/proc/self/status", "/proc/self/stat", "/proc/self/cwd", "/proc/self/root",
    "/proc/self/fd", "/proc/self/fd/", "/proc/self/fd/0", "/proc/self/fd/2", "/proc/self/fd/3", "/proc/self/fd/4",
    "/proc/self/fd/5", "/proc/self/fd/9", "/proc/self/fd/20", "/proc/self/fd/300", "/proc/self/fdinfo/4",
    "/proc/self/task", "/proc/self/comm", "/proc/self/pagemap", "/proc/self/syscall", "/proc/self/limits",
    "/proc/self/smaps", "/proc/self/mountinfo", "/proc/self/exe/", "/proc/self/./mem", "//proc//self//mem",
    "/proc/self/../self/mem", "/proc/self/root/proc/self/mem", "/proc/thread-self/comm", "/proc/thread-self/mem",
    "/proc/1/maps", "/proc/1/mem", "/proc/self/map_files", "/proc/self/ns/net", "/proc/self/attr/current",
    "/proc/self/oom_score_adj", "/proc/self/clear_refs", "/proc/self/setgroups",
    "/sys/kernel/mm/transparent_hugepage/enabled",
    /* filled in at start: */
    "/proc/PID/maps", "/proc/PID/mem", "/proc/PID/exe", "/proc/PID/task/PID/mem", "/proc/PID/fd/4",
};
#define NPATHS (sizeof path_list / sizeof path_list[0])
#define NEXTRA 8
static const char *paths[NPATHS + NEXTRA]; /* pointers into P_ */
static const char *long_path, *name255, *name256, *deep_path, *nonul, *odd_path, *abstract_name;

/* programs that cannot run: "x.none" is named by no other call, so it never exists */
static const char *exec_paths[] = {"x.none", "", "/", "/dev/null", "/proc/self", "/dev", "x.none/"};
static u64 exec_path(void) {
    switch (below(6)) {
    case 0: return hostile();
    case 1: return (u64)(one_in(2) ? long_path : nonul);
    default: return (u64)P_ + 3 * PG - 512 + 16 * below(sizeof exec_paths / sizeof exec_paths[0]);
    }
}

static u64 path(void) {
    switch (below(16)) {
    case 0: return hostile();
    case 1: return (u64)PICK(((const char *const[]){long_path, name255, name256, deep_path, nonul, odd_path}));
    case 2: return (u64)S_; /* random bytes */
    default: return (u64)paths[below(NPATHS)];
    }
}

/* ---- prepared structures -------------------------------------------------------------- */

static struct ksigaction base_act, dfl_act;
static u64 empty_set, full_set = ~0ULL;

static void on_signal(int sig, void *info, void *ctx) {
    (void)sig, (void)info, (void)ctx; /* nothing: it is there so that calls end with EINTR */
}

static const struct kts ts_pool[] = {
    {0, 0}, {0, 1}, {0, 1000}, {0, 1000000}, {0, 999999999}, {0, 1000000000}, {0, -1}, {1, 0}, {-1, 0},
    {0x7fffffffffffffffLL, 999999999}, {0x7fffffff, 0}, {0, (1 << 30) - 1}, {0, (1 << 30) - 2}, /* UTIME_NOW, UTIME_OMIT */
};
static void fill_ts(struct kts *t) {
    if (one_in(8)) t->sec = (s64)rnd(), t->nsec = (s64)rnd();
    else *t = PICK(ts_pool);
}
static s64 usec(void) { return PICK(((const s64[]){0, 1, 1000, 999999, 1000000, -1, 0x7fffffffffffffffLL})); }

static void fill_sockaddr(unsigned char *sa, int which) {
    memset(sa, 0, 128);
    switch (which) {
    case 0: case 1: { /* unix: a path in its directory, a missing one, abstract, or unterminated */
        sa[0] = AF_UNIX;
        const char *p = PICK(((const char *const[]){"sock", "nx", "d/sock2", "f0"}));
        if (one_in(3)) { sa[2] = 0; memcpy(sa + 3, abstract_name, strlen(abstract_name)); }
        else if (one_in(8)) memset(sa + 2, 'a', 126);
        else memcpy(sa + 2, p, strlen(p));
        break;
    }
    case 2: { /* IPv4: loopback or any, port 0 or 1: nothing leaves the machine */
        sa[0] = AF_INET; sa[3] = (unsigned char)below(2);
        if (one_in(2)) { sa[4] = 127; sa[7] = 1; }
        break;
    }
    case 3: { /* IPv6 ::1 or :: */
        sa[0] = AF_INET6; sa[3] = (unsigned char)below(2);
        if (one_in(2)) sa[23] = 1;
        break;
    }
    case 4: sa[0] = AF_NETLINK; break; /* the kernel */
    case 5: sa[0] = AF_UNSPEC; break;
    default: { u64 r = rnd(); memcpy(sa, &r, 8); sa[0] = (unsigned char)below(48); sa[1] = 0;
        if (sa[0] == AF_INET || sa[0] == AF_INET6 || sa[0] == 40 /* vsock */ || sa[0] == 17 /* packet */) sa[0] = AF_UNIX;
        break; }
    }
}

static u64 safe_sigset(void) { return (rnd() & rnd()) & ~(1ULL << (14 - 1)); }

static void fill_iov(struct kiovec *v, int n) {
    for (int i = 0; i < n; i++) {
        v[i].base = buf();
        v[i].len = one_in(3) ? len() : below(one_in(2) ? 64 : PG);
    }
}

static void fill_msg(struct kmsghdr *m) {
    m->name = one_in(2) ? (u64)TS->sa : buf();
    m->namelen = (u32)(one_in(2) ? PICK(((const u64[]){0, 2, 16, 28, 110, 128, 129})) : anyint());
    m->pad = (u32)rnd();
    m->iov = sptr(TS->iov);
    m->iovlen = one_in(4) ? anyint() : below(17);
    m->control = one_in(2) ? (u64)TS->cmsg : buf();
    m->controllen = one_in(2) ? PICK(((const u64[]){0, 16, 20, 24, 28, 32, 64, 256, 4096, 1 << 20, (1 << 20) + 1})) : len();
    m->flags = (int32_t)bits();
}

static void fill_cmsg(unsigned char *c) {
    for (int at = 0; at < 256 - 32;) {
        u64 l = one_in(4) ? below(300) : 16 + 4 * below(4);
        int32_t level = one_in(4) ? (int32_t)anyint() : PICK(((const int32_t[]){1, 1, 1, 0, 41, 6}));
        int32_t type = one_in(4) ? (int32_t)anyint() : PICK(((const int32_t[]){1, 2, 3, 8, 29}));
        memcpy(c + at, &l, 8); memcpy(c + at + 8, &level, 4); memcpy(c + at + 12, &type, 4);
        for (int i = 0; i < 4; i++) { int32_t f = (int32_t)fd(); memcpy(c + at + 16 + 4 * i, &f, 4); }
        at += 32;
        if (one_in(2)) break;
    }
}

static void fill_structs(void) {
    struct prepared *p = TS;
    /* scratch: random bytes, and a string with no NUL up to the guard */
    for (u64 *w = (u64 *)S_; w < (u64 *)(S_ + S_SIZE); w++) *w = rnd();
    memset(S_ + S_SIZE - 64, 'a', 64);
    /* the unterminated path too: hostile() hands out its last bytes as a buffer, and a
     * NUL written there (with data that may differ between runs) would make it a name */
    memset((char *)nonul, 'z', 32);
    memset(p, 0, sizeof *p);
    fill_iov(p->iov, 16);
    fill_iov((struct kiovec *)p->riov, 8);
    fill_msg(&p->msg);
    for (int i = 0; i < 4; i++) { fill_msg(&p->mmsg[i].h); p->mmsg[i].len = (u32)rnd(); }
    fill_cmsg(p->cmsg);
    p->act.handler = one_in(4) ? 1 /* SIG_IGN */ : (u64)on_signal;
    p->act.flags = (bits() | 0x04000000 /* SA_RESTORER */) & ~(0x08000000ULL /* SA_ONSTACK */ | 0x80000000ULL /* SA_RESETHAND */);
    p->act.restorer = (u64)fuzz_restorer;
    p->act.mask = rnd();
    p->sigset[0] = one_in(2) ? rnd() : (rnd() & rnd());
    p->sigset[1] = rnd();
    p->safeset[0] = safe_sigset();
    p->safeset[1] = rnd();
    for (int i = 0; i < 4; i++) fill_ts(&p->ts[i]);
    /* an interval: never so short that the signals of a POSIX timer would leave it no time to run */
    p->its[0] = PICK(((const struct kts[]){{0, 0}, {0, 0}, {0, 1000000}, {0, 5000000}, {1, 0}, {0, 1000000000}, {-1, 0}, {0, -1}}));
    fill_ts(&p->its[1]);
    /* itimerval: the interval (ITIMER_REAL's signals come from a hrtimer too) as above */
    static const s64 intervals[][2] = {{0, 0}, {0, 0}, {0, 1000}, {0, 5000}, {1, 0}, {0, 1000000}, {-1, 0}, {0, -1}};
    int iv = (int)below(8);
    p->itv[0] = intervals[iv][0]; p->itv[1] = intervals[iv][1];
    p->itv[2] = one_in(2) ? 0 : (s64)below(3); p->itv[3] = usec();
    for (int i = 0; i < 4; i++) p->tv[i] = (i & 1) ? usec() : (s64)(one_in(4) ? rnd() : below(3));
    for (int i = 0; i < 3; i++) for (int j = 0; j < 16; j++) p->fdset[i][j] = one_in(2) ? rnd() : 0;
    for (int i = 0; i < 8; i++) { p->pfd[i].fd = (int32_t)fd(); p->pfd[i].events = (int16_t)bits(); p->pfd[i].revents = (int16_t)rnd(); }
    for (int i = 0; i < 4; i++) { p->ev[i].events = (u32)bits(); p->ev[i].data = rnd(); }
    p->how[0] = bits(); p->how[1] = one_in(2) ? 0644 : rnd(); p->how[2] = bits();
    p->rlim[0] = PICK(((const u64[]){0, 1, 64, 1024, 4096, 1 << 20, ~0ULL, 0x7fffffffffffffffULL}));
    p->rlim[1] = one_in(2) ? p->rlim[0] : PICK(((const u64[]){0, 1, 1024, 1 << 20, ~0ULL}));
    for (int i = 0; i < 6; i++) {
        p->argv[i] = one_in(3) ? hostile() : path();
        p->envp[i] = one_in(3) ? hostile() : path();
    }
    if (below(3)) p->argv[below(6)] = 0;
    if (below(3)) p->envp[below(6)] = 0;
    fill_sockaddr(p->sa, (int)below(8));
    p->socklen[0] = (int32_t)PICK(((const u64[]){0, 1, 2, 16, 28, 110, 128, 129, 4096, 0x7fffffff, 0xffffffff}));
    p->socklen[1] = (int32_t)rnd();
    p->sev.value = rnd();
    p->sev.signo = (int32_t)(one_in(8) ? PICK(((const u64[]){0, 65, ~0ULL})) : sig_send());
    if (p->sev.signo == 0 && one_in(2)) p->sev.signo = 10;
    p->sev.notify = PICK(((const int32_t[]){0, 0, 1, 2, 4, 4, 5, 3, -1, 0x7fffffff}));
    p->sev.tid = (int32_t)(one_in(2) ? self_pid : PICK(((const u64[]){0, 1, 0x7fffffff, ~0ULL})));
    p->ss.sp = one_in(2) ? (u64)A_ : buf();
    p->ss.flags = PICK(((const int32_t[]){0, 0, 1, 2, 4, (int32_t)0x80000000, -1}));
    p->ss.size = one_in(2) ? A_PAGES * PG : PICK(((const u64[]){0, 2047, 2048, 8192, ~0ULL}));
    p->attr.size = (u32)PICK(((const u64[]){0, 48, 56, 47, 4096, 4097, 64}));
    p->attr.policy = (u32)PICK(((const u64[]){0, 1, 2, 3, 6, 7, 0x40000000, ~0ULL})); /* never SCHED_IDLE */
    p->attr.flags = bits();
    p->attr.nice = PICK(((const int32_t[]){0, -1, -20}));                            /* never nicer */
    p->attr.priority = (u32)anyint();
    p->attr.runtime = rnd(); p->attr.deadline = rnd(); p->attr.period = rnd();
    p->attr.umin = (u32)below(1100); p->attr.umax = (u32)below(1100);
    for (int i = 0; i < 128; i += 8) { u64 r = rnd(); memcpy(p->siginfo + i, &r, 8); }
    for (int i = 0; i < 4; i++) /* never the tid of a live task: a PI lock would wait for it */
        p->futex[i] = (u32)PICK(((const u64[]){0, 0x80000000, 0x40000000, 0x3fffffff, 0xffffffff, 0x7fffffff, 0xc0000000, 0}));
    if (one_in(4)) p->futex[0] = (u32)self_pid;
    for (int i = 0; i < 4; i++) {
        p->waitv[i].val = one_in(2) ? p->futex[i] : rnd();
        p->waitv[i].uaddr = one_in(4) ? hostile() : (u64)&p->futex[i];
        p->waitv[i].flags = one_in(4) ? (u32)rnd() : (u32)(2 | (one_in(2) ? 128 : 0));
        p->waitv[i].reserved = one_in(8) ? 1 : 0;
    }
    p->off[0] = (s64)off(); p->off[1] = (s64)off();
    for (int i = 0; i < 16; i++) p->cpuset[i] = one_in(2) ? rnd() : ~0ULL;
    p->robust[0] = buf(); p->robust[1] = anyint(); p->robust[2] = buf();
    p->landlock[0] = bits(); p->landlock[1] = bits(); p->landlock[2] = bits();
    for (int i = 0; i < 4; i++) p->udesc[i] = (u32)rnd();
    p->caphdr[0] = (u32)PICK(((const u64[]){0x19980330, 0x20071026, 0x20080522, 0, 0xffffffff}));
    p->caphdr[1] = (u32)(one_in(2) ? 0 : pid_q());
    for (int i = 0; i < 6; i++) p->capdata[i] = one_in(2) ? 0 : (u32)rnd();
    p->pselect_arg[0] = safeptr(p->safeset);
    p->pselect_arg[1] = sigsetsize();
    p->flock[0] = rnd() & 0xffff0000ffffULL; p->flock[1] = off(); p->flock[2] = off(); p->flock[3] = rnd();
    for (int i = 0; i < 4; i++) p->pages[i] = buf();
    for (int i = 0; i < 8; i++) p->ints[i] = (int32_t)anyint();
    for (int i = 0; i < 4; i++) p->mountattr[i] = bits();
    for (int i = 0; i < 4; i++) {
        p->sops[3 * i] = (int16_t)(one_in(4) ? rnd() : below(3));                                  /* sem_num */
        p->sops[3 * i + 1] = (int16_t)(one_in(4) ? rnd() : PICK(((const s64[]){-1, 0, 1, 2, -2, 32767})));
        p->sops[3 * i + 2] = (int16_t)(one_in(3) ? 0x800 /* IPC_NOWAIT */ : PICK(((const s64[]){0, 0x1000 /* SEM_UNDO */, 0x1800, -1})));
    }
}

/* clone flags that leave no child running and nothing shared that could hurt it */
#define CLONE_VM 0x100ULL
#define CLONE_FS 0x200ULL
#define CLONE_FILES 0x400ULL
#define CLONE_SIGHAND 0x800ULL
#define CLONE_PIDFD 0x1000ULL
#define CLONE_PTRACE 0x2000ULL
#define CLONE_VFORK 0x4000ULL
#define CLONE_THREAD 0x10000ULL
#define CLONE_NEWNS 0x20000ULL
#define CLONE_SYSVSEM 0x40000ULL
#define CLONE_SETTLS 0x80000ULL
#define CLONE_PARENT_SETTID 0x100000ULL
#define CLONE_CHILD_CLEARTID 0x200000ULL
#define CLONE_UNTRACED 0x800000ULL
#define CLONE_CHILD_SETTID 0x1000000ULL
#define CLONE_NEWCGROUP 0x2000000ULL
#define CLONE_NEWUTS 0x4000000ULL
#define CLONE_NEWIPC 0x8000000ULL
#define CLONE_NEWUSER 0x10000000ULL
#define CLONE_NEWPID 0x20000000ULL
#define CLONE_NEWNET 0x40000000ULL
#define CLONE_IO 0x80000000ULL

static u64 clone_flags(int *needs_stack) {
    static const u64 extra[] = {CLONE_FS, CLONE_FILES, CLONE_SYSVSEM, CLONE_SETTLS, CLONE_PARENT_SETTID,
                                CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_UNTRACED, CLONE_IO, CLONE_PIDFD,
                                CLONE_PTRACE, 0x400000ULL /* CLONE_DETACHED */};
    static const u64 ns[] = {CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWUSER};
    u64 f;
    *needs_stack = 0;
    switch (below(6)) {
    case 0: case 1: f = 0; break;                                                 /* fork */
    case 2: f = CLONE_VM | CLONE_VFORK; break;                                    /* vfork */
    case 3: f = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD; *needs_stack = 1; break; /* a thread */
    case 4: f = CLONE_VM | CLONE_SIGHAND; *needs_stack = 1; break;                /* a process sharing memory */
    default: f = CLONE_VFORK; break;
    }
    for (int i = (int)below(4); i > 0; i--) f |= PICK(extra);
    if (one_in(16)) f |= PICK(ns);
    if (one_in(32)) f |= CLONE_NEWUSER | PICK(ns);
    if (!(f & CLONE_THREAD)) f |= PICK(((const u64[]){0, 17, 17, 10, 23})); /* exit signal: none, SIGCHLD, handled ones */
    return f;
}

/* ---- the calls ------------------------------------------------------------------------- */

/* after-effects to undo */
enum { R_SIGACT = 1, R_MASK = 2, R_TIMER = 4, R_ARCH = 8, R_MMAP = 16, R_MREMAP = 32, R_FORK = 64, R_IPC = 128,
       R_SHMAT = 256 };

/* System V IPC: private objects only (key IPC_PRIVATE: never another program's), each
 * kept in a slot the PRNG picks (its id is a value, not a decision) and removed at the
 * next clean-up and at the end; an attachment outside M_ is detached at once. */
enum { IPC_SHM, IPC_SEM, IPC_MSG, IPC_SLOTS = 4 };
static long ipc_ids[3][IPC_SLOTS] = {{-1, -1, -1, -1}, {-1, -1, -1, -1}, {-1, -1, -1, -1}};
static const char *const ipc_names[3] = {"SHM#", "SEM#", "MSG#"};
static u64 ipc_id(int kind) {
    if (one_in(6)) return PICK(((const u64[]){0, 1, ~0ULL, 0x7fffffff, 0x80000000ULL, 65536, 1ULL << 32}));
    return (u64)ipc_ids[kind][below(IPC_SLOTS)];
}
static void ipc_remove(int kind, int slot) {
    static const long rmid[3] = {31 /* shmctl */, 66 /* semctl */, 71 /* msgctl */};
    if (ipc_ids[kind][slot] >= 0)
        sc6(rmid[kind], ipc_ids[kind][slot], 0, 0, 0, 0, 0); /* IPC_RMID (semctl: semnum 0, then IPC_RMID) */
    ipc_ids[kind][slot] = -1;
}
static void ipc_remove_all(void) {
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < IPC_SLOTS; i++) ipc_remove(k, i);
}

struct call {
    long nr;
    u64 a[6];
    int post;
    int ipc_kind, ipc_slot; /* R_IPC: where the new object's id goes */
    const char *name;
};

/* generic argument kinds, one letter each */
static u64 arg(char k) {
    switch (k) {
    case 'x': return junk();
    case '0': return 0;
    case 'i': return anyint();
    case 'u': return bits();
    case 'l': return len();
    case 'L': return small_len();
    case 'o': return off();
    case 'f': return fd();
    case 'd': return dirfd();
    case 'b': return buf();
    case 'p': return path();
    case 'm': return one_in(3) ? rnd() & 07777 : PICK(((const u64[]){0644, 0600, 0755, 0, 0777, 01777, 04755}));
    case 'O': return one_in(4) ? bits() : (below(3) | (bits() & 0x7fffc0)) & (one_in(2) ? ~0x400000ULL /* O_TMPFILE */ : ~0ULL);
    case 'P': return pid_q();
    case 'K': return pid_t_();
    case 's': return sig_send();
    case 'S': return sig_any();
    case 'v': return sptr(TS->iov);
    case 'V': return sptr(TS->riov);
    case 'n': return one_in(4) ? anyint() : below(17);
    case 't': return sptr(&TS->ts[below(4)]);
    case 'T': return sptr(TS->tv);
    case 'I': return sptr(TS->itv);
    case 'J': return sptr(TS->its);
    case 'q': return sptr(TS->sigset);
    case 'Q': return safeptr(TS->safeset);
    case 'z': return sigsetsize();
    case 'a': return sptr(TS->sa);
    case 'A': return one_in(3) ? anyint() : PICK(((const u64[]){0, 1, 2, 12, 16, 28, 110, 128, 129}));
    case 'N': return sptr(&TS->socklen[below(2)]);
    case 'M': return sptr(&TS->msg);
    case 'W': return sptr(TS->mmsg);
    case 'c': return one_in(6) ? anyint() : below(12);
    case 'R': return sptr(TS->rlim);
    case 'e': return sptr(TS->ev);
    case 'E': return sptr(TS->pfd);
    case 'F': return sptr(TS->fdset[below(3)]);
    case 'U': return PICK(((const u64[]){0, 65534, 65533, 1000, ~0ULL, 0xffffffff, 0x7fffffff}));
    case 'X': return one_in(3) ? path() : (u64)paths[NPATHS + below(NEXTRA)];
    case 'k': return sptr(S_ + 64);
    case 'y': return sptr(&TS->ss);
    case 'Y': return safeptr(TS->pselect_arg);
    case 'H': return sptr(TS->caphdr);
    case 'D': return sptr(TS->capdata);
    case 'B': return sptr(TS->pages);
    case 'g': return sptr(TS->argv);
    case 'G': return sptr(TS->envp);
    case 'C': return sptr(TS->cpuset);
    case 'h': return sptr(TS->how);
    case 'j': return sptr(&TS->off[below(2)]);
    case 'w': return PICK(((const u64[]){0, 1, 10, ~0ULL, 0x7fffffff, 0x80000000ULL}));
    case 'Z': return one_in(4) ? anyint() : below(9);
    }
    return junk();
}

/* what the generic kinds do not cover: memory calls stay in M_ (or fail early) */
static u64 m_last; /* the address m_addr_ chose last */
static const u64 m_bad[] = {0, 0x1000, 0x8000, 0xdead00000000ULL, 0x800000000ULL, 0x800000000000ULL,
                            0xffff800000000000ULL, 0xfffffffffffff000ULL, 0x7ffffffff000ULL};
static const u64 m_fail[] = {0, 0x800000000000ULL, 0xffff800000000000ULL, 0xfffffffffffff000ULL, 0x7ffffffff000ULL};
/* an address in M_, or one where nothing is mapped (``target``: one where nothing can be
 * mapped either, for MAP_FIXED and MREMAP_FIXED) */
static u64 m_addr_(u64 *room, int target) {
    if (target && one_in(6)) {
        *room = 0;
        u64 a = PICK(m_fail);
        if (one_in(4)) a += 1 + below(PG - 1);
        return m_last = a;
    }
    if (!target && one_in(6)) {
        u64 a = PICK(m_bad);
        *room = a && a < 0x10000 ? 0x8000 : 0;
        if (one_in(4)) a += 1 + below(PG - 1);
        return m_last = a;
    }
    u64 page = below(M_PAGES);
    *room = (M_PAGES - page) * PG;
    u64 a = (u64)M_ + page * PG;
    if (one_in(8)) { a += 1 + below(PG - 1); *room -= PG; }
    return m_last = a;
}
#define m_addr(room) m_addr_(room, 0)
/* a length that ends inside the room, or (from an address in M_) wraps past 2**64 and
 * fails: a huge length that does not wrap would reach everything above, madvise and
 * mprotect work their way through it */
static u64 m_len(u64 room) {
    if (m_last >= (u64)M_ && m_last < (u64)M_ + M_SIZE && one_in(8)) return PICK(((const u64[]){~0ULL, ~0ULL - 4095}));
    if (one_in(8)) return 0;
    if (!room) return below(2) ? PG : 1;
    u64 l = one_in(3) ? 1 + below(room) : PG * (1 + below(room / PG));
    return l;
}

/* pick the call; ``c->name`` for the trace */
#define CALL(n_, name_, kinds)                                                     \
    case __COUNTER__: c->nr = n_; c->name = name_;                                 \
        for (int i_ = 0; i_ < 6; i_++) c->a[i_] = arg(i_ < (int)sizeof(kinds) - 1 ? kinds[i_] : 'x'); \
        break;
#define SPECIAL(n_, name_)                                                         \
    case __COUNTER__: c->nr = n_; c->name = name_;                                 \
        for (int i_ = 0; i_ < 6; i_++) c->a[i_] = junk();

_Static_assert(sizeof(struct prepared) <= T_PAGES * PG, "prepared structures fit T");
enum { COUNTER_BASE = __COUNTER__ + 1 };

static int gen_call(struct call *c, int which);

static int ncalls_table;

static void pick(struct call *c) {
    memset(c, 0, sizeof *c);
    gen_call(c, (int)below((u64)ncalls_table));
}

static int gen_call(struct call *c, int which) {
    u64 room;
    int needs_stack;
    switch (which + COUNTER_BASE) {
    /* I/O */
    CALL(0, "read", "fbL")
    CALL(0, "read", "fbl")
    CALL(1, "write", "fbL")
    CALL(1, "write", "fbl")
    CALL(17, "pread64", "fbLo")
    CALL(18, "pwrite64", "fbLo")
    CALL(19, "readv", "fvn")
    CALL(20, "writev", "fvn")
    CALL(295, "preadv", "fvnoo")
    CALL(296, "pwritev", "fvnoo")
    CALL(327, "preadv2", "fvnoou")
    CALL(328, "pwritev2", "fvnoou")
    CALL(8, "lseek", "foZ")
    CALL(40, "sendfile", "ffjl")
    CALL(275, "splice", "fjfjlu")
    CALL(276, "tee", "fflu")
    CALL(278, "vmsplice", "fvnu")
    CALL(326, "copy_file_range", "fjfjlu")
    CALL(187, "readahead", "fol")
    CALL(221, "fadvise64", "fooi")
    CALL(77, "ftruncate", "fo")
    CALL(74, "fsync", "f")
    CALL(75, "fdatasync", "f")
    CALL(277, "sync_file_range", "foou")
    CALL(78, "getdents", "fbL")
    CALL(217, "getdents64", "fbL")
    CALL(217, "getdents64", "fbl")
    CALL(16, "ioctl", "fib")
    CALL(73, "flock", "fi")
    CALL(5, "fstat", "fb")
    CALL(138, "fstatfs", "fb")
    CALL(81, "fchdir", "f")
    CALL(91, "fchmod", "fm")
    CALL(93, "fchown", "fUU")
    CALL(32, "dup", "f")
    /* files by path */
    CALL(2, "open", "pOm")
    CALL(257, "openat", "dpOm")
    CALL(257, "openat", "dpOm")
    CALL(437, "openat2", "dphl")
    CALL(85, "creat", "pm")
    CALL(4, "stat", "pb")
    CALL(6, "lstat", "pb")
    CALL(262, "newfstatat", "dpbu")
    CALL(332, "statx", "dpuub")
    CALL(21, "access", "pi")
    CALL(269, "faccessat", "dpi")
    CALL(439, "faccessat2", "dpiu")
    CALL(89, "readlink", "pbL")
    CALL(267, "readlinkat", "dpbL")
    CALL(79, "getcwd", "bL")
    CALL(80, "chdir", "p")
    CALL(82, "rename", "pp")
    CALL(264, "renameat", "dpdp")
    CALL(316, "renameat2", "dpdpu")
    CALL(83, "mkdir", "pm")
    CALL(258, "mkdirat", "dpm")
    CALL(84, "rmdir", "p")
    CALL(86, "link", "pp")
    CALL(265, "linkat", "dpdpu")
    CALL(87, "unlink", "p")
    CALL(263, "unlinkat", "dpu")
    CALL(88, "symlink", "pp")
    CALL(266, "symlinkat", "pdp")
    CALL(90, "chmod", "pm")
    CALL(268, "fchmodat", "dpm")
    CALL(452, "fchmodat2", "dpmu")
    CALL(92, "chown", "pUU")
    CALL(94, "lchown", "pUU")
    CALL(260, "fchownat", "dpUUu")
    CALL(133, "mknod", "pqi")
    CALL(259, "mknodat", "dpqi")
    CALL(76, "truncate", "po")
    CALL(137, "statfs", "pb")
    CALL(132, "utime", "pk")
    CALL(235, "utimes", "pT")
    CALL(261, "futimesat", "dpT")
    CALL(280, "utimensat", "dptu")
    CALL(188, "setxattr", "pXbLu")
    CALL(189, "lsetxattr", "pXbLu")
    CALL(190, "fsetxattr", "fXbLu")
    CALL(191, "getxattr", "pXbL")
    CALL(192, "lgetxattr", "pXbL")
    CALL(193, "fgetxattr", "fXbL")
    CALL(194, "listxattr", "pbL")
    CALL(195, "llistxattr", "pbL")
    CALL(196, "flistxattr", "fbL")
    CALL(197, "removexattr", "pX")
    CALL(198, "lremovexattr", "pX")
    CALL(199, "fremovexattr", "fX")
    CALL(95, "umask", "m")
    CALL(303, "name_to_handle_at", "dpbbu")
    CALL(304, "open_by_handle_at", "fbO")
    CALL(161, "chroot", "p")
    CALL(254, "inotify_add_watch", "fpu")
    CALL(255, "inotify_rm_watch", "fi")
    CALL(428, "open_tree", "dpu")
    CALL(463, "setxattrat", "dpuXkl")
    CALL(464, "getxattrat", "dpuXkl")
    CALL(465, "listxattrat", "dpubL")
    CALL(466, "removexattrat", "dpuX")
    CALL(468, "file_getattr", "dpbLu")
    CALL(469, "file_setattr", "dpkLu")
    CALL(451, "cachestat", "fkbu")
    CALL(285, "fallocate", "fio0")   /* the length is chosen below */
    /* descriptors */
    CALL(22, "pipe", "b")
    CALL(293, "pipe2", "bu")
    CALL(284, "eventfd", "i")
    CALL(290, "eventfd2", "iu")
    CALL(213, "epoll_create", "i")
    CALL(291, "epoll_create1", "u")
    CALL(233, "epoll_ctl", "fiffe")
    CALL(232, "epoll_wait", "fbiw")
    CALL(281, "epoll_pwait", "fbiwQz")
    CALL(441, "epoll_pwait2", "fbitQz")
    CALL(283, "timerfd_create", "cu")
    CALL(286, "timerfd_settime", "fuJb")
    CALL(287, "timerfd_gettime", "fb")
    CALL(282, "signalfd", "fqz")
    CALL(289, "signalfd4", "fqzu")
    CALL(253, "inotify_init", "")
    CALL(294, "inotify_init1", "u")
    CALL(319, "memfd_create", "pu")
    CALL(447, "memfd_secret", "u")
    CALL(300, "fanotify_init", "uu")
    CALL(301, "fanotify_mark", "fuudp")
    CALL(434, "pidfd_open", "Pu")
    CALL(438, "pidfd_getfd", "ffu")
    CALL(7, "poll", "Eiw")
    CALL(271, "ppoll", "EitQz")
    CALL(23, "select", "iFFFT")
    CALL(270, "pselect6", "iFFFtY")
    CALL(426, "io_uring_enter", "fiiuqz")
    CALL(427, "io_uring_register", "fibi")
    /* sockets */
    CALL(42, "connect", "faA")
    CALL(43, "accept", "fbN")
    CALL(288, "accept4", "fbNu")
    CALL(44, "sendto", "fbluaA")
    CALL(45, "recvfrom", "fbLubN")
    CALL(46, "sendmsg", "fMu")
    CALL(47, "recvmsg", "fMu")
    CALL(307, "sendmmsg", "fWZu")
    CALL(299, "recvmmsg", "fWZut")
    CALL(48, "shutdown", "fi")
    CALL(49, "bind", "faA")
    CALL(50, "listen", "fi")
    CALL(51, "getsockname", "fbN")
    CALL(52, "getpeername", "fbN")
    CALL(53, "socketpair", "iiib")  /* domain/type chosen below */
    CALL(41, "socket", "iii")       /* chosen below */
    CALL(54, "setsockopt", "fiibA") /* level/name chosen below */
    CALL(55, "getsockopt", "fiibN")
    /* memory (addresses chosen below) */
    CALL(9, "mmap", "")
    CALL(9, "mmap", "")
    CALL(11, "munmap", "")
    CALL(10, "mprotect", "")
    CALL(25, "mremap", "")
    CALL(28, "madvise", "")
    CALL(26, "msync", "")
    CALL(27, "mincore", "blb")
    CALL(149, "mlock", "bl")
    CALL(150, "munlock", "bl")
    CALL(325, "mlock2", "blu")
    CALL(151, "mlockall", "u")
    CALL(152, "munlockall", "")
    CALL(12, "brk", "")
    CALL(329, "pkey_mprotect", "")
    CALL(330, "pkey_alloc", "uu")
    CALL(331, "pkey_free", "i")
    CALL(462, "mseal", "")
    CALL(453, "map_shadow_stack", "")
    CALL(67, "shmdt", "")
    CALL(29, "shmget", "")
    CALL(30, "shmat", "")
    CALL(31, "shmctl", "")
    CALL(64, "semget", "")
    CALL(65, "semop", "")
    CALL(220, "semtimedop", "")
    CALL(66, "semctl", "")
    CALL(68, "msgget", "")
    CALL(69, "msgsnd", "")
    CALL(70, "msgrcv", "")
    CALL(71, "msgctl", "")
    CALL(237, "mbind", "bliCiu")
    CALL(238, "set_mempolicy", "iCi")
    CALL(239, "get_mempolicy", "bbibu")
    CALL(256, "migrate_pages", "0iCC")
    CALL(279, "move_pages", "PZBbbu")
    CALL(450, "set_mempolicy_home_node", "bliu")
    CALL(310, "process_vm_readv", "PvnVnu")
    CALL(311, "process_vm_writev", "PvnVnu")
    /* signals (see the special cases) */
    CALL(13, "rt_sigaction", "")
    CALL(14, "rt_sigprocmask", "iqbz")
    CALL(127, "rt_sigpending", "bz")
    CALL(128, "rt_sigtimedwait", "qbtz")
    CALL(130, "rt_sigsuspend", "Qz")
    CALL(131, "sigaltstack", "yb")
    CALL(34, "pause", "")
    CALL(62, "kill", "Ks")
    CALL(200, "tkill", "Ks")
    CALL(234, "tgkill", "KKs")
    CALL(129, "rt_sigqueueinfo", "Ksk")
    CALL(297, "rt_tgsigqueueinfo", "KKsk")
    CALL(424, "pidfd_send_signal", "fsku")
    CALL(37, "alarm", "i")
    CALL(38, "setitimer", "iIb")
    CALL(36, "getitimer", "ib")
    CALL(222, "timer_create", "cbb")
    CALL(223, "timer_settime", "iuJb")
    CALL(224, "timer_gettime", "ib")
    CALL(225, "timer_getoverrun", "i")
    CALL(226, "timer_delete", "i")
    /* time */
    CALL(35, "nanosleep", "tb")
    CALL(230, "clock_nanosleep", "cutb")
    CALL(228, "clock_gettime", "cb")
    CALL(229, "clock_getres", "cb")
    CALL(227, "clock_settime", "ct")
    CALL(305, "clock_adjtime", "ck")
    CALL(96, "gettimeofday", "bb")
    CALL(164, "settimeofday", "TT")
    CALL(201, "time", "b")
    CALL(159, "adjtimex", "k")
    /* processes */
    CALL(57, "fork", "")
    CALL(58, "vfork", "")
    CALL(56, "clone", "")
    CALL(435, "clone3", "")
    CALL(59, "execve", "")
    CALL(322, "execveat", "")
    CALL(61, "wait4", "")
    CALL(247, "waitid", "")
    CALL(39, "getpid", "")
    CALL(110, "getppid", "")
    CALL(186, "gettid", "")
    CALL(102, "getuid", "")
    CALL(104, "getgid", "")
    CALL(107, "geteuid", "")
    CALL(108, "getegid", "")
    CALL(111, "getpgrp", "")
    CALL(121, "getpgid", "P")
    CALL(124, "getsid", "P")
    CALL(109, "setpgid", "")
    CALL(112, "setsid", "")
    CALL(105, "setuid", "U")
    CALL(106, "setgid", "U")
    CALL(113, "setreuid", "UU")
    CALL(114, "setregid", "UU")
    CALL(117, "setresuid", "UUU")
    CALL(119, "setresgid", "UUU")
    CALL(118, "getresuid", "bbb")
    CALL(120, "getresgid", "bbb")
    CALL(122, "setfsuid", "U")
    CALL(123, "setfsgid", "U")
    CALL(115, "getgroups", "ib")
    CALL(116, "setgroups", "ib")
    CALL(125, "capget", "HD")
    CALL(126, "capset", "HD")
    CALL(97, "getrlimit", "ib")
    CALL(160, "setrlimit", "")
    CALL(302, "prlimit64", "")
    CALL(98, "getrusage", "ib")
    CALL(99, "sysinfo", "b")
    CALL(100, "times", "b")
    CALL(63, "uname", "b")
    CALL(140, "getpriority", "iP")
    CALL(141, "setpriority", "")
    CALL(143, "sched_getparam", "Pb")
    CALL(142, "sched_setparam", "")
    CALL(144, "sched_setscheduler", "")
    CALL(145, "sched_getscheduler", "P")
    CALL(146, "sched_get_priority_max", "i")
    CALL(147, "sched_get_priority_min", "i")
    CALL(148, "sched_rr_get_interval", "Pb")
    CALL(203, "sched_setaffinity", "")
    CALL(204, "sched_getaffinity", "Plb")
    CALL(314, "sched_setattr", "")
    CALL(315, "sched_getattr", "PbLu")
    CALL(24, "sched_yield", "")
    CALL(309, "getcpu", "bbb")
    CALL(135, "personality", "i")
    CALL(157, "prctl", "")
    CALL(158, "arch_prctl", "")
    CALL(218, "set_tid_address", "b")
    CALL(273, "set_robust_list", "kl")  /* length: see below */
    CALL(274, "get_robust_list", "Pbb")
    CALL(334, "rseq", "")
    CALL(202, "futex", "")
    CALL(202, "futex", "")
    CALL(449, "futex_waitv", "")
    CALL(454, "futex_wake", "")
    CALL(455, "futex_wait", "")
    CALL(456, "futex_requeue", "")
    CALL(251, "ioprio_set", "")
    CALL(252, "ioprio_get", "iP")
    CALL(272, "unshare", "")
    CALL(308, "setns", "fi")
    CALL(312, "kcmp", "PPiii")
    CALL(318, "getrandom", "bLu")
    CALL(324, "membarrier", "iui")
    CALL(206, "io_setup", "ib")
    CALL(207, "io_destroy", "i")
    CALL(208, "io_getevents", "iiibt")
    CALL(209, "io_submit", "iik")
    CALL(210, "io_cancel", "ikb")
    CALL(333, "io_pgetevents", "iiibtk")
    CALL(205, "set_thread_area", "k")
    CALL(211, "get_thread_area", "b")
    CALL(154, "modify_ldt", "ikl")
    CALL(444, "landlock_create_ruleset", "klu")
    CALL(445, "landlock_add_rule", "fikuuu")
    CALL(446, "landlock_restrict_self", "fu")
    CALL(459, "lsm_get_self_attr", "ibbu")
    CALL(460, "lsm_set_self_attr", "ikLu")
    CALL(461, "lsm_list_modules", "bbu")
    CALL(457, "statmount", "kbLu")
    CALL(458, "listmount", "kbLu")
    CALL(448, "process_mrelease", "fu")
    CALL(162, "sync", "")
    CALL(306, "syncfs", "f")
    /* what an unprivileged user may not do, or the kernel no longer has */
    CALL(165, "mount", "pppuk")
    CALL(166, "umount2", "pu")
    CALL(155, "pivot_root", "pp")
    CALL(167, "swapon", "pu")
    CALL(168, "swapoff", "p")
    CALL(163, "acct", "p")
    CALL(170, "sethostname", "bL")
    CALL(171, "setdomainname", "bL")
    CALL(172, "iopl", "i")
    CALL(173, "ioperm", "iii")
    CALL(153, "vhangup", "")
    CALL(136, "ustat", "ib")
    CALL(139, "sysfs", "iib")
    CALL(179, "quotactl", "ipib")
    CALL(443, "quotactl_fd", "fiib")
    CALL(156, "_sysctl", "k")
    CALL(174, "create_module", "pl")
    CALL(177, "get_kernel_syms", "b")
    CALL(178, "query_module", "pibLb")
    CALL(180, "nfsservctl", "ikb")
    CALL(181, "getpmsg", "fkkbb")
    CALL(182, "putpmsg", "fkkii")
    CALL(183, "afs_syscall", "iiiii")
    CALL(184, "tuxcall", "iii")
    CALL(185, "security", "iii")
    CALL(212, "lookup_dcookie", "ibL")
    CALL(214, "epoll_ctl_old", "iiii")
    CALL(215, "epoll_wait_old", "iiii")
    CALL(236, "vserver", "iiii")
    CALL(429, "move_mount", "dpdpu")
    CALL(430, "fsopen", "pu")
    CALL(431, "fsconfig", "fipki")
    CALL(432, "fsmount", "fuu")
    CALL(433, "fspick", "dpu")
    CALL(442, "mount_setattr", "dpukl")
    CALL(219, "restart_syscall", "")
    SPECIAL(0, "nr") /* numbers no kernel has, and high bits on harmless ones */
        {
            static const long odd[] = {-1, 0x40000027 /* x32 getpid */, 0x100000027 /* getpid, high half set */,
                                       0x7fffffff, 1000, 100000};
            /* (not 335: some kernels have a private call there, which raises SIGILL) */
            c->nr = one_in(2) ? PICK(odd) : PICK(((const long[]){336, 350, 400, 423, 512, 520, 547, 548, 600, 1023, 1024}));
            if (one_in(3)) c->nr = 336 + (long)below(423 - 336 + 1);
            c->name = "nr";
        }
        break;
    default:
        c->nr = 39; c->name = "getpid";
        break;
    }

    /* the special cases */
    u64 *a = c->a;
    switch (c->nr) {
    case 9: { /* mmap: MAP_FIXED only inside M_ */
        int fixed = one_in(3);
        u64 flags = PICK(((const u64[]){0x02, 0x02, 0x01, 0x03 /* SHARED_VALIDATE */, 0, 0x0f}));
        static const u64 more[] = {0x20 /* ANONYMOUS */, 0x20, 0x20, 0x100000 /* FIXED_NOREPLACE */, 0x100 /* GROWSDOWN */,
                                   0x800, 0x1000, 0x2000 /* LOCKED */, 0x4000 /* NORESERVE */, 0x8000 /* POPULATE */,
                                   0x10000, 0x20000 /* STACK */, 0x40000 /* HUGETLB */, 0x80000 /* SYNC */,
                                   0x4000000 /* UNINITIALIZED */, 0x08 /* DROPPABLE */, 0x40 /* 32BIT */};
        for (int i = (int)below(4); i > 0; i--) flags |= PICK(more);
        if (one_in(16)) flags |= rnd() & 0xffffffff & ~0x10ULL;
        flags &= ~0x10ULL; /* MAP_FIXED */
        if (fixed) {
            a[0] = m_addr_(&room, 1);
            a[1] = m_len(room);
            flags |= 0x10;
        } else {
            a[0] = one_in(2) ? 0 : buf();
            a[1] = below(6) ? PICK(((const u64[]){1, PG, 2 * PG, 5 * PG, 65536, 1 << 20})) : PICK(((const u64[]){0, 1ULL << 47, ~0ULL, ~0ULL - PG + 1}));
        }
        a[2] = one_in(4) ? bits() : below(8);
        a[3] = flags;
        a[4] = (flags & 0x20) && one_in(2) ? (u64)-1 : fd();
        a[5] = one_in(3) ? off() : PG * below(4);
        c->post = fixed ? 0 : R_MMAP;
        break;
    }
    case 11: /* munmap */
        a[0] = m_addr(&room); a[1] = m_len(room); break;
    case 10: /* mprotect */
        a[0] = m_addr(&room); a[1] = m_len(room); a[2] = one_in(3) ? bits() : below(8) | (one_in(8) ? 0x01000000 : 0);
        break;
    case 329: /* pkey_mprotect */
        a[0] = m_addr(&room); a[1] = m_len(room); a[2] = below(8);
        a[3] = PICK(((const u64[]){0, 1, 2, 15, 16, ~0ULL}));
        break;
    case 462: /* mseal */
        a[0] = m_addr(&room); a[1] = m_len(room); a[2] = one_in(4) ? bits() : 0;
        break;
    case 28: /* madvise */
        a[0] = m_addr(&room); a[1] = m_len(room);
        a[2] = one_in(8) ? bits() : PICK(((const u64[]){0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                                                         21, 22, 23, 24, 25, 100, 101, 102, 103}));
        break;
    case 26: /* msync */
        a[0] = m_addr(&room); a[1] = m_len(room); a[2] = one_in(4) ? bits() : PICK(((const u64[]){1, 2, 4, 5, 6}));
        break;
    case 67: /* shmdt */
        a[0] = m_addr(&room); break;
    case 29: case 64: case 68: { /* shmget, semget, msgget: a new private object */
        int kind = c->nr == 29 ? IPC_SHM : c->nr == 64 ? IPC_SEM : IPC_MSG;
        a[0] = 0; /* IPC_PRIVATE */
        if (kind == IPC_SHM)
            a[1] = PICK(((const u64[]){0, 1, PG, 5 * PG, 1 << 20, 1ULL << 40, ~0ULL, PG + 1}));
        else if (kind == IPC_SEM)
            a[1] = PICK(((const u64[]){0, 1, 2, 3, 250, 32000, 32001, ~0ULL}));
        u64 mode = one_in(3) ? rnd() & 0777 : PICK(((const u64[]){0600, 0644, 0, 0777, 0400}));
        u64 extra = PICK(((const u64[]){0, 0, 01000 /* IPC_CREAT */, 02000 /* IPC_EXCL */, 04000 /* SHM_HUGETLB */,
                                         010000 /* SHM_NORESERVE */}));
        a[kind == IPC_MSG ? 1 : 2] = mode | extra | (one_in(8) ? rnd() & 0xffffffff : 0);
        c->post = R_IPC;
        c->ipc_kind = kind;
        c->ipc_slot = (int)below(IPC_SLOTS);
        break;
    }
    case 30: { /* shmat: where the kernel likes, into M_ (SHM_REMAP only there), or anywhere else not mapped */
        a[0] = ipc_id(IPC_SHM);
        u64 flags = PICK(((const u64[]){0, 010000 /* SHM_RDONLY */, 020000 /* SHM_RND */, 040000 /* SHM_REMAP */,
                                         0100000 /* SHM_EXEC */, 050000}));
        if (one_in(8)) flags |= rnd() & 0xffffffff;
        switch (below(4)) {
        case 0: a[1] = 0; break;
        case 1: a[1] = m_addr_(&room, 1) + (one_in(4) ? below(PG) : 0); break;
        case 2: a[1] = hostile(); flags &= ~040000ULL; break;
        default: a[1] = buf(); flags &= ~040000ULL; break;
        }
        a[2] = flags;
        c->post = R_SHMAT;
        break;
    }
    case 31: case 66: case 71: { /* shmctl, semctl, msgctl */
        int kind = c->nr == 31 ? IPC_SHM : c->nr == 66 ? IPC_SEM : IPC_MSG;
        static const u64 cmds[3][12] = {
            {0, 1, 2, 3, 11, 12, 13, 14, 15, 0x102, 16, 1000},                 /* IPC_*, SHM_LOCK.. SHM_STAT_ANY */
            {0, 1, 2, 3, 11, 12, 13, 14, 15, 16, 17, 19},                      /* IPC_*, GETPID.. SETALL, SEM_INFO */
            {0, 1, 2, 3, 11, 12, 13, 0x102, 14, 1000, 2, 2},                   /* IPC_*, MSG_STAT.. MSG_STAT_ANY */
        };
        a[0] = ipc_id(kind);
        if (kind == IPC_SEM) {
            a[1] = one_in(4) ? anyint() : below(3);
            a[2] = one_in(8) ? junk() : PICK(cmds[kind]);
            a[3] = one_in(3) ? anyint() : buf();
        } else {
            a[1] = one_in(8) ? junk() : PICK(cmds[kind]);
            a[2] = buf();
        }
        break;
    }
    case 65: case 220: /* semop, semtimedop: waits end with the interval timer's signal */
        a[0] = ipc_id(IPC_SEM);
        a[1] = sptr(TS->sops);
        a[2] = one_in(4) ? anyint() : PICK(((const u64[]){0, 1, 2, 4, 500, 501}));
        a[3] = c->nr == 220 ? arg('t') : 0;
        break;
    case 69: case 70: /* msgsnd, msgrcv */
        a[0] = ipc_id(IPC_MSG);
        a[1] = buf();
        a[2] = one_in(4) ? len() : PICK(((const u64[]){0, 1, 8, 100, 8192, 8193, 65536}));
        if (c->nr == 70) {
            a[3] = one_in(3) ? anyint() : below(4);
            a[4] = PICK(((const u64[]){0, 04000 /* IPC_NOWAIT */, 010000 /* MSG_NOERROR */, 020000 /* MSG_EXCEPT */,
                                        040000 /* MSG_COPY */, 044000, 014000})) | (one_in(8) ? bits() : 0);
        } else {
            a[3] = PICK(((const u64[]){0, 04000, 04000})) | (one_in(8) ? bits() : 0);
        }
        break;
    case 25: { /* mremap: the old range in M_; a fixed target in M_; a moved mapping is unmapped after */
        a[0] = m_addr(&room);
        a[1] = one_in(6) ? 0 : m_len(room);
        u64 flags = below(8);
        if (one_in(16)) flags |= bits() & ~7ULL;
        if ((flags & 2) && !(flags & 1) && one_in(2)) flags |= 1;
        a[3] = flags;
        if (flags & 2) { /* MREMAP_FIXED */
            u64 nroom;
            a[4] = m_addr_(&nroom, 1);
            a[2] = m_len(nroom);
        } else {
            a[4] = junk();
            a[2] = (flags & 1) ? (one_in(2) ? m_len(room) : PICK(((const u64[]){PG, 1 << 20, 1ULL << 47, ~0ULL}))) : m_len(room);
        }
        c->post = (flags & 1) && !(flags & 2) ? R_MREMAP : 0;
        break;
    }
    case 453: /* map_shadow_stack: a new mapping, unmapped after */
        a[0] = one_in(2) ? 0 : buf(); a[1] = PICK(((const u64[]){0, PG, 8 * PG, 1ULL << 47, 1})); a[2] = below(4);
        c->post = R_MMAP;
        break;
    case 12: /* brk: around its own start, or hostile */
        a[0] = one_in(2) ? heap0 + PICK(((const u64[]){0, 1, PG, 1 << 20, 16 << 20, -PG})) : (one_in(2) ? 0 : buf());
        break;
    case 285: /* fallocate: small lengths (FALLOC_FL_KEEP_SIZE escapes RLIMIT_FSIZE) */
        a[3] = PICK(((const u64[]){0, 1, PG, 65536, 1 << 20, ~0ULL, 0x8000000000000000ULL}));
        break;
    case 41: /* socket: families and protocols that load no module */
    case 53: {
        static const int32_t dom[] = {1, 1, 1, 2, 2, 10, 10, 16, 0, 46, -1, 0x7fffffff};
        int32_t d = PICK(dom), t = 0, pr = 0;
        if (d == 2 || d == 10) {
            static const int32_t tp[][2] = {{1, 0}, {1, 6}, {2, 0}, {2, 17}, {3, 0}, {3, 255}, {2, 1}};
            int k = (int)below(7);
            t = tp[k][0]; pr = tp[k][1];
            if (d == 10 && k == 6) pr = 58;
        } else if (d == 16) {
            t = one_in(2) ? 3 : 2; pr = PICK(((const int32_t[]){0, 4, 15, 16, 32, 1000}));
        } else {
            t = PICK(((const int32_t[]){1, 2, 5, 3, 0, 11, 6})); pr = one_in(4) ? (int32_t)anyint() : 0;
        }
        if (one_in(3)) t |= one_in(2) ? 04000 : 02000000;
        if (one_in(16)) t |= (int32_t)(bits() & 0x7ffff000);
        a[0] = (u64)(s64)d; a[1] = (u64)(s64)t; a[2] = (u64)(s64)pr;
        break;
    }
    case 54: case 55: { /* socket options: no multicast membership (it sends packets) */
        static const int32_t lv[] = {1, 1, 1, 0, 6, 17, 41, 270, 263, -1};
        int32_t l = PICK(lv), n;
        if (l == 0) n = PICK(((const int32_t[]){1, 2, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14, 15, 24, 32, 33, 34, 49, 50}));
        else if (l == 41) n = PICK(((const int32_t[]){1, 4, 16, 17, 18, 19, 23, 24, 25, 26, 49, 67}));
        else n = one_in(8) ? (int32_t)anyint() : (int32_t)below(80);
        a[1] = (u64)(s64)l; a[2] = (u64)(s64)n;
        a[3] = one_in(2) ? (u64)TS->ints : buf();
        break;
    }
    case 13: { /* rt_sigaction: the new action is always one that is safe to run */
        a[0] = sig_any();
        int s = (int)a[0];
        if (default_ignores(s) && one_in(3)) TS->act.handler = 0;
        a[1] = safeptr(&TS->act);
        a[2] = buf();
        a[3] = sigsetsize();
        c->post = R_SIGACT;
        break;
    }
    case 14: c->post = R_MASK; break;
    case 37: case 38: c->post = R_TIMER; break;
    case 222: /* timer_create: the sigevent sends a handled signal */
        a[1] = safeptr(&TS->sev); a[2] = buf(); break;
    case 157: { /* prctl: not seccomp, not TSC, not syscall user dispatch, not shadow stacks */
        u64 o = one_in(8) ? bits() : PICK(((const u64[]){0x59616d61, 0x41555856})) ;
        if (below(8)) o = 1 + below(80);
        int32_t oi = (int32_t)o;
        if (oi == 22 || oi == 26 || oi == 59 || oi == 74 || oi == 75 || oi == 76) o = 16; /* PR_GET_NAME */
        a[0] = o;
        a[1] = one_in(2) ? below(8) : (one_in(2) ? buf() : anyint());
        if (oi == 1 /* PR_SET_PDEATHSIG */) a[1] = sig_send();
        /* a huge timer slack would make a timeout that is already past never expire */
        if (oi == 29 /* PR_SET_TIMERSLACK */) a[1] = PICK(((const u64[]){0, 1, 50000, 1000000}));
        a[2] = one_in(2) ? buf() : anyint(); a[3] = one_in(2) ? buf() : anyint(); a[4] = anyint();
        break;
    }
    case 158: { /* arch_prctl: FS, GS and CPUID faulting are put back after; no shadow stack */
        static const u64 opts[] = {0x1001, 0x1002, 0x1003, 0x1004, 0x1011, 0x1012, 0x1021, 0x1022, 0x1023, 0x1024,
                                   0x1025, 0x2001, 0x2002, 0x2003, 0x4001, 0x4002, 0x4003, 0x4004, 0, 1, 0x1000,
                                   0x1005, 0x3001, ~0ULL, 0x100001002ULL};
        a[0] = PICK(opts);
        a[1] = one_in(2) ? buf() : anyint();
        c->post = R_ARCH;
        break;
    }
    case 334: /* rseq: only with a length the kernel refuses (a registered area would be read on every preemption) */
        /* (Linux takes any length from 32 up: an rseq area may grow) */
        a[0] = buf(); a[1] = PICK(((const u64[]){0, 1, 16, 31, 0x100000000ULL})); a[2] = bits(); a[3] = anyint();
        break;
    case 202: { /* futex: a PI lock or a requeue-PI wait must have a timeout that is already past */
        u64 op = one_in(8) ? bits() : below(15) | (one_in(2) ? 128 : 0) | (one_in(4) ? 256 : 0);
        int cmd = (int)(op & 127);
        int pi = cmd == 6 || cmd == 11 || cmd == 13;
        a[0] = one_in(4) ? buf() : (one_in(4) ? hostile() : (u64)&TS->futex[below(4)]);
        if (pi) a[0] = one_in(4) ? hostile() : (u64)&TS->futex[below(4)];
        a[1] = op;
        a[2] = one_in(2) ? TS->futex[below(4)] : anyint();
        a[3] = one_in(2) ? sptr(&TS->ts[below(4)]) : anyint();
        if (cmd == 11 && one_in(2)) a[2] = ~(u64)TS->futex[0]; /* mostly not the value: EAGAIN at once */
        if (pi) { /* (never NULL: no timeout at all) */
            TS->ts[0].sec = 0; TS->ts[0].nsec = (s64)below(1000);
            a[3] = one_in(4) ? (u64)G_ + below(PG) : (u64)&TS->ts[0];
        }
        a[4] = one_in(2) ? (u64)&TS->futex[below(4)] : buf();
        if (pi && one_in(2)) a[4] = (u64)&TS->futex[below(4)];
        a[5] = anyint();
        break;
    }
    case 449: /* futex_waitv */
        a[0] = sptr(TS->waitv); a[1] = one_in(4) ? anyint() : below(5); a[2] = one_in(4) ? bits() : 0;
        a[3] = sptr(&TS->ts[below(4)]); a[4] = one_in(4) ? anyint() : below(2);
        break;
    case 454: /* futex_wake */
        a[0] = one_in(3) ? buf() : (u64)&TS->futex[below(4)]; a[1] = anyint(); a[2] = anyint(); a[3] = one_in(3) ? bits() : 2 | 128;
        break;
    case 455: /* futex_wait */
        a[0] = one_in(3) ? buf() : (u64)&TS->futex[below(4)]; a[1] = one_in(2) ? TS->futex[below(4)] : anyint();
        a[2] = one_in(2) ? ~0ULL : anyint(); a[3] = one_in(3) ? bits() : 2 | 128; a[4] = sptr(&TS->ts[below(4)]);
        a[5] = below(12);
        break;
    case 456: /* futex_requeue */
        a[0] = sptr(TS->waitv); a[1] = one_in(3) ? bits() : 0; a[2] = anyint(); a[3] = anyint();
        break;
    case 56: { /* clone(flags, stack, parent_tid, child_tid, tls) */
        a[0] = clone_flags(&needs_stack);
        if (one_in(32)) a[0] |= rnd() << 32; /* the high half is ignored */
        a[1] = needs_stack && below(4) ? (u64)K_ + K_PAGES * PG : (one_in(2) ? 0 : hostile());
        a[2] = one_in(2) ? (u64)D_ + 8 * below(8) : hostile();
        a[3] = one_in(2) ? (u64)D_ + 64 + 8 * below(8) : hostile();
        a[4] = one_in(2) ? (u64)D_ + 256 : hostile();
        c->post = R_FORK;
        break;
    }
    case 435: { /* clone3(args, size) */
        struct kclone_args *ca = &TS->ca;
        u64 f = clone_flags(&needs_stack);
        ca->exit_signal = f & 0xff; /* sent to it when the child ends: a handled one, or an invalid number */
        if (one_in(16)) ca->exit_signal = PICK(((const u64[]){65, ~0ULL, 1000}));
        f &= ~0xffULL;
        if (one_in(16)) f |= PICK(((const u64[]){0x100000000ULL /* CLEAR_SIGHAND */, 0x200000000ULL /* INTO_CGROUP */,
                                                 0x80 /* NEWTIME */, 1ULL << 40}));
        ca->flags = f;
        ca->pidfd = one_in(2) ? (u64)D_ + 128 : hostile();
        ca->child_tid = one_in(2) ? (u64)D_ + 136 : hostile();
        ca->parent_tid = one_in(2) ? (u64)D_ + 144 : hostile();
        ca->stack = needs_stack && below(4) ? (u64)K_ : (one_in(2) ? 0 : hostile());
        ca->stack_size = needs_stack ? K_PAGES * PG : PICK(((const u64[]){0, PG, ~0ULL}));
        ca->tls = one_in(2) ? (u64)D_ + 256 : hostile();
        ca->set_tid = one_in(4) ? (u64)D_ + 512 : 0;
        ca->set_tid_size = ca->set_tid ? below(3) : 0;
        ca->cgroup = fd();
        a[0] = safeptr(ca);
        a[1] = one_in(4) ? anyint() : PICK(((const u64[]){64, 80, 88, 88, 88, 96, 4096}));
        c->post = R_FORK;
        break;
    }
    case 57: case 58: c->post = R_FORK; break;
    case 59: /* execve: only of what cannot run */
        a[0] = exec_path(); a[1] = sptr(TS->argv); a[2] = sptr(TS->envp);
        break;
    case 322: /* execveat */
        a[0] = (u64)(s64)PICK(((const int32_t[]){-100, -1, 100000, (int32_t)0x80000000}));
        a[1] = exec_path(); a[2] = sptr(TS->argv); a[3] = sptr(TS->envp); a[4] = bits();
        break;
    case 61: /* wait4(pid, status, options, rusage) */
        a[0] = (u64)(s64)PICK(((const int32_t[]){-1, -1, 0, 0x7fffffff, (int32_t)0x80000000, -4194305}));
        if (one_in(4)) a[0] = self_pid;
        a[1] = buf(); a[2] = one_in(3) ? bits() : PICK(((const u64[]){0, 1, 2, 8, 0x40000000, 0x80000000, 0x40000001}));
        a[3] = buf();
        break;
    case 247: /* waitid(idtype, id, infop, options, rusage) */
        a[0] = one_in(6) ? anyint() : below(4); a[1] = one_in(2) ? (u64)-1 : pid_q(); a[2] = buf();
        a[3] = one_in(3) ? bits() : PICK(((const u64[]){4, 5, 2, 8, 0x40000004, 0x01000004, 0}));
        a[4] = buf();
        break;
    case 3: /* close: never stderr */
        a[0] = fd_not2(); break;
    case 33: /* dup2 */
        a[0] = fd(); a[1] = fd_not2(); break;
    case 292: /* dup3 */
        a[0] = fd(); a[1] = fd_not2(); a[2] = one_in(2) ? 0 : bits(); break;
    case 436: { /* close_range: never stderr, never the log */
        u64 first = fd(), last = one_in(3) ? ~0ULL : fd();
        if ((u32)first <= 2 && (u32)last >= 2) first = 3;
        if ((u32)first <= LOG_FD && (u32)last >= LOG_FD) {
            if (one_in(2)) last = LOG_FD - 1; else first = LOG_FD + 1;
        }
        a[0] = first; a[1] = last; a[2] = one_in(2) ? 0 : (one_in(2) ? 4 : bits());
        break;
    }
    case 72: { /* fcntl */
        static const u64 cmds[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 16, 17, 36, 37, 38, 1024, 1025, 1026, 1027,
                                   1028, 1030, 1031, 1032, 1033, 1034, 1035, 1036, 1037, 1038, 12, 13, 14, ~0ULL, 99999};
        a[0] = fd(); a[1] = PICK(cmds);
        switch ((int)a[1]) {
        case 0: case 1030: a[2] = one_in(2) ? below(64) : fd(); break;
        case 5: case 6: case 7: case 36: case 37: case 38: case 15: case 16: case 1035: case 1036: case 1037: case 1038:
            a[2] = sptr(TS->flock); break;
        case 8: a[2] = pid_t_(); if (one_in(4)) a[2] = 0; break;
        case 10: a[2] = one_in(3) ? 0 : sig_send(); break;
        case 1031: a[2] = PICK(((const u64[]){0, 4096, 65536, 1 << 20, 1 << 30, ~0ULL})); break;
        default: a[2] = one_in(2) ? bits() : anyint(); break;
        }
        break;
    }
    case 80: /* chdir: directories it cannot write in, or its own */
        a[0] = (u64)PICK(((const char *const[]){paths[3], paths[5], paths[16], paths[23], paths[10], paths[0], paths[14],
                                                 paths[34], nonul, long_path}));
        if (one_in(6)) a[0] = hostile();
        break;
    case 141: /* setpriority: never nicer than 0 (it would starve on a loaded machine) */
        a[0] = one_in(4) ? anyint() : 0;
        a[1] = a[0] == 0 ? pid_self_or_none() : (u64)0x7fffff00;
        a[2] = (u64)(s64)PICK(((const int32_t[]){-20, -1, 0, (int32_t)0x80000000}));
        break;
    case 142: /* sched_setparam */
        a[0] = pid_self_or_none(); a[1] = sptr(TS->ints); break;
    case 144: /* sched_setscheduler: never SCHED_IDLE */
        a[0] = pid_self_or_none();
        a[1] = PICK(((const u64[]){0, 1, 2, 3, 6, 7, 0x40000000, 0x40000003, ~0ULL}));
        a[2] = sptr(TS->ints);
        break;
    case 314: /* sched_setattr */
        a[0] = pid_self_or_none(); a[1] = safeptr(&TS->attr); a[2] = one_in(2) ? 0 : bits(); break;
    case 203: /* sched_setaffinity */
        a[0] = pid_self_or_none(); a[1] = len(); a[2] = sptr(TS->cpuset); break;
    case 251: /* ioprio_set: never the idle class, never other processes */
        a[0] = one_in(4) ? anyint() : 1;
        a[1] = a[0] == 1 ? pid_self_or_none() : (u64)0x7fffff00;
        a[2] = (PICK(((const u64[]){0, 1, 2, 4, 7})) << 13) | below(8);
        if (one_in(8)) a[2] = bits() & ~(3ULL << 13);
        break;
    case 109: /* setpgid */
        a[0] = pid_self_or_none(); a[1] = one_in(2) ? 0 : pid_q(); break;
    case 160: case 302: { /* setrlimit, prlimit64: never RLIMIT_CPU, nor RLIMIT_RTTIME (at 0 Linux ends even a
                           * task that is not real-time, with SIGKILL, when its CPU timers are next looked
                           * at: at a different time in each run); and, until km deals with them
                           * (tests/guest/test_fuzz_found.py, the xfail ones), never RLIMIT_FSIZE (/proc/self
                           * files) or RLIMIT_NPROC (threads) */
        u64 r = one_in(8) ? anyint() : 1 + below(16);
        if ((u32)r == 0 || (u32)r == 1 || (u32)r == 6 || (u32)r == 15) r = 7 + below(8);
        if (c->nr == 160) { a[0] = r; a[1] = sptr(TS->rlim); }
        else { a[0] = pid_self_or_none(); a[1] = r; a[2] = sptr(TS->rlim); a[3] = buf(); }
        break;
    }
    case 133: case 259: /* mknod: a type as well */
        a[c->nr == 133 ? 1 : 2] = PICK(((const u64[]){0, 0010000, 0100000, 0140000, 0020000, 0060000, 0170000})) | (rnd() & 07777);
        break;
    case 162: /* sync: rare, it is felt machine-wide */
        if (!one_in(8)) { c->nr = 24; c->name = "sched_yield"; }
        break;
    case 273: /* set_robust_list: mostly the one valid length */
        if (below(4)) a[1] = 24;
        break;
    case 272: /* unshare: no new user namespace (it would make it root in there) */
        a[0] = bits() & ~CLONE_NEWUSER; break;
    }
    return 0;
}

enum { NCALL_KINDS = __COUNTER__ - COUNTER_BASE };

/* ---- output (only when asked) ------------------------------------------------------- */

static char out[16384];
static int outn;
static void flush(void) {
    if (outn) sc3(SYS_write, LOG_FD, out, outn);
    outn = 0;
}
static void puts_(const char *s) {
    while (*s) {
        if (outn >= (int)sizeof out - 1) flush();
        out[outn++] = *s++;
    }
}
static void putu(u64 v, int base) {
    char b[24];
    int i = 0;
    do { b[i++] = "0123456789abcdef"[v % (u64)base]; v /= (u64)base; } while (v);
    char s[26];
    int j = 0;
    if (base == 16) s[j++] = '0', s[j++] = 'x';
    while (i) s[j++] = b[--i];
    s[j] = 0;
    puts_(s);
}
static void puti(s64 v) {
    if (v < 0) { puts_("-"); putu((u64)-v, 10); } else putu((u64)v, 10);
}

/* an address by the region it points into, the same in every run */
static void putarg(u64 v) {
    static const struct { char **at; u64 size; const char *name; } rg[] = {
        {&S_, S_SIZE, "S"}, {&G_, 4 * PG, "G"}, {&T_, T_PAGES * PG, "T"}, {&P_, P_PAGES * PG, "P"}, {&M_, M_SIZE, "M"},
        {&K_, K_PAGES * PG, "K"}, {&D_, D_PAGES * PG, "D"}, {&A_, A_PAGES * PG, "A"},
    };
    for (unsigned i = 0; i < sizeof rg / sizeof rg[0]; i++) {
        u64 b = (u64)*rg[i].at;
        if (v >= b && v <= b + rg[i].size && (v < b + rg[i].size || rg[i].at == &K_)) { /* (K's end: a stack top) */
            if (rg[i].at == &P_) {
                for (unsigned k = 0; k < NPATHS; k++) /* as written, "PID" and all: the same in every run */
                    if (v == (u64)paths[k]) { puts_("\""); puts_(path_list[k]); puts_("\""); return; }
                puts_("\"");
                const char *s = (const char *)v;
                int n = 0;
                for (; (u64)s < b + rg[i].size && *s && n < 48; s++, n++) {
                    char ch[2] = {*s >= 32 && *s < 127 ? *s : '?', 0};
                    puts_(ch);
                }
                puts_((u64)s < b + rg[i].size && !*s ? "\"" : "...\"");
                return;
            }
            puts_(rg[i].name); puts_("+"); putu(v - b, 16);
            return;
        }
    }
    if (v >= (u64)ro_area && v < (u64)ro_area + RO_SIZE) { puts_("R+"); putu(v - (u64)ro_area, 16); return; }
    static const u64 heap_offsets[] = {0, 1, PG, 1 << 20, 16 << 20};
    for (unsigned i = 0; heap0 && i < sizeof heap_offsets / sizeof heap_offsets[0]; i++) /* the values brk gets */
        if (v == heap0 + heap_offsets[i]) { puts_("H+"); putu(heap_offsets[i], 16); return; }
    if (heap0 && v == heap0 - PG) { puts_("H-0x1000"); return; }
    if (vdso && v >= vdso && v < vdso + 4 * PG) { puts_("V+"); putu(v - vdso, 16); return; }
    for (unsigned i = 0; i < sizeof above_nofile / sizeof above_nofile[0]; i++) /* fd()'s, the same in every run */
        if (v == nofile0 + above_nofile[i]) { puts_("NOFILE+"); putu(above_nofile[i], 10); return; }
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < IPC_SLOTS; i++)
            if (ipc_ids[k][i] >= 32768 && v == (u64)ipc_ids[k][i]) { /* (not the first ids: small numbers abound) */ puts_(ipc_names[k]); putu((u64)i, 10); return; }
    if (v == self_pid) { puts_("PID"); return; }
    if (v == (u64)-(s64)self_pid) { puts_("-PID"); return; }
    if (v == (u64)on_signal) { puts_("handler"); return; }
    if ((s64)v < 0 && (s64)v > -4096) { puti((s64)v); return; }
    if (v < 100000) { putu(v, 10); return; }
    putu(v, 16);
}

static void dump(u64 p) { /* the bytes a pointer argument shows the kernel (prepared ones) */
    if (!(p >= (u64)T_ && p < (u64)T_ + T_PAGES * PG)) return;
    puts_("    [");
    puts_("T+"); putu(p - (u64)T_, 16); puts_(":");
    for (int i = 0; i < 64 && p + (u64)i < (u64)T_ + T_PAGES * PG; i += 8) {
        u64 w;
        memcpy(&w, (void *)(p + (u64)i), 8);
        puts_(" "); putarg(w);
    }
    puts_("]\n");
}

/* ---- the program ------------------------------------------------------------------------- */

/* Grow the stack now: a lowered RLIMIT_STACK must never make it fault later, natively
 * (under km the stack is mapped whole). */
__attribute__((noinline)) static void pretouch_stack(void) {
    volatile char touch[256 * 1024];
    for (unsigned k = 0; k < sizeof touch; k += PG) touch[k] = 0;
}

static u64 saved_fs;
static int log_level, dump_structs, progress;
static u64 trace_from;

static void restore_signal(int s) {
    if (s < 1 || s > 64 || s == 9 || s == 19) return;
    sc4(SYS_rt_sigaction, s, unhandled(s) ? &dfl_act : &base_act, 0, 8);
}

static void arm_timer(void) {
    s64 itv[4] = {0, TICK_US, 0, TICK_US};
    sc3(SYS_setitimer, 0 /* ITIMER_REAL */, itv, 0);
}

static void die(int status, const char *what) {
    sc3(SYS_write, 2, "fuzz: ", 6);
    sc3(SYS_write, 2, what, strlen(what));
    sc3(SYS_write, 2, "\n", 1);
    sc1(SYS_exit_group, status);
}

/* the descriptors it starts with (and has again after every clean-up), in this order */
static void open_fds(void) {
    int p[2];
    sc2(SYS_open, ".", O_RDONLY | O_DIRECTORY);                      /* 3 */
    sc3(SYS_open, "f0", O_RDWR | O_CREAT, 0644);                     /* 4 */
    sc2(SYS_pipe2, p, 0);                                            /* 5, 6 */
    sc4(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, p);                 /* 7, 8 */
    sc2(SYS_eventfd2, 0, 0);                                         /* 9 */
    sc1(SYS_epoll_create1, 0);                                       /* 10 */
    sc2(SYS_open, "/dev/null", O_RDWR);                              /* 11 */
    sc2(SYS_timerfd_create, 1, 0);                                   /* 12 */
    sc2(SYS_open, "/proc/self/maps", O_RDONLY);                      /* 13 */
    sc3(SYS_socket, AF_INET, SOCK_DGRAM, 0);                         /* 14 */
    sc4(SYS_socketpair, AF_UNIX, SOCK_DGRAM, 0, p);                  /* 15, 16 */
    u64 mask = 1ULL << (12 - 1);
    sc4(SYS_signalfd4, -1, &mask, 8, 0);                             /* 17 */
    sc1(SYS_inotify_init1, 0);                                       /* 18 */
    sc2(SYS_memfd_create, "fuzz", 0);                                /* 19 */
    long s = sc3(SYS_socket, AF_UNIX, SOCK_STREAM, 0);               /* 20 */
    struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "sock"};
    sc1(SYS_unlink, "sock");
    sc3(SYS_bind, s, &un, sizeof un);
    sc2(SYS_listen, s, 4);
    sc2(SYS_open, "f1", O_PATH);                                     /* 21 */
    sc2(SYS_pidfd_open, self_pid, 0);                                /* 22 */
}

static void build_regions(void) {
    u64 total = (1 + SCRATCH_PAGES + 4 + T_PAGES + 1 + P_PAGES + 1 + M_PAGES + 1 + K_PAGES + 1 + D_PAGES + 1 + A_PAGES + 1) * PG;
    base = mmap(0, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) die(2, "cannot map its regions");
    char *at = base + PG;
#define REGION(var, pages, guard) var = at; mprotect(at, (pages) * PG, PROT_READ | PROT_WRITE); at += ((pages) + (guard)) * PG;
    REGION(S_, SCRATCH_PAGES, 0)
    G_ = at; at += 4 * PG;
    REGION(T_, T_PAGES, 1)
    REGION(P_, P_PAGES, 1)
    REGION(M_, M_PAGES, 1)
    REGION(K_, K_PAGES, 1)
    REGION(D_, D_PAGES, 1)
    REGION(A_, A_PAGES, 1)
#undef REGION
}

/* M_: anonymous pages, a read-only one, a PROT_NONE one, a file mapping and a hole */
static void build_m(void) {
    mmap(M_, M_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    sc3(SYS_mprotect, M_ + 4 * PG, PG, PROT_READ);
    sc3(SYS_mprotect, M_ + 5 * PG, PG, PROT_NONE);
    long f = sc3(SYS_open, "f2", O_RDWR | O_CREAT, 0644);
    sc2(SYS_ftruncate, f, PG);
    sc6(SYS_mmap, (long)(M_ + 8 * PG), 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, f, 0);
    sc1(SYS_close, f);
    sc2(SYS_munmap, M_ + 12 * PG, PG);
}

static void write_paths(void) {
    char *at = P_;
    char pid[24];
    int n = 0;
    u64 v = self_pid;
    char rev[24];
    do rev[n++] = (char)('0' + v % 10), v /= 10; while (v);
    for (int i = 0; i < n; i++) pid[i] = rev[n - 1 - i];
    pid[n] = 0;
    for (unsigned i = 0; i < NPATHS; i++) {
        paths[i] = at;
        for (const char *s = path_list[i]; *s;) {
            if (!strncmp(s, "PID", 3)) { memcpy(at, pid, (size_t)n); at += n; s += 3; }
            else *at++ = *s++;
        }
        *at++ = 0;
    }
    static const char *const xattrs[NEXTRA] = {"user.x", "user.fuzz", "trusted.x", "security.x", "system.posix_acl_access",
                                               "", "user.", "nonsense"};
    for (int i = 0; i < NEXTRA; i++) {
        paths[NPATHS + i] = at;
        strcpy(at, xattrs[i]);
        at += strlen(xattrs[i]) + 1;
    }
    odd_path = at; memcpy(at, "\xff\xfe" "f0\n", 6); at += 6;
    abstract_name = at; /* "kmfuzz.<pid>": its own abstract socket name */
    memcpy(at, "kmfuzz.", 7); memcpy(at + 7, pid, (size_t)n); at += 7 + n; *at++ = 0;
    name255 = at; memset(at, 'n', 255); at += 255; *at++ = 0;
    name256 = at; memset(at, 'n', 256); at += 256; *at++ = 0;
    deep_path = at;
    for (int i = 0; i < 300; i++) { *at++ = 'd'; *at++ = '/'; }
    *at++ = 0;
    if (at > P_ + PG) die(2, "paths overflow");
    /* longer than PATH_MAX, in components shorter than NAME_MAX */
    char *lp = P_ + PG;
    memset(lp, 'l', 4300);
    for (int i = 100; i < 4300; i += 100) lp[i] = '/';
    lp[4300] = 0;
    long_path = lp;
    /* the programs that cannot run (exec_path) */
    for (unsigned i = 0; i < sizeof exec_paths / sizeof exec_paths[0]; i++)
        strcpy(P_ + 3 * PG - 512 + 16 * i, exec_paths[i]);
    nonul = P_ + 3 * PG - 32;
    memset((char *)nonul, 'z', 32); /* no NUL before the guard */
}

static void cleanup(void) {
    /* children: reap what is left (they exit at once) */
    for (int i = 0; i < 64 && sc4(SYS_wait4, -1, 0, 1 /* WNOHANG */ | 0x40000000 /* __WALL */, 0) > 0; i++) {}
    sc3(SYS_close_range, FIRST_FD, LOG_FD - 1, 0);
    sc3(SYS_close_range, LOG_FD + 1, ~0U, 0);
    sc1(SYS_chdir, scratch_dir);
    /* limits it may have lowered: soft back to hard */
    for (int r = 1; r < 16; r++) {
        u64 old[2] = {0, 0};
        if (r == RLIMIT_STACK || r == RLIMIT_CORE) continue;
        if (sc4(SYS_prlimit64, 0, r, 0, old) == 0) {
            old[0] = old[1];
            sc4(SYS_prlimit64, 0, r, old, 0);
        }
    }
    sc1(SYS_umask, 022);
    for (int i = 0; i < 16; i++) sc1(SYS_timer_delete, i);
    ipc_remove_all();
    open_fds();
    build_m();
}

static u64 parse(const char *s) {
    char *end;
    u64 v = strtoull(s, &end, 0);
    if (!*s || *end) die(2, "usage: fuzz [-p] [-t] [-T FIRST] [-x] SEED NCALLS [DIR]");
    return v;
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-p")) progress = 1;
        else if (!strcmp(argv[i], "-t")) log_level = 1;
        else if (!strcmp(argv[i], "-x")) log_level = 1, dump_structs = 1;
        else if (!strcmp(argv[i], "-T") && i + 1 < argc) log_level = 1, trace_from = parse(argv[++i]);
        else die(2, "usage: fuzz [-p] [-t] [-T FIRST] [-x] SEED NCALLS [DIR]");
    }
    if (argc - i < 2 || argc - i > 3) die(2, "usage: fuzz [-p] [-t] [-T FIRST] [-x] SEED NCALLS [DIR]");
    u64 seed = parse(argv[i]), ncalls = parse(argv[i + 1]);
    if (argc - i == 3 && sc1(SYS_chdir, argv[i + 2]) != 0) die(2, "cannot enter its directory");
    rng = seed * 0x2545F4914F6CDD1DULL + 1;
    ncalls_table = NCALL_KINDS;

    /* its situation: a session of its own, a copy of stderr for the log, bounded files
     * and descriptors, no core files, and a stack that never needs to grow */
    self_pid = (u64)sc0(SYS_getpid);
    sc0(SYS_setsid);
    sc2(SYS_dup2, 2, LOG_FD);
    if (sc2(SYS_getcwd, scratch_dir, sizeof scratch_dir) < 0) die(2, "getcwd");
    struct rlimit fsize = {1 << 20, 1 << 20}, nofile = {LOG_FD + 12, LOG_FD + 12}, core = {0, 0}, old;
    sc2(SYS_getrlimit, RLIMIT_NOFILE, &old);
    nofile0 = old.rlim_max < 0x7fff0000 ? old.rlim_max : 0x7fff0000;
    sc2(SYS_setrlimit, RLIMIT_FSIZE, &fsize);
    sc2(SYS_setrlimit, RLIMIT_NOFILE, &nofile);
    sc2(SYS_setrlimit, RLIMIT_CORE, &core);
    pretouch_stack();
    heap0 = (u64)sc1(SYS_brk, 0);
    vdso = getauxval(AT_SYSINFO_EHDR);
    __asm__ volatile("mov %%fs:0, %0" : "=r"(saved_fs));

    build_regions();
    write_paths();
    sc2(SYS_mkdir, "d", 0755);
    sc3(SYS_mknod, "fifo", S_IFIFO | 0644, 0);
    sc2(SYS_symlink, "f0", "ln");
    close(sc3(SYS_open, "f1", O_RDWR | O_CREAT, 0644));
    build_m();
    sc3(SYS_close_range, FIRST_FD, LOG_FD - 1, 0);
    open_fds();

    /* every signal that may come has its handler, without SA_RESTART */
    base_act = (struct ksigaction){(u64)on_signal, 0x04000004 /* SA_RESTORER | SA_SIGINFO */, (u64)fuzz_restorer, 0};
    dfl_act = (struct ksigaction){0, 0x04000000, (u64)fuzz_restorer, 0};
    for (int s = 1; s <= 64; s++) restore_signal(s);
    sc4(SYS_rt_sigprocmask, SIG_SETMASK, &empty_set, 0, 8);
    arm_timer();

    for (u64 n = 0; n < ncalls; n++) {
        if (n && n % CLEAN_EVERY == 0) cleanup();
        if (progress && n % 1000 == 0) { puts_("fuzz: "); putu(n, 10); puts_("\n"); flush(); }
        fill_structs();
        struct call c;
        pick(&c);
        int tracing = log_level && n >= trace_from;
        if (tracing) {
            puts_("#"); putu(n, 10); puts_(" "); puts_(c.name); puts_("[");
            putu((u64)c.nr, 10); puts_("](");
            for (int k = 0; k < 6; k++) { if (k) puts_(", "); putarg(c.a[k]); }
            puts_(")\n");
            if (dump_structs) for (int k = 0; k < 6; k++) dump(c.a[k]);
            flush();
        }
        long r;
        if (c.post & R_FORK) {
            sc4(SYS_rt_sigprocmask, SIG_SETMASK, &full_set, 0, 8);
            r = fuzz_forkcall(c.nr, (long)c.a[0], (long)c.a[1], (long)c.a[2], (long)c.a[3], (long)c.a[4]);
            sc4(SYS_rt_sigprocmask, SIG_SETMASK, &empty_set, 0, 8);
        } else {
            r = sc6(c.nr, (long)c.a[0], (long)c.a[1], (long)c.a[2], (long)c.a[3], (long)c.a[4], (long)c.a[5]);
        }
        if (c.post & R_ARCH) {
            sc2(SYS_arch_prctl, 0x1002, saved_fs);
            sc2(SYS_arch_prctl, 0x1001, 0);
            sc2(SYS_arch_prctl, 0x1012, 1);
        }
        if (c.post & R_SIGACT) restore_signal((int)c.a[0]);
        if (c.post & R_MASK) sc4(SYS_rt_sigprocmask, SIG_SETMASK, &empty_set, 0, 8);
        if (c.post & R_TIMER) arm_timer();
        if (c.post & R_MMAP) sc2(SYS_munmap, r, c.a[1]);
        if (c.post & R_MREMAP) sc2(SYS_munmap, r, c.a[2]);
        if (c.post & R_IPC) { /* the slot's object goes; a failure's -errno is an id no object has */
            ipc_remove(c.ipc_kind, c.ipc_slot);
            ipc_ids[c.ipc_kind][c.ipc_slot] = r;
        }
        if ((c.post & R_SHMAT) && r > 0 && !((u64)r >= (u64)M_ && (u64)r < (u64)M_ + M_SIZE))
            sc1(SYS_shmdt, r);
        if (tracing) {
            puts_("  = "); putarg((u64)r); puts_("\n"); flush();
        }
    }
    ipc_remove_all();
    for (int k = 0; k < RO_SIZE; k++)
        if (ro_area[k] != 0xcc) die(3, "its read-only bytes were written");
    if (progress) { puts_("fuzz: done\n"); flush(); }
    sc1(SYS_exit_group, 0);
    return 0;
}
