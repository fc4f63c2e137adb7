/* /proc/self as a program sees it: exe, cmdline, environ, auxv, maps and fd/ are the
 * program's own, and so are the signal lines of status; PROCMAP_QUERY on maps.  With "mem" it also tries /proc/self/mem (km refuses it). */
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
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void caught(int sig) { (void)sig; }

/* PROCMAP_QUERY on /proc/self/maps (Linux 6.11; LTP's ioctl10 found it ENOTTY under km):
 * one line per query, with no addresses in it */
struct procmap_query_ {
    unsigned long long size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size, vma_offset, inode;
    unsigned dev_major, dev_minor, vma_name_size, build_id_size;
    unsigned long long vma_name_addr, build_id_addr;
};
#define PROCMAP_QUERY_ _IOWR('f', 17, struct procmap_query_)
#define PROCMAP_QUERY_VMA_WRITABLE 0x02
#define PROCMAP_QUERY_COVERING_OR_NEXT_VMA 0x10
#define PROCMAP_QUERY_FILE_BACKED_VMA 0x20

static long query(int fd, struct procmap_query_ *q, unsigned long long addr, unsigned long long flags) {
    memset(q, 0, sizeof *q);
    q->size = sizeof *q;
    q->query_addr = addr;
    q->query_flags = flags;
    return ioctl(fd, PROCMAP_QUERY_, q) < 0 ? -errno : 0;
}

static void procmap_query(const char *real) {
    int fd = open("/proc/self/maps", O_RDONLY);
    struct procmap_query_ q;
    long pg = sysconf(_SC_PAGESIZE), r;
    /* (between two PROT_NONE pages: where a mapping lands is the kernel's choice, and a
     * neighbour of the same kind would merge with it, on Linux as under km) */
    char *fence = mmap(NULL, 6 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *anon = mmap(fence + pg, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    mprotect(anon + 2 * pg, 2 * pg, PROT_READ);  /* two mappings: rw-p, r--p */
    char *shared = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int self = open(real, O_RDONLY);
    char *file = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, self, pg);
    struct stat st;
    fstat(self, &st);
    r = query(fd, &q, (unsigned long)anon + 5, 0);
    printf("query inside an anonymous mapping: %ld\n", r);
    printf("  start, end, flags, page size, offset, inode, dev: %d %d %llu %d %llu %llu %u:%u\n",
           q.vma_start == (unsigned long)anon, q.vma_end == (unsigned long)anon + 2 * pg, q.vma_flags,
           q.vma_page_size == (unsigned long long)pg, q.vma_offset, q.inode, q.dev_major, q.dev_minor);
    r = query(fd, &q, (unsigned long)anon + 2 * pg, PROCMAP_QUERY_VMA_WRITABLE);
    printf("query the read-only part, writable: %ld\n", r);
    r = query(fd, &q, (unsigned long)anon + 2 * pg, 0);
    printf("query the read-only part: %ld, flags %llu\n", r, q.vma_flags);
    r = query(fd, &q, (unsigned long)shared, 0);
    printf("query the shared anonymous mapping: %ld, flags %llu\n", r, q.vma_flags);
    r = query(fd, &q, (unsigned long)shared, PROCMAP_QUERY_FILE_BACKED_VMA);  /* (/dev/zero's) */
    printf("  it is file-backed: %ld\n", r);
    char name[PATH_MAX];
    r = query(fd, &q, (unsigned long)file, 0);
    printf("query the file mapping: %ld\n", r);
    printf("  offset, inode, dev: %d %d %d\n", q.vma_offset == (unsigned long long)pg, q.inode == st.st_ino,
           q.dev_major == major(st.st_dev) && q.dev_minor == minor(st.st_dev));
    memset(&q, 0, sizeof q);
    q.size = sizeof q;
    q.query_addr = (unsigned long)file;
    q.vma_name_addr = (unsigned long)name;
    q.vma_name_size = sizeof name;
    r = ioctl(fd, PROCMAP_QUERY_, &q) < 0 ? -errno : 0;
    printf("  its name: %ld %d %d\n", r, q.vma_name_size == strlen(real) + 1, !strcmp(name, real));
    q.vma_name_size = 4;
    r = ioctl(fd, PROCMAP_QUERY_, &q) < 0 ? -errno : 0;
    printf("  its name into 4 bytes: %ld\n", r);
    q.vma_name_size = sizeof name;
    q.vma_name_addr = 0x400000000000UL;
    r = ioctl(fd, PROCMAP_QUERY_, &q) < 0 ? -errno : 0;
    printf("  its name into a wild buffer: %ld\n", r);
    q.vma_name_addr = 0;
    r = ioctl(fd, PROCMAP_QUERY_, &q) < 0 ? -errno : 0;
    printf("  a name size without a buffer: %ld\n", r);
    /* (what lies above depends on where mappings were placed: either none, or a file's
     * at or after the anonymous one; the shared anonymous mapping is one too, of a shmem
     * file: docs/known-issues.md says what km shows for its device and inode) */
    r = query(fd, &q, (unsigned long)anon, PROCMAP_QUERY_FILE_BACKED_VMA | PROCMAP_QUERY_COVERING_OR_NEXT_VMA);
    printf("query a file-backed one from the anonymous one on: none, or a file's after it: %d\n",
           r == -ENOENT || (r == 0 && (q.inode != 0 || q.vma_start == (unsigned long)shared) &&
                            q.vma_end > (unsigned long)anon));
    munmap(anon + pg, pg);
    r = query(fd, &q, (unsigned long)anon + pg, 0);
    printf("query a hole: %ld\n", r);
    r = query(fd, &q, (unsigned long)anon + pg, PROCMAP_QUERY_COVERING_OR_NEXT_VMA);
    printf("query a hole, or the next: %ld, next %d\n", r, q.vma_start == (unsigned long)anon + 2 * pg);
    r = query(fd, &q, ~0UL - 4096, PROCMAP_QUERY_COVERING_OR_NEXT_VMA);
    printf("query past the last: %ld\n", r);
    r = query(fd, &q, (unsigned long)anon, 0x40);
    printf("query with unknown flags: %ld\n", r);
    struct { struct procmap_query_ q; char more[8]; } big = {.q = {.size = sizeof big, .query_addr = (unsigned long)anon}};
    r = ioctl(fd, PROCMAP_QUERY_, &big) < 0 ? -errno : 0;
    printf("a larger struct: %ld\n", r);
    big.more[3] = 1;
    r = ioctl(fd, PROCMAP_QUERY_, &big) < 0 ? -errno : 0;
    printf("a larger struct with more set: %ld\n", r);
    q.size = 64;
    r = ioctl(fd, PROCMAP_QUERY_, &q) < 0 ? -errno : 0;
    printf("a smaller struct: %ld\n", r);
    r = ioctl(fd, PROCMAP_QUERY_, (void *)0x400000000000UL) < 0 ? -errno : 0;
    printf("a wild struct: %ld\n", r);
    int status = open("/proc/self/status", O_RDONLY);
    r = query(status, &q, (unsigned long)anon, 0);
    printf("PROCMAP_QUERY of /proc/self/status: %ld\n", r);
    close(status);
    munmap(fence, 6 * pg);
    munmap(shared, pg);
    munmap(file, pg);
    close(self);
    close(fd);
}

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
    procmap_query(real);
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
