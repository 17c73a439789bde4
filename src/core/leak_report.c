/* SPDX-License-Identifier: MIT */
/*
 * leak_report.c - the leak report: the pool's table of sampled outstanding
 * buffers (leaks.c) grouped by backtrace, largest first, for
 * bp_pool_report_leaks and the dashboard. A reader: it sits above the
 * statistics it quotes.
 */
#include "internal.h"

#include <execinfo.h>
#include <stdlib.h>
#include <string.h>

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
    bp__pool_stats(pool, &st);
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
