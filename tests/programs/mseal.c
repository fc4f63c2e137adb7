/* mseal(2) (LTP's mseal01-02 found it ENOSYS under km): its own checks, then what a seal
 * refuses (munmap, MAP_FIXED, mremap, mprotect, discarding madvise on read-only private
 * anonymous memory, a brk that would shrink over it, in a forked child too) and what it
 * allows.  One line per check, with no addresses in it. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_mseal
#define SYS_mseal 462
#endif

static long pg;

static const char *ename(int e) {
    switch (e) {
    case 0: return "";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EPERM: return "EPERM";
    case EFAULT: return "EFAULT";
    case ENOSYS: return "ENOSYS";
    default: return "other";
    }
}

#define SHOW(what, expr) do { errno = 0; long r_ = (long)(expr); int e_ = errno; \
    printf("%-48s %ld %s\n", what, r_ < 0 ? -1L : r_, r_ < 0 ? ename(e_) : ""); } while (0)
#define PTR(what, expr) do { errno = 0; void *p_ = (expr); int e_ = errno; \
    printf("%-48s %s %s\n", what, p_ == MAP_FAILED ? "failed" : "mapped", p_ == MAP_FAILED ? ename(e_) : ""); } while (0)

static long sys_mseal(void *addr, size_t len, unsigned long flags) { return syscall(SYS_mseal, addr, len, flags); }

/* the permissions /proc/self/maps shows for addr, and how many lines cover [addr, end) */
static void maps(const char *what, char *addr, char *end) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512], perms[8] = "none";
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        char p[8];
        if (sscanf(line, "%lx-%lx %7s", &s, &e, p) != 3) continue;
        if (s <= (unsigned long)addr && (unsigned long)addr < e) strcpy(perms, p);
        if (s < (unsigned long)end && e > (unsigned long)addr) n++;
    }
    fclose(f);
    printf("%-48s %s, %d mappings\n", what, perms, n);
}

int main(void) {
    pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(m, 1, 8 * pg);
    SHOW("mseal with flags", sys_mseal(m, pg, 1));
    SHOW("mseal unaligned", sys_mseal(m + 1, pg, 0));
    SHOW("mseal of no length", sys_mseal(m, 0, 0));
    SHOW("mseal of a length that wraps", sys_mseal(m, -pg / 2, 0));
    munmap(m + 7 * pg, pg);
    SHOW("mseal over a hole", sys_mseal(m + 6 * pg, 2 * pg, 0));
    m = mmap(m + 7 * pg, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) - 7 * pg;
    SHOW("mseal of pages 2-3", sys_mseal(m + 2 * pg, 2 * pg, 0));
    SHOW("mseal of them again", sys_mseal(m + 2 * pg, 2 * pg, 0));
    maps("the sealed part", m + 2 * pg, m + 8 * pg);

    SHOW("munmap of all", munmap(m, 8 * pg));
    maps("  page 0 after", m, m + pg);
    SHOW("munmap of page 1", munmap(m + pg, pg));
    SHOW("mprotect of pages 4-7, read-only", mprotect(m + 4 * pg, 4 * pg, PROT_READ));
    SHOW("mprotect of the sealed part, as it is", mprotect(m + 2 * pg, 2 * pg, PROT_READ | PROT_WRITE));
    SHOW("mprotect from page 4 into the sealed part", mprotect(m + 4 * pg, pg, PROT_READ | PROT_WRITE));
    SHOW("mprotect across the seal, from page 4 down", mprotect(m + 2 * pg, 3 * pg, PROT_READ));
    maps("  page 4 after", m + 4 * pg, m + 5 * pg);
    char *other = mmap(NULL, 4 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    PTR("mremap of the sealed part, moved", mremap(m + 2 * pg, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, other));
    PTR("mremap shrinking it", mremap(m + 2 * pg, 2 * pg, pg, 0));
    PTR("mremap of pages 2-5 (a seal in it)", mremap(m + 2 * pg, 4 * pg, 4 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, other));
    PTR("mremap onto the sealed part", mremap(other, pg, pg, MREMAP_MAYMOVE | MREMAP_FIXED, m + 2 * pg));
    PTR("mmap MAP_FIXED over it", mmap(m + 3 * pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
    PTR("mmap MAP_FIXED over page 5", mmap(m + 5 * pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
    SHOW("madvise DONTNEED of the sealed part (writable)", madvise(m + 2 * pg, 2 * pg, MADV_DONTNEED));
    printf("%-48s %d\n", "  its contents after", m[2 * pg]);

    char *ro = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(ro, 7, 4 * pg);
    mprotect(ro + 2 * pg, 2 * pg, PROT_READ);
    SHOW("mseal of a read-only part", sys_mseal(ro + 2 * pg, 2 * pg, 0));
    SHOW("madvise WILLNEED of it", madvise(ro + 2 * pg, 2 * pg, MADV_WILLNEED));
    SHOW("madvise DONTNEED of it", madvise(ro + 2 * pg, 2 * pg, MADV_DONTNEED));
    SHOW("madvise DONTNEED across it, from before", madvise(ro, 4 * pg, MADV_DONTNEED));
    printf("%-48s %d %d\n", "  the contents before it, and of it", ro[0], ro[2 * pg]);
    SHOW("madvise FREE of it", madvise(ro + 2 * pg, pg, MADV_FREE));

    char *brk0 = sbrk(0);
    char *top = (char *)(((unsigned long)brk0 + pg - 1) & ~(pg - 1));
    brk(top + 2 * pg);
    SHOW("mseal of the heap's last pages", sys_mseal(top, 2 * pg, 0));
    SHOW("brk down over them", syscall(SYS_brk, top) == (long)top ? 0 : -1);
    printf("%-48s %d\n", "  the break did not move", (char *)syscall(SYS_brk, 0) == top + 2 * pg);

    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        SHOW("a forked child's munmap of the sealed part", munmap(m + 2 * pg, 2 * pg));
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(child, &st, 0);
    maps("the sealed part at the end", m + 2 * pg, m + 4 * pg);
    return 0;
}
