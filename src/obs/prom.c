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

typedef struct prom_sample { /* a number of a function variable */
    char *var;               /* a copy, as prom_pool's name */
    char family[72];         /* name, plus _total for a counter */
    bp_metric m;
    size_t order; /* the family's first keeps its help and type */
} prom_sample;

typedef struct prom_set {
    prom_pool *p;
    size_t n, cap;
    prom_sample *m;
    size_t nm, capm;
    bool oom;
} prom_set;

/* Backslash and newline escaped, and '"' too in a label value (HELP text
 * keeps its quotes), as the format asks. */
static void escaped(bp_sbuf *b, const char *v, bool quote) {
    for (; v && *v; v++) {
        if (*v == '\\')
            bp__sb_printf(b, "\\\\");
        else if (*v == '"' && quote)
            bp__sb_printf(b, "\\\"");
        else if (*v == '\n')
            bp__sb_printf(b, "\\n");
        else
            bp__sb_printf(b, "%c", *v);
    }
}

static void label(bp_sbuf *b, const char *v) { escaped(b, v, true); }

/* arr (n used of *cap elements of elem bytes) with room for one more: arr
 * itself, a larger copy, or NULL when out of memory (arr stays as it was). */
static void *grow(void *arr, size_t n, size_t *cap, size_t elem, size_t first) {
    if (n < *cap)
        return arr;
    size_t c = *cap ? *cap * 2 : first;
    void *p = realloc(arr, c * elem);
    if (p)
        *cap = c;
    return p;
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

/* [a-z_][a-z0-9_]*, 1..64 characters: a name no label or suffix can break;
 * then, optionally, one label: {[a-z_]+="[A-Za-z0-9_.-]*"} (up to 32
 * characters). *base is the name's length before the label. */
static bool metric_name_ok(const char *n, size_t *base) {
    size_t len = 0;
    for (; n && n[len] && n[len] != '{'; len++)
        if (!((n[len] >= 'a' && n[len] <= 'z') || n[len] == '_' ||
              (len && n[len] >= '0' && n[len] <= '9')))
            return false;
    *base = len;
    if (len < 1 || len > 64)
        return false;
    if (!n[len])
        return true;
    const char *l = n + len + 1, *q = l;
    while ((*q >= 'a' && *q <= 'z') || *q == '_')
        q++;
    if (q == l || q[0] != '=' || q[1] != '"')
        return false;
    for (q += 2; (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
                 *q == '_' || *q == '.' || *q == '-';)
        q++;
    return q[0] == '"' && q[1] == '}' && !q[2] && q + 2 - (n + len) <= 32;
}

/* Whether a pool family is called `family` (after the counter suffix). */
static bool pool_family(const char *family) {
#define BP_PROM_NAME_(field, m, type, help)                                                        \
    if (!strcmp(family, strcmp(#type, "counter") ? #m : #m "_total"))                              \
        return true;
    BP_POOL_STAT_FIELDS(BP_PROM_NAME_)
    BP_TIER_STAT_FIELDS(BP_PROM_NAME_)
    return !strcmp(family, "waste_bytes");
}

static int by_family(const void *a, const void *b) {
    const prom_sample *x = a, *y = b;
    int c = strcmp(x->family, y->family);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

static void write_metrics(bp_sbuf *b, prom_set *s) {
    if (s->nm) /* qsort's base may not be NULL, even for no elements */
        qsort(s->m, s->nm, sizeof(*s->m), by_family);
    const prom_sample *first = NULL;
    for (size_t i = 0; i < s->nm; i++) {
        const prom_sample *x = &s->m[i];
        if (!first || strcmp(first->family, x->family)) {
            first = x;
            bp__sb_printf(b, "# HELP bytepool_%s ", x->family);
            escaped(b, x->m.help, false);
            bp__sb_printf(b, "\n# TYPE bytepool_%s %s\n", x->family,
                          x->m.counter ? "counter" : "gauge");
        } else if (!x->m.counter != !first->m.counter) {
            continue; /* a type other than the family's */
        }
        bp__sb_printf(b, "bytepool_%s{var=\"", x->family);
        label(b, x->var);
        const char *extra = strchr(x->m.name, '{'); /* checked: label="value"} */
        bp__sb_printf(b, "\"%s%s %" PRIu64 "\n", extra ? "," : "}", extra ? extra + 1 : "",
                      x->m.value);
    }
}

static void add_metrics(void *ctx, const char *name, const bp_metric *m, size_t n) {
    prom_set *s = ctx;
    for (size_t i = 0; i < n && !s->oom; i++) {
        prom_sample x = {NULL, {0}, m[i], s->nm};
        size_t base;
        if (!metric_name_ok(m[i].name, &base))
            continue;
        snprintf(x.family, sizeof x.family, "%.*s%s", (int)base, m[i].name,
                 m[i].counter ? "_total" : "");
        if (pool_family(x.family))
            continue;
        prom_sample *more = grow(s->m, s->nm, &s->capm, sizeof(*s->m), 16);
        if (more)
            s->m = more;
        if (!more || !(x.var = strdup(name))) {
            s->oom = true;
            return;
        }
        s->m[s->nm++] = x;
    }
}

static void add(void *ctx, bp_pool *pool, const char *name) {
    prom_set *s = ctx;
    prom_pool *more = grow(s->p, s->n, &s->cap, sizeof(*s->p), 8);
    if (!more) {
        s->oom = true;
        return;
    }
    s->p = more;
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
    if (!s->oom) {
        write_set(&b, s);
        write_metrics(&b, s);
    }
    b.oom |= s->oom;
    for (size_t i = 0; i < s->n; i++)
        free(s->p[i].name);
    free(s->p);
    for (size_t i = 0; i < s->nm; i++)
        free(s->m[i].var);
    free(s->m);
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
    bp__expvar_each_metrics(add_metrics, &s);
    return finish(&s);
}
