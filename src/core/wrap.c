/* SPDX-License-Identifier: MIT */
/*
 * wrap.c - refcounted buffers over memory the library does not own
 * (bp_wrap): a mapped file, a decoder's frame, another allocator's block.
 *
 * Such memory has no segment, so the one-load lookup cannot find it; the
 * wrapped ranges live in a table sorted by address, searched by bisection
 * under one lock, and their counts are changed under that lock too. That
 * keeps a retain racing the final release simple (the release takes the
 * range out of the table before it calls free_fn, outside the lock) and
 * costs pool buffers nothing: only a pointer the segment lookup refused
 * comes here. Ranges may have any alignment and length and share pages;
 * they may not overlap each other or pool memory.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct wrapped {
    uintptr_t lo, hi; /* [lo, hi) */
    uint32_t count;
    void (*free_fn)(void *mem, void *ctx);
    void *ctx;
} wrapped;

static pthread_mutex_t wrap_mu = PTHREAD_MUTEX_INITIALIZER;
static wrapped *tab; /* sorted by lo, never overlapping */
static size_t ntab, captab;

void bp__wrap_lock(void) { pthread_mutex_lock(&wrap_mu); }
void bp__wrap_unlock(void) { pthread_mutex_unlock(&wrap_mu); }

/* The first entry whose lo is above a (lock held). */
static size_t after(uintptr_t a) {
    size_t l = 0, r = ntab;
    while (l < r) {
        size_t m = (l + r) / 2;
        if (tab[m].lo <= a)
            l = m + 1;
        else
            r = m;
    }
    return l;
}

/* The entry holding address a, or NULL (lock held). */
static wrapped *holding(uintptr_t a) {
    size_t i = after(a);
    return i && a < tab[i - 1].hi ? &tab[i - 1] : NULL;
}

/* Does [lo, hi) touch memory of a pool? Segments and the reserved range
 * are whole chunks, so one address per chunk it spans is asked. */
static bool pool_memory(uintptr_t lo, uintptr_t hi) {
    for (uintptr_t a = lo;;) {
        if (bp__resv_owns((const void *)a) || bp__seg_of((const void *)a))
            return true;
        uintptr_t next = (a | (BP_CHUNK - 1)) + 1;
        if (next == 0 || next >= hi) /* the last chunk, or the top of the address space */
            return false;
        a = next;
    }
}

void *bp_wrap(void *mem, size_t len, void (*free_fn)(void *mem, void *ctx), void *ctx) {
    uintptr_t lo = (uintptr_t)mem, hi = lo + len;
    if (!mem || !len || !free_fn || hi < lo)
        return bp__refuse(NULL, EINVAL, "bp_wrap", mem), NULL;
    if (pool_memory(lo, hi))
        return bp__refuse(NULL, EINVAL, BP_OP_WRAP_POOL, mem), NULL;
    bp__wrap_lock();
    size_t i = after(lo);
    bool overlaps = (i && tab[i - 1].hi > lo) || (i < ntab && tab[i].lo < hi);
    if (!overlaps && ntab == captab) {
        size_t cap = captab ? captab * 2 : 64;
        wrapped *t = realloc(tab, cap * sizeof *t);
        if (!t) {
            bp__wrap_unlock();
            errno = ENOMEM;
            return NULL;
        }
        tab = t;
        captab = cap;
    }
    if (!overlaps) {
        memmove(&tab[i + 1], &tab[i], (ntab - i) * sizeof *tab);
        tab[i] = (wrapped){lo, hi, 1, free_fn, ctx};
        ntab++;
    }
    bp__wrap_unlock();
    if (overlaps)
        return bp__refuse(NULL, EEXIST, "bp_wrap", mem), NULL;
    return mem;
}

int bp__wrap_retain(const void *p, size_t n) {
    bp__wrap_lock();
    wrapped *w = holding((uintptr_t)p);
    int r = !w ? ENOENT : n > BP_RC_MAX - w->count ? EOVERFLOW : 0;
    if (!r)
        w->count += (uint32_t)n;
    bp__wrap_unlock();
    return r;
}

int bp__wrap_release(const void *p, size_t n) {
    bp__wrap_lock();
    wrapped *w = holding((uintptr_t)p);
    if (!w || n > w->count) {
        bp__wrap_unlock();
        return !w ? ENOENT : EINVAL;
    }
    w->count -= (uint32_t)n;
    wrapped gone = *w;
    if (!gone.count) {
        size_t i = (size_t)(w - tab);
        memmove(&tab[i], &tab[i + 1], (ntab - i - 1) * sizeof *tab);
        ntab--;
    }
    bp__wrap_unlock();
    if (!gone.count) /* on the thread of the final release, no lock held */
        gone.free_fn((void *)gone.lo, gone.ctx);
    return 0;
}

size_t bp__wrap_query(const void *p, uintptr_t *lo, uintptr_t *hi) {
    bp__wrap_lock();
    wrapped *w = holding((uintptr_t)p);
    size_t count = w ? w->count : 0;
    if (w) {
        *lo = w->lo;
        *hi = w->hi;
    }
    bp__wrap_unlock();
    return count;
}
