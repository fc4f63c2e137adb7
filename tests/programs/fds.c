/* The monitor's own descriptors must be invisible: every descriptor the program did not
 * open is closed as far as it can tell, including those just below its hard limit
 * (where km keeps its own), and new descriptors respect the program's limit. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

static int count_open(long from, long to) {
    int n = 0;
    for (long fd = from; fd < to; fd++)
        if (fcntl((int)fd, F_GETFD) >= 0 || errno != EBADF) n++;
    return n;
}

int main(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    long hard = rl.rlim_max > 1 << 20 ? 1 << 20 : (long)rl.rlim_max;
    printf("open among 3..300: %d\n", count_open(3, 300));
    printf("open near the hard limit: %d\n", count_open(hard > 1100 ? hard - 1100 : 300, hard + 16));
    printf("soft <= hard: %d\n", rl.rlim_cur <= rl.rlim_max);
    struct rlimit low = { 64, rl.rlim_max };
    printf("setrlimit 64: %d\n", setrlimit(RLIMIT_NOFILE, &low));
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("soft now %lu\n", (unsigned long)rl.rlim_cur);
    int last = -1;
    for (int i = 0; i < 100; i++) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) { printf("open stops with %s after fd %d\n", errno == EMFILE ? "EMFILE" : "other", last); break; }
        last = fd;
    }
    errno = 0;
    printf("dup2 onto the limit: %d %s\n", dup2(0, 64), errno == EBADF ? "EBADF" : "other");
    errno = 0;
    printf("F_DUPFD at the limit: %d %s\n", fcntl(0, F_DUPFD, 64), errno == EINVAL ? "EINVAL" : "other");
    int p[2];
    errno = 0;
    printf("pipe when full: %d %s\n", pipe(p), errno == EMFILE ? "EMFILE" : "other");
    for (int fd = 3; fd <= last; fd++) close(fd);
    printf("pipe after closing: %d\n", pipe(p));
    printf("pipe fds %d %d\n", p[0], p[1]);
    return 0;
}
