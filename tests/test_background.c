/* SPDX-License-Identifier: MIT */
/* test_background.c - the purge thread: an idle pool's memory goes back to
 * the OS within 2x decay_ms without any call on it; BP_NO_BACKGROUND keeps
 * the old behaviour; a fork() child gets a purge thread of its own; a
 * destroyed pool's buffers cached by a thread that never calls it again are
 * reclaimed. */
#include "helpers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t mapped(bp_pool *pool) {
    bp_stats st;
    bp_pool_stats(pool, &st); /* a read: it runs no decay */
    return st.bytes_mapped;
}

/* Traffic on a thread of its own: at its exit, everything is free in the
 * depot, so the pool's floor is 0 mapped bytes. */
static void *traffic(void *arg) {
    bp_pool *pool = arg;
    void *v[40];
    for (int i = 0; i < 40; i++)
        v[i] = bp_get(pool, i % 4 ? 60000 : 500000);
    for (int i = 0; i < 40; i++)
        bp_put(pool, v[i]);
    return NULL;
}

/* A pool left idle with free memory and no thread cache holding any:
 * the traffic runs on a thread that exits, or (in fork children, where
 * ThreadSanitizer mishandles new threads) with no thread bins at all. */
static bp_pool *idle_pool(unsigned decay_ms, unsigned flags, bool threaded) {
    bp_config cfg = {0};
    cfg.decay_ms = decay_ms;
    cfg.flags = flags;
    cfg.tcache_bytes = threaded ? 0 : 1;
    bp_pool *pool = bp_pool_new(&cfg);
    if (threaded) {
        pthread_t t;
        pthread_create(&t, NULL, traffic, pool);
        pthread_join(t, NULL);
    } else {
        traffic(pool);
    }
    return pool;
}

static void idle_memory_goes_back_with_no_call_at_all(void **state) {
    (void)state;
    const unsigned decay = 250;
    bp_pool *pool = idle_pool(decay, 0, true);
    double t0 = now_ms();
    assert_true(mapped(pool) > 0);
    while (mapped(pool) > 0 && now_ms() - t0 < 4 * decay)
        usleep(10 * 1000);
    double took = now_ms() - t0;
    print_message("idle pool unmapped %.0f ms after its last call (decay_ms %u)\n", took, decay);
    assert_int_equal(mapped(pool), 0);
    assert_true(took <= 2 * decay);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void without_background_only_calls_decay(void **state) {
    (void)state;
    bp_pool *pool = idle_pool(100, BP_NO_BACKGROUND, true);
    uint64_t before = mapped(pool);
    usleep(400 * 1000);
    assert_int_equal(mapped(pool), before); /* nobody called: nothing decayed */
    bp_put(pool, bp_get(pool, 60000));      /* a call that takes the lock decays */
    assert_true(mapped(pool) < before);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void env_turns_background_off(void *arg) {
    (void)arg;
    setenv("BYTEPOOL_BACKGROUND", "0", 1);
    bp_pool *pool = idle_pool(100, 0, false);
    uint64_t before = mapped(pool);
    usleep(400 * 1000);
    uint64_t after = mapped(pool);
    fprintf(stderr, "mapped %llu, then %llu\n", (unsigned long long)before,
            (unsigned long long)after);
    _exit(before > 0 && after == before ? 0 : 1);
}

static void background_off_from_the_environment(void **state) {
    (void)state;
    char msg[256];
    int st = run_in_child(env_turns_background_off, NULL, msg, sizeof msg);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        print_message("child: %s\n", msg);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void child_purges(void *arg) {
    bp_pool *pool = arg; /* made before the fork: the child restarts the thread */
    traffic(pool);
    double t0 = now_ms();
    while (mapped(pool) > 0 && now_ms() - t0 < 2000)
        usleep(10 * 1000);
    _exit(mapped(pool) == 0 ? 0 : 1);
}

static void a_fork_child_has_its_own_purge_thread(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.decay_ms = 100;
    cfg.tcache_bytes = 1; /* everything free goes home: no cache keeps memory */
    bp_pool *pool = bp_pool_new(&cfg);
    char msg[256];
    int st = run_in_child(child_purges, pool, msg, sizeof msg);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

typedef struct busy {
    bp_pool *dead, *other;
    void *cached;
    _Atomic int phase; /* 1: dead pool used, 2: stop */
} busy;

static void *busy_body(void *arg) {
    busy *b = arg;
    void *v[4];
    for (int i = 0; i < 4; i++)
        memset(v[i] = bp_get(b->dead, 60000), 1, 64); /* resident */
    for (int i = 0; i < 4; i++)
        bp_put(b->dead, v[i]); /* they stay in this thread's bin */
    b->cached = v[0];
    atomic_store(&b->phase, 1);
    while (atomic_load(&b->phase) != 2) /* fast paths of another pool only */
        bp_put(b->other, bp_get(b->other, 100));
    return NULL;
}

static void destroyed_pool_memory_is_reclaimed_from_busy_threads(void **state) {
    (void)state;
    busy b = {bp_pool_new(NULL), bp_pool_new(NULL), NULL, 0};
    pthread_t t;
    pthread_create(&t, NULL, busy_body, &b);
    while (atomic_load(&b.phase) != 1)
        usleep(1000);
    assert_int_equal(bp_pool_destroy(b.dead), 0);
    assert_true(is_resident(b.cached)); /* held by the busy thread's cache */
    double t0 = now_ms();
    while (is_resident(b.cached) && now_ms() - t0 < 5000)
        usleep(20 * 1000);
    print_message("destroyed pool unmapped %.0f ms after destroy\n", now_ms() - t0);
    assert_false(is_resident(b.cached));
    atomic_store(&b.phase, 2);
    pthread_join(t, NULL);
    assert_int_equal(bp_pool_destroy(b.other), 0);
}

typedef struct idle_arg {
    bp_pool *pool;
    uint8_t *v[10];
} idle_arg;

/* Gets, writes and puts 10 buffers, then exits: its cache goes to the depot. */
static void *use_and_exit(void *arg) {
    idle_arg *a = arg;
    for (int i = 0; i < 10; i++) {
        a->v[i] = bp_get(a->pool, 60000);
        memset(a->v[i], 7, 60000);
    }
    for (int i = 0; i < 10; i++)
        bp_put(a->pool, a->v[i]);
    return NULL;
}

/* Free buffers of a segment that still has a buffer out give their pages
 * back once idle for decay_ms, with no call on the pool (only trim did). */
static void idle_pages_of_a_busy_segment_go_back(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.decay_ms = 100;
    bp_pool *pool = bp_pool_new(&cfg);
    uint8_t *live = bp_get(pool, 60000); /* keeps the segment from being empty */
    memset(live, 1, 60000);
    idle_arg a = {pool, {0}};
    pthread_t t;
    pthread_create(&t, NULL, use_and_exit, &a);
    pthread_join(t, NULL);
    int resident = 10;
    double start = now_ms();
    while (resident && now_ms() - start < 20000) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        resident = 0;
        for (int i = 0; i < 10; i++)
            resident += is_resident(a.v[i]) || is_resident(a.v[i] + 32768);
    }
    print_message("idle pages back after %.0f ms\n", now_ms() - start);
    assert_int_equal(resident, 0);
    assert_true(is_resident(live));
    assert_int_equal(live[59999], 1);
    assert_int_equal(bp_put(pool, live), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* A user recorder whose push never returns, holding the pool lock. */
static _Atomic int push_entered;
static void push_forever(void *ctx, size_t len) {
    (void)ctx;
    (void)len;
    atomic_store(&push_entered, 1);
    for (;;)
        pause();
}
static size_t read_none(void *ctx, size_t *out, size_t max) {
    (void)ctx;
    (void)out;
    (void)max;
    return 0;
}
static void *get_into_push(void *arg) {
    bp_get(arg, 100); /* checked pool: recorded under the lock, by the push */
    return NULL;
}
static void exit_from_handler(int sig) {
    (void)sig;
    exit(0);
}

/* Child: a thread blocks in push with the pool lock held, the purge thread
 * (1 ms period) waits for that lock, then the process exits, by exit() or
 * from a signal handler. */
static void exit_behind_a_stuck_push(const char *how) {
    static const bp_recorder rec = {NULL, push_forever, read_none};
    bp_config cfg = {0};
    cfg.flags = BP_CHECKED;
    cfg.recorder = &rec;
    cfg.decay_ms = 4;
    bp_pool *pool = bp_pool_new(&cfg);
    pthread_t t;
    pthread_create(&t, NULL, get_into_push, pool);
    while (!atomic_load(&push_entered))
        sched_yield();
    struct timespec ts = {0, 100 * 1000 * 1000}; /* the purge thread's passes reach the lock */
    nanosleep(&ts, NULL);
    if (!strcmp(how, "signal")) {
        signal(SIGUSR1, exit_from_handler);
        raise(SIGUSR1);
    }
    exit(0);
}

static void exit_never_waits_for_a_pool_lock(void **state) {
    (void)state;
    const char *hows[] = {"exit", "signal"};
    for (int i = 0; i < 2; i++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0)
            exit_behind_a_stuck_push(hows[i]);
        int st = 0;
        double start = now_ms();
        while (waitpid(pid, &st, WNOHANG) == 0 && now_ms() - start < 30000) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        bool exited = waitpid(pid, &st, WNOHANG) != 0 || WIFEXITED(st);
        if (!exited) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        print_message("exit (%s) behind a stuck push: %s in %.0f ms\n", hows[i],
                      exited ? "exited" : "HUNG", now_ms() - start);
        assert_true(exited && WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_memory_goes_back_with_no_call_at_all),
        cmocka_unit_test(without_background_only_calls_decay),
        cmocka_unit_test(background_off_from_the_environment),
        cmocka_unit_test(a_fork_child_has_its_own_purge_thread),
        cmocka_unit_test(destroyed_pool_memory_is_reclaimed_from_busy_threads),
        cmocka_unit_test(exit_never_waits_for_a_pool_lock),
        cmocka_unit_test(idle_pages_of_a_busy_segment_go_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
