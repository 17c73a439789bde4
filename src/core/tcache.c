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

static bp_tld empty_tld;
BP_TLS bp_tld *bp__tld = &empty_tld;
BP_TLS uint32_t bp__tid;
_Atomic uint64_t bp__dead_epoch;
bp_tc_none_u bp__tc_none_u;
bp_tcache *bp__tcv_none[BP_TIDS];

/* Thread numbers in use (1..BP_TIDS-1); 0 is never handed out. */
static pthread_mutex_t tid_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t tid_used[BP_TIDS / 64] = {1};

static uint32_t tid_take(void) {
    uint32_t got = 0;
    pthread_mutex_lock(&tid_mu);
    for (uint32_t w = 0; w < BP_TIDS / 64 && !got; w++)
        if (~tid_used[w]) {
            uint32_t b = (uint32_t)__builtin_ctzll(~tid_used[w]);
            tid_used[w] |= UINT64_C(1) << b;
            got = w * 64 + b;
        }
    pthread_mutex_unlock(&tid_mu);
    return got;
}

static void tid_give(uint32_t tid) {
    if (!tid)
        return;
    pthread_mutex_lock(&tid_mu);
    tid_used[tid / 64] &= ~(UINT64_C(1) << (tid % 64));
    pthread_mutex_unlock(&tid_mu);
}

static pthread_once_t none_once = PTHREAD_ONCE_INIT;
static void none_init(void) {
    for (size_t i = 0; i < BP_TIDS; i++)
        bp__tcv_none[i] = &bp__tc_none;
}

bp_tcache **bp__tc_array_new(void) {
    pthread_once(&none_once, none_init);
    bp_tcache **a = malloc(BP_TIDS * sizeof(*a));
    if (a)
        memcpy(a, bp__tcv_none, BP_TIDS * sizeof(*a));
    return a;
}

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
    tld->tid = tid_take();
    tld->ktid = bp__os_thread_id();
    pthread_setspecific(tld_key, tld);
    bp__tld = tld;
    bp__tid = tld->tid;
    return tld;
}

/* The next entry at which bp__tc_batch must run: lim, or the ring's end. */
static void hist_arm(bp_tcache *tc) {
    uint64_t base = ld_rlx(&tc->hbase), room = tc->hmask + 1;
    tc->hlim = tc->hist + (tc->lim - base < room ? tc->lim - base : room);
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
    hist_arm(tc);
    return tc;
}

static void slot_clear(bp_tld *tld, const bp_tcache *tc) {
    if (tld->tid && tc->pool->tcs_by_tid[tld->tid] == tc)
        tc->pool->tcs_by_tid[tld->tid] = &bp__tc_none;
}

/* Lengths recorded so far. The owner moves hcur back to the ring's start
 * and hbase on by the ring's size together, inside an odd hgen (a seqlock):
 * a reader retries until it read both between two such moves. */
uint64_t bp__tc_seq(bp_tcache *tc) {
    for (;;) {
        uint64_t g = ld_acq(&tc->hgen);
        _Atomic size_t *c = ld_acq(&tc->hcur); /* acquire: the last load stays last */
        uint64_t base = ld_acq(&tc->hbase);
        if (!(g & 1) && ld_rlx(&tc->hgen) == g)
            return base + (uint64_t)(c - tc->hist);
    }
}

/* The owner's: the ring wraps when hcur reached its end. The odd hgen is
 * an acquire RMW, so the stores after it stay after it; a reader that sees
 * one of them (release) sees hgen changed. */
static void hist_wrap(bp_tcache *tc) {
    atomic_fetch_add_explicit(&tc->hgen, 1, memory_order_acq_rel);
    st_rel(&tc->hbase, ld_rlx(&tc->hbase) + tc->hmask + 1);
    st_rel(&tc->hcur, tc->hist);
    st_rel(&tc->hgen, ld_rlx(&tc->hgen) + 1);
}

/* A pool at its budget bypasses thread caches for a while, so a buffer one
 * thread frees is at once another's (bp_get_wait depends on it): this
 * thread's free buffers go back to the depot. Past the while, with nobody
 * waiting, the caches serve again. Returns whether the pressure lasts. */
static bool under_pressure(bp_pool *pool) {
    if (bp__os_now_ms() >= ld_rlx(&pool->pressure_until_ms)) {
        bp__pool_lock(pool);
        bool end = !pool->waiters && bp__os_now_ms() >= ld_rlx(&pool->pressure_until_ms);
        if (end && (atomic_fetch_and(&pool->flags, ~BPF_PRESSURE) & BPF_DEAD) == 0)
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

/* Gets between two calls of bp__tc_batch: a batch, 1 when every get is
 * sampled for leak reports, never when nothing needs it. */
uint64_t bp__batch_interval(const bp_pool *pool) {
    if (pool->leaks == BP_LEAKS_ALL)
        return 1;
    return pool->record || pool->leaks == BP_LEAKS_SAMPLE ? BP_TICK : UINT64_MAX;
}

/* Pushes the lengths [tc->pub, seq) to the user recorder (pool lock held).
 * A reader on another thread may do it for the owner: what the owner has
 * overwritten meanwhile (more than the history holds) is skipped. */
static void push_user(bp_tcache *tc, uint64_t seq) {
    bp__pool_assert_locked(tc->pool);
    uint64_t from = tc->pub, h = tc->hmask + 1;
    if (seq - from > h)
        from = seq - h;
    for (uint64_t i = from; i < seq; i++)
        tc->pool->recorder.push(tc->pool->recorder.ctx, ld_rlx(&tc->hist[i & tc->hmask]));
    tc->pub = seq;
}

void bp__tc_publish(bp_tcache *tc) { push_user(tc, bp__tc_seq(tc)); }

/* Runs every BP_TICK gets. A finished batch of BP_BATCH lengths gets its
 * place in the pool's order with one shared counter: no lock, no copy (a
 * batch of 128, not 32, because that counter's cache line moves between
 * cores: two threads' 4 KiB get+put went from 94 to 111 Mops/s, medians of
 * 6 alternating runs of `bench --worker bytepool`, cell e/2t). A user
 * recorder gets the lengths pushed, with the pool lock, as promised. */
void bp__tc_batch(bp_tcache *tc, void *just_got, void *site) {
    bp_pool *pool = tc->pool;
    uint64_t seq = ld_rlx(&tc->hbase) + (uint64_t)(ld_rlx(&tc->hcur) - tc->hist);
    if (ld_rlx(&tc->hcur) == tc->hist + tc->hmask + 1)
        hist_wrap(tc);
    bool due = seq == tc->lim;
    if (due)
        tc->lim = seq + bp__batch_interval(pool);
    hist_arm(tc);
    if (!due)
        return; /* only the ring's end */
    if (pool->record && pool->recorder.push && seq % BP_TICK == 0) {
        bp__pool_lock(pool);
        push_user(tc, seq);
        bp__pool_unlock(pool);
    } else if (pool->record && !pool->recorder.push && seq % BP_BATCH == 0) {
        /* The batch's place in the pool's order: the monotonic clock, not a
         * shared counter (whose cache line two threads' batches would pass
         * back and forth: 2 threads scaled 1.5x, not 1.8x). Released before
         * the stamp; a reader that sees this order for a slot reused since
         * sees the thread's sequence past it too, and drops the run. */
        uint64_t batch = seq / BP_BATCH - 1, slot = batch & (tc->hmask / BP_BATCH);
        st_rel(&tc->order[slot], bp__os_now_ns());
        st_rel(&tc->stamp[slot], BP_STAMP(0, batch));
    }
    if (pool->leaks != BP_LEAKS_OFF && just_got) {
        bp__pool_lock(pool);
        bp__leak_record(pool, just_got, (size_t)ld_rlx(&tc->hist[(seq - 1) & tc->hmask]), site);
        bp__pool_unlock(pool);
    }
}

/* The cache is leaving: its recent lengths go to the pool's ring (or the
 * user recorder), oldest first. Pool lock held. */
void bp__tc_archive(bp_tcache *tc) {
    bp__pool_assert_locked(tc->pool);
    bp_pool *pool = tc->pool;
    uint64_t seq = bp__tc_seq(tc);
    if (!pool->record)
        return;
    if (pool->recorder.push) {
        push_user(tc, seq);
        return;
    }
    uint64_t from = seq > pool->window ? seq - pool->window : 0;
    size_t buf[256];
    while (from < seq) {
        size_t n = 0;
        while (from < seq && n < 256)
            buf[n++] = ld_rlx(&tc->hist[from++ & tc->hmask]);
        bp__record_locked(pool, buf, n);
    }
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
    bp__tld = &empty_tld; /* calls from later destructors start afresh */
    bp__tid = 0;
    while (tld->tcs) {
        bp_tcache *tc = tld->tcs;
        tld->tcs = tc->tnext;
        tc_leave(tld, tc);
    }
    tid_give(tld->tid);
    free(tld);
}

/* Thread numbers are taken under their own lock, held across fork(). */
void bp__tid_lock(void) { pthread_mutex_lock(&tid_mu); }
void bp__tid_unlock(void) { pthread_mutex_unlock(&tid_mu); }

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
        tid_give(t->tid);
        free(t);
    }
}
