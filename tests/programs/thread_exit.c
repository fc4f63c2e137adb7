/* A thread other than the main one ends the process with exit(5). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *thread(void *arg) {
    (void)arg;
    printf("thread exits the process\n");
    fflush(stdout);
    exit(5);
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, thread, NULL);
    pause();
    return 0;
}
