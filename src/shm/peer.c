/* SPDX-License-Identifier: MIT */
/*
 * peer.c - a peer's end: attach, receive and import grants, and return
 * each one exactly once.
 *
 * A peer's references to a shared buffer are its own private count, the
 * one every bp_* call uses (a BP_ADOPTED pool of read-only segments over
 * the pool file). Only the first import of a buffer and its last release
 * touch shared memory: the first import (count 0 -> 1, bp_claim) makes its
 * grant the buffer's kept grant; an import while the peer already holds the
 * buffer adds a reference and returns the new grant at once; the release
 * that takes the count to 0 returns the kept grant (the pool's on_free).
 * Everything here runs under s->mu.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#define F_SEAL_SHRINK 0x0002
#endif

SHM_HIDDEN int shm_config(bp_shm_config *out, const bp_shm_config *cfg, size_t size);
SHM_HIDDEN bp_shm *shm_alloc(bool owner);
SHM_HIDDEN void shm_free(bp_shm *s);

/* ---- returns ------------------------------------------------------------------ */

/* The entry first, then the index that publishes it (one store each); then
 * wake the owner if it is about to sleep. */
static void push_return(bp_shm *s, uint64_t r) {
    uint64_t t = s->ret_tail;
    st_rlx(&shm_b_rets(s->b)[t & (s->cap - 1)], r);
    SHM_CRASH("peer_return_before_publish");
    st_rel(&s->b->ret_tail, t + 1);
    s->ret_tail = t + 1;
    atomic_thread_fence(memory_order_seq_cst);
    if (ld_rlx(&s->sup->sleeping))
        shm_wake(s->efd_out);
}

/* ---- segments ------------------------------------------------------------------- */

typedef struct map_ctx {
    int fd;
    uint64_t off;
} map_ctx;

static int map_ro(void *ctx, void *addr, size_t len) {
    const map_ctx *m = ctx;
    void *p = mmap(addr, len, PROT_READ, MAP_SHARED | MAP_FIXED, m->fd, (off_t)m->off);
    return p == MAP_FAILED ? errno : 0;
}

static shm_seg *mseg_dir(bp_shm *s, uint32_t dir) {
    uint32_t i = dir < SHM_DIR_MAX ? s->by_dir[dir] : 0;
    return i ? &s->msegs.v[i - 1] : NULL;
}

/* Directory entry `dir`, checked against the file before anything is
 * mapped (no SIGBUS: the file is sealed against shrinking), adopted into
 * the mirror pool. */
static shm_seg *map_dir(bp_shm *s, uint32_t dir, int *err) {
    shm_seg *have = mseg_dir(s, dir);
    if (have)
        return have;
    *err = EINVAL;
    if (dir >= ld_acq(&s->sup->ndir))
        return NULL;
    const shm_dir *d = (const shm_dir *)((const char *)s->sup + s->sup->dir_off) + dir;
    shm_dir e = *d;
    size_t file, page = (size_t)sysconf(_SC_PAGESIZE);
    uint64_t bytes = (uint64_t)e.nslots * e.stride;
    if (shm_file_bytes(s->pool_fd, &file) != 0 || e.file_off % page || e.file_off < s->sup_bytes ||
        e.nslots == 0 || e.nslots > 65536 || e.stride < e.size || e.size > BP_SHM_MAX_TIER ||
        bytes > file || e.file_off > file - ((bytes + page - 1) & ~(page - 1)))
        return NULL;
    _Atomic uint64_t *kept = calloc(e.nslots, sizeof(*kept));
    if (!kept) {
        *err = ENOMEM;
        return NULL;
    }
    bp_segment_desc desc = {e.size, e.stride, e.nslots, e.tier};
    map_ctx mc = {s->pool_fd, e.file_off};
    void *base = bp_segment_adopt(s->mirror, &desc, map_ro, &mc);
    if (!base) {
        *err = errno;
        free(kept);
        return NULL;
    }
    shm_seg g = {(uintptr_t)base, bytes, e.size, e.stride, dir, e.nslots, kept};
    shm_seg *at = shm_segs_add(&s->msegs, &g);
    if (!at) { /* adopted, and stays so until the pool goes: harmless, unused */
        free(kept);
        *err = ENOMEM;
        return NULL;
    }
    for (uint32_t k = (uint32_t)(at - s->msegs.v); k < s->msegs.n; k++) /* those after it moved */
        s->by_dir[s->msegs.v[k].dir] = k + 1;
    return at;
}

/* ---- import ------------------------------------------------------------------ */

static void *import_locked(bp_shm *s, bp_shm_handle h, int *err) {
    uint32_t gi = shm_h_gi(h), gen = shm_h_gen(h);
    *err = EINVAL;
    if (!h || gen == 0 || shm_h_slot(h) == 0)
        return NULL;
    *err = ESTALE;
    if (shm_h_slot(h) != s->slot || gi >= s->cap)
        return NULL; /* another peer's (an index past our cap is never ours) */
    uint64_t e = ld_acq(&shm_a_grants(s->a)[gi]);
    if (!(e & SHM_LIVE) || shm_entry_gen(e) != gen || s->imported[gi] == gen + 1)
        return NULL; /* returned, swept, or imported already */
    shm_seg *g = map_dir(s, shm_entry_dir(e), err);
    uint32_t slot = shm_entry_slot(e);
    if (!g)
        return NULL;
    *err = EINVAL;
    if (slot >= g->nslots || shm_h_off(h) >= g->size)
        return NULL;
    uint8_t *buf = (uint8_t *)g->base + (size_t)slot * g->stride;
    s->imported[gi] = gen + 1;
    uint64_t r = shm_ret(gi, gen);
    for (;;) {
        if (bp_refcount(buf) && bp_retain(buf)) { /* held already: this grant goes back now */
            push_return(s, r);
            s->st.surplus_returned++;
            break;
        }
        if (ld_acq(&g->kept[slot])) { /* a release on another thread is returning the old one */
            pthread_mutex_unlock(&s->mu);
            sched_yield();
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (bp_claim(buf) == 0) { /* 0 -> 1: this grant is kept */
            SHM_CRASH("peer_import_after_claim");
            st_rel(&g->kept[slot], r);
            s->held_refs++;
            break;
        }
    }
    s->st.imported++;
    return buf + shm_h_off(h);
}

void *bp_shm_import(bp_shm *s, bp_shm_handle h) {
    if (!s || s->owner || shm_forked(s)) {
        errno = !s ? EINVAL : EPERM;
        return NULL;
    }
    int err = EPIPE;
    pthread_mutex_lock(&s->mu);
    void *p = s->closing ? NULL : import_locked(s, h, &err);
    pthread_mutex_unlock(&s->mu);
    if (!p)
        errno = err;
    return p;
}

static void detach(bp_shm *s);

/* The mirror pool's on_free: the count of buf went to 0 on some thread.
 * Its kept grant goes back. */
static void on_free(void *ctx, void *buf) {
    bp_shm *s = ctx;
    if (ld_rlx(&s->dead))
        return; /* test builds: a "killed" peer returns nothing */
    pthread_mutex_lock(&s->mu);
    uint64_t r = 0, in;
    shm_seg *g = shm_segs_find(&s->msegs, (uintptr_t)buf, &in);
    if (g) {
        _Atomic uint64_t *k = &g->kept[((uintptr_t)buf - g->base) / g->stride];
        r = ld_rlx(k);
        SHM_CRASH("peer_release_before_return");
        if (r)
            push_return(s, r);
        st_rel(k, 0);
    }
    if (r) {
        s->held_refs--;
        s->st.released++;
    }
    bool done = r && s->closing && s->held_refs == 0; /* the last: this thread detaches */
    pthread_mutex_unlock(&s->mu);
    if (done)
        detach(s);
}

/* ---- receive ------------------------------------------------------------------ */

static void read_socket(bp_shm *s) {
    shm_msg m;
    int err = shm_recv_msg(s->sock, &m, NULL, NULL, MSG_DONTWAIT);
    if (err && err != EAGAIN) { /* the owner is gone (or spoke nonsense) */
        s->owner_gone = true;
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->sock, NULL);
    }
}

/* Before it sleeps, a receiver watches the ring for a while (lock
 * dropped): in a busy stream the next delivery is microseconds away, and
 * a sleep costs the sender an eventfd write and the receiver a wake-up. */
#define SHM_SPIN_NS 50000

static bool spin(bp_shm *s, uint64_t head, uint64_t deadline) {
    pthread_mutex_unlock(&s->mu);
    uint64_t until = shm_now_ns() + SHM_SPIN_NS;
    if (until > deadline)
        until = deadline;
    bool got = false;
    for (unsigned i = 1; !got; i++) {
        got = ld_acq(&s->a->del_tail) != head;
        if (!got && (i & 63) == 0 && shm_now_ns() >= until)
            break;
#if defined(__x86_64__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ volatile("yield");
#endif
    }
    pthread_mutex_lock(&s->mu);
    return got;
}

void *bp_shm_recv(bp_shm *s, size_t *len, int timeout_ms) {
    if (!s || timeout_ms < -1 || s->owner || shm_forked(s)) {
        errno = !s || timeout_ms < -1 ? EINVAL : EPERM;
        return NULL;
    }
    uint64_t deadline =
        timeout_ms < 0 ? UINT64_MAX : shm_now_ns() + (uint64_t)timeout_ms * 1000000u;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        uint64_t h = ld_rlx(&s->b->del_head), t = ld_acq(&s->a->del_tail);
        if (h != t && !s->closing) {
            shm_del d = shm_a_dels(s->a)[h & (s->cap - 1)];
            st_rel(&s->b->del_head, h + 1);
            SHM_CRASH("peer_recv_after_take");
            int err;
            void *p = import_locked(s, d.handle, &err);
            if (!p)
                continue; /* not a grant of ours: nothing to hold */
            if (len)
                *len = d.len;
            pthread_mutex_unlock(&s->mu);
            return p;
        }
        int err = 0;
        if (s->owner_gone || ld_acq(&s->a->closing) || s->closing)
            err = EPIPE;
        else if (timeout_ms == 0)
            err = EAGAIN;
        else if (shm_now_ns() >= deadline)
            err = ETIMEDOUT;
        if (err) {
            pthread_mutex_unlock(&s->mu);
            errno = err;
            return NULL;
        }
        if (spin(s, h, deadline))
            continue; /* a delivery came while we looked: no system call */
        st_rlx(&s->b->sleeping, 1);
        atomic_thread_fence(memory_order_seq_cst); /* against the owner's publish */
        if (ld_acq(&s->a->del_tail) != h) {
            st_rlx(&s->b->sleeping, 0);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        uint64_t now = shm_now_ns();
        int wait = deadline == UINT64_MAX ? -1 : (int)((deadline - now + 999999) / 1000000);
        struct epoll_event ev[4];
        int k = epoll_wait(s->epfd, ev, 4, wait);
        pthread_mutex_lock(&s->mu);
        st_rlx(&s->b->sleeping, 0);
        for (int i = 0; i < k; i++) {
            if (ev[i].data.u64 == 1)
                shm_drain(s->efd_in);
            else if (!s->owner_gone)
                read_socket(s);
        }
    }
}

/* ---- attach and detach -------------------------------------------------------------- */

static int connect_to(const char *path) {
    struct sockaddr_un sun;
    unsigned len;
    int err = shm_addr(path, &sun, &len);
    if (err) {
        errno = err;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, len) != 0) {
        err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    struct timeval tv = {10, 0}; /* an owner that accepts but never answers */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static bool sealed_and_sized(int fd, size_t want) {
    size_t have;
    int seals = fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & F_SEAL_SHRINK) && shm_file_bytes(fd, &have) == 0 && have >= want;
}

/* WELCOME's five descriptors: the pool file and A (read-only), B, our
 * eventfd and the owner's. Everything is checked before it is mapped. */
static int map_welcome(bp_shm *s, const shm_msg *w, int *fds) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint32_t cap = w->cap;
    if (w->magic != SHM_MAGIC || w->version != SHM_VERSION || w->page != page || cap == 0 ||
        cap > 65536 || (cap & (cap - 1)) || w->slot == 0 || w->slot > BP_SHM_MAX_PEERS ||
        w->a_bytes != shm_a_bytes(cap) || w->b_bytes != shm_b_bytes(cap))
        return EPROTO;
    s->pool_fd = fds[0];
    s->efd_in = fds[3];
    s->efd_out = fds[4];
    fds[0] = fds[3] = fds[4] = -1;
    if (!sealed_and_sized(s->pool_fd, page) || !sealed_and_sized(fds[1], w->a_bytes) ||
        !sealed_and_sized(fds[2], w->b_bytes))
        return EPROTO;
    const shm_super *peek = mmap(NULL, page, PROT_READ, MAP_SHARED, s->pool_fd, 0);
    if (peek == MAP_FAILED)
        return errno;
    bool ok = peek->magic == SHM_MAGIC && peek->version == SHM_VERSION && peek->page == page &&
              peek->dir_off == page && peek->data_off >= page + SHM_DIR_MAX * sizeof(shm_dir);
    size_t sup_bytes = (size_t)peek->data_off;
    munmap((void *)peek, page);
    if (!ok || !sealed_and_sized(s->pool_fd, sup_bytes))
        return EPROTO;
    void *sup = mmap(NULL, sup_bytes, PROT_READ, MAP_SHARED, s->pool_fd, 0);
    void *a = mmap(NULL, w->a_bytes, PROT_READ, MAP_SHARED, fds[1], 0);
    void *b = mmap(NULL, w->b_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fds[2], 0);
    if (sup != MAP_FAILED)
        s->sup = sup, s->sup_bytes = sup_bytes;
    if (a != MAP_FAILED)
        s->a = a, s->a_bytes = w->a_bytes;
    if (b != MAP_FAILED)
        s->b = b, s->b_bytes = w->b_bytes;
    if (sup == MAP_FAILED || a == MAP_FAILED || b == MAP_FAILED)
        return ENOMEM;
    if (s->a->magic != SHM_MAGIC || s->a->cap != cap || s->a->slot != w->slot)
        return EPROTO;
    s->cap = cap;
    s->slot = w->slot;
    s->slot_gen = w->gen;
    s->ret_tail = ld_acq(&s->b->ret_tail);
    return 0;
}

static int mirror_new(bp_shm *s) {
    static const bp_backing none;
    bp_backing b = none;
    b.on_free = on_free;
    b.ctx = s;
    bp_config pc;
    memset(&pc, 0, sizeof pc);
    pc.flags = BP_ADOPTED | BP_NO_BACKGROUND | BP_NO_RECENT;
    pc.backing = &b;
    s->mirror = bp_pool_new(&pc);
    s->imported = calloc(s->cap, sizeof(uint32_t));
    s->by_dir = calloc(SHM_DIR_MAX, sizeof(uint32_t));
    return s->mirror && s->imported && s->by_dir ? 0 : ENOMEM;
}

bp_shm *bp_shm_attach_sized(const char *path, const bp_shm_config *cfg, size_t cfg_size) {
    bp_shm *s = shm_alloc(false);
    int err = s ? shm_config(&s->cfg, cfg, cfg_size) : ENOMEM;
    int fds[5] = {-1, -1, -1, -1, -1}, nfds = 5;
    if (!err) {
        s->sock = connect_to(path);
        if (s->sock < 0)
            err = errno;
    }
    if (!err) {
        int pidfd = shm_pidfd_self();
        shm_msg m = {.kind = MSG_HELLO,
                     .version = SHM_VERSION,
                     .pid = (int32_t)getpid(),
                     .magic = SHM_MAGIC};
        err = pidfd < 0 ? (errno == ENOSYS ? ENOSYS : errno) : shm_send_msg(s->sock, &m, &pidfd, 1);
        if (pidfd >= 0)
            close(pidfd);
        SHM_CRASH("peer_attach_after_hello");
    }
    shm_msg w;
    if (!err) {
        err = shm_recv_msg(s->sock, &w, fds, &nfds, 0);
        if (err == EAGAIN || err == EWOULDBLOCK)
            err = ETIMEDOUT;
        else if (!err && w.kind == MSG_REFUSED)
            err = w.err > 0 ? w.err : EPROTO;
        else if (!err && (w.kind != MSG_WELCOME || nfds != 5))
            err = EPROTO;
    }
    if (!err)
        err = map_welcome(s, &w, fds);
    for (int i = 0; i < nfds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (!err)
        err = mirror_new(s);
    if (!err) {
        SHM_CRASH("peer_attach_after_map");
        s->epfd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event e1 = {.events = EPOLLIN, .data.u64 = 1};
        struct epoll_event e2 = {.events = EPOLLIN, .data.u64 = 2};
        if (s->epfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->efd_in, &e1) != 0 ||
            epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sock, &e2) != 0)
            err = errno;
    }
    if (err) {
        if (s)
            detach(s);
        errno = err;
        return NULL;
    }
    return s;
}

/* Says goodbye (the owner then sweeps whatever is left, which is nothing
 * when every reference went) and frees the peer's end. */
static void detach(bp_shm *s) {
    if (s->sock >= 0 && s->a && !shm_forked(s) && !ld_rlx(&s->dead)) {
        shm_msg m = {.kind = MSG_BYE, .version = SHM_VERSION, .magic = SHM_MAGIC};
        shm_send_msg(s->sock, &m, NULL, 0);
    }
    if (s->sock >= 0)
        close(s->sock);
    if (s->mirror)
        bp_pool_destroy(s->mirror); /* its segments' buffers are all free: unmapped */
    for (uint32_t i = 0; i < s->msegs.n; i++)
        free((void *)s->msegs.v[i].kept);
    free(s->msegs.v);
    free(s->imported);
    free(s->by_dir);
    if (s->a)
        munmap(s->a, s->a_bytes);
    if (s->b)
        munmap((void *)s->b, s->b_bytes);
    if (s->efd_in >= 0)
        close(s->efd_in);
    if (s->efd_out >= 0)
        close(s->efd_out);
    shm_free(s);
}

size_t shm_peer_close(bp_shm *s) {
    if (ld_rlx(&s->dead)) { /* test builds: what a killed process leaves is the kernel's */
        detach(s);
        return 0;
    }
    pthread_mutex_lock(&s->mu);
    /* Deliveries never received go straight back: returned, not swept. */
    for (uint64_t h = ld_rlx(&s->b->del_head); h != ld_acq(&s->a->del_tail); h++) {
        shm_del d = shm_a_dels(s->a)[h & (s->cap - 1)];
        uint32_t gi = shm_h_gi(d.handle), gen = shm_h_gen(d.handle);
        uint64_t e = gi < s->cap ? ld_acq(&shm_a_grants(s->a)[gi]) : 0;
        st_rel(&s->b->del_head, h + 1);
        if (shm_h_slot(d.handle) == s->slot && (e & SHM_LIVE) && shm_entry_gen(e) == gen &&
            s->imported[gi] != gen + 1) {
            s->imported[gi] = gen + 1;
            push_return(s, shm_ret(gi, gen));
        }
    }
    size_t refs = 0;
    for (uint32_t i = 0; i < s->msegs.n; i++) {
        const shm_seg *g = &s->msegs.v[i];
        for (uint32_t k = 0; k < g->nslots; k++)
            if (ld_rlx(&g->kept[k]))
                refs += bp_refcount((void *)(g->base + (size_t)k * g->stride));
    }
    s->closing = true;
    bool done = s->held_refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (done)
        detach(s);
    return refs;
}

void shm_peer_stats(bp_shm *s, bp_shm_stats *out) {
    *out = s->st;
    out->held = 0;
}

#ifdef BP_SHM_CRASHPOINTS
void shm_test_abandon(bp_shm *s) {
    st_rlx(&s->dead, true);
    pthread_mutex_trylock(&s->mu); /* held (a longjmp out of it) or not: held now */
    pthread_mutex_unlock(&s->mu);
}
#endif
