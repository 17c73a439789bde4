/* SPDX-License-Identifier: MIT */
/* test_env.c - BYTEPOOL_* variables are parsed strictly: a value that does
 * not parse, or is out of range, is ignored with one line on stderr naming
 * it, and the default is used. */
#include "helpers.h"

/* The parsers are internal (hidden in the shared library, linkable from
 * the static one). */
int bp__parse_bool(const char *s);
int bp__parse_size(const char *s, uint64_t *out);

static void booleans_and_sizes_parse_strictly(void **state) {
    (void)state;
    const char *yes[] = {"1", "true", "YES", "on"}, *no[] = {"0", "false", "no", "Off"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(bp__parse_bool(yes[i]), 1);
        assert_int_equal(bp__parse_bool(no[i]), 0);
    }
    assert_int_equal(bp__parse_bool("2"), -1);
    assert_int_equal(bp__parse_bool("truee"), -1);
    uint64_t x;
    assert_int_equal(bp__parse_size("4096", &x), 0);
    assert_int_equal(x, 4096);
    assert_int_equal(bp__parse_size("64K", &x), 0);
    assert_int_equal(x, 65536);
    assert_int_equal(bp__parse_size("3M", &x), 0);
    assert_int_equal(x, 3u << 20);
    assert_int_equal(bp__parse_size("2GiB", &x), 0);
    assert_int_equal(x, UINT64_C(2) << 30);
    const char *bad[] = {"-1", "", " 5", "12xyz", "99999999999999999999", "1T", "K", "0x10", "5 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(bp__parse_size(bad[i], &x), -1);
}

typedef struct envcase {
    const char *name, *value;
} envcase;

static void make_pool_with(void *arg) {
    const envcase *c = arg;
    setenv(c->name, c->value, 1);
    bp_pool *p1 = bp_pool_new(NULL), *p2 = bp_pool_new(NULL); /* warned once */
    /* the defaults hold: a 64 KiB get+put works, checked mode is off */
    void *b = bp_get(p1, 65536);
    bp_put(p1, b);
    int second = bp_put(p1, b); /* checked mode would abort here */
    bp_pool_destroy(p1);
    bp_pool_destroy(p2);
    _exit(second == EALREADY ? 0 : 3);
}

static void invalid_values_are_ignored_with_one_line(void **state) {
    (void)state;
    const envcase cases[] = {
        {"BYTEPOOL_TCACHE_BYTES", "-1"},     {"BYTEPOOL_TCACHE_BYTES", "99999999999999999999"},
        {"BYTEPOOL_TCACHE_BYTES", "1G1"},    {"BYTEPOOL_TCACHE_BYTES", "12xyz"},
        {"BYTEPOOL_DECAY_MS", "4294967296"}, {"BYTEPOOL_LEAKS", "bogus"},
        {"BYTEPOOL_IDLE_BYTES", "lots"},     {"BYTEPOOL_CHECKED", "maybe"},
        {"BYTEPOOL_MAX_BYTES", "-5"},        {"BYTEPOOL_BACKGROUND", "sometimes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[512];
        int st = run_in_child(make_pool_with, (void *)&cases[i], msg, sizeof msg);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        char want[128];
        snprintf(want, sizeof want, "bytepool: ignoring %s=\"%s\"", cases[i].name, cases[i].value);
        assert_non_null(strstr(msg, want));
        assert_null(strstr(strstr(msg, want) + 1, want)); /* one line, not one per pool */
    }
}

static void false_and_no_turn_checked_mode_off(void **state) {
    (void)state;
    const char *offs[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        envcase c = {"BYTEPOOL_CHECKED", offs[i]};
        char msg[512];
        int st = run_in_child(make_pool_with, &c, msg, sizeof msg);
        assert_true(WIFEXITED(st)); /* no abort at the double put */
        assert_int_equal(WEXITSTATUS(st), 0);
        assert_null(strstr(msg, "ignoring")); /* valid values: silent */
    }
}

static void accepted_values_take_effect(void *arg) {
    (void)arg;
    setenv("BYTEPOOL_TCACHE_BYTES", "1K", 1); /* no bin for 4 KiB: every put goes home */
    bp_pool *pool = bp_pool_new(NULL);
    for (int i = 0; i < 10; i++)
        bp_put(pool, bp_get(pool, 4096));
    bp_stats st;
    bp_pool_stats(pool, &st);
    _exit(st.hits == 0 ? 0 : 1);
}

static void a_valid_size_is_used(void **state) {
    (void)state;
    char msg[512];
    int st = run_in_child(accepted_values_take_effect, NULL, msg, sizeof msg);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(booleans_and_sizes_parse_strictly),
        cmocka_unit_test(invalid_values_are_ignored_with_one_line),
        cmocka_unit_test(false_and_no_turn_checked_mode_off),
        cmocka_unit_test(a_valid_size_is_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
