/* SPDX-License-Identifier: MIT */
/*
 * uring_model.h - the provided-buffer ring's state machine against a model,
 * shared by tests/test_uring.c (random steps) and fuzz/fuzz_uring.c (the
 * fuzzer's bytes as steps).
 *
 * Each step is a completion (as the kernel would make one: only for a
 * buffer it owns, in incremental mode packed at the fill offset, with or
 * without BUF_MORE), a slice retained, a release, or a replenish. After
 * every step the library must agree with the model: each completion's
 * bytes at the right place (and writable to their end: ASan checks), the
 * buffers in the kernel, every reference count, and
 * replenish giving back exactly the buffers the kernel is done with and
 * nobody references. The completions are built by hand, so no request is
 * submitted. The includer defines MODEL_CHECK(cond) (it must not return).
 */
#ifndef URING_MODEL_H
#define URING_MODEL_H

#include <bytepool_uring.h>
#include <stdbool.h>
#include <string.h>
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif

#define MODEL_BUFS 8
#define MODEL_HELD 64
#define MODEL_BUF_SIZE 256

/* The steps' bytes: next() gives the next one, 0 after the end. */
typedef struct model_bytes {
    const unsigned char *p;
    size_t n, at;
} model_bytes;

static inline unsigned model_next(model_bytes *in) { return in->at < in->n ? in->p[in->at++] : 0; }

/* A completion of res bytes into buffer bid, as the kernel makes one. */
static inline struct io_uring_cqe model_cqe(unsigned bid, int res, unsigned flags) {
    struct io_uring_cqe cqe;
    memset(&cqe, 0, sizeof cqe);
    cqe.res = res;
    cqe.flags = IORING_CQE_F_BUFFER | (bid << IORING_CQE_BUFFER_SHIFT) | flags;
    return cqe;
}

/* Runs the steps in `in` on a new ring of group bgid; returns false when
 * the kernel has no incremental mode (flags BP_URING_INC), true otherwise. */
static bool model_run(bp_pool *pool, struct io_uring *ring, unsigned short bgid, unsigned flags,
                      model_bytes *in) {
    bp_uring_bufs *b = bp_uring_bufs_new(pool, ring, bgid, MODEL_BUF_SIZE, MODEL_BUFS, flags);
    if (!b && errno == EOPNOTSUPP)
        return false;
    MODEL_CHECK(b != NULL);
    enum { K, S, P } st[MODEL_BUFS] = {K};
    size_t off[MODEL_BUFS] = {0}, refs[MODEL_BUFS] = {0};
    unsigned char *base[MODEL_BUFS] = {0};
    unsigned char *held[MODEL_HELD];
    int held_bid[MODEL_HELD], nheld = 0;
    unsigned char mark = 0;
    while (in->at < in->n) {
        unsigned op = model_next(in) % 4, pick = model_next(in);
        if (op == 0 && nheld < MODEL_HELD) { /* a completion */
            int bid = -1;
            for (int k = 0; k < MODEL_BUFS && bid < 0; k++)
                if (st[(pick + k) % MODEL_BUFS] != P)
                    bid = (int)((pick + k) % MODEL_BUFS);
            if (bid < 0)
                continue;
            unsigned arg = model_next(in);
            size_t room = MODEL_BUF_SIZE - off[bid];
            size_t res = 1 + (arg >> 1) % room;
            bool more = (flags & BP_URING_INC) && res < room && (arg & 1);
            struct io_uring_cqe cqe =
                model_cqe((unsigned)bid, (int)res, more ? IORING_CQE_F_BUF_MORE : 0);
            size_t len = 0;
            unsigned char *p = bp_uring_bufs_take(b, &cqe, &len);
            MODEL_CHECK(p != NULL);
            MODEL_CHECK(len == res);
            if (!base[bid])
                base[bid] = bp_base(p);
            MODEL_CHECK(p == base[bid] + off[bid]); /* packed after what came before */
            p[0] = p[len - 1] = ++mark;             /* all of it is the program's */
            off[bid] = more ? off[bid] + res : 0;
            st[bid] = more ? S : P;
            refs[bid]++;
            held[nheld] = p;
            held_bid[nheld++] = bid;
        } else if (op == 1 && nheld && nheld < MODEL_HELD) { /* a slice of a held one */
            int i = (int)(pick % (unsigned)nheld);
            unsigned char *q = bp_retain(held[i] + model_next(in) % bp_cap(held[i]));
            MODEL_CHECK(q != NULL);
            refs[held_bid[i]]++;
            held[nheld] = q;
            held_bid[nheld++] = held_bid[i];
        } else if (op == 2 && nheld) { /* a release */
            int i = (int)(pick % (unsigned)nheld);
            MODEL_CHECK(bp_release(held[i]) == 0);
            refs[held_bid[i]]--;
            held[i] = held[--nheld];
            held_bid[i] = held_bid[nheld];
        } else if (op == 3) {
            unsigned want = 0;
            for (int k = 0; k < MODEL_BUFS; k++)
                if (st[k] == P && !refs[k]) {
                    st[k] = K;
                    off[k] = 0;
                    want++;
                }
            MODEL_CHECK(bp_uring_bufs_replenish(b) == want);
        }
        bp_uring_stats s;
        MODEL_CHECK(bp_uring_bufs_stats(b, &s) == 0);
        size_t in_kernel = 0;
        for (int k = 0; k < MODEL_BUFS; k++)
            in_kernel += st[k] == K;
        MODEL_CHECK(s.in_kernel == in_kernel);
        MODEL_CHECK(s.in_program == MODEL_BUFS - in_kernel);
        for (int k = 0; k < MODEL_BUFS; k++) /* ours, plus the ring's */
            if (base[k])
                MODEL_CHECK(bp_refcount(base[k]) == refs[k] + 1);
    }
    /* Half the time destroy with references out: they stay valid. */
    size_t out = 0;
    if (mark & 1)
        for (int k = 0; k < MODEL_BUFS; k++)
            out += refs[k] != 0;
    else
        while (nheld)
            MODEL_CHECK(bp_release(held[--nheld]) == 0);
    bp_uring_bufs_replenish(b);
    MODEL_CHECK(bp_uring_bufs_destroy(b) == out);
    while (nheld) { /* after destroy: still readable, and freed by the last release */
        unsigned char *q = held[--nheld];
        MODEL_CHECK(bp_refcount(q) >= 1);
        MODEL_CHECK(bp_release(q) == 0);
    }
    return true;
}

#endif
