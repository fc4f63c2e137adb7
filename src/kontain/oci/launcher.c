/* krun-native: krun's verbs that go to crun unchanged, without starting Python.

   A container engine runs its runtime three or more times per container (podman:
   create, start, delete), and each run of the Python krun costs an interpreter start
   (~17 ms here) before it hands the verb to crun.  Most verbs (start, state, kill,
   delete, ps, list, pause, resume, update, spec, checkpoint, restore) reach crun as they
   came, only with krun's state directory as crun's --root: this program does exactly
   that, and runs the Python krun (KRUN_PYTHON with KRUN_BOOT, baked in when it is built
   by `krun launcher`) for everything else: create, run, exec, features, help, version,
   --debug, an option it does not know, and crun not found (the Python krun then says
   what to do).  What it passes on must stay what oci/cli.py passes on; start waits, as
   krun's does, until the program runs (oci/ready.py), and delete removes the FIFO that
   wait uses.

   Built with: cc -O2 -DKRUN_PYTHON='"..."' -DKRUN_SCRIPT='"..."' -DKRUN_BOOT='"..."' launcher.c */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef KRUN_PYTHON
#error "KRUN_PYTHON: the Python that runs krun"
#endif
#ifndef KRUN_SCRIPT
#error "KRUN_SCRIPT: the krun script"
#endif
#ifndef KRUN_BOOT
#error "KRUN_BOOT: the Python code that starts krun (oci/launcher.py)"
#endif

static const char *const global_value[] = {"--root", "--log", "--log-format", "--criu", "--cgroup-manager",
                                           "--rootless", NULL};
static const char *const global_flag[] = {"--debug", "--systemd-cgroup", NULL};
static const char *const passed[] = {"start", "state", "kill", "delete", "ps", "list", "spec", "pause",
                                     "resume", "update", "checkpoint", "restore", NULL};
static const char *const candidates[] = {"/usr/bin/crun", "/usr/local/bin/crun", "/usr/sbin/crun", "/bin/crun",
                                         NULL};

static int among(const char *s, size_t n, const char *const *list) {
    for (; *list; list++)
        if (strlen(*list) == n && strncmp(s, *list, n) == 0)
            return 1;
    return 0;
}

/* The Python krun, started as `python -I -S -c KRUN_BOOT ARGS...`: KRUN_BOOT sets the
   module path `krun launcher` saw (site-packages, an editable install's source) and runs
   krun's main.  Without -S the interpreter imports site and runs every .pth file of the
   environment first, ~3.5 ms of CPU on each create and exec (docs/performance.md). */
static void python(char **argv) {
    int argc = 0;
    while (argv[argc])
        argc++;
    char **args = calloc(argc + 5, sizeof(char *));
    if (args == NULL)
        _exit(1);
    args[0] = KRUN_PYTHON;
    args[1] = "-I";
    args[2] = "-S";
    args[3] = "-c";
    args[4] = KRUN_BOOT;
    for (int i = 1; i < argc; i++)
        args[i + 4] = argv[i];
    execv(KRUN_PYTHON, args);
    dprintf(2, "krun: cannot run %s (rebuild the launcher: krun launcher -o %s)\n", KRUN_PYTHON, argv[0]);
    _exit(1);
}

/* crun's path as oci/crun.py finds it: $KRUN_CRUN, PATH, then where packages put it;
   NULL when there is none (the Python krun reports that). */
static char *find_crun(void) {
    static char buf[4096];
    const char *chosen = getenv("KRUN_CRUN");
    if (chosen && *chosen)
        return (char *)chosen;
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        if (n > 0 && n + 6 < sizeof buf) {
            memcpy(buf, path, n);
            memcpy(buf + n, "/crun", 6);
            if (access(buf, X_OK) == 0)
                return buf;
        }
        path = end ? end + 1 : NULL;
    }
    for (const char *const *c = candidates; *c; c++)
        if (access(*c, X_OK) == 0)
            return (char *)*c;
    return NULL;
}

/* The FIFO krun create made for container ID (oci/ready.py): ROOT/.krun-ready-ID, or
   NULL for an id crun refuses anyway. */
static char *ready_path(const char *root, const char *id) {
    if (id == NULL || *id == '\0' || strchr(id, '/') || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return NULL;
    char *path = malloc(strlen(root) + strlen(id) + 16);
    if (path != NULL)
        sprintf(path, "%s/.krun-ready-%s", root, id);
    return path;
}

/* Wait until the FIFO has no writer: km closed it right before the program's first
   instruction, or died (oci/ready.py wait; WAIT_LIMIT seconds at most). */
static void wait_ready(int fd) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    char buf[64];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = 120000 - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left <= 0)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, (int)left + 1);
    }
    close(fd);
}

/* End by signal SIG, as the crun whose parent this was did (oci/cli.py die_like): an
   engine waiting for start must see crun's own end ("signal: broken pipe" when crun 1.8
   dies of SIGPIPE writing the state to a poststart hook that is gone), not an exit
   status 128+n.  No core file of our own; 128+n only for a signal that does not end a
   process by default. */
static void die_like(int sig) {
    struct rlimit core;
    if (getrlimit(RLIMIT_CORE, &core) == 0) {
        core.rlim_cur = 0;
        setrlimit(RLIMIT_CORE, &core);
    }
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    kill(getpid(), sig);
    _exit(128 + sig);
}

/* start: crun's, then the wait for the program (oci/cli.py Krun.start does the same);
   delete: crun's, once the FIFO a create may have left is gone. */
static void start_or_delete(char *crun, char **out, const char *verb, const char *root, const char *id) {
    char *path = ready_path(root, id);
    if (path == NULL)
        return;
    if (strcmp(verb, "delete") == 0) {
        unlink(path);
        return;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return; /* (a container without one: crun's start alone) */
    unlink(path);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return;
    }
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        signal(SIGXFSZ, SIG_DFL);
        execv(crun, out);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            _exit(1);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        wait_ready(fd);
    if (WIFSIGNALED(status))
        die_like(WTERMSIG(status));
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

int main(int argc, char **argv) {
    (void)argc;
    char **out = calloc(argc + 3, sizeof(char *));
    if (out == NULL)
        return 1;
    int n = 1; /* out[0]: crun; out[1]: --root=... */
    const char *root = NULL;
    int i = 1;
    for (; argv[i] && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (among(a, len, global_value)) {
            const char *value = eq ? eq + 1 : argv[i + 1];
            if (value == NULL)
                python(argv);
            if (!eq)
                i++;
            if (len == 6 && strncmp(a, "--root", 6) == 0) {
                root = value;
                continue;
            }
            if (len == 6 && strncmp(a, "--criu", 6) == 0)
                continue;
            char *opt = malloc(len + strlen(value) + 2);
            if (opt == NULL)
                return 1;
            sprintf(opt, "%.*s=%s", (int)len, a, value);
            out[++n] = opt;
        } else if (among(a, len, global_flag) && !eq) {
            if (strcmp(a, "--debug") == 0)
                python(argv); /* (krun logs what it runs) */
            out[++n] = (char *)a;
        } else {
            python(argv); /* --help, --version, or an error to report */
        }
    }
    if (argv[i] == NULL || !among(argv[i], strlen(argv[i]), passed))
        python(argv);
    char *crun = find_crun();
    if (crun == NULL)
        python(argv);
    char rootbuf[4096];
    if (root == NULL || *root == '\0') {
        if (geteuid() == 0) {
            root = "/run/krun";
        } else {
            const char *xdg = getenv("XDG_RUNTIME_DIR");
            if (xdg && *xdg)
                snprintf(rootbuf, sizeof rootbuf, "%s/krun", xdg);
            else
                snprintf(rootbuf, sizeof rootbuf, "/run/user/%u/krun", (unsigned)geteuid());
            root = rootbuf;
        }
    }
    char *rootopt = malloc(strlen(root) + 8);
    if (rootopt == NULL)
        return 1;
    sprintf(rootopt, "--root=%s", root);
    out[0] = crun;
    out[1] = rootopt;
    const char *verb = argv[i], *id = NULL;
    for (int first = i; argv[i]; i++) {
        out[++n] = argv[i];
        if (i > first && argv[i][0] != '-')
            id = argv[i]; /* (start and delete: the id is the last argument) */
    }
    out[n + 1] = NULL;
    if (strcmp(verb, "start") == 0 || strcmp(verb, "delete") == 0)
        start_or_delete(crun, out, verb, root, id);
    signal(SIGPIPE, SIG_DFL); /* (as oci/crun.py: what crun inherits is the engine's, and the default) */
    signal(SIGXFSZ, SIG_DFL);
    execv(crun, out);
    python(argv); /* (crun cannot run: the Python krun says why, in the engine's log) */
    return 1;
}
