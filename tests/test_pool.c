/* SPDX-License-Identifier: MIT */
/* test_pool.c - destroy with live buffers, reserve, trim, decay, bounds. */
#include "helpers.h"

#include <pthread.h>

static void destroy_returns_live_count_and_defers_freeing(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    uint8_t *a = bp_get(pool, 1000), *b = bp_get(pool, 100000), *big = bp_get(pool, 3u << 20);
    bp_put(pool, bp_get(pool, 1000)); /* something cached too */
    memset(a, 1, 1000);
    assert_int_equal(bp_pool_destroy(pool), 3);
    /* still valid, still refcounted */
    assert_int_equal(a[999], 1);
    memset(b, 2, 100000);
    assert_int_equal(bp_cap(b), 131072);
    assert_ptr_equal(bp_retain(a), a);
    assert_int_equal(bp_release(a), 0);
    assert_int_equal(bp_release(a), 0);
    assert_int_equal(bp_release(b), 0);
    assert_int_equal(bp_release(big), 0);
    /* the memory is gone: the addresses are no longer the library's */
    assert_int_equal(bp_refcount(a), 0);
    assert_int_equal(bp_release(b), EINVAL);
    assert_int_equal(bp_release(big), EALREADY); /* unmapped, but remembered */
}

static void destroy_of_an_idle_pool_unmaps_everything(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    uint8_t *p = bp_get(pool, 5000), *big = bp_get(pool, 1u << 20);
    memset(p, 1, 64); /* resident, so that "not resident" below means given back */
    memset(big, 1, 64);
    bp_put(pool, p);
    bp_put(pool, big); /* no thread bin at 1 MiB: it waits in a hot slot */
    assert_int_equal(bp_pool_destroy(pool), 0);
    int p_mapped = is_resident(p), big_mapped = is_resident(big); /* before anything maps */
    assert_false(p_mapped);
    assert_false(big_mapped);
    assert_int_equal(bp_refcount(p), 0);
    assert_int_not_equal(bp_release(p), 0); /* refused: not the library's any more */
}

/* Tiers whose thread bin holds fewer than 4 buffers (here 1 MiB, no bin
 * with the default 256 KiB tcache_bytes) keep up to 4 free buffers in
 * lock-free hot slots; more go to the depot; trim empties the slots. */
/* With the default thread cache bound, a tier too big for it still keeps one
 * buffer per thread: a get+put loop on 1 MiB never leaves the thread's bin.
 * A bound the program sets is bytes: then the same loop has no bin. */
static uint64_t big_hits(const bp_config *cfg) {
    bp_pool *pool = bp_pool_new(cfg);
    for (int i = 0; i < 100; i++)
        assert_int_equal(bp_put(pool, bp_get(pool, 1u << 20)), 0);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.tiers[st.ntiers - 2].size, 1u << 20);
    uint64_t hits = st.tiers[st.ntiers - 2].hits;
    bp_pool_destroy(pool);
    return hits;
}

static void a_big_tier_keeps_one_buffer_per_thread(void **state) {
    (void)state;
    unsetenv("BYTEPOOL_TCACHE_BYTES");
    assert_int_equal(big_hits(NULL), 99); /* every get but the first */
    bp_config cfg = {0};
    cfg.tcache_bytes = 256 * 1024;
    assert_int_equal(big_hits(&cfg), 0);
}

static void big_tiers_reuse_through_hot_slots(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    void *v[5], *w[5];
    for (int i = 0; i < 5; i++)
        memset(v[i] = bp_get(pool, 1u << 20), 1, 64); /* resident until given back */
    for (int i = 0; i < 5; i++)
        assert_int_equal(bp_put(pool, v[i]), 0);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.segments, 5);
    for (int i = 0; i < 5; i++) {
        w[i] = bp_get(pool, 1000000);
        int found = 0;
        for (int j = 0; j < 5; j++)
            found += w[i] == v[j];
        assert_int_equal(found, 1); /* reused, not new */
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(w[i], w[j]); /* and never handed out twice */
        assert_int_equal(bp_refcount(w[i]), 1);
    }
    bp_pool_stats(pool, &st);
    assert_int_equal(st.segments, 5);
    assert_int_equal(st.tiers[st.ntiers - 2].live, 5); /* the 1 MiB tier */
    for (int i = 0; i < 5; i++)
        bp_put(pool, w[i]);
    assert_int_equal(bp_put(pool, w[0]), EALREADY); /* a free buffer in a hot slot */
    bp_pool_trim(pool);
    bp_pool_stats(pool, &st);
    assert_int_equal(st.segments, 0);
    assert_int_equal(st.bytes_mapped, 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void reserve_prewarms_a_tier(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    assert_int_equal(bp_pool_reserve(pool, 3000, 100), 0);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.tiers[5].size, 4096);
    assert_true(st.tiers[5].carved >= 100);
    assert_true(st.bytes_idle >= 100 * 4096);
    uint64_t mapped = st.bytes_mapped;
    void *v[100];
    for (int i = 0; i < 100; i++)
        v[i] = bp_get(pool, 4000);
    bp_pool_stats(pool, &st);
    assert_int_equal(st.bytes_mapped, mapped); /* no new mapping was needed */
    for (int i = 0; i < 100; i++) {
        memset(v[i], 1, 4000); /* resident, whichever buffers the gets found */
        bp_put(pool, v[i]);
    }
    bp_pool_trim(pool); /* trim keeps the reserve mapped */
    bp_pool_stats(pool, &st);
    assert_true(st.tiers[5].carved >= 100);
    /* ... and resident: reserve faulted the pages in, trim leaves them */
    int resident = 0;
    for (int i = 0; i < 100; i++)
        resident += is_resident(v[i]);
    assert_int_equal(resident, 100);
    bp_pool_destroy(pool);
}

static void trim_gives_memory_back(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    enum { N = 400 };
    static uint8_t *v[N];
    size_t before = rss_bytes();
    for (int i = 0; i < N; i++) {
        v[i] = bp_get(pool, 200000); /* 256 KiB tier: 100 MiB in all */
        memset(v[i], 1, 200000);
    }
    size_t peak = rss_bytes();
    assert_true(peak - before > 60u << 20);
    for (int i = 0; i < N; i++)
        bp_put(pool, v[i]);
    size_t back = bp_pool_trim(pool);
    size_t after = rss_bytes();
    bp_stats st;
    bp_pool_stats(pool, &st);
    (void)back; /* most went back already on put: idle_bytes bounds empty segments */
#if !defined(__SANITIZE_ADDRESS__) &&                                                              \
    !defined(__SANITIZE_THREAD__) /* their shadow of the region stays resident: freed segments     \
                                     keep their addresses */
    assert_true(after < before + (peak - before) / 10); /* within 10% of the peak growth */
#else
    (void)after;
#endif
    assert_true(st.bytes_mapped < (8u << 20) + (2u << 20));
    assert_true(st.os_returned >= 60u << 20);
    bp_pool_destroy(pool);
}

static void trim_releases_pages_of_partly_used_segments(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    enum { N = 200 };
    static uint8_t *v[N];
    for (int i = 0; i < N; i++) {
        v[i] = bp_get(pool, 65536);
        memset(v[i], 1, 65536);
    }
    for (int i = 1; i < N; i++) /* keep v[0]: its segment is not empty */
        bp_put(pool, v[i]);
    size_t peak = rss_bytes();
    assert_true(bp_pool_trim(pool) >= 100 * 65536);
    assert_true(rss_bytes() < peak - 5u * (1u << 20));
    assert_int_equal(v[0][65535], 1);
    bp_put(pool, v[0]);
    bp_pool_destroy(pool);
}

static void idle_bytes_bound_unmaps_empty_segments(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.idle_bytes = 1;   /* keep no empty segment */
    cfg.tcache_bytes = 1; /* and no thread cache */
    bp_pool *pool = bp_pool_new(&cfg);
    void *p = bp_get(pool, 100000);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.segments, 1);
    bp_put(pool, p);
    bp_pool_stats(pool, &st);
    assert_int_equal(st.segments, 0);
    assert_int_equal(st.bytes_mapped, 0);
    bp_pool_destroy(pool);
}

static void decay_returns_segments_idle_long_enough(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.decay_ms = 100;           /* far above a scheduling stall, far below the sleeps */
    cfg.tcache_bytes = 1;         /* no thread bins: every tier uses hot slots */
    cfg.flags = BP_NO_BACKGROUND; /* only calls decay: this checks that they do */
    bp_pool *pool = bp_pool_new(&cfg);
    void *a = bp_get(pool, 100000), *b = bp_get(pool, 1000);
    memset(a, 1, 64); /* resident until given back */
    bp_put(pool, a);  /* a waits in its tier's hot slot */
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.segments, 2);
    usleep(250 * 1000);
    /* the decay is due: it notes what waits in the hot slots (a stays there) */
    for (int i = 0; i < 16; i++)
        bp_put(pool, bp_get(pool, 1000));
    assert_int_equal(bp_release(a), EALREADY); /* just emptied: still mapped, free */
    usleep(250 * 1000);
    bp_put(pool, bp_get(pool, 5000)); /* a locked call: a, idle since that pass, goes */
    assert_false(is_resident(a));
    bp_put(pool, b);
    bp_pool_destroy(pool);
}

/* Calls served by hot slots take no lock, yet the decay still runs: they
 * look at the clock every 16th time. */
static void hot_slot_traffic_still_runs_the_decay(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.decay_ms = 100;
    cfg.tcache_bytes = 1;
    cfg.flags = BP_NO_BACKGROUND;
    bp_pool *pool = bp_pool_new(&cfg);
    void *v[5];
    for (int i = 0; i < 5; i++)
        memset(v[i] = bp_get(pool, 1u << 20), 1, 64); /* resident until given back */
    for (int i = 0; i < 5; i++)
        bp_put(pool, v[i]);           /* four fill the hot slots, v[4]'s segment empties */
    bp_put(pool, bp_get(pool, 1000)); /* a 1 KiB buffer now waits in a hot slot */
    usleep(250 * 1000);
    for (int i = 0; i < 16; i++)
        bp_put(pool, bp_get(pool, 1000)); /* hot slots only, no lock */
    assert_false(is_resident(v[4]));      /* idle 250 ms: given back */
    bp_pool_destroy(pool);
}

/* on_segment: every segment mapped is reported once with a range holding
 * its buffers, and once before it goes, whoever unmaps it (a final
 * release of an oversize buffer, trim, the purge thread, destroy). */
typedef struct seg_log {
    pthread_mutex_t mu;
    int n;
    struct {
        void *base;
        size_t len;
        int mapped, unmapping;
    } seg[256];
    int bad; /* an event for a range never reported mapped, or twice */
} seg_log;

static void on_seg(void *ctx, void *base, size_t len, int event) {
    seg_log *l = ctx;
    pthread_mutex_lock(&l->mu);
    int i = 0;
    while (i < l->n && !(l->seg[i].base == base && !l->seg[i].unmapping))
        i++;
    if (event == BP_SEGMENT_MAPPED) {
        if (i < l->n || l->n == 256)
            l->bad++;
        else {
            l->seg[l->n].base = base;
            l->seg[l->n].len = len;
            l->seg[l->n].mapped = 1;
            l->seg[l->n++].unmapping = 0;
        }
    } else if (event == BP_SEGMENT_UNMAPPING && i < l->n && l->seg[i].len == len) {
        l->seg[i].unmapping = 1;
    } else {
        l->bad++;
    }
    pthread_mutex_unlock(&l->mu);
}

static bool covered(seg_log *l, const void *p, size_t cap) {
    pthread_mutex_lock(&l->mu);
    bool in = false;
    for (int i = 0; i < l->n && !in; i++)
        in = !l->seg[i].unmapping && (const char *)p >= (char *)l->seg[i].base &&
             (const char *)p + cap <= (char *)l->seg[i].base + l->seg[i].len;
    pthread_mutex_unlock(&l->mu);
    return in;
}

static int still_mapped(seg_log *l) {
    pthread_mutex_lock(&l->mu);
    int k = 0;
    for (int i = 0; i < l->n; i++)
        k += !l->seg[i].unmapping;
    pthread_mutex_unlock(&l->mu);
    return k;
}

static void on_segment_reports_every_mapping_once(void **state) {
    (void)state;
    seg_log l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    bp_config cfg = {0};
    cfg.on_segment = on_seg;
    cfg.segment_ctx = &l;
    cfg.decay_ms = 20;
    bp_pool *pool = bp_pool_new(&cfg);
    size_t lens[] = {10, 3000, 70000, 1u << 20, 5u << 20};
    void *v[5];
    for (int k = 0; k < 5; k++) {
        v[k] = bp_get(pool, lens[k]);
        assert_true(covered(&l, v[k], bp_cap(v[k])));
    }
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(still_mapped(&l), (int)st.segments);
    bp_put(pool, v[4]); /* oversize: unmapped at its final release */
    assert_int_equal(still_mapped(&l), (int)st.segments - 1);
    for (int k = 0; k < 4; k++)
        bp_put(pool, v[k]);
    bp_pool_trim(pool);
    for (int i = 0; i < 200 && still_mapped(&l) > 0; i++)
        usleep(20 * 1000); /* what the thread cache kept goes with the purge thread */
    assert_int_equal(bp_pool_destroy(pool), 0);
    assert_int_equal(still_mapped(&l), 0);
    assert_int_equal(l.bad, 0);
    assert_true(l.n >= 5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(destroy_returns_live_count_and_defers_freeing),
        cmocka_unit_test(destroy_of_an_idle_pool_unmaps_everything),
        cmocka_unit_test(a_big_tier_keeps_one_buffer_per_thread),
        cmocka_unit_test(on_segment_reports_every_mapping_once),
        cmocka_unit_test(big_tiers_reuse_through_hot_slots),
        cmocka_unit_test(reserve_prewarms_a_tier),
        cmocka_unit_test(trim_gives_memory_back),
        cmocka_unit_test(trim_releases_pages_of_partly_used_segments),
        cmocka_unit_test(idle_bytes_bound_unmaps_empty_segments),
        cmocka_unit_test(decay_returns_segments_idle_long_enough),
        cmocka_unit_test(hot_slot_traffic_still_runs_the_decay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
