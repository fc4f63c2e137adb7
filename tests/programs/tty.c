/* Sessions, process groups and the controlling terminal, on a pseudo-terminal:
 * setsid, acquiring a controlling terminal (open and TIOCSCTTY), tcgetpgrp/tcsetpgrp,
 * tcgetsid, a background read stopped by SIGTTIN and resumed in the foreground, an
 * ignored SIGTTIN giving EIO.  One line per check. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define SAY(what, cond) printf("%-52s %s\n", what, (cond) ? "ok" : "FAILED")

static int session_leader(const char *slave, int master) {
    SAY("setsid", setsid() == getpid());
    int fd = open(slave, O_RDWR); /* a session leader without a terminal acquires it */
    SAY("open acquires the controlling terminal", fd >= 0 && tcgetsid(fd) == getpid());
    SAY("TIOCSCTTY on our own terminal", ioctl(fd, TIOCSCTTY, 0) == 0);
    SAY("tcgetpgrp: our group is in the foreground", tcgetpgrp(fd) == getpgrp());
    int st;
    /* a background job reading the terminal is stopped by SIGTTIN */
    pid_t job = fork();
    if (job == 0) {
        setpgid(0, 0);
        char buf[16];
        ssize_t n = read(fd, buf, sizeof buf); /* stops here until it is in the foreground */
        _exit(n == 3 && !memcmp(buf, "hi\n", 3) ? 7 : 1);
    }
    setpgid(job, job);
    SAY("a background read stops the job with SIGTTIN", waitpid(job, &st, WUNTRACED) == job && WIFSTOPPED(st) &&
        WSTOPSIG(st) == SIGTTIN);
    SAY("tcsetpgrp: the job to the foreground", tcsetpgrp(fd, job) == 0 && tcgetpgrp(fd) == job);
    kill(-job, SIGCONT);
    SAY("SIGCONT: it continues", waitpid(job, &st, WCONTINUED) == job && WIFCONTINUED(st));
    write(master, "hi\n", 3);
    SAY("in the foreground its read gets the line", waitpid(job, &st, 0) == job && WIFEXITED(st) &&
        WEXITSTATUS(st) == 7);
    signal(SIGTTOU, SIG_IGN); /* we are in the background now: tcsetpgrp would stop us */
    SAY("tcsetpgrp back to us", tcsetpgrp(fd, getpgrp()) == 0);
    /* with SIGTTIN ignored, a background read fails with EIO */
    job = fork();
    if (job == 0) {
        setpgid(0, 0);
        signal(SIGTTIN, SIG_IGN);
        char c;
        errno = 0;
        _exit(read(fd, &c, 1) == -1 && errno == EIO ? 0 : 1);
    }
    setpgid(job, job);
    SAY("SIGTTIN ignored: a background read fails with EIO", waitpid(job, &st, 0) == job && WIFEXITED(st) &&
        WEXITSTATUS(st) == 0);
    return 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) { perror("pty"); return 2; }
    char slave[64];
    snprintf(slave, sizeof slave, "%s", ptsname(master));
    struct termios tio;
    int s = open(slave, O_RDWR | O_NOCTTY);
    tcgetattr(s, &tio);
    tio.c_lflag &= ~ECHO;
    tcsetattr(s, TCSANOW, &tio);
    close(s);
    pid_t leader = fork();
    if (leader == 0) _exit(session_leader(slave, master));
    int st;
    waitpid(leader, &st, 0);
    SAY("the session leader ends normally", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return 0;
}
