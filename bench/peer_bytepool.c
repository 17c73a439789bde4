/* SPDX-License-Identifier: MIT */
/* peer_bytepool.c - libbytepool itself. Variants: "" (defaults), "norec"
 * (no recent lengths), "locked" (locked recorder ring). */
#include "bench.h"

#include <bytepool.h>
#include <string.h>

static void *setup(const char *variant) {
    bp_config cfg = {0};
    if (variant && !strcmp(variant, "norec"))
        cfg.flags = BP_NO_RECENT;
    if (variant && !strcmp(variant, "locked"))
        cfg.recorder_kind = BP_RING_LOCKED;
    return bp_pool_new(&cfg);
}
static void *get(void *st, size_t len) { return bp_get(st, len); }
static void *retain(void *st, void *h) {
    (void)st;
    return bp_retain(h);
}
static void *retain_n(void *st, void *h, size_t n) {
    (void)st;
    return bp_retain_n(h, n);
}
static void release(void *st, void *h) { bp_put(st, h); }
static unsigned char *data(void *h) { return h; }
static void trim(void *st) { bp_pool_trim(st); }
static void teardown(void *st) { bp_pool_destroy(st); }

const peer peer_bytepool = {"bytepool",          setup, get, retain, release, data, trim, teardown,
                            .retain_n = retain_n};
