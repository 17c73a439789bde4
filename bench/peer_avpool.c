/* SPDX-License-Identifier: MIT */
/* peer_avpool.c - FFmpeg's AVBufferPool: one pool per power-of-two tier
 * (128 B .. 2 MiB, like bytepool's default), av_buffer_ref/unref for
 * retain/release, av_buffer_alloc above the largest tier. */
#include "bench.h"

#include <libavutil/buffer.h>
#include <stdlib.h>

#define NT 15
typedef struct avp {
    AVBufferPool *t[NT];
} avp;

static void *setup(const char *variant) {
    (void)variant;
    avp *a = calloc(1, sizeof(*a));
    for (int i = 0; i < NT; i++)
        a->t[i] = av_buffer_pool_init((size_t)128 << i, NULL);
    return a;
}
static void *get(void *st, size_t len) {
    avp *a = st;
    for (int i = 0; i < NT; i++)
        if (((size_t)128 << i) >= len)
            return av_buffer_pool_get(a->t[i]);
    return av_buffer_alloc(len);
}
static void *retain(void *st, void *h) {
    (void)st;
    return av_buffer_ref(h);
}
static void release(void *st, void *h) {
    (void)st;
    AVBufferRef *r = h;
    av_buffer_unref(&r);
}
static unsigned char *data(void *h) { return ((AVBufferRef *)h)->data; }
static void trim(void *st) { (void)st; }
static void teardown(void *st) {
    avp *a = st;
    for (int i = 0; i < NT; i++)
        av_buffer_pool_uninit(&a->t[i]);
    free(a);
}

const peer peer_avpool = {"avpool", setup, get, retain, release, data, trim, teardown, NULL, NULL};
