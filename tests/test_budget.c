/* SPDX-License-Identifier: MIT */
/* test_budget.c - max_bytes: nothing over the cap is ever mapped, a get at
 * the cap trims idle memory first, then fails ENOMEM (counted, reported),
 * and bp_get_wait sleeps until releases on other threads make room. */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

typedef struct seen {
    _Atomic int calls, err;
    const char *_Atomic op;
} seen;

static void on_error(void *ctx, int err, const char *op, const void *ptr) {
    (void)ptr;
    seen *s = ctx;
    s->calls++;
    s->err = err;
    s->op = op;
}

static bp_pool *budget_pool(size_t max, seen *s) {
    bp_config cfg = {0};
    cfg.max_bytes = max;
    cfg.on_error = on_error;
    cfg.error_ctx = s;
    return bp_pool_new(&cfg);
}

static uint64_t mapped(bp_pool *pool) {
    bp_stats st;
    bp_pool_stats(pool, &st);
    return st.bytes_mapped;
}

static void gets_fail_at_the_cap_and_are_counted(void **state) {
    (void)state;
    seen s = {0};
    bp_pool *pool = budget_pool(4u << 20, &s);
    void *v[64];
    size_t n = 0;
    while (n < 64 && (v[n] = bp_get(pool, 60000)) != NULL) {
        assert_true(mapped(pool) <= 4u << 20);
        n++;
    }
    assert_true(n > 0 && n < 64);
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.err, ENOMEM);
    assert_null(bp_get(pool, 8u << 20)); /* oversize counts too */
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.budget_refused, 2);
    assert_int_equal(st.max_bytes, 4u << 20);
    assert_int_equal(st.refused, 0); /* not bad input */
    assert_true(st.bytes_mapped <= 4u << 20);
    char *prom = bp_pool_stats_prometheus(pool, "b");
    assert_non_null(strstr(prom, "bytepool_budget_bytes{pool=\"b\"} 4194304"));
    assert_non_null(strstr(prom, "bytepool_budget_refused_total{pool=\"b\"} 2"));
    free(prom);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(bp_put(pool, v[i]), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* Free memory of another tier is unmapped to make room: idle memory goes
 * before a refusal. */
static void a_get_at_the_cap_trims_idle_memory_first(void **state) {
    (void)state;
    seen s = {0};
    bp_config cfg = {0};
    cfg.max_bytes = 5u << 20;
    cfg.tcache_bytes = 1; /* no thread bins: free buffers wait in the hot slots */
    cfg.on_error = on_error;
    cfg.error_ctx = &s;
    bp_pool *pool = bp_pool_new(&cfg);
    void *a = bp_get(pool, 100000), *b = bp_get(pool, 100000); /* a 2 MiB segment */
    void *big = bp_get(pool, 1u << 20);                        /* and another */
    assert_non_null(a);
    assert_non_null(big);
    bp_put(pool, a);
    bp_put(pool, b);
    bp_put(pool, big); /* all free, kept for reuse (idle_bytes) ... */
    assert_int_equal(mapped(pool), 4u << 20);
    void *c = bp_get(pool, 2000000); /* ... until a 3 MiB segment needs the room */
    assert_non_null(c);
    assert_int_equal(mapped(pool), 3u << 20);
    assert_int_equal(s.calls, 0);
    bp_put(pool, c);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

typedef struct waiter {
    bp_pool *pool;
    void *got;
    int err;
    _Atomic int *started;
} waiter;

static void *wait_body(void *arg) {
    waiter *w = arg;
    atomic_fetch_add(w->started, 1);
    w->got = bp_get_wait(w->pool, 60000, 10000);
    w->err = w->got ? 0 : errno;
    return NULL;
}

typedef struct peak {
    bp_pool *pool;
    _Atomic int stop;
    uint64_t max;
} peak;

static void *watch_body(void *arg) {
    peak *pk = arg;
    while (!atomic_load(&pk->stop)) {
        uint64_t m = mapped(pk->pool);
        pk->max = m > pk->max ? m : pk->max;
    }
    return NULL;
}

/* Threads blocked in bp_get_wait are woken by releases made on other
 * threads, each gets a buffer, and the cap holds throughout. */
static void waiters_are_woken_by_releases_on_other_threads(void **state) {
    (void)state;
    seen s = {0};
    const size_t cap = 2u << 20;
    bp_pool *pool = budget_pool(cap, &s);
    void *v[64];
    size_t n = 0;
    while (n < 64 && (v[n] = bp_get(pool, 60000)) != NULL)
        n++;
    assert_true(n >= 4);
    peak pk = {pool, 0, 0};
    pthread_t watcher;
    pthread_create(&watcher, NULL, watch_body, &pk);
    enum { W = 3 };
    _Atomic int started = 0;
    waiter w[W];
    pthread_t th[W];
    for (int i = 0; i < W; i++) {
        w[i] = (waiter){pool, NULL, -1, &started};
        pthread_create(&th[i], NULL, wait_body, &w[i]);
    }
    while (atomic_load(&started) < W)
        usleep(1000);
    usleep(100 * 1000); /* they are asleep in bp_get_wait now */
    for (int i = 0; i < W; i++)
        assert_null(w[i].got);
    for (int i = 0; i < W; i++) /* each release, on this thread, wakes one waiter */
        assert_int_equal(bp_release(v[--n]), 0);
    for (int i = 0; i < W; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].err, 0);
        assert_non_null(w[i].got);
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(w[i].got, w[j].got);
    }
    atomic_store(&pk.stop, 1);
    pthread_join(watcher, NULL);
    assert_true(pk.max <= cap);
    for (int i = 0; i < W; i++)
        bp_put(pool, w[i].got);
    while (n)
        bp_put(pool, v[--n]);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void get_wait_times_out_and_zero_does_not_wait(void **state) {
    (void)state;
    seen s = {0};
    bp_pool *pool = budget_pool(2u << 20, &s); /* one 1 MiB-tier segment */
    void *a = bp_get(pool, 700000);
    assert_non_null(a);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    errno = 0;
    assert_null(bp_get_wait(pool, 700000, 150));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(errno, ETIMEDOUT);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms >= 140);
    errno = 0;
    assert_null(bp_get_wait(pool, 700000, 0));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(bp_get_wait(NULL, 10, 100)); /* bad input is not waited on */
    assert_int_equal(errno, EINVAL);
    assert_null(bp_get_wait(pool, 0, 100));
    assert_int_equal(errno, EINVAL);
    bp_put(pool, a);
    void *b = bp_get_wait(pool, 700000, 0); /* room now */
    assert_non_null(b);
    bp_put(pool, b);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void budget_from_the_environment(void *arg) {
    (void)arg;
    setenv("BYTEPOOL_MAX_BYTES", "3M", 1);
    bp_pool *pool = bp_pool_new(NULL);
    bp_stats st;
    bp_pool_stats(pool, &st);
    void *big = bp_get(pool, 4u << 20);
    if (st.max_bytes != (3u << 20) || big != NULL || errno != ENOMEM)
        _exit(1);
    setenv("BYTEPOOL_MAX_BYTES", "1M", 1); /* below one segment: ignored, said on stderr */
    bp_pool *small = bp_pool_new(NULL);
    bp_pool_stats(small, &st);
    _exit(small && st.max_bytes == 0 ? 0 : 2);
}

static void max_bytes_comes_from_the_environment(void **state) {
    (void)state;
    char msg[256];
    int st = run_in_child(budget_from_the_environment, NULL, msg, sizeof msg);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_non_null(strstr(msg, "ignoring BYTEPOOL_MAX_BYTES=1048576"));
}

/* A timed-out or refused bp_get_wait is counted and reported once, as
 * bp_get_wait with the errno it returns; negative timeouts but -1 are
 * refused at once. */
static void get_wait_reports_once(void **state) {
    (void)state;
    seen s = {0};
    bp_pool *pool = budget_pool(2u << 20, &s);
    void *a = bp_get(pool, 700000);
    bp_stats st;
    bp_pool_stats(pool, &st);
    uint64_t before = st.budget_refused;
    assert_null(bp_get_wait(pool, 700000, 30));
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.err, ETIMEDOUT);
    assert_string_equal(s.op, "bp_get_wait");
    bp_pool_stats(pool, &st);
    assert_int_equal(st.budget_refused, before + 1);
    assert_null(bp_get_wait(pool, 700000, 0));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(s.calls, 2);
    assert_int_equal(s.err, ENOMEM);
    assert_string_equal(s.op, "bp_get_wait");
    uint64_t refused = st.refused;
    for (int t = -2; t >= -1000; t -= 499) {
        errno = 0;
        assert_null(bp_get_wait(pool, 700000, t));
        assert_int_equal(errno, EINVAL);
    }
    bp_pool_stats(pool, &st);
    assert_int_equal(st.refused, refused + 3);
    assert_int_equal(s.err, EINVAL);
    bp_put(pool, a);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static _Atomic int global_calls;
static char global_text[200];
static void global_handler(void *ctx, int err, const char *op, const void *ptr) {
    (void)ctx;
    if (err == EINVAL && !strcmp(op, "bp_pool_new") && ptr)
        snprintf(global_text, sizeof global_text, "%s", (const char *)ptr);
    global_calls++;
}

/* A budget below one segment of the smallest tier could never serve. */
static void a_budget_that_cannot_serve_is_refused(void **state) {
    (void)state;
    bp_error_fn old = bp_set_error_handler(global_handler, NULL);
    seen s = {0};
    errno = 0;
    assert_null(budget_pool(1u << 20, &s));
    assert_int_equal(errno, EINVAL);
    assert_non_null(bp_config_error());
    assert_non_null(strstr(bp_config_error(), "max_bytes 1048576 is below one segment"));
    assert_int_equal(global_calls, 1);
    assert_string_equal(global_text, bp_config_error());
    bp_pool *ok = budget_pool(2u << 20, &s); /* exactly one segment: serves */
    assert_non_null(ok);
    assert_null(bp_config_error());
    void *p = bp_get(ok, 100);
    assert_non_null(p);
    bp_put(ok, p);
    assert_int_equal(bp_pool_destroy(ok), 0);
    bp_set_error_handler(old, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gets_fail_at_the_cap_and_are_counted),
        cmocka_unit_test(a_get_at_the_cap_trims_idle_memory_first),
        cmocka_unit_test(waiters_are_woken_by_releases_on_other_threads),
        cmocka_unit_test(get_wait_times_out_and_zero_does_not_wait),
        cmocka_unit_test(max_bytes_comes_from_the_environment),
        cmocka_unit_test(get_wait_reports_once),
        cmocka_unit_test(a_budget_that_cannot_serve_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
