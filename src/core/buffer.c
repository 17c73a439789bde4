/* SPDX-License-Identifier: MIT */
/*
 * buffer.c - get, put, retain, release, refcount, cap.
 *
 * Fast paths first: a get pops the thread's bin for the tier, a put of the
 * only reference pushes onto it; neither does an atomic read-modify-write
 * (the count is 1, so only the caller may touch it). Everything else - an
 * empty or full bin, a shared count, oversize, checked or destroyed pools,
 * bad input - goes to cold, out-of-line functions below.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* ---- get ------------------------------------------------------------------ */

/* bp_get_wait's own attempts: it counts and reports the outcome once. */
static BP_TLS bool waiting;

/* A get that came back empty: a refusal by the budget is reported. */
BP_COLD static void *got_none(bp_pool *pool) {
    if (bp__budget_failed && !waiting) {
        atomic_fetch_add_explicit(&pool->budget_refused, 1, memory_order_relaxed);
        bp__report(pool, ENOMEM, "bp_get", NULL);
        errno = ENOMEM;
    }
    return NULL;
}

BP_COLD static void *get_oversize(bp_pool *pool, size_t len, void *site) {
    bp__pool_lock(pool);
    size_t bytes = bp__seg_oversize_bytes(len);
    bp_seg *seg = bytes && bp__depot_budget(pool, bytes) ? bp__seg_new_oversize(pool, len) : NULL;
    bp__pool_unlock(pool);
    if (!seg)
        return got_none(pool);
    seg->reqlen[0] = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
    st_rel(&seg->rc[0], 1);
    track_give(pool, seg->base, len);
    atomic_fetch_add_explicit(&pool->discarded, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool->over_live, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool->over_bytes, len, memory_order_relaxed);
    bp__record(pool, len);
    if (pool->leaks != BP_LEAKS_OFF) { /* oversize gets are slow anyway: always sampled */
        bp__pool_lock(pool);
        bp__leak_record(pool, seg->base, len, site);
        bp__pool_unlock(pool);
    }
    return seg->base;
}

/* Checked and destroyed pools: straight to the depot, under the lock. */
/* A get from the depot under the lock; with fresh, one whose bytes are
 * known to be zero if the tier has one (*fresh says whether it was). */
BP_COLD static void *get_locked(bp_pool *pool, uint32_t t, size_t len, void *site, bool *fresh) {
    bp_centry e;
    bp__pool_lock(pool);
    uint32_t got =
        fresh ? bp__depot_take_fresh(pool, t, &e, fresh) : bp__depot_take(pool, t, &e, 1);
    bp_seg *seg = got ? bp__seg_of_rc(e.rc) : NULL;
    if (got) {
        pool->retired[t].get++;
        pool->retired[t].miss++;
        if (pool->record)
            bp__record_locked(pool, &len, 1);
        uint32_t idx = (uint32_t)(e.rc - seg->rc);
        if (seg->reqlen)
            bp__checked_on_get(seg, idx, len);
        st_rel(e.rc, 1);
        if (bp__leaks_all(pool)) /* uncached pools: no stage to sample on */
            bp__leak_record(pool, e.p, len, site);
    }
    bp__pool_unlock(pool);
    if (!got)
        return got_none(pool);
    track_give(pool, e.p, len);
    return e.p;
}

BP_COLD static void *get_slow(bp_pool *pool, size_t len, void *site) {
    bp__budget_failed = false; /* bp_get_wait reads it after every failed get */
    if (!pool || len == 0)
        return bp__refuse_user(pool, EINVAL, "bp_get", NULL), NULL;
    if (ld_rlx(&pool->flags) & (BPF_ADOPTED | BPF_DETACHED)) /* not ours to hand out */
        return bp__refuse_user(pool, EPERM, "bp_get", NULL), NULL;
    if (len > pool->max_len)
        return get_oversize(pool, len, site);
    uint32_t t = bp__tier_of(pool, len);
    bp_tcache *tc = bp__tc_fast(pool);
    if (!tc)
        tc = bp__tc_slow(pool);
    if (!tc)
        return get_locked(pool, t, len, site, NULL);
    bp_bin *bin = &tc->bins[t];
    void *p;
    if (bin->top != bin->e) { /* the slot was cold, the bin was not */
        bp_centry *e = --bin->top;
        st_rlx(e->rc, 1);
        p = e->p;
    } else {
        p = bp__tc_refill(tc, t);
        if (!p)
            return got_none(pool); /* errno is ENOMEM */
        bump(&tc->bins[t].miss);
    }
    bump(&tc->bins[t].get);
    track_give(pool, p, len);
    bp__stage_len(tc, len, p, site);
    return p;
}

BP_COLD static void *got_batch(bp_tcache *tc, void *p, void *site) {
    bp__tc_batch(tc, p, site);
    return p;
}

/* bp_get with the allocation site of leak reports given. */
static inline void *get_at(bp_pool *pool, size_t len, void *site) {
    size_t v = len - 1; /* len 0 wraps and takes the slow path */
    if (BP_UNLIKELY(!pool || v >= pool->dmax))
        return get_slow(pool, len, site);
    bp_tcache *tc = bp__tc_here(pool); /* bp__tc_none: its bins are empty */
    bp_bin *bin = (bp_bin *)((char *)tc + pool->dtab[v >> pool->dshift]);
    bp_centry *top = bin->top;
    if (BP_UNLIKELY(top == bin->e))
        return get_slow(pool, len, site);
    bp_centry e = *--top;
    bin->top = top;
    st_rlx(e.rc, 1);
    bump(&bin->get);
    track_give(pool, e.p, len);
    if (bp__stage(tc, len)) /* the batch as a tail call: no register kept across it */
        return got_batch(tc, e.p, site);
    return e.p;
}

void *bp_get(bp_pool *pool, size_t len) { return get_at(pool, len, __builtin_return_address(0)); }

int bp_get_bulk(bp_pool *pool, size_t len, void **out, size_t n) {
    if (!pool || len == 0 || (!out && n))
        return bp__refuse_user(pool, EINVAL, "bp_get_bulk", NULL);
    void *site = __builtin_return_address(0);
    size_t i = 0;
    for (; i < n; i++) {
        void *p = get_at(pool, len, site);
        if (!p)
            break;
        out[i] = p;
    }
    if (i == n)
        return 0;
    int err = errno;
    while (i > 0) { /* nothing held, out as it was */
        bp_put(pool, out[--i]);
        out[i] = NULL;
    }
    errno = err;
    return err;
}

/* Finds the slot of p, refusing what is not inside a buffer of `expect`
 * (any pool when expect is NULL and any_pool is true). */
static _Atomic uint32_t *locate(bp_pool *expect, bool any_pool, const void *p, const char *op,
                                bp_seg **segp, uint32_t *idxp) {
    bp_seg *seg = p ? bp__seg_of(p) : NULL;
    if (!seg && p && bp__gone_contains(p)) { /* an oversize buffer already released */
        bp__refuse_user(expect, EALREADY, op, p);
        return NULL;
    }
    if (!seg || (!any_pool && seg->pool != expect)) {
        bp__refuse_user(expect, EINVAL, op, p);
        return NULL;
    }
    size_t in;
    uint32_t idx = bp__slot_of(seg, p, &in);
    if (idx == UINT32_MAX) {
        bp__refuse(seg->pool, EINVAL, op, p);
        return NULL;
    }
    *segp = seg;
    *idxp = idx;
    return &seg->rc[idx];
}

BP_COLD static int drop_slow(bp_pool *expect, bool any_pool, void *p, const char *op) {
    bp_seg *seg;
    uint32_t idx;
    _Atomic uint32_t *rc = locate(expect, any_pool, p, op, &seg, &idx);
    if (!rc)
        return errno;
    uint32_t v = ld_acq(rc);
    for (;;) {
        if ((v & BP_RC_COUNT) == 0) {
            if (seg->reqlen && !bp__seg_is_oversize(seg))
                bp__abort("bytepool: %s(%p): buffer %p is already free (double release)", op, p,
                          (void *)bp__seg_buf(seg, idx));
            return bp__refuse(seg->pool, EALREADY, op, p);
        }
        /* The last one clears the flags, unless a disarm has the buffer
         * pinned: then the count stays 0 with them and the disarm, which
         * finds it so when it unpins, sends the buffer home. */
        uint32_t next = (v & BP_RC_COUNT) != 1 ? v - 1 : (v & BP_RC_PINNED) ? v - 1 : 0;
        if ((v & BP_RC_COUNT) == 2)
            next &= ~BP_RC_WATCHED; /* a watch fires once */
        if (atomic_compare_exchange_weak_explicit(rc, &v, next, memory_order_acq_rel,
                                                  memory_order_acquire))
            break;
    }
    if ((v & BP_RC_COUNT) == 2 && (v & BP_RC_WATCHED))
        bp__watch_fire(seg, idx);
    if ((v & BP_RC_COUNT) == 1 && !(v & BP_RC_PINNED))
        bp__buffer_gone(seg, idx, v);
    return 0;
}

/* Drops one reference of p, which the caller has found in seg (maybe
 * bp__seg_none, which has no slots). A shared count is decremented with one
 * CAS. For the only reference, bp_put (the owner's call: `owner`) makes the
 * count go 1 -> 0 with a plain store, as free() assumes one caller;
 * bp_release (shared references, maybe racing) makes it one CAS 1 -> 0, so
 * of two racing final releases exactly one wins and a retain racing it
 * either fails or truly holds. Then the buffer goes onto the thread's bin.
 * Returns 0 when done, 1 for the only reference when the bin is full
 * (drop_full), -1 for anything unusual (drop_slow).
 *
 * A pointer put is nearly always the buffer's start: then p itself is what
 * the bin keeps, behind a predicted branch, not the start computed from the
 * slot arithmetic, so the next get's pointer does not wait for that chain. */
static inline int drop_fast(bp_pool *pool, bp_seg *seg, void *p, bool owner) {
    uint64_t off = (uint64_t)((uintptr_t)p - (uintptr_t)seg->base);
    uint64_t idx = (off * seg->magic) >> BP_IDX_SHIFT;
    if (BP_UNLIKELY(idx >= seg->nslots))
        return -1;
    uint64_t in = off - idx * seg->stride;
    uint8_t *start;
    if (BP_LIKELY(in == 0)) {
        __asm__("" : "+r"(p)); /* p as it came: no data dependency on in */
        start = p;
    } else if (BP_LIKELY(in < seg->size)) {
        start = (uint8_t *)p - in;
    } else {
        return -1;
    }
    _Atomic uint32_t *rc = &seg->rc[idx];
    uint32_t v = ld_acq(rc);
    if (BP_UNLIKELY(v != 1)) {
        if (v - 2 < BP_RC_MAX - 1) /* shared (2..max): sampled or watched never match */
            return atomic_compare_exchange_strong_explicit(rc, &v, v - 1, memory_order_release,
                                                           memory_order_relaxed)
                       ? 0
                       : -1;
        return -1;
    }
    /* bp__tc_none (checked, destroyed, under pressure, no cache yet): full */
    bp_bin *bin = (bp_bin *)((char *)bp__tc_here(pool) + seg->bin_off);
    bp_centry *top = bin->top;
    if (BP_UNLIKELY(top == bin->end))
        return 1; /* the only reference, but the bin is full or the tier has none */
    if (owner)
        st_rlx(rc, 0);
    else if (BP_UNLIKELY(!atomic_compare_exchange_strong_explicit(rc, &v, 0, memory_order_acquire,
                                                                  memory_order_relaxed)))
        return -1; /* it changed meanwhile: a racing release or retain */
    track_take(pool, start, seg->size);
    *top = (bp_centry){start, rc};
    bin->top = top + 1;
    bp__tsan_release(bin);
    bump(&bin->put);
    return 0;
}

/* drop_fast found the only reference of p, whose bin is full (or whose
 * tier has none): straight home, the count dropped with one CAS whichever
 * call it is (the way home is slow anyway, and an oversize buffer is
 * unmapped: two racing final drops must not both get there). Only p is
 * passed, so the fast path keeps its registers. */
BP_COLD static int drop_full(void *p, const char *op) {
    bp_seg *seg = bp__seg_of(p);
    size_t in;
    /* A racing final release may have freed the buffer and its segment
     * since: then the map names none, or the header reads as zeros. */
    uint32_t idx = seg ? bp__slot_of(seg, p, &in) : UINT32_MAX;
    uint32_t one = 1;
    if (idx == UINT32_MAX ||
        !atomic_compare_exchange_strong_explicit(&seg->rc[idx], &one, 0, memory_order_acquire,
                                                 memory_order_relaxed))
        return drop_slow(NULL, true, p, op);
    bp__buffer_free_slow(seg, idx);
    return 0;
}

/* Outside the reserved range (segments mapped on their own, oversize
 * buffers, foreign memory): the radix map, then the same steps. */
BP_COLD static int put_far(bp_pool *pool, void *p, bool owner, const char *op) {
    bp_seg *seg;
    int r;
    if (bp__near(p, &seg)) /* the fast path had it: flagged, another pool, raced or bad */
        return drop_slow(owner ? pool : NULL, !owner, p, op);
    seg = bp__seg_far(p);
    if (!seg && !owner && (r = bp__wrap_release(p, 1)) != ENOENT) /* a wrapped buffer */
        return r ? bp__refuse(NULL, r, op, p) : 0;
    if (seg && (!owner || seg->pool == pool) &&
        (r = drop_fast(owner ? pool : seg->pool, seg, p, owner)) >= 0)
        return r == 0 ? 0 : drop_full(p, op);
    return drop_slow(owner ? pool : NULL, !owner, p, op);
}

int bp_put(bp_pool *pool, void *p) {
    bp_seg *seg;
    int r;
    if (BP_LIKELY(bp__near(p, &seg)) && BP_LIKELY(seg->pool == pool) &&
        BP_LIKELY((r = drop_fast(pool, seg, p, true)) >= 0))
        return BP_LIKELY(r == 0) ? 0 : drop_full(p, "bp_put");
    return put_far(pool, p, true, "bp_put");
}

int bp_release(void *p) {
    bp_seg *seg;
    int r;
    if (BP_LIKELY(bp__near(p, &seg)) && BP_LIKELY((r = drop_fast(seg->pool, seg, p, false)) >= 0))
        return BP_LIKELY(r == 0) ? 0 : drop_full(p, "bp_release");
    return put_far(NULL, p, false, "bp_release");
}

int bp_put_bulk(bp_pool *pool, void **ps, size_t n) {
    if (!ps && n)
        return bp__refuse_user(pool, EINVAL, "bp_put_bulk", NULL);
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        int r = bp_put(pool, ps[i]);
        if (r && !first)
            first = r;
    }
    return first;
}

/* ---- zeroed ---------------------------------------------------------------- */

void *bp_get_zeroed(bp_pool *pool, size_t len) {
    void *site = __builtin_return_address(0);
    bp__budget_failed = false;
    if (!pool || len == 0)
        return bp__refuse_user(pool, EINVAL, "bp_get_zeroed", NULL), NULL;
    if (ld_rlx(&pool->flags) & (BPF_ADOPTED | BPF_DETACHED))
        return bp__refuse_user(pool, EPERM, "bp_get_zeroed", NULL), NULL;
    /* Checked pools poison and object pools initialise: never fresh. */
    bool plain = !(ld_rlx(&pool->flags) & BPF_CHECKED) && !pool->objpool;
    if (len > pool->max_len) { /* its own mapping: zeros */
        void *p = get_oversize(pool, len, site);
        if (p && !plain)
            memset(p, 0, bp_cap(p));
        return p;
    }
    uint32_t t = bp__tier_of(pool, len);
    if (!plain || pool->sizes[t] < bp__os_page()) { /* a memset is cheaper than the lock */
        void *p = get_at(pool, len, site);
        if (p)
            memset(p, 0, bp_cap(p));
        return p;
    }
    bool fresh = false;
    void *p = get_locked(pool, t, len, site, &fresh);
    if (p && !fresh)
        memset(p, 0, bp_cap(p));
    return p;
}

/* ---- grow ----------------------------------------------------------------- */

void *bp_grow(bp_pool *pool, void *p, size_t len) {
    void *site = __builtin_return_address(0);
    if (!p)
        return get_at(pool, len, site);
    if (!pool || len == 0)
        return bp__refuse_user(pool, EINVAL, "bp_grow", p), NULL;
    bp_seg *seg;
    uint32_t idx;
    _Atomic uint32_t *rc = locate(pool, false, p, "bp_grow", &seg, &idx);
    if (!rc)
        return NULL;
    if (p != bp__seg_buf(seg, idx))
        return bp__refuse(pool, EINVAL, BP_OP_GROW_INTERIOR, p), NULL;
    uint32_t v = ld_acq(rc);
    if ((v & BP_RC_COUNT) == 0)
        return bp__refuse(pool, EALREADY, "bp_grow", p), NULL;
    if ((v & BP_RC_COUNT) != 1 || (v & (BP_RC_WATCHED | BP_RC_PINNED)))
        return bp__refuse(pool, EBUSY, "bp_grow", p), NULL;
    size_t cap = bp_cap(p);
    if (len <= cap)
        return p;
    void *q = get_at(pool, len, site);
    if (!q)
        return NULL; /* errno says why; p is still the caller's */
    memcpy(q, p, cap);
    bp_put(pool, p);
    return q;
}

/* ---- references ----------------------------------------------------------- */

/* Every case of bp_retain (n == 1) and bp_retain_n. */
BP_COLD static void *retain_slow(void *p, size_t n) {
    const char *op = n == 1 ? "bp_retain" : "bp_retain_n";
    int w;
    if (p && !bp__seg_of(p) && (w = bp__wrap_retain(p, n)) != ENOENT) /* a wrapped buffer */
        return w ? (bp__refuse(NULL, w, op, p), NULL) : p;
    bp_seg *seg;
    uint32_t idx;
    _Atomic uint32_t *rc = locate(NULL, true, p, op, &seg, &idx);
    if (!rc)
        return NULL;
    uint32_t v = ld_rlx(rc);
    do {
        uint32_t count = v & BP_RC_COUNT;
        if (count == 0 || n > BP_RC_MAX - count) {
            if (count == 0 && seg->reqlen && !bp__seg_is_oversize(seg))
                bp__abort("bytepool: %s(%p): buffer %p is free", op, p,
                          (void *)bp__seg_buf(seg, idx));
            bp__refuse(seg->pool, count ? EOVERFLOW : EALREADY, op, p);
            return NULL;
        }
    } while (!atomic_compare_exchange_weak_explicit(rc, &v, v + (uint32_t)n, memory_order_relaxed,
                                                    memory_order_relaxed));
    return p;
}

/* +n references with one CAS when the buffer is live, unsampled and has
 * room for them; everything else goes to retain_slow. */
static inline void *retain_fast(void *p, size_t n) {
    bp_seg *seg;
    size_t in;
    uint32_t idx;
    if (BP_UNLIKELY(!bp__near(p, &seg)) ||
        BP_UNLIKELY((idx = bp__slot_of(seg, p, &in)) == UINT32_MAX))
        return retain_slow(p, n);
    _Atomic uint32_t *rc = &seg->rc[idx];
    uint32_t v = ld_rlx(rc);
    if (BP_LIKELY(v - 1 < BP_RC_MAX - 1) && BP_LIKELY(n <= BP_RC_MAX - v) &&
        BP_LIKELY(atomic_compare_exchange_strong_explicit(
            rc, &v, v + (uint32_t)n, memory_order_relaxed, memory_order_relaxed)))
        return p;
    return retain_slow(p, n);
}

void *bp_retain(void *p) { return retain_fast(p, 1); }

void *bp_retain_n(void *p, size_t n) { return retain_fast(p, n); }

/* Every case of bp_release_n, one CAS per attempt, the final drop
 * included (a retain racing it either fails or truly holds). */
BP_COLD static int release_n_slow(void *p, size_t n) {
    bp_seg *seg;
    uint32_t idx;
    int w;
    if (p && !bp__seg_of(p) && (w = bp__wrap_release(p, n)) != ENOENT) /* a wrapped buffer */
        return w ? bp__refuse(NULL, w, w == EINVAL ? BP_OP_RELEASE_N_COUNT : "bp_release_n", p) : 0;
    _Atomic uint32_t *rc = locate(NULL, true, p, "bp_release_n", &seg, &idx);
    if (!rc)
        return errno;
    uint32_t v = ld_acq(rc);
    for (;;) {
        uint32_t count = v & BP_RC_COUNT;
        if (count == 0) {
            if (seg->reqlen && !bp__seg_is_oversize(seg))
                bp__abort("bytepool: bp_release_n(%p, %zu): buffer %p is already free", p, n,
                          (void *)bp__seg_buf(seg, idx));
            return bp__refuse(seg->pool, EALREADY, "bp_release_n", p);
        }
        if (n > count) /* more than it holds: nothing changes */
            return bp__refuse(seg->pool, EINVAL, BP_OP_RELEASE_N_COUNT, p);
        if (n == 0)
            return 0;
        /* The last references go in the same CAS, as bp_release's final
         * drop does: of racing final drops exactly one sees count == n. */
        bool last = n == count, pinned = v & BP_RC_PINNED;
        uint32_t next = last && !pinned ? 0 : v - (uint32_t)n;
        bool fire = !last && count - n == 1 && (v & BP_RC_WATCHED);
        if (fire)
            next &= ~BP_RC_WATCHED;
        if (atomic_compare_exchange_weak_explicit(rc, &v, next, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            if (fire)
                bp__watch_fire(seg, idx);
            if (last && !pinned)
                bp__buffer_gone(seg, idx, v);
            return 0;
        }
    }
}

int bp_release_n(void *p, size_t n) {
    bp_seg *seg;
    size_t in;
    uint32_t idx;
    if (BP_UNLIKELY(!bp__near(p, &seg)) ||
        BP_UNLIKELY((idx = bp__slot_of(seg, p, &in)) == UINT32_MAX))
        return release_n_slow(p, n);
    _Atomic uint32_t *rc = &seg->rc[idx];
    uint32_t v = ld_rlx(rc);
    /* a shared count (2..max, unsampled) and 1 <= n < it: one CAS; the rest is slow */
    if (BP_LIKELY(v - 2 < BP_RC_MAX - 1) && BP_LIKELY(n - 1 < (size_t)v - 1) &&
        BP_LIKELY(atomic_compare_exchange_strong_explicit(
            rc, &v, v - (uint32_t)n, memory_order_release, memory_order_relaxed)))
        return 0;
    return release_n_slow(p, n);
}

size_t bp_refcount(const void *p) {
    bp_seg *seg = bp__seg_of(p);
    size_t in;
    uint32_t idx;
    uintptr_t lo, hi;
    if (!seg && p)
        return bp__wrap_query(p, &lo, &hi);
    if (!seg || (idx = bp__slot_of(seg, p, &in)) == UINT32_MAX)
        return 0;
    return ld_acq(&seg->rc[idx]) & BP_RC_COUNT;
}

size_t bp_cap(const void *p) {
    bp_seg *seg = bp__seg_of(p);
    size_t in;
    uint32_t idx;
    uintptr_t lo, hi;
    if (!seg && p)
        return bp__wrap_query(p, &lo, &hi) ? hi - (uintptr_t)p : 0;
    if (!seg || (idx = bp__slot_of(seg, p, &in)) == UINT32_MAX)
        return 0;
    return ld_acq(&seg->rc[idx]) & BP_RC_COUNT ? seg->size - in : 0;
}

void *bp_base(const void *p) {
    bp_seg *seg = bp__seg_of(p);
    size_t in;
    uint32_t idx;
    uintptr_t lo, hi;
    if (!seg && p && bp__wrap_query(p, &lo, &hi))
        return (void *)lo;
    if (!seg || (idx = bp__slot_of(seg, p, &in)) == UINT32_MAX ||
        !(ld_acq(&seg->rc[idx]) & BP_RC_COUNT)) {
        errno = EINVAL;
        return NULL;
    }
    return (uint8_t *)p - in;
}

/* ---- waiting for room under the budget ------------------------------------ */

/* A caller counts as a waiter from its first refusal until it returns,
 * awake or asleep: the pool stays under pressure (caches bypassed) for as
 * long as anyone is in here, so a buffer released while a woken waiter is
 * between attempts goes to the depot, not into the releasing thread's
 * cache where no waiter could find it. */
void *bp_get_wait(bp_pool *pool, size_t len, int timeout_ms) {
    if (timeout_ms < -1) /* only -1 means forever */
        return bp__refuse_user(pool, EINVAL, "bp_get_wait", NULL), NULL;
    struct timespec deadline;
    if (timeout_ms > 0)
        bp__os_deadline(&deadline, (unsigned)timeout_ms);
    bool counted = false;
    int rc = 0;
    void *p;
    for (;;) {
        uint64_t gen = pool ? ld_acq(&pool->room_gen) : 0;
        waiting = true;
        p = bp_get(pool, len); /* a fast-path get never fails */
        waiting = false;
        if (p || !bp__budget_failed || timeout_ms == 0 || rc == ETIMEDOUT)
            break; /* served, refused for another reason (errno says), or out of time */
        bp__pool_lock(pool);
        if (!counted)
            pool->waiters++;
        counted = true;
        /* Room came back since the attempt began? Then try again at once. */
        while (ld_acq(&pool->room_gen) == gen && rc == 0)
            rc = bp__pool_wait(pool, &pool->room, timeout_ms < 0 ? NULL : &deadline);
        bp__pool_unlock(pool);
    }
    bool refused = !p && bp__budget_failed;
    if (counted) {
        bp__pool_lock(pool);
        pool->waiters--;
        bp__pool_unlock(pool);
    }
    if (refused) {
        int err = timeout_ms == 0 ? ENOMEM : ETIMEDOUT;
        atomic_fetch_add_explicit(&pool->budget_refused, 1, memory_order_relaxed);
        bp__report(pool, err, "bp_get_wait", NULL);
        errno = err;
    }
    return p;
}
