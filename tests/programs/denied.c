/* Calls that km needs from the host for itself and that a container's seccomp profile
 * may deny (oci/config.py's KM_NEEDS): what the program gets from each, then a thread.
 * Under krun the program must meet the profile's verdict as under crun. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct open_how_ { unsigned long long flags, mode, resolve; };

static void *thread(void *arg) { return arg; }

static void say(const char *what, long r) {
    printf("%s: %s\n", what, r < 0 ? strerror(errno) : "ok");
    fflush(stdout);
}

int main(void) {
    struct open_how_ how = {O_RDONLY | O_DIRECTORY, 0, 0};
    say("openat2", syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how));
    say("faccessat2", syscall(SYS_faccessat2, AT_FDCWD, "/", F_OK, 0));
    char args[88] = {0};
    say("clone3 of size 0", syscall(SYS_clone3, args, 0));  /* EINVAL when it is let through */
    pthread_t t;
    int e = pthread_create(&t, NULL, thread, NULL);
    printf("pthread_create: %s\n", e ? strerror(e) : "ok");
    if (!e) pthread_join(t, NULL);
    return 0;
}
