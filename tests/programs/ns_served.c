/* The namespaces km serves (network, UTS, IPC): unshare, setns back, clone into new
 * ones, and one thread of two in its own.  Root may make them; another user gets
 * EPERM for each.  One line per step, with what the call returned (0 or -errno) and
 * what the program then sees; never the host's own names. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static long ret(long r) { return r < 0 ? -errno : r; }
#define SHOW(what, expr) printf("%-48s %ld\n", what, ret(expr))

static char host0[65];

static const char *nodename(void) {
    static struct utsname u;
    uname(&u);
    return !strcmp(u.nodename, host0) ? "(the host's)" : u.nodename;
}

static void interfaces(const char *when) {
    struct if_nameindex *ifs = if_nameindex();
    printf("interfaces %s:", when);
    if (!ifs) { printf(" error %d\n", errno); return; }
    int lo = 0, others = 0;
    for (struct if_nameindex *i = ifs; i->if_index; i++) {
        if (!strcmp(i->if_name, "lo")) lo++; else others++;
    }
    printf(" lo %d, others %s\n", lo, others ? "some" : "none");
    if_freenameindex(ifs);
}

static long bind_loopback(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    long r = ret(bind(s, (struct sockaddr *)&a, sizeof a));
    close(s);
    return r;
}

static void *other_thread(void *arg) {
    SHOW("thread: unshare CLONE_NEWUTS", unshare(CLONE_NEWUTS));
    SHOW("thread: sethostname", sethostname("km-thread", 9));
    printf("thread: nodename %s\n", nodename());
    return arg;
}

static int child(void *arg) {
    printf("clone child: nodename %s\n", nodename());
    SHOW("clone child: sethostname", sethostname("km-clone", 8));
    printf("clone child: nodename %s\n", nodename());
    interfaces("in the clone child");
    return 3;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    gethostname(host0, sizeof host0);
    int uts0 = open("/proc/thread-self/ns/uts", O_RDONLY);
    int net0 = open("/proc/thread-self/ns/net", O_RDONLY);
    int ipc0 = open("/proc/thread-self/ns/ipc", O_RDONLY);
    printf("namespace files open: %d\n", uts0 >= 0 && net0 >= 0 && ipc0 >= 0);

    /* UTS: a name of its own, seen by what it forks, gone on setns back */
    SHOW("unshare CLONE_NEWUTS", unshare(CLONE_NEWUTS));
    SHOW("sethostname", sethostname("km-uts", 6));
    printf("nodename %s\n", nodename());
    int same = 0;  /* (many calls: under km, the polling tier may answer them) */
    for (int i = 0; i < 200; i++) same += !strcmp(nodename(), "km-uts");
    printf("the same name 200 times: %d\n", same == 200);
    pid_t pid = fork();
    if (pid == 0) {
        printf("forked child: nodename %s\n", nodename());
        sethostname("km-forked", 9);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    printf("after the child renamed its own: nodename %s\n", nodename());
    pthread_t t;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, NULL);
    printf("after the thread renamed its own: nodename %s\n", nodename());
    SHOW("setns back to the first UTS namespace", setns(uts0, CLONE_NEWUTS));
    printf("nodename %s\n", nodename());

    /* IPC: a queue made before is not there after unshare, and is again after setns */
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct msqid_ds ds;
    SHOW("msgctl IPC_STAT of a new queue", msgctl(q, IPC_STAT, &ds) < 0 ? -1 : 0);
    SHOW("unshare CLONE_NEWIPC", unshare(CLONE_NEWIPC));
    SHOW("msgctl IPC_STAT after", msgctl(q, IPC_STAT, &ds) < 0 ? -1 : 0);
    SHOW("setns back to the first IPC namespace", setns(ipc0, 0));
    SHOW("msgctl IPC_STAT back", msgctl(q, IPC_STAT, &ds) < 0 ? -1 : 0);
    msgctl(q, IPC_RMID, NULL);

    /* network: only a loopback interface, down */
    interfaces("before");
    SHOW("bind 127.0.0.1", bind_loopback());
    SHOW("unshare CLONE_NEWNET", unshare(CLONE_NEWNET));
    interfaces("after");
    SHOW("bind 127.0.0.1 after", bind_loopback());
    SHOW("setns back to the first network namespace", setns(net0, CLONE_NEWNET));
    interfaces("back");
    SHOW("bind 127.0.0.1 back", bind_loopback());

    /* clone into new UTS and network namespaces */
    static char stack[64 * 1024];
    pid = clone(child, stack + sizeof stack, CLONE_NEWUTS | CLONE_NEWNET | SIGCHLD, NULL);
    int err = errno, status = 0;
    if (pid > 0) waitpid(pid, &status, 0);  /* (then the line: the child's are before it) */
    printf("clone CLONE_NEWUTS|CLONE_NEWNET: %s\n", pid > 0 ? "a child" : strerror(err));
    if (pid > 0) printf("clone child status %d\n", WEXITSTATUS(status));
    printf("parent: nodename %s\n", nodename());

    /* what km does not serve (root may natively: km says EPERM, docs/known-issues.md),
     * and what it refuses */
    if (geteuid() != 0) SHOW("unshare CLONE_NEWUTS|CLONE_NEWPID", unshare(CLONE_NEWUTS | CLONE_NEWPID));
    SHOW("setns of a UTS file as CLONE_NEWNET", setns(uts0, CLONE_NEWNET));
    printf("nodename %s\n", nodename());
    return 0;
}
