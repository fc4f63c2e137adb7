/* km's native client for server mode: the same request as cli/client.py, without a
 * Python start-up.  `km --serve SOCKET` compiles it next to its socket (with the paths
 * of the Python km baked in, for a direct start when the server cannot take the
 * program) and the user runs it as km.
 *
 * It sends the server its whole situation (arguments, environment, every open
 * descriptor, the working directory, umask, signal mask and ignored signals, resource
 * limits, CPU affinity, groups, namespaces), passes on the signals it gets to the worker
 * that runs the program, and ends as the program ended. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef KM_PYTHON
#define KM_PYTHON "/usr/bin/python3"
#endif
#ifndef KM_SCRIPT
#define KM_SCRIPT "km"
#endif
#ifndef KM_SOCKET
#define KM_SOCKET ""
#endif

#define MAX_FDS 250

extern char **environ;
static pid_t worker;
static char **argv0;

/* A growing buffer of NUL-separated fields. */
static char *buf;
static size_t len, cap;

static void put(const char *s, size_t n) {
    if (len + n + 1 > cap) {
        cap = (len + n + 1) * 2;
        buf = realloc(buf, cap);
        if (!buf) _exit(125);
    }
    memcpy(buf + len, s, n);
    len += n;
    buf[len++] = '\0';
}

static void puts_(const char *s) { put(s, strlen(s)); }

static void putf(const char *fmt, unsigned long long v) {
    char tmp[32];
    put(tmp, (size_t)snprintf(tmp, sizeof tmp, fmt, v));
}

static void direct(void) {
    /* the server cannot take it: km starts the program itself */
    int n = 0;
    while (argv0[n]) n++;
    char **args = calloc((size_t)n + 3, sizeof *args);
    args[0] = KM_PYTHON;
    args[1] = KM_SCRIPT;
    for (int i = 1; i < n; i++) args[i + 1] = argv0[i];
    execv(KM_PYTHON, args);
    fprintf(stderr, "km: %s: %s (the km server's client cannot start km itself)\n", KM_PYTHON, strerror(errno));
    _exit(126);
}

static void forward(int sig) {
    int saved = errno;
    if (worker > 0) kill(worker, sig);
    if (sig == SIGTSTP) raise(SIGSTOP); /* stop with it: the shell sees the job stopped */
    errno = saved;
}

static int line(int fd, char *out, size_t size) {
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read(fd, out + n, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (out[n++] == '\n') break;
    }
    out[n] = '\0';
    return (int)n;
}

int main(int argc, char **argv) {
    argv0 = argv;
    const char *path = getenv("KM_SERVER");
    if (!path || !*path) path = KM_SOCKET;
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (sock < 0 || strlen(path) >= sizeof addr.sun_path) direct();
    strcpy(addr.sun_path, path);
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0) direct();
    /* a server of this user's only: it gets every descriptor of this process */
    struct ucred peer;
    socklen_t plen = sizeof peer;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &plen) != 0 || peer.uid != getuid()) {
        close(sock);
        direct();
    }

    /* descriptors: every open one but the socket, then the working directory */
    int fds[MAX_FDS + 1], nfds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) direct();
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd == sock || fd == dfd) continue;
        if (nfds == MAX_FDS) direct();
        fds[nfds++] = fd;
    }
    closedir(d);
    for (int i = 1; i < nfds; i++) /* in order, as the Python client sends them */
        for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
            int t = fds[j];
            fds[j] = fds[j - 1];
            fds[j - 1] = t;
        }
    int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    puts_("km-request-1");
    putf("%llu", (unsigned long long)(argc - 1));
    for (int i = 1; i < argc; i++) puts_(argv[i]);
    int nenv = 0;
    while (environ[nenv]) nenv++;
    putf("%llu", (unsigned long long)nenv);
    for (int i = 0; i < nenv; i++) puts_(environ[i]);
    mode_t um = umask(0);
    umask(um);
    putf("%llu", um);
    sigset_t set;
    sigprocmask(SIG_BLOCK, NULL, &set);
    unsigned long long mask = 0, ignored = 0;
    for (int s = 1; s <= 64; s++) {
        if (sigismember(&set, s) == 1) mask |= 1ull << (s - 1);
        struct sigaction sa;
        if (s != SIGKILL && s != SIGSTOP && sigaction(s, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            ignored |= 1ull << (s - 1);
    }
    putf("%llu", mask);
    putf("%llu", ignored);
    char dir[4096];
    puts_(getcwd(dir, sizeof dir) ? dir : "");
    static const char *ns[] = {"mnt", "pid", "net", "ipc", "uts", "user", "cgroup"};
    char tmp[512];
    size_t t = 0;
    for (int i = 0; i < 7; i++) {
        char p[64];
        struct stat st;
        snprintf(p, sizeof p, "/proc/self/ns/%s", ns[i]);
        t += (size_t)snprintf(tmp + t, sizeof tmp - t, "%s%llu", i ? "," : "",
                              stat(p, &st) == 0 ? (unsigned long long)st.st_ino : 0ull);
    }
    put(tmp, t);
    gid_t groups[256];
    int ng = getgroups(256, groups);
    char gbuf[256 * 12];
    t = 0;
    for (int i = 0; i < ng; i++) t += (size_t)snprintf(gbuf + t, sizeof gbuf - t, "%s%u", i ? "," : "", groups[i]);
    put(gbuf, t);
    cpu_set_t cpus;
    char cbuf[CPU_SETSIZE * 5];
    t = 0;
    if (sched_getaffinity(0, sizeof cpus, &cpus) == 0)
        for (int c = 0, first = 1; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &cpus)) {
                t += (size_t)snprintf(cbuf + t, sizeof cbuf - t, "%s%d", first ? "" : ",", c);
                first = 0;
            }
    put(cbuf, t);
    char lbuf[16 * 48];
    t = 0;
    for (int r = 0; r < 16; r++) {
        struct rlimit rl;
        long long soft = -2, hard = -2;
        if (getrlimit(r, &rl) == 0) {
            soft = rl.rlim_cur == RLIM_INFINITY ? -1 : (long long)rl.rlim_cur;
            hard = rl.rlim_max == RLIM_INFINITY ? -1 : (long long)rl.rlim_max;
        }
        t += (size_t)snprintf(lbuf + t, sizeof lbuf - t, "%s%lld:%lld", r ? " " : "", soft, hard);
    }
    put(lbuf, t);
    char fbuf[MAX_FDS * 12], ebuf[MAX_FDS * 2];
    size_t tf = 0, te = 0;
    for (int i = 0; i < nfds; i++) {
        int flags = fcntl(fds[i], F_GETFD);
        tf += (size_t)snprintf(fbuf + tf, sizeof fbuf - tf, "%s%d", i ? "," : "", fds[i]);
        te += (size_t)snprintf(ebuf + te, sizeof ebuf - te, "%s%d", i ? "," : "", flags > 0 && (flags & FD_CLOEXEC));
    }
    put(fbuf, tf);
    put(ebuf, te);
    puts_(cwd >= 0 ? "1" : "0");
    len--; /* no NUL after the last field */

    if (cwd >= 0) fds[nfds++] = cwd;
    unsigned long long size = len;
    struct iovec iov[2] = {{&size, 8}, {buf, len}};
    char control[CMSG_SPACE(sizeof(int) * (MAX_FDS + 1))];
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = control,
                         .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
    ssize_t sent = sendmsg(sock, &msg, 0);
    size_t total = 8 + len;
    while (sent > 0 && (size_t)sent < total) { /* the rest of a large request */
        size_t off = (size_t)sent - 8;
        ssize_t r = write(sock, buf + off, len - off);
        if (r <= 0) break;
        sent += r;
    }
    if (cwd >= 0) close(cwd);
    char reply[128];
    if (sent != (ssize_t)total || line(sock, reply, sizeof reply) <= 0 || strncmp(reply, "ok ", 3) != 0) {
        close(sock);
        direct();
    }
    worker = (pid_t)atoi(reply + 3);

    static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCONT, SIGTSTP,
                                    SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR, SIGSYS};
    struct sigaction fw = {.sa_handler = forward};
    for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) {
        struct sigaction old;
        if (sigaction(forwarded[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN) sigaction(forwarded[i], &fw, NULL);
    }
    for (int s = SIGRTMIN; s < 64; s++) {
        struct sigaction old;
        if (sigaction(s, NULL, &old) == 0 && old.sa_handler != SIG_IGN) sigaction(s, &fw, NULL);
    }

    char end[128];
    int sig = SIGKILL; /* no word from the worker: it was killed */
    if (line(sock, end, sizeof end) > 0) {
        if (strncmp(end, "exit ", 5) == 0) _exit(atoi(end + 5));
        if (strncmp(end, "signal ", 7) == 0) sig = atoi(end + 7);
    }
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    _exit(128 + sig);
}
