/* SPDX-License-Identifier: MIT */
/*
 * leaks.c - the table behind leak reports: where outstanding buffers were
 * allocated (leak_report.c reads it).
 *
 * A sampled get records its backtrace in the pool's table (open hashing by
 * buffer address, under the pool lock) and sets BP_RC_SAMPLED in the
 * buffer's count. No fast path accepts a count with that bit, so only
 * sampled buffers take the slow path on their last release, where the
 * record is dropped; everything else pays nothing. Sampling rides on the
 * tick of every 32nd get of a thread (every get in "all" mode), a
 * branch the get path has anyway. The report groups records by backtrace.
 */
#include "internal.h"

#include <execinfo.h>
#include <stdlib.h>
#include <string.h>

#define FRAMES BP_LEAK_FRAMES
#define INSIDE 8 /* library frames that may precede the call site */

static size_t slot_of(const bp_pool *pool, const void *p) {
    return (size_t)(((uintptr_t)p >> 6) * 0x9e3779b97f4a7c15ull >> 32) & (pool->leak_cap - 1);
}

static bool grow(bp_pool *pool) {
    size_t cap = pool->leak_cap ? pool->leak_cap * 2 : 256;
    bp_leak **tab = calloc(cap, sizeof(*tab));
    if (!tab)
        return false;
    bp_leak **old = pool->leak_tab;
    size_t oldcap = pool->leak_cap;
    pool->leak_tab = tab;
    pool->leak_cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        for (bp_leak *l = old[i], *next; l; l = next) {
            next = l->next;
            size_t s = slot_of(pool, l->p);
            l->next = tab[s];
            tab[s] = l;
        }
    free(old);
    return true;
}

void bp__leak_record(bp_pool *pool, void *p, size_t len, void *site) {
    bp__pool_assert_locked(pool);
    if (pool->leak_n + 1 > pool->leak_cap / 2 && !grow(pool))
        return;
    bp_leak *l = malloc(sizeof(*l));
    if (!l)
        return; /* a missing sample is not an error */
    void *frames[FRAMES + INSIDE];
    int n = backtrace(frames, FRAMES + INSIDE);
    int from = 0; /* the stack starts at the caller of the public function */
    while (from < n && frames[from] != site)
        from++;
    if (from == n)
        from = 0;
    l->nframes = n - from < FRAMES ? n - from : FRAMES;
    memcpy(l->frames, frames + from, (size_t)l->nframes * sizeof(void *));
    l->p = p;
    l->len = len;
    l->born_ms = bp__os_now_ms();
    size_t s = slot_of(pool, p);
    l->next = pool->leak_tab[s];
    pool->leak_tab[s] = l;
    pool->leak_n++;
    bp_seg *seg = bp__seg_of(p);
    size_t in;
    uint32_t idx = bp__slot_of(seg, p, &in);
    atomic_fetch_or(&seg->rc[idx], BP_RC_SAMPLED);
}

void bp__leak_forget(bp_pool *pool, const void *p) {
    bp__pool_assert_locked(pool);
    if (!pool->leak_cap)
        return;
    for (bp_leak **link = &pool->leak_tab[slot_of(pool, p)]; *link; link = &(*link)->next)
        if ((*link)->p == p) {
            bp_leak *gone = *link;
            *link = gone->next;
            free(gone);
            pool->leak_n--;
            return;
        }
}

void bp__leak_free_all(bp_pool *pool) {
    for (size_t i = 0; i < pool->leak_cap; i++)
        for (bp_leak *l = pool->leak_tab[i], *next; l; l = next) {
            next = l->next;
            free(l);
        }
    free(pool->leak_tab);
    pool->leak_tab = NULL;
    pool->leak_cap = pool->leak_n = 0;
}
