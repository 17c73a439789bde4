/* SPDX-License-Identifier: MIT */
/*
 * ref.c - count handles: the lookup from a pointer to its count done once,
 * for the loop that hands one buffer to many holders.
 *
 * bp_retain and bp_release find the count from any pointer (range check,
 * table load, slot arithmetic, checks: about 25 instructions each time). A
 * bp_ref is the count's address, found once by bp_ref_of with every check;
 * its calls are then one atomic on it. What the handle gives up: a
 * forged or stale handle (a buffer freed and handed out again) cannot be
 * told from a live one outside checked mode. In checked pools bp_ref_of
 * tags the handle (its low bit, counts being 4-byte aligned), and every
 * call on a tagged handle first checks through the address map that it
 * still names a count of a live segment. A freed buffer (count 0) is
 * refused with EALREADY in every mode, as bp_retain and bp_release do.
 */
#include "internal.h"

#include <errno.h>

#define TAG ((uintptr_t)1) /* checked pool: verify before use */

static _Atomic uint32_t *rc_of(bp_ref r) { return (_Atomic uint32_t *)((uintptr_t)r.h & ~TAG); }

/* The buffer a count belongs to (its segment header holds the counts). */
static void *buf_of(_Atomic uint32_t *rc) {
    bp_seg *seg = bp__seg_of_rc(rc);
    return bp__seg_buf(seg, (uint32_t)(rc - seg->rc));
}

/* Checked pools: does the handle name a count of a live segment? */
BP_COLD static bool verified(bp_ref r, const char *op) {
    _Atomic uint32_t *rc = rc_of(r);
    bp_seg *seg = rc ? bp__seg_of(rc) : NULL;
    bool ok = seg && seg == bp__seg_of_rc(rc) && (uintptr_t)rc % sizeof *rc == 0 && rc >= seg->rc &&
              (uint64_t)(rc - seg->rc) < seg->nslots;
    if (!ok)
        bp__abort("bytepool: %s: handle %p names no count of a live segment (forged or stale)", op,
                  r.h);
    return ok;
}

bp_ref bp_ref_of(const void *p) {
    bp_seg *seg = p ? bp__seg_of(p) : NULL;
    size_t in;
    uint32_t idx = seg ? bp__slot_of(seg, p, &in) : UINT32_MAX;
    if (idx == UINT32_MAX || !(ld_acq(&seg->rc[idx]) & BP_RC_COUNT)) {
        bp__refuse(idx == UINT32_MAX ? NULL : seg->pool, EINVAL, "bp_ref_of", p);
        return (bp_ref){NULL};
    }
    uintptr_t tag = (ld_rlx(&seg->pool->flags) & BPF_CHECKED) ? TAG : 0;
    return (bp_ref){(void *)((uintptr_t)&seg->rc[idx] | tag)};
}

/* Flagged counts (sampled, watched, pinned), overflow, a freed buffer and
 * checked handles: the pointer calls, which do all of it. */
BP_COLD static int retain_slow(bp_ref r, size_t n) {
    if (!r.h)
        return bp__refuse(NULL, EINVAL, "bp_ref_retain", NULL);
    if (((uintptr_t)r.h & TAG) && !verified(r, "bp_ref_retain"))
        return EINVAL;
    return bp_retain_n(buf_of(rc_of(r)), n) ? 0 : errno;
}

int bp_ref_retain_n(bp_ref r, size_t n) {
    _Atomic uint32_t *rc = r.h;
    if (BP_LIKELY(((uintptr_t)rc & TAG) == 0 && rc)) {
        uint32_t v = ld_rlx(rc);
        if (BP_LIKELY(v - 1 < BP_RC_MAX - 1) && BP_LIKELY(n <= BP_RC_MAX - v) &&
            BP_LIKELY(atomic_compare_exchange_strong_explicit(
                rc, &v, v + (uint32_t)n, memory_order_relaxed, memory_order_relaxed)))
            return 0;
    }
    return retain_slow(r, n);
}

int bp_ref_retain(bp_ref r) { return bp_ref_retain_n(r, 1); }

BP_COLD static int release_slow(bp_ref r) {
    if (!r.h)
        return bp__refuse(NULL, EINVAL, "bp_ref_release", NULL);
    if (((uintptr_t)r.h & TAG) && !verified(r, "bp_ref_release"))
        return EINVAL;
    return bp_release(buf_of(rc_of(r)));
}

/* One CAS: a shared count goes down by one; the only one goes 1 -> 0 and
 * the buffer home (of racing final releases exactly one wins, as with
 * bp_release). */
int bp_ref_release(bp_ref r) {
    _Atomic uint32_t *rc = r.h;
    if (BP_LIKELY(((uintptr_t)rc & TAG) == 0 && rc)) {
        uint32_t v = ld_acq(rc);
        if (BP_LIKELY(v - 1 < BP_RC_MAX) &&
            BP_LIKELY(atomic_compare_exchange_strong_explicit(rc, &v, v - 1, memory_order_acq_rel,
                                                              memory_order_relaxed))) {
            if (BP_UNLIKELY(v == 1)) {
                bp_seg *seg = bp__seg_of_rc(rc);
                bp__buffer_home(seg, (uint32_t)(rc - seg->rc));
            }
            return 0;
        }
    }
    return release_slow(r);
}
