/* SPDX-License-Identifier: MIT */
/*
 * segmap.c - address -> segment, in O(1), for any address.
 *
 * A two-level radix map over the 47-bit user address space at chunk (1 MiB)
 * granularity: a static top array of leaf pointers, leaves of 8192 segment
 * pointers mapped on demand and never freed. Every chunk a segment spans
 * points at its header, so classifying an address reads only the map, never
 * the (possibly unmapped) memory the address names.
 */
#include "internal.h"

#include <errno.h>

#define LEAF_N (1u << BP_MAP_LEAF_BITS)

_Atomic(bp_seg *) *_Atomic bp__segmap[1u << BP_MAP_TOP_BITS];

static _Atomic(bp_seg *) *leaf_get(uintptr_t chunk) {
    _Atomic(bp_seg *) *_Atomic *top = &bp__segmap[chunk >> BP_MAP_LEAF_BITS];
    _Atomic(bp_seg *) *leaf = ld_acq(top);
    if (leaf)
        return leaf;
    size_t bytes = LEAF_N * sizeof(*leaf);
    _Atomic(bp_seg *) *fresh = bp__os_map(bytes, bp__os_page());
    if (!fresh)
        return NULL;
    _Atomic(bp_seg *) *expect = NULL;
    if (atomic_compare_exchange_strong_explicit(top, &expect, fresh, memory_order_acq_rel,
                                                memory_order_acquire))
        return fresh;
    bp__os_unmap(fresh, bytes); /* another thread installed one first */
    return expect;
}

static void map_range(bp_seg *seg, bp_seg *val) {
    uintptr_t first = (uintptr_t)bp__seg_start(seg) >> BP_CHUNK_SHIFT;
    uintptr_t last = ((uintptr_t)bp__seg_start(seg) + seg->map_bytes - 1) >> BP_CHUNK_SHIFT;
    for (uintptr_t c = first; c <= last; c++) {
        _Atomic(bp_seg *) *leaf = ld_acq(&bp__segmap[c >> BP_MAP_LEAF_BITS]);
        st_rel(&leaf[c & (LEAF_N - 1)], val);
    }
}

int bp__segmap_add(bp_seg *seg) {
    uintptr_t first = (uintptr_t)bp__seg_start(seg) >> BP_CHUNK_SHIFT;
    uintptr_t last = ((uintptr_t)bp__seg_start(seg) + seg->map_bytes - 1) >> BP_CHUNK_SHIFT;
    if (last >> (BP_MAP_TOP_BITS + BP_MAP_LEAF_BITS))
        return ENOMEM; /* outside the mapped address range */
    for (uintptr_t c = first; c <= last; c += LEAF_N - (c & (LEAF_N - 1)))
        if (!leaf_get(c))
            return ENOMEM;
    map_range(seg, seg);
    return 0;
}

void bp__segmap_remove(bp_seg *seg) { map_range(seg, NULL); }
