/* SPDX-License-Identifier: MIT */
/* test_objpool.c - the seed's Pool[T]: init once, reset on put, reuse,
 * statistics, refusals, destroy with objects out, threads. */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct conn {
    int fd;
    char *scratch; /* set up once by init */
    int inits;
    int uses;
} conn;

static _Atomic int init_calls, reset_calls; /* callbacks run on many threads */

static void conn_init(void *obj, void *arg) {
    conn *c = obj;
    c->fd = -1;
    c->scratch = arg;
    c->inits++;
    init_calls++;
}

static void conn_reset(void *obj, void *arg) {
    (void)arg;
    conn *c = obj;
    c->fd = -1;
    reset_calls++;
}

static bp_objpool *new_conn_pool(void) {
    static char scratch[16];
    bp_objpool_config cfg = {sizeof(conn), conn_init, conn_reset, scratch, 0};
    return bp_objpool_new(&cfg);
}

static void init_once_reset_on_every_put(void **state) {
    (void)state;
    init_calls = reset_calls = 0;
    bp_objpool *op = new_conn_pool();
    conn *a = bp_objpool_get(op);
    assert_non_null(a);
    assert_int_equal(a->fd, -1);
    assert_non_null(a->scratch);
    assert_int_equal((uintptr_t)a % 64, 0);
    a->fd = 42;
    a->uses++;
    assert_int_equal(bp_objpool_put(op, a), 0);
    assert_int_equal(reset_calls, 1);
    conn *b = bp_objpool_get(op);
    assert_ptr_equal(a, b); /* reused, not re-initialised */
    assert_int_equal(b->fd, -1);
    assert_int_equal(b->inits, 1);
    assert_int_equal(b->uses, 1);
    bp_objpool_put(op, b);
    bp_obj_stats st;
    assert_int_equal(bp_objpool_stats(op, &st), 0);
    assert_int_equal(st.get, 2);
    assert_int_equal(st.put, 2);
    assert_int_equal(st.live, 0);
    assert_true(st.hits >= 1);
    assert_int_equal(st.created, (uint64_t)init_calls);
    assert_int_equal(bp_objpool_destroy(op), 0);
}

static void bad_puts_are_refused_without_reset(void **state) {
    (void)state;
    bp_objpool *op = new_conn_pool();
    bp_objpool *other = new_conn_pool();
    conn *a = bp_objpool_get(op);
    reset_calls = 0;
    int x;
    assert_int_equal(bp_objpool_put(op, NULL), EINVAL);
    assert_int_equal(bp_objpool_put(op, &x), EINVAL);
    assert_int_equal(bp_objpool_put(other, a), EINVAL);
    assert_int_equal(bp_objpool_put(op, (char *)a + 8), EINVAL);
    assert_int_equal(bp_objpool_put(NULL, a), EINVAL);
    assert_int_equal(reset_calls, 0);
    assert_int_equal(bp_objpool_put(op, a), 0);
    assert_int_equal(bp_objpool_put(op, a), EALREADY);
    assert_int_equal(reset_calls, 1);
    bp_obj_stats st;
    bp_objpool_stats(op, &st);
    assert_int_equal(st.refused, 4); /* the NULL-pool call names no pool */
    assert_null(bp_objpool_get(NULL));
    bp_objpool_config bad = {0};
    errno = 0;
    assert_null(bp_objpool_new(&bad));
    assert_int_equal(errno, EINVAL);
    assert_null(bp_objpool_new(NULL));
    bp_objpool_destroy(op);
    bp_objpool_destroy(other);
}

static void destroy_reports_objects_still_out(void **state) {
    (void)state;
    bp_objpool *op = new_conn_pool();
    conn *a = bp_objpool_get(op);
    conn *b = bp_objpool_get(op);
    bp_objpool_put(op, b);
    assert_int_equal(bp_objpool_destroy(op), 1);
    a->fd = 7;                          /* still valid */
    assert_int_equal(bp_release(a), 0); /* and still a refcounted buffer */
}

static bp_objpool *shared;
static void *churn(void *arg) {
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        conn *c = bp_objpool_get(shared);
        if (c->fd != -1)
            return (void *)1;
        c->fd = i;
        bp_objpool_put(shared, c);
    }
    return NULL;
}

static void threads_share_an_object_pool(void **state) {
    (void)state;
    shared = new_conn_pool();
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, churn, NULL);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    bp_obj_stats st;
    bp_objpool_stats(shared, &st);
    assert_int_equal(st.get, 80000);
    assert_int_equal(st.put, 80000);
    assert_true(st.created <= 4 * 64 + 64);
    assert_int_equal(bp_objpool_destroy(shared), 0);
}

static _Atomic int lazy_inits;
static void count_init(void *obj, void *arg) {
    (void)arg;
    memset(obj, 0x42, 64);
    lazy_inits++;
}

/* init runs once per object when it is first handed out, not for a whole
 * carved batch at once. */
static void init_runs_on_demand(void **state) {
    (void)state;
    lazy_inits = 0;
    bp_objpool_config cfg = {64, count_init, NULL, NULL, 0};
    bp_objpool *op = bp_objpool_new(&cfg);
    unsigned char *a = bp_objpool_get(op);
    assert_int_equal(lazy_inits, 1);
    assert_int_equal(a[63], 0x42);
    bp_obj_stats st;
    bp_objpool_stats(op, &st);
    assert_int_equal(st.created, 1);
    assert_int_equal(bp_objpool_put(op, a), 0);
    assert_ptr_equal(bp_objpool_get(op), a); /* reused: no second init */
    assert_int_equal(lazy_inits, 1);
    void *b = bp_objpool_get(op);
    assert_int_equal(lazy_inits, 2);
    bp_objpool_put(op, a);
    bp_objpool_put(op, b);
    assert_int_equal(bp_objpool_destroy(op), 0);
}

/* Objects still out at destroy may be put back: reset runs, the last put
 * frees the pool (ASan would report a use after free). */
static void put_after_destroy_works(void **state) {
    (void)state;
    init_calls = reset_calls = 0;
    bp_objpool *op = new_conn_pool();
    conn *a = bp_objpool_get(op), *b = bp_objpool_get(op);
    assert_int_equal(bp_objpool_destroy(op), 2);
    a->fd = 7;
    assert_int_equal(bp_objpool_put(op, a), 0);
    assert_int_equal(reset_calls, 1);
    assert_int_equal(bp_objpool_put(op, b), 0); /* the last: the pool goes */
    assert_int_equal(reset_calls, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_runs_on_demand),
        cmocka_unit_test(put_after_destroy_works),
        cmocka_unit_test(init_once_reset_on_every_put),
        cmocka_unit_test(bad_puts_are_refused_without_reset),
        cmocka_unit_test(destroy_reports_objects_still_out),
        cmocka_unit_test(threads_share_an_object_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
