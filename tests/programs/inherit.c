/* The signal state a program is started with: execve keeps ignored signals ignored and
 * the mask as it was (nohup relies on the first).  Prints every ignored and every
 * blocked signal. */
#include <signal.h>
#include <stdio.h>

int main(void) {
    sigset_t mask;
    sigprocmask(SIG_BLOCK, NULL, &mask);
    printf("ignored:");
    for (int sig = 1; sig < 65; sig++) {
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN) printf(" %d", sig);
    }
    printf("\nblocked:");
    for (int sig = 1; sig < 65; sig++)
        if (sigismember(&mask, sig) == 1) printf(" %d", sig);
    printf("\n");
    return 0;
}
