/* Dies the way its argument says: the test compares how it dies natively and under km. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <fcntl.h>

int main(int argc, char **argv) {
    const char *how = argc > 1 ? argv[1] : "";
    volatile int zero = 0;
    if (!strcmp(how, "null-write")) *(volatile int *)0 = 1;
    if (!strcmp(how, "null-read")) return *(volatile int *)0x10;
    if (!strcmp(how, "wild-read")) return *(volatile int *)0x123456789000;
    if (!strcmp(how, "kernel-address")) return *(volatile int *)0xffffffff81000000;
    if (!strcmp(how, "noncanonical")) return *(volatile int *)0x8000000000000000;
    if (!strcmp(how, "exec-null")) ((void (*)(void))0)();
    if (!strcmp(how, "ud2")) __asm__ volatile("ud2");
    if (!strcmp(how, "hlt")) __asm__ volatile("hlt");
    if (!strcmp(how, "int3")) __asm__ volatile("int3");
    if (!strcmp(how, "divide")) return 10 / zero;
    if (!strcmp(how, "abort")) abort();
    if (!strcmp(how, "dontdump")) {  /* two pages of markers, the first MADV_DONTDUMP, then abort */
        char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        for (int i = 0; i < 8192; i++)  /* (made here: the markers are in no file) */
            m[i] = (i < 4096 ? "XONTDUMPME" : "XODUMPEDME")[i % 10] - (i % 10 == 0 ? 20 : 0);
        madvise(m, 4096, MADV_DONTDUMP);
        abort();
    }
    if (!strcmp(how, "raise-term")) raise(SIGTERM);
    if (!strcmp(how, "kill-usr1")) kill(getpid(), SIGUSR1);
    if (!strcmp(how, "write-readonly")) {
        char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p[0] = 1;
    }
    if (!strcmp(how, "unmapped")) {
        char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(p, 8192);
        p[100] = 1;
    }
    if (!strcmp(how, "prot-none")) {
        char *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p[0];
    }
    if (!strcmp(how, "sigbus")) {
        const char *path = argc > 2 ? argv[2] : "/tmp/kt-sigbus";
        int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
        ftruncate(fd, 4096);
        char *p = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
        unlink(path);
        return p[4096 + 10];
    }
    if (!strcmp(how, "stack-overflow")) {
        volatile char big[1 << 16];
        big[0] = 1;
        return main(argc, argv) + big[0];
    }
    if (!strcmp(how, "ignored-usr1")) {
        signal(SIGUSR1, SIG_IGN);
        kill(getpid(), SIGUSR1);
        puts("survived an ignored SIGUSR1");
        return 3;
    }
    puts("no such fault");
    return 1;
}
