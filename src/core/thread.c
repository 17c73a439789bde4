/* SPDX-License-Identifier: MIT */
/*
 * thread.c - the calling thread as the library knows it: its data (bp_tld,
 * reached through an initial-exec TLS pointer that starts at an empty
 * sentinel), its small number (bp__tid: its slot in every pool's cache
 * array), and the sentinel cache (bp__tc_none: bins both empty and full)
 * that fills every slot without a cache. tcache.c gives threads their data
 * and caches; everything from the history up reads these.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

bp_tld bp__tld_empty;
BP_TLS bp_tld *bp__tld = &bp__tld_empty;
BP_TLS uint32_t bp__tid;
bp_tc_none_u bp__tc_none_u;
bp_tcache *bp__tcv_none[BP_TIDS];

/* Thread numbers in use (1..BP_TIDS-1); 0 is never handed out. */
static pthread_mutex_t tid_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t tid_used[BP_TIDS / 64] = {1};

uint32_t bp__tid_take(void) {
    uint32_t got = 0;
    pthread_mutex_lock(&tid_mu);
    for (uint32_t w = 0; w < BP_TIDS / 64 && !got; w++)
        if (~tid_used[w]) {
            uint32_t b = (uint32_t)__builtin_ctzll(~tid_used[w]);
            tid_used[w] |= UINT64_C(1) << b;
            got = w * 64 + b;
        }
    pthread_mutex_unlock(&tid_mu);
    return got;
}

void bp__tid_give(uint32_t tid) {
    if (!tid)
        return;
    pthread_mutex_lock(&tid_mu);
    tid_used[tid / 64] &= ~(UINT64_C(1) << (tid % 64));
    pthread_mutex_unlock(&tid_mu);
}

static pthread_once_t none_once = PTHREAD_ONCE_INIT;
static void none_init(void) {
    for (size_t i = 0; i < BP_TIDS; i++)
        bp__tcv_none[i] = &bp__tc_none;
}

bp_tcache **bp__tc_array_new(void) {
    pthread_once(&none_once, none_init);
    bp_tcache **a = malloc(BP_TIDS * sizeof(*a));
    if (a)
        memcpy(a, bp__tcv_none, BP_TIDS * sizeof(*a));
    return a;
}

/* Thread numbers are taken under their own lock, held across fork(). */
void bp__tid_lock(void) { pthread_mutex_lock(&tid_mu); }
void bp__tid_unlock(void) { pthread_mutex_unlock(&tid_mu); }
