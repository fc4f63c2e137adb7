/* F_SETOWN_EX naming this thread, looked at with F_GETOWN_EX here and in a forked child
 * (km aims the host's signal at a thread of its own and must answer with the program's). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int p[2];
    pipe(p);
    struct f_owner_ex own = {F_OWNER_TID, (pid_t)syscall(SYS_gettid)}, got = {-1, -1};
    printf("F_SETOWN_EX: %d\n", fcntl(p[0], F_SETOWN_EX, &own));
    fcntl(p[0], F_GETOWN_EX, &got);
    printf("F_GETOWN_EX, this thread: %d\n", got.type == F_OWNER_TID && got.pid == own.pid);
    if (fork() == 0) {
        got.pid = -1;
        fcntl(p[0], F_GETOWN_EX, &got);
        printf("F_GETOWN_EX in a child, the parent's thread: %d\n", got.type == F_OWNER_TID && got.pid == own.pid);
        _exit(0);
    }
    wait(NULL);
    return 0;
}
