/* SPDX-License-Identifier: MIT */
/*
 * track.h - the one door to memory tools. Buffers handed out are made
 * accessible for their capacity (their requested length under
 * BP_STRICT_LEN); buffers back in the pool are made
 * inaccessible, so use after release and reads past the capacity
 * are reported by AddressSanitizer (manual poisoning) and by Valgrind
 * (mempool client requests: handed out = allocated, back = freed). In
 * normal builds every macro is empty, so the fast paths carry no #ifdef.
 */
#ifndef BP_TRACK_H
#define BP_TRACK_H

#if defined(__SANITIZE_ADDRESS__)
#define BP_TRACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BP_TRACK_ASAN 1
#endif
#endif

#if defined(BP_TRACK_ASAN)
#include <sanitizer/asan_interface.h>
#define bp__asan_noaccess(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define bp__asan_access(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define bp__asan_noaccess(p, n) ((void)(p), (void)(n))
#define bp__asan_access(p, n) ((void)(p), (void)(n))
#endif

#if defined(BP_VALGRIND)
#include <valgrind/memcheck.h>
#define bp__vg_pool_new(pool) VALGRIND_CREATE_MEMPOOL((pool), 0, 0)
#define bp__vg_pool_free(pool) VALGRIND_DESTROY_MEMPOOL(pool)
#define bp__vg_alloc(pool, p, n) VALGRIND_MEMPOOL_ALLOC((pool), (p), (n))
#define bp__vg_free(pool, p) VALGRIND_MEMPOOL_FREE((pool), (p))
#define bp__vg_noaccess(p, n) VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define bp__vg_defined(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))
#else
#define bp__vg_pool_new(pool) ((void)(pool))
#define bp__vg_pool_free(pool) ((void)(pool))
#define bp__vg_alloc(pool, p, n) ((void)(pool), (void)(p), (void)(n))
#define bp__vg_free(pool, p) ((void)(pool), (void)(p))
#define bp__vg_noaccess(p, n) ((void)(p), (void)(n))
#define bp__vg_defined(p, n) ((void)(p), (void)(n))
#endif

/* A buffer leaves the pool: its whole capacity becomes usable, or only the
 * len bytes asked for under BP_STRICT_LEN (bp__usable, internal.h). Normal
 * builds evaluate nothing: the fast paths stay as they are. */
#if defined(BP_TRACK_ASAN) || defined(BP_VALGRIND)
#define track_give(pool, p, len)                                                                   \
    do {                                                                                           \
        size_t n_ = bp__usable((pool), (p), (len));                                                \
        bp__asan_access((p), n_);                                                                  \
        bp__vg_alloc((pool), (p), n_);                                                             \
    } while (0)
#else
#define track_give(pool, p, len) ((void)(pool), (void)(p), (void)(len))
#endif

/* A buffer of cap bytes comes back to the pool. */
#define track_take(pool, p, cap)                                                                   \
    do {                                                                                           \
        bp__asan_noaccess((p), (cap));                                                             \
        bp__vg_free((pool), (p));                                                                  \
    } while (0)

/* The library itself touches free memory (poison, prefault, object init). */
#define track_touch_begin(p, n)                                                                    \
    do {                                                                                           \
        bp__asan_access((p), (n));                                                                 \
        bp__vg_defined((p), (n));                                                                  \
    } while (0)
#define track_touch_end(p, n)                                                                      \
    do {                                                                                           \
        bp__asan_noaccess((p), (n));                                                               \
        bp__vg_noaccess((p), (n));                                                                 \
    } while (0)

/* Fresh segment payload: nobody may touch it until handed out. Before an
 * unmap, ASan's shadow must be cleared for the next mapping there. */
#define track_fresh(p, n) track_touch_end((p), (n))
#define track_unmap(p, n) bp__asan_access((p), (n))

#endif
