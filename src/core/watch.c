/* SPDX-License-Identifier: MIT */
/*
 * watch.c - return watches: a watcher is called when a buffer it lent out
 * is back to its one reference.
 *
 * A watch is two things: the slot's entry in the segment's watch table (the
 * claim, so two watchers never overwrite each other) and BP_RC_WATCHED in
 * the count (the arming). No fast path accepts a count with that bit, so
 * only watched buffers pay: their retains and releases take the slow path,
 * and the drop that leaves 1 clears the bit in the same CAS and calls
 * bp__watch_fire. Of a racing unwatch and that drop exactly one clears the
 * bit, so a watcher is either called or told it was disarmed, never both.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>

/* The count of the live buffer containing p, or NULL (refused: EINVAL for
 * anything but a live buffer of some pool). */
static _Atomic uint32_t *watched_count(void *p, const char *op, bp_seg **segp, uint32_t *idxp) {
    bp_seg *seg = p ? bp__seg_of(p) : NULL;
    size_t in;
    uint32_t idx = seg ? bp__slot_of(seg, p, &in) : UINT32_MAX;
    if (idx == UINT32_MAX || !(ld_acq(&seg->rc[idx]) & BP_RC_COUNT)) {
        bp__refuse(idx == UINT32_MAX ? NULL : seg->pool, EINVAL, op, p);
        return NULL;
    }
    *segp = seg;
    *idxp = idx;
    return &seg->rc[idx];
}

/* The table's mapping: pages from the OS, not malloc, because its only
 * pointer lives in the segment header, which leak checkers do not scan
 * (the table of a live pool at exit is no leak), and untouched pages of a
 * large table cost nothing. */

/* The segment's table, made on first use. The caller holds a reference, so
 * the segment (and the table, freed with it) outlives this call. */
static _Atomic(bp_watcher *) *watch_table(bp_seg *seg) {
    _Atomic(bp_watcher *) *t = ld_acq(&seg->watch);
    if (t)
        return t;
    _Atomic(bp_watcher *) *mine = bp__os_map(bp__seg_watch_bytes(seg), bp__os_page()); /* zeros */
    if (!mine)
        return NULL;
    if (atomic_compare_exchange_strong_explicit(&seg->watch, &t, mine, memory_order_acq_rel,
                                                memory_order_acquire))
        return mine;
    bp__os_unmap(mine, bp__seg_watch_bytes(seg)); /* another thread made it first */
    return t;
}

/* A table entry: the watcher, with OWNED set when only bp_unwatch_owned
 * with that watcher may disarm it. */
#define OWNED ((uintptr_t)1)
static bp_watcher *watcher_of(uintptr_t e) { return (bp_watcher *)(e & ~OWNED); }

static int arm(void *p, bp_watcher *w, bool owned, const char *op) {
    bp_seg *seg;
    uint32_t idx;
    _Atomic uint32_t *rc = watched_count(p, op, &seg, &idx);
    if (!rc)
        return EINVAL;
    if (!w || !w->fn || ((uintptr_t)w & OWNED))
        return bp__refuse(seg->pool, EINVAL, op, p);
    _Atomic(bp_watcher *) *t = watch_table(seg);
    if (!t)
        return ENOMEM;
    bp_watcher *none = NULL, *entry = (bp_watcher *)((uintptr_t)w | (owned ? OWNED : 0));
    if (!atomic_compare_exchange_strong_explicit(&t[idx], &none, entry, memory_order_relaxed,
                                                 memory_order_relaxed))
        return EBUSY;
    uint32_t v = ld_rlx(rc);
    for (;;) {
        uint32_t count = v & BP_RC_COUNT;
        int err = count == 0 ? EINVAL : count == 1 ? ENOENT : (v & BP_RC_WATCHED) ? EBUSY : 0;
        if (err) {
            st_rlx(&t[idx], NULL);
            if (err == EINVAL) /* freed meanwhile: the caller held no reference */
                bp__refuse(seg->pool, EINVAL, op, p);
            return err;
        }
        /* release: a drop that sees the bit sees the entry */
        if (atomic_compare_exchange_weak_explicit(rc, &v, v | BP_RC_WATCHED, memory_order_release,
                                                  memory_order_relaxed))
            return 0;
    }
}

int bp_watch(void *p, bp_watcher *w) { return arm(p, w, false, "bp_watch"); }

int bp_watch_owned(void *p, bp_watcher *w) { return arm(p, w, true, "bp_watch_owned"); }

/* Unpins. A final drop may have come meanwhile and left the count at 0
 * with its flags: then the buffer goes home here. */
static void unpin(bp_seg *seg, uint32_t idx) {
    _Atomic uint32_t *rc = &seg->rc[idx];
    uint32_t v = ld_rlx(rc);
    while (!atomic_compare_exchange_weak_explicit(rc, &v, (v & BP_RC_COUNT) ? v & ~BP_RC_PINNED : 0,
                                                  memory_order_acq_rel, memory_order_relaxed))
        ;
    if (!(v & BP_RC_COUNT))
        bp__buffer_gone(seg, idx, v);
}

/* Takes the entry (the one decision point: of a disarm and a firing drop,
 * whichever takes it wins), then clears the bit. The caller may hold no
 * reference, so BP_RC_PINNED keeps the buffer, its segment and the table
 * alive meanwhile: a final drop that finds the pin leaves the count at 0
 * and the going home to this call. The pin is a bit, not a reference, so
 * the count (and when a watch fires) is what the holders made it. */
static int disarm(void *p, bp_watcher *mine, const char *op) {
    bp_seg *seg;
    uint32_t idx;
    _Atomic uint32_t *rc = watched_count(p, op, &seg, &idx);
    if (!rc)
        return EINVAL;
    uint32_t v = ld_rlx(rc);
    for (;;) {
        if (!(v & BP_RC_COUNT))
            return bp__refuse(seg->pool, EINVAL, op, p); /* freed since */
        if (!(v & BP_RC_WATCHED))
            return EALREADY;    /* never armed, being armed, or fired (maybe firing now) */
        if (v & BP_RC_PINNED) { /* another disarm is at work: a few instructions */
            sched_yield();
            v = ld_rlx(rc);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(rc, &v, v | BP_RC_PINNED, memory_order_acquire,
                                                  memory_order_relaxed))
            break;
    }
    _Atomic(bp_watcher *) *t = ld_acq(&seg->watch);
    int err = 0;
    uintptr_t e = t ? (uintptr_t)ld_rlx(&t[idx]) : 0;
    for (;;) {
        if (!e || !(ld_acq(rc) & BP_RC_WATCHED)) {
            err = EALREADY; /* fired meanwhile (maybe firing now) */
            break;
        }
        if (mine ? watcher_of(e) != mine : (e & OWNED) != 0) {
            err = bp__refuse(seg->pool, EPERM, op, p); /* someone else's watch */
            break;
        }
        bp_watcher *want = (bp_watcher *)e;
        if (atomic_compare_exchange_weak_explicit(&t[idx], &want, NULL, memory_order_acquire,
                                                  memory_order_relaxed))
            break;
        e = (uintptr_t)want;
    }
    if (!err)
        atomic_fetch_and_explicit(rc, ~BP_RC_WATCHED, memory_order_acquire);
    unpin(seg, idx);
    return err;
}

int bp_unwatch(void *p) { return disarm(p, NULL, "bp_unwatch"); }

int bp_unwatch_owned(void *p, bp_watcher *w) {
    if (!w)
        return bp__refuse(NULL, EINVAL, "bp_unwatch_owned", p);
    return disarm(p, w, "bp_unwatch_owned");
}

/* A drop cleared the bit taking the count to 1: it calls the watcher, unless
 * a disarm took the entry first. */
void bp__watch_fire(bp_seg *seg, uint32_t idx) {
    _Atomic(bp_watcher *) *t = ld_acq(&seg->watch);
    /* Free the claim before the call: fn may arm the next watch itself. */
    bp_watcher *w =
        watcher_of((uintptr_t)atomic_exchange_explicit(&t[idx], NULL, memory_order_acquire));
    if (w)
        w->fn(w, bp__seg_buf(seg, idx));
}
