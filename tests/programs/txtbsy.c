/* ETXTBSY both ways, and execveat's own errors: a file open for writing cannot be
 * executed; a running program's file (or its interpreter's) cannot be opened for
 * writing or truncated while it runs; execveat with AT_SYMLINK_NOFOLLOW refuses a
 * symlink (ELOOP); a lease on such a file broken by a truncate, a watch on it.
 * argv[1]: a writable directory.  "txtbsy run FD" is the program started in a child,
 * waiting until FD (a pipe) closes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long ret(long r) { return r < 0 ? -errno : r; }
#define SHOW(what, expr) printf("%-56s %ld\n", what, ret(expr))
extern char **environ;

static void copy(const char *from, const char *to) {
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) write(out, buf, n);
    close(in);
    close(out);
}

/* exec `path` in a child (argv "txtbsy run FD"): the child's errno, or 0 once it runs */
static int start(const char *path, int *wait_fd, pid_t *pid) {
    int go[2], err[2];
    pipe(go);
    pipe2(err, O_CLOEXEC);
    *pid = fork();
    if (*pid == 0) {
        char fd[16];
        snprintf(fd, sizeof fd, "%d", go[0]);
        close(go[1]);
        char *argv[] = {"txtbsy", "run", fd, NULL};
        execve(path, argv, environ);
        int e = errno;
        write(err[1], &e, sizeof e);
        _exit(127);
    }
    close(go[0]);
    close(err[1]);
    int e = 0;
    read(err[0], &e, sizeof e);  /* nothing: the exec closed it */
    close(err[0]);
    *wait_fd = go[1];
    return e;
}

static void finish(int wait_fd, pid_t pid) {
    close(wait_fd);
    waitpid(pid, NULL, 0);
}

/* execveat's own errors (nothing here runs: each call fails) */
static void execveat_errors(const char *dir, const char *prog, const char *link) {
    char *args[] = {"txtbsy", NULL};
    int rfd = open(prog, O_RDONLY);
    /* execveat: AT_SYMLINK_NOFOLLOW on a symlink is ELOOP; bad flags EINVAL */
    SHOW("execveat AT_SYMLINK_NOFOLLOW of a symlink",
         syscall(SYS_execveat, AT_FDCWD, link, args, environ, AT_SYMLINK_NOFOLLOW));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    SHOW("execveat AT_SYMLINK_NOFOLLOW, relative",
         syscall(SYS_execveat, dfd, "link", args, environ, AT_SYMLINK_NOFOLLOW));
    int lfd = open(link, O_PATH | O_NOFOLLOW);
    SHOW("execveat AT_EMPTY_PATH of an O_PATH symlink",
         syscall(SYS_execveat, lfd, "", args, environ, AT_EMPTY_PATH));
    SHOW("execveat with a bad flag", syscall(SYS_execveat, AT_FDCWD, prog, args, environ, 0x4));
    SHOW("execveat of a directory", syscall(SYS_execveat, dfd, "", args, environ, AT_EMPTY_PATH));
    SHOW("execveat of an empty path without AT_EMPTY_PATH", syscall(SYS_execveat, dfd, "", args, environ, 0));
    SHOW("execveat relative to a file", syscall(SYS_execveat, rfd, "x", args, environ, 0));
    SHOW("execveat relative to a bad descriptor", syscall(SYS_execveat, 999, "x", args, environ, 0));
    SHOW("fexecve of a bad descriptor", syscall(SYS_execveat, 999, "", args, environ, AT_EMPTY_PATH));
}

/* A write lease on an executable file (km looks for a running program there before a
 * write) broken by a child's truncate: the break is a writer's, so the holder cannot keep
 * a read lease (LTP's fcntl33: km's look broke it as a reader's first, and the holder
 * could, when it came before the truncate itself).  Ten rounds: that was a race. */
static void leases(const char *prog) {
    sigset_t io;
    sigemptyset(&io);
    sigaddset(&io, SIGIO);
    sigprocmask(SIG_BLOCK, &io, NULL);
    int kept = 0, signalled = 0;
    for (int round = 0; round < 10; round++) {
        int fd = open(prog, O_RDONLY);
        if (fcntl(fd, F_SETLEASE, F_WRLCK) < 0) {
            printf("write lease: %s\n", strerror(errno));
            close(fd);
            return;
        }
        pid_t pid = fork();
        if (pid == 0) {
            truncate(prog, 0);
            _exit(0);
        }
        struct timespec limit = {60, 0};  /* a hang guard only */
        signalled += sigtimedwait(&io, NULL, &limit) == SIGIO;
        kept += fcntl(fd, F_SETLEASE, F_RDLCK) == 0;
        fcntl(fd, F_SETLEASE, F_UNLCK);
        close(fd);
        waitpid(pid, NULL, 0);
    }
    printf("lease breaks signalled: %d, read leases kept through a truncate: %d\n", signalled, kept);
}

/* What an inotify watch on an executable file sees of an open for writing: that open
 * alone (km's look for a running program opened the file too: LTP's inotify01) */
static void watched(const char *prog) {
    int in = inotify_init1(IN_NONBLOCK);
    inotify_add_watch(in, prog, IN_ALL_EVENTS);
    close(open(prog, O_WRONLY));
    char buf[4096];
    ssize_t n = read(in, buf, sizeof buf);
    printf("inotify events of an open for writing:");
    for (ssize_t i = 0; i < n;) {
        struct inotify_event *ev = (struct inotify_event *)(buf + i);
        printf(" %#x", ev->mask);
        i += sizeof *ev + ev->len;
    }
    printf("\n");
    close(in);
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "run")) {  /* the running program: until its pipe closes */
        char c;
        read(atoi(argv[2]), &c, 1);
        return 0;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    int errors = argc > 2 && !strcmp(argv[1], "execveat");
    const char *dir = argv[errors ? 2 : 1];
    char self[4096] = {0}, prog[4096], link[4096];
    readlink("/proc/self/exe", self, sizeof self - 1);
    snprintf(prog, sizeof prog, "%s/prog", dir);
    snprintf(link, sizeof link, "%s/link", dir);
    copy(self, prog);
    unlink(link);
    symlink(prog, link);
    if (errors) {
        execveat_errors(dir, prog, link);
        unlink(link);
        unlink(prog);
        return 0;
    }

    /* a file open for writing cannot be executed */
    int w = open(prog, O_WRONLY);
    int wait_fd;
    pid_t pid;
    int e = start(prog, &wait_fd, &pid);
    printf("exec of a file open for writing: %s\n", strerror(e));
    finish(wait_fd, pid);
    char *args[] = {"txtbsy", NULL};
    SHOW("execve of it, in this process", execve(prog, args, environ));
    SHOW("execveat of it", syscall(SYS_execveat, AT_FDCWD, prog, args, environ, 0));
    int rfd = open(prog, O_RDONLY);
    SHOW("fexecve of it", syscall(SYS_execveat, rfd, "", args, environ, AT_EMPTY_PATH));
    close(w);
    /* also when opened for writing by another process */
    int p2[2];
    pipe(p2);
    pid_t holder = fork();
    if (holder == 0) {
        int fd = open(prog, O_RDWR);
        close(p2[0]);
        write(p2[1], "x", 1);
        pause();  /* until the parent kills it */
        close(fd);
        _exit(0);
    }
    char c;
    close(p2[1]);
    read(p2[0], &c, 1);
    close(p2[0]);
    e = start(prog, &wait_fd, &pid);
    printf("exec of a file another process has open for writing: %s\n", strerror(e));
    finish(wait_fd, pid);
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);

    /* a running program cannot be opened for writing */
    e = start(prog, &wait_fd, &pid);
    printf("exec of it once closed: %s\n", strerror(e));
    usleep(1000);
    SHOW("open O_WRONLY of a running program", open(prog, O_WRONLY));
    SHOW("open O_RDWR of a running program", open(prog, O_RDWR));
    SHOW("open O_WRONLY|O_TRUNC through a symlink", open(link, O_WRONLY | O_TRUNC));
    SHOW("open O_WRONLY|O_CREAT of a running program", open(prog, O_WRONLY | O_CREAT, 0644));
    SHOW("creat of a running program", creat(prog, 0755));
    SHOW("truncate of a running program", truncate(prog, 0));
    int fd = open(prog, O_RDONLY);
    SHOW("open O_RDONLY of a running program", fd >= 0 ? 0 : -1);
    close(fd);
    SHOW("unlink of a running program", unlink(prog));
    finish(wait_fd, pid);
    copy(self, prog);
    /* ... and once it has ended, it can */
    e = start(prog, &wait_fd, &pid);
    finish(wait_fd, pid);
    fd = open(prog, O_WRONLY);
    SHOW("open O_WRONLY of a program that ended", fd >= 0 ? 0 : -1);
    close(fd);
    /* this process's own file */
    SHOW("open O_WRONLY of /proc/self/exe", open("/proc/self/exe", O_WRONLY));
    SHOW("open O_WRONLY of this program's file", open(self, O_WRONLY));
    leases(prog);
    watched(prog);

    unlink(link);
    unlink(prog);
    return 0;
}
