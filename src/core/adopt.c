/* SPDX-License-Identifier: MIT */
/*
 * adopt.c - segments over memory the program maps (bp_segment_adopt) and
 * the one way their buffers come alive (bp_claim). libbytepool_shm's peers
 * map the owner's shared pages here, read-only: each process keeps its own
 * counts in its own header, and the flat table finds the segment, so every
 * reference call works on them unchanged. What happens when a count drops
 * to 0 is the pool's backing->on_free (home.c).
 */
#include "internal.h"

#include <errno.h>

/* The geometry bp__slot_of computes exactly (internal.h, BP_IDX_SHIFT). */
static bool desc_ok(const bp_segment_desc *d) {
    if (!d || d->size == 0 || d->nslots == 0 || d->stride < d->size || d->stride % BP_ALIGN_MIN)
        return false;
    if (d->size > BP_MAX_TIER_SIZE || d->stride > 2 * (size_t)BP_MAX_TIER_SIZE)
        return false;
    return d->nslots == 1 || (uint64_t)d->nslots * d->stride <= ((size_t)4 << 20);
}

void *bp_segment_adopt(bp_pool *pool, const bp_segment_desc *d,
                       int (*map)(void *ctx, void *addr, size_t len), void *ctx) {
    if (!pool || !map || !desc_ok(d))
        return bp__refuse_user(pool, EINVAL, "bp_segment_adopt", NULL), NULL;
    uint32_t flags = ld_rlx(&pool->flags);
    if (!(flags & BPF_ADOPTED) || (flags & (BPF_DETACHED | BPF_DEAD)))
        return bp__refuse_user(pool, EPERM, "bp_segment_adopt", NULL), NULL;
    bp__pool_lock(pool);
    bp_seg *seg = bp__seg_new_adopted(pool, d, map, ctx);
    bp__pool_unlock(pool);
    return seg ? seg->base : NULL;
}

int bp_claim(const void *p) {
    bp_seg *seg = p ? bp__seg_of(p) : NULL;
    size_t in;
    uint32_t idx = seg ? bp__slot_of(seg, p, &in) : UINT32_MAX;
    if (idx == UINT32_MAX || !(ld_rlx(&seg->pool->flags) & BPF_ADOPTED))
        return bp__refuse(seg ? seg->pool : NULL, EINVAL, "bp_claim", p);
    if (ld_rlx(&seg->pool->flags) & BPF_DETACHED)
        return bp__refuse(seg->pool, EPERM, "bp_claim", p);
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong_explicit(&seg->rc[idx], &zero, 1, memory_order_acquire,
                                                 memory_order_relaxed))
        return EBUSY; /* alive: not a misuse, the caller's race to settle */
    return 0;
}
