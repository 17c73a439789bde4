/* SPDX-License-Identifier: MIT */
/* test_stats.c - statistics with the seed's meaning, recent lengths, JSON. */
#include "helpers.h"

static void recent_lengths_track_requests_in_order(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    const size_t lens[] = {100, 200, 5, 4096, 70000};
    for (size_t i = 0; i < 5; i++)
        bp_put(pool, bp_get(pool, lens[i]));
    size_t out[300];
    assert_int_equal(bp_pool_recent_lengths(pool, out, 300), 5);
    assert_memory_equal(out, lens, sizeof(lens));
    bp_pool_destroy(pool);
}

static void overflow_keeps_the_last_256(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    for (size_t len = 1; len <= 300; len++)
        bp_put(pool, bp_get(pool, len));
    size_t out[400];
    size_t n = bp_pool_recent_lengths(pool, out, 400);
    assert_int_equal(n, 256);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(out[i], 45 + i);
    /* a smaller max gives the newest max lengths, oldest first */
    assert_int_equal(bp_pool_recent_lengths(pool, out, 3), 3);
    assert_int_equal(out[0], 298);
    assert_int_equal(out[2], 300);
    bp_pool_destroy(pool);
}

static void oversize_is_recorded_not_counted(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    size_t big = (2u << 20) + 1;
    bp_put(pool, bp_get(pool, 10));
    bp_put(pool, bp_get(pool, big));
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.total_get, 1);
    assert_int_equal(st.total_put, 1);
    assert_int_equal(st.discarded, 2);
    size_t out[4];
    assert_int_equal(bp_pool_recent_lengths(pool, out, 4), 2);
    assert_int_equal(out[0], 10);
    assert_int_equal(out[1], big);
    bp_pool_destroy(pool);
}

static void window_and_no_recent_are_honoured(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.recent_window = 10;
    bp_pool *pool = bp_pool_new(&cfg);
    for (size_t len = 1; len <= 100; len++)
        bp_put(pool, bp_get(pool, len));
    size_t out[64];
    assert_int_equal(bp_pool_recent_lengths(pool, out, 64), 10);
    assert_int_equal(out[0], 91);
    assert_int_equal(out[9], 100);
    bp_pool_destroy(pool);
    cfg.recent_window = 0;
    cfg.flags = BP_NO_RECENT;
    pool = bp_pool_new(&cfg);
    bp_put(pool, bp_get(pool, 5));
    assert_int_equal(bp_pool_recent_lengths(pool, out, 64), 0);
    bp_pool_destroy(pool);
}

static void per_tier_counters_and_bytes(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    void *a = bp_get(pool, 100), *b = bp_get(pool, 100), *c = bp_get(pool, 5000);
    bp_put(pool, a);
    bp_stats st;
    assert_int_equal(bp_pool_stats(pool, &st), 0);
    assert_int_equal(st.ntiers, 15);
    assert_int_equal(st.tiers[0].size, 128);
    assert_int_equal(st.tiers[0].get, 2);
    assert_int_equal(st.tiers[0].put, 1);
    assert_int_equal(st.tiers[0].live, 1);
    assert_int_equal(st.tiers[6].size, 8192);
    assert_int_equal(st.tiers[6].get, 1);
    assert_int_equal(st.outstanding, 2);
    assert_int_equal(st.bytes_live, 128 + 8192);
    assert_true(st.bytes_idle >= 128);
    assert_true(st.bytes_mapped >= st.bytes_live + st.bytes_idle);
    assert_true(st.hits <= st.total_get);
    bp_put(pool, b);
    bp_put(pool, c);
    void *d = bp_get(pool, 100); /* from the thread cache: a hit */
    bp_put(pool, d);
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(st.bytes_live, 0);
    assert_true(st.tiers[0].hits >= 1);
    bp_pool_destroy(pool);
}

static void json_has_exactly_the_seed_keys(void **state) {
    (void)state;
    const size_t sizes[] = {128, 512, 2048};
    bp_pool *pool = new_pool_sizes(sizes, 3);
    bp_put(pool, bp_get(pool, 100));
    bp_put(pool, bp_get(pool, 400));
    void *live = bp_get(pool, 400);
    bp_put(pool, bp_get(pool, 5000));
    char *js = bp_pool_stats_json(pool);
    assert_non_null(js);
    assert_int_equal(jq_check(js, "."), 0);
    assert_int_equal(jq_check(js, "keys == [\"discarded\",\"pools\",\"recent_lengths\","
                                  "\"total_get\",\"total_put\"]"),
                     0);
    assert_int_equal(jq_check(js, ".pools | keys == [\"128\",\"2048\",\"512\"]"), 0);
    assert_int_equal(jq_check(js, ".pools[\"512\"] == {\"get\":2,\"put\":1}"), 0);
    assert_int_equal(jq_check(js, ".total_get == 3 and .total_put == 2 and .discarded == 2"), 0);
    assert_int_equal(jq_check(js, ".recent_lengths == [100,400,400,5000]"), 0);
    assert_int_not_equal(jq_check(js, ".total_get == 4"), 0); /* the check can fail */
    free(js);
    bp_put(pool, live);
    bp_pool_destroy(pool);
}

static void locked_recorder_keeps_the_same_lengths(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.recorder_kind = BP_RING_LOCKED;
    bp_pool *pool = bp_pool_new(&cfg);
    for (size_t len = 1; len <= 300; len++)
        bp_put(pool, bp_get(pool, len));
    size_t out[300];
    assert_int_equal(bp_pool_recent_lengths(pool, out, 300), 256);
    assert_int_equal(out[0], 45);
    assert_int_equal(out[255], 300);
    bp_pool_destroy(pool);
    cfg.recorder_kind = (bp_ring_kind)9;
    errno = 0;
    assert_null(bp_pool_new(&cfg));
    assert_int_equal(errno, EINVAL);
}

typedef struct my_rec {
    size_t n, last[8];
} my_rec;

static void my_push(void *ctx, size_t len) {
    my_rec *r = ctx;
    r->last[r->n++ % 8] = len;
}

static size_t my_read(void *ctx, size_t *out, size_t max) {
    my_rec *r = ctx; /* the newest min(8, n), oldest first */
    size_t k = r->n < 8 ? r->n : 8;
    k = k < max ? k : max;
    for (size_t i = 0; i < k; i++)
        out[i] = r->last[(r->n - k + i) % 8];
    return k;
}

static void user_recorder_replaces_the_ring(void **state) {
    (void)state;
    my_rec rec = {0};
    bp_recorder r = {&rec, my_push, my_read};
    bp_config cfg = {0};
    cfg.recorder = &r;
    bp_pool *pool = bp_pool_new(&cfg);
    for (size_t len = 1; len <= 40; len++) /* 32 get published to the recorder */
        bp_put(pool, bp_get(pool, len));
    assert_int_equal(rec.n, 32);
    size_t out[64];
    size_t n = bp_pool_recent_lengths(pool, out, 64); /* the staged 8 are pushed first */
    assert_int_equal(rec.n, 40);
    assert_int_equal(n, 8); /* what the recorder keeps */
    assert_int_equal(out[0], 33);
    assert_int_equal(out[7], 40);
    bp_pool_destroy(pool);
    /* two gets and a read: the recorder has had exactly two pushes, in order */
    my_rec two = {0};
    bp_recorder r2 = {&two, my_push, my_read};
    cfg.recorder = &r2;
    pool = bp_pool_new(&cfg);
    bp_put(pool, bp_get(pool, 700));
    bp_put(pool, bp_get(pool, 9));
    char *json = bp_pool_stats_json(pool); /* the exports read the same way */
    assert_non_null(strstr(json, "\"recent_lengths\":[700,9]"));
    free(json);
    assert_int_equal(two.n, 2);
    assert_int_equal(two.last[0], 700);
    assert_int_equal(two.last[1], 9);
    bp_pool_destroy(pool);
    bp_recorder half = {&rec, my_push, NULL};
    cfg.recorder = &half;
    errno = 0;
    assert_null(bp_pool_new(&cfg));
    assert_int_equal(errno, EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recent_lengths_track_requests_in_order),
        cmocka_unit_test(overflow_keeps_the_last_256),
        cmocka_unit_test(oversize_is_recorded_not_counted),
        cmocka_unit_test(window_and_no_recent_are_honoured),
        cmocka_unit_test(per_tier_counters_and_bytes),
        cmocka_unit_test(json_has_exactly_the_seed_keys),
        cmocka_unit_test(locked_recorder_keeps_the_same_lengths),
        cmocka_unit_test(user_recorder_replaces_the_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
