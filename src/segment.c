/*
 * segment.c - mapping and unmapping segments.
 *
 * A tier segment is one mapping aligned to BP_CHUNK: the header (pool, tier,
 * geometry, then one reference count and one free-stack entry per slot),
 * then the buffers at a fixed stride. Tiers of a page and up start on a page
 * boundary; smaller ones on 64 bytes. A segment aims at BP_SEG_PAYLOAD bytes
 * of buffers and holds at least one. An oversize buffer gets a segment of
 * its own with a single slot of exactly the requested length.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

static size_t align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

static size_t header_bytes(uint32_t nslots, bool checked) {
    size_t per = sizeof(_Atomic uint32_t) + sizeof(uint32_t) + (checked ? sizeof(uint32_t) : 0);
    return sizeof(bp_seg) + (size_t)nslots * per;
}

/* Mapping geometry for a tier of `size` bytes: stride, slots, first offset. */
static void tier_geometry(size_t size, bool checked, size_t *stride, uint32_t *nslots,
                          size_t *first, size_t *map_bytes) {
    size_t page = bp__os_page();
    size_t align = size >= page ? page : BP_ALIGN_MIN;
    size_t st = align_up(size, align);
    uint32_t n = st >= BP_SEG_PAYLOAD ? 1 : (uint32_t)(BP_SEG_PAYLOAD / st);
    size_t off = align_up(header_bytes(n, checked), align);
    /* Fit header and buffers in whole chunks; use the room left at the end. */
    size_t total = align_up(off + (size_t)n * st, BP_CHUNK);
    while (off + (size_t)(n + 1) * st <= total) {
        size_t off2 = align_up(header_bytes(n + 1, checked), align);
        if (off2 + (size_t)(n + 1) * st > total)
            break;
        n++;
        off = off2;
    }
    *stride = st;
    *nslots = n;
    *first = off;
    *map_bytes = total;
}

static bp_seg *seg_map(bp_pool *pool, size_t map_bytes) {
    bp_seg *seg = bp__os_map(map_bytes, BP_CHUNK);
    if (!seg)
        return NULL;
    seg->map_bytes = map_bytes;
    seg->pool = pool;
    if (bp__segmap_add(seg) != 0) {
        bp__os_unmap(seg, map_bytes);
        errno = ENOMEM;
        return NULL;
    }
    return seg;
}

static void seg_link(bp_pool *pool, bp_seg *seg) {
    seg->next = pool->segs;
    seg->prev = NULL;
    if (pool->segs)
        pool->segs->prev = seg;
    pool->segs = seg;
    pool->mapped += seg->map_bytes;
    pool->nsegs++;
}

bp_seg *bp__seg_new_tier(bp_pool *pool, uint32_t tier) {
    bool checked = ld_rlx(&pool->flags) & BPF_CHECKED;
    size_t stride, first, map_bytes;
    uint32_t n;
    tier_geometry(pool->sizes[tier], checked, &stride, &n, &first, &map_bytes);
    bp_seg *seg = seg_map(pool, map_bytes);
    if (!seg)
        return NULL;
    seg->base = (uint8_t *)seg + first;
    seg->stride = stride;
    seg->size = pool->sizes[tier];
    seg->magic = UINT64_MAX / stride + 1;
    seg->nslots = n;
    seg->tier = tier;
    seg->bin_off = bp__bin_off(tier);
    seg->freestk = (uint32_t *)&seg->rc[n];
    seg->reqlen = checked ? seg->freestk + n : NULL;
    track_fresh(seg->base, (size_t)n * stride);
    seg_link(pool, seg);
    return seg;
}

bp_seg *bp__seg_new_oversize(bp_pool *pool, size_t len) {
    size_t page = bp__os_page();
    size_t first = align_up(header_bytes(1, true), page);
    if (len > SIZE_MAX - first - BP_CHUNK) {
        errno = ENOMEM;
        return NULL;
    }
    size_t map_bytes = align_up(first + len, page);
    bp_seg *seg = seg_map(pool, map_bytes);
    if (!seg)
        return NULL;
    seg->base = (uint8_t *)seg + first;
    seg->stride = len;
    seg->size = len;
    seg->magic = 0; /* every offset is slot 0 */
    seg->nslots = 1;
    seg->ncarved = 1;
    seg->tier = pool->ntiers; /* the always-full extra bin */
    seg->bin_off = bp__bin_off(seg->tier);
    seg->freestk = (uint32_t *)&seg->rc[1];
    seg->reqlen = seg->freestk + 1;
    seg_link(pool, seg);
    return seg;
}

void bp__seg_free(bp_seg *seg) {
    bp_pool *pool = seg->pool;
    BP_DLIST_UNLINK(pool->segs, seg, next, prev);
    pool->mapped -= seg->map_bytes;
    pool->nsegs--;
    pool->os_returned += seg->map_bytes;
    bp__segmap_remove(seg);
    track_unmap(seg, seg->map_bytes);
    bp__os_unmap(seg, seg->map_bytes);
}
