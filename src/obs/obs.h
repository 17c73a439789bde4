/* SPDX-License-Identifier: MIT */
/*
 * obs.h - the observability layer's own declarations: a string builder,
 * the JSON writers, the expvar registry and the tier advisor. It reads the
 * core only through core/observe.h.
 */
#ifndef BP_OBS_H
#define BP_OBS_H

#include "../core/observe.h"

/* sbuf.c: a growing malloc'd string; every writer is a no-op after a failure */
typedef struct bp_sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} bp_sbuf;
BP_HIDDEN void bp__sb_printf(bp_sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
BP_HIDDEN void bp__sb_bytes(bp_sbuf *b, const void *p, size_t n); /* binary, as they are */
BP_HIDDEN void bp__sb_json_str(bp_sbuf *b, const char *str);      /* quoted, escaped, valid UTF-8 */
BP_HIDDEN size_t bp__utf8_len(const unsigned char *c);            /* one sequence; 0: ill-formed */
BP_HIDDEN bool bp__utf8_valid(const char *s);
BP_HIDDEN char *bp__sb_finish(bp_sbuf *b); /* NULL + ENOMEM on failure */

/* json.c, expvar.c, prom.c */
BP_HIDDEN void bp__json_seed(bp_sbuf *b, bp_pool *pool);
BP_HIDDEN void bp__json_detail(bp_sbuf *b, bp_pool *pool);
typedef void (*bp_ev_visit)(void *ctx, bp_pool *pool, const char *prefix);
BP_HIDDEN void bp__expvar_each(bp_ev_visit fn, void *ctx); /* registry locked */
/* Every variable with metrics: its name and what its metrics function gave. */
typedef void (*bp_ev_metrics_visit)(void *ctx, const char *name, const bp_metric *m, size_t n);
BP_HIDDEN void bp__expvar_each_metrics(bp_ev_metrics_visit fn, void *ctx); /* registry locked */

/* advisor.c */
BP_HIDDEN int bp__pool_advice(bp_pool *pool, size_t max_tiers, unsigned flags, bp_advice *out);

#endif /* BP_OBS_H */
