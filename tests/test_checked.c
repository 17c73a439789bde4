/* SPDX-License-Identifier: MIT */
/* test_checked.c - checked mode: poison, canaries, aborts that name the
 * operation and the buffer; BYTEPOOL_CHECKED=1 turns it on. */
#include "helpers.h"

/* Under AddressSanitizer the tool sees the bad access first (freed and
 * past-the-request bytes are poisoned); elsewhere checked mode aborts. */
#if defined(BP_SANITIZED) && defined(__SANITIZE_ADDRESS__)
#define EXPECT_TOOL_REPORT(st, msg, ours)                                                          \
    do {                                                                                           \
        assert_false(WIFEXITED(st) && WEXITSTATUS(st) == 0);                                       \
        assert_non_null(strstr(msg, "use-after-poison"));                                          \
    } while (0)
#else
#define EXPECT_TOOL_REPORT(st, msg, ours)                                                          \
    do {                                                                                           \
        assert_child_aborted(st);                                                                  \
        assert_non_null(strstr(msg, ours));                                                        \
    } while (0)
#endif

static void count_errors(void *ctx, int err, const char *op, const void *ptr) {
    (void)err;
    (void)op;
    (void)ptr;
    ++*(int *)ctx;
}

static bp_pool *checked_pool(void) {
    bp_config cfg = {0};
    cfg.flags = BP_CHECKED;
    return bp_pool_new(&cfg);
}

static void write_after_release(void *arg) {
    (void)arg;
    bp_pool *pool = checked_pool();
    uint8_t *p = bp_get(pool, 100);
    bp_put(pool, p);
    p[5] = 1; /* use after release */
    bp_get(pool, 100);
}

static void use_after_release_aborts_with_a_message(void **state) {
    (void)state;
    char msg[512];
    int st = run_in_child(write_after_release, NULL, msg, sizeof msg);
    EXPECT_TOOL_REPORT(st, msg, "bp_get: free buffer");
#if !defined(__SANITIZE_ADDRESS__)
    assert_non_null(strstr(msg, "use after release"));
    assert_non_null(strstr(msg, "offset 5"));
#endif
}

static void overrun(void *arg) {
    (void)arg;
    bp_pool *pool = checked_pool();
    uint8_t *p = bp_get(pool, 100); /* tier 128: the guard gap's canary starts at 128 */
    p[128] = 0;
    bp_release(p);
}

static void overrun_past_the_capacity_aborts(void **state) {
    (void)state;
    char msg[512];
    int st = run_in_child(overrun, NULL, msg, sizeof msg);
    EXPECT_TOOL_REPORT(st, msg, "written past its capacity 128");
}

static void strict_overrun(void *arg) {
    (void)arg;
    bp_config cfg = {0};
    cfg.flags = BP_CHECKED | BP_STRICT_LEN;
    bp_pool *pool = bp_pool_new(&cfg);
    uint8_t *p = bp_get(pool, 100); /* strict: a 16-byte canary at 100 */
    p[100] = 0;
    bp_release(p);
}

static void strict_len_aborts_past_the_requested_length(void **state) {
    (void)state;
    char msg[512];
    int st = run_in_child(strict_overrun, NULL, msg, sizeof msg);
    EXPECT_TOOL_REPORT(st, msg, "written past its requested length 100");
}

static void strict_from_env(void *arg) {
    (void)arg;
    setenv("BYTEPOOL_CHECKED", "strict", 1);
    bp_pool *pool = bp_pool_new(NULL);
    uint8_t *p = bp_get(pool, 100);
    p[100] = 0;
    bp_release(p);
}

static void checked_strict_in_the_environment_checks_the_length(void **state) {
    (void)state;
    char msg[512];
    int st = run_in_child(strict_from_env, NULL, msg, sizeof msg);
    EXPECT_TOOL_REPORT(st, msg, "written past its requested length 100");
}

/* The whole bp_cap is the caller's in checked mode too (the README's quick
 * start reads bp_cap bytes into a buffer asked for with less), and every
 * one-past-the-end pointer falls in the guard gap: refused, not taken for
 * the next buffer. */
static void whole_capacity_is_usable_and_end_pointers_are_refused(void **state) {
    (void)state;
    int calls = 0;
    bp_config cfg = {0};
    cfg.flags = BP_CHECKED;
    cfg.on_error = count_errors;
    cfg.error_ctx = &calls;
    bp_pool *pool = bp_pool_new(&cfg);
    const size_t lens[] = {1, 100, 1500, 4000, 5000, 70000, 1u << 20};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t *a = bp_get(pool, lens[i]), *b = bp_get(pool, lens[i]);
        size_t cap = bp_cap(a);
        assert_true(cap >= lens[i]);
        memset(a, 0x5a, cap); /* all of it */
        memset(b, 0x5b, bp_cap(b));
        assert_int_equal(bp_cap(a + cap), 0);
        assert_null(bp_base(a + cap));
        assert_int_equal(errno, EINVAL);
        assert_ptr_equal(bp_base(a + cap - 1), a);
        int before = calls;
        assert_null(bp_retain(a + cap));
        assert_int_equal(errno, EINVAL);
        assert_int_equal(bp_release(a + cap), EINVAL);
        assert_int_equal(calls, before + 2); /* reported */
        assert_int_equal(bp_refcount(b), 1);
        assert_int_equal(bp_release(a), 0); /* canaries intact: no abort */
        assert_int_equal(bp_release(b), 0);
    }
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void double_release(void *arg) {
    (void)arg;
    bp_pool *pool = checked_pool();
    void *p = bp_get(pool, 1000);
    bp_put(pool, p);
    bp_put(pool, p);
}

static void double_release_aborts_naming_the_buffer(void **state) {
    (void)state;
    char msg[512];
    int st = run_in_child(double_release, NULL, msg, sizeof msg);
    assert_child_aborted(st);
    assert_non_null(strstr(msg, "bp_put"));
    assert_non_null(strstr(msg, "double release"));
}

static void env_enables_checked(void *arg) {
    (void)arg;
    setenv("BYTEPOOL_CHECKED", "1", 1);
    bp_pool *pool = bp_pool_new(NULL); /* no flag: the environment turns it on */
    void *p = bp_get(pool, 64);
    bp_release(p);
    bp_release(p);
}

static void environment_variable_turns_checked_mode_on(void **state) {
    (void)state;
    char msg[512];
    int st = run_in_child(env_enables_checked, NULL, msg, sizeof msg);
    assert_child_aborted(st);
    assert_non_null(strstr(msg, "double release"));
}

static void correct_use_passes_checked_mode(void **state) {
    (void)state;
    bp_pool *pool = checked_pool();
    for (int round = 0; round < 3; round++) {
        uint8_t *v[50];
        for (size_t i = 0; i < 50; i++) {
            size_t len = 1 + i * 1000;
            v[i] = bp_get(pool, len);
            assert_non_null(v[i]);
            memset(v[i], 0x11, len); /* the whole requested length is writable */
            assert_ptr_equal(bp_retain(v[i]), v[i]);
            assert_int_equal(bp_release(v[i]), 0);
        }
        for (size_t i = 0; i < 50; i++)
            assert_int_equal(bp_put(pool, v[i]), 0);
    }
    /* refusals that name no live buffer still return errors in checked mode */
    int x;
    assert_int_equal(bp_put(pool, &x), EINVAL);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.total_get, 150);
    assert_int_equal(st.total_put, 150);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(use_after_release_aborts_with_a_message),
        cmocka_unit_test(overrun_past_the_capacity_aborts),
        cmocka_unit_test(strict_len_aborts_past_the_requested_length),
        cmocka_unit_test(checked_strict_in_the_environment_checks_the_length),
        cmocka_unit_test(whole_capacity_is_usable_and_end_pointers_are_refused),
        cmocka_unit_test(double_release_aborts_naming_the_buffer),
        cmocka_unit_test(environment_variable_turns_checked_mode_on),
        cmocka_unit_test(correct_use_passes_checked_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
