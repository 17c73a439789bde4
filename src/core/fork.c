/* SPDX-License-Identifier: MIT */
/*
 * fork.c - fork(): every lock of the core is held across it, in the one
 * order they nest in (the pool registry, each pool, the tombstones, the
 * reserved range, thread numbers, wrapped ranges, the purge thread's), so
 * the child finds none held by a thread it does not have; the child then
 * takes back what the caches of the threads that did not follow it held,
 * and starts its own purge thread. (The export registry, above the core, holds its own lock
 * across fork: expvar.c.) The handlers sit at the top of the ladder: they
 * reach every layer's lock.
 */
#include "internal.h"

static void fork_prepare(void) {
    bp__registry_lock();
    for (bp_pool *p = bp__registry_first(); p; p = p->gnext)
        bp__pool_lock(p);
    bp__tomb_lock();
    bp__resv_lock();
    bp__tid_lock();
    bp__wrap_lock();
    bp__bg_fork_prepare();
}

static void fork_parent(void) {
    bp__bg_fork_parent();
    bp__wrap_unlock();
    bp__tid_unlock();
    bp__resv_unlock();
    bp__tomb_unlock();
    for (bp_pool *p = bp__registry_first(); p; p = p->gnext)
        bp__pool_unlock(p);
    bp__registry_unlock();
}

/* Pools over memory the program maps share it with the parent: the
 * child's copy hands nothing out and gives nothing back (BPF_DETACHED). */
static void detach_backed(void) {
    for (bp_pool *p = bp__registry_first(); p; p = p->gnext) {
        if (!bp__pool_backed(p))
            continue;
        atomic_fetch_or(&p->flags, BPF_DETACHED);
        bp__tc_serve(p, false);
    }
}

static void fork_child(void) {
    detach_backed(); /* every pool still locked: no call can see it half done */
    bp__wrap_unlock();
    bp__tid_unlock();
    bp__resv_unlock();
    bp__tomb_unlock();
    bp__tc_fork_child(); /* unlocks every pool and the registry */
    bp__bg_fork_child(); /* last: the child's own purge thread, every lock free again */
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void atfork_register(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }
void bp__atfork_once(void) { pthread_once(&atfork_once, atfork_register); }
