/* A program whose start-up makes calls that may wait but return at once (as the busybox
 * of runtime-tools' rootfs makes wait4(-1, WNOHANG) before it sets its trap), works a
 * few milliseconds, says so, and only then installs its SIGTERM handler and waits for
 * it: tests/oci/test_ready.py, `krun start` returns once every thread of the program
 * waits, so its line is written then.  On SIGTERM it says so and exits 0. */
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static void on(int s) { (void)s; got = 1; }

static double cpu_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(void) {
    int st;
    waitpid(-1, &st, WNOHANG); /* no child: ECHILD at once */
    poll(0, 0, 0);
    double t0 = cpu_ms();
    volatile unsigned long x = 0;
    while (cpu_ms() - t0 < 5)
        for (int i = 0; i < 10000; i++) x += i;
    write(1, "started up\n", 11);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on;
    sigaction(SIGTERM, &sa, 0);
    while (!got) pause();
    write(1, "got SIGTERM\n", 12);
    return 0;
}
