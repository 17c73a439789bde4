/* SPDX-License-Identifier: MIT */
/* peer_malloc.c - what a C programmer writes with an allocator: malloc a
 * header with an atomic count in front of the bytes. The allocator is
 * whatever the process runs with: glibc, or mimalloc / jemalloc / tcmalloc
 * through LD_PRELOAD (they replace malloc, so each runs in its own process). */
#include "bench.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct hdr {
    _Atomic uint32_t rc;
    uint32_t pad[3]; /* keep the bytes 16-byte aligned */
} hdr;

static void *setup(const char *variant) {
    (void)variant;
    return (void *)1;
}
static void *get(void *st, size_t len) {
    (void)st;
    hdr *h = malloc(sizeof(hdr) + len);
    atomic_store_explicit(&h->rc, 1, memory_order_relaxed);
    return h + 1;
}
static void *retain(void *st, void *p) {
    (void)st;
    atomic_fetch_add_explicit(&((hdr *)p - 1)->rc, 1, memory_order_relaxed);
    return p;
}
static void *retain_n(void *st, void *p, size_t n) {
    (void)st;
    atomic_fetch_add_explicit(&((hdr *)p - 1)->rc, (uint32_t)n, memory_order_relaxed);
    return p;
}
static void release(void *st, void *p) {
    (void)st;
    hdr *h = (hdr *)p - 1;
    if (atomic_fetch_sub_explicit(&h->rc, 1, memory_order_acq_rel) == 1)
        free(h);
}
static unsigned char *data(void *p) { return p; }
static void trim(void *st) {
    (void)st;
    malloc_trim(0); /* glibc's; the preloaded allocators ignore or provide it */
}
static void teardown(void *st) { (void)st; }

const peer peer_malloc = {
    "malloc", setup, get, retain, release, data, trim, teardown, .retain_n = retain_n};

/* malloc_plain: malloc and free with no count at all, what a program that
 * never shares a buffer would use. No retain: the fan-out cells skip it. */
static void *plain_get(void *st, size_t len) {
    (void)st;
    return malloc(len);
}
static void plain_release(void *st, void *p) {
    (void)st;
    free(p);
}
const peer peer_malloc_plain = {"malloc_plain", setup, plain_get, NULL, plain_release,
                                data,           trim,  teardown,  NULL, NULL};
