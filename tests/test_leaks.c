/* SPDX-License-Identifier: MIT */
/* test_leaks.c - leak reports: outstanding buffers grouped by allocation
 * site with counts and bytes; released ones disappear; sampling; the
 * environment switch; destroy reports to stderr. */
#include "helpers.h"

#include <fcntl.h>
#include <pthread.h>

static bp_pool *leak_pool(bp_leaks mode) {
    bp_config cfg = {0};
    cfg.leaks = mode;
    return bp_pool_new(&cfg);
}

/* Two distinct allocation sites: not inlined, and no tail call (the asm
 * after the call), so each keeps a frame of its own. */
__attribute__((noinline)) void *alloc_site_alpha(bp_pool *pool, size_t len) {
    void *p = bp_get(pool, len);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}
__attribute__((noinline)) void *alloc_site_beta(bp_pool *pool, size_t len) {
    void *p = bp_get(pool, len);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

static char *report(bp_pool *pool, size_t *outstanding) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    *outstanding = bp_pool_report_leaks(pool, f);
    fclose(f);
    return text;
}

static void report_groups_by_site_with_counts_and_bytes(void **state) {
    (void)state;
    bp_pool *pool = leak_pool(BP_LEAKS_ALL);
    void *a[3], *b[2];
    for (int i = 0; i < 3; i++)
        a[i] = alloc_site_alpha(pool, 1000);
    for (int i = 0; i < 2; i++)
        b[i] = alloc_site_beta(pool, 5000);
    void *gone = alloc_site_beta(pool, 7);
    assert_int_equal(bp_release(gone), 0); /* released: not a leak */
    size_t n;
    char *text = report(pool, &n);
    assert_int_equal(n, 5);
    assert_non_null(strstr(text, "5 buffer(s)"));
    assert_non_null(strstr(text, "5 with a known allocation site"));
    assert_non_null(strstr(text, "3 buffer(s), 3000 bytes requested"));
    assert_non_null(strstr(text, "2 buffer(s), 10000 bytes requested"));
    assert_non_null(strstr(text, "alloc_site_alpha"));
    assert_non_null(strstr(text, "alloc_site_beta"));
    /* the larger site (beta, 10000 bytes) is listed first */
    assert_true(strstr(text, "10000 bytes") < strstr(text, "3000 bytes"));
    free(text);
    /* sampled buffers still work as buffers: retain, shared release, put */
    assert_ptr_equal(bp_retain(a[0]), a[0]);
    assert_int_equal(bp_refcount(a[0]), 2);
    assert_int_equal(bp_release(a[0]), 0);
    assert_int_equal(bp_refcount(a[0]), 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(bp_put(pool, a[i]), 0);
    assert_int_equal(bp_release(a[0]), EALREADY);
    text = report(pool, &n);
    assert_int_equal(n, 2);
    assert_null(strstr(text, "alloc_site_alpha"));
    free(text);
    for (int i = 0; i < 2; i++)
        bp_release(b[i]);
    text = report(pool, &n);
    assert_int_equal(n, 0);
    assert_true(text == NULL || text[0] == 0); /* nothing outstanding: silent */
    free(text);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void sampling_records_about_one_in_32(void **state) {
    (void)state;
    bp_pool *pool = leak_pool(BP_LEAKS_SAMPLE);
    static void *v[640];
    for (int i = 0; i < 640; i++)
        v[i] = alloc_site_alpha(pool, 100);
    size_t n;
    char *text = report(pool, &n);
    assert_int_equal(n, 640);
    assert_non_null(strstr(text, "20 with a known allocation site"));
    assert_non_null(strstr(text, "leaks=sample"));
    free(text);
    for (int i = 0; i < 640; i++)
        assert_int_equal(bp_release(v[i]), 0);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

static void off_records_nothing_and_oversize_is_sampled(void **state) {
    (void)state;
    bp_pool *pool = leak_pool(BP_LEAKS_OFF);
    void *p = alloc_site_alpha(pool, 100);
    size_t n;
    char *text = report(pool, &n);
    assert_int_equal(n, 1);
    assert_non_null(strstr(text, "0 with a known allocation site"));
    free(text);
    bp_release(p);
    bp_pool_destroy(pool);
    pool = leak_pool(BP_LEAKS_SAMPLE);
    p = alloc_site_beta(pool, 5u << 20); /* oversize: always recorded */
    text = report(pool, &n);
    assert_non_null(strstr(text, "1 with a known allocation site"));
    assert_non_null(strstr(text, "alloc_site_beta"));
    free(text);
    bp_release(p);
    bp_pool_destroy(pool);
}

static void destroy_with_leaks(void *arg) {
    (void)arg;
    setenv("BYTEPOOL_LEAKS", "all", 1);
    bp_pool *pool = bp_pool_new(NULL); /* the environment turns reports on */
    alloc_site_alpha(pool, 64);
    _exit(bp_pool_destroy(pool) == 1 ? 0 : 1);
}

static void destroy_reports_to_stderr(void **state) {
    (void)state;
    char msg[4096];
    int st = run_in_child(destroy_with_leaks, NULL, msg, sizeof msg);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_non_null(strstr(msg, "1 buffer(s), 64 bytes requested"));
    assert_non_null(strstr(msg, "alloc_site_alpha"));
}

static void bad_leaks_setting_is_refused(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.leaks = (bp_leaks)9;
    errno = 0;
    assert_null(bp_pool_new(&cfg));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(bp_pool_report_leaks(NULL, stderr), 0);
}

typedef struct stuck {
    bp_pool *pool;
    FILE *out;
} stuck;

static void *report_into(void *arg) {
    stuck *s = arg;
    bp_pool_report_leaks(s->pool, s->out);
    return NULL;
}

/* A report into a stream that does not drain (a full pipe) blocks only
 * the reporting thread: the pool's lock is not held while writing. */
static void a_stuck_report_does_not_stall_the_pool(void **state) {
    (void)state;
    bp_pool *pool = leak_pool(BP_LEAKS_ALL);
    void *held[200];
    for (int i = 0; i < 200; i++)
        held[i] = i % 2 ? alloc_site_alpha(pool, 100) : alloc_site_beta(pool, 3000);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fcntl(fds[1], F_SETPIPE_SZ, 4096); /* smaller than the report */
    stuck s = {pool, fdopen(fds[1], "w")};
    setvbuf(s.out, NULL, _IONBF, 0);
    pthread_t t;
    pthread_create(&t, NULL, report_into, &s);
    usleep(200 * 1000); /* the reporter is blocked in write() now */
    /* calls that take the pool lock still complete */
    void *big = bp_get(pool, 5u << 20);
    assert_non_null(big);
    assert_int_equal(bp_release(big), 0);
    bp_pool_trim(pool);
    char buf[4096];
    while (read(fds[0], buf, sizeof buf) > 0 && pthread_tryjoin_np(t, NULL) != 0)
        ; /* drain: the reporter finishes */
    pthread_join(t, NULL);
    fclose(s.out);
    close(fds[0]);
    for (int i = 0; i < 200; i++)
        bp_release(held[i]);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

/* BP_LEAKS_FAIL: a child that leaks one buffer and exits normally exits
 * with 23 (or BYTEPOOL_LEAK_EXITCODE), its report naming the site with
 * module+offset; one that leaks nothing exits 0; one that destroys a pool
 * with a buffer out fails too. */
/* No purge thread in these children: ThreadSanitizer mistakes a thread
 * started in a fork() child for one of the parent's ("dup thread"). */
static bp_pool *fail_pool(void) {
    bp_config cfg = {0};
    cfg.leaks = BP_LEAKS_FAIL;
    cfg.flags = BP_NO_BACKGROUND;
    return bp_pool_new(&cfg);
}

static void leaks_and_exits(void *arg) {
    (void)arg;
    bp_pool *pool = fail_pool();
    void *kept = alloc_site_alpha(pool, 300);
    void *freed = alloc_site_beta(pool, 300);
    bp_put(pool, freed);
    (void)kept;
    exit(0); /* the at-exit check runs */
}

static void leaks_nothing(void *arg) {
    (void)arg;
    bp_pool *pool = fail_pool();
    bp_put(pool, alloc_site_alpha(pool, 300));
    exit(0);
}

static void destroys_with_a_leak(void *arg) {
    (void)arg;
    bp_pool *pool = fail_pool();
    alloc_site_beta(pool, 300);
    bp_pool_destroy(pool);
    exit(0);
}

static void env_fail_with_code(void *arg) {
    (void)arg;
    setenv("BYTEPOOL_LEAKS", "fail", 1);
    setenv("BYTEPOOL_LEAK_EXITCODE", "42", 1);
    setenv("BYTEPOOL_BACKGROUND", "0", 1);
    bp_pool *pool = bp_pool_new(NULL);
    alloc_site_alpha(pool, 10);
    exit(0);
}

static void leak_fail_sets_the_exit_status(void **state) {
    (void)state;
    char msg[8192];
    int st = run_in_child(leaks_and_exits, NULL, msg, sizeof msg);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 23);
    assert_non_null(strstr(msg, "1 buffer(s)"));
    assert_non_null(strstr(msg, "leaks=fail"));
    assert_non_null(strstr(msg, "alloc_site_alpha+0x"));
    assert_null(strstr(msg, "alloc_site_beta"));
    assert_non_null(strstr(msg, "test_leaks+0x")); /* module+offset, as addr2line takes */
    assert_non_null(strstr(msg, "exit status 23"));
    st = run_in_child(leaks_nothing, NULL, msg, sizeof msg);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        print_message("child: %s\n", msg);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_null(strstr(msg, "bytepool"));
    st = run_in_child(destroys_with_a_leak, NULL, msg, sizeof msg);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 23);
    assert_non_null(strstr(msg, "alloc_site_beta+0x"));
    st = run_in_child(env_fail_with_code, NULL, msg, sizeof msg);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 42);
}

/* The profile calls: refusals, the gzip magic, folded stacks naming the
 * site and its bytes (go tool pprof reads the profile: check_pprof.sh). */
static void profile_calls_and_refusals(void **state) {
    (void)state;
    bp_pool *pool = leak_pool(BP_LEAKS_ALL);
    void *a = alloc_site_alpha(pool, 1234);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_int_equal(bp_pool_profile(pool, f), 0);
    fclose(f);
    assert_true(size > 18);
    assert_int_equal((unsigned char)text[0], 0x1f); /* gzip */
    assert_int_equal((unsigned char)text[1], 0x8b);
    free(text);
    f = open_memstream(&text, &size);
    assert_int_equal(bp_pool_profile_folded(pool, f), 0);
    fclose(f);
    assert_non_null(strstr(text, ";alloc_site_alpha 1234\n"));
    free(text);
    assert_int_equal(bp_pool_profile(NULL, stderr), EINVAL);
    assert_int_equal(bp_pool_profile(pool, NULL), EINVAL);
    assert_int_equal(bp_pool_profile_folded(NULL, stderr), EINVAL);
    assert_int_equal(bp_pool_profile_folded(pool, NULL), EINVAL);
    assert_int_equal(bp_expvar_profile(NULL, 0), EINVAL);
    bp_put(pool, a);
    assert_int_equal(bp_pool_destroy(pool), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_stuck_report_does_not_stall_the_pool),
        cmocka_unit_test(report_groups_by_site_with_counts_and_bytes),
        cmocka_unit_test(sampling_records_about_one_in_32),
        cmocka_unit_test(off_records_nothing_and_oversize_is_sampled),
        cmocka_unit_test(destroy_reports_to_stderr),
        cmocka_unit_test(bad_leaks_setting_is_refused),
        cmocka_unit_test(leak_fail_sets_the_exit_status),
        cmocka_unit_test(profile_calls_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
