/* SPDX-License-Identifier: MIT */
/*
 * stats.c - statistics: counters live in each thread's cache (single
 * writer, relaxed) and in the pool for caches that have gone and for
 * slow-path events; a read sums them under the pool lock. The recent
 * requested lengths are history.c's.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bp__pool_stats(bp_pool *pool, bp_stats *out) {
    memset(out, 0, sizeof(*out));
    bp__pool_lock(pool);
    out->ntiers = pool->ntiers;
    for (uint32_t t = 0; t < pool->ntiers; t++) {
        bp_tier_stats *ts = &out->tiers[t];
        uint64_t miss = pool->retired[t].miss;
        ts->size = pool->sizes[t];
        ts->get = pool->retired[t].get;
        ts->put = pool->retired[t].put;
        for (bp_tcache *tc = pool->tcs; tc; tc = tc->pnext) {
            ts->get += ld_rlx(&tc->bins[t].get);
            ts->put += ld_rlx(&tc->bins[t].put);
            miss += ld_rlx(&tc->bins[t].miss);
        }
        ts->hits = ts->get > miss ? ts->get - miss : 0;
        ts->live = ts->get > ts->put ? ts->get - ts->put : 0;
        ts->carved = pool->depot[t].carved;
        out->total_get += ts->get;
        out->total_put += ts->put;
        out->hits += ts->hits;
        out->outstanding += ts->live;
        out->bytes_live += ts->live * ts->size;
        if (ts->carved > ts->live)
            out->bytes_idle += (ts->carved - ts->live) * ts->size;
    }
    out->bytes_mapped = pool->mapped;
    out->segments = pool->nsegs;
    out->os_returned = pool->os_returned;
    bp__pool_unlock(pool);
    out->discarded = ld_rlx(&pool->discarded);
    out->refused = ld_rlx(&pool->refused);
    out->max_bytes = pool->max_bytes;
    out->budget_refused = ld_rlx(&pool->budget_refused);
    out->outstanding += ld_rlx(&pool->over_live);
    out->bytes_live += ld_rlx(&pool->over_bytes);
}

size_t bp_pool_sizes(const bp_pool *pool, size_t *out, size_t max) {
    if (!pool)
        return 0;
    for (size_t i = 0; out && i < max && i < pool->ntiers; i++)
        out[i] = pool->sizes[i];
    return pool->ntiers;
}

uint64_t bp_pool_discarded(const bp_pool *pool) {
    return pool ? ld_rlx(&((bp_pool *)pool)->discarded) : 0;
}
