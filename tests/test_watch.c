/* SPDX-License-Identifier: MIT */
/* test_watch.c - return watches: told once, when a lent buffer is back to one
 * reference, from whichever thread dropped it. */
#include "helpers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

typedef struct counter {
    bp_watcher w; /* first: the callback casts back */
    _Atomic unsigned calls;
    _Atomic(void *) last;
    _Atomic size_t count_seen; /* the refcount inside the call */
} counter;

static void count_call(bp_watcher *w, void *buf) {
    counter *c = (counter *)w;
    atomic_store(&c->count_seen, bp_refcount(buf));
    atomic_store(&c->last, buf);
    atomic_fetch_add(&c->calls, 1);
}

static void fires_once_when_the_count_is_back_to_one(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    counter c = {{count_call}, 0, NULL, 0};
    uint8_t *p = bp_get(pool, 300);
    assert_ptr_equal(bp_retain_n(p + 10, 2), p + 10);
    assert_int_equal(bp_watch(p + 20, &c.w), 0); /* interior pointers too */
    assert_int_equal(bp_refcount(p), 3);         /* the flag is not part of the count */
    assert_int_equal(bp_release(p + 10), 0);
    assert_int_equal(c.calls, 0);
    assert_ptr_equal(bp_retain(p + 5), p + 5); /* a watched count still takes references */
    assert_int_equal(bp_release(p + 5), 0);
    assert_int_equal(c.calls, 0);
    assert_int_equal(bp_release(p + 10), 0); /* 2 -> 1: the call, inside this release */
    assert_int_equal(c.calls, 1);
    assert_ptr_equal(c.last, p); /* the start, whatever pointer was released */
    assert_int_equal(c.count_seen, 1);
    assert_int_equal(bp_refcount(p), 1);
    assert_int_equal(bp_unwatch(p), EALREADY); /* it fired: nothing armed */
    assert_ptr_equal(bp_retain(p), p);         /* one-shot: no second call */
    assert_int_equal(bp_release(p), 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(bp_put(pool, p), 0); /* the watcher's own reference frees it */
    assert_int_equal(bp_refcount(p), 0);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void every_drop_path_fires(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    counter c = {{count_call}, 0, NULL, 0};
    /* bp_release_n straight from 4 to 1 */
    void *p = bp_get(pool, 5000);
    bp_retain_n(p, 3);
    assert_int_equal(bp_watch(p, &c.w), 0);
    assert_int_equal(bp_release_n(p, 3), 0);
    assert_int_equal(c.calls, 1);
    /* bp_put of a shared count, by the owner */
    bp_retain(p);
    assert_int_equal(bp_watch(p, &c.w), 0); /* re-armed with the same watcher */
    assert_int_equal(bp_put(pool, p), 0);
    assert_int_equal(c.calls, 2);
    assert_int_equal(bp_refcount(p), 1);
    bp_put(pool, p);
    /* an oversize buffer */
    void *big = bp_get(pool, 3u << 20);
    bp_retain(big);
    assert_int_equal(bp_watch(big, &c.w), 0);
    assert_int_equal(bp_release(big), 0);
    assert_int_equal(c.calls, 3);
    assert_ptr_equal(c.last, big);
    assert_int_equal(bp_release(big), 0);
    assert_int_equal(bp_refcount(big), 0);
    /* dropping all references at once (the watcher's too) frees without a call */
    void *q = bp_get(pool, 100);
    bp_retain(q);
    assert_int_equal(bp_watch(q, &c.w), 0);
    assert_int_equal(bp_release_n(q, 2), 0);
    assert_int_equal(c.calls, 3);
    assert_int_equal(bp_refcount(q), 0);
    void *again = bp_get(pool, 100); /* the same slot (the bin is LIFO): no stale claim */
    assert_ptr_equal(again, q);
    bp_retain(again);
    assert_int_equal(bp_watch(again, &c.w), 0);
    assert_int_equal(bp_release(again), 0);
    assert_int_equal(c.calls, 4);
    bp_put(pool, again);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static int errors_seen;
static void on_error(void *ctx, int err, const char *op, const void *p) {
    (void)ctx, (void)err, (void)op, (void)p;
    errors_seen++;
}

static void refusals_leave_the_buffer_as_it_was(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.on_error = on_error;
    bp_pool *pool = bp_pool_new(&cfg);
    counter c = {{count_call}, 0, NULL, 0}, d = {{count_call}, 0, NULL, 0};
    bp_watcher nofn = {NULL};
    char foreign[64];
    uint8_t *p = bp_get(pool, 100);
    assert_int_equal(bp_watch(p, &c.w), ENOENT); /* only the caller's reference */
    bp_retain(p);
    assert_int_equal(bp_watch(p, NULL), EINVAL);
    assert_int_equal(bp_watch(p, &nofn), EINVAL);
    assert_int_equal(bp_watch(foreign, &c.w), EINVAL);
    assert_int_equal(bp_watch(NULL, &c.w), EINVAL);
    assert_int_equal(bp_unwatch(foreign), EINVAL);
    assert_int_equal(bp_unwatch(p), EALREADY); /* never armed */
    assert_int_equal(bp_watch(p, &c.w), 0);
    assert_int_equal(bp_watch(p, &d.w), EBUSY); /* the first watcher stays */
    assert_int_equal(bp_unwatch(p), 0);
    assert_int_equal(bp_unwatch(p), EALREADY);
    assert_int_equal(bp_watch(p, &d.w), 0); /* the claim was given up */
    assert_int_equal(bp_release(p), 0);
    assert_int_equal(c.calls, 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(bp_refcount(p), 1);
    bp_put(pool, p);
    assert_int_equal(bp_watch(p, &c.w), EINVAL); /* free */
    assert_int_equal(errors_seen, 3);            /* the pool's refusals: NULL w, no fn, free */
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.refused, 3);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* A sampled buffer (leak tracking) keeps its record through a watch. */
static void watches_and_leak_samples_share_the_count(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.leaks = BP_LEAKS_ALL;
    bp_pool *pool = bp_pool_new(&cfg);
    counter c = {{count_call}, 0, NULL, 0};
    void *p = bp_get(pool, 700);
    bp_retain(p);
    assert_int_equal(bp_watch(p, &c.w), 0);
    assert_int_equal(bp_release(p), 0);
    assert_int_equal(c.calls, 1);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(bp_pool_report_leaks(pool, f), 1); /* still out: the watcher's */
    fclose(f);
    assert_non_null(strstr(text, "1 with a known allocation site"));
    free(text);
    assert_int_equal(bp_release(p), 0);
    f = open_memstream(&text, &len);
    assert_int_equal(bp_pool_report_leaks(pool, f), 0);
    fclose(f);
    free(text);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* ---- threads ------------------------------------------------------------- */

enum { THREADS = 3, ROUNDS = 3000 };

typedef struct round_ctx {
    bp_pool *pool;
    _Atomic(void *) buf;
    _Atomic unsigned go, done;
    _Atomic unsigned disarmed; /* rounds in which bp_unwatch returned 0 */
} round_ctx;

typedef struct releaser_arg {
    round_ctx *r;
    int i;
} releaser_arg;

/* Each drops one reference per round, but in even rounds thread 0 holds
 * none and races bp_unwatch against the others' drops instead. */
static void *releaser(void *arg) {
    releaser_arg *a = arg;
    round_ctx *r = a->r;
    for (unsigned round = 1; round <= ROUNDS; round++) {
        while (atomic_load(&r->go) < round)
            sched_yield();
        void *p = atomic_load(&r->buf);
        if (a->i == 0 && round % 2 == 0) {
            int err = bp_unwatch(p);
            assert_true(err == 0 || err == EALREADY);
            if (err == 0)
                atomic_fetch_add(&r->disarmed, 1);
        } else {
            assert_int_equal(bp_release(p), 0);
        }
        atomic_fetch_add(&r->done, 1);
    }
    return NULL;
}

/* THREADS threads drop their references at once, one of them racing
 * bp_unwatch in half the rounds: the watcher is called exactly when the
 * unwatch did not disarm it, never both, never twice. */
static void racing_releases_call_the_watcher_once(void **state) {
    (void)state;
    round_ctx r = {bp_pool_new(NULL), NULL, 0, 0, 0};
    counter c = {{count_call}, 0, NULL, 0};
    pthread_t t[THREADS];
    releaser_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (releaser_arg){&r, i};
        pthread_create(&t[i], NULL, releaser, &args[i]);
    }
    for (unsigned round = 1; round <= ROUNDS; round++) {
        void *p = bp_get(r.pool, round % 2 ? 64 : 20000);
        bp_retain_n(p, THREADS - (round % 2 == 0));
        assert_int_equal(bp_watch(p, &c.w), 0);
        atomic_store(&r.buf, p);
        atomic_store(&r.go, round);
        while (atomic_load(&r.done) < round * THREADS)
            sched_yield();
        assert_int_equal(atomic_load(&c.calls) + atomic_load(&r.disarmed), round);
        assert_int_equal(bp_refcount(p), 1);
        assert_int_equal(bp_unwatch(p), EALREADY); /* fired or disarmed: nothing left */
        assert_int_equal(bp_put(r.pool, p), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    print_message("watch races: %u calls, %u disarmed first\n", (unsigned)c.calls,
                  (unsigned)r.disarmed);
    assert_int_equal(c.calls + r.disarmed, ROUNDS);
    assert_int_equal(c.count_seen, 1);
    bp_stats st;
    bp_pool_stats(r.pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(bp_pool_destroy(r.pool), 0);
}

/* bp_watch_owned: only bp_unwatch_owned with the same watcher disarms it. */
static void owned_watches_are_disarmed_only_by_their_owner(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    counter c = {{count_call}, 0, NULL, 0}, other = {{count_call}, 0, NULL, 0};
    uint8_t *p = bp_get(pool, 1000);
    bp_retain(p);
    assert_int_equal(bp_watch_owned(p, &c.w), 0);
    assert_int_equal(bp_watch(p, &other.w), EBUSY);
    assert_int_equal(bp_unwatch(p + 3), EPERM); /* not the caller's watch */
    assert_int_equal(errno, EPERM);
    assert_int_equal(bp_unwatch_owned(p, &other.w), EPERM);
    assert_int_equal(bp_unwatch_owned(p, NULL), EINVAL);
    assert_int_equal(bp_refcount(p), 2); /* the refusals left the count as it was */
    assert_int_equal(bp_unwatch_owned(p + 999, &c.w), 0);
    assert_int_equal(bp_unwatch_owned(p, &c.w), EALREADY);
    assert_int_equal(bp_release(p), 0); /* disarmed: no call */
    assert_int_equal(c.calls, 0);
    bp_retain(p);
    assert_int_equal(bp_watch_owned(p, &c.w), 0);
    assert_int_equal(bp_release(p), 0); /* fires */
    assert_int_equal(c.calls, 1);
    assert_int_equal(bp_unwatch_owned(p, &c.w), EALREADY);
    /* a plain watch may be disarmed with bp_unwatch_owned too */
    bp_retain(p);
    assert_int_equal(bp_watch(p, &other.w), 0);
    assert_int_equal(bp_unwatch_owned(p, &other.w), 0);
    assert_int_equal(bp_release(p), 0);
    assert_int_equal(other.calls, 0);
    assert_int_equal(bp_put(pool, p), 0);
    assert_int_equal(bp_unwatch(p), EINVAL); /* freed */
    assert_int_equal(bp_pool_destroy(pool), 0);
}

typedef struct unwatcher {
    _Atomic(void *) buf;    /* the round's buffer, NULL between rounds */
    _Atomic unsigned round; /* the round the main thread is in */
    _Atomic unsigned seen;  /* the round the unwatcher has started on */
    _Atomic unsigned acked; /* the round the unwatcher has left */
    _Atomic unsigned ok, already, invalid;
} unwatcher;

#define UNWATCH_ROUNDS 3000u

/* Holds no reference: spins bp_unwatch on the round's buffer while the
 * main thread drops every reference, until told the round is over. */
static void *unwatch_spinner(void *arg) {
    unwatcher *u = arg;
    for (unsigned round = 1; round <= UNWATCH_ROUNDS; round++) {
        while (atomic_load(&u->round) < round)
            sched_yield();
        void *p = atomic_load(&u->buf);
        atomic_store(&u->seen, round);
        while (atomic_load(&u->round) == round && atomic_load(&u->buf) == p) {
            int err = bp_unwatch(p);
            atomic_fetch_add(err == 0 ? &u->ok : err == EALREADY ? &u->already : &u->invalid, 1);
        }
        atomic_store(&u->acked, round);
    }
    return NULL;
}

/* A thread holding no reference unwatches while the owner's final drop
 * frees the buffer, its segment and the watch table (oversize buffers are
 * unmapped on their last release): it gets an answer, never a fault. */
static void unwatch_without_a_reference_races_the_final_drop(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    unwatcher u = {0};
    counter c = {{count_call}, 0, NULL, 0};
    pthread_t t;
    pthread_create(&t, NULL, unwatch_spinner, &u);
    for (unsigned round = 1; round <= UNWATCH_ROUNDS; round++) {
        void *p = bp_get(pool, (4u << 20) + 1); /* oversize */
        assert_non_null(bp_retain(p));
        assert_int_equal(bp_watch(p, &c.w), 0);
        atomic_store(&u.buf, p);
        atomic_store(&u.round, round);
        while (atomic_load(&u.seen) < round)
            sched_yield();
        assert_int_equal(bp_release_n(p, round % 2 ? 2 : 1), 0);
        if (round % 2 == 0) /* the watcher's reference goes too */
            assert_int_equal(bp_release(p), 0);
        atomic_store(&u.buf, NULL);
        while (atomic_load(&u.acked) < round)
            sched_yield();
    }
    pthread_join(t, NULL);
    print_message("unwatch vs final drop: %u disarmed, %u already, %u invalid, %u calls\n",
                  (unsigned)u.ok, (unsigned)u.already, (unsigned)u.invalid, (unsigned)c.calls);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fires_once_when_the_count_is_back_to_one),
        cmocka_unit_test(every_drop_path_fires),
        cmocka_unit_test(refusals_leave_the_buffer_as_it_was),
        cmocka_unit_test(watches_and_leak_samples_share_the_count),
        cmocka_unit_test(racing_releases_call_the_watcher_once),
        cmocka_unit_test(owned_watches_are_disarmed_only_by_their_owner),
        cmocka_unit_test(unwatch_without_a_reference_races_the_final_drop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
