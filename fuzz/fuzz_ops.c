/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ops - libFuzzer target: the input is a sequence of operations run
 * against the library and a tiny reference model side by side. After every
 * step the return code, reference count, capacity and the buffer's marker
 * bytes must match the model; any divergence aborts.
 *
 * Operations (one opcode byte, then arguments):
 *   get LEN (pool a or b)     retain REF+OFF     release REF     put REF
 *   put REF into wrong pool   bad pointer (NULL, foreign, freed)
 *   query REF (refcount, cap, base, the end pointer)
 *   trim                      stats (books must balance, the budget holds)
 *   retain_n REF N            release_n REF N (N past the count: refused)
 *   get_bulk LEN N (all or nothing)   put_bulk K refs of one pool (+ a bad one)
 *
 * The model knows the rules of the contract: all of bp_cap is usable (a
 * marker sits in the last byte of the capacity), bp_base finds the start
 * from any interior pointer, the end pointer belongs to no buffer or to a
 * live neighbour, and pool c has a budget: its gets may fail with ENOMEM,
 * and it never has more than that mapped.
 */
#include <bytepool.h>

#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXA 64  /* allocations alive at once */
#define MAXR 256 /* references held at once */
#define MAXF 64  /* freed addresses remembered */

typedef struct alloc {
    unsigned char *base;
    size_t len, cap;
    unsigned rc;
    int pool;
    unsigned char mark;
} alloc;

typedef struct ref {
    int a;      /* index into allocs */
    size_t off; /* the reference is base + off */
} ref;

#define NPOOLS 3
#define BUDGET (6u << 20) /* pool c's max_bytes */
static bp_pool *pools[NPOOLS];
static alloc A[MAXA];
static ref R[MAXR];
static int nref;
static unsigned char *freed[MAXF];
static int nfreed;
static unsigned char foreign[256];
static const size_t tiers[] = {64, 100, 128, 1000, 4096, 5000, 65536, 262144};
#define NTIERS (sizeof(tiers) / sizeof(tiers[0]))

#define CHECK(cond) FUZZ_CHECK(cond)

static size_t expected_cap(size_t len) {
    for (size_t i = 0; i < NTIERS; i++)
        if (tiers[i] >= len)
            return tiers[i];
    return len; /* oversize: exactly len */
}

typedef struct input {
    const unsigned char *p;
    size_t n;
} input;

static unsigned byte(input *in) {
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static void verify_marks(const alloc *x) {
    CHECK(x->base[0] == x->mark && x->base[x->len - 1] == x->mark);
    if (x->cap > x->len) /* the whole capacity is ours: a marker in its last byte */
        CHECK(x->base[x->cap - 1] == (unsigned char)~x->mark);
    if (x->len > 2) /* shorter ones have no byte strictly between the ends */
        CHECK(x->base[x->len / 2] == (unsigned char)(x->mark ^ 0x5a));
}

static int free_alloc_slot(void) {
    for (int i = 0; i < MAXA; i++)
        if (!A[i].base)
            return i;
    return -1;
}

/* A buffer just got from pool p for len bytes becomes allocation slot. */
static void adopt(int slot, unsigned char *b, size_t len, int p) {
    CHECK(bp_cap(b) == expected_cap(len));
    CHECK(bp_refcount(b) == 1);
    for (int i = 0; i < MAXA; i++) /* never the same buffer twice */
        CHECK(!A[i].base || b + len <= A[i].base || A[i].base + A[i].len <= b);
    unsigned char mark = (unsigned char)(slot * 7 + 1);
    size_t cap = expected_cap(len);
    b[cap - 1] = (unsigned char)~mark;
    b[len / 2] = (unsigned char)(mark ^ 0x5a);
    b[0] = b[len - 1] = mark;
    A[slot] = (alloc){b, len, expected_cap(len), 1, p, mark};
    R[nref++] = (ref){slot, 0};
    for (int i = 0; i < nfreed; i++) /* a freed address in use again is not "freed" */
        if (freed[i] >= b && freed[i] < b + A[slot].cap)
            freed[i--] = freed[--nfreed];
}

static size_t arg_len(input *in, int *pool) {
    unsigned sel = byte(in), hi = byte(in), lo = byte(in);
    size_t len = ((size_t)hi << 8 | lo) + 1;
    if (sel & 0x80)
        len *= 8; /* up to 512 KiB: past the largest tier */
    *pool = (int)(sel & 3) % NPOOLS;
    return len;
}

static void op_get(input *in) {
    int slot = free_alloc_slot();
    if (slot < 0 || nref == MAXR)
        return;
    int p;
    size_t len = arg_len(in, &p);
    unsigned char *b = bp_get(pools[p], len);
    if (!b && p == 2 && errno == ENOMEM)
        return; /* at the budget */
    CHECK(b != NULL);
    adopt(slot, b, len, p);
}

/* All or nothing: on a refusal nothing is held and out is NULLs. */
static void op_get_bulk(input *in) {
    int p;
    size_t len = arg_len(in, &p), n = byte(in) % 8 + 1, room = 0;
    for (int i = 0; i < MAXA; i++)
        room += !A[i].base;
    if (n > room || nref + (int)n > MAXR)
        return;
    void *out[8] = {0};
    int rc = bp_get_bulk(pools[p], len, out, n);
    if (rc) {
        CHECK(rc == ENOMEM && p == 2);
        for (size_t i = 0; i < n; i++)
            CHECK(out[i] == NULL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        CHECK(out[i] != NULL);
        adopt(free_alloc_slot(), out[i], len, p);
    }
}

static void forget_ref(int k) { R[k] = R[--nref]; }

static void after_drop(int a) {
    if (--A[a].rc)
        return;
    if (nfreed < MAXF)
        freed[nfreed++] = A[a].base;
    A[a].base = NULL;
}

static void op_retain(input *in) {
    if (!nref || nref == MAXR)
        return;
    ref r = R[byte(in) % nref];
    alloc *x = &A[r.a];
    size_t off = (byte(in) << 8 | byte(in)) % x->len;
    CHECK(bp_retain(x->base + off) == x->base + off);
    x->rc++;
    CHECK(bp_refcount(x->base) == x->rc);
    R[nref++] = (ref){r.a, off};
}

static void op_release(input *in, int how) {
    if (!nref)
        return;
    int k = byte(in) % nref;
    ref r = R[k];
    alloc *x = &A[r.a];
    verify_marks(x);
    unsigned char *p = x->base + r.off;
    if (how == 2) { /* the wrong pool: refused, nothing changes */
        CHECK(bp_put(pools[(x->pool + 1) % NPOOLS], p) == EINVAL);
        CHECK(bp_refcount(x->base) == x->rc);
        return;
    }
    int rc = how ? bp_put(pools[x->pool], p) : bp_release(p);
    CHECK(rc == 0);
    forget_ref(k);
    after_drop(r.a);
    if (A[r.a].base)
        CHECK(bp_refcount(x->base) == x->rc);
}

/* +N references at once, each a reference of its own in the model. */
static void op_retain_n(input *in) {
    if (!nref)
        return;
    ref r = R[byte(in) % nref];
    alloc *x = &A[r.a];
    size_t n = byte(in) % 9;
    if (nref + (int)n > MAXR)
        return;
    size_t off = (byte(in) << 8 | byte(in)) % x->len;
    CHECK(bp_retain_n(x->base + off, n) == x->base + off);
    x->rc += (unsigned)n;
    CHECK(bp_refcount(x->base) == x->rc);
    for (size_t i = 0; i < n; i++)
        R[nref++] = (ref){r.a, off};
}

/* -N references of one allocation: more than it has is refused unchanged. */
static void op_release_n(input *in) {
    if (!nref)
        return;
    ref r = R[byte(in) % nref];
    alloc *x = &A[r.a];
    size_t n = byte(in) % (x->rc + 2);
    unsigned char *p = x->base + r.off;
    verify_marks(x);
    int rc = bp_release_n(p, n);
    if (n > x->rc) {
        CHECK(rc == EINVAL);
        CHECK(bp_refcount(x->base) == x->rc);
        return;
    }
    CHECK(rc == 0);
    int a = r.a;
    for (size_t i = 0; i < n; i++) /* forget n references of the allocation */
        for (int k = 0; k < nref; k++)
            if (R[k].a == a) {
                forget_ref(k);
                break;
            }
    for (size_t i = 0; i < n; i++)
        after_drop(a);
    if (A[a].base)
        CHECK(bp_refcount(A[a].base) == A[a].rc);
}

/* K references of one pool put at once, maybe with a foreign pointer among
 * them: every good one is dropped, the result is the first error. */
static void op_put_bulk(input *in) {
    unsigned sel = byte(in);
    int p = (int)(sel % NPOOLS);
    size_t k = (sel >> 2) % 5 + 1, n = 0;
    void *ps[6];
    int idx[6];
    for (int i = nref - 1; i >= 0 && n < k; i--)
        if (A[R[i].a].pool == p) {
            ps[n] = A[R[i].a].base + R[i].off;
            idx[n++] = R[i].a;
        }
    int bad = (sel & 0x80) != 0;
    if (bad)
        ps[n++] = foreign + sel % sizeof(foreign);
    int rc = bp_put_bulk(pools[p], ps, n);
    CHECK(rc == (bad ? EINVAL : 0));
    for (size_t i = 0; i < n - (size_t)bad; i++) {
        for (int j = nref - 1; j >= 0; j--)
            if (R[j].a == idx[i] && A[R[j].a].base + R[j].off == ps[i]) {
                forget_ref(j);
                break;
            }
        after_drop(idx[i]);
    }
}

static void op_bad(input *in) {
    unsigned what = byte(in) % 3;
    if (what == 0) {
        CHECK(bp_release(NULL) == EINVAL);
        CHECK(bp_put(pools[0], NULL) == EINVAL);
    } else if (what == 1) {
        unsigned char *p = foreign + byte(in) % sizeof(foreign);
        CHECK(bp_release(p) == EINVAL);
        CHECK(bp_retain(p) == NULL && errno == EINVAL);
        CHECK(bp_refcount(p) == 0 && bp_cap(p) == 0);
    } else if (nfreed) {
        unsigned char *p = freed[byte(in) % nfreed];
        int rc = bp_release(p); /* free slot, or memory given back to the OS */
        CHECK(rc == EALREADY || rc == EINVAL);
        CHECK(bp_refcount(p) == 0 && bp_cap(p) == 0);
    }
}

static void op_query(input *in) {
    if (!nref)
        return;
    ref r = R[byte(in) % nref];
    alloc *x = &A[r.a];
    CHECK(bp_refcount(x->base + r.off) == x->rc);
    CHECK(bp_cap(x->base + r.off) == x->cap - r.off);
    CHECK(bp_base(x->base + r.off) == x->base);
    unsigned char *end = x->base + x->cap, *next = bp_base(end);
    if (next) { /* only ever a live neighbour that starts right there */
        int found = 0;
        for (int i = 0; i < MAXA; i++)
            found |= A[i].base == end;
        CHECK(next == end && found);
    }
    verify_marks(x);
}

static void op_stats(void) {
    for (int p = 0; p < NPOOLS; p++) {
        bp_stats st;
        CHECK(bp_pool_stats(pools[p], &st) == 0);
        uint64_t live = 0;
        for (int i = 0; i < MAXA; i++)
            live += A[i].base && A[i].pool == p;
        CHECK(st.outstanding == live);
        CHECK(p != 2 || st.bytes_mapped <= BUDGET);
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (!pools[0]) {
        bp_config cfg = {0};
        cfg.sizes = tiers;
        cfg.nsizes = NTIERS;
        pools[0] = bp_pool_new(&cfg);
        cfg.idle_bytes = 1; /* pool b gives memory back eagerly: more paths */
        pools[1] = bp_pool_new(&cfg);
        cfg.idle_bytes = 0;
        cfg.max_bytes = BUDGET; /* pool c has a budget */
        pools[2] = bp_pool_new(&cfg);
    }
    input in = {data, size};
    while (in.n) {
        switch (byte(&in) % 14) {
        case 0:
        case 1:
            op_get(&in);
            break;
        case 2:
            op_retain(&in);
            break;
        case 3:
            op_release(&in, 0);
            break;
        case 4:
            op_release(&in, 1);
            break;
        case 5:
            op_release(&in, 2);
            break;
        case 6:
            op_bad(&in);
            break;
        case 7:
            op_query(&in);
            break;
        case 8: { /* trim costs a syscall per free page-sized buffer: 1 in 4 */
            unsigned b = byte(&in);
            if ((b & 6) == 0)
                bp_pool_trim(pools[(b >> 3) % NPOOLS]);
            break;
        }
        case 10:
            op_retain_n(&in);
            break;
        case 11:
            op_release_n(&in);
            break;
        case 12:
            op_get_bulk(&in);
            break;
        case 13:
            op_put_bulk(&in);
            break;
        default:
            op_stats();
        }
    }
    while (nref) { /* end of input: everything goes back */
        ref r = R[nref - 1];
        CHECK(bp_release(A[r.a].base + r.off) == 0);
        nref--;
        after_drop(r.a);
    }
    op_stats();
    nfreed = 0; /* addresses may be reused by the next input */
    return 0;
}
