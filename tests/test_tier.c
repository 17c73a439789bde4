/* SPDX-License-Identifier: MIT */
/* test_tier.c - tier sets, size -> tier selection, config validation. */
#include "helpers.h"

static void pow2_set_is_128_to_2mib(void **state) {
    (void)state;
    size_t n;
    const size_t *s = bp_sizes_pow2(&n);
    assert_int_equal(n, 15);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(s[i], (size_t)128 << i);
    assert_int_equal(s[14], 2u << 20);
}

static void stream_set_matches_seed(void **state) {
    (void)state;
    size_t n;
    const size_t *s = bp_sizes_stream(&n);
    const size_t want[] = {1024, 4096, 16384, 32768, 65536, 131072};
    assert_int_equal(n, 6);
    assert_memory_equal(s, want, sizeof(want));
}

/* For every tier boundary: len = s-1, s, s+1 land on the smallest tier >= len. */
static void check_selection(bp_pool *pool) {
    size_t sizes[BP_MAX_TIERS];
    size_t n = bp_pool_sizes(pool, sizes, BP_MAX_TIERS);
    for (size_t i = 0; i < n; i++) {
        size_t lens[] = {sizes[i] - 1, sizes[i], sizes[i] + 1, i ? sizes[i - 1] + 1 : 1};
        for (size_t k = 0; k < 4; k++) {
            size_t len = lens[k];
            if (len == 0)
                continue;
            void *p = bp_get(pool, len);
            assert_non_null(p);
            size_t want = 0;
            for (size_t j = 0; j < n; j++)
                if (sizes[j] >= len) {
                    want = sizes[j];
                    break;
                }
            if (want == 0)
                want = len; /* oversize: exactly len */
            assert_int_equal(bp_cap(p), want);
            assert_int_equal(bp_put(pool, p), 0);
        }
    }
}

static void pow2_selection_is_exact(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    assert_non_null(pool);
    check_selection(pool);
    for (size_t len = 1; len <= 5000; len++) { /* every length in a range */
        void *p = bp_get(pool, len);
        size_t cap = bp_cap(p);
        assert_true(cap >= len && (cap == 128 || cap / 2 < len));
        bp_put(pool, p);
    }
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void custom_unordered_and_close_tiers(void **state) {
    (void)state;
    const size_t sets[][8] = {
        {3000, 100, 1000},
        {100, 101, 102, 103, 5000},
        {1000000, 1000001, 1000003, 64},
        {65, 129, 4095, 4097, 1u << 30},
    };
    const size_t counts[] = {3, 5, 4, 5};
    for (size_t i = 0; i < 4; i++) {
        bp_pool *pool = new_pool_sizes(sets[i], counts[i]);
        assert_non_null(pool);
        size_t out[8];
        size_t n = bp_pool_sizes(pool, out, 8);
        assert_int_equal(n, counts[i]);
        for (size_t j = 1; j < n; j++)
            assert_true(out[j - 1] < out[j]);
        if (i < 3)
            check_selection(pool);
        bp_pool_destroy(pool);
    }
}

/* Every length from 1 to past the fast table's reach (it covers 2048
 * buckets of the largest power of two dividing the tiers below it) gets the
 * smallest tier that holds it: the table and the log-linear classes agree. */
static void every_length_gets_the_smallest_tier(void **state) {
    (void)state;
    const size_t sets[][6] = {
        {128, 256, 512, 4096, 262144, 524288}, /* table: 128-byte buckets up to 256 KiB */
        {3000, 100, 1000, 70000},              /* 4-byte buckets up to 8 KiB */
        {100, 101, 102, 103, 5000, 9999},      /* 1-byte buckets up to 2 KiB */
        {64, 1000000},                         /* 64-byte buckets up to 128 KiB */
    };
    const size_t counts[] = {6, 4, 6, 2};
    const size_t upto[] = {300000, 71000, 11000, 140000};
    for (size_t i = 0; i < 4; i++) {
        bp_pool *pool = new_pool_sizes(sets[i], counts[i]);
        assert_non_null(pool);
        size_t sz[6];
        size_t n = bp_pool_sizes(pool, sz, 6);
        size_t t = 0;
        for (size_t len = 1; len <= upto[i]; len++) {
            while (t < n && sz[t] < len)
                t++;
            void *p = bp_get(pool, len);
            assert_non_null(p);
            if (bp_cap(p) != (t < n ? sz[t] : len))
                fail_msg("set %zu: len %zu got cap %zu", i, len, bp_cap(p));
            assert_int_equal(bp_put(pool, p), 0);
        }
        assert_int_equal(bp_pool_destroy(pool), 0);
    }
}

static void bad_configs_are_refused(void **state) {
    (void)state;
    const size_t zero[] = {128, 0};
    const size_t dup[] = {128, 256, 128};
    const size_t huge[] = {(size_t)BP_MAX_TIER_SIZE + 1};
    size_t many[BP_MAX_TIERS + 1];
    for (size_t i = 0; i < BP_MAX_TIERS + 1; i++)
        many[i] = 64 * (i + 1);
    errno = 0;
    assert_null(new_pool_sizes(zero, 2));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(new_pool_sizes(dup, 3));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(new_pool_sizes(huge, 1));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(new_pool_sizes(many, BP_MAX_TIERS + 1));
    assert_int_equal(errno, EINVAL);
    bp_pool *ok = new_pool_sizes(many, BP_MAX_TIERS); /* exactly the limit is fine */
    assert_non_null(ok);
    bp_pool_destroy(ok);
    bp_config cfg = {0};
    cfg.nsizes = 3; /* sizes NULL with a count */
    errno = 0;
    assert_null(bp_pool_new(&cfg));
    assert_int_equal(errno, EINVAL);
    cfg.nsizes = 0;
    cfg.flags = 0x80000000u; /* unknown flag */
    errno = 0;
    assert_null(bp_pool_new(&cfg));
    assert_int_equal(errno, EINVAL);
}

static void pool_sizes_reports_count_and_truncates(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    size_t out[4] = {0};
    assert_int_equal(bp_pool_sizes(pool, out, 4), 15);
    assert_int_equal(out[0], 128);
    assert_int_equal(out[3], 1024);
    assert_int_equal(bp_pool_sizes(pool, NULL, 0), 15);
    assert_int_equal(bp_pool_sizes(NULL, out, 4), 0);
    bp_pool_destroy(pool);
}

static void version_matches_header(void **state) {
    (void)state;
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", BP_VERSION_MAJOR, BP_VERSION_MINOR, BP_VERSION_PATCH);
    assert_string_equal(bp_version(), want);
    assert_int_equal(bp_version_number(), BP_VERSION_NUMBER);
    assert_int_equal(BP_VERSION_NUMBER,
                     BP_VERSION_MAJOR * 10000 + BP_VERSION_MINOR * 100 + BP_VERSION_PATCH);
    assert_true(bp_version_number() >= 200); /* 0.2.0: the bulk calls and bp_base are here */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pow2_set_is_128_to_2mib),
        cmocka_unit_test(stream_set_matches_seed),
        cmocka_unit_test(pow2_selection_is_exact),
        cmocka_unit_test(custom_unordered_and_close_tiers),
        cmocka_unit_test(every_length_gets_the_smallest_tier),
        cmocka_unit_test(bad_configs_are_refused),
        cmocka_unit_test(pool_sizes_reports_count_and_truncates),
        cmocka_unit_test(version_matches_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
