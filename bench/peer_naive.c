/* SPDX-License-Identifier: MIT */
/* peer_naive.c - the floor of a hand-written pool: one mutex, one free list
 * per power-of-two tier, a header with an atomic count; oversize goes to
 * malloc. */
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define NT 15
typedef struct blk {
    struct blk *next;
    _Atomic uint32_t rc;
    int tier; /* -1: oversize */
} blk;

typedef struct naive {
    pthread_mutex_t mu;
    blk *free[NT];
} naive;

static void *setup(const char *variant) {
    (void)variant;
    naive *n = calloc(1, sizeof(*n));
    pthread_mutex_init(&n->mu, NULL);
    return n;
}
static void *get(void *st, size_t len) {
    naive *n = st;
    int t = 0;
    while (t < NT && ((size_t)128 << t) < len)
        t++;
    blk *b = NULL;
    if (t < NT) {
        pthread_mutex_lock(&n->mu);
        b = n->free[t];
        if (b)
            n->free[t] = b->next;
        pthread_mutex_unlock(&n->mu);
    }
    if (!b) {
        b = malloc(sizeof(blk) + (t < NT ? (size_t)128 << t : len));
        b->tier = t < NT ? t : -1;
    }
    atomic_store_explicit(&b->rc, 1, memory_order_relaxed);
    return b + 1;
}
static void *retain(void *st, void *p) {
    (void)st;
    atomic_fetch_add_explicit(&((blk *)p - 1)->rc, 1, memory_order_relaxed);
    return p;
}
static void *retain_n(void *st, void *p, size_t k) {
    (void)st;
    atomic_fetch_add_explicit(&((blk *)p - 1)->rc, (uint32_t)k, memory_order_relaxed);
    return p;
}
static void release(void *st, void *p) {
    naive *n = st;
    blk *b = (blk *)p - 1;
    if (atomic_fetch_sub_explicit(&b->rc, 1, memory_order_acq_rel) != 1)
        return;
    if (b->tier < 0) {
        free(b);
        return;
    }
    pthread_mutex_lock(&n->mu);
    b->next = n->free[b->tier];
    n->free[b->tier] = b;
    pthread_mutex_unlock(&n->mu);
}
static unsigned char *data(void *p) { return p; }
static void trim(void *st) {
    naive *n = st;
    pthread_mutex_lock(&n->mu);
    for (int t = 0; t < NT; t++)
        while (n->free[t]) {
            blk *b = n->free[t];
            n->free[t] = b->next;
            free(b);
        }
    pthread_mutex_unlock(&n->mu);
}
static void teardown(void *st) {
    trim(st);
    free(st);
}

const peer peer_naive = {
    "naive", setup, get, retain, release, data, trim, teardown, .retain_n = retain_n};
