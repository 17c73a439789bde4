/* SPDX-License-Identifier: MIT */
/*
 * json.c - the JSON documents: the seed-shaped statistics (GetPoolStats:
 * exactly its keys) and the detailed one (every statistic of the one list in
 * bytepool.h, per tier, recent lengths, tier advice) that expvar and the
 * dashboard read.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

static size_t *recent(bp_pool *pool, size_t *n) {
    size_t *lens = malloc((pool->window + 1) * sizeof(size_t));
    *n = lens ? bp_pool_recent_lengths(pool, lens, pool->window) : 0;
    return lens;
}

static void lens_array(bp_sbuf *b, const size_t *lens, size_t n) {
    bp__sb_printf(b, "[");
    for (size_t i = 0; i < n; i++)
        bp__sb_printf(b, "%s%zu", i ? "," : "", lens[i]);
    bp__sb_printf(b, "]");
}

void bp__json_seed(bp_sbuf *b, bp_pool *pool) {
    bp_stats st;
    bp_pool_stats(pool, &st);
    size_t n;
    size_t *lens = recent(pool, &n);
    if (!lens)
        b->oom = true;
    bp__sb_printf(b, "{\"pools\":{");
    for (size_t t = 0; t < st.ntiers; t++)
        bp__sb_printf(b, "%s\"%zu\":{\"get\":%" PRIu64 ",\"put\":%" PRIu64 "}", t ? "," : "",
                      st.tiers[t].size, st.tiers[t].get, st.tiers[t].put);
    bp__sb_printf(b,
                  "},\"discarded\":%" PRIu64 ",\"total_get\":%" PRIu64 ",\"total_put\":%" PRIu64
                  ",\"recent_lengths\":",
                  st.discarded, st.total_get, st.total_put);
    lens_array(b, lens, n);
    bp__sb_printf(b, "}");
    free(lens);
}

void bp__json_detail(bp_sbuf *b, bp_pool *pool) {
    bp_stats st;
    bp_advice adv;
    bp_pool_stats(pool, &st);
    bp_pool_advice(pool, 0, &adv);
    bp__sb_printf(b, "{");
#define BP_JSON_FIELD_(field, metric, type, help)                                                  \
    bp__sb_printf(b, "\"" #field "\":%" PRIu64 ",", st.field);
    BP_POOL_STAT_FIELDS(BP_JSON_FIELD_)
    bp__sb_printf(b, "\"tiers\":[");
    for (size_t t = 0; t < st.ntiers; t++) {
        const bp_tier_stats *ts = &st.tiers[t];
        bp__sb_printf(b, "%s{\"size\":%zu", t ? "," : "", ts->size);
#define BP_JSON_TIER_(field, metric, type, help)                                                   \
    bp__sb_printf(b, ",\"" #field "\":%" PRIu64, ts->field);
        BP_TIER_STAT_FIELDS(BP_JSON_TIER_)
        bp__sb_printf(b, "}");
    }
    size_t n;
    size_t *lens = recent(pool, &n);
    if (!lens)
        b->oom = true;
    bp__sb_printf(b, "],\"recent_lengths\":");
    lens_array(b, lens, n);
    free(lens);
    bp__sb_printf(b, ",\"advice\":{\"tiers\":");
    lens_array(b, adv.tiers, adv.ntiers);
    bp__sb_printf(
        b, ",\"samples\":%" PRIu64 ",\"waste_current\":%" PRIu64 ",\"waste_advised\":%" PRIu64 "}}",
        adv.samples, adv.waste_current, adv.waste_advised);
}

char *bp_pool_stats_json(bp_pool *pool) {
    if (!pool) {
        errno = EINVAL;
        return NULL;
    }
    bp_sbuf b = {0};
    bp__json_seed(&b, pool);
    return bp__sb_finish(&b);
}

char *bp_pool_detail_json(bp_pool *pool) {
    if (!pool) {
        errno = EINVAL;
        return NULL;
    }
    bp_sbuf b = {0};
    bp__json_detail(&b, pool);
    return bp__sb_finish(&b);
}
