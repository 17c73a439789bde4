/* SPDX-License-Identifier: MIT */
/* http_probe - the endpoint under abuse, for check_http.sh:
 *   http_probe idle PORT N   holds N idle connections open to PORT, then
 *                            needs a GET /metrics to succeed within 20 s
 *   http_probe manyfds       opens 1100 descriptors first, then starts an
 *                            endpoint of its own and GETs from it
 * Exit status 0 when the endpoint answered. */
#define _GNU_SOURCE
#include "bytepool_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int dial(unsigned port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One GET with a 2-second receive timeout: 0 when a 200 came back. */
static int get_ok(unsigned port) {
    int fd = dial(port);
    if (fd < 0)
        return -1;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char buf[64] = {0};
    ssize_t n = write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)
                    ? read(fd, buf, sizeof buf - 1)
                    : -1;
    close(fd);
    return n > 12 && !strncmp(buf, "HTTP/1.1 200", 12) ? 0 : -1;
}

static void raise_nofile(rlim_t want) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "idle")) {
        unsigned port = (unsigned)atoi(argv[2]);
        int n = atoi(argv[3]), held = 0;
        raise_nofile((rlim_t)n + 64);
        for (int i = 0; i < n; i++)
            held += dial(port) >= 0; /* never closed, never written: idle */
        double t0 = now_s();
        while (now_s() - t0 < 20) {
            if (get_ok(port) == 0) {
                printf("idle: %d connections held, answered after %.1f s\n", held, now_s() - t0);
                return 0;
            }
            usleep(250 * 1000);
        }
        printf("idle: %d connections held, no answer in 20 s\n", held);
        return 1;
    }
    if (argc == 2 && !strcmp(argv[1], "manyfds")) {
        raise_nofile(4096);
        int last = -1;
        for (int i = 0; i < 1100; i++)
            last = open("/dev/null", O_RDONLY);
        if (last < 1100) {
            printf("manyfds: could not open 1100 descriptors\n");
            return 1;
        }
        bp_pool *pool = bp_pool_new(NULL);
        bp_expvar_publish(pool, "fd_");
        bp_http *h = bp_http_start("127.0.0.1:0");
        if (!h) {
            printf("manyfds: bp_http_start: %s\n", strerror(errno));
            return 1;
        }
        int rc = get_ok(bp_http_port(h));
        printf("manyfds: endpoint with descriptor numbers past %d %s\n", last,
               rc ? "did NOT answer" : "answered");
        bp_http_stop(h);
        bp_pool_destroy(pool);
        return rc ? 1 : 0;
    }
    fprintf(stderr, "usage: http_probe idle PORT N | manyfds\n");
    return 2;
}
