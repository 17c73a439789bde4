/* SPDX-License-Identifier: MIT */
/*
 * shm.c - what both ends share: the handle's life (alloc, config, close),
 * the statistics and their exports (expvar JSON, Prometheus, the
 * dashboard's card), and the crash points of test builds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shm.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

SHM_HIDDEN int shm_config(bp_shm_config *out, const bp_shm_config *cfg, size_t size);
SHM_HIDDEN bp_shm *shm_alloc(bool owner);
SHM_HIDDEN void shm_free(bp_shm *s);

#ifdef BP_SHM_CRASHPOINTS
static void crash_arm(void);
#else
static void crash_arm(void) {}
#endif

/* The caller's config of `size` bytes (docs/abi.md), checked, defaults in. */
int shm_config(bp_shm_config *out, const bp_shm_config *cfg, size_t size) {
    memset(out, 0, sizeof *out);
    if (cfg) {
        if (size < sizeof *out) /* the first layout (0.5) is today's */
            return EINVAL;
        for (size_t i = sizeof *out; i < size; i++)
            if (((const unsigned char *)cfg)[i])
                return E2BIG;
        memcpy(out, cfg, size < sizeof *out ? size : sizeof *out);
    }
    if (out->max_peers == 0)
        out->max_peers = 16;
    if (out->peer_cap == 0)
        out->peer_cap = 1024;
    if (out->mode == 0)
        out->mode = 0600;
    if (out->max_peers > BP_SHM_MAX_PEERS || out->peer_cap > 65536 ||
        (out->peer_cap & (out->peer_cap - 1)) || (out->flags & ~BP_SHM_NO_THREAD) ||
        (out->mode & ~0777u))
        return EINVAL;
    crash_arm();
    return 0;
}

_Atomic unsigned shm_forks;
static void forked(void) { atomic_fetch_add(&shm_forks, 1); }
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void atfork_register(void) { pthread_atfork(NULL, NULL, forked); }

bp_shm *shm_alloc(bool owner) {
    pthread_once(&atfork_once, atfork_register);
    bp_shm *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fork_gen = ld_rlx(&shm_forks);
    s->owner = owner;
    s->pid = getpid();
    s->idle_ms = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->dir_mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->epfd = s->pool_fd = s->listen_fd = s->wake_fd = -1;
    s->sock = s->efd_in = s->efd_out = -1;
    for (size_t i = 0; i < sizeof s->pending / sizeof s->pending[0]; i++)
        s->pending[i] = -1;
    for (uint32_t i = 0; i <= BP_SHM_MAX_PEERS; i++)
        s->peers[i] = (opeer){.sock = -1, .pidfd = -1, .efd = -1, .fd_a = -1, .fd_b = -1};
    return s;
}

void shm_free(bp_shm *s) {
    if (s->published) {
        bp_expvar_unpublish_func(s->published);
        free(s->published);
    }
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->pool_fd >= 0)
        close(s->pool_fd);
    if (s->sup)
        munmap(s->sup, s->sup_bytes);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->dir_mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

shm_seg *shm_segs_find(const shm_segs *t, uintptr_t a, uint64_t *in) {
    uint32_t lo = 0, hi = t->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (t->v[mid].base <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    shm_seg *g = lo ? &t->v[lo - 1] : NULL;
    if (!g || a - g->base >= g->bytes)
        return NULL;
    *in = (a - g->base) % g->stride;
    return g;
}

shm_seg *shm_segs_add(shm_segs *t, const shm_seg *g) {
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? 2 * t->cap : 16;
        shm_seg *v = realloc(t->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        t->v = v;
        t->cap = cap;
    }
    uint32_t i = t->n++;
    for (; i > 0 && t->v[i - 1].base > g->base; i--)
        t->v[i] = t->v[i - 1];
    t->v[i] = *g;
    return &t->v[i];
}

int bp_shm_fd(bp_shm *s) {
    if (!s) {
        errno = EINVAL;
        return -1;
    }
    return s->epfd;
}

static void stats_locked(bp_shm *s, bp_shm_stats *st) {
    if (s->owner)
        shm_owner_stats(s, st);
    else
        shm_peer_stats(s, st);
}

int bp_shm_stats_sized(bp_shm *s, bp_shm_stats *out, size_t out_size) {
    if (!s || !out || out_size < sizeof(bp_shm_stats)) /* the first layout (0.5) is today's */
        return EINVAL;
    bp_shm_stats st;
    pthread_mutex_lock(&s->mu);
    stats_locked(s, &st);
    pthread_mutex_unlock(&s->mu);
    memset(out, 0, out_size);
    memcpy(out, &st, out_size < sizeof st ? out_size : sizeof st);
    return 0;
}

size_t bp_shm_shutdown(bp_shm *s, int timeout_ms) {
    if (!s || !s->owner || shm_forked(s) || timeout_ms < -1) {
        errno = !s || timeout_ms < -1 ? EINVAL : EPERM;
        return 0;
    }
    return shm_owner_shutdown(s, timeout_ms);
}

size_t bp_shm_close(bp_shm *s, int timeout_ms) {
    if (!s || shm_forked(s))
        return 0; /* a fork() child's copy is the parent's: nothing to end here */
    return s->owner ? shm_owner_close(s, timeout_ms) : shm_peer_close(s);
}

/* ---- exports ------------------------------------------------------------------ */

#define SHM_FIELDS(X)                                                                              \
    X(peers, peers, 0, "live peers")                                                               \
    X(attached, attached, 1, "peers attached")                                                     \
    X(detached, detached, 1, "peers detached in order")                                            \
    X(died, died, 1, "peers that died")                                                            \
    X(sweeps, sweeps, 1, "sweeps of a gone peer's grants")                                         \
    X(last_sweep_ns, none, 0, "nanoseconds the last sweep took from the death event")              \
    X(max_sweep_ns, none, 0, "nanoseconds the longest sweep took")                                 \
    X(granted, granted, 1, "grants given to peers")                                                \
    X(returned, returned, 1, "grants returned by peers")                                           \
    X(swept, swept, 1, "grants taken back from gone peers")                                        \
    X(held, held, 0, "grants out now")                                                             \
    X(cap_refused, cap_refused, 1, "grants refused at a peer's cap")                               \
    X(bad_returns, bad_returns, 1, "returns refused: stale, duplicate or made up")                 \
    X(imported, imported, 1, "grants a peer imported")                                             \
    X(surplus_returned, surplus_returned, 1,                                                       \
      "grants a peer returned at once (it held the buffer)")                                       \
    X(released, released, 1, "kept grants a peer returned on its last release")

#define PEER_FIELDS(X)                                                                             \
    X(held, 0, "grants this peer holds")                                                           \
    X(granted, 1, "grants given to this peer")                                                     \
    X(returned, 1, "grants this peer returned")                                                    \
    X(swept, 1, "grants swept from this peer")                                                     \
    X(cap_refused, 1, "grants refused at this peer's cap")                                         \
    X(bad_returns, 1, "returns refused from this peer")

static char *shm_json(void *ctx) {
    bp_shm *s = ctx;
    bp_shm_stats st;
    bp_shm_peer_stats ps[BP_SHM_MAX_PEERS];
    size_t np = s->owner ? bp_shm_peers(s, ps, BP_SHM_MAX_PEERS) : 0;
    pthread_mutex_lock(&s->mu);
    stats_locked(s, &st);
    pthread_mutex_unlock(&s->mu);
    /* every number at most 20 digits: 2 KiB holds the totals, 512 B a peer */
    size_t cap = 2048 + np * 512, n = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (n < cap)                                                                               \
            n += (size_t)snprintf(out + n, cap - n, __VA_ARGS__);                                  \
    } while (0)
    PUT("{\"shm\":{\"role\":\"%s\"", s->owner ? "owner" : "peer");
#define J(f, n, c, h) PUT(",\"" #f "\":%" PRIu64, st.f);
    SHM_FIELDS(J)
#undef J
    PUT(",\"peer_list\":[");
    for (size_t i = 0; i < np && i < BP_SHM_MAX_PEERS; i++) {
        PUT("%s{\"peer\":%u,\"slot\":%u,\"pid\":%d", i ? "," : "", ps[i].peer, ps[i].peer & 63,
            (int)ps[i].pid);
#define J(f, c, h) PUT(",\"" #f "\":%" PRIu64, ps[i].f);
        PEER_FIELDS(J)
#undef J
        PUT("}");
    }
    PUT("]}}");
#undef PUT
    return out;
}

/* Names with a peer label must outlive the variable: one table, built once. */
#define NPF 6
static char peer_names[NPF][BP_SHM_MAX_PEERS + 1][48];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;
static void names_build(void) {
    static const char *base[NPF] = {
#define N(f, c, h) "shm_peer_" #f,
        PEER_FIELDS(N)
#undef N
    };
    for (int f = 0; f < NPF; f++)
        for (int k = 1; k <= BP_SHM_MAX_PEERS; k++)
            snprintf(peer_names[f][k], sizeof peer_names[f][k], "%s{peer=\"%d\"}", base[f], k);
}

static size_t shm_metrics(void *ctx, bp_metric *out, size_t cap) {
    bp_shm *s = ctx;
    bp_shm_stats st;
    bp_shm_peer_stats ps[BP_SHM_MAX_PEERS];
    size_t np = s->owner ? bp_shm_peers(s, ps, BP_SHM_MAX_PEERS) : 0, n = 0;
    pthread_mutex_lock(&s->mu);
    stats_locked(s, &st);
    pthread_mutex_unlock(&s->mu);
    /* (the sweep times, in nanoseconds, are not Prometheus' base unit: JSON only) */
#define M(f, name, c, h)                                                                           \
    if (n < cap && strcmp(#name, "none"))                                                          \
        out[n++] = (bp_metric){"shm_" #name, h, c, st.f};
    SHM_FIELDS(M)
#undef M
    for (size_t i = 0; i < np && i < BP_SHM_MAX_PEERS; i++) {
        uint32_t k = ps[i].peer & 63;
        int f = 0;
#define M(fld, c, h)                                                                               \
    if (n < cap)                                                                                   \
        out[n++] = (bp_metric){peer_names[f][k], h, c, ps[i].fld};                                 \
    f++;
        PEER_FIELDS(M)
#undef M
    }
    return n;
}

int bp_shm_publish(bp_shm *s, const char *name) {
    if (!s || !name || s->published)
        return EINVAL;
    pthread_once(&names_once, names_build);
    char *copy = strdup(name);
    if (!copy)
        return ENOMEM;
    int err = bp_expvar_publish_metrics(copy, shm_json, shm_metrics, s);
    if (err) {
        free(copy);
        return err;
    }
    s->published = copy;
    return 0;
}

/* ---- crash points (tests) --------------------------------------------------------------- */

#ifdef BP_SHM_CRASHPOINTS
static char crash_name[64];
static long crash_at;
static _Atomic long crash_seen;

/* BYTEPOOL_SHM_CRASH=point:n, read at every create and attach, so a forked
 * test child sets it and then attaches. */
static void crash_arm(void) {
    const char *v = getenv("BYTEPOOL_SHM_CRASH");
    const char *colon = v ? strrchr(v, ':') : NULL;
    crash_at = 0;
    atomic_store(&crash_seen, 0);
    if (!colon || colon == v || (size_t)(colon - v) >= sizeof crash_name)
        return;
    memcpy(crash_name, v, (size_t)(colon - v));
    crash_name[colon - v] = '\0';
    crash_at = strtol(colon + 1, NULL, 10);
}

void (*shm_crash_hook)(const char *name);

void shm_crash_point(const char *name) {
    if (shm_crash_hook) {
        shm_crash_hook(name);
        return;
    }
    if (crash_at > 0 && !strcmp(name, crash_name) &&
        atomic_fetch_add(&crash_seen, 1) + 1 == crash_at)
        raise(SIGKILL);
}
#endif
