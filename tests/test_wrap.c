/* SPDX-License-Identifier: MIT */
/* test_wrap.c - bp_wrap: memory the library does not own, refcounted as a
 * pool buffer is (retain, release, counts, capacity, base, interior
 * pointers), freed once through free_fn on the thread of the final
 * release, under threads too; overlapping wraps and pool memory refused. */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct freed {
    _Atomic int calls;
    void *mem;
    void *ctx;
    pthread_t thread;
} freed;

static void record(void *mem, void *ctx) {
    freed *f = ctx;
    f->mem = mem;
    f->ctx = ctx;
    f->thread = pthread_self();
    atomic_fetch_add(&f->calls, 1);
}

static void on_free(void *mem, void *ctx) {
    record(mem, ctx);
    free(mem);
}

/* A free_fn that frees nothing: for ranges inside another block. */
static void count_only(void *mem, void *ctx) {
    (void)mem;
    atomic_fetch_add(&((freed *)ctx)->calls, 1);
}

static void a_wrapped_block_counts_like_a_buffer(void **state) {
    (void)state;
    freed f = {0};
    char *mem = malloc(1000);
    assert_ptr_equal(bp_wrap(mem + 3, 997, record, &f), mem + 3); /* any alignment */
    char *p = mem + 3;
    assert_int_equal(bp_refcount(p), 1);
    assert_int_equal(bp_cap(p), 997);
    assert_int_equal(bp_cap(p + 900), 97); /* from there to the end, as for pool buffers */
    assert_ptr_equal(bp_base(p + 500), p); /* interior pointers find the start */
    assert_ptr_equal(bp_retain(p + 10), p + 10);
    assert_ptr_equal(bp_retain_n(p, 3), p);
    assert_int_equal(bp_refcount(p + 996), 5);
    assert_int_equal(bp_release(p + 7), 0);
    assert_int_equal(bp_release_n(p, 5), EINVAL); /* more than it holds: nothing changes */
    assert_int_equal(bp_refcount(p), 4);
    assert_int_equal(bp_release_n(p, 3), 0);
    assert_int_equal(atomic_load(&f.calls), 0);
    assert_int_equal(bp_release(p + 996), 0); /* the last reference */
    assert_int_equal(atomic_load(&f.calls), 1);
    assert_ptr_equal(f.mem, p);
    assert_ptr_equal(f.ctx, &f);
    assert_true(pthread_equal(f.thread, pthread_self()));
    free(mem);
}

static void refusals_and_neighbours(void **state) {
    (void)state;
    freed f = {0}, g = {0};
    char *mem = malloc(256);
    assert_null(bp_wrap(NULL, 10, on_free, &f));
    assert_int_equal(errno, EINVAL);
    assert_null(bp_wrap(mem, 0, on_free, &f));
    assert_int_equal(errno, EINVAL);
    assert_null(bp_wrap(mem, 10, NULL, &f));
    assert_int_equal(errno, EINVAL);
    /* two ranges on one page, back to back: both fine */
    assert_non_null(bp_wrap(mem, 100, on_free, &f));
    assert_non_null(bp_wrap(mem + 100, 100, count_only, &g));
    assert_null(bp_wrap(mem + 50, 10, on_free, &f)); /* inside the first */
    assert_int_equal(errno, EEXIST);
    assert_null(bp_wrap(mem + 150, 100, on_free, &f)); /* over the end of the second */
    assert_int_equal(errno, EEXIST);
    assert_int_equal(bp_refcount(mem + 99), 1);
    assert_int_equal(bp_refcount(mem + 100), 1);
    assert_int_equal(bp_refcount(mem + 200), 0); /* not wrapped */
    assert_int_equal(bp_release(mem + 200), EINVAL);
    bp_pool *pool = bp_pool_new(NULL);
    void *buf = bp_get(pool, 5000);
    assert_null(bp_wrap(buf, 100, on_free, &f)); /* pool memory */
    assert_int_equal(errno, EINVAL);
    assert_null(bp_wrap((char *)buf - 64, 1 << 21, on_free, &f)); /* a range over it */
    assert_int_equal(errno, EINVAL);
    assert_int_equal(bp_put(pool, mem), EINVAL); /* no pool owns a wrapped buffer */
    bp_put(pool, buf);
    bp_pool_destroy(pool);
    assert_int_equal(bp_release(mem + 100), 0); /* the second goes; the first stays */
    assert_int_equal(atomic_load(&g.calls), 1);
    assert_int_equal(bp_refcount(mem), 1);
    assert_int_equal(bp_release(mem + 100), EINVAL); /* no buffer there any more */
    assert_int_equal(bp_release(mem), 0);            /* on_free frees the malloc block */
    assert_int_equal(atomic_load(&f.calls), 1);
}

typedef struct handoff {
    char *p;
    pthread_barrier_t *go;
} handoff;

static void *drop_one(void *arg) {
    handoff *h = arg;
    pthread_barrier_wait(h->go);
    bp_release(h->p + 5);
    return NULL;
}

static void free_fn_runs_once_under_threads(void **state) {
    (void)state;
    enum { T = 4, ROUNDS = 300 };
    static char block[64];
    freed f = {0};
    for (int r = 0; r < ROUNDS; r++) {
        assert_non_null(bp_wrap(block, sizeof block, count_only, &f));
        assert_ptr_equal(bp_retain_n(block, T - 1), block);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, T);
        pthread_t t[T];
        handoff h = {block, &go};
        for (int i = 0; i < T; i++)
            pthread_create(&t[i], NULL, drop_one, &h);
        for (int i = 0; i < T; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&go);
        assert_int_equal(atomic_load(&f.calls), r + 1);
        assert_int_equal(bp_refcount(block), 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_wrapped_block_counts_like_a_buffer),
        cmocka_unit_test(refusals_and_neighbours),
        cmocka_unit_test(free_fn_runs_once_under_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
