/* SPDX-License-Identifier: MIT */
/*
 * leak_report.c - the leak report: the pool's table of sampled outstanding
 * buffers (leaks.c) grouped by backtrace, largest first, for
 * bp_pool_report_leaks and the dashboard. A reader: it sits above the
 * statistics it quotes.
 */
#include "internal.h"

#include <dlfcn.h>
#include <unistd.h>
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

/* One frame, symbolized: "#1 parse_request+0x1c (/usr/bin/server+0x2a3c)".
 * The name from dladdr (exported symbols: link programs with -rdynamic for
 * their own functions); the module and the offset from its load address,
 * which `addr2line -e MODULE OFFSET` turns into a file and line. A return
 * address points after the call: the offset is of the next instruction. */
static void print_frame(FILE *out, int f, void *addr) {
    Dl_info info;
    if (!dladdr(addr, &info) || !info.dli_fname) {
        fprintf(out, "    #%d %p\n", f, addr);
        return;
    }
    uintptr_t off = (uintptr_t)addr - (uintptr_t)info.dli_fbase;
    if (info.dli_sname)
        fprintf(out, "    #%d %s+0x%tx (%s+0x%tx)\n", f, info.dli_sname,
                (ptrdiff_t)((uintptr_t)addr - (uintptr_t)info.dli_saddr), info.dli_fname,
                (ptrdiff_t)off);
    else
        fprintf(out, "    #%d ?? (%s+0x%tx)\n", f, info.dli_fname, (ptrdiff_t)off);
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
    const char *mode = pool->leaks == BP_LEAKS_FAIL     ? "fail"
                       : pool->leaks == BP_LEAKS_ALL    ? "all"
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
        for (int f = 0; f < sites[k].nframes; f++)
            print_frame(out, f, sites[k].frames[f]);
    }
    free(sites);
    fflush(out);
    return (size_t)st.outstanding;
}

/* ---- leak-fail: the exit status of a test suite ------------------------- */

static _Atomic bool leak_fail_seen; /* a BP_LEAKS_FAIL pool was destroyed with buffers out */
static pthread_once_t leak_fail_once = PTHREAD_ONCE_INIT;

/* At exit: every live BP_LEAKS_FAIL pool with buffers out reports them, and
 * then, if any did or one was destroyed so, the process exits with
 * BYTEPOOL_LEAK_EXITCODE. _exit, after flushing every stream: the status
 * must survive, and later handlers may touch what the program tore down. */
static void leak_fail_at_exit(void) {
    bool leaked = ld_acq(&leak_fail_seen);
    bp__registry_lock();
    for (bp_pool *p = bp__registry_first(); p; p = p->gnext)
        if (p->user_ref && p->leaks == BP_LEAKS_FAIL && bp_pool_report_leaks(p, stderr))
            leaked = true;
    bp__registry_unlock();
    if (!leaked)
        return;
    int code = (int)bp__env_size(BP_ENV_LEAK_EXITCODE, 23, 1, 255);
    fprintf(stderr, "bytepool: leaked buffers (BYTEPOOL_LEAKS=fail): exit status %d\n", code);
    fflush(NULL);
    _exit(code);
}

static void leak_fail_register(void) { atexit(leak_fail_at_exit); }
void bp__leak_fail_arm(void) { pthread_once(&leak_fail_once, leak_fail_register); }
void bp__leak_fail_note(void) { st_rel(&leak_fail_seen, true); }
