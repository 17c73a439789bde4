/* SPDX-License-Identifier: MIT */
/* timing.h - the monotonic clock in seconds and a xorshift generator, for
 * the stress program and the benchmarks (one definition for all three). */
#ifndef BP_TEST_TIMING_H
#define BP_TEST_TIMING_H

#include <stdint.h>
#include <time.h>

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64: fast, seedable, the same sequence on every run */
static inline uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#endif
