/* SPDX-License-Identifier: MIT */
/* test_background.c - the purge thread: an idle pool's memory goes back to
 * the OS within 2x decay_ms without any call on it; BP_NO_BACKGROUND keeps
 * the old behaviour; a fork() child gets a purge thread of its own; a
 * destroyed pool's buffers cached by a thread that never calls it again are
 * reclaimed; exit never waits for a pool lock, and a purge thread left busy
 * at exit ends by itself. */
#include "helpers.h"

#include <dirent.h>
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

/* decay_ms 1000: the bound, 2x, then leaves 500 ms for a late scheduled
 * purge thread on a loaded machine (with 250 it left 130 ms under TSan). */
static void idle_memory_goes_back_with_no_call_at_all(void **state) {
    (void)state;
    const unsigned decay = 1000;
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

/* The threads of this process. */
static int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* A push that returns once exit() has begun. */
static _Atomic int push_released;
static pthread_t pusher;
static int threads_before; /* a sanitizer's own threads, and main */
static void push_until_released(void *ctx, size_t len) {
    (void)ctx;
    (void)len;
    atomic_store(&push_entered, 1);
    while (!atomic_load(&push_released)) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void *push_nothing(void *arg) { return arg; }

/* Registered before the library's own handler, so it runs after it: the
 * purge thread has been told to stop and, busy, was not waited for. The push
 * returns, the purge thread's pass ends and the thread must end on its own.
 * Exit status 3: it did not end within 30 s. Under ThreadSanitizer a thread
 * that ended and that nobody joined or detached is reported at exit (status
 * 66). */
static void release_after_library_exit(void) {
    atomic_store(&push_released, 1);
    pthread_join(pusher, NULL);
    double t0 = now_ms();
    while (thread_count() > threads_before && now_ms() - t0 < 30000) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (thread_count() > threads_before)
        _exit(3);
}

/* Child, run as a new program so that its exit handlers are its own: exit()
 * begins while the purge thread is in a pass, waiting for a pool lock that a
 * push holds, and the push returns during the exit. */
static int exit_while_the_purge_thread_is_busy(void) {
    static const bp_recorder rec = {NULL, push_until_released, read_none};
    pthread_t first; /* ThreadSanitizer starts a thread of its own at the first */
    pthread_create(&first, NULL, push_nothing, NULL);
    pthread_join(first, NULL);
    threads_before = thread_count();
    atexit(release_after_library_exit);
    bp_config cfg = {0};
    cfg.flags = BP_CHECKED;
    cfg.recorder = &rec;
    cfg.decay_ms = 4;
    bp_pool *pool = bp_pool_new(&cfg);
    pthread_create(&pusher, NULL, get_into_push, pool);
    while (!atomic_load(&push_entered))
        sched_yield();
    struct timespec ts = {0, 100 * 1000 * 1000}; /* the purge thread's passes reach the lock */
    nanosleep(&ts, NULL);
    exit(0);
}

static void a_busy_purge_thread_ends_by_itself_after_exit(void **state) {
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test_background", "exit-while-busy", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* A thread that stays alive but makes no call: the purge thread takes the
 * free buffers of its cache back, and the thread, woken, finds a working
 * cache. Without the drain, its 64 cached buffers pin their segment. */
typedef struct sleeper {
    bp_pool *pool;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stage; /* 1: filled its cache; 2: told to go on; 3: done, all good */
} sleeper;

static void stage_set(sleeper *s, int v) {
    pthread_mutex_lock(&s->mu);
    s->stage = v;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void stage_wait(sleeper *s, int v) {
    pthread_mutex_lock(&s->mu);
    while (s->stage < v)
        pthread_cond_wait(&s->cv, &s->mu); /* blocked in a system call */
    pthread_mutex_unlock(&s->mu);
}

static void *sleeper_main(void *arg) {
    sleeper *s = arg;
    void *v[64];
    for (int i = 0; i < 64; i++)
        memset(v[i] = bp_get(s->pool, 4096), 0xab, 4096);
    for (int i = 0; i < 64; i++)
        bp_put(s->pool, v[i]); /* all 64 stay in this thread's bin */
    stage_set(s, 1);
    stage_wait(s, 2);
    bool good = true;
    for (int i = 0; i < 64; i++) {
        v[i] = bp_get(s->pool, 4096);
        good = good && v[i] && bp_refcount(v[i]) == 1;
        for (int j = 0; good && j < i; j++)
            good = v[i] != v[j];
        if (good)
            memset(v[i], i, 4096);
    }
    for (int i = 0; i < 64; i++)
        good = good && ((unsigned char *)v[i])[4095] == i && bp_put(s->pool, v[i]) == 0;
    stage_set(s, good ? 3 : 4);
    return NULL;
}

static void an_idle_live_threads_cache_goes_back(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.decay_ms = 50;
    sleeper s = {.pool = bp_pool_new(&cfg)};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    pthread_t t;
    pthread_create(&t, NULL, sleeper_main, &s);
    stage_wait(&s, 1);
    assert_true(mapped(s.pool) > 0);
    double t0 = now_ms();
    while (mapped(s.pool) > 0 && now_ms() - t0 < 30000)
        usleep(5 * 1000);
    assert_int_equal(mapped(s.pool), 0); /* the sleeper never called in */
    bp_stats st;
    bp_pool_stats(s.pool, &st);
    assert_int_equal(st.outstanding, 0);
    stage_set(&s, 2);
    stage_wait(&s, 3);
    assert_int_equal(s.stage, 3);
    pthread_join(t, NULL);
    bp_pool_stats(s.pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(st.total_get, 128);
    assert_int_equal(st.total_put, 128);
    assert_int_equal(bp_pool_destroy(s.pool), 0);
}

/* Threads that pause in system calls between bursts, with decay_ms at its
 * least: the purge thread drains their caches over and over while they
 * wake up. A buffer handed out twice would show as a count other than 1, an
 * overwritten mark or a refused put. */
typedef struct napper {
    bp_pool *pool;
    unsigned id;
    _Atomic int *stop;
    long bad, rounds;
} napper;

static void *napper_main(void *arg) {
    napper *n = arg;
    void *v[48];
    const struct timespec nap = {0, 1500 * 1000};
    while (!atomic_load(n->stop)) {
        size_t len = n->rounds % 2 ? 4096 : 300;
        for (int i = 0; i < 48; i++) {
            v[i] = bp_get(n->pool, len);
            n->bad += bp_refcount(v[i]) != 1;
            memset(v[i], (int)(n->id * 64 + (unsigned)i), len);
        }
        nanosleep(&nap, NULL); /* the drain may come now */
        for (int i = 0; i < 48; i++) {
            unsigned char *c = v[i];
            n->bad += c[0] != (unsigned char)(n->id * 64 + (unsigned)i) || c[len - 1] != c[0];
            n->bad += bp_put(n->pool, v[i]) != 0;
        }
        nanosleep(&nap, NULL); /* and now, with 48 buffers in the bin */
        n->rounds++;
    }
    return NULL;
}

static void drains_race_threads_that_wake_up(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.decay_ms = 1;
    bp_pool *pool = bp_pool_new(&cfg);
    _Atomic int stop = 0;
    napper n[3];
    pthread_t t[3];
    for (unsigned i = 0; i < 3; i++) {
        n[i] = (napper){.pool = pool, .id = i, .stop = &stop};
        pthread_create(&t[i], NULL, napper_main, &n[i]);
    }
    usleep(1500 * 1000);
    atomic_store(&stop, 1);
    long rounds = 0;
    for (unsigned i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(n[i].bad, 0);
        rounds += n[i].rounds;
    }
    print_message("%ld rounds\n", rounds);
    assert_true(rounds >= 3);
    bp_stats st;
    bp_pool_stats(pool, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(st.total_get, st.total_put);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "exit-while-busy"))
        return exit_while_the_purge_thread_is_busy();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_memory_goes_back_with_no_call_at_all),
        cmocka_unit_test(without_background_only_calls_decay),
        cmocka_unit_test(background_off_from_the_environment),
        cmocka_unit_test(a_fork_child_has_its_own_purge_thread),
        cmocka_unit_test(destroyed_pool_memory_is_reclaimed_from_busy_threads),
        cmocka_unit_test(exit_never_waits_for_a_pool_lock),
        cmocka_unit_test(a_busy_purge_thread_ends_by_itself_after_exit),
        cmocka_unit_test(idle_pages_of_a_busy_segment_go_back),
        cmocka_unit_test(an_idle_live_threads_cache_goes_back),
        cmocka_unit_test(drains_race_threads_that_wake_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
