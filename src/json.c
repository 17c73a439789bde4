/*
 * json.c - the seed-shaped statistics document (GetPoolStats), built in a
 * growing malloc'd string. Only numbers are written, so nothing needs
 * escaping; the shape is fixed by the seed and checked by a JSON parser in
 * the tests.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>

typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

char *bp_pool_stats_json(bp_pool *pool) {
    bp_stats st;
    if (!pool || bp_pool_stats(pool, &st) != 0) {
        errno = EINVAL;
        return NULL;
    }
    size_t win = pool->window;
    size_t *lens = malloc(win * sizeof(size_t));
    sbuf b = {malloc(1024), 0, 1024, false};
    if (!lens || !b.s) {
        free(lens);
        free(b.s);
        errno = ENOMEM;
        return NULL;
    }
    size_t n = bp_pool_recent_lengths(pool, lens, win);
    sb_printf(&b, "{\"pools\":{");
    for (size_t t = 0; t < st.ntiers; t++)
        sb_printf(&b, "%s\"%zu\":{\"get\":%" PRIu64 ",\"put\":%" PRIu64 "}", t ? "," : "",
                  st.tiers[t].size, st.tiers[t].get, st.tiers[t].put);
    sb_printf(&b,
              "},\"discarded\":%" PRIu64 ",\"total_get\":%" PRIu64 ",\"total_put\":%" PRIu64
              ",\"recent_lengths\":[",
              st.discarded, st.total_get, st.total_put);
    for (size_t i = 0; i < n; i++)
        sb_printf(&b, "%s%zu", i ? "," : "", lens[i]);
    sb_printf(&b, "]}");
    free(lens);
    if (b.oom) {
        free(b.s);
        errno = ENOMEM;
        return NULL;
    }
    return b.s;
}
