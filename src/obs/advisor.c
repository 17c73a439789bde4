/* SPDX-License-Identifier: MIT */
/*
 * advisor.c - proposes a tier set from the recorded lengths.
 *
 * Given distinct lengths v1 < ... < vm with counts, choosing k tiers to
 * minimise total waste sum(count * (tier - length)) has an optimal solution
 * whose tiers are observed lengths (lowering a tier to the largest length it
 * serves never adds waste), and the largest length must be a tier. So an
 * exact dynamic program over the distinct lengths solves it in O(k m^2)
 * with prefix sums. Above 512 distinct lengths, lengths are first rounded up
 * to a power-of-two granule until at most 512 remain (the proposal is then
 * within one granule per length of optimal); waste is always measured on
 * the exact lengths.
 *
 * Tiers a person would use: every candidate is first rounded up to the
 * alignment the pool gives buffers anyway (64 bytes, a page from 4 KiB up),
 * so the proposal never holds a 1500-byte tier whose buffers would be laid
 * out at 1536-byte strides. The argument above still holds with the allowed
 * tiers being the aligned values: the smallest allowed tier serving a length
 * is its rounded value. Lengths above BP_MAX_TIER_SIZE cannot be a tier and
 * are left out (they are served exactly).
 */
#include "obs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DISTINCT 512

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* A length rounded up to a tier the pool would lay out without padding. */
static size_t aligned(size_t len) {
    size_t a = len >= 4096 ? 4096 : 64;
    return (len + a - 1) / a * a;
}

/* Distinct values of sorted lens, aligned, then rounded up to a multiple of
 * 2^g (a power of two: aligned values stay aligned). */
static size_t distinct(const size_t *lens, size_t n, unsigned g, size_t *v, uint64_t *c) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t x = ((aligned(lens[i]) + ((size_t)1 << g) - 1) >> g) << g;
        if (m && v[m - 1] == x) {
            c[m - 1]++;
        } else {
            if (m == MAX_DISTINCT)
                return MAX_DISTINCT + 1;
            v[m] = x;
            c[m++] = 1;
        }
    }
    return m;
}

/* The exact DP: picks k of the m values (the last one always) into tiers. */
static size_t solve(const size_t *v, const uint64_t *c, size_t m, size_t k, size_t *tiers) {
    uint64_t *C = calloc(m + 1, sizeof(uint64_t)), *S = calloc(m + 1, sizeof(uint64_t));
    uint64_t *dp = malloc((k + 1) * (m + 1) * sizeof(uint64_t));
    uint16_t *arg = malloc((k + 1) * (m + 1) * sizeof(uint16_t));
    size_t got = 0;
    if (C && S && dp && arg) {
        for (size_t j = 1; j <= m; j++) {
            C[j] = C[j - 1] + c[j - 1];
            S[j] = S[j - 1] + c[j - 1] * v[j - 1];
        }
#define DP(t, j) dp[(t) * (m + 1) + (j)]
#define ARG(t, j) arg[(t) * (m + 1) + (j)]
        for (size_t j = 0; j <= m; j++)
            DP(0, j) = j ? UINT64_MAX : 0;
        for (size_t t = 1; t <= k; t++) {
            DP(t, 0) = 0;
            for (size_t j = 1; j <= m; j++) {
                uint64_t best = UINT64_MAX;
                size_t at = 0;
                for (size_t i = 1; i <= j; i++) { /* lengths i..j served by v[j] */
                    if (DP(t - 1, i - 1) == UINT64_MAX)
                        continue;
                    uint64_t cost =
                        DP(t - 1, i - 1) + v[j - 1] * (C[j] - C[i - 1]) - (S[j] - S[i - 1]);
                    if (cost < best) {
                        best = cost;
                        at = i;
                    }
                }
                DP(t, j) = best;
                ARG(t, j) = (uint16_t)at;
            }
        }
        size_t t = k, j = m;
        while (j > 0 && t > 0) { /* walk back: each step is one tier */
            tiers[got++] = v[j - 1];
            j = ARG(t, j) - 1;
            t--;
        }
        for (size_t a = 0, b = got ? got - 1 : 0; a < b; a++, b--) {
            size_t x = tiers[a];
            tiers[a] = tiers[b];
            tiers[b] = x;
        }
#undef DP
#undef ARG
    }
    free(C);
    free(S);
    free(dp);
    free(arg);
    return got;
}

static uint64_t slack_of(const size_t *lens, size_t n, const size_t *tiers, size_t nt) {
    uint64_t w = 0;
    size_t t = 0;
    for (size_t i = 0; i < n; i++) { /* lens sorted: one pass */
        while (t < nt && tiers[t] < lens[i])
            t++;
        if (t < nt)
            w += tiers[t] - lens[i];
    }
    return w;
}

int bp__pool_advice(bp_pool *pool, size_t max_tiers, unsigned flags, bp_advice *out) {
    memset(out, 0, sizeof(*out));
    bp_pool_shape sh;
    bp__pool_shape(pool, &sh);
    size_t k = max_tiers ? max_tiers : sh.ntiers;
    k = k < BP_MAX_TIERS ? k : BP_MAX_TIERS;
    size_t *lens = malloc((sh.window + 1) * sizeof(size_t));
    size_t *v = malloc((MAX_DISTINCT + 1) * sizeof(size_t));
    uint64_t *c = malloc((MAX_DISTINCT + 1) * sizeof(uint64_t));
    if (!lens || !v || !c) {
        free(lens);
        free(v);
        free(c);
        return ENOMEM;
    }
    size_t got = bp_pool_recent_lengths(pool, lens, sh.window), n = 0;
    /* a user recorder may hand back 0: no request has it; nor can a tier
     * serve more than BP_MAX_TIER_SIZE */
    for (size_t i = 0; i < got; i++)
        if (lens[i] && lens[i] <= BP_MAX_TIER_SIZE)
            lens[n++] = lens[i];
    qsort(lens, n, sizeof(size_t), cmp_size);
    out->samples = n;
    if (n) {
        unsigned g = 0;
        size_t m;
        while ((m = distinct(lens, n, g, v, c)) > MAX_DISTINCT)
            g++;
        out->ntiers = solve(v, c, m, k < m ? k : m, out->tiers);
        out->slack_advised = slack_of(lens, n, out->tiers, out->ntiers);
        /* lengths above the largest tier are served exactly: no slack */
        out->slack_current = slack_of(lens, n, sh.sizes, sh.ntiers);
    }
    /* A program that fills buffers past the length it asked for uses that
     * slack: then none of it is waste. */
    bool used = flags & BP_ADVICE_SLACK_USED;
    out->waste_current = used ? 0 : out->slack_current;
    out->waste_advised = used ? 0 : out->slack_advised;
    free(lens);
    free(v);
    free(c);
    return 0;
}

#define ADVICE_0_2 BP_END_OF(bp_advice, waste_advised)
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(ADVICE_0_2 == 544, "0.2 ABI moved");
#endif

int(bp_pool_advice)(bp_pool *pool, size_t max_tiers, bp_advice *out) {
    return bp_pool_advice_sized(pool, max_tiers, 0, out, ADVICE_0_2);
}

int bp_pool_advice_sized(bp_pool *pool, size_t max_tiers, unsigned flags, bp_advice *out,
                         size_t out_size) {
    if (!pool || !out || out_size < ADVICE_0_2 || (flags & ~BP_ADVICE_SLACK_USED))
        return bp__refuse_user(pool, EINVAL, "bp_pool_advice", NULL);
    bp_advice a;
    int err = bp__pool_advice(pool, max_tiers, flags, &a);
    return err ? err : bp__abi_out(out, out_size, &a, sizeof a, ADVICE_0_2);
}

size_t bp_pool_advise_sizes(bp_pool *pool, size_t max_tiers, size_t *out) {
    bp_advice a;
    if (!out || bp_pool_advice(pool, max_tiers, &a) != 0)
        return 0;
    size_t n = a.ntiers < max_tiers || !max_tiers ? a.ntiers : max_tiers;
    memcpy(out, a.tiers, n * sizeof(size_t));
    return n;
}
