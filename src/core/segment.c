/* SPDX-License-Identifier: MIT */
/*
 * segment.c - mapping and unmapping segments.
 *
 * A tier segment is one mapping aligned to BP_CHUNK: the header (pool, tier,
 * geometry, then one reference count and one free-stack entry per slot),
 * then the buffers at a fixed stride. Tiers of a page and up start on a page
 * boundary; smaller ones on 64 bytes. A segment aims at BP_SEG_PAYLOAD bytes
 * of buffers and holds at least one. An oversize buffer gets a segment of
 * its own with a single slot of exactly the requested length.
 *
 * Tier segments are placed in the reserved range (resv.c); the rest below
 * is about segments mapped on their own (oversize, or the range refused).
 * A freed segment leaves its header pages behind as zeros (a tombstone, see
 * bp__os_retire), so a query of a stale pointer that raced the free never
 * touches unmapped memory. New segments are grown in place from tombstones
 * first, so their number stays near the most segments ever mapped at once.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

/* Per slot: the count, a free-stack entry, the requested length (checked
 * mode) and an initialised byte (object pools with an init). */
static size_t header_bytes(uint32_t nslots, bool checked, bool objects) {
    size_t per = sizeof(_Atomic uint32_t) + sizeof(uint32_t) + (checked ? sizeof(uint32_t) : 0) +
                 (objects ? 1 : 0);
    return (BP_COLOURS - 1) * BP_COLOUR_STEP + sizeof(bp_seg) + (size_t)nslots * per;
}

/* The header of a segment mapped at m: at its colour. */
static bp_seg *seg_at(void *m) { return (bp_seg *)((uint8_t *)m + bp__seg_colour((uintptr_t)m)); }

/* The bytes a backed segment's buffers span: whole pages from seg->base. */
static size_t backed_bytes(const bp_seg *seg) {
    return align_up((size_t)seg->nslots * seg->stride, bp__os_page());
}

static void seg_unmap(bp_seg *seg);

/* ---- tombstones ------------------------------------------------------------ */

typedef struct tomb {
    void *addr;
    size_t keep;
} tomb;

static pthread_mutex_t tomb_mu = PTHREAD_MUTEX_INITIALIZER;
static tomb *tombs;
static size_t ntombs, tomb_cap;
#define TOMB_TRIES 4 /* newest tombstones tried per new segment */

void bp__tomb_lock(void) { pthread_mutex_lock(&tomb_mu); }
void bp__tomb_unlock(void) { pthread_mutex_unlock(&tomb_mu); }

static void tomb_add(void *addr, size_t keep) {
    bp__tomb_lock();
    if (ntombs == tomb_cap) {
        size_t cap = tomb_cap ? tomb_cap * 2 : 64;
        tomb *t = realloc(tombs, cap * sizeof(tomb));
        if (t) {
            tombs = t;
            tomb_cap = cap;
        }
    }
    if (ntombs < tomb_cap) /* else it stays as it is, never reused: still safe */
        tombs[ntombs++] = (tomb){addr, keep};
    bp__tomb_unlock();
}

/* A chunk-aligned mapping of map_bytes grown from a tombstone, or NULL;
 * *refused is set when the OS refused memory (no fresh mapping either). */
static void *tomb_reuse(size_t map_bytes, size_t *keep, bool *refused) {
    void *got = NULL;
    bp__tomb_lock();
    for (size_t i = ntombs, tries = 0; i-- > 0 && tries < TOMB_TRIES && !got && !*refused;) {
        if (tombs[i].keep > map_bytes)
            continue;
        tries++;
        int err = bp__os_regrow(tombs[i].addr, tombs[i].keep, map_bytes);
        *refused = err == ENOMEM;
        if (err == 0) {
            got = tombs[i].addr;
            *keep = tombs[i].keep;
            memset(got, 0, *keep); /* zero already, unless a failed CAS wrote it back */
            tombs[i] = tombs[--ntombs];
        }
    }
    bp__tomb_unlock();
    return got;
}

/* Mapping geometry for a tier of `size` bytes: stride, slots, first offset. */
/* backed: the buffers start on a page and fill whole pages (the program
 * maps them: bp_backing). */
static void tier_geometry(size_t size, bool checked, bool objects, bool backed, size_t *stride,
                          uint32_t *nslots, size_t *first, size_t *map_bytes) {
    size_t page = bp__os_page();
    size_t align = size >= page ? page : BP_ALIGN_MIN;
    size_t st = align_up(size + (checked ? bp__checked_gap(size, page) : 0), align);
    uint32_t n = st >= BP_SEG_PAYLOAD ? 1 : (uint32_t)(BP_SEG_PAYLOAD / st);
    if (backed)
        align = page;
    size_t off = align_up(header_bytes(n, checked, objects), align);
    /* Fit header and buffers in whole chunks; use the room left at the end. */
    size_t total = align_up(off + (size_t)n * st, BP_CHUNK);
    while (off + align_up((size_t)(n + 1) * st, backed ? page : 1) <= total) {
        size_t off2 = align_up(header_bytes(n + 1, checked, objects), align);
        if (off2 + align_up((size_t)(n + 1) * st, backed ? page : 1) > total)
            break;
        n++;
        off = off2;
    }
    *stride = st;
    *nslots = n;
    *first = off;
    *map_bytes = total;
}

/* An oversize segment's mapping for len bytes; 0 when no mapping can be. */
size_t bp__seg_oversize_bytes(size_t len) {
    size_t page = bp__os_page();
    size_t first = align_up(header_bytes(1, true, false), page);
    return len > SIZE_MAX - first - BP_CHUNK ? 0 : align_up(first + len, page);
}

size_t bp__seg_tier_bytes(size_t size, bool checked) {
    size_t stride, first, map_bytes;
    uint32_t n;
    tier_geometry(size, checked, false, false, &stride, &n, &first, &map_bytes);
    return map_bytes;
}

/* Tier segments come from the reserved range (resv.c) while it has room;
 * oversize buffers and what the range cannot serve are mapped on their own
 * and found through the radix map. */
static bp_seg *seg_map(bp_pool *pool, size_t map_bytes, bool tier) {
    bool refused = false;
    void *m = tier ? bp__resv_alloc(map_bytes, &refused) : NULL;
    bp_seg *seg;
    if (m) {
        seg = seg_at(m);
        seg->map_bytes = map_bytes;
        seg->pool = pool;
        st_rlx(&seg->watch, NULL);
        return seg; /* published by seg_link, once its header is complete */
    }
    size_t keep = 0;
    if (!refused)
        m = tomb_reuse(map_bytes, &keep, &refused);
    if (!m && !refused)
        m = bp__os_map(map_bytes, BP_CHUNK);
    if (!m) {
        errno = ENOMEM;
        return NULL;
    }
    seg = seg_at(m);
    seg->map_bytes = map_bytes;
    seg->pool = pool;
    st_rlx(&seg->watch, NULL);
    if (bp__segmap_add(seg) != 0) {
        if (keep) { /* a stale reader may still look here */
            bp__os_retire(m, map_bytes, keep);
            tomb_add(m, keep);
        } else {
            bp__os_unmap(m, map_bytes);
        }
        errno = ENOMEM;
        return NULL;
    }
    return seg;
}

static void seg_link(bp_pool *pool, bp_seg *seg) {
    if (bp__resv_owns(seg))
        bp__resv_publish(seg);
    seg->next = pool->segs;
    seg->prev = NULL;
    if (pool->segs)
        pool->segs->prev = seg;
    pool->segs = seg;
    pool->mapped += seg->map_bytes;
    pool->nsegs++;
}

/* The program's on_segment: the range of every buffer of seg. */
static void seg_event(const bp_seg *seg, int event) {
    bp_pool *pool = seg->pool;
    if (pool->on_segment)
        pool->on_segment(pool->segment_ctx, seg->base, (size_t)seg->nslots * seg->stride, event);
}

bp_seg *bp__seg_new_tier(bp_pool *pool, uint32_t tier) {
    bp__pool_assert_locked(pool);
    bool checked = ld_rlx(&pool->flags) & BPF_CHECKED, objects = pool->objpool != NULL;
    size_t stride, first, map_bytes;
    uint32_t n;
    bool backed = pool->backing.map != NULL;
    tier_geometry(pool->sizes[tier], checked, objects, backed, &stride, &n, &first, &map_bytes);
    bp_seg *seg = seg_map(pool, map_bytes, true);
    if (!seg)
        return NULL;
    seg->base = bp__seg_start(seg) + first;
    seg->stride = stride;
    seg->size = pool->sizes[tier];
    seg->magic = n == 1 ? 0 : ((UINT64_C(1) << BP_IDX_SHIFT) + stride - 1) / stride;
    seg->nslots = n;
    seg->span = stride == seg->size ? (uint64_t)n * stride : 0;
    seg->tier = tier;
    seg->bin_off = bp__bin_off(tier);
    seg->freestk = (uint32_t *)&seg->rc[n];
    seg->reqlen = checked ? seg->freestk + n : NULL;
    seg->inited = objects ? (uint8_t *)(seg->freestk + n + (checked ? n : 0)) : NULL;
    if (backed) {
        bp_segment_desc d = {seg->size, stride, n, tier};
        seg->backed = true; /* a failed map may have mapped some: undone as the program's */
        if (pool->backing.map(pool->backing.ctx, seg->base, backed_bytes(seg), &d) != 0) {
            seg_unmap(seg); /* never published: no reader can have it */
            errno = ENOMEM;
            return NULL;
        }
    }
    track_fresh(seg->base, (size_t)n * stride);
    seg_link(pool, seg);
    seg_event(seg, BP_SEGMENT_MAPPED);
    return seg;
}

/* A segment of an adopted pool: the header is ours, the buffers the
 * program's map puts at seg->base (desc checked by the caller). Every slot
 * is carved and free: nothing of it is ever in the depot, its buffers come
 * alive through bp_claim only. */
bp_seg *bp__seg_new_adopted(bp_pool *pool, const bp_segment_desc *d,
                            int (*map)(void *ctx, void *addr, size_t len), void *ctx) {
    bp__pool_assert_locked(pool);
    size_t page = bp__os_page();
    size_t first = align_up(header_bytes(d->nslots, false, false), page);
    size_t bytes = align_up((size_t)d->nslots * d->stride, page);
    bp_seg *seg = seg_map(pool, align_up(first + bytes, BP_CHUNK), true);
    if (!seg)
        return NULL;
    seg->base = bp__seg_start(seg) + first;
    seg->stride = d->stride;
    seg->size = d->size;
    seg->nslots = d->nslots;
    seg->magic = d->nslots == 1 ? 0 : ((UINT64_C(1) << BP_IDX_SHIFT) + d->stride - 1) / d->stride;
    seg->span = d->stride == d->size ? (uint64_t)d->nslots * d->stride : 0;
    seg->ncarved = d->nslots;
    seg->tier = 0; /* the pool's caches are always off: any bin reads as full */
    seg->bin_off = bp__bin_off(0);
    seg->freestk = (uint32_t *)&seg->rc[d->nslots];
    seg->backed = true;
    int err = map(ctx, seg->base, bytes);
    if (err) {
        seg_unmap(seg);
        errno = err;
        return NULL;
    }
    seg_link(pool, seg);
    seg_event(seg, BP_SEGMENT_MAPPED);
    return seg;
}

void bp__seg_free_adopted(bp_pool *pool, bp_seg *only) {
    bp__pool_assert_locked(pool);
    for (bp_seg *seg = pool->segs, *next; seg; seg = next) {
        next = seg->next;
        if (only && seg != only)
            continue;
        uint32_t live = 0;
        for (uint32_t i = 0; i < seg->nslots && !live; i++)
            live = ld_acq(&seg->rc[i]);
        if (!live)
            bp__seg_free(seg);
    }
}

bp_seg *bp__seg_new_oversize(bp_pool *pool, size_t len) {
    bp__pool_assert_locked(pool);
    size_t first = align_up(header_bytes(1, true, false), bp__os_page());
    size_t map_bytes = bp__seg_oversize_bytes(len);
    if (!map_bytes) {
        errno = ENOMEM;
        return NULL;
    }
    bp_seg *seg = seg_map(pool, map_bytes, false);
    if (!seg)
        return NULL;
    seg->base = bp__seg_start(seg) + first;
    seg->stride = len;
    seg->size = len;
    seg->magic = 0; /* every offset is slot 0 */
    seg->oversize = true;
    seg->nslots = 1;
    seg->span = len;
    seg->ncarved = 1;
    seg->tier = pool->ntiers; /* the always-full extra bin */
    seg->bin_off = bp__bin_off(seg->tier);
    seg->freestk = (uint32_t *)&seg->rc[1];
    seg->reqlen = seg->freestk + 1;
    seg_link(pool, seg);
    seg_event(seg, BP_SEGMENT_MAPPED);
    return seg;
}

void bp__seg_free(bp_seg *seg) {
    bp__pool_assert_locked(seg->pool);
    bp_pool *pool = seg->pool;
    seg_event(seg, BP_SEGMENT_UNMAPPING);
    BP_DLIST_UNLINK(pool->segs, seg, next, prev);
    pool->mapped -= seg->map_bytes;
    pool->nsegs--;
    pool->os_returned += seg->map_bytes;
    _Atomic(struct bp_watcher *) *watch = ld_rlx(&seg->watch); /* no buffer is live: none fires */
    if (watch)
        bp__os_unmap(watch, bp__seg_watch_bytes(seg));
    if (seg->backed && pool->backing.unmap && !(ld_rlx(&pool->flags) & BPF_DETACHED))
        pool->backing.unmap(pool->backing.ctx, seg->base, backed_bytes(seg));
    seg_unmap(seg);
}

/* Gives seg's mapping back; a backed segment's buffers become private
 * zeros first, so the extent is the library's own memory again. */
static void seg_unmap(bp_seg *seg) {
    size_t map_bytes = seg->map_bytes;
    if (seg->backed && bp__os_private(seg->base, backed_bytes(seg)) != 0) {
        /* Out of mappings: the program's memory stays there, so the extent
         * must never serve again. Unpublished and left as it is. */
        if (bp__resv_owns(seg))
            bp__resv_forget(seg);
        else
            bp__segmap_remove(seg);
        return;
    }
    uint8_t *m = bp__seg_start(seg);
    if (bp__resv_owns(seg)) { /* the extent stays mapped, reading as zeros */
        track_unmap(m, map_bytes);
        bp__resv_free(seg);
    } else { /* mapped on its own: a tombstone */
        bp__segmap_remove(seg);
        size_t keep = align_up((size_t)(seg->base - m), bp__os_page());
        if (keep > map_bytes)
            keep = map_bytes;
        track_unmap(m, map_bytes);
        bp__os_retire(m, map_bytes, keep);
        tomb_add(m, keep);
    }
}

/* The fast paths read one line of the header. */
_Static_assert(offsetof(bp_seg, tier) + sizeof(uint32_t) <= 64, "bp_seg's first line overflows");
