/* An AIO context across a snapshot: a completion queued before it is taken after it,
 * and the context serves new requests.  Usage: snapaio [SNAPSHOT [exit|stay]]; natively
 * (no SNAPSHOT) the call is ENOSYS and the program goes on.  stdout is the same in a
 * native run, the first run under km (stay) and every resumed run (after the first run's
 * part, with exit). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "kontain.h"
#include "kt_aio.h"

static char buf[2][8];
static struct iocb cb[2];

static long pread_at(unsigned long ctx, int i, int fd, long off) {
    memset(&cb[i], 0, sizeof cb[i]);
    cb[i].aio_fildes = fd;
    cb[i].aio_buf = (uintptr_t)buf[i];
    cb[i].aio_nbytes = 5;
    cb[i].aio_offset = off;
    cb[i].aio_data = 10 + i;
    struct iocb *one = &cb[i];
    return syscall(SYS_io_submit, ctx, 1, &one);
}

static void take(unsigned long ctx) {
    struct io_event ev;
    long n = syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL);
    printf("getevents: %ld, data %llu res %lld \"%.5s\"\n", n, (unsigned long long)ev.data, (long long)ev.res,
           buf[ev.data - 10]);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : NULL;
    int leave = argc > 2 && strcmp(argv[2], "exit") == 0;
    char dir[4096] = "/tmp", file[4200];
    if (path) {
        snprintf(dir, sizeof dir, "%s", path);
        dirname(dir);
    }
    snprintf(file, sizeof file, "%s/snapaio.dat", dir);
    int w = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    write(w, "0123456789", 10);
    close(w);
    int fd = open(file, O_RDONLY);
    unsigned long ctx = 0;
    printf("setup: %ld\n", syscall(SYS_io_setup, 8, &ctx));
    printf("submit before: %ld\n", pread_at(ctx, 0, fd, 0));
    fflush(stdout);
    long r = km_snapshot(path, leave ? KM_SNAPSHOT_EXIT : 0);
    fprintf(stderr, "snapshot call: %ld\n", r);
    take(ctx);  /* the completion queued before the snapshot */
    printf("submit after: %ld\n", pread_at(ctx, 1, fd, 5));
    take(ctx);
    printf("destroy: %ld\n", syscall(SYS_io_destroy, ctx));
    return 0;
}
