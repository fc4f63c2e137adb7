/* execve with its argv and envp pointer arrays ending right at the end of a page with
 * nothing mapped after it (km reads the arrays a page at a time), and with strings that
 * end at a page's end, or run into the hole after it (EFAULT; km reads the strings a
 * page at a time too): the exec'd program (this one, "show") prints what it got.
 * Usage: exec_edge [show ARGS...] */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "show")) {
        for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
        for (char **e = environ; *e; e++) printf("env %s\n", *e);
        return 0;
    }
    long page = sysconf(_SC_PAGESIZE);
    char *area = mmap(NULL, 6 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) return 1;
    munmap(area + page, page);  /* holes after the first page, the third and the fifth */
    munmap(area + 3 * page, page);
    munmap(area + 5 * page, page);
    char **args = (char **)(area + page) - 4;  /* 4 pointers, NULL last, end the first page */
    args[0] = argv[0];
    args[1] = "show";
    args[2] = "x";
    args[3] = NULL;
    char **env = (char **)(area + 3 * page) - 2;  /* and 2 the third */
    env[0] = "EDGE=1";
    env[1] = NULL;
    char *edge = area + 5 * page - 8;  /* a string whose NUL is the fifth page's last byte */
    memcpy(edge - 8, "LONG=0123456789", 16);
    args[2] = edge - 8;
    edge[7] = 'x';  /* ... now without its NUL: it runs into the hole */
    if (execve("/proc/self/exe", args, env) < 0) perror("execve into a hole");
    edge[7] = 0;
    args[2] = edge - 8;
    execve("/proc/self/exe", args, env);
    perror("execve");
    return 1;
}
