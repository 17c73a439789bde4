/* SPDX-License-Identifier: MIT */
/*
 * objpool.c - the seed's Pool[T]: fixed-size objects on top of a one-tier
 * buffer pool, so objects get the same segments, thread caches, statistics
 * and refusal of bad pointers. init runs when an object is first handed out
 * (as the seed's constructor runs on demand: an init that allocates does so
 * only for objects somebody asked for), marked per slot in the segment
 * header; the memory is never poisoned, so an initialised object stays
 * initialised. reset runs on put, before the object can be handed out again.
 * The object pool's handle lives as long as its buffer pool: a put after
 * bp_objpool_destroy still finds it, and the last one frees both.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

struct bp_objpool {
    bp_pool *pool;
    void (*init)(void *obj, void *arg);
    void (*reset)(void *obj, void *arg);
    void *arg;
    _Atomic uint64_t created;
};

bp_objpool *bp__objpool_new(const bp_objpool_config *cfg) {
    if (cfg->obj_size == 0 || cfg->obj_size > BP_MAX_TIER_SIZE) {
        errno = EINVAL;
        return NULL;
    }
    bp_objpool *op = calloc(1, sizeof(*op));
    if (!op) {
        errno = ENOMEM;
        return NULL;
    }
    size_t size = cfg->obj_size;
    bp_config pc = {0};
    pc.sizes = &size;
    pc.nsizes = 1;
    pc.tcache_bytes = cfg->tcache_bytes;
    pc.flags = BP_NO_RECENT | BP_NO_BACKGROUND;
    op->pool = bp__pool_new(&pc);
    if (!op->pool) {
        free(op);
        return NULL;
    }
    atomic_fetch_and(&op->pool->flags, /* poison or a wipe would undo init */
                     ~(uint32_t)(BPF_CHECKED | BPF_STRICT | BPF_WIPE));
    op->init = cfg->init;
    op->reset = cfg->reset;
    op->arg = cfg->arg;
    op->pool->objpool = op; /* before any segment exists: segments get the inited bytes */
    return op;
}

void *bp_objpool_get(bp_objpool *op) {
    if (!op) {
        errno = EINVAL;
        return NULL;
    }
    void *obj = bp_get(op->pool, op->pool->max_len);
    if (!obj)
        return NULL;
    bp__vg_defined(obj, op->pool->max_len); /* an object keeps its state between uses */
    bp_seg *seg = bp__seg_of(obj);
    size_t in;
    uint32_t idx = bp__slot_of(seg, obj, &in);
    if (BP_UNLIKELY(!seg->inited[idx])) { /* the caller owns it: no other thread looks */
        seg->inited[idx] = 1;
        atomic_fetch_add_explicit(&op->created, 1, memory_order_relaxed);
        if (op->init)
            op->init(obj, op->arg);
    }
    return obj;
}

int bp_objpool_put(bp_objpool *op, void *obj) {
    if (!op)
        return bp__refuse(NULL, EINVAL, "bp_objpool_put", obj);
    bp_seg *seg = obj ? bp__seg_of(obj) : NULL;
    size_t in = 1;
    uint32_t idx = seg && seg->pool == op->pool ? bp__slot_of(seg, obj, &in) : UINT32_MAX;
    if (idx == UINT32_MAX || in != 0)
        return bp__refuse(op->pool, EINVAL, "bp_objpool_put", obj);
    if ((ld_acq(&seg->rc[idx]) & BP_RC_COUNT) == 0)
        return bp__refuse(op->pool, EALREADY, "bp_objpool_put", obj);
    if (op->reset)
        op->reset(obj, op->arg);
    return bp_put(op->pool, obj); /* after destroy, the last put may free op: not touched again */
}

int bp__objpool_stats(bp_objpool *op, bp_obj_stats *out) {
    bp_stats st;
    bp__pool_stats(op->pool, &st);
    out->get = st.total_get;
    out->put = st.total_put;
    out->hits = st.hits;
    out->live = st.outstanding;
    out->refused = st.refused;
    out->created = ld_rlx(&op->created);
    return 0;
}

size_t bp_objpool_destroy(bp_objpool *op) {
    if (!op)
        return 0;
    return bp_pool_destroy(op->pool); /* frees op with the pool, now or at the last put */
}
