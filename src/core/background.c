/* SPDX-License-Identifier: MIT */
/*
 * background.c - the purge thread: idle memory goes back to the OS without
 * another call on the pool.
 *
 * Decay used to run only inside later slow-path calls, so an idle pool kept
 * its memory for as long as it stayed idle. One thread per process (started
 * by the first pool that wants it, again in a fork() child, stopped at
 * exit) wakes every quarter of the smallest decay_ms among the
 * pools and runs each pool's decay under its lock: idle segments and
 * hot-slot buffers go back within about 1.5x decay_ms.
 *
 * It drains the caches of threads that made no call on a pool for decay_ms
 * (bp__tc_drain_idle in tcache.c says how that is safe against the thread
 * waking up), so a pool whose threads stay alive but idle also gives its
 * memory back.
 *
 * It also reclaims destroyed pools: the free buffers other threads' caches
 * keep for a destroyed pool are given back to its depot once the pool has
 * been dead for BG_GRACE_MS, so its segments are unmapped even when those
 * threads never take a slow path again. Destroy pointed the pool's tcv at
 * the sentinel caches, so no fast path pushes onto those bins after it; the
 * grace period covers a fast path that read tcv just before, and is still
 * running.
 */
#include "internal.h"

#include <signal.h>
#include <stdlib.h>
#include <time.h>

#define BG_MAX_PERIOD_MS 1000u
#define BG_GRACE_MS 1000u

static pthread_mutex_t bg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bg_cv, bg_done_cv;
static bool bg_running, bg_stop, bg_cv_ready, bg_atexit;
static bool bg_busy; /* in a pass: maybe waiting for a pool lock (bg_mu) */
static unsigned bg_period_ms = BG_MAX_PERIOD_MS;

/* A quarter of decay_ms: an idle hot-slot buffer needs two passes to be
 * drained (see drain_idle_hot), and then decay_ms, so memory idle since t
 * is unmapped by about t + 1.5 x decay_ms. */
static unsigned period_for(unsigned decay_ms) {
    unsigned p = decay_ms / 4 ? decay_ms / 4 : 1;
    return p < BG_MAX_PERIOD_MS ? p : BG_MAX_PERIOD_MS;
}

/* Gives the free buffers of every cache of a destroyed pool back to it. */
static void reclaim_dead(bp_pool *pool, uint64_t now) {
    if (now - pool->dead_ms < BG_GRACE_MS)
        return;
    for (bp_tcache *tc = pool->tcs; tc; tc = tc->pnext)
        bp__tc_give_back(tc);
}

/* One pass over every pool; returns the period until the next. */
static unsigned bg_pass(void) {
    unsigned period = BG_MAX_PERIOD_MS;
    bp__registry_lock();
    for (bp_pool *p = bp__registry_first(); p; p = p->gnext) {
        if (!p->background)
            continue;
        bp__pool_lock(p);
        if (p->user_ref) {
            uint64_t now = bp__os_now_ms();
            for (bp_tcache *tc = p->tcs; tc; tc = tc->pnext)
                bp__tc_drain_idle(tc, now);
            bp__depot_decay_now(p);
            unsigned mine = period_for(p->decay_ms);
            period = mine < period ? mine : period;
        } else {
            reclaim_dead(p, bp__os_now_ms());
        }
        bp__pool_unlock(p);
    }
    bp__registry_unlock();
    return period;
}

static void *bg_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&bg_mu);
    while (!bg_stop) {
        struct timespec ts;
        bp__os_deadline(&ts, bg_period_ms);
        pthread_cond_timedwait(&bg_cv, &bg_mu, &ts);
        if (bg_stop)
            break;
        bg_busy = true;
        pthread_mutex_unlock(&bg_mu);
        unsigned next = bg_pass();
        pthread_mutex_lock(&bg_mu);
        bg_busy = false;
        bg_period_ms = next;
    }
    bg_running = false; /* after this, no pool is touched */
    pthread_cond_broadcast(&bg_done_cv);
    pthread_mutex_unlock(&bg_mu);
    return NULL;
}

static void bg_cv_init(void) {
    bp__os_cond_init(&bg_cv);
    bp__os_cond_init(&bg_done_cv);
    bg_cv_ready = true;
}

/* Exit never waits on a pool lock: a pass may be blocked on one that a
 * thread holds inside a user recorder's push (or forever, or the exit came
 * from a signal handler that interrupted a lock holder). Exit waits for the
 * thread to leave its loop only when it is idle, waiting for its next
 * period; busy, it is left to the process's end, told to stop after its
 * pass. And bg_mu itself is only tried: the exit may have interrupted its
 * holder.
 *
 * The thread is detached from its start, and exit waits on bg_done_cv
 * rather than joining: a thread left busy would otherwise end unjoined
 * (ThreadSanitizer reports that at exit), and joining or detaching it
 * later looks up its id, which in a fork() child can be the id of the
 * parent's purge thread (ThreadSanitizer then refuses it as a duplicate). */
static void bg_at_exit(void) {
    if (pthread_mutex_trylock(&bg_mu) != 0)
        return;
    bool wait = bg_running && !bg_busy;
    bg_stop = true;
    if (bg_cv_ready)
        pthread_cond_signal(&bg_cv);
    while (wait && bg_running)
        pthread_cond_wait(&bg_done_cv, &bg_mu);
    pthread_mutex_unlock(&bg_mu);
}

/* bg_mu held. The thread takes no signal meant for the program. */
static void bg_launch(void) {
    if (bg_running || bg_stop)
        return;
    if (!bg_cv_ready)
        bg_cv_init();
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thr;
    pthread_sigmask(SIG_SETMASK, &all, &old);
    bg_running = pthread_create(&thr, &attr, bg_main, NULL) == 0; /* else: calls still decay */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (bg_running && !bg_atexit)
        bg_atexit = atexit(bg_at_exit) == 0;
}

void bp__bg_start(unsigned decay_ms) {
    unsigned p = period_for(decay_ms);
    pthread_mutex_lock(&bg_mu);
    if (p < bg_period_ms) {
        bg_period_ms = p;
        if (bg_cv_ready)
            pthread_cond_signal(&bg_cv); /* wake sooner than planned */
    }
    bg_launch();
    pthread_mutex_unlock(&bg_mu);
}

void bp__bg_fork_prepare(void) { pthread_mutex_lock(&bg_mu); }
void bp__bg_fork_parent(void) { pthread_mutex_unlock(&bg_mu); }

/* The child has no purge thread: start its own if a pool wants one. */
void bp__bg_fork_child(void) {
    bool was = bg_running;
    bg_running = false;
    if (bg_cv_ready)
        bg_cv_init(); /* the parent's thread may have been waiting on it */
    pthread_mutex_unlock(&bg_mu);
    bool want = false;
    bp__registry_lock();
    for (bp_pool *p = bp__registry_first(); p && !want; p = p->gnext)
        want = p->background && p->user_ref;
    bp__registry_unlock();
    if (want || was) {
        pthread_mutex_lock(&bg_mu);
        if (want)
            bg_launch();
        pthread_mutex_unlock(&bg_mu);
    }
}
