/* Locked and shared memory as /proc and the calls report it: mlock, mlock2 (MLOCK_ONFAULT,
 * bad flags), munlock and munlockall over mapped and unmapped ranges, VmLck and smaps'
 * Locked:, RLIMIT_MEMLOCK for an unprivileged caller; the perms column of /proc/self/maps
 * and the smaps fields of shared and private mappings; MAP_SHARED_VALIDATE with a flag
 * Linux does not know.  One line per check, compared with a native run (as root and as
 * nobody).  Argument: a directory to write a file in. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif

static long pg;

static void ret(const char *what, long r)
{
    printf("%-44s %s\n", what, r == 0 ? "0" : r == -1 ? strerror(errno) : "?");
}

/* a field of /proc/self/status, in kB (-1 if absent) */
static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':')
            v = atol(line + n + 1);
    if (f)
        fclose(f);
    return v;
}

/* the maps line of the mapping at addr: its perms and name; and smaps fields of it */
static void describe(const char *what, void *addr, const char *const *fields)
{
    char line[512], want[32];
    snprintf(want, sizeof want, "%lx-", (unsigned long)addr);
    FILE *f = fopen("/proc/self/smaps", "r");
    int in = 0;
    printf("%s:", what);
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, want, strlen(want))) {
            char perms[8] = "", name[256] = "";
            sscanf(line, "%*s %7s %*s %*s %*s %255[^\n]", perms, name);
            char *base = strrchr(name, '/');
            printf(" %s %s", perms, base && strncmp(name, "/dev/zero", 9) ? base + 1 : name);
            in = 1;
            continue;
        }
        if (in && strchr(line, '-') && strchr(line, ' ') && strchr(line, '-') < strchr(line, ' '))
            break; /* the next mapping */
        for (int i = 0; in && fields[i]; i++)
            if (!strncmp(line, fields[i], strlen(fields[i]))) {
                long kb = atol(line + strlen(fields[i]) + 1);
                printf(" %s%ld", fields[i], kb);
            }
    }
    printf("\n");
    if (f)
        fclose(f);
}

int main(int argc, char **argv)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/memlock.bin", argc > 1 ? argv[1] : "/tmp"); /* a directory */
    pg = sysconf(_SC_PAGESIZE);
    char *a = mmap(NULL, 64 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    long lck0 = status_kb("VmLck");
    static const char *const locked[] = {"Locked", NULL};

    ret("mlock 8 pages", mlock(a, 8 * pg));
    printf("VmLck grew by %ld kB\n", status_kb("VmLck") - lck0);
    describe("after mlock", a, locked);
    ret("mlock again (same pages)", mlock(a, 8 * pg));
    printf("VmLck grew by %ld kB\n", status_kb("VmLck") - lck0);
    ret("mlock length 0", mlock(a, 0));
    ret("mlock unaligned start", mlock(a + 100, pg));
    printf("VmLck grew by %ld kB\n", status_kb("VmLck") - lck0);
    ret("munlock 4 pages", munlock(a, 4 * pg));
    printf("VmLck grew by %ld kB\n", status_kb("VmLck") - lck0);
    ret("munlock all of it", munlock(a, 64 * pg));
    printf("VmLck grew by %ld kB\n", status_kb("VmLck") - lck0);
    ret("mlock2 MLOCK_ONFAULT", syscall(SYS_mlock2, a, 16 * pg, MLOCK_ONFAULT));
    printf("VmLck grew by %ld kB\n", status_kb("VmLck") - lck0);
    ret("mlock2 bad flags", syscall(SYS_mlock2, a, pg, 2));
    ret("mlock2 all flags", syscall(SYS_mlock2, a, pg, ~0L));
    ret("munlock", munlock(a, 64 * pg));

    /* a hole: the pages before it are locked all the same (Linux locks VMA by VMA) */
    munmap(a + 32 * pg, 8 * pg);
    ret("mlock over a hole", mlock(a + 24 * pg, 16 * pg));
    printf("VmLck grew by %ld kB\n", status_kb("VmLck") - lck0);
    ret("munlock over a hole", munlock(a + 24 * pg, 16 * pg));
    printf("VmLck grew by %ld kB\n", status_kb("VmLck") - lck0);
    ret("mlock unmapped", mlock((void *)0x100000000000UL, pg));
    ret("munlock unmapped", munlock((void *)0x100000000000UL, pg));
    ret("mlock wrapping", mlock(a, (size_t)-pg));
    ret("mlock PROT_NONE pages", (mprotect(a, pg, PROT_NONE), mlock(a, pg)));
    ret("munlockall", munlockall());
    printf("VmLck grew by %ld kB\n", status_kb("VmLck") - lck0);

    /* RLIMIT_MEMLOCK: root has CAP_IPC_LOCK, nobody gets EPERM at 0 and ENOMEM past it */
    struct rlimit old, rl = {0, 0};
    getrlimit(RLIMIT_MEMLOCK, &old);
    rl.rlim_max = old.rlim_max;
    ret("setrlimit RLIMIT_MEMLOCK 0", setrlimit(RLIMIT_MEMLOCK, &rl));
    ret("mlock under RLIMIT_MEMLOCK 0", mlock(a + 8 * pg, pg));
    ret("mlock2 under RLIMIT_MEMLOCK 0", syscall(SYS_mlock2, a + 8 * pg, pg, MLOCK_ONFAULT));
    rl.rlim_cur = 2 * pg;
    ret("setrlimit RLIMIT_MEMLOCK 2 pages", setrlimit(RLIMIT_MEMLOCK, &rl));
    ret("mlock 2 pages under it", mlock(a + 8 * pg, 2 * pg));
    ret("mlock 4 more pages", mlock(a + 12 * pg, 4 * pg));
    ret("munlockall", munlockall());
    ret("mlockall under it", mlockall(MCL_CURRENT));
    ret("mlockall bad flags", mlockall(0));
    ret("munlockall", munlockall());
    setrlimit(RLIMIT_MEMLOCK, &old);

    /* the maps line of shared and private mappings (their page counts are the host's,
     * which may count pages KVM faulted in around the program's: docs/known-issues.md) */
    static const char *const none[] = {NULL};
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 8 * pg) != 0)
        perror("file");
    char *fs = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *fp = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    char *fr = mmap(NULL, 8 * pg, PROT_READ, MAP_SHARED, fd, 0);
    char *as = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    /* (a private anonymous mapping between two of other protections: never merged) */
    char *ap = mmap(NULL, 10 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(ap, pg, PROT_NONE);
    mprotect(ap + 9 * pg, pg, PROT_READ);
    memset(fs, 1, 3 * pg);
    memset(fp, 2, 2 * pg);
    memset(as, 3, 4 * pg);
    memset(ap + pg, 4, 5 * pg);
    describe("file MAP_SHARED", fs, none);
    describe("file MAP_PRIVATE", fp, none);
    describe("file MAP_SHARED read-only", fr, none);
    describe("anonymous MAP_SHARED", as, none);
    describe("anonymous MAP_PRIVATE", ap + pg, none);
    describe("its PROT_NONE guard", ap, none);
    mlock(as, 8 * pg);
    describe("anonymous MAP_SHARED locked", as, locked);
    munlock(as, 8 * pg);

    /* MAP_SHARED_VALIDATE: flags Linux does not know are EOPNOTSUPP, known ones pass */
    void *m = mmap(NULL, pg, PROT_READ, MAP_SHARED_VALIDATE | 0x200000, fd, 0);
    printf("%-44s %s\n", "MAP_SHARED_VALIDATE unknown flag", m == MAP_FAILED ? strerror(errno) : "mapped");
    m = mmap(NULL, pg, PROT_READ, MAP_SHARED | 0x200000, fd, 0);
    printf("%-44s %s\n", "MAP_SHARED same flag", m == MAP_FAILED ? strerror(errno) : "mapped");
    m = mmap(NULL, pg, PROT_READ, MAP_SHARED_VALIDATE | MAP_POPULATE | MAP_LOCKED, fd, 0);
    printf("%-44s %s\n", "MAP_SHARED_VALIDATE POPULATE|LOCKED", m == MAP_FAILED ? strerror(errno) : "mapped");
    m = mmap(NULL, pg, PROT_READ, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x200000, -1, 0);
    printf("%-44s %s\n", "MAP_SHARED_VALIDATE anonymous unknown flag", m == MAP_FAILED ? strerror(errno) : "mapped");
    m = mmap(NULL, pg, PROT_READ, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0);
    printf("%-44s %s\n", "MAP_SHARED_VALIDATE anonymous", m == MAP_FAILED ? strerror(errno) : "mapped");
    /* MAP_GROWSDOWN: only a private anonymous mapping grows down */
    m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
    printf("%-44s %s\n", "MAP_GROWSDOWN anonymous shared", m == MAP_FAILED ? strerror(errno) : "mapped");
    m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_GROWSDOWN, fd, 0);
    printf("%-44s %s\n", "MAP_GROWSDOWN file shared", m == MAP_FAILED ? strerror(errno) : "mapped");
    m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_GROWSDOWN, fd, 0);
    printf("%-44s %s\n", "MAP_GROWSDOWN file private", m == MAP_FAILED ? strerror(errno) : "mapped");
    m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
    printf("%-44s %s\n", "MAP_GROWSDOWN anonymous private", m == MAP_FAILED ? strerror(errno) : "mapped");
    unlink(path);
    return 0;
}
