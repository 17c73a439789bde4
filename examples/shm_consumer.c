/* SPDX-License-Identifier: MIT */
/*
 * shm_consumer - a peer of shm_producer's shared pool: receives records,
 * checks each one's checksum on receipt and again just before releasing it
 * (a buffer recycled while held shows as damage), holds it a random
 * 0..N ms, releases it.
 *
 *   shm_consumer --socket PATH [--hold-ms N]
 *
 * Attaches, retrying for up to 10 s while nobody listens yet. Exits 0 when
 * the pool closes or on SIGTERM/SIGINT; 3 on a damaged record (one line on
 * stderr); 2 if it cannot attach in 10 s.
 */
#define _GNU_SOURCE
#include "shm_record.h"

#include <bytepool.h>
#include <bytepool_shm.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HELD_MAX 4096

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

typedef struct held {
    void *p;
    size_t len;
    uint64_t due;
} held;

static held hold[HELD_MAX];
static size_t nheld;

static void damaged(const void *p, size_t len, const char *when) {
    shm_record h;
    memcpy(&h, p, sizeof h);
    fprintf(stderr, "shm_consumer: damaged record %" PRIu64 " (%zu bytes) %s\n", h.seq, len, when);
    exit(3);
}

/* Releases the held records that are due (all when `all`), checked first. */
static void release_due(uint64_t now, int all) {
    for (size_t i = 0; i < nheld;) {
        if (!all && hold[i].due > now) {
            i++;
            continue;
        }
        if (!rec_ok(hold[i].p, hold[i].len))
            damaged(hold[i].p, hold[i].len, "before release");
        bp_release(hold[i].p);
        hold[i] = hold[--nheld];
    }
}

int main(int argc, char **argv) {
    const char *path = NULL;
    unsigned long hold_ms = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--socket") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--hold-ms") && i + 1 < argc)
            hold_ms = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: shm_consumer --socket PATH [--hold-ms N]\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: shm_consumer --socket PATH [--hold-ms N]\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    bp_shm *s = NULL;
    uint64_t give_up = now_ms() + 10000;
    while (!stop && !(s = bp_shm_attach(path, NULL)) && now_ms() < give_up) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!s)
        return stop ? 0 : 2;
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    int rc = 0;
    while (!stop) {
        uint64_t now = now_ms();
        release_due(now, 0);
        int wait = 200;
        for (size_t i = 0; i < nheld; i++)
            if (hold[i].due <= now + (uint64_t)wait)
                wait = (int)(hold[i].due - now);
        if (nheld == HELD_MAX) { /* hold no more than this: wait for the oldest */
            struct timespec ts = {0, 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        size_t len;
        void *p = bp_shm_recv(s, &len, wait);
        if (!p) {
            if (errno == EPIPE)
                break; /* the pool closed and everything sent was received */
            continue;
        }
        if (!rec_ok(p, len))
            damaged(p, len, "on receipt");
        uint64_t h = hold_ms ? rec_rand(&rng) % (hold_ms + 1) : 0;
        hold[nheld++] = (held){p, len, now_ms() + h};
        if (h == 0)
            release_due(now_ms(), 0);
    }
    release_due(0, 1);
    bp_shm_close(s, 0);
    return rc;
}
