/* SPDX-License-Identifier: MIT */
/*
 * stress - many threads doing everything at once, then the books must
 * balance. `make stress` runs it long; `make test` runs a smoke version.
 *
 *   stress [--seconds S] [--threads N]
 *
 * Shapes:
 *  mixed     random get / retain of a slice / hand-off to another thread /
 *            release / put, lengths 1 B .. 3 MiB (oversize included), with
 *            trim and stats reads on the way. Every buffer carries a pattern
 *            derived from its identity; every holder checks it before
 *            releasing its reference.
 *  larson    server-style threads replace random slots of an array they
 *            inherited from a thread that has exited (so buffers are
 *            released after their creator is gone).
 *  xmalloc   producers get, consumers release, through a shared queue.
 *  scratch   buffers of different threads never share a cache line.
 * At the end: no reference left, per-tier gets = puts, no pattern damaged,
 * and after trim the resident memory is back within the configured bounds.
 */
#define _GNU_SOURCE
#include <bytepool.h>

#include "rss.h"
#include "timing.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bp_pool *pool;
static _Atomic uint64_t damaged, ops, next_id = 1;
static double deadline;

static size_t log_len(uint64_t *s, size_t hi) {
    double u = (double)(rnd(s) >> 11) / (double)(1ull << 53);
    size_t len = (size_t)exp2(u * log2((double)hi));
    return len ? len : 1;
}

/* ---- identity patterns: byte i of buffer id is pat(id, i) ---------------- */

static uint8_t pat(uint64_t id, size_t i) { return (uint8_t)(id * 131 + i * 7 + (i >> 12)); }

/* The positions written and checked: both ends and one byte per 4 KiB. */
#define FOR_POSITIONS(len, i)                                                                      \
    for (size_t i = 0; i < (len);                                                                  \
         i = i < 64 || i + 64 >= (len) ? i + 1 : (i + 4096 < (len)-64 ? i + 4096 : (len)-64))

static void fill(uint8_t *p, size_t len, uint64_t id) {
    FOR_POSITIONS(len, i)
    p[i] = pat(id, i);
}

static void check(const uint8_t *p, size_t len, uint64_t id) {
    FOR_POSITIONS(len, i)
    if (p[i] != pat(id, i)) {
        atomic_fetch_add(&damaged, 1);
        return;
    }
}

/* ---- mixed --------------------------------------------------------------- */

typedef struct ref {
    uint8_t *p, *base; /* p may be a slice inside base */
    size_t len;
    uint64_t id;
} ref;

enum { HELD = 64, INBOX = 256, MAXT = 64 };

typedef struct worker {
    pthread_mutex_t mu;
    ref inbox[INBOX];
    size_t nin;
    ref held[HELD];
    size_t nheld;
    uint64_t seed;
    int idx, nthreads;
} worker;

static worker workers[MAXT];

static void drop(ref *r, uint64_t *s) {
    check(r->base, r->len, r->id);
    int rc = (rnd(s) & 1) ? bp_release(r->p) : bp_put(pool, r->p);
    if (rc != 0)
        atomic_fetch_add(&damaged, 1);
}

static void keep(worker *w, ref r) {
    if (w->nheld == HELD) { /* full: let the oldest go */
        drop(&w->held[0], &w->seed);
        w->held[0] = w->held[--w->nheld];
    }
    w->held[w->nheld++] = r;
}

static void drain(worker *w) {
    pthread_mutex_lock(&w->mu);
    ref in[INBOX];
    size_t n = w->nin;
    memcpy(in, w->inbox, n * sizeof(ref));
    w->nin = 0;
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < n; i++)
        keep(w, in[i]);
}

static bool hand_off(worker *to, ref r) {
    pthread_mutex_lock(&to->mu);
    bool ok = to->nin < INBOX;
    if (ok)
        to->inbox[to->nin++] = r;
    pthread_mutex_unlock(&to->mu);
    return ok;
}

static void *mixed(void *arg) {
    worker *w = arg;
    uint64_t n = 0;
    while (now_s() < deadline) {
        for (int k = 0; k < 256; k++, n++) {
            uint64_t dice = rnd(&w->seed) % 100;
            if (dice < 30 || w->nheld == 0) {
                size_t len = log_len(&w->seed, 3u << 20);
                uint8_t *p = bp_get(pool, len);
                if (!p) {
                    atomic_fetch_add(&damaged, 1);
                    continue;
                }
                uint64_t id = atomic_fetch_add(&next_id, 1);
                fill(p, len, id);
                keep(w, (ref){p, p, len, id});
            } else if (dice < 50) {
                ref r = w->held[rnd(&w->seed) % w->nheld];
                r.p = r.base + rnd(&w->seed) % r.len; /* a slice: any byte inside */
                if (bp_retain(r.p) != r.p)
                    atomic_fetch_add(&damaged, 1);
                keep(w, r);
            } else if (dice < 65) {
                size_t i = rnd(&w->seed) % w->nheld;
                worker *to = &workers[rnd(&w->seed) % (uint64_t)w->nthreads];
                if (to != w && hand_off(to, w->held[i]))
                    w->held[i] = w->held[--w->nheld];
            } else {
                size_t i = rnd(&w->seed) % w->nheld;
                drop(&w->held[i], &w->seed);
                w->held[i] = w->held[--w->nheld];
            }
        }
        drain(w);
        if (w->idx == 0 && (n & 0x3fff) < 256) { /* trim and read stats on the way */
            bp_stats st;
            bp_pool_trim(pool);
            bp_pool_stats(pool, &st);
        }
    }
    atomic_fetch_add(&ops, n);
    return NULL;
}

static void run_mixed(int nthreads, double seconds) {
    deadline = now_s() + seconds;
    pthread_t th[MAXT];
    for (int i = 0; i < nthreads; i++) { /* all ready before any hands off */
        pthread_mutex_init(&workers[i].mu, NULL);
        workers[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        workers[i].idx = i;
        workers[i].nthreads = nthreads;
    }
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, mixed, &workers[i]);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < nthreads; i++) { /* what is left in inboxes and hands */
        drain(&workers[i]);
        while (workers[i].nheld)
            drop(&workers[i].held[--workers[i].nheld], &workers[i].seed);
    }
}

/* ---- larson --------------------------------------------------------------- */

enum { SLOTS = 200 };
typedef struct larson {
    ref slot[SLOTS];
    uint64_t seed;
    int generations;
} larson;

static void *larson_round(void *arg) {
    larson *l = arg;
    for (int k = 0; k < 2000; k++) {
        ref *r = &l->slot[rnd(&l->seed) % SLOTS];
        if (r->p)
            drop(r, &l->seed);
        size_t len = 8 + rnd(&l->seed) % 8000;
        uint8_t *p = bp_get(pool, len);
        uint64_t id = atomic_fetch_add(&next_id, 1);
        fill(p, len, id);
        *r = (ref){p, p, len, id};
    }
    atomic_fetch_add(&ops, 2000);
    return NULL;
}

/* Each thread exits after its round; a new thread inherits its array. */
static void *larson_chain(void *arg) {
    larson *l = arg;
    while (now_s() < deadline) {
        pthread_t t;
        pthread_create(&t, NULL, larson_round, l);
        pthread_join(t, NULL);
        l->generations++;
    }
    for (int i = 0; i < SLOTS; i++)
        if (l->slot[i].p)
            drop(&l->slot[i], &l->seed);
    return NULL;
}

static int run_larson(int nthreads, double seconds) {
    deadline = now_s() + seconds;
    larson *ls = calloc((size_t)nthreads, sizeof(larson));
    pthread_t th[MAXT];
    for (int i = 0; i < nthreads; i++) {
        ls[i].seed = 12345u + (uint64_t)i * 7919u;
        pthread_create(&th[i], NULL, larson_chain, &ls[i]);
    }
    int gens = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        gens += ls[i].generations;
    }
    free(ls);
    return gens;
}

/* ---- xmalloc: producers get, consumers release ----------------------------- */

enum { QN = 1024 };
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ref q[QN];
    size_t head, tail;
    int producers_left;
} xq = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0}}, 0, 0, 0};

static void *producer(void *arg) {
    uint64_t seed = (uint64_t)(uintptr_t)arg * 2654435761u + 1;
    uint64_t n = 0;
    while (now_s() < deadline) {
        size_t len = log_len(&seed, 64 * 1024);
        uint8_t *p = bp_get(pool, len);
        uint64_t id = atomic_fetch_add(&next_id, 1);
        fill(p, len, id);
        pthread_mutex_lock(&xq.mu);
        while (xq.tail - xq.head == QN)
            pthread_cond_wait(&xq.cv, &xq.mu);
        xq.q[xq.tail++ % QN] = (ref){p, p, len, id};
        pthread_cond_broadcast(&xq.cv);
        pthread_mutex_unlock(&xq.mu);
        n++;
    }
    pthread_mutex_lock(&xq.mu);
    xq.producers_left--;
    pthread_cond_broadcast(&xq.cv);
    pthread_mutex_unlock(&xq.mu);
    atomic_fetch_add(&ops, n);
    return NULL;
}

static void *consumer(void *arg) {
    uint64_t seed = (uint64_t)(uintptr_t)arg + 99;
    for (;;) {
        pthread_mutex_lock(&xq.mu);
        while (xq.tail == xq.head && xq.producers_left)
            pthread_cond_wait(&xq.cv, &xq.mu);
        if (xq.tail == xq.head) {
            pthread_mutex_unlock(&xq.mu);
            return NULL;
        }
        ref r = xq.q[xq.head++ % QN];
        pthread_cond_broadcast(&xq.cv);
        pthread_mutex_unlock(&xq.mu);
        drop(&r, &seed);
    }
}

static void run_xmalloc(int nthreads, double seconds) {
    deadline = now_s() + seconds;
    int np = nthreads / 2 > 0 ? nthreads / 2 : 1, nc = nthreads - np > 0 ? nthreads - np : 1;
    xq.producers_left = np;
    pthread_t th[MAXT * 2];
    for (int i = 0; i < np; i++)
        pthread_create(&th[i], NULL, producer, (void *)(uintptr_t)i);
    for (int i = 0; i < nc; i++)
        pthread_create(&th[np + i], NULL, consumer, (void *)(uintptr_t)i);
    for (int i = 0; i < np + nc; i++)
        pthread_join(th[i], NULL);
}

/* ---- cache-scratch: no cache line shared between threads' buffers --------- */

enum { SCRATCH = 300 };
static uintptr_t lines[MAXT][SCRATCH][2];

static void *scratch(void *arg) {
    int t = (int)(uintptr_t)arg;
    uint64_t seed = (uint64_t)t + 5;
    uint8_t *mine[SCRATCH];
    for (int i = 0; i < SCRATCH; i++) {
        size_t len = 1 + rnd(&seed) % 200;
        mine[i] = bp_get(pool, len);
        lines[t][i][0] = (uintptr_t)mine[i] >> 6;
        lines[t][i][1] = ((uintptr_t)mine[i] + bp_cap(mine[i]) - 1) >> 6;
    }
    for (int i = 0; i < SCRATCH; i++) /* hold until every thread has its set */
        mine[i][0] = (uint8_t)t;
    return mine[0] ? NULL : NULL;
}

static int run_scratch(int nthreads) {
    pthread_t th[MAXT];
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, scratch, (void *)(uintptr_t)i);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    int shared = 0;
    for (int a = 0; a < nthreads; a++)
        for (int b = a + 1; b < nthreads; b++)
            for (int i = 0; i < SCRATCH; i++)
                for (int j = 0; j < SCRATCH; j++)
                    if (lines[a][i][0] <= lines[b][j][1] && lines[b][j][0] <= lines[a][i][1])
                        shared++;
    for (int a = 0; a < nthreads; a++)
        for (int i = 0; i < SCRATCH; i++)
            bp_release((void *)(lines[a][i][0] << 6));
    return shared;
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv) {
    double seconds = 4;
    int nthreads = 4;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            nthreads = atoi(argv[i + 1]);
    }
    if (nthreads < 2 || nthreads > MAXT || seconds <= 0) {
        fprintf(stderr, "usage: stress [--seconds S] [--threads 2..%d]\n", MAXT);
        return 2;
    }
    size_t rss0 = rss_bytes();
    pool = bp_pool_new(NULL);
    double t0 = now_s();
    run_mixed(nthreads, seconds * 0.5);
    uint64_t mixed_ops = atomic_load(&ops);
    int gens = run_larson(nthreads, seconds * 0.25);
    run_xmalloc(nthreads, seconds * 0.25);
    int shared = run_scratch(nthreads);
    double took = now_s() - t0;

    bp_stats st;
    bp_pool_stats(pool, &st);
    int bad = 0;
    for (size_t t = 0; t < st.ntiers; t++)
        if (st.tiers[t].get != st.tiers[t].put) {
            printf("tier %zu: get %" PRIu64 " != put %" PRIu64 "\n", st.tiers[t].size,
                   st.tiers[t].get, st.tiers[t].put);
            bad = 1;
        }
    bp_pool_trim(pool);
    size_t rss1 = rss_bytes();
    /* bounds: the depot's idle_bytes (8 MiB) plus the caches other threads
     * held when they exited went back on trim; allow allocator noise. */
    size_t bound = rss0 + (24u << 20);
    printf("stress: %.1f s, %d threads: %" PRIu64 " ops (%" PRIu64 " mixed), larson %d "
           "generations, scratch lines shared %d\n",
           took, nthreads, atomic_load(&ops), mixed_ops, gens, shared);
    printf("gets %" PRIu64 " puts %" PRIu64 " discarded %" PRIu64 " outstanding %" PRIu64
           " refused %" PRIu64 " damaged %" PRIu64 " rss %.1f MiB (bound %.1f)\n",
           st.total_get, st.total_put, st.discarded, st.outstanding, st.refused,
           atomic_load(&damaged), (double)rss1 / (1 << 20), (double)bound / (1 << 20));
    bad |= st.outstanding != 0 || st.refused != 0 || atomic_load(&damaged) != 0 || shared != 0;
#ifndef BP_SANITIZED /* sanitizers keep shadow memory resident */
    bad |= rss1 > bound;
#endif
    size_t leaks = bp_pool_destroy(pool);
    bad |= leaks != 0;
    printf("%s\n", bad ? "stress FAILED" : "stress ok");
    return bad;
}
