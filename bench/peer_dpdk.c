/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* ssize_t in the DPDK headers */
/* peer_dpdk.c - DPDK's mempool: the floor of a pool that validates nothing.
 * One rte_mempool per power-of-two tier (128 B .. 2 MiB), each object a
 * 64-byte header (its mempool and an atomic count, as an mbuf's pool and
 * refcnt) in front of the bytes; per-lcore caches of up to 512 objects.
 * The EAL runs without hugepages, devices, shared config or telemetry on
 * one lcore; the benchmark's other threads register as non-EAL threads so
 * they get caches too. A get that finds its tier empty falls back to
 * malloc, so a workload never fails for the pool's fixed size. */
#include "bench.h"

#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define NT 15
typedef struct hdr {
    struct rte_mempool *mp; /* NULL: malloc'd */
    _Atomic uint32_t rc;
    char pad[64 - sizeof(void *) - sizeof(uint32_t)];
} hdr;

static struct rte_mempool *tiers[NT];

static void *setup(const char *variant) {
    (void)variant;
    char *argv[] = {"bench", "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry", "-l",
                    "0",     "-m",        "640",      "--log-level", "*:error",        NULL};
    if (rte_eal_init(11, argv) < 0) {
        fprintf(stderr, "dpdk: rte_eal_init failed\n");
        exit(1);
    }
    for (int t = 0; t < NT; t++) {
        size_t size = (size_t)128 << t, n = ((size_t)32 << 20) / size;
        n = n < 32 ? 32 : n > 8192 ? 8192 : n;
        unsigned cache = n * 2 / 3 < 512 ? (unsigned)(n * 2 / 3) : 512;
        char name[32];
        snprintf(name, sizeof name, "bench%d", t);
        tiers[t] = rte_mempool_create(name, (unsigned)n, (unsigned)(sizeof(hdr) + size), cache, 0,
                                      NULL, NULL, NULL, NULL, SOCKET_ID_ANY, 0);
        if (!tiers[t]) {
            fprintf(stderr, "dpdk: rte_mempool_create(%zu x %zu) failed\n", n, size);
            exit(1);
        }
    }
    return tiers;
}

static void thread_init(void *st) {
    (void)st;
    if (rte_lcore_id() == LCORE_ID_ANY)
        rte_thread_register();
}

static void *get(void *st, size_t len) {
    (void)st;
    int t = 0;
    while (t < NT && ((size_t)128 << t) < len)
        t++;
    hdr *h = NULL;
    void *obj;
    if (t < NT && rte_mempool_get(tiers[t], &obj) == 0) {
        h = obj;
        h->mp = tiers[t];
    } else {
        h = malloc(sizeof(hdr) + len);
        h->mp = NULL;
    }
    atomic_store_explicit(&h->rc, 1, memory_order_relaxed);
    return h + 1;
}
static void *retain(void *st, void *p) {
    (void)st;
    atomic_fetch_add_explicit(&((hdr *)p - 1)->rc, 1, memory_order_relaxed);
    return p;
}
static void *retain_n(void *st, void *p, size_t n) {
    (void)st;
    atomic_fetch_add_explicit(&((hdr *)p - 1)->rc, (uint32_t)n, memory_order_relaxed);
    return p;
}
static void release(void *st, void *p) {
    (void)st;
    hdr *h = (hdr *)p - 1;
    if (atomic_fetch_sub_explicit(&h->rc, 1, memory_order_acq_rel) != 1)
        return;
    if (h->mp)
        rte_mempool_put(h->mp, h);
    else
        free(h);
}
static unsigned char *data(void *p) { return p; }
static void trim(void *st) { (void)st; }
static void teardown(void *st) { (void)st; }

const peer peer_dpdk = {"dpdk",
                        setup,
                        get,
                        retain,
                        release,
                        data,
                        trim,
                        teardown,
                        .retain_n = retain_n,
                        .thread_init = thread_init};
