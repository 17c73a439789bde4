/* SPDX-License-Identifier: MIT */
/*
 * uring.c - a pool tier as an io_uring provided buffer ring.
 *
 * The library holds one reference on each of the ring's buffers for as long
 * as the ring exists. take() adds one for the program; the program's slices
 * add and drop more from any thread, touching only the count. When the
 * kernel is done with a buffer, take() arms a return watch on it
 * (bp_watch): the drop that leaves only the library's reference, on
 * whichever thread makes it, pushes the buffer's slot onto a lock-free
 * return stack, and replenish() (the ring's thread) drains the stack and
 * gives those buffers back. That is the only moment nobody else can reach
 * a buffer: a retain needs a reference to retain from. So a release never
 * touches the ring, the kernel never gets a buffer someone still reads, and
 * replenish costs what came back, not what is out.
 *
 * Debian bookworm's liburing (2.3) has no io_uring_setup_buf_ring and no
 * IOU_PBUF_RING_INC: the ring memory is mapped and registered here, and
 * the flag is passed in the registration's flags field (the old `pad`).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bytepool_uring.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4) /* Linux 6.12: the buffer has more room */
#endif
#define PBUF_RING_INC 2u         /* IOU_PBUF_RING_INC */
#define REGISTER_PBUF_STATUS 26u /* IORING_REGISTER_PBUF_STATUS, Linux 6.8 */
#define MAX_BUFS 32768u

enum { IN_KERNEL, SLICED, IN_PROGRAM };

/* One per buffer: its return watch and its place on the return stack. */
typedef struct ring_slot {
    bp_watcher w; /* first: the watch callback casts back */
    bp_uring_bufs *b;
    struct ring_slot *next; /* on the return stack */
    unsigned short bid;
    bool armed; /* the ring's thread: a watch is armed or its push is due */
} ring_slot;

struct bp_uring_bufs {
    struct io_uring *ring;
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    unsigned nbufs, mask;
    unsigned short bgid;
    bool inc;
    size_t cap;
    unsigned char **buf; /* by buffer id */
    size_t *off;         /* incremental mode: bytes the kernel has filled */
    uint16_t *pos;       /* by buffer id: the ring entry it was last given in */
    uint16_t tail;       /* ring entries given so far (mod 2^16, as the kernel counts) */
    uint16_t khead;      /* the kernel's head when last asked (BP_URING_CHECKED) */
    bool check;          /* BP_URING_CHECKED: a taken buffer must have left the ring */
    unsigned char *state;
    ring_slot *slot;
    _Atomic(ring_slot *) back; /* the return stack: pushed from any thread */
    unsigned short *out;       /* done with by the kernel, no watch armed: polled */
    unsigned nout;
    /* read by the export from other threads: relaxed atomics */
    _Atomic unsigned in_kernel;
    _Atomic uint64_t taken, returned, enobufs;
    char *published; /* the expvar name, or NULL */
};

static void give(bp_uring_bufs *b, unsigned short bid, int i) {
    b->off[bid] = 0;
    b->state[bid] = IN_KERNEL;
    b->pos[bid] = (uint16_t)(b->tail + i);
    io_uring_buf_ring_add(b->br, b->buf[bid], (unsigned)b->cap, bid, (int)b->mask, i);
}

/* The watch callback, on the thread that dropped the last program
 * reference: a push, and nothing of b is touched after it (destroy waits
 * for it). A slot is pushed at most once per arming. */
static void returned(bp_watcher *w, void *buf) {
    (void)buf;
    ring_slot *s = (ring_slot *)w;
    _Atomic(ring_slot *) *back = &s->b->back;
    ring_slot *head = atomic_load_explicit(back, memory_order_relaxed);
    do
        s->next = head;
    while (!atomic_compare_exchange_weak_explicit(back, &head, s, memory_order_release,
                                                  memory_order_relaxed));
}

/* The kernel is done with bid: have it come back when the program is. */
static void await_program(bp_uring_bufs *b, unsigned short bid) {
    b->state[bid] = IN_PROGRAM;
    if (bp_watch_owned(b->buf[bid], &b->slot[bid].w) == 0)
        b->slot[bid].armed = true;
    else /* ENOENT: no program reference is out; else someone else's watch */
        b->out[b->nout++] = bid;
}

static void release_all(bp_uring_bufs *b) {
    for (unsigned i = 0; i < b->nbufs; i++)
        if (b->buf && b->buf[i])
            bp_release(b->buf[i]);
    if (b->br)
        munmap(b->br, b->br_bytes);
    free(b->buf);
    free(b->off);
    free(b->pos);
    free(b->state);
    free(b->out);
    free(b->slot);
    free(b);
}

/* Asks the kernel where its head is (the next entry it will consume). */
static bool kernel_head(bp_uring_bufs *b) {
    struct {
        uint32_t buf_group, head, resv[8];
    } st = {.buf_group = b->bgid};
    if (syscall(__NR_io_uring_register, b->ring->ring_fd, REGISTER_PBUF_STATUS, &st, 1) != 0)
        return false;
    b->khead = (uint16_t)st.head;
    return true;
}

/* Whether the kernel has taken bid out of the ring (in incremental mode:
 * or is filling it, at the head). A completion of another group names a
 * bid that is still waiting in this ring, where the kernel may write it. */
static bool left_ring(bp_uring_bufs *b, unsigned bid) {
    for (int asked = 0;; asked = 1) {
        uint16_t ahead = (uint16_t)(b->pos[bid] - b->khead),
                 queued = (uint16_t)(b->tail - b->khead);
        if (ahead >= queued || (b->inc && ahead == 0))
            return true;
        if (asked || !kernel_head(b))
            return false;
    }
}

static int set_up(bp_uring_bufs *b, bp_pool *pool, size_t buf_size) {
    b->buf = calloc(b->nbufs, sizeof(*b->buf));
    b->off = calloc(b->nbufs, sizeof(*b->off));
    b->pos = calloc(b->nbufs, sizeof(*b->pos));
    b->state = calloc(b->nbufs, 1);
    b->out = calloc(b->nbufs, sizeof(*b->out));
    b->slot = calloc(b->nbufs, sizeof(*b->slot));
    b->br_bytes = (b->nbufs * sizeof(struct io_uring_buf) + 4095) & ~(size_t)4095;
    void *m = mmap(NULL, b->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!b->buf || !b->off || !b->pos || !b->state || !b->out || !b->slot || m == MAP_FAILED)
        return ENOMEM;
    for (unsigned i = 0; i < b->nbufs; i++)
        b->slot[i] = (ring_slot){{returned}, b, NULL, (unsigned short)i, false};
    b->br = m;
    int err = bp_get_bulk(pool, buf_size, (void **)b->buf, b->nbufs); /* all or nothing */
    if (err)
        return err;
    b->cap = bp_cap(b->buf[0]);
    if (b->cap > UINT32_MAX)
        return EINVAL;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (unsigned long)(uintptr_t)b->br;
    reg.ring_entries = b->nbufs;
    reg.bgid = b->bgid;
    reg.pad = b->inc ? PBUF_RING_INC : 0; /* the flags field of newer headers */
    err = io_uring_register_buf_ring(b->ring, &reg, 0);
    if (err < 0)
        return b->inc && err == -EINVAL ? EOPNOTSUPP : -err;
    io_uring_buf_ring_init(b->br);
    for (unsigned i = 0; i < b->nbufs; i++)
        give(b, (unsigned short)i, (int)i);
    io_uring_buf_ring_advance(b->br, (int)b->nbufs);
    b->tail = (uint16_t)b->nbufs;
    b->in_kernel = b->nbufs;
    return b->check && !kernel_head(b) ? EOPNOTSUPP : 0;
}

bp_uring_bufs *bp_uring_bufs_new(bp_pool *pool, struct io_uring *ring, unsigned short bgid,
                                 size_t buf_size, unsigned nbufs, unsigned flags) {
    size_t sizes[BP_MAX_TIERS];
    size_t n = pool ? bp_pool_sizes(pool, sizes, BP_MAX_TIERS) : 0;
    size_t largest = n ? sizes[n - 1] : 0; /* oversize buffers cannot be a ring's */
    if (!pool || !ring || !buf_size || buf_size > largest || !nbufs || nbufs > MAX_BUFS ||
        (nbufs & (nbufs - 1)) || (flags & ~(BP_URING_INC | BP_URING_CHECKED))) {
        errno = EINVAL;
        return NULL;
    }
    bp_uring_bufs *b = calloc(1, sizeof(*b));
    if (!b) {
        errno = ENOMEM;
        return NULL;
    }
    b->ring = ring;
    b->nbufs = nbufs;
    b->mask = (unsigned)io_uring_buf_ring_mask(nbufs);
    b->bgid = bgid;
    b->inc = flags & BP_URING_INC;
    b->check = flags & BP_URING_CHECKED;
    int err = set_up(b, pool, buf_size);
    if (err) {
        release_all(b);
        errno = err;
        return NULL;
    }
    return b;
}

void *bp_uring_bufs_take(bp_uring_bufs *b, const struct io_uring_cqe *cqe, size_t *len) {
    if (!b || !cqe || !len) {
        errno = EINVAL;
        return NULL;
    }
    if (cqe->res == -ENOBUFS) {
        atomic_fetch_add_explicit(&b->enobufs, 1, memory_order_relaxed);
        errno = ENOBUFS;
        return NULL;
    }
    if (!(cqe->flags & IORING_CQE_F_BUFFER)) {
        errno = cqe->res < 0 ? -cqe->res : EINVAL;
        return NULL;
    }
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    if (bid >= b->nbufs || b->state[bid] == IN_PROGRAM ||
        (b->check && b->state[bid] == IN_KERNEL && !left_ring(b, bid))) {
        errno = EINVAL;
        return NULL;
    }
    bool more = b->inc && (cqe->flags & IORING_CQE_F_BUF_MORE);
    unsigned char *p = b->buf[bid] + b->off[bid];
    size_t left = b->cap - b->off[bid]; /* a res past the buffer's end is cut there */
    size_t got = cqe->res > 0 ? (size_t)cqe->res : 0;
    got = got < left ? got : left;
    if (b->state[bid] == IN_KERNEL)
        atomic_fetch_sub_explicit(&b->in_kernel, 1, memory_order_relaxed);
    if (more) {
        b->state[bid] = SLICED;
        b->off[bid] += got;
    }
    /* The caller's reference first, so a watch armed below waits for it. */
    if (got && !bp_retain(p)) /* cannot fail: the library holds a reference */
        return NULL;
    if (!more)
        await_program(b, (unsigned short)bid);
    if (!got) {
        errno = cqe->res < 0 ? -cqe->res : ENODATA;
        return NULL;
    }
    atomic_fetch_add_explicit(&b->taken, 1, memory_order_relaxed);
    *len = got;
    return p;
}

void *bp_uring_bufs_take_bgid(bp_uring_bufs *b, unsigned bgid, const struct io_uring_cqe *cqe,
                              size_t *len) {
    if (b && bgid != b->bgid) {
        errno = EINVAL;
        return NULL;
    }
    return bp_uring_bufs_take(b, cqe, len);
}

unsigned bp_uring_bufs_replenish(bp_uring_bufs *b) {
    if (!b)
        return 0;
    unsigned gave = 0, keep = 0;
    /* acquire: the releasing threads' last reads of the bytes happen before
     * the kernel writes them again */
    ring_slot *s = atomic_exchange_explicit(&b->back, NULL, memory_order_acquire);
    for (; s; s = s->next) {
        s->armed = false;
        give(b, s->bid, (int)gave++);
    }
    for (unsigned i = 0; i < b->nout; i++) {
        unsigned short bid = b->out[i];
        if (bp_refcount(b->buf[bid]) == 1) /* only ours: nobody can retain it now */
            give(b, bid, (int)gave++);
        else
            b->out[keep++] = bid;
    }
    b->nout = keep;
    if (gave) {
        io_uring_buf_ring_advance(b->br, (int)gave);
        b->tail = (uint16_t)(b->tail + gave);
        atomic_fetch_add_explicit(&b->in_kernel, gave, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->returned, gave, memory_order_relaxed);
    }
    return gave;
}

int bp_uring_bufs_stats(bp_uring_bufs *b, bp_uring_stats *out) {
    if (!b || !out)
        return EINVAL;
    memset(out, 0, sizeof(*out));
    out->nbufs = b->nbufs;
    out->buf_size = b->cap;
    out->in_kernel = atomic_load_explicit(&b->in_kernel, memory_order_relaxed);
    out->in_program = b->nbufs - out->in_kernel;
    out->taken = atomic_load_explicit(&b->taken, memory_order_relaxed);
    out->returned = atomic_load_explicit(&b->returned, memory_order_relaxed);
    out->enobufs = atomic_load_explicit(&b->enobufs, memory_order_relaxed);
    return 0;
}

size_t bp_uring_bufs_destroy(bp_uring_bufs *b) {
    if (!b)
        return 0;
    if (b->published) /* after this, the export no longer reads b */
        bp_expvar_unpublish_func(b->published);
    free(b->published);
    (void)io_uring_unregister_buf_ring(b->ring, b->bgid);
    /* Every armed watch is disarmed, or its push has happened or is about
     * to: wait for those, so no thread touches b once it is freed. */
    unsigned due = 0;
    for (unsigned i = 0; i < b->nbufs; i++)
        if (b->slot[i].armed && bp_unwatch_owned(b->buf[i], &b->slot[i].w) != 0)
            due++;
        else
            b->slot[i].armed = false;
    while (due) {
        ring_slot *s = atomic_exchange_explicit(&b->back, NULL, memory_order_acquire);
        if (!s)
            sched_yield();
        for (; s; s = s->next)
            due--;
    }
    size_t held = 0;
    for (unsigned i = 0; i < b->nbufs; i++)
        held += bp_refcount(b->buf[i]) > 1;
    release_all(b);
    return held;
}

/* Zero-copy send: the kernel's reference lives from the prep to the
 * notification, so the pages it reads cannot go back to the pool (or to
 * the ring) while it reads them. */
int bp_uring_prep_send_zc(struct io_uring_sqe *sqe, bp_uring_zc *z, int fd, void *p, size_t len,
                          int msg_flags) {
    if (!sqe || !z || !p || !bp_retain(p))
        return EINVAL;
    z->held = p;
    z->res = 0;
    io_uring_prep_send_zc(sqe, fd, p, len, msg_flags, 0);
    io_uring_sqe_set_data(sqe, z);
    return 0;
}

bool bp_uring_send_zc_done(bp_uring_zc *z, const struct io_uring_cqe *cqe) {
    if (!z || !cqe)
        return false;
    if (!(cqe->flags & IORING_CQE_F_NOTIF))
        z->res = cqe->res; /* the send's own completion */
    if ((cqe->flags & IORING_CQE_F_NOTIF) || !(cqe->flags & IORING_CQE_F_MORE)) {
        if (z->held)
            bp_release(z->held);
        z->held = NULL;
        return true;
    }
    return false;
}

/* {"uring":{...}}: the dashboard draws every variable holding "uring". */
static char *ring_json(void *ctx) {
    bp_uring_bufs *b = ctx;
    bp_uring_stats st;
    bp_uring_bufs_stats(b, &st);
    char *s = NULL;
    if (asprintf(&s,
                 "{\"uring\":{\"bgid\":%u,\"nbufs\":%zu,\"buf_size\":%zu,\"in_kernel\":%zu,"
                 "\"in_program\":%zu,\"taken\":%" PRIu64 ",\"returned\":%" PRIu64
                 ",\"enobufs\":%" PRIu64 "}}",
                 (unsigned)b->bgid, st.nbufs, st.buf_size, st.in_kernel, st.in_program, st.taken,
                 st.returned, st.enobufs) < 0)
        return NULL;
    return s;
}

/* The same numbers for /metrics: bytepool_uring_*{var="<name>"}. */
static size_t ring_metrics(void *ctx, bp_metric *out, size_t cap) {
    bp_uring_bufs *b = ctx;
    bp_uring_stats st;
    bp_uring_bufs_stats(b, &st);
    const bp_metric m[] = {
        {"uring_buffers", "Buffers of the io_uring provided buffer ring", 0, st.nbufs},
        {"uring_in_kernel", "Ring buffers the kernel may fill", 0, st.in_kernel},
        {"uring_in_program", "Ring buffers the program still holds", 0, st.in_program},
        {"uring_taken", "Completions turned into references", 1, st.taken},
        {"uring_returned", "Buffers given back to the kernel", 1, st.returned},
        {"uring_enobufs", "Completions that found the ring empty", 1, st.enobufs},
    };
    size_t n = sizeof m / sizeof m[0] < cap ? sizeof m / sizeof m[0] : cap;
    memcpy(out, m, n * sizeof m[0]);
    return n;
}

int bp_uring_bufs_publish(bp_uring_bufs *b, const char *name) {
    if (!b || !name || b->published)
        return EINVAL;
    char *copy = strdup(name);
    if (!copy)
        return ENOMEM;
    int err = bp_expvar_publish_metrics(name, ring_json, ring_metrics, b);
    if (err) {
        free(copy);
        return err;
    }
    b->published = copy;
    return 0;
}
