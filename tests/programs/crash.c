/* A crash with something to look at: a recursion, a global, a big buffer.  km --core
 * writes its core file, which gdb must read as a native one (tests/guest/test_faults.py). */
#include <stdio.h>
#include <string.h>
static volatile long marker = 0x1234abcd;
static char big[1 << 20];
__attribute__((noinline)) static int crash_here(int depth, int *p) {
    if (depth > 0) return crash_here(depth - 1, p) + 1;
    return *p;
}
int main(int argc, char **argv) {
    memset(big, 7, sizeof big);
    printf("about to crash %ld\n", marker);
    fflush(stdout);
    return crash_here(3, (int *)(long)(argc * 0 + 0x10));
}
