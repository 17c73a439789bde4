/* SPDX-License-Identifier: MIT */
/*
 * shm_record.h - the demo's record: a header (sequence number, length, a
 * 64-bit checksum of every byte after the header), then pseudo-random
 * bytes. shm_producer writes them, shm_consumer checks them twice.
 */
#ifndef SHM_RECORD_H
#define SHM_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct shm_record {
    uint64_t seq, len, sum;
} shm_record;

static inline uint64_t rec_mix(uint64_t h) {
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h;
}

/* Eight bytes at a time, then the tail: any changed byte changes the sum. */
static inline uint64_t rec_sum(const unsigned char *p, size_t n) {
    uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * UINT64_C(0x100000001b3) + (h >> 29);
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return rec_mix(h);
}

static inline uint64_t rec_rand(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Fills a record of len bytes (len >= sizeof(shm_record)) at p. */
static inline void rec_fill(void *p, size_t len, uint64_t seq, uint64_t *rng) {
    unsigned char *b = p;
    size_t i = sizeof(shm_record);
    for (; i + 8 <= len; i += 8) {
        uint64_t w = rec_rand(rng);
        memcpy(b + i, &w, 8);
    }
    for (; i < len; i++)
        b[i] = (unsigned char)rec_rand(rng);
    shm_record h = {seq, len, rec_sum(b + sizeof h, len - sizeof h)};
    memcpy(b, &h, sizeof h);
}

/* Whether the record at p, received as len bytes, is whole. */
static inline int rec_ok(const void *p, size_t len) {
    shm_record h;
    if (len < sizeof h)
        return 0;
    memcpy(&h, p, sizeof h);
    const unsigned char *b = p;
    return h.len == len && h.sum == rec_sum(b + sizeof h, len - sizeof h);
}

#endif
