/* /proc/self as a program sees it: exe, cmdline, environ, auxv, maps and fd/ are the
 * program's own, and so are the signal lines of status.  With "mem" it also tries /proc/self/mem (km refuses it). */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void caught(int sig) { (void)sig; }

static long slurp(const char *path, char *buf, long size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    long n = 0, r;
    while (n < size && (r = read(fd, buf + n, size - n)) > 0) n += r;
    close(fd);
    return n;
}

int main(int argc, char **argv) {
    static char buf[1 << 16];
    char real[PATH_MAX], link[PATH_MAX] = {0};
    realpath(argv[0], real);
    ssize_t n = readlink("/proc/self/exe", link, sizeof link - 1);
    printf("exe is the program: %d\n", n > 0 && !strcmp(link, real));
    struct stat a, b;
    printf("stat exe == stat program: %d\n", !stat("/proc/self/exe", &a) && !stat(real, &b) && a.st_ino == b.st_ino);
    long len = slurp("/proc/self/cmdline", buf, sizeof buf);
    printf("cmdline:");
    for (long i = 0; i < len; i += strlen(buf + i) + 1) printf(" [%s]", i ? buf + i : "argv0");
    printf("\n");
    len = slurp("/proc/self/environ", buf, sizeof buf);
    int found = 0;
    for (long i = 0; i < len; i += strlen(buf + i) + 1) found |= !strcmp(buf + i, "KT_PROC=yes");
    printf("environ has KT_PROC: %d\n", found);
    len = slurp("/proc/self/auxv", buf, sizeof buf);
    unsigned long pagesz = 0, entry = 0;
    for (long i = 0; i + 16 <= len; i += 16) {
        unsigned long *kv = (unsigned long *)(buf + i);
        if (kv[0] == AT_PAGESZ) pagesz = kv[1];
        if (kv[0] == AT_ENTRY) entry = kv[1];
    }
    printf("auxv: pagesz %lu, entry matches: %d\n", pagesz, entry != 0);
    void *heap = malloc(100000);
    memset(heap, 1, 100000);
    len = slurp("/proc/self/maps", buf, sizeof buf - 1);
    buf[len > 0 ? len : 0] = 0;
    printf("maps has the program: %d, [stack]: %d, r-xp: %d\n", strstr(buf, real) != NULL,
           strstr(buf, "[stack]") != NULL, strstr(buf, "r-xp") != NULL);
    int bad = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned long s, e; char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &s, &e, perms) != 3 || s >= e) bad++;
    }
    printf("maps lines well formed: %d\n", bad == 0);
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
    DIR *d = fdopendir(dfd);
    struct dirent *de;
    int fds = 0, maxfd = -1;
    while ((de = readdir(d))) if (de->d_name[0] != '.') { fds++; if (atoi(de->d_name) > maxfd) maxfd = atoi(de->d_name); }
    printf("fd/ lists %d descriptors, highest %d\n", fds, maxfd);
    closedir(d);
    char fdlink[64];
    snprintf(fdlink, sizeof fdlink, "/proc/self/fd/%d", 0);
    printf("fd/0 readable link: %d\n", readlink(fdlink, link, sizeof link) > 0);
    /* status: the signal lines describe this program (not the monitor behind it) */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGRTMIN + 3);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGUSR1, caught);
    raise(SIGUSR2);
    len = slurp("/proc/self/status", buf, sizeof buf - 1);
    buf[len > 0 ? len : 0] = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        if (!strncmp(line, "SigPnd", 6) || !strncmp(line, "ShdPnd", 6) || !strncmp(line, "SigBlk", 6)
            || !strncmp(line, "SigIgn", 6) || !strncmp(line, "SigCgt", 6))
            printf("status %s\n", line);
    if (argc > 1 && !strcmp(argv[1], "mem")) {
        int m = open("/proc/self/mem", O_RDWR);
        printf("open /proc/self/mem: %s\n", m >= 0 ? "opened" : strerror(errno));
        symlink("/proc/self/mem", "/tmp/kt-mem-link");
        m = open("/tmp/kt-mem-link", O_RDWR);
        unlink("/tmp/kt-mem-link");
        printf("open through a symlink: %s\n", m >= 0 ? "opened" : strerror(errno));
        chdir("/proc/self");
        m = open("mem", O_RDONLY);
        printf("open relative: %s\n", m >= 0 ? "opened" : strerror(errno));
        m = open("pagemap", O_RDONLY);
        printf("open pagemap: %s\n", m >= 0 ? "opened" : strerror(errno));
    }
    return 0;
}
