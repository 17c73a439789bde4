/* SPDX-License-Identifier: MIT */
/*
 * uring_fixed - fixed (registered) buffers against plain ones, same run:
 * 64 KiB writes of pool buffers through io_uring to one file, once with
 * IORING_OP_WRITE_FIXED and the pool's segments registered
 * (bp_uring_fixed), once with IORING_OP_WRITE, rounds alternating. The
 * file is opened with O_DIRECT where the filesystem allows it (the case
 * fixed buffers are for: the kernel maps user pages for every plain write),
 * else through the page cache.
 *
 *   uring_fixed [--writes N] [--rounds R] [--dir DIR]
 *
 * Prints ns per write for each mode (medians of the rounds) and the ratio.
 */
#define _GNU_SOURCE
#include <bytepool.h>
#include <bytepool_uring.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LEN 65536u
#define DEPTH 16u
#define SPAN (64u << 20) /* the file: writes cycle over 64 MiB */

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* n writes, DEPTH in flight; returns ns per write, or -1 on an error. */
static double run(struct io_uring *ring, bp_uring_fixed *fx, void **buf, int fd, unsigned n) {
    double t0 = now_ns();
    unsigned sent = 0, done = 0;
    while (done < n) {
        while (sent < n && sent - done < DEPTH) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
            void *p = buf[sent % DEPTH];
            off_t off = (off_t)((sent * (uint64_t)LEN) % SPAN);
            if (fx)
                io_uring_prep_write_fixed(sqe, fd, p, LEN, off,
                                          bp_uring_fixed_index(fx, p, LEN, NULL));
            else
                io_uring_prep_write(sqe, fd, p, LEN, off);
            sent++;
        }
        io_uring_submit(ring);
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(ring, &cqe) != 0 || cqe->res != (int)LEN)
            return -1;
        io_uring_cqe_seen(ring, cqe);
        done++;
    }
    return (now_ns() - t0) / n;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    unsigned writes = 20000, rounds = 5;
    const char *dir = "/var/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--writes"))
            writes = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
    }
    if (rounds > 32 || !writes) {
        fprintf(stderr, "usage: uring_fixed [--writes N] [--rounds R<=32] [--dir DIR]\n");
        return 2;
    }
    struct io_uring ring;
    if (io_uring_queue_init(DEPTH * 2, &ring, 0) != 0) {
        fprintf(stderr, "uring_fixed: no io_uring here\n");
        return 1;
    }
    bp_uring_fixed *fx = bp_uring_fixed_new(&ring, 0);
    if (!fx) {
        perror("uring_fixed: bp_uring_fixed_new");
        return 1;
    }
    bp_config cfg = {0};
    cfg.on_segment = bp_uring_fixed_on_segment;
    cfg.segment_ctx = fx;
    bp_pool *pool = bp_pool_new(&cfg);
    void *buf[DEPTH];
    for (unsigned i = 0; i < DEPTH; i++)
        memset(buf[i] = bp_get(pool, LEN), (int)i, LEN);
    char path[4096];
    snprintf(path, sizeof path, "%s/bp_fixed_XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("uring_fixed: mkstemp");
        return 1;
    }
    int direct = open(path, O_WRONLY | O_DIRECT);
    unlink(path);
    if (direct >= 0) {
        close(fd);
        fd = direct;
    }
    double t[2][32];
    for (unsigned r = 0; r < rounds; r++)
        for (int mode = 0; mode < 2; mode++)
            if ((t[mode][r] = run(&ring, mode ? NULL : fx, buf, fd, writes)) < 0) {
                fprintf(stderr, "uring_fixed: a write failed\n");
                return 1;
            }
    qsort(t[0], rounds, sizeof(double), by_value);
    qsort(t[1], rounds, sizeof(double), by_value);
    double fixed = t[0][rounds / 2], plain = t[1][rounds / 2];
    printf("64 KiB writes, %s, %u x %u: write_fixed %.0f ns, write %.0f ns, fixed / plain %.2f\n",
           direct >= 0 ? "O_DIRECT" : "page cache", rounds, writes, fixed, plain, fixed / plain);
    close(fd);
    for (unsigned i = 0; i < DEPTH; i++)
        bp_put(pool, buf[i]);
    bp_pool_destroy(pool);
    bp_uring_fixed_destroy(fx);
    io_uring_queue_exit(&ring);
    return 0;
}
