/* SPDX-License-Identifier: MIT */
/*
 * registry.c - the process's list of live pools. fork() needs every pool's
 * lock, the purge thread every pool, and a refusal must know whether a
 * handle from the caller is a pool at all before it writes into it.
 */
#include "internal.h"

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
