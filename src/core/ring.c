/* SPDX-License-Identifier: MIT */
/*
 * ring.c - overwriting rings: a lock-free kind and a locked kind.
 *
 * Lock-free: a push takes a ticket t from one atomic counter and writes
 * slot t % cap under a per-slot sequence word: it claims the slot by CAS
 * from an even (complete) value of an older ticket to 2t+1, writes the
 * element as relaxed atomic words, then publishes 2t+2. A reader accepts
 * slot t only if it sees 2t+2 before and after copying, so it never returns
 * a torn, stale or invented value, and tickets give push order. A writer
 * that finds its slot busy or already holding a newer ticket drops its value:
 * a newer one owns that slot anyway, so writers never wait.
 * Locked: a mutex around a plain ring; adds pop and peek.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ELEM_MAX 4096

typedef struct lf_slot {
    _Atomic uint64_t seq;
    _Atomic uint64_t w[]; /* the element, in words */
} lf_slot;

struct bp_ring {
    bp_ring_kind kind;
    size_t cap, esize, words, sstride; /* sstride: bytes per lock-free slot */
    /* lock-free */
    _Atomic uint64_t head; /* next ticket */
    _Atomic uint64_t base; /* tickets below it were cleared */
    uint8_t *slots;
    /* locked */
    pthread_mutex_t mu;
    uint8_t *buf;
    size_t first, len;
};

static lf_slot *slot_at(bp_ring *r, uint64_t t) {
    return (lf_slot *)(r->slots + (t % r->cap) * r->sstride);
}

bp_ring *bp_ring_new(size_t capacity, size_t elem_size, bp_ring_kind kind) {
    if (capacity == 0 || elem_size == 0 || elem_size > ELEM_MAX ||
        (kind != BP_RING_LOCKFREE && kind != BP_RING_LOCKED) || capacity > ((size_t)1 << 32)) {
        errno = EINVAL;
        return NULL;
    }
    bp_ring *r = calloc(1, sizeof(*r));
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    r->kind = kind;
    r->cap = capacity;
    r->esize = elem_size;
    r->words = (elem_size + 7) / 8;
    if (kind == BP_RING_LOCKFREE) {
        r->sstride = sizeof(lf_slot) + r->words * sizeof(uint64_t);
        r->slots = calloc(capacity, r->sstride);
        for (size_t i = 0; r->slots && i < capacity; i++) /* no ticket yet */
            atomic_init(&slot_at(r, i)->seq, UINT64_MAX - 1);
    } else {
        pthread_mutex_init(&r->mu, NULL);
        r->buf = calloc(capacity, elem_size);
    }
    if (!r->slots && !r->buf) {
        free(r);
        errno = ENOMEM;
        return NULL;
    }
    return r;
}

void bp_ring_free(bp_ring *r) {
    if (!r)
        return;
    if (r->kind == BP_RING_LOCKED)
        pthread_mutex_destroy(&r->mu);
    free(r->slots);
    free(r->buf);
    free(r);
}

/* ---- lock-free ------------------------------------------------------------ */

static bool older(uint64_t seq, uint64_t t) { /* complete and for an older ticket */
    return seq == UINT64_MAX - 1 || (!(seq & 1) && seq / 2 - 1 < t);
}

static void lf_push(bp_ring *r, const void *elem) {
    uint64_t t = atomic_fetch_add_explicit(&r->head, 1, memory_order_relaxed);
    lf_slot *s = slot_at(r, t);
    uint64_t seq = ld_acq(&s->seq);
    if (!older(seq, t) || !atomic_compare_exchange_strong_explicit(
                              &s->seq, &seq, 2 * t + 1, memory_order_acquire, memory_order_relaxed))
        return; /* a newer ticket owns the slot, or a writer is in it */
    atomic_thread_fence(memory_order_release);
    uint64_t w[ELEM_MAX / 8];
    w[r->words - 1] = 0;
    memcpy(w, elem, r->esize);
    for (size_t i = 0; i < r->words; i++)
        st_rlx(&s->w[i], w[i]);
    st_rel(&s->seq, 2 * t + 2);
}

/* Copies ticket t into out if it is whole and still there. */
static bool lf_read(bp_ring *r, uint64_t t, void *out) {
    lf_slot *s = slot_at(r, t);
    if (ld_acq(&s->seq) != 2 * t + 2)
        return false;
    uint64_t w[ELEM_MAX / 8];
    for (size_t i = 0; i < r->words; i++)
        w[i] = ld_rlx(&s->w[i]);
    atomic_thread_fence(memory_order_acquire);
    if (ld_rlx(&s->seq) != 2 * t + 2)
        return false;
    memcpy(out, w, r->esize);
    return true;
}

static void lf_window(bp_ring *r, uint64_t *lo, uint64_t *hi) {
    uint64_t h = ld_acq(&r->head), b = ld_acq(&r->base);
    uint64_t from = h > r->cap ? h - r->cap : 0;
    *lo = from > b ? from : b;
    *hi = h;
}

static size_t lf_snapshot(bp_ring *r, void *out, size_t max) {
    uint64_t lo, hi;
    lf_window(r, &lo, &hi);
    if (hi - lo > max)
        lo = hi - max;
    size_t n = 0;
    for (uint64_t t = lo; t < hi; t++)
        if (lf_read(r, t, (uint8_t *)out + n * r->esize))
            n++;
    return n;
}

/* A batch from a writer that is alone by construction (the pool publishes
 * under its lock): no ticket RMW or slot CAS, the same seqlock protocol for
 * readers, and the head published last so readers never look ahead. */
static void lf_push_serial(bp_ring *r, const uint8_t *elems, size_t n) {
    uint64_t t = ld_rlx(&r->head), end = t + n;
    size_t at = (size_t)(t % r->cap); /* walk the slots: no division per element */
    uint64_t w[ELEM_MAX / 8];
    for (; t < end; t++, elems += r->esize) {
        lf_slot *s = (lf_slot *)(r->slots + at * r->sstride);
        at = at + 1 == r->cap ? 0 : at + 1;
        st_rlx(&s->seq, 2 * t + 1);
        atomic_thread_fence(memory_order_release);
        if (r->esize == sizeof(uint64_t)) { /* the pool's recorder: one word */
            uint64_t v;
            memcpy(&v, elems, sizeof v);
            st_rlx(&s->w[0], v);
        } else {
            w[r->words - 1] = 0;
            memcpy(w, elems, r->esize);
            for (size_t k = 0; k < r->words; k++)
                st_rlx(&s->w[k], w[k]);
        }
        st_rel(&s->seq, 2 * t + 2);
    }
    st_rel(&r->head, end);
}

/* ---- locked ----------------------------------------------------------------- */

static void lk_push(bp_ring *r, const void *elem) {
    pthread_mutex_lock(&r->mu);
    size_t at = (r->first + r->len) % r->cap;
    memcpy(r->buf + at * r->esize, elem, r->esize);
    if (r->len < r->cap)
        r->len++;
    else
        r->first = (r->first + 1) % r->cap;
    pthread_mutex_unlock(&r->mu);
}

static size_t lk_snapshot(bp_ring *r, void *out, size_t max) {
    pthread_mutex_lock(&r->mu);
    size_t n = r->len < max ? r->len : max;
    for (size_t i = 0; i < n; i++) {
        size_t at = (r->first + r->len - n + i) % r->cap;
        memcpy((uint8_t *)out + i * r->esize, r->buf + at * r->esize, r->esize);
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

static int lk_take(bp_ring *r, void *out, bool remove) {
    pthread_mutex_lock(&r->mu);
    int err = EAGAIN;
    if (r->len) {
        if (out)
            memcpy(out, r->buf + r->first * r->esize, r->esize);
        if (remove) {
            r->first = (r->first + 1) % r->cap;
            r->len--;
        }
        err = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return err;
}

/* ---- the public face ------------------------------------------------------- */

void bp_ring_push(bp_ring *r, const void *elem) {
    if (!r || !elem)
        return;
    if (r->kind == BP_RING_LOCKFREE)
        lf_push(r, elem);
    else
        lk_push(r, elem);
}

size_t bp_ring_snapshot(bp_ring *r, void *out, size_t max) {
    if (!r || !out || !max)
        return 0;
    return r->kind == BP_RING_LOCKFREE ? lf_snapshot(r, out, max) : lk_snapshot(r, out, max);
}

int bp_ring_pop(bp_ring *r, void *out) {
    if (!r)
        return EINVAL;
    return r->kind == BP_RING_LOCKED ? lk_take(r, out, true) : ENOTSUP;
}

int bp_ring_peek(bp_ring *r, void *out) {
    if (!r)
        return EINVAL;
    return r->kind == BP_RING_LOCKED ? lk_take(r, out, false) : ENOTSUP;
}

size_t bp_ring_len(bp_ring *r) {
    if (!r)
        return 0;
    if (r->kind == BP_RING_LOCKFREE) {
        uint64_t lo, hi;
        lf_window(r, &lo, &hi);
        return (size_t)(hi - lo);
    }
    pthread_mutex_lock(&r->mu);
    size_t n = r->len;
    pthread_mutex_unlock(&r->mu);
    return n;
}

size_t bp_ring_cap(bp_ring *r) { return r ? r->cap : 0; }
bool bp_ring_is_full(bp_ring *r) { return r && bp_ring_len(r) == r->cap; }
bool bp_ring_is_empty(bp_ring *r) { return bp_ring_len(r) == 0; }

void bp_ring_clear(bp_ring *r) {
    if (!r)
        return;
    if (r->kind == BP_RING_LOCKFREE) {
        st_rel(&r->base, ld_acq(&r->head));
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->first = r->len = 0;
    pthread_mutex_unlock(&r->mu);
}

void bp__ring_push_batch(bp_ring *r, const void *elems, size_t n) {
    if (r->kind == BP_RING_LOCKFREE) {
        lf_push_serial(r, elems, n);
        return;
    }
    pthread_mutex_lock(&r->mu); /* one lock for the batch */
    for (size_t i = 0; i < n; i++) {
        size_t at = (r->first + r->len) % r->cap;
        memcpy(r->buf + at * r->esize, (const uint8_t *)elems + i * r->esize, r->esize);
        if (r->len < r->cap)
            r->len++;
        else
            r->first = (r->first + 1) % r->cap;
    }
    pthread_mutex_unlock(&r->mu);
}

void bp_ring_push_size(bp_ring *r, size_t v) {
    if (r && r->esize == sizeof(size_t))
        bp_ring_push(r, &v);
}

size_t bp_ring_snapshot_sizes(bp_ring *r, size_t *out, size_t max) {
    return r && r->esize == sizeof(size_t) ? bp_ring_snapshot(r, out, max) : 0;
}
