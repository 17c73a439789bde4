/* SPDX-License-Identifier: MIT */
/*
 * history.c - the recent requested lengths (the seed's recent_lengths).
 *
 * Each thread writes the lengths it is asked for into its own history ring
 * (its cache's), so a get pays two stores and nothing shared; every
 * BP_BATCH lengths, the monotonic clock gives the finished batch its place
 * in the pool's order (a read of it, nothing shared). A user recorder gets
 * them pushed instead. A cache that leaves archives its lengths in the
 * pool's ring. A reader merges the threads' batches by that order (exact
 * within a thread), after the lengths of threads that have gone, and checks
 * each thread's sequence again after copying, so it never returns a length
 * the owner has overwritten. Below the thread caches on the ladder: a cache
 * is created and retired through here.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The next entry at which bp__tc_batch must run: lim, or the ring's end. */
void bp__hist_arm(bp_tcache *tc) {
    uint64_t base = ld_rlx(&tc->hbase), room = tc->hmask + 1;
    tc->hlim = tc->hist + (tc->lim - base < room ? tc->lim - base : room);
}

/* Lengths recorded so far. The owner moves hcur back to the ring's start
 * and hbase on by the ring's size together, inside an odd hgen (a seqlock):
 * a reader retries until it read both between two such moves. */
uint64_t bp__tc_seq(bp_tcache *tc) {
    for (;;) {
        uint64_t g = ld_acq(&tc->hgen);
        _Atomic size_t *c = ld_acq(&tc->hcur); /* acquire: the last load stays last */
        uint64_t base = ld_acq(&tc->hbase);
        if (!(g & 1) && ld_rlx(&tc->hgen) == g)
            return base + (uint64_t)(c - tc->hist);
    }
}

/* The owner's: the ring wraps when hcur reached its end. The odd hgen is
 * an acquire RMW, so the stores after it stay after it; a reader that sees
 * one of them (release) sees hgen changed. */
static void hist_wrap(bp_tcache *tc) {
    atomic_fetch_add_explicit(&tc->hgen, 1, memory_order_acq_rel);
    st_rel(&tc->hbase, ld_rlx(&tc->hbase) + tc->hmask + 1);
    st_rel(&tc->hcur, tc->hist);
    st_rel(&tc->hgen, ld_rlx(&tc->hgen) + 1);
}

/* Gets between two calls of bp__tc_batch: a batch, 1 when every get is
 * sampled for leak reports, never when nothing needs it. */
uint64_t bp__batch_interval(const bp_pool *pool) {
    if (bp__leaks_all(pool))
        return 1;
    return pool->record || pool->leaks == BP_LEAKS_SAMPLE ? BP_TICK : UINT64_MAX;
}

/* Pushes the lengths [tc->pub, seq) to the user recorder (pool lock held).
 * A reader on another thread may do it for the owner: what the owner has
 * overwritten meanwhile (more than the history holds) is skipped. */
static void push_user(bp_tcache *tc, uint64_t seq) {
    bp__pool_assert_locked(tc->pool);
    uint64_t from = tc->pub, h = tc->hmask + 1;
    if (seq - from > h)
        from = seq - h;
    for (uint64_t i = from; i < seq; i++)
        tc->pool->recorder.push(tc->pool->recorder.ctx, ld_rlx(&tc->hist[i & tc->hmask]));
    tc->pub = seq;
}

void bp__tc_publish(bp_tcache *tc) { push_user(tc, bp__tc_seq(tc)); }

/* Runs every BP_TICK gets. A finished batch of BP_BATCH lengths gets its
 * place in the pool's order with one shared counter: no lock, no copy (a
 * batch of 128, not 32, because that counter's cache line moves between
 * cores: two threads' 4 KiB get+put went from 94 to 111 Mops/s, medians of
 * 6 alternating runs of `bench --worker bytepool`, cell e/2t). A user
 * recorder gets the lengths pushed, with the pool lock, as promised. */
void bp__tc_batch(bp_tcache *tc, void *just_got, void *site) {
    bp_pool *pool = tc->pool;
    uint64_t seq = ld_rlx(&tc->hbase) + (uint64_t)(ld_rlx(&tc->hcur) - tc->hist);
    if (ld_rlx(&tc->hcur) == tc->hist + tc->hmask + 1)
        hist_wrap(tc);
    bool due = seq == tc->lim;
    if (due)
        tc->lim = seq + bp__batch_interval(pool);
    bp__hist_arm(tc);
    if (!due)
        return; /* only the ring's end */
    if (pool->record && pool->recorder.push && seq % BP_TICK == 0) {
        bp__pool_lock(pool);
        push_user(tc, seq);
        bp__pool_unlock(pool);
    } else if (pool->record && !pool->recorder.push && seq % BP_BATCH == 0) {
        /* The batch's place in the pool's order: the monotonic clock, not a
         * shared counter (whose cache line two threads' batches would pass
         * back and forth: 2 threads scaled 1.5x, not 1.8x). Released before
         * the stamp; a reader that sees this order for a slot reused since
         * sees the thread's sequence past it too, and drops the run. */
        uint64_t batch = seq / BP_BATCH - 1, slot = batch & (tc->hmask / BP_BATCH);
        st_rel(&tc->order[slot], bp__os_now_ns());
        st_rel(&tc->stamp[slot], BP_STAMP(0, batch));
    }
    if (pool->leaks != BP_LEAKS_OFF && just_got) {
        bp__pool_lock(pool);
        bp__leak_record(pool, just_got, (size_t)ld_rlx(&tc->hist[(seq - 1) & tc->hmask]), site);
        bp__pool_unlock(pool);
    }
}

/* The cache is leaving: its recent lengths go to the pool's ring (or the
 * user recorder), oldest first. Pool lock held. */
void bp__tc_archive(bp_tcache *tc) {
    bp__pool_assert_locked(tc->pool);
    bp_pool *pool = tc->pool;
    uint64_t seq = bp__tc_seq(tc);
    if (!pool->record)
        return;
    if (pool->recorder.push) {
        push_user(tc, seq);
        return;
    }
    uint64_t from = seq > pool->window ? seq - pool->window : 0;
    size_t buf[256];
    while (from < seq) {
        size_t n = 0;
        while (from < seq && n < 256)
            buf[n++] = ld_rlx(&tc->hist[from++ & tc->hmask]);
        bp__record_locked(pool, buf, n);
    }
}

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
