/* test_refcount.c - retain/release, interior pointers, last release. */
#include "helpers.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_starts_at_one_and_release_frees_at_zero),
        cmocka_unit_test(interior_pointers_name_their_buffer),
        cmocka_unit_test(one_past_the_end_is_not_inside),
        cmocka_unit_test(retain_release_balance_over_many_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
