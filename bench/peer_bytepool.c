/* SPDX-License-Identifier: MIT */
/* peer_bytepool.c - libbytepool itself. Variants: "" (defaults), "norec"
 * (no recent lengths), "locked" (locked recorder ring). peer_bytepool_ref:
 * every get also takes the buffer's count handle (bp_ref_of), and
 * references of the thread's newest buffer go through it: the fan-out loop
 * bp_ref is for. */
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

/* "ref": the thread's newest buffer and its handle */
static __thread void *ref_buf;
static __thread bp_ref ref_of_buf;
static void *get_ref(void *st, size_t len) {
    void *p = bp_get(st, len);
    ref_buf = p;
    ref_of_buf = bp_ref_of(p);
    return p;
}
static void *retain_ref(void *st, void *h) {
    (void)st;
    return h == ref_buf && bp_ref_retain(ref_of_buf) == 0 ? h : bp_retain(h);
}
static void *retain_n_ref(void *st, void *h, size_t n) {
    (void)st;
    return h == ref_buf && bp_ref_retain_n(ref_of_buf, n) == 0 ? h : bp_retain_n(h, n);
}
static void release_ref(void *st, void *h) {
    if (h == ref_buf)
        bp_ref_release(ref_of_buf);
    else
        bp_put(st, h);
}
static unsigned char *data(void *h) { return h; }
static void trim(void *st) { bp_pool_trim(st); }
static void teardown(void *st) { bp_pool_destroy(st); }

const peer peer_bytepool = {"bytepool",          setup, get, retain, release, data, trim, teardown,
                            .retain_n = retain_n};
const peer peer_bytepool_ref = {"bytepool_ref", setup,       get_ref,
                                retain_ref,     release_ref, data,
                                trim,           teardown,    .retain_n = retain_n_ref};
