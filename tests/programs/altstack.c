/* The alternate signal stack as Linux keeps it (sigaltstack, get_sigframe, the frame's
 * uc_stack, rt_sigreturn's restore_altstack).  One mode per run, each printing what it
 * sees; tests/guest/test_signals_altstack.py compares it with a native run.
 *   nested     a handler on the altstack, another signal inside it: flags each sees,
 *              sigaltstack's EPERM while on it
 *   legacy     ss_flags SS_ONSTACK given to sigaltstack: kept, and saved in frames
 *   autodisarm SS_AUTODISARM: disarmed while the handler runs, back after it returns
 *   restore    a handler on the altstack edits its frame's uc_stack: no effect (EPERM inside)
 *   edit       a handler on the normal stack edits uc_stack: the new stack is taken
 *   overflow   handlers nesting on a small altstack until a frame no longer fits: SIGSEGV
 *   readonly   a read-only altstack: SIGSEGV, to a handler on the normal stack, instead
 *   thread     what a frame saves in the first thread and in a new one (none set in either) */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

static char *alt;
static size_t alt_size = 1 << 16;
static int depth;

static int on_alt(void) {
    char here;
    return (uintptr_t)&here > (uintptr_t)alt && (uintptr_t)&here <= (uintptr_t)alt + alt_size;
}

static void show(const char *who, ucontext_t *uc) {
    stack_t now;
    sigaltstack(NULL, &now);
    stack_t again = {.ss_sp = alt, .ss_size = alt_size};
    int r = sigaltstack(&again, NULL);
    printf("%s: on_alt=%d uc_stack.flags=%#x size_ok=%d now.flags=%#x set=%s\n", who, on_alt(),
           (unsigned)uc->uc_stack.ss_flags, uc->uc_stack.ss_size == alt_size, (unsigned)now.ss_flags,
           r ? strerror(errno) : "ok");
}

static void inner(int sig, siginfo_t *si, void *ctx) { (void)sig; (void)si; show("inner", ctx); }

static void outer(int sig, siginfo_t *si, void *ctx) {
    (void)sig; (void)si;
    show("outer", ctx);
    raise(SIGUSR2);
}

static void edit_size(int sig, siginfo_t *si, void *ctx) {
    (void)sig; (void)si;
    ucontext_t *uc = ctx;
    printf("edit: on_alt=%d\n", on_alt());
    uc->uc_stack.ss_size = 1 << 15;  /* what rt_sigreturn reads back */
    uc->uc_stack.ss_flags = 0;
}

static void deeper(int sig, siginfo_t *si, void *ctx) {
    (void)si; (void)ctx;
    depth++;
    if (depth > 1000) { printf("never overflowed\n"); exit(3); }
    raise(sig);
}

static void plain(int sig, siginfo_t *si, void *ctx) {
    (void)sig; (void)si;
    ucontext_t *uc = ctx;
    stack_t now;
    sigaltstack(NULL, &now);
    printf("uc_stack.flags=%#x size=%zu now.flags=%#x\n", (unsigned)uc->uc_stack.ss_flags, uc->uc_stack.ss_size,
           (unsigned)now.ss_flags);
}

static void *thread_main(void *arg) { (void)arg; raise(SIGUSR1); return NULL; }

static volatile int segv_seen;
static void segv_code(int sig, siginfo_t *si, void *uc) { (void)sig; (void)uc; segv_seen = si->si_code; }

static void on(int sig, void (*fn)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa = {.sa_sigaction = fn, .sa_flags = SA_SIGINFO | flags};
    sigaction(sig, &sa, NULL);
}

static void report(const char *when) {
    stack_t now;
    sigaltstack(NULL, &now);
    printf("%s: flags=%#x size_ok=%d\n", when, (unsigned)now.ss_flags, now.ss_size == alt_size);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "nested";
    alt = malloc(alt_size);
    stack_t ss = {.ss_sp = alt, .ss_size = alt_size};
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(mode, "nested")) {
        sigaltstack(&ss, NULL);
        on(SIGUSR1, outer, SA_ONSTACK);
        on(SIGUSR2, inner, SA_ONSTACK);
        raise(SIGUSR1);
        report("after");
    } else if (!strcmp(mode, "legacy")) {
        ss.ss_flags = SS_ONSTACK;
        printf("set: %d\n", sigaltstack(&ss, NULL));
        report("before");
        on(SIGUSR2, inner, SA_ONSTACK);
        raise(SIGUSR2);
    } else if (!strcmp(mode, "autodisarm")) {
        ss.ss_flags = SS_AUTODISARM;
        printf("set: %d\n", sigaltstack(&ss, NULL));
        report("before");
        on(SIGUSR1, outer, SA_ONSTACK);
        on(SIGUSR2, inner, SA_ONSTACK);
        raise(SIGUSR1);
        report("after");
    } else if (!strcmp(mode, "restore") || !strcmp(mode, "edit")) {
        sigaltstack(&ss, NULL);
        on(SIGUSR1, edit_size, strcmp(mode, "edit") ? SA_ONSTACK : 0);
        raise(SIGUSR1);
        stack_t now;
        sigaltstack(NULL, &now);
        printf("after: flags=%#x size=%#zx\n", (unsigned)now.ss_flags, now.ss_size);
    } else if (!strcmp(mode, "overflow")) {
        alt_size = 1 << 14;
        ss.ss_size = alt_size;
        sigaltstack(&ss, NULL);
        on(SIGUSR1, deeper, SA_ONSTACK | SA_NODEFER);
        raise(SIGUSR1);
        printf("returned\n");
    } else if (!strcmp(mode, "readonly")) {
        /* a frame the read-only altstack cannot take: SIGSEGV instead, to a handler on the
         * ordinary stack (Linux's force_sigsegv; LTP's signal06: km ended the program) */
        alt = mmap(NULL, alt_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ss.ss_sp = alt;
        sigaltstack(&ss, NULL);
        on(SIGSEGV, segv_code, 0);
        on(SIGUSR1, outer, SA_ONSTACK);
        mprotect(alt, alt_size, PROT_READ);
        raise(SIGUSR1);
        printf("SIGSEGV instead: si_code %d\n", segv_seen);
        mprotect(alt, alt_size, PROT_READ | PROT_WRITE);
        segv_seen = 0;
        on(SIGUSR2, inner, SA_ONSTACK);
        raise(SIGUSR2);
        printf("writable again: SIGSEGV %d\n", segv_seen);
    } else if (!strcmp(mode, "thread")) {
        on(SIGUSR1, plain, 0);
        raise(SIGUSR1);
        pthread_t t;
        pthread_create(&t, NULL, thread_main, NULL);
        pthread_join(t, NULL);
    } else {
        return 2;
    }
    return 0;
}
