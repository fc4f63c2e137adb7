/* The thread group's leader ending before the others:
 *   leader exit    the main thread calls pthread_exit; another thread sleeps, then
 *                  prints and ends the process (natively it does so after its sleep)
 *   leader exec    a thread other than the main one forks; in the child, a thread
 *                  other than the child's first execs this program again (Go's
 *                  syscall.Exec from a goroutine: the leader ends during the exec)
 *   leader execed  what the exec runs */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *self;

static void *sleeper(void *arg) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    usleep(300 * 1000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("the other thread slept its whole time: %d\n", ms >= 300);
    return arg;
}

static void *execer(void *arg) {
    usleep(50 * 1000);
    char *argv[] = {self, "execed", NULL};
    execv("/proc/self/exe", argv);
    perror("execv");
    _exit(99);
}

static void *spinner(void *arg) {
    for (volatile unsigned long i = 0;; i++) {}
    return arg;
}

static void *forker(void *arg) {
    pid_t pid = fork();
    if (pid == 0) {
        pthread_t t[3];
        pthread_create(&t[0], NULL, spinner, NULL);
        pthread_create(&t[1], NULL, spinner, NULL);
        pthread_create(&t[2], NULL, execer, NULL);
        pause();
        _exit(98);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child: %s %d\n", WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return arg;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    self = argv[0];
    pthread_t t;
    if (argc > 1 && !strcmp(argv[1], "exit")) {
        pthread_create(&t, NULL, sleeper, NULL);
        pthread_exit(NULL);
    }
    if (argc > 1 && !strcmp(argv[1], "execed")) {
        printf("the exec'd program runs\n");
        return 7;
    }
    if (argc > 1 && !strcmp(argv[1], "exec")) {
        for (int i = 0; i < 5; i++) {
            pthread_create(&t, NULL, forker, NULL);
            pthread_join(t, NULL);
        }
        return 0;
    }
    return 2;
}
