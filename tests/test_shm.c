/* SPDX-License-Identifier: MIT */
/*
 * test_shm.c - libbytepool_shm: the owner runs here, each peer is a forked
 * agent process this test drives one command at a time over pipes, so every
 * step happens in a known order and every wait is on an event (a reply, an
 * on_peer callback, a process exit), bounded generously.
 *
 * The owner's pool runs in checked mode: a grant released twice aborts.
 */
#include "helpers.h"

#include "bytepool_shm.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#define WAIT_MS 60000 /* any wait on another process: generous, never expected */

/* ---- events from on_peer ------------------------------------------------------- */

static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ev_cv = PTHREAD_COND_INITIALIZER;
static int ev_count[4];
static bp_shm_peer ev_last[4];

static void on_peer(void *ctx, bp_shm_peer peer, int event) {
    (void)ctx;
    pthread_mutex_lock(&ev_mu);
    ev_count[event]++;
    ev_last[event] = peer;
    pthread_cond_broadcast(&ev_cv);
    pthread_mutex_unlock(&ev_mu);
}

static void ev_reset(void) {
    pthread_mutex_lock(&ev_mu);
    memset(ev_count, 0, sizeof ev_count);
    pthread_mutex_unlock(&ev_mu);
}

/* Waits until `event` was seen n times; returns the last peer it named. */
static bp_shm_peer ev_wait(int event, int n) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&ev_mu);
    while (ev_count[event] < n)
        if (pthread_cond_timedwait(&ev_cv, &ev_mu, &ts) != 0)
            break;
    int got = ev_count[event];
    bp_shm_peer p = ev_last[event];
    pthread_mutex_unlock(&ev_mu);
    assert_true(got >= n);
    return p;
}

/* ---- the agent: a peer process driven over pipes ---------------------------------- */

enum {
    OP_ATTACH = 1,
    OP_RECV,
    OP_IMPORT,
    OP_RELEASE,
    OP_REFCOUNT,
    OP_CLOSE,
    OP_WRITE,
    OP_FORK,
    OP_EXEC,
    OP_STATS,
    OP_CRASH,
    OP_EXIT,
    OP_RETAIN,
    OP_IMPORT_ERR
};
typedef struct cmd {
    int op;
    uint64_t a, b;
} cmd;
typedef struct reply {
    int64_t r;
    int err;
    uint64_t x, y;
} reply;
typedef struct agent {
    pid_t pid;
    int to, from;
} agent;

static char path[108];
static const char *crash_points[] = {
    "peer_attach_after_hello", "peer_attach_after_map",      "peer_recv_after_take",
    "peer_import_after_claim", "peer_release_before_return", "peer_return_before_publish",
};

static void agent_loop(int in, int out) {
    bp_shm *s = NULL;
    void *held[256];
    int n = 0;
    cmd c;
    while (read(in, &c, sizeof c) == (ssize_t)sizeof c) {
        reply r = {0, 0, 0, 0};
        errno = 0;
        switch (c.op) {
        case OP_ATTACH:
            s = bp_shm_attach(path, NULL);
            r.r = s ? 0 : -1;
            break;
        case OP_RECV: {
            size_t len = 0;
            void *p = bp_shm_recv(s, &len, (int)c.a);
            r.r = p ? n : -1;
            if (p) {
                held[n++] = p;
                r.x = len;
                memcpy(&r.y, p, 8);
            }
            break;
        }
        case OP_IMPORT:
        case OP_IMPORT_ERR: {
            void *p = bp_shm_import(s, c.a);
            r.r = p ? n : -1;
            if (p) {
                held[n++] = p;
                memcpy(&r.y, p, 8);
            }
            break;
        }
        case OP_RELEASE:
            r.r = bp_release(held[c.a]);
            break;
        case OP_RETAIN:
            r.r = bp_retain(held[c.a]) ? 0 : -1;
            break;
        case OP_REFCOUNT:
            r.r = (int64_t)bp_refcount(held[c.a]);
            r.x = bp_cap(held[c.a]);
            r.y = (uint64_t)((char *)held[c.a] - (char *)bp_base(held[c.a]));
            break;
        case OP_CLOSE:
            r.r = (int64_t)bp_shm_close(s, 0);
            s = NULL;
            break;
        case OP_WRITE: { /* a write through a received pointer must fault */
            pid_t w = fork();
            if (w == 0) {
                *(volatile char *)held[c.a] = 1;
                _exit(0);
            }
            int st;
            waitpid(w, &st, 0);
            r.r = WIFSIGNALED(st) ? WTERMSIG(st) : -1;
            break;
        }
        case OP_FORK: { /* a fork() child is detached from the pool */
            pid_t w = fork();
            if (w == 0) {
                size_t len;
                int ok = !bp_shm_recv(s, &len, 0) && errno == EPERM;
                ok = ok && !bp_shm_import(s, 1) && errno == EPERM;
                ok = ok && bp_release(held[c.a]) == 0 && bp_refcount(held[c.a]) == c.b - 1;
                _exit(ok ? 0 : 1);
            }
            int st;
            waitpid(w, &st, 0);
            r.r = WIFEXITED(st) ? WEXITSTATUS(st) : 100;
            break;
        }
        case OP_EXEC:
            if (write(out, &r, sizeof r) != (ssize_t)sizeof r)
                _exit(1);
            execl("/bin/sleep", "sleep", "600", (char *)NULL);
            _exit(1);
        case OP_STATS: {
            bp_shm_stats st;
            r.r = bp_shm_stats(s, &st);
            r.x = st.imported;
            r.y = st.surplus_returned << 32 | st.released;
            break;
        }
        case OP_CRASH: {
            char v[96];
            snprintf(v, sizeof v, "%s:%d", crash_points[c.a], (int)c.b);
            setenv("BYTEPOOL_SHM_CRASH", v, 1);
            break;
        }
        case OP_EXIT:
            _exit((int)c.a);
        }
        r.err = errno;
        if (write(out, &r, sizeof r) != (ssize_t)sizeof r)
            _exit(1);
    }
    _exit(0);
}

static void default_signals(void) { /* cmocka's handlers would run the suite on in a child */
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}

static agent agent_new(void) {
    int down[2], up[2];
    assert_int_equal(pipe2(down, O_CLOEXEC), 0);
    assert_int_equal(pipe2(up, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        default_signals();
        agent_loop(down[0], up[1]);
    }
    close(down[0]);
    close(up[1]);
    return (agent){pid, down[1], up[0]};
}

/* One command; the reply, or r -1 / err EPIPE when the agent died. */
static reply call(agent *g, int op, uint64_t a, uint64_t b) {
    cmd c = {op, a, b};
    reply r = {-1, EPIPE, 0, 0};
    if (write(g->to, &c, sizeof c) != (ssize_t)sizeof c)
        return r;
    struct pollfd pf = {g->from, POLLIN, 0};
    if (poll(&pf, 1, WAIT_MS) != 1 || read(g->from, &r, sizeof r) != (ssize_t)sizeof r)
        r = (reply){-1, EPIPE, 0, 0};
    return r;
}

/* The agent's exit: its code, or 128 + the signal that ended it. */
static int agent_end(agent *g) {
    close(g->to);
    close(g->from);
    int st = 0;
    waitpid(g->pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A fresh agent attached as the owner's first peer of the test: its id. */
static bp_shm_peer first_peer(agent *g) {
    *g = agent_new();
    call(g, OP_ATTACH, 0, 0);
    return ev_wait(BP_SHM_ATTACHED, 1);
}

/* ---- the owner ---------------------------------------------------------------- */

static int test_no = 0;

static bp_shm *owner(unsigned cap, unsigned peers, unsigned flags) {
    snprintf(path, sizeof path, "@bp-test-shm-%d-%d", (int)getpid(), ++test_no);
    bp_config pc = {.flags = BP_CHECKED | BP_NO_BACKGROUND}; /* no thread in forked agents */
    bp_shm_config c = {.peer_cap = cap, .max_peers = peers, .flags = flags, .on_peer = on_peer};
    ev_reset();
    bp_shm *s = bp_shm_create(path, &pc, &c);
    assert_non_null(s);
    return s;
}

static void *filled(bp_shm *s, size_t len, uint64_t tag) {
    void *p = bp_get(bp_shm_pool(s), len);
    assert_non_null(p);
    memset(p, 0x5a, len);
    memcpy(p, &tag, 8);
    return p;
}

static bp_shm_stats stats(bp_shm *s) {
    bp_shm_stats st;
    assert_int_equal(bp_shm_stats(s, &st), 0);
    return st;
}

static uint64_t outstanding(bp_shm *s) {
    bp_stats st;
    assert_int_equal(bp_pool_stats(bp_shm_pool(s), &st), 0);
    return st.outstanding;
}

/* Waits (on the owner's own condition: polls of its statistics between
 * short sleeps would be a sleep-wait) until the grants out reach `held`. */
static void wait_held(bp_shm *s, uint64_t held) {
    for (int i = 0; i < WAIT_MS / 5 && stats(s).held != held; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(stats(s).held, held);
}

static bool have_shm(void) {
    int fd = (int)syscall(SYS_memfd_create, "probe", 0);
    if (fd < 0)
        return false;
    close(fd);
#ifdef SYS_pidfd_open
    fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (fd < 0)
        return false;
    close(fd);
    return true;
#else
    return false;
#endif
}

#define NEED_SHM()                                                                                 \
    do {                                                                                           \
        if (!have_shm()) {                                                                         \
            printf("skip: no memfd or pidfd on this platform\n");                                  \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* The test's one agent exits without a goodbye: the owner sees it die,
 * and then closes with no grant out. */
static void end_in_death(bp_shm *s, agent *g) {
    call(g, OP_EXIT, 0, 0);
    agent_end(g);
    ev_wait(BP_SHM_DIED, 1);
    assert_int_equal(bp_shm_close(s, WAIT_MS), 0);
}

/* The body of an owner in a forked child (no threads there): it creates
 * the pool at `path` (armed with BYTEPOOL_SHM_CRASH=crash when not NULL),
 * writes "r" to ready, sends three records of len bytes tagged tag0.. to
 * its first peer, writes "s", then serves until it is killed. */
static _Noreturn void owner_child(int ready, const char *crash, size_t len, uint64_t tag0) {
    default_signals();
    if (crash)
        setenv("BYTEPOOL_SHM_CRASH", crash, 1);
    bp_config pc = {.flags = BP_NO_BACKGROUND};
    bp_shm_config c = {.flags = BP_SHM_NO_THREAD};
    bp_shm *s = bp_shm_create(path, &pc, &c);
    if (!s || write(ready, "r", 1) != 1)
        _exit(1);
    bp_shm_peer_stats ps;
    while (bp_shm_peers(s, &ps, 1) == 0)
        bp_shm_poll(s, 100);
    for (int i = 0; i < 3; i++) {
        void *p = filled(s, len, tag0 + (uint64_t)i);
        bp_shm_send(s, ps.peer, p, len);
        bp_put(bp_shm_pool(s), p);
    }
    if (write(ready, "s", 1) != 1)
        _exit(1);
    for (;;)
        bp_shm_poll(s, -1);
}

/* ---- tests ------------------------------------------------------------------- */

static void attach_and_detach(void **state) {
    (void)state;
    NEED_SHM();
    bp_shm *s = owner(0, 0, 0);
    agent g = agent_new();
    assert_int_equal(call(&g, OP_ATTACH, 0, 0).r, 0);
    bp_shm_peer peer = ev_wait(BP_SHM_ATTACHED, 1);
    assert_int_equal(peer & 63, 1);
    bp_shm_peer_stats ps[4];
    assert_int_equal(bp_shm_peers(s, ps, 4), 1);
    assert_int_equal(ps[0].peer, peer);
    assert_int_equal(ps[0].pid, g.pid);
    assert_int_equal(stats(s).peers, 1);
    assert_int_equal(call(&g, OP_CLOSE, 0, 0).r, 0);
    assert_int_equal(ev_wait(BP_SHM_DETACHED, 1), peer);
    assert_int_equal(bp_shm_peers(s, ps, 4), 0);
    assert_int_equal(call(&g, OP_EXIT, 0, 0).err, EPIPE);
    assert_int_equal(agent_end(&g), 0);
    /* the slot's next peer has another id */
    agent h = agent_new();
    assert_int_equal(call(&h, OP_ATTACH, 0, 0).r, 0);
    bp_shm_peer again = ev_wait(BP_SHM_ATTACHED, 2);
    assert_int_equal(again & 63, 1);
    assert_int_not_equal(again, peer);
    void *a = filled(s, 100, 1);
    assert_int_equal(bp_shm_export(s, peer, a), 0); /* the old id: gone */
    assert_int_equal(errno, ENOENT);
    bp_put(bp_shm_pool(s), a);
    call(&h, OP_EXIT, 0, 0);
    agent_end(&h);
    ev_wait(BP_SHM_DIED, 1);
    assert_int_equal(bp_shm_close(s, WAIT_MS), 0);
}

static void send_recv_import_and_interior(void **state) {
    (void)state;
    NEED_SHM();
    bp_shm *s = owner(0, 0, 0);
    agent g = agent_new();
    assert_int_equal(call(&g, OP_ATTACH, 0, 0).r, 0);
    bp_shm_peer peer = ev_wait(BP_SHM_ATTACHED, 1);
    uint8_t *a = filled(s, 1000, 0xa1), *b = filled(s, 5000, 0xb2);
    assert_int_equal(bp_shm_send(s, peer, a, 1000), 0);
    assert_int_equal(bp_refcount(a), 2); /* ours and the grant's */
    reply r = call(&g, OP_RECV, WAIT_MS, 0);
    assert_int_equal(r.r, 0);
    assert_int_equal(r.x, 1000);
    assert_int_equal(r.y, 0xa1);
    r = call(&g, OP_REFCOUNT, 0, 0);
    assert_int_equal(r.r, 1); /* the peer's own count */
    assert_int_equal(r.x, 1024);
    assert_int_equal(r.y, 0);
    /* an interior pointer crosses: the handle carries the offset */
    memcpy(b + 100, &(uint64_t){0xfeed}, 8);
    bp_shm_handle h = bp_shm_export(s, peer, b + 100);
    assert_int_not_equal(h, 0);
    r = call(&g, OP_IMPORT, h, 0);
    assert_int_equal(r.r, 1);
    assert_int_equal(r.y, 0xfeed);
    r = call(&g, OP_REFCOUNT, 1, 0);
    assert_int_equal(r.r, 1);
    assert_int_equal(r.x, 8192 - 100);                     /* bp_cap from the pointer */
    assert_int_equal(r.y, 100);                            /* bp_base finds the start */
    assert_int_equal(call(&g, OP_WRITE, 1, 0).r, SIGSEGV); /* read-only */
    assert_int_equal(stats(s).held, 2);
    /* retain and release in the peer stay in the peer */
    assert_int_equal(call(&g, OP_RETAIN, 0, 0).r, 0);
    assert_int_equal(call(&g, OP_REFCOUNT, 0, 0).r, 2);
    assert_int_equal(call(&g, OP_RELEASE, 0, 0).r, 0);
    assert_int_equal(stats(s).returned, 0);
    assert_int_equal(call(&g, OP_RELEASE, 0, 0).r, 0); /* the last: the grant goes back */
    assert_int_equal(call(&g, OP_RELEASE, 1, 0).r, 0);
    wait_held(s, 0);
    bp_shm_stats st = stats(s);
    assert_int_equal(st.granted, 2);
    assert_int_equal(st.returned, 2);
    assert_int_equal(st.swept, 0);
    assert_int_equal(bp_refcount(a), 1);
    assert_int_equal(bp_refcount(b), 1);
    r = call(&g, OP_STATS, 0, 0);
    assert_int_equal(r.x, 2);                /* imported */
    assert_int_equal(r.y, (0ull << 32) | 2); /* none surplus, two released */
    assert_int_equal(bp_put(bp_shm_pool(s), a), 0);
    assert_int_equal(bp_put(bp_shm_pool(s), b), 0);
    assert_int_equal(call(&g, OP_CLOSE, 0, 0).r, 0);
    ev_wait(BP_SHM_DETACHED, 1);
    call(&g, OP_EXIT, 0, 0);
    assert_int_equal(agent_end(&g), 0);
    assert_int_equal(outstanding(s), 0);
    assert_int_equal(bp_shm_close(s, WAIT_MS), 0);
}

static void two_grants_of_one_buffer(void **state) {
    (void)state;
    NEED_SHM();
    bp_shm *s = owner(0, 0, 0);
    agent g;
    bp_shm_peer peer = first_peer(&g);
    uint8_t *a = filled(s, 4096, 7);
    bp_shm_handle h1 = bp_shm_export(s, peer, a), h2 = bp_shm_export(s, peer, a + 64);
    assert_true(h1 && h2 && h1 != h2);
    assert_int_equal(bp_refcount(a), 3);
    assert_int_equal(call(&g, OP_IMPORT, h1, 0).r, 0);
    assert_int_equal(call(&g, OP_IMPORT, h2, 0).r, 1);
    assert_int_equal(call(&g, OP_REFCOUNT, 0, 0).r, 2); /* one buffer, two references */
    wait_held(s, 1);                                    /* the second came back at once */
    assert_int_equal(bp_refcount(a), 2);
    /* a handle is imported once */
    reply r = call(&g, OP_IMPORT_ERR, h1, 0);
    assert_int_equal(r.r, -1);
    assert_int_equal(r.err, ESTALE);
    r = call(&g, OP_IMPORT_ERR, h2, 0); /* returned already */
    assert_int_equal(r.err, ESTALE);
    call(&g, OP_RELEASE, 1, 0);
    assert_int_equal(stats(s).held, 1);
    call(&g, OP_RELEASE, 0, 0);
    wait_held(s, 0);
    r = call(&g, OP_STATS, 0, 0);
    assert_int_equal(r.y, (1ull << 32) | 1);
    bp_shm_stats st = stats(s);
    assert_int_equal(st.granted, 2);
    assert_int_equal(st.returned, 2);
    bp_put(bp_shm_pool(s), a);
    end_in_death(s, &g);
}

static void cap_and_enobufs(void **state) {
    (void)state;
    NEED_SHM();
    bp_shm *s = owner(4, 0, 0);
    agent g;
    bp_shm_peer peer = first_peer(&g);
    void *p[5];
    for (int i = 0; i < 5; i++)
        p[i] = filled(s, 256, (uint64_t)i);
    for (int i = 0; i < 4; i++)
        assert_int_equal(bp_shm_send(s, peer, p[i], 256), 0);
    assert_int_equal(bp_shm_send(s, peer, p[4], 256), ENOBUFS);
    assert_int_equal(bp_shm_export(s, peer, p[4]), 0);
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(bp_refcount(p[4]), 1); /* nothing taken for a refusal */
    bp_shm_stats st = stats(s);
    assert_int_equal(st.cap_refused, 2);
    assert_int_equal(st.held, 4);
    bp_shm_peer_stats ps;
    assert_int_equal(bp_shm_peers(s, &ps, 1), 1);
    assert_int_equal(ps.cap_refused, 2);
    assert_int_equal(ps.held, 4);
    assert_int_equal(call(&g, OP_RECV, WAIT_MS, 0).r, 0);
    assert_int_equal(call(&g, OP_RELEASE, 0, 0).r, 0);
    wait_held(s, 3);
    assert_int_equal(bp_shm_send(s, peer, p[4], 256), 0); /* room again */
    call(&g, OP_EXIT, 0, 0);
    agent_end(&g);
    ev_wait(BP_SHM_DIED, 1);
    st = stats(s);
    assert_int_equal(st.swept, 4);
    assert_int_equal(st.granted, st.returned + st.swept);
    for (int i = 0; i < 5; i++)
        bp_put(bp_shm_pool(s), p[i]);
    assert_int_equal(outstanding(s), 0);
    assert_int_equal(bp_shm_close(s, WAIT_MS), 0);
}

static void refusals(void **state) {
    (void)state;
    NEED_SHM();
    bp_shm *s = owner(0, 2, 0);
    bp_pool *pool = bp_shm_pool(s);
    agent g;
    bp_shm_peer peer = first_peer(&g);
    void *p = filled(s, 512, 1);
    char foreign[64];
    /* owner side */
    assert_int_equal(bp_shm_send(s, peer, foreign, 8), EINVAL);
    assert_int_equal(bp_shm_send(s, peer, NULL, 8), EINVAL);
    assert_int_equal(bp_shm_send(s, peer, p, 513), EINVAL);    /* past the buffer */
    assert_int_equal(bp_shm_send(s, peer + 64, p, 8), ENOENT); /* another generation */
    assert_int_equal(bp_shm_send(s, 2, p, 8), ENOENT);         /* a free slot */
    assert_int_equal(bp_shm_send(s, 9, p, 8), ENOENT);         /* past max_peers */
    assert_int_equal(bp_shm_send(s, 0, p, 8), ENOENT);
    void *big = bp_get(pool, 8u << 20); /* oversize: its own mapping, not shared */
    assert_non_null(big);
    assert_int_equal(bp_shm_send(s, peer, big, 8), EINVAL);
    bp_put(pool, big);
    void *freed = bp_get(pool, 512);
    bp_put(pool, freed);
    assert_int_equal(bp_shm_export(s, peer, freed), 0);
    assert_int_equal(errno, EINVAL);
    size_t len;
    assert_null(bp_shm_recv(s, &len, 0));
    assert_int_equal(errno, EPERM);
    assert_null(bp_shm_import(s, 1));
    assert_int_equal(errno, EPERM);
    assert_int_equal(bp_shm_poll(s, 0), -1); /* a service thread runs */
    assert_int_equal(errno, EPERM);
    assert_null(bp_shm_create(path, NULL, NULL)); /* a live owner listens */
    assert_int_equal(errno, EADDRINUSE);
    bp_shm_config bad = {.peer_cap = 3};
    assert_null(bp_shm_create("@bp-test-shm-bad", NULL, &bad));
    assert_int_equal(errno, EINVAL);
    bad = (bp_shm_config){.max_peers = 64};
    assert_null(bp_shm_create("@bp-test-shm-bad", NULL, &bad));
    assert_int_equal(errno, EINVAL);
    size_t huge[] = {32u << 20};
    bp_config hc = {.sizes = huge, .nsizes = 1};
    assert_null(bp_shm_create("@bp-test-shm-bad", &hc, NULL));
    assert_int_equal(errno, EINVAL);
    assert_null(bp_shm_create("", NULL, NULL));
    assert_int_equal(errno, EINVAL);
    /* peer side */
    bp_shm_handle h = bp_shm_export(s, peer, p);
    assert_int_not_equal(h, 0);
    reply r = call(&g, OP_IMPORT_ERR, 0, 0);
    assert_int_equal(r.err, EINVAL);
    r = call(&g, OP_IMPORT_ERR, (h & ~63ull) | 2, 0); /* another slot's */
    assert_int_equal(r.err, ESTALE);
    r = call(&g, OP_IMPORT_ERR, h + (1ull << 22), 0); /* another generation */
    assert_int_equal(r.err, ESTALE);
    r = call(&g, OP_IMPORT_ERR, h | (1ull << 61), 0); /* an offset past the buffer */
    assert_int_equal(r.err, EINVAL);
    assert_int_equal(call(&g, OP_IMPORT, h, 0).r, 0);
    r = call(&g, OP_IMPORT_ERR, h, 0);
    assert_int_equal(r.err, ESTALE);
    r = call(&g, OP_RECV, 0, 0);
    assert_int_equal(r.err, EAGAIN);
    r = call(&g, OP_RECV, 50, 0);
    assert_int_equal(r.err, ETIMEDOUT);
    /* a third process cannot take a slot when max_peers are attached */
    agent g2 = agent_new(), g3 = agent_new();
    assert_int_equal(call(&g2, OP_ATTACH, 0, 0).r, 0);
    r = call(&g3, OP_ATTACH, 0, 0);
    assert_int_equal(r.r, -1);
    assert_int_equal(r.err, EBUSY);
    call(&g3, OP_EXIT, 0, 0);
    agent_end(&g3);
    call(&g2, OP_EXIT, 0, 0);
    agent_end(&g2);
    call(&g, OP_RELEASE, 0, 0);
    wait_held(s, 0);
    call(&g, OP_EXIT, 0, 0);
    agent_end(&g);
    ev_wait(BP_SHM_DIED, 2);
    assert_int_equal(stats(s).bad_returns, 0);
    bp_put(pool, p);
    assert_int_equal(bp_shm_close(s, WAIT_MS), 0);
    /* nobody listens any more */
    agent g4 = agent_new();
    r = call(&g4, OP_ATTACH, 0, 0);
    assert_int_equal(r.r, -1);
    assert_int_equal(r.err, ECONNREFUSED);
    call(&g4, OP_EXIT, 0, 0);
    agent_end(&g4);
}

/* Another user's process is refused (SO_PEERCRED), whatever the socket's
 * mode: an abstract name has none. Needs root to become another user. */
static void another_user_is_refused(void **state) {
    (void)state;
    NEED_SHM();
    if (geteuid() != 0) {
        printf("skip: not root: cannot run a peer as another user\n");
        skip();
    }
    bp_shm *s = owner(0, 0, 0);
    fflush(NULL);
    pid_t c = fork();
    if (c == 0) {
        default_signals();
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(10);
        bp_shm *p = bp_shm_attach(path, NULL);
        _exit(p ? 11 : errno == EACCES ? 0 : 12);
    }
    int st;
    waitpid(c, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(stats(s).attached, 0);
    assert_int_equal(bp_shm_close(s, WAIT_MS), 0);
}

static void owner_close_with_grants_out(void **state) {
    (void)state;
    NEED_SHM();
    bp_shm *s = owner(0, 0, 0);
    agent g;
    bp_shm_peer peer = first_peer(&g);
    void *a = filled(s, 300, 11), *b = filled(s, 300, 12);
    assert_int_equal(bp_shm_send(s, peer, a, 300), 0);
    assert_int_equal(bp_shm_send(s, peer, b, 300), 0);
    bp_put(bp_shm_pool(s), a);
    bp_put(bp_shm_pool(s), b);
    assert_int_equal(call(&g, OP_RECV, WAIT_MS, 0).r, 0);
    assert_int_equal(bp_shm_shutdown(s, 30), 2);
    void *late = filled(s, 10, 1);
    assert_int_equal(bp_shm_send(s, peer, late, 10), EPIPE);
    bp_put(bp_shm_pool(s), late);
    /* the peer drains what was delivered, then hears the pool is closing */
    reply r = call(&g, OP_RECV, WAIT_MS, 0);
    assert_int_equal(r.r, 1);
    assert_int_equal(r.y, 12);
    r = call(&g, OP_RECV, WAIT_MS, 0);
    assert_int_equal(r.err, EPIPE);
    assert_int_equal(bp_shm_close(s, 30), 2); /* still out: it ends when they are back */
    assert_int_equal(call(&g, OP_RELEASE, 0, 0).r, 0);
    assert_int_equal(call(&g, OP_RELEASE, 1, 0).r, 0);
    assert_int_equal(call(&g, OP_CLOSE, 0, 0).r, 0);
    call(&g, OP_EXIT, 0, 0);
    assert_int_equal(agent_end(&g), 0);
}

/* The owner in a child, killed with SIGKILL; this process is the peer. */
static void owner_death(void **state) {
    (void)state;
    NEED_SHM();
    snprintf(path, sizeof path, "/tmp/bp-test-shm-%d.sock", (int)getpid());
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    fflush(NULL);
    pid_t o = fork();
    if (o == 0)
        owner_child(ready[1], NULL, 2000, 100);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    bp_shm *s = bp_shm_attach(path, NULL);
    assert_non_null(s);
    assert_int_equal(read(ready[0], &c, 1), 1);
    size_t len;
    void *p1 = bp_shm_recv(s, &len, WAIT_MS);
    assert_non_null(p1);
    kill(o, SIGKILL);
    int st;
    waitpid(o, &st, 0);
    /* what was delivered is still there; then EPIPE; releases are accepted */
    void *p2 = bp_shm_recv(s, &len, WAIT_MS), *p3 = bp_shm_recv(s, &len, WAIT_MS);
    assert_non_null(p2);
    assert_non_null(p3);
    assert_int_equal(*(uint64_t *)p3, 102);
    assert_null(bp_shm_recv(s, &len, WAIT_MS));
    assert_int_equal(errno, EPIPE);
    assert_int_equal(bp_release(p1), 0);
    assert_int_equal(bp_release(p2), 0);
    assert_int_equal(bp_shm_close(s, 0), 1); /* p3 still held: it detaches after */
    assert_int_equal(bp_release(p3), 0);
    /* a new owner takes over the socket file the dead one left */
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    bp_shm *s2 = bp_shm_create(path, NULL, NULL);
    assert_non_null(s2);
    assert_int_equal(bp_shm_close(s2, 0), 0);
    assert_int_not_equal(stat(path, &sb), 0); /* and removes it when it closes */
    close(ready[0]);
    close(ready[1]);
}

static void fork_child_is_detached(void **state) {
    (void)state;
    NEED_SHM();
    bp_shm *s = owner(0, 0, 0);
    agent g;
    bp_shm_peer peer = first_peer(&g);
    void *a = filled(s, 700, 5);
    assert_int_equal(bp_shm_send(s, peer, a, 700), 0);
    assert_int_equal(call(&g, OP_RECV, WAIT_MS, 0).r, 0);
    assert_int_equal(call(&g, OP_RETAIN, 0, 0).r, 0);
    assert_int_equal(call(&g, OP_FORK, 0, 2).r, 0); /* the child's releases change nothing */
    assert_int_equal(call(&g, OP_REFCOUNT, 0, 0).r, 2);
    assert_int_equal(stats(s).held, 1);
    call(&g, OP_RELEASE, 0, 0);
    call(&g, OP_RELEASE, 0, 0);
    wait_held(s, 0);
    assert_int_equal(stats(s).returned, 1);
    /* the owner's fork() child: no gets, no sends */
    fflush(NULL);
    pid_t c = fork();
    if (c == 0) {
        default_signals();
        int ok = !bp_get(bp_shm_pool(s), 100) && errno == EPERM;
        ok = ok && bp_shm_send(s, peer, a, 10) == EPERM;
        ok = ok && bp_put(bp_shm_pool(s), a) == 0; /* does nothing to the parent */
        _exit(ok ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(bp_refcount(a), 1);
    bp_put(bp_shm_pool(s), a);
    end_in_death(s, &g);
}

static void a_peer_that_execs(void **state) {
    (void)state;
    NEED_SHM();
    bp_shm *s = owner(0, 0, 0);
    agent g;
    bp_shm_peer peer = first_peer(&g);
    void *a = filled(s, 900, 9);
    assert_int_equal(bp_shm_send(s, peer, a, 900), 0);
    assert_int_equal(call(&g, OP_RECV, WAIT_MS, 0).r, 0);
    call(&g, OP_EXEC, 0, 0);
    /* alive, but it maps the pool no more: its grants are swept */
    assert_int_equal(ev_wait(BP_SHM_DIED, 1), peer);
    assert_int_equal(kill(g.pid, 0), 0);
    bp_shm_stats st = stats(s);
    assert_int_equal(st.swept, 1);
    assert_int_equal(st.held, 0);
    assert_int_equal(bp_refcount(a), 1);
    kill(g.pid, SIGKILL);
    agent_end(&g);
    bp_put(bp_shm_pool(s), a);
    assert_int_equal(bp_shm_close(s, WAIT_MS), 0);
}

static void abstract_names_and_poll(void **state) {
    (void)state;
    NEED_SHM();
    bp_shm *s = owner(0, 0, BP_SHM_NO_THREAD); /* the caller drives it */
    assert_true(bp_shm_fd(s) >= 0);
    agent g = agent_new();
    cmd c = {OP_ATTACH, 0, 0};
    assert_int_equal(write(g.to, &c, sizeof c), (ssize_t)sizeof c);
    while (ev_count[BP_SHM_ATTACHED] == 0) /* this thread is the only one: no lock needed */
        assert_true(bp_shm_poll(s, WAIT_MS) >= 0);
    reply r;
    assert_int_equal(read(g.from, &r, sizeof r), (ssize_t)sizeof r);
    assert_int_equal(r.r, 0);
    bp_shm_peer peer = ev_last[BP_SHM_ATTACHED];
    void *a = filled(s, 64, 3);
    assert_int_equal(bp_shm_send(s, peer, a, 64), 0);
    assert_int_equal(call(&g, OP_RECV, WAIT_MS, 0).r, 0);
    assert_int_equal(call(&g, OP_RELEASE, 0, 0).r, 0);
    struct pollfd pf = {bp_shm_fd(s), POLLIN, 0};
    assert_int_equal(poll(&pf, 1, WAIT_MS), 1); /* the return woke the descriptor */
    while (stats(s).held)
        assert_true(bp_shm_poll(s, WAIT_MS) >= 0);
    assert_int_equal(stats(s).returned, 1);
    call(&g, OP_EXIT, 0, 0);
    agent_end(&g);
    while (ev_count[BP_SHM_DIED] == 0)
        assert_true(bp_shm_poll(s, WAIT_MS) >= 0);
    bp_put(bp_shm_pool(s), a);
    assert_int_equal(bp_shm_close(s, WAIT_MS), 0);
}

static void sixty_three_peers(void **state) {
    (void)state;
    NEED_SHM();
    bp_shm *s = owner(2, 63, 0);
    static agent g[64];
    for (int i = 0; i < 64; i++)
        g[i] = agent_new();
    for (int i = 0; i < 63; i++)
        assert_int_equal(call(&g[i], OP_ATTACH, 0, 0).r, 0);
    ev_wait(BP_SHM_ATTACHED, 63);
    reply r = call(&g[63], OP_ATTACH, 0, 0);
    assert_int_equal(r.err, EBUSY);
    bp_shm_peer_stats ps[63];
    assert_int_equal(bp_shm_peers(s, ps, 63), 63);
    void *a = filled(s, 128, 63);
    for (int i = 0; i < 63; i++)
        assert_int_equal(bp_shm_send(s, ps[i].peer, a, 128), 0);
    assert_int_equal(bp_refcount(a), 64);
    for (int i = 0; i < 63; i++)
        assert_int_equal(call(&g[i], OP_RECV, WAIT_MS, 0).y, 63);
    for (int i = 0; i < 64; i++) {
        call(&g[i], OP_EXIT, 0, 0);
        agent_end(&g[i]);
    }
    ev_wait(BP_SHM_DIED, 63);
    bp_shm_stats st = stats(s);
    assert_int_equal(st.swept, 63);
    assert_int_equal(bp_refcount(a), 1);
    bp_put(bp_shm_pool(s), a);
    assert_int_equal(bp_shm_close(s, WAIT_MS), 0);
}

/* ---- crash points: a peer killed at each step of the state machines ----------------- */

/* The agent arms the point, attaches, and is sent a buffer, which it
 * receives, imports and releases: it dies at the n-th pass of the point.
 * Whatever the step, every grant comes back once (checked mode aborts on a
 * second release) and nothing stays referenced. */
static void crash_at(int point, int n, int expect_swept) {
#ifndef BP_SHM_CRASHPOINTS
    (void)point, (void)n, (void)expect_swept;
    printf("skip: built without BP_SHM_CRASHPOINTS\n");
    skip();
#endif
    bp_shm *s = owner(0, 0, 0);
    agent g = agent_new();
    call(&g, OP_CRASH, (uint64_t)point, (uint64_t)n);
    reply r = call(&g, OP_ATTACH, 0, 0);
    bp_shm_peer peer = 0;
    void *a = filled(s, 3000, 77), *b = filled(s, 3000, 78);
    if (r.r == 0) {
        peer = ev_wait(BP_SHM_ATTACHED, 1);
        bp_shm_send(s, peer, a, 3000);
        bp_shm_handle h = bp_shm_export(s, peer, a); /* a second grant of the same buffer */
        bp_shm_send(s, peer, b, 3000);
        r = call(&g, OP_RECV, WAIT_MS, 0);
        if (r.r >= 0)
            r = call(&g, OP_IMPORT, h, 0);
        if (r.r >= 0)
            r = call(&g, OP_RELEASE, 0, 0);
        if (r.r >= 0)
            r = call(&g, OP_RELEASE, 1, 0);
        if (r.r >= 0)
            r = call(&g, OP_RECV, WAIT_MS, 0);
        if (r.r >= 0)
            r = call(&g, OP_RELEASE, 2, 0);
    }
    assert_int_equal(r.err, EPIPE); /* it died on the way */
    assert_int_equal(agent_end(&g), 128 + SIGKILL);
    if (peer)
        ev_wait(BP_SHM_DIED, 1);
    bp_shm_stats st = stats(s);
    assert_int_equal(st.held, 0);
    assert_int_equal(st.granted, st.returned + st.swept);
    if (expect_swept >= 0)
        assert_int_equal(st.swept, expect_swept);
    assert_int_equal(st.bad_returns, 0);
    bp_put(bp_shm_pool(s), a);
    bp_put(bp_shm_pool(s), b);
    assert_int_equal(outstanding(s), 0);
    assert_int_equal(bp_shm_close(s, WAIT_MS), 0);
}

static void crash_mid_attach(void **state) {
    (void)state;
    NEED_SHM();
    crash_at(0, 1, -1); /* after HELLO: maybe never LIVE, maybe LIVE and then dead */
    crash_at(1, 1, 0);
}
static void crash_after_taking_a_delivery(void **state) {
    (void)state;
    NEED_SHM();
    crash_at(2, 1, 3); /* nothing imported: all three grants swept */
    crash_at(2, 2, 1); /* the first record came and went: the second swept */
}
static void crash_mid_import(void **state) {
    (void)state;
    NEED_SHM();
    crash_at(3, 1, 3); /* count 0 -> 1, kept grant not yet recorded */
}
static void crash_between_last_release_and_return(void **state) {
    (void)state;
    NEED_SHM();
    crash_at(4, 1, 2); /* the surplus grant went back; the kept one not yet */
}
static void crash_before_a_return_is_published(void **state) {
    (void)state;
    NEED_SHM();
    crash_at(5, 1, 3); /* the surplus return written, its index not moved: not returned */
    crash_at(5, 2, 2); /* the second return written, not published */
}

/* The owner killed at its own points: a peer keeps what was delivered,
 * reads it whole, hears EPIPE, and its releases are accepted. */
static void owner_crash_at(const char *point, int n) {
#ifndef BP_SHM_CRASHPOINTS
    (void)point, (void)n;
    printf("skip: built without BP_SHM_CRASHPOINTS\n");
    skip();
#endif
    snprintf(path, sizeof path, "@bp-test-shm-owner-%d-%d", (int)getpid(), ++test_no);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    fflush(NULL);
    pid_t o = fork();
    if (o == 0) {
        char v[96];
        snprintf(v, sizeof v, "%s:%d", point, n);
        owner_child(ready[1], v, 1500, 200);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    bp_shm *s = bp_shm_attach(path, NULL);
    assert_non_null(s);
    void *got[3];
    size_t len, n_got = 0;
    while (n_got < 3) {
        void *p = bp_shm_recv(s, &len, WAIT_MS);
        if (!p)
            break;
        assert_int_equal(len, 1500);
        assert_int_equal(*(uint64_t *)p, 200 + n_got);
        got[n_got++] = p;
        if (n_got == 1)
            assert_int_equal(bp_release(got[0]), 0); /* a return for the owner to take */
    }
    if (n_got == 3)
        assert_null(bp_shm_recv(s, &len, WAIT_MS));
    assert_int_equal(errno, EPIPE);
    int st;
    assert_int_equal(waitpid(o, &st, 0), o);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    for (size_t i = 1; i < n_got; i++)
        assert_int_equal(bp_release(got[i]), 0);
    assert_int_equal(bp_shm_close(s, 0), 0);
    close(ready[0]);
    close(ready[1]);
}

static void owner_crash_points(void **state) {
    (void)state;
    NEED_SHM();
    owner_crash_at("owner_grant_before_entry", 2);  /* the second grant never published */
    owner_crash_at("owner_send_before_publish", 3); /* the third delivery never published */
    owner_crash_at("owner_return_before_free", 1);  /* a return read, its grant not freed */
}

/* The model of tests/shm_model.h (fuzz_shm's) over the seed corpus and
 * pseudo-random steps: peers attached from this process, killed between
 * steps and at crash points, every count checked after every step. */
#ifdef BP_SHM_CRASHPOINTS
#define MODEL_CHECK(cond) assert_true(cond)
#include "shm_model.h"
#endif

static void model_steps(void **state) {
    (void)state;
    NEED_SHM();
#ifndef BP_SHM_CRASHPOINTS
    printf("skip: built without BP_SHM_CRASHPOINTS\n");
    skip();
#else
    unsigned char buf[600];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int run = 0; run < 40; run++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (unsigned char)x;
            if (i % 3 == 0 && i < 9) /* attach three peers first */
                buf[i] = 9, buf[i + 2] = (unsigned char)(i / 3);
        }
        model_bytes in = {buf, sizeof buf, 0};
        model_run(&in);
    }
#endif
}

/* What /dev/shm holds, one name per line (the library must add nothing). */
static char *dev_shm(void) {
    FILE *f = popen("ls /dev/shm 2>/dev/null | sort", "r");
    static char buf[1 << 16];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f)
        pclose(f);
    return strdup(buf);
}

int main(void) {
    signal(SIGPIPE, SIG_DFL); /* the library must never raise it: a test would die of it */
    char *before = dev_shm();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(attach_and_detach),
        cmocka_unit_test(send_recv_import_and_interior),
        cmocka_unit_test(two_grants_of_one_buffer),
        cmocka_unit_test(cap_and_enobufs),
        cmocka_unit_test(refusals),
        cmocka_unit_test(another_user_is_refused),
        cmocka_unit_test(owner_close_with_grants_out),
        cmocka_unit_test(owner_death),
        cmocka_unit_test(fork_child_is_detached),
        cmocka_unit_test(a_peer_that_execs),
        cmocka_unit_test(abstract_names_and_poll),
        cmocka_unit_test(sixty_three_peers),
        cmocka_unit_test(crash_mid_attach),
        cmocka_unit_test(crash_after_taking_a_delivery),
        cmocka_unit_test(crash_mid_import),
        cmocka_unit_test(crash_between_last_release_and_return),
        cmocka_unit_test(crash_before_a_return_is_published),
        cmocka_unit_test(owner_crash_points),
        cmocka_unit_test(model_steps),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    /* No residue: nothing new in /dev/shm; every process this test started
     * was waited for, and this one maps no pool any more. */
    char *after = dev_shm();
    int residue = strcmp(before, after) != 0;
    if (residue)
        fprintf(stderr, "residue in /dev/shm:\n%s\n(before:\n%s)\n", after, before);
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    while (maps && fgets(line, sizeof line, maps))
        if (strstr(line, "memfd:bytepool-shm")) {
            fprintf(stderr, "still mapped: %s", line);
            residue = 1;
        }
    if (maps)
        fclose(maps);
    int st;
    if (waitpid(-1, &st, WNOHANG) != -1 || errno != ECHILD) {
        fprintf(stderr, "a child process was left\n");
        residue = 1;
    }
    free(before);
    free(after);
    return failed || residue;
}
