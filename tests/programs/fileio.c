/* Writes then reads SIZE MiB of a file in CHUNK KiB chunks: the file I/O benchmark. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/tmp/kt-fileio.bin";
    long mib = argc > 2 ? atol(argv[2]) : 64, chunk = (argc > 3 ? atol(argv[3]) : 64) * 1024;
    char *buf = malloc(chunk);
    memset(buf, 'k', chunk);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    long total = mib << 20, done = 0, sum = 0;
    for (done = 0; done < total; done += chunk) if (write(fd, buf, chunk) != chunk) return 1;
    lseek(fd, 0, SEEK_SET);
    long n;
    while ((n = read(fd, buf, chunk)) > 0) sum += n;
    close(fd);
    unlink(path);
    printf("%ld\n", sum);
    return sum != total;
}
