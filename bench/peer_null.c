/* SPDX-License-Identifier: MIT */
/* peer_null.c - no work behind the same interface: what the harness costs. */
#include "bench.h"

static unsigned char scratch[4u << 20] __attribute__((aligned(64)));

static void *setup(const char *variant) {
    (void)variant;
    return scratch;
}
static void *get(void *st, size_t len) {
    (void)len;
    return st;
}
static void *retain(void *st, void *h) {
    (void)st;
    return h;
}
static void release(void *st, void *h) {
    (void)st;
    (void)h;
}
static unsigned char *data(void *h) { return h; }
static void trim(void *st) { (void)st; }
static void teardown(void *st) { (void)st; }

const peer peer_null = {"null", setup, get, retain, release, data, trim, teardown, NULL, NULL};
