/* Files and directories through raw syscalls; each check prints one line, so the
 * native and the km run can be compared line by line. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
/* (musl's headers have no linux/ ones: <linux/fs.h>'s numbers) */
#define FS_IOC_GETFLAGS 0x80086601
#define FS_IOC_SETFLAGS 0x40086602
#define FS_NOATIME_FL 0x80
#define FICLONE_ 0x40049409
#define FICLONERANGE_ 0x4020940d

#define CHECK(what, expr) do { long r_ = (long)(expr); printf("%-28s %ld%s%s\n", what, r_ < 0 ? -1L : r_, \
        r_ < 0 ? " " : "", r_ < 0 ? strerror(errno) : ""); } while (0)

static int cmp_names(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp/kt-files";
    char p[512], q[512], buf[256];
    CHECK("mkdir", mkdir(dir, 0755));
    CHECK("chdir", chdir(dir));
    CHECK("getcwd", getcwd(buf, sizeof buf) ? (long)strlen(buf) : -1);
    int fd = open("a.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK("open", fd >= 3);
    CHECK("write", write(fd, "hello, world\n", 13));
    CHECK("lseek", lseek(fd, 0, SEEK_SET));
    memset(buf, 0, sizeof buf);
    CHECK("read", read(fd, buf, sizeof buf));
    printf("content: %s", buf);
    /* chattr's ioctls (LTP's setxattr03: ENOTTY under km); the flags of a new file, and
     * FS_NOATIME_FL set and cleared (none of the filesystem's own flags in the answer) */
    int attrs = 0;
    long got = ioctl(fd, FS_IOC_GETFLAGS, &attrs);
    CHECK("FS_IOC_GETFLAGS", got);
    if (got == 0) {
        int with = attrs | FS_NOATIME_FL, back = 0;
        CHECK("FS_IOC_SETFLAGS noatime", ioctl(fd, FS_IOC_SETFLAGS, &with));
        ioctl(fd, FS_IOC_GETFLAGS, &back);
        CHECK("... noatime set", (back & FS_NOATIME_FL) != 0);
        CHECK("FS_IOC_SETFLAGS back", ioctl(fd, FS_IOC_SETFLAGS, &attrs));
    }
    CHECK("pwrite", pwrite(fd, "HELLO", 5, 0));
    memset(buf, 0, sizeof buf);
    CHECK("pread", pread(fd, buf, 5, 0));
    printf("pread: %s\n", buf);
    struct iovec iov[3] = { { "one ", 4 }, { "two ", 4 }, { "three\n", 6 } };
    CHECK("writev", writev(fd, iov, 3));
    char b1[5] = {0}, b2[64] = {0};
    struct iovec riov[2] = { { b1, 4 }, { b2, 63 } };
    CHECK("lseek end-14", lseek(fd, -14, SEEK_END));
    CHECK("readv", readv(fd, riov, 2));
    printf("readv: [%s] [%s]", b1, b2);
    struct stat st;
    CHECK("fstat", fstat(fd, &st));
    printf("size=%ld mode=%o regular=%d\n", (long)st.st_size, st.st_mode & 0777, S_ISREG(st.st_mode));
    CHECK("ftruncate", ftruncate(fd, 5));
    CHECK("stat", stat("a.txt", &st));
    printf("size after truncate=%ld\n", (long)st.st_size);
    int fd2 = dup(fd);
    CHECK("dup", fd2 > fd);
    CHECK("dup2", dup2(fd, 100));
    CHECK("dup3 cloexec", dup3(fd, 101, O_CLOEXEC));
    CHECK("F_GETFD 101", fcntl(101, F_GETFD));
    CHECK("F_GETFL", fcntl(fd, F_GETFL) & O_ACCMODE);
    CHECK("F_DUPFD 50", fcntl(fd, F_DUPFD, 50));
    CHECK("close 50", close(50));
    CHECK("close 100", close(100));
    CHECK("close 101", close(101));
    CHECK("close 101 again", close(101));
    /* cachestat and ustat (LTP's cachestat02 and ustat01-02: ENOSYS under km) */
    unsigned long long range[2] = {0, 0}, cstat[5] = {0};
    CHECK("cachestat", syscall(451, fd, range, cstat, 0));
    printf("cached pages: %d\n", cstat[0] >= 1);
    CHECK("cachestat bad flags", syscall(451, fd, range, cstat, 1));
    CHECK("cachestat wild range", syscall(451, fd, (void *)0x400000000000UL, cstat, 0));
    CHECK("cachestat wild result", syscall(451, fd, range, (void *)0x400000000000UL, 0));
    CHECK("cachestat bad fd", syscall(451, 999, range, cstat, 0));
    long us[4];
    CHECK("ustat of its device", syscall(136, (unsigned)st.st_dev, us));
    CHECK("ustat wild", syscall(136, (unsigned)st.st_dev, (void *)0x400000000000UL));
    /* name_to_handle_at (LTP's name_to_handle_at01-03: km's own seccomp filter refused
     * it); the handle's size is a field of the program's struct */
    struct { unsigned bytes; int type; unsigned char h[128]; } fh = {0};
    int mnt = 0;
    CHECK("name_to_handle_at, no room", syscall(303, AT_FDCWD, "a.txt", &fh, &mnt, 0));
    printf("handle size given: %d\n", fh.bytes > 0 && fh.bytes <= 128);
    CHECK("name_to_handle_at", syscall(303, AT_FDCWD, "a.txt", &fh, &mnt, 0));
    CHECK("name_to_handle_at of fd", syscall(303, fd, "", &fh, &mnt, AT_EMPTY_PATH));
    fh.bytes = 129;
    CHECK("name_to_handle_at, too big", syscall(303, AT_FDCWD, "a.txt", &fh, &mnt, 0));
    fh.bytes = 128;
    CHECK("name_to_handle_at, bad flags", syscall(303, AT_FDCWD, "a.txt", &fh, &mnt, 0x8000));
    CHECK("name_to_handle_at, no file", syscall(303, AT_FDCWD, "none.txt", &fh, &mnt, 0));
    CHECK("name_to_handle_at, wild handle", syscall(303, AT_FDCWD, "a.txt", (void *)0x400000000000UL, &mnt, 0));
    CHECK("name_to_handle_at, wild mnt", syscall(303, AT_FDCWD, "a.txt", &fh, (void *)0x400000000000UL, 0));
    if (geteuid() != 0) /* (root has CAP_DAC_READ_SEARCH natively; km refuses it as for anyone else) */
        CHECK("open_by_handle_at", syscall(304, AT_FDCWD, &fh, O_RDONLY));
    /* reflinks (LTP's ioctl_ficlone04: ENOTTY under km); the source is a descriptor,
     * also inside FICLONERANGE's struct, and the hard limit's number is km's own */
    int dst = open("clone.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
    struct rlimit nofile;
    getrlimit(RLIMIT_NOFILE, &nofile);
    long high = nofile.rlim_max < (1 << 20) ? (long)nofile.rlim_max : 1 << 20;
    CHECK("FICLONE of a file", ioctl(dst, FICLONE_, fd) == 0 || errno != ENOTTY);
    CHECK("FICLONE of a bad fd", ioctl(dst, FICLONE_, 999));
    CHECK("FICLONE of the hard limit's fd", ioctl(dst, FICLONE_, high));
    long long crange[4] = {fd, 0, 0, 0};
    CHECK("FICLONERANGE of a file", ioctl(dst, FICLONERANGE_, crange) == 0 || errno != ENOTTY);
    crange[0] = high;
    CHECK("FICLONERANGE of the hard limit's fd", ioctl(dst, FICLONERANGE_, crange));
    crange[0] = high + (1LL << 32);
    CHECK("FICLONERANGE of it plus 2^32", ioctl(dst, FICLONERANGE_, crange));
    CHECK("FICLONERANGE of a wild struct", ioctl(dst, FICLONERANGE_, (void *)0x400000000000UL));
    close(dst);
    unlink("clone.txt");
    CHECK("close fd2", close(fd2));
    CHECK("close fd", close(fd));
    CHECK("symlink", symlink("a.txt", "link"));
    memset(buf, 0, sizeof buf);
    CHECK("readlink", readlink("link", buf, sizeof buf));
    printf("readlink: %s\n", buf);
    CHECK("lstat", lstat("link", &st));
    printf("is link=%d\n", S_ISLNK(st.st_mode));
    CHECK("rename", rename("a.txt", "b.txt"));
    CHECK("access b", access("b.txt", R_OK | W_OK));
    CHECK("access a", access("a.txt", F_OK));
    CHECK("link", link("b.txt", "c.txt"));
    CHECK("mkdir sub", mkdir("sub", 0700));
    /* a directory with O_CREAT: EISDIR (LTP's open11), EINVAL with O_DIRECTORY */
    CHECK("O_CREAT on a directory", open("sub", O_RDONLY | O_CREAT, 0644));
    CHECK("O_CREAT|O_DIRECTORY", open("sub", O_RDONLY | O_CREAT | O_DIRECTORY, 0644));
    /* into another directory and back (a Landlock domain of ABI 1 refuses it: EXDEV) */
    CHECK("link into sub", link("b.txt", "sub/d.txt"));
    CHECK("rename into sub", rename("c.txt", "sub/e.txt"));
    CHECK("renameat2 exchange", syscall(SYS_renameat2, AT_FDCWD, "sub/e.txt", AT_FDCWD, "link", 2));
    CHECK("rename out of sub", rename("sub/e.txt", "c.txt"));
    CHECK("rename back", rename("link", "sub/e.txt"));
    CHECK("rename out again", rename("sub/e.txt", "link"));
    CHECK("unlink sub/d.txt", unlink("sub/d.txt"));
    CHECK("openat O_DIRECTORY", (fd = open(".", O_RDONLY | O_DIRECTORY)) >= 0);
    char *names[16]; int n = 0;
    char dbuf[4096];
    long nread;
    while ((nread = syscall(SYS_getdents64, fd, dbuf, sizeof dbuf)) > 0) {
        for (long off = 0; off < nread;) {
            struct { unsigned long ino; long off; unsigned short reclen; unsigned char type; char name[]; } *d = (void *)(dbuf + off);
            if (n < 16) names[n++] = strdup(d->name);
            off += d->reclen;
        }
    }
    qsort(names, n, sizeof *names, cmp_names);
    printf("entries:");
    for (int i = 0; i < n; i++) printf(" %s", names[i]);
    printf("\n");
    CHECK("fstatat", fstatat(fd, "sub", &st, 0));
    printf("sub is dir=%d\n", S_ISDIR(st.st_mode));
    CHECK("unlinkat", unlinkat(fd, "sub", AT_REMOVEDIR));
    CHECK("fchdir", fchdir(fd));
    close(fd);
    int pfd[2];
    CHECK("pipe", pipe(pfd));
    CHECK("pipe write", write(pfd[1], "through a pipe", 14));
    memset(buf, 0, sizeof buf);
    CHECK("pipe read", read(pfd[0], buf, sizeof buf));
    printf("pipe: %s\n", buf);
    CHECK("pipe2 nonblock", pipe2(pfd, O_NONBLOCK));
    CHECK("read empty nonblock", read(pfd[0], buf, 1));
    CHECK("chmod", chmod("b.txt", 0600));
    CHECK("stat mode", stat("b.txt", &st) ? -1 : (long)(st.st_mode & 0777));
    CHECK("truncate", truncate("b.txt", 2));
    CHECK("unlink link", unlink("link"));
    CHECK("unlink b", unlink("b.txt"));
    CHECK("unlink c", unlink("c.txt"));
    CHECK("unlink missing", unlink("nope"));
    CHECK("open missing", open("nope", O_RDONLY));
    CHECK("open dir for write", open(".", O_WRONLY));
    snprintf(p, sizeof p, "%s", dir);
    CHECK("chdir /", chdir("/"));
    CHECK("rmdir", rmdir(p));
    (void)q;
    CHECK("close bad fd", close(12345));
    CHECK("read bad fd", read(999, buf, 1));
    CHECK("umask", umask(022));
    CHECK("umask again", umask(022));
    return 0;
}
