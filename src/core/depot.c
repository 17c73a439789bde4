/* SPDX-License-Identifier: MIT */
/*
 * depot.c - the pool's shared store of free buffers, one per tier.
 *
 * Free buffers stay in their segment's free stack (slot indices in the
 * header, never in the buffer, so free memory can be poisoned or given back
 * to the OS). A tier keeps a list of segments with room: free slots or
 * slots never carved. A segment whose carved slots are all free is "empty"
 * and joins the pool's empty list. Empty segments are unmapped oldest first
 * when the pool holds more empty bytes than idle_bytes (so the one just
 * emptied, the likeliest to be needed next, stays), when they have been
 * empty for decay_ms, or on trim. Every function here runs with the pool
 * lock held, except the two on a tier's hot slot at the end.
 */
#include "internal.h"

#include <errno.h>

static void partial_add(bp_depot *d, bp_seg *seg) {
    if (seg->in_partial)
        return;
    seg->in_partial = true;
    seg->pprev = NULL;
    seg->pnext = d->partial;
    if (d->partial)
        d->partial->pprev = seg;
    d->partial = seg;
}

static void partial_remove(bp_depot *d, bp_seg *seg) {
    if (!seg->in_partial)
        return;
    seg->in_partial = false;
    BP_DLIST_UNLINK(d->partial, seg, pnext, pprev);
}

static bool seg_empty(const bp_seg *seg) { return seg->ncarved && seg->nfree == seg->ncarved; }

static void empty_add(bp_pool *pool, bp_seg *seg, uint64_t since) { /* at the recent end */
    seg->empty_since_ms = since ? since : bp__os_now_ms();
    pool->empty_bytes += seg->map_bytes;
    seg->enext = NULL;
    seg->eprev = pool->empty_mru;
    if (pool->empty_mru)
        pool->empty_mru->enext = seg;
    else
        pool->empty_lru = seg;
    pool->empty_mru = seg;
}

static void empty_remove(bp_pool *pool, bp_seg *seg) {
    pool->empty_bytes -= seg->map_bytes;
    if (!seg->enext) /* the most recent end moves back */
        pool->empty_mru = seg->eprev;
    BP_DLIST_UNLINK(pool->empty_lru, seg, enext, eprev);
    seg->enext = seg->eprev = NULL;
}

/* May this empty segment go back to the OS? Not below the reserve floor,
 * unless the pool is being destroyed. */
static bool may_release(const bp_pool *pool, const bp_seg *seg) {
    const bp_depot *d = &pool->depot[seg->tier];
    if (seg->backed) /* the program's memory: mapped for the pool's life (bp_backing) */
        return !pool->user_ref;
    return !pool->user_ref || d->carved - seg->ncarved >= d->reserved;
}

static void seg_release(bp_pool *pool, bp_seg *seg) {
    bp_depot *d = &pool->depot[seg->tier];
    partial_remove(d, seg);
    empty_remove(pool, seg);
    d->carved -= seg->ncarved;
    bp__seg_free(seg);
    bp__depot_room(pool);
}

BP_TLS bool bp__budget_failed;

/* The budget check, before any segment is mapped: would mapping map_bytes
 * more keep the pool within its budget? At the cap,
 * idle memory goes first; a refusal puts the pool under pressure (caches
 * bypassed for a while, so every free buffer is any thread's to take). */
bool bp__depot_budget(bp_pool *pool, size_t map_bytes) {
    bp__pool_assert_locked(pool);
    if (!pool->max_bytes)
        return true;
    if (pool->mapped + map_bytes > pool->max_bytes)
        bp__depot_release_empty(pool, UINT32_MAX);
    if (pool->mapped + map_bytes <= pool->max_bytes)
        return true;
    st_rlx(&pool->pressure_until_ms, bp__os_now_ms() + BP_PRESSURE_MS);
    atomic_fetch_or(&pool->flags, BPF_PRESSURE);
    bp__tc_serve(pool, false);
    bp__budget_failed = true;
    errno = ENOMEM;
    return false;
}

uint32_t bp__depot_take(bp_pool *pool, uint32_t tier, bp_centry *out, uint32_t n) {
    bp__pool_assert_locked(pool);
    bp_depot *d = &pool->depot[tier];
    uint32_t got = 0;
    while (got < n) {
        bp_seg *seg = d->partial;
        if (!seg) {
            bool checked = ld_rlx(&pool->flags) & BPF_CHECKED;
            seg = bp__depot_budget(pool, bp__seg_tier_bytes(pool->sizes[tier], checked))
                      ? bp__seg_new_tier(pool, tier)
                      : NULL;
            if (!seg && d->partial)
                continue; /* the budget drained the hot slots: buffers are back */
            if (!seg)
                break;
            partial_add(d, seg);
        }
        if (seg_empty(seg))
            empty_remove(pool, seg);
        while (got < n && seg->nfree) {
            uint32_t idx = seg->freestk[--seg->nfree];
            out[got].p = bp__seg_buf(seg, idx);
            out[got].rc = &seg->rc[idx];
            got++;
        }
        if (seg->ncold > seg->nfree)
            seg->ncold = seg->nfree;
        if (seg->nlow > seg->nfree)
            seg->nlow = seg->nfree;
        while (got < n && seg->ncarved < seg->nslots) {
            uint32_t idx = seg->ncarved++;
            out[got].p = bp__seg_buf(seg, idx);
            out[got].rc = &seg->rc[idx];
            d->carved++;
            got++;
        }
        if (!seg->nfree && seg->ncarved == seg->nslots)
            partial_remove(d, seg);
    }
    return got;
}

/* One buffer of tier whose bytes are known to be zero, if the tier has one:
 * a slot never handed out since its segment was mapped (every mapping
 * starts as zeros: fresh, regrown or decommitted), or a free one whose
 * pages went back to the OS (freestk[0..ncold)); *fresh says so. Else any
 * buffer, as bp__depot_take gives. Returns 0 or 1. */
uint32_t bp__depot_take_fresh(bp_pool *pool, uint32_t tier, bp_centry *out, bool *fresh) {
    bp__pool_assert_locked(pool);
    bp_depot *d = &pool->depot[tier];
    for (bp_seg *seg = d->partial; seg; seg = seg->pnext) {
        uint32_t idx;
        if (seg->ncarved < seg->nslots) {
            idx = seg->ncarved++;
            d->carved++;
        } else if (seg->ncold) { /* the newest cold one swaps places with the top */
            if (seg_empty(seg))
                empty_remove(pool, seg);
            uint32_t at = --seg->ncold;
            idx = seg->freestk[at];
            seg->freestk[at] = seg->freestk[--seg->nfree];
            if (seg->nlow > seg->nfree)
                seg->nlow = seg->nfree;
        } else {
            continue;
        }
        if (!seg->nfree && seg->ncarved == seg->nslots)
            partial_remove(d, seg);
        out->p = bp__seg_buf(seg, idx);
        out->rc = &seg->rc[idx];
        *fresh = true;
        return 1;
    }
    uint64_t carved = d->carved; /* a new segment: its first slot is carved */
    uint32_t got = bp__depot_take(pool, tier, out, 1);
    *fresh = got && d->carved == carved + 1;
    return got;
}

/* Returns a slot to its segment; the segment may become empty, idle since
 * `since` (0: now). */
static void give_one(bp_pool *pool, bp_depot *d, bp_seg *seg, uint32_t idx, uint64_t since) {
    seg->freestk[seg->nfree++] = idx;
    partial_add(d, seg);
    if (!seg_empty(seg))
        return;
    empty_add(pool, seg, since);
    if (!pool->user_ref) { /* destroyed: nothing is kept */
        if (may_release(pool, seg))
            seg_release(pool, seg);
        return;
    }
    /* over the bound: the least recently emptied go first */
    for (bp_seg *old = pool->empty_lru, *next; old && pool->empty_bytes > pool->idle_bytes;
         old = next) {
        next = old->enext;
        if (may_release(pool, old))
            seg_release(pool, old);
    }
}

void bp__depot_give(bp_pool *pool, uint32_t tier, const bp_centry *in, uint32_t n) {
    bp__pool_assert_locked(pool);
    bp_depot *d = &pool->depot[tier];
    for (uint32_t i = 0; i < n; i++) {
        bp_seg *seg = bp__seg_of_rc(in[i].rc);
        give_one(pool, d, seg, (uint32_t)(in[i].rc - seg->rc), 0);
    }
    if (n)
        bp__depot_room(pool);
}

/* Buffers or memory came back: wake the threads waiting in bp_get_wait. */
void bp__depot_room(bp_pool *pool) {
    bp__pool_assert_locked(pool);
    st_rel(&pool->room_gen, ld_rlx(&pool->room_gen) + 1); /* one writer: the lock holder */
    if (pool->waiters)
        pthread_cond_broadcast(&pool->room);
}

/* Unmaps the wholly free segments of a tier (every tier for UINT32_MAX)
 * above its reserve floor, after draining the hot slots. */
size_t bp__depot_release_empty(bp_pool *pool, uint32_t tier) {
    bp__pool_assert_locked(pool);
    size_t returned = 0;
    bp__depot_drain_hot(pool);
    for (bp_seg *seg = pool->empty_lru, *next; seg; seg = next) {
        next = seg->enext;
        if ((tier == UINT32_MAX || seg->tier == tier) && may_release(pool, seg)) {
            returned += seg->map_bytes;
            seg_release(pool, seg);
        }
    }
    return returned;
}

/* Gives back the pages of seg's free buffers freestk[ncold..upto) (a page
 * and more each: the caller checks); returns the bytes. */
static size_t decommit_free(bp_pool *pool, bp_seg *seg, uint32_t upto) {
    size_t returned = 0;
    /* A fork() child's view of which shared buffers are free is stale. */
    if (seg->backed && (ld_rlx(&pool->flags) & BPF_DETACHED))
        return 0;
    for (uint32_t i = seg->ncold; i < upto; i++) {
        uint8_t *p = bp__seg_buf(seg, seg->freestk[i]);
        if ((seg->backed ? bp__os_remove(p, seg->stride) : bp__os_decommit(p, seg->stride)) != 0)
            break;
        returned += seg->stride;
        seg->ncold = i + 1;
    }
    pool->os_returned += returned;
    return returned;
}

/* Pages of free buffers of a page and more that sat unused for a whole
 * decay_ms go back to the OS (MADV_DONTNEED through bp__os_decommit), as
 * jemalloc's dirty-page decay does: the bottom of each segment's free
 * stack below the fewest free it had since the last pass was not touched
 * since (gets take from the top). Not in tiers with a bp_pool_reserve
 * floor, nor in checked segments (the poison stays). Without this, free
 * buffers of a segment that still has a buffer out kept their pages for
 * as long as the segment lived. */
static void release_idle_pages(bp_pool *pool, uint64_t now) {
    if (now - pool->pages_since_ms < pool->decay_ms)
        return;
    pool->pages_since_ms = now;
    size_t page = bp__os_page();
    for (uint32_t t = 0; t < pool->ntiers; t++) {
        const bp_depot *d = &pool->depot[t];
        for (bp_seg *seg = d->partial; seg; seg = seg->pnext) {
            uint32_t idle = seg->nlow < seg->nfree ? seg->nlow : seg->nfree;
            seg->nlow = seg->nfree;
            if (seg->stride >= page && !seg->reqlen && !d->reserved)
                decommit_free(pool, seg, idle);
        }
    }
}

/* Unmaps every empty segment above the floors, then releases the pages of
 * the free buffers of a page and more, except in tiers with a
 * bp_pool_reserve floor: what reserve faulted in stays resident (decay
 * keeps it too), whichever free buffers of the tier it now is. */
size_t bp__depot_trim(bp_pool *pool) {
    bp__pool_assert_locked(pool);
    size_t returned = bp__depot_release_empty(pool, UINT32_MAX);
    size_t page = bp__os_page();
    for (uint32_t t = 0; t < pool->ntiers; t++) {
        if (pool->user_ref && pool->depot[t].reserved)
            continue;
        for (bp_seg *seg = pool->depot[t].partial; seg; seg = seg->pnext) {
            if (seg->stride >= page && !seg->reqlen) /* checked: keep the poison */
                returned += decommit_free(pool, seg, seg->nfree);
        }
    }
    return returned;
}

static void drain_idle_hot(bp_pool *pool, uint64_t last);

void bp__depot_decay(bp_pool *pool) {
    bp__pool_assert_locked(pool);
    if (bp__os_now_ms() >= ld_rlx(&pool->next_decay_ms))
        bp__depot_decay_now(pool);
}

/* The decay pass itself; the background thread runs it on its own clock. */
void bp__depot_decay_now(bp_pool *pool) {
    bp__pool_assert_locked(pool);
    uint64_t now = bp__os_now_ms();
    uint64_t last = pool->last_decay_ms;
    st_rlx(&pool->next_decay_ms, now + pool->decay_ms / 2 + 1);
    pool->last_decay_ms = now;
    drain_idle_hot(pool, last);
    for (bp_seg *seg = pool->empty_lru, *next; seg; seg = next) {
        next = seg->enext;
        if (now - seg->empty_since_ms >= pool->decay_ms && may_release(pool, seg))
            seg_release(pool, seg);
    }
    release_idle_pages(pool, now);
}

/* A hot slot that holds the same buffer as at the last decay pass (at
 * `last`) has been idle since then at least: the buffer goes back to its
 * segment, which counts as empty since `last`. Busy slots stay. */
static void drain_idle_hot(bp_pool *pool, uint64_t last) {
    for (uint32_t t = 0; t < pool->ntiers; t++) {
        bp_depot *d = &pool->depot[t];
        if (!d->use_hot)
            continue;
        for (int i = 0; i < BP_HOT; i++) {
            _Atomic uint32_t *cur = atomic_load(&d->hot[i]), *rc;
            if (cur && cur == d->hot_seen[i] && (rc = atomic_exchange(&d->hot[i], NULL))) {
                bp_seg *seg = bp__seg_of_rc(rc);
                give_one(pool, d, seg, (uint32_t)(rc - seg->rc), rc == cur ? last : 0);
                cur = NULL;
            }
            d->hot_seen[i] = cur;
        }
    }
}

/* Moves the hot slots' buffers into their segments (at most BP_HOT takes
 * per tier: puts racing the drain cannot keep it going). */
void bp__depot_drain_hot(bp_pool *pool) {
    bp__pool_assert_locked(pool);
    for (uint32_t t = 0; t < pool->ntiers; t++) {
        _Atomic uint32_t *rc;
        for (int i = 0; i < BP_HOT && (rc = bp__depot_hot_take(pool, t)) != NULL; i++) {
            bp_seg *seg = bp__seg_of_rc(rc);
            give_one(pool, &pool->depot[t], seg, (uint32_t)(rc - seg->rc), 0);
        }
    }
}

/* ---- the hot slot: no lock ------------------------------------------------- */

/* Calls that no longer take the lock still run the decay when it is due,
 * so idle segments go back to the OS under hot-slot traffic too. Reading
 * the clock on every such call was 6% of the mixed workload (b): every
 * BP_HOT_TICK-th call of a thread reads it. */
void bp__depot_tick(bp_tcache *tc) {
    if (++tc->hot_calls % BP_HOT_TICK)
        return;
    bp_pool *pool = tc->pool;
    if (BP_UNLIKELY(bp__os_now_ms() >= ld_rlx(&pool->next_decay_ms))) {
        bp__pool_lock(pool);
        bp__depot_decay(pool);
        bp__pool_unlock(pool);
    }
}

/* A tier whose thread bins hold fewer than BP_HOT buffers (or none) would
 * flush and refill under the lock on most calls. Up to BP_HOT of its free
 * buffers wait in the depot's hot slots instead, so a put that finds its
 * bin full and a later get that finds its bin empty (any threads) are one
 * atomic operation each. A slot holds the buffer's count address (count 0).
 * A load skips the slots that cannot succeed; it is sequentially
 * consistent (a plain load on x86-64) because destroy's drain relies on it
 * seeing a put whose flag check did not see destroy. */
_Atomic uint32_t *bp__depot_hot_take(bp_pool *pool, uint32_t tier) {
    bp_depot *d = &pool->depot[tier];
    for (int i = 0; i < BP_HOT; i++) {
        _Atomic uint32_t *rc = atomic_load(&d->hot[i]) ? atomic_exchange(&d->hot[i], NULL) : NULL;
        if (rc)
            return rc;
    }
    return NULL;
}

/* Parks a free buffer (count 0) in a hot slot; false when all are taken.
 * The caller's thread cache keeps the pool alive. If bp_pool_destroy has
 * begun, the slot is emptied again (its drain ran or will run: the flag and
 * the slot are both sequentially consistent, so one side sees the other). */
bool bp__depot_hot_give(bp_pool *pool, uint32_t tier, _Atomic uint32_t *rc) {
    bp_depot *d = &pool->depot[tier];
    int i = 0;
    for (;; i++) {
        _Atomic uint32_t *expect = NULL;
        if (i == BP_HOT)
            return false;
        if (!ld_rlx(&d->hot[i]) && atomic_compare_exchange_strong(&d->hot[i], &expect, rc))
            break;
    }
    if (BP_UNLIKELY(atomic_load(&pool->flags) & BPF_DEAD)) {
        bp__pool_lock(pool);
        bp__depot_drain_hot(pool);
        bp__pool_unlock(pool);
    }
    return true;
}
