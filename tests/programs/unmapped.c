/* munmap and mmap again, over and over: the memory comes back zeroed, and a touch of
 * an unmapped range is a SIGSEGV at that address (km keeps the memslots of unmapped
 * ranges for reuse, memory/slots.py). */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static sigjmp_buf back;
static volatile char *expected;
static volatile int right_address;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    right_address = si->si_addr == expected && si->si_code == SEGV_MAPERR;
    siglongjmp(back, 1);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    int zeroed = 1, faults = 0, right = 0;
    for (int round = 0; round < 200; round++) {
        size_t size = (size_t)(1 + round % 4) * 16 * 4096;
        char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 1;
        for (size_t i = 0; i < size; i += 4096) {
            if (p[i] != 0) zeroed = 0;
            p[i] = (char)round;
        }
        munmap(p, size);
        if (round % 10 == 0) {
            expected = p + 100 + round;
            if (sigsetjmp(back, 1) == 0) {
                *expected = 1;
            } else {
                faults++;
                right += right_address;
            }
        }
    }
    printf("fresh memory zeroed: %s\n", zeroed ? "yes" : "no");
    printf("touches of unmapped memory: %d, SIGSEGV at that address: %d\n", faults, right);
    return 0;
}
