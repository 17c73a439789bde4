/* SPDX-License-Identifier: MIT */
/*
 * shm.h - libbytepool_shm's own declarations: what lies in shared memory,
 * the handle's bits, and each end's private state. Never installed.
 *
 * Shared memory, and who writes it (one writer per page):
 *
 *   the pool file (owner)   a superblock, the segment directory, then the
 *                           segments' buffer pages; peers map it read-only
 *   a peer's A file (owner) the peer's grant table, its delivery ring, and
 *                           the owner's ring indices; the peer maps it
 *                           read-only
 *   a peer's B file (peer)  the peer's return ring and its ring indices;
 *                           the owner maps it read-only and checks every
 *                           entry against its private grant table
 *
 * Nothing in them is a pointer or an index into a per-process table; every
 * cross-process step is one atomic store (an entry, or a ring index after
 * its entry).
 */
#ifndef BP_SHM_INT_H
#define BP_SHM_INT_H

#include "bytepool_shm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SHM_HIDDEN __attribute__((visibility("hidden")))
#define ld_acq(p) atomic_load_explicit((p), memory_order_acquire)
#define ld_rlx(p) atomic_load_explicit((p), memory_order_relaxed)
#define st_rel(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define st_rlx(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)

#define SHM_MAGIC UINT64_C(0x31304d4853504221) /* "!BPSHM01" */
#define SHM_VERSION 1u
#define SHM_DIR_MAX 16384u /* segments in one pool: 14 bits of a grant entry */

/* ---- the pool file ---------------------------------------------------------- */

typedef struct shm_dir { /* one segment's buffers: immutable once published */
    uint64_t file_off;   /* where its pages start in the pool file */
    uint64_t size, stride;
    uint32_t nslots, tier;
} shm_dir;

typedef struct shm_super {
    uint64_t magic;
    uint32_t version, page;
    uint64_t dir_off, data_off;             /* the directory; the first segment's pages */
    _Alignas(64) _Atomic uint64_t ndir;     /* entries published: each before the count */
    _Alignas(64) _Atomic uint32_t sleeping; /* wake the owner on every return: it waits for
                                               them (a close, or no service thread) */
} shm_super;

/* ---- a peer's files ------------------------------------------------------------ */

typedef struct shm_del { /* one delivery: written before del_tail moves past it */
    uint64_t handle, len;
} shm_del;

typedef struct shm_a { /* owner-written */
    uint64_t magic;
    uint32_t cap, slot;
    _Alignas(64) _Atomic uint64_t del_tail; /* deliveries published */
    _Alignas(64) _Atomic uint64_t ret_head; /* returns the owner has taken */
    _Atomic uint32_t closing;               /* the pool is closing: no more deliveries */
    /* then: _Atomic uint64_t grant[cap]; shm_del del[cap] */
} shm_a;

typedef struct shm_b {                      /* peer-written */
    _Alignas(64) _Atomic uint64_t ret_tail; /* returns published */
    _Alignas(64) _Atomic uint64_t del_head; /* deliveries taken */
    _Atomic uint32_t sleeping;              /* the peer is about to wait in recv */
    /* then: _Atomic uint64_t ret[cap] */
} shm_b;

#define SHM_A_HDR 192
#define SHM_B_HDR 192
_Static_assert(sizeof(shm_a) <= SHM_A_HDR && sizeof(shm_b) <= SHM_B_HDR, "ring headers grew");

static inline _Atomic uint64_t *shm_a_grants(shm_a *a) {
    return (_Atomic uint64_t *)((char *)a + SHM_A_HDR);
}
static inline shm_del *shm_a_dels(shm_a *a) { return (shm_del *)(shm_a_grants(a) + a->cap); }
static inline _Atomic uint64_t *shm_b_rets(shm_b *b) {
    return (_Atomic uint64_t *)((char *)b + SHM_B_HDR);
}
static inline size_t shm_a_bytes(uint32_t cap) {
    return SHM_A_HDR + (size_t)cap * (sizeof(uint64_t) + sizeof(shm_del));
}
static inline size_t shm_b_bytes(uint32_t cap) {
    return SHM_B_HDR + (size_t)cap * sizeof(uint64_t);
}

/* ---- grant entries, returns and handles ---------------------------------------
 * A grant entry (A's table, owner-written): bit 63 granted, then the
 * segment's directory index, the slot in it, and the grant's generation.
 * A return (B's ring, peer-written): bit 63, the generation, the grant's
 * index. A handle: the recipient's slot (never 0), the grant's index, its
 * generation, the offset inside the buffer. */
#define SHM_GEN_BITS 18
#define SHM_GEN_MASK ((1u << SHM_GEN_BITS) - 1)
#define SHM_LIVE (UINT64_C(1) << 63)

static inline uint64_t shm_entry(uint32_t gen, uint32_t dir, uint32_t slot) {
    return SHM_LIVE | (uint64_t)slot << 32 | (uint64_t)dir << SHM_GEN_BITS | gen;
}
static inline uint32_t shm_entry_gen(uint64_t e) { return (uint32_t)e & SHM_GEN_MASK; }
static inline uint32_t shm_entry_dir(uint64_t e) { return (uint32_t)(e >> SHM_GEN_BITS) & 0x3fff; }
static inline uint32_t shm_entry_slot(uint64_t e) { return (uint32_t)(e >> 32) & 0xffff; }

static inline uint64_t shm_ret(uint32_t gi, uint32_t gen) {
    return SHM_LIVE | (uint64_t)gen << 16 | gi;
}
static inline uint32_t shm_ret_gi(uint64_t r) { return (uint32_t)r & 0xffff; }
static inline uint32_t shm_ret_gen(uint64_t r) { return (uint32_t)(r >> 16) & SHM_GEN_MASK; }
/* peer_cap 65536: index 65535 and 16 bits; anything else set is junk */
static inline bool shm_ret_ok(uint64_t r) {
    return (r & SHM_LIVE) && !(r >> (16 + SHM_GEN_BITS) & 0x1fffffff);
}

static inline bp_shm_handle shm_handle(uint32_t slot, uint32_t gi, uint32_t gen, uint64_t off) {
    return (uint64_t)slot | (uint64_t)gi << 6 | (uint64_t)gen << 22 | off << 40;
}
static inline uint32_t shm_h_slot(bp_shm_handle h) { return (uint32_t)h & 63; }
static inline uint32_t shm_h_gi(bp_shm_handle h) { return (uint32_t)(h >> 6) & 0xffff; }
static inline uint32_t shm_h_gen(bp_shm_handle h) { return (uint32_t)(h >> 22) & SHM_GEN_MASK; }
static inline uint64_t shm_h_off(bp_shm_handle h) { return h >> 40; }

static inline uint32_t shm_gen_next(uint32_t g) {
    g = (g + 1) & SHM_GEN_MASK;
    return g ? g : 1;
}

/* ---- the socket's messages -------------------------------------------------------- */

enum { MSG_HELLO = 1, MSG_WELCOME, MSG_REFUSED, MSG_BYE, MSG_CLOSING };
typedef struct shm_msg {
    uint32_t kind, version;
    int32_t pid, err;   /* HELLO: the peer's pid; REFUSED: why */
    uint32_t slot, gen; /* WELCOME: the peer's slot and its generation */
    uint32_t cap, page; /* WELCOME: peer_cap; the owner's page size */
    uint64_t a_bytes, b_bytes;
    uint64_t magic;
} shm_msg;

/* wire.c */
SHM_HIDDEN int shm_addr(const char *path, void *sun, unsigned *len); /* 0 or EINVAL */
SHM_HIDDEN int shm_send_msg(int sock, const shm_msg *m, const int *fds, int nfds);
/* A message and up to *nfds descriptors (CLOEXEC); 0, or an errno value
 * (EPIPE: the other end closed). Extra descriptors are closed. */
SHM_HIDDEN int shm_recv_msg(int sock, shm_msg *m, int *fds, int *nfds, int flags);
SHM_HIDDEN int shm_memfd(const char *name, size_t bytes, bool grow); /* sealed against shrinking */
SHM_HIDDEN int shm_reopen_ro(int fd);                                /* a read-only descriptor */
SHM_HIDDEN int shm_file_bytes(int fd, size_t *bytes);
SHM_HIDDEN int shm_pidfd_self(void);
SHM_HIDDEN int shm_pidfd_pid(int pidfd); /* the pid it names, or -1 */
SHM_HIDDEN void shm_wake(int efd);
SHM_HIDDEN void shm_drain(int efd);
SHM_HIDDEN uint64_t shm_now_ns(void);
SHM_HIDDEN bool shm_maps_inode(pid_t pid, uint64_t dev, uint64_t ino); /* /proc/pid/maps */

/* crash.c: BP_SHM_CRASHPOINTS builds, BYTEPOOL_SHM_CRASH=point:n */
#ifdef BP_SHM_CRASHPOINTS
SHM_HIDDEN void shm_crash_point(const char *name);
/* fuzz_shm's: called at every point instead of the environment's kill, so a
 * peer in the fuzzer's own process "dies" there (it longjmps out). */
extern void (*shm_crash_hook)(const char *name) SHM_HIDDEN;
/* Test hooks (tests/shm_model.h): the owner hears that a peer died; a peer's
 * end stops touching shared memory and lets go of its lock, as a killed
 * process would. */
SHM_HIDDEN void shm_test_peer_died(bp_shm *s, bp_shm_peer peer);
SHM_HIDDEN void shm_test_abandon(bp_shm *s);
#define SHM_CRASH(name) shm_crash_point(name)
#else
#define SHM_CRASH(name) ((void)0)
#endif

/* ---- each end's private state ---------------------------------------------------- */

typedef struct shm_seg { /* one segment of the pool as this process maps it */
    uintptr_t base;      /* its first buffer here */
    uint64_t bytes, size, stride;
    uint32_t dir, nslots;
    _Atomic uint64_t *kept; /* peer: per slot, the kept grant (a return value), 0: none */
} shm_seg;

typedef struct shm_segs { /* by base address */
    shm_seg *v;
    uint32_t n, cap;
} shm_segs;

/* shm.c: the segment holding address a (and, in *in, a's offset from the
 * start of its buffer), or NULL; a sorted insert (NULL: out of memory). */
SHM_HIDDEN shm_seg *shm_segs_find(const shm_segs *t, uintptr_t a, uint64_t *in);
SHM_HIDDEN shm_seg *shm_segs_add(shm_segs *t, const shm_seg *g);

typedef struct ogrant { /* owner's truth about one grant */
    void *buf;          /* the buffer's start; NULL: FREE */
    uint32_t gen;       /* the generation the next (or current) grant has */
    uint32_t pos;       /* its place in held[] */
} ogrant;

enum { PEER_FREE, PEER_LIVE, PEER_DETACHING, PEER_DEAD };

typedef struct opeer {
    int state;
    uint32_t gen; /* the slot's generation: bumped when it becomes FREE */
    int sock, pidfd, efd;
    pid_t pid;
    int fd_a, fd_b;
    shm_a *a;
    shm_b *b;
    uint32_t cap;
    ogrant *g;
    uint32_t *freel, nfree; /* FREE grant indices */
    uint32_t *held, nheld;  /* GRANTED grant indices, dense */
    uint64_t ret_head, del_tail;
    uint64_t granted, returned, swept, cap_refused, bad_returns;
    uint64_t died_ns;  /* when the death event was seen */
    uint64_t check_ms; /* DETACHING: when to look at its mappings again */
} opeer;

struct bp_shm {
    bool owner;
    pid_t pid;         /* the process that made it */
    unsigned fork_gen; /* shm_forks then: a fork() child is refused (shm_forked) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bp_shm_config cfg;
    int epfd;
    shm_super *sup;
    size_t sup_bytes; /* the superblock and directory, mapped */
    int pool_fd;
    uint64_t pool_dev, pool_ino;
    _Atomic bool closing;
    char *published;

    /* owner */
    bp_pool *pool;
    int listen_fd, wake_fd; /* wake_fd: peers' returns (an eventfd), the owner's to read */
    char path[108];
    bool unlink_path;
    pthread_mutex_t dir_mu; /* segments: the pool's map callback and exports */
    shm_segs segs;          /* the pool's, for exports (dir_mu) */
    uint64_t file_end;
    opeer peers[BP_SHM_MAX_PEERS + 1];
    int pending[16]; /* accepted sockets before their HELLO */
    uint64_t total_held;
    pthread_t thread;
    bool threaded, stop, orphan; /* orphan: closed with grants out; the thread ends it */
    int idle_ms;                 /* the service thread's next look at the return rings */
    bool untimed;                /* it waits with no timer (nothing out): a grant wakes it */
    bp_shm_stats st;

    /* peer */
    int sock, efd_in, efd_out; /* efd_in: deliveries (ours to read); efd_out: the owner's */
    uint32_t slot, slot_gen, cap;
    shm_a *a;
    shm_b *b;
    size_t a_bytes, b_bytes;
    bp_pool *mirror;
    shm_segs msegs;     /* mapped, by base address */
    uint32_t *by_dir;   /* per directory index: its msegs.v[] index + 1, 0: not mapped */
    uint32_t *imported; /* per grant index: the generation imported + 1 */
    uint64_t ret_tail;  /* private copy of b->ret_tail (writes under mu) */
    bool owner_gone;
    uint64_t held_refs; /* buffers with a kept grant */
    _Atomic bool dead;  /* test builds: abandoned, as if killed (shm_test_abandon) */
};

/* fork() children seen by this process (shm.c's atfork handler): a handle
 * made before the last one is its parent's. A load, where getpid() is a
 * system call (glibc caches it no more). */
extern _Atomic unsigned shm_forks SHM_HIDDEN;
static inline bool shm_forked(const bp_shm *s) { return ld_rlx(&shm_forks) != s->fork_gen; }

/* owner.c / peer.c, for shm.c */
SHM_HIDDEN size_t shm_owner_close(bp_shm *s, int timeout_ms);
SHM_HIDDEN size_t shm_owner_shutdown(bp_shm *s, int timeout_ms);
SHM_HIDDEN size_t shm_peer_close(bp_shm *s);
SHM_HIDDEN int shm_owner_poll(bp_shm *s, int timeout_ms);
SHM_HIDDEN void shm_owner_stats(bp_shm *s, bp_shm_stats *out); /* mu held */
SHM_HIDDEN void shm_peer_stats(bp_shm *s, bp_shm_stats *out);  /* mu held */

#endif /* BP_SHM_INT_H */
