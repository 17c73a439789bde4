/* SPDX-License-Identifier: MIT */
/*
 * fixed.c - a pool's memory as io_uring fixed (registered) buffers.
 *
 * Registering memory once saves the kernel pinning and mapping the pages
 * of every read_fixed/write_fixed. A pool maps and unmaps segments as it
 * goes, so the registration follows them: bp_uring_fixed_on_segment is the
 * pool's on_segment callback (bp_config), which puts each new segment's
 * buffer range into a free slot of a sparse buffer table registered on the
 * ring, and clears the slot before the segment is unmapped (its buffers are
 * all home then, so no request can still use them). bp_uring_fixed_index
 * finds the slot that holds a buffer, for the buf_index of a fixed request.
 * A segment that could not be registered (table full, RLIMIT_MEMLOCK) has
 * no slot: index says ENOENT and the caller uses a plain read or write.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bytepool_uring.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

typedef struct fixed_slot {
    uintptr_t base, end; /* end == 0: free */
} fixed_slot;

struct bp_uring_fixed {
    struct io_uring *ring;
    pthread_mutex_t mu; /* the callback runs on whichever thread maps or unmaps */
    unsigned nslots, used;
    unsigned long refused; /* segments left without a slot */
    fixed_slot slot[];
};

bp_uring_fixed *bp_uring_fixed_new(struct io_uring *ring, unsigned slots) {
    if (!ring || slots > 16384) {
        errno = EINVAL;
        return NULL;
    }
    if (!slots)
        slots = 1024;
    bp_uring_fixed *f = calloc(1, sizeof *f + slots * sizeof(fixed_slot));
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    int r = io_uring_register_buffers_sparse(ring, slots);
    if (r < 0) {
        free(f);
        errno = -r;
        return NULL;
    }
    f->ring = ring;
    f->nslots = slots;
    pthread_mutex_init(&f->mu, NULL);
    return f;
}

/* Points slot i at [base, base + len), or clears it (len 0). */
static int set_slot(bp_uring_fixed *f, unsigned i, void *base, size_t len) {
    struct iovec iov = {base, len};
    __u64 tag = 0;
    int r = io_uring_register_buffers_update_tag(f->ring, i, &iov, &tag, 1);
    return r < 0 ? -r : 0;
}

void bp_uring_fixed_on_segment(void *ctx, void *base, size_t len, int event) {
    bp_uring_fixed *f = ctx;
    uintptr_t b = (uintptr_t)base;
    pthread_mutex_lock(&f->mu);
    if (event == BP_SEGMENT_MAPPED) {
        unsigned i = 0;
        while (i < f->nslots && f->slot[i].end)
            i++;
        if (i < f->nslots && set_slot(f, i, base, len) == 0) {
            f->slot[i] = (fixed_slot){b, b + len};
            f->used++;
        } else {
            f->refused++;
        }
    } else if (event == BP_SEGMENT_UNMAPPING) {
        for (unsigned i = 0; i < f->nslots; i++)
            if (f->slot[i].end && f->slot[i].base == b) {
                set_slot(f, i, NULL, 0); /* a failure leaves pages pinned, never a wrong slot */
                f->slot[i] = (fixed_slot){0, 0};
                f->used--;
                break;
            }
    }
    pthread_mutex_unlock(&f->mu);
}

int bp_uring_fixed_index(bp_uring_fixed *f, const void *p, size_t len, size_t *offset) {
    if (!f || !p) {
        errno = EINVAL;
        return -1;
    }
    uintptr_t a = (uintptr_t)p;
    int found = -1;
    pthread_mutex_lock(&f->mu);
    for (unsigned i = 0; i < f->nslots && found < 0; i++)
        if (f->slot[i].end && a >= f->slot[i].base && len <= f->slot[i].end - a &&
            a < f->slot[i].end) {
            found = (int)i;
            if (offset)
                *offset = a - f->slot[i].base;
        }
    pthread_mutex_unlock(&f->mu);
    if (found < 0)
        errno = ENOENT;
    return found;
}

unsigned long bp_uring_fixed_refused(bp_uring_fixed *f) {
    if (!f)
        return 0;
    pthread_mutex_lock(&f->mu);
    unsigned long n = f->refused;
    pthread_mutex_unlock(&f->mu);
    return n;
}

int bp_uring_fixed_destroy(bp_uring_fixed *f) {
    if (!f)
        return 0;
    int r = io_uring_unregister_buffers(f->ring);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return r < 0 ? -r : 0;
}
