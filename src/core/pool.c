/* SPDX-License-Identifier: MIT */
/*
 * pool.c - pool life cycle: creation from a config, destruction that lets
 * live buffers outlive the handle, reserve (prewarm) and trim. The list of
 * live pools is registry.c's; fork() is fork.c's.
 *
 * A destroyed pool is freed by whichever thread drops its last hold: the
 * user's handle, a segment (live or cached buffers), or a thread cache.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* BYTEPOOL_CHECKED: a boolean, or "strict" (checked + BP_STRICT_LEN). */
static unsigned env_checked_flags(void) {
    static const char *const words[] = {"0",    "false", "no", "off",   "1",
                                        "true", "yes",   "on", "strict"};
    int w = bp__env_word(BP_ENV_CHECKED, words, 9, 0);
    return w == 8 ? BPF_CHECKED | BPF_STRICT : w >= 4 ? BPF_CHECKED : 0;
}

#define BP_CONFIG_FLAGS                                                                            \
    (BP_CHECKED | BP_NO_RECENT | BP_STRICT_LEN | BP_NO_BACKGROUND | BP_WIPE | BP_ADOPTED)

static BP_TLS char config_why[160];
static BP_TLS bool config_failed;

int bp__config_error(int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(config_why, sizeof config_why, fmt, ap);
    va_end(ap);
    config_failed = true;
    return err;
}

const char *bp_config_error(void) { return config_failed ? config_why : NULL; }

/* The tier sizes as given (unsorted), each refusal naming its index. */
static int check_sizes(const size_t *sizes, size_t n) {
    if (!sizes)
        return n ? bp__config_error(EINVAL, "sizes is NULL but nsizes is %zu", n) : 0;
    if (n == 0)
        return bp__config_error(EINVAL, "sizes is set but nsizes is 0");
    if (n > BP_MAX_TIERS)
        return bp__config_error(EINVAL, "nsizes %zu exceeds BP_MAX_TIERS (%d)", n, BP_MAX_TIERS);
    for (size_t i = 0; i < n; i++) {
        if (sizes[i] == 0)
            return bp__config_error(EINVAL, "sizes[%zu] is 0", i);
        if (sizes[i] > BP_MAX_TIER_SIZE)
            return bp__config_error(EINVAL, "sizes[%zu] (%zu) exceeds BP_MAX_TIER_SIZE (%u)", i,
                                    sizes[i], BP_MAX_TIER_SIZE);
        for (size_t j = 0; j < i; j++)
            if (sizes[j] == sizes[i])
                return bp__config_error(EINVAL, "sizes[%zu] duplicates sizes[%zu] (%zu)", i, j,
                                        sizes[i]);
    }
    return 0;
}

/* A budget below one segment of the smallest tier could never serve. */
static int check_budget(bp_pool *pool, bool from_cfg) {
    if (!pool->max_bytes)
        return 0;
    size_t need = bp__seg_tier_bytes(pool->sizes[0], ld_rlx(&pool->flags) & BPF_CHECKED);
    if (pool->max_bytes >= need)
        return 0;
    if (!from_cfg) { /* BYTEPOOL_MAX_BYTES: ignored, as any unusable setting is */
        fprintf(stderr,
                "bytepool: ignoring BYTEPOOL_MAX_BYTES=%zu: below one segment of the smallest "
                "tier (%zu bytes); no budget\n",
                pool->max_bytes, need);
        pool->max_bytes = 0;
        return 0;
    }
    return bp__config_error(EINVAL,
                            "max_bytes %zu is below one segment of the smallest tier (%zu "
                            "bytes): the pool could never serve",
                            pool->max_bytes, need);
}

/* bp_backing: an owner's map (with an optional unmap), or an adopted
 * pool's on_free. */
static int apply_backing(bp_pool *pool, const bp_config *cfg) {
    const bp_backing *b = cfg->backing;
    bool adopted = cfg->flags & BP_ADOPTED;
    if (!b)
        return adopted ? bp__config_error(EINVAL, "BP_ADOPTED needs a backing with on_free") : 0;
    if (adopted && (!b->on_free || b->map))
        return bp__config_error(EINVAL, "BP_ADOPTED: backing needs on_free and no map");
    if (!adopted && (!b->map || b->on_free))
        return bp__config_error(EINVAL, "backing needs map (on_free is for BP_ADOPTED pools)");
    pool->backing = *b;
    return 0;
}

static int apply_config(bp_pool *pool, const bp_config *cfg) {
    static const bp_config zero;
    if (!cfg)
        cfg = &zero;
    if (cfg->flags & ~(unsigned)BP_CONFIG_FLAGS)
        return bp__config_error(EINVAL, "unknown flag 0x%x",
                                cfg->flags & ~(unsigned)BP_CONFIG_FLAGS);
    int err = check_sizes(cfg->sizes, cfg->nsizes);
    if (err)
        return err;
    err = bp__tiers_build(pool, cfg->sizes, cfg->nsizes);
    if (err)
        return err;
    uint64_t tcb = cfg->tcache_bytes ? cfg->tcache_bytes
                                     : bp__env_size(BP_ENV_TCACHE_BYTES, UINT64_MAX, 0, 1u << 30);
    bool one_big = tcb == UINT64_MAX; /* the default: big tiers keep one buffer per thread */
    pool->tcache_bytes = one_big ? 256 * 1024 : (size_t)tcb;
    pool->idle_bytes = cfg->idle_bytes
                           ? cfg->idle_bytes
                           : bp__env_size(BP_ENV_IDLE_BYTES, 64u << 20, 0, UINT64_C(1) << 44);
    pool->decay_ms = cfg->decay_ms ? cfg->decay_ms
                                   : (unsigned)bp__env_size(BP_ENV_DECAY_MS, 1000, 1, UINT32_MAX);
    pool->max_bytes =
        cfg->max_bytes ? cfg->max_bytes : bp__env_size(BP_ENV_MAX_BYTES, 0, 0, UINT64_C(1) << 48);
    pool->background = !(cfg->flags & BP_NO_BACKGROUND) && bp__env_bool(BP_ENV_BACKGROUND, 1);
    pool->record = !(cfg->flags & BP_NO_RECENT);
    pool->window = cfg->recent_window ? cfg->recent_window : BP_RECENT_DEFAULT;
    if (pool->window > ((size_t)1 << 24))
        return bp__config_error(EINVAL, "recent_window %zu exceeds %zu", pool->window,
                                (size_t)1 << 24);
    pool->hist_len = 64;
    while (pool->hist_len < pool->window + BP_BATCH)
        pool->hist_len *= 2;
    if ((unsigned)cfg->leaks > BP_LEAKS_FAIL)
        return bp__config_error(EINVAL, "leaks %d is not a bp_leaks value", (int)cfg->leaks);
    static const char *const leak_words[] = {"off", "sample", "all", "fail"};
    static const bp_leaks leak_kinds[] = {BP_LEAKS_OFF, BP_LEAKS_SAMPLE, BP_LEAKS_ALL,
                                          BP_LEAKS_FAIL};
    pool->leaks = cfg->leaks != BP_LEAKS_DEFAULT
                      ? cfg->leaks
                      : leak_kinds[bp__env_word(BP_ENV_LEAKS, leak_words, 4, 0)];
    pool->on_error = cfg->on_error;
    pool->error_ctx = cfg->error_ctx;
    pool->on_segment = cfg->on_segment;
    pool->segment_ctx = cfg->segment_ctx;
    if ((err = apply_backing(pool, cfg)) != 0)
        return err;
    if (cfg->flags & BP_ADOPTED) { /* read-only memory: nothing to check, wipe or record */
        st_rlx(&pool->flags, BPF_ADOPTED);
        pool->record = false;
        pool->leaks = BP_LEAKS_OFF;
        return 0;
    }
    uint32_t flags = env_checked_flags();
    if (cfg->flags & BP_CHECKED)
        flags |= BPF_CHECKED;
    if (cfg->flags & BP_STRICT_LEN)
        flags |= BPF_STRICT;
    if ((cfg->flags & BP_WIPE) || bp__env_bool(BP_ENV_WIPE, 0))
        flags |= BPF_WIPE;
    st_rlx(&pool->flags, flags);
    if ((err = check_budget(pool, cfg->max_bytes != 0)) != 0)
        return err;
    /* A bin of fewer than BP_HOT buffers (or none) would flush and refill
     * under the lock on most calls: such tiers pass buffers through the
     * depot's lock-free hot slots first, as long as what those can hold
     * stays within half the idle memory allowed. */
    size_t hot_bytes = 0;
    for (uint32_t t = 0; t < pool->ntiers; t++)
        if (pool->tcache_bytes / pool->sizes[t] < BP_HOT)
            hot_bytes += BP_HOT * pool->sizes[t];
    bool hot = hot_bytes <= pool->idle_bytes / 2;
    for (uint32_t t = 0; t < pool->ntiers; t++) {
        size_t cap = pool->tcache_bytes / pool->sizes[t];
        bp_depot *d = &pool->depot[t];
        d->use_hot = hot && cap < BP_HOT;
        /* With the default bound, one buffer at least, counted in buffers,
         * not bytes: a big tier's get+put stays on the fast path (1 MiB: 25
         * ns through the hot slots, bench a/1M), and the purge thread takes
         * it back from a thread that goes idle (background.c). A bound the
         * program sets is a bound in bytes. */
        if (cap < 1 && one_big)
            cap = 1;
        d->bin_max = (uint32_t)(cap < BP_BIN_MAX ? cap : BP_BIN_MAX);
        d->batch = d->bin_max > 1 ? d->bin_max / 2 : 1;
    }
    if (cfg->recorder) {
        if (!cfg->recorder->push || !cfg->recorder->read)
            return bp__config_error(EINVAL, "recorder has no %s function",
                                    cfg->recorder->push ? "read" : "push");
        pool->recorder = *cfg->recorder;
        return 0;
    }
    if (cfg->recorder_kind != BP_RING_LOCKFREE && cfg->recorder_kind != BP_RING_LOCKED)
        return bp__config_error(EINVAL,
                                "recorder_kind %d is not BP_RING_LOCKFREE or BP_RING_LOCKED",
                                (int)cfg->recorder_kind);
    if (!pool->record)
        return 0;
    pool->ring = bp_ring_new(pool->window, sizeof(size_t), cfg->recorder_kind);
    return pool->ring ? 0 : ENOMEM;
}

bp_pool *bp__pool_new(const bp_config *cfg) {
    /* aligned: the shared counters it holds each own a cache line */
    bp_pool *pool = aligned_alloc(_Alignof(bp_pool), sizeof(*pool));
    if (!pool) {
        errno = ENOMEM;
        return NULL;
    }
    memset(pool, 0, sizeof(*pool));
    config_failed = false;
    bp__env_check_names();
    pool->tcs_by_tid = bp__tc_array_new();
    pool->tcv_off = bp__tcv_none;
    int err = pool->tcs_by_tid ? apply_config(pool, cfg) : ENOMEM;
    if (err) {
        free(pool->tcs_by_tid);
        free((void *)pool->ctab);
        bp_ring_free(pool->ring);
        free(pool);
        if (config_failed) /* no pool to name: the process-wide handler hears why */
            bp__refuse(NULL, err, "bp_pool_new", config_why);
        errno = err;
        return NULL;
    }
    bp__atfork_once(); /* before any lock of ours can be held across a fork */
    pthread_mutex_init(&pool->lock, NULL);
    bp__os_cond_init(&pool->room);
    bp__vg_pool_new(pool);
    bp__tc_serve(pool, !(ld_rlx(&pool->flags) & BPF_SLOW));
    pool->user_ref = true;
    st_rlx(&pool->next_decay_ms, bp__os_now_ms() + pool->decay_ms);
    bp__registry_add(pool);
    if (pool->leaks == BP_LEAKS_FAIL)
        bp__leak_fail_arm();
    if (pool->background)
        bp__bg_start(pool->decay_ms);
    return pool;
}

static uint64_t outstanding_locked(bp_pool *pool) {
    uint64_t get = 0, put = 0;
    for (uint32_t t = 0; t < pool->ntiers; t++) {
        get += pool->retired[t].get;
        put += pool->retired[t].put;
        for (bp_tcache *tc = pool->tcs; tc; tc = tc->pnext) {
            get += ld_rlx(&tc->bins[t].get);
            put += ld_rlx(&tc->bins[t].put);
        }
    }
    return (get > put ? get - put : 0) + ld_rlx(&pool->over_live);
}

/* The destroy hook: set by the layer above the core (the export registry),
 * so the core names nothing of it. */
static _Atomic(bp_pool_hook) destroy_hook;

void bp__on_pool_destroy(bp_pool_hook fn) { atomic_store(&destroy_hook, fn); }

void bp__pool_shape(const bp_pool *pool, bp_pool_shape *out) {
    out->ntiers = pool->ntiers;
    out->sizes = pool->sizes;
    out->window = pool->window;
    out->leaks = pool->leaks;
}

size_t bp_pool_destroy(bp_pool *pool) {
    if (!pool)
        return 0;
    bp_pool_hook hook = atomic_load(&destroy_hook);
    if (hook)
        hook(pool);
    bp__tc_drop_current(pool);
    if (pool->leaks != BP_LEAKS_OFF)
        bp_pool_report_leaks(pool, stderr); /* silent when nothing is left */
    bp__pool_lock(pool);
    atomic_fetch_or(&pool->flags, BPF_DEAD);
    bp__tc_serve(pool, false); /* no thread's fast path serves it again */
    pool->dead_ms = bp__os_now_ms();
    pool->user_ref = false;
    size_t leaks = (size_t)outstanding_locked(pool);
    if (leaks && pool->leaks == BP_LEAKS_FAIL)
        bp__leak_fail_note(); /* the report went out above; the exit status says it too */
    bp__depot_trim(pool);
    if (ld_rlx(&pool->flags) & BPF_ADOPTED)
        bp__seg_free_adopted(pool, NULL); /* the rest go with their last buffer (home.c) */
    atomic_fetch_add(&bp__dead_epoch, 1); /* other threads sweep their caches */
    bp__pool_maybe_free(pool);
    return leaks;
}

int bp_pool_reserve(bp_pool *pool, size_t size, size_t count) {
    if (!pool)
        return bp__refuse(NULL, EINVAL, "bp_pool_reserve", NULL);
    if (size == 0 || size > pool->max_len)
        return bp__refuse(pool, EINVAL, "bp_pool_reserve", NULL);
    if (ld_rlx(&pool->flags) & (BPF_ADOPTED | BPF_DETACHED))
        return bp__refuse(pool, EPERM, "bp_pool_reserve", NULL);
    if (count == 0)
        return 0;
    uint32_t t = bp__tier_of(pool, size);
    bp_centry *all = count < UINT32_MAX ? malloc(count * sizeof(bp_centry)) : NULL;
    if (!all)
        return ENOMEM;
    size_t page = bp__os_page();
    bool touch = !(ld_rlx(&pool->flags) & BPF_CHECKED); /* keep the poison */
    bp__pool_lock(pool);
    /* Hold all of them at once, so each is a distinct buffer, then give back. */
    uint32_t got = bp__depot_take(pool, t, all, (uint32_t)count);
    bool ok = got == count;
    for (uint32_t i = 0; ok && touch && i < got; i++) /* fault the pages in now */
        for (size_t off = 0; off < pool->sizes[t]; off += page) {
            track_touch_begin(all[i].p + off, 1);
            all[i].p[off] = 0;
            track_touch_end(all[i].p + off, 1);
        }
    /* A floor, not a sum: reserve is idempotent. A failed one sets none: what
     * it mapped is ordinary idle memory, trimmed and decayed as usual. */
    if (ok && pool->depot[t].reserved < got)
        pool->depot[t].reserved = got;
    bp__depot_give(pool, t, all, got);
    if (!ok)
        bp__depot_release_empty(pool, t);
    bp__pool_unlock(pool);
    free(all);
    return ok ? 0 : ENOMEM;
}

size_t bp_pool_trim(bp_pool *pool) {
    if (!pool)
        return 0;
    bp_tcache *tc = bp__tc_find(pool);
    if (tc)
        bp__tc_flush_all(tc);
    bp__pool_lock(pool);
    size_t n = bp__depot_trim(pool);
    bp__pool_unlock(pool);
    return n;
}

const char *bp_version(void) {
#define BP_STR2(x) #x
#define BP_STR(x) BP_STR2(x)
    return BP_STR(BP_VERSION_MAJOR) "." BP_STR(BP_VERSION_MINOR) "." BP_STR(BP_VERSION_PATCH);
}

unsigned bp_version_number(void) { return BP_VERSION_NUMBER; }
