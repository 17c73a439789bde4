/* SPDX-License-Identifier: MIT */
/* test_fault.c - fault injection: the k-th mmap/madvise fails, for every k
 * over a workload. Calls fail with ENOMEM; no buffer is handed out twice or
 * damaged; nothing is stranded (all memory goes back once released); and
 * the pool works again once memory is back. */
#include "helpers.h"

#include <stdatomic.h>

#include <stdatomic.h>

extern _Atomic long bp__os_fail_countdown; /* os.c: test hook */

enum { MAXLIVE = 512 };
typedef struct held {
    uint8_t *p;
    size_t len;
    uint8_t tag;
} held;

static size_t live_n;
static held live[MAXLIVE];
static size_t enomem_seen;

static void hold(bp_pool *pool, size_t len) {
    uint8_t *p = bp_get(pool, len);
    if (!p) {
        assert_int_equal(errno, ENOMEM);
        enomem_seen++;
        return;
    }
    for (size_t i = 0; i < live_n; i++) /* never handed out twice */
        assert_ptr_not_equal(live[i].p, p);
    uint8_t tag = (uint8_t)(live_n * 37 + 11);
    for (size_t i = 0; i < len; i += 65536) /* a byte per 64 KiB and the last */
        p[i] = tag;
    p[len - 1] = tag;
    live[live_n++] = (held){p, len, tag};
}

static void release_all(void) {
    for (size_t i = 0; i < live_n; i++) {
        for (size_t k = 0; k < live[i].len; k += 65536)
            assert_int_equal(live[i].p[k], live[i].tag);
        assert_int_equal(live[i].p[live[i].len - 1], live[i].tag);
        assert_int_equal(bp_release(live[i].p), 0);
    }
    live_n = 0;
}

static void workload(bp_pool *pool) {
    const size_t lens[] = {100, 5000, 100000, 3u << 20, 700, 64, 300000, 2u << 20};
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < 8; i++)
            for (int k = 0; k < 6; k++)
                hold(pool, lens[i]);
        int r = bp_pool_reserve(pool, 4096, 200);
        assert_true(r == 0 || r == ENOMEM);
        bp_pool_trim(pool);
    }
}

/* Sanitizer builds make every mmap/munmap expensive: a shorter sweep there. */
#ifdef BP_SANITIZED
#define SWEEP 40
#else
#define SWEEP 150
#endif

/* How many OS calls one workload on a fresh pool makes. */
static long os_calls_of_workload(void) {
    bp_config cfg = {0};
    cfg.idle_bytes = 1;
    bp_pool *pool = bp_pool_new(&cfg);
    const long many = 1L << 40;
    atomic_store(&bp__os_fail_countdown, many);
    workload(pool);
    long calls = many - atomic_exchange(&bp__os_fail_countdown, 0);
    release_all();
    bp_pool_destroy(pool);
    return calls;
}

static void every_mmap_and_madvise_failure_is_survived(void **state) {
    (void)state;
    size_t injected = 0;
    os_calls_of_workload(); /* the first also reserves the process's range */
    long calls = os_calls_of_workload(), sweep = calls < SWEEP ? calls : SWEEP;
    print_message("the workload makes %ld OS calls; failing each of the first %ld\n", calls, sweep);
    assert_true(sweep >= 20);
    for (long k = 1; k <= sweep; k++) {
        bp_config cfg = {0};
        cfg.idle_bytes = 1; /* empty segments go back at once: nothing may linger */
        bp_pool *pool = bp_pool_new(&cfg);
        atomic_store(&bp__os_fail_countdown, k);
        workload(pool);
        long left = atomic_exchange(&bp__os_fail_countdown, 0);
        injected += left == 0; /* the k-th call did happen, and failed */
        release_all();
        bp_pool_trim(pool);
        bp_stats st;
        bp_pool_stats(pool, &st);
        assert_int_equal(st.outstanding, 0);
        assert_int_equal(st.total_get, st.total_put);
        for (size_t t = 0; t < st.ntiers; t++) /* nothing stranded but the reserve */
            if (st.tiers[t].size != 4096)
                assert_int_equal(st.tiers[t].carved, 0);
        assert_true(st.tiers[5].carved <= 200 + 256); /* the floor plus one segment */
        workload(pool);                               /* memory is back: everything succeeds now */
        assert_int_equal(live_n, 3 * 8 * 6);
        release_all();
        assert_int_equal(bp_pool_destroy(pool), 0);
    }
    print_message("fault injection: %zu failing OS calls injected, %zu gets refused ENOMEM\n",
                  injected, enomem_seen);
    assert_true(injected >= (size_t)sweep * 2 / 3);
    assert_true(enomem_seen > 0);
}

/* A reserve that fails part-way leaves the pool as it was: no floor is set
 * and what it mapped is unmapped again. */
static void a_failed_reserve_is_rolled_back(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    atomic_store(&bp__os_fail_countdown, 3); /* the third mapping fails */
    assert_int_equal(bp_pool_reserve(pool, 4096, 2000), ENOMEM);
    atomic_store(&bp__os_fail_countdown, 0);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.tiers[5].carved, 0);
    assert_int_equal(st.bytes_mapped, 0);
    assert_int_equal(bp_pool_reserve(pool, 4096, 300), 0); /* now it works, floor 300 */
    bp_pool_trim(pool);
    bp_pool_stats(pool, &st);
    assert_true(st.tiers[5].carved >= 300);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_failed_reserve_is_rolled_back),
        cmocka_unit_test(every_mmap_and_madvise_failure_is_survived),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
