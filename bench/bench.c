/* SPDX-License-Identifier: MIT */
/*
 * bench - libbytepool against the buffers a C programmer would otherwise
 * use, measured side by side in one run.
 *
 *   bench [--rounds N] [--cell-ms MS] [--out DIR] [--no-icount] [--no-rss]
 *       drives everything: each round runs every peer once, in order
 *       (A B C A B C ...), each peer in a process of its own (the malloc
 *       replacements need LD_PRELOAD); then resident memory, then
 *       instruction counts under callgrind. Prints a Markdown table with
 *       median [min..max] ns/op and ratios to glibc, mimalloc and the best
 *       allocator; writes DIR/bench.json and SVG plots (gnuplot).
 *   bench --worker PEER[:VARIANT] [--cell-ms MS]
 *       one round of one peer: prints "cell ns" lines.
 *   bench --worker PEER --count CELL N     exactly N operations (callgrind):
 *                                          a/128, a/4K, b/mixed, c/fanout
 *   bench --worker PEER --rss              resident memory lines
 *
 * Workloads: (a) same-thread get+put at 128 B..1 MiB, touched and 64 KiB
 * filled variants; (b) 64 live buffers of log-uniform 1 B..2 MiB, one
 * replaced per op; (c) fan-out: get 4 KiB, retain 8x, release 9x; the same
 * with one retain_n(8) (c/fanout-n); cross-thread fan-out: the producer
 * takes 8 references with one retain_n and a consumer thread drops them
 * (c/xfanout-n, ns per buffer); and the floor: a bare atomic add+sub pair; (d) cross-thread
 * hand-off through an SPSC queue; (e) (a) at 4 KiB on 1 and on 2 threads; (f) resident memory with
 * 10,000 live buffers; (g) bytepool with its recorder on/locked/off.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "rss.h"
#include "timing.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the peers of a run ---------------------------------------------------- */

typedef struct runner {
    const char *label;   /* column name */
    const char *worker;  /* --worker argument */
    const char *preload; /* LD_PRELOAD, or NULL */
    bool allocator;      /* counts for "best allocator" */
} runner;

static const runner runners[] = {
    {"bytepool", "bytepool", NULL, false},
    {"bytepool-locked", "bytepool:locked", NULL, false},
    {"bytepool-norec", "bytepool:norec", NULL, false},
    {"bytepool-ref", "bytepool_ref", NULL, false},
    {"glibc", "malloc", NULL, false},
    {"mimalloc", "malloc", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2", true},
    {"jemalloc", "malloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", true},
    {"tcmalloc", "malloc", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", true},
    {"tcmalloc-plain", "malloc_plain", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", false},
    {"avpool", "avpool", NULL, false},
#ifdef BP_BENCH_DPDK
    {"dpdk", "dpdk", NULL, false},
#endif
    {"naive", "naive", NULL, false},
    {"null", "null", NULL, false},
};
#define NRUN (sizeof(runners) / sizeof(runners[0]))

static const peer *find_peer(const char *spec, const char **variant) {
    static char name[64];
    snprintf(name, sizeof name, "%s", spec);
    char *colon = strchr(name, ':');
    *variant = colon ? colon + 1 : "";
    if (colon)
        *colon = 0;
    const peer *all[] = {&peer_bytepool, &peer_bytepool_ref, &peer_malloc, &peer_malloc_plain,
                         &peer_avpool,   &peer_naive,        &peer_null,
#ifdef BP_BENCH_DPDK
                         &peer_dpdk
#endif
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (!strcmp(all[i]->name, name))
            return all[i];
    return NULL;
}

/* ---- timing ------------------------------------------------------------------ */

typedef struct ctx {
    const peer *p;
    void *st;
    size_t size;
    void *live[10000];
    size_t lens[10000];
    size_t nlive;
    bool touch; /* (f): write every page of each new buffer */
    uint64_t seed;
} ctx;

typedef void (*body_fn)(ctx *c, long n);

static double cell_s = 0.05; /* measuring time per cell */

/* ns per operation: batches until the cell's time is used up. */
static double measure(body_fn body, ctx *c) {
    body(c, 200); /* warm the caches */
    long ops = 0, batch = 256;
    double t0 = now_s(), t;
    do {
        body(c, batch);
        ops += batch;
        t = now_s() - t0;
        if (t < cell_s / 8)
            batch *= 2;
    } while (t < cell_s);
    return t * 1e9 / (double)ops;
}

/* ---- workloads ------------------------------------------------------------- */

static void getput(ctx *c, long n) {
    for (long i = 0; i < n; i++) {
        void *h = c->p->get(c->st, c->size);
        __asm__ volatile("" : : "r"(h) : "memory");
        c->p->release(c->st, h);
    }
}

static void getput_touch(ctx *c, long n) {
    for (long i = 0; i < n; i++) {
        void *h = c->p->get(c->st, c->size);
        unsigned char *d = c->p->data(h);
        d[0] = 1;
        d[c->size - 1] = 2;
        __asm__ volatile("" : : "r"(d) : "memory");
        c->p->release(c->st, h);
    }
}

static void getput_fill(ctx *c, long n) {
    for (long i = 0; i < n; i++) {
        void *h = c->p->get(c->st, c->size);
        memset(c->p->data(h), (int)i, c->size);
        __asm__ volatile("" : : "r"(h) : "memory");
        c->p->release(c->st, h);
    }
}

static size_t log_len(uint64_t *s) { /* log-uniform in [1, 2 MiB] */
    double u = (double)(rnd(s) >> 11) / (double)(1ull << 53);
    size_t len = (size_t)exp2(u * 21.0);
    return len ? len : 1;
}

static void *mixed_get(ctx *c, size_t k) {
    size_t len = log_len(&c->seed);
    void *h = c->p->get(c->st, len);
    c->lens[k] = len;
    if (c->touch) {
        unsigned char *d = c->p->data(h);
        for (size_t i = 0; i < len; i += 4096)
            d[i] = 1;
        d[len - 1] = 1;
    }
    return h;
}

static void mixed_fill(ctx *c, size_t n) {
    c->seed = 0x2545f4914f6cdd1dull;
    for (size_t i = 0; i < n; i++)
        c->live[i] = mixed_get(c, i);
    c->nlive = n;
}

static void mixed_drain(ctx *c) {
    for (size_t i = 0; i < c->nlive; i++)
        c->p->release(c->st, c->live[i]);
    c->nlive = 0;
}

static void mixed(ctx *c, long n) {
    for (long i = 0; i < n; i++) {
        size_t k = rnd(&c->seed) % c->nlive;
        c->p->release(c->st, c->live[k]);
        c->live[k] = mixed_get(c, k);
    }
}

static void fanout(ctx *c, long n) {
    for (long i = 0; i < n; i++) {
        void *h[9];
        h[0] = c->p->get(c->st, 4096);
        for (int k = 1; k < 9; k++)
            h[k] = c->p->retain(c->st, h[0]);
        for (int k = 8; k >= 0; k--)
            c->p->release(c->st, h[k]);
    }
}

/* One retain_n(8) instead of 8 retains (same handle: every peer with
 * retain_n shares one pointer among its references). */
static void fanout_n(ctx *c, long n) {
    for (long i = 0; i < n; i++) {
        void *h = c->p->get(c->st, 4096);
        c->p->retain_n(c->st, h, 8);
        for (int k = 0; k < 9; k++)
            c->p->release(c->st, h);
    }
}

static void thread_start(ctx *c) {
    if (c->p->thread_init)
        c->p->thread_init(c->st);
}

static _Atomic uint32_t floor_count;
static void atomic_floor(ctx *c, long n) {
    (void)c;
    for (long i = 0; i < n; i++) {
        atomic_fetch_add_explicit(&floor_count, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&floor_count, 1, memory_order_acq_rel);
    }
}

/* (d) cross-thread: producer gets, consumer releases, SPSC queue. */
enum { QN = 1024 };
typedef struct xq {
    void *q[QN];
    _Atomic long head, tail;
    ctx *c;
    long n;
} xq;

static void *xconsumer(void *arg) {
    xq *x = arg;
    thread_start(x->c);
    for (long got = 0; got < x->n;) {
        long h = atomic_load_explicit(&x->head, memory_order_relaxed);
        if (h == atomic_load_explicit(&x->tail, memory_order_acquire)) {
            sched_yield();
            continue;
        }
        void *item = x->q[h % QN];
        atomic_store_explicit(&x->head, h + 1, memory_order_release);
        x->c->p->release(x->c->st, item);
        got++;
    }
    return NULL;
}

static double cross_thread(ctx *c) {
    static xq x;
    long n = (long)(cell_s * 4e6); /* about cell_s at ~250 ns per hand-off */
    atomic_store(&x.head, 0);
    atomic_store(&x.tail, 0);
    x.c = c;
    x.n = n;
    pthread_t th;
    double t0 = now_s();
    pthread_create(&th, NULL, xconsumer, &x);
    for (long i = 0; i < n; i++) {
        void *h = c->p->get(c->st, 4096);
        long t = atomic_load_explicit(&x.tail, memory_order_relaxed);
        while (t - atomic_load_explicit(&x.head, memory_order_acquire) == QN)
            sched_yield();
        x.q[t % QN] = h;
        atomic_store_explicit(&x.tail, t + 1, memory_order_release);
    }
    pthread_join(th, NULL);
    return (now_s() - t0) * 1e9 / (double)n;
}

/* (c) cross-thread fan-out: per buffer the producer gets, takes 7 more
 * references with one retain_n and queues all 8; the consumer drops them. */
static double cross_fanout(ctx *c) {
    static xq x;
    long n = (long)(cell_s * 1e6);
    atomic_store(&x.head, 0);
    atomic_store(&x.tail, 0);
    x.c = c;
    x.n = n * 8;
    pthread_t th;
    double t0 = now_s();
    pthread_create(&th, NULL, xconsumer, &x);
    for (long i = 0; i < n; i++) {
        void *h = c->p->get(c->st, 4096);
        c->p->retain_n(c->st, h, 7);
        long t = atomic_load_explicit(&x.tail, memory_order_relaxed);
        while (t + 8 - atomic_load_explicit(&x.head, memory_order_acquire) > QN)
            sched_yield();
        for (int k = 0; k < 8; k++)
            x.q[(t + k) % QN] = h;
        atomic_store_explicit(&x.tail, t + 8, memory_order_release);
    }
    pthread_join(th, NULL);
    return (now_s() - t0) * 1e9 / (double)n;
}

/* (e) scaling: get+put 4 KiB on k threads sharing the peer's state. */
typedef struct scal {
    ctx c;
    double until;
    long ops;
} scal;

static void *scale_thread(void *arg) {
    scal *s = arg;
    thread_start(&s->c);
    getput(&s->c, 1000);
    while (now_s() < s->until) {
        getput(&s->c, 1000);
        s->ops += 1000;
    }
    return NULL;
}

static double scaling(const peer *p, void *st, int k) {
    scal s[2];
    pthread_t th[2];
    double until = now_s() + cell_s * 2;
    for (int i = 0; i < k; i++) {
        s[i] = (scal){.c = {.p = p, .st = st, .size = 4096}, .until = until, .ops = 0};
        pthread_create(&th[i], NULL, scale_thread, &s[i]);
    }
    long ops = 0;
    for (int i = 0; i < k; i++) {
        pthread_join(th[i], NULL);
        ops += s[i].ops;
    }
    return (double)ops / (cell_s * 2) / 1e6; /* million ops/s, all threads */
}

/* ---- one peer's round ------------------------------------------------------- */

static const size_t sizes[] = {128, 1024, 4096, 65536, 1u << 20};
static const char *size_names[] = {"128", "1K", "4K", "64K", "1M"};

static void worker_round(const peer *p, const char *variant) {
    static ctx c;
    c = (ctx){.p = p, .st = p->setup(variant)};
    for (int i = 0; i < 5; i++) {
        c.size = sizes[i];
        printf("a/%s %.3f\n", size_names[i], measure(getput, &c));
        printf("a-touch/%s %.3f\n", size_names[i], measure(getput_touch, &c));
    }
    c.size = 65536;
    printf("a-fill/64K %.3f\n", measure(getput_fill, &c));
    mixed_fill(&c, 64);
    printf("b/mixed %.3f\n", measure(mixed, &c));
    mixed_drain(&c);
    if (p->retain) {
        printf("c/fanout %.3f\n", measure(fanout, &c));
        printf("c/floor %.3f\n", measure(atomic_floor, &c));
    }
    if (p->retain_n) {
        printf("c/fanout-n %.3f\n", measure(fanout_n, &c));
        printf("c/xfanout-n %.3f\n", cross_fanout(&c));
    }
    printf("d/xthread %.3f\n", cross_thread(&c));
    printf("e/1t %.3f\n", scaling(p, c.st, 1));
    printf("e/2t %.3f\n", scaling(p, c.st, 2));
    p->teardown(c.st);
}

static long count_cell(const peer *p, const char *cell, long n) {
    static ctx c;
    c = (ctx){.p = p, .st = p->setup("")};
    body_fn body = getput;
    c.size = 4096;
    if (!strcmp(cell, "a/128"))
        c.size = 128;
    else if (!strcmp(cell, "c/fanout"))
        body = fanout;
    else if (!strcmp(cell, "c/fanout-n") && p->retain_n)
        body = fanout_n;
    else if (!strcmp(cell, "b/mixed")) {
        body = mixed;
        mixed_fill(&c, 64);
    } else if (strcmp(cell, "a/4K"))
        return -1;
    body(&c, 1000); /* warm, so both counts include the same set-up */
    body(&c, n);
    if (body == mixed)
        mixed_drain(&c);
    p->teardown(c.st);
    return n;
}

/* (f) 10,000 live buffers of log-uniform lengths, every page touched, then
 * 20,000 replacements: resident memory against the live bytes (bytepool:
 * the capacity of its buffers; the malloc peers: the requested bytes, their
 * own size classes are invisible here); then everything released and
 * trimmed: resident memory against the peak. */
static void worker_rss(const peer *p, bool is_bytepool) {
    static ctx c;
    c = (ctx){.p = p, .st = p->setup(""), .touch = true};
    size_t base = rss_bytes();
    mixed_fill(&c, 10000);
    mixed(&c, 20000);
    size_t live = 0;
    for (size_t i = 0; i < c.nlive; i++) {
        extern size_t bp_cap(const void *);
        live += is_bytepool ? bp_cap(p->data(c.live[i])) : c.lens[i];
    }
    printf("f/live %zu\n", live);
    size_t peak = rss_bytes() - base;
    printf("f/rss %zu\n", peak);
    mixed_drain(&c);
    p->trim(c.st);
    size_t after = rss_bytes();
    printf("f/after %zu\n", after > base ? after - base : 0);
    p->teardown(c.st);
}

/* ---- the driver --------------------------------------------------------------- */

#define MAXCELL 64
#define MAXROUND 32

typedef struct cellrow {
    char name[32];
    double v[NRUN][MAXROUND];
    int n[NRUN];
} cellrow;

static cellrow cells[MAXCELL];
static int ncells;
static double rss[NRUN][3];
static bool rss_done[NRUN];
static long icount[NRUN][3];
static const char *icount_cells[] = {"a/128", "a/4K", "c/fanout"};
static const char *self_path;

static cellrow *cell(const char *name) {
    for (int i = 0; i < ncells; i++)
        if (!strcmp(cells[i].name, name))
            return &cells[i];
    if (ncells == MAXCELL)
        return NULL;
    snprintf(cells[ncells].name, sizeof cells[0].name, "%s", name);
    return &cells[ncells++];
}

/* Runs argv with LD_PRELOAD (when given) and returns its stdout. */
static char *run(const runner *r, char *const argv[]) {
    int fds[2];
    if (pipe(fds))
        return NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        if (r->preload)
            setenv("LD_PRELOAD", r->preload, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    ssize_t n;
    while ((n = read(fds[0], out + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 1024)
            out = realloc(out, cap *= 2);
    }
    out[len] = 0;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "bench: %s (%s) failed\n", r->label, argv[1]);
        free(out);
        return NULL;
    }
    return out;
}

static bool available(const runner *r) { return !r->preload || access(r->preload, R_OK) == 0; }

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const cellrow *c, int r, double *lo, double *hi) {
    double v[MAXROUND];
    int n = c->n[r];
    if (!n)
        return NAN;
    memcpy(v, c->v[r], (size_t)n * sizeof(double));
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    if (lo)
        *lo = v[0];
    if (hi)
        *hi = v[n - 1];
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int runner_index(const char *label) {
    for (size_t i = 0; i < NRUN; i++)
        if (!strcmp(runners[i].label, label))
            return (int)i;
    return -1;
}

static double best_alloc(const cellrow *c, bool higher_is_better) {
    double best = NAN;
    for (size_t r = 0; r < NRUN; r++) {
        if (!runners[r].allocator || !c->n[r])
            continue;
        double m = median(c, (int)r, NULL, NULL);
        if (isnan(best) || (higher_is_better ? m > best : m < best))
            best = m;
    }
    return best;
}

static void machine(char *cpu, size_t n) {
    snprintf(cpu, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *v = strchr(line, ':');
            const char *name = v ? v + 2 : line;
            size_t k = strlen(name) < n - 1 ? strlen(name) : n - 1;
            memcpy(cpu, name, k);
            cpu[k] = 0;
            cpu[strcspn(cpu, "\n")] = 0;
            break;
        }
    if (f)
        fclose(f);
}

static void print_table(FILE *o, int rounds) {
    char cpu[128];
    machine(cpu, sizeof cpu);
    fprintf(o, "Machine: %s, %ld cores; compiler: gcc %s; %d rounds, interleaved.\n\n", cpu,
            sysconf(_SC_NPROCESSORS_ONLN), __VERSION__, rounds);
    fprintf(o, "ns/op, median [min..max] (e: million ops/s, higher is better)\n\n| cell |");
    for (size_t r = 0; r < NRUN; r++)
        fprintf(o, " %s |", runners[r].label);
    fprintf(o, " bytepool / best alloc | / glibc | / mimalloc |\n|---|");
    for (size_t r = 0; r < NRUN + 3; r++)
        fprintf(o, "---:|");
    fprintf(o, "\n");
    int bp = runner_index("bytepool"), gl = runner_index("glibc"), mi = runner_index("mimalloc");
    for (int i = 0; i < ncells; i++) {
        cellrow *c = &cells[i];
        fprintf(o, "| %s |", c->name);
        for (size_t r = 0; r < NRUN; r++) {
            double lo, hi, m = median(c, (int)r, &lo, &hi);
            if (isnan(m))
                fprintf(o, " - |");
            else
                fprintf(o, " %.1f [%.1f..%.1f] |", m, lo, hi);
        }
        bool up = c->name[0] == 'e';
        double b = median(c, bp, NULL, NULL), best = best_alloc(c, up);
        double g = median(c, gl, NULL, NULL), mm = median(c, mi, NULL, NULL);
        fprintf(o, " %.2f | %.2f | %.2f |\n", b / best, b / g, b / mm);
    }
}

static void print_targets(FILE *o) {
    int bp = runner_index("bytepool"), av = runner_index("avpool");
    int norec = runner_index("bytepool-norec");
    fprintf(o, "\nTargets (ratios from this run):\n\n");
    const char *a_cells[] = {"a/128", "a/4K", "a/64K"};
    double worst = 0;
    for (size_t i = 0; i < sizeof(a_cells) / sizeof(a_cells[0]); i++) {
        cellrow *c = cell(a_cells[i]);
        double r = median(c, bp, NULL, NULL) / best_alloc(c, false);
        worst = r > worst ? r : worst;
    }
    cellrow *t4 = cell("a-touch/4K");
    double rt = median(t4, bp, NULL, NULL) / best_alloc(t4, false);
    fprintf(o,
            "- (a) get+put 128 B, 4 KiB, 64 KiB <= 0.45x best allocator: worst %.2fx: %s; "
            "touched 4 KiB <= 0.55x: %.2fx: %s\n",
            worst, worst <= 0.45 ? "met" : "missed", rt, rt <= 0.55 ? "met" : "missed");
    int tp = runner_index("tcmalloc-plain");
    if (tp >= 0 && cell("a/4K")->n[tp]) {
        double rp = median(cell("a/4K"), bp, NULL, NULL) / median(cell("a/4K"), tp, NULL, NULL);
        fprintf(o,
                "- get+put 4 KiB vs tcmalloc malloc+free with no count header: %.2fx (aim <= "
                "0.85x): %s\n",
                rp, rp <= 0.85 ? "met" : "missed");
    }
    cellrow *b = cell("b/mixed");
    int nv = runner_index("naive");
    double rb = median(b, bp, NULL, NULL) / best_alloc(b, false);
    double rbn = median(b, bp, NULL, NULL) / median(b, nv, NULL, NULL);
    fprintf(o, "- (b) mixed <= 0.5x best allocator: %.2fx: %s; no slower than naive: %.2fx: %s\n",
            rb, rb <= 0.5 ? "met" : "missed", rbn, rbn <= 1.0 ? "met" : "missed");
    cellrow *c = cell("c/fanout"), *fl = cell("c/floor");
    cellrow *cn = cell("c/fanout-n"), *xn = cell("c/xfanout-n");
    double rc1 = median(c, bp, NULL, NULL) / median(c, av, NULL, NULL);
    double rcn = median(cn, bp, NULL, NULL) / best_alloc(cn, false);
    double rxn = median(xn, bp, NULL, NULL) / best_alloc(xn, false);
    /* one retain+release pair: (fanout - get+put) / 8 against the floor */
    double pair = (median(c, bp, NULL, NULL) - median(cell("a/4K"), bp, NULL, NULL)) / 8;
    double rc3 = pair / median(fl, bp, NULL, NULL);
    fprintf(o,
            "- (c) fan-out with retain_n <= 0.75x best allocator: %.2fx: %s; cross-thread "
            "fan-out with retain_n <= 0.65x: %.2fx: %s; fan-out (8 retains) vs avpool %.2fx; "
            "retain+release pair %.1f ns = %.2fx the atomic floor\n",
            rcn, rcn <= 0.75 ? "met" : "missed", rxn, rxn <= 0.65 ? "met" : "missed", rc1, pair,
            rc3);
    int dp = runner_index("dpdk");
    if (dp >= 0 && cell("a/4K")->n[dp]) {
        double d1 = median(cell("a/4K"), bp, NULL, NULL) / median(cell("a/4K"), dp, NULL, NULL);
        double d2 = median(cn, bp, NULL, NULL) / median(cn, dp, NULL, NULL);
        fprintf(o,
                "- at or below DPDK's mempool: get+put 4 KiB %.2fx: %s; fan-out with 8 "
                "references at once %.2fx: %s\n",
                d1, d1 <= 1.0 ? "met" : "missed", d2, d2 <= 1.0 ? "met" : "missed");
    }
    cellrow *d = cell("d/xthread");
    double rd1 = median(d, bp, NULL, NULL) / best_alloc(d, false);
    double rd2 = median(d, bp, NULL, NULL) / median(d, av, NULL, NULL);
    fprintf(o, "- (d) cross-thread <= 0.6x best allocator: %.2fx: %s; <= 0.25x avpool: %.2fx: %s\n",
            rd1, rd1 <= 0.6 ? "met" : "missed", rd2, rd2 <= 0.25 ? "met" : "missed");
    double re = median(cell("e/2t"), bp, NULL, NULL) / median(cell("e/1t"), bp, NULL, NULL);
    fprintf(o, "- (e) two threads >= 1.9x one thread: %.2fx: %s\n", re,
            re >= 1.9 ? "met" : "missed");
    if (rss_done[bp]) {
        /* default bounds, one thread: 10 tiers with thread bins of <= 256 KiB,
         * 4 hot slots of each of the 128 KiB..2 MiB tiers, idle_bytes 64 MiB */
        double live = rss[bp][0], mib = 1 << 20;
        double bound = live * 1.05 + 10 * 256.0 * 1024 + 4 * 3.875 * mib + 64 * mib;
        fprintf(o,
                "- (f) resident %.1f MiB for %.1f MiB live capacity: %.3fx; bound 1.05x + caches "
                "+ idle_bytes = %.1f MiB: %s; after trim %.1f%% of peak (<= 10%%): %s\n",
                rss[bp][1] / 1048576, live / 1048576, rss[bp][1] / live, bound / 1048576,
                rss[bp][1] <= bound ? "met" : "missed", 100 * rss[bp][2] / rss[bp][1],
                rss[bp][2] <= rss[bp][1] / 10 ? "met" : "missed");
    }
    double g1 = median(cell("a/4K"), bp, NULL, NULL) / median(cell("a/4K"), norec, NULL, NULL);
    double g2 = median(cell("e/2t"), norec, NULL, NULL) / median(cell("e/2t"), bp, NULL, NULL);
    int lk = runner_index("bytepool-locked");
    fprintf(o,
            "- (g) stats + lock-free recorder vs recorder off, 4 KiB: one thread %.2fx, two "
            "threads %.2fx (<= 1.10x): %s; get+put ns: lock-free %.1f, locked %.1f, off %.1f\n",
            g1, g2, g1 <= 1.10 && g2 <= 1.10 ? "met" : "missed",
            median(cell("a/4K"), bp, NULL, NULL), median(cell("a/4K"), lk, NULL, NULL),
            median(cell("a/4K"), norec, NULL, NULL));
}

static void write_json(const char *dir, int rounds) {
    char path[512], cpu[128];
    snprintf(path, sizeof path, "%s/bench.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    machine(cpu, sizeof cpu);
    fprintf(f, "{\"machine\":{\"cpu\":\"%s\",\"cores\":%ld,\"compiler\":\"gcc %s\"},\"rounds\":%d,",
            cpu, sysconf(_SC_NPROCESSORS_ONLN), __VERSION__, rounds);
    fprintf(f, "\"samples\":{");
    for (size_t r = 0; r < NRUN; r++) {
        fprintf(f, "%s\"%s\":{", r ? "," : "", runners[r].label);
        for (int i = 0; i < ncells; i++) {
            fprintf(f, "%s\"%s\":[", i ? "," : "", cells[i].name);
            for (int k = 0; k < cells[i].n[r]; k++)
                fprintf(f, "%s%.3f", k ? "," : "", cells[i].v[r][k]);
            fprintf(f, "]");
        }
        fprintf(f, "}");
    }
    fprintf(f, "},\"rss\":{");
    bool first = true;
    for (size_t r = 0; r < NRUN; r++)
        if (rss_done[r]) {
            fprintf(f, "%s\"%s\":{\"live\":%.0f,\"resident\":%.0f,\"after_trim\":%.0f}",
                    first ? "" : ",", runners[r].label, rss[r][0], rss[r][1], rss[r][2]);
            first = false;
        }
    fprintf(f, "},\"instructions\":{");
    first = true;
    for (size_t r = 0; r < NRUN; r++)
        if (icount[r][0] > 0) {
            fprintf(f, "%s\"%s\":{\"a/128\":%ld,\"a/4K\":%ld,\"c/fanout\":%ld}", first ? "" : ",",
                    runners[r].label, icount[r][0], icount[r][1], icount[r][2]);
            first = false;
        }
    fprintf(f, "}}\n");
    fclose(f);
}

static void plots(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/plot.dat", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "size"); /* a header row: gnuplot takes the titles from it */
    for (size_t r = 0; r < NRUN; r++)
        fprintf(f, " %s", runners[r].label);
    fprintf(f, "\n");
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "a/%s", size_names[i]);
        fprintf(f, "%zu", sizes[i]);
        for (size_t r = 0; r < NRUN; r++)
            fprintf(f, " %.3f", median(cell(name), (int)r, NULL, NULL));
        fprintf(f, "\n");
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/bars.dat", dir);
    f = fopen(path, "w");
    for (size_t r = 0; f && r < NRUN; r++)
        fprintf(f, "%s %.3f %.3f %.3f %.3f\n", runners[r].label,
                median(cell("d/xthread"), (int)r, NULL, NULL),
                median(cell("c/fanout"), (int)r, NULL, NULL),
                median(cell("e/1t"), (int)r, NULL, NULL), median(cell("e/2t"), (int)r, NULL, NULL));
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "%s/plots.gp", dir);
    f = fopen(path, "w");
    if (!f)
        return;
    fprintf(
        f,
        "set terminal svg size 900,520 dynamic\n"
        "set output '%s/get_put_by_size.svg'\n"
        "set title 'same-thread get+put (ns/op, median)'\n"
        "set logscale xy\nset xlabel 'buffer size (bytes)'\nset ylabel 'ns/op'\n"
        "set key outside right\nset grid\n"
        "plot for [i=2:%zu] '%s/plot.dat' using 1:i with linespoints title columnheader(i)\n"
        "set output '%s/cross_thread.svg'\nunset logscale\nset logscale y\n"
        "set title 'cross-thread hand-off and fan-out (ns/op, median)'\n"
        "set style data histograms\nset style fill solid 0.8\nset xtics rotate by -30\n"
        "set xlabel ''\n"
        "plot '%s/bars.dat' using 2:xtic(1) title 'hand-off (d)', '' using 3 title 'fan-out (c)'\n"
        "set output '%s/scaling.svg'\nunset logscale\n"
        "set title 'get+put 4 KiB throughput (million ops/s)'\nset ylabel 'Mops/s'\n"
        "plot '%s/bars.dat' using 4:xtic(1) title '1 thread', '' using 5 title '2 threads'\n",
        dir, NRUN + 1, dir, dir, dir, dir, dir);
    fclose(f);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "gnuplot %s/plots.gp 2>/dev/null", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench: gnuplot failed or missing: no plots\n");
}

static long callgrind_ir(const runner *r, const char *cellname, long n) {
    char ns[32], cmd[1024];
    snprintf(ns, sizeof ns, "%ld", n);
    snprintf(cmd, sizeof cmd,
             "%s%s%s valgrind --tool=callgrind --callgrind-out-file=/dev/null %s --worker %s "
             "--count %s %s 2>&1 | awk '/Collected :/ {print $4}'",
             r->preload ? "LD_PRELOAD=" : "", r->preload ? r->preload : "", r->preload ? "" : "",
             self_path, r->worker, cellname, ns);
    FILE *p = popen(cmd, "r");
    long ir = -1;
    if (p) {
        if (fscanf(p, "%ld", &ir) != 1)
            ir = -1;
        pclose(p);
    }
    return ir;
}

static int drive(int rounds, const char *dir, bool do_icount, bool do_rss) {
    char ms[32];
    snprintf(ms, sizeof ms, "%.0f", cell_s * 1000);
    mkdir(dir, 0755);
    for (int round = 0; round < rounds; round++) {
        fprintf(stderr, "round %d/%d:", round + 1, rounds);
        for (size_t r = 0; r < NRUN; r++) {
            if (!available(&runners[r]))
                continue;
            fprintf(stderr, " %s", runners[r].label);
            char *argv[] = {(char *)self_path, "--worker", (char *)runners[r].worker,
                            "--cell-ms",       ms,         NULL};
            char *out = run(&runners[r], argv);
            for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n")) {
                char name[32];
                double v;
                if (sscanf(line, "%31s %lf", name, &v) == 2) {
                    cellrow *c = cell(name);
                    if (c && c->n[r] < MAXROUND)
                        c->v[r][c->n[r]++] = v;
                }
            }
            free(out);
        }
        fprintf(stderr, "\n");
    }
    for (size_t r = 0; do_rss && r < NRUN; r++) {
        const char *want[] = {"bytepool", "glibc", "mimalloc", "jemalloc", "tcmalloc"};
        bool ok = false;
        for (int k = 0; k < 5; k++)
            ok |= !strcmp(runners[r].label, want[k]);
        if (!ok || !available(&runners[r]))
            continue;
        char *argv[] = {(char *)self_path, "--worker", (char *)runners[r].worker, "--rss", NULL};
        char *out = run(&runners[r], argv);
        double live = 0, res = 0, after = 0;
        if (out &&
            sscanf(strstr(out, "f/live") ? strstr(out, "f/live") : "", "f/live %lf", &live) &&
            strstr(out, "f/rss") && sscanf(strstr(out, "f/rss"), "f/rss %lf", &res) &&
            strstr(out, "f/after") && sscanf(strstr(out, "f/after"), "f/after %lf", &after)) {
            rss[r][0] = live;
            rss[r][1] = res;
            rss[r][2] = after;
            rss_done[r] = true;
        }
        free(out);
    }
    if (do_icount && system("valgrind --version >/dev/null 2>&1") == 0) {
        fprintf(stderr, "instruction counts (callgrind):");
        for (size_t r = 0; r < NRUN; r++) {
            if (!available(&runners[r]) || strchr(runners[r].worker, ':'))
                continue;
            fprintf(stderr, " %s", runners[r].label);
            for (int k = 0; k < 3; k++) {
                long a = callgrind_ir(&runners[r], icount_cells[k], 20000);
                long b = callgrind_ir(&runners[r], icount_cells[k], 40000);
                icount[r][k] = a > 0 && b > a ? (b - a) / 20000 : -1;
            }
        }
        fprintf(stderr, "\n");
    }
    print_table(stdout, rounds);
    if (do_rss) {
        printf("\nResident memory, (f): 10,000 live buffers of log-uniform 1 B..2 MiB (live: "
               "bytepool's capacity, the allocators' requested bytes)\n\n"
               "| peer | live (MiB) | resident (MiB) | resident / live | after release+trim "
               "(MiB) |\n|---|---:|---:|---:|---:|\n");
        for (size_t r = 0; r < NRUN; r++)
            if (rss_done[r])
                printf("| %s | %.1f | %.1f | %.3f | %.1f |\n", runners[r].label,
                       rss[r][0] / 1048576, rss[r][1] / 1048576, rss[r][1] / rss[r][0],
                       rss[r][2] / 1048576);
    }
    if (do_icount) {
        printf("\nInstructions per operation (callgrind, difference of two runs)\n\n"
               "| peer | a/128 get+put | a/4K get+put | c fan-out (get, 8 retain, 9 release) "
               "|\n|---|---:|---:|---:|\n");
        for (size_t r = 0; r < NRUN; r++)
            if (icount[r][0] > 0)
                printf("| %s | %ld | %ld | %ld |\n", runners[r].label, icount[r][0], icount[r][1],
                       icount[r][2]);
    }
    print_targets(stdout);
    write_json(dir, rounds);
    plots(dir);
    printf("\nSamples: %s/bench.json; plots: %s/*.svg\n", dir, dir);
    return 0;
}

int main(int argc, char **argv) {
    self_path = realpath("/proc/self/exe", NULL);
    int rounds = 5;
    const char *worker = NULL, *dir = "bench/results", *count_name = NULL;
    long count_n = 0;
    bool do_icount = true, do_rss = true, rss_mode = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cell-ms") && i + 1 < argc)
            cell_s = atof(argv[++i]) / 1000;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--worker") && i + 1 < argc)
            worker = argv[++i];
        else if (!strcmp(argv[i], "--count") && i + 2 < argc) {
            count_name = argv[++i];
            count_n = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--rss"))
            rss_mode = true;
        else if (!strcmp(argv[i], "--no-icount"))
            do_icount = false;
        else if (!strcmp(argv[i], "--no-rss"))
            do_rss = false;
        else {
            fprintf(stderr, "usage: bench [--rounds N] [--cell-ms MS] [--out DIR] [--no-icount] "
                            "[--no-rss] | --worker PEER[:VARIANT] [--count CELL N | --rss]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAXROUND || cell_s <= 0)
        return 2;
    if (!worker)
        return drive(rounds, dir, do_icount, do_rss);
    const char *variant;
    const peer *p = find_peer(worker, &variant);
    if (!p) {
        fprintf(stderr, "bench: unknown peer %s\n", worker);
        return 2;
    }
    if (count_name)
        return count_cell(p, count_name, count_n) == count_n ? 0 : 2;
    if (rss_mode) {
        worker_rss(p, p == &peer_bytepool);
        return 0;
    }
    worker_round(p, variant);
    return 0;
}
