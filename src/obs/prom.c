/* SPDX-License-Identifier: MIT */
/*
 * prom.c - Prometheus text exposition format 0.0.4. Every family comes from
 * the one statistics list in bytepool.h (counters get the _total suffix),
 * is written once with HELP and TYPE, and holds the series of every pool
 * being exported; label values are escaped as the format requires.
 */
#include "obs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct prom_pool {
    char *name; /* a copy: the registry may change once it is unlocked */
    bp_stats st;
    bp_advice adv;
} prom_pool;

typedef struct prom_set {
    prom_pool *p;
    size_t n, cap;
    bool oom;
} prom_set;

static void label(bp_sbuf *b, const char *v) {
    for (; *v; v++) {
        if (*v == '\\')
            bp__sb_printf(b, "\\\\");
        else if (*v == '"')
            bp__sb_printf(b, "\\\"");
        else if (*v == '\n')
            bp__sb_printf(b, "\\n");
        else
            bp__sb_printf(b, "%c", *v);
    }
}

static void series(bp_sbuf *b, const char *metric, const char *pool, const char *extra,
                   uint64_t value) {
    bp__sb_printf(b, "bytepool_%s{pool=\"", metric);
    label(b, pool);
    bp__sb_printf(b, "\"%s} %" PRIu64 "\n", extra, value);
}

static void family(bp_sbuf *b, char *metric, size_t cap, const char *base, const char *type,
                   const char *help) {
    snprintf(metric, cap, "%s%s", base, !strcmp(type, "counter") ? "_total" : "");
    bp__sb_printf(b, "# HELP bytepool_%s %s.\n# TYPE bytepool_%s %s\n", metric, help, metric, type);
}

static void write_set(bp_sbuf *b, const prom_set *s) {
    char metric[128], extra[64];
#define BP_PROM_POOL_(field, m, type, help)                                                        \
    family(b, metric, sizeof metric, #m, #type, help);                                             \
    for (size_t i = 0; i < s->n; i++)                                                              \
        series(b, metric, s->p[i].name, "", s->p[i].st.field);
    BP_POOL_STAT_FIELDS(BP_PROM_POOL_)
#define BP_PROM_TIER_(field, m, type, help)                                                        \
    family(b, metric, sizeof metric, #m, #type, help);                                             \
    for (size_t i = 0; i < s->n; i++)                                                              \
        for (size_t t = 0; t < s->p[i].st.ntiers; t++) {                                           \
            snprintf(extra, sizeof extra, ",tier=\"%zu\"", s->p[i].st.tiers[t].size);              \
            series(b, metric, s->p[i].name, extra, s->p[i].st.tiers[t].field);                     \
        }
    BP_TIER_STAT_FIELDS(BP_PROM_TIER_)
    family(b, metric, sizeof metric, "waste_bytes", "gauge",
           "Bytes wasted over the recent lengths by the current or the advised tiers");
    for (size_t i = 0; i < s->n; i++) {
        series(b, metric, s->p[i].name, ",tiers=\"current\"", s->p[i].adv.waste_current);
        series(b, metric, s->p[i].name, ",tiers=\"advised\"", s->p[i].adv.waste_advised);
    }
}

static void add(void *ctx, bp_pool *pool, const char *name) {
    prom_set *s = ctx;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        prom_pool *p = realloc(s->p, cap * sizeof(prom_pool));
        if (!p) {
            s->oom = true;
            return;
        }
        s->p = p;
        s->cap = cap;
    }
    prom_pool *x = &s->p[s->n];
    x->name = strdup(name);
    if (!x->name) {
        s->oom = true;
        return;
    }
    s->n++;
    bp_pool_stats(pool, &x->st);
    bp_pool_advice(pool, 0, &x->adv);
}

static char *finish(prom_set *s) {
    bp_sbuf b = {0};
    if (!s->oom)
        write_set(&b, s);
    b.oom |= s->oom;
    for (size_t i = 0; i < s->n; i++)
        free(s->p[i].name);
    free(s->p);
    return bp__sb_finish(&b);
}

char *bp_pool_stats_prometheus(bp_pool *pool, const char *name) {
    if (!pool || !name || !bp__utf8_valid(name)) { /* the format is UTF-8 text */
        bp__refuse_user(pool, EINVAL, "bp_pool_stats_prometheus", name);
        return NULL;
    }
    prom_set s = {0};
    add(&s, pool, name);
    return finish(&s);
}

char *bp_prometheus_all(void) {
    prom_set s = {0};
    bp__expvar_each(add, &s);
    return finish(&s);
}
