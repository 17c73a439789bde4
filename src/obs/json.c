/* SPDX-License-Identifier: MIT */
/*
 * json.c - the JSON documents: the seed-shaped statistics (GetPoolStats:
 * exactly its keys) and the detailed one (every statistic of the one list in
 * bytepool.h, per tier, recent lengths, tier advice) that expvar and the
 * dashboard read.
 */
#include "obs.h"

#include <errno.h>
#include <execinfo.h>
#include <inttypes.h>
#include <stdlib.h>

#define JSON_SITES 10 /* leak sites in the detailed document, most bytes first */
#define JSON_FRAMES 6 /* frames of each */

static size_t *recent(bp_pool *pool, size_t *n) {
    bp_pool_shape sh;
    bp__pool_shape(pool, &sh);
    size_t *lens = malloc((sh.window + 1) * sizeof(size_t));
    *n = lens ? bp_pool_recent_lengths(pool, lens, sh.window) : 0;
    return lens;
}

/* "leaks":{"mode":..,"sampled":N,"oldest_age_ms":N,"sites":[{"count":N,
 * "bytes":N,"age_ms":N,"frames":["symbol",...]},...]}: where outstanding
 * buffers with a known site were allocated (BP_LEAKS_SAMPLE or _ALL). */
static void leaks_object(bp_sbuf *b, bp_pool *pool) {
    bp_pool_shape sh;
    bp__pool_shape(pool, &sh);
    static const char *const modes[] = {"default", "off", "sample", "all"};
    bp_leak_site sites[JSON_SITES];
    size_t sampled = 0;
    size_t n = sh.leaks == BP_LEAKS_OFF ? 0 : bp__leak_sites(pool, sites, JSON_SITES, &sampled);
    uint64_t now = bp__now_ms(), oldest = 0;
    for (size_t k = 0; k < n; k++)
        if (now - sites[k].oldest_ms > oldest)
            oldest = now - sites[k].oldest_ms;
    bp__sb_printf(
        b, ",\"leaks\":{\"mode\":\"%s\",\"sampled\":%zu,\"oldest_age_ms\":%" PRIu64 ",\"sites\":[",
        modes[(unsigned)sh.leaks & 3], sampled, oldest);
    for (size_t k = 0; k < n; k++) {
        int nf = sites[k].nframes < JSON_FRAMES ? sites[k].nframes : JSON_FRAMES;
        bp__sb_printf(b, "%s{\"count\":%zu,\"bytes\":%zu,\"age_ms\":%" PRIu64 ",\"frames\":[",
                      k ? "," : "", sites[k].count, sites[k].bytes, now - sites[k].oldest_ms);
        char **names = nf > 0 ? backtrace_symbols(sites[k].frames, nf) : NULL;
        for (int f = 0; f < nf; f++) {
            bp__sb_printf(b, "%s", f ? "," : "");
            bp__sb_json_str(b, names ? names[f] : "?");
        }
        free(names);
        bp__sb_printf(b, "]}");
    }
    bp__sb_printf(b, "]}");
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
        b,
        ",\"samples\":%" PRIu64 ",\"waste_current\":%" PRIu64 ",\"waste_advised\":%" PRIu64
        ",\"slack_current\":%" PRIu64 ",\"slack_advised\":%" PRIu64 "}",
        adv.samples, adv.waste_current, adv.waste_advised, adv.slack_current, adv.slack_advised);
    leaks_object(b, pool);
    bp__sb_printf(b, "}");
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
