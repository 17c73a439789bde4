/* SPDX-License-Identifier: MIT */
/* uring_echo - a TCP echo server on one io_uring: multishot accept,
 * multishot recv with provided buffers, every chunk sent back as it came.
 *
 *   uring_echo --port PORT [--addr 127.0.0.1] [--bufs pool|private]
 *              [--buf-size N] [--nbufs N] [--inc] [--http ADDR]
 *
 * --bufs pool (default): one ring of pool buffers shared by every
 *   connection (libbytepool_uring); a received chunk is a reference that the
 *   send completion releases, and the buffer goes back to the kernel then.
 * --bufs private: the baseline hand-written servers use, a provided ring of
 *   its own per connection, filled once with malloc'd buffers.
 * Port 0 picks a free port; the port is printed on the first line, and with
 * --http the dashboard's as "http PORT" on the second. SIGINT or
 * SIGTERM: close everything, print a summary, exit 0 (1 if a buffer is still
 * outstanding). */
#define _GNU_SOURCE
#include <bytepool_uring.h>
#ifdef BP_WITH_HTTP
#include <bytepool_http.h>
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PRIVATE_BUFS 8 /* per connection, --bufs private */
#define MAX_CONNS 65536

enum op_kind { OP_ACCEPT, OP_RECV, OP_SEND };

typedef struct chunk {
    struct chunk *next;
    unsigned char *p; /* the bytes (a pool reference, or a private buffer) */
    size_t len, done;
    unsigned short bid; /* private mode: the buffer id to give back */
} chunk;

typedef struct conn {
    int fd;
    unsigned id;
    unsigned char recv_op, send_op; /* their addresses tag completions */
    bool recv_armed, sending, closing;
    chunk *head, *tail; /* chunks waiting to be sent, in arrival order */
    /* private mode */
    struct io_uring_buf_ring *br;
    unsigned char *mem;
    size_t br_bytes;
} conn;

static volatile sig_atomic_t stop;
static struct io_uring ring;
static bool pool_mode = true, inc;
static size_t buf_size = 4096;
static unsigned nbufs = 1024;
static bp_pool *pool;
static bp_uring_bufs *bufs;
static conn *conns[MAX_CONNS];
static unsigned char accept_op;
static uint64_t n_conns, n_bytes, n_enobufs, n_live;
static unsigned starved; /* pool mode: connections waiting for buffers */

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static struct io_uring_sqe *sqe_get(void) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (!sqe) { /* full: push what is queued, then there is room */
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
}

static unsigned short group_of(const conn *c) {
    return pool_mode ? 1 : (unsigned short)(2 + c->id);
}

static void arm_recv(conn *c) {
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = group_of(c);
    io_uring_sqe_set_data(sqe, &c->recv_op);
    c->recv_armed = true;
}

static void send_next(conn *c) {
    chunk *k = c->head;
    if (!k || c->sending)
        return;
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_send(sqe, c->fd, k->p + k->done, k->len - k->done, MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, &c->send_op);
    c->sending = true;
}

/* A private ring: PRIVATE_BUFS malloc'd buffers, registered once. */
static int private_ring(conn *c) {
    c->br_bytes = 4096;
    c->br = aligned_alloc(4096, c->br_bytes);
    c->mem = malloc(PRIVATE_BUFS * buf_size);
    if (!c->br || !c->mem)
        return ENOMEM;
    struct io_uring_buf_reg reg = {0};
    reg.ring_addr = (unsigned long)(uintptr_t)c->br;
    reg.ring_entries = PRIVATE_BUFS;
    reg.bgid = group_of(c);
    int err = io_uring_register_buf_ring(&ring, &reg, 0);
    if (err < 0)
        return -err;
    io_uring_buf_ring_init(c->br);
    for (int i = 0; i < PRIVATE_BUFS; i++)
        io_uring_buf_ring_add(c->br, c->mem + (size_t)i * buf_size, (unsigned)buf_size,
                              (unsigned short)i, PRIVATE_BUFS - 1, i);
    io_uring_buf_ring_advance(c->br, PRIVATE_BUFS);
    return 0;
}

static void arm_recv(conn *c);
static void private_give_back(conn *c, unsigned short bid) {
    io_uring_buf_ring_add(c->br, c->mem + (size_t)bid * buf_size, (unsigned)buf_size, bid,
                          PRIVATE_BUFS - 1, 0);
    io_uring_buf_ring_advance(c->br, 1);
    if (!c->recv_armed && !c->closing) /* it ran out of buffers: there is one again */
        arm_recv(c);
}

static void conn_free(conn *c) {
    close(c->fd);
    if (!pool_mode) {
        io_uring_unregister_buf_ring(&ring, group_of(c));
        free(c->br);
        free(c->mem);
    }
    conns[c->id] = NULL;
    free(c);
    n_live--;
}

static void maybe_close(conn *c) {
    if (c->closing && !c->recv_armed && !c->sending)
        conn_free(c);
}

static void on_accept(int fd) {
    unsigned id = 0;
    while (id < MAX_CONNS && conns[id])
        id++;
    conn *c = id < MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->id = id;
    c->recv_op = OP_RECV;
    c->send_op = OP_SEND;
    conns[id] = c;
    n_conns++;
    n_live++;
    if (!pool_mode && private_ring(c) != 0) {
        c->closing = true;
        maybe_close(c);
        return;
    }
    arm_recv(c);
}

static void drop_chunk(conn *c, chunk *k) {
    if (pool_mode)
        bp_release(k->p);
    else
        private_give_back(c, k->bid);
    free(k);
}

static void on_recv(conn *c, struct io_uring_cqe *cqe) {
    if (!(cqe->flags & IORING_CQE_F_MORE))
        c->recv_armed = false;
    size_t len = 0;
    unsigned char *p = NULL;
    unsigned short bid = (unsigned short)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    if (cqe->res == -ENOBUFS) {
        n_enobufs++;
        if (pool_mode)
            bp_uring_bufs_take(bufs, cqe, &len); /* counts it */
        /* pool: re-armed by refill(); private: when a send gives one back */
        if (pool_mode && !c->recv_armed && !c->closing)
            starved++;
        return;
    }
    if (cqe->res <= 0) { /* EOF or an error: the connection ends */
        if (pool_mode && (cqe->flags & IORING_CQE_F_BUFFER))
            bp_uring_bufs_take(bufs, cqe, &len); /* its buffer goes back */
        else if (!pool_mode && (cqe->flags & IORING_CQE_F_BUFFER))
            private_give_back(c, bid);
        c->closing = true;
        if (c->recv_armed) { /* stop the request: its end completes it */
            struct io_uring_sqe *sqe = sqe_get();
            io_uring_prep_cancel(sqe, &c->recv_op, 0);
            io_uring_sqe_set_data(sqe, NULL);
        }
        maybe_close(c);
        return;
    }
    if (pool_mode) {
        p = bp_uring_bufs_take(bufs, cqe, &len);
    } else {
        p = c->mem + (size_t)bid * buf_size;
        len = (size_t)cqe->res;
    }
    if (!p)
        return;
    n_bytes += len;
    chunk *k = malloc(sizeof(*k));
    if (!k) {
        if (pool_mode)
            bp_release(p);
        return;
    }
    *k = (chunk){NULL, p, len, 0, bid};
    if (c->tail)
        c->tail->next = k;
    else
        c->head = k;
    c->tail = k;
    send_next(c);
}

static void on_send(conn *c, struct io_uring_cqe *cqe) {
    c->sending = false;
    chunk *k = c->head;
    if (cqe->res > 0)
        k->done += (size_t)cqe->res;
    if (cqe->res <= 0 || k->done == k->len) {
        c->head = k->next;
        if (!c->head)
            c->tail = NULL;
        drop_chunk(c, k);
    }
    if (cqe->res < 0) { /* the peer is gone: drop what is queued */
        while (c->head) {
            chunk *next = c->head->next;
            drop_chunk(c, c->head);
            c->head = next;
        }
        c->tail = NULL;
        c->closing = true;
    }
    send_next(c);
    maybe_close(c);
}

static void arm_accept(int lfd) {
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
    io_uring_sqe_set_data(sqe, &accept_op);
}

/* Connections whose recv ended for want of buffers get it back as soon as
 * the ring has some again. */
static void refill(void) {
    bp_uring_bufs_replenish(bufs);
    bp_uring_stats st;
    bp_uring_bufs_stats(bufs, &st);
    for (unsigned i = 0; starved && st.in_kernel && i < MAX_CONNS; i++) {
        conn *c = conns[i];
        if (c && !c->recv_armed && !c->closing) {
            arm_recv(c);
            starved--;
        }
    }
}

/* The tag of a completion is the address of an op byte inside its conn. */
static void dispatch(struct io_uring_cqe *cqe, int lfd, bool draining) {
    unsigned char *op = io_uring_cqe_get_data(cqe);
    if (!op) /* a cancel's own completion */
        return;
    if (op == &accept_op) {
        if (cqe->res >= 0) {
            if (draining)
                close(cqe->res);
            else
                on_accept(cqe->res);
        }
        if (!(cqe->flags & IORING_CQE_F_MORE) && !draining && cqe->res != -ECANCELED)
            arm_accept(lfd);
        return;
    }
    if (*op == OP_RECV) {
        conn *c = (conn *)(void *)(op - offsetof(conn, recv_op));
        on_recv(c, cqe);
    } else {
        conn *c = (conn *)(void *)(op - offsetof(conn, send_op));
        on_send(c, cqe);
    }
}

static int listen_on(const char *addr, unsigned port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0)
        return -1;
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    printf("%u\n", ntohs(sa.sin_port));
    fflush(stdout);
    return fd;
}

static void usage(void) {
    fprintf(stderr, "usage: uring_echo --port PORT [--addr A] [--bufs pool|private] "
                    "[--buf-size N] [--nbufs N] [--inc] [--http ADDR]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *addr = "127.0.0.1", *http = NULL;
    long port = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--inc")) {
            inc = true;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--port"))
            port = strtol(v, NULL, 10);
        else if (!strcmp(a, "--addr"))
            addr = v;
        else if (!strcmp(a, "--bufs") && (!strcmp(v, "pool") || !strcmp(v, "private")))
            pool_mode = !strcmp(v, "pool");
        else if (!strcmp(a, "--buf-size"))
            buf_size = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--nbufs"))
            nbufs = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--http"))
            http = v;
        else
            usage();
    }
    if (port < 0 || port > 65535 || !buf_size || buf_size > (1u << 20) || (inc && !pool_mode))
        usage();
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int err = io_uring_queue_init(4096, &ring, 0);
    if (err) {
        fprintf(stderr, "uring_echo: io_uring_queue_init: %s\n", strerror(-err));
        return 1;
    }
    pool = bp_pool_new(NULL);
    if (pool_mode) {
        bufs = bp_uring_bufs_new(pool, &ring, 1, buf_size, nbufs, inc ? BP_URING_INC : 0);
        if (!bufs) {
            fprintf(stderr, "uring_echo: bp_uring_bufs_new: %s\n", strerror(errno));
            return 1;
        }
        bp_uring_stats st;
        bp_uring_bufs_stats(bufs, &st);
        buf_size = st.buf_size;
    }
#ifdef BP_WITH_HTTP
    bp_http *h = NULL;
    if (http) {
        bp_expvar_publish(pool, "echo_");
        if (bufs)
            bp_uring_bufs_publish(bufs, "echo_ring");
        h = bp_http_start(http);
        if (!h)
            fprintf(stderr, "uring_echo: --http %s: %s\n", http, strerror(errno));
    }
#else
    if (http)
        fprintf(stderr, "uring_echo: built without libbytepool_http: --http ignored\n");
#endif
    int lfd = listen_on(addr, (unsigned)port);
    if (lfd < 0) {
        fprintf(stderr, "uring_echo: cannot listen on %s:%ld: %s\n", addr, port, strerror(errno));
        return 1;
    }
#ifdef BP_WITH_HTTP
    if (h) { /* the second line: where the dashboard is */
        printf("http %u\n", bp_http_port(h));
        fflush(stdout);
    }
#endif
    arm_accept(lfd);
    bool draining = false;
    for (;;) {
        if (stop && !draining) { /* close every connection, then finish */
            draining = true;
            struct io_uring_sqe *s = sqe_get();
            io_uring_prep_cancel(s, &accept_op, 0);
            io_uring_sqe_set_data(s, NULL);
            for (unsigned i = 0; i < MAX_CONNS; i++)
                if (conns[i])
                    shutdown(conns[i]->fd, SHUT_RDWR);
        }
        if (draining && n_live == 0)
            break;
        io_uring_submit(&ring);
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {0, 100000000};
        int r = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
        if (r < 0 && r != -EINTR && r != -ETIME) {
            fprintf(stderr, "uring_echo: io_uring_wait_cqe: %s\n", strerror(-r));
            break;
        }
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            seen++;
            dispatch(cqe, lfd, draining);
        }
        io_uring_cq_advance(&ring, seen);
        if (pool_mode)
            refill();
    }
    close(lfd);
    size_t held = 0;
    bp_uring_stats st = {0};
    if (pool_mode) {
        bp_uring_bufs_stats(bufs, &st);
        held = bp_uring_bufs_destroy(bufs);
    }
#ifdef BP_WITH_HTTP
    bp_http_stop(h);
    bp_expvar_unpublish(pool);
#endif
    size_t outstanding = bp_pool_destroy(pool) + held;
    io_uring_queue_exit(&ring);
    printf("connections %llu, bytes %llu, ENOBUFS %llu, buffers given back %llu, "
           "outstanding buffers %zu\n",
           (unsigned long long)n_conns, (unsigned long long)n_bytes, (unsigned long long)n_enobufs,
           (unsigned long long)st.returned, outstanding);
    return outstanding ? 1 : 0;
}
