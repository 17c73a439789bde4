/* SPDX-License-Identifier: MIT */
/* http_serve - a known workload behind the HTTP endpoint, for the browser
 * test. Pool "web_": 1234 gets of 3000 bytes (4096 tier), 77 oversize gets,
 * 5 buffers kept live, got in keep_five() with every site recorded (the
 * dashboard's leak table). Pool "busy_": a thread keeps getting and putting
 * (the dashboard's rate chart has something to draw). Prints the port, then
 * serves until stdin closes. */
#define _POSIX_C_SOURCE 200809L
#include "bytepool_http.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static atomic_bool stop;

static void *traffic(void *arg) {
    bp_pool *pool = arg;
    struct timespec pause = {0, 2000000}; /* about 500 gets a second */
    while (!atomic_load(&stop)) {
        bp_put(pool, bp_get(pool, 700));
        nanosleep(&pause, NULL);
    }
    return NULL;
}

__attribute__((noinline)) void keep_five(bp_pool *pool, void **live);
__attribute__((noinline)) void keep_five(bp_pool *pool, void **live) {
    for (int i = 0; i < 5; i++)
        live[i] = bp_get(pool, 100);
}

int main(void) {
    bp_config cfg = {0};
    cfg.max_bytes = 512u << 20; /* a budget, for the dashboard to show */
    cfg.leaks = BP_LEAKS_ALL;
    bp_pool *pool = bp_pool_new(&cfg);
    for (int i = 0; i < 1234; i++)
        bp_put(pool, bp_get(pool, 3000));
    for (int i = 0; i < 77; i++)
        bp_put(pool, bp_get(pool, 3u << 20));
    void *live[5];
    keep_five(pool, live);
    bp_pool *busy = bp_pool_new(NULL);
    pthread_t t;
    if (bp_expvar_publish(pool, "web_") != 0 || bp_expvar_publish(busy, "busy_") != 0 ||
        pthread_create(&t, NULL, traffic, busy) != 0)
        return 1;
    bp_http *h = bp_http_start("127.0.0.1:0");
    if (!h) {
        perror("bp_http_start");
        return 1;
    }
    printf("%u\n", bp_http_port(h));
    fflush(stdout);
    while (getchar() != EOF)
        ;
    bp_http_stop(h);
    atomic_store(&stop, true);
    pthread_join(t, NULL);
    for (int i = 0; i < 5; i++)
        bp_put(pool, live[i]);
    return (int)(bp_pool_destroy(pool) + bp_pool_destroy(busy));
}
