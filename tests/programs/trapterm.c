/* SIGTERM handled from the first instruction of main: the first thing it does is install
 * the handler, then it waits; on SIGTERM it says so and exits 0.  tests/oci/test_ready.py:
 * `krun start` returns once the program runs, so a SIGTERM sent right after reaches it. */
#include <signal.h>
#include <unistd.h>
#include <string.h>
static volatile sig_atomic_t got;
static void on(int s) { (void)s; got = 1; }
int main(void) {
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on;
    sigaction(SIGTERM, &sa, 0);
    while (!got) pause();
    write(1, "got SIGTERM\n", 12);
    return 0;
}
