/* SPDX-License-Identifier: MIT */
/* test_ref.c - count handles (bp_ref): one lookup, then one atomic per
 * reference; the final release sends the buffer home; freed buffers are
 * refused; flagged counts (watched, sampled) take the pointer calls' paths;
 * racing final releases through handles: exactly one wins; checked pools
 * refuse forged handles with a message. */
#include "helpers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

static void a_handle_counts_like_the_pointer_calls(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    uint8_t *p = bp_get(pool, 4000);
    bp_ref r = bp_ref_of(p + 1234); /* any pointer inside */
    assert_non_null(r.h);
    assert_ptr_equal(bp_ref_of(p).h, r.h);
    for (int i = 0; i < 8; i++)
        assert_int_equal(bp_ref_retain(r), 0);
    assert_int_equal(bp_refcount(p), 9);
    assert_int_equal(bp_ref_retain_n(r, 10), 0);
    assert_int_equal(bp_refcount(p), 19);
    assert_int_equal(bp_release_n(p, 10), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(bp_ref_release(r), 0);
    assert_int_equal(bp_refcount(p), 1);
    assert_int_equal(bp_ref_release(r), 0); /* the last: home */
    assert_int_equal(bp_refcount(p), 0);
    assert_int_equal(bp_ref_release(r), EALREADY); /* freed: refused, nothing changes */
    assert_int_equal(bp_ref_retain(r), EALREADY);
    assert_int_equal(bp_refcount(p), 0);
    uint8_t *q = bp_get(pool, 4000); /* it went home: the next get finds it */
    assert_ptr_equal(q, p);
    assert_int_equal(bp_put(pool, q), 0);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void bad_handles_and_pointers_are_refused(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    int local;
    errno = 0;
    assert_null(bp_ref_of(&local).h);
    assert_int_equal(errno, EINVAL);
    assert_null(bp_ref_of(NULL).h);
    void *p = bp_get(pool, 100);
    bp_put(pool, p);
    assert_null(bp_ref_of(p).h); /* a free buffer has no handle */
    bp_ref none = {NULL};
    assert_int_equal(bp_ref_retain(none), EINVAL);
    assert_int_equal(bp_ref_retain_n(none, 3), EINVAL);
    assert_int_equal(bp_ref_release(none), EINVAL);
    p = bp_get(pool, 100);
    bp_ref r = bp_ref_of(p);
    assert_int_equal(bp_ref_retain_n(r, (1u << 29)), EOVERFLOW); /* past the limit */
    assert_int_equal(bp_refcount(p), 1);
    assert_int_equal(bp_ref_release(r), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static _Atomic int fired;
static void on_back(bp_watcher *w, void *buf) {
    (void)w;
    (void)buf;
    fired++;
}

/* Watched and sampled counts are flagged: the handle's calls take the
 * pointer calls' paths, so a watch fires and a sampled buffer is forgotten. */
static void flagged_counts_take_the_full_paths(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.leaks = BP_LEAKS_ALL;
    bp_pool *pool = bp_pool_new(&cfg);
    uint8_t *p = bp_get(pool, 4096);
    bp_ref r = bp_ref_of(p);
    assert_int_equal(bp_ref_retain(r), 0);
    static bp_watcher w = {on_back};
    assert_int_equal(bp_watch(p, &w), 0);
    assert_int_equal(bp_ref_retain_n(r, 2), 0);
    assert_int_equal(bp_ref_release(r), 0);
    assert_int_equal(bp_ref_release(r), 0);
    assert_int_equal(fired, 0);
    assert_int_equal(bp_ref_release(r), 0); /* back to one: the watch fires */
    assert_int_equal(fired, 1);
    assert_int_equal(bp_ref_release(r), 0); /* the last: home, leak record gone */
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(bp_pool_destroy(pool), 0); /* no leak reported */
}

#define HOLDERS 4
#define ROUNDS 3000
typedef struct race {
    _Atomic(void *) buf;
    _Atomic bp_ref ref;
    _Atomic unsigned go, done;
    _Atomic unsigned already;
} race;

/* Each holder drops its reference through the handle; in odd rounds
 * holder 0 drops twice, one release more than there are references: of
 * the racing final drops exactly one wins, the extra one is refused with
 * EALREADY (whichever holder's it is), and the buffer goes home once. */
static void *holder(void *arg) {
    race *r = arg;
    static _Atomic unsigned next_id;
    unsigned id = atomic_fetch_add(&next_id, 1);
    for (unsigned round = 1; round <= ROUNDS; round++) {
        while (atomic_load(&r->go) < round)
            sched_yield();
        bp_ref ref = atomic_load(&r->ref);
        for (int k = 0; k < (id == 0 && round % 2 ? 2 : 1); k++) {
            int e = bp_ref_release(ref);
            assert_true(e == 0 || e == EALREADY);
            if (e == EALREADY)
                atomic_fetch_add(&r->already, 1);
        }
        atomic_fetch_add(&r->done, 1);
    }
    return NULL;
}

static void racing_final_releases_through_handles(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    static race r;
    pthread_t t[HOLDERS];
    for (int i = 0; i < HOLDERS; i++)
        pthread_create(&t[i], NULL, holder, &r);
    for (unsigned round = 1; round <= ROUNDS; round++) {
        void *p = bp_get(pool, 2048);
        assert_ptr_equal(bp_retain_n(p, HOLDERS - 1), p); /* one reference per holder */
        atomic_store(&r.ref, bp_ref_of(p));
        atomic_store(&r.go, round);
        while (atomic_load(&r.done) < round * HOLDERS)
            sched_yield();
        assert_int_equal(bp_refcount(p), 0);
        assert_int_equal(r.already, round / 2 + round % 2); /* one per odd round */
    }
    for (int i = 0; i < HOLDERS; i++)
        pthread_join(t[i], NULL);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    print_message("%u rounds through handles: %u extra releases refused\n", ROUNDS,
                  (unsigned)r.already);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void forged_handle(void *arg) {
    bp_pool *pool = arg;
    uint8_t *p = bp_get(pool, 100);
    bp_ref r = bp_ref_of(p);
    bp_ref forged = {(void *)((uintptr_t)r.h + 4096 * 64)}; /* past the segment's counts */
    bp_ref_retain(forged);
}

static void checked_pools_refuse_forged_handles(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.flags = BP_CHECKED;
    bp_pool *pool = bp_pool_new(&cfg);
    uint8_t *p = bp_get(pool, 100);
    bp_ref r = bp_ref_of(p); /* a checked handle works as any */
    assert_int_equal(bp_ref_retain(r), 0);
    assert_int_equal(bp_ref_release(r), 0);
    assert_int_equal(bp_ref_release(r), 0);
    assert_int_equal(bp_refcount(p), 0);
    char msg[512];
    int st = run_in_child(forged_handle, pool, msg, sizeof msg);
    assert_child_aborted(st);
    assert_non_null(strstr(msg, "names no count of a live segment"));
    assert_int_equal(bp_pool_destroy(pool), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_handle_counts_like_the_pointer_calls),
        cmocka_unit_test(bad_handles_and_pointers_are_refused),
        cmocka_unit_test(flagged_counts_take_the_full_paths),
        cmocka_unit_test(racing_final_releases_through_handles),
        cmocka_unit_test(checked_pools_refuse_forged_handles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
