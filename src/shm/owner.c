/* SPDX-License-Identifier: MIT */
/*
 * owner.c - the owner's end: the pool file and its directory, peers coming
 * and going, grants out and back, and the sweep of a dead peer's grants.
 *
 * The owner's private grant table (opeer.g) is the truth; the shared copy
 * in each peer's A file is what the peer may read, written only here, one
 * 64-bit store per change. A return from a peer is a claim checked against
 * the private table: a stale, duplicate or made-up one is refused and
 * counted, never trusted. Everything here runs under s->mu; the pool's own
 * lock nests inside it (bp_retain, bp_release), and the pool calls back into
 * backing_map with only its lock held, which takes dir_mu alone.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { TAG_LISTEN = 1, TAG_WAKE, TAG_SOCK, TAG_PIDFD, TAG_PEND };
#define TAG(kind, i) ((uint64_t)(kind) << 32 | (uint32_t)(i))
#define NPENDING ((int)(sizeof(((bp_shm *)0)->pending) / sizeof(int)))
#define DETACH_CHECK_MS 50 /* a peer that closed its socket alive: how often to look again */

typedef struct event_note { /* on_peer calls, made once the lock is dropped */
    bp_shm_peer peer;
    int event;
} event_note;

typedef struct notes {
    event_note e[2 * BP_SHM_MAX_PEERS + 2];
    int n;
} notes;

static void note(notes *ns, bp_shm_peer peer, int event) {
    if (ns && ns->n < (int)(sizeof(ns->e) / sizeof(ns->e[0])))
        ns->e[ns->n++] = (event_note){peer, event};
}

static void tell(bp_shm *s, const notes *ns) {
    for (int i = 0; s->cfg.on_peer && i < ns->n; i++)
        s->cfg.on_peer(s->cfg.ctx, ns->e[i].peer, ns->e[i].event);
}

static bp_shm_peer peer_id(const bp_shm *s, uint32_t slot) {
    return slot | s->peers[slot].gen << 6;
}

static uint64_t now_ms(void) { return shm_now_ns() / 1000000u; }

/* ---- the pool file: one directory entry per segment --------------------------- */

static shm_dir *dir_at(bp_shm *s, uint64_t i) {
    return (shm_dir *)((char *)s->sup + s->sup->dir_off) + i;
}

/* The pool's bp_backing.map: the segment's buffers are the next pages of
 * the pool file, mapped shared at addr; then the directory entry, then the
 * count that publishes it. Called with the pool's lock held. */
static int backing_map(void *ctx, void *addr, size_t len, const bp_segment_desc *d) {
    bp_shm *s = ctx;
    int err = 0;
    pthread_mutex_lock(&s->dir_mu);
    uint64_t n = ld_rlx(&s->sup->ndir);
    if (n >= SHM_DIR_MAX || d->nslots > 65536 || d->size > BP_SHM_MAX_TIER)
        err = ENOSPC;
    uint64_t off = s->file_end;
    if (!err && ftruncate(s->pool_fd, (off_t)(off + len)) != 0)
        err = errno;
    if (!err && mmap(addr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, s->pool_fd,
                     (off_t)off) == MAP_FAILED)
        err = errno;
    shm_seg g = {(uintptr_t)addr,
                 (uint64_t)d->nslots * d->stride,
                 d->size,
                 d->stride,
                 (uint32_t)n,
                 d->nslots,
                 NULL};
    if (!err && !shm_segs_add(&s->segs, &g))
        err = ENOMEM;
    if (!err) {
        *dir_at(s, n) = (shm_dir){off, d->size, d->stride, d->nslots, d->tier};
        st_rel(&s->sup->ndir, n + 1);
        s->file_end = off + len;
    }
    pthread_mutex_unlock(&s->dir_mu);
    return err;
}

/* The segment holding p: its directory index, the buffer's start and slot,
 * and p's offset in it; false for anything not inside a shared buffer. */
static bool find_buffer(bp_shm *s, const void *p, uint32_t *dir, uint32_t *slot, void **buf,
                        uint64_t *off) {
    pthread_mutex_lock(&s->dir_mu);
    const shm_seg *g = shm_segs_find(&s->segs, (uintptr_t)p, off);
    bool ok = g && *off < g->size;
    if (ok) {
        *dir = g->dir;
        *slot = (uint32_t)(((uintptr_t)p - g->base) / g->stride);
        *buf = (void *)(g->base + (uint64_t)*slot * g->stride);
    }
    pthread_mutex_unlock(&s->dir_mu);
    return ok;
}

/* ---- grants ------------------------------------------------------------------- */

/* GRANTED -> FREE: the shared entry first (the commit point: the peer can no
 * longer import it), then the generation, then the reference. */
static void grant_free(bp_shm *s, opeer *pr, uint32_t gi) {
    ogrant *g = &pr->g[gi];
    void *buf = g->buf;
    st_rel(&shm_a_grants(pr->a)[gi], 0);
    g->buf = NULL;
    g->gen = shm_gen_next(g->gen);
    uint32_t last = pr->held[--pr->nheld];
    pr->held[g->pos] = last;
    pr->g[last].pos = g->pos;
    pr->freel[pr->nfree++] = gi;
    s->total_held--;
    bp_release(buf);
    if (s->total_held == 0)
        pthread_cond_broadcast(&s->cv);
}

/* One entry of a peer's return ring: FREE the grant it names if the owner's
 * own table agrees, else refuse and count it. */
static void return_one(bp_shm *s, opeer *pr, uint64_t r) {
    uint32_t gi = shm_ret_gi(r);
    if (!shm_ret_ok(r) || gi >= pr->cap || !pr->g[gi].buf || pr->g[gi].gen != shm_ret_gen(r)) {
        pr->bad_returns++;
        s->st.bad_returns++;
        return;
    }
    SHM_CRASH("owner_return_before_free");
    grant_free(s, pr, gi);
    pr->returned++;
    s->st.returned++;
}

static int take_returns(bp_shm *s, opeer *pr) {
    uint64_t tail = ld_acq(&pr->b->ret_tail), head = pr->ret_head;
    if (tail == head)
        return 0;
    if (tail - head > pr->cap) { /* the peer wrote past what it may: the newest cap only */
        pr->bad_returns++;
        s->st.bad_returns++;
        head = tail - pr->cap;
    }
    int n = 0;
    for (; head != tail; head++, n++)
        return_one(s, pr, ld_rlx(&shm_b_rets(pr->b)[head & (pr->cap - 1)]));
    pr->ret_head = head;
    st_rel(&pr->a->ret_head, head);
    return n;
}

static int take_all_returns(bp_shm *s) {
    int n = 0;
    for (uint32_t i = 1; i <= s->cfg.max_peers; i++)
        if (s->peers[i].state != PEER_FREE)
            n += take_returns(s, &s->peers[i]);
    return n;
}

static int grant(bp_shm *s, bp_shm_peer to, const void *p, bp_shm_handle *h, opeer **prp) {
    if (shm_forked(s))
        return EPERM;
    if (ld_rlx(&s->closing))
        return EPIPE;
    uint32_t slot = to & 63;
    opeer *pr = &s->peers[slot];
    if (slot == 0 || slot > s->cfg.max_peers || pr->state != PEER_LIVE || pr->gen != to >> 6)
        return ENOENT;
    uint32_t dir, idx;
    void *buf;
    uint64_t off;
    if (!p || !find_buffer(s, p, &dir, &idx, &buf, &off))
        return EINVAL;
    take_returns(s, pr); /* the sender takes its peer's returns: no wake-up needed */
    if (pr->nheld == pr->cap) {
        {
            pr->cap_refused++;
            s->st.cap_refused++;
            return ENOBUFS;
        }
    }
    /* A free buffer is refused here, before bp_retain would (checked mode
     * aborts there: a retain of a free buffer is a bug, an export of one an
     * input this call refuses). */
    if (bp_refcount(buf) == 0 || !bp_retain(buf))
        return EINVAL;
    uint32_t gi = pr->freel[--pr->nfree];
    ogrant *g = &pr->g[gi];
    g->buf = buf;
    g->pos = pr->nheld;
    pr->held[pr->nheld++] = gi;
    s->total_held++;
    if (s->untimed) { /* the service thread sleeps without a timer: now it needs one */
        s->untimed = false;
        shm_wake(s->wake_fd);
    }
    SHM_CRASH("owner_grant_before_entry");
    st_rel(&shm_a_grants(pr->a)[gi], shm_entry(g->gen, dir, idx)); /* FREE -> GRANTED */
    pr->granted++;
    s->st.granted++;
    *h = shm_handle(slot, gi, g->gen, off);
    *prp = pr;
    return 0;
}

bp_shm_handle bp_shm_export(bp_shm *s, bp_shm_peer to, const void *p) {
    if (!s || !s->owner || shm_forked(s)) { /* a fork() child: its lock may be held */
        errno = s ? EPERM : EINVAL;
        return 0;
    }
    bp_shm_handle h = 0;
    opeer *pr;
    pthread_mutex_lock(&s->mu);
    int err = grant(s, to, p, &h, &pr);
    pthread_mutex_unlock(&s->mu);
    if (err)
        errno = err;
    return err ? 0 : h;
}

int bp_shm_send(bp_shm *s, bp_shm_peer to, const void *p, size_t len) {
    if (!s || !s->owner || shm_forked(s))
        return s ? EPERM : EINVAL;
    if (p && len > bp_cap(p))
        return EINVAL;
    bp_shm_handle h;
    opeer *pr;
    pthread_mutex_lock(&s->mu);
    int err = grant(s, to, p, &h, &pr);
    if (!err) {
        uint64_t t = pr->del_tail;
        if (t - ld_acq(&pr->b->del_head) >= pr->cap) { /* only a peer not reading its ring */
            uint32_t gi = shm_h_gi(h);
            grant_free(s, pr, gi);
            pr->granted--;
            s->st.granted--;
            pr->cap_refused++;
            s->st.cap_refused++;
            err = ENOBUFS;
        } else {
            shm_a_dels(pr->a)[t & (pr->cap - 1)] = (shm_del){h, len};
            SHM_CRASH("owner_send_before_publish");
            st_rel(&pr->a->del_tail, t + 1);
            pr->del_tail = t + 1;
            atomic_thread_fence(memory_order_seq_cst); /* against the peer's sleeping flag */
            if (ld_rlx(&pr->b->sleeping))
                shm_wake(pr->efd);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return err;
}

/* ---- peers coming and going ---------------------------------------------------- */

static void epoll_add(int epfd, int fd, uint64_t tag) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void close_fd(int *fd) {
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* LIVE or DETACHING -> DEAD -> swept -> FREE with the next generation. */
static void peer_gone(bp_shm *s, uint32_t slot, bool orderly, notes *ns) {
    opeer *pr = &s->peers[slot];
    uint64_t t0 = pr->died_ns ? pr->died_ns : shm_now_ns();
    pr->state = PEER_DEAD;
    take_returns(s, pr); /* what it gave back before it went is returned, not swept */
    uint64_t n = pr->nheld;
    while (pr->nheld)
        grant_free(s, pr, pr->held[pr->nheld - 1]);
    pr->swept += n;
    s->st.swept += n;
    s->st.sweeps++;
    uint64_t took = shm_now_ns() - t0;
    s->st.last_sweep_ns = took;
    if (took > s->st.max_sweep_ns)
        s->st.max_sweep_ns = took;
    if (pr->sock >= 0)
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, pr->sock, NULL);
    if (pr->pidfd >= 0)
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, pr->pidfd, NULL);
    close_fd(&pr->sock);
    close_fd(&pr->pidfd);
    close_fd(&pr->efd);
    munmap(pr->a, shm_a_bytes(pr->cap));
    munmap((void *)pr->b, shm_b_bytes(pr->cap));
    pr->a = NULL;
    pr->b = NULL;
    note(ns, peer_id(s, slot), orderly ? BP_SHM_DETACHED : BP_SHM_DIED);
    if (orderly)
        s->st.detached++;
    else
        s->st.died++;
    s->st.peers--;
    pr->state = PEER_FREE;
    pr->gen = (pr->gen + 1) & 0x3ffffff;
    pr->died_ns = 0;
}

static bool pidfd_dead(int pidfd) {
    struct pollfd pf = {pidfd, POLLIN, 0};
    return poll(&pf, 1, 0) == 1;
}

/* The peer's socket closed without a goodbye: dead if the kernel says so or
 * if it maps the pool no more (it exec'd); else look again later. */
static void socket_closed(bp_shm *s, uint32_t slot, notes *ns) {
    opeer *pr = &s->peers[slot];
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, pr->sock, NULL);
    close_fd(&pr->sock);
    pr->died_ns = shm_now_ns();
    if (pidfd_dead(pr->pidfd) || !shm_maps_inode(pr->pid, s->pool_dev, s->pool_ino)) {
        peer_gone(s, slot, false, ns);
        return;
    }
    pr->state = PEER_DETACHING;
    pr->died_ns = 0;
    pr->check_ms = now_ms() + DETACH_CHECK_MS;
}

static void check_detaching(bp_shm *s, notes *ns) {
    uint64_t now = now_ms();
    for (uint32_t i = 1; i <= s->cfg.max_peers; i++) {
        opeer *pr = &s->peers[i];
        if (pr->state != PEER_DETACHING || now < pr->check_ms)
            continue;
        pr->died_ns = shm_now_ns();
        if (pidfd_dead(pr->pidfd) || !shm_maps_inode(pr->pid, s->pool_dev, s->pool_ino))
            peer_gone(s, i, false, ns);
        else
            pr->check_ms = now + DETACH_CHECK_MS, pr->died_ns = 0;
    }
}

static void refuse_hello(int sock, int err) {
    shm_msg m = {.kind = MSG_REFUSED, .version = SHM_VERSION, .err = err, .magic = SHM_MAGIC};
    shm_send_msg(sock, &m, NULL, 0);
}

/* A free slot's files, mapped; its grant table made at the slot's first use
 * and kept (the generations must outlive the peers). */
static int peer_setup(bp_shm *s, opeer *pr, uint32_t slot) {
    uint32_t cap = s->cfg.peer_cap;
    if (!pr->g) {
        pr->g = calloc(cap, sizeof(ogrant));
        pr->freel = malloc(cap * sizeof(uint32_t));
        pr->held = malloc(cap * sizeof(uint32_t));
        if (!pr->g || !pr->freel || !pr->held)
            return ENOMEM;
        for (uint32_t i = 0; i < cap; i++)
            pr->g[i].gen = 1;
    }
    pr->cap = cap;
    pr->nfree = 0;
    for (uint32_t i = cap; i-- > 0;)
        pr->freel[pr->nfree++] = i;
    pr->nheld = 0;
    pr->ret_head = pr->del_tail = 0;
    pr->fd_a = shm_memfd("bytepool-shm-a", shm_a_bytes(cap), false);
    pr->fd_b = shm_memfd("bytepool-shm-b", shm_b_bytes(cap), false);
    pr->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pr->fd_a < 0 || pr->fd_b < 0 || pr->efd < 0)
        return errno ? errno : EMFILE;
    void *a = mmap(NULL, shm_a_bytes(cap), PROT_READ | PROT_WRITE, MAP_SHARED, pr->fd_a, 0);
    void *b = mmap(NULL, shm_b_bytes(cap), PROT_READ, MAP_SHARED, pr->fd_b, 0);
    if (a == MAP_FAILED || b == MAP_FAILED) {
        int err = errno;
        if (a != MAP_FAILED)
            munmap(a, shm_a_bytes(cap));
        if (b != MAP_FAILED)
            munmap(b, shm_b_bytes(cap));
        return err;
    }
    pr->a = a;
    pr->b = b;
    pr->a->magic = SHM_MAGIC;
    pr->a->cap = cap;
    pr->a->slot = slot;
    return 0;
}

static void peer_unsetup(opeer *pr) {
    if (pr->a)
        munmap(pr->a, shm_a_bytes(pr->cap));
    if (pr->b)
        munmap((void *)pr->b, shm_b_bytes(pr->cap));
    pr->a = NULL;
    pr->b = NULL;
    close_fd(&pr->fd_a);
    close_fd(&pr->fd_b);
    close_fd(&pr->efd);
}

/* An accepted socket's HELLO: the peer's pid, and its own pidfd, which must
 * name the process the kernel says is at the other end (SO_PEERCRED). */
static void hello(bp_shm *s, int i, notes *ns) {
    int sock = s->pending[i], fds[1] = {-1}, nfds = 1;
    shm_msg m;
    int err = shm_recv_msg(sock, &m, fds, &nfds, MSG_DONTWAIT);
    if (err == EAGAIN)
        return;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, sock, NULL);
    s->pending[i] = -1;
    struct ucred cr;
    socklen_t crlen = sizeof cr;
    if (!err && (m.kind != MSG_HELLO || nfds != 1))
        err = EPROTO;
    if (!err && getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0)
        err = errno;
    if (!err && cr.uid != geteuid())
        err = EACCES;
    if (!err && (m.version != SHM_VERSION || m.magic != SHM_MAGIC))
        err = EPROTO;
    if (!err && (cr.pid != m.pid || shm_pidfd_pid(fds[0]) != cr.pid))
        err = EPERM;
    if (!err && ld_rlx(&s->closing))
        err = EPIPE;
    uint32_t slot = 0;
    for (uint32_t k = 1; !err && k <= s->cfg.max_peers && !slot; k++)
        if (s->peers[k].state == PEER_FREE)
            slot = k;
    if (!err && !slot)
        err = EBUSY;
    opeer *pr = slot ? &s->peers[slot] : NULL;
    if (!err)
        err = peer_setup(s, pr, slot);
    int ro_pool = -1, ro_a = -1;
    if (!err) {
        ro_pool = shm_reopen_ro(s->pool_fd);
        ro_a = shm_reopen_ro(pr->fd_a);
        if (ro_pool < 0 || ro_a < 0)
            err = errno;
    }
    if (!err) {
        shm_msg w = {.kind = MSG_WELCOME,
                     .version = SHM_VERSION,
                     .slot = slot,
                     .gen = pr->gen,
                     .cap = pr->cap,
                     .page = (uint32_t)sysconf(_SC_PAGESIZE),
                     .a_bytes = shm_a_bytes(pr->cap),
                     .b_bytes = shm_b_bytes(pr->cap),
                     .magic = SHM_MAGIC};
        int out[5] = {ro_pool, ro_a, pr->fd_b, pr->efd, s->wake_fd};
        if (shm_send_msg(sock, &w, out, 5) != 0)
            err = EPIPE; /* it went away mid-attach: nothing of it is LIVE yet */
    } else {
        refuse_hello(sock, err);
    }
    close_fd(&ro_pool);
    close_fd(&ro_a);
    if (err) {
        if (pr)
            peer_unsetup(pr);
        close_fd(&fds[0]);
        close(sock);
        return;
    }
    close_fd(&pr->fd_a); /* mapped; the peer has its own */
    close_fd(&pr->fd_b);
    pr->sock = sock;
    pr->pidfd = fds[0];
    pr->pid = cr.pid;
    pr->granted = pr->returned = pr->swept = pr->cap_refused = pr->bad_returns = 0;
    pr->state = PEER_LIVE;
    epoll_add(s->epfd, sock, TAG(TAG_SOCK, slot));
    epoll_add(s->epfd, pr->pidfd, TAG(TAG_PIDFD, slot));
    s->st.attached++;
    s->st.peers++;
    note(ns, peer_id(s, slot), BP_SHM_ATTACHED);
}

static void accept_all(bp_shm *s) {
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        int i = 0;
        while (i < NPENDING && s->pending[i] >= 0)
            i++;
        if (i == NPENDING || ld_rlx(&s->closing)) {
            refuse_hello(fd, i == NPENDING ? EBUSY : EPIPE);
            close(fd);
            continue;
        }
        s->pending[i] = fd;
        epoll_add(s->epfd, fd, TAG(TAG_PEND, i));
    }
}

static void peer_message(bp_shm *s, uint32_t slot, notes *ns) {
    opeer *pr = &s->peers[slot];
    shm_msg m;
    int err = shm_recv_msg(pr->sock, &m, NULL, NULL, MSG_DONTWAIT);
    if (err == EAGAIN)
        return;
    if (!err && m.kind == MSG_BYE) {
        peer_gone(s, slot, true, ns);
        return;
    }
    if (err) /* EOF or worse */
        socket_closed(s, slot, ns);
}

/* ---- the service loop ------------------------------------------------------------- */

static int wait_ms(bp_shm *s, int timeout_ms) {
    for (uint32_t i = 1; i <= s->cfg.max_peers; i++)
        if (s->peers[i].state == PEER_DETACHING && (timeout_ms < 0 || timeout_ms > DETACH_CHECK_MS))
            return DETACH_CHECK_MS;
    return timeout_ms;
}

/* Returns do not wake the service thread: a busy stream would pay a system
 * call and a context switch per buffer. Senders take their peer's returns as
 * they send; the service thread looks at the rings itself while grants are
 * out, 1 ms after it last found some, backing off to SHM_IDLE_MAX_MS while it
 * finds none. An owner waiting for returns (a close, or one without a service
 * thread, which polls bp_shm_fd) asks to be woken by each: `sleeping`. */
#define SHM_IDLE_MAX_MS 64

int shm_owner_poll(bp_shm *s, int timeout_ms) {
    notes ns = {.n = 0};
    pthread_mutex_lock(&s->mu);
    bool wake_me = !s->threaded || ld_rlx(&s->closing);
    /* Say we want waking, then look: a peer that returns after this sees
     * the flag and wakes us (the same two steps, mirrored). */
    st_rlx(&s->sup->sleeping, wake_me);
    atomic_thread_fence(memory_order_seq_cst);
    int done = take_all_returns(s);
    int wait = done || s->stop ? 0 : wait_ms(s, timeout_ms);
    if (!wake_me && s->total_held && (wait < 0 || wait > s->idle_ms))
        wait = s->idle_ms;
    s->untimed = s->threaded && wait < 0; /* the next grant wakes it (once) */
    pthread_mutex_unlock(&s->mu);
    struct epoll_event ev[32];
    int k = epoll_wait(s->epfd, ev, 32, wait);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < k; i++) {
        uint32_t kind = (uint32_t)(ev[i].data.u64 >> 32), idx = (uint32_t)ev[i].data.u64;
        opeer *pr = idx <= BP_SHM_MAX_PEERS ? &s->peers[idx] : NULL;
        switch (kind) {
        case TAG_LISTEN:
            if (s->listen_fd >= 0)
                accept_all(s);
            break;
        case TAG_WAKE:
            shm_drain(s->wake_fd);
            break;
        case TAG_PEND:
            if (idx < (uint32_t)NPENDING && s->pending[idx] >= 0)
                hello(s, (int)idx, &ns);
            break;
        case TAG_SOCK:
            if (pr && pr->state == PEER_LIVE && pr->sock >= 0)
                peer_message(s, idx, &ns);
            break;
        case TAG_PIDFD:
            if (pr && (pr->state == PEER_LIVE || pr->state == PEER_DETACHING)) {
                pr->died_ns = shm_now_ns();
                peer_gone(s, idx, false, &ns);
            }
            break;
        }
        done++;
    }
    int back = take_all_returns(s);
    done += back;
    s->idle_ms = back ? 1 : s->idle_ms < SHM_IDLE_MAX_MS ? 2 * s->idle_ms : SHM_IDLE_MAX_MS;
    check_detaching(s, &ns);
    pthread_mutex_unlock(&s->mu);
    tell(s, &ns);
    return done;
}

int bp_shm_poll(bp_shm *s, int timeout_ms) {
    if (!s || timeout_ms < -1) {
        errno = EINVAL;
        return -1;
    }
    if (!s->owner || s->threaded || shm_forked(s)) {
        errno = EPERM;
        return -1;
    }
    return shm_owner_poll(s, timeout_ms);
}

static void teardown(bp_shm *s);

static void *service(void *arg) {
    bp_shm *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool stop = s->stop, orphan_done = s->orphan && s->total_held == 0;
        pthread_mutex_unlock(&s->mu);
        if (orphan_done) { /* closed with grants out: the last is back */
            teardown(s);
            return NULL;
        }
        if (stop)
            return NULL;
        shm_owner_poll(s, -1);
    }
}

static int start_thread(bp_shm *s) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits: no signal lands there */
    pthread_mutex_lock(&s->mu);
    s->threaded = true; /* before the thread reads it */
    pthread_mutex_unlock(&s->mu);
    int err = pthread_create(&s->thread, NULL, service, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        pthread_mutex_lock(&s->mu);
        s->threaded = false;
        pthread_mutex_unlock(&s->mu);
    }
    return err;
}

/* ---- create and close -------------------------------------------------------------- */

/* Binds path, taking over a socket file whose owner died: a connect there is
 * refused, so nobody listens; unlink it and bind again. */
static int listen_on(bp_shm *s, const char *path, unsigned mode) {
    struct sockaddr_un sun;
    unsigned len;
    int err = shm_addr(path, &sun, &len);
    if (err)
        return err;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return errno;
    bool abstract = path[0] == '@';
    if (bind(fd, (struct sockaddr *)&sun, len) != 0) {
        err = errno;
        if (err == EADDRINUSE && !abstract) {
            int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
            bool refused = probe >= 0 && connect(probe, (struct sockaddr *)&sun, len) != 0 &&
                           errno == ECONNREFUSED;
            if (probe >= 0)
                close(probe);
            if (refused && unlink(path) == 0 && bind(fd, (struct sockaddr *)&sun, len) == 0)
                err = 0;
        }
        if (err) {
            close(fd);
            return err;
        }
    }
    if (!abstract && chmod(path, mode) != 0) {
        err = errno;
        unlink(path);
        close(fd);
        return err;
    }
    if (listen(fd, 64) != 0) {
        err = errno;
        if (!abstract)
            unlink(path);
        close(fd);
        return err;
    }
    s->listen_fd = fd;
    s->unlink_path = !abstract;
    snprintf(s->path, sizeof s->path, "%s", path);
    return 0;
}

static int pool_file(bp_shm *s) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t dir_bytes = (SHM_DIR_MAX * sizeof(shm_dir) + page - 1) & ~(page - 1);
    s->sup_bytes = page + dir_bytes;
    s->pool_fd = shm_memfd("bytepool-shm", s->sup_bytes, true);
    if (s->pool_fd < 0)
        return errno == ENOSYS ? ENOSYS : errno;
    void *m = mmap(NULL, s->sup_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, s->pool_fd, 0);
    if (m == MAP_FAILED)
        return errno;
    s->sup = m;
    s->sup->magic = SHM_MAGIC;
    s->sup->version = SHM_VERSION;
    s->sup->page = (uint32_t)page;
    s->sup->dir_off = page;
    s->sup->data_off = s->sup_bytes;
    s->file_end = s->sup_bytes;
    struct stat st;
    if (fstat(s->pool_fd, &st) != 0)
        return errno;
    s->pool_dev = st.st_dev;
    s->pool_ino = st.st_ino;
    return 0;
}

SHM_HIDDEN int shm_config(bp_shm_config *out, const bp_shm_config *cfg, size_t size);
SHM_HIDDEN bp_shm *shm_alloc(bool owner);
SHM_HIDDEN void shm_free(bp_shm *s);

bp_shm *bp_shm_create_sized(const char *path, const bp_config *pool_cfg, size_t pool_cfg_size,
                            const bp_shm_config *cfg, size_t cfg_size) {
    bp_config pc;
    memset(&pc, 0, sizeof pc);
    int err = 0;
    if (pool_cfg) {
        if (pool_cfg_size < offsetof(bp_config, max_bytes) + sizeof(size_t))
            err = EINVAL;
        for (size_t i = sizeof pc; !err && i < pool_cfg_size; i++)
            if (((const unsigned char *)pool_cfg)[i])
                err = E2BIG;
        if (!err)
            memcpy(&pc, pool_cfg, pool_cfg_size < sizeof pc ? pool_cfg_size : sizeof pc);
    }
    if (!err && (pc.backing || (pc.flags & BP_ADOPTED)))
        err = EINVAL;
    for (size_t i = 0; !err && pc.sizes && i < pc.nsizes; i++)
        if (pc.sizes[i] > BP_SHM_MAX_TIER)
            err = EINVAL;
    bp_shm *s = err ? NULL : shm_alloc(true);
    if (!err && !s)
        err = ENOMEM;
    if (!err)
        err = shm_config(&s->cfg, cfg, cfg_size);
    if (!err)
        err = pool_file(s);
    if (!err) {
        static const bp_backing none;
        bp_backing *b = malloc(sizeof *b); /* copied by bp_pool_new: freed right after */
        if (!b)
            err = ENOMEM;
        if (b) {
            *b = none;
            b->map = backing_map;
            b->ctx = s;
            pc.backing = b;
            s->pool = bp_pool_new(&pc);
            err = s->pool ? 0 : errno;
            free(b);
        }
    }
    if (!err) {
        s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        s->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (s->wake_fd < 0 || s->epfd < 0)
            err = errno;
    }
    if (!err)
        err = listen_on(s, path, s->cfg.mode);
    if (!err) {
        epoll_add(s->epfd, s->listen_fd, TAG(TAG_LISTEN, 0));
        epoll_add(s->epfd, s->wake_fd, TAG(TAG_WAKE, 0));
        if (!(s->cfg.flags & BP_SHM_NO_THREAD))
            err = start_thread(s);
    }
    if (err) {
        if (s) {
            if (s->listen_fd >= 0 && s->unlink_path)
                unlink(s->path);
            teardown(s);
        }
        errno = err;
        return NULL;
    }
    return s;
}

bp_pool *bp_shm_pool(bp_shm *s) {
    if (!s || !s->owner) {
        errno = s ? EPERM : EINVAL;
        return NULL;
    }
    return s->pool;
}

size_t bp_shm_peers_sized(bp_shm *s, bp_shm_peer_stats *out, size_t max, size_t elem_size) {
    if (!s || !s->owner || (max && (!out || elem_size < sizeof(bp_shm_peer_stats)))) {
        errno = !s || s->owner ? EINVAL : EPERM;
        return 0;
    }
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (uint32_t i = 1; i <= s->cfg.max_peers; i++) {
        const opeer *pr = &s->peers[i];
        if (pr->state != PEER_LIVE && pr->state != PEER_DETACHING)
            continue;
        if (n < max) {
            bp_shm_peer_stats ps = {peer_id(s, i), pr->pid,   pr->nheld,       pr->granted,
                                    pr->returned,  pr->swept, pr->cap_refused, pr->bad_returns};
            memset((char *)out + n * elem_size, 0, elem_size);
            memcpy((char *)out + n * elem_size, &ps, sizeof ps);
        }
        n++;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

void shm_owner_stats(bp_shm *s, bp_shm_stats *out) {
    *out = s->st;
    out->held = s->total_held;
}

/* Frees everything the owner has: the peers' files and descriptors, the
 * pool (buffers the program still holds stay valid), the pool file. */
static void teardown(bp_shm *s) {
    for (uint32_t i = 1; i <= BP_SHM_MAX_PEERS; i++) {
        opeer *pr = &s->peers[i];
        if (pr->state != PEER_FREE) {
            close_fd(&pr->sock);
            close_fd(&pr->pidfd);
            peer_unsetup(pr);
        }
        free(pr->g);
        free(pr->freel);
        free(pr->held);
    }
    for (int i = 0; i < NPENDING; i++)
        close_fd(&s->pending[i]);
    close_fd(&s->listen_fd);
    if (s->pool)
        bp_pool_destroy(s->pool);
    free(s->segs.v);
    close_fd(&s->wake_fd);
    shm_free(s);
}

size_t shm_owner_shutdown(bp_shm *s, int timeout_ms) {
    pthread_mutex_lock(&s->mu);
    st_rel(&s->closing, true);
    st_rlx(&s->sup->sleeping, 1); /* from now on every return wakes the owner */
    shm_wake(s->wake_fd);         /* the service thread takes note at once */
    if (s->listen_fd >= 0) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listen_fd, NULL);
        close_fd(&s->listen_fd);
        if (s->unlink_path)
            unlink(s->path);
    }
    for (int i = 0; i < NPENDING; i++)
        if (s->pending[i] >= 0) {
            epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->pending[i], NULL);
            close_fd(&s->pending[i]);
        }
    shm_msg m = {.kind = MSG_CLOSING, .version = SHM_VERSION, .magic = SHM_MAGIC};
    for (uint32_t i = 1; i <= s->cfg.max_peers; i++) {
        opeer *pr = &s->peers[i];
        if (pr->state != PEER_LIVE)
            continue;
        st_rel(&pr->a->closing, 1);
        shm_wake(pr->efd);
        shm_send_msg(pr->sock, &m, NULL, 0); /* a full or gone socket: the flag says it */
    }
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_ms() + (uint64_t)timeout_ms;
    while (s->total_held && now_ms() < deadline) {
        if (s->threaded) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t left = deadline - now_ms();
            if (left > 100)
                left = 100; /* a deadline past the mutex's realtime clock jumps */
            ts.tv_nsec += (long)(left % 1000) * 1000000L;
            ts.tv_sec += (time_t)(left / 1000) + ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        } else {
            pthread_mutex_unlock(&s->mu);
            uint64_t left = deadline - now_ms();
            shm_owner_poll(s, left > 100 ? 100 : (int)left);
            pthread_mutex_lock(&s->mu);
        }
    }
    size_t out = (size_t)s->total_held;
    pthread_mutex_unlock(&s->mu);
    return out;
}

size_t shm_owner_close(bp_shm *s, int timeout_ms) {
    shm_owner_shutdown(s, timeout_ms);
    pthread_mutex_lock(&s->mu);
    size_t out = (size_t)s->total_held;
    if (out) { /* the thread ends it when the last grant is back */
        s->orphan = true;
        bool threaded = s->threaded;
        pthread_mutex_unlock(&s->mu);
        if (threaded) {
            pthread_detach(s->thread);
            shm_wake(s->wake_fd);
        } else if (start_thread(s) == 0) {
            pthread_detach(s->thread);
        }
        return out;
    }
    s->stop = true;
    pthread_mutex_unlock(&s->mu);
    if (s->threaded) {
        shm_wake(s->wake_fd);
        pthread_join(s->thread, NULL);
    }
    teardown(s);
    return 0;
}

#ifdef BP_SHM_CRASHPOINTS
void shm_test_peer_died(bp_shm *s, bp_shm_peer peer) {
    uint32_t slot = peer & 63;
    pthread_mutex_lock(&s->mu);
    if (slot && slot <= s->cfg.max_peers && s->peers[slot].gen == peer >> 6 &&
        s->peers[slot].state != PEER_FREE)
        peer_gone(s, slot, false, NULL);
    pthread_mutex_unlock(&s->mu);
}
#endif
