/* SPDX-License-Identifier: MIT */
/*
 * bytepool_shm.h - libbytepool_shm: one pool shared by several processes.
 *
 * One process, the owner, creates the pool, gets buffers from it with
 * bp_get and fills them. Up to 63 other processes, the peers, attach over a
 * UNIX socket, receive buffers and read them in place, and release them:
 * nothing is copied. A buffer crosses as a 64-bit handle, never a pointer.
 * Each process maps the shared pages inside its own address map, with its
 * own reference counts, so bp_retain, bp_release, bp_release_n,
 * bp_refcount, bp_cap, bp_base and interior pointers work on shared
 * buffers as on any other. Peers map the pool read-only: a write through a
 * received pointer faults.
 *
 * Every buffer sent to a peer is a grant, and every grant comes back exactly
 * once: returned when the peer's last reference to the buffer goes, or
 * swept by the owner when the peer dies, whatever instruction it died at
 * (kill -9 included). Death is a kernel event (the peer's pidfd), never a
 * timeout. The buffers live in one memfd, the rings in two small memfds
 * per peer, all passed over the socket: nothing is created in /dev/shm or
 * elsewhere but the socket path, and when every process has exited the
 * kernel has freed it all. docs/design.md ("The shared pool") has the
 * state machines and the single-writer table.
 *
 * Linux only (memfd, pidfd: 5.3 and later). Link with -lbytepool_shm
 * -lbytepool (pkg-config bytepool_shm). No call ever raises SIGPIPE, and
 * the library writes nothing to stderr: peer deaths, refusals and sweeps
 * are counted in the statistics.
 */
#ifndef BYTEPOOL_SHM_H
#define BYTEPOOL_SHM_H

#include "bytepool.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bp_shm bp_shm;   /* one process's end of a shared pool */
typedef uint64_t bp_shm_handle; /* one grant to one peer; 0 is never valid */
typedef uint32_t bp_shm_peer;   /* slot 1..63 in the low 6 bits, the slot's generation
                                   above: never names a later process in the same slot */

#define BP_SHM_MAX_PEERS 63
#define BP_SHM_MAX_TIER ((size_t)1 << 24) /* the largest tier a shared pool may have: 16 MiB */

/* bp_shm_config.flags */
#define BP_SHM_NO_THREAD 0x1u /* the owner runs no service thread: it calls bp_shm_poll */

/* on_peer events */
#define BP_SHM_ATTACHED 1 /* a peer attached */
#define BP_SHM_DETACHED 2 /* it detached in order (bp_shm_close, or its last release after) */
#define BP_SHM_DIED                                                                                \
    3 /* it died, or closed the socket and no longer maps the pool;                                \
         its grants were swept */

typedef struct bp_shm_config {
    unsigned max_peers; /* owner: 1..63; 0: 16 */
    unsigned peer_cap;  /* owner: grants one peer may hold at once, a power of two
                           1..65536; 0: 1024 */
    unsigned flags;     /* BP_SHM_NO_THREAD */
    unsigned mode;      /* owner: the socket file's mode (not abstract names); 0: 0600 */
    /* Owner only, may be NULL: a peer attached, detached or died (its grants
     * are back already). Runs on the service thread (or in bp_shm_poll) with
     * no lock held; it may call the bp_shm functions but bp_shm_close. */
    void (*on_peer)(void *ctx, bp_shm_peer peer, int event);
    void *ctx;
} bp_shm_config;

typedef struct bp_shm_peer_stats { /* owner: one per live peer */
    bp_shm_peer peer;
    int32_t pid;
    uint64_t held, granted, returned, swept, cap_refused, bad_returns;
} bp_shm_peer_stats;

typedef struct bp_shm_stats { /* owner and peer (fields that do not apply are 0) */
    uint64_t peers, attached, detached, died, sweeps, last_sweep_ns, max_sweep_ns;
    uint64_t granted, returned, swept, held, cap_refused, bad_returns; /* owner */
    uint64_t imported, surplus_returned, released;                     /* peer */
} bp_shm_stats;

/* ---- the owner ---------------------------------------------------------- */

/* Creates a shared pool and listens on path: a file system path, or "@name"
 * for the abstract socket "name". A socket file left by an owner that died
 * is taken over (connect refused, then unlink and bind). pool_cfg is the
 * pool's bp_config (NULL: defaults) but for backing, which must be NULL:
 * tiers of at most BP_SHM_MAX_TIER; BP_CHECKED works as usual. cfg may be
 * NULL (defaults). Starts the service thread (signals blocked) unless
 * BP_SHM_NO_THREAD. Returns the owner's handle, or NULL with errno EINVAL
 * (bad path or config; bp_config_error says why for pool_cfg), EADDRINUSE
 * (a live owner listens there), EACCES, ENOMEM, ENOSYS (no memfd or pidfd),
 * or another errno of socket, bind or memfd_create. Thread-safe. */
BP_API bp_shm *bp_shm_create_sized(const char *path, const bp_config *pool_cfg,
                                   size_t pool_cfg_size, const bp_shm_config *cfg, size_t cfg_size);
#define bp_shm_create(path, pool_cfg, cfg)                                                         \
    bp_shm_create_sized((path), (pool_cfg), sizeof(bp_config), (cfg), sizeof(bp_shm_config))

/* The owner's pool: get buffers with bp_get (and the other get calls), fill
 * them, then export or send them. The pool belongs to the bp_shm: never
 * bp_pool_destroy it. NULL (errno EPERM) for a peer, EINVAL for NULL.
 * Thread-safe. */
BP_API bp_pool *bp_shm_pool(bp_shm *s);

/* Grants the buffer containing p (any pointer inside it: the handle carries
 * the offset) to peer `to`, taking one reference for the grant: the caller
 * keeps its own. The caller carries the handle to the peer (its socket,
 * pipe or queue); the peer's bp_shm_import turns it into a pointer. The
 * reference comes back when the peer's last reference goes, or when it
 * dies. Returns the handle, or 0 with errno EINVAL (p is not a live buffer
 * of this pool's tiers: foreign, freed, oversize), ENOENT (no such peer, or
 * it is gone), ENOBUFS (the peer holds peer_cap grants: counted), EPIPE
 * (the pool is closing), EPERM (a peer's handle, or in a fork() child).
 * Thread-safe. */
BP_API bp_shm_handle bp_shm_export(bp_shm *s, bp_shm_peer to, const void *p);

/* bp_shm_export, then delivers (p, len) through the pool's own ring to the
 * peer, whose bp_shm_recv returns it; wakes the peer if it sleeps. len may
 * be up to bp_cap(p). Returns 0, or the errors of bp_shm_export, EINVAL
 * also for len past the buffer. Thread-safe. */
BP_API int bp_shm_send(bp_shm *s, bp_shm_peer to, const void *p, size_t len);

/* Copies up to max live peers' figures into out; returns how many peers are
 * live (possibly more than max). 0 with errno EPERM for a peer's handle.
 * Thread-safe. */
BP_API size_t bp_shm_peers_sized(bp_shm *s, bp_shm_peer_stats *out, size_t max, size_t elem_size);
#define bp_shm_peers(s, out, max) bp_shm_peers_sized((s), (out), (max), sizeof(bp_shm_peer_stats))

/* For BP_SHM_NO_THREAD owners: waits up to timeout_ms (-1: forever, 0: not
 * at all) for work and does it: accepts peers, takes back returned grants,
 * sweeps the dead. Returns the number of things done (0 when the wait
 * timed out), or -1 with errno EPERM (a peer, a service thread runs, or a
 * fork() child), EINVAL. Call it from one thread at a time. */
BP_API int bp_shm_poll(bp_shm *s, int timeout_ms);

/* ---- a peer ------------------------------------------------------------- */

/* Attaches to the pool whose owner listens on path. cfg may be NULL
 * (peers use only flags, none of which applies yet). Returns the peer's
 * handle, or NULL with errno ECONNREFUSED or ENOENT (nobody listens),
 * EBUSY (every peer slot is taken), EACCES (the owner runs as another
 * user), EPIPE (the pool is closing), EPROTO (what the owner sent is not a
 * pool this library understands), ENOSYS, ENOMEM. Thread-safe. */
BP_API bp_shm *bp_shm_attach_sized(const char *path, const bp_shm_config *cfg, size_t cfg_size);
#define bp_shm_attach(path, cfg) bp_shm_attach_sized((path), (cfg), sizeof(bp_shm_config))

/* The next buffer the owner sent, holding one reference (release it with
 * bp_release); *len is the length sent. Waits up to timeout_ms (-1:
 * forever). NULL with errno EAGAIN (timeout 0, nothing there), ETIMEDOUT,
 * EPIPE (the owner closed the pool or died, and everything it delivered
 * was received), EPERM (an owner's handle, or a fork() child), EINVAL.
 * Thread-safe. */
BP_API void *bp_shm_recv(bp_shm *s, size_t *len, int timeout_ms);

/* The buffer a handle names (with the offset it carries), holding one
 * reference for the caller. A handle is imported once. After the owner died
 * a handle it granted still imports: nobody will reuse that buffer. NULL
 * with errno EINVAL (not a handle: 0, garbage), ESTALE (a handle for
 * another process, already imported, or returned), EPIPE (this end is
 * closing: bp_shm_close), EPERM (an owner's handle, a fork() child).
 * Thread-safe. */
BP_API void *bp_shm_import(bp_shm *s, bp_shm_handle h);

/* ---- both ends ---------------------------------------------------------- */

/* A descriptor that polls readable when the owner has work for bp_shm_poll
 * (peers, returns, deaths) or a peer has deliveries or news from the owner:
 * for the caller's own event loop. Owned by s: do not close it. -1 with
 * errno EINVAL. Thread-safe. */
BP_API int bp_shm_fd(bp_shm *s);

/* Copies the statistics into out (the fields that do not apply to this end
 * are 0). 0, EINVAL. Thread-safe. */
BP_API int bp_shm_stats_sized(bp_shm *s, bp_shm_stats *out, size_t out_size);
#define bp_shm_stats(s, out) bp_shm_stats_sized((s), (out), sizeof(bp_shm_stats))

/* Publishes the shared pool as the expvar variable `name` (JSON with the
 * statistics and, for the owner, every live peer), with Prometheus families
 * bytepool_shm_* (per-peer values labelled peer="<slot>"), shown on the
 * dashboard as a card listing the peers. The owner's pool itself is
 * published with bp_expvar_publish as any pool. 0, EINVAL, EEXIST. Undone
 * by bp_shm_close. Thread-safe. */
BP_API int bp_shm_publish(bp_shm *s, const char *name);

/* Owner: the first half of bp_shm_close, leaving s valid so the program can
 * read the final statistics: stops accepting and sending, tells the peers,
 * waits up to timeout_ms (-1: forever) for the grants to come back or their
 * holders to die, and returns the grants still out. Exports and sends fail
 * with EPIPE from now on; bp_shm_close ends it (its own wait is then the
 * rest). 0 with errno EPERM for a peer or a fork() child, EINVAL.
 * Thread-safe; not against bp_shm_close. */
BP_API size_t bp_shm_shutdown(bp_shm *s, int timeout_ms);

/* Ends this process's use of the pool; s is not to be used again.
 * Owner: stops accepting and sending, tells the peers the pool is closing
 * (their bp_shm_recv says EPIPE once their queue is empty), waits up to
 * timeout_ms (-1: forever) for every grant to come back or its holder to
 * die, and returns the grants still out. Those buffers are never reused
 * while out; the pool and its memory go when the last comes back (a
 * thread keeps watching until then, BP_SHM_NO_THREAD or not).
 * Peer: returns the grants it had been sent and not yet received, and
 * returns the number of references the process still holds on shared
 * buffers; it detaches when the last is released (at once if none).
 * Not thread-safe against other calls on s. A NULL s returns 0. */
BP_API size_t bp_shm_close(bp_shm *s, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* BYTEPOOL_SHM_H */
