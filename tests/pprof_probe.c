/* SPDX-License-Identifier: MIT */
/* pprof_probe.c - writes a heap profile with two known allocation sites
 * for check_pprof.sh: site_big holds 3 x 100000 bytes, site_small 10 x 100.
 *   pprof_probe PROFILE FOLDED */
#include <bytepool.h>

#include <stdio.h>

__attribute__((noinline)) void *site_big(bp_pool *pool) {
    void *p = bp_get(pool, 100000);
    __asm__ volatile("" : : "r"(p) : "memory"); /* a frame of its own: no tail call */
    return p;
}

__attribute__((noinline)) void *site_small(bp_pool *pool) {
    void *p = bp_get(pool, 100);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    bp_config cfg = {0};
    cfg.leaks = BP_LEAKS_ALL;
    bp_pool *pool = bp_pool_new(&cfg);
    void *v[13];
    for (int i = 0; i < 3; i++)
        v[i] = site_big(pool);
    for (int i = 3; i < 13; i++)
        v[i] = site_small(pool);
    FILE *f = fopen(argv[1], "wb"), *g = fopen(argv[2], "w");
    if (!f || !g || bp_pool_profile(pool, f) != 0 || bp_pool_profile_folded(pool, g) != 0)
        return 1;
    fclose(f);
    fclose(g);
    for (int i = 0; i < 13; i++)
        bp_put(pool, v[i]);
    return bp_pool_destroy(pool) == 0 ? 0 : 1;
}
