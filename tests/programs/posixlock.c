/* POSIX record locks (fcntl F_SETLK) against what km does with a locked file's
 * descriptors: Linux drops every such lock of a process on a file when the process closes
 * any descriptor of that file, so a monitor that makes its calls on a duplicate and
 * closes it drops the program's locks (km's polling tier and mmap did).
 * DIR: the file is DIR/lock.bin.  Each step takes the lock again first.  A child looks with F_GETLK after each step whether the
 * parent's lock is still there, as another process would find it.
 *   1. a write lock, then 3000 writes and 3000 preads of the file (a burst the polling
 *      tier serves)
 *   2. an mmap of the file, read through, unmapped
 *   3. a second descriptor of the file, 3000 writes through it, the lock still held
 *   4. that descriptor closed: Linux drops the lock now, the child sees none
 *   5. a read lock on part of a second file, then writes to it from four threads
 * Prints what the child saw; exit status 0 unless a call failed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[4096], path2[4096];

static const char *seen(const char *file, short type, off_t start) {
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(file, O_RDWR);
        struct flock g = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = 1};
        if (fd < 0 || fcntl(fd, F_GETLK, &g) != 0)
            _exit(2);
        _exit(g.l_type == type ? 1 : 0);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) > 1)
        return "error";
    return WEXITSTATUS(st) ? "held" : "gone";
}

static void *writer(void *arg) {
    int fd = *(int *)arg;
    char b[64] = {0};
    for (int i = 0; i < 1000; i++)
        if (pwrite(fd, b, sizeof b, 4096 + i % 64 * 64) != sizeof b)
            return (void *)1;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    snprintf(path, sizeof path, "%s/lock.bin", argv[1]);
    snprintf(path2, sizeof path2, "%s/lock2.bin", argv[1]);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fd < 0 || fcntl(fd, F_SETLK, &fl) != 0)
        return perror("lock"), 1;
    char buf[512];
    memset(buf, 'k', sizeof buf);
    for (int i = 0; i < 3000; i++)
        if (write(fd, buf, 16) != 16 || pread(fd, buf, 16, i * 16) != 16)
            return perror("write"), 1;
    printf("1. after 3000 writes and reads: %s\n", seen(path, F_WRLCK, 0));
    if (fcntl(fd, F_SETLK, &fl) != 0)  /* (again: each step on its own) */
        return perror("lock again"), 1;
    char *m = mmap(NULL, 48000, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return perror("mmap"), 1;
    long sum = 0;
    for (int i = 0; i < 48000; i += 4096)
        sum += m[i];
    munmap(m, 48000);
    printf("2. after an mmap (%ld): %s\n", sum, seen(path, F_WRLCK, 0));
    if (fcntl(fd, F_SETLK, &fl) != 0)
        return perror("lock again"), 1;
    int fd2 = open(path, O_RDWR);
    for (int i = 0; i < 3000; i++)
        if (write(fd2, buf, 16) != 16)
            return perror("write 2"), 1;
    printf("3. after 3000 writes through a second descriptor: %s\n", seen(path, F_WRLCK, 0));
    close(fd2);
    printf("4. that descriptor closed: %s\n", seen(path, F_WRLCK, 0));
    int fd3 = open(path2, O_CREAT | O_RDWR | O_TRUNC, 0600);
    struct flock rl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 10};
    if (fd3 < 0 || fcntl(fd3, F_SETLK, &rl) != 0)
        return perror("read lock"), 1;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, writer, &fd3);
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad |= r != NULL;
    }
    printf("5. a read lock, after writes from 4 threads: %s; outside it: %s\n", seen(path2, F_RDLCK, 105),
           seen(path2, F_RDLCK, 0));
    close(fd);
    close(fd3);
    unlink(path);
    unlink(path2);
    return bad;
}
