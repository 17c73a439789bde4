/* SPDX-License-Identifier: MIT */
/* test_abi.c - the *_sized calls behind the header's macros (docs/abi.md):
 * a longer struct from a newer header is accepted when its unknown tail is
 * 0 and refused with E2BIG otherwise, a struct shorter than the 0.2 layout
 * is refused, and an output struct's unknown tail is zeroed. (A program
 * built against the 0.2.0 header itself is tests/abi/old_program.c.) */
#include "helpers.h"

/* A bp_config as a newer header might have it: two more fields. */
typedef struct {
    bp_config cfg;
    uint64_t newer[2];
} config_next;

static void config_tail_zero_is_accepted(void **state) {
    (void)state;
    config_next c;
    memset(&c, 0, sizeof c);
    size_t sizes[] = {512};
    c.cfg.sizes = sizes;
    c.cfg.nsizes = 1;
    bp_pool *pool = bp_pool_new_sized(&c.cfg, sizeof c);
    assert_non_null(pool);
    void *p = bp_get(pool, 10);
    assert_int_equal(bp_cap(p), 512);
    assert_int_equal(bp_put(pool, p), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void config_unknown_field_is_e2big(void **state) {
    (void)state;
    config_next c;
    memset(&c, 0, sizeof c);
    c.newer[1] = 1; /* a feature this library does not have */
    errno = 0;
    assert_null(bp_pool_new_sized(&c.cfg, sizeof c));
    assert_int_equal(errno, E2BIG);
    assert_string_not_equal(bp_error_name(E2BIG, "bp_pool_new"), "unknown error");
}

static void config_shorter_than_0_2_is_einval(void **state) {
    (void)state;
    bp_config c = {0};
    errno = 0;
    assert_null(bp_pool_new_sized(&c, offsetof(bp_config, max_bytes)));
    assert_int_equal(errno, EINVAL);
    bp_pool *pool = bp_pool_new_sized(NULL, 0); /* NULL: defaults, whatever the size */
    assert_non_null(pool);
    bp_pool_destroy(pool);
}

static void zero_config_is_defaults(void **state) {
    (void)state;
    bp_config c = {0};
    bp_pool *pool = bp_pool_new(&c);
    assert_non_null(pool);
    assert_int_equal(bp_pool_sizes(pool, NULL, 0), 15);
    bp_pool_destroy(pool);
}

typedef struct {
    bp_stats st;
    uint64_t newer[3];
} stats_next;

static void stats_tail_is_zeroed(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    void *p = bp_get(pool, 100);
    stats_next s;
    memset(&s, 0xa5, sizeof s);
    assert_int_equal(bp_pool_stats_sized(pool, &s.st, sizeof s), 0);
    assert_int_equal(s.st.total_get, 1);
    assert_int_equal(s.st.outstanding, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(s.newer[i], 0);
    assert_int_equal(bp_pool_stats_sized(pool, &s.st, offsetof(bp_stats, tiers)), EINVAL);
    assert_int_equal(bp_pool_stats_sized(NULL, &s.st, sizeof s), EINVAL);

    struct {
        bp_advice a;
        uint64_t newer;
    } adv;
    memset(&adv, 0xa5, sizeof adv);
    assert_int_equal(bp_pool_advice_sized(pool, 1, 0, &adv.a, sizeof adv), 0);
    assert_int_equal(adv.a.samples, 1);
    assert_int_equal(adv.a.tiers[0], 128); /* 100 rounded up to a 64-byte multiple */
    assert_int_equal(adv.newer, 0);
    assert_int_equal(bp_pool_advice_sized(pool, 1, 0, &adv.a, sizeof(size_t)), EINVAL);
    assert_int_equal(bp_pool_advice_sized(pool, 1, 0x80, &adv.a, sizeof adv), EINVAL);
    bp_put(pool, p);
    bp_pool_destroy(pool);
}

static void objpool_sized(void **state) {
    (void)state;
    struct {
        bp_objpool_config c;
        uint64_t newer;
    } oc;
    memset(&oc, 0, sizeof oc);
    oc.c.obj_size = 40;
    oc.newer = 7;
    errno = 0;
    assert_null(bp_objpool_new_sized(&oc.c, sizeof oc));
    assert_int_equal(errno, E2BIG);
    oc.newer = 0;
    bp_objpool *op = bp_objpool_new_sized(&oc.c, sizeof oc);
    assert_non_null(op);
    errno = 0;
    assert_null(bp_objpool_new_sized(&oc.c, sizeof(size_t)));
    assert_int_equal(errno, EINVAL);
    void *o = bp_objpool_get(op);
    struct {
        bp_obj_stats s;
        uint64_t newer;
    } os;
    memset(&os, 0xa5, sizeof os);
    assert_int_equal(bp_objpool_stats_sized(op, &os.s, sizeof os), 0);
    assert_int_equal(os.s.live, 1);
    assert_int_equal(os.newer, 0);
    assert_int_equal(bp_objpool_stats_sized(op, &os.s, 8), EINVAL);
    bp_objpool_put(op, o);
    assert_int_equal(bp_objpool_destroy(op), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_tail_zero_is_accepted),
        cmocka_unit_test(config_unknown_field_is_e2big),
        cmocka_unit_test(config_shorter_than_0_2_is_einval),
        cmocka_unit_test(zero_config_is_defaults),
        cmocka_unit_test(stats_tail_is_zeroed),
        cmocka_unit_test(objpool_sized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
