/* SPDX-License-Identifier: MIT */
/*
 * internal.h - the library's shared types and its inline fast paths.
 *
 * Memory comes in segments: mappings aligned to BP_CHUNK (1 MiB) whose header
 * holds, per buffer, a reference count and a free-stack entry, so buffers
 * carry no header and a 4096-byte request is served from the 4096 tier.
 * Tier segments live in one reserved address range whose flat table turns
 * an address into its segment with one load (resv.c); a radix map
 * (segmap.c) covers the rest in O(1). Each
 * thread keeps one cache per pool (tcache.c) with a bounded bin per tier;
 * bins refill from and flush to the pool's depot (depot.c) in batches.
 * Never installed; every non-static name is bp__ and hidden.
 */
#ifndef BP_INTERNAL_H
#define BP_INTERNAL_H

#include "bytepool.h"
#include "hidden.h"
#include "observe.h"
#include "track.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BP_COLD __attribute__((cold, noinline))
/* What another thread may read only because the kernel vouched for it (the
 * owner is blocked in a system call): invisible to ThreadSanitizer, which
 * cannot see that order. */
#define BP_NO_TSAN __attribute__((no_sanitize("thread")))
#define BP_LIKELY(x) __builtin_expect(!!(x), 1)
#define BP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define BP_TLS __thread __attribute__((tls_model("initial-exec")))

/* Relaxed single-writer counters: readable by other threads, no RMW. */
#define ld_rlx(p) atomic_load_explicit((p), memory_order_relaxed)
#define st_rlx(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define ld_acq(p) atomic_load_explicit((p), memory_order_acquire)
#define st_rel(p, v) atomic_store_explicit((p), (v), memory_order_release)
/* A counter only its owner thread writes. On x86-64 one aligned `incq` is
 * that relaxed load + store in one instruction (readers see old or new, and
 * there is no other writer to lose); compilers do not fuse the two atomics
 * themselves. TSan builds keep the C11 form so it sees every write. */
#if defined(__SANITIZE_THREAD__)
#define BP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BP_TSAN 1
#endif
#endif
/* ThreadSanitizer builds are told the drain's order: a push onto a bin
 * releases the bin, the purge thread's drain acquires it. Nothing in other
 * builds. */
#ifdef BP_TSAN
#include <sanitizer/tsan_interface.h>
#define bp__tsan_release(p) __tsan_release(p)
#define bp__tsan_acquire(p) __tsan_acquire(p)
#else
#define bp__tsan_release(p) ((void)(p))
#define bp__tsan_acquire(p) ((void)(p))
#endif
#if defined(__x86_64__) && !defined(BP_TSAN)
#define bump(p) __asm__("incq %0" : "+m"(*(uint64_t *)(p)))
#else
#define bump(p) st_rlx((p), ld_rlx(p) + 1)
#endif

/* Intrusive doubly linked lists: unlink node from the list headed by head,
 * through its own next/prev fields (NULL-terminated at both ends). */
#define BP_DLIST_UNLINK(head, node, next, prev)                                                    \
    do {                                                                                           \
        if ((node)->prev)                                                                          \
            (node)->prev->next = (node)->next;                                                     \
        else                                                                                       \
            (head) = (node)->next;                                                                 \
        if ((node)->next)                                                                          \
            (node)->next->prev = (node)->prev;                                                     \
    } while (0)

/* ---- sizes ------------------------------------------------------------ */

#define BP_CHUNK_SHIFT 20
#define BP_CHUNK ((size_t)1 << BP_CHUNK_SHIFT)
/* Supported platforms: 64-bit Linux on x86_64 and aarch64. Anything else
 * stops here, at build time, rather than misbehaving at run time. */
#if !defined(__linux__)
#error "libbytepool supports Linux only (x86_64 and aarch64)"
#elif !defined(__x86_64__) && !defined(__aarch64__)
#error "libbytepool supports x86_64 and aarch64 only: the address map and fast paths assume them"
#elif UINTPTR_MAX != UINT64_MAX
#error "libbytepool needs 64-bit pointers (LP64); x32 and ILP32 are not supported"
#endif

/* The user address space the radix map covers: 47 bits on x86_64 (4-level
 * paging; 5-level paging hands out higher addresses only to mmap calls
 * that ask with a hint above 2^47), 48 on aarch64 (where 52-bit VA kernels
 * likewise keep to 48 bits unless a hint asks: the library never hints).
 * A foreign pointer above the covered range aliases a lower entry and is
 * refused by the slot check (bp__seg_far). */
#if defined(__aarch64__)
#define BP_ADDR_BITS 48
#else
#define BP_ADDR_BITS 47
#endif
#define BP_MAP_LEAF_BITS 13
#define BP_MAP_TOP_BITS (BP_ADDR_BITS - BP_CHUNK_SHIFT - BP_MAP_LEAF_BITS)
#define BP_ALIGN_MIN 64 /* every buffer is at least this aligned */
/* Slot index = (offset * magic) >> BP_IDX_SHIFT, magic = 2^46 / stride
 * rounded up: one 64-bit multiply (any register) and a shift, exact while
 * offset * stride < 2^46 and offset * magic < 2^64. Segments of several
 * slots have a stride under BP_SEG_PAYLOAD and offsets under 4 MiB (2^22 *
 * 2^20 = 2^42; 2^22 * 2^40 = 2^62); one-slot segments use magic 0. An
 * offset that is no buffer's may give any index: the caller refuses it
 * unless index < nslots and offset - index * stride < size, which only a
 * true offset meets. */
#define BP_IDX_SHIFT 46
#define BP_SEG_PAYLOAD BP_CHUNK /* aim: about this many bytes of buffers */
#define BP_TICK 32              /* gets between calls of bp__tc_batch: pushes, leak samples */
#define BP_BATCH 128            /* recent lengths per stamped batch: one clock read each */
/* A stamp marks a finished batch with its own batch number, so a reader
 * never takes the slot's previous batch's; the batch's place in the pool's
 * order (a monotonic clock) is in the slot's `order`. */
#define BP_STAMP_BITS 20
#define BP_STAMP_MASK ((UINT64_C(1) << BP_STAMP_BITS) - 1)
#define BP_STAMP(order, batch) ((((order) + 1) << BP_STAMP_BITS) | ((batch)&BP_STAMP_MASK))
#define BP_TIDS 1024 /* threads with a fast-path cache slot in every pool */
#define BP_CLASS_MAX_SHIFT 10
#define BP_HOT 4                  /* hot slots of a tier whose bins are smaller */
#define BP_BIN_MAX 64             /* entries per thread-cache bin, at most */
#define BP_HOT_TICK 16            /* hot-slot calls per decay-clock check, per thread */
#define BP_DTAB 2048              /* entries of the direct length -> bin table */
#define BP_RC_SAMPLED 0x80000000u /* the buffer's allocation site is recorded */
#define BP_RC_WATCHED 0x40000000u /* a bp_watcher waits for the count to reach 1 */
#define BP_RC_PINNED 0x20000000u  /* a disarm is at work: a final drop leaves the free to it */
#define BP_RC_COUNT 0x1fffffffu
#define BP_RC_MAX (BP_RC_COUNT - 1)

/* ---- segments ----------------------------------------------------------- */

typedef struct bp_seg bp_seg;
typedef struct bp_pool bp_pool;
typedef struct bp_tcache bp_tcache;
typedef struct bp_tld bp_tld;

struct bp_seg {       /* the first line: what the fast paths read */
    bp_pool *pool;    /* owner; fixed for the segment's life */
    uint8_t *base;    /* first buffer */
    uint64_t magic;   /* index = (offset * magic) >> BP_IDX_SHIFT; 0: one slot */
    size_t stride;    /* distance between buffers */
    uint64_t span;    /* nslots x stride where a slot is all buffer (stride == size): an
                         offset below it is inside a buffer, no more checks; else 0 */
    size_t size;      /* capacity of each buffer */
    uint64_t nslots;  /* buffers the segment can hold (64-bit: compared with an index as is) */
    uint32_t bin_off; /* byte offset of the tier's bin in a bp_tcache */
    uint32_t tier;    /* tier index; pool->ntiers for oversize */
    bool oversize;    /* one buffer of exactly the requested length, unmapped when free */
    bool backed;      /* its buffers are memory the program mapped (bp_backing, adopted) */
    /* below: owned by the pool lock */
    uint32_t ncarved; /* slots handed out at least once */
    uint32_t nfree;   /* entries in freestk (free buffers in the depot) */
    uint32_t ncold;   /* freestk[0..ncold) have had their pages released */
    uint32_t nlow;    /* the fewest free since the last idle-page pass: freestk[0..nlow)
                         sat unused all that time */
    bool in_partial;
    uint32_t *freestk; /* free slot indices, LIFO */
    uint32_t *reqlen;  /* checked mode: requested length per slot */
    uint8_t *inited;   /* object pools: 1 once the slot was first handed out (init ran) */
    size_t map_bytes;  /* the whole mapping */
    _Atomic(_Atomic(struct bp_watcher *) *) watch; /* per slot, made by the first bp_watch */
    uint64_t empty_since_ms;
    bp_seg *next, *prev;   /* pool's list of all segments */
    bp_seg *pnext, *pprev; /* tier's list of segments with room */
    bp_seg *enext, *eprev; /* pool's empty segments, least recently emptied first */
    _Atomic uint32_t rc[]; /* reference count per slot; 0 means free */
};

/* ---- thread caches -------------------------------------------------------- */

typedef struct bp_centry {
    uint8_t *p;
    _Atomic uint32_t *rc;
} bp_centry;

typedef struct __attribute__((aligned(64))) bp_bin { /* one line: no false sharing */
    bp_centry *top; /* one past the newest entry; owner thread only */
    bp_centry *end; /* e + the bound derived from tcache_bytes */
    bp_centry *e;   /* the entries, oldest first */
    /* counters of this thread and tier: written by the owner only */
    _Atomic uint64_t get, put, miss;
    uint64_t get_mark; /* get at the bin's last overflow: its use since (owner only) */
} bp_bin;

static inline uint32_t bp__bin_n(const bp_bin *b) { return (uint32_t)(b->top - b->e); }
static inline uint32_t bp__bin_max(const bp_bin *b) { return (uint32_t)(b->end - b->e); }

struct bp_tcache {
    bp_pool *pool;
    bp_tld *tld;
    bp_tcache *tnext;         /* the thread's list */
    bp_tcache *pnext, *pprev; /* the pool's list (pool lock) */
    /* The history: the owner writes *hcur++; bp__tc_seq reads how many so far. */
    _Atomic size_t *_Atomic hcur; /* the next entry to write */
    _Atomic size_t *hlim;         /* at this entry bp__tc_batch runs (lim, or the ring's end) */
    _Atomic uint64_t hbase;       /* lengths recorded before the ring last wrapped */
    _Atomic uint64_t hgen;        /* odd while the owner moves hcur and hbase together */
    uint64_t lim;                 /* seq at which bp__tc_batch runs (batch end, leak sample) */
    uint64_t hmask;               /* history entries - 1 */
    uint64_t pub;                 /* user recorder: seq already pushed to it (pool lock) */
    _Atomic size_t *hist;         /* this thread's recent lengths, a ring */
    _Atomic uint64_t *stamp;      /* per batch slot: BP_STAMP(0, batch) once finished, 0 not yet */
    _Atomic uint64_t *order;      /* per batch slot: when it finished (bp__os_now_ns) */
    uint32_t hot_calls;           /* gets and puts served by hot slots: every BP_HOT_TICK-th
                                     reads the clock for the decay */
    uint64_t idle_ops, idle_ms;   /* the purge thread's: the calls counted when it last saw
                                     them change, and when (pool lock) */
    bp_bin bins[];
};

struct bp_tld {
    uint32_t tid; /* index in every pool's cache array; 0: none (too many threads) */
    int ktid;     /* the kernel's thread id (bp__tc_drain_idle asks the kernel about it) */
    bp_tcache *tcs;
    uint64_t epoch; /* bp__dead_epoch last swept */
    bool live;      /* false for the shared empty sentinel */
};

/* ---- pools -------------------------------------------------------------- */

#define BPF_DEAD 0x1u
#define BPF_CHECKED 0x2u
#define BPF_PRESSURE 0x4u /* at the memory budget: caches bypassed, every buffer shared */
#define BPF_WIPE 0x10u    /* BP_WIPE: every final release clears the buffer (home.c) */
#define BPF_ADOPTED 0x20u /* BP_ADOPTED: segments the program mapped; no gets, no writes */
#define BPF_DETACHED                                                                               \
    0x40u /* a backed or adopted pool in a fork() child (fork.c): no gets,                         \
             final releases do nothing, no page goes back */
#define BPF_SLOW (BPF_DEAD | BPF_CHECKED | BPF_PRESSURE | BPF_WIPE | BPF_ADOPTED | BPF_DETACHED)
#define BPF_STRICT 0x8u    /* BP_STRICT_LEN */
#define BP_PRESSURE_MS 100 /* caches stay bypassed this long after a budget refusal */

typedef struct bp_depot {
    /* Tiers whose bins hold under BP_HOT buffers (or none) pass a few free
     * buffers from put to get here without the lock: count addresses, or
     * NULL. Outside the lock; drained into the segments by decay and trim. */
    _Alignas(64) _Atomic uint32_t *_Atomic hot[BP_HOT];
    bool use_hot;      /* this tier's bins are under BP_HOT: hot slots before the lock */
    bp_seg *partial;   /* segments with a free or uncarved slot */
    uint64_t carved;   /* buffers that exist in this tier */
    uint64_t reserved; /* bp_pool_reserve floor: carved buffers kept mapped */
    uint32_t batch;    /* buffers moved per refill/flush */
    uint32_t bin_max;
    _Atomic uint32_t *hot_seen[BP_HOT]; /* the hot slots at the last decay pass (lock) */
} bp_depot;

typedef struct bp_octave {
    uint32_t base, shift;
} bp_octave;

typedef struct bp_retired { /* counters of caches that have gone */
    uint64_t get, put, miss;
} bp_retired;

struct bp_pool {
    /* read-mostly, used by the fast paths */
    bp_tcache **_Atomic tcv; /* the fast paths' cache of thread number t is tcv[t]: tcs_by_tid,
                                or bp__tcv_none while every call must take the slow path
                                (checked, destroyed, or at its memory budget) */
    bp_tcache **tcs_by_tid;  /* BP_TIDS entries, bp__tc_none where a thread has no cache */
    bp_tcache **tcv_off;     /* bp__tcv_none: what tcv points at while caches are bypassed */
    uint64_t id;
    _Atomic uint32_t flags;
    size_t max_len; /* largest tier */
    size_t dmax;    /* len - 1 < dmax: the bin is dtab[(len - 1) >> dshift] */
    uint32_t dshift;
    uint32_t cshift;
    uint32_t ntiers;
    const uint8_t *ctab; /* class -> first candidate tier */
    bp_octave oct[64];   /* per octave of len-1: class = base + (v >> shift) */
    size_t sizes[BP_MAX_TIERS];
    uint16_t dtab[BP_DTAB]; /* byte offset of the tier's bin in a bp_tcache */

    /* configuration */
    size_t tcache_bytes, idle_bytes;
    size_t max_bytes; /* budget for pool->mapped; 0: none */
    unsigned decay_ms;
    bool record;
    bool background; /* the background thread purges this pool */
    bp_error_fn on_error;
    void *error_ctx;
    void (*on_segment)(void *ctx, void *base, size_t len, int event); /* (lock held) */
    void *segment_ctx;
    bp_backing backing;        /* map == NULL and not BPF_ADOPTED: the library's own memory */
    bp_leaks leaks;            /* OFF, SAMPLE or ALL */
    struct bp_leak **leak_tab; /* sampled live buffers, by address (lock) */
    size_t leak_cap, leak_n;
    struct bp_objpool *objpool; /* the object pool this pool serves, freed with it */

    /* slow-path state, under lock */
    pthread_mutex_t lock;
    _Atomic uintptr_t lock_owner; /* builds with assertions: the holder's pthread_self() */
    bp_seg *segs;
    bp_tcache *tcs;
    bool user_ref;                  /* false once bp_pool_destroy has run */
    _Atomic uint64_t next_decay_ms; /* written under lock; hot-slot calls peek */
    uint64_t empty_bytes;           /* wholly free segments kept mapped */
    bp_seg *empty_lru, *empty_mru;  /* those segments, oldest first */
    uint64_t mapped, nsegs, os_returned;
    bp_ring *ring;        /* recent lengths, unless a user recorder */
    bp_recorder recorder; /* user recorder; push NULL when unused */
    size_t window;
    uint64_t hist_len; /* per-thread history: a power of two >= window + BP_BATCH */
    bp_retired retired[BP_MAX_TIERS];
    bp_depot depot[BP_MAX_TIERS];
    bp_pool *gnext, *gprev; /* process-wide list, for fork */

    /* the memory budget (under lock, but for the atomics) */
    pthread_cond_t room;                /* bp_get_wait sleeps here */
    uint32_t waiters;                   /* threads in bp_get_wait */
    _Atomic uint64_t room_gen;          /* bumped when memory or buffers come back */
    _Atomic uint64_t pressure_until_ms; /* caches bypassed until then (BPF_PRESSURE) */
    uint64_t dead_ms;                   /* when bp_pool_destroy ran */
    uint64_t last_decay_ms;             /* the last decay pass (lock) */
    uint64_t pages_since_ms;            /* the idle-page pass's period began (lock) */

    /* slow-path counters, atomic RMW */
    _Atomic uint64_t discarded, refused, over_live, over_bytes, budget_refused;
};

/* ---- the pool lock -------------------------------------------------------
 * Inline, so that every layer takes it without calling up into pool.c.
 * Builds with assertions (Debug: the sanitizer builds) record the holder,
 * and functions documented "pool lock held" assert it; release builds
 * compile both away. */
#ifndef NDEBUG
#define bp__lock_self() ((uintptr_t)pthread_self())
#define bp__lock_note(pool, who)                                                                   \
    atomic_store_explicit(&(pool)->lock_owner, (who), memory_order_relaxed)
#define bp__pool_assert_locked(pool)                                                               \
    assert(atomic_load_explicit(&(pool)->lock_owner, memory_order_relaxed) == bp__lock_self())
#else
#define bp__lock_self() ((uintptr_t)0)
#define bp__lock_note(pool, who) ((void)(pool), (void)(who))
#define bp__pool_assert_locked(pool) ((void)(pool))
#endif
static inline void bp__pool_lock(bp_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    bp__lock_note(pool, bp__lock_self());
}
static inline void bp__pool_unlock(bp_pool *pool) {
    bp__lock_note(pool, 0);
    pthread_mutex_unlock(&pool->lock);
}
/* Thread caches on or off for the pool's fast paths (off: every get finds
 * an empty bin, every put a full one). Inline: the budget (depot) and pool
 * life turn them off without calling up into tcache.c. */
static inline void bp__tc_serve(bp_pool *pool, bool on) {
    st_rlx(&pool->tcv, on ? pool->tcs_by_tid : pool->tcv_off);
}

/* A wait on a condition tied to the pool lock: the lock is the caller's
 * again when it returns. */
static inline int bp__pool_wait(bp_pool *pool, pthread_cond_t *cv, const struct timespec *until) {
    bp__lock_note(pool, 0);
    int rc =
        until ? pthread_cond_timedwait(cv, &pool->lock, until) : pthread_cond_wait(cv, &pool->lock);
    bp__lock_note(pool, bp__lock_self());
    return rc;
}

/* ---- address -> segment ---------------------------------------------------- */

/* The reserved range (resv.c): a flat table of one segment per chunk at
 * base, covering [base, base + lim). */
typedef struct bp_resv {
    _Atomic uintptr_t base;
    _Atomic uintptr_t lim;
} bp_resv;
extern bp_resv bp__resv BP_HIDDEN;
extern bp_seg bp__seg_none BP_HIDDEN; /* refuses everything: no pool, no slots */
extern _Atomic(bp_seg *) *_Atomic bp__segmap[1u << BP_MAP_TOP_BITS] BP_HIDDEN;

/* Whether p is inside the reserved range; then *seg is its segment, or
 * bp__seg_none for what is no segment (never NULL, so callers need no
 * test). lim is read first: a thread that sees it set sees base too. */
static inline bool bp__near(const void *p, bp_seg **seg) {
    uintptr_t lim = ld_acq(&bp__resv.lim), base = ld_rlx(&bp__resv.base);
    uintptr_t off = (uintptr_t)p - base;
    if (BP_UNLIKELY(off >= lim))
        return false;
    *seg = ld_acq(&((_Atomic(bp_seg *) *)base)[off >> BP_CHUNK_SHIFT]);
    return true;
}

/* Outside the range: the radix map, which also covers oversize buffers.
 * Addresses above the mapped range alias lower ones here; bp__slot_of then
 * refuses them, because their offset from the segment's base is huge. */
static inline bp_seg *bp__seg_far(const void *p) {
    uintptr_t c = (uintptr_t)p >> BP_CHUNK_SHIFT;
    _Atomic(bp_seg *) *leaf =
        ld_acq(&bp__segmap[(c >> BP_MAP_LEAF_BITS) & ((1u << BP_MAP_TOP_BITS) - 1)]);
    if (BP_UNLIKELY(!leaf))
        return NULL;
    return ld_acq(&leaf[c & ((1u << BP_MAP_LEAF_BITS) - 1)]);
}

/* The segment containing p, or NULL for memory the library does not own. */
static inline bp_seg *bp__seg_of(const void *p) {
    bp_seg *seg;
    if (BP_LIKELY(bp__near(p, &seg)))
        return seg == &bp__seg_none ? NULL : seg;
    return bp__seg_far(p);
}

/* Bytes of a buffer handed out that memory tools let the caller touch. */
static inline size_t bp__usable(bp_pool *pool, const void *p, size_t len) {
    return (ld_rlx(&pool->flags) & BPF_STRICT) ? len : bp__seg_of(p)->size;
}

/* Slot index of p in seg, or UINT32_MAX when p is not inside a buffer
 * (header, padding between buffers, past the last slot). */
static inline uint32_t bp__slot_of(const bp_seg *seg, const void *p, size_t *off_in) {
    uint64_t off = (uint64_t)((uintptr_t)p - (uintptr_t)seg->base);
    uint64_t idx = (off * seg->magic) >> BP_IDX_SHIFT;
    if (BP_LIKELY(off < seg->span)) { /* one test: retain went from 27 to 22 instructions */
        *off_in = off - idx * seg->stride;
        return (uint32_t)idx;
    }
    if (BP_UNLIKELY(idx >= seg->nslots))
        return UINT32_MAX;
    uint64_t in = off - idx * seg->stride;
    if (BP_UNLIKELY(in >= seg->size))
        return UINT32_MAX;
    *off_in = in;
    return (uint32_t)idx;
}

/* ---- the thread's caches -------------------------------------------------- */

extern BP_TLS bp_tld *bp__tld BP_HIDDEN;
extern _Atomic uint64_t bp__dead_epoch BP_HIDDEN;

extern BP_TLS uint32_t bp__tid BP_HIDDEN; /* this thread's number; 0: none yet */
typedef union bp_tc_none_u {              /* a cache with every bin both empty and full */
    bp_tcache tc;
    char room[sizeof(bp_tcache) + (BP_MAX_TIERS + 1) * sizeof(bp_bin)];
} bp_tc_none_u;
extern bp_tc_none_u bp__tc_none_u BP_HIDDEN;
#define bp__tc_none (bp__tc_none_u.tc)             /* every call through it goes slow */
extern bp_tcache *bp__tcv_none[BP_TIDS] BP_HIDDEN; /* every entry bp__tc_none */

static inline uint32_t bp__bin_off(uint32_t tier) {
    return (uint32_t)(offsetof(bp_tcache, bins) + tier * sizeof(bp_bin));
}

/* The calling thread's cache for pool as the fast paths see it: bp__tc_none
 * unless it has one and the pool takes fast paths. One load each. */
static inline bp_tcache *bp__tc_here(const bp_pool *pool) { return ld_rlx(&pool->tcv)[bp__tid]; }

/* The calling thread's cache for pool, or NULL (slow path). */
static inline bp_tcache *bp__tc_fast(const bp_pool *pool) {
    bp_tcache *tc = bp__tc_here(pool);
    return BP_LIKELY(tc != &bp__tc_none) ? tc : NULL;
}

/* The tier serving len, for 1 <= len <= pool->max_len. */
static inline uint32_t bp__tier_of(const bp_pool *pool, size_t len) {
    uint64_t v = len - 1;
    const bp_octave *o = &pool->oct[63 - __builtin_clzll(v | 1)];
    uint32_t t = pool->ctab[o->base + (v >> o->shift)];
    while (len > pool->sizes[t]) /* at most once unless tiers are very close */
        t++;
    return t;
}

/* Records len in the thread's history (see stats.c); true when
 * bp__tc_batch is due (a batch ends, a leak sample, the ring's end). */
static inline bool bp__stage(bp_tcache *tc, size_t len) {
    _Atomic size_t *h = ld_rlx(&tc->hcur);
    st_rlx(h, len);
    st_rel(&tc->hcur, h + 1);
    return BP_UNLIKELY(h + 1 == tc->hlim);
}

/* bp__stage, then the batch when due. site: the caller's return address,
 * the allocation site of leak reports; a macro argument so it is only
 * evaluated on the unlikely branch. */
#define bp__stage_len(tc, len, p, site)                                                            \
    do {                                                                                           \
        if (bp__stage((tc), (len)))                                                                \
            bp__tc_batch((tc), (p), (site));                                                       \
    } while (0)

/* ---- internal functions (hidden), lowest file first (tests/check_layers.sh)
 * ------------------------------------------ */

/* os.c */
BP_HIDDEN void *bp__os_map(size_t size, size_t align);
BP_HIDDEN void *bp__os_reserve(size_t size, size_t align); /* PROT_NONE, no commit */
BP_HIDDEN int bp__os_reserve_at(void *addr, size_t size);  /* exactly there, or EBUSY */
BP_HIDDEN int bp__os_commit(void *p, size_t size);         /* reserved -> read/write */
BP_HIDDEN void bp__os_unmap(void *p, size_t size);
BP_HIDDEN int bp__os_decommit(void *p, size_t size);
BP_HIDDEN int bp__os_remove(void *p, size_t size);  /* shared file pages: gone from the file */
BP_HIDDEN int bp__os_private(void *p, size_t size); /* fresh private zeros over a mapping */
BP_HIDDEN void bp__os_retire(void *p, size_t size, size_t keep);
BP_HIDDEN int bp__os_regrow(void *p, size_t keep, size_t size);
BP_HIDDEN size_t bp__os_page(void);
BP_HIDDEN uint64_t bp__os_now_ms(void);
BP_HIDDEN uint64_t bp__os_now_ns(void);              /* CLOCK_MONOTONIC: one order across threads */
BP_HIDDEN void bp__os_cond_init(pthread_cond_t *cv); /* timed waits on CLOCK_MONOTONIC */
BP_HIDDEN void bp__os_deadline(struct timespec *ts, unsigned ms); /* now + ms, monotonic */
BP_HIDDEN int bp__os_thread_id(void);              /* the kernel's id of the calling thread */
BP_HIDDEN bool bp__os_thread_in_syscall(int ktid); /* blocked in a system call right now */

/* env.c: strict parsing; an invalid value is ignored with one line on stderr */
typedef enum bp_env {
    BP_ENV_CHECKED,
    BP_ENV_TCACHE_BYTES,
    BP_ENV_IDLE_BYTES,
    BP_ENV_DECAY_MS,
    BP_ENV_LEAKS,
    BP_ENV_MAX_BYTES,
    BP_ENV_BACKGROUND,
    BP_ENV_RESERVE_BYTES,
    BP_ENV_WIPE,
    BP_ENV_LEAK_EXITCODE,
    BP_ENV_COUNT
} bp_env;
BP_HIDDEN int bp__parse_bool(const char *s);                /* 1, 0, or -1: not a boolean */
BP_HIDDEN int bp__parse_size(const char *s, uint64_t *out); /* digits + K/M/G; 0 or -1 */
BP_HIDDEN int bp__env_bool(bp_env v, int dflt);
BP_HIDDEN uint64_t bp__env_size(bp_env v, uint64_t dflt, uint64_t min, uint64_t max);
BP_HIDDEN int bp__env_word(bp_env v, const char *const *words, int n, int dflt); /* index */
BP_HIDDEN void bp__env_check_names(void); /* once: a line on stderr per unknown BYTEPOOL_* */

/* ring.c: a batch from a writer that is the only one (pool lock held) */
BP_HIDDEN void bp__ring_push_batch(bp_ring *r, const void *elems, size_t n);

/* tier.c */
BP_HIDDEN int bp__tiers_build(bp_pool *pool, const size_t *sizes, size_t n);

/* checked.c */
BP_HIDDEN void bp__checked_on_get(bp_seg *seg, uint32_t idx, size_t len);
BP_HIDDEN void bp__checked_on_free(bp_seg *seg, uint32_t idx, const char *op);
BP_HIDDEN size_t bp__checked_gap(size_t size, size_t page); /* guard bytes after a buffer */
BP_HIDDEN _Noreturn void bp__abort(const char *fmt, ...);

/* resv.c */
/* Chunk-aligned and committed, or NULL: not here, or *refused: the OS refused memory. */
BP_HIDDEN void *bp__resv_alloc(size_t bytes, bool *refused);
BP_HIDDEN bool bp__resv_owns(const void *p);
BP_HIDDEN void bp__resv_publish(bp_seg *seg);
BP_HIDDEN void bp__resv_free(bp_seg *seg);   /* unpublishes, returns the pages */
BP_HIDDEN void bp__resv_forget(bp_seg *seg); /* unpublishes; the extent never serves again */
BP_HIDDEN size_t bp__resv_reserved(void);    /* bytes of address space reserved */
BP_HIDDEN void bp__resv_lock(void);          /* fork */
BP_HIDDEN void bp__resv_unlock(void);

/* segmap.c */
BP_HIDDEN int bp__segmap_add(bp_seg *seg);
BP_HIDDEN void bp__segmap_remove(bp_seg *seg);

/* Every get records its site: BP_LEAKS_ALL and BP_LEAKS_FAIL. */
static inline bool bp__leaks_all(const bp_pool *pool) {
    return pool->leaks == BP_LEAKS_ALL || pool->leaks == BP_LEAKS_FAIL;
}

/* leaks.c (pool lock held): one record per sampled outstanding buffer */
typedef struct bp_leak {
    struct bp_leak *next;
    const void *p;
    size_t len;
    uint64_t born_ms; /* when it was got: the dashboard's ages */
    int nframes;
    void *frames[BP_LEAK_FRAMES];
} bp_leak;

BP_HIDDEN void bp__leak_record(bp_pool *pool, void *p, size_t len, void *site);
BP_HIDDEN void bp__leak_forget(bp_pool *pool, const void *p);
BP_HIDDEN void bp__leak_free_all(bp_pool *pool);

/* registry.c: the live pools */
BP_HIDDEN void bp__registry_add(bp_pool *pool); /* gives it its id */
BP_HIDDEN void bp__registry_remove(bp_pool *pool);
BP_HIDDEN void bp__registry_lock(void);
BP_HIDDEN void bp__registry_unlock(void);
BP_HIDDEN bp_pool *bp__registry_first(void);
BP_HIDDEN bool bp__registry_has(const bp_pool *pool); /* is it a pool handle? (refusal paths) */
BP_HIDDEN void bp__pool_maybe_free(bp_pool *pool);    /* lock held; unlocks; frees it if unheld */

/* refuse.c (bp__refuse_user: observe.h) */
BP_HIDDEN int bp__refuse(bp_pool *pool, int err, const char *op, const void *p);
BP_HIDDEN void bp__report(bp_pool *pool, int err, const char *op, const void *p); /* uncounted */

/* thread.c: the calling thread's number and data (bp__tld, bp__tid above) */
extern bp_tld bp__tld_empty BP_HIDDEN; /* what bp__tld points at before, and after exit */
BP_HIDDEN uint32_t bp__tid_take(void); /* 0 when all are taken */
BP_HIDDEN void bp__tid_give(uint32_t tid);
BP_HIDDEN void bp__tid_lock(void); /* fork.c holds it across fork() */
BP_HIDDEN void bp__tid_unlock(void);
BP_HIDDEN bp_tcache **bp__tc_array_new(void); /* BP_TIDS x bp__tc_none, malloc'd */

/* segment.c */
BP_HIDDEN bp_seg *bp__seg_new_tier(bp_pool *pool, uint32_t tier);
BP_HIDDEN bp_seg *bp__seg_new_oversize(bp_pool *pool, size_t len);
BP_HIDDEN bp_seg *bp__seg_new_adopted(bp_pool *pool, const bp_segment_desc *d,
                                      int (*map)(void *ctx, void *addr, size_t len), void *ctx);
BP_HIDDEN void bp__seg_free(bp_seg *seg);
/* A destroyed adopted pool: its segments (only `only`, unless NULL) whose
 * buffers are all free are freed; a segment no longer in the pool is no
 * longer looked at. */
BP_HIDDEN void bp__seg_free_adopted(bp_pool *pool, bp_seg *only);
/* Does the pool's memory come from the program (bp_backing, BP_ADOPTED)? */
static inline bool bp__pool_backed(const bp_pool *pool) {
    return pool->backing.map || (ld_rlx(&pool->flags) & BPF_ADOPTED);
}
BP_HIDDEN size_t bp__seg_tier_bytes(size_t size, bool checked); /* one segment's mapping */
BP_HIDDEN size_t bp__seg_oversize_bytes(size_t len);            /* 0: too long to map */
/* The bytes of a segment's table of return watches (watch.c makes it). */
static inline size_t bp__seg_watch_bytes(const bp_seg *seg) {
    size_t page = bp__os_page();
    return ((size_t)seg->nslots * sizeof(struct bp_watcher *) + page - 1) & ~(page - 1);
}
BP_HIDDEN void bp__tomb_lock(void); /* fork */
BP_HIDDEN void bp__tomb_unlock(void);
static inline uint8_t *bp__seg_buf(const bp_seg *seg, uint32_t idx) {
    return seg->base + (size_t)idx * seg->stride;
}
static inline bool bp__seg_is_oversize(const bp_seg *seg) { return seg->oversize; }
/* Segment headers are coloured: each sits BP_COLOUR_STEP x (its first
 * chunk's number mod BP_COLOURS) bytes into its mapping, so the headers and
 * counts of many segments fall into different cache sets instead of all
 * into the one a chunk-aligned address maps to. The colour is a function of
 * the address: no load finds it. */
#define BP_COLOURS 32u
#define BP_COLOUR_STEP 64u
static inline size_t bp__seg_colour(uintptr_t chunk) {
    return ((chunk >> BP_CHUNK_SHIFT) % BP_COLOURS) * BP_COLOUR_STEP;
}
/* The start of seg's mapping (chunk-aligned). */
static inline uint8_t *bp__seg_start(const bp_seg *seg) {
    return (uint8_t *)((uintptr_t)seg & ~(uintptr_t)(BP_CHUNK - 1));
}
static inline bp_seg *bp__seg_of_rc(const _Atomic uint32_t *rc) {
    uintptr_t chunk = (uintptr_t)rc & ~(uintptr_t)(BP_CHUNK - 1);
    return (bp_seg *)(chunk + bp__seg_colour(chunk));
}

/* depot.c (all under pool->lock) */
BP_HIDDEN uint32_t bp__depot_take(bp_pool *pool, uint32_t tier, bp_centry *out, uint32_t n);
BP_HIDDEN uint32_t bp__depot_take_fresh(bp_pool *pool, uint32_t tier, bp_centry *out, bool *fresh);
BP_HIDDEN void bp__depot_give(bp_pool *pool, uint32_t tier, const bp_centry *in, uint32_t n);
BP_HIDDEN size_t bp__depot_trim(bp_pool *pool);
BP_HIDDEN void bp__depot_decay(bp_pool *pool); /* when due */
BP_HIDDEN void bp__depot_decay_now(bp_pool *pool);
BP_HIDDEN void bp__depot_drain_hot(bp_pool *pool);
BP_HIDDEN size_t bp__depot_release_empty(bp_pool *pool, uint32_t tier); /* UINT32_MAX: all */
extern BP_TLS bool bp__budget_failed BP_HIDDEN; /* the last mapping was refused by the budget */
BP_HIDDEN bool bp__depot_budget(bp_pool *pool, size_t map_bytes); /* room to map this? */
BP_HIDDEN void bp__depot_room(bp_pool *pool);                     /* wakes bp_get_wait */
BP_HIDDEN void bp__depot_tick(bp_tcache *tc); /* no lock held: now and then, decay if due */

/* depot.c, without the lock: the hot slots of tiers with small or no bins */
BP_HIDDEN _Atomic uint32_t *bp__depot_hot_take(bp_pool *pool, uint32_t tier);
BP_HIDDEN bool bp__depot_hot_give(bp_pool *pool, uint32_t tier, _Atomic uint32_t *rc);

/* history.c: the recent requested lengths */
BP_HIDDEN void bp__hist_arm(bp_tcache *tc); /* the owner: where bp__tc_batch runs next */
BP_HIDDEN uint64_t bp__batch_interval(const bp_pool *pool);
BP_HIDDEN void bp__tc_archive(bp_tcache *tc); /* pool lock held */
BP_HIDDEN void bp__tc_batch(bp_tcache *tc, void *just_got, void *site);
BP_HIDDEN void bp__tc_publish(bp_tcache *tc); /* staged lengths -> user recorder (pool lock) */
BP_HIDDEN uint64_t bp__tc_seq(bp_tcache *tc); /* lengths tc has recorded; any thread */
BP_HIDDEN void bp__record_locked(bp_pool *pool, const size_t *lens, size_t n);
BP_HIDDEN void bp__record(bp_pool *pool, size_t len);

/* tcache.c */
BP_HIDDEN bp_tcache *bp__tc_slow(bp_pool *pool);
BP_HIDDEN bp_tcache *bp__tc_find(const bp_pool *pool); /* no creation */
BP_HIDDEN void bp__tc_flush_bin(bp_tcache *tc, uint32_t tier, uint32_t keep);
BP_HIDDEN void bp__tc_bin_full(bp_tcache *tc, uint32_t tier); /* a put found it full */
BP_HIDDEN void bp__tc_flush_all(bp_tcache *tc);
BP_HIDDEN void bp__tc_give_back(bp_tcache *tc);                /* pool lock held */
BP_HIDDEN bool bp__tc_drain_idle(bp_tcache *tc, uint64_t now); /* purge thread, pool lock */
BP_HIDDEN void *bp__tc_refill(bp_tcache *tc, uint32_t tier);
BP_HIDDEN void bp__tc_retire(bp_tcache *tc); /* pool lock held */
BP_HIDDEN void bp__tld_sweep(void);
BP_HIDDEN void bp__tc_drop_current(bp_pool *pool);
BP_HIDDEN void bp__tc_fork_child(void); /* registry and pools locked; unlocks them */

/* leak_report.c: BP_LEAKS_FAIL */
BP_HIDDEN void bp__leak_fail_arm(void);  /* once: the at-exit check */
BP_HIDDEN void bp__leak_fail_note(void); /* a fail-mode pool was destroyed with buffers out */

/* home.c: a count reached 0 */
BP_HIDDEN void bp__buffer_free_slow(bp_seg *seg, uint32_t idx);        /* rc already 0 */
BP_HIDDEN void bp__buffer_gone(bp_seg *seg, uint32_t idx, uint32_t v); /* count reached 0 from v */
BP_HIDDEN void bp__buffer_home(bp_seg *seg, uint32_t idx); /* unflagged count went 1 -> 0 */
BP_HIDDEN bool bp__gone_contains(const void *p);           /* an oversize buffer released lately */
/* A watched buffer was freed: its claim in the segment's table goes. */
static inline void bp__watch_forget(bp_seg *seg, uint32_t idx) {
    st_rlx(&ld_acq(&seg->watch)[idx], NULL);
}

/* wrap.c: buffers over memory the library does not own (bp_wrap). The
 * calls return ENOENT for an address no wrapped range holds. */
BP_HIDDEN int bp__wrap_retain(const void *p, size_t n);
BP_HIDDEN int bp__wrap_release(const void *p, size_t n); /* EINVAL: n over the count */
BP_HIDDEN size_t bp__wrap_query(const void *p, uintptr_t *lo, uintptr_t *hi); /* count, 0 */
BP_HIDDEN void bp__wrap_lock(void);                                           /* fork */
BP_HIDDEN void bp__wrap_unlock(void);

/* watch.c: a drop took a watched count down to 1 (and cleared the flag) */
BP_HIDDEN void bp__watch_fire(bp_seg *seg, uint32_t idx);

/* background.c: one purge thread per process */
BP_HIDDEN void bp__bg_start(unsigned decay_ms); /* a pool with this decay needs it */
BP_HIDDEN void bp__bg_fork_prepare(void);
BP_HIDDEN void bp__bg_fork_parent(void);
BP_HIDDEN void bp__bg_fork_child(void);

/* pool.c */
/* A refused config: formats why into the calling thread's message
 * (bp_config_error) and returns err. */
BP_HIDDEN int bp__config_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* pool.c, for abi.c (docs/abi.md): the public *_sized calls check and
 * convert caller-allocated structs of any version's size, then call this
 * with the library's own layout. */
BP_HIDDEN bp_pool *bp__pool_new(const bp_config *cfg);

/* objpool.c, for abi.c as bp__pool_new is */
BP_HIDDEN bp_objpool *bp__objpool_new(const bp_objpool_config *cfg);
BP_HIDDEN int bp__objpool_stats(bp_objpool *op, bp_obj_stats *out);

#endif /* BP_INTERNAL_H */
