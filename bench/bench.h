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
} peer;

extern const peer peer_bytepool, peer_malloc, peer_avpool, peer_naive, peer_null;

#endif
