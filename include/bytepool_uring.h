/* SPDX-License-Identifier: MIT */
/*
 * bytepool_uring.h - pool buffers as an io_uring provided buffer ring
 * (libbytepool_uring, built when liburing is available).
 *
 * A ring of nbufs pooled buffers is registered with an io_uring as buffer
 * group bgid. A recv completion that picked one becomes, through
 * bp_uring_bufs_take(), a pointer into that buffer holding one reference:
 * the program may slice it (bp_retain any pointer inside), hand it to other
 * threads and drop it with bp_release from any of them. A buffer goes back
 * to the kernel only when the kernel is done with it and every reference
 * the program took is gone, at the next bp_uring_bufs_replenish() on the
 * ring's thread. Each buffer is in one of three states (docs/design.md):
 *   kernel  in the ring, the kernel may fill it; no program reference
 *   sliced  (incremental mode) the kernel still fills its rest, the program
 *           holds slices of what came so far
 *   program the kernel is done; slices may be out; back to the kernel once
 *           they are all released
 * The library keeps one reference of its own on every buffer, so a buffer is
 * never reused while anything else holds one. Buffers in the program state
 * carry the ring's own return watch (bp_watch_owned): bp_watch on them
 * fails with EBUSY and bp_unwatch with EPERM, so the ring always knows
 * whether its watcher will run.
 *
 * liburing.h, which this header includes, needs _GNU_SOURCE (or -std=gnu11)
 * defined before the first system header.
 *
 * Thread-safety: bp_uring_bufs_new/take/replenish/stats/destroy are the
 * ring's: call them from the thread that owns the io_uring. bp_release (and
 * bp_retain) of the bytes may come from any thread and never touch the ring.
 */
#ifndef BYTEPOOL_URING_H
#define BYTEPOOL_URING_H

#include "bytepool.h"

#include <liburing.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bp_uring_bufs bp_uring_bufs;

/* bp_uring_bufs_new flags */
#define BP_URING_INC                                                                               \
    0x1u /* incremental consumption (IOU_PBUF_RING_INC, Linux 6.12): one buffer serves several     \
            completions, packed one after another */
#define BP_URING_CHECKED                                                                           \
    0x2u /* bp_uring_bufs_take verifies that the kernel took each buffer out of this ring (one     \
            io_uring_register call per batch of completions; Linux 6.8): a completion of another   \
            group is refused with EINVAL instead of handing out a buffer the kernel may still      \
            fill. For tests and debugging */

typedef struct bp_uring_stats {
    size_t nbufs;      /* buffers of the ring */
    size_t buf_size;   /* capacity of each (the tier serving buf_size) */
    size_t in_kernel;  /* in the ring now: the kernel may fill them */
    size_t in_program; /* taken, waiting for the program's references to go */
    uint64_t taken;    /* completions turned into references */
    uint64_t returned; /* buffers given back to the kernel by replenish */
    uint64_t enobufs;  /* completions that found the ring empty */
} bp_uring_stats;

/* Registers a provided buffer ring of nbufs buffers (a power of two, 1 ..
 * 32768) of the pool tier serving buf_size, as group bgid of ring. Returns
 * NULL with errno EINVAL (NULL pool or ring, buf_size 0 or above the pool's
 * largest tier, nbufs not a power of two, an unknown flag), ENOMEM (the pool
 * or the OS refused), EOPNOTSUPP (the kernel has no incremental mode, for
 * BP_URING_INC, or cannot report its head, for BP_URING_CHECKED) or the error of
 * io_uring_register_buf_ring (EEXIST: bgid taken). Destroy it before the pool and the io_uring. */
BP_API bp_uring_bufs *bp_uring_bufs_new(bp_pool *pool, struct io_uring *ring, unsigned short bgid,
                                        size_t buf_size, unsigned nbufs, unsigned flags);

/* The bytes of a completion of this group (IORING_CQE_F_BUFFER set): a
 * pointer into the buffer holding one reference for the caller, who drops
 * it with bp_release (from any thread); *len = cqe->res, cut to the bytes
 * left in the buffer. NULL with errno ENOBUFS (the ring was empty:
 * counted; replenish, then re-arm the request), ENODATA (a buffer came back
 * with no bytes: it is recycled), EINVAL (no buffer, a buffer id unknown to
 * this ring or already taken), or -cqe->res for another error.
 *
 * Precondition: cqe completes a request that named this ring's group
 * (sqe->buf_group == bgid). A completion does not carry its group, so a
 * completion of another group that names a buffer id this ring has in the
 * kernel cannot be told apart: taking it hands out a buffer the kernel may
 * still fill, and the next replenish gives it to the kernel twice. Programs
 * with several rings pass the group the request named to
 * bp_uring_bufs_take_bgid, and BP_URING_CHECKED verifies it against the
 * kernel. */
BP_API void *bp_uring_bufs_take(bp_uring_bufs *b, const struct io_uring_cqe *cqe, size_t *len);

/* bp_uring_bufs_take for a completion of a request that named group bgid
 * (the program keeps it with the request, e.g. behind user_data): EINVAL,
 * nothing taken, when bgid is not this ring's group. */
BP_API void *bp_uring_bufs_take_bgid(bp_uring_bufs *b, unsigned bgid,
                                     const struct io_uring_cqe *cqe, size_t *len);

/* Gives the kernel back every buffer the kernel is done with and whose
 * every reference from the program has been released since; returns how
 * many. The last release of each, on any thread, pushed it onto a
 * lock-free return stack (a return watch, bp_watch), which this drains: the
 * cost is the buffers that came back, not the buffers out. Does not
 * submit: the next io_uring_submit (or a re-armed request) sees them. */
BP_API unsigned bp_uring_bufs_replenish(bp_uring_bufs *b);

/* Zero-copy send (IORING_OP_SEND_ZC) of len bytes at p, a pointer into a
 * pooled buffer (a taken completion, a slice, any bp_get buffer). The
 * kernel reads the bytes until its notification completion, so the buffer
 * must not be reused before it: bp_uring_prep_send_zc takes one reference
 * for the kernel, kept in *z, and prepares sqe with user_data z. Pass each
 * completion tagged z to bp_uring_send_zc_done, which drops that reference
 * at the notification (IORING_CQE_F_NOTIF), or at once when no
 * notification will follow (a completion without IORING_CQE_F_MORE). z
 * must stay valid until then. Returns 0, or EINVAL (NULL argument, p not in
 * a live pooled buffer: sqe is left unprepared). Any thread; sqe is the
 * ring's. */
typedef struct bp_uring_zc {
    void *held; /* the kernel's reference, NULL when none */
    int res;    /* the send's result: bytes sent or -errno */
} bp_uring_zc;
BP_API int bp_uring_prep_send_zc(struct io_uring_sqe *sqe, bp_uring_zc *z, int fd, void *p,
                                 size_t len, int msg_flags);
/* Accounts for one completion of a bp_uring_prep_send_zc request: returns
 * true when the request is over (its reference dropped, z->res holds the
 * send's result), false when a notification is still to come. */
BP_API bool bp_uring_send_zc_done(bp_uring_zc *z, const struct io_uring_cqe *cqe);

/* Publishes the ring's statistics as the expvar variable `name`
 * ({"uring":{"bgid", "nbufs", "buf_size", "in_kernel", "in_program",
 * "taken", "returned", "enobufs"}}): /debug/vars and the dashboard show it,
 * and bp_prometheus_all (/metrics) has the same numbers as the families
 * bytepool_uring_buffers, _in_kernel, _in_program, _taken_total,
 * _returned_total and _enobufs_total, label var="<name>".
 * Destroy unpublishes. Returns 0, EINVAL (NULL argument, already
 * published), EEXIST (the name is taken) or ENOMEM. */
BP_API int bp_uring_bufs_publish(bp_uring_bufs *b, const char *name);

/* Fills *out; 0 or EINVAL. */
BP_API int bp_uring_bufs_stats(bp_uring_bufs *b, bp_uring_stats *out);

/* Unregisters the group and drops the library's reference on every buffer;
 * returns how many buffers the program still references (they stay valid
 * until released, from any thread, also while destroy runs). No request
 * may still use the group. NULL returns 0. */
BP_API size_t bp_uring_bufs_destroy(bp_uring_bufs *b);

/* ---- pool memory as fixed buffers ------------------------------------------
 * A pool's segments registered as io_uring fixed buffers, kept right as
 * segments come and go: create the set, then make the pool with
 * bp_config.on_segment = bp_uring_fixed_on_segment and segment_ctx = the
 * set. For a buffer (or any part of one), bp_uring_fixed_index gives the
 * buf_index of io_uring_prep_read_fixed / io_uring_prep_write_fixed (the
 * address passed stays the buffer's own). Registered memory is pinned and
 * counted against RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK. */
typedef struct bp_uring_fixed bp_uring_fixed;

/* Registers a sparse table of slots fixed buffers (0: 1024; at most 16384)
 * on ring, which must have none yet. Returns the set, or NULL with errno
 * EINVAL, ENOMEM, or what the kernel said (EBUSY: the ring has buffers
 * registered). The ring's thread calls it; the ring outlives the set. */
BP_API bp_uring_fixed *bp_uring_fixed_new(struct io_uring *ring, unsigned slots);

/* The pool's on_segment callback (bp_config), ctx the set: a mapped
 * segment takes a free slot, an unmapped one gives its slot back. A
 * segment that finds no slot or that the kernel refuses (RLIMIT_MEMLOCK)
 * is counted (bp_uring_fixed_refused) and its buffers have no index. Runs
 * on whichever thread maps or unmaps, with the pool's lock held. */
BP_API void bp_uring_fixed_on_segment(void *ctx, void *base, size_t len, int event);

/* The buf_index of the registered buffer holding [p, p + len), and in
 * *offset (may be NULL) p's distance from that registered buffer's start;
 * -1 with errno ENOENT (not registered: use a plain read or write) or
 * EINVAL (NULL argument). Thread-safe. */
BP_API int bp_uring_fixed_index(bp_uring_fixed *f, const void *p, size_t len, size_t *offset);

/* Segments that got no slot since the set was made. Thread-safe. */
BP_API unsigned long bp_uring_fixed_refused(bp_uring_fixed *f);

/* Unregisters every fixed buffer of the ring and frees the set. Destroy the
 * pool first (or make sure no segment is mapped or unmapped any more), and
 * let no fixed request be in flight. Returns 0 or what the kernel said;
 * NULL returns 0. */
BP_API int bp_uring_fixed_destroy(bp_uring_fixed *f);

#ifdef __cplusplus
}
#endif
#endif
