/* fcntl's notifications and queries: F_NOTIFY with F_SETSIG (a directory's changes as a
 * real-time signal carrying the descriptor), O_ASYNC with F_SETOWN (SIGIO, then F_SETSIG's
 * signal with si_fd and si_band), F_CREATED_QUERY (did this open create the file?) and
 * F_DUPFD_QUERY (are two descriptors one open file?), F_SETOWN_EX to a thread.  The
 * signals are blocked and waited for (no sleep decides anything), and each is pending
 * as soon as the call that caused it returns.  Argument: a directory to create and use. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifndef F_CREATED_QUERY
#define F_CREATED_QUERY (1024 + 4)
#endif
#ifndef F_DUPFD_QUERY
#define F_DUPFD_QUERY (1024 + 3)
#endif

static siginfo_t wait_for(int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    struct timespec limit = {60, 0};  /* a hang guard only */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (sigtimedwait(&s, &si, &limit) < 0) printf("no signal %d: %s\n", sig, strerror(errno));
    return si;
}

static volatile sig_atomic_t attrib_seen;
static void on_attrib(int sig) { (void)sig; attrib_seen = 1; }

/* Is ``sig`` pending now?  Linux queues the signal a call causes before it returns. */
static int pending(int sig) {
    sigset_t s;
    sigpending(&s);
    return sigismember(&s, sig);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp/kt-fnotify";
    char path[512];
    mkdir(dir, 0700);
    int rt = SIGRTMIN + 1;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, rt);
    sigaddset(&s, SIGIO);
    sigprocmask(SIG_BLOCK, &s, NULL);
    snprintf(path, sizeof path, "%s/created", dir);
    unlink(path);
    int fd = open(path, O_CREAT | O_RDWR, 0600);
    printf("F_CREATED_QUERY, a new file: %d\n", fcntl(fd, F_CREATED_QUERY, 0));
    int again = open(path, O_CREAT | O_RDWR, 0600);
    printf("F_CREATED_QUERY, the file again: %d\n", fcntl(again, F_CREATED_QUERY, 0));
    int excl = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
    printf("O_EXCL on it: %d %s\n", excl, excl < 0 ? strerror(errno) : "");
    int d2 = dup(fd);
    int same = fcntl(fd, F_DUPFD_QUERY, d2);
    printf("F_DUPFD_QUERY, a dup: %d, another open: %d\n", same, fcntl(fd, F_DUPFD_QUERY, again));
    int q = fcntl(fd, F_DUPFD_QUERY, 100000);
    printf("F_DUPFD_QUERY, no such descriptor: %d %s\n", q, q < 0 ? strerror(errno) : "");
    close(fd); close(again); close(d2); unlink(path);

    int d = open(dir, O_RDONLY | O_DIRECTORY);
    int set = fcntl(d, F_SETSIG, rt);
    printf("F_SETSIG: %d, F_GETSIG is it: %d\n", set, fcntl(d, F_GETSIG) == rt);
    printf("F_NOTIFY: %d\n", fcntl(d, F_NOTIFY, DN_CREATE | DN_MULTISHOT));
    snprintf(path, sizeof path, "%s/new", dir);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    printf("dnotify: pending as the call returns: %d\n", pending(rt));
    siginfo_t si = wait_for(rt);
    printf("dnotify: the signal %d, si_fd is the directory %d\n", si.si_signo == rt, si.si_fd == d);
    unlink(path);
    close(d);
    rmdir(dir);

    int p[2];
    pipe(p);
    set = fcntl(p[0], F_SETOWN, getpid());
    printf("F_SETOWN: %d, F_GETOWN is us: %d\n", set, fcntl(p[0], F_GETOWN) == getpid());
    printf("O_ASYNC: %d\n", fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK));
    write(p[1], "x", 1);
    printf("SIGIO: pending as the write returns: %d\n", pending(SIGIO));
    si = wait_for(SIGIO);
    printf("SIGIO: %d code %d\n", si.si_signo, si.si_code);
    fcntl(p[0], F_SETSIG, rt);
    write(p[1], "y", 1);
    si = wait_for(rt);
    printf("F_SETSIG's signal: %d code %d band %#lx si_fd is the pipe %d\n", si.si_signo == rt, si.si_code,
           (unsigned long)si.si_band, si.si_fd == p[0]);

    /* F_SETOWN_EX naming this thread (LTP's fcntl31): the signal was lost under km when
     * it came while the thread waited, so the write comes from a child a little later */
    char c;
    while (read(p[0], &c, 1) == 1) {}
    struct f_owner_ex own = {F_OWNER_TID, (pid_t)syscall(SYS_gettid)}, got = {-1, -1};
    printf("F_SETOWN_EX to this thread: %d\n", fcntl(p[0], F_SETOWN_EX, &own));
    fcntl(p[0], F_GETOWN_EX, &got);
    printf("F_GETOWN_EX gives it back: %d\n", got.type == F_OWNER_TID && got.pid == own.pid);
    if (fork() == 0) {
        struct timespec pause = {0, 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
        write(p[1], "z", 1);
        _exit(0);
    }
    si = wait_for(rt);
    printf("the thread's signal: %d si_fd is the pipe %d\n", si.si_signo == rt, si.si_fd == p[0]);

    /* a handler, not a wait (LTP's fcntl38): it runs as the chmod that caused the
     * signal returns, before the next instruction */
    int rt2 = SIGRTMIN + 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_attrib;
    sigaction(rt2, &sa, NULL);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/file", dir);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    d = open(dir, O_RDONLY | O_DIRECTORY);
    fcntl(d, F_SETSIG, rt2);
    fcntl(d, F_NOTIFY, DN_ATTRIB | DN_MULTISHOT);
    int seen = 0;
    for (int i = 0; i < 20; i++) {
        attrib_seen = 0;
        chmod(path, i & 1 ? 0600 : 0640);
        seen += attrib_seen;
    }
    printf("dnotify: the handler ran as chmod returned: %d of 20\n", seen);
    close(d);
    unlink(path);
    rmdir(dir);
    return 0;
}
