/* SPDX-License-Identifier: MIT */
/* test_thread.c - many threads: the seed's concurrent case, cross-thread
 * release, thread exit with cached and live buffers, many pools. */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>

static bp_pool *shared;

/* The first segments of the process made by two threads at once (the page
 * size was read racily: ThreadSanitizer reported it). This runs first. */
static void *first_segment(void *arg) {
    (void)arg;
    bp_pool *p = bp_pool_new(NULL);
    bp_put(p, bp_get(p, 5000));
    bp_pool_destroy(p);
    return NULL;
}

static void first_segments_on_two_threads(void **state) {
    (void)state;
    pthread_t a, b;
    pthread_create(&a, NULL, first_segment, NULL);
    pthread_create(&b, NULL, first_segment, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
}

static void *get_put_50(void *arg) {
    (void)arg;
    for (int i = 0; i < 50; i++) {
        uint8_t *p = bp_get(shared, 100 + (size_t)i);
        p[0] = 1;
        bp_put(shared, p);
    }
    return NULL;
}

static void ten_threads_times_fifty(void **state) {
    (void)state;
    shared = bp_pool_new(NULL);
    pthread_t th[10];
    for (int i = 0; i < 10; i++)
        pthread_create(&th[i], NULL, get_put_50, NULL);
    for (int i = 0; i < 10; i++)
        pthread_join(th[i], NULL);
    bp_stats st;
    bp_pool_stats(shared, &st);
    assert_int_equal(st.total_get, 500);
    assert_int_equal(st.total_put, 500);
    size_t out[512];
    assert_int_equal(bp_pool_recent_lengths(shared, out, 512), 256);
    assert_int_equal(bp_pool_destroy(shared), 0);
}

/* A producer hands buffers to a consumer that releases them. */
enum { QN = 64, HANDOFFS = 20000 };
static void *_Atomic queue[QN];

static void *consumer(void *arg) {
    size_t got = 0, bad = 0;
    while (got < HANDOFFS) {
        for (int i = 0; i < QN; i++) {
            uint8_t *p = atomic_exchange(&queue[i], NULL);
            if (!p)
                continue;
            if (p[0] != (uint8_t)(p[1] ^ 0x5a))
                bad++;
            if (bp_release(p) != 0)
                bad++;
            got++;
        }
    }
    *(size_t *)arg = bad;
    return NULL;
}

/* Hands HANDOFFS buffers of lengths base + (i % mod) * step to the consumer. */
static void handoff(size_t base, size_t step, size_t mod) {
    shared = bp_pool_new(NULL);
    size_t bad = 1;
    pthread_t c;
    pthread_create(&c, NULL, consumer, &bad);
    for (size_t i = 0; i < HANDOFFS; i++) {
        uint8_t *p = bp_get(shared, base + (i % mod) * step);
        assert_non_null(p);
        p[1] = (uint8_t)i;
        p[0] = (uint8_t)(i ^ 0x5a);
        void *expect = NULL;
        int slot = (int)(i % QN);
        while (!atomic_compare_exchange_weak(&queue[slot], &expect, p))
            expect = NULL;
    }
    pthread_join(c, NULL);
    assert_int_equal(bad, 0);
    bp_stats st;
    bp_pool_stats(shared, &st);
    assert_int_equal(st.total_get, HANDOFFS);
    assert_int_equal(st.total_put, HANDOFFS);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(bp_pool_destroy(shared), 0);
}

static void cross_thread_release_balances(void **state) {
    (void)state;
    handoff(64, 1, 9000);
}

/* 128 KiB .. 2 MiB: tiers without thread bins, through the hot slots. */
static void cross_thread_release_of_big_buffers(void **state) {
    (void)state;
    handoff(100000, 300000, 7);
}

static void *hold_and_exit(void *arg) {
    void **live = arg;
    for (int i = 0; i < 100; i++) /* fill this thread's caches */
        bp_put(shared, bp_get(shared, 1000));
    for (int i = 0; i < 10; i++)
        live[i] = bp_get(shared, 3000);
    return NULL;
}

static void thread_exit_flushes_caches_and_live_buffers_survive(void **state) {
    (void)state;
    shared = bp_pool_new(NULL);
    void *live[10];
    pthread_t th;
    pthread_create(&th, NULL, hold_and_exit, live);
    pthread_join(th, NULL);
    bp_stats st;
    bp_pool_stats(shared, &st);
    assert_int_equal(st.total_get, 110);
    assert_int_equal(st.total_put, 100);
    assert_int_equal(st.outstanding, 10);
    for (int i = 0; i < 10; i++) { /* released after their creator exited */
        memset(live[i], 3, 3000);
        assert_int_equal(bp_release(live[i]), 0);
    }
    bp_pool_stats(shared, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(bp_pool_destroy(shared), 0);
}

static void *many_short_pools(void *arg) {
    (void)arg;
    for (int i = 0; i < 300; i++) {
        bp_pool *p = bp_pool_new(NULL);
        void *a = bp_get(p, 100), *b = bp_get(p, 10000);
        bp_put(p, a);
        if (bp_pool_destroy(p) != 1) /* b is still referenced */
            return (void *)1;
        if (bp_release(b) != 0)
            return (void *)1;
    }
    return NULL;
}

static void hundreds_of_short_lived_pools(void **state) {
    (void)state;
    pthread_t th[2];
    void *r[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, many_short_pools, NULL);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], &r[i]);
        assert_null(r[i]);
    }
}

static void pools_keep_their_own_caches(void **state) {
    (void)state;
    bp_pool *pools[300];
    for (int i = 0; i < 300; i++) { /* more pools than thread slots */
        pools[i] = bp_pool_new(NULL);
        bp_put(pools[i], bp_get(pools[i], 200));
    }
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 300; i++) {
            void *p = bp_get(pools[i], 200);
            assert_int_equal(bp_put(pools[(i + 1) % 300], p), EINVAL);
            assert_int_equal(bp_put(pools[i], p), 0);
        }
    for (int i = 0; i < 300; i++) {
        bp_stats st;
        bp_pool_stats(pools[i], &st);
        assert_int_equal(st.total_get, 4);
        assert_int_equal(st.total_put, 4);
        assert_int_equal(bp_pool_destroy(pools[i]), 0);
    }
}

/* Recent lengths read while two threads record: only values really asked
 * for, each thread's in the order it asked, at most the window. */
static void *record_range(void *arg) {
    size_t base = (size_t)(uintptr_t)arg;
    for (size_t i = 1; i <= 20000; i++) /* base+1 .. base+20000, increasing */
        bp_put(shared, bp_get(shared, base + i));
    return NULL;
}

static void recent_lengths_read_during_recording(void **state) {
    (void)state;
    shared = bp_pool_new(NULL);
    pthread_t a, b;
    pthread_create(&a, NULL, record_range, (void *)(uintptr_t)100000);
    pthread_create(&b, NULL, record_range, (void *)(uintptr_t)300000);
    size_t out[256], reads = 0, bad = 0;
    while (reads < 2000) {
        size_t n = bp_pool_recent_lengths(shared, out, 256);
        size_t last_a = 0, last_b = 0;
        if (n > 256)
            bad++;
        for (size_t i = 0; i < n; i++) {
            size_t v = out[i];
            if (v > 100000 && v <= 120000) {
                bad += v <= last_a;
                last_a = v;
            } else if (v > 300000 && v <= 320000) {
                bad += v <= last_b;
                last_b = v;
            } else {
                bad++; /* a value nobody asked for */
            }
        }
        reads++;
    }
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_int_equal(bad, 0);
    size_t n = bp_pool_recent_lengths(shared, out, 256);
    assert_int_equal(n, 256);
    assert_int_equal(bp_pool_destroy(shared), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_segments_on_two_threads),
        cmocka_unit_test(ten_threads_times_fifty),
        cmocka_unit_test(cross_thread_release_balances),
        cmocka_unit_test(cross_thread_release_of_big_buffers),
        cmocka_unit_test(thread_exit_flushes_caches_and_live_buffers_survive),
        cmocka_unit_test(hundreds_of_short_lived_pools),
        cmocka_unit_test(pools_keep_their_own_caches),
        cmocka_unit_test(recent_lengths_read_during_recording),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
