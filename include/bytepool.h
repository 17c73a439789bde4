/* SPDX-License-Identifier: MIT */
/*
 * bytepool.h - tiered, reference-counted byte buffers for C11.
 *
 * This header is the reference manual. Conventions used throughout:
 *
 *  - Functions returning int return 0 on success or a positive errno value.
 *  - Functions returning a pointer return NULL on failure and set errno.
 *  - Error values: EINVAL  bad argument (NULL, a pointer the library does not
 *                          own, a pointer into another pool, a bad config);
 *                  EALREADY the buffer is free (double release, retain or put
 *                          of a released buffer; for oversize buffers, whose
 *                          memory is unmapped at release, the last 256
 *                          released in the process are recognised);
 *                  EOVERFLOW the reference count would overflow;
 *                  ENOMEM  the operating system refused memory, or the
 *                          pool's max_bytes budget is used up;
 *                  ETIMEDOUT bp_get_wait waited as long as it was told;
 *                  EBUSY   bp_grow of a buffer others hold references to;
 *                  E2BIG   a struct from a newer header asks for fields
 *                          this library does not have (see ABI below).
 *    A refused call changes nothing: the buffer and the pool stay as they
 *    were. It is counted in the pool's `refused` statistic and reported to
 *    the pool's error callback (or, when no pool can be named, to the
 *    process-wide handler of bp_set_error_handler()). bp_error_name()
 *    turns an error and the operation into words ("double release").
 *  - "Thread-safe" means any thread may call the function at any time on
 *    the same object; exceptions are stated.
 *  - ABI (docs/abi.md): within a major version a program built against an
 *    older header runs with a newer library. The structs a caller allocates
 *    (bp_config, bp_stats, bp_advice, bp_objpool_config, bp_obj_stats) only
 *    ever grow at their end, and every call that takes one is a macro that
 *    passes sizeof the struct the program was compiled with to a *_sized
 *    function. The library reads a shorter struct's missing fields as 0
 *    (defaults), zero-fills an output struct's fields the program does not
 *    know, and refuses a longer input struct whose unknown fields are not
 *    all 0 with E2BIG (a newer program asked for something this library
 *    cannot do). The functions under the macros' names stay exported with
 *    the 0.2 layouts, for programs built before the macros existed.
 */
#ifndef BYTEPOOL_H
#define BYTEPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BP_VERSION_MAJOR 0
#define BP_VERSION_MINOR 5
#define BP_VERSION_PATCH 0
/* One number that compares in order: MAJOR * 10000 + MINOR * 100 + PATCH. */
#define BP_VERSION_NUMBER (BP_VERSION_MAJOR * 10000 + BP_VERSION_MINOR * 100 + BP_VERSION_PATCH)

#if defined(BP_BUILDING) && defined(__GNUC__)
#define BP_API __attribute__((visibility("default")))
#else
#define BP_API
#endif

/* ===================================================================== */
/* Version                                                               */
/* ===================================================================== */

/* The run-time version as "MAJOR.MINOR.PATCH"; a static string. */
BP_API const char *bp_version(void);

/* The run-time version as BP_VERSION_NUMBER: compare it with the header's
 * to tell the library a program runs with from the one it was built
 * against. Thread-safe; never fails. */
BP_API unsigned bp_version_number(void);

/* ===================================================================== */
/* Tier sets                                                             */
/* ===================================================================== */

/* Powers of two from 128 B to 2 MiB: 15 tiers (the seed's SizePowerOfTwo).
 * Returns a static array; stores its length in *n when n is not NULL. */
BP_API const size_t *bp_sizes_pow2(size_t *n);

/* 1K 4K 16K 32K 64K 128K (the seed's SizeStream). Static, as above. */
BP_API const size_t *bp_sizes_stream(size_t *n);

/* ===================================================================== */
/* Rings                                                                 */
/* ===================================================================== */

/* A fixed-capacity ring of fixed-size elements that overwrites its oldest
 * element when full (the seed's RingQueue and LockedRingQueue).
 *  - BP_RING_LOCKFREE: pushes never block (one atomic ticket, per-slot
 *    sequence numbers); a snapshot taken during pushes holds only values
 *    really pushed, whole, in push order. A value whose slot is lapped by a
 *    whole ring of newer pushes while it is being written is dropped (never
 *    torn). No pop or peek.
 *  - BP_RING_LOCKED: a mutex; adds pop and peek.
 * All functions are thread-safe for both kinds. */
typedef struct bp_ring bp_ring;
typedef enum bp_ring_kind { BP_RING_LOCKFREE = 0, BP_RING_LOCKED = 1 } bp_ring_kind;

/* Creates a ring of `capacity` elements of `elem_size` bytes. Returns NULL
 * with errno EINVAL (capacity or elem_size 0, elem_size above 4096, an
 * unknown kind) or ENOMEM. Free it with bp_ring_free(). */
BP_API bp_ring *bp_ring_new(size_t capacity, size_t elem_size, bp_ring_kind kind);

/* Frees the ring. NULL is ignored. Not concurrently with other calls. */
BP_API void bp_ring_free(bp_ring *r);

/* Appends a copy of *elem; when full, the oldest element is overwritten. */
BP_API void bp_ring_push(bp_ring *r, const void *elem);

/* Copies the newest min(max, len) elements, oldest first, to out; returns
 * how many were copied. */
BP_API size_t bp_ring_snapshot(bp_ring *r, void *out, size_t max);

/* Removes the oldest element into *out (out may be NULL to drop it).
 * Returns 0, EAGAIN when empty, ENOTSUP for the lock-free kind, EINVAL for
 * a NULL ring. */
BP_API int bp_ring_pop(bp_ring *r, void *out);

/* Like bp_ring_pop without removing. */
BP_API int bp_ring_peek(bp_ring *r, void *out);

BP_API size_t bp_ring_len(bp_ring *r);   /* elements held now */
BP_API size_t bp_ring_cap(bp_ring *r);   /* the capacity */
BP_API bool bp_ring_is_full(bp_ring *r); /* len == cap */
BP_API bool bp_ring_is_empty(bp_ring *r);
BP_API void bp_ring_clear(bp_ring *r); /* forget every element */

/* Typed conveniences for rings of size_t (elem_size sizeof(size_t)). */
BP_API void bp_ring_push_size(bp_ring *r, size_t v);
BP_API size_t bp_ring_snapshot_sizes(bp_ring *r, size_t *out, size_t max);

/* A user-supplied recorder of requested lengths (the seed's WithRingQueue).
 * push is called with the pool lock held, in batches, from any thread
 * (before every read of the recent lengths, by the export or stats call, so
 * the recorder has every length when it is read); read must copy up to max
 * lengths, oldest first, and return the count. Lengths are never 0. */
/* Never grows (a recorder with more callbacks would be a new struct, named
 * by a new bp_config field). */
typedef struct bp_recorder {
    void *ctx;
    void (*push)(void *ctx, size_t len);
    size_t (*read)(void *ctx, size_t *out, size_t max);
} bp_recorder;

/* ===================================================================== */
/* Pools                                                                 */
/* ===================================================================== */

typedef struct bp_pool bp_pool;

#define BP_MAX_TIERS 64             /* at most this many tiers per pool */
#define BP_MAX_TIER_SIZE (1u << 30) /* the largest allowed tier: 1 GiB */
#define BP_RECENT_DEFAULT 256       /* recent lengths kept by default */

/* bp_config.flags */
#define BP_CHECKED 0x1u   /* poison free buffers, guard gaps with canaries, abort on misuse */
#define BP_NO_RECENT 0x2u /* do not record requested lengths */
#define BP_STRICT_LEN                                                                              \
    0x4u /* only the requested length is usable: checked mode puts a                               \
            canary right after it, ASan and Valgrind builds allow                                  \
            access to it alone (default: the whole bp_cap) */
#define BP_NO_BACKGROUND                                                                           \
    0x8u /* no background purge: idle memory goes back to the OS only                              \
            during later calls on the pool (and on bp_pool_trim) */
#define BP_WIPE                                                                                    \
    0x10u /* the final release of every buffer clears its whole capacity                           \
             (explicit_bzero, which the compiler cannot remove) before the                         \
             buffer can be handed out again, on every path; for pools that                         \
             hold keys, passwords, tokens. Thread caches are bypassed, as in                       \
             checked mode (env BYTEPOOL_WIPE=1) */
#define BP_ADOPTED                                                                                 \
    0x20u /* added in 0.5: the pool only holds segments of memory mapped by the                    \
             program (bp_segment_adopt), which it reads and never writes: no                       \
             gets (EPERM), no checks, no wipes, no recent lengths; a final release                 \
             calls backing->on_free. libbytepool_shm's peers are such pools */

/* Leak reports: which buffers record where they were allocated. */
typedef enum bp_leaks {
    BP_LEAKS_DEFAULT = 0, /* the environment's BYTEPOOL_LEAKS, else off */
    BP_LEAKS_OFF = 1,
    BP_LEAKS_SAMPLE = 2, /* about 1 get in 32 per thread records its backtrace */
    BP_LEAKS_ALL = 3,    /* every get does (slow: for debugging) */
    BP_LEAKS_FAIL = 4    /* as ALL, and at process exit, when a pool of this mode
                            has buffers out (or was destroyed with some), its report
                            goes to stderr and the process exits with status
                            BYTEPOOL_LEAK_EXITCODE (default 23, as LeakSanitizer's):
                            a test suite fails on a leaked buffer */
} bp_leaks;

/* Called for every refused call: err is the errno value returned, op the
 * function name ("bp_put", ...), ptr the pointer passed (may be NULL). One
 * refusal says more than its function's name: bp_release_n of more
 * references than the buffer holds comes as op BP_OP_RELEASE_N_COUNT. It
 * runs on the calling thread and must not call back into the pool. */
#define BP_OP_RELEASE_N_COUNT "bp_release_n: n exceeds the count"
typedef void (*bp_error_fn)(void *ctx, int err, const char *op, const void *ptr);

/* Pool configuration. All-zero means defaults; a field left 0 takes its
 * default. Environment variables override the defaults (not a non-zero
 * field): see the README's table. */
/* Added in 0.5: one tier segment's buffers, as bp_backing.map and
 * bp_segment_adopt describe them: nslots buffers of `size` bytes, `stride`
 * bytes apart, the first at the start of the mapped range. */
typedef struct bp_segment_desc {
    size_t size;     /* each buffer's capacity (the tier size) */
    size_t stride;   /* distance between buffers: >= size, a multiple of 64 */
    uint32_t nslots; /* buffers in the segment */
    uint32_t tier;   /* index of the tier in the pool (ascending sizes) */
} bp_segment_desc;

/* Added in 0.5: memory the program maps for a pool's buffers (shared
 * memory, a device's memory), the base of libbytepool_shm. The struct is
 * read at bp_pool_new and copied; it never grows (a backing with more calls
 * would be a new struct named by a new bp_config field). */
typedef struct bp_backing {
    /* A tier segment is being made: map len bytes (whole pages) at exactly
     * addr (MAP_FIXED over the library's own reservation), readable and
     * writable, for the buffers *d describes. Runs with the pool's lock held,
     * on the thread whose get needed the segment: it must not call the pool.
     * Returns 0, or an errno value: the get then fails with ENOMEM. Segments
     * of a backed pool stay mapped while the pool lives (pages of free
     * buffers still go back to the OS: MADV_REMOVE); NULL in BP_ADOPTED
     * pools. */
    int (*map)(void *ctx, void *addr, size_t len, const bp_segment_desc *d);
    /* The segment at addr is going (pool destroyed, every buffer free);
     * afterwards the library maps private memory there itself. Pool lock
     * held. May be NULL. Not called in a fork() child. */
    void (*unmap)(void *ctx, void *addr, size_t len);
    /* BP_ADOPTED pools: the count of the adopted buffer at buf just reached
     * 0 (a release on any thread, no lock held). Required there. */
    void (*on_free)(void *ctx, void *buf);
    void *ctx;
} bp_backing;

typedef struct bp_config {
    const size_t *sizes;         /* tier sizes, any order; NULL: bp_sizes_pow2() */
    size_t nsizes;               /* number of entries in sizes */
    size_t tcache_bytes;         /* per thread and tier, bytes a thread cache may hold
                                    (default 256 KiB, env BYTEPOOL_TCACHE_BYTES;
                                    with the default, a bigger tier still keeps one
                                    buffer per thread). A tier where that is under
                                    4 buffers also
                                    keeps up to 4 free buffers in lock-free slots
                                    shared by all threads (if 4x those tiers'
                                    sizes is at most idle_bytes/2) */
    size_t idle_bytes;           /* bytes of wholly free segments a pool keeps mapped;
                                    beyond it they go back to the OS at once
                                    (default 64 MiB, env BYTEPOOL_IDLE_BYTES) */
    unsigned decay_ms;           /* wholly free segments idle this long are returned
                                    to the OS, without any further call on the pool:
                                    a background thread (one per process, started by
                                    the first pool that needs it, again in a fork()
                                    child, ended at exit) purges them within about
                                    1.5x decay_ms (default 1000, env
                                    BYTEPOOL_DECAY_MS; BP_NO_BACKGROUND or
                                    BYTEPOOL_BACKGROUND=0: only later calls do).
                                    It also takes back the free buffers cached
                                    by a live thread that made no call on the
                                    pool for decay_ms, once the kernel reports
                                    it blocked in a system call; a thread busy
                                    in other code keeps them until it is */
    unsigned flags;              /* BP_CHECKED, BP_NO_RECENT, BP_STRICT_LEN,
                                    BP_NO_BACKGROUND, BP_WIPE (env BYTEPOOL_WIPE=1
                                    adds it); env BYTEPOOL_CHECKED=1 adds
                                    BP_CHECKED, =strict adds both checks */
    size_t recent_window;        /* recent lengths kept; 0: BP_RECENT_DEFAULT */
    bp_error_fn on_error;        /* refused-call callback, may be NULL */
    void *error_ctx;             /* first argument of on_error */
    bp_ring_kind recorder_kind;  /* ring keeping recent lengths (seed
                                    WithRingQueueType); default lock-free */
    const bp_recorder *recorder; /* replaces the ring (seed WithRingQueue);
                                    must outlive the pool */
    bp_leaks leaks;              /* allocation sites for leak reports
                                    (env BYTEPOOL_LEAKS=off|sample|all) */
    size_t max_bytes;            /* budget: bytes the pool may have mapped, segment
                                    headers and oversize buffers included; 0 = no
                                    cap (env BYTEPOOL_MAX_BYTES). The bound that
                                    works: RLIMIT_AS lowered after the first pool
                                    was made does not bound tier memory (the
                                    address range is reserved at first use). At
                                    least one segment of the smallest tier
                                    (bp_pool_new refuses less). At the cap a get
                                    first unmaps idle memory, then fails with
                                    ENOMEM (counted in budget_refused, reported to
                                    on_error); bp_get_wait waits instead. While a
                                    pool is at its cap, thread caches are bypassed
                                    (about 100 ms after each refusal) so a buffer
                                    released on one thread serves a get on another.
                                    Free buffers left in the cache of a thread that
                                    no longer calls the pool still count */
    /* Added in 0.4: pool memory for the kernel and devices. Called with
     * event BP_SEGMENT_MAPPED once after a segment (a tier's, or an oversize
     * buffer's) is mapped, before any of its buffers is handed out, and with
     * BP_SEGMENT_UNMAPPING once before it goes back to the OS, after its last
     * buffer came home; [base, base + len) holds every buffer of that
     * segment. Register the range with an RDMA NIC (ibv_reg_mr), DPDK's
     * external memory, a GPU or io_uring there. It runs on whichever thread
     * maps or unmaps (a get, a final release, bp_pool_trim, the purge
     * thread, bp_pool_destroy) with the pool's lock held: it must not call
     * the pool. Pages the pool gives back inside a live segment (decay,
     * trim) stay mapped: a registration stays valid. May be NULL. */
    void (*on_segment)(void *ctx, void *base, size_t len, int event);
    void *segment_ctx; /* on_segment's ctx */
    /* Added in 0.5: where the buffers live (see bp_backing); NULL: memory
     * the library maps. A backed pool, or a BP_ADOPTED one, is detached in
     * a fork() child: gets fail with EPERM, a final release does nothing,
     * and no page of it goes back to the OS from the child. */
    const bp_backing *backing;
} bp_config;

#define BP_SEGMENT_MAPPED 1
#define BP_SEGMENT_UNMAPPING 2

/* Environment variables are parsed strictly: booleans 1/0, true/false,
 * yes/no, on/off; sizes are digits with an optional K, M or G suffix, in
 * range. An invalid value is ignored, the default is used, and one line on
 * stderr names the variable (once per variable and process). */

/* Creates a pool. cfg may be NULL (defaults). Tier sizes must be non-zero,
 * distinct, at most BP_MAX_TIER_SIZE, and at most BP_MAX_TIERS of them;
 * max_bytes, when set, at least one segment of the smallest tier (about
 * 2 MiB: a smaller budget could never serve; a BYTEPOOL_MAX_BYTES that
 * small is ignored with a line on stderr). Returns NULL with errno EINVAL
 * for a bad config, ENOMEM when out of memory. A bad config is also
 * reported to the process-wide handler (bp_set_error_handler) with op
 * "bp_pool_new" and, as its pointer, the text bp_config_error() returns.
 * The caller owns the pool and ends it with bp_pool_destroy(). Thread-safe. */
BP_API bp_pool *bp_pool_new(const bp_config *cfg);

/* Why the calling thread's last bp_pool_new refused its config, naming the
 * field and the reason ("sizes[3] duplicates sizes[1] (4096)", "unknown flag
 * 0x40"), or NULL when it did not (the thread's last bp_pool_new succeeded
 * or failed for lack of memory). Valid until the thread's next bp_pool_new.
 * Thread-safe (per thread). */
BP_API const char *bp_config_error(void);
/* bp_pool_new for a bp_config of cfg_size bytes (the macro passes
 * sizeof(bp_config)). Also EINVAL when cfg_size is below the 0.2 layout,
 * E2BIG when bytes past this library's bp_config are not all 0. */
BP_API bp_pool *bp_pool_new_sized(const bp_config *cfg, size_t cfg_size);
#define bp_pool_new(cfg) bp_pool_new_sized((cfg), sizeof(bp_config))

/* Ends the caller's ownership of the pool and returns how many buffers are
 * still referenced (leaks). Those buffers stay valid and may still be
 * retained and released from any thread; the pool's memory goes back to the
 * OS as the last of them is released. After this call the pool handle must
 * not be passed to any function. Must not run concurrently with other calls
 * that pass this pool handle. Free buffers other threads keep in their
 * caches for this pool are handed back by the background thread about a
 * second later (or by those threads at their next slow-path call or exit).
 * NULL returns 0. */
BP_API size_t bp_pool_destroy(bp_pool *pool);

/* Prewarms a tier (the seed's Alloc): makes `count` buffers of the tier
 * serving `size` ready in the pool, mapping and faulting in memory now
 * rather than on the first gets. The tier then keeps at least that many
 * buffers mapped and resident (trim and decay respect it: trim releases no
 * page of a tier with a floor); calling again with a larger
 * count raises that floor, a smaller one leaves it. Returns 0, EINVAL (NULL
 * pool, size 0 or above the largest tier; counted and reported), or ENOMEM
 * (the OS or the budget refused: the floor stays as it was and what this
 * call mapped is unmapped again). Thread-safe. */
BP_API int bp_pool_reserve(bp_pool *pool, size_t size, size_t count);

/* Returns idle memory to the OS: flushes the calling thread's caches of this
 * pool, unmaps wholly free segments (above bp_pool_reserve floors) and
 * releases the pages of free buffers of page size and above (not in tiers
 * with a floor). Returns the bytes given back. Thread-safe. */
BP_API size_t bp_pool_trim(bp_pool *pool);

/* ===================================================================== */
/* Buffers                                                               */
/* ===================================================================== */

/* Returns a buffer of at least len bytes with reference count 1, from the
 * smallest tier >= len; its capacity (bp_cap) is exactly the tier size.
 * len above the largest tier is served by a direct mapping of exactly len
 * bytes, counted as discarded. All bp_cap bytes are the caller's to use, in
 * every build (as Go's cap, as malloc_usable_size), unless BP_STRICT_LEN.
 * Buffers are 64-byte aligned, page-aligned for tiers of 4 KiB and up.
 * Contents are unspecified. Returns NULL with errno EINVAL (NULL pool or len
 * 0) or ENOMEM (the OS refused, or the budget: see bp_config.max_bytes).
 * Thread-safe. */
BP_API void *bp_get(bp_pool *pool, size_t len);

/* bp_get, but at the pool's budget it waits up to timeout_ms (-1: forever,
 * 0: not at all) for releases on any thread to make room. Returns the buffer,
 * or NULL with errno ETIMEDOUT (still no room), ENOMEM (timeout_ms 0, or the
 * OS refused), or EINVAL (as bp_get, or timeout_ms below -1). A refusal by
 * the budget is counted once in budget_refused and reported once to
 * on_error, as op "bp_get_wait" with the errno returned. Thread-safe. */
BP_API void *bp_get_wait(bp_pool *pool, size_t len, int timeout_ms);

/* bp_get, with every byte of the capacity zero (as calloc). Free of cost
 * when the buffer's memory is known to be fresh from the OS (a slot never
 * handed out since its segment was mapped, or a free buffer whose pages went
 * back to the OS: tracked per segment, never guessed); a memset otherwise.
 * Tiers of a page and up take the pool lock to find a fresh buffer (no
 * thread cache); smaller ones are a bp_get and a memset. Errors as bp_get
 * (op "bp_get_zeroed"). Thread-safe. */
BP_API void *bp_get_zeroed(bp_pool *pool, size_t len);

/* Makes mem (len bytes the caller owns: a mapped file, a decoder's frame,
 * another allocator's block; any alignment and length) a refcounted buffer
 * with count 1, and returns mem. bp_retain, bp_retain_n, bp_release,
 * bp_release_n, bp_refcount, bp_cap and bp_base work on it and on any
 * pointer inside it as on a pool buffer (bp_put does not: it has no pool).
 * When the last reference goes, free_fn(mem, ctx) runs once, on the thread
 * of that release, and the range is no buffer any more. Wrapped buffers
 * take slower paths than pool buffers (a table under one lock); pool
 * buffers pay nothing for them. Returns NULL with errno EINVAL (mem or
 * free_fn NULL, len 0, a range that wraps around, or one that touches
 * pool memory: op BP_OP_WRAP_POOL), EEXIST (it overlaps a wrapped range;
 * ranges may share a page) or ENOMEM. Thread-safe. */
#define BP_OP_WRAP_POOL "bp_wrap: pool memory"
BP_API void *bp_wrap(void *mem, size_t len, void (*free_fn)(void *mem, void *ctx), void *ctx);

/* Added in 0.5. Makes a segment in a BP_ADOPTED pool for the buffers *d
 * describes, whose memory the program maps: map(ctx, addr, len) must map
 * len bytes (whole pages) readable at exactly addr (MAP_FIXED) and return 0
 * or an errno value. The segment sits in the library's address map, so
 * bp_retain, bp_release, bp_release_n, bp_refcount, bp_cap, bp_base and
 * interior pointers work on its buffers; every count starts at 0 (free)
 * and a buffer comes alive with bp_claim. Returns the first buffer's
 * address; NULL with errno EINVAL (bad pool or desc: size 0, stride under
 * size or not a multiple of 64, nslots 0, over 4 MiB of buffers unless
 * nslots is 1), EPERM (not a BP_ADOPTED pool, or a fork() child), ENOMEM,
 * or map's error. Adopted segments stay until bp_pool_destroy, which unmaps
 * those whose buffers are all free (the others when their last goes).
 * Thread-safe. */
BP_API void *bp_segment_adopt(bp_pool *pool, const bp_segment_desc *d,
                              int (*map)(void *ctx, void *addr, size_t len), void *ctx);

/* Added in 0.5. Brings the free buffer containing p, in a segment of a
 * BP_ADOPTED pool, to count 1 (its caller holds that reference): the one
 * way such a buffer comes alive. 0; EBUSY when its count is not 0; EINVAL
 * for anything else (not inside such a buffer); EPERM in a fork() child.
 * Thread-safe: of racing claims exactly one gets 0. */
BP_API int bp_claim(const void *p);

/* A buffer of pool with at least len bytes holding p's contents, as realloc
 * does for malloc: p itself when len <= bp_cap(p); otherwise a buffer from
 * the tier that serves len (oversize above the largest), holding a copy of
 * p's whole capacity, and p's reference is dropped. p NULL is bp_get. Only
 * the sole holder may grow a buffer: a buffer with other references (a
 * return watch's included) is refused with EBUSY, since their pointers
 * would dangle. p must be the buffer's start (bp_base), not an interior
 * pointer: EINVAL, as op BP_OP_GROW_INTERIOR. Returns NULL with errno
 * EINVAL (NULL pool, len 0, p not a buffer of pool), EALREADY (p is free),
 * EBUSY or ENOMEM (no new buffer: p is untouched and still the caller's).
 * Thread-safe as bp_put: the caller owns p. */
#define BP_OP_GROW_INTERIOR "bp_grow: not the buffer's start"
BP_API void *bp_grow(bp_pool *pool, void *p, size_t len);

/* END POINTERS: p + bp_cap(p) is NOT inside the buffer. In normal builds it
 * may be the first byte of the next buffer of the segment, and every call
 * below that takes "any pointer inside it" then acts on that neighbour (an
 * interior pointer cannot tell). Pass the buffer's start, or any pointer
 * below its end; bp_base() finds the start. Checked mode leaves a guard gap
 * after every buffer, so there a one-past-the-end pointer is refused with
 * EINVAL and reported. */

/* Drops one reference of the buffer containing p (any pointer inside it);
 * at zero the buffer goes back to the pool. Returns 0, EINVAL (NULL pool,
 * p NULL, foreign, or of another pool) or EALREADY (the buffer is free).
 * This is the owner's call: when it drops the only reference it takes no
 * atomic read-modify-write (as free() does not), so two threads putting the
 * same buffer at once is undefined outside checked mode (which catches it:
 * "double release"). References shared between threads are dropped with
 * bp_release. Thread-safe otherwise. */
BP_API int bp_put(bp_pool *pool, void *p);

/* Adds one reference to the buffer containing p (any pointer inside it) and
 * returns p; returns NULL with errno EINVAL (p not in a buffer of any pool),
 * EALREADY (the buffer is free) or EOVERFLOW. Thread-safe. */
BP_API void *bp_retain(void *p);

/* Drops one reference like bp_put, finding the pool from the address (any
 * pointer inside the buffer: see END POINTERS). Every decrement, the final
 * one included, is one atomic read-modify-write, so of two threads racing
 * to release the last reference exactly one succeeds and the other gets
 * EALREADY, and a bp_retain racing the final release either fails or holds
 * a real reference. Returns 0, EINVAL or EALREADY. Thread-safe. */
BP_API int bp_release(void *p);

/* Adds n references at once to the buffer containing p (any pointer inside
 * it) with one atomic read-modify-write, as a producer does before handing
 * one buffer to n consumers. Returns p; NULL with errno EINVAL (p not in a
 * buffer of any pool), EALREADY (the buffer is free) or EOVERFLOW (the count
 * would pass its limit, 2^29 - 2): then nothing changed. n == 0 changes
 * nothing and returns p when the buffer is live. Thread-safe. */
BP_API void *bp_retain_n(void *p, size_t n);

/* Drops n references at once, like n calls of bp_release: when they are the
 * last ones the buffer goes back to its pool (the final drop is
 * bp_release's, so a racing retain either fails or holds). Returns 0,
 * EINVAL (p not in a buffer of any pool, or n larger than its count: then
 * nothing changed), or EALREADY (the buffer is free). n == 0 changes
 * nothing. Thread-safe. */
BP_API int bp_release_n(void *p, size_t n);

/* RETURN WATCHES. A component that lends a buffer out (an io_uring ring
 * giving completions to a program, a cache handing entries to readers)
 * keeps one reference and needs to know when every borrower is done, from
 * whichever thread drops the last borrowed reference, without polling the
 * count. A watch tells it: the buffer's next drop to one reference calls
 * w->fn(w, start), once, on the thread whose bp_release (or bp_put,
 * bp_release_n) made that drop, before the call returns. fn runs inside
 * that call: keep it short, non-blocking and lock-free (as pushing onto a
 * lock-free list); it must not drop the remaining reference, which is the
 * watcher's. Watched buffers take the slow paths of retain and release
 * (a CAS each); unwatched ones pay nothing. */
typedef struct bp_watcher bp_watcher;
struct bp_watcher {
    void (*fn)(bp_watcher *w, void *buf); /* buf: the buffer's start */
};

/* Arms w on the buffer containing p (any pointer inside it). The caller
 * holds one reference, the one that remains when fn runs. Returns 0;
 * ENOENT (the count is 1 already: nothing to wait for, nothing armed),
 * EBUSY (the buffer has a watch already), ENOMEM, or EINVAL (w or w->fn
 * NULL, p not inside a live buffer). w must stay valid until fn has run or
 * bp_unwatch has returned 0. Thread-safe. */
BP_API int bp_watch(void *p, bp_watcher *w);

/* As bp_watch, but the watch is the caller's own: bp_unwatch refuses it
 * (EPERM) and only bp_unwatch_owned with the same w disarms it. For a
 * component that lends buffers and must know whether its watcher will run
 * (libbytepool_uring's rings use it). w must not have its lowest address bit
 * set (any real object's address qualifies). Thread-safe. */
BP_API int bp_watch_owned(void *p, bp_watcher *w);

/* Disarms the watch on the buffer containing p. The caller need not hold a
 * reference: the call pins the buffer while it works, so a racing final
 * release cannot free it underneath (if the buffer's last other reference
 * goes meanwhile, the buffer goes home on this thread when the call
 * returns). Returns 0 (disarmed: fn will not run), EALREADY (no watch is
 * armed: it never was, it is being armed, or it fired, maybe on another
 * thread at this moment: its fn runs or has run), EPERM (the watch was
 * armed with bp_watch_owned: only its owner disarms it) or EINVAL (p not
 * inside a live buffer). Thread-safe. */
BP_API int bp_unwatch(void *p);

/* Disarms the watch on the buffer containing p only if w is the armed
 * watcher (armed with bp_watch or bp_watch_owned). Returns 0 (disarmed: fn
 * will not run), EALREADY (no watch is armed, or w's fired: its fn runs or
 * has run), EPERM (another watcher is armed; nothing changes) or EINVAL
 * (w NULL, p not inside a live buffer). Thread-safe, as bp_unwatch. */
BP_API int bp_unwatch_owned(void *p, bp_watcher *w);

/* A count handle: the lookup from a pointer to its count done once, for
 * the loop that hands one buffer to many holders (each call below is then
 * one atomic on the count, where bp_retain/bp_release find the count from
 * the pointer every time). What it gives up: outside checked mode a forged
 * handle, or a stale one (its buffer freed and handed out again), is
 * undefined, as a pointer to freed memory is; in checked pools such a
 * handle aborts with a message (naming no live segment). A freed buffer is
 * refused with EALREADY in every mode. The handle is valid while its holder
 * holds a reference; any thread may use it. */
typedef struct bp_ref {
    void *h; /* opaque */
} bp_ref;

/* The handle of the live buffer containing p (any pointer inside it), with
 * every check bp_retain makes; {NULL} with errno EINVAL (counted and
 * reported) when p is not inside a live buffer. Takes no reference.
 * Thread-safe. */
BP_API bp_ref bp_ref_of(const void *p);

/* +1 (or +n) reference through the handle: 0, EALREADY (the buffer is
 * free), EOVERFLOW (the count would pass 2^29 - 2) or EINVAL (NULL handle);
 * refusals are counted and reported as bp_retain's are. Thread-safe. */
BP_API int bp_ref_retain(bp_ref r);
BP_API int bp_ref_retain_n(bp_ref r, size_t n);

/* -1 reference through the handle; the last sends the buffer home, as
 * bp_release (of racing final releases one wins, the other gets EALREADY).
 * Returns 0, EALREADY or EINVAL (NULL handle). Thread-safe. */
BP_API int bp_ref_release(bp_ref r);

/* n buffers of at least len bytes each into out[0..n), all or nothing (as
 * DPDK's rte_mempool_get_bulk): returns 0, or an errno value with nothing
 * held (the entries of out it had filled are set back to NULL): EINVAL
 * (NULL pool, len 0, out NULL with n > 0) or ENOMEM. Buffers taken before a failure are put back,
 * so the statistics count them as a get and a put each. Thread-safe. */
BP_API int bp_get_bulk(bp_pool *pool, size_t len, void **out, size_t n);

/* bp_put of each of ps[0..n). Every pointer is put, refused or not; a
 * refused one is counted and reported as bp_put's refusals are. Returns 0,
 * or the first error: EINVAL (also for ps NULL with n > 0) or EALREADY.
 * The owner's call, as bp_put. */
BP_API int bp_put_bulk(bp_pool *pool, void **ps, size_t n);

/* The reference count of the buffer containing p; 0 when p is not inside a
 * live buffer. A snapshot: other threads may change it. It never touches
 * unmapped memory, whatever p is and whatever other threads free meanwhile
 * (a freed segment's header stays readable, as zeros). Thread-safe. */
BP_API size_t bp_refcount(const void *p);

/* Bytes from p to the end of the live buffer containing p; 0 when p is not
 * inside a live buffer. Like bp_refcount, it never touches unmapped memory.
 * Thread-safe. */
BP_API size_t bp_cap(const void *p);

/* The start of the live buffer containing p (p itself for a start); NULL
 * with errno EINVAL when p is not inside a live buffer. A query: nothing is
 * counted or reported. Thread-safe. */
BP_API void *bp_base(const void *p);

/* Words for a refused call's error, given the operation as on_error gets
 * it: "double release (the buffer is already free)" for EALREADY from
 * bp_put/bp_release, and so on. A static string; never NULL. */
BP_API const char *bp_error_name(int err, const char *op);

/* ===================================================================== */
/* Statistics                                                            */
/* ===================================================================== */

/* The statistics, listed once: each X(field, metric, type, help) becomes a
 * field of bp_stats / bp_tier_stats, a Prometheus family bytepool_<metric>
 * of the given type, and a key of the detailed JSON. */
#define BP_POOL_STAT_FIELDS(X)                                                                     \
    X(total_get, gets, counter, "Gets served by a tier (seed total_get)")                          \
    X(total_put, puts, counter, "Buffers returned to a tier (seed total_put)")                     \
    X(discarded, discarded, counter, "Oversize gets plus oversize final releases")                 \
    X(hits, cache_hits, counter, "Gets served from a thread cache")                                \
    X(refused, refused, counter, "Calls refused for bad input")                                    \
    X(outstanding, outstanding_buffers, gauge, "Buffers referenced now, oversize included")        \
    X(bytes_live, live_bytes, gauge, "Capacity of the referenced buffers")                         \
    X(bytes_idle, idle_bytes, gauge, "Capacity of free buffers kept for reuse")                    \
    X(bytes_mapped, mapped_bytes, gauge, "Bytes mapped from the OS, headers included")             \
    X(segments, segments, gauge, "Segments mapped, oversize buffers included")                     \
    X(os_returned, os_returned_bytes, counter, "Bytes given back to the OS")                       \
    X(max_bytes, budget_bytes, gauge, "The memory budget (max_bytes); 0 for none")                 \
    X(budget_refused, budget_refused, counter, "Gets refused at the memory budget")

#define BP_TIER_STAT_FIELDS(X)                                                                     \
    X(get, tier_gets, counter, "Buffers handed out by the tier")                                   \
    X(put, tier_puts, counter, "Buffers that came back to the tier")                               \
    X(hits, tier_cache_hits, counter, "Gets of the tier served from a thread cache")               \
    X(live, tier_live_buffers, gauge, "Buffers of the tier referenced now")                        \
    X(carved, tier_buffers, gauge, "Buffers of the tier that exist, live or idle")

#define BP_STAT_DECLARE_(field, metric, type, help) uint64_t field;

/* bp_tier_stats is an array element of bp_stats and never grows: new
 * per-tier figures come as a new array appended to bp_stats. New pool-wide
 * figures are appended after tiers[] (BP_POOL_STAT_FIELDS stays as it is). */
typedef struct bp_tier_stats {
    size_t size; /* the tier size in bytes */
    BP_TIER_STAT_FIELDS(BP_STAT_DECLARE_)
} bp_tier_stats;

typedef struct bp_stats {
    BP_POOL_STAT_FIELDS(BP_STAT_DECLARE_)
    size_t ntiers;                     /* entries used in tiers[] */
    bp_tier_stats tiers[BP_MAX_TIERS]; /* ascending size */
} bp_stats;

/* Fills *out with a snapshot of the pool's statistics. Counters are summed
 * over threads, so a snapshot taken during traffic is approximate. Returns 0
 * or EINVAL (NULL argument). Thread-safe. */
BP_API int bp_pool_stats(bp_pool *pool, bp_stats *out);
/* bp_pool_stats into a bp_stats of out_size bytes: fills what both layouts
 * have, zeroes the rest. EINVAL also when out_size is below the 0.2 layout. */
BP_API int bp_pool_stats_sized(bp_pool *pool, bp_stats *out, size_t out_size);
#define bp_pool_stats(pool, out) bp_pool_stats_sized((pool), (out), sizeof(bp_stats))

/* Copies up to max tier sizes, ascending, to out (the seed's
 * GetAvailableSizes) and returns the tier count; out may be NULL when max is
 * 0. NULL pool returns 0. Thread-safe. */
BP_API size_t bp_pool_sizes(const bp_pool *pool, size_t *out, size_t max);

/* The number of discarded (oversize) operations (seed GetDiscardedCount).
 * NULL pool returns 0. Thread-safe. */
BP_API uint64_t bp_pool_discarded(const bp_pool *pool);

/* Copies the most recent requested lengths, oldest first, to out and returns
 * how many were copied: every get with len > 0, oversize included, up to the
 * pool's window (default 256). When max is smaller than what is kept, the
 * newest max lengths. Order is exact within a thread; across threads it is
 * the order in which threads published their batches. Thread-safe. */
BP_API size_t bp_pool_recent_lengths(bp_pool *pool, size_t *out, size_t max);

/* The statistics as JSON with exactly the seed's GetPoolStats keys:
 * {"pools":{"<size>":{"get":N,"put":N},...},"discarded":N,"total_get":N,
 *  "total_put":N,"recent_lengths":[...]}. Returns a malloc'd string the
 * caller frees, or NULL with errno EINVAL or ENOMEM. Thread-safe. */
BP_API char *bp_pool_stats_json(bp_pool *pool);

/* Writes the pool's outstanding buffers to out, grouped by allocation site
 * (backtrace) with counts and bytes, largest first, like Netty's leak
 * detector. Sites are known for the buffers sampled under the pool's leaks
 * setting; the rest are counted as unsampled. bp_pool_destroy writes the
 * same report to stderr when leaks are tracked and buffers remain. Returns
 * the number of outstanding buffers; 0 for a NULL argument. Thread-safe. */
BP_API size_t bp_pool_report_leaks(bp_pool *pool, FILE *out);

/* "Who holds my memory": the pool's outstanding buffers with a known
 * allocation site (sampled under its leaks setting: BP_LEAKS_ALL or FAIL
 * for every one) as a heap profile in pprof's format (profile.proto,
 * gzipped; sample types inuse_objects/count and inuse_space/bytes, frames
 * named with dladdr: link programs with -rdynamic for their own names), for
 * `go tool pprof -top FILE` or `pprof -http`. Writes to out, which the
 * caller owns. Returns 0, EINVAL (NULL argument), ENOMEM or EIO (a write
 * failed). Thread-safe. */
BP_API int bp_pool_profile(bp_pool *pool, FILE *out);

/* The same samples as folded stacks for flame graphs: one line per site,
 * "root;...;leaf bytes". Returns as bp_pool_profile. Thread-safe. */
BP_API int bp_pool_profile_folded(bp_pool *pool, FILE *out);

/* Process-wide handler for refused calls that name no pool: bp_retain or
 * bp_release of a pointer the library does not own, bp_put or
 * bp_objpool_put with a NULL pool, bp_get with a NULL pool, and bp_pool_new
 * of a bad config (ptr is then the text of bp_config_error()). (bp_refcount
 * and bp_cap are queries: they return 0 and report nothing.) NULL removes
 * the handler. Returns the previous one. Thread-safe. */
BP_API bp_error_fn bp_set_error_handler(bp_error_fn fn, void *ctx);

/* Refused calls that could not be charged to any pool, process-wide. */
BP_API uint64_t bp_refused_unowned(void);

/* ===================================================================== */
/* Exports: expvar, Prometheus, tier advice                              */
/* ===================================================================== */

/* Publishes the pool in the process-wide expvar registry as
 * "<prefix>pool_stats" (the seed-shaped JSON, like the seed's Expvar) and
 * "<prefix>pool_detail" (everything in bp_stats, per tier, the recent
 * lengths and the tier advice). Returns 0, EINVAL (NULL pool or prefix, a
 * pool already published) or EEXIST (the name is taken, as Go's expvar
 * refuses duplicates). bp_pool_destroy unpublishes. Thread-safe. */
BP_API int bp_expvar_publish(bp_pool *pool, const char *prefix);

/* Removes the pool from the registry: 0 or ENOENT. Thread-safe. */
BP_API int bp_expvar_unpublish(bp_pool *pool);

/* Publishes a variable computed at every read of the document (the seed's
 * expvar.Func): fn(ctx) returns a malloc'd JSON value, or NULL for null; it
 * runs on the reading thread with the registry locked, so it must not call
 * the bp_expvar functions, and it must be safe against the code that
 * changes what it reports. Names share one namespace with the pools'
 * variables. Returns 0, EINVAL (NULL name or fn, name not UTF-8) or EEXIST.
 * Thread-safe. libbytepool_uring publishes its rings this way. */
BP_API int bp_expvar_publish_func(const char *name, char *(*fn)(void *ctx), void *ctx);

/* Removes a function variable (also one of bp_expvar_publish_metrics): 0
 * or ENOENT. Thread-safe; after it returns, fn (and metrics) is not running
 * and is not called again. */
BP_API int bp_expvar_unpublish_func(const char *name);

/* One number of a function variable for Prometheus. name and help are not
 * copied: they must stay valid while the variable is published (string
 * literals). Its layout is frozen (docs/abi.md). */
typedef struct bp_metric {
    const char *name; /* the family is bytepool_<name>: [a-z_][a-z0-9_]*, 1..64 characters */
    const char *help; /* one line */
    int counter;      /* nonzero: a counter (the family gets _total); 0: a gauge */
    uint64_t value;
} bp_metric;
#define BP_METRICS_MAX 32    /* numbers every variable may give (0.5: cap is at least this) */
#define BP_METRICS_ROOM 1024 /* added in 0.5: the cap this library passes */

/* bp_expvar_publish_func whose variable also has numbers in
 * bp_prometheus_all (and so /metrics): metrics(ctx, out, cap), cap at
 * least BP_METRICS_MAX (this library passes BP_METRICS_ROOM),
 * fills out[] and returns how many it filled. Each becomes a series
 * bytepool_<name>{var="<variable name>"}; since 0.5 a name may end in one
 * label, "held{peer=\"3\"}" (label [a-z_]+, value [A-Za-z0-9_.-]*), which
 * joins var: bytepool_held{var="...",peer="3"}. A family several variables give
 * is written once, with the help and type of the first. A number whose
 * name is invalid, is a pool family's, or whose type differs from the
 * family's is left out. metrics runs as fn does: on the reading thread,
 * with the registry locked. Returns 0, EINVAL (NULL name, fn or metrics,
 * name not UTF-8) or EEXIST. Thread-safe. */
BP_API int bp_expvar_publish_metrics(const char *name, char *(*fn)(void *ctx),
                                     size_t (*metrics)(void *ctx, bp_metric *out, size_t cap),
                                     void *ctx);

/* The whole /debug/vars document: {"cmdline":[...], then every published
 * variable}. malloc'd, the caller frees; NULL with errno ENOMEM. */
BP_API char *bp_expvar_json(void);

/* bp_pool_profile (folded 0) or bp_pool_profile_folded (folded 1) over
 * every pool published with bp_expvar_publish, in one profile: what the
 * HTTP endpoint serves at /debug/pprof/heap. Returns as bp_pool_profile
 * (EINVAL: out NULL). Thread-safe. */
BP_API int bp_expvar_profile(FILE *out, int folded);

/* The pool's statistics in the Prometheus text exposition format (0.0.4):
 * families bytepool_<metric> with HELP and TYPE, label pool="name" (escaped)
 * and, per tier, tier="<size>". malloc'd; NULL with errno EINVAL/ENOMEM. */
BP_API char *bp_pool_stats_prometheus(bp_pool *pool, const char *name);

/* The same for every published pool (pool label = its prefix), each family
 * once, then the numbers of the variables published with
 * bp_expvar_publish_metrics. malloc'd; NULL with errno ENOMEM.
 * Thread-safe. */
BP_API char *bp_prometheus_all(void);

/* Everything bp_stats holds, per tier, the recent lengths and the tier
 * advice, as one JSON object. malloc'd; NULL with errno EINVAL/ENOMEM. */
BP_API char *bp_pool_detail_json(bp_pool *pool);

/* A tier set proposed from the recorded lengths. Slack is the sum over the
 * recorded lengths of (capacity served - length); waste is the slack the
 * program does not use: all of it, unless BP_ADVICE_SLACK_USED says the
 * program fills buffers past the length it asked for. Lengths above the
 * largest tier count 0 under the current tiers (they are served exactly). */
typedef struct bp_advice {
    size_t ntiers;              /* tiers proposed */
    size_t tiers[BP_MAX_TIERS]; /* ascending */
    uint64_t samples;           /* recorded lengths used */
    uint64_t waste_current;     /* bytes wasted by the pool's tiers */
    uint64_t waste_advised;     /* bytes the proposal would waste */
    /* 0.3 */
    uint64_t slack_current; /* bytes past the lengths under the pool's tiers */
    uint64_t slack_advised; /* and under the proposal */
} bp_advice;

/* bp_pool_advice_sized flags */
#define BP_ADVICE_SLACK_USED                                                                       \
    0x1u /* the program uses bytes past the length it asked for (it fills                          \
            buffers up to bp_cap): slack is not waste */

/* Proposes at most max_tiers tiers (1..BP_MAX_TIERS; 0 means the pool's
 * tier count) minimising the slack over the recent lengths. The tiers are
 * ones a person would choose: multiples of 64 bytes, of 4096 from 4 KiB up
 * (the strides the pool lays buffers out at anyway). An exact dynamic
 * program over the distinct aligned lengths (the optimal aligned tiers are
 * always rounded observed lengths). Returns 0, EINVAL (NULL argument, an
 * unknown flag) or ENOMEM. Thread-safe. */
BP_API int bp_pool_advice(bp_pool *pool, size_t max_tiers, bp_advice *out);
/* bp_pool_advice with flags (BP_ADVICE_SLACK_USED) into a bp_advice of
 * out_size bytes (as bp_pool_stats_sized). */
BP_API int bp_pool_advice_sized(bp_pool *pool, size_t max_tiers, unsigned flags, bp_advice *out,
                                size_t out_size);
#define bp_pool_advice(pool, max_tiers, out)                                                       \
    bp_pool_advice_sized((pool), (max_tiers), 0, (out), sizeof(bp_advice))

/* The tiers of bp_pool_advice, copied to out (room for max_tiers); returns
 * their count, 0 when nothing was recorded or on bad arguments. */
BP_API size_t bp_pool_advise_sizes(bp_pool *pool, size_t max_tiers, size_t *out);

/* ===================================================================== */
/* Object pool (the seed's Pool[T])                                      */
/* ===================================================================== */

/* Fixed-size objects with the buffer pool's thread caching. Objects are
 * 64-byte aligned and never poisoned (checked mode does not apply). */
typedef struct bp_objpool bp_objpool;

typedef struct bp_objpool_config {
    size_t obj_size;                     /* bytes per object, 1 .. 1 GiB */
    void (*init)(void *obj, void *arg);  /* once per object, when it is first
                                            handed out, on the getting thread,
                                            no lock held; may be NULL */
    void (*reset)(void *obj, void *arg); /* on every put, before the object is
                                            reusable; may be NULL */
    void *arg;                           /* passed to init and reset */
    size_t tcache_bytes;                 /* as in bp_config; 0: default */
} bp_objpool_config;

typedef struct bp_obj_stats {
    uint64_t get, put, hits; /* gets, puts, gets served from a thread cache */
    uint64_t live;           /* objects handed out and not put back */
    uint64_t created;        /* objects handed out for the first time (init ran) */
    uint64_t refused;        /* refused puts */
} bp_obj_stats;

/* Creates an object pool. NULL with errno EINVAL (NULL cfg, obj_size 0 or
 * too large) or ENOMEM. Thread-safe. */
BP_API bp_objpool *bp_objpool_new(const bp_objpool_config *cfg);
/* bp_objpool_new for a config of cfg_size bytes (as bp_pool_new_sized). */
BP_API bp_objpool *bp_objpool_new_sized(const bp_objpool_config *cfg, size_t cfg_size);
#define bp_objpool_new(cfg) bp_objpool_new_sized((cfg), sizeof(bp_objpool_config))

/* Returns an object, reused or freshly initialised; NULL with errno EINVAL
 * (NULL pool) or ENOMEM. Thread-safe. */
BP_API void *bp_objpool_get(bp_objpool *op);

/* Runs reset on obj and makes it reusable. Returns 0, EINVAL (NULL, not an
 * object of this pool, or not its start) or EALREADY (already put).
 * Thread-safe; the caller must not touch obj afterwards. Like bp_put, the
 * owner's call: two threads putting the same object at once is undefined.
 * Objects of a destroyed object pool may still be put (op stays valid for
 * that): reset runs, and the last one frees the pool. */
BP_API int bp_objpool_put(bp_objpool *op, void *obj);

/* Statistics; 0 or EINVAL. Thread-safe. */
BP_API int bp_objpool_stats(bp_objpool *op, bp_obj_stats *out);
/* bp_objpool_stats into a bp_obj_stats of out_size bytes (as
 * bp_pool_stats_sized). */
BP_API int bp_objpool_stats_sized(bp_objpool *op, bp_obj_stats *out, size_t out_size);
#define bp_objpool_stats(op, out) bp_objpool_stats_sized((op), (out), sizeof(bp_obj_stats))

/* Destroys the pool and returns how many objects are still out; their
 * memory stays valid until each is put back with bp_objpool_put(op, obj).
 * NULL returns 0. */
BP_API size_t bp_objpool_destroy(bp_objpool *op);

#ifdef __cplusplus
}
#endif
#endif /* BYTEPOOL_H */
