/* SPDX-License-Identifier: MIT */
/*
 * stats.c - statistics and the recent requested lengths.
 *
 * Counters live in each thread's cache (single writer, relaxed) and in the
 * pool for caches that have gone and for slow-path events; a read sums them
 * under the pool lock. Each thread writes the lengths it is asked for into
 * its own history ring, so a get pays two stores and nothing shared; every
 * BP_BATCH lengths, the monotonic clock gives the finished batch its place
 * in the pool's order (a read of it, nothing shared). A reader merges the threads' batches by that
 * order (exact within a thread), after the lengths of threads that have gone (archived in the
 * pool's ring), and checks each thread's sequence again after copying, so it never returns a length
 * the owner has overwritten.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bp__record_locked(bp_pool *pool, const size_t *lens, size_t n) {
    bp__pool_assert_locked(pool);
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
        bp__stage_len(tc, len, NULL, NULL);
        return;
    }
    bp__pool_lock(pool);
    bp__record_locked(pool, &len, 1);
    bp__pool_unlock(pool);
}

typedef struct run {
    uint64_t order; /* UINT64_MAX: not stamped yet (a thread's newest) */
    bool mine;      /* the calling thread's: it goes last */
    size_t idx;     /* collection order: keeps a thread's runs in order */
    const size_t *lens;
    size_t n;
} run;

static int by_order(const void *a, const void *b) {
    const run *x = a, *y = b;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    if (x->mine != y->mine)
        return (int)x->mine - (int)y->mine;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Copies tc's recent lengths as runs: stamped batches and the newest part. */
static size_t collect(const bp_pool *pool, bp_tcache *tc, bool mine, size_t *buf, run *runs,
                      size_t *nrun) {
    uint64_t s = bp__tc_seq(tc);
    uint64_t lo = s > pool->window ? (s - pool->window) / BP_BATCH * BP_BATCH : 0;
    uint64_t nb = (tc->hmask + 1) / BP_BATCH;
    size_t used = 0, first = *nrun;
    for (uint64_t start = lo; start < s; start += BP_BATCH) {
        uint64_t end = start + BP_BATCH < s ? start + BP_BATCH : s;
        uint64_t b = start / BP_BATCH, order = UINT64_MAX; /* not stamped (yet) */
        if (end - start == BP_BATCH) {
            uint64_t st = ld_acq(&tc->stamp[b & (nb - 1)]);
            if ((st >> BP_STAMP_BITS) && (st & BP_STAMP_MASK) == (b & BP_STAMP_MASK))
                order = ld_acq(&tc->order[b & (nb - 1)]); /* else: the slot's previous batch */
        }
        runs[*nrun] = (run){order, mine, *nrun, buf + used, (size_t)(end - start)};
        for (uint64_t i = start; i < end; i++)
            buf[used++] = ld_rlx(&tc->hist[i & tc->hmask]);
        (*nrun)++;
    }
    /* The owner may have written past the ring meanwhile: drop what it
     * overwrote (and so any stamp that now belongs to a newer batch). */
    uint64_t h = tc->hmask + 1, s2 = bp__tc_seq(tc), safe = s2 > h ? s2 - h : 0;
    for (size_t r = first, start = lo; r < *nrun; r++, start += BP_BATCH)
        if (start < safe)
            runs[r].n = 0;
    return used;
}

size_t bp_pool_recent_lengths(bp_pool *pool, size_t *out, size_t max) {
    if (!pool || !out || !max || !pool->record)
        return 0;
    bp__pool_lock(pool);
    size_t ntc = 0;
    for (bp_tcache *tc = pool->tcs; tc; tc = tc->pnext)
        ntc++;
    size_t per = pool->window + 2 * BP_BATCH;
    size_t cap = pool->window + ntc * per;
    size_t *all = malloc((cap + 1) * sizeof(size_t));
    size_t *buf = malloc((ntc * per + 1) * sizeof(size_t));
    run *runs = malloc((ntc * (per / BP_BATCH + 2) + 1) * sizeof(run));
    if (!all || !buf || !runs) {
        bp__pool_unlock(pool);
        free(all);
        free(buf);
        free(runs);
        errno = ENOMEM;
        return 0;
    }
    /* A user recorder is first given every length still staged in a
     * thread, so what it reads back is complete. */
    if (pool->recorder.push)
        for (bp_tcache *tc = pool->tcs; tc; tc = tc->pnext)
            bp__tc_publish(tc);
    /* the archive (threads that have gone, a user recorder) is the oldest */
    size_t n = pool->recorder.read ? pool->recorder.read(pool->recorder.ctx, all, pool->window)
                                   : bp_ring_snapshot(pool->ring, all, pool->window);
    if (n > pool->window)
        n = pool->window;
    size_t used = 0, nrun = 0;
    for (bp_tcache *tc = pool->tcs; tc && !pool->recorder.push; tc = tc->pnext)
        used += collect(pool, tc, tc->tld == bp__tld, buf + used, runs, &nrun);
    bp__pool_unlock(pool);
    qsort(runs, nrun, sizeof(run), by_order);
    for (size_t r = 0; r < nrun; r++)
        for (size_t i = 0; i < runs[r].n && n < cap; i++)
            all[n++] = runs[r].lens[i];
    size_t keep = n < pool->window ? n : pool->window;
    if (keep > max)
        keep = max;
    memcpy(out, all + (n - keep), keep * sizeof(size_t));
    free(all);
    free(buf);
    free(runs);
    return keep;
}

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
