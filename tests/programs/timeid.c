/* Time, identity and system information: prints relations, not values that differ
 * between two runs. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    struct timespec t0, t1, r;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct timespec d = { 0, 20 * 1000 * 1000 };
    printf("nanosleep=%d\n", nanosleep(&d, NULL));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("slept at least 20 ms: %d\n", ms >= 20);
    printf("clock_getres=%d\n", clock_getres(CLOCK_MONOTONIC, &r));
    struct timeval tv; printf("gettimeofday=%d\n", gettimeofday(&tv, NULL));
    time_t now = time(NULL);
    printf("time agrees with gettimeofday: %d\n", now - tv.tv_sec <= 1);
    struct timespec rt; clock_gettime(CLOCK_REALTIME, &rt);
    printf("realtime after 2020: %d\n", rt.tv_sec > 1577836800);
    printf("pid==tid: %d\n", getpid() == syscall(SYS_gettid));
    printf("ppid>0: %d\n", getppid() > 0);
    printf("uid==euid: %d gid==egid: %d\n", getuid() == geteuid(), getgid() == getegid());
    printf("pgrp>0: %d sid>0: %d\n", getpgrp() > 0, getsid(0) > 0);
    struct utsname u; uname(&u);
    printf("uname: %s %s\n", u.sysname, u.machine);
    unsigned char rnd[32] = {0}; int nz = 0;
    printf("getrandom=%zd\n", getrandom(rnd, sizeof rnd, 0));
    for (int i = 0; i < 32; i++) nz |= rnd[i];
    printf("random not all zero: %d\n", nz != 0);
    struct rlimit rl; printf("getrlimit stack=%d\n", getrlimit(RLIMIT_STACK, &rl));
    struct sysinfo si; printf("sysinfo=%d ram>0=%d\n", sysinfo(&si), si.totalram > 0);
    struct tms tm; printf("times ok=%d\n", times(&tm) != (clock_t)-1);
    struct rusage ru; printf("getrusage=%d\n", getrusage(RUSAGE_SELF, &ru));
    cpu_set_t set; CPU_ZERO(&set);
    printf("sched_getaffinity=%d cpus>0=%d\n", sched_getaffinity(0, sizeof set, &set), CPU_COUNT(&set) > 0);
    printf("sched_yield=%d\n", sched_yield());
    unsigned cpu = 99, node = 99; printf("getcpu=%ld\n", syscall(SYS_getcpu, &cpu, &node, NULL));
    printf("cpu<99: %d\n", cpu < 99);
    char host[256]; printf("gethostname=%d\n", gethostname(host, sizeof host));
    return 0;
}
