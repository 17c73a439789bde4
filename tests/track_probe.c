/* SPDX-License-Identifier: MIT */
/* track_probe - one deliberate mistake per run, for the memory tools to
 * report: read a buffer after releasing it, read past its capacity, or (in
 * a BP_STRICT_LEN pool) past the length asked for. "clean" uses the whole
 * capacity, as the contract allows, and must produce no report. */
#include <bytepool.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "clean";
    bp_config cfg = {0};
    if (!strcmp(mode, "past-length"))
        cfg.flags = BP_STRICT_LEN;
    bp_pool *pool = bp_pool_new(&cfg);
    volatile char *p = bp_get(pool, 100); /* tier 128 */
    memset((char *)p, 1, 100);
    char sink = 0;
    if (!strcmp(mode, "after-release")) {
        bp_put(pool, (char *)p);
        sink = p[10]; /* use after release */
    } else if (!strcmp(mode, "past-cap")) {
        sink = p[bp_cap((char *)p)]; /* the first byte after the capacity */
        bp_put(pool, (char *)p);
    } else if (!strcmp(mode, "past-length")) {
        sink = p[110]; /* strict: inside the 128-byte tier, past the 100 asked for */
        bp_put(pool, (char *)p);
    } else {
        memset((char *)p, 2, bp_cap((char *)p)); /* all of bp_cap is the caller's */
        sink = p[127];
        bp_put(pool, (char *)p);
    }
    bp_pool_destroy(pool);
    printf("probe %s done (%d)\n", mode, sink);
    return 0;
}
