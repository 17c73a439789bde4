/* SPDX-License-Identifier: MIT */
/* test_resv.c - the reserved range: one-load lookup, the sentinel, reuse,
 * and the fallback when the OS refuses the reservation (RLIMIT_AS). */
#include "helpers.h"

#include <stdatomic.h>
#include <sys/resource.h>

/* Hidden symbols of the static library (resv.c). */
typedef struct bp_resv {
    _Atomic uintptr_t base, lim;
} bp_resv;
extern bp_resv bp__resv;
extern _Atomic int bp__resv_disabled;
size_t bp__resv_reserved(void);

static const char *self;

/* The whole contract on a pool, whichever way segments are found. */
static int exercise(void) {
    bp_pool *pool = bp_pool_new(NULL);
    int local = 0;
    void *v[200];
    size_t len = 1;
    for (int i = 0; i < 200; i++, len = len * 3 % 3000000 + 1)
        if (!(v[i] = bp_get(pool, len)))
            return 10;
    for (int i = 0; i < 200; i++) {
        uint8_t *p = v[i];
        size_t cap = bp_cap(p);
        memset(p, 0x5a, cap);
        if (bp_base(p + cap - 1) != p || bp_refcount(p + cap / 2) != 1)
            return 11;
        if (bp_retain_n(p + cap - 1, 3) != p + cap - 1 || bp_refcount(p) != 4)
            return 12;
        if (bp_release_n(p, 3) != 0 || bp_release_n(p, 2) != EINVAL)
            return 13;
    }
    if (bp_release(&local) != EINVAL || bp_refcount(&local) != 0 || bp_put(pool, &local) != EINVAL)
        return 14;
    for (int i = 0; i < 200; i++)
        if ((i % 2 ? bp_put(pool, v[i]) : bp_release(v[i])) != 0)
            return 15;
    for (int i = 0; i < 200; i++)
        if (bp_refcount(v[i]) != 0)
            return 16;
    bp_stats st;
    bp_pool_stats(pool, &st);
    if (st.outstanding != 0 || st.total_get + st.discarded / 2 < 200)
        return 17;
    return (int)bp_pool_destroy(pool);
}

static size_t vm_size(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    size_t pages = 0;
    if (f) {
        if (fscanf(f, "%zu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Child mode, BYTEPOOL_RESERVE_BYTES=64M: a tier segment larger than the
 * step the range grows by. "alone": nothing above the range, the first get
 * is served inside the reservation. "neighbour": the program's own mapping
 * one step above the range; the segment must not be committed over it. */
static int grow_main(const char *how) {
    const size_t big = (size_t)150 << 20, step = (size_t)64 << 20;
    const size_t sizes[] = {4096, big};
    bp_pool *pool = new_pool_sizes(sizes, 2);
    /* Free address space above the range, where it could grow: a hole whose
     * lower part is opened just before the first reservation, which the OS
     * then places at the hole's top (mmap hands out addresses top-down);
     * the rest of the hole is opened after it. */
    const size_t hole = (size_t)1 << 30, low = (size_t)96 << 20;
    uint8_t *h = mmap(NULL, hole, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (h == MAP_FAILED || munmap(h, low) != 0)
        return 29;
    void *small = bp_get(pool, 4096); /* the first reservation: 64 MiB */
    uint8_t *base = (uint8_t *)atomic_load(&bp__resv.base);
    munmap(h + low, hole - low);
    if (!small || !base || bp__resv_reserved() != step)
        return 30;
    uint8_t *probe = mmap(base + step, 3 * step, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (probe != base + step)
        return 38; /* no room above the range: the test cannot tell */
    munmap(probe, 3 * step);
    uint8_t *mine = NULL;
    const size_t mine_len = (size_t)256 << 20;
    if (!strcmp(how, "neighbour")) {
        mine = mmap(base + 2 * step, mine_len, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (mine != base + 2 * step)
            return 31; /* the address was taken already: the test cannot tell */
        for (size_t off = 0; off < mine_len; off += 4096)
            mine[off] = 0xab;
    }
    uint8_t *p = bp_get(pool, big);
    if (!p)
        return 32; /* a spurious ENOMEM: the range grew by less than the segment */
    if (bp_cap(p) != big || bp_refcount(p + big - 1) != 1)
        return 33;
    if (mine && p + big > mine && p < mine + mine_len)
        return 34; /* the buffer overlaps the program's own mapping */
    uintptr_t lim = (uintptr_t)base + bp__resv_reserved();
    if ((uintptr_t)p - (uintptr_t)base < atomic_load(&bp__resv.lim) && (uintptr_t)p + big > lim)
        return 35; /* committed past the end of the reservation */
    memset(p, 0x5a, big);
    for (size_t off = 0; mine && off < mine_len; off += 4096)
        if (mine[off] != 0xab)
            return 36; /* the program's pages were overwritten */
    if (bp_put(pool, p) != 0 || bp_put(pool, small) != 0)
        return 37;
    return (int)bp_pool_destroy(pool);
}

/* Child mode: no reservation possible, then the same contract. */
static int child_main(const char *how) {
    if (!strncmp(how, "grow-", 5))
        return grow_main(how + 5);
    if (!strcmp(how, "rlimit")) {
        struct rlimit rl = {vm_size() + (512u << 20), vm_size() + (512u << 20)};
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            return 20;
    } else {
        atomic_store(&bp__resv_disabled, 1); /* sanitizer builds: their shadow defeats RLIMIT_AS */
    }
    int r = exercise();
    if (r)
        return r;
    if (bp__resv_reserved() != 0 || atomic_load(&bp__resv.lim) != 0)
        return 21; /* it must not have reserved anything */
    return 0;
}

static void reserved_range_serves_tier_segments(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    uint8_t *p = bp_get(pool, 4096), *big = bp_get(pool, 5u << 20);
    uintptr_t base = atomic_load(&bp__resv.base), lim = atomic_load(&bp__resv.lim);
    assert_true(bp__resv_reserved() >= ((size_t)1 << 33));
    assert_true((uintptr_t)p - base < lim);    /* a tier buffer: in the range */
    assert_false((uintptr_t)big - base < lim); /* oversize: mapped on its own */
    assert_int_equal(exercise(), 0);
    /* inside the range but no segment (the table itself): refused, no fault */
    assert_int_equal(bp_refcount((void *)base), 0);
    assert_int_equal(bp_release((void *)(base + 4096)), EINVAL);
    assert_null(bp_retain((void *)(base + 64)));
    assert_int_equal(bp_put(pool, (void *)(base + 128)), EINVAL);
    assert_int_equal(bp_put(pool, p), 0);
    assert_int_equal(bp_put(pool, big), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* A freed segment's extent reads as no segment, then serves the next one. */
static void freed_extents_are_refused_then_reused(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    uint8_t *p = bp_get(pool, 100000);
    memset(p, 1, 100000);
    assert_int_equal(bp_put(pool, p), 0);
    bp_pool_trim(pool);
    assert_false(is_resident(p));
    assert_int_equal(bp_refcount(p), 0);
    assert_int_equal(bp_release(p), EINVAL); /* no segment there any more */
    assert_int_equal(bp_put(pool, p), EINVAL);
    uint8_t *q = bp_get(pool, 100000); /* the same extent, first fit */
    uintptr_t chunk = ~(uintptr_t)((1u << 20) - 1);
    assert_true(((uintptr_t)q & chunk) == ((uintptr_t)p & chunk));
    assert_int_equal(bp_refcount(q), 1);
    assert_int_equal(bp_put(pool, q), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void refused_reservation_falls_back_to_the_radix_map(void **state) {
    (void)state;
#ifdef BP_SANITIZED
    const char *how = "disabled";
#else
    const char *how = "rlimit";
#endif
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' --child %s", self, how);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* A child whose layout came out otherwise than planned (some other mapping
 * took the address space above the range: exit 38) runs again. */
static void run_grow_child(const char *how) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "BYTEPOOL_RESERVE_BYTES=64M '%s' --child grow-%s", self, how);
    int st = 0;
    for (int tries = 0; tries < 5; tries++) {
        st = system(cmd);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 38)
            break;
        print_message("grow-%s: no room above the range this time; again\n", how);
    }
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* A segment larger than the growth step is served inside the range on the
 * first try, never committed past the reservation's end. */
static void range_grows_by_what_a_segment_needs(void **state) {
    (void)state;
    run_grow_child("alone");
}

/* ... and never over a mapping of the program's that lies above it. */
static void range_never_commits_over_a_neighbour(void **state) {
    (void)state;
    run_grow_child("neighbour");
}

int main(int argc, char **argv) {
    self = argv[0];
    if (argc == 3 && !strcmp(argv[1], "--child"))
        return child_main(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reserved_range_serves_tier_segments),
        cmocka_unit_test(freed_extents_are_refused_then_reused),
        cmocka_unit_test(refused_reservation_falls_back_to_the_radix_map),
        cmocka_unit_test(range_grows_by_what_a_segment_needs),
        cmocka_unit_test(range_never_commits_over_a_neighbour),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
