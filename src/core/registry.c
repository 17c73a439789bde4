/* SPDX-License-Identifier: MIT */
/*
 * registry.c - the process's list of live pools, and a pool's final free.
 * fork() needs every pool's lock, the purge thread every pool, and a
 * refusal must know whether a handle from the caller is a pool at all
 * before it writes into it. A destroyed pool is freed by whichever thread
 * drops its last hold (the user's handle, a segment, a thread cache), so
 * the free sits low on the ladder, where every layer that drops a hold can
 * call it.
 */
#include "internal.h"

#include <stdlib.h>

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static bp_pool *registry;
static _Atomic uint64_t next_id;

void bp__registry_lock(void) { pthread_mutex_lock(&registry_mu); }
void bp__registry_unlock(void) { pthread_mutex_unlock(&registry_mu); }
bp_pool *bp__registry_first(void) { return registry; }

bool bp__registry_has(const bp_pool *pool) {
    bp__registry_lock();
    const bp_pool *p = registry;
    while (p && p != pool)
        p = p->gnext;
    bp__registry_unlock();
    return p != NULL;
}

/* A new pool gets its id and joins the list. */
void bp__registry_add(bp_pool *pool) {
    pool->id = atomic_fetch_add(&next_id, 1) + 1;
    bp__registry_lock();
    pool->gnext = registry;
    if (registry)
        registry->gprev = pool;
    registry = pool;
    bp__registry_unlock();
}

void bp__registry_remove(bp_pool *pool) {
    bp__registry_lock();
    BP_DLIST_UNLINK(registry, pool, gnext, gprev);
    bp__registry_unlock();
}

static void pool_release_memory(bp_pool *pool) {
    if (pool->objpool)
        free(pool->objpool); /* one block, objpool.c's, freed with the pool it serves */
    pthread_cond_destroy(&pool->room);
    free((void *)pool->ctab);
    free(pool->tcs_by_tid);
    bp_ring_free(pool->ring);
    bp__leak_free_all(pool);
    bp__vg_pool_free(pool);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

void bp__pool_maybe_free(bp_pool *pool) {
    bp__pool_assert_locked(pool);
    bool gone = !pool->user_ref && !pool->segs && !pool->tcs;
    bp__pool_unlock(pool);
    if (!gone)
        return;
    /* Nothing can reach the pool any more: no handle, buffer or cache. */
    bp__registry_remove(pool);
    pool_release_memory(pool);
}
