/* fork + exec + wait, N times: what a shell or a supervisor pays to run a helper.
 * Usage: spawn N PROGRAM [ARGS...]; the children's stdout goes to /dev/null. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: spawn N PROGRAM [ARGS...]\n");
        return 2;
    }
    long n = atol(argv[1]), ok = 0;
    for (long i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            execv(argv[2], argv + 2);
            _exit(127);
        }
        int st;
        if (p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0) ok++;
    }
    printf("%ld of %ld ran\n", ok, n);
    return ok == n ? 0 : 1;
}
