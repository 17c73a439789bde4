/* SPDX-License-Identifier: MIT */
/*
 * fanout_mem - memory in a real fan-out: one producer, 8 consumer threads.
 * Every message has a log-uniform length in 16 B..256 KiB (the same seed
 * for both modes); the producer writes every byte and hands one reference
 * to each consumer through its own bounded queue; each consumer reads
 * every byte (a checksum the producer also computes) and drops its
 * reference; the last drop frees the message.
 *
 *   fanout_mem pool|malloc [--messages N] [--idle-ms MS] [--fine]
 *
 * pool: bp_get, bp_retain_n(7), bp_release on the consumers; the default
 * tiers (powers of two), or with --fine tiers 1.22x apart, nearer the
 * size classes of an allocator (tier rounding is most of the difference
 * in peak memory). malloc: malloc
 * of the length plus a 16-byte header holding an atomic count (the peer a
 * C program would write), free at zero. Prints one line: the mode,
 * messages per second, peak RSS (getrusage), and RSS after every thread
 * stayed alive and idle for --idle-ms (default 4 x decay_ms, 4000).
 */
#define _GNU_SOURCE
#include <bytepool.h>

#include "rss.h" /* tests/rss.h */
#include "timing.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define CONSUMERS 8
#define DEPTH 256 /* messages a consumer's queue holds */

typedef struct queue {
    _Alignas(64) _Atomic uint64_t head; /* written by the consumer */
    _Alignas(64) _Atomic uint64_t tail; /* written by the producer */
    void *slot[DEPTH];
    size_t len[DEPTH];
} queue;

static queue q[CONSUMERS];
static bool use_pool;
static bp_pool *pool;
static _Atomic uint64_t sums[CONSUMERS];
static _Atomic int idle_phase, parked;

static void drop(void *p) {
    if (use_pool) {
        bp_release(p);
        return;
    }
    _Atomic uint32_t *rc = (_Atomic uint32_t *)((char *)p - 16);
    if (atomic_fetch_sub_explicit(rc, 1, memory_order_acq_rel) == 1)
        free(rc);
}

static void *consumer(void *arg) {
    queue *mq = arg;
    uint64_t sum = 0, h = 0;
    for (;;) {
        while (atomic_load_explicit(&mq->tail, memory_order_acquire) == h)
            sched_yield();
        void *p = mq->slot[h % DEPTH];
        size_t len = mq->len[h % DEPTH];
        atomic_store_explicit(&mq->head, ++h, memory_order_release);
        if (!p)
            break; /* the end */
        const unsigned char *b = p;
        for (size_t i = 0; i < len; i++)
            sum += b[i];
        drop(p);
    }
    sums[mq - q] = sum;
    /* stay alive and idle while the memory settles */
    atomic_fetch_add(&parked, 1);
    while (!atomic_load(&idle_phase))
        usleep(1000);
    return NULL;
}

static void post(int c, void *p, size_t len) {
    queue *mq = &q[c];
    uint64_t t = atomic_load_explicit(&mq->tail, memory_order_relaxed);
    while (t - atomic_load_explicit(&mq->head, memory_order_acquire) >= DEPTH)
        sched_yield();
    mq->slot[t % DEPTH] = p;
    mq->len[t % DEPTH] = len;
    atomic_store_explicit(&mq->tail, t + 1, memory_order_release);
}

int main(int argc, char **argv) {
    long messages = 100000, idle_ms = 4000;
    bool fine = false;
    if (argc < 2 || (strcmp(argv[1], "pool") && strcmp(argv[1], "malloc"))) {
        fprintf(stderr, "usage: fanout_mem pool|malloc [--messages N] [--idle-ms MS]\n");
        return 2;
    }
    use_pool = !strcmp(argv[1], "pool");
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--fine"))
            fine = true;
        else if (!strcmp(argv[i], "--messages") && i + 1 < argc)
            messages = atol(argv[++i]);
        else if (!strcmp(argv[i], "--idle-ms") && i + 1 < argc)
            idle_ms = atol(argv[++i]);
    size_t sizes[BP_MAX_TIERS], n = 0;
    for (double s = 16; s < 256 * 1024 && n < BP_MAX_TIERS - 1; s *= 1.22) { /* 16-byte steps */
        size_t z = ((size_t)s + 15) & ~(size_t)15;
        if (!n || z > sizes[n - 1])
            sizes[n++] = z;
    }
    sizes[n++] = 256 * 1024;
    bp_config cfg = {0};
    cfg.sizes = fine ? sizes : NULL;
    cfg.nsizes = fine ? n : 0;
    if (use_pool && !(pool = bp_pool_new(&cfg))) {
        fprintf(stderr, "fanout_mem: %s\n", bp_config_error());
        return 1;
    }
    pthread_t t[CONSUMERS];
    for (int c = 0; c < CONSUMERS; c++)
        pthread_create(&t[c], NULL, consumer, &q[c]);
    uint64_t seed = 0x9e3779b97f4a7c15u, want = 0;
    double t0 = now_s();
    for (long m = 0; m < messages; m++) {
        /* log-uniform 16 B .. 256 KiB: 2^(4 + 14 u) */
        double u = (double)(rnd(&seed) >> 11) / 9007199254740992.0;
        size_t len = (size_t)(16.0 * __builtin_exp2(14.0 * u));
        unsigned char *p;
        if (use_pool) {
            p = bp_get(pool, len);
            bp_retain_n(p, CONSUMERS - 1);
        } else {
            _Atomic uint32_t *rc = malloc(16 + len);
            atomic_init(rc, CONSUMERS);
            p = (unsigned char *)rc + 16;
        }
        unsigned char v = (unsigned char)m;
        memset(p, v, len);
        want += (uint64_t)v * len;
        for (int c = 0; c < CONSUMERS; c++)
            post(c, p, len);
    }
    for (int c = 0; c < CONSUMERS; c++)
        post(c, NULL, 0);
    while (atomic_load(&parked) < CONSUMERS)
        usleep(1000);
    double secs = now_s() - t0;
    for (int c = 0; c < CONSUMERS; c++)
        if (sums[c] != want) {
            fprintf(stderr, "consumer %d read wrong bytes\n", c);
            return 1;
        }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    usleep((useconds_t)idle_ms * 1000); /* every thread alive, none calling */
    size_t idle = rss_bytes() / 1024;
    printf("%s%s: %.0f messages/s, peak RSS %.1f MiB, RSS after %ld ms idle %.1f MiB\n", argv[1],
           fine ? " --fine" : "", (double)messages / secs, (double)ru.ru_maxrss / 1024, idle_ms,
           (double)idle / 1024);
    atomic_store(&idle_phase, 1);
    for (int c = 0; c < CONSUMERS; c++)
        pthread_join(t[c], NULL);
    if (use_pool)
        bp_pool_destroy(pool);
    return 0;
}
