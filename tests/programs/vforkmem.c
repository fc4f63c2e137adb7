/* What a vfork child (clone CLONE_VM | CLONE_VFORK) writes into its parent's memory stays
 * there once the child execs or exits, as spawn helpers count on:
 *   - posix_spawn of a program that does not exist fails with ENOENT (glibc's child
 *     stores the exec's errno in the parent's frame, then exits 127)
 *   - a raw clone child writes a global, a heap buffer, a fresh page of an mmap and its
 *     parent's stack variable, then exits; another writes, then execs /bin/true
 *   - a vfork() child sets a variable and _exits
 *   - with a second thread counting in a page the children write too: what that thread
 *     writes meanwhile must stay (km's copy of the child's whole pages undid it, and Go's
 *     os/exec, vfork children on the parent's stack, died of it), and what the clone
 *     children (a stack of their own) write beside it too; posix_spawn and the raw clone
 *     children again
 * Prints what the parent sees; exit status 0 unless a call failed. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static volatile int global;
static volatile struct {
    long counter;
    char beside[64];  /* (the counter's page: written by the children too) */
} shared_page __attribute__((aligned(4096)));
static volatile int stop, went_back;

static void *count(void *arg) {
    (void)arg;
    long last = 0;
    while (!stop) {
        long now = shared_page.counter;
        if (now < last)
            went_back = 1;
        shared_page.counter = last = now + 1;
    }
    return NULL;
}
static char *heap, *fresh;

static int beside_child(void *arg) {
    char *targv[] = {"true", NULL};
    shared_page.beside[(long)arg] = 1;
    execve("/bin/true", targv, environ);
    _exit(126);
}

struct shared {
    volatile int *on_stack;
    int exec_it;
};

static int child(void *arg) {
    struct shared *s = arg;
    global = 42;
    strcpy(heap, "written by the child");
    fresh[100] = 'f';
    *s->on_stack = 7;
    if (s->exec_it) {
        char *argv[] = {"true", NULL};
        execve("/bin/true", argv, environ);
        _exit(126);
    }
    _exit(0);
}

static void clone_child(int exec_it) {
    volatile int on_stack = 0;
    struct shared s = {&on_stack, exec_it};
    global = 0;
    strcpy(heap, "untouched");
    fresh[100] = 0;
    size_t size = 64 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pid_t pid = clone(child, stack + size, CLONE_VM | CLONE_VFORK | SIGCHLD, &s);
    int st = -1;
    if (pid > 0)
        waitpid(pid, &st, 0);
    printf("clone child (%s): status %d, global %d, heap \"%s\", fresh page '%c', stack variable %d\n",
           exec_it ? "execs" : "exits", WEXITSTATUS(st), global, heap, fresh[100] ? fresh[100] : '0', on_stack);
    munmap(stack, size);
}

int main(void) {
    pid_t pid;
    char *argv[] = {"nonexistent", NULL};
    int r = posix_spawn(&pid, "/nonexistent/program", NULL, NULL, argv, environ);
    printf("posix_spawn of a missing program: %s\n", r ? strerror(r) : "0");
    if (r == 0)
        waitpid(pid, NULL, 0);
    char *targv[] = {"true", NULL};
    r = posix_spawn(&pid, "/bin/true", NULL, NULL, targv, environ);
    int st = -1;
    if (r == 0)
        waitpid(pid, &st, 0);
    printf("posix_spawn of /bin/true: %d, status %d\n", r, WEXITSTATUS(st));
    heap = malloc(64);
    fresh = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    clone_child(0);
    clone_child(1);
    volatile int set = 0;
    pid = vfork();
    if (pid == 0) {
        set = 5;
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    printf("vfork child set %d\n", set);
    pthread_t counter_thread;
    pthread_create(&counter_thread, NULL, count, NULL);
    size_t size = 64 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 20; i++) {
        if (i % 2) {  /* vfork(): the child runs on its parent's stack */
            pid = vfork();
            if (pid == 0) {
                execve("/bin/true", targv, environ);
                _exit(126);
            }
        } else {  /* clone's form: a stack of its own, as posix_spawn's */
            pid = clone(beside_child, stack + size, CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)(long)i);
        }
        if (pid < 0)  /* (says which part failed, should a write go missing) */
            printf("%s %d failed: %s\n", i % 2 ? "vfork" : "clone", i, strerror(errno));
        waitpid(pid, NULL, 0);
        usleep(1000);
    }
    munmap(stack, size);
    int beside = 0;
    for (int i = 0; i < 20; i++)
        beside += shared_page.beside[i];  /* (the even ones: the clone children's) */
    r = posix_spawn(&pid, "/nonexistent/program", NULL, NULL, argv, environ);
    printf("with a thread counting meanwhile: posix_spawn of a missing program: %s\n", r ? strerror(r) : "0");
    if (r == 0)
        waitpid(pid, NULL, 0);
    clone_child(0);
    clone_child(1);
    stop = 1;
    pthread_join(counter_thread, NULL);
    printf("with a thread counting meanwhile: the count %s, %d of 10 clone children's writes beside it\n",
           went_back ? "WENT BACK" : "never went back", beside);
    return 0;
}
