/* SPDX-License-Identifier: MIT */
/* test_layout.c - where segment headers sit (the core's internal view):
 * coloured, so that the headers and counts of neighbouring segments fall
 * into different cache sets; a count's segment is found from its address
 * alone; the header never reaches into the first buffer. */
#include "helpers.h"

#include "../src/core/internal.h"

/* The L1 set of an address on a 64-set, 64-byte-line cache (32 KiB, 8-way). */
static unsigned l1_set(const void *p) { return (unsigned)(((uintptr_t)p >> 6) & 63); }

static void check_segment(bp_seg *seg) {
    assert_non_null(seg);
    uintptr_t start = (uintptr_t)bp__seg_start(seg);
    assert_int_equal(start % BP_CHUNK, 0);
    assert_int_equal((uintptr_t)seg - start, bp__seg_colour(start));
    for (uint64_t i = 0; i < seg->nslots; i += seg->nslots / 4 + 1)
        assert_ptr_equal(bp__seg_of_rc(&seg->rc[i]), seg);
    const uint8_t *hdr_end = seg->inited   ? seg->inited + seg->nslots
                             : seg->reqlen ? (const uint8_t *)(seg->reqlen + seg->nslots)
                                           : (const uint8_t *)(seg->freestk + seg->nslots);
    assert_true(hdr_end <= seg->base);
    assert_int_equal((uintptr_t)seg->base % BP_ALIGN_MIN, 0);
}

static void neighbouring_headers_fall_in_different_sets(void **state) {
    (void)state;
    size_t sizes[] = {64, 600 * 1024}; /* one 600 KiB buffer per segment */
    bp_config cfg = {.sizes = sizes, .nsizes = 2};
    bp_pool *pool = bp_pool_new(&cfg);
    enum { N = 40 };
    void *v[N];
    unsigned seen[64] = {0}, distinct = 0;
    for (int i = 0; i < N; i++) {
        v[i] = bp_get(pool, 600 * 1024);
        bp_seg *seg = bp__seg_of(v[i]);
        check_segment(seg);
        assert_int_equal((uintptr_t)seg->base % bp__os_page(), 0);
        distinct += seen[l1_set(seg)]++ == 0;
    }
    print_message("%u sets for %d headers\n", distinct, N);
    assert_true(distinct >= BP_COLOURS / 2); /* chunk-aligned headers: all in one */
    void *small = bp_get(pool, 10);
    check_segment(bp__seg_of(small));
    bp_put(pool, small);
    for (int i = 0; i < N; i++)
        bp_put(pool, v[i]);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void checked_and_oversize_headers_fit_too(void **state) {
    (void)state;
    bp_config cfg = {.flags = BP_CHECKED};
    bp_pool *pool = bp_pool_new(&cfg);
    void *a = bp_get(pool, 100), *b = bp_get(pool, 3000), *big = bp_get(pool, 5u << 20);
    check_segment(bp__seg_of(a));
    check_segment(bp__seg_of(b));
    check_segment(bp__seg_of(big));
    bp_put(pool, a);
    bp_put(pool, b);
    bp_put(pool, big);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(neighbouring_headers_fall_in_different_sets),
        cmocka_unit_test(checked_and_oversize_headers_fit_too),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
