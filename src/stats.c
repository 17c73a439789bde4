/*
 * stats.c - statistics and the recent requested lengths.
 *
 * Counters live in each thread's cache (single writer, relaxed) and in the
 * pool for caches that have gone and for slow-path events; a read sums them
 * under the pool lock. Lengths are staged per thread (BP_STAGE at a time)
 * and published into the pool's ring in batches, so a get pays a store, not
 * a shared atomic; a reader takes the ring plus every thread's unpublished
 * stage. Publishing needs the lock the reader holds, so a stage cannot be
 * overwritten while it is read.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bp__record_locked(bp_pool *pool, const size_t *lens, size_t n) {
    if (!pool->record)
        return;
    if (pool->recorder.push) {
        for (size_t i = 0; i < n; i++)
            pool->recorder.push(pool->recorder.ctx, lens[i]);
        return;
    }
    if (n > pool->window) { /* only the newest window lengths can stay */
        lens += n - pool->window;
        n = pool->window;
    }
    bp__ring_push_batch(pool->ring, lens, n);
}

void bp__record(bp_pool *pool, size_t len) {
    bp_tcache *tc = bp__tc_fast(pool);
    if (tc && pool->record) {
        uint64_t s = ld_rlx(&tc->seq);
        st_rlx(&tc->stage[s & (BP_STAGE - 1)], len);
        st_rel(&tc->seq, s + 1);
        if (s + 1 == tc->lim)
            bp__tc_publish_locked(tc, NULL, NULL);
        return;
    }
    bp__pool_lock(pool);
    bp__record_locked(pool, &len, 1);
    bp__pool_unlock(pool);
}

size_t bp_pool_recent_lengths(bp_pool *pool, size_t *out, size_t max) {
    if (!pool || !out || !max || !pool->record)
        return 0;
    bp__pool_lock(pool);
    size_t cap = pool->window;
    for (bp_tcache *tc = pool->tcs; tc; tc = tc->pnext)
        cap += (size_t)(ld_acq(&tc->seq) - tc->pub) + BP_STAGE;
    size_t *all = malloc(cap * sizeof(size_t) + 1);
    if (!all) {
        bp__pool_unlock(pool);
        errno = ENOMEM;
        return 0;
    }
    size_t n = pool->recorder.read ? pool->recorder.read(pool->recorder.ctx, all, pool->window)
                                   : bp_ring_snapshot(pool->ring, all, pool->window);
    if (n > pool->window)
        n = pool->window;
    /* The calling thread's stage goes last: its gets are the newest it knows. */
    bp_tcache *mine = NULL;
    for (bp_tcache *tc = pool->tcs; tc; tc = tc->pnext) {
        if (tc->tld == bp__tld) {
            mine = tc;
            continue;
        }
        uint64_t seq = ld_acq(&tc->seq);
        for (uint64_t i = tc->pub; i < seq && n < cap; i++)
            all[n++] = ld_rlx(&tc->stage[i & (BP_STAGE - 1)]);
    }
    if (mine) {
        uint64_t seq = ld_acq(&mine->seq);
        for (uint64_t i = mine->pub; i < seq && n < cap; i++)
            all[n++] = ld_rlx(&mine->stage[i & (BP_STAGE - 1)]);
    }
    bp__pool_unlock(pool);
    size_t keep = n < pool->window ? n : pool->window;
    if (keep > max)
        keep = max;
    memcpy(out, all + (n - keep), keep * sizeof(size_t));
    free(all);
    return keep;
}

int bp_pool_stats(bp_pool *pool, bp_stats *out) {
    if (!pool || !out)
        return EINVAL;
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
    out->outstanding += ld_rlx(&pool->over_live);
    out->bytes_live += ld_rlx(&pool->over_bytes);
    return 0;
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
