/* Hostile sizes and limits (tests/guest/test_escape.py): each mode makes the monitor
 * copy, keep or do something sized by the program, or pulls a limit out from under it.
 * Each prints its results; native and km runs compare, and the test measures km's memory.
 *
 *   hog argv PATH     execve(PATH) with 20000 pointers to one 128 KiB string
 *   hog cmsg          sendmmsg: 1024 messages sharing one 1 MiB control buffer
 *   hog select        pselect6 with nfds 2^30 over small sets
 *   hog mlockall      mlockall(MCL_CURRENT|MCL_FUTURE), then 16 MiB of new memory
 *   hog threads N     N threads at once (each blocked), then all joined
 *   hog nproc         RLIMIT_NPROC 0, then fork and pthread_create
 *   hog stderr        closes descriptor 2, then dies of SIGSEGV
 *   hog maps          100000 separate one-page mappings (vm.max_map_count)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(long r) { return r < 0 ? strerror(errno) : "ok"; }

static int argv_bomb(const char *path) {
    size_t len = 128 * 1024 - 1;
    char *big = malloc(len + 1);
    memset(big, 'a', len);
    big[len] = 0;
    char **argv = malloc(20001 * sizeof *argv);
    for (int i = 0; i < 20000; i++) argv[i] = big;
    argv[20000] = NULL;
    char *envp[] = {NULL};
    long r = execve(path, argv, envp);
    printf("execve with 20000 x 128 KiB arguments: %s\n", err(r));
    return 0;
}

static int cmsg_bomb(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    size_t clen = 1 << 20;
    char *control = calloc(1, clen);
    struct cmsghdr *c = (struct cmsghdr *)control;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    *(int *)CMSG_DATA(c) = 0;
    static struct mmsghdr msgs[1024];
    static char data[1] = {'x'};
    static struct iovec iov = {data, 1};
    for (int i = 0; i < 1024; i++) {
        msgs[i].msg_hdr.msg_iov = &iov;
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_control = control;
        msgs[i].msg_hdr.msg_controllen = clen;
    }
    long r = sendmmsg(sv[0], msgs, 1024, MSG_DONTWAIT);
    printf("sendmmsg with 1 MiB of control data each: %s (%ld sent)\n", err(r), r);
    return 0;
}

static int select_bomb(void) {
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(1, &w);
    struct timespec ts = {0, 0};
    long n = syscall(SYS_pselect6, 1 << 30, &r, &w, NULL, &ts, NULL);
    printf("pselect6 with nfds 2^30: %ld (%s)\n", n, err(n));
    return 0;
}

static int lock_all(void) {
    long r = mlockall(MCL_CURRENT | MCL_FUTURE);
    printf("mlockall: %s\n", err(r));
    size_t n = 16 << 20;
    char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("16 MiB mapped after it: %s\n", p == MAP_FAILED ? strerror(errno) : "ok");
    if (p != MAP_FAILED) memset(p, 1, n);
    void *q = malloc(4 << 20);
    printf("malloc after it: %s\n", q ? "ok" : "failed");
    printf("munlockall: %s\n", err(munlockall()));
    return 0;
}

static int hold[2];
static void *blocked(void *arg) {
    char c;
    (void)arg;
    (void)!read(hold[0], &c, 1);
    return NULL;
}

static int threads(int n) {
    (void)!pipe(hold);
    pthread_t *t = calloc((size_t)n, sizeof *t);
    int made = 0, first_error = 0;
    for (int i = 0; i < n; i++) {
        int e = pthread_create(&t[i], NULL, blocked, NULL);
        if (e) { first_error = e; break; }
        made++;
    }
    close(hold[1]);
    for (int i = 0; i < made; i++) pthread_join(t[i], NULL);
    printf("threads made: %d of %d%s%s\n", made, n, first_error ? ", then " : "",
           first_error ? strerror(first_error) : "");
    /* none of the monitor's descriptors is left in the program's range */
    int kvm = 0;
    for (int fd = 0; fd < 4096; fd++) {
        char path[64], link[128];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t l = readlink(path, link, sizeof link - 1);
        if (l > 0) { link[l] = 0; kvm += strstr(link, "kvm") != NULL; }
    }
    printf("KVM descriptors the program can see: %d\n", kvm);
    return 0;
}

static int nproc(void) {
    struct rlimit rl = {0, 0};
    printf("setrlimit(RLIMIT_NPROC, 0): %s\n", err(setrlimit(RLIMIT_NPROC, &rl)));
    pid_t p = fork();
    if (p == 0) _exit(0);
    if (p > 0) waitpid(p, NULL, 0);
    printf("fork: %s\n", p < 0 ? strerror(errno) : "made a child");
    pthread_t t;
    (void)!pipe(hold);
    int e = pthread_create(&t, NULL, blocked, NULL);
    printf("pthread_create: %s\n", e ? strerror(e) : "made a thread");
    if (!e) { close(hold[1]); pthread_join(t, NULL); }
    return 0;
}

static int maps(void) {
    int made = 0;
    const char *why = "";
    for (int i = 0; i < 100000; i++) {
        /* alternate protections so that no two neighbours merge */
        void *p = mmap(NULL, 4096, i & 1 ? PROT_READ : PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { why = strerror(errno); break; }
        made++;
    }
    printf("one-page mappings: %s after %s\n", why, made > 60000 ? "more than 60000" : "fewer");
    return 0;
}

static void peak(void) {
    /* the whole process's peak resident memory (under km: the program's and the
     * monitor's), on stderr, for the test that bounds it */
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) fprintf(stderr, "%s", line);
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (getenv("HOG_PEAK")) atexit(peak);
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "argv") && argc > 2) return argv_bomb(argv[2]);
    if (!strcmp(mode, "cmsg")) return cmsg_bomb();
    if (!strcmp(mode, "select")) return select_bomb();
    if (!strcmp(mode, "mlockall")) return lock_all();
    if (!strcmp(mode, "threads") && argc > 2) return threads(atoi(argv[2]));
    if (!strcmp(mode, "nproc")) return nproc();
    if (!strcmp(mode, "maps")) return maps();
    if (!strcmp(mode, "stderr")) {
        close(2);
        raise(SIGSEGV);
        return 0;
    }
    fprintf(stderr, "usage: hog argv PATH|cmsg|select|mlockall|threads N|nproc|stderr|maps\n");
    return 2;
}
