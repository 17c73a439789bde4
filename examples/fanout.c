/* SPDX-License-Identifier: MIT */
/*
 * fanout - one producer, N consumers, zero copies.
 *
 * The producer cuts a stream of records of mixed lengths into pooled
 * buffers. Each record is split into N slices; consumer i gets slice i as a
 * plain interior pointer with its own reference (bp_retain), checksums it
 * and releases it. The producer drops its own reference as soon as the
 * slices are handed out, so the buffer goes back to the pool when the
 * slowest consumer is done with it, on whichever thread that is.
 *
 *   fanout [--threads N] [--seconds S] [--min BYTES] [--max BYTES] [--http ADDR]
 *
 * --http ADDR (when built with libbytepool_http) serves the dashboard,
 * /debug/vars and /metrics on ADDR while the demo runs.
 */
#define _GNU_SOURCE
#include <bytepool.h>
#ifdef BP_WITH_HTTP
#include <bytepool_http.h>
#endif

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QCAP 1024 /* slices in flight per consumer */

typedef struct slice {
    const uint8_t *p;
    size_t len;
    uint64_t sum; /* what the consumer must find */
} slice;

typedef struct consumer {
    slice q[QCAP];
    _Atomic size_t head, tail; /* single producer, single consumer */
    _Atomic bool done;
    uint64_t slices, bytes, bad;
    pthread_t th;
} consumer;

static uint64_t checksum(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void push(consumer *c, slice s) {
    size_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
    while (t - atomic_load_explicit(&c->head, memory_order_acquire) == QCAP)
        sched_yield();
    c->q[t % QCAP] = s;
    atomic_store_explicit(&c->tail, t + 1, memory_order_release);
}

static void *consume(void *arg) {
    consumer *c = arg;
    for (;;) {
        size_t h = atomic_load_explicit(&c->head, memory_order_relaxed);
        if (h == atomic_load_explicit(&c->tail, memory_order_acquire)) {
            if (atomic_load(&c->done) && h == atomic_load(&c->tail))
                return NULL;
            sched_yield();
            continue;
        }
        slice s = c->q[h % QCAP];
        atomic_store_explicit(&c->head, h + 1, memory_order_release);
        if (checksum(s.p, s.len) != s.sum)
            c->bad++;
        if (bp_release((void *)s.p) != 0)
            c->bad++;
        c->slices++;
        c->bytes += s.len;
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A length log-uniformly distributed in [lo, hi]. */
static size_t log_uniform(size_t lo, size_t hi) {
    double u = (double)(next_rand() >> 11) / (double)(1ull << 53);
    double l = log2((double)lo), h = log2((double)hi);
    size_t len = (size_t)exp2(l + u * (h - l));
    return len < lo ? lo : len > hi ? hi : len;
}

static void usage(void) {
    fprintf(stderr, "usage: fanout [--threads N] [--seconds S] [--min BYTES] [--max BYTES]"
                    " [--http ADDR]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int nthreads = 3;
    double seconds = 3;
    size_t lo = 64, hi = 256 * 1024;
    const char *http = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--threads"))
            nthreads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--min"))
            lo = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--max"))
            hi = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--http"))
            http = argv[++i];
        else
            usage();
    }
    if (nthreads < 1 || nthreads > 64 || seconds <= 0 || lo < 1 || hi < lo)
        usage();

    bp_pool *pool = bp_pool_new(NULL);
    if (!pool) {
        perror("bp_pool_new");
        return 1;
    }
    void *server = NULL;
    if (http) {
#ifdef BP_WITH_HTTP
        bp_expvar_publish(pool, "fanout_");
        bp_http *h = bp_http_start(http);
        if (!h) {
            perror("bp_http_start");
            return 1;
        }
        printf("dashboard: http://127.0.0.1:%u/ (also /debug/vars, /metrics)\n", bp_http_port(h));
        server = h;
#else
        fprintf(stderr, "fanout: built without libbytepool_http (install libmicrohttpd-dev)\n");
        return 2;
#endif
    }
    consumer *cs = calloc((size_t)nthreads, sizeof(consumer));
    for (int i = 0; i < nthreads; i++)
        pthread_create(&cs[i].th, NULL, consume, &cs[i]);

    printf("fanout: 1 producer -> %d consumers, records %zu..%zu bytes, %.1f s\n", nthreads, lo, hi,
           seconds);
    uint64_t records = 0, bytes = 0;
    double start = now_s(), end = start + seconds;
    while (now_s() < end) {
        for (int k = 0; k < 64; k++) {
            size_t len = log_uniform(lo, hi);
            uint8_t *buf = bp_get(pool, len);
            if (!buf) {
                perror("bp_get");
                return 1;
            }
            for (size_t i = 0; i < len; i += 8) { /* the "record" */
                uint64_t v = next_rand();
                memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
            }
            for (int c = 0; c < nthreads; c++) {
                size_t a = len * (size_t)c / (size_t)nthreads;
                size_t b = len * (size_t)(c + 1) / (size_t)nthreads;
                if (a == b) /* a record shorter than the consumer count */
                    continue;
                slice s = {bp_retain(buf + a), b - a, checksum(buf + a, b - a)};
                push(&cs[c], s);
            }
            bp_release(buf); /* the consumers hold it now */
            records++;
            bytes += len;
        }
    }
    for (int i = 0; i < nthreads; i++) {
        atomic_store(&cs[i].done, true);
        pthread_join(cs[i].th, NULL);
    }
    double took = now_s() - start;

    uint64_t slices = 0, bad = 0;
    for (int i = 0; i < nthreads; i++) {
        slices += cs[i].slices;
        bad += cs[i].bad;
    }
    printf("records %" PRIu64 " (%.0f/s), %.1f MiB/s produced, %" PRIu64 " slices checked, %" PRIu64
           " bad\n",
           records, (double)records / took, (double)bytes / took / (1 << 20), slices, bad);

    bp_stats st;
    bp_pool_stats(pool, &st);
    printf("\n%10s %12s %12s %8s %8s\n", "tier", "get", "put", "hit%", "live");
    for (size_t t = 0; t < st.ntiers; t++) {
        const bp_tier_stats *ts = &st.tiers[t];
        if (!ts->get)
            continue;
        printf("%10zu %12" PRIu64 " %12" PRIu64 " %7.1f%% %8" PRIu64 "\n", ts->size, ts->get,
               ts->put, 100.0 * (double)ts->hits / (double)ts->get, ts->live);
    }
    printf("discarded %" PRIu64 ", mapped %.1f MiB, idle %.1f MiB, refused %" PRIu64 "\n",
           st.discarded, (double)st.bytes_mapped / (1 << 20), (double)st.bytes_idle / (1 << 20),
           st.refused);

    char *js = bp_pool_stats_json(pool);
    printf("\nstats json: %s\n", js);
    free(js);
    printf("\noutstanding buffers: %" PRIu64 "\n", st.outstanding);
#ifdef BP_WITH_HTTP
    bp_http_stop(server);
#endif
    (void)server;
    size_t leaks = bp_pool_destroy(pool);
    free(cs);
    return (bad || leaks || st.outstanding) ? 1 : 0;
}
