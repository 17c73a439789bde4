/* SPDX-License-Identifier: MIT */
/*
 * bench.h - the interface every peer implements for the benchmark. A
 * handle is what get returns and release takes back: the data pointer for
 * bytepool and the malloc peers, an AVBufferRef for FFmpeg's pool.
 */
#ifndef BP_BENCH_H
#define BP_BENCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct peer {
    const char *name;
    void *(*setup)(const char *variant); /* per thread group */
    void *(*get)(void *st, size_t len);  /* a handle, refcount 1 */
    void *(*retain)(void *st, void *h);  /* a handle for the new reference */
    void (*release)(void *st, void *h);  /* drop one reference */
    unsigned char *(*data)(void *h);     /* the bytes of a handle */
    void (*trim)(void *st);              /* give idle memory back, if it can */
    void (*teardown)(void *st);
    /* optional (NULL: the cells that need it are skipped, or fall back) */
    void *(*retain_n)(void *st, void *h, size_t n); /* n more references of h at once */
    void (*thread_init)(void *st);                  /* on each thread the benchmark starts */
} peer;

extern const peer peer_bytepool, peer_bytepool_ref, peer_malloc, peer_avpool, peer_naive, peer_null, peer_dpdk,
    peer_malloc_plain;

#endif
