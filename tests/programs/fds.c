/* The monitor's own descriptors must be invisible: every descriptor the program did not
 * open is closed as far as it can tell, including those just below its hard limit
 * (where km keeps its own), and new descriptors respect the program's limit.  At the
 * limit, a call that would make a descriptor fails with EMFILE before it does anything
 * else: no file created or truncated, no queue made, no connection taken (LTP's
 * mq_open01: km made the queue, then closed its descriptor). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHOW(what, call) do { errno = 0; int r_ = (int)(call); int e_ = errno; \
    printf("%s: %d %s\n", what, r_, e_ == EMFILE ? "EMFILE" : e_ == EINVAL ? "EINVAL" : e_ == EBADF ? "EBADF" : \
           e_ == ENOENT ? "ENOENT" : e_ ? "other" : ""); } while (0)

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
    char dir[] = "/tmp/kt-fds-XXXXXX", made[64], full[64], qname[64];
    mkdtemp(dir);
    snprintf(made, sizeof made, "%s/made", dir);
    snprintf(full, sizeof full, "%s/full", dir);
    snprintf(qname, sizeof qname, "/kt-fds-%d", (int)getpid());
    int fd = open(full, O_WRONLY | O_CREAT, 0600);
    write(fd, "some text", 9);
    close(fd);
    int lis = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof sin;
    bind(lis, (struct sockaddr *)&sin, sizeof sin);
    listen(lis, 4);
    getsockname(lis, (struct sockaddr *)&sin, &slen);
    int cli = socket(AF_INET, SOCK_STREAM, 0);
    printf("connect: %d\n", connect(cli, (struct sockaddr *)&sin, sizeof sin));
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
    struct stat st;
    SHOW("open O_CREAT when full", open(made, O_RDWR | O_CREAT, 0600));
    printf("  the file was made: %d\n", stat(made, &st) == 0);
    SHOW("open O_TRUNC when full", open(full, O_RDWR | O_TRUNC));
    printf("  the file's size: %ld\n", stat(full, &st) == 0 ? (long)st.st_size : -1L);
    SHOW("mq_open O_CREAT when full", mq_open(qname, O_RDWR | O_CREAT, 0600, NULL));
    SHOW("  the queue was made (mq_unlink)", mq_unlink(qname));
    SHOW("accept when full", accept(lis, NULL, NULL));
    SHOW("accept4 with bad flags when full", accept4(lis, NULL, NULL, 0x1234));
    SHOW("accept of a closed descriptor when full", accept(1000, NULL, NULL));
    close(last);
    printf("accept after closing one: the connection waited: %d\n", accept(lis, NULL, NULL) == last);
    for (int fd = 3; fd <= last; fd++) close(fd);
    unlink(full);
    unlink(made);
    rmdir(dir);
    printf("pipe after closing: %d\n", pipe(p));
    printf("pipe fds %d %d\n", p[0], p[1]);
    return 0;
}
