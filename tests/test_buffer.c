/* SPDX-License-Identifier: MIT */
/* test_buffer.c - get/put: capacities, alignment, reuse, oversize. */
#include "helpers.h"

static void request_of_4096_gets_the_4096_tier(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    void *p = bp_get(pool, 4096);
    assert_non_null(p);
    assert_int_equal(bp_cap(p), 4096);
    assert_int_equal((uintptr_t)p % 4096, 0);
    memset(p, 0xab, 4096);
    assert_int_equal(bp_put(pool, p), 0);
    bp_pool_destroy(pool);
}

static void buffers_are_aligned_and_writable(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    size_t n;
    const size_t *s = bp_sizes_pow2(&n);
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = bp_get(pool, s[i]);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 64, 0);
        if (s[i] >= 4096)
            assert_int_equal((uintptr_t)p % 4096, 0);
        memset(p, (int)i, s[i]);
        assert_int_equal(p[s[i] - 1], (uint8_t)i);
        assert_int_equal(bp_refcount(p), 1);
        assert_int_equal(bp_put(pool, p), 0);
        assert_int_equal(bp_refcount(p), 0);
    }
    bp_pool_destroy(pool);
}

static void live_buffers_never_overlap(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    enum { N = 3000 };
    uint8_t **v = calloc(N, sizeof(*v));
    for (size_t i = 0; i < N; i++) {
        size_t len = 1 + (i * 7919) % 70000;
        v[i] = bp_get(pool, len);
        assert_non_null(v[i]);
        memset(v[i], (int)(i & 0xff), len);
    }
    for (size_t i = 0; i < N; i++) {
        size_t len = 1 + (i * 7919) % 70000;
        for (size_t k = 0; k < len; k += 997)
            assert_int_equal(v[i][k], (uint8_t)(i & 0xff));
        assert_int_equal(v[i][len - 1], (uint8_t)(i & 0xff));
        assert_int_equal(bp_put(pool, v[i]), 0);
    }
    free(v);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void put_buffer_is_reused(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    void *a = bp_get(pool, 1000);
    assert_int_equal(bp_put(pool, a), 0);
    void *b = bp_get(pool, 1000);
    assert_ptr_equal(a, b); /* LIFO thread cache */
    bp_put(pool, b);
    bp_pool_destroy(pool);
}

static void oversize_is_exact_refcounted_and_discarded(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    size_t len = (2u << 20) + 12345;
    uint8_t *p = bp_get(pool, len);
    assert_non_null(p);
    assert_int_equal(bp_cap(p), len);
    assert_int_equal(bp_refcount(p), 1);
    memset(p, 1, len);
    assert_int_equal(bp_pool_discarded(pool), 1);
    assert_ptr_equal(bp_retain(p + 100), p + 100);
    assert_int_equal(bp_refcount(p + len - 1), 2);
    assert_int_equal(bp_release(p + 5), 0);
    assert_int_equal(bp_pool_discarded(pool), 1);
    assert_int_equal(bp_put(pool, p), 0);
    assert_int_equal(bp_pool_discarded(pool), 2); /* counted again on final release */
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.total_get, 0);
    assert_int_equal(st.total_put, 0);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void many_gets_span_many_segments(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    enum { N = 20000 };
    void **v = malloc(N * sizeof(void *));
    for (size_t i = 0; i < N; i++) {
        v[i] = bp_get(pool, 128);
        assert_non_null(v[i]);
        *(size_t *)v[i] = i;
    }
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(*(size_t *)v[i], i);
        assert_int_equal(bp_put(pool, v[i]), 0);
    }
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.tiers[0].get, N);
    assert_int_equal(st.tiers[0].put, N);
    assert_true(st.segments >= 2);
    free(v);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* The end-pointer trap, as the header states it: in normal builds
 * a + bp_cap(a) is the next buffer's start; bp_base finds a buffer's own. */
static void base_finds_the_start_and_end_pointers_are_the_neighbour(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    uint8_t *a = bp_get(pool, 4096), *b = bp_get(pool, 4096);
    uint8_t *lo = a < b ? a : b, *hi = a < b ? b : a;
    assert_ptr_equal(bp_base(lo), lo);
    assert_ptr_equal(bp_base(lo + 1), lo);
    assert_ptr_equal(bp_base(lo + 4095), lo);
    if (hi == lo + 4096) { /* neighbours in the segment (LIFO carving makes them so) */
        assert_ptr_equal(bp_base(lo + bp_cap(lo)), hi); /* not lo: the trap */
        assert_int_equal(bp_cap(lo + bp_cap(lo)), 4096);
    }
    int x;
    errno = 0;
    assert_null(bp_base(&x));
    assert_int_equal(errno, EINVAL);
    assert_null(bp_base(NULL));
    bp_put(pool, a);
    errno = 0;
    assert_null(bp_base(a)); /* free: not live */
    assert_int_equal(errno, EINVAL);
    uint8_t *big = bp_get(pool, 3u << 20);
    assert_ptr_equal(bp_base(big + 12345), big);
    bp_put(pool, big);
    bp_put(pool, b);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* bp_get_bulk: all or nothing; bp_put_bulk puts every pointer it can. */
static void bulk_get_is_all_or_nothing(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    void *v[64];
    assert_int_equal(bp_get_bulk(pool, 1000, v, 64), 0);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(bp_refcount(v[i]), 1);
        assert_int_equal(bp_cap(v[i]), 1024);
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(v[i], v[j]);
    }
    assert_int_equal(bp_put_bulk(pool, v, 64), 0);
    for (int i = 0; i < 64; i++)
        assert_int_equal(bp_refcount(v[i]), 0);
    assert_int_equal(bp_get_bulk(pool, 1000, v, 0), 0);
    assert_int_equal(bp_get_bulk(pool, 0, v, 4), EINVAL);
    assert_int_equal(bp_get_bulk(pool, 10, NULL, 4), EINVAL);
    assert_int_equal(bp_get_bulk(NULL, 10, v, 4), EINVAL);
    assert_int_equal(bp_put_bulk(pool, NULL, 4), EINVAL);
    assert_int_equal(bp_put_bulk(pool, NULL, 0), 0);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(st.total_get, 64);
    assert_int_equal(st.total_put, 64);
    assert_int_equal(bp_pool_destroy(pool), 0);

    /* under a budget that holds 3 buffers of 1 MiB, 4 cannot be had */
    bp_config cfg = {0};
    cfg.max_bytes = 3u << 21;
    pool = bp_pool_new(&cfg);
    void *w[4] = {(void *)1, (void *)1, (void *)1, (void *)1};
    assert_int_equal(bp_get_bulk(pool, 1u << 20, w, 4), ENOMEM);
    for (int i = 0; i < 4; i++)
        assert_true(w[i] == NULL || w[i] == (void *)1); /* nothing handed out */
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(bp_get_bulk(pool, 1u << 20, w, 2), 0); /* two fit */
    assert_int_equal(bp_put_bulk(pool, w, 2), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void bulk_put_refuses_each_bad_pointer_and_puts_the_rest(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL), *other = bp_pool_new(NULL);
    int local;
    void *theirs = bp_get(other, 64);
    void *v[5] = {bp_get(pool, 64), &local, bp_get(pool, 5000), theirs, NULL};
    void *a = v[0], *b = v[2];
    assert_int_equal(bp_put_bulk(pool, v, 5), EINVAL); /* the first error */
    assert_int_equal(bp_refcount(a), 0);
    assert_int_equal(bp_refcount(b), 0);
    assert_int_equal(bp_refcount(theirs), 1); /* another pool's: refused, untouched */
    void *again[1] = {a};
    assert_int_equal(bp_put_bulk(pool, again, 1), EALREADY);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(st.refused, 4); /* &local, theirs, NULL, the double put: all bp_put's on it */
    assert_int_equal(bp_put(other, theirs), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
    assert_int_equal(bp_pool_destroy(other), 0);
}

/* bp_grow: as realloc. Within the capacity the same buffer; beyond it a
 * bigger tier's (or an oversize) buffer holding the old capacity's bytes,
 * the old buffer back in the pool; NULL grows like a get. */
static void grow_keeps_the_contents_and_frees_the_old_buffer(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    unsigned char *p = bp_get(pool, 100);
    size_t cap = bp_cap(p);
    for (size_t i = 0; i < cap; i++)
        p[i] = (unsigned char)(i * 7);
    assert_ptr_equal(bp_grow(pool, p, cap), p); /* fits: no move */
    unsigned char *q = bp_grow(pool, p, 5000);
    assert_non_null(q);
    assert_ptr_not_equal(q, p);
    assert_true(bp_cap(q) >= 5000);
    assert_int_equal(bp_refcount(q), 1);
    for (size_t i = 0; i < cap; i++)
        assert_int_equal(q[i], (unsigned char)(i * 7));
    assert_int_equal(bp_refcount(p), 0); /* the old one went home */
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 1);
    size_t big = bp_pool_sizes(pool, NULL, 0); /* past the largest tier: oversize */
    size_t sizes[64];
    bp_pool_sizes(pool, sizes, big);
    unsigned char *r = bp_grow(pool, q, sizes[big - 1] + 1);
    assert_non_null(r);
    for (size_t i = 0; i < cap; i++)
        assert_int_equal(r[i], (unsigned char)(i * 7));
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 1);
    assert_int_equal(bp_put(pool, r), 0);
    void *n = bp_grow(pool, NULL, 300);
    assert_non_null(n);
    assert_true(bp_cap(n) >= 300);
    assert_int_equal(bp_put(pool, n), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* At the budget a grow fails with ENOMEM and the old buffer stays the
 * caller's, unchanged. */
static void a_grow_that_finds_no_room_leaves_the_buffer(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.max_bytes = 4u << 20;
    bp_pool *pool = bp_pool_new(&cfg);
    unsigned char *p = bp_get(pool, 1000);
    memset(p, 0x5a, bp_cap(p));
    assert_null(bp_grow(pool, p, 64u << 20));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(bp_refcount(p), 1);
    assert_int_equal(p[0], 0x5a);
    assert_int_equal(p[bp_cap(p) - 1], 0x5a);
    assert_int_equal(bp_put(pool, p), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base_finds_the_start_and_end_pointers_are_the_neighbour),
        cmocka_unit_test(request_of_4096_gets_the_4096_tier),
        cmocka_unit_test(buffers_are_aligned_and_writable),
        cmocka_unit_test(live_buffers_never_overlap),
        cmocka_unit_test(put_buffer_is_reused),
        cmocka_unit_test(oversize_is_exact_refcounted_and_discarded),
        cmocka_unit_test(many_gets_span_many_segments),
        cmocka_unit_test(bulk_get_is_all_or_nothing),
        cmocka_unit_test(bulk_put_refuses_each_bad_pointer_and_puts_the_rest),
        cmocka_unit_test(grow_keeps_the_contents_and_frees_the_old_buffer),
        cmocka_unit_test(a_grow_that_finds_no_room_leaves_the_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
