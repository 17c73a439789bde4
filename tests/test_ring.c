/* SPDX-License-Identifier: MIT */
/* test_ring.c - both ring kinds: order, overwrite, sizes, pop/peek, clear,
 * and concurrent pushes whose snapshots hold no torn or invented values. */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>

static const bp_ring_kind kinds[] = {BP_RING_LOCKFREE, BP_RING_LOCKED};

static void new_refuses_bad_arguments(void **state) {
    (void)state;
    errno = 0;
    assert_null(bp_ring_new(0, 8, BP_RING_LOCKFREE));
    assert_int_equal(errno, EINVAL);
    assert_null(bp_ring_new(4, 0, BP_RING_LOCKED));
    assert_null(bp_ring_new(4, 8, (bp_ring_kind)7));
    assert_null(bp_ring_new(4, 5000, BP_RING_LOCKED));
}

static void push_snapshot_overwrite_in_order(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) {
        bp_ring *r = bp_ring_new(5, sizeof(size_t), kinds[k]);
        assert_true(bp_ring_is_empty(r));
        assert_int_equal(bp_ring_cap(r), 5);
        for (size_t v = 1; v <= 3; v++)
            bp_ring_push_size(r, v);
        size_t out[10];
        assert_int_equal(bp_ring_snapshot_sizes(r, out, 10), 3);
        assert_int_equal(out[0], 1);
        assert_int_equal(out[2], 3);
        assert_int_equal(bp_ring_len(r), 3);
        assert_false(bp_ring_is_full(r));
        for (size_t v = 4; v <= 12; v++)
            bp_ring_push_size(r, v);
        assert_true(bp_ring_is_full(r));
        assert_int_equal(bp_ring_snapshot_sizes(r, out, 10), 5);
        for (size_t i = 0; i < 5; i++)
            assert_int_equal(out[i], 8 + i); /* the newest five, oldest first */
        assert_int_equal(bp_ring_snapshot_sizes(r, out, 2), 2);
        assert_int_equal(out[0], 11);
        assert_int_equal(out[1], 12);
        bp_ring_clear(r);
        assert_true(bp_ring_is_empty(r));
        assert_int_equal(bp_ring_snapshot_sizes(r, out, 10), 0);
        bp_ring_push_size(r, 99);
        assert_int_equal(bp_ring_snapshot_sizes(r, out, 10), 1);
        assert_int_equal(out[0], 99);
        bp_ring_free(r);
    }
}

static void odd_sized_elements_round_trip(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) {
        bp_ring *r = bp_ring_new(3, 13, kinds[k]);
        char in[4][13], out[3][13];
        for (int i = 0; i < 4; i++) {
            memset(in[i], 'a' + i, 13);
            bp_ring_push(r, in[i]);
        }
        assert_int_equal(bp_ring_snapshot(r, out, 3), 3);
        for (int i = 0; i < 3; i++)
            assert_memory_equal(out[i], in[i + 1], 13);
        bp_ring_free(r);
    }
}

static void pop_and_peek_only_on_the_locked_kind(void **state) {
    (void)state;
    bp_ring *lf = bp_ring_new(4, sizeof(size_t), BP_RING_LOCKFREE);
    size_t v;
    assert_int_equal(bp_ring_pop(lf, &v), ENOTSUP);
    assert_int_equal(bp_ring_peek(lf, &v), ENOTSUP);
    bp_ring_free(lf);
    bp_ring *r = bp_ring_new(3, sizeof(size_t), BP_RING_LOCKED);
    assert_int_equal(bp_ring_pop(r, &v), EAGAIN);
    assert_int_equal(bp_ring_peek(r, &v), EAGAIN);
    for (size_t i = 1; i <= 4; i++)
        bp_ring_push_size(r, i);
    assert_int_equal(bp_ring_peek(r, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(bp_ring_pop(r, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(bp_ring_len(r), 2);
    assert_int_equal(bp_ring_pop(r, NULL), 0);
    assert_int_equal(bp_ring_pop(r, &v), 0);
    assert_int_equal(v, 4);
    assert_true(bp_ring_is_empty(r));
    assert_int_equal(bp_ring_pop(NULL, &v), EINVAL);
    bp_ring_free(r);
}

/* Concurrent writers push self-checking records; readers verify every
 * snapshot: each record whole, and each writer's sequence increasing. */
typedef struct rec {
    uint64_t writer, seq, check[2];
} rec;

enum { WRITERS = 3, PUSHES = 100000 };
static bp_ring *cr;
static atomic_bool stop;

static void *writer(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    for (uint64_t s = 1; s <= PUSHES; s++) {
        rec x = {id, s, {id * 0x9e3779b97f4a7c15ull ^ s, ~s}};
        bp_ring_push(cr, &x);
    }
    return NULL;
}

static size_t check_snapshots(void) {
    rec out[64];
    size_t bad = 0, rounds = 0;
    while (!atomic_load(&stop) || rounds < 10) {
        size_t n = bp_ring_snapshot(cr, out, 64);
        uint64_t last[WRITERS + 1] = {0};
        for (size_t i = 0; i < n; i++) {
            rec *x = &out[i];
            if (x->writer == 0 || x->writer > WRITERS || x->seq == 0 || x->seq > PUSHES ||
                x->check[0] != (x->writer * 0x9e3779b97f4a7c15ull ^ x->seq) ||
                x->check[1] != ~x->seq || x->seq <= last[x->writer])
                bad++;
            else
                last[x->writer] = x->seq;
        }
        rounds++;
    }
    return bad;
}

static void *joiner(void *arg) {
    pthread_t *th = arg;
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    atomic_store(&stop, true);
    return NULL;
}

static size_t check_snapshots_until_done(pthread_t *th) {
    pthread_t j;
    pthread_create(&j, NULL, joiner, th);
    size_t bad = check_snapshots();
    pthread_join(j, NULL);
    return bad;
}

static void concurrent_pushes_never_tear(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) {
        cr = bp_ring_new(64, sizeof(rec), kinds[k]);
        atomic_store(&stop, false);
        pthread_t th[WRITERS];
        for (uintptr_t i = 0; i < WRITERS; i++)
            pthread_create(&th[i], NULL, writer, (void *)(i + 1));
        size_t bad = check_snapshots_until_done(th);
        assert_int_equal(bad, 0);
        rec out[64];
        size_t n = bp_ring_snapshot(cr, out, 64); /* quiescent: full and recent */
        assert_true(n >= 60);
        bp_ring_free(cr);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_refuses_bad_arguments),
        cmocka_unit_test(push_snapshot_overwrite_in_order),
        cmocka_unit_test(odd_sized_elements_round_trip),
        cmocka_unit_test(pop_and_peek_only_on_the_locked_kind),
        cmocka_unit_test(concurrent_pushes_never_tear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
