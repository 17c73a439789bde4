/* SPDX-License-Identifier: MIT */
/*
 * shm_bench - libbytepool_shm measured against what programs do without
 * it, in one run, rounds alternating, medians (make bench-shm):
 *
 *   hand-off    one producer, one consumer, both busy: bp_shm_send ->
 *               bp_shm_recv -> read the header -> bp_release, against
 *               write -> read of the same records through a UNIX stream
 *               socket; 64 B, 4 KiB, 64 KiB, 1 MiB;
 *   ping-pong   one record, then a 1-byte answer on a pipe, the receiver
 *               asleep between records (shm against the socket);
 *   sweep       a consumer holding 1,000 grants SIGKILLed: from the death
 *               event to its last grant released (the owner's
 *               last_sweep_ns), and from kill() to every buffer back;
 *   owner cost  bp_get + bp_put on the shared pool against a private pool.
 *
 *   shm_bench [--rounds N] [--out FILE]
 */
#define _GNU_SOURCE
#include <bytepool.h>
#include <bytepool_shm.h>

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct hdr {
    uint64_t seq, len;
} hdr;

static char path[64];
static int test_no;

/* The end of a timed cell: the time per record since t0, then the child
 * is reaped and both ends of its pipe or socket pair closed. */
static double cell_end(uint64_t t0, long n, pid_t c, const int fd[2]) {
    double ns = (double)(now_ns() - t0) / (double)n;
    waitpid(c, NULL, 0);
    close(fd[0]);
    close(fd[1]);
    return ns;
}

static bp_shm *owner(void) {
    snprintf(path, sizeof path, "@bp-shm-bench-%d-%d", (int)getpid(), ++test_no);
    bp_config pc = {.flags = BP_NO_RECENT};
    bp_shm_config c = {.peer_cap = 1024};
    bp_shm *s = bp_shm_create(path, &pc, &c);
    if (!s) {
        perror("bp_shm_create");
        exit(1);
    }
    return s;
}

static bp_shm_peer wait_peer(bp_shm *s) {
    bp_shm_peer_stats ps;
    while (bp_shm_peers(s, &ps, 1) == 0)
        sched_yield();
    return ps.peer;
}

/* ---- hand-off ---------------------------------------------------------------- */

/* The consumer: every record's header read, then released; the sum of the
 * sequence numbers goes back through the pipe so nothing is optimised out. */
static void shm_consumer(int out, long n) {
    bp_shm *s = bp_shm_attach(path, NULL);
    if (!s)
        _exit(2);
    uint64_t sum = 0;
    for (long i = 0; i < n; i++) {
        size_t len;
        void *p = bp_shm_recv(s, &len, -1);
        if (!p)
            _exit(3);
        hdr h;
        memcpy(&h, p, sizeof h);
        sum += h.seq + (h.len == len);
        bp_release(p);
    }
    if (write(out, &sum, sizeof sum) != (ssize_t)sizeof sum)
        _exit(4);
    bp_shm_close(s, 0);
    _exit(0);
}

static double handoff_shm(size_t len, long n) {
    bp_shm *s = owner();
    int fds[2];
    if (pipe(fds) != 0)
        exit(1);
    pid_t c = fork();
    if (c == 0)
        shm_consumer(fds[1], n);
    bp_shm_peer peer = wait_peer(s);
    bp_pool *pool = bp_shm_pool(s);
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        void *p = bp_get(pool, len);
        hdr h = {(uint64_t)i, len};
        memcpy(p, &h, sizeof h);
        int err;
        while ((err = bp_shm_send(s, peer, p, len)) == ENOBUFS)
            sched_yield(); /* the consumer is 1024 behind */
        if (err) {
            fprintf(stderr, "bp_shm_send: %s\n", strerror(err));
            exit(1);
        }
        bp_put(pool, p);
    }
    uint64_t sum;
    if (read(fds[0], &sum, sizeof sum) != (ssize_t)sizeof sum)
        exit(1);
    double ns = cell_end(t0, n, c, fds);
    bp_shm_close(s, 1000);
    return ns;
}

static int full_io(int fd, void *buf, size_t len, int wr) {
    size_t done = 0;
    while (done < len) {
        ssize_t r = wr ? write(fd, (char *)buf + done, len - done)
                       : read(fd, (char *)buf + done, len - done);
        if (r <= 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

static double handoff_socket(size_t len, long n) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        exit(1);
    pid_t c = fork();
    if (c == 0) {
        close(sv[0]);
        char *buf = malloc(len);
        uint64_t sum = 0;
        for (long i = 0; i < n; i++) {
            if (full_io(sv[1], buf, len, 0))
                _exit(3);
            hdr h;
            memcpy(&h, buf, sizeof h);
            sum += h.seq + (h.len == len);
        }
        if (write(sv[1], &sum, sizeof sum) != (ssize_t)sizeof sum)
            _exit(4);
        _exit(0);
    }
    close(sv[1]);
    char *buf = malloc(len);
    memset(buf, 0x5a, len);
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        hdr h = {(uint64_t)i, len};
        memcpy(buf, &h, sizeof h); /* the record is written as in the shm case */
        if (full_io(sv[0], buf, len, 1))
            exit(1);
    }
    uint64_t sum;
    if (full_io(sv[0], &sum, sizeof sum, 0))
        exit(1);
    double ns = (double)(now_ns() - t0) / (double)n;
    waitpid(c, NULL, 0);
    close(sv[0]);
    free(buf);
    return ns;
}

/* ---- ping-pong with a sleeping receiver ------------------------------------------- */

static double pingpong_shm(long n) {
    bp_shm *s = owner();
    int back[2];
    if (pipe(back) != 0)
        exit(1);
    pid_t c = fork();
    if (c == 0) {
        bp_shm *ps = bp_shm_attach(path, NULL);
        for (long i = 0; ps && i < n; i++) {
            size_t len;
            void *p = bp_shm_recv(ps, &len, -1); /* asleep in epoll_wait until it comes */
            if (!p)
                _exit(3);
            bp_release(p);
            if (write(back[1], "x", 1) != 1)
                _exit(4);
        }
        _exit(ps ? 0 : 2);
    }
    bp_shm_peer peer = wait_peer(s);
    bp_pool *pool = bp_shm_pool(s);
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        void *p = bp_get(pool, 64);
        bp_shm_send(s, peer, p, 64);
        bp_put(pool, p);
        char x;
        if (read(back[0], &x, 1) != 1)
            exit(1);
    }
    double ns = cell_end(t0, n, c, back);
    bp_shm_close(s, 1000);
    return ns;
}

static double pingpong_socket(long n) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        exit(1);
    pid_t c = fork();
    if (c == 0) {
        char buf[64];
        for (long i = 0; i < n; i++)
            if (full_io(sv[1], buf, 64, 0) || write(sv[1], "x", 1) != 1)
                _exit(3);
        _exit(0);
    }
    char buf[64] = {0};
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        char x;
        if (full_io(sv[0], buf, 64, 1) || read(sv[0], &x, 1) != 1)
            exit(1);
    }
    return cell_end(t0, n, c, sv);
}

/* ---- the sweep --------------------------------------------------------------------- */

static void sweep(int kills, double *event_ms, double *kill_ms) {
    bp_shm *s = owner();
    bp_pool *pool = bp_shm_pool(s);
    for (int k = 0; k < kills; k++) {
        int ready[2];
        if (pipe(ready) != 0)
            exit(1);
        pid_t c = fork();
        if (c == 0) {
            bp_shm *ps = bp_shm_attach(path, NULL);
            for (int i = 0; ps && i < 1000; i++) {
                size_t len;
                if (!bp_shm_recv(ps, &len, -1)) /* held: never released */
                    _exit(3);
            }
            if (write(ready[1], "h", 1) != 1)
                _exit(4);
            pause();
            _exit(0);
        }
        bp_shm_peer peer = wait_peer(s);
        for (int i = 0; i < 1000; i++) {
            void *p = bp_get(pool, 256);
            while (bp_shm_send(s, peer, p, 256) == ENOBUFS)
                sched_yield();
            bp_put(pool, p);
        }
        char h;
        if (read(ready[0], &h, 1) != 1)
            exit(1);
        bp_shm_stats st;
        bp_shm_stats(s, &st);
        uint64_t before = st.sweeps, t0 = now_ns();
        kill(c, SIGKILL);
        do {
            sched_yield();
            bp_shm_stats(s, &st);
        } while (st.sweeps == before || st.held);
        kill_ms[k] = (double)(now_ns() - t0) / 1e6;
        event_ms[k] = (double)st.last_sweep_ns / 1e6;
        waitpid(c, NULL, 0);
        close(ready[0]);
        close(ready[1]);
    }
    bp_shm_close(s, 1000);
}

/* ---- the owner's get + put ------------------------------------------------------------ */

static double getput(bp_pool *pool, long n) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        void *p = bp_get(pool, 4096);
        __asm__ volatile("" : : "r"(p) : "memory");
        bp_put(pool, p);
    }
    return (double)(now_ns() - t0) / (double)n;
}

int main(int argc, char **argv) {
    int rounds = 5;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else {
            fprintf(stderr, "usage: shm_bench [--rounds N] [--out FILE]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > 99)
        rounds = 5;
    signal(SIGPIPE, SIG_IGN); /* the socket peers' (the library itself never raises it) */
    static const size_t sizes[] = {64, 4096, 65536, 1 << 20};
    static const long counts[] = {200000, 200000, 50000, 4000};
    double hs[4][99], hk[4][99], ps[99], pk[99], gs[99], gp[99];
    bp_config pc = {.flags = BP_NO_RECENT};
    bp_pool *private_pool = bp_pool_new(&pc);
    bp_shm *gs_owner = owner();
    for (int r = 0; r < rounds; r++) {
        for (int z = 0; z < 4; z++) {
            if (r % 2) {
                hk[z][r] = handoff_socket(sizes[z], counts[z]);
                hs[z][r] = handoff_shm(sizes[z], counts[z]);
            } else {
                hs[z][r] = handoff_shm(sizes[z], counts[z]);
                hk[z][r] = handoff_socket(sizes[z], counts[z]);
            }
        }
        ps[r] = pingpong_shm(20000);
        pk[r] = pingpong_socket(20000);
        gp[r] = getput(private_pool, 5000000);
        gs[r] = getput(bp_shm_pool(gs_owner), 5000000);
        fprintf(stderr, "round %d done\n", r + 1);
    }
    double ev[20], kl[20];
    sweep(20, ev, kl);
    double evmax = 0, klmax = 0;
    for (int i = 0; i < 20; i++) {
        evmax = ev[i] > evmax ? ev[i] : evmax;
        klmax = kl[i] > klmax ? kl[i] : klmax;
    }
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) {
        perror(out);
        return 1;
    }
    fprintf(f, "# libbytepool_shm (`make bench-shm`: %d rounds, alternating, medians)\n\n", rounds);
    fprintf(f, "Hand-off, streaming (one producer, one consumer, both busy; ns per record):\n\n");
    fprintf(f, "| record | shm send/recv/release | UNIX stream write/read | socket / shm |\n");
    fprintf(f, "|---:|---:|---:|---:|\n");
    double ratio64k = 0;
    for (int z = 0; z < 4; z++) {
        double a = median(hs[z], rounds), b = median(hk[z], rounds);
        if (z == 2)
            ratio64k = b / a;
        fprintf(f, "| %zu B | %.0f | %.0f | %.1fx |\n", sizes[z], a, b, b / a);
    }
    double pm = median(ps, rounds), km = median(pk, rounds);
    fprintf(f,
            "\nPing-pong, receiver asleep between records (64 B, answer on a pipe/socket; ns per "
            "round trip): shm %.0f, UNIX stream %.0f (%.2fx).\n",
            pm, km, km / pm);
    fprintf(f,
            "\nSweep, a consumer holding 1,000 grants SIGKILLed 20 times (ms): death event to last "
            "grant released median %.3f, max %.3f; kill() to every buffer back median %.3f, max "
            "%.3f.\n",
            median(ev, 20), evmax, median(kl, 20), klmax);
    double gpm = median(gp, rounds), gsm = median(gs, rounds);
    fprintf(f,
            "\nOwner cost, bp_get + bp_put of 4 KiB (ns): shared pool %.2f, private pool %.2f "
            "(%.2fx).\n",
            gsm, gpm, gsm / gpm);
    fprintf(f,
            "\nTargets: 64 KiB hand-off >= 10x the socket (%.1fx: %s); sweep median < 10 ms "
            "(%s); owner get+put <= 1.1x private (%s).\n",
            ratio64k, ratio64k >= 10 ? "met" : "missed", median(ev, 20) < 10 ? "met" : "missed",
            gsm / gpm <= 1.1 ? "met" : "missed");
    if (f != stdout)
        fclose(f);
    bp_shm_close(gs_owner, 1000);
    bp_pool_destroy(private_pool);
    return 0;
}
