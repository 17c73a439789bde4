/* SPDX-License-Identifier: MIT */
/* echo_client - load for uring_echo: opens N connections to 127.0.0.1:PORT,
 * sends each B pseudo-random bytes in chunks and checks every byte that
 * comes back against the same sequence. Prints throughput; exits 1 on the
 * first wrong, missing or extra byte.
 *   echo_client --port PORT [--conns N] [--bytes B] [--chunk C] [--hold-ms T]
 * --hold-ms keeps the connections open, idle, that long after the echo is
 * verified (for measuring what an idle server keeps). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    uint64_t wstate, rstate; /* the byte generators of the two directions */
    size_t sent, got;
} peer;

static unsigned char next_byte(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (unsigned char)(*s >> 24);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    unsigned port = 0, conns = 100;
    size_t bytes = 1 << 20, chunk = 4096;
    long hold_ms = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            port = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--conns"))
            conns = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--bytes"))
            bytes = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--chunk"))
            chunk = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--hold-ms"))
            hold_ms = strtol(argv[i + 1], NULL, 10);
    }
    if (!port || !conns || !chunk || chunk > 65536) {
        fprintf(stderr, "usage: echo_client --port PORT [--conns N] [--bytes B] [--chunk C]\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    peer *p = calloc(conns, sizeof(*p));
    struct pollfd *pf = calloc(conns, sizeof(*pf));
    unsigned char *buf = malloc(65536), *want = malloc(65536);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (unsigned i = 0; i < conns; i++) {
        p[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (p[i].fd < 0 || connect(p[i].fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            fprintf(stderr, "echo_client: connection %u: %s\n", i, strerror(errno));
            return 1;
        }
        fcntl(p[i].fd, F_SETFL, O_NONBLOCK);
        p[i].wstate = p[i].rstate = 0x9e3779b97f4a7c15ull ^ ((uint64_t)i << 20 | 1);
    }
    double t0 = now_s();
    unsigned done = 0;
    while (done < conns) {
        for (unsigned i = 0; i < conns; i++) {
            pf[i].fd = p[i].got < bytes ? p[i].fd : -1;
            pf[i].events = POLLIN | (p[i].sent < bytes ? POLLOUT : 0);
        }
        if (poll(pf, conns, 10000) <= 0) {
            fprintf(stderr, "echo_client: no progress for 10 s (%u of %u done)\n", done, conns);
            return 1;
        }
        for (unsigned i = 0; i < conns; i++) {
            peer *q = &p[i];
            if ((pf[i].revents & POLLOUT) && q->sent < bytes) {
                size_t n = bytes - q->sent < chunk ? bytes - q->sent : chunk;
                uint64_t s = q->wstate;
                for (size_t k = 0; k < n; k++)
                    buf[k] = next_byte(&s);
                ssize_t w = write(q->fd, buf, n);
                if (w > 0) { /* advance the generator by what was taken */
                    for (ssize_t k = 0; k < w; k++)
                        next_byte(&q->wstate);
                    q->sent += (size_t)w;
                }
            }
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = read(q->fd, buf, 65536);
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    fprintf(stderr, "echo_client: connection %u closed after %zu of %zu bytes\n", i,
                            q->got, bytes);
                    return 1;
                }
                for (ssize_t k = 0; k < r; k++)
                    want[k] = next_byte(&q->rstate);
                if (r > 0 && (q->got + (size_t)r > bytes || memcmp(buf, want, (size_t)r))) {
                    fprintf(stderr, "echo_client: connection %u: wrong bytes at %zu\n", i, q->got);
                    return 1;
                }
                if (r > 0 && (q->got += (size_t)r) == bytes)
                    done++;
            }
        }
    }
    double dt = now_s() - t0;
    printf("echo_client: %u connections, %zu bytes each, all verified, %.1f MB/s (%.2f s)\n", conns,
           bytes, (double)conns * (double)bytes / dt / 1e6, dt);
    fflush(stdout);
    if (hold_ms > 0) {
        struct timespec ts = {hold_ms / 1000, (hold_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    for (unsigned i = 0; i < conns; i++)
        close(p[i].fd);
    free(p);
    free(pf);
    free(buf);
    free(want);
    return 0;
}
