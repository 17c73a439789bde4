/* SPDX-License-Identifier: MIT */
/*
 * home.c - the way home: a buffer whose count reached 0 goes back onto the
 * thread's bin for its tier, or the hot slots, or the depot; an oversize
 * one is unmapped (and remembered, so a second release is still told from
 * a foreign pointer). Every path that drops a last reference ends here:
 * bp_put and bp_release (buffer.c), a count handle (ref.c), an unwatch that
 * finds the buffer released under its pin (watch.c); so it sits below them.
 */
#include "internal.h"

#include <string.h>

/* Oversize buffers are unmapped on their last release, so a second release
 * finds no segment. The last few released ranges are remembered (a refusal
 * path only: never consulted while a call succeeds) so that it is still
 * told apart from a foreign pointer and refused with EALREADY. */
#define GONE_N 256
static struct { _Atomic uintptr_t lo, hi; /* atomics, no lock: safe across fork() */ } gone[GONE_N];
static _Atomic size_t gone_next;

static void gone_remember(const void *base, size_t len) {
    size_t i = atomic_fetch_add_explicit(&gone_next, 1, memory_order_relaxed) % GONE_N;
    st_rlx(&gone[i].hi, 0); /* a half-written pair never matches */
    st_rlx(&gone[i].lo, (uintptr_t)base);
    st_rel(&gone[i].hi, (uintptr_t)base + len);
}

bool bp__gone_contains(const void *p) {
    for (size_t i = 0; i < GONE_N; i++) {
        uintptr_t hi = ld_acq(&gone[i].hi), lo = ld_rlx(&gone[i].lo);
        if ((uintptr_t)p >= lo && (uintptr_t)p < hi)
            return true;
    }
    return false;
}

/* A buffer of memory the program maps reached 0. In a fork() child, where
 * the memory is shared with the parent, nothing happens: the buffer is no
 * longer this process's to reuse. In an adopted pool the program hears of
 * it; once the pool is destroyed, a segment whose last buffer went goes. */
BP_COLD static void adopted_free(bp_seg *seg, uint32_t idx) {
    bp_pool *pool = seg->pool;
    uint32_t flags = ld_rlx(&pool->flags);
    if (flags & BPF_DETACHED)
        return;
    if (!(flags & BPF_DEAD)) {
        pool->backing.on_free(pool->backing.ctx, bp__seg_buf(seg, idx));
        return;
    }
    bp__pool_lock(pool);
    bp__seg_free_adopted(pool, seg); /* or a racing last release got there first */
    bp__pool_maybe_free(pool);
}

/* The count of slot idx has just reached 0: the buffer goes home. */
void bp__buffer_free_slow(bp_seg *seg, uint32_t idx) {
    bp_pool *pool = seg->pool;
    if (BP_UNLIKELY(ld_rlx(&pool->flags) & (BPF_ADOPTED | BPF_DETACHED))) {
        adopted_free(seg, idx);
        return;
    }
    if (ld_rlx(&pool->flags) & BPF_WIPE) /* BP_WIPE pools take no fast path: all come here */
        explicit_bzero(bp__seg_buf(seg, idx), seg->size);
    if (bp__seg_is_oversize(seg)) {
        gone_remember(seg->base, seg->size);
        track_take(pool, seg->base, seg->size);
        atomic_fetch_add_explicit(&pool->discarded, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&pool->over_live, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&pool->over_bytes, seg->size, memory_order_relaxed);
        bp__pool_lock(pool);
        bp__seg_free(seg);
        bp__depot_room(pool);
        bp__pool_maybe_free(pool);
        return;
    }
    uint32_t t = seg->tier;
    if (seg->reqlen)
        bp__checked_on_free(seg, idx, "release");
    track_take(pool, bp__seg_buf(seg, idx), seg->size);
    bp_tcache *tc = bp__tc_fast(pool);
    if (!tc || (ld_rlx(&pool->flags) & BPF_SLOW))
        tc = bp__tc_slow(pool);
    bp_centry e = {bp__seg_buf(seg, idx), &seg->rc[idx]};
    if (!tc) {
        bp__pool_lock(pool);
        pool->retired[t].put++;
        bp__depot_give(pool, t, &e, 1);
        bp__pool_maybe_free(pool);
        return;
    }
    bp_bin *bin = &tc->bins[t];
    if (bin->top == bin->end) {
        if (pool->depot[t].use_hot && bp__depot_hot_give(pool, t, e.rc)) {
            bump(&tc->bins[t].put);
            bp__depot_tick(tc);
            return;
        }
        if (bin->end == bin->e) { /* a tier without thread bins */
            bump(&tc->bins[t].put);
            bp__pool_lock(pool);
            bp__depot_give(pool, t, &e, 1);
            bp__depot_decay(pool);
            bp__pool_unlock(pool);
            return;
        }
        bp__tc_bin_full(tc, t);
    }
    *bin->top++ = e;
    bp__tsan_release(bin);
    bump(&tc->bins[t].put);
}

/* A count just went 1 -> 0 on a path that knows only its slot (bp_ref):
 * onto the thread's bin as drop_fast does, else the long way home. */
void bp__buffer_home(bp_seg *seg, uint32_t idx) {
    bp_bin *bin = (bp_bin *)((char *)bp__tc_here(seg->pool) + seg->bin_off);
    bp_centry *top = bin->top;
    if (BP_UNLIKELY(top == bin->end)) { /* full, no bin, or the pool takes no fast path */
        bp__buffer_free_slow(seg, idx);
        return;
    }
    uint8_t *start = bp__seg_buf(seg, idx);
    track_take(seg->pool, start, seg->size);
    *top = (bp_centry){start, &seg->rc[idx]};
    bin->top = top + 1;
    bp__tsan_release(bin);
    bump(&bin->put);
}

/* The count of slot idx reached 0 from v (its flags as they were): the
 * claims the flags stand for go, then the buffer goes home. */
void bp__buffer_gone(bp_seg *seg, uint32_t idx, uint32_t v) {
    if (v & BP_RC_WATCHED) /* the watcher's reference went too: no call, no claim left */
        bp__watch_forget(seg, idx);
    if (v & BP_RC_SAMPLED) {
        bp__pool_lock(seg->pool);
        bp__leak_forget(seg->pool, bp__seg_buf(seg, idx));
        bp__pool_unlock(seg->pool);
    }
    bp__buffer_free_slow(seg, idx);
}
