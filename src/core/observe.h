/* SPDX-License-Identifier: MIT */
/*
 * observe.h - the one interface through which the observability layer
 * (src/obs: JSON, expvar, Prometheus, the tier advisor) reads the core.
 *
 * The core (src/core) knows nothing of the exports: it keeps its counters
 * and samples, and hands out copies of them here. Files in src/obs include
 * this header and never internal.h (tests/check_layers.sh checks both
 * directions). Never installed; every name is bp__ and hidden.
 */
#ifndef BP_OBSERVE_H
#define BP_OBSERVE_H

#include "bytepool.h"
#include "hidden.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A snapshot of the statistics (as bp_pool_stats, this library's layout). */
BP_HIDDEN void bp__pool_stats(bp_pool *pool, bp_stats *out);

/* What the exports need besides the statistics; fixed for the pool's life. */
typedef struct bp_pool_shape {
    size_t ntiers;
    const size_t *sizes; /* ascending, ntiers of them; valid while the pool is */
    size_t window;       /* recent lengths kept */
    bp_leaks leaks;      /* allocation-site sampling in force */
} bp_pool_shape;
BP_HIDDEN void bp__pool_shape(const bp_pool *pool, bp_pool_shape *out);

/* Where outstanding buffers were allocated, grouped by call site (the
 * caller of bp_get), most bytes first: copies up to max sites; returns how
 * many, and in *sampled how many outstanding buffers have a known site. */
#define BP_LEAK_FRAMES 16
typedef struct bp_leak_site {
    size_t count, bytes; /* buffers and bytes requested at the site */
    uint64_t oldest_ms;  /* bp__now_ms() when its oldest buffer was got */
    int nframes;
    void *frames[BP_LEAK_FRAMES];
} bp_leak_site;
BP_HIDDEN size_t bp__leak_sites(bp_pool *pool, bp_leak_site *out, size_t max, size_t *sampled);

/* The coarse monotonic clock the core stamps with, in milliseconds. */
BP_HIDDEN uint64_t bp__now_ms(void);

/* The struct-size rules of docs/abi.md (core/abi.c): a caller's input
 * struct of `size` bytes into ours, our output into theirs; 0 or errno. */
BP_HIDDEN int bp__abi_in(void *ours, size_t ours_size, const void *theirs, size_t size, size_t min);
BP_HIDDEN int bp__abi_out(void *theirs, size_t size, const void *ours, size_t ours_size,
                          size_t min);
#define BP_END_OF(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* Refuses a call on the pool: counted, reported to the pool's callback (or
 * the process-wide handler), returned. */
BP_HIDDEN int bp__refuse_user(bp_pool *pool, int err, const char *op, const void *p);

/* Registers the core's fork handlers (once), so a layer above can register
 * its own after them. */
BP_HIDDEN void bp__atfork_once(void);

/* fn is called first in bp_pool_destroy, on its thread, no lock held: the
 * export registry forgets the pool. One hook (the registry's); setting it
 * again replaces it. */
typedef void (*bp_pool_hook)(bp_pool *pool);
BP_HIDDEN void bp__on_pool_destroy(bp_pool_hook fn);

#endif /* BP_OBSERVE_H */
