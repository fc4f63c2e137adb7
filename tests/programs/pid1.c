/* A first process of a pid namespace, for the tests of km and krun as one: SIGWINCH
 * leaves a mark file, DIR/winch (DIR: $MARKS, else /tmp); with the argument "term",
 * SIGTERM ends it with status 7.  Every other signal keeps its default action, which
 * a namespace's first process does not take.  DIR/ready says the handlers are in place
 * (a signal before that would find none). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char mark[4096];

static void touch(const char *name) {
    const char *dir = getenv("MARKS");
    snprintf(mark, sizeof mark, "%s/%s", dir ? dir : "/tmp", name);
    int fd = open(mark, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
}

static void winch(int sig) { (void)sig; touch("winch"); }

static void term(int sig) { (void)sig; _exit(7); }

int main(int argc, char **argv) {
    signal(SIGWINCH, winch);
    if (argc > 1 && strcmp(argv[1], "term") == 0) signal(SIGTERM, term);
    touch("ready");
    for (;;) pause();
}
