/* SPDX-License-Identifier: MIT */
/* test_fork.c - a forked child gets a working pool, including buffers that
 * sat in the caches of threads that did not follow it. */
#include "helpers.h"

#include <pthread.h>

static bp_pool *pool;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int phase;

static void *cache_holder(void *arg) {
    (void)arg;
    for (int i = 0; i < 40; i++) /* leaves buffers in this thread's cache */
        bp_put(pool, bp_get(pool, 2000));
    pthread_mutex_lock(&mu);
    phase = 1;
    pthread_cond_broadcast(&cv);
    while (phase != 2)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void child_body(void *arg) {
    uint8_t *live = arg;
    int bad = 0;
    if (live[0] != 9 || bp_refcount(live) != 1)
        bad |= 1;
    for (int i = 0; i < 1000; i++) {
        uint8_t *p = bp_get(pool, 1 + (size_t)i * 37);
        if (!p)
            bad |= 2;
        else {
            p[0] = 1;
            if (bp_put(pool, p) != 0)
                bad |= 4;
        }
    }
    if (bp_release(live) != 0)
        bad |= 8;
    bp_stats st;
    bp_pool_stats(pool, &st);
    if (st.total_get != st.total_put || st.outstanding != 0)
        bad |= 16;
    if (bp_pool_destroy(pool) != 0)
        bad |= 32;
    _exit(bad);
}

static void child_after_fork_uses_and_destroys_the_pool(void **state) {
    (void)state;
    pool = bp_pool_new(NULL);
    pthread_t th;
    pthread_create(&th, NULL, cache_holder, NULL);
    pthread_mutex_lock(&mu);
    while (phase != 1)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    uint8_t *live = bp_get(pool, 500);
    live[0] = 9;
    char msg[256];
    int status = run_in_child(child_body, live, msg, sizeof msg);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* the parent is unaffected */
    assert_int_equal(bp_refcount(live), 1);
    assert_int_equal(bp_put(pool, live), 0);
    pthread_mutex_lock(&mu);
    phase = 2;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(th, NULL);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.total_get, 41);
    assert_int_equal(st.total_put, 41);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* fork() while another thread is inside a library lock: the child must
 * find every lock free (alarm: a deadlocked child is killed, and fails). */
static _Atomic int spin_stop;
static void *export_spinner(void *arg) {
    (void)arg;
    while (!spin_stop) {
        free(bp_expvar_json());
        free(bp_prometheus_all());
    }
    return NULL;
}

static void *checked_spinner(void *arg) {
    bp_pool *p = arg; /* checked: every call takes the pool lock, no cache */
    while (!spin_stop)
        bp_put(p, bp_get(p, 100));
    return NULL;
}

static bp_pool *unpublished;

/* Each call takes one of the locks the parent's threads were holding. The
 * first ones allocate nothing: the sanitizers' allocator (GCC 12) is not
 * fork-safe itself, so a child that mallocs can hang in it whatever the
 * library does; the exports, which allocate, run in the normal build. */
static void child_uses_everything(void *arg) {
    bp_pool *p = arg;
    alarm(10);
    int x, bad = 0;
    bad |= bp_expvar_unpublish(unpublished) != ENOENT; /* the expvar lock */
    bad |= bp_put((bp_pool *)&x, &x) != EINVAL;        /* the pool registry */
    void *b = bp_get(p, 100);                          /* the checked pool's lock */
    bad |= !b || bp_put(p, b) != 0;
#if !defined(BP_SANITIZED)
    free(bp_expvar_json());
    free(bp_prometheus_all());
#endif
    _exit(bad);
}

static void fork_during_exports_and_checked_calls_does_not_deadlock(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.flags = BP_CHECKED;
    bp_pool *checked = bp_pool_new(&cfg);
    bp_pool *pub = bp_pool_new(NULL);
    unpublished = bp_pool_new(NULL);
    assert_int_equal(bp_expvar_publish(pub, "fork_"), 0);
    spin_stop = 0;
    pthread_t a, b;
    pthread_create(&a, NULL, export_spinner, NULL);
    pthread_create(&b, NULL, checked_spinner, checked);
    for (int i = 0; i < 30; i++) {
        char msg[256];
        int st = run_in_child(child_uses_everything, checked, msg, sizeof msg);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    spin_stop = 1;
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_int_equal(bp_pool_destroy(checked), 0);
    assert_int_equal(bp_pool_destroy(pub), 0);
    assert_int_equal(bp_pool_destroy(unpublished), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fork_during_exports_and_checked_calls_does_not_deadlock),
        cmocka_unit_test(child_after_fork_uses_and_destroys_the_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
