/* RLIMIT_AS and RLIMIT_DATA bound the program's mappings as Linux's may_expand_vm does:
 * each limit is set a few MiB above what the program has (read from /proc/self/status),
 * then mmap, brk, mremap and mprotect grow until they fail.  One line per check,
 * compared with a native run. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MIB (1L << 20)

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

static void limit(int resource, long soft, long hard)
{
    struct rlimit rl = {soft < 0 ? RLIM_INFINITY : (rlim_t)soft, hard < 0 ? RLIM_INFINITY : (rlim_t)hard};
    if (setrlimit(resource, &rl) != 0)
        perror("setrlimit");
}

/* 1 MiB mappings of this kind until one fails: how many, and the error */
static void *maps[256];
static int nmaps;
static void fill(const char *what, int prot, int flags)
{
    int n = 0;
    for (; n < 64; n++) {
        void *p = mmap(NULL, MIB, prot, flags, -1, 0);
        if (p == MAP_FAILED)
            break;
        maps[nmaps++] = p;
    }
    printf("%-48s %d (%s)\n", what, n, n < 64 ? strerror(errno) : "no failure");
}

static void unfill(void)
{
    while (nmaps > 0)
        munmap(maps[--nmaps], MIB);
}

/* "inherited": the RLIMIT_AS the program was started with (by prlimit, a shell's ulimit -v,
 * a container), and what it bounds */
static int inherited(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_AS, &rl);
    printf("RLIMIT_AS %ld MiB, hard %s\n", (long)(rl.rlim_cur >> 20),
           rl.rlim_max == RLIM_INFINITY ? "unlimited" : "finite");
    for (long mib = 64; mib <= 1024; mib *= 4) {
        void *m = mmap(NULL, mib * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        printf("mmap %4ld MiB: %s\n", mib, m == MAP_FAILED ? strerror(errno) : "mapped");
        if (m != MAP_FAILED) munmap(m, mib * MIB);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "inherited")) return inherited();
    setvbuf(stdout, NULL, _IONBF, 0);
    const int rw = PROT_READ | PROT_WRITE, priv = MAP_PRIVATE | MAP_ANONYMOUS;
    /* (once first: km makes a /proc file's text when it is opened, Linux when it is read,
     * and the first fopen's own allocation comes in between) */
    status_kb("VmSize");
    long size = status_kb("VmSize") * 1024, data;

    /* RLIMIT_AS: every mapping counts, PROT_NONE and shared ones too */
    limit(RLIMIT_AS, size + 8 * MIB, -1);
    fill("RLIMIT_AS +8 MiB: private writable", rw, priv);
    unfill();
    fill("RLIMIT_AS +8 MiB: PROT_NONE", PROT_NONE, priv);
    unfill();
    fill("RLIMIT_AS +8 MiB: shared", rw, MAP_SHARED | MAP_ANONYMOUS);
    unfill();
    char *m = mmap(NULL, 4 * MIB, rw, priv, -1, 0);
    void *r = mremap(m, 4 * MIB, 16 * MIB, MREMAP_MAYMOVE);
    printf("%-48s %s\n", "mremap 4 -> 16 MiB past it", r == MAP_FAILED ? strerror(errno) : "moved");
    r = mremap(m, 4 * MIB, 7 * MIB, MREMAP_MAYMOVE);
    printf("%-48s %s\n", "mremap 4 -> 7 MiB within it", r == MAP_FAILED ? strerror(errno) : "done");
    munmap(r == MAP_FAILED ? m : r, r == MAP_FAILED ? 4 * MIB : 7 * MIB);
    void *fixed = mmap(NULL, 6 * MIB, rw, priv, -1, 0);
    r = mmap(fixed, 6 * MIB, rw, priv | MAP_FIXED, -1, 0);
    printf("%-48s %s\n", "MAP_FIXED over its own 6 MiB", r == MAP_FAILED ? strerror(errno) : "mapped");
    munmap(fixed, 6 * MIB);
    limit(RLIMIT_AS, -1, -1);

    /* RLIMIT_DATA: private writable mappings and the break only */
    data = status_kb("VmData") * 1024;
    limit(RLIMIT_DATA, data + 4 * MIB, -1);
    fill("RLIMIT_DATA +4 MiB: private writable", rw, priv);
    unfill();
    fill("RLIMIT_DATA +4 MiB: read-only", PROT_READ, priv);
    int ro = nmaps;
    int denied = 0;
    for (int i = 0; i < ro; i++)
        denied += mprotect(maps[i], MIB, rw) != 0;
    printf("%-48s %d of %d refused (%s)\n", "then mprotect them writable", denied, ro, denied ? strerror(errno) : "");
    unfill();
    fill("RLIMIT_DATA +4 MiB: shared writable", rw, MAP_SHARED | MAP_ANONYMOUS);
    unfill();
    char *b0 = sbrk(0);
    int steps = 0;
    while (steps < 256 && sbrk(256 << 10) != (void *)-1)
        steps++;
    printf("%-48s %d steps of 256 KiB (%s)\n", "brk under it", steps, steps < 256 ? strerror(errno) : "no failure");
    brk(b0);
    /* a soft limit of 0 lets the hard one decide */
    limit(RLIMIT_DATA, 0, data + 3 * MIB);
    fill("RLIMIT_DATA soft 0, hard +3 MiB", rw, priv);
    unfill();
    return 0;
}
