/*
 * objpool.c - the seed's Pool[T]: fixed-size objects on top of a one-tier
 * buffer pool, so objects get the same segments, thread caches, statistics
 * and refusal of bad pointers. init runs when a slot is first carved (its
 * memory is never poisoned, so an initialised object stays initialised);
 * reset runs on put, before the object can be handed out again.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

struct bp_objpool {
    bp_pool *pool;
    void (*reset)(void *obj, void *arg);
    void *arg;
};

bp_objpool *bp_objpool_new(const bp_objpool_config *cfg) {
    if (!cfg || cfg->obj_size == 0 || cfg->obj_size > BP_MAX_TIER_SIZE) {
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
    pc.flags = BP_NO_RECENT;
    op->pool = bp_pool_new(&pc);
    if (!op->pool) {
        free(op);
        return NULL;
    }
    atomic_fetch_and(&op->pool->flags, ~BPF_CHECKED); /* poison would undo init */
    op->pool->on_carve = cfg->init;
    op->pool->carve_arg = cfg->arg;
    op->reset = cfg->reset;
    op->arg = cfg->arg;
    return op;
}

void *bp_objpool_get(bp_objpool *op) {
    if (!op) {
        errno = EINVAL;
        return NULL;
    }
    void *obj = bp_get(op->pool, op->pool->max_len);
    if (obj) /* an object keeps its state between uses: it is not fresh memory */
        bp__vg_defined(obj, op->pool->max_len);
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
    return bp_put(op->pool, obj);
}

int bp_objpool_stats(bp_objpool *op, bp_obj_stats *out) {
    bp_stats st;
    if (!op || !out || bp_pool_stats(op->pool, &st) != 0)
        return EINVAL;
    out->get = st.total_get;
    out->put = st.total_put;
    out->hits = st.hits;
    out->live = st.outstanding;
    out->refused = st.refused;
    bp__pool_lock(op->pool);
    out->created = op->pool->carved_total;
    bp__pool_unlock(op->pool);
    return 0;
}

size_t bp_objpool_destroy(bp_objpool *op) {
    if (!op)
        return 0;
    size_t live = bp_pool_destroy(op->pool);
    free(op);
    return live;
}
