/* SPDX-License-Identifier: MIT */
/* test_uring.c - libbytepool_uring on a real io_uring: multishot recv on a
 * socketpair picks pool buffers; each completion is a reference the test
 * slices and releases (on another thread too); a buffer goes back to the
 * kernel only once every reference is gone; ENOBUFS is counted and the
 * request re-armed after a replenish; incremental mode packs completions
 * into one buffer; destroy leaves referenced buffers valid. Skips where the
 * kernel has no io_uring (or refuses incremental mode). */
#include "helpers.h"

#define MODEL_CHECK(cond) assert_true(cond)
#include "uring_model.h"
#include <pthread.h>
#include <sched.h>
#include <netinet/in.h>
#include <sys/socket.h>

typedef struct {
    struct io_uring ring;
    int fds[2];
    bp_pool *pool;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    int err = io_uring_queue_init(64, &f->ring, 0);
    if (err) {
        free(f);
        *state = NULL;
        return 0; /* the tests skip */
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, f->fds) != 0)
        return -1;
    f->pool = bp_pool_new(NULL);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    if (!f)
        return 0;
    io_uring_queue_exit(&f->ring);
    close(f->fds[0]);
    close(f->fds[1]);
    assert_int_equal(bp_pool_destroy(f->pool), 0); /* nothing leaked */
    free(f);
    return 0;
}

#define NEED_URING(f)                                                                              \
    do {                                                                                           \
        if (!(f)) {                                                                                \
            fprintf(stderr, "io_uring not available: skipped\n");                                  \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static void arm_recv(fixture *f, unsigned short bgid) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring);
    io_uring_prep_recv_multishot(sqe, f->fds[0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = bgid;
    assert_true(io_uring_submit(&f->ring) >= 0);
}

/* Writes len bytes of `c`, then waits for the next completion. */
static struct io_uring_cqe *send_and_wait(fixture *f, char c, size_t len) {
    char data[4096];
    memset(data, c, len);
    assert_int_equal(write(f->fds[1], data, len), (ssize_t)len);
    struct io_uring_cqe *cqe;
    assert_int_equal(io_uring_wait_cqe(&f->ring, &cqe), 0);
    return cqe;
}

static void *release_there(void *p) { return (void *)(intptr_t)bp_release(p); }

static void completion_is_a_reference(void **state) {
    fixture *f = *state;
    NEED_URING(f);
    bp_uring_bufs *b = bp_uring_bufs_new(f->pool, &f->ring, 1, 1000, 4, 0);
    assert_non_null(b);
    bp_uring_stats st;
    assert_int_equal(bp_uring_bufs_stats(b, &st), 0);
    assert_int_equal(st.buf_size, 1024); /* the tier serving 1000 */
    assert_int_equal(st.in_kernel, 4);
    assert_int_equal(bp_uring_bufs_publish(b, "ring_t1"), 0);
    assert_int_equal(bp_uring_bufs_publish(b, "ring_t1"), EINVAL);
    arm_recv(f, 1);
    struct io_uring_cqe *cqe = send_and_wait(f, 'a', 300);
    size_t len = 0;
    char *p = bp_uring_bufs_take(b, cqe, &len);
    io_uring_cqe_seen(&f->ring, cqe);
    assert_non_null(p);
    assert_int_equal(len, 300);
    assert_true(p[0] == 'a' && p[299] == 'a');
    assert_int_equal(bp_refcount(p), 2); /* ours and the ring's */
    char *slice = bp_retain(p + 100);    /* a slice for another thread */
    assert_int_equal(bp_release(p), 0);
    assert_int_equal(bp_uring_bufs_replenish(b), 0); /* the slice still reads it */
    assert_int_equal(bp_uring_bufs_stats(b, &st), 0);
    assert_int_equal(st.in_kernel, 3);
    assert_int_equal(st.in_program, 1);
    char *vars = bp_expvar_json(); /* the ring as /debug/vars shows it */
    assert_int_equal(jq_check(vars, ".ring_t1.uring | .in_kernel == 3 and .in_program == 1 and "
                                    ".taken == 1 and .nbufs == 4 and .buf_size == 1024"),
                     0);
    free(vars);
    char *prom = bp_prometheus_all(); /* and as /metrics shows it */
    assert_non_null(strstr(prom, "bytepool_uring_in_kernel{var=\"ring_t1\"} 3\n"));
    assert_non_null(strstr(prom, "bytepool_uring_in_program{var=\"ring_t1\"} 1\n"));
    assert_non_null(strstr(prom, "# TYPE bytepool_uring_taken_total counter\n"
                                 "bytepool_uring_taken_total{var=\"ring_t1\"} 1\n"));
    assert_non_null(strstr(prom, "bytepool_uring_enobufs_total{var=\"ring_t1\"} 0\n"));
    free(prom);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, release_there, slice), 0);
    void *rc;
    pthread_join(t, &rc);
    assert_int_equal((intptr_t)rc, 0);
    assert_int_equal(bp_uring_bufs_replenish(b), 1); /* now it goes back */
    assert_int_equal(bp_uring_bufs_stats(b, &st), 0);
    assert_int_equal(st.in_kernel, 4);
    assert_int_equal(st.taken, 1);
    assert_int_equal(st.returned, 1);
    shutdown(f->fds[1], SHUT_WR); /* ends the multishot recv */
    assert_int_equal(io_uring_wait_cqe(&f->ring, &cqe), 0);
    io_uring_cqe_seen(&f->ring, cqe);
    assert_int_equal(bp_uring_bufs_destroy(b), 0);
    vars = bp_expvar_json();
    assert_int_equal(jq_check(vars, "has(\"ring_t1\") | not"), 0); /* destroy unpublished */
    free(vars);
}

static void enobufs_then_rearm(void **state) {
    fixture *f = *state;
    NEED_URING(f);
    bp_uring_bufs *b = bp_uring_bufs_new(f->pool, &f->ring, 2, 512, 2, 0);
    assert_non_null(b);
    arm_recv(f, 2);
    void *held[2];
    size_t len;
    for (int i = 0; i < 2; i++) {
        struct io_uring_cqe *cqe = send_and_wait(f, (char)('x' + i), 100);
        held[i] = bp_uring_bufs_take(b, cqe, &len);
        io_uring_cqe_seen(&f->ring, cqe);
        assert_non_null(held[i]);
    }
    struct io_uring_cqe *cqe = send_and_wait(f, 'z', 100); /* no buffer left */
    errno = 0;
    assert_null(bp_uring_bufs_take(b, cqe, &len));
    assert_int_equal(errno, ENOBUFS);
    assert_false(cqe->flags & IORING_CQE_F_MORE); /* the request ended */
    io_uring_cqe_seen(&f->ring, cqe);
    bp_uring_stats st;
    bp_uring_bufs_stats(b, &st);
    assert_int_equal(st.enobufs, 1);
    assert_int_equal(st.in_kernel, 0);
    bp_release(held[0]);
    assert_int_equal(bp_uring_bufs_replenish(b), 1);
    arm_recv(f, 2); /* re-armed: the 'z' bytes still wait in the socket */
    assert_int_equal(io_uring_wait_cqe(&f->ring, &cqe), 0);
    char *p = bp_uring_bufs_take(b, cqe, &len);
    io_uring_cqe_seen(&f->ring, cqe);
    assert_non_null(p);
    assert_int_equal(len, 100);
    assert_int_equal(p[0], 'z');
    assert_ptr_equal(bp_base(p), held[0]); /* the recycled buffer */
    bp_release(p);
    assert_int_equal(bp_uring_bufs_destroy(b), 1); /* held[1] is still ours */
    assert_int_equal(((char *)held[1])[99], 'y');  /* and still valid */
    bp_release(held[1]);
    shutdown(f->fds[1], SHUT_WR);
    if (io_uring_peek_cqe(&f->ring, &cqe) == 0 || io_uring_wait_cqe(&f->ring, &cqe) == 0)
        io_uring_cqe_seen(&f->ring, cqe);
}

static void incremental_packs_completions(void **state) {
    fixture *f = *state;
    NEED_URING(f);
    bp_uring_bufs *b = bp_uring_bufs_new(f->pool, &f->ring, 3, 4096, 2, BP_URING_INC);
    if (!b && errno == EOPNOTSUPP) {
        fprintf(stderr, "the kernel has no incremental buffer rings: skipped\n");
        skip();
    }
    assert_non_null(b);
    arm_recv(f, 3);
    size_t len;
    struct io_uring_cqe *cqe = send_and_wait(f, '1', 100);
    assert_true(cqe->flags & IORING_CQE_F_BUF_MORE); /* 100 of 4096 bytes used */
    char *a = bp_uring_bufs_take(b, cqe, &len);
    io_uring_cqe_seen(&f->ring, cqe);
    cqe = send_and_wait(f, '2', 100);
    char *c = bp_uring_bufs_take(b, cqe, &len);
    io_uring_cqe_seen(&f->ring, cqe);
    assert_non_null(a);
    assert_non_null(c);
    assert_ptr_equal(c, a + 100); /* packed after the first, in the same buffer */
    assert_true(a[99] == '1' && c[0] == '2');
    bp_release(a);
    bp_release(c);
    assert_int_equal(bp_uring_bufs_replenish(b), 0); /* the kernel still fills its rest */
    bp_uring_stats st;
    bp_uring_bufs_stats(b, &st);
    assert_int_equal(st.in_program, 1);
    shutdown(f->fds[1], SHUT_WR);
    assert_int_equal(io_uring_wait_cqe(&f->ring, &cqe), 0);
    io_uring_cqe_seen(&f->ring, cqe);
    assert_int_equal(bp_uring_bufs_destroy(b), 0);
}

/* A connected TCP pair on loopback (zero-copy send wants a real socket). */
static void tcp_pair(int *a, int *c) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(l, 1), 0);
    getsockname(l, (struct sockaddr *)&sa, &sl);
    *c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*c, (struct sockaddr *)&sa, sizeof sa), 0);
    *a = accept(l, NULL, NULL);
    assert_true(*a >= 0);
    close(l);
}

static void zero_copy_send_holds_the_buffer(void **state) {
    fixture *f = *state;
    NEED_URING(f);
    int a, c;
    tcp_pair(&a, &c);
    unsigned char *p = bp_get(f->pool, 8192);
    for (int i = 0; i < 8192; i++)
        p[i] = (unsigned char)(i * 7);
    bp_uring_zc z;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring);
    assert_int_equal(bp_uring_prep_send_zc(sqe, &z, a, p + 192, 8000, 0), 0);
    assert_int_equal(bp_refcount(p), 2);     /* ours and the kernel's */
    assert_int_equal(bp_put(f->pool, p), 0); /* ours goes: the kernel's keeps it */
    assert_int_equal(bp_refcount(z.held), 1);
    io_uring_submit(&f->ring);
    bool done = false;
    int seen = 0;
    while (!done) {
        struct io_uring_cqe *cqe;
        assert_int_equal(io_uring_wait_cqe(&f->ring, &cqe), 0);
        assert_ptr_equal(io_uring_cqe_get_data(cqe), &z);
        if (seen++ == 0 && cqe->res < 0 && (cqe->res == -EOPNOTSUPP || cqe->res == -EINVAL)) {
            bp_uring_send_zc_done(&z, cqe); /* drops the kernel's reference */
            io_uring_cqe_seen(&f->ring, cqe);
            fprintf(stderr, "no zero-copy send here (%s): skipped\n", strerror(-cqe->res));
            close(a);
            close(c);
            skip();
        }
        done = bp_uring_send_zc_done(&z, cqe);
        if (!done) /* the send completed, the notification is to come */
            assert_int_equal(bp_refcount(z.held), 1);
        io_uring_cqe_seen(&f->ring, cqe);
    }
    assert_int_equal(z.res, 8000);
    assert_null(z.held);
    assert_int_equal(bp_refcount(p), 0); /* back in the pool */
    unsigned char got[8000];
    size_t n = 0;
    while (n < sizeof got) {
        ssize_t r = read(c, got + n, sizeof got - n);
        assert_true(r > 0);
        n += (size_t)r;
    }
    for (int i = 0; i < 8000; i++)
        assert_int_equal(got[i], (unsigned char)((i + 192) * 7));
    bp_uring_zc bad;
    int x;
    sqe = io_uring_get_sqe(&f->ring);
    assert_int_equal(bp_uring_prep_send_zc(sqe, &bad, a, &x, 4, 0), EINVAL); /* not pooled */
    io_uring_prep_nop(sqe); /* left unprepared: give it something to do */
    io_uring_submit(&f->ring);
    struct io_uring_cqe *cqe;
    assert_int_equal(io_uring_wait_cqe(&f->ring, &cqe), 0);
    io_uring_cqe_seen(&f->ring, cqe);
    close(a);
    close(c);
}

/* The model's steps (tests/uring_model.h) from a seeded generator. */
static void random_state_machine(fixture *f, unsigned flags, unsigned seed, int steps) {
    unsigned char bytes[3 * 2000];
    unsigned r = seed;
    for (int i = 0; i < 3 * steps && i < (int)sizeof bytes; i++) {
        r = r * 1103515245u + 12345u;
        bytes[i] = (unsigned char)(r >> 16);
    }
    model_bytes in = {bytes, (size_t)3 * (size_t)steps, 0};
    if (in.n > sizeof bytes)
        in.n = sizeof bytes;
    model_run(f->pool, &f->ring, 7, flags, &in);
}

typedef struct handoff {
    void *p[16];
    int n;
} handoff;

static void *release_all_there(void *arg) {
    handoff *h = arg;
    for (int i = 0; i < h->n; i++) {
        assert_int_equal(bp_release(h->p[i]), 0);
        if (i % 3 == 0)
            sched_yield();
    }
    return NULL;
}

/* Releases on other threads land on the return stack; replenish gives back
 * what came back, and destroy racing those releases neither loses a buffer
 * nor lets a late release touch the freed ring. */
static void releases_elsewhere_come_back_through_the_stack(void **state) {
    fixture *f = *state;
    NEED_URING(f);
    for (int round = 0; round < 200; round++) {
        bp_uring_bufs *b = bp_uring_bufs_new(f->pool, &f->ring, 9, 512, 16, 0);
        assert_non_null(b);
        handoff h[2] = {{{0}, 0}, {{0}, 0}};
        for (unsigned bid = 0; bid < 16; bid++) {
            struct io_uring_cqe cqe = model_cqe(bid, 100, 0);
            size_t len;
            char *p = bp_uring_bufs_take(b, &cqe, &len);
            assert_non_null(p);
            handoff *to = &h[bid % 2];
            to->p[to->n++] = bp_retain(p + 50); /* a slice to each thread */
            assert_int_equal(bp_release(p), 0);
        }
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, release_all_there, &h[i]);
        if (round % 2) { /* destroy while the threads release */
            size_t held = bp_uring_bufs_destroy(b);
            assert_true(held <= 16);
            for (int i = 0; i < 2; i++)
                pthread_join(t[i], NULL);
            continue;
        }
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        assert_int_equal(bp_uring_bufs_replenish(b), 16);
        assert_int_equal(bp_uring_bufs_replenish(b), 0);
        bp_uring_stats st;
        bp_uring_bufs_stats(b, &st);
        assert_int_equal(st.in_kernel, 16);
        assert_int_equal(st.returned, 16);
        assert_int_equal(bp_uring_bufs_destroy(b), 0);
    }
    bp_stats ps;
    bp_pool_stats(f->pool, &ps);
    assert_int_equal(ps.outstanding, 0);
}

/* A buffer that came back empty (res 0) with nothing out goes straight to
 * the replenish list: no watch to wait for. */
static void an_empty_completion_recycles_at_once(void **state) {
    fixture *f = *state;
    NEED_URING(f);
    bp_uring_bufs *b = bp_uring_bufs_new(f->pool, &f->ring, 10, 512, 2, 0);
    assert_non_null(b);
    struct io_uring_cqe cqe = model_cqe(1, 0, 0);
    size_t len = 7;
    errno = 0;
    assert_null(bp_uring_bufs_take(b, &cqe, &len));
    assert_int_equal(errno, ENODATA);
    assert_int_equal(len, 7); /* untouched */
    assert_int_equal(bp_uring_bufs_replenish(b), 1);
    assert_int_equal(bp_uring_bufs_destroy(b), 0);
}

static void state_machine_against_a_model(void **state) {
    fixture *f = *state;
    NEED_URING(f);
    for (unsigned seed = 1; seed <= 20; seed++) {
        random_state_machine(f, 0, seed, 2000);
        random_state_machine(f, BP_URING_INC, seed * 7919u, 2000);
    }
}

/* Ends the multishot recv (the peer shuts down) and consumes its last
 * completion. */
static void end_recv(fixture *f) {
    struct io_uring_cqe *cqe;
    shutdown(f->fds[1], SHUT_WR);
    assert_int_equal(io_uring_wait_cqe(&f->ring, &cqe), 0);
    io_uring_cqe_seen(&f->ring, cqe);
}

/* A completion of group 2 offered to ring 1: refused when the caller names
 * the group, and by BP_URING_CHECKED when it does not; ring 2 takes it. */
static void another_groups_completion_is_refused(void **state) {
    fixture *f = *state;
    NEED_URING(f);
    bp_uring_bufs *b1 = bp_uring_bufs_new(f->pool, &f->ring, 1, 1000, 4, BP_URING_CHECKED);
    if (!b1 && errno == EOPNOTSUPP) {
        fprintf(stderr, "kernel reports no buffer ring head (Linux < 6.8): skipped\n");
        skip();
    }
    assert_non_null(b1);
    bp_uring_bufs *b2 = bp_uring_bufs_new(f->pool, &f->ring, 2, 1000, 4, BP_URING_CHECKED);
    assert_non_null(b2);
    arm_recv(f, 2);
    struct io_uring_cqe *cqe = send_and_wait(f, 'z', 100);
    struct io_uring_cqe copy = *cqe;
    io_uring_cqe_seen(&f->ring, cqe);
    size_t len = 0;
    errno = 0;
    assert_null(bp_uring_bufs_take_bgid(b1, 2, &copy, &len)); /* the request named group 2 */
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(bp_uring_bufs_take(b1, &copy, &len)); /* ring 1 still has that buffer id queued */
    assert_int_equal(errno, EINVAL);
    bp_uring_stats st;
    assert_int_equal(bp_uring_bufs_stats(b1, &st), 0);
    assert_int_equal(st.in_kernel, 4); /* nothing taken, nothing to give twice */
    assert_int_equal(st.taken, 0);
    assert_int_equal(bp_uring_bufs_replenish(b1), 0);
    char *p = bp_uring_bufs_take_bgid(b2, 2, &copy, &len);
    assert_non_null(p);
    assert_int_equal(len, 100);
    assert_true(p[0] == 'z' && p[99] == 'z');
    assert_int_equal(bp_release(p), 0);
    assert_int_equal(bp_uring_bufs_replenish(b2), 1);
    end_recv(f);
    assert_int_equal(bp_uring_bufs_destroy(b1), 0);
    assert_int_equal(bp_uring_bufs_destroy(b2), 0);
}

/* A res larger than the buffer is cut to the buffer's capacity. */
static void a_crafted_length_is_cut_to_the_buffer(void **state) {
    fixture *f = *state;
    NEED_URING(f);
    bp_uring_bufs *b = bp_uring_bufs_new(f->pool, &f->ring, 3, 1000, 2, 0);
    assert_non_null(b);
    arm_recv(f, 3);
    struct io_uring_cqe *cqe = send_and_wait(f, 'y', 10);
    struct io_uring_cqe copy = *cqe;
    io_uring_cqe_seen(&f->ring, cqe);
    copy.res = 1 << 20;
    size_t len = 0;
    char *p = bp_uring_bufs_take(b, &copy, &len);
    assert_non_null(p);
    assert_int_equal(len, bp_cap(p)); /* 1024, not 1 MiB */
    assert_int_equal(len, 1024);
    assert_int_equal(bp_release(p), 0);
    end_recv(f);
    assert_int_equal(bp_uring_bufs_destroy(b), 0);
}

/* The program cannot disarm the ring's return watch, so destroy never
 * waits for a return that will not come. */
static void the_rings_watch_is_its_own(void **state) {
    fixture *f = *state;
    NEED_URING(f);
    bp_uring_bufs *b = bp_uring_bufs_new(f->pool, &f->ring, 4, 1000, 2, 0);
    assert_non_null(b);
    arm_recv(f, 4);
    struct io_uring_cqe *cqe = send_and_wait(f, 'x', 10);
    size_t len = 0;
    char *p = bp_uring_bufs_take(b, cqe, &len);
    io_uring_cqe_seen(&f->ring, cqe);
    assert_non_null(p);
    assert_int_equal(bp_unwatch(p), EPERM);
    static bp_watcher mine = {NULL};
    assert_int_equal(bp_unwatch_owned(p, &mine), EPERM);
    end_recv(f);
    assert_int_equal(bp_uring_bufs_destroy(b), 1); /* returns: p is still held */
    assert_int_equal(bp_refcount(p), 1);
    assert_int_equal(bp_release(p), 0);
}

static void bad_arguments(void **state) {
    fixture *f = *state;
    NEED_URING(f);
    errno = 0;
    assert_null(bp_uring_bufs_new(f->pool, &f->ring, 4, 1000, 3, 0)); /* not a power of two */
    assert_int_equal(errno, EINVAL);
    assert_null(bp_uring_bufs_new(f->pool, &f->ring, 4, 64u << 20, 4, 0)); /* oversize */
    assert_null(bp_uring_bufs_new(NULL, &f->ring, 4, 1000, 4, 0));
    assert_null(bp_uring_bufs_new(f->pool, &f->ring, 4, 1000, 4, 0x80));
    bp_uring_bufs *b = bp_uring_bufs_new(f->pool, &f->ring, 4, 1000, 4, 0);
    assert_non_null(b);
    assert_null(bp_uring_bufs_new(f->pool, &f->ring, 4, 1000, 4, 0)); /* bgid taken */
    assert_int_equal(errno, EEXIST);
    struct io_uring_cqe fake = {.res = 10, .flags = IORING_CQE_F_BUFFER | (9u << 16)};
    size_t len;
    assert_null(bp_uring_bufs_take(b, &fake, &len)); /* no buffer 9 */
    assert_int_equal(errno, EINVAL);
    fake.flags = 0;
    assert_null(bp_uring_bufs_take(b, &fake, &len)); /* no buffer at all */
    assert_int_equal(errno, EINVAL);
    assert_int_equal(bp_uring_bufs_destroy(b), 0);
    assert_int_equal(bp_uring_bufs_destroy(NULL), 0);
}

/* Pool memory as fixed buffers: a buffer's segment is registered when it is
 * mapped, write_fixed and read_fixed move its bytes through a file, and the
 * slot goes when the segment is unmapped. */
static struct io_uring_cqe *one_cqe(fixture *f) {
    struct io_uring_cqe *cqe;
    assert_true(io_uring_submit(&f->ring) >= 0);
    assert_int_equal(io_uring_wait_cqe(&f->ring, &cqe), 0);
    return cqe;
}

static void fixed_buffers_follow_the_pools_segments(void **state) {
    fixture *f = *state;
    NEED_URING(f);
    assert_null(bp_uring_fixed_new(NULL, 64));
    assert_int_equal(errno, EINVAL);
    assert_null(bp_uring_fixed_new(&f->ring, 20000)); /* above the kernel's 16384 */
    assert_int_equal(errno, EINVAL);
    assert_int_equal(bp_uring_fixed_index(NULL, f, 1, NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(bp_uring_fixed_refused(NULL), 0);
    assert_int_equal(bp_uring_fixed_destroy(NULL), 0);
    bp_uring_fixed *fx = bp_uring_fixed_new(&f->ring, 64);
    if (!fx) {
        fprintf(stderr, "no registered buffers (%s): skipped\n", strerror(errno));
        skip();
    }
    bp_config cfg = {0};
    cfg.on_segment = bp_uring_fixed_on_segment;
    cfg.segment_ctx = fx;
    bp_pool *pool = bp_pool_new(&cfg);
    unsigned char *p = bp_get(pool, 65536), *q = bp_get(pool, 65536);
    for (size_t i = 0; i < 65536; i++)
        p[i] = (unsigned char)(i * 13);
    size_t off = 99;
    int ip = bp_uring_fixed_index(fx, p, 65536, &off),
        iq = bp_uring_fixed_index(fx, q, 65536, NULL);
    assert_true(ip >= 0 && iq >= 0);
    assert_true(off < (1u << 22));
    assert_int_equal(bp_uring_fixed_index(fx, p + 100, 10, &off), ip); /* a part of it too */
    char path[] = "/tmp/bp_fixed_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    io_uring_prep_write_fixed(io_uring_get_sqe(&f->ring), fd, p, 65536, 0, ip);
    struct io_uring_cqe *cqe = one_cqe(f);
    assert_int_equal(cqe->res, 65536);
    io_uring_cqe_seen(&f->ring, cqe);
    io_uring_prep_read_fixed(io_uring_get_sqe(&f->ring), fd, q, 65536, 0, iq);
    cqe = one_cqe(f);
    assert_int_equal(cqe->res, 65536);
    io_uring_cqe_seen(&f->ring, cqe);
    assert_memory_equal(p, q, 65536);
    close(fd);
    assert_int_equal(bp_uring_fixed_index(fx, p, 1u << 30, NULL), -1); /* past its segment */
    assert_int_equal(errno, ENOENT);
    bp_put(pool, p);
    bp_put(pool, q);
    bp_pool_trim(pool); /* the segment goes, and its slot with it */
    assert_int_equal(bp_uring_fixed_index(fx, p, 1, NULL), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(bp_uring_fixed_refused(fx), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
    assert_int_equal(bp_uring_fixed_destroy(fx), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(completion_is_a_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(enobufs_then_rearm, setup, teardown),
        cmocka_unit_test_setup_teardown(incremental_packs_completions, setup, teardown),
        cmocka_unit_test_setup_teardown(zero_copy_send_holds_the_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(state_machine_against_a_model, setup, teardown),
        cmocka_unit_test_setup_teardown(releases_elsewhere_come_back_through_the_stack, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_empty_completion_recycles_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(another_groups_completion_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(a_crafted_length_is_cut_to_the_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(the_rings_watch_is_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(fixed_buffers_follow_the_pools_segments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
