/* SPDX-License-Identifier: MIT */
/*
 * shm_producer - the owner of a shared pool (libbytepool_shm): writes
 * records into pool buffers and sends each to every attached consumer,
 * without a copy.
 *
 *   shm_producer --socket PATH [--rate N] [--sizes MIN-MAX] [--http ADDR] [--verbose]
 *
 * Each record is a random length in MIN-MAX (default 64-262144) of
 * pseudo-random bytes behind a header with a sequence number, the length and
 * a checksum (shm_record.h); --rate records per second (default 1000). A
 * consumer at its cap is skipped for that record (counted). On SIGTERM or
 * SIGINT it stops, closes the pool, waits up to 10 s for every grant to
 * come back or its holder to die, prints its totals and exits 0 if no
 * buffer of the pool is still referenced, else 1. --verbose prints one
 * status line a second; --http serves the dashboard and /metrics.
 */
#define _GNU_SOURCE
#include "shm_record.h"

#include <bytepool.h>
#include <bytepool_shm.h>
#ifdef BP_WITH_HTTP
#include <bytepool_http.h>
#endif

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int usage(void) {
    fprintf(stderr, "usage: shm_producer --socket PATH [--rate N] [--sizes MIN-MAX] [--http ADDR]"
                    " [--verbose]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *path = NULL, *http = NULL;
    unsigned long rate = 1000, lo = 64, hi = 262144;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--socket") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
            rate = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
            if (sscanf(argv[++i], "%lu-%lu", &lo, &hi) != 2)
                return usage();
        } else if (!strcmp(argv[i], "--http") && i + 1 < argc)
            http = argv[++i];
        else if (!strcmp(argv[i], "--verbose"))
            verbose = 1;
        else
            return usage();
    }
    if (!path || rate == 0 || lo > hi || hi > BP_SHM_MAX_TIER)
        return usage();
    if (lo < sizeof(shm_record))
        lo = sizeof(shm_record);
    if (hi < lo)
        hi = lo;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    bp_shm *s = bp_shm_create(path, NULL, NULL);
    if (!s) {
        fprintf(stderr, "shm_producer: %s: %s\n", path, strerror(errno));
        return 2;
    }
    bp_pool *pool = bp_shm_pool(s);
#ifdef BP_WITH_HTTP
    bp_http *server = NULL;
    if (http) {
        bp_expvar_publish(pool, "shm_");
        bp_shm_publish(s, "shm");
        server = bp_http_start(http);
        if (!server) {
            fprintf(stderr, "shm_producer: --http %s: %s\n", http, strerror(errno));
            bp_shm_close(s, 0);
            return 2;
        }
        if (verbose) { /* the port, for a caller that asked for port 0 */
            printf("http %u\n", bp_http_port(server));
            fflush(stdout);
        }
    }
#else
    if (http) {
        fprintf(stderr, "shm_producer: built without libbytepool_http\n");
        bp_shm_close(s, 0);
        return 2;
    }
#endif

    uint64_t rng = 0x2545f4914f6cdd1dull ^ (uint64_t)getpid(), records = 0, deliveries = 0,
             skipped = 0, t0 = now_ns(), next_status = t0 + 1000000000u;
    bp_shm_peer_stats peers[BP_SHM_MAX_PEERS];
    while (!stop) {
        uint64_t due = t0 + (uint64_t)(records * (1e9 / (double)rate));
        uint64_t now = now_ns();
        if (due > now) {
            struct timespec ts = {(time_t)((due - now) / 1000000000u),
                                  (long)((due - now) % 1000000000u)};
            nanosleep(&ts, NULL); /* a signal ends it early: stop is checked */
            continue;
        }
        size_t len = lo + (size_t)(rec_rand(&rng) % (hi - lo + 1));
        void *p = bp_get(pool, len);
        if (!p) {
            fprintf(stderr, "shm_producer: bp_get(%zu): %s\n", len, strerror(errno));
            break;
        }
        rec_fill(p, len, records, &rng);
        records++;
        size_t n = bp_shm_peers(s, peers, BP_SHM_MAX_PEERS);
        for (size_t i = 0; i < n && i < BP_SHM_MAX_PEERS; i++) {
            int err = bp_shm_send(s, peers[i].peer, p, len);
            if (err == 0)
                deliveries++;
            else if (err == ENOBUFS)
                skipped++;
            /* ENOENT: it went meanwhile */
        }
        bp_put(pool, p);
        if (verbose && now >= next_status) {
            bp_shm_stats st;
            bp_shm_stats(s, &st);
            printf("status: made=%" PRIu64 " sent=%" PRIu64 " back=%" PRIu64 " gone=%" PRIu64
                   " capped=%" PRIu64 " peers=%" PRIu64 " held=%" PRIu64 "\n",
                   records, deliveries, st.returned, st.swept, skipped, st.peers, st.held);
            fflush(stdout);
            next_status += 1000000000u;
        }
    }
    bp_shm_shutdown(s, 10000);
    bp_shm_stats st;
    bp_shm_stats(s, &st);
    bp_stats ps;
    bp_pool_stats(pool, &ps);
    uint64_t outstanding = ps.outstanding;
#ifdef BP_WITH_HTTP
    if (server)
        bp_http_stop(server);
#endif
    bp_shm_close(s, 0);
    printf("records %" PRIu64 "\ndeliveries %" PRIu64 "\nreturned %" PRIu64 "\nswept %" PRIu64
           "\nskipped %" PRIu64 "\noutstanding %" PRIu64 "\n",
           records, deliveries, st.returned, st.swept, skipped, outstanding);
    return outstanding == 0 ? 0 : 1;
}
