/* SPDX-License-Identifier: MIT */
/* A program that uses libbytepool_uring as installed. */
#define _GNU_SOURCE /* liburing.h needs it (sigset_t, cpu_set_t) */
#include <bytepool_uring.h>
#include <stdio.h>

int main(void) {
    bp_uring_stats st;
    int ok = bp_uring_bufs_destroy(NULL) == 0 && bp_uring_bufs_stats(NULL, &st) != 0;
    printf("uring consumer %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
