/* SPDX-License-Identifier: MIT */
/*
 * checked.c - checked mode and environment options.
 *
 * In checked mode free buffers are filled with a poison byte and verified
 * when handed out again (a write after release shows). The whole capacity
 * is the caller's, so the canary lives outside it: every buffer is followed
 * by a guard gap (64 bytes, a page for page-aligned tiers) whose first bytes
 * hold a canary verified on the final release (an overrun shows), and which
 * no buffer covers, so a one-past-the-end pointer is refused rather than
 * taken for the next buffer. BP_STRICT_LEN adds a canary right after the
 * requested length. Violations abort with a message that names the
 * operation and the buffer.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POISON 0xdb
#define CANARY 0xca
#define CANARY_MAX 16    /* BP_STRICT_LEN: canary bytes after the requested length */
#define CANARY_GAP 64    /* the guard gap of small tiers, all canary */
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

/* The guard gap after each buffer in checked mode (segment.c makes the
 * stride that much longer); the canary fills its first CANARY_GAP bytes. */
size_t bp__checked_gap(size_t size, size_t page) { return size >= page ? page : CANARY_GAP; }

static size_t gap_canary(const bp_seg *seg) {
    size_t gap = seg->stride - seg->size;
    return gap < CANARY_GAP ? gap : CANARY_GAP;
}

/* BP_STRICT_LEN: a canary right after the requested length, inside the
 * capacity, where the tier leaves room. */
static size_t strict_canary(const bp_seg *seg, size_t req) {
    if (!(ld_rlx(&seg->pool->flags) & BPF_STRICT))
        return 0;
    size_t room = seg->size - req;
    return room < CANARY_MAX ? room : CANARY_MAX;
}

void bp__checked_on_get(bp_seg *seg, uint32_t idx, size_t len) {
    uint8_t *p = bp__seg_buf(seg, idx);
    size_t gap = gap_canary(seg);
    track_touch_begin(p, seg->size + gap);
    if (seg->reqlen[idx] == FREED) {
        for (size_t i = 0; i < seg->size; i++)
            if (p[i] != POISON)
                bp__abort("bytepool: bp_get: free buffer %p (tier %zu) was written at offset "
                          "%zu after its release (use after release)",
                          (void *)p, seg->size, i);
    }
    seg->reqlen[idx] = (uint32_t)len;
    memset(p + seg->size, CANARY, gap);
    memset(p + len, CANARY, strict_canary(seg, len));
    track_touch_end(p, seg->size + gap);
}

static void check_canary(const uint8_t *p, size_t from, size_t n, const char *op, const bp_seg *seg,
                         const char *what, size_t limit) {
    for (size_t i = from; i < from + n; i++)
        if (p[i] != CANARY)
            bp__abort("bytepool: %s: buffer %p (tier %zu) written past its %s %zu (canary at "
                      "offset %zu)",
                      op, (void *)p, seg->size, what, limit, i);
}

void bp__checked_on_free(bp_seg *seg, uint32_t idx, const char *op) {
    uint8_t *p = bp__seg_buf(seg, idx);
    size_t req = seg->reqlen[idx], gap = gap_canary(seg);
    track_touch_begin(p, seg->size + gap);
    if (req != FREED && req != 0) {
        check_canary(p, seg->size, gap, op, seg, "capacity", seg->size);
        check_canary(p, req, strict_canary(seg, req), op, seg, "requested length", req);
    }
    memset(p, POISON, seg->size);
    seg->reqlen[idx] = FREED;
    track_touch_end(p, seg->size + gap);
}
