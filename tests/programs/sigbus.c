/* SIGBUS from file mappings past the end of their file, and what madvise and mprotect
 * do there; SIGSEGV from guard pages, which the host refuses KVM alike: the signal, and
 * its si_addr relative to the mapping (KVM does not report the address: km decodes the
 * instruction).  One line per check; tests/guest/test_faults.py
 * compares it with a native run.  Argument: the file to use. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
static sigjmp_buf jb; static volatile int got; static char *addr, *base;
static void h(int s, siginfo_t *si, void *c) { (void)c; got = s; addr = si->si_addr; siglongjmp(jb, 1); }
#define TRY(what, stmt) do { got = 0; if (!sigsetjmp(jb, 1)) { stmt; } \
    printf("%-34s sig=%d si_addr=%+ld\n", what, got, got ? (long)(addr - base) : 0L); } while (0)
#define ERR(what, expr) do { errno = 0; long r_ = (long)(expr); printf("%-34s %ld %s\n", what, r_, r_ ? strerror(errno) : ""); } while (0)
static void movs(char *from) {
    char buf[64], *d = buf;
    long n = 64;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(from), "+c"(n) :: "memory");
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/tmp/kt-sigbus.bin";
    struct sigaction sa = {.sa_sigaction = h, .sa_flags = SA_SIGINFO | SA_NODEFER};
    sigaction(SIGBUS, &sa, NULL); sigaction(SIGSEGV, &sa, NULL);
    long pg = 4096;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ftruncate(fd, pg);
    char *m = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    base = m;
    TRY("read in file", (void)*(volatile char *)m);
    TRY("read past EOF", (void)*(volatile char *)(m + pg));
    TRY("write past EOF", *(volatile char *)(m + pg) = 1);
    ERR("mprotect past EOF RO", mprotect(m + pg, pg, PROT_READ));
    TRY("read past EOF after mprotect", (void)*(volatile char *)(m + pg));
    TRY("write past EOF after mprotect RO", *(volatile char *)(m + pg) = 1);
    ERR("madvise WILLNEED past EOF", madvise(m, 3 * pg, MADV_WILLNEED));
    ERR("madvise DONTNEED past EOF", madvise(m, 3 * pg, MADV_DONTNEED));
    ERR("madvise POPULATE_READ past EOF", madvise(m, 3 * pg, MADV_POPULATE_READ));
    ERR("madvise POPULATE_WRITE past EOF", madvise(m + pg, pg, MADV_POPULATE_WRITE));
    ERR("madvise POPULATE_READ in file", madvise(m, pg, MADV_POPULATE_READ));
    ftruncate(fd, 3 * pg);
    TRY("read after growing the file", (void)*(volatile char *)(m + 2 * pg));
    ftruncate(fd, 0);
    TRY("read after truncating to 0", (void)*(volatile char *)m);
    char *p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    base = p;
    TRY("rep movsb from past EOF", movs(p + 100));
    TRY("push from past EOF", __asm__ volatile("pushq (%0); popq %%rax" :: "r"(p + 8) : "rax", "memory"));
    TRY("private read past EOF", (void)*(volatile char *)p);
    TRY("private write past EOF", *(volatile char *)p = 1);
    ERR("madvise POPULATE_WRITE private past EOF", madvise(p, pg, MADV_POPULATE_WRITE));
    char *a = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ERR("madvise POPULATE_WRITE on RO anon", madvise(a, pg, MADV_POPULATE_WRITE));
    ERR("madvise POPULATE_READ on PROT_NONE", (mprotect(a, pg, PROT_NONE), madvise(a, pg, MADV_POPULATE_READ)));
    ERR("madvise bad advice", madvise(a, pg, 999));
    ERR("madvise unaligned", madvise(a + 1, pg, MADV_DONTNEED));
    ERR("madvise unmapped", madvise(a + 100 * pg, pg, MADV_DONTNEED));
    /* guard pages in anonymous memory: SIGSEGV, not SIGBUS (LTP's madvise12) */
    char *g = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    base = g;
    ERR("madvise GUARD_INSTALL", madvise(g + pg, pg, MADV_GUARD_INSTALL));
    TRY("write before the guard page", *(volatile char *)(g + pg - 1) = 1);
    TRY("write to the guard page", *(volatile char *)(g + pg + 8) = 1);
    TRY("read of the guard page", (void)*(volatile char *)(g + pg + 16));
    ERR("madvise GUARD_REMOVE", madvise(g + pg, pg, MADV_GUARD_REMOVE));
    TRY("write after GUARD_REMOVE", *(volatile char *)(g + pg + 8) = 1);
    unlink(path);
    return 0;
}
