/* A program for the gdb stub's tests (tests/guest/test_gdb.py): functions to break in,
 * locals to print, threads, a crash on request, a loop to attach to. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

volatile int counter;
volatile long watched;
volatile int stop_loop; /* a debugger sets it to end "loop" */

__attribute__((noinline)) int square(int x)
{
    int result = x * x;
    counter += result;
    return result;
}

__attribute__((noinline)) int sum_squares(int n)
{
    int total = 0;
    for (int i = 1; i <= n; i++)
        total += square(i);
    return total;
}

__attribute__((noinline)) void *worker(void *arg)
{
    long id = (long)arg;
    int v = square((int)id + 10);
    return (void *)(long)v;
}

__attribute__((noinline)) void crash(int *p)
{
    *p = 42;
}

__attribute__((noinline)) void bump(int n)
{
    for (int i = 0; i < n; i++)
        watched += i;
}

volatile int spinning;

__attribute__((noinline)) void *spinner(void *arg)
{
    (void)arg;
    spinning = 1;
    for (;;)
        counter++;
    return NULL;
}

__attribute__((noinline)) void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        sleep(100);
    return NULL;
}

__attribute__((noinline)) long stack_sum(int n)  /* a local on the stack, for a watchpoint there */
{
    volatile long local = 0;
    for (int i = 1; i <= n; i++)
        local += square(i);
    return local;
}

static void on_usr1(int sig)
{
    (void)sig;
    write(1, "usr1 handled\n", 13);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "plain";
    if (!strcmp(mode, "plain")) {
        int total = sum_squares(4);
        printf("total %d\n", total);
        return total % 256 == 30 ? 7 : 1;
    }
    if (!strcmp(mode, "threads")) {
        pthread_t t[3];
        for (long i = 0; i < 3; i++)
            pthread_create(&t[i], NULL, worker, (void *)i);
        long sum = 0;
        for (int i = 0; i < 3; i++) {
            void *r;
            pthread_join(t[i], &r);
            sum += (long)r;
        }
        printf("threads %ld\n", sum);
        return 0;
    }
    if (!strcmp(mode, "crash")) {
        crash((int *)16);
        return 0;
    }
    if (!strcmp(mode, "threadcrash")) {  /* a crash with two more threads: one computing, one asleep */
        pthread_t a, b;
        pthread_create(&a, NULL, spinner, NULL);
        pthread_create(&b, NULL, sleeper, NULL);
        while (!spinning)
            ;
        usleep(10000);
        crash((int *)16);
        return 0;
    }
    if (!strcmp(mode, "count")) {  /* square() called N times (bench/gdb_roundtrip.py) */
        int n = argc > 2 ? atoi(argv[2]) : 0;
        for (int i = 0; i < n; i++)
            square(i);
        return 0;
    }
    if (!strcmp(mode, "fork")) {  /* the child computes, the parent reports how it ended */
        pid_t child = fork();
        if (child == 0)
            _exit(square(5) == 25 ? 5 : 1);
        int status;
        waitpid(child, &status, 0);
        printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return 0;
    }
    if (!strcmp(mode, "exec")) {  /* becomes "plain" (catch exec) */
        execl("/proc/self/exe", argv[0], "plain", (char *)NULL);
        return 9;
    }
    if (!strcmp(mode, "syscall")) {  /* stepping over a system call instruction */
        pid_t parent = getppid();
        printf("parent %d\n", (int)parent);
        return 0;
    }
    if (!strcmp(mode, "signal")) {
        signal(SIGUSR1, on_usr1);
        raise(SIGUSR1);
        printf("after raise\n");
        return 3;
    }
    if (!strcmp(mode, "watch")) {
        bump(5);
        printf("watched %ld\n", watched);
        printf("stack %ld\n", stack_sum(3));
        return 0;
    }
    if (!strcmp(mode, "loop")) {  /* runs until a debugger sets stop_loop (or 60 s pass) */
        printf("looping\n");
        fflush(stdout);
        for (long i = 0; i < 600 && !stop_loop; i++) {
            square(2);
            usleep(100000);
        }
        printf("loop done %d\n", stop_loop);
        return stop_loop ? 0 : 1;
    }
    return 2;
}
