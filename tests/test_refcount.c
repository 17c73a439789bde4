/* SPDX-License-Identifier: MIT */
/* test_refcount.c - retain/release, interior pointers, last release. */
#include "helpers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

static void get_starts_at_one_and_release_frees_at_zero(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    uint8_t *p = bp_get(pool, 300);
    assert_int_equal(bp_refcount(p), 1);
    assert_ptr_equal(bp_retain(p), p);
    assert_ptr_equal(bp_retain(p), p);
    assert_int_equal(bp_refcount(p), 3);
    assert_int_equal(bp_release(p), 0);
    assert_int_equal(bp_release(p), 0);
    assert_int_equal(bp_refcount(p), 1);
    assert_int_equal(bp_cap(p), 512);
    assert_int_equal(bp_release(p), 0);
    assert_int_equal(bp_refcount(p), 0);
    assert_int_equal(bp_cap(p), 0);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.total_get, 1);
    assert_int_equal(st.total_put, 1);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void interior_pointers_name_their_buffer(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    uint8_t *p = bp_get(pool, 4096);
    uint8_t *mid = p + 1000, *last = p + 4095;
    assert_int_equal(bp_cap(mid), 4096 - 1000);
    assert_int_equal(bp_cap(last), 1);
    assert_ptr_equal(bp_retain(mid), mid);
    assert_ptr_equal(bp_retain(last), last);
    assert_int_equal(bp_refcount(p), 3);
    assert_int_equal(bp_release(last), 0);
    assert_int_equal(bp_put(pool, mid), 0); /* put accepts interior pointers too */
    assert_int_equal(bp_refcount(p + 17), 1);
    assert_int_equal(bp_release(p + 2048), 0);
    assert_int_equal(bp_refcount(p), 0);
    /* the buffer came back whole: the next get returns its start */
    uint8_t *q = bp_get(pool, 4096);
    assert_ptr_equal(q, p);
    bp_put(pool, q);
    bp_pool_destroy(pool);
}

static void one_past_the_end_is_not_inside(void **state) {
    (void)state;
    const size_t sizes[] = {100}; /* stride 128: bytes 100..127 are padding */
    bp_pool *pool = new_pool_sizes(sizes, 1);
    uint8_t *p = bp_get(pool, 100);
    assert_int_equal(bp_cap(p + 99), 1);
    assert_int_equal(bp_cap(p + 100), 0);
    assert_int_equal(bp_refcount(p + 100), 0);
    bp_put(pool, p);
    bp_pool_destroy(pool);
}

static void retain_release_balance_over_many_slices(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    uint8_t *p = bp_get(pool, 65536);
    for (size_t i = 0; i < 1000; i++)
        assert_non_null(bp_retain(p + i * 65));
    assert_int_equal(bp_refcount(p), 1001);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(bp_release(p + 65535 - i), 0);
    assert_int_equal(bp_refcount(p), 1);
    assert_int_equal(bp_release(p), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* bp_retain_n / bp_release_n: n at once, refusals change nothing. */
static void bulk_references_add_and_drop_n_at_once(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    uint8_t *p = bp_get(pool, 4096);
    assert_ptr_equal(bp_retain_n(p + 100, 8), p + 100); /* interior pointers too */
    assert_int_equal(bp_refcount(p), 9);
    assert_ptr_equal(bp_retain_n(p, 0), p); /* no change, but p is live */
    assert_int_equal(bp_refcount(p), 9);
    assert_int_equal(bp_release_n(p, 10), EINVAL); /* more than it holds: nothing changes */
    assert_int_equal(bp_refcount(p), 9);
    assert_int_equal(bp_release_n(p, 0), 0);
    assert_int_equal(bp_release_n(p + 4095, 5), 0);
    assert_int_equal(bp_refcount(p), 4);
    assert_int_equal(bp_release_n(p, 4), 0); /* the last ones: home */
    assert_int_equal(bp_refcount(p), 0);
    assert_int_equal(bp_release_n(p, 1), EALREADY);
    assert_int_equal(bp_release_n(p, 0), EALREADY); /* not live: even n 0 is refused */
    errno = 0;
    assert_null(bp_retain_n(p, 3));
    assert_int_equal(errno, EALREADY);
    int local;
    errno = 0;
    assert_null(bp_retain_n(&local, 1));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(bp_release_n(&local, 1), EINVAL);
    assert_int_equal(bp_release_n(NULL, 1), EINVAL);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.total_get, 1);
    assert_int_equal(st.total_put, 1);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(st.refused, 4); /* the pool's: 10 > 9, release_n x2 and retain_n of free */
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void retain_n_refuses_overflow_without_change(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    void *p = bp_get(pool, 100);
    size_t max = 0x1ffffffe; /* the count's limit: 2^29 - 2 */
    errno = 0;
    assert_null(bp_retain_n(p, max));
    assert_int_equal(errno, EOVERFLOW);
    assert_int_equal(bp_refcount(p), 1);
    assert_null(bp_retain_n(p, SIZE_MAX));
    assert_int_equal(errno, EOVERFLOW);
    assert_ptr_equal(bp_retain_n(p, max - 1), p); /* exactly to the limit */
    assert_int_equal(bp_refcount(p), max);
    assert_null(bp_retain(p));
    assert_int_equal(errno, EOVERFLOW);
    assert_int_equal(bp_release_n(p, max), 0);
    assert_int_equal(bp_refcount(p), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* The last reference dropped by release_n, on an oversize buffer and on
 * buffers sampled for leak reports (their count carries a flag). */
static void release_n_to_zero_sends_every_kind_home(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.leaks = BP_LEAKS_ALL;
    bp_pool *pool = bp_pool_new(&cfg);
    void *big = bp_get(pool, 5u << 20), *s = bp_get(pool, 700);
    assert_ptr_equal(bp_retain_n(big, 3), big);
    assert_ptr_equal(bp_retain_n(s, 3), s);
    assert_int_equal(bp_refcount(s), 4);
    assert_int_equal(bp_release_n(s, 2), 0);
    assert_int_equal(bp_release_n(s, 2), 0);
    assert_int_equal(bp_release_n(big, 4), 0);
    assert_int_equal(bp_release_n(big, 1), EALREADY); /* unmapped, but remembered */
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(bp_pool_destroy(pool), 0); /* no leak report: nothing left */
}

/* A producer adds 8 references with one call, 8 consumer threads each drop
 * one: the buffer goes home exactly once. */
typedef struct fan {
    void *_Atomic slot[8];
    _Atomic int done;
} fan;

static void *consumer(void *arg) {
    fan *f = ((fan **)arg)[0];
    size_t me = (size_t)((fan **)arg)[1];
    for (int r = 0; r < 2000; r++) {
        void *p;
        while (!(p = atomic_exchange(&f->slot[me], NULL)))
            sched_yield();
        if (bp_release(p) != 0)
            atomic_store(&f->done, -1);
    }
    return NULL;
}

static void retain_n_fan_out_across_threads(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    fan f = {{0}, 0};
    pthread_t t[8];
    void *args[8][2];
    for (size_t i = 0; i < 8; i++) {
        args[i][0] = &f;
        args[i][1] = (void *)i;
        pthread_create(&t[i], NULL, consumer, args[i]);
    }
    for (int r = 0; r < 2000; r++) {
        void *p = bp_get(pool, 2048);
        assert_ptr_equal(bp_retain_n(p, 7), p); /* 8 references: one per consumer */
        for (size_t i = 0; i < 8; i++) {
            while (atomic_load(&f.slot[i]))
                sched_yield();
            atomic_store(&f.slot[i], p);
        }
    }
    for (size_t i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&f.done), 0);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(st.total_get, 2000);
    assert_int_equal(st.total_put, 2000);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_starts_at_one_and_release_frees_at_zero),
        cmocka_unit_test(interior_pointers_name_their_buffer),
        cmocka_unit_test(one_past_the_end_is_not_inside),
        cmocka_unit_test(retain_release_balance_over_many_slices),
        cmocka_unit_test(bulk_references_add_and_drop_n_at_once),
        cmocka_unit_test(retain_n_refuses_overflow_without_change),
        cmocka_unit_test(release_n_to_zero_sends_every_kind_home),
        cmocka_unit_test(retain_n_fan_out_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
