/* exec while other threads run and keep making threads (Go's syscall TestExec does
 * this): every other thread ends first, one being made meanwhile before it starts
 * (kernel/runstate.py), and the new program runs alone. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void *spin(void *a) { volatile unsigned long x = 0; for (;;) { x++; if ((x & 0xfffff) == 0) getppid(); } return a; }
static void *spawner(void *a) { for (;;) { pthread_t t; if (pthread_create(&t, NULL, spawner, NULL) == 0) pthread_detach(t); usleep(100); pthread_exit(0);} return a; }
int main(int argc, char **argv) {
    if (argc > 1) { printf("exec'd %s\n", argv[1]); return 0; }
    for (int i = 0; i < 4; i++) { pthread_t t; pthread_create(&t, NULL, i < 2 ? spin : spawner, NULL); }
    usleep(20000);
    char *args[] = {argv[0], "ok", NULL};
    execv(argv[0], args);
    perror("execv");
    return 1;
}
