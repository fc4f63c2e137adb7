/* POSIX message queues (mq_open, mq_unlink, mq_timedsend, mq_timedreceive, mq_notify,
 * mq_getsetattr; LTP's mq_open01, mq_notify01-03, mq_timedsend01, mq_timedreceive01 and
 * mq_unlink01 found them ENOSYS under km): attributes, priorities, timeouts, O_NONBLOCK,
 * a queue shared with a forked child, read() and poll() of a queue, SIGEV_SIGNAL and
 * SIGEV_THREAD notifications, a signal interrupting a wait, and hostile pointers.  Each
 * check prints one line with nothing that differs from run to run, so the km run must
 * print exactly what the native run prints.  The queue's name has the pid in it and is
 * removed before the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VAL(what, v) printf("%-52s %ld\n", what, (long)(v))
#define ERR(what, expr) do { errno = 0; long r_ = (long)(expr); \
    printf("%-52s %ld %s\n", what, r_ < 0 ? -1L : r_, r_ < 0 ? ename(errno) : ""); } while (0)

static const char *ename(int e) {
    switch (e) {
    case 0: return "";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EEXIST: return "EEXIST";
    case ENOENT: return "ENOENT";
    case EAGAIN: return "EAGAIN";
    case EMSGSIZE: return "EMSGSIZE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EINTR: return "EINTR";
    case EBUSY: return "EBUSY";
    case EACCES: return "EACCES";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    default: return "other";
    }
}

static volatile sig_atomic_t got_sig, got_code, got_value;
static void on_usr1(int sig, siginfo_t *si, void *uc) {
    got_sig = sig;
    got_code = si->si_code;
    got_value = si->si_value.sival_int;
}
static void on_alarm(int sig) { (void)sig; }

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int thread_value;
static void on_message(union sigval v) {
    pthread_mutex_lock(&lock);
    thread_value = v.sival_int;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

static struct timespec in_ms(long ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000;
    ts.tv_sec += ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    return ts;
}

int main(void) {
    char name[64], buf[256];
    unsigned prio;
    snprintf(name, sizeof name, "/kt-mqueue-%d", (int)getpid());
    void *wild = (void *)0x400000000000UL;  /* past km's window, and never mapped natively (0x7fff00000000, used before, lies where Linux may put the stack) */
    char *unmapped = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(unmapped, 4096);

    struct mq_attr attr = {.mq_maxmsg = 4, .mq_msgsize = 64}, got;
    ERR("mq_open of a missing queue", mq_open(name, O_RDWR));
    ERR("mq_open O_CREAT with a wild attr", syscall(SYS_mq_open, name + 1, O_RDWR | O_CREAT, 0600, wild));
    ERR("mq_open O_CREAT with mq_maxmsg 0", mq_open(name, O_RDWR | O_CREAT, 0600,
                                                     &(struct mq_attr){.mq_maxmsg = 0, .mq_msgsize = 8}));
    ERR("mq_open with a wild name", syscall(SYS_mq_open, wild, O_RDWR | O_CREAT, 0600, NULL));
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
    VAL("mq_open O_CREAT|O_EXCL", q >= 0);
    ERR("mq_open O_CREAT|O_EXCL again", mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr));
    VAL("close-on-exec", fcntl(q, F_GETFD) & FD_CLOEXEC);
    mq_getattr(q, &got);
    VAL("mq_maxmsg", got.mq_maxmsg);
    VAL("mq_msgsize", got.mq_msgsize);
    VAL("mq_curmsgs", got.mq_curmsgs);
    ERR("mq_getsetattr with a wild new attr", syscall(SYS_mq_getsetattr, q, wild, NULL));
    ERR("mq_getsetattr with a wild old attr", syscall(SYS_mq_getsetattr, q, NULL, wild));
    ERR("mq_getsetattr of a bad descriptor", syscall(SYS_mq_getsetattr, 1000, NULL, &got));

    /* priorities: the highest first, FIFO within one */
    ERR("mq_send prio 1", mq_send(q, "one", 3, 1));
    ERR("mq_send prio 5", mq_send(q, "five", 4, 5));
    ERR("mq_send prio 1 again", mq_send(q, "uno", 3, 1));
    ERR("mq_send too long", mq_send(q, buf, 65, 0));
    ERR("mq_send with a wild message", syscall(SYS_mq_timedsend, q, wild, 8, 0, NULL));
    ERR("mq_send with a wild timeout", syscall(SYS_mq_timedsend, q, "x", 1, 0, wild));
    ERR("mq_send of a bad descriptor", mq_send(1000, "x", 1, 0));
    ERR("mq_send to a non-queue", mq_send(1, "x", 1, 0));
    mq_getattr(q, &got);
    VAL("mq_curmsgs after three", got.mq_curmsgs);
    for (int i = 0; i < 3; i++) {
        memset(buf, 0, sizeof buf);
        long n = mq_receive(q, buf, sizeof buf, &prio);
        printf("%-52s %ld %.*s %u\n", "mq_receive", n, (int)(n > 0 ? n : 0), buf, prio);
    }
    ERR("mq_receive into too small a buffer", mq_receive(q, buf, 63, NULL));
    ERR("mq_send then mq_receive into a wild buffer", (mq_send(q, "lost?", 5, 0),
                                                       syscall(SYS_mq_timedreceive, q, wild, 64, NULL, NULL)));
    /* (a wild buffer is refused before the message is taken: natively it is lost) */
    struct timespec now = {0};
    while (mq_timedreceive(q, buf, sizeof buf, NULL, &now) >= 0) {}
    ERR("mq_send then mq_receive into an unmapped buffer", (mq_send(q, "lost", 4, 0),
                                                           syscall(SYS_mq_timedreceive, q, unmapped, 64, NULL, NULL)));
    mq_getattr(q, &got);
    VAL("mq_curmsgs: the message is lost", got.mq_curmsgs);
    ERR("mq_send then mq_receive with a wild prio", (mq_send(q, "prio", 4, 0),
                                                     syscall(SYS_mq_timedreceive, q, buf, 64, wild, NULL)));
    while (mq_timedreceive(q, buf, sizeof buf, NULL, &now) >= 0) {}

    /* timeouts and O_NONBLOCK */
    struct timespec ts = in_ms(50);
    ERR("mq_timedreceive of an empty queue", mq_timedreceive(q, buf, sizeof buf, NULL, &ts));
    ts.tv_nsec = 1000000000;
    ERR("mq_timedreceive with a bad timeout", mq_timedreceive(q, buf, sizeof buf, NULL, &ts));
    struct mq_attr nb = {.mq_flags = O_NONBLOCK}, old;
    ERR("mq_setattr O_NONBLOCK", mq_setattr(q, &nb, &old));
    VAL("the old flags", old.mq_flags);
    ERR("mq_receive of an empty queue, O_NONBLOCK", mq_receive(q, buf, sizeof buf, NULL));
    for (int i = 0; i < 4; i++) mq_send(q, "fill", 4, 0);
    ERR("mq_send to a full queue, O_NONBLOCK", mq_send(q, "full", 4, 0));
    nb.mq_flags = 0;
    mq_setattr(q, &nb, NULL);
    ts = in_ms(50);
    ERR("mq_timedsend to a full queue", mq_timedsend(q, "full", 4, 0, &ts));

    /* read() and poll() of a queue */
    struct pollfd pfd = {.fd = q, .events = POLLIN | POLLOUT};
    ERR("poll of a full queue", poll(&pfd, 1, 0));
    VAL("revents", pfd.revents);
    memset(buf, 0, sizeof buf);
    ERR("read of the queue", read(q, buf, sizeof buf));
    printf("%-52s %.10s\n", "it says", buf);
    for (int i = 0; i < 4; i++) mq_receive(q, buf, sizeof buf, NULL);
    pfd.revents = 0;
    ERR("poll of an empty queue", poll(&pfd, 1, 0));
    VAL("revents", pfd.revents);

    /* a forked child's message wakes the parent waiting */
    pid_t child = fork();
    if (child == 0) {
        usleep(100000);
        mq_send(q, "from the child", 14, 3);
        _exit(0);
    }
    memset(buf, 0, sizeof buf);
    long n = mq_receive(q, buf, sizeof buf, &prio);
    printf("%-52s %ld %s %u\n", "mq_receive waits for the child", n, buf, prio);
    waitpid(child, NULL, 0);

    /* a signal interrupts a wait */
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_value = {.tv_usec = 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
    ERR("mq_receive interrupted by a handler", mq_receive(q, buf, sizeof buf, NULL));

    /* SIGEV_SIGNAL: one notification, for a message to an empty queue */
    struct sigaction su = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO};
    sigaction(SIGUSR1, &su, NULL);
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1, .sigev_value.sival_int = 42};
    ERR("mq_notify SIGEV_SIGNAL", mq_notify(q, &ev));
    ERR("mq_notify again", mq_notify(q, &ev));
    ERR("mq_notify with a wild sigevent", syscall(SYS_mq_notify, q, wild));
    ev.sigev_notify = 99;
    ERR("mq_notify with a bad sigev_notify", mq_notify(q, &ev));
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = 0;
    ERR("mq_notify with signal 0", syscall(SYS_mq_notify, q, &ev));
    ERR("mq_notify of a bad descriptor", syscall(SYS_mq_notify, 1000, NULL));
    child = fork();
    if (child == 0) {
        mq_send(q, "ping", 4, 0);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    for (int i = 0; i < 200 && !got_sig; i++) usleep(5000);
    VAL("the notification's signal", got_sig);
    VAL("its si_code is SI_MESGQ", got_code == SI_MESGQ);
    VAL("its si_value", got_value);
    mq_receive(q, buf, sizeof buf, NULL);
    ERR("mq_notify removed, registered again", mq_notify(q, &(struct sigevent){.sigev_notify = SIGEV_NONE}));
    ERR("mq_notify(NULL) removes it", mq_notify(q, NULL));

    /* SIGEV_THREAD: the C library's netlink socket gets the kernel's cookie */
    struct sigevent tev = {.sigev_notify = SIGEV_THREAD, .sigev_notify_function = on_message,
                           .sigev_value.sival_int = 7};
    ERR("mq_notify SIGEV_THREAD", mq_notify(q, &tev));
    mq_send(q, "wake a thread", 13, 0);
    pthread_mutex_lock(&lock);
    struct timespec until = in_ms(5000);
    while (!thread_value && pthread_cond_timedwait(&cond, &lock, &until) == 0) {}
    pthread_mutex_unlock(&lock);
    VAL("the thread's value", thread_value);
    struct { long value; int signo, notify; char pad[48]; } raw = {.value = (long)wild, .signo = 0, .notify = 2};
    ERR("SIGEV_THREAD with a wild cookie", syscall(SYS_mq_notify, q, &raw));
    raw.value = (long)buf;
    raw.signo = 1000;
    ERR("SIGEV_THREAD with a bad socket", syscall(SYS_mq_notify, q, &raw));

    ERR("close", close(q));
    ERR("mq_unlink", mq_unlink(name));
    ERR("mq_unlink again", mq_unlink(name));
    ERR("mq_unlink with a wild name", syscall(SYS_mq_unlink, wild));
    return 0;
}
