/* fork, vfork, execve, wait4/waitid and the process model around them.  One line per
 * check; argv[1] = a writable directory.  Re-executed as "child <mode>" for exec checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SAY(what, cond) printf("%-48s %s\n", what, (cond) ? "ok" : "FAILED")
extern char **environ;
static volatile sig_atomic_t chld;
static void on_chld(int sig) { (void)sig; chld++; }
static void on_usr1(int sig) { (void)sig; }
/* waitpid, again after EINTR: the SIGCHLD handler below has no SA_RESTART, and a child's
 * SIGCHLD for a continue is sent when that child next runs, which may be after the
 * parent's WCONTINUED wait has returned (on a loaded machine, natively as under km):
 * it may then interrupt the parent's next wait, and that child stays a zombie. */
static pid_t wait_child(pid_t pid, int *st, int options) {
    pid_t r;
    while ((r = waitpid(pid, st, options)) == -1 && errno == EINTR) {}
    return r;
}

static int child_mode(int argc, char **argv) {
    const char *mode = argv[2];
    if (!strcmp(mode, "fds")) {  /* argv[3] must be open after exec, argv[4] closed */
        return fcntl(atoi(argv[3]), F_GETFD) >= 0 && fcntl(atoi(argv[4]), F_GETFD) < 0;
    }
    if (!strcmp(mode, "signals")) {  /* caught -> default, ignored stays ignored */
        struct sigaction a, b;
        sigaction(SIGUSR1, NULL, &a); sigaction(SIGUSR2, NULL, &b);
        return (a.sa_handler == SIG_DFL) + 2 * (b.sa_handler == SIG_IGN);
    }
    if (!strcmp(mode, "argv")) return strcmp(argv[0], "custom-argv0") == 0 && argc == 4 && !strcmp(argv[3], "x");
    if (!strcmp(mode, "env")) return getenv("KT_EXEC") && !strcmp(getenv("KT_EXEC"), "yes");
    if (!strcmp(mode, "exe")) {
        char buf[4096] = {0};
        readlink("/proc/self/exe", buf, sizeof buf - 1);
        return !strcmp(buf, argv[3]);
    }
    return 99;
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "child")) return child_mode(argc, argv);
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char self[4096] = {0};
    readlink("/proc/self/exe", self, sizeof self - 1);
    int st;
    /* fork: copies of memory, exit status */
    int x = 5;
    pid_t p = fork();
    if (p == 0) { x = 6; _exit(x); }
    SAY("fork returns the child's pid", p > 0);
    SAY("waitpid: the child's exit status", wait_child(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 6 && x == 5);
    p = fork();
    if (p == 0) { pause(); _exit(0); }
    kill(p, SIGTERM);
    SAY("a child killed by a signal", wait_child(p, &st, 0) == p && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    /* signals sent the moment a child exists, before it could have run at all: none is
     * lost (km ignores SIGPIPE and SIGXFSZ on the host; setting that again in the child
     * discarded the pending signal, and the child paused for good: LTP kill11) */
    static const int early[] = {SIGPIPE, SIGXFSZ, SIGUSR1, SIGALRM};
    int kept = 0;
    for (int i = 0; i < 4; i++) {
        p = fork();
        if (p == 0) { pause(); _exit(0); }
        kill(p, early[i]);
        kept += wait_child(p, &st, 0) == p && WIFSIGNALED(st) && WTERMSIG(st) == early[i];
    }
    SAY("signals sent at once to a new child", kept == 4);
    p = fork();
    if (p == 0) { *(volatile int *)0 = 1; _exit(0); }
    SAY("a child dying of SIGSEGV", wait_child(p, &st, 0) == p && WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    p = fork();
    if (p == 0) { _exit(getppid() == (pid_t)syscall(SYS_getppid) ? 0 : 1); }
    wait_child(p, &st, 0);
    SAY("getppid in the child", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* WNOHANG, waitid, SIGCHLD */
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_chld; sigaction(SIGCHLD, &sa, NULL);
    int pp[2]; pipe(pp);
    p = fork();
    if (p == 0) { char c; read(pp[0], &c, 1); _exit(9); }
    SAY("WNOHANG with a running child", wait_child(p, &st, WNOHANG) == 0);
    write(pp[1], "g", 1);
    close(pp[0]); close(pp[1]);
    siginfo_t si; memset(&si, 0, sizeof si);
    SAY("waitid: pid, code, status", waitid(P_PID, p, &si, WEXITED) == 0 && si.si_pid == p && si.si_code == CLD_EXITED &&
        si.si_status == 9);
    for (int i = 0; i < 100 && !chld; i++) usleep(1000);
    SAY("SIGCHLD reached the handler", chld >= 1);
    SAY("no more children: ECHILD", wait_child(-1, &st, WNOHANG) == -1 && errno == ECHILD);
    /* stopped and continued children */
    p = fork();
    if (p == 0) { for (;;) pause(); }
    kill(p, SIGSTOP);
    SAY("WUNTRACED sees a stopped child", wait_child(p, &st, WUNTRACED) == p && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    kill(p, SIGCONT);
    SAY("WCONTINUED sees it continue", wait_child(p, &st, WCONTINUED) == p && WIFCONTINUED(st));
    kill(p, SIGKILL); wait_child(p, &st, 0);
    /* (in a group of its own: in an orphaned process group, as under a detached job,
     * Linux discards SIGTSTP) */
    p = fork();
    if (p == 0) { setpgid(0, 0); for (;;) pause(); }
    setpgid(p, p);
    kill(p, SIGTSTP);
    SAY("SIGTSTP stops a child: WSTOPSIG is SIGTSTP", wait_child(p, &st, WUNTRACED) == p && WIFSTOPPED(st) &&
        WSTOPSIG(st) == SIGTSTP);
    kill(p, SIGCONT);
    SAY("SIGCONT continues it", wait_child(p, &st, WCONTINUED) == p && WIFCONTINUED(st));
    kill(p, SIGKILL); wait_child(p, &st, 0);
    /* exec: errors come back to the caller */
    errno = 0; execl("/nonexistent/program", "x", NULL);
    SAY("exec of a missing file: ENOENT", errno == ENOENT);
    char path[4096]; snprintf(path, sizeof path, "%s/kt-noexec", dir);
    int f = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644); write(f, "#!/bin/sh\n", 10); close(f);
    errno = 0; execl(path, "x", NULL);
    SAY("exec of a non-executable file: EACCES", errno == EACCES);
    chmod(path, 0755); f = open(path, O_WRONLY | O_TRUNC); write(f, "just text", 9); close(f);
    errno = 0; execl(path, "x", NULL);
    SAY("exec of a text file without #!: ENOEXEC", errno == ENOEXEC);
    unlink(path);
    /* exec: close-on-exec, signals, argv, environment, /proc/self/exe */
    int keep = open("/dev/null", O_RDONLY), drop = open("/dev/null", O_RDONLY | O_CLOEXEC);
    char kbuf[16], dbuf[16]; snprintf(kbuf, sizeof kbuf, "%d", keep); snprintf(dbuf, sizeof dbuf, "%d", drop);
    p = fork();
    if (p == 0) { execl(self, self, "child", "fds", kbuf, dbuf, NULL); _exit(100); }
    wait_child(p, &st, 0);
    SAY("close-on-exec descriptors are closed", WEXITSTATUS(st) == 1);
    close(keep); close(drop);
    sa.sa_handler = on_usr1; sigaction(SIGUSR1, &sa, NULL); signal(SIGUSR2, SIG_IGN);
    p = fork();
    if (p == 0) { execl(self, self, "child", "signals", NULL); _exit(100); }
    wait_child(p, &st, 0);
    SAY("exec: caught -> SIG_DFL, ignored stays ignored", WEXITSTATUS(st) == 3);
    p = fork();
    if (p == 0) { execl(self, "custom-argv0", "child", "argv", "x", NULL); _exit(100); }
    wait_child(p, &st, 0);
    SAY("exec keeps argv[0] as given", WEXITSTATUS(st) == 1);
    p = fork();
    if (p == 0) { char *env[] = { "KT_EXEC=yes", NULL }; execle(self, self, "child", "env", NULL, env); _exit(100); }
    wait_child(p, &st, 0);
    SAY("execle passes the environment", WEXITSTATUS(st) == 1);
    p = fork();
    if (p == 0) { execl("/proc/self/exe", self, "child", "exe", self, NULL); _exit(100); }
    wait_child(p, &st, 0);
    SAY("exec of /proc/self/exe", WEXITSTATUS(st) == 1);
    /* vfork + exec, posix_spawn */
    p = vfork();
    if (p == 0) { execl(self, self, "child", "argv-missing", NULL); _exit(100); }
    SAY("vfork: the parent resumes after the child's exec", wait_child(p, &st, 0) == p && WEXITSTATUS(st) == 99);
    char *sargv[] = { self, "child", "env", NULL }, *senv[] = { "KT_EXEC=yes", NULL };
    SAY("posix_spawn", posix_spawn(&p, self, NULL, NULL, sargv, senv) == 0 && wait_child(p, &st, 0) == p &&
        WEXITSTATUS(st) == 1);
    /* fexecve, and execveat relative to a directory descriptor */
    int efd = open(self, O_RDONLY);
    p = fork();
    if (p == 0) { fexecve(efd, sargv, senv); _exit(100); }
    SAY("fexecve", wait_child(p, &st, 0) == p && WEXITSTATUS(st) == 1);
    close(efd);
    char dirbuf[4096];
    snprintf(dirbuf, sizeof dirbuf, "%s", self);
    char *slash = strrchr(dirbuf, '/');
    *slash = 0;
    int dfd = open(dirbuf, O_RDONLY | O_DIRECTORY);
    p = fork();
    if (p == 0) { syscall(SYS_execveat, dfd, slash + 1, sargv, senv, 0); _exit(100); }
    SAY("execveat relative to a directory", wait_child(p, &st, 0) == p && WEXITSTATUS(st) == 1);
    errno = 0;
    SAY("execveat of a missing name: ENOENT", syscall(SYS_execveat, dfd, "no-such-program", sargv, senv, 0) == -1 &&
        errno == ENOENT);
    close(dfd);
    /* a script */
    snprintf(path, sizeof path, "%s/kt-script", dir);
    f = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0755);
    dprintf(f, "#!%s child\n", self); close(f);
    p = fork();
    if (p == 0) { execl(path, path, NULL); _exit(100); }
    wait_child(p, &st, 0);
    SAY("a #! script runs its interpreter", WIFEXITED(st) && WEXITSTATUS(st) == 99);
    unlink(path);
    /* process groups and sessions */
    p = fork();
    if (p == 0) { _exit(setsid() == getpid() && getsid(0) == getpid() ? 0 : 1); }
    wait_child(p, &st, 0);
    SAY("setsid in a child", WEXITSTATUS(st) == 0);
    p = fork();
    if (p == 0) { pause(); _exit(0); }
    SAY("setpgid/getpgid", setpgid(p, p) == 0 && getpgid(p) == p);
    kill(-p, SIGKILL); wait_child(p, &st, 0);
    SAY("kill of a process group", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    /* SIGCHLD ignored: no zombies; SA_NOCLDSTOP: no SIGCHLD for a stop */
    signal(SIGCHLD, SIG_IGN);
    p = fork();
    if (p == 0) _exit(0);
    errno = 0;
    SAY("SIGCHLD ignored: wait reaps nothing, ECHILD", wait_child(p, &st, 0) == -1 && errno == ECHILD);
    sa.sa_handler = on_chld; sa.sa_flags = SA_NOCLDSTOP; sigaction(SIGCHLD, &sa, NULL);
    p = fork();
    if (p == 0) { for (;;) pause(); }
    chld = 0;
    kill(p, SIGSTOP);
    wait_child(p, &st, WUNTRACED);
    usleep(20000);
    SAY("SA_NOCLDSTOP: no SIGCHLD for a stop", chld == 0 && WIFSTOPPED(st));
    kill(p, SIGKILL); wait_child(p, &st, 0);
    sa.sa_flags = 0; sigaction(SIGCHLD, &sa, NULL);
    /* many forks */
    int good = 0;
    for (int i = 0; i < 20; i++) {
        p = fork();
        if (p == 0) _exit(i);
        if (wait_child(p, &st, 0) == p && WEXITSTATUS(st) == i) good++;
    }
    SAY("20 forks in a row", good == 20);
    return 0;
}
