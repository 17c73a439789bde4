/* SPDX-License-Identifier: MIT */
/*
 * expvar.c - the process-wide registry behind /debug/vars, shaped like Go's
 * expvar: "cmdline" then every published variable, names unique (a second
 * publish of a name is refused, as expvar.Publish panics). Each pool
 * publishes "<prefix>pool_stats" and "<prefix>pool_detail". Lock order:
 * registry, then the pool's lock (taken inside the stats readers).
 *
 * The core does not know this registry: a destroyed pool is forgotten
 * through the core's destroy hook, and the registry holds its own lock
 * across fork(), registered after the core's handlers so that its prepare
 * runs first (handlers run in reverse order): the same order as above.
 */
#include "obs.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ev_entry {
    char *prefix;  /* a pool's prefix, or a function variable's name */
    bp_pool *pool; /* NULL for a function variable */
    char *(*fn)(void *ctx);
    size_t (*metrics)(void *ctx, bp_metric *out, size_t cap); /* or NULL */
    void *ctx;
    struct ev_entry *next;
} ev_entry;

static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static ev_entry *ev_list; /* sorted by prefix: a stable document */
static pthread_once_t ev_once = PTHREAD_ONCE_INIT;

static void forget(bp_pool *pool) { (void)bp_expvar_unpublish(pool); }
static void fork_lock(void) { pthread_mutex_lock(&ev_mu); }
static void fork_unlock(void) { pthread_mutex_unlock(&ev_mu); }

static void ev_init(void) {
    bp__atfork_once(); /* the core's handlers first: ours must run before them */
    (void)pthread_atfork(fork_lock, fork_unlock, fork_unlock);
    bp__on_pool_destroy(forget);
}

static void ev_lock(void) {
    pthread_once(&ev_once, ev_init);
    pthread_mutex_lock(&ev_mu);
}

static int insert(const char *prefix, bp_pool *pool, const ev_entry *with);

int bp_expvar_publish(bp_pool *pool, const char *prefix) {
    if (!pool || !prefix || !bp__utf8_valid(prefix)) /* names must stay valid JSON and text */
        return bp__refuse_user(pool, EINVAL, "bp_expvar_publish", prefix);
    return insert(prefix, pool, NULL);
}

int bp_expvar_publish_func(const char *name, char *(*fn)(void *ctx), void *ctx) {
    if (!name || !fn || !bp__utf8_valid(name))
        return bp__refuse_user(NULL, EINVAL, "bp_expvar_publish_func", name);
    ev_entry with = {.fn = fn, .ctx = ctx};
    return insert(name, NULL, &with);
}

int bp_expvar_publish_metrics(const char *name, char *(*fn)(void *ctx),
                              size_t (*metrics)(void *ctx, bp_metric *out, size_t cap), void *ctx) {
    if (!name || !fn || !metrics || !bp__utf8_valid(name))
        return bp__refuse_user(NULL, EINVAL, "bp_expvar_publish_metrics", name);
    ev_entry with = {.fn = fn, .metrics = metrics, .ctx = ctx};
    return insert(name, NULL, &with);
}

/* The variables an entry puts in the document: a pool's two, or a
 * function's one (its name). */
static const char *const pool_suffixes[] = {"pool_stats", "pool_detail"};

/* Does a variable of the pool (or function) `a` have the name of one of
 * `b`'s? Compared as the names the document would hold, both ways. */
static bool names_meet(const char *a, bool a_pool, const char *b, bool b_pool) {
    for (size_t i = 0; i < (a_pool ? 2u : 1u); i++)
        for (size_t j = 0; j < (b_pool ? 2u : 1u); j++) {
            const char *sa = a_pool ? pool_suffixes[i] : "", *sb = b_pool ? pool_suffixes[j] : "";
            size_t la = strlen(a), lb = strlen(b);
            if (la + strlen(sa) != lb + strlen(sb))
                continue;
            /* a+sa == b+sb, without building either */
            const char *x = la <= lb ? a : b, *y = la <= lb ? b : a;
            const char *xs = la <= lb ? sa : sb, *ys = la <= lb ? sb : sa;
            size_t lx = la <= lb ? la : lb, ly = la <= lb ? lb : la;
            if (!strncmp(x, y, lx) && !strncmp(xs, y + lx, ly - lx) && !strcmp(xs + (ly - lx), ys))
                return true;
        }
    return false;
}

/* Names are unique across pools and functions (and "cmdline", which the
 * document always holds); the list stays sorted. A function variable's
 * callbacks come in `with`. */
static int insert(const char *prefix, bp_pool *pool, const ev_entry *with) {
    ev_entry *e = calloc(1, sizeof(*e));
    char *copy = strdup(prefix);
    if (!e || !copy) {
        free(e);
        free(copy);
        return ENOMEM;
    }
    if (with)
        *e = *with;
    e->prefix = copy;
    e->pool = pool;
    ev_lock();
    int err = 0;
    ev_entry **link = &ev_list;
    if (names_meet(prefix, pool != NULL, "cmdline", false))
        err = EEXIST;
    for (ev_entry *x = ev_list; x; x = x->next)
        if (pool && x->pool == pool)
            err = EINVAL;
        else if (names_meet(prefix, pool != NULL, x->prefix, x->pool != NULL))
            err = EEXIST;
    while (!err && *link && strcmp((*link)->prefix, prefix) < 0)
        link = &(*link)->next;
    if (!err) {
        e->next = *link;
        *link = e;
    }
    pthread_mutex_unlock(&ev_mu);
    if (err) {
        free(copy);
        free(e);
    }
    return err;
}

static int unlink_entry(bp_pool *pool, const char *name) {
    ev_lock();
    ev_entry *gone = NULL;
    for (ev_entry **link = &ev_list; *link; link = &(*link)->next)
        if (pool ? (*link)->pool == pool : !(*link)->pool && !strcmp((*link)->prefix, name)) {
            gone = *link;
            *link = gone->next;
            break;
        }
    pthread_mutex_unlock(&ev_mu);
    if (!gone)
        return ENOENT;
    free(gone->prefix);
    free(gone);
    return 0;
}

int bp_expvar_unpublish(bp_pool *pool) { return pool ? unlink_entry(pool, NULL) : ENOENT; }

int bp_expvar_unpublish_func(const char *name) { return name ? unlink_entry(NULL, name) : ENOENT; }

/* The arguments, each whole however long (escaped by bp__sb_json_str). */
static void cmdline(bp_sbuf *b) {
    bp__sb_printf(b, "\"cmdline\":[");
    FILE *f = fopen("/proc/self/cmdline", "r");
    bp_sbuf arg = {0};
    int ch, first = 1;
    while (f && (ch = fgetc(f)) != EOF) {
        if (ch) {
            bp__sb_printf(&arg, "%c", ch);
            continue;
        }
        bp__sb_printf(b, "%s", first ? "" : ",");
        bp__sb_json_str(b, arg.s ? arg.s : "");
        b->oom |= arg.oom;
        arg.len = 0;
        if (arg.s)
            arg.s[0] = 0;
        first = 0;
    }
    free(arg.s);
    if (f)
        fclose(f);
    bp__sb_printf(b, "]");
}

/* ,"<prefix><suffix>": */
static void var_name(bp_sbuf *b, const char *prefix, const char *suffix) {
    bp_sbuf name = {0};
    bp__sb_printf(&name, "%s%s", prefix, suffix);
    bp__sb_printf(b, ",\n");
    bp__sb_json_str(b, name.s ? name.s : "");
    b->oom |= name.oom;
    free(name.s);
    bp__sb_printf(b, ":");
}

char *bp_expvar_json(void) {
    bp_sbuf b = {0};
    bp__sb_printf(&b, "{");
    cmdline(&b);
    ev_lock();
    for (ev_entry *e = ev_list; e; e = e->next) {
        if (e->fn) { /* a function variable: its JSON, or null */
            var_name(&b, e->prefix, "");
            char *v = e->fn(e->ctx);
            bp__sb_printf(&b, "%s", v ? v : "null");
            free(v);
            continue;
        }
        var_name(&b, e->prefix, pool_suffixes[0]);
        bp__json_seed(&b, e->pool);
        var_name(&b, e->prefix, pool_suffixes[1]);
        bp__json_detail(&b, e->pool);
    }
    pthread_mutex_unlock(&ev_mu);
    bp__sb_printf(&b, "}\n");
    return bp__sb_finish(&b);
}

void bp__expvar_each_metrics(bp_ev_metrics_visit fn, void *ctx) {
    static bp_metric m[BP_METRICS_ROOM]; /* registry lock held: one reader at a time */
    ev_lock();
    for (ev_entry *e = ev_list; e; e = e->next)
        if (e->metrics) {
            size_t n = e->metrics(e->ctx, m, BP_METRICS_ROOM);
            fn(ctx, e->prefix, m, n < BP_METRICS_ROOM ? n : BP_METRICS_ROOM);
        }
    pthread_mutex_unlock(&ev_mu);
}

/* prom.c walks the published pools with the registry locked. */
void bp__expvar_each(bp_ev_visit fn, void *ctx) {
    ev_lock();
    for (ev_entry *e = ev_list; e; e = e->next)
        if (e->pool)
            fn(ctx, e->pool, e->prefix);
    pthread_mutex_unlock(&ev_mu);
}
