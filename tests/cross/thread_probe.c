/* SPDX-License-Identifier: MIT */
/* thread_probe - can the emulator run a second thread and a fork() child?
 * Under Debian bookworm's qemu-aarch64 (7.2) on this project's build machine
 * neither returns (pthread_create and fork spin at 100% CPU and never reach
 * the host's clone), which is why cross runs there leave out the tests that
 * need them (tests/CMakeLists.txt). Exit 0 when both work. */
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void *run(void *arg) {
    *(int *)arg = 1;
    return NULL;
}

int main(void) {
    int ran = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, run, &ran) != 0 || pthread_join(t, NULL) != 0 || !ran)
        return 1;
    pid_t pid = fork();
    if (pid == 0)
        _exit(7);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
        return 1;
    printf("threads and fork() run under this emulator\n");
    return 0;
}
