/* fork when the memory a copy would commit is more than the machine has (the host's
 * heuristic overcommit refuses it: ENOMEM); with argv[1] "spawn" also vfork and
 * posix_spawn, which copy nothing on Linux (under km they are forks of the monitor:
 * docs/known-issues.md).  Two private writable mappings, never touched, each 60% of
 * RAM and swap. */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void reap(const char *what, pid_t pid) {
    int status = 0;
    if (pid < 0) { printf("%s: %s\n", what, strerror(errno)); return; }
    if (pid == 0) _exit(7);
    waitpid(pid, &status, 0);
    printf("%s: a child, status %d\n", what, WEXITSTATUS(status));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sysinfo si;
    sysinfo(&si);
    size_t size = ((si.totalram + si.totalswap) * si.mem_unit / 10 * 6) & ~(size_t)0xFFFFF;
    int mapped = 0;
    for (int i = 0; i < 2; i++)
        mapped += mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED;
    printf("mapped %d of 2\n", mapped);
    reap("fork", fork());
    if (argc < 2 || strcmp(argv[1], "spawn")) return 0;
    reap("vfork", vfork());
    pid_t pid;
    char *args[] = {"true", NULL};
    int r = posix_spawn(&pid, "/bin/true", NULL, NULL, args, environ);
    if (r) printf("posix_spawn: %s\n", strerror(r));
    else { int st; waitpid(pid, &st, 0); printf("posix_spawn: status %d\n", WEXITSTATUS(st)); }
    return 0;
}
