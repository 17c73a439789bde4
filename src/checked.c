/*
 * checked.c - checked mode and environment options.
 *
 * In checked mode free buffers are filled with a poison byte and verified
 * when handed out again (a write after release shows), and the bytes past
 * the requested length (up to 16, where the tier leaves room) hold a canary
 * verified on the final release (an overrun shows). Violations abort with a
 * message that names the operation and the buffer.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POISON 0xdb
#define CANARY 0xca
#define CANARY_MAX 16
#define FREED UINT32_MAX /* reqlen of a poisoned free slot */

_Noreturn void bp__abort(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

static size_t canary_len(const bp_seg *seg, size_t req) {
    size_t room = seg->size - req;
    return room < CANARY_MAX ? room : CANARY_MAX;
}

void bp__checked_on_get(bp_seg *seg, uint32_t idx, size_t len) {
    uint8_t *p = bp__seg_buf(seg, idx);
    track_touch_begin(p, seg->size);
    if (seg->reqlen[idx] == FREED) {
        for (size_t i = 0; i < seg->size; i++)
            if (p[i] != POISON)
                bp__abort("bytepool: bp_get: free buffer %p (tier %zu) was written at offset "
                          "%zu after its release (use after release)",
                          (void *)p, seg->size, i);
    }
    seg->reqlen[idx] = (uint32_t)len;
    memset(p + len, CANARY, canary_len(seg, len));
    track_touch_end(p, seg->size);
}

void bp__checked_on_free(bp_seg *seg, uint32_t idx, const char *op) {
    uint8_t *p = bp__seg_buf(seg, idx);
    size_t req = seg->reqlen[idx];
    track_touch_begin(p, seg->size);
    if (req != FREED && req != 0) {
        size_t n = canary_len(seg, req);
        for (size_t i = 0; i < n; i++)
            if (p[req + i] != CANARY)
                bp__abort("bytepool: %s: buffer %p (tier %zu) written past its requested "
                          "length %zu (canary at offset %zu)",
                          op, (void *)p, seg->size, req, req + i);
    }
    memset(p, POISON, seg->size);
    seg->reqlen[idx] = FREED;
    track_touch_end(p, seg->size);
}

bool bp__env_flag(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0 && strcmp(v, "off") != 0;
}

bp_leaks bp__env_leaks(const char *name) {
    const char *v = getenv(name);
    if (v && !strcmp(v, "all"))
        return BP_LEAKS_ALL;
    return v && !strcmp(v, "sample") ? BP_LEAKS_SAMPLE : BP_LEAKS_OFF;
}

size_t bp__env_size(const char *name, size_t dflt) {
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v)
        return dflt;
    if (*end == 'k' || *end == 'K')
        x <<= 10;
    else if (*end == 'm' || *end == 'M')
        x <<= 20;
    return x ? (size_t)x : dflt;
}
