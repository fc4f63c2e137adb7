/* km's native client for server mode, and the native km front end.
 *
 * As the client `km --serve SOCKET` compiles next to its socket (KM_SOCKET baked in), it
 * sends the program to that server.  As the front end (KM_FRONT, built by `km --native`
 * over the venv's or pip's bin/km) it is the km the user types: it sends the program to
 * the user's own server when one runs (cli/userserver.py says where its socket is),
 * starts that server first when the user opted in once (`km --server on`), and otherwise
 * execs the Python km (KM_PYTHON KM_SCRIPT) at once, which is then a plain direct km.
 * Whenever a server cannot take the program, the Python km starts it directly; that
 * happens only when the server said no, or closed the connection before its "ok": a
 * worker says "ok" before it starts anything, so a program is never started twice.
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
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
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
    if (!args) _exit(125);
    args[0] = KM_PYTHON;
    args[1] = KM_SCRIPT;
    for (int i = 1; i < n; i++) args[i + 1] = argv0[i];
    execv(KM_PYTHON, args);
    fprintf(stderr, "km: cannot run %s: %s (reinstall kontain, then run km --native)\n", KM_PYTHON, strerror(errno));
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

/* A connection to the server at `path`, or -1: none listens there, or it is not this
 * user's (it would get every descriptor of this process). */
static int server_at(const char *path) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) return -1;
    strcpy(addr.sun_path, path);
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -1;
    struct ucred peer;
    socklen_t plen = sizeof peer;
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &plen) != 0 || peer.uid != getuid()) {
        close(sock);
        return -1;
    }
    return sock;
}

#ifdef KM_FRONT
/* km's own commands (and no program at all): the Python km, without asking a server */
static int own_command(const char *a) {
    static const char *const own[] = {"image", "resume", "snapshot", "dump", "--serve", "--server", "--native",
                                      "--help", "-h", "--version", NULL};
    for (int i = 0; own[i]; i++)
        if (strcmp(a, own[i]) == 0) return 1;
    return 0;
}

static int owned_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid();
}

/* The user's server directory, as cli/userserver.py runtime_dir() finds it: in
 * $XDG_RUNTIME_DIR (when it is the user's), else /run/user/UID, else /tmp/kontain-UID. */
static void runtime_dir(char *out, size_t size) {
    const char *x = getenv("XDG_RUNTIME_DIR");
    char run[64];
    snprintf(run, sizeof run, "/run/user/%u", (unsigned)getuid());
    if (x && x[0] == '/' && owned_dir(x))
        snprintf(out, size, "%s/kontain", x);
    else if (owned_dir(run))
        snprintf(out, size, "%s/kontain", run);
    else
        snprintf(out, size, "/tmp/kontain-%u", (unsigned)getuid());
}

/* Did the user opt in (`km --server on`: cli/userserver.py opt_in_file())? */
static int opted_in(void) {
    const char *c = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    char path[4096];
    if (c && c[0] == '/')
        snprintf(path, sizeof path, "%s/kontain/server", c);
    else if (home && home[0] == '/')
        snprintf(path, sizeof path, "%s/.config/kontain/server", home);
    else
        return 0;
    return access(path, F_OK) == 0;
}

/* Start the user's server in the background and connect to it; -1 when that fails (km
 * then starts directly).  Under a lock in the server's directory: of two km starting at
 * once, the second waits, then finds the first one's server. */
static int start_server(const char *dir, const char *path) {
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return -1;
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077)) return -1;
    char lock[4200], log[4200];
    snprintf(lock, sizeof lock, "%s/km.lock", dir);
    snprintf(log, sizeof log, "%s/server.log", dir);
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd < 0) return -1;
    while (flock(lfd, LOCK_EX) != 0)
        if (errno != EINTR) {
            close(lfd);
            return -1;
        }
    int sock = server_at(path); /* started meanwhile by another km */
    int ready[2];
    if (sock >= 0 || pipe2(ready, O_CLOEXEC) != 0) {
        close(lfd);
        return sock;
    }
    pid_t child = fork();
    if (child == 0) {
        /* a daemon: a session of its own, no descriptor of the program's, default signals */
        if (fork() != 0) _exit(0);
        setsid();
        if (chdir("/") != 0) _exit(1);
        /* (the pipe out of the way first: with stdio closed here it could be 0-2, or 3 and close-on-exec) */
        int w = fcntl(ready[1], F_DUPFD, 10);
        int null = open("/dev/null", O_RDWR), err = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
        if (w < 0 || null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(err >= 0 ? err : null, 2) < 0 ||
            dup2(w, 3) < 0)
            _exit(1);
        if (syscall(SYS_close_range, 4u, ~0u, 0u) != 0)
            for (int fd = 4; fd < 1024; fd++) close(fd);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < 65; s++)
            if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
        execl(KM_PYTHON, KM_PYTHON, KM_SCRIPT, "--serve", path, "--ready", "3", (char *)NULL);
        _exit(127);
    }
    close(ready[1]);
    char word[16] = "";
    size_t got = 0;
    while (child > 0 && got < sizeof word - 1) { /* "ready", or the end of a server that failed */
        ssize_t r = read(ready[0], word + got, sizeof word - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(ready[0]);
    if (child > 0)
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
        }
    if (strncmp(word, "ready", 5) == 0) sock = server_at(path);
    close(lfd);
    return sock;
}
#endif

int main(int argc, char **argv) {
    argv0 = argv;
    const char *path = getenv("KM_SERVER");
    int sock = -1;
#ifdef KM_FRONT
    if (argc < 2 || own_command(argv[1])) direct();
    if (path && *path)
        sock = server_at(path); /* the server the user named */
    else {
        char dir[4096], at[4200];
        runtime_dir(dir, sizeof dir);
        snprintf(at, sizeof at, "%s/km.sock", dir);
        sock = server_at(at);
        if (sock < 0 && opted_in()) sock = start_server(dir, at);
    }
#else
    if (!path || !*path) path = KM_SOCKET;
    sock = server_at(path);
#endif
    if (sock < 0) direct();

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
    ssize_t sent = sendmsg(sock, &msg, MSG_NOSIGNAL); /* a server gone: EPIPE, not SIGPIPE */
    size_t total = 8 + len;
    while (sent > 0 && (size_t)sent < total) { /* the rest of a large request */
        size_t off = (size_t)sent - 8;
        ssize_t r = send(sock, buf + off, len - off, MSG_NOSIGNAL);
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
