/* SPDX-License-Identifier: MIT */
/* test_contract.c - a program written only against DESIGN.md sections 2
 * and 3 (the binding v0 contract), checking what it promises. */
#include "helpers.h"

static void design_contract_holds(void **state) {
    (void)state;
    size_t n;
    const size_t *pow2 = bp_sizes_pow2(&n);
    assert_int_equal(n, 15);
    const size_t *stream = bp_sizes_stream(&n);
    assert_int_equal(n, 6);
    assert_non_null(pow2);
    assert_non_null(stream);

    bp_config cfg = {0};
    cfg.sizes = stream;
    cfg.nsizes = n;
    bp_pool *pool = bp_pool_new(&cfg);
    assert_non_null(pool);

    char *p = bp_get(pool, 4096); /* exactly the 4096 tier */
    assert_int_equal(bp_cap(p), 4096);
    assert_int_equal(bp_refcount(p), 1);
    assert_ptr_equal(bp_retain(p + 10), p + 10);
    assert_int_equal(bp_refcount(p + 4000), 2);
    assert_int_equal(bp_cap(p + 96), 4000);
    assert_int_equal(bp_release(p + 10), 0);
    assert_int_equal(bp_put(pool, p), 0);
    assert_int_equal(bp_refcount(p), 0);
    assert_int_equal(bp_release(p), EALREADY);
    assert_int_not_equal(EALREADY, EINVAL);

    char *big = bp_get(pool, 200000); /* above 128K: oversize */
    assert_int_equal(bp_cap(big), 200000);
    assert_int_equal(bp_pool_discarded(pool), 1);

    bp_stats st;
    assert_int_equal(bp_pool_stats(pool, &st), 0);
    assert_int_equal(st.ntiers, 6);
    assert_int_equal(st.tiers[1].size, 4096);
    assert_int_equal(st.tiers[1].get, 1);
    assert_int_equal(st.tiers[1].put, 1);
    assert_int_equal(st.total_get, 1);
    assert_int_equal(st.total_put, 1);
    size_t sizes[BP_MAX_TIERS];
    assert_int_equal(bp_pool_sizes(pool, sizes, BP_MAX_TIERS), 6);
    size_t lens[8];
    assert_int_equal(bp_pool_recent_lengths(pool, lens, 8), 2);
    assert_int_equal(lens[0], 4096);
    assert_int_equal(lens[1], 200000);
    char *js = bp_pool_stats_json(pool);
    assert_non_null(strstr(js, "\"recent_lengths\":[4096,200000]"));
    free(js);
    assert_int_equal(bp_pool_destroy(pool), 1); /* big is still referenced */
    assert_int_equal(big[199999] = 1, 1);
    assert_int_equal(bp_release(big), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(design_contract_holds)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
