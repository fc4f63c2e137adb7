/* Signal sources: POSIX timers (SIGEV_SIGNAL, SIGEV_THREAD_ID, SIGEV_THREAD, default
 * sigevent), alarm, and signalfd (read, poll, SFD_NONBLOCK, dup, fork).
 * One line per check. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id /* glibc before 2.41 */
#define sigev_notify_thread_id _sigev_un._tid
#endif
#define SAY(what, cond) printf("%-52s %s\n", what, (cond) ? "ok" : "FAILED")

static atomic_int ticks, last_code, last_value, last_tid, thread_fired;
static atomic_int last_timerid;

static void on_tick(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    last_code = si->si_code;
    last_value = si->si_value.sival_int;
    last_tid = (int)syscall(SYS_gettid);
    last_timerid = si->si_timerid;
    ticks++; /* last: another thread waits for it, then reads the rest */
}

static void on_thread_timer(union sigval v) { thread_fired += v.sival_int; }

static atomic_int worker_tid, worker_stop;
static void *worker(void *arg) {
    (void)arg;
    worker_tid = (int)syscall(SYS_gettid);
    while (!worker_stop) usleep(1000);
    return NULL;
}

static void wait_ticks(int n) {
    for (int i = 0; i < 2000 && ticks < n; i++) usleep(1000);
}

/* A timer set to expire long ago, every nanosecond: its first signal carries an overrun
 * count capped at INT_MAX (LTP timer_settime03); the handler reads it and stops the timer. */
static timer_t capped;
static volatile int capped_calls, capped_overrun;

static void on_capped(int sig) {
    (void)sig;
    if (capped_calls++ == 0) {
        capped_overrun = timer_getoverrun(capped);
        struct itimerspec off;
        memset(&off, 0, sizeof off);
        timer_settime(capped, 0, &off, NULL);
    }
}

static int overrun_capped(void) {
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN + 1;
    signal(SIGRTMIN + 1, on_capped);
    struct timespec res;
    if (timer_create(CLOCK_REALTIME, &ev, &capped) != 0 || clock_getres(CLOCK_REALTIME, &res) != 0) return 0;
    int right = 0;
    for (int round = 0; round < 10; round++) {
        struct itimerspec its;
        memset(&its, 0, sizeof its);
        clock_gettime(CLOCK_REALTIME, &its.it_value);
        its.it_value.tv_sec -= 4;  /* 4 s of 1 ns intervals: past INT_MAX */
        its.it_interval.tv_nsec = res.tv_nsec;
        capped_calls = 0;
        timer_settime(capped, TIMER_ABSTIME, &its, NULL);
        while (!capped_calls)
            ;
        right += capped_overrun == 0x7FFFFFFF;
    }
    timer_delete(capped);
    return right == 10;
}

static long ns_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

static sigset_t block_only(int sig) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, NULL);
    return set;
}

/* a SIGEV_SIGNAL timer of signal ``sig`` carrying ``value`` */
static int signal_timer(int sig, int value, timer_t *t) {
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = sig;
    ev.sigev_value.sival_int = value;
    return timer_create(CLOCK_MONOTONIC, &ev, t) == 0;
}

/* does the timer signal ``si`` count between ``least`` and ``most`` expirations? */
static int expirations_within(const siginfo_t *si, long least, long most) {
    long expirations = 1L + si->si_overrun;
    int ok = si->si_code == SI_TIMER && expirations >= least && expirations <= most;
    if (!ok)
        fprintf(stderr, "timer %d: expirations %ld, expected %ld to %ld\n", si->si_value.sival_int, expirations,
                least, most);
    return ok;
}

/* A 2 ms timer whose signal stays blocked for 100 ms: the one signal taken then counts
 * every expiration meanwhile as an overrun (km: the host's count while it left the
 * timer's signals there, added to its own).  Bounds by the program's own clock, read
 * around each step, so a slow or loaded machine changes nothing. */
static int overruns_while_blocked(void) {
    int sig = SIGRTMIN + 3;
    sigset_t set = block_only(sig);
    timer_t t;
    if (!signal_timer(sig, 0, &t)) return 0;
    const long interval = 2000000;
    struct itimerspec its = {{0, interval}, {0, interval}};
    struct timespec t0, pause = {0, 100000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    timer_settime(t, 0, &its, NULL);
    long armed = ns_since(&t0);
    nanosleep(&pause, NULL);
    long before = ns_since(&t0);
    siginfo_t si;
    int got = sigwaitinfo(&set, &si);
    long after = ns_since(&t0);
    timer_delete(t);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    return got == sig && expirations_within(&si, (before - armed) / interval - 1, after / interval + 1);
}

/* Two 2 ms timers and a sigqueue on one real-time signal, blocked for 100 ms: three
 * signals, in the order they came (the timers', then the value's), each timer's counting
 * all of its expirations (km left one timer's later signals on the host behind the
 * other's, and took them back in order). */
static int two_timers_one_signal(void) {
    int sig = SIGRTMIN + 4;
    sigset_t set = block_only(sig);
    timer_t timers[2];
    if (!signal_timer(sig, 1, &timers[0]) || !signal_timer(sig, 2, &timers[1])) return 0;
    const long interval = 2000000;
    struct itimerspec its = {{0, interval}, {0, interval}};
    struct timespec t0, pause = {0, 100000000}, gap = {0, 500000};
    long set_before[2], set_after[2]; /* when each timer was set */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 2; i++) {
        if (i) nanosleep(&gap, NULL); /* the second expires after the first */
        set_before[i] = ns_since(&t0);
        timer_settime(timers[i], 0, &its, NULL);
        set_after[i] = ns_since(&t0);
    }
    nanosleep(&pause, NULL);
    union sigval v = {.sival_int = 3};
    sigqueue(getpid(), sig, v);
    long before = ns_since(&t0);
    siginfo_t si[3];
    int ok = 1;
    for (int i = 0; i < 3; i++)
        ok &= sigwaitinfo(&set, &si[i]) == sig && si[i].si_value.sival_int == i + 1;
    long after = ns_since(&t0);
    timer_delete(timers[0]);
    timer_delete(timers[1]);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    for (int i = 0; i < 2 && ok; i++)
        ok &= expirations_within(&si[i], (before - set_after[i]) / interval - 1,
                                 (after - set_before[i]) / interval + 1);
    return ok && si[2].si_code == SI_QUEUE;
}

/* A timer's SIGALRM while a SIGALRM from kill() is pending: one signal (a standard
 * one does not queue), and the timer's next expiration is a signal of its own (km
 * counted every later one as an overrun of a signal it never queued). */
static int timer_behind_a_pending_standard_signal(void) {
    sigset_t set = block_only(SIGALRM);
    kill(getpid(), SIGALRM);
    timer_t t;
    if (!signal_timer(SIGALRM, 0, &t)) return 0;
    struct itimerspec its = {{0, 5000000}, {0, 5000000}};
    struct timespec pause = {0, 30000000}, wait = {10, 0};
    timer_settime(t, 0, &its, NULL);
    nanosleep(&pause, NULL);
    siginfo_t first, second;
    int ok = sigtimedwait(&set, &first, &wait) == SIGALRM && first.si_code == SI_USER &&
             sigtimedwait(&set, &second, &wait) == SIGALRM && second.si_code == SI_TIMER;
    timer_delete(t);
    sigtimedwait(&set, &second, &(struct timespec){0, 0}); /* (one of the deleted timer's) */
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    return ok;
}

/* ITIMER_PROF and ITIMER_VIRTUAL measure the process's CPU time, and Linux sends their
 * signal to the thread that spent it (the one running when the timer expires): a
 * profiler (Go's pprof, gperftools) samples that thread.  Here a thread spins, at Go's
 * 100 samples a second, while the main one waits for it: (almost) every signal must
 * reach the spinner (Go's runtime tests found km giving them all to the main thread). */
#define CPU_SAMPLES 30
static atomic_int spinner_tid, spin_stop, on_spinner, elsewhere;
static void catch_with(int sig, void (*handler)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(sig, &sa, NULL);
}
static void on_cpu_timer(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)si; (void)uc;
    if ((int)syscall(SYS_gettid) == spinner_tid) on_spinner++;
    else elsewhere++;
    if (on_spinner + elsewhere >= CPU_SAMPLES) spin_stop = 1;
}
static void *spinner(void *arg) {
    (void)arg;
    spinner_tid = (int)syscall(SYS_gettid);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do clock_gettime(CLOCK_MONOTONIC, &now);
    while (!spin_stop && now.tv_sec - start.tv_sec < 30);
    return NULL;
}
static int cpu_timer_to_the_spender(int which, int sig) {
    catch_with(sig, on_cpu_timer);
    on_spinner = elsewhere = spin_stop = 0;
    struct itimerval it = {{0, 10000}, {0, 10000}}, off = {{0, 0}, {0, 0}};
    setitimer(which, &it, NULL);
    pthread_t th;
    pthread_create(&th, NULL, spinner, NULL);
    pthread_join(th, NULL);
    setitimer(which, &off, NULL);
    signal(sig, SIG_IGN);
    if (getenv("KT_VERBOSE")) printf("%d on the spinner, %d elsewhere\n", on_spinner, elsewhere);
    return on_spinner + elsewhere >= CPU_SAMPLES && elsewhere * 5 <= on_spinner;
}

/* A thread's own CPU timer (CLOCK_THREAD_CPUTIME_ID, SIGEV_THREAD_ID) and ITIMER_PROF,
 * both on SIGPROF, as Go's profiler sets them: each counts for itself, one signal per
 * expiration of the thread's timer (km once made the itimer's signal the thread's own,
 * where it met the timer's, and lost ~40% of them). */
static atomic_int own_timer_signals;
static void on_own_timer(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    if (si->si_code == SI_TIMER) own_timer_signals++;
}
static void *timed_spinner(void *arg) {
    double *spent = arg;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGPROF;
    ev.sigev_notify_thread_id = (int)syscall(SYS_gettid);
    timer_t t;
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &t) != 0) return NULL;
    struct itimerspec its = {{0, 10000000}, {0, 10000000}}, off;
    memset(&off, 0, sizeof off);
    struct timespec cpu0, cpu1, start, now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
    timer_settime(t, 0, &its, NULL);
    clock_gettime(CLOCK_MONOTONIC, &start);
    do clock_gettime(CLOCK_MONOTONIC, &now);
    while (own_timer_signals < CPU_SAMPLES && now.tv_sec - start.tv_sec < 30);
    timer_settime(t, 0, &off, NULL);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    timer_delete(t);
    *spent = (double)(cpu1.tv_sec - cpu0.tv_sec) + (cpu1.tv_nsec - cpu0.tv_nsec) / 1e9;
    return NULL;
}
static int thread_timer_beside_itimer(void) {
    catch_with(SIGPROF, on_own_timer);
    own_timer_signals = 0;
    struct itimerval it = {{0, 10000}, {0, 10000}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &it, NULL);
    double spent = 0;
    pthread_t th;
    pthread_create(&th, NULL, timed_spinner, &spent);
    pthread_join(th, NULL);
    setitimer(ITIMER_PROF, &off, NULL);
    signal(SIGPROF, SIG_IGN);
    int expected = (int)(spent * 100);
    if (getenv("KT_VERBOSE")) printf("%d of the thread's timer's signals in %.3f s of its CPU\n", own_timer_signals, spent);
    return own_timer_signals >= CPU_SAMPLES && own_timer_signals * 10 >= expected * 8;
}

/* kill()s of SIGALRM from another process while a SIGALRM is pending (a timer's, or
 * one the program sent itself): merged into it, as a standard signal does not queue
 * (km left them on the host while it was pending, and they must not come after it). */
static int kills_behind_a_pending_sigalrm(int from_timer) {
    sigset_t set = block_only(SIGALRM);
    timer_t t;
    struct itimerspec its = {{0, 2000000}, {0, 2000000}};
    struct timespec pause = {0, 50000000}, none = {0, 0}, wait = {10, 0};
    if (from_timer) {
        if (!signal_timer(SIGALRM, 0, &t)) return 0;
        timer_settime(t, 0, &its, NULL);
        nanosleep(&pause, NULL); /* its signal pending, and more expirations */
    } else {
        kill(getpid(), SIGALRM);
    }
    pid_t parent = getpid(), child = fork();
    if (child == 0) {
        for (int i = 0; i < 3; i++) kill(parent, SIGALRM);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    siginfo_t si;
    int ok = sigtimedwait(&set, &si, &wait) == SIGALRM && si.si_code == (from_timer ? SI_TIMER : SI_USER) &&
             (from_timer || si.si_pid == parent);
    if (from_timer) timer_delete(t);
    if (sigtimedwait(&set, &si, &none) == SIGALRM) /* (a deleted timer's may be) */
        ok &= si.si_code == SI_TIMER;
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    return ok;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_tick;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);

    /* SIGEV_SIGNAL, periodic */
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    ev.sigev_value.sival_int = 77;
    timer_t t1;
    SAY("timer_create SIGEV_SIGNAL", timer_create(CLOCK_MONOTONIC, &ev, &t1) == 0);
    struct itimerspec its = {{0, 5000000}, {0, 5000000}}, cur;
    SAY("timer_settime periodic 5 ms", timer_settime(t1, 0, &its, NULL) == 0);
    wait_ticks(3);
    SAY("3 ticks: SI_TIMER, si_value, si_timerid", ticks >= 3 && last_code == SI_TIMER && last_value == 77 &&
        last_timerid == (int)(long)t1);
    SAY("timer_gettime: running, interval kept", timer_gettime(t1, &cur) == 0 && cur.it_interval.tv_nsec == 5000000);
    SAY("timer_getoverrun", timer_getoverrun(t1) >= 0);
    SAY("timer_delete", timer_delete(t1) == 0);
    errno = 0;
    SAY("a deleted timer: EINVAL", timer_settime(t1, 0, &its, NULL) == -1 && errno == EINVAL);

    SAY("overrun of a timer set long ago: capped at INT_MAX", overrun_capped());
    SAY("expirations while blocked: one signal's overruns", overruns_while_blocked());
    int in_order = 1;
    for (int round = 0; round < 5; round++) /* (a copy of a deleted timer's signal once came after) */
        in_order &= two_timers_one_signal();
    SAY("two timers and a sigqueue on one signal: in order", in_order);
    SAY("a timer behind a pending SIGALRM: its next is its own", timer_behind_a_pending_standard_signal());
    SAY("kill()s behind a pending timer's SIGALRM: merged", kills_behind_a_pending_sigalrm(1));
    SAY("kill()s behind a pending SIGALRM of kill(): merged", kills_behind_a_pending_sigalrm(0));
    SAY("ITIMER_PROF: to the thread that spends the CPU", cpu_timer_to_the_spender(ITIMER_PROF, SIGPROF));
    SAY("ITIMER_VIRTUAL: to the thread that spends the CPU", cpu_timer_to_the_spender(ITIMER_VIRTUAL, SIGVTALRM));
    SAY("a thread's CPU timer beside ITIMER_PROF: none lost", thread_timer_beside_itimer());

    /* default sigevent: SIGALRM carrying the timer id */
    timer_t t2;
    ticks = 0;
    SAY("timer_create with no sigevent", timer_create(CLOCK_REALTIME, NULL, &t2) == 0);
    struct itimerspec once = {{0, 0}, {0, 2000000}};
    timer_settime(t2, 0, &once, NULL);
    wait_ticks(1);
    SAY("... sends SIGALRM, SI_TIMER", ticks == 1 && last_code == SI_TIMER);
    timer_delete(t2);

    /* SIGEV_THREAD_ID: the signal goes to that thread */
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    while (!worker_tid) usleep(1000);
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL); /* not this thread */
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGUSR2;
    ev.sigev_notify_thread_id = worker_tid;
    ticks = 0;
    timer_t t3;
    SAY("timer_create SIGEV_THREAD_ID", timer_create(CLOCK_MONOTONIC, &ev, &t3) == 0);
    timer_settime(t3, 0, &once, NULL);
    wait_ticks(1);
    SAY("... the handler runs in that thread", ticks == 1 && last_tid == worker_tid);
    timer_delete(t3);
    worker_stop = 1;
    pthread_join(th, NULL);
    pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
    ev.sigev_notify_thread_id = 999999;
    errno = 0;
    SAY("SIGEV_THREAD_ID of no thread of ours: EINVAL", timer_create(CLOCK_MONOTONIC, &ev, &t3) == -1 &&
        errno == EINVAL);

    /* SIGEV_THREAD: the C library's helper thread */
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = on_thread_timer;
    ev.sigev_value.sival_int = 5;
    timer_t t4;
    SAY("timer_create SIGEV_THREAD", timer_create(CLOCK_MONOTONIC, &ev, &t4) == 0);
    timer_settime(t4, 0, &once, NULL);
    for (int i = 0; i < 2000 && !thread_fired; i++) usleep(1000);
    SAY("... the function runs", thread_fired == 5);
    /* the raw call with SIGEV_THREAD: the kernel takes it as SIGEV_SIGNAL (LTP's
     * timer_create01; km said EINVAL) */
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_signo = SIGUSR2;
    int raw = -1;
    SAY("raw timer_create SIGEV_THREAD", syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &raw) == 0);
    SAY("... deleted", syscall(SYS_timer_delete, raw) == 0);
    timer_delete(t4);

    /* alarm */
    ticks = 0;
    alarm(1);
    SAY("alarm pending", alarm(1) == 1);
    alarm(0);
    SAY("alarm(0) cancels", ticks == 0);

    /* signalfd */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGRTMIN + 2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    SAY("signalfd", sfd >= 0);
    struct pollfd pf = {sfd, POLLIN, 0};
    SAY("poll: nothing pending", poll(&pf, 1, 0) == 0);
    kill(getpid(), SIGUSR1);
    union sigval v = {.sival_int = 31};
    sigqueue(getpid(), SIGRTMIN + 2, v);
    sigqueue(getpid(), SIGRTMIN + 2, v);
    SAY("poll: readable once signals are pending", poll(&pf, 1, 1000) == 1 && pf.revents == POLLIN);
    struct signalfd_siginfo si[4];
    ssize_t n = read(sfd, si, sizeof si);
    SAY("read: three records", n == 3 * (ssize_t)sizeof si[0]);
    SAY("SIGUSR1 first: ssi_code SI_USER, ssi_pid", si[0].ssi_signo == SIGUSR1 && si[0].ssi_code == SI_USER &&
        si[0].ssi_pid == (unsigned)getpid());
    SAY("queued real-time signals carry their value", si[1].ssi_signo == (unsigned)SIGRTMIN + 2 &&
        si[1].ssi_code == SI_QUEUE && si[1].ssi_int == 31 && si[2].ssi_int == 31);
    sigset_t pend;
    sigpending(&pend);
    SAY("read takes them: none pending", !sigismember(&pend, SIGUSR1) && !sigismember(&pend, SIGRTMIN + 2));
    errno = 0;
    SAY("a short buffer: EINVAL", read(sfd, si, 10) == -1 && errno == EINVAL);
    int nb = signalfd(-1, &set, SFD_NONBLOCK);
    errno = 0;
    SAY("SFD_NONBLOCK: EAGAIN when empty", nb >= 0 && read(nb, si, sizeof si) == -1 && errno == EAGAIN);
    close(nb);
    int dupfd = dup(sfd);
    raise(SIGUSR1);
    SAY("a dup reads the same signals", read(dupfd, si, sizeof si) == sizeof si[0] && si[0].ssi_signo == SIGUSR1);
    close(dupfd);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd2 = signalfd(sfd, &set, 0);
    raise(SIGUSR2);
    SAY("signalfd on an existing fd changes its mask", sfd2 == sfd && read(sfd, si, sizeof si) == sizeof si[0] &&
        si[0].ssi_signo == SIGUSR2);
    pid_t p = fork();
    if (p == 0) {
        raise(SIGUSR1);
        _exit(read(sfd, si, sizeof si) == sizeof si[0] && si[0].ssi_signo == SIGUSR1 ? 0 : 1);
    }
    int st;
    waitpid(p, &st, 0);
    SAY("a forked child reads its own signals", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* a blocking read waits for a signal from another process */
    p = fork();
    if (p == 0) { usleep(20000); kill(getppid(), SIGUSR2); _exit(0); }
    n = read(sfd, si, sizeof si);
    SAY("a blocking read waits for a signal", n == sizeof si[0] && si[0].ssi_signo == SIGUSR2 &&
        si[0].ssi_pid == (unsigned)p);
    waitpid(p, &st, 0);
    /* SIGCHLD may be pending too (not in the mask): it does not show */
    SAY("close", close(sfd) == 0);
    errno = 0;
    SAY("signalfd on a non-signalfd: EINVAL", signalfd(1, &set, 0) == -1 && errno == EINVAL);
    return 0;
}
