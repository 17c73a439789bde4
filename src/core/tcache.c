/* SPDX-License-Identifier: MIT */
/*
 * tcache.c - per-thread caches.
 *
 * A thread has one bp_tld (reached through an initial-exec TLS pointer that
 * starts at an empty sentinel), a small thread number (bp__tid, taken with
 * its first cache) and one bp_tcache per pool it uses. The fast paths find
 * it in one step, pool->tcv[bp__tid]: an array per pool whose entries are
 * bp__tc_none (bins both empty and full, so every call goes slow) until the
 * thread has a cache there, and which is swapped for an array of nothing
 * but bp__tc_none while the pool must bypass caches. Thread 0 (no number:
 * more than BP_TIDS - 1 threads at once) is served by the slow paths, which
 * find its cache on the thread's list. Only the owner thread touches a cache's bins, so the fast
 * paths need no atomic read-modify-write; other threads read its counters and staged lengths with
 * relaxed/acquire loads. A cache leaves its pool at thread exit, after fork in the child (for the
 * threads that did not survive), and, for destroyed pools, when its thread next takes a slow path
 * (a process-wide epoch says a sweep is due).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

_Atomic uint64_t bp__dead_epoch;

static pthread_key_t tld_key;
static pthread_once_t tld_once = PTHREAD_ONCE_INIT;

static void tld_exit(void *arg);

static void tld_init_once(void) { pthread_key_create(&tld_key, tld_exit); }

static bp_tld *tld_get(void) {
    bp_tld *tld = bp__tld;
    if (BP_LIKELY(tld->live))
        return tld;
    pthread_once(&tld_once, tld_init_once);
    tld = calloc(1, sizeof(*tld));
    if (!tld)
        return NULL;
    tld->live = true;
    tld->epoch = ld_acq(&bp__dead_epoch);
    tld->tid = bp__tid_take();
    tld->ktid = bp__os_thread_id();
    pthread_setspecific(tld_key, tld);
    bp__tld = tld;
    bp__tid = tld->tid;
    return tld;
}

/* The least room of a tier's bin: a quarter of its bound, one at least. */
static uint32_t bin_floor(const bp_pool *pool, uint32_t tier) {
    return (pool->depot[tier].bin_max + 3) / 4;
}

static bp_tcache *tc_new(bp_pool *pool, bp_tld *tld) {
    uint32_t n = pool->ntiers + 1; /* the extra bin is always full: oversize */
    size_t entries = 0;
    for (uint32_t t = 0; t < pool->ntiers; t++)
        entries += pool->depot[t].bin_max;
    uint64_t nbatch = pool->hist_len / BP_BATCH;
    size_t bytes = sizeof(bp_tcache) + n * sizeof(bp_bin) + entries * sizeof(bp_centry) +
                   pool->hist_len * sizeof(size_t) + 2 * nbatch * sizeof(uint64_t);
    bp_tcache *tc = calloc(1, bytes);
    if (!tc)
        return NULL;
    tc->pool = pool;
    tc->tld = tld;
    bp_centry *e = (bp_centry *)&tc->bins[n];
    for (uint32_t t = 0; t < pool->ntiers; t++) {
        tc->bins[t].e = tc->bins[t].top = e;
        /* The floor's room to start with: a bin that is used grows
         * (bp__tc_refill), one that only fills is not full of buffers first. */
        tc->bins[t].end = e + bin_floor(pool, t);
        e += pool->depot[t].bin_max;
    }
    tc->hist = (_Atomic size_t *)e;
    tc->stamp = (_Atomic uint64_t *)(tc->hist + pool->hist_len);
    tc->order = tc->stamp + nbatch;
    tc->hmask = pool->hist_len - 1;
    tc->lim = bp__batch_interval(pool);
    tc->hcur = tc->hist;
    bp__hist_arm(tc);
    return tc;
}

static void slot_clear(bp_tld *tld, const bp_tcache *tc) {
    if (tld->tid && tc->pool->tcs_by_tid[tld->tid] == tc)
        tc->pool->tcs_by_tid[tld->tid] = &bp__tc_none;
}

/* A pool at its budget bypasses thread caches for a while, so a buffer one
 * thread frees is at once another's (bp_get_wait depends on it): this
 * thread's free buffers go back to the depot. Past the while, with nobody
 * waiting, the caches serve again. Returns whether the pressure lasts. */
static bool under_pressure(bp_pool *pool) {
    if (bp__os_now_ms() >= ld_rlx(&pool->pressure_until_ms)) {
        bp__pool_lock(pool);
        bool end = !pool->waiters && bp__os_now_ms() >= ld_rlx(&pool->pressure_until_ms);
        if (end &&
            (atomic_fetch_and(&pool->flags, ~BPF_PRESSURE) & (BPF_SLOW & ~BPF_PRESSURE)) == 0)
            bp__tc_serve(pool, true);
        bp__pool_unlock(pool);
        if (end)
            return false;
    }
    bp_tcache *tc = bp__tc_find(pool);
    if (tc)
        bp__tc_flush_all(tc);
    return true;
}

bp_tcache *bp__tc_slow(bp_pool *pool) {
    if (bp__tld->live && bp__tld->epoch != ld_acq(&bp__dead_epoch))
        bp__tld_sweep();
    if ((ld_rlx(&pool->flags) & (BPF_PRESSURE | BPF_DEAD)) == BPF_PRESSURE && under_pressure(pool))
        return NULL;
    if (ld_rlx(&pool->flags) & BPF_SLOW) /* read again: the pressure may just have ended */
        return NULL;                     /* checked and dead pools bypass caches */
    bp_tld *tld = tld_get();
    if (!tld)
        return NULL;
    bp_tcache *tc = bp__tc_find(pool);
    if (!tc) {
        tc = tc_new(pool, tld);
        if (!tc)
            return NULL;
        bp__pool_lock(pool);
        tc->pnext = pool->tcs;
        if (pool->tcs)
            pool->tcs->pprev = tc;
        pool->tcs = tc;
        bp__pool_unlock(pool);
        tc->tnext = tld->tcs;
        tld->tcs = tc;
    }
    if (tld->tid && pool->tcs_by_tid[tld->tid] != tc) {
        bp__pool_lock(pool); /* the purge thread drains a detached cache under it */
        pool->tcs_by_tid[tld->tid] = tc;
        bp__pool_unlock(pool);
    }
    return tc;
}

bp_tcache *bp__tc_find(const bp_pool *pool) {
    bp_tcache *tc = bp__tld->tcs;
    while (tc && tc->pool != pool)
        tc = tc->tnext;
    return tc;
}

/* Every free buffer of the calling thread's cache goes to the depot. */
void bp__tc_flush_all(bp_tcache *tc) {
    for (uint32_t t = 0; t < tc->pool->ntiers; t++)
        if (bp__bin_n(&tc->bins[t]))
            bp__tc_flush_bin(tc, t, 0);
}

/* Bins change in slow paths only under the pool lock, and are read after
 * it is taken: the purge thread may have drained them meanwhile. */
void bp__tc_flush_bin(bp_tcache *tc, uint32_t tier, uint32_t keep) {
    bp_bin *bin = &tc->bins[tier];
    bp__pool_lock(tc->pool);
    uint32_t n = bp__bin_n(bin), give = n > keep ? n - keep : 0;
    bp__depot_give(tc->pool, tier, bin->e, give); /* the oldest, coldest ones */
    memmove(bin->e, bin->e + give, (n - give) * sizeof(bp_centry));
    bin->top = bin->e + (n - give);
    bp__depot_decay(tc->pool);
    bp__pool_unlock(tc->pool);
}

/* Thread caches are sized by use (as jemalloc's tcache GC and tcmalloc's
 * per-CPU resizing do). A bin that overflows although its thread took
 * fewer buffers out of it than half its room since it last overflowed is a
 * sink (a thread that releases what others got, as a fan-out's consumers
 * do): its room halves, down to a quarter of the tier's bound, and it
 * gives the depot everything. The floor keeps the lock amortised: with a
 * room of one, every release of a hand-off took the pool lock (bench
 * d/xthread 71 -> 300 ns per hand-off, c/xfanout-n 180 -> 370; with a
 * floor of an eighth 170 and 240, a quarter 111 and 199, a half 91 and
 * 218, at fanout_mem peaks of 23.0, 24.0 and 25.6 MiB). Otherwise half goes
 * to the depot, as before. A get that finds the bin empty doubles its room
 * again, up to the tier's bin_max. Both are slow paths: the fast paths only
 * compare top with end, as ever. */
void bp__tc_bin_full(bp_tcache *tc, uint32_t tier) {
    bp_bin *bin = &tc->bins[tier];
    uint64_t gets = ld_rlx(&bin->get) - bin->get_mark;
    uint32_t room = bp__bin_max(bin), floor = bin_floor(tc->pool, tier);
    bin->get_mark = ld_rlx(&bin->get);
    if (gets < room / 2) {
        bp__tc_flush_bin(tc, tier, 0);
        bin->end = bin->e + (room / 2 > floor ? room / 2 : floor);
        return;
    }
    bp__tc_flush_bin(tc, tier, room / 2);
}

void *bp__tc_refill(bp_tcache *tc, uint32_t tier) {
    bp_pool *pool = tc->pool;
    bp_bin *bin = &tc->bins[tier];
    bp_centry one;
    bool cached = bin->end != bin->e;
    uint32_t room = bp__bin_max(bin), full = pool->depot[tier].bin_max;
    if (cached && room < full) { /* a shrunk bin is in use again */
        room = room * 2 < full ? room * 2 : full;
        bin->end = bin->e + room;
    }
    uint32_t want = pool->depot[tier].batch < room ? pool->depot[tier].batch : room;
    if (pool->depot[tier].use_hot && (one.rc = bp__depot_hot_take(pool, tier)) != NULL) {
        bp_seg *seg = bp__seg_of_rc(one.rc);
        st_rlx(one.rc, 1);
        bp__depot_tick(tc);
        return bp__seg_buf(seg, (uint32_t)(one.rc - seg->rc));
    }
    bp__pool_lock(pool);
    uint32_t got =
        cached ? bp__depot_take(pool, tier, bin->e, want) : bp__depot_take(pool, tier, &one, 1);
    bp_centry *e = !got ? NULL : cached ? &bin->e[got - 1] : &one;
    if (got)
        bin->top = cached ? e : bin->e;
    bp__depot_decay(pool);
    bp__pool_unlock(pool);
    if (!got)
        return NULL;
    st_rlx(e->rc, 1);
    return e->p;
}

/* Empties tc's bins into the depot (pool lock held). Its owner need not be
 * the calling thread when the owner can no longer touch them: a destroyed
 * pool's key is off (background.c), or the owner did not survive a fork. */
void bp__tc_give_back(bp_tcache *tc) {
    bp__pool_assert_locked(tc->pool);
    bp_pool *pool = tc->pool;
    for (uint32_t t = 0; t < pool->ntiers; t++) {
        bp__depot_give(pool, t, tc->bins[t].e, bp__bin_n(&tc->bins[t]));
        tc->bins[t].top = tc->bins[t].e;
    }
}

/* ---- idle caches: the purge thread drains them ----------------------------
 *
 * A thread that made no call on a pool for decay_ms still holds its cache's
 * free buffers, and would forever if it stays idle. The purge thread takes
 * them with no call from that thread, and no instruction added to the fast
 * paths, in four steps under the pool lock:
 *   1. detach: the thread's slot in the pool's cache array becomes the
 *      sentinel, so its next call takes a slow path, which must take the
 *      pool lock to attach again (bp__tc_slow);
 *   2. a full fence, then ask the kernel where the thread is: only a thread
 *      blocked in a system call qualifies. The fast paths make none, so a
 *      fast path that read the slot before step 1 has finished, and the
 *      thread, once it returns, reads the sentinel; a slow path that
 *      touches bins takes the pool lock before it reads them;
 *   3. move the bins' buffers to the depot;
 *   4. the pool lock is released: a thread that woke meanwhile waits on it
 *      in bp__tc_slow, and finds its bins empty.
 * A thread running or preempted in user code gets its slot back at once and
 * is tried again at the next pass. What this cannot see: a signal handler
 * that interrupted a fast path and blocks in a system call for decay_ms. */
static uint64_t tc_ops(const bp_tcache *tc) {
    uint64_t n = 0;
    for (uint32_t t = 0; t < tc->pool->ntiers; t++)
        n += ld_rlx(&tc->bins[t].get) + ld_rlx(&tc->bins[t].put) + ld_rlx(&tc->bins[t].miss);
    return n;
}

/* Steps 1-3. The bins are read only once the kernel vouched for the order
 * (BP_NO_TSAN). */
BP_NO_TSAN static bool tc_detach_drain(bp_tcache *tc) {
    bp_pool *pool = tc->pool;
    uint32_t tid = tc->tld->tid;
    uint32_t held = 0;
    for (uint32_t t = 0; t < pool->ntiers; t++)
        held += bp__bin_n(&tc->bins[t]);
    if (!held || pool->tcs_by_tid[tid] != tc)
        return false;
    pool->tcs_by_tid[tid] = &bp__tc_none;
    atomic_thread_fence(memory_order_seq_cst);
    if (!bp__os_thread_in_syscall(tc->tld->ktid)) {
        pool->tcs_by_tid[tid] = tc;
        return false;
    }
    for (uint32_t t = 0; t < pool->ntiers; t++) {
        bp_bin *bin = &tc->bins[t];
        bp__tsan_acquire(bin);
        bp_centry moved[BP_BIN_MAX];
        uint32_t n = bp__bin_n(bin);
        memcpy(moved, bin->e, n * sizeof(bp_centry));
        bin->top = bin->e;
        bp__depot_give(pool, t, moved, n);
    }
    return true;
}

bool bp__tc_drain_idle(bp_tcache *tc, uint64_t now) {
    bp__pool_assert_locked(tc->pool);
    uint64_t ops = tc_ops(tc);
    if (ops != tc->idle_ops || !tc->idle_ms) {
        tc->idle_ops = ops;
        tc->idle_ms = now;
        return false;
    }
    if (now - tc->idle_ms < tc->pool->decay_ms || !tc->tld->tid)
        return false; /* thread 0 has no slot to detach */
    return tc_detach_drain(tc);
}

void bp__tc_retire(bp_tcache *tc) {
    bp__pool_assert_locked(tc->pool);
    bp_pool *pool = tc->pool;
    bp__tc_give_back(tc);
    for (uint32_t t = 0; t < pool->ntiers; t++) {
        pool->retired[t].get += ld_rlx(&tc->bins[t].get);
        pool->retired[t].put += ld_rlx(&tc->bins[t].put);
        pool->retired[t].miss += ld_rlx(&tc->bins[t].miss);
    }
    bp__tc_archive(tc);
    BP_DLIST_UNLINK(pool->tcs, tc, pnext, pprev);
}

/* Retires tc from its pool and frees it; the caller unlinks it from its
 * tld. The slot is cleared under the pool lock, which the purge thread
 * holds while it detaches and restores it. */
static void tc_leave(bp_tld *tld, bp_tcache *tc) {
    bp_pool *pool = tc->pool;
    bp__pool_lock(pool);
    slot_clear(tld, tc);
    bp__tc_retire(tc);
    bp__pool_maybe_free(pool); /* unlocks */
    free(tc);
}

/* Takes the cache at *link out of the calling thread's list and its slot,
 * then out of its pool. */
static void tc_unlink_leave(bp_tld *tld, bp_tcache **link) {
    bp_tcache *tc = *link;
    *link = tc->tnext;
    tc_leave(tld, tc);
}

void bp__tld_sweep(void) {
    bp_tld *tld = bp__tld;
    if (!tld->live)
        return;
    tld->epoch = ld_acq(&bp__dead_epoch);
    bp_tcache **link = &tld->tcs;
    while (*link) {
        if (ld_acq(&(*link)->pool->flags) & BPF_DEAD)
            tc_unlink_leave(tld, link);
        else
            link = &(*link)->tnext;
    }
}

void bp__tc_drop_current(bp_pool *pool) {
    bp_tld *tld = bp__tld;
    if (!tld->live)
        return;
    for (bp_tcache **link = &tld->tcs; *link; link = &(*link)->tnext)
        if ((*link)->pool == pool) { /* the pool outlives this: its handle is still held */
            tc_unlink_leave(tld, link);
            return;
        }
}

static void tld_exit(void *arg) {
    bp_tld *tld = arg;
    bp__tld = &bp__tld_empty; /* calls from later destructors start afresh */
    bp__tid = 0;
    while (tld->tcs) {
        bp_tcache *tc = tld->tcs;
        tld->tcs = tc->tnext;
        tc_leave(tld, tc);
    }
    bp__tid_give(tld->tid);
    free(tld);
}

/* In a fork() child, with the registry and every pool still locked by the
 * atfork handlers (fork.c): the caches of the threads that did not follow
 * the fork leave their pools, and each pool and the registry are unlocked. */
void bp__tc_fork_child(void) {
    bp_tld *self = bp__tld;
    if (self->live)
        self->ktid = bp__os_thread_id(); /* the child's thread is another to the kernel */
    bp_tcache *gone = NULL;              /* caches of threads that did not follow the fork */
    for (bp_pool *p = bp__registry_first(); p; p = p->gnext) {
        bp_tcache *next;
        for (bp_tcache *tc = p->tcs; tc; tc = next) {
            next = tc->pnext;
            if (tc->tld != self) {
                slot_clear(tc->tld, tc);
                bp__tc_retire(tc);
                tc->pnext = gone;
                gone = tc;
            }
        }
        bp__pool_unlock(p);
    }
    bp__registry_unlock();
    /* Nothing can reach them now: free each cache, and each dead thread's
     * data once (marked on the first of its caches). */
    bp_tld *tlds = NULL;
    for (bp_tcache *tc = gone; tc; tc = tc->pnext)
        if (tc->tld->live) {
            tc->tld->live = false;
            tc->tld->tcs = (bp_tcache *)tlds; /* reuse the field as a link */
            tlds = tc->tld;
        }
    while (gone) {
        bp_tcache *tc = gone;
        gone = tc->pnext;
        free(tc);
    }
    while (tlds) {
        bp_tld *t = tlds;
        tlds = (bp_tld *)t->tcs;
        bp__tid_give(t->tid);
        free(t);
    }
}
