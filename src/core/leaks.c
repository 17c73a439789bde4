/* SPDX-License-Identifier: MIT */
/*
 * leaks.c - leak reports: where outstanding buffers were allocated.
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

typedef struct bp_leak {
    struct bp_leak *next;
    const void *p;
    size_t len;
    uint64_t born_ms; /* when it was got: the dashboard's ages */
    int nframes;
    void *frames[FRAMES];
} bp_leak;

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

/* One site per call site: the first frame (the caller of bp_get). */
static bool same_site(const bp_leak_site *s, const bp_leak *l) {
    return s->nframes && l->nframes && s->frames[0] == l->frames[0];
}

static int by_bytes(const void *a, const void *b) {
    const bp_leak_site *x = a, *y = b;
    return (x->bytes < y->bytes) - (x->bytes > y->bytes);
}

/* Copied out of the table under the lock, so a report is written without
 * it: a stuck stream (a full pipe) stalls only the caller. */
size_t bp__leak_sites(bp_pool *pool, bp_leak_site *out, size_t max, size_t *sampled) {
    bp__pool_lock(pool);
    bp_leak_site *all = calloc(pool->leak_n + 1, sizeof(*all));
    size_t n = 0, known = 0;
    for (size_t i = 0; all && i < pool->leak_cap; i++)
        for (const bp_leak *l = pool->leak_tab[i]; l; l = l->next) {
            size_t k = 0;
            while (k < n && !same_site(&all[k], l))
                k++;
            if (k == n) {
                all[n].nframes = l->nframes;
                memcpy(all[n].frames, l->frames, sizeof(void *) * (size_t)l->nframes);
                all[n++].oldest_ms = l->born_ms;
            }
            all[k].count++;
            all[k].bytes += l->len;
            if (l->born_ms < all[k].oldest_ms)
                all[k].oldest_ms = l->born_ms;
            known++;
        }
    bp__pool_unlock(pool);
    if (sampled)
        *sampled = known;
    if (!all)
        return 0;
    qsort(all, n, sizeof(*all), by_bytes);
    n = n < max ? n : max;
    memcpy(out, all, n * sizeof(*all));
    free(all);
    return n;
}

size_t bp_pool_report_leaks(bp_pool *pool, FILE *out) {
    if (!pool || !out)
        return 0;
    bp_stats st;
    bp_pool_stats(pool, &st);
    if (!st.outstanding)
        return 0;
    size_t sampled = 0, max = pool->leak_n + 1; /* leak_n: a hint, read unlocked */
    bp_leak_site *sites = calloc(max, sizeof(*sites));
    size_t nsites = sites ? bp__leak_sites(pool, sites, max, &sampled) : 0;
    const char *mode = pool->leaks == BP_LEAKS_ALL      ? "all"
                       : pool->leaks == BP_LEAKS_SAMPLE ? "sample"
                                                        : "off";
    fprintf(out,
            "bytepool: %llu buffer(s), %llu bytes, still referenced in pool %p; "
            "%zu with a known allocation site (leaks=%s)\n",
            (unsigned long long)st.outstanding, (unsigned long long)st.bytes_live, (void *)pool,
            sampled, mode);
    for (size_t k = 0; k < nsites; k++) {
        fprintf(out, "  %zu buffer(s), %zu bytes requested, allocated at:\n", sites[k].count,
                sites[k].bytes);
        char **names = backtrace_symbols(sites[k].frames, sites[k].nframes);
        for (int f = 0; f < sites[k].nframes; f++)
            fprintf(out, "    #%d %s\n", f, names ? names[f] : "?");
        free(names);
    }
    free(sites);
    fflush(out);
    return (size_t)st.outstanding;
}
