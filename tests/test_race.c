/* SPDX-License-Identifier: MIT */
/* test_race.c - what attack programs broke: two threads racing the final
 * release of one buffer (exactly one wins, the buffer is never handed out
 * twice), a retain racing the final release (it fails, or it really holds),
 * and queries of stale pointers racing the unmapping of their segments
 * (never a fault). */
#include "helpers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

typedef struct duel {
    _Atomic(void *) p;
    _Atomic unsigned go, done;
    int (*act)(void *);
    _Atomic int result;
} duel;

static int do_release(void *p) { return bp_release(p); }
static int do_retain(void *p) { return bp_retain(p) ? 0 : errno; }

static void *rival(void *arg) {
    duel *d = arg;
    for (unsigned round = 1;; round++) {
        while (atomic_load(&d->go) != round)
            sched_yield();
        void *p = atomic_load(&d->p);
        if (!p)
            return NULL;
        atomic_store(&d->result, d->act(p));
        atomic_store(&d->done, round);
    }
}

/* Runs `rounds` duels: each round both threads act on one fresh buffer of
 * len bytes at once; the main thread releases. Returns the count of rounds
 * where the rival's act succeeded. */
static unsigned run_duels(bp_pool *pool, size_t len, unsigned rounds, int (*act)(void *)) {
    duel d = {NULL, 0, 0, act, 0};
    pthread_t t;
    pthread_create(&t, NULL, rival, &d);
    unsigned rival_won = 0;
    void *seen[8] = {0};
    for (unsigned round = 1; round <= rounds; round++) {
        void *p = bp_get(pool, len);
        assert_non_null(p);
        atomic_store(&d.p, p);
        atomic_store(&d.go, round);
        int mine = bp_release(p);
        while (atomic_load(&d.done) != round)
            sched_yield();
        int theirs = atomic_load(&d.result);
        if (act == do_release) {
            /* exactly one of the two final releases wins */
            assert_true((mine == 0 && theirs == EALREADY) || (mine == EALREADY && theirs == 0));
            rival_won += theirs == 0;
        } else {
            assert_int_equal(mine, 0);
            if (theirs == 0) { /* the retain holds a real reference */
                assert_int_equal(bp_refcount(p), 1);
                assert_int_equal(bp_release(p), 0);
                rival_won++;
            } else {
                assert_int_equal(theirs, EALREADY);
            }
        }
        /* never handed out twice: the next gets are distinct live buffers */
        for (int i = 0; i < 8; i++)
            seen[i] = bp_get(pool, len);
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < i; j++)
                assert_ptr_not_equal(seen[i], seen[j]);
        for (int i = 0; i < 8; i++)
            assert_int_equal(bp_release(seen[i]), 0);
    }
    atomic_store(&d.p, NULL);
    atomic_store(&d.go, rounds + 1);
    pthread_join(t, NULL);
    return rival_won;
}

#ifdef BP_SANITIZED
#define ROUNDS 3000
#else
#define ROUNDS 20000
#endif

static void racing_final_releases_hand_nothing_out_twice(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    unsigned won = run_duels(pool, 100, ROUNDS, do_release);
    won += run_duels(pool, 3u << 20, ROUNDS / 40, do_release); /* oversize: unmapped once */
    print_message("racing releases: the rival won %u rounds\n", won);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(st.total_get, st.total_put);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void a_retain_racing_the_final_release_fails_or_holds(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    unsigned held = run_duels(pool, 100, ROUNDS, do_retain);
    print_message("racing retains: %u held a reference\n", held);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* ---- stale pointers against unmapping -------------------------------------- */

enum { NSTALE = 64 };
/* cmd is round * 4 + phase (0 hold, 1 query, 2 stop). The querier acks
 * every cmd it acts on by storing it in `seen`, and the main thread waits
 * for the ack of each: of the hold, so that no query of the last round runs
 * into this round's gets (a flag alone could still hold an old ack while
 * the querier, preempted between reading "query" and acking, goes on
 * querying), and of the query, so that every round is queried at least
 * once, however the two threads are scheduled. */
typedef struct stale {
    _Atomic(uintptr_t) ptr[NSTALE];
    _Atomic unsigned cmd;
    _Atomic unsigned seen; /* the last cmd the querier acted on */
    _Atomic unsigned long queries;
} stale;

static void *querier(void *arg) {
    stale *s = arg;
    for (;;) {
        unsigned cmd = atomic_load(&s->cmd);
        if (cmd % 4 == 2)
            return NULL;
        atomic_store(&s->seen, cmd);
        if (cmd % 4 == 0) {
            sched_yield();
            continue;
        }
        for (int i = 0; i < NSTALE; i++) {
            char *p = (char *)atomic_load(&s->ptr[i]);
            if (!p)
                continue;
            (void)bp_refcount(p + 7);
            (void)bp_cap(p + 7);
            (void)bp_base(p + 7);
            if (bp_retain(p + 7)) /* a stale pointer the memory was reused for */
                assert_int_equal(bp_release(p + 7), 0);
            atomic_fetch_add(&s->queries, 1);
        }
    }
}

/* Segments are unmapped (final oversize releases, trim, idle bound) while
 * another thread queries pointers into them: the queries answer 0/NULL or
 * refuse, and never touch unmapped memory. Gets happen only while the
 * querier holds off, so it races the unmapping, not the reuse. */
static void queries_of_stale_pointers_never_fault(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.idle_bytes = 1;   /* an empty segment is unmapped at once */
    cfg.tcache_bytes = 1; /* no thread bins */
    bp_pool *pool = bp_pool_new(&cfg);
    stale s = {{0}, 1, 0, 0}; /* cmd starts at "query" so no ack is stale */
    pthread_t t;
    pthread_create(&t, NULL, querier, &s);
    const size_t lens[] = {3u << 20, 100, 60000, 5u << 20};
    for (unsigned round = 1; round <= 200; round++) {
        atomic_store(&s.cmd, round * 4);
        while (atomic_load(&s.seen) != round * 4) /* no query runs while addresses are reused */
            sched_yield();
        void *v[NSTALE];
        for (int i = 0; i < NSTALE; i++) {
            v[i] = bp_get(pool, lens[i % 4]);
            atomic_store(&s.ptr[i], (uintptr_t)v[i]);
        }
        atomic_store(&s.cmd, round * 4 + 1);
        while (atomic_load(&s.seen) != round * 4 + 1) /* queries race what follows */
            sched_yield();
        for (int i = 0; i < NSTALE; i++)
            bp_release(v[i]); /* the querier may hold a reference a moment longer */
        bp_pool_trim(pool);
    }
    atomic_store(&s.cmd, 2);
    pthread_join(t, NULL);
    print_message("stale queries: %lu\n", (unsigned long)atomic_load(&s.queries));
    assert_true(atomic_load(&s.queries) >= 200 * NSTALE); /* a whole pass per round at least */
    bp_pool_trim(pool);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    for (int i = 0; i < NSTALE; i++) { /* all unmapped now: every query says so */
        char *p = (char *)atomic_load(&s.ptr[i]);
        assert_int_equal(bp_refcount(p), 0);
        assert_int_equal(bp_cap(p), 0);
        assert_null(bp_base(p));
    }
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* bp_put of the only reference takes no atomic: two puts of one buffer is
 * undefined in normal builds, and checked mode catches it. */
static void double_put(void *arg) {
    (void)arg;
    bp_config cfg = {0};
    cfg.flags = BP_CHECKED;
    bp_pool *pool = bp_pool_new(&cfg);
    void *p = bp_get(pool, 100);
    bp_put(pool, p);
    bp_put(pool, p);
}

static void checked_mode_catches_a_second_put(void **state) {
    (void)state;
    char msg[512];
    int st = run_in_child(double_put, NULL, msg, sizeof msg);
    assert_child_aborted(st);
    assert_non_null(strstr(msg, "double release"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(racing_final_releases_hand_nothing_out_twice),
        cmocka_unit_test(a_retain_racing_the_final_release_fails_or_holds),
        cmocka_unit_test(queries_of_stale_pointers_never_fault),
        cmocka_unit_test(checked_mode_catches_a_second_put),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
