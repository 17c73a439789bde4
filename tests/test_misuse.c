/* SPDX-License-Identifier: MIT */
/* test_misuse.c - every refused input: the errno value, nothing changed,
 * counted in the stats, reported to the callback. */
#include "helpers.h"

typedef struct seen {
    int calls, err;
    const char *op;
    const void *ptr;
} seen;

static void on_error(void *ctx, int err, const char *op, const void *ptr) {
    seen *s = ctx;
    s->calls++;
    s->err = err;
    s->op = op;
    s->ptr = ptr;
}

static bp_pool *pool_with_callback(seen *s) {
    bp_config cfg = {0};
    cfg.on_error = on_error;
    cfg.error_ctx = s;
    return bp_pool_new(&cfg);
}

static uint64_t refused(bp_pool *pool) {
    bp_stats st;
    bp_pool_stats(pool, &st);
    return st.refused;
}

static void get_zero_and_null_pool_are_einval(void **state) {
    (void)state;
    seen s = {0};
    bp_pool *pool = pool_with_callback(&s);
    errno = 0;
    assert_null(bp_get(pool, 0));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.op, "bp_get");
    errno = 0;
    assert_null(bp_get(NULL, 10));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(refused(pool), 1);
    bp_pool_destroy(pool);
}

static void null_foreign_and_stack_pointers_are_einval(void **state) {
    (void)state;
    seen s = {0};
    bp_pool *pool = pool_with_callback(&s);
    char stack[64];
    char *heap = malloc(64);
    void *bad[] = {NULL, stack, heap, (void *)(uintptr_t)0x10, (void *)~(uintptr_t)0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(bp_put(pool, bad[i]), EINVAL);
        assert_ptr_equal(s.ptr, bad[i]);
        assert_int_equal(s.err, EINVAL);
        assert_int_equal(bp_release(bad[i]), EINVAL);
        errno = 0;
        assert_null(bp_retain(bad[i]));
        assert_int_equal(errno, EINVAL);
        assert_int_equal(bp_refcount(bad[i]), 0);
        assert_int_equal(bp_cap(bad[i]), 0);
    }
    assert_int_equal(s.calls, 5); /* only the bp_put calls name this pool */
    assert_int_equal(refused(pool), 5);
    free(heap);
    bp_pool_destroy(pool);
}

static int unowned_calls;
static void on_unowned(void *ctx, int err, const char *op, const void *ptr) {
    (void)ctx;
    (void)ptr;
    assert_int_equal(err, EINVAL);
    assert_string_equal(op, "bp_release");
    unowned_calls++;
}

static void unowned_refusals_go_to_the_global_handler(void **state) {
    (void)state;
    uint64_t before = bp_refused_unowned();
    int x;
    assert_null(bp_set_error_handler(on_unowned, NULL));
    assert_int_equal(bp_release(&x), EINVAL);
    assert_ptr_equal(bp_set_error_handler(NULL, NULL), on_unowned);
    assert_int_equal(unowned_calls, 1);
    assert_int_equal(bp_refused_unowned(), before + 1);
}

static void double_release_is_ealready_and_harmless(void **state) {
    (void)state;
    seen s = {0};
    bp_pool *pool = pool_with_callback(&s);
    uint8_t *p = bp_get(pool, 256);
    assert_int_equal(bp_put(pool, p), 0);
    assert_int_equal(bp_put(pool, p), EALREADY);
    assert_int_equal(s.err, EALREADY);
    assert_int_equal(bp_release(p + 10), EALREADY);
    errno = 0;
    assert_null(bp_retain(p));
    assert_int_equal(errno, EALREADY);
    assert_int_equal(refused(pool), 3);
    /* the pool did not take the buffer twice: two gets give two buffers */
    void *a = bp_get(pool, 256), *b = bp_get(pool, 256);
    assert_ptr_not_equal(a, b);
    bp_put(pool, a);
    bp_put(pool, b);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.total_get, 3);
    assert_int_equal(st.total_put, 3);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void double_release_of_oversize_is_ealready(void **state) {
    (void)state;
    seen s = {0};
    bp_pool *pool = pool_with_callback(&s);
    uint8_t *big = bp_get(pool, 5u << 20); /* its own mapping, unmapped at release */
    assert_int_equal(bp_release(big + 4096), 0);
    assert_int_equal(bp_put(pool, big), EALREADY);
    assert_int_equal(s.err, EALREADY);
    assert_int_equal(bp_release(big + 100), EALREADY);
    errno = 0;
    assert_null(bp_retain(big));
    assert_int_equal(errno, EALREADY);
    assert_int_equal(bp_refcount(big), 0);
    assert_int_equal(bp_cap(big), 0);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.discarded, 2);
    assert_int_equal(st.outstanding, 0);
    bp_pool_destroy(pool);
}

static void release_past_zero_with_retains_is_refused(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    void *p = bp_get(pool, 64);
    bp_retain(p);
    assert_int_equal(bp_release(p), 0);
    assert_int_equal(bp_release(p), 0);
    assert_int_equal(bp_release(p), EALREADY);
    assert_int_equal(bp_refcount(p), 0);
    bp_pool_destroy(pool);
}

static void put_into_the_wrong_pool_is_einval_and_untouched(void **state) {
    (void)state;
    seen s = {0};
    bp_pool *a = bp_pool_new(NULL);
    bp_pool *b = pool_with_callback(&s);
    uint8_t *p = bp_get(a, 1000);
    memset(p, 7, 1000);
    assert_int_equal(bp_put(b, p), EINVAL);
    assert_int_equal(s.calls, 1);
    assert_int_equal(refused(b), 1);
    assert_int_equal(refused(a), 0);
    assert_int_equal(bp_refcount(p), 1);
    assert_int_equal(p[999], 7);
    assert_int_equal(bp_put(a, p), 0);
    assert_int_equal(bp_put(NULL, p), EINVAL);
    assert_int_equal(bp_pool_destroy(a), 0);
    assert_int_equal(bp_pool_destroy(b), 0);
}

static void padding_and_header_pointers_are_einval(void **state) {
    (void)state;
    const size_t sizes[] = {100};
    bp_pool *pool = new_pool_sizes(sizes, 1);
    uint8_t *p = bp_get(pool, 100);
    assert_int_equal(bp_retain(p + 100) == NULL, 1); /* padding up to the 128 stride */
    assert_int_equal(bp_release(p + 120), EINVAL);
    uint8_t *hdr = (uint8_t *)((uintptr_t)p & ~(uintptr_t)((1u << 20) - 1));
    assert_int_equal(bp_release(hdr), EINVAL);
    assert_int_equal(bp_refcount(p), 1);
    assert_int_equal(bp_put(pool, p), 0);
    bp_pool_destroy(pool);
}

static void bad_arguments_elsewhere(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    assert_int_equal(bp_pool_stats(NULL, NULL), EINVAL);
    assert_int_equal(bp_pool_stats(pool, NULL), EINVAL);
    assert_int_equal(bp_pool_reserve(NULL, 10, 1), EINVAL);
    assert_int_equal(bp_pool_reserve(pool, 0, 1), EINVAL);
    assert_int_equal(bp_pool_reserve(pool, (4u << 20), 1), EINVAL);
    errno = 0;
    assert_null(bp_pool_stats_json(NULL));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(bp_pool_recent_lengths(NULL, NULL, 5), 0);
    assert_int_equal(bp_pool_discarded(NULL), 0);
    assert_int_equal(bp_pool_trim(NULL), 0);
    assert_int_equal(bp_pool_destroy(NULL), 0);
    bp_pool_destroy(pool);
}

/* Refusals that used to be silent: each is counted and reported. */
static void every_refused_call_is_counted_and_reported(void **state) {
    (void)state;
    seen s = {0};
    bp_pool *pool = pool_with_callback(&s);
    bp_advice adv;
    (void)adv;
    assert_int_equal(bp_pool_reserve(pool, 0, 1), EINVAL);
    assert_int_equal(bp_pool_reserve(pool, (2u << 20) + 1, 1), EINVAL);
    assert_int_equal(bp_pool_advice(pool, 0, NULL), EINVAL);
    assert_int_equal(bp_expvar_publish(pool, NULL), EINVAL);
    assert_int_equal(bp_expvar_publish(pool, "bad\xff"), EINVAL); /* not UTF-8 */
    assert_int_equal(s.calls, 5);
    assert_int_equal(refused(pool), 5);
    assert_string_equal(s.op, "bp_expvar_publish");
    bp_pool_destroy(pool);
}

/* bp_put's pool handle is the caller's: when it is no pool at all, the
 * refusal writes nothing into that memory and calls nothing read from it. */
static void a_pool_handle_that_is_no_pool_is_not_written(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    void *p = bp_get(pool, 100);
    unsigned char *fake = malloc(8192), copy[8192];
    memset(fake, 0xab, 8192); /* a "function pointer" of 0xabab... if read */
    memcpy(copy, fake, 8192);
    uint64_t before = bp_refused_unowned();
    assert_int_equal(bp_put((bp_pool *)fake, p), EINVAL);
    int x;
    assert_int_equal(bp_put((bp_pool *)fake, &x), EINVAL);
    assert_memory_equal(fake, copy, 8192);
    assert_int_equal(bp_refused_unowned(), before + 2);
    assert_int_equal(bp_refcount(p), 1); /* untouched */
    free(fake);
    assert_int_equal(bp_put(pool, p), 0);
    bp_pool_destroy(pool);
}

/* Errors name themselves: a double release is reported as one. */
static void a_double_release_is_named_double_release(void **state) {
    (void)state;
    seen s = {0};
    bp_pool *pool = pool_with_callback(&s);
    void *p = bp_get(pool, 100);
    bp_put(pool, p);
    assert_int_equal(bp_release(p), EALREADY);
    assert_non_null(strstr(bp_error_name(s.err, s.op), "double release"));
    assert_int_equal(bp_put(pool, p), EALREADY);
    assert_non_null(strstr(bp_error_name(s.err, s.op), "double release"));
    assert_null(bp_retain(p));
    assert_null(strstr(bp_error_name(s.err, s.op), "double release"));
    assert_non_null(strstr(bp_error_name(ENOMEM, "bp_get"), "budget"));
    assert_non_null(bp_error_name(12345, NULL));
    bp_pool_destroy(pool);
}

/* bp_release_n of more than the count says so, in on_error and in words;
 * EALREADY's words name the end-pointer case too. */
static void refusals_say_what_is_wrong(void **state) {
    (void)state;
    seen s = {0};
    bp_pool *pool = pool_with_callback(&s);
    uint8_t *p = bp_get(pool, 4096);
    assert_int_equal(bp_release_n(p, 2), EINVAL);
    assert_int_equal(bp_refcount(p), 1);
    assert_string_equal(s.op, BP_OP_RELEASE_N_COUNT);
    assert_non_null(strstr(bp_error_name(s.err, s.op), "n exceeds the buffer's reference count"));
    int local;
    assert_int_equal(bp_release_n(&local, 1), EINVAL); /* a foreign pointer is not a count */
    assert_null(strstr(bp_error_name(EINVAL, "bp_release_n"), "exceeds"));
    assert_non_null(strstr(bp_error_name(EINVAL, "bp_release_n"), "not a pointer into a live"));
    assert_non_null(strstr(bp_error_name(EALREADY, "bp_release"), "one past the end"));
    assert_non_null(strstr(bp_error_name(EALREADY, "bp_retain"), "one past the end"));
    assert_int_equal(bp_put(pool, p), 0);
    bp_pool_destroy(pool);
}

/* bp_pool_stats_sized with a struct below the 0.2 layout: refused, counted
 * and reported, like bp_pool_advice_sized. */
static void stats_refusals_are_counted_and_reported(void **state) {
    (void)state;
    seen s = {0};
    bp_pool *pool = pool_with_callback(&s);
    uint64_t before = refused(pool);
    bp_stats st;
    assert_int_equal(bp_pool_stats_sized(pool, &st, 16), EINVAL);
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.op, "bp_pool_stats");
    assert_int_equal(bp_pool_stats_sized(pool, NULL, sizeof st), EINVAL);
    assert_int_equal(s.calls, 2);
    assert_int_equal(refused(pool), before + 2);
    bp_pool_destroy(pool);
}

static char cfg_text[200];
static _Atomic int cfg_calls;
static void on_config(void *ctx, int err, const char *op, const void *ptr) {
    (void)ctx;
    if (err && op && !strcmp(op, "bp_pool_new") && ptr)
        snprintf(cfg_text, sizeof cfg_text, "%s", (const char *)ptr);
    cfg_calls++;
}

/* Each bad config is refused with words naming the field and the reason,
 * through bp_config_error() and the process-wide handler. */
static void bad_configs_are_named(void **state) {
    (void)state;
    bp_error_fn old = bp_set_error_handler(on_config, NULL);
    static const size_t dup[] = {512, 4096, 1024, 512}, zero[] = {64, 0},
                        huge[] = {(size_t)2 << 30};
    static const bp_recorder half = {NULL, NULL, NULL};
    struct {
        bp_config cfg;
        const char *words;
    } cases[] = {
        {{.sizes = dup, .nsizes = 4}, "sizes[3] duplicates sizes[0]"},
        {{.sizes = zero, .nsizes = 2}, "sizes[1] is 0"},
        {{.sizes = huge, .nsizes = 1}, "sizes[0] (2147483648) exceeds BP_MAX_TIER_SIZE"},
        {{.sizes = NULL, .nsizes = 3}, "sizes is NULL but nsizes is 3"},
        {{.sizes = dup, .nsizes = 0}, "sizes is set but nsizes is 0"},
        {{.sizes = dup, .nsizes = 65}, "nsizes 65 exceeds BP_MAX_TIERS"},
        {{.flags = 0x40}, "unknown flag 0x40"},
        {{.recent_window = (1u << 24) + 1}, "recent_window 16777217 exceeds"},
        {{.leaks = (bp_leaks)9}, "leaks 9 is not a bp_leaks value"},
        {{.recorder_kind = (bp_ring_kind)7}, "recorder_kind 7 is not"},
        {{.recorder = &half}, "recorder has no push function"},
        {{.max_bytes = 4096}, "max_bytes 4096 is below one segment"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int calls = cfg_calls;
        errno = 0;
        assert_null(bp_pool_new(&cases[i].cfg));
        assert_int_equal(errno, EINVAL);
        print_message("%s\n", bp_config_error());
        assert_non_null(strstr(bp_config_error(), cases[i].words));
        assert_int_equal(cfg_calls, calls + 1);
        assert_string_equal(cfg_text, bp_config_error());
    }
    bp_config big[2];
    memset(big, 0, sizeof big);
    ((unsigned char *)big)[sizeof(bp_config) + 3] = 1; /* a field from a newer header */
    assert_null(bp_pool_new_sized(big, sizeof big));
    assert_int_equal(errno, E2BIG);
    assert_non_null(strstr(bp_config_error(), "newer header"));
    bp_pool *ok = bp_pool_new(NULL);
    assert_null(bp_config_error()); /* a good config clears the thread's message */
    bp_pool_destroy(ok);
    bp_set_error_handler(old, NULL);
}

/* bp_grow refuses, and changes nothing: a shared or watched buffer
 * (EBUSY), an interior pointer (EINVAL as BP_OP_GROW_INTERIOR), another
 * pool's buffer and bad arguments (EINVAL), a free buffer (EALREADY). */
static void w_fn(bp_watcher *w, void *buf) {
    (void)w;
    (void)buf;
}

static void grow_refusals_change_nothing(void **state) {
    (void)state;
    seen s = {0};
    bp_pool *pool = pool_with_callback(&s);
    bp_pool *other = bp_pool_new(NULL);
    unsigned char *p = bp_get(pool, 100);
    memset(p, 3, bp_cap(p));
    bp_retain(p);
    assert_null(bp_grow(pool, p, 10000));
    assert_int_equal(errno, EBUSY);
    assert_int_equal(s.err, EBUSY);
    assert_string_equal(s.op, "bp_grow");
    assert_int_equal(bp_refcount(p), 2);
    assert_string_equal(bp_error_name(EBUSY, "bp_grow"),
                        "others hold references to the buffer: moving it would leave their "
                        "pointers dangling");
    bp_watcher w = {w_fn};
    assert_int_equal(bp_watch(p, &w), 0); /* the watcher's reference is the second */
    assert_null(bp_grow(pool, p, 10000));
    assert_int_equal(errno, EBUSY);
    assert_int_equal(bp_unwatch(p), 0);
    assert_int_equal(bp_release(p), 0);
    assert_null(bp_grow(pool, p + 1, 10000));
    assert_int_equal(errno, EINVAL);
    assert_string_equal(s.op, BP_OP_GROW_INTERIOR);
    void *o = bp_get(other, 100);
    assert_null(bp_grow(pool, o, 10000));
    assert_int_equal(errno, EINVAL);
    assert_null(bp_grow(pool, p, 0));
    assert_int_equal(errno, EINVAL);
    assert_null(bp_grow(NULL, p, 10000));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(bp_refcount(p), 1);
    assert_int_equal(p[bp_cap(p) - 1], 3);
    uint64_t before = refused(pool);
    assert_int_equal(bp_put(pool, p), 0);
    assert_null(bp_grow(pool, p, 10000));
    assert_int_equal(errno, EALREADY);
    assert_int_equal(refused(pool), before + 1);
    bp_put(other, o);
    bp_pool_destroy(other);
    bp_pool_destroy(pool);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grow_refusals_change_nothing),
        cmocka_unit_test(every_refused_call_is_counted_and_reported),
        cmocka_unit_test(a_pool_handle_that_is_no_pool_is_not_written),
        cmocka_unit_test(a_double_release_is_named_double_release),
        cmocka_unit_test(refusals_say_what_is_wrong),
        cmocka_unit_test(stats_refusals_are_counted_and_reported),
        cmocka_unit_test(bad_configs_are_named),
        cmocka_unit_test(get_zero_and_null_pool_are_einval),
        cmocka_unit_test(null_foreign_and_stack_pointers_are_einval),
        cmocka_unit_test(unowned_refusals_go_to_the_global_handler),
        cmocka_unit_test(double_release_is_ealready_and_harmless),
        cmocka_unit_test(double_release_of_oversize_is_ealready),
        cmocka_unit_test(release_past_zero_with_retains_is_refused),
        cmocka_unit_test(put_into_the_wrong_pool_is_einval_and_untouched),
        cmocka_unit_test(padding_and_header_pointers_are_einval),
        cmocka_unit_test(bad_arguments_elsewhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
