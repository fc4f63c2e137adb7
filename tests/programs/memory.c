/* brk, mmap (anonymous and file, private and shared), munmap, mprotect (execute-only
 * too, and next to another thread's writes), mremap, madvise, mincore and msync: every
 * check prints one line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4
#endif
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define SAY(what, cond) printf("%-40s %s\n", what, (cond) ? "ok" : "FAILED")
#define ERR(what, expr) do { errno = 0; long r_ = (long)(expr); printf("%-40s %ld %s\n", what, r_ == -1 ? -1L : 0L, errno ? strerror(errno) : ""); } while (0)

/* mprotect of part of a mapping, in a loop in another thread, while this one writes to
 * the page next to it, which never changes (LTP's signal06: under km that page had no
 * memslot for a moment at each change, and the write ended the program with SIGSEGV) */
static char flipped[4096 * 12] __attribute__((aligned(4096)));
static volatile int flips_left;
static void *flipper(void *arg) {
    (void)arg;
    for (; flips_left > 0; flips_left--) {
        mprotect(flipped + 4096 * 2, 4096 * 10, PROT_READ);
        mprotect(flipped + 4096 * 2, 4096 * 10, PROT_READ | PROT_WRITE);
    }
    return NULL;
}

static int neighbour_survives(void) {
    flips_left = 300;
    pthread_t t;
    pthread_create(&t, NULL, flipper, NULL);
    volatile char *next = flipped + 4096;
    for (long i = 0; flips_left > 0; i++) next[i & 4095] = (char)i;
    pthread_join(t, NULL);
    return 1;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/tmp/kt-memory.bin";
    long pg = sysconf(_SC_PAGESIZE);
    /* brk */
    char *b0 = (char *)syscall(SYS_brk, 0);
    char *b1 = (char *)syscall(SYS_brk, b0 + 3 * pg + 100);
    SAY("brk grows", b1 == b0 + 3 * pg + 100);
    memset(b0, 0x5a, 3 * pg + 100);
    SAY("brk memory usable", b0[3 * pg + 99] == 0x5a);
    char *b2 = (char *)syscall(SYS_brk, b0 + pg);
    SAY("brk shrinks", b2 == b0 + pg);
    SAY("brk below the heap refused", (char *)syscall(SYS_brk, 0x1000) == b2);
    char *b3 = (char *)syscall(SYS_brk, b0 + 2 * pg);
    SAY("brk regrown memory is zero", b3 == b0 + 2 * pg && b0[pg + 10] == 0);
    /* malloc of many sizes */
    void *ptrs[200];
    for (int i = 0; i < 200; i++) { ptrs[i] = malloc(i * 1000 + 1); memset(ptrs[i], i, i * 1000 + 1); }
    int ok = 1;
    for (int i = 0; i < 200; i++) ok &= ((unsigned char *)ptrs[i])[i * 1000] == (unsigned char)i;
    for (int i = 0; i < 200; i++) free(ptrs[i]);
    SAY("malloc/free 200 blocks", ok);
    char *big = malloc(64 << 20);
    memset(big, 1, 64 << 20);
    SAY("malloc 64 MiB", big[(64 << 20) - 1] == 1);
    free(big);
    /* anonymous mmap */
    char *a = mmap(NULL, 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SAY("mmap anonymous", a != MAP_FAILED);
    SAY("anonymous memory is zero", a[0] == 0 && a[16 * pg - 1] == 0);
    strcpy(a + 5 * pg, "page five");
    /* mremap grow (in place or moved) keeps contents */
    char *a2 = mremap(a, 16 * pg, 64 * pg, MREMAP_MAYMOVE);
    SAY("mremap grow", a2 != MAP_FAILED && !strcmp(a2 + 5 * pg, "page five"));
    SAY("mremap grown part is zero", a2[63 * pg] == 0);
    char *a3 = mremap(a2, 64 * pg, 8 * pg, 0);
    SAY("mremap shrink in place", a3 == a2 && !strcmp(a3 + 5 * pg, "page five"));
    /* force a move: map something right after, then grow without room */
    char *blocker = mmap(a3 + 8 * pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    SAY("MAP_FIXED_NOREPLACE on free range", blocker == a3 + 8 * pg);
    ERR("MAP_FIXED_NOREPLACE on used range", mmap(a3, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED ? -1 : 0);
    ERR("mremap grow without MAYMOVE", mremap(a3, 8 * pg, 32 * pg, 0) == MAP_FAILED ? -1 : 0);
    char *a4 = mremap(a3, 8 * pg, 32 * pg, MREMAP_MAYMOVE);
    SAY("mremap moves", a4 != MAP_FAILED && a4 != a3 && !strcmp(a4 + 5 * pg, "page five"));
    /* madvise DONTNEED zeroes private anonymous memory */
    a4[0] = 7;
    SAY("madvise DONTNEED", madvise(a4, pg, MADV_DONTNEED) == 0 && a4[0] == 0);
    unsigned char vec[32];
    SAY("mincore", mincore(a4, 32 * pg, vec) == 0);
    /* mprotect */
    SAY("mprotect read-only", mprotect(a4, pg, PROT_READ) == 0 && a4[0] == 0);
    SAY("mprotect back to read-write", mprotect(a4, pg, PROT_READ | PROT_WRITE) == 0);
    {   /* MAP_HUGETLB (LTP's futex_wake04): mapped where the host has huge pages reserved,
         * else ENOMEM as natively (km said EINVAL: its address was not aligned to one) */
        char *h = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
        ERR("mmap MAP_HUGETLB", h == MAP_FAILED ? -1 : 0);
        if (h != MAP_FAILED) {
            h[0] = 1;
            SAY("MAP_HUGETLB aligned to 2 MiB", ((uintptr_t)h & ((2 << 20) - 1)) == 0);
            ERR("munmap MAP_HUGETLB", munmap(h, 2 << 20));
        }
    }
    SAY("writes next to a range another thread re-protects", neighbour_survives());
    {   /* a memfd of huge pages (LTP's memfd_create03): aligned to one as well */
        int hfd = memfd_create("huge", MFD_HUGETLB);
        ERR("memfd_create MFD_HUGETLB", hfd);
        if (hfd >= 0) {
            ftruncate(hfd, 2 << 20);
            char *h = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, hfd, 0);
            ERR("mmap of a MFD_HUGETLB memfd", h == MAP_FAILED ? -1 : 0);
            if (h != MAP_FAILED) {
                SAY("... aligned to 2 MiB", ((uintptr_t)h & ((2 << 20) - 1)) == 0);
                munmap(h, 2 << 20);
            }
            close(hfd);
        }
    }
    {   /* code in an anonymous page made execute-only, then called (LTP's mprotect04: SIGBUS) */
        static const unsigned char ret42[] = {0xb8, 0x2a, 0, 0, 0, 0xc3};  /* mov eax, 42; ret */
        unsigned char *code = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        memcpy(code, ret42, sizeof ret42);
        SAY("mprotect PROT_EXEC alone", mprotect(code, pg, PROT_EXEC) == 0);
        SAY("code in an execute-only page runs", ((int (*)(void))code)() == 42);
        munmap(code, pg);
    }
    a4[0] = 1;
    SAY("writable again", a4[0] == 1);
    ERR("mprotect unmapped", mprotect((void *)((uintptr_t)a4 + 1000 * pg), pg, PROT_READ));
    ERR("mprotect unaligned", mprotect(a4 + 1, pg, PROT_READ));
    /* munmap in the middle splits the mapping */
    SAY("munmap middle", munmap(a4 + 4 * pg, 2 * pg) == 0);
    a4[3 * pg] = 3; a4[6 * pg] = 6;
    SAY("both sides still mapped", a4[3 * pg] == 3 && a4[6 * pg] == 6);
    ERR("munmap unaligned", munmap(a4 + 1, pg));
    ERR("munmap zero length", munmap(a4, 0));
    SAY("munmap all", munmap(a4, 32 * pg) == 0 && munmap(blocker, pg) == 0);
    /* MAP_FIXED over an existing mapping replaces it */
    char *f = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    f[pg] = 9;
    char *f2 = mmap(f + pg, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    SAY("MAP_FIXED replaces", f2 == f + pg && f[pg] == 0);
    /* shared anonymous */
    int *sh = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *sh = 1234;
    SAY("shared anonymous", *sh == 1234);
    /* file mappings */
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    SAY("ftruncate file", ftruncate(fd, 2 * pg) == 0);
    SAY("write file", pwrite(fd, "file contents", 13, pg) == 13);
    char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    SAY("mmap file shared", m != MAP_FAILED && !memcmp(m + pg, "file contents", 13));
    memcpy(m, "written through the map", 23);
    SAY("msync", msync(m, 2 * pg, MS_SYNC) == 0);
    char rb[32] = {0};
    SAY("pread sees shared write", pread(fd, rb, 23, 0) == 23 && !strcmp(rb, "written through the map"));
    char *pm = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    pm[0] = 'W';
    memset(rb, 0, sizeof rb);
    SAY("private write stays private", pread(fd, rb, 1, 0) == 1 && rb[0] == 'w' && pm[0] == 'W');
    /* mremap DONTUNMAP is always a move, and the old range stays mapped: empty for private
     * anonymous memory, the same pages for a shared mapping.  (By syscall: glibc's mremap
     * passes junk as the new address, which Linux checks as a hint.) */
    char *d = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(d, "moved");
    char *d2 = (char *)syscall(SYS_mremap, d, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
    SAY("mremap DONTUNMAP of private anonymous", d2 != MAP_FAILED && d2 != d && !strcmp(d2, "moved") && d[0] == 0);
    char *m2 = (char *)syscall(SYS_mremap, m, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
    SAY("mremap DONTUNMAP of a shared file", m2 != MAP_FAILED && m2 != m && (m2[0] = 'X') && m[0] == 'X');
    ERR("mremap DONTUNMAP, unaligned hint", syscall(SYS_mremap, d2, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 12345));
    ERR("mremap DONTUNMAP, hint overlapping", syscall(SYS_mremap, d2, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, d2 + pg));
    munmap(d, 2 * pg); munmap(d2, 2 * pg); munmap(m2, 2 * pg);
    char *off = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, pg);
    SAY("mmap at file offset", off != MAP_FAILED && !memcmp(off, "file contents", 13));
    ERR("mmap unaligned offset", mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, 100) == MAP_FAILED ? -1 : 0);
    ERR("mmap bad fd", mmap(NULL, pg, PROT_READ, MAP_PRIVATE, 777, 0) == MAP_FAILED ? -1 : 0);
    ERR("mmap zero length", mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0);
    ERR("mmap bad flags", mmap(NULL, pg, PROT_READ, MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0);
    int ro = open(path, O_RDONLY);
    ERR("mmap shared writable of O_RDONLY fd", mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED ? -1 : 0);
    char *rom = mmap(NULL, pg, PROT_READ, MAP_SHARED, ro, 0);
    ERR("mprotect RW of read-only shared file", mprotect(rom, pg, PROT_READ | PROT_WRITE));
    close(ro);
    /* MAP_SHARED_VALIDATE: MAP_SYNC only where the file offers it (DAX: not here) */
    ERR("mmap SHARED_VALIDATE|MAP_SYNC", mmap(NULL, pg, PROT_READ, 0x03 | 0x80000, fd, 0) == MAP_FAILED ? -1 : 0);
    char *sv = mmap(NULL, pg, PROT_READ, 0x03, fd, 0);
    SAY("mmap SHARED_VALIDATE", sv != MAP_FAILED && !memcmp(sv + 1, "ritten", 6));
    munmap(sv, pg);
    munmap(m, 2 * pg); munmap(pm, 2 * pg); munmap(off, pg); munmap(rom, pg);
    close(fd);
    unlink(path);
    /* many mappings */
    void *maps[300];
    for (int i = 0; i < 300; i++) maps[i] = mmap(NULL, pg * (1 + i % 4), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ok = 1;
    for (int i = 0; i < 300; i++) { ((char *)maps[i])[0] = (char)i; }
    for (int i = 0; i < 300; i++) ok &= ((char *)maps[i])[0] == (char)i;
    for (int i = 0; i < 300; i += 2) munmap(maps[i], pg * (1 + i % 4));
    for (int i = 1; i < 300; i += 2) ok &= ((char *)maps[i])[0] == (char)i;
    SAY("300 mappings, half unmapped", ok);
    /* msync and mincore over a range with a hole: ENOMEM (the pages before it reported) */
    char *h = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    h[0] = 1;
    munmap(h + 2 * pg, pg);
    ERR("msync over a hole", msync(h, 4 * pg, MS_SYNC));
    ERR("msync of unmapped memory", msync(h + 2 * pg, pg, MS_SYNC));
    ERR("msync MS_SYNC|MS_ASYNC", msync(h, pg, MS_SYNC | MS_ASYNC));
    unsigned char hv[4] = {9, 9, 9, 9};
    ERR("mincore over a hole", mincore(h, 4 * pg, hv));
    printf("%-40s %d %d %d\n", "mincore before the hole", hv[0] & 1, hv[1] == 9 ? 9 : 0, hv[2]);
    ERR("mincore of unmapped memory", mincore(h + 2 * pg, pg, hv));
    munmap(h, 4 * pg);
    /* MAP_GROWSDOWN grows down when touched below, as far as the guard gap allows */
    char *area = mmap(NULL, 2048 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(area, 2048 * pg);
    char *g = mmap(area + 2040 * pg, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED,
                   -1, 0);
    g[-1] = 'g';
    g[-3 * (int)pg] = 'h';
    SAY("MAP_GROWSDOWN grows", g[-1] == 'g' && g[-3 * (int)pg] == 'h' && g[-2 * (int)pg] == 0);
    munmap(g - 3 * pg, 7 * pg);
    /* MAP_DROPPABLE (Linux 6.11): private anonymous memory, wiped in a child, refused for a
     * file, locked or huge; where the host's Linux is older, EINVAL throughout */
    char *dr = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
    if (dr == MAP_FAILED) {
        printf("%-40s %s\n", "MAP_DROPPABLE", strerror(errno));
    } else {
        memset(dr, 'd', 4 * pg);
        int pfd[2];
        char seen = 'x';
        if (pipe(pfd) == 0) {
            pid_t pid = fork();
            if (pid == 0) {
                write(pfd[1], &dr[pg], 1);
                _exit(0);
            }
            read(pfd[0], &seen, 1);
            waitpid(pid, NULL, 0);
            close(pfd[0]);
            close(pfd[1]);
        }
        SAY("MAP_DROPPABLE kept here, wiped in a child", dr[pg] == 'd' && dr[4 * pg - 1] == 'd' && seen == 0);
        munmap(dr, 4 * pg);
    }
    ERR("MAP_DROPPABLE of a file", mmap(NULL, pg, PROT_READ, MAP_DROPPABLE, open("/proc/self/exe", O_RDONLY), 0));
    ERR("MAP_DROPPABLE | MAP_LOCKED",
        mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0));
    ERR("MAP_DROPPABLE | MAP_GROWSDOWN",
        mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0));
    return 0;
}
