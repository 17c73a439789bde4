/* SPDX-License-Identifier: MIT */
/* A program built against the 0.2.0 header (a copy kept in tests/abi) and
 * run against today's library: every caller-allocated struct of 0.2 is
 * passed and read back, with each field of bp_config set, so a field the
 * library misplaced shows as wrong behaviour. Built a second time against
 * today's header (BP_ABI_NEW_HEADER): the same source still compiles. */
#ifdef BP_ABI_NEW_HEADER
#include <bytepool.h>
#else
#include "bytepool-0.2.0.h"
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c);                  \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static int errors_seen;
static void on_error(void *ctx, int err, const char *op, const void *ptr) {
    (void)op;
    (void)ptr;
    CHECK(ctx == &errors_seen);
    if (err != EINVAL && err != ENOMEM)
        fprintf(stderr, "unexpected error %d from %s\n", err, op);
    CHECK(err == EINVAL || err == ENOMEM);
    errors_seen++;
}

static size_t rec_lens[64], rec_n;
static void rec_push(void *ctx, size_t len) {
    (void)ctx;
    rec_lens[rec_n++ % 64] = len;
}
static size_t rec_read(void *ctx, size_t *out, size_t max) {
    (void)ctx;
    size_t n = rec_n < 64 ? rec_n : 64;
    n = n < max ? n : max;
    memcpy(out, rec_lens, n * sizeof(size_t));
    return n;
}

static void pool_config(void) {
    static const size_t sizes[] = {8192, 256};
    static const bp_recorder rec = {NULL, rec_push, rec_read};
    bp_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.sizes = sizes;
    cfg.nsizes = 2;
    cfg.tcache_bytes = 16384;
    cfg.idle_bytes = 1 << 20;
    cfg.decay_ms = 50;
    cfg.flags = BP_NO_BACKGROUND;
    cfg.recent_window = 64;
    cfg.on_error = on_error;
    cfg.error_ctx = &errors_seen;
    cfg.recorder_kind = BP_RING_LOCKED;
    cfg.recorder = &rec;
    cfg.leaks = BP_LEAKS_OFF;
    cfg.max_bytes = 6u << 20; /* the last field of 0.2 */
    bp_pool *pool = bp_pool_new(&cfg);
    CHECK(pool);

    size_t got[2];
    CHECK(bp_pool_sizes(pool, got, 2) == 2 && got[0] == 256 && got[1] == 8192);
    char *a = bp_get(pool, 100);
    CHECK(a && bp_cap(a) == 256);
    CHECK(bp_put(pool, &errors_seen) == EINVAL && errors_seen == 1); /* on_error, error_ctx */
    CHECK(bp_put(pool, a) == 0);
    CHECK(rec_n == 0 || rec_lens[0] == 100);

    /* max_bytes: 8 KiB buffers until the budget refuses */
    void *held[1024];
    size_t n = 0;
    while (n < 1024 && (held[n] = bp_get(pool, 8192)) != NULL)
        n++;
    CHECK(n > 0 && n < 1024 && errno == ENOMEM && errors_seen == 2);

    bp_stats st;
    memset(&st, 0xa5, sizeof st);
    CHECK(bp_pool_stats(pool, &st) == 0);
    CHECK(st.ntiers == 2 && st.tiers[0].size == 256 && st.tiers[1].size == 8192);
    CHECK(st.total_get == n + 1 && st.outstanding == n && st.budget_refused == 1);
    CHECK(st.max_bytes == 6u << 20 && st.refused == 1 && st.tiers[1].live == n);
    CHECK(st.tiers[2].size == 0); /* the rest zeroed, as 0.2 did */
    for (size_t i = 0; i < n; i++)
        CHECK(bp_put(pool, held[i]) == 0);

    bp_advice adv;
    memset(&adv, 0xa5, sizeof adv);
    CHECK(bp_pool_advice(pool, 1, &adv) == 0);
    CHECK(adv.samples == (rec_n < 64 ? rec_n : 64));
    CHECK(adv.ntiers == 1 && adv.waste_current >= adv.waste_advised);
    CHECK(bp_pool_destroy(pool) == 0);
}

static int inits;
static void obj_init(void *obj, void *arg) {
    CHECK(arg == &inits);
    memset(obj, 0, 48);
    inits++;
}

static void objpool_config(void) {
    bp_objpool_config oc;
    memset(&oc, 0, sizeof oc);
    oc.obj_size = 48;
    oc.init = obj_init;
    oc.arg = &inits;
    oc.tcache_bytes = 4096; /* the last field of 0.2 */
    bp_objpool *op = bp_objpool_new(&oc);
    CHECK(op);
    void *o = bp_objpool_get(op);
    CHECK(o && inits == 1);
    CHECK(bp_objpool_put(op, o) == 0 && bp_objpool_put(op, o) == EALREADY);
    bp_obj_stats os;
    memset(&os, 0xa5, sizeof os);
    CHECK(bp_objpool_stats(op, &os) == 0);
    CHECK(os.get == 1 && os.put == 1 && os.live == 0 && os.created == 1 && os.refused == 1);
    CHECK(bp_objpool_destroy(op) == 0);
}

int main(void) {
    pool_config();
    objpool_config();
    printf("built against %s, %d.%d.%d, ran with %s (%u): ok\n",
#ifdef BP_ABI_NEW_HEADER
           "today's header",
#else
           "the 0.2.0 header",
#endif
           BP_VERSION_MAJOR, BP_VERSION_MINOR, BP_VERSION_PATCH, bp_version(), bp_version_number());
    return 0;
}
