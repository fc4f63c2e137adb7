/* Prints argv, the environment variables named KT_*, and what it can check of the
 * auxiliary vector without printing addresses (which differ between runs). */
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <elf.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    for (char **e = environ; *e; e++) if (!strncmp(*e, "KT_", 3)) printf("env %s\n", *e);
    printf("AT_PAGESZ=%lu\n", getauxval(AT_PAGESZ));
    printf("AT_CLKTCK=%lu\n", getauxval(AT_CLKTCK));
    printf("AT_PHENT=%lu\n", getauxval(AT_PHENT));
    printf("AT_RANDOM set=%d\n", getauxval(AT_RANDOM) != 0);
    printf("AT_EXECFN=%s\n", (char *)getauxval(AT_EXECFN));
    printf("AT_PLATFORM=%s\n", (char *)getauxval(AT_PLATFORM));
    printf("AT_UID=%d AT_EUID=%d AT_GID=%d AT_EGID=%d\n", getauxval(AT_UID) == getuid(), getauxval(AT_EUID) == geteuid(),
           getauxval(AT_GID) == getgid(), getauxval(AT_EGID) == getegid());
    printf("AT_SECURE=%lu\n", getauxval(AT_SECURE));
    printf("AT_HWCAP nonzero=%d\n", getauxval(AT_HWCAP) != 0);
    Elf64_Phdr *ph = (Elf64_Phdr *)getauxval(AT_PHDR);
    unsigned long n = getauxval(AT_PHNUM);
    int loads = 0;
    for (unsigned long i = 0; i < n; i++) loads += ph[i].p_type == PT_LOAD;
    printf("PT_LOAD segments found through AT_PHDR: %d\n", loads > 0);
    /* the stack is 16-byte aligned at main on x86-64 */
    volatile char c; printf("stack usable=%d\n", (c = 1));
    return 0;
}
