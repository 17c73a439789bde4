/* SPDX-License-Identifier: MIT */
/*
 * resv.c - the reserved address range: one load from address to segment.
 *
 * At the first segment the process reserves one large range of address
 * space (PROT_NONE, MAP_NORESERVE: no memory, no commit charge) and carves
 * tier segments from it, chunk-aligned, making each extent readable and
 * writable only when a segment is placed there. The range starts with a flat
 * table of one segment pointer per chunk of the whole window, so "is this
 * ours, and which segment" is `p - base < lim` and one load of table[(p -
 * base) >> BP_CHUNK_SHIFT]. Every entry below lim names a segment or the
 * sentinel segment bp__seg_none, whose fields refuse everything (no pool, no
 * slots), so the fast paths need no NULL test.
 *
 * When the range fills, the next range is asked for right after it
 * (MAP_FIXED_NOREPLACE), up to the window the table covers; when the OS
 * refuses, or the window is full, segments are mapped on their own as before
 * and found through the radix map (segmap.c), as are oversize buffers. A
 * first reservation refused (RLIMIT_AS, strict overcommit) leaves lim at 0:
 * every address misses the range and the radix map serves everything.
 *
 * A freed extent keeps its protection and gives its pages back with
 * MADV_DONTNEED, so a thread that read the table just before the free reads
 * zeros there (no slots: refused), never unmapped memory; the extent is
 * reused first-fit by later segments.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define WINDOW_SHIFT 40 /* 1 TiB of segments at most in the range */
#define WINDOW ((size_t)1 << WINDOW_SHIFT)
#define TAB_BYTES (WINDOW >> BP_CHUNK_SHIFT << 3) /* 8 MiB: one pointer per chunk */
#define TAB_CHUNKS (TAB_BYTES >> BP_CHUNK_SHIFT)

bp_resv bp__resv;
/* Refuses everything: no pool, no slots (every slot index is out of range),
 * and its bin offset lands on a full bin. */
bp_seg bp__seg_none = {.pool = NULL, .nslots = 0, .magic = 1, .size = 0, .stride = 1};

static pthread_mutex_t resv_mu = PTHREAD_MUTEX_INITIALIZER;
static bool tried;      /* the first reservation was attempted */
static size_t reserved; /* bytes of the window reserved so far */
static size_t step;     /* bytes asked for per extension */
static size_t hw;       /* chunks handed out at least once (== lim >> CHUNK_SHIFT) */
typedef struct extent {
    size_t first, n; /* chunks */
} extent;
static extent *freel; /* free extents, by address */
static size_t nfree, free_cap;

BP_HIDDEN _Atomic int bp__resv_disabled; /* tests: act as if the OS refused */

void bp__resv_lock(void) { pthread_mutex_lock(&resv_mu); }
void bp__resv_unlock(void) { pthread_mutex_unlock(&resv_mu); }

static _Atomic(bp_seg *) *tab(void) { return (_Atomic(bp_seg *) *)ld_rlx(&bp__resv.base); }

/* First reservation: the whole window, or less when the OS will not.
 * false when the OS refused memory for the table (tried again later). */
static bool reserve_first(void) {
    tried = true;
    if (ld_rlx(&bp__resv_disabled))
        return true;
    /* BYTEPOOL_RESERVE_BYTES asks for less than the whole window first: for
     * emulators that pay per reserved page (qemu-user takes 25 s for 1 TiB)
     * and for address-space limits known in advance. */
    size_t first = (size_t)bp__env_size(BP_ENV_RESERVE_BYTES, WINDOW, (uint64_t)64 << 20, WINDOW);
    first = (first + BP_CHUNK - 1) & ~(size_t)(BP_CHUNK - 1);
    const size_t tries[] = {first, first < (size_t)1 << 36 ? first : (size_t)1 << 36,
                            first < (size_t)1 << 33 ? first : (size_t)1 << 33};
    for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
        if (i && tries[i] == tries[i - 1])
            continue;
        uint8_t *p = bp__os_reserve(tries[i], BP_CHUNK);
        if (!p)
            continue;
        if (bp__os_commit(p, TAB_BYTES) != 0) {
            bp__os_unmap(p, tries[i]);
            tried = false;
            return false;
        }
        reserved = step = tries[i];
        _Atomic(bp_seg *) *t = (_Atomic(bp_seg *) *)p;
        for (size_t c = 0; c < TAB_CHUNKS; c++) /* the table's own chunks */
            st_rlx(&t[c], &bp__seg_none);
        hw = TAB_CHUNKS;
        st_rlx(&bp__resv.base, (uintptr_t)p);
        st_rel(&bp__resv.lim, hw << BP_CHUNK_SHIFT); /* after the entries it covers */
        return true;
    }
    return true; /* no range: the radix map serves everything */
}

/* Makes the reservation reach `end` bytes from base, growing it right after
 * itself by whole steps (as many as the segment needs, not one), if the OS
 * gives the addresses there. false leaves it as it was: nothing is ever
 * committed outside what was reserved, whatever lies above. */
static bool reach(size_t end) {
    if (end <= reserved)
        return true;
    size_t grow = (end - reserved + step - 1) / step * step;
    if (end > WINDOW || grow > WINDOW - reserved)
        return false;
    uint8_t *want = (uint8_t *)ld_rlx(&bp__resv.base) + reserved;
    if (bp__os_reserve_at(want, grow) != 0)
        return false;
    reserved += grow;
    return true;
}

static void free_insert(size_t first, size_t n) {
    size_t i = 0;
    while (i < nfree && freel[i].first < first)
        i++;
    if (i > 0 && freel[i - 1].first + freel[i - 1].n == first) { /* merge with the one before */
        freel[i - 1].n += n;
        if (i < nfree && freel[i - 1].first + freel[i - 1].n == freel[i].first) {
            freel[i - 1].n += freel[i].n;
            for (size_t k = i; k + 1 < nfree; k++)
                freel[k] = freel[k + 1];
            nfree--;
        }
        return;
    }
    if (i < nfree && first + n == freel[i].first) { /* with the one after */
        freel[i].first = first;
        freel[i].n += n;
        return;
    }
    if (nfree == free_cap) {
        size_t cap = free_cap ? free_cap * 2 : 32;
        extent *e = realloc(freel, cap * sizeof(extent));
        if (!e)
            return; /* the extent is lost to reuse, not to safety: it stays mapped */
        freel = e;
        free_cap = cap;
    }
    for (size_t k = nfree; k > i; k--)
        freel[k] = freel[k - 1];
    freel[i] = (extent){first, n};
    nfree++;
}

/* Chunk index of n free chunks, first fit, or SIZE_MAX. */
static size_t take_free(size_t n) {
    for (size_t i = 0; i < nfree; i++) {
        if (freel[i].n < n)
            continue;
        size_t first = freel[i].first;
        freel[i].first += n;
        freel[i].n -= n;
        if (freel[i].n == 0) {
            for (size_t k = i; k + 1 < nfree; k++)
                freel[k] = freel[k + 1];
            nfree--;
        }
        return first;
    }
    return SIZE_MAX;
}

void *bp__resv_alloc(size_t bytes, bool *refused) {
    size_t n = (bytes + BP_CHUNK - 1) >> BP_CHUNK_SHIFT;
    void *got = NULL;
    bp__resv_lock();
    if (!tried && !reserve_first())
        *refused = true;
    if (reserved) {
        size_t first = take_free(n);
        if (first != SIZE_MAX) {
            got = (uint8_t *)ld_rlx(&bp__resv.base) + (first << BP_CHUNK_SHIFT);
        } else if (reach((hw + n) << BP_CHUNK_SHIFT)) {
            uint8_t *p = (uint8_t *)ld_rlx(&bp__resv.base) + (hw << BP_CHUNK_SHIFT);
            if (bp__os_commit(p, n << BP_CHUNK_SHIFT) != 0) {
                *refused = true;
            } else {
                _Atomic(bp_seg *) *t = tab();
                for (size_t c = hw; c < hw + n; c++)
                    st_rlx(&t[c], &bp__seg_none);
                hw += n;
                st_rel(&bp__resv.lim, hw << BP_CHUNK_SHIFT);
                got = p;
            }
        }
    }
    bp__resv_unlock();
    return got;
}

bool bp__resv_owns(const void *p) {
    return (uintptr_t)p - ld_rlx(&bp__resv.base) < ld_acq(&bp__resv.lim);
}

/* The chunks seg spans: the first one's index in the table, and how many. */
static size_t extent_of(const bp_seg *seg, size_t *n) {
    *n = (seg->map_bytes + BP_CHUNK - 1) >> BP_CHUNK_SHIFT;
    return ((uintptr_t)seg - ld_rlx(&bp__resv.base)) >> BP_CHUNK_SHIFT;
}

static void set_range(bp_seg *seg, bp_seg *val) {
    _Atomic(bp_seg *) *t = tab();
    size_t n, first = extent_of(seg, &n);
    for (size_t c = first; c < first + n; c++)
        st_rel(&t[c], val);
}

void bp__resv_publish(bp_seg *seg) { set_range(seg, seg); }

void bp__resv_forget(bp_seg *seg) { set_range(seg, &bp__seg_none); }

void bp__resv_free(bp_seg *seg) {
    set_range(seg, &bp__seg_none);
    size_t n, first = extent_of(seg, &n);
    uint8_t *m = bp__seg_start(seg);
    size_t bytes = seg->map_bytes;
    if (bp__os_decommit(m, n << BP_CHUNK_SHIFT) != 0) /* reads as zeros from now on */
        memset(m, 0, bytes); /* else the next segment here must still start from zeros:
                                its header, and its never-used buffers (bp_get_zeroed) */
    bp__resv_lock();
    free_insert(first, n);
    bp__resv_unlock();
}

size_t bp__resv_reserved(void) {
    bp__resv_lock();
    size_t r = reserved;
    bp__resv_unlock();
    return r;
}
