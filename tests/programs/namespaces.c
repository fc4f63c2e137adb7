/* unshare, setns, mount, umount2 and pivot_root as Linux answers an unprivileged
 * caller: the flags and arguments checked first (EINVAL, EFAULT, EBADF, ENOENT), then
 * EPERM for what needs CAP_SYS_ADMIN; unshare of what a single-threaded process does
 * not share (its descriptor table, its file-system context) changes nothing and
 * succeeds.  One line per check with what the call returned; argv[1]: a directory, or
 * "tables": unshare of the descriptor table and the file-system context by one of two
 * threads; "fs DIR": a thread unshares its file-system context (Go's
 * runtime.LockOSThread tests do) and changes directory and umask, while the main thread
 * reads its own, both many times (a polled getcwd must answer for the caller's). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#define CLONE_NEWTIME_ 0x80
#define CLONE_PIDFD_ 0x1000

static long ret(long r) { return r < 0 ? -errno : r; }
#define SHOW(what, expr) printf("%-52s %ld\n", what, ret(expr))

static void *idle(void *arg) {
    pause();
    return arg;
}

/* with more threads than one, unsharing the descriptor table or the file-system context
 * gives the calling thread its own on Linux; km cannot (EINVAL): "tables" shows those */
static void unshares(int threads, int tables) {
    static const struct { const char *name; long flags; } cases[] = {
        {"0", 0},
        {"CLONE_FILES", CLONE_FILES},
        {"CLONE_FS", CLONE_FS},
        {"CLONE_SYSVSEM", CLONE_SYSVSEM},
        {"CLONE_FILES|CLONE_FS|CLONE_SYSVSEM", CLONE_FILES | CLONE_FS | CLONE_SYSVSEM},
        {"CLONE_THREAD", CLONE_THREAD},
        {"CLONE_SIGHAND", CLONE_SIGHAND},
        {"CLONE_VM", CLONE_VM},
        {"CLONE_NEWNS", CLONE_NEWNS},
        {"CLONE_NEWUTS", CLONE_NEWUTS},
        {"CLONE_NEWIPC", CLONE_NEWIPC},
        {"CLONE_NEWNET", CLONE_NEWNET},
        {"CLONE_NEWPID", CLONE_NEWPID},
        {"CLONE_NEWCGROUP", CLONE_NEWCGROUP},
        {"CLONE_NEWTIME", CLONE_NEWTIME_},
        {"CLONE_NEWNS|CLONE_FILES", CLONE_NEWNS | CLONE_FILES},
        {"CLONE_VFORK (not for unshare)", CLONE_VFORK},
        {"CLONE_PIDFD (not for unshare)", CLONE_PIDFD_},
        {"an unknown flag", 1L << 40},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int table = i >= 1 && i <= 4;
        if (threads > 1 && table != tables) continue;
        char what[96];
        snprintf(what, sizeof what, "unshare %s, %d thread%s", cases[i].name, threads, threads > 1 ? "s" : "");
        SHOW(what, syscall(SYS_unshare, cases[i].flags));
    }
    /* the descriptor table is still the one it was */
    int fd = open("/dev/null", O_RDONLY);
    printf("a descriptor opened after unshare: %d\n", fd);
    close(fd);
}

static void setnses(void) {
    static const char *names[] = {"net", "uts", "ipc", "mnt", "pid", "cgroup", "time", "user"};
    static const int types[] = {CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWPID,
                                CLONE_NEWCGROUP, CLONE_NEWTIME_, CLONE_NEWUSER};
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[64], what[96];
        snprintf(path, sizeof path, "/proc/self/ns/%s", names[i]);
        int fd = open(path, O_RDONLY);
        if (fd < 0) { printf("%s: cannot open\n", path); continue; }
        snprintf(what, sizeof what, "setns %s, nstype 0", names[i]);
        SHOW(what, syscall(SYS_setns, fd, 0));
        snprintf(what, sizeof what, "setns %s, its own type", names[i]);
        SHOW(what, syscall(SYS_setns, fd, types[i]));
        snprintf(what, sizeof what, "setns %s, another type", names[i]);
        SHOW(what, syscall(SYS_setns, fd, types[(i + 1) % 7]));
        close(fd);
    }
    SHOW("setns of a bad descriptor", syscall(SYS_setns, 999, 0));
    SHOW("setns of -1", syscall(SYS_setns, -1, 0));
    int fd = open("/dev/null", O_RDONLY);
    SHOW("setns of /dev/null", syscall(SYS_setns, fd, 0));
    SHOW("setns of /dev/null, CLONE_NEWNET", syscall(SYS_setns, fd, CLONE_NEWNET));
    close(fd);
    int pidfd = syscall(434, getpid(), 0);  /* pidfd_open */
    SHOW("setns of a pidfd, flags 0", syscall(SYS_setns, pidfd, 0));
    SHOW("setns of a pidfd, CLONE_NEWNET", syscall(SYS_setns, pidfd, CLONE_NEWNET));
    SHOW("setns of a pidfd, CLONE_NEWUSER", syscall(SYS_setns, pidfd, CLONE_NEWUSER));
    SHOW("setns of a pidfd, CLONE_VM", syscall(SYS_setns, pidfd, CLONE_VM));
    close(pidfd);
}

static void mounts(const char *dir) {
    char *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/no-such-dir", dir);
    SHOW("mount tmpfs on a directory", mount("none", dir, "tmpfs", 0, NULL));
    SHOW("mount tmpfs on a missing directory", mount("none", missing, "tmpfs", 0, NULL));
    SHOW("mount with a bad target pointer", syscall(SYS_mount, "none", page, "tmpfs", 0, NULL));
    SHOW("mount with a bad type pointer", syscall(SYS_mount, "none", dir, page, 0, NULL));
    SHOW("mount with a bad source pointer", syscall(SYS_mount, page, dir, "tmpfs", 0, NULL));
    SHOW("mount with bad data", syscall(SYS_mount, "none", dir, "tmpfs", 0, page));
    SHOW("mount MS_REMOUNT of /", mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL));
    SHOW("mount MS_BIND", mount(dir, dir, NULL, MS_BIND, NULL));
    SHOW("mount MS_PRIVATE of /", mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL));
    SHOW("mount MS_NOUSER", mount("none", dir, "tmpfs", 1 << 31, NULL));
    SHOW("umount2 of /", umount2("/", 0));
    SHOW("umount2 of /proc, MNT_DETACH", umount2("/proc", MNT_DETACH));
    SHOW("umount2 of a directory", umount2(dir, 0));
    SHOW("umount2 of a missing path", umount2(missing, 0));
    SHOW("umount2 with a bad pointer", syscall(SYS_umount2, page, 0));
    SHOW("umount2 with bad flags", umount2("/", 0x100));
    SHOW("umount2 UMOUNT_NOFOLLOW|MNT_EXPIRE", umount2("/", UMOUNT_NOFOLLOW | MNT_EXPIRE));
    SHOW("pivot_root", syscall(SYS_pivot_root, dir, dir));
    SHOW("pivot_root of missing paths", syscall(SYS_pivot_root, missing, missing));
    SHOW("pivot_root with bad pointers", syscall(SYS_pivot_root, page, page));
    struct stat st;
    printf("the directory is still a plain directory: %d\n", stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
}

static const char *fs_dir;
static char fs_start[4096];
static pthread_barrier_t fs_both;
static long fs_bad[2];

static long cwd_is(const char *want, long n) {
    char buf[4096];
    long bad = 0;
    for (long i = 0; i < n; i++) bad += !getcwd(buf, sizeof buf) || strcmp(buf, want);
    return bad;
}

static void *fs_grandchild(void *arg) {
    char buf[4096];
    *(int *)arg = getcwd(buf, sizeof buf) && !strcmp(buf, fs_dir);
    return 0;
}

static void *fs_own(void *arg) {
    (void)arg;
    long r = ret(syscall(SYS_unshare, CLONE_FS));
    printf("unshare CLONE_FS by one of two threads: %ld\n", r);
    printf("chdir there: %ld\n", ret(chdir(fs_dir)));
    umask(077);
    pthread_barrier_wait(&fs_both);
    fs_bad[1] = cwd_is(fs_dir, 3000);
    pthread_barrier_wait(&fs_both);
    int fd = open("made-by-the-thread", O_CREAT | O_WRONLY, 0666);
    struct stat st;
    int made = fd >= 0 && fstat(fd, &st) == 0;
    printf("a file it makes: %d, mode %o (its umask)\n", made, made ? (unsigned)(st.st_mode & 0777) : 0);
    close(fd);
    int same = 0;
    pthread_t t;
    pthread_create(&t, NULL, fs_grandchild, &same);
    pthread_join(t, NULL);
    printf("a thread it makes shares its directory: %d\n", same);
    return 0;
}

static int own_fs(const char *dir) {
    fs_dir = dir;
    if (!getcwd(fs_start, sizeof fs_start)) return 1;
    pthread_barrier_init(&fs_both, NULL, 2);
    mode_t before = umask(022);
    pthread_t t;
    pthread_create(&t, NULL, fs_own, NULL);
    pthread_barrier_wait(&fs_both);
    fs_bad[0] = cwd_is(fs_start, 3000);
    pthread_barrier_wait(&fs_both);
    pthread_join(t, NULL);
    printf("getcwd answered another thread's directory: main %ld, the thread %ld\n", fs_bad[0], fs_bad[1]);
    printf("main's umask is still 022: %d\n", umask(before) == 022);
    printf("main's directory is still its own: %d\n", cwd_is(fs_start, 1) == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/made-by-the-thread", dir);
    struct stat st;
    printf("the file is in the thread's directory: %d, not here: %d\n", stat(path, &st) == 0,
           stat("made-by-the-thread", &st) != 0);
    unlink(path);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pthread_t t;
    if (argc > 2 && !strcmp(argv[1], "fs")) return own_fs(argv[2]);
    if (argc > 1 && !strcmp(argv[1], "tables")) {
        pthread_create(&t, NULL, idle, NULL);
        unshares(2, 1);
        return 0;
    }
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    unshares(1, 0);
    setnses();
    mounts(dir);
    pthread_create(&t, NULL, idle, NULL);
    unshares(2, 0);
    return 0;
}
