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
    /* every spelling the README lists: K, M, G, T, either case, then B or iB */
    const struct {
        const char *s;
        uint64_t v;
    } good[] = {{"1T", UINT64_C(1) << 40},
                {"2t", UINT64_C(2) << 40},
                {"64k", 65536},
                {"64KB", 65536},
                {"64KiB", 65536},
                {"64kib", 65536},
                {"1TiB", UINT64_C(1) << 40},
                {"7mb", 7u << 20}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(bp__parse_size(good[i].s, &x), 0);
        assert_int_equal(x, good[i].v);
    }
    const char *bad[] = {"-1",  "",      " 5",       "12xyz", "99999999999999999999",
                         "1P",  "K",     "0x10",     "5 ",    "64iB",
                         "64B", "64KBi", "16777216T"};
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

static void make_one_pool(void *arg) {
    (void)arg;
    bp_pool *p1 = bp_pool_new(NULL), *p2 = bp_pool_new(NULL); /* warned once */
    bp_pool_destroy(p1);
    bp_pool_destroy(p2);
    _exit(0);
}

/* A misspelt variable is named once, with the closest known name; known
 * ones and other programs' variables are not. */
static void unknown_names_are_warned_once(void **state) {
    (void)state;
    setenv("BYTEPOOL_TCACHE", "64K", 1);
    setenv("BYTEPOOL_DECAY_MSS", "10", 1);
    setenv("BYTEPOOL_checked", "1", 1);
    setenv("BYTEPOOL_HTTP_HOSTS", "example", 1);
    setenv("NOT_BYTEPOOL_X", "1", 1);
    char msg[1024];
    int st = run_in_child(make_one_pool, NULL, msg, sizeof msg);
    unsetenv("BYTEPOOL_TCACHE");
    unsetenv("BYTEPOOL_DECAY_MSS");
    unsetenv("BYTEPOOL_checked");
    unsetenv("BYTEPOOL_HTTP_HOSTS");
    unsetenv("NOT_BYTEPOOL_X");
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    const char *want[] = {
        "bytepool: ignoring unknown variable BYTEPOOL_TCACHE; did you mean BYTEPOOL_TCACHE_BYTES?",
        "unknown variable BYTEPOOL_DECAY_MSS; did you mean BYTEPOOL_DECAY_MS?",
        "unknown variable BYTEPOOL_checked; did you mean BYTEPOOL_CHECKED?"};
    for (size_t i = 0; i < 3; i++) {
        assert_non_null(strstr(msg, want[i]));
        assert_null(strstr(strstr(msg, want[i]) + 1, want[i])); /* once, not per pool */
    }
    assert_null(strstr(msg, "BYTEPOOL_HTTP_HOSTS"));
    assert_null(strstr(msg, "NOT_BYTEPOOL"));
}

/* BYTEPOOL_RESERVE_BYTES=1T, the README's default, is taken without a word. */
static void reserve_one_tebibyte(void **state) {
    (void)state;
    envcase c = {"BYTEPOOL_RESERVE_BYTES", "1T"};
    char msg[512];
    int st = run_in_child(make_pool_with, &c, msg, sizeof msg);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_null(strstr(msg, "ignoring"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(booleans_and_sizes_parse_strictly),
        cmocka_unit_test(invalid_values_are_ignored_with_one_line),
        cmocka_unit_test(false_and_no_turn_checked_mode_off),
        cmocka_unit_test(a_valid_size_is_used),
        cmocka_unit_test(unknown_names_are_warned_once),
        cmocka_unit_test(reserve_one_tebibyte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
