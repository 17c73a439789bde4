/* SPDX-License-Identifier: MIT */
/*
 * shm_model.h - libbytepool_shm's counting contract as a model, driven step
 * by step against the real library: one owner (BP_SHM_NO_THREAD, checked
 * mode: a grant released twice aborts) and up to MODEL_PEERS peers attached
 * from this same process. A peer dies between any two steps, or at one of
 * its crash points inside a step (the library's crash hook longjmps out, as
 * SIGKILL would stop it there); the owner then hears of the death and
 * sweeps. After every step the model checks:
 *   - each owner buffer's count = the owner's own references + the grants
 *     out on it (delivered or not, imported, returned but not yet taken);
 *   - each live peer's count of a buffer = the references the model holds;
 *   - granted = returned + swept + held, the model's grants out = held,
 *     and no return was refused;
 *   - what a peer reads through a received pointer is what the owner wrote.
 * fuzz/fuzz_shm.c feeds it libFuzzer's bytes; MODEL_CHECK is its assert.
 */
#ifndef SHM_MODEL_H
#define SHM_MODEL_H

#include "bytepool_shm.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The library's test hooks (src/shm/shm.h; BP_SHM_CRASHPOINTS builds). */
extern void (*shm_crash_hook)(const char *name);
void shm_test_peer_died(bp_shm *s, bp_shm_peer peer);
void shm_test_abandon(bp_shm *s);

#define MODEL_PEERS 3
#define MODEL_BUFS 8
#define MODEL_CAP 8  /* peer_cap: small, so ENOBUFS is reached */
#define MODEL_Q 64   /* deliveries and handles one peer may have waiting */
#define MODEL_REFS 4 /* references the model holds per peer and buffer at most */

typedef struct model_bytes {
    const unsigned char *p;
    size_t n, i;
} model_bytes;

static unsigned model_next(model_bytes *in) { return in->i < in->n ? in->p[in->i++] : 0; }

typedef struct model_buf { /* an owner buffer */
    uint8_t *p;            /* NULL: none here */
    uint64_t tag;          /* written at its start */
    uint32_t own;          /* the owner's own references */
} model_buf;

typedef struct model_peer {
    bp_shm *s;
    bp_shm_peer id;
    int live;
    uint32_t out[MODEL_BUFS];     /* grants out (owner's view), per buffer */
    uint32_t pending[MODEL_BUFS]; /* of those, returns published and not yet taken */
    uint32_t refs[MODEL_BUFS];    /* references the model holds in this peer */
    uint8_t *view[MODEL_BUFS];    /* the buffer's start in this peer */
    int dq[MODEL_Q], nd;          /* deliveries waiting: buffer indices, oldest first */
    int hq[MODEL_Q], nh;          /* exported handles not imported: buffer indices */
    bp_shm_handle hv[MODEL_Q];
    uint64_t hoff[MODEL_Q];
} model_peer;

typedef struct model {
    bp_shm *owner;
    bp_pool *pool;
    char path[64];
    model_buf b[MODEL_BUFS];
    model_peer k[MODEL_PEERS];
    uint64_t granted, swept_expected, tags;
} model;

static jmp_buf model_jmp;
static const char *model_point; /* the crash point armed, or NULL */

static void model_hook(const char *name) {
    if (model_point && !strcmp(name, model_point)) {
        model_point = NULL;
        longjmp(model_jmp, 1);
    }
}

static uint32_t model_out(const model_peer *k) {
    uint32_t n = 0;
    for (int b = 0; b < MODEL_BUFS; b++)
        n += k->out[b];
    return n;
}

/* Returns published by peer k are taken by the owner (a send to k, a poll). */
static void model_taken(model_peer *k) {
    for (int b = 0; b < MODEL_BUFS; b++) {
        k->out[b] -= k->pending[b];
        k->pending[b] = 0;
    }
}

static void model_check(model *m) {
    bp_shm_stats st;
    MODEL_CHECK(bp_shm_stats(m->owner, &st) == 0);
    uint64_t out = 0;
    for (int i = 0; i < MODEL_PEERS; i++)
        out += model_out(&m->k[i]);
    MODEL_CHECK(st.held == out);
    MODEL_CHECK(st.granted == m->granted);
    MODEL_CHECK(st.granted == st.returned + st.swept + st.held);
    MODEL_CHECK(st.swept == m->swept_expected);
    MODEL_CHECK(st.bad_returns == 0);
    for (int b = 0; b < MODEL_BUFS; b++) {
        if (!m->b[b].p)
            continue;
        uint64_t want = m->b[b].own;
        for (int i = 0; i < MODEL_PEERS; i++)
            want += m->k[i].out[b];
        MODEL_CHECK(bp_refcount(m->b[b].p) == want);
        for (int i = 0; i < MODEL_PEERS; i++) {
            const model_peer *k = &m->k[i];
            if (!k->live || !k->refs[b])
                continue;
            MODEL_CHECK(bp_refcount(k->view[b]) == k->refs[b]);
            uint64_t tag;
            memcpy(&tag, k->view[b], 8);
            MODEL_CHECK(tag == m->b[b].tag);
        }
    }
}

/* A buffer the owner neither holds nor has out goes (the model forgets it). */
static void model_gc(model *m, int b) {
    if (!m->b[b].p || m->b[b].own)
        return;
    for (int i = 0; i < MODEL_PEERS; i++)
        if (m->k[i].out[b])
            return;
    MODEL_CHECK(bp_refcount(m->b[b].p) == 0);
    m->b[b].p = NULL;
}

typedef struct attach_job {
    const char *path;
    bp_shm *s;
    volatile int done;
} attach_job;

static void *model_attach_thread(void *arg) {
    attach_job *j = arg;
    j->s = bp_shm_attach(j->path, NULL);
    __atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void model_attach(model *m, int i) {
    model_peer *k = &m->k[i];
    attach_job j = {m->path, NULL, 0};
    pthread_t t;
    MODEL_CHECK(pthread_create(&t, NULL, model_attach_thread, &j) == 0);
    while (!__atomic_load_n(&j.done, __ATOMIC_ACQUIRE))
        bp_shm_poll(m->owner, 1); /* the owner's side of the HELLO */
    pthread_join(t, NULL);
    MODEL_CHECK(j.s != NULL);
    /* those polls took every return published so far, as a poll step does */
    for (int z = 0; z < MODEL_PEERS; z++)
        if (m->k[z].live)
            model_taken(&m->k[z]);
    for (int z = 0; z < MODEL_BUFS; z++)
        model_gc(m, z);
    bp_shm_peer_stats ps[MODEL_PEERS];
    size_t n = bp_shm_peers(m->owner, ps, MODEL_PEERS);
    bp_shm_peer id = 0;
    for (size_t x = 0; x < n; x++) { /* the one no model peer has */
        int known = 0;
        for (int y = 0; y < MODEL_PEERS; y++)
            known |= m->k[y].live && m->k[y].id == ps[x].peer;
        if (!known)
            id = ps[x].peer;
    }
    MODEL_CHECK(id != 0);
    memset(k, 0, sizeof *k);
    k->s = j.s;
    k->id = id;
    k->live = 1;
}

/* The peer's new reference to buffer b through one grant: kept if it held
 * none, else returned at once. */
static void model_gain(model_peer *k, int b, uint8_t *p, uint64_t off) {
    if (k->refs[b])
        k->pending[b]++;
    k->refs[b]++;
    k->view[b] = p - off;
}

/* Peer i dies: killed between steps, or at a crash point (the hook jumped
 * out of the library). Everything it had not returned is swept. */
static void model_die(model *m, int i) {
    model_peer *k = &m->k[i];
    shm_test_abandon(k->s);
    for (int b = 0; b < MODEL_BUFS; b++) {
        /* the process's memory goes with it: here, its references are dropped
         * (its end returns nothing any more) so its mirror can be unmapped */
        while (k->view[b] && bp_refcount(k->view[b]))
            bp_release(k->view[b]);
        m->swept_expected += k->out[b] - k->pending[b];
    }
    shm_test_peer_died(m->owner, k->id);
    bp_shm_close(k->s, 0);
    model_taken(k); /* pending: taken as returned before the sweep */
    memset(k->out, 0, sizeof k->out);
    k->live = 0;
    for (int b = 0; b < MODEL_BUFS; b++)
        model_gc(m, b);
}

/* The peer's points the model can stop at in this process. (Mid-import,
 * after the claim, leaves a count the model cannot find to drop; mid-attach
 * runs on another thread: both are killed for real in test_shm.) */
static const char *const model_points[] = {"peer_recv_after_take", "peer_release_before_return",
                                           "peer_return_before_publish"};

/* One step, chosen by the next bytes. */
static void model_step(model *m, model_bytes *in) {
    unsigned op = model_next(in) % 12, x = model_next(in), y = model_next(in);
    int b = (int)(x % MODEL_BUFS), i = (int)(y % MODEL_PEERS);
    model_buf *mb = &m->b[b];
    model_peer *k = &m->k[i];
    switch (op) {
    case 0: /* the owner gets a buffer */
        if (!mb->p) {
            static const size_t lens[] = {64, 700, 4096, 20000};
            mb->p = bp_get(m->pool, lens[x / MODEL_BUFS % 4]);
            MODEL_CHECK(mb->p != NULL);
            mb->tag = ++m->tags;
            memcpy(mb->p, &mb->tag, 8);
            mb->own = 1;
        } else if (mb->own && mb->own < 4) {
            MODEL_CHECK(bp_retain(mb->p) == mb->p);
            mb->own++;
        }
        break;
    case 1: /* the owner drops one of its own references */
        if (mb->p && mb->own) {
            MODEL_CHECK(bp_release(mb->p) == 0);
            mb->own--;
            model_gc(m, b);
        }
        break;
    case 2:   /* send */
    case 3: { /* export (with an offset) */
        if (!mb->p || !mb->own || !k->live)
            break;
        uint64_t off = op == 3 ? (x / MODEL_BUFS) % 8 * 8 : 0;
        int full = (op == 2 ? k->nd : k->nh) == MODEL_Q;
        if (full)
            break;
        bp_shm_handle h = 0;
        int err = op == 2 ? bp_shm_send(m->owner, k->id, mb->p, 64)
                          : ((h = bp_shm_export(m->owner, k->id, mb->p + off)) ? 0 : errno);
        model_taken(k); /* a sender takes its peer's returns first */
        for (int z = 0; z < MODEL_BUFS; z++)
            model_gc(m, z);
        if (model_out(k) == MODEL_CAP) {
            MODEL_CHECK(err == ENOBUFS);
            break;
        }
        MODEL_CHECK(err == 0);
        k->out[b]++;
        m->granted++;
        if (op == 2) {
            k->dq[k->nd++] = b;
        } else {
            k->hq[k->nh] = b;
            k->hv[k->nh] = h;
            k->hoff[k->nh++] = off;
        }
        break;
    }
    case 4: { /* a peer receives */
        if (!k->live)
            break;
        size_t len;
        uint8_t *p = bp_shm_recv(k->s, &len, 0);
        if (!k->nd) {
            MODEL_CHECK(!p && errno == EAGAIN);
            break;
        }
        int db = k->dq[0];
        MODEL_CHECK(p && len == 64);
        MODEL_CHECK(!k->view[db] || p == k->view[db]); /* one mapping per peer */
        memmove(k->dq, k->dq + 1, (size_t)--k->nd * sizeof(int));
        if (k->refs[db] >= MODEL_REFS) { /* keep the model's numbers small */
            model_gain(k, db, p, 0);
            MODEL_CHECK(bp_release(p) == 0);
            k->refs[db]--;
        } else {
            model_gain(k, db, p, 0);
        }
        break;
    }
    case 5: { /* a peer imports a handle (the newest or oldest) */
        if (!k->live || !k->nh)
            break;
        int j = x & 1 ? k->nh - 1 : 0, hb = k->hq[j];
        uint8_t *p = bp_shm_import(k->s, k->hv[j]);
        MODEL_CHECK(p != NULL);
        uint64_t off = k->hoff[j];
        memmove(k->hq + j, k->hq + j + 1, (size_t)(k->nh - j - 1) * sizeof(int));
        memmove(k->hv + j, k->hv + j + 1, (size_t)(k->nh - j - 1) * sizeof(bp_shm_handle));
        memmove(k->hoff + j, k->hoff + j + 1, (size_t)(k->nh - j - 1) * sizeof(uint64_t));
        k->nh--;
        MODEL_CHECK(bp_shm_import(k->s, 0) == NULL);
        model_gain(k, hb, p, off);
        if (k->refs[hb] > MODEL_REFS) {
            MODEL_CHECK(bp_release(p) == 0);
            k->refs[hb]--;
        }
        break;
    }
    case 6: /* a peer adds a reference */
        if (k->live && k->refs[b] && k->refs[b] < MODEL_REFS) {
            MODEL_CHECK(bp_retain(k->view[b] + 8) != NULL); /* an interior pointer */
            k->refs[b]++;
        }
        break;
    case 7: /* a peer drops one; the last returns the kept grant */
        if (k->live && k->refs[b]) {
            MODEL_CHECK(bp_release(k->view[b]) == 0);
            if (--k->refs[b] == 0)
                k->pending[b]++;
        }
        break;
    case 8: /* the owner polls: takes every return */
        bp_shm_poll(m->owner, 0);
        for (int z = 0; z < MODEL_PEERS; z++)
            if (m->k[z].live)
                model_taken(&m->k[z]);
        for (int z = 0; z < MODEL_BUFS; z++)
            model_gc(m, z);
        break;
    case 9: /* a peer attaches (in a free model slot) */
        if (!k->live)
            model_attach(m, i);
        break;
    case 10: /* a peer is killed between steps */
        if (k->live)
            model_die(m, i);
        break;
    case 11: { /* a peer is killed inside the next step of its own, at a point */
        if (!k->live)
            break;
        unsigned pt = x % 3;
        volatile bool by_recv = pt == 0 || (pt == 2 && k->nd); /* else a last release */
        model_point = model_points[pt];
        shm_crash_hook = model_hook;
        if (setjmp(model_jmp) == 0) {
            if (by_recv) {
                size_t len;
                uint8_t *p = bp_shm_recv(k->s, &len, 0);
                if (p) { /* it got through: the point was not on its way */
                    int db = k->dq[0];
                    memmove(k->dq, k->dq + 1, (size_t)--k->nd * sizeof(int));
                    model_gain(k, db, p, 0);
                }
            } else if (k->refs[b]) {
                MODEL_CHECK(bp_release(k->view[b]) == 0);
                if (--k->refs[b] == 0)
                    k->pending[b]++;
            }
        } else if (by_recv) { /* died with the delivery taken, its grant not back */
            memmove(k->dq, k->dq + 1, (size_t)--k->nd * sizeof(int));
        } else { /* died after the count went down, before its return was published */
            k->refs[b]--;
        }
        shm_crash_hook = NULL;
        model_point = NULL;
        model_die(m, i);
        break;
    }
    }
    model_check(m);
}

/* A fresh owner, the steps, then everything given back and checked. */
static void model_run(model_bytes *in) {
    static model m;
    memset(&m, 0, sizeof m);
    static unsigned runs;
    snprintf(m.path, sizeof m.path, "@bp-shm-model-%d-%u", (int)getpid(), ++runs);
    bp_config pc = {.flags = BP_CHECKED | BP_NO_BACKGROUND};
    bp_shm_config c = {.peer_cap = MODEL_CAP, .max_peers = MODEL_PEERS, .flags = BP_SHM_NO_THREAD};
    m.owner = bp_shm_create(m.path, &pc, &c);
    MODEL_CHECK(m.owner != NULL);
    m.pool = bp_shm_pool(m.owner);
    for (int n = 0; n < 200 && in->i < in->n; n++)
        model_step(&m, in);
    for (int i = 0; i < MODEL_PEERS; i++) /* the end: every peer dies or leaves */
        if (m.k[i].live)
            model_die(&m, i);
    for (int b = 0; b < MODEL_BUFS; b++)
        while (m.b[b].p && m.b[b].own) {
            MODEL_CHECK(bp_release(m.b[b].p) == 0);
            m.b[b].own--;
            model_gc(&m, b);
        }
    model_check(&m);
    bp_stats st;
    MODEL_CHECK(bp_pool_stats(m.pool, &st) == 0);
    MODEL_CHECK(st.outstanding == 0);
    MODEL_CHECK(bp_shm_close(m.owner, 0) == 0);
}

#endif
