/* SPDX-License-Identifier: MIT */
/* A program that knows the library only as installed. */
#include <bytepool.h>
#include <stdio.h>

int main(void) {
    bp_pool *pool = bp_pool_new(NULL);
    char *p = bp_get(pool, 4096);
    int ok = p && bp_cap(p) == 4096 && bp_put(pool, p) == 0 && bp_pool_destroy(pool) == 0;
    printf("consumer %s, bytepool %s\n", ok ? "ok" : "FAILED", bp_version());
    return ok ? 0 : 1;
}
