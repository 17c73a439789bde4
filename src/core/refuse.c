/* SPDX-License-Identifier: MIT */
/*
 * refuse.c - how the library says no: a refused call counts against its
 * pool (or the process, when no pool is known), calls the pool's on_error
 * or the process-wide handler, sets errno and returns the error; and
 * bp_error_name puts each error of each call into words. Every layer
 * refuses through here, so it sits below them all but the registry it asks
 * whether a caller's pool handle is real.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

static _Atomic uint64_t refused_unowned;
static _Atomic(bp_error_fn) global_handler;
static void *_Atomic global_ctx;

bp_error_fn bp_set_error_handler(bp_error_fn fn, void *ctx) {
    st_rel(&global_ctx, ctx);
    return atomic_exchange(&global_handler, fn);
}

uint64_t bp_refused_unowned(void) { return ld_rlx(&refused_unowned); }

int bp__refuse(bp_pool *pool, int err, const char *op, const void *p) {
    if (pool) {
        atomic_fetch_add_explicit(&pool->refused, 1, memory_order_relaxed);
        bp__report(pool, err, op, p);
    } else {
        atomic_fetch_add_explicit(&refused_unowned, 1, memory_order_relaxed);
        bp_error_fn fn = ld_acq(&global_handler);
        if (fn)
            fn(ld_acq(&global_ctx), err, op, p);
    }
    errno = err;
    return err;
}

/* A pool handle from the caller is only trusted once the registry knows it:
 * a refusal must not write into, or call through, memory that is no pool. */
int bp__refuse_user(bp_pool *pool, int err, const char *op, const void *p) {
    return bp__refuse(pool && bp__registry_has(pool) ? pool : NULL, err, op, p);
}

void bp__report(bp_pool *pool, int err, const char *op, const void *p) {
    if (pool->on_error)
        pool->on_error(pool->error_ctx, err, op, p);
}

/* ---- naming errors ---------------------------------------------------------- */

const char *bp_error_name(int err, const char *op) {
    if (err == EINVAL && op && !strcmp(op, BP_OP_RELEASE_N_COUNT))
        return "n exceeds the buffer's reference count (nothing was released)";
    if (err == EINVAL && op && !strcmp(op, BP_OP_GROW_INTERIOR))
        return "an interior pointer: grow the buffer's start (bp_base), which moves with it";
    bool drop = op && (!strncmp(op, "bp_put", 6) || !strncmp(op, "bp_release", 10) ||
                       !strcmp(op, "bp_objpool_put"));
    switch (err) {
    case 0:
        return "no error";
    case EINVAL:
        return drop || (op && !strncmp(op, "bp_retain", 9))
                   ? "not a pointer into a live buffer of the pool (foreign, stale, a "
                     "one-past-the-end pointer, or another pool's)"
                   : "invalid argument";
    case EBUSY:
        return op && !strncmp(op, "bp_grow", 7)
                   ? "others hold references to the buffer: moving it would leave their "
                     "pointers dangling"
                   : "the buffer has a watch already";
    case EALREADY:
        return drop ? "double release (the buffer is already free), or a pointer one past the "
                      "end of a buffer (p + bp_cap(p)) that lands on the next buffer, a free one"
                    : "the buffer is already free (retain after the last release, or a pointer "
                      "one past the end of a buffer that lands on the next, free buffer)";
    case EOVERFLOW:
        return "reference count overflow";
    case ENOMEM:
        return "out of memory, or the pool's max_bytes budget is used up";
    case ETIMEDOUT:
        return "timed out waiting for room under the pool's budget";
    case EEXIST:
        return "the name is already published";
    case ENOENT:
        return "not published";
    case E2BIG:
        return "the struct holds fields this library version does not know (built against a "
               "newer header)";
    default:
        return "unknown error";
    }
}
