/* SPDX-License-Identifier: MIT */
/*
 * tier.c - tier sets and the size -> tier lookup.
 *
 * A request length maps to a log-linear class (2^cshift classes per power of
 * two, exact below 2^cshift) and a per-pool table gives the first tier that
 * can serve the smallest length of that class. cshift is the smallest value
 * for which no class holds two tier boundaries, so the lookup is one table
 * read plus one comparison; pow2 tiers need cshift 0 and a 64-entry table.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const size_t sizes_pow2[] = {
    128,   256,   512,    1024,   2048,   4096,    8192,    16384,
    32768, 65536, 131072, 262144, 524288, 1048576, 2097152,
};
static const size_t sizes_stream[] = {1024, 4096, 16384, 32768, 65536, 131072};

const size_t *bp_sizes_pow2(size_t *n) {
    if (n)
        *n = sizeof(sizes_pow2) / sizeof(sizes_pow2[0]);
    return sizes_pow2;
}

const size_t *bp_sizes_stream(size_t *n) {
    if (n)
        *n = sizeof(sizes_stream) / sizeof(sizes_stream[0]);
    return sizes_stream;
}

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

static int bitlen(uint64_t v) { return 64 - __builtin_clzll(v | 1); }

/* One past the last v (= len - 1) that shares v's class. */
static uint64_t class_end(uint64_t v, uint32_t cs) {
    int b = bitlen(v);
    int sh = b - (int)cs;
    sh = sh > 0 ? sh : 0;
    uint64_t end = ((v >> sh) + 1) << sh;
    uint64_t oct = (uint64_t)1 << b;
    return end < oct ? end : oct;
}

static uint64_t class_of(uint64_t v, uint32_t cs) {
    int sh = bitlen(v) - (int)cs;
    sh = sh > 0 ? sh : 0;
    return ((uint64_t)sh << cs) | (v >> sh);
}

/* Does every class up to max hold at most one tier boundary? */
static bool shift_fits(const size_t *s, uint32_t n, uint32_t cs) {
    uint32_t t = 0;
    for (uint64_t v = 0; v < s[n - 1]; v = class_end(v, cs)) {
        uint64_t end = class_end(v, cs);
        while (t < n && s[t] < v + 1)
            t++;
        uint32_t inside = 0; /* boundaries s with v+1 <= s < end (len s+1 moves on) */
        for (uint32_t u = t; u < n && s[u] < end; u++)
            inside++;
        if (inside > 1)
            return false;
    }
    return true;
}

/* The direct table: lengths up to dmax find their bin with one shift and
 * one load. Its granularity 2^k must divide every tier size it covers (a
 * bucket may not hold a tier boundary); the k covering most lengths wins. */
static void direct_build(bp_pool *pool, const size_t *s, uint32_t n) {
    size_t best = 0;
    uint32_t best_k = 0;
    for (uint32_t k = 0; k < 24; k++) {
        size_t cover = (size_t)BP_DTAB << k;
        if (cover > s[n - 1])
            cover = s[n - 1];
        bool fits = true;
        for (uint32_t t = 0; t < n && s[t] < cover; t++)
            fits = fits && (s[t] & (((size_t)1 << k) - 1)) == 0;
        if (fits && cover > best) {
            best = cover;
            best_k = k;
        }
    }
    uint32_t t = 0;
    for (size_t b = 0; b < BP_DTAB && (b << best_k) < best; b++) {
        while (s[t] < (b << best_k) + 1) /* the bucket's lengths all share this tier */
            t++;
        pool->dtab[b] = (uint16_t)bp__bin_off(t);
    }
    pool->dshift = best_k;
    pool->dmax = best;
}

int bp__tiers_build(bp_pool *pool, const size_t *sizes, size_t n) {
    if (!sizes) {
        sizes = bp_sizes_pow2(&n);
    }
    if (n == 0 || n > BP_MAX_TIERS)
        return EINVAL;
    size_t s[BP_MAX_TIERS];
    memcpy(s, sizes, n * sizeof(size_t));
    qsort(s, n, sizeof(size_t), cmp_size);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0 || s[i] > BP_MAX_TIER_SIZE || (i && s[i] == s[i - 1]))
            return EINVAL;
    }
    uint32_t cs = 0;
    while (cs < BP_CLASS_MAX_SHIFT && !shift_fits(s, (uint32_t)n, cs))
        cs++;
    uint64_t nclass = class_of(s[n - 1] - 1, cs) + 1;
    uint8_t *tab = calloc(nclass, 1);
    if (!tab)
        return ENOMEM;
    uint32_t t = 0;
    for (uint64_t v = 0; v < s[n - 1]; v = class_end(v, cs)) {
        while (s[t] < v + 1)
            t++;
        tab[class_of(v, cs)] = (uint8_t)t;
    }
    for (int o = 0; o < 64; o++) { /* v in octave o has bit length o + 1 */
        int sh = o + 1 - (int)cs;
        sh = sh > 0 ? sh : 0;
        pool->oct[o].shift = (uint32_t)sh;
        pool->oct[o].base = (uint32_t)((uint64_t)sh << cs);
    }
    memcpy(pool->sizes, s, n * sizeof(size_t));
    pool->ntiers = (uint32_t)n;
    pool->max_len = s[n - 1];
    pool->cshift = cs;
    pool->ctab = tab;
    direct_build(pool, s, (uint32_t)n);
    return 0;
}
