/* SPDX-License-Identifier: MIT */
/*
 * icount - fixed operation loops for instruction counting. Run it under
 * `valgrind --tool=callgrind` at two iteration counts; the difference in
 * total instructions divided by the difference in iterations is the cost
 * of one operation, free of start-up and set-up.
 *
 *   icount getput|getrelease|retain|retain_n|retain_watched|lend|getput_norec|ref|fanout|
 *          fanout_ref SIZE ITERATIONS
 *
 * retain_n takes 8 references with one bp_retain_n and drops them with one
 * bp_release_n. ref is retain through a count handle (bp_ref_retain +
 * bp_ref_release). fanout is the bench's fan-out (get, 8 bp_retain, 9
 * bp_release); fanout_ref the same through a handle (get, bp_ref_of, 8
 * bp_ref_retain, 9 bp_ref_release). Built twice: icount (static library) and icount_shared
 * (through the shared library's PLT, as a packaged program calls it).
 *
 * getrelease drops the only reference with bp_release (one atomic CAS 1 -> 0)
 * where getput uses bp_put (a plain store): the difference is the cost of
 * making the final release safe against a racing one.
 *
 * retain_watched is retain on a buffer with a return watch armed (the slow
 * paths every watched buffer takes); lend is one round of lending a buffer
 * out: a retain for the borrower, bp_watch, and the borrower's release,
 * which calls the watcher (the uring library's cost per completion).
 */
#include <bytepool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long calls;
static void on_return(bp_watcher *w, void *buf) {
    (void)w, (void)buf;
    calls++;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr,
                "usage: icount getput|getrelease|retain|retain_n|retain_watched|lend|getput_norec"
                "|ref|fanout|fanout_ref SIZE ITERATIONS\n");
        return 2;
    }
    size_t size = strtoull(argv[2], NULL, 10);
    long n = atol(argv[3]);
    bp_config cfg = {0};
    if (!strcmp(argv[1], "getput_norec"))
        cfg.flags = BP_NO_RECENT;
    bp_pool *pool = bp_pool_new(&cfg);
    void *p = bp_get(pool, size); /* warm the thread cache */
    bp_put(pool, p);
    if (!strcmp(argv[1], "retain")) {
        p = bp_get(pool, size);
        for (long i = 0; i < n; i++) {
            bp_retain(p);
            bp_release(p);
        }
        bp_put(pool, p);
    } else if (!strcmp(argv[1], "ref")) {
        p = bp_get(pool, size);
        bp_ref r = bp_ref_of(p);
        for (long i = 0; i < n; i++) {
            bp_ref_retain(r);
            bp_ref_release(r);
        }
        bp_put(pool, p);
    } else if (!strcmp(argv[1], "fanout")) {
        for (long i = 0; i < n; i++) {
            p = bp_get(pool, size);
            for (int k = 0; k < 8; k++)
                bp_retain(p);
            for (int k = 0; k < 9; k++)
                bp_release(p);
        }
    } else if (!strcmp(argv[1], "fanout_ref")) {
        for (long i = 0; i < n; i++) {
            p = bp_get(pool, size);
            bp_ref r = bp_ref_of(p);
            for (int k = 0; k < 8; k++)
                bp_ref_retain(r);
            for (int k = 0; k < 9; k++)
                bp_ref_release(r);
        }
    } else if (!strcmp(argv[1], "retain_n")) {
        p = bp_get(pool, size);
        for (long i = 0; i < n; i++) {
            bp_retain_n(p, 8);
            bp_release_n(p, 8);
        }
        bp_put(pool, p);
    } else if (!strcmp(argv[1], "retain_watched")) {
        bp_watcher w = {on_return};
        p = bp_get(pool, size);
        bp_retain(p);
        bp_watch(p, &w);
        for (long i = 0; i < n; i++) {
            bp_retain(p);
            bp_release(p);
        }
        bp_release(p); /* the watch fires */
        bp_put(pool, p);
    } else if (!strcmp(argv[1], "lend")) {
        bp_watcher w = {on_return};
        p = bp_get(pool, size);
        for (long i = 0; i < n; i++) {
            bp_retain(p);
            bp_watch(p, &w);
            bp_release(p);
        }
        bp_put(pool, p);
        if (calls != (unsigned long)n)
            return 1;
    } else if (!strcmp(argv[1], "getrelease")) {
        for (long i = 0; i < n; i++) {
            p = bp_get(pool, size);
            __asm__ volatile("" : : "r"(p) : "memory");
            bp_release(p);
        }
    } else {
        for (long i = 0; i < n; i++) {
            p = bp_get(pool, size);
            __asm__ volatile("" : : "r"(p) : "memory");
            bp_put(pool, p);
        }
    }
    return (int)bp_pool_destroy(pool);
}
