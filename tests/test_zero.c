/* SPDX-License-Identifier: MIT */
/* test_zero.c - zeroed gets and wiped releases: bp_get_zeroed gives every
 * byte of the capacity zero, without touching memory that is fresh from the
 * OS; BP_WIPE clears a buffer at its final release, on every path, before
 * the pool can hand it out again (read back through the next get of the
 * same slot, which holds no reference to the old one). */
#include "helpers.h"

#include <pthread.h>

static bool all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void zeroed_buffers_are_zero_recycled_or_fresh(void **state) {
    (void)state;
    size_t sizes[] = {8192};
    bp_config cfg = {.sizes = sizes, .nsizes = 1, .tcache_bytes = 1, .idle_bytes = 16384};
    bp_pool *pool = bp_pool_new(&cfg);
    unsigned char *first = bp_get_zeroed(pool, 8192);
    assert_false(is_resident(first)); /* fresh: no memset touched it */
    assert_true(all_zero(first, 8192));
    enum { N = 200 };
    unsigned char *v[N];
    for (int i = 0; i < N; i++)
        memset(v[i] = bp_get(pool, 8192), 0xff, 8192);
    for (int i = 1; i < N; i++)
        if (i != 150)
            bp_put(pool, v[i]); /* dirty, free, in the depot: segments keep one live */
    unsigned char *z[N];
    for (int i = 0; i < N; i++) { /* the fresh slots first, then the dirty ones */
        z[i] = bp_get_zeroed(pool, 8000);
        assert_non_null(z[i]);
        assert_int_equal(bp_refcount(z[i]), 1);
        assert_true(all_zero(z[i], bp_cap(z[i])));
    }
    for (int i = 0; i < N; i++)
        bp_put(pool, z[i]);
    bp_put(pool, v[0]);
    bp_put(pool, v[150]);
    bp_put(pool, first);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void zeroed_in_every_size_class(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    size_t lens[] = {1, 100, 4000, 5000, 70000, 1u << 20, 5u << 20};
    for (int round = 0; round < 3; round++)
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            unsigned char *p = bp_get_zeroed(pool, lens[k]);
            assert_non_null(p);
            assert_true(all_zero(p, bp_cap(p)));
            memset(p, 0xa5, bp_cap(p)); /* the next round reuses it dirty */
            bp_put(pool, p);
        }
    assert_null(bp_get_zeroed(pool, 0));
    assert_int_equal(errno, EINVAL);
    assert_null(bp_get_zeroed(NULL, 10));
    assert_int_equal(errno, EINVAL);
    bp_config cfg = {.flags = BP_CHECKED};
    bp_pool *checked = bp_pool_new(&cfg); /* poisoned memory: always a memset */
    unsigned char *c = bp_get_zeroed(checked, 300);
    assert_true(all_zero(c, bp_cap(c)));
    bp_put(checked, c);
    c = bp_get_zeroed(checked, 300);
    assert_true(all_zero(c, bp_cap(c)));
    bp_put(checked, c);
    bp_pool_destroy(checked);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* BP_WIPE: each way a last reference goes, then the next get of that slot
 * (one tier, no caches: the same buffer comes back first) reads zeros. */
typedef int (*drop_fn)(bp_pool *pool, void *p);
static int by_put(bp_pool *pool, void *p) { return bp_put(pool, p); }
static int by_release(bp_pool *pool, void *p) {
    (void)pool;
    return bp_release(p);
}
static int by_release_n(bp_pool *pool, void *p) {
    (void)pool;
    bp_retain_n(p, 2);
    return bp_release_n(p, 3);
}
static int by_bulk(bp_pool *pool, void *p) { return bp_put_bulk(pool, &p, 1); }
static int by_ref(bp_pool *pool, void *p) {
    (void)pool;
    bp_ref r = bp_ref_of(p);
    bp_ref_retain(r);
    bp_ref_release(r);
    return bp_ref_release(r);
}
static int by_interior(bp_pool *pool, void *p) {
    (void)pool;
    return bp_release((char *)p + 100);
}
static void *put_on_thread(void *arg) {
    void **a = arg;
    return (void *)(intptr_t)bp_put(a[0], a[1]);
}
static int by_thread(bp_pool *pool, void *p) {
    void *a[2] = {pool, p};
    pthread_t t;
    void *r;
    pthread_create(&t, NULL, put_on_thread, a);
    pthread_join(t, &r);
    return (int)(intptr_t)r;
}

static void wipe_clears_on_every_release_path(void **state) {
    (void)state;
    size_t sizes[] = {4096};
    bp_config cfg = {.sizes = sizes, .nsizes = 1, .flags = BP_WIPE};
    bp_pool *pool = bp_pool_new(&cfg);
    drop_fn drops[] = {by_put, by_release, by_release_n, by_bulk, by_ref, by_interior, by_thread};
    for (size_t k = 0; k < sizeof drops / sizeof drops[0]; k++) {
        unsigned char *p = bp_get(pool, 4096);
        memset(p, 0x5c, 4096); /* the secret */
        assert_int_equal(drops[k](pool, p), 0);
        unsigned char *q = bp_get(pool, 4096);
        assert_ptr_equal(q, p); /* the same slot, handed out again */
        assert_true(all_zero(q, 4096));
        bp_put(pool, q);
    }
    unsigned char *big = bp_get(pool, 3u << 20); /* oversize: cleared, then unmapped */
    memset(big, 0x5c, 3u << 20);
    assert_int_equal(bp_put(pool, big), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
    bp_config pcfg = {.sizes = sizes, .nsizes = 1, .tcache_bytes = 1};
    bp_pool *plain = bp_pool_new(&pcfg);
    unsigned char *p = bp_get(plain, 4096);
    memset(p, 0x5c, 4096);
    bp_put(plain, p);
    unsigned char *q = bp_get(plain, 4096);
    assert_ptr_equal(q, p);
    assert_int_equal(q[0], 0x5c); /* without BP_WIPE the bytes stay: the test can fail */
    bp_put(plain, q);
    bp_pool_destroy(plain);
}

static void wipe_from_the_environment(void **state) {
    (void)state;
    setenv("BYTEPOOL_WIPE", "1", 1);
    size_t sizes[] = {4096};
    bp_config cfg = {.sizes = sizes, .nsizes = 1};
    bp_pool *pool = bp_pool_new(&cfg);
    unsetenv("BYTEPOOL_WIPE");
    unsigned char *p = bp_get(pool, 4096);
    memset(p, 0x77, 4096);
    bp_put(pool, p);
    unsigned char *q = bp_get(pool, 4096);
    assert_ptr_equal(q, p);
    assert_true(all_zero(q, 4096));
    bp_put(pool, q);
    bp_pool_destroy(pool);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zeroed_buffers_are_zero_recycled_or_fresh),
        cmocka_unit_test(zeroed_in_every_size_class),
        cmocka_unit_test(wipe_clears_on_every_release_path),
        cmocka_unit_test(wipe_from_the_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
