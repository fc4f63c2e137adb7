/* Signal delivery: handlers, siginfo, masks, sigreturn restoring every register and the
 * FPU state, SA_RESTART, SA_NODEFER, SA_RESETHAND, sigaltstack, faults recovered with
 * siglongjmp, sigsuspend, sigtimedwait, sigqueue, timers.  One line per check. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SAY(what, cond) printf("%-44s %s\n", what, (cond) ? "ok" : "FAILED")

static volatile sig_atomic_t hits, depth, maxdepth, last_sig;
static volatile int last_code, last_pid_ok, last_value;
static volatile void *last_addr;
static volatile uintptr_t handler_sp;
static sigjmp_buf jb;
static int wfd = -1;

static void counting(int sig) { hits++; last_sig = sig; }
static void with_info(int sig, siginfo_t *si, void *uc) {
    (void)uc; hits++; last_sig = sig; last_code = si->si_code; last_pid_ok = si->si_pid == getpid();
    last_value = si->si_value.sival_int; last_addr = si->si_addr;
}
static volatile sig_atomic_t entries;
static void nested(int sig) {
    depth++; entries++; if (depth > maxdepth) maxdepth = depth;
    if (entries < 3) raise(sig);  /* with the signal blocked, it runs after this returns */
    depth--;
}
static void where(int sig) { (void)sig; volatile int x; handler_sp = (uintptr_t)&x; hits++; }
static void jump_out(int sig, siginfo_t *si, void *uc) { (void)uc; last_sig = sig; last_addr = si->si_addr; last_code = si->si_code; siglongjmp(jb, 1); }
static void fpu_trash(int sig) {
    (void)sig; volatile double d = 0;
    for (int i = 1; i < 100; i++) d += sqrt((double)i) * 1.5;
    hits += d > 0;
}
static void feed_pipe(int sig) { (void)sig; hits++; if (wfd >= 0) write(wfd, "z", 1); }

static void on(int sig, void (*h)(int), int flags) {
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = h; sa.sa_flags = flags; sigaction(sig, &sa, NULL);
}
static void on_info(int sig, void (*h)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_sigaction = h; sa.sa_flags = flags | SA_SIGINFO; sigaction(sig, &sa, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    /* a plain handler */
    on(SIGUSR1, counting, 0);
    hits = 0; raise(SIGUSR1);
    SAY("raise runs the handler", hits == 1 && last_sig == SIGUSR1);
    hits = 0; kill(getpid(), SIGUSR1);
    SAY("kill(getpid()) runs it before returning", hits == 1);
    /* siginfo */
    on_info(SIGUSR2, with_info, 0);
    hits = 0; kill(getpid(), SIGUSR2);
    SAY("SA_SIGINFO: si_code SI_USER, si_pid", hits == 1 && last_code == SI_USER && last_pid_ok);
    raise(SIGUSR2);
    SAY("raise gives SI_TKILL", last_code == SI_TKILL);
    sigqueue(getpid(), SIGUSR2, (union sigval){ .sival_int = 4242 });
    SAY("sigqueue carries its value", last_code == SI_QUEUE && last_value == 4242);
    /* registers and FPU state survive a handler */
    on(SIGUSR1, fpu_trash, 0);
    volatile double a = 1.0 / 3.0, b = 0;
    long long r1 = 0x1111111111111111LL, r2 = 0x2222222222222222LL;
    for (int i = 0; i < 10; i++) { b += a; raise(SIGUSR1); r1 += 1; r2 ^= r1; }
    SAY("FPU state survives handlers", fabs(b - 10.0 / 3.0) < 1e-12);
    SAY("integer registers survive handlers", r1 == 0x111111111111111bLL);
    /* masks */
    on(SIGUSR1, counting, 0);
    sigset_t set, old, pend; sigemptyset(&set); sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    hits = 0; raise(SIGUSR1);
    sigpending(&pend);
    SAY("blocked signal stays pending", hits == 0 && sigismember(&pend, SIGUSR1));
    sigprocmask(SIG_SETMASK, &old, NULL);
    SAY("unblocking delivers it", hits == 1);
    /* the handler's own signal is blocked while it runs, unless SA_NODEFER */
    on(SIGUSR1, nested, 0); depth = maxdepth = entries = 0; raise(SIGUSR1);
    SAY("no nesting without SA_NODEFER", maxdepth == 1 && entries == 3);
    on(SIGUSR1, nested, SA_NODEFER); depth = maxdepth = entries = 0; raise(SIGUSR1);
    SAY("nesting with SA_NODEFER", maxdepth == 3 && entries == 3);
    /* SA_RESETHAND */
    on(SIGUSR1, counting, SA_RESETHAND); hits = 0; raise(SIGUSR1);
    struct sigaction now; sigaction(SIGUSR1, NULL, &now);
    SAY("SA_RESETHAND resets to SIG_DFL", hits == 1 && now.sa_handler == SIG_DFL);
    /* sigaltstack */
    stack_t ss = { .ss_sp = malloc(1 << 16), .ss_size = 1 << 16 };
    sigaltstack(&ss, NULL);
    on(SIGUSR2, where, SA_ONSTACK); raise(SIGUSR2);
    SAY("SA_ONSTACK runs on the alternate stack",
        handler_sp > (uintptr_t)ss.ss_sp && handler_sp < (uintptr_t)ss.ss_sp + ss.ss_size);
    on(SIGUSR2, where, 0); raise(SIGUSR2);
    SAY("without SA_ONSTACK: the normal stack",
        !(handler_sp > (uintptr_t)ss.ss_sp && handler_sp < (uintptr_t)ss.ss_sp + ss.ss_size));
    /* faults recovered with siglongjmp */
    on_info(SIGSEGV, jump_out, SA_NODEFER);
    if (!sigsetjmp(jb, 1)) { *(volatile int *)16 = 1; }
    SAY("SIGSEGV handler, si_addr", last_sig == SIGSEGV && last_addr == (void *)16 && last_code == SEGV_MAPERR);
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!sigsetjmp(jb, 1)) { ro[8] = 1; }
    SAY("write to read-only: SEGV_ACCERR", last_sig == SIGSEGV && last_addr == ro + 8 && last_code == SEGV_ACCERR);
    on_info(SIGFPE, jump_out, SA_NODEFER);
    volatile int zero = 0;
    if (!sigsetjmp(jb, 1)) { zero = 5 / zero; }
    SAY("SIGFPE handler: FPE_INTDIV", last_sig == SIGFPE && last_code == FPE_INTDIV);
    on_info(SIGILL, jump_out, SA_NODEFER);
    if (!sigsetjmp(jb, 1)) { __asm__ volatile("ud2"); }
    SAY("SIGILL handler", last_sig == SIGILL);
    on_info(SIGTRAP, jump_out, SA_NODEFER);
    if (!sigsetjmp(jb, 1)) { __asm__ volatile("int3"); }
    SAY("SIGTRAP handler", last_sig == SIGTRAP);
    for (int i = 0; i < 20; i++) if (!sigsetjmp(jb, 1)) { *(volatile int *)(uintptr_t)(0x100 + i) = i; }
    SAY("20 faults in a row", last_sig == SIGSEGV);
    /* a blocked read, interrupted by alarm: EINTR without SA_RESTART ... */
    int p[2]; pipe(p); wfd = p[1];
    on(SIGALRM, feed_pipe, 0);
    struct itimerval it = { .it_value = { 0, 30000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    char c; errno = 0; hits = 0;
    ssize_t n = read(p[0], &c, 1);
    SAY("read interrupted: EINTR without SA_RESTART", n == -1 && errno == EINTR && hits == 1);
    read(p[0], &c, 1);
    /* ... and restarted with it (the handler feeds the pipe, so the restart returns data) */
    on(SIGALRM, feed_pipe, SA_RESTART);
    setitimer(ITIMER_REAL, &it, NULL);
    errno = 0; hits = 0;
    n = read(p[0], &c, 1);
    SAY("read restarted with SA_RESTART", n == 1 && c == 'z' && hits == 1);
    /* nanosleep is never restarted */
    setitimer(ITIMER_REAL, &it, NULL);
    struct timespec req = { 2, 0 }, rem = { 0, 0 };
    errno = 0;
    int s = nanosleep(&req, &rem);
    SAY("nanosleep: EINTR and the time left", s == -1 && errno == EINTR && rem.tv_sec >= 1);
    /* sigsuspend */
    on(SIGALRM, counting, 0);
    sigemptyset(&set); sigaddset(&set, SIGALRM); sigprocmask(SIG_BLOCK, &set, &old);
    setitimer(ITIMER_REAL, &it, NULL);
    sigset_t empty; sigemptyset(&empty); hits = 0;
    s = sigsuspend(&empty);
    sigprocmask(SIG_BLOCK, NULL, &pend);
    SAY("sigsuspend waits, runs the handler, restores the mask", s == -1 && errno == EINTR && hits == 1 &&
        sigismember(&pend, SIGALRM));
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* sigtimedwait */
    sigemptyset(&set); sigaddset(&set, SIGUSR2); sigprocmask(SIG_BLOCK, &set, NULL);
    sigqueue(getpid(), SIGUSR2, (union sigval){ .sival_int = 7 });
    siginfo_t si; struct timespec t0 = { 0, 0 }, t1 = { 0, 50 * 1000 * 1000 };
    s = sigtimedwait(&set, &si, &t0);
    SAY("sigtimedwait takes a pending signal", s == SIGUSR2 && si.si_value.sival_int == 7);
    errno = 0;
    s = sigtimedwait(&set, &si, &t1);
    SAY("sigtimedwait times out with EAGAIN", s == -1 && errno == EAGAIN);
    /* periodic timer */
    on(SIGALRM, counting, SA_RESTART); hits = 0;
    struct itimerval per = { .it_interval = { 0, 10000 }, .it_value = { 0, 10000 } };
    setitimer(ITIMER_REAL, &per, NULL);
    while (hits < 5) pause();
    setitimer(ITIMER_REAL, &(struct itimerval){ 0 }, NULL);
    SAY("a periodic timer, caught by pause()", hits >= 5);
    /* real-time signals queue */
    on(SIGRTMIN + 3, counting, 0);
    sigemptyset(&set); sigaddset(&set, SIGRTMIN + 3); sigprocmask(SIG_BLOCK, &set, &old);
    for (int i = 0; i < 3; i++) sigqueue(getpid(), SIGRTMIN + 3, (union sigval){ .sival_int = i });
    hits = 0; sigprocmask(SIG_SETMASK, &old, NULL);
    SAY("real-time signals queue (3 sent, 3 run)", hits == 3);
    on(SIGUSR1, counting, 0);
    sigemptyset(&set); sigaddset(&set, SIGUSR1); sigprocmask(SIG_BLOCK, &set, &old);
    for (int i = 0; i < 3; i++) raise(SIGUSR1);
    hits = 0; sigprocmask(SIG_SETMASK, &old, NULL);
    SAY("standard signals do not (3 sent, 1 run)", hits == 1);
    return 0;
}
