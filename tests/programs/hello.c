/* The smallest program: one line to stdout, exit status 0. */
#include <stdio.h>
int main(void) { puts("hello from a kontain guest"); return 0; }
