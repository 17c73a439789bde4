/* SPDX-License-Identifier: MIT */
/* test_export.c - expvar registry, /debug/vars JSON (checked by jq),
 * Prometheus text (checked by promtool), detail JSON, tier advisor. */
#include "helpers.h"

static void workload(bp_pool *pool) {
    for (int i = 0; i < 10; i++)
        bp_put(pool, bp_get(pool, 100));
    for (int i = 0; i < 10; i++)
        bp_put(pool, bp_get(pool, 200));
    for (int i = 0; i < 5; i++)
        bp_put(pool, bp_get(pool, 1000));
}

static void publish_refuses_duplicates_and_destroy_unpublishes(void **state) {
    (void)state;
    bp_pool *a = bp_pool_new(NULL), *b = bp_pool_new(NULL);
    assert_int_equal(bp_expvar_publish(a, "app_"), 0);
    assert_int_equal(bp_expvar_publish(b, "app_"), EEXIST);
    assert_int_equal(bp_expvar_publish(a, "other_"), EINVAL); /* a is published */
    assert_int_equal(bp_expvar_publish(NULL, "x_"), EINVAL);
    assert_int_equal(bp_expvar_publish(b, NULL), EINVAL);
    assert_int_equal(bp_expvar_publish(b, "b_"), 0);
    char *doc = bp_expvar_json();
    assert_int_equal(jq_check(doc, "(.cmdline | type) == \"array\" and has(\"app_pool_stats\") and "
                                   "has(\"b_pool_detail\")"),
                     0);
    free(doc);
    assert_int_equal(bp_expvar_unpublish(b), 0);
    assert_int_equal(bp_expvar_unpublish(b), ENOENT);
    bp_pool_destroy(a); /* unpublishes */
    doc = bp_expvar_json();
    assert_int_equal(jq_check(doc, "keys == [\"cmdline\"]"), 0);
    free(doc);
    bp_pool_destroy(b);
}

static void debug_vars_carry_the_seed_shape_and_details(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    workload(pool);
    void *live = bp_get(pool, 5000);
    assert_int_equal(bp_expvar_publish(pool, "svc_"), 0);
    char *doc = bp_expvar_json();
    assert_non_null(doc);
    assert_int_equal(jq_check(doc, ".svc_pool_stats | keys == [\"discarded\",\"pools\","
                                   "\"recent_lengths\",\"total_get\",\"total_put\"]"),
                     0);
    assert_int_equal(
        jq_check(doc, ".svc_pool_stats.total_get == 26 and .svc_pool_stats.total_put == 25"), 0);
    assert_int_equal(jq_check(doc, ".svc_pool_detail.outstanding == 1 and "
                                   ".svc_pool_detail.bytes_live == 8192 and "
                                   "(.svc_pool_detail.tiers | length) == 15 and "
                                   ".svc_pool_detail.tiers[0].get == 10 and "
                                   "(.svc_pool_detail.recent_lengths | length) == 26"),
                     0);
    free(doc);
    bp_put(pool, live);
    bp_pool_destroy(pool);
}

static void prometheus_output_passes_promtool(void **state) {
    (void)state;
    bp_pool *a = bp_pool_new(NULL), *b = bp_pool_new(NULL);
    workload(a);
    bp_expvar_publish(a, "front");
    bp_expvar_publish(b, "we\"ird\\name\n");
    char *one = bp_pool_stats_prometheus(a, "front");
    assert_non_null(one);
    assert_non_null(strstr(one, "# TYPE bytepool_gets_total counter\n"));
    assert_non_null(strstr(one, "bytepool_tier_gets_total{pool=\"front\",tier=\"128\"} 10\n"));
    assert_non_null(strstr(one, "bytepool_live_bytes{pool=\"front\"} 0\n"));
    assert_int_equal(run_on(one, "promtool check metrics < %s >/dev/null 2>&1"), 0);
    char *all = bp_prometheus_all();
    assert_non_null(strstr(all, "pool=\"we\\\"ird\\\\name\\n\""));
    assert_int_equal(run_on(all, "promtool check metrics < %s >/dev/null 2>&1"), 0);
    /* each family appears once even with two pools */
    const char *first = strstr(all, "# TYPE bytepool_segments gauge");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE bytepool_segments gauge"));
    assert_int_not_equal(run_on("bad metric{\n", "promtool check metrics < %s >/dev/null 2>&1"),
                         0); /* promtool does reject broken text */
    free(one);
    free(all);
    assert_null(bp_pool_stats_prometheus(NULL, "x"));
    bp_pool_destroy(a);
    bp_pool_destroy(b);
}

static void advisor_finds_the_least_waste(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    bp_advice adv;
    assert_int_equal(bp_pool_advice(pool, 2, &adv), 0);
    assert_int_equal(adv.ntiers, 0); /* nothing recorded yet */
    workload(pool);                  /* 10 x 100, 10 x 200, 5 x 1000 */
    assert_int_equal(bp_pool_advice(pool, 2, &adv), 0);
    assert_int_equal(adv.samples, 25);
    assert_int_equal(adv.ntiers, 2);
    /* aligned tiers: 100, 200, 1000 round up to 128, 256, 1024 */
    assert_int_equal(adv.tiers[0], 256);
    assert_int_equal(adv.tiers[1], 1024);
    assert_int_equal(adv.waste_advised, 10 * 156 + 10 * 56 + 5 * 24);
    assert_int_equal(adv.waste_current, 10 * 28 + 10 * 56 + 5 * 24); /* 128/256/1024 */
    assert_int_equal(adv.slack_current, adv.waste_current);
    assert_int_equal(adv.slack_advised, adv.waste_advised);
    size_t out[4];
    assert_int_equal(bp_pool_advise_sizes(pool, 1, out), 1);
    assert_int_equal(out[0], 1024);
    assert_int_equal(bp_pool_advise_sizes(pool, 4, out), 3); /* only 3 distinct lengths */
    assert_int_equal(out[0], 128);
    assert_int_equal(out[2], 1024);
    /* a program that fills its buffers to bp_cap: the slack is used, not waste */
    assert_int_equal(bp_pool_advice_sized(pool, 2, BP_ADVICE_SLACK_USED, &adv, sizeof adv), 0);
    assert_int_equal(adv.waste_current, 0);
    assert_int_equal(adv.waste_advised, 0);
    assert_int_equal(adv.slack_current, 10 * 28 + 10 * 56 + 5 * 24);
    assert_int_equal(adv.tiers[1], 1024);
    assert_int_equal(bp_pool_advice(NULL, 2, &adv), EINVAL);
    char *d = bp_pool_detail_json(pool);
    assert_int_equal(jq_check(d, ".advice.waste_current == 960 and (.advice.tiers | length) == 3"
                                 " and .advice.slack_current == 960 and .leaks.mode == \"off\""),
                     0);
    free(d);
    bp_pool_destroy(pool);
}

/* Tiers a person would use: 64-byte multiples, page multiples from 4 KiB. */
static void advisor_proposes_aligned_tiers(void **state) {
    (void)state;
    bp_pool *pool = bp_pool_new(NULL);
    const size_t lens[] = {1, 65, 1500, 4000, 4097, 5000, 70000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        bp_put(pool, bp_get(pool, lens[i]));
    size_t out[8];
    assert_int_equal(bp_pool_advise_sizes(pool, 8, out), 6);
    const size_t want[] = {64, 128, 1536, 4032, 8192, 8192, 73728};
    for (size_t i = 0, j = 0; i < 7; i++) /* 4097 and 5000 share 8192: 6 distinct */
        if (!i || want[i] != want[i - 1])
            assert_int_equal(out[j++], want[i]);
    assert_int_equal(bp_pool_advise_sizes(pool, 2, out), 2); /* never more than asked */
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(out[i] % (out[i] >= 4096 ? 4096 : 64), 0);
    bp_pool_destroy(pool);
}

static void advisor_handles_many_distinct_lengths(void **state) {
    (void)state;
    bp_config cfg = {0};
    cfg.recent_window = 4000;
    bp_pool *pool = bp_pool_new(&cfg);
    for (size_t i = 1; i <= 4000; i++)
        bp_put(pool, bp_get(pool, i * 37));
    bp_advice adv;
    assert_int_equal(bp_pool_advice(pool, 8, &adv), 0);
    assert_int_equal(adv.ntiers, 8);
    assert_true(adv.tiers[7] >= 4000 * 37); /* the largest length is served */
    for (size_t i = 1; i < 8; i++)
        assert_true(adv.tiers[i - 1] < adv.tiers[i]);
    assert_true(adv.waste_advised < adv.waste_current);
    bp_pool_destroy(pool);
}

/* /debug/vars stays valid JSON whatever the command line holds: run this
 * program again with an argument of invalid UTF-8 and one of 5000 bytes. */
static void debug_vars_is_valid_json_for_any_command_line(void **state) {
    (void)state;
    char cmd[6000];
    char *a = malloc(5001);
    memset(a, 'x', 5000);
    a[5000] = 0;
    snprintf(cmd, sizeof cmd,
             "/proc/%d/exe --print-vars \"$(printf 'bad\\377\\376\\300\\257 \\355\\240\\200 "
             "ok\\342\\202')\" %s "
             "| jq -e '.cmdline | length == 4 and (.[3] | length) == 5000 and "
             "(.[2] | test(\"^bad\\ufffd\\ufffd\\ufffd\\ufffd\"))' >/dev/null",
             (int)getpid(), a);
    free(a);
    assert_int_equal(system(cmd), 0);
}

/* Names have no length limit (no duplicate keys from a cut), and a prefix
 * that is not UTF-8 is refused rather than breaking the documents. */
static void export_names_are_whole_and_valid(void **state) {
    (void)state;
    bp_pool *a = bp_pool_new(NULL), *b = bp_pool_new(NULL);
    char pa[700], pb[700];
    memset(pa, 'p', 600);
    memcpy(pb, pa, 600);
    strcpy(pa + 600, "_a_");
    strcpy(pb + 600, "_b_");
    assert_int_equal(bp_expvar_publish(a, pa), 0);
    assert_int_equal(bp_expvar_publish(b, pb), 0);
    assert_int_equal(bp_expvar_publish(bp_pool_new(NULL), "\xc3("), EINVAL);
    errno = 0;
    assert_null(bp_pool_stats_prometheus(a, "\xff"));
    assert_int_equal(errno, EINVAL);
    char *vars = bp_expvar_json();
    assert_int_equal(jq_check(vars, "[keys[] | select(endswith(\"pool_stats\"))] | length == 2"),
                     0);
    free(vars);
    char *prom = bp_prometheus_all();
    assert_int_equal(run_on(prom, "promtool check metrics < %s >/dev/null 2>&1"), 0);
    free(prom);
    bp_pool_destroy(a);
    bp_pool_destroy(b);
}

/* A user recorder that hands back zero lengths: the advisor skips them. */
static size_t zeros_read(void *ctx, size_t *out, size_t max) {
    (void)ctx;
    size_t n = max < 10 ? max : 10;
    for (size_t i = 0; i < n; i++)
        out[i] = i % 2 ? 0 : 4000;
    return n;
}
static void zeros_push(void *ctx, size_t len) {
    (void)ctx;
    (void)len;
}

static char *answer(void *ctx) {
    (*(int *)ctx)++;
    char *s = malloc(8);
    strcpy(s, "42");
    return s;
}
static char *nothing(void *ctx) {
    (void)ctx;
    return NULL;
}

/* The seed's expvar.Func: a variable computed at every read. */
static void function_variables(void **state) {
    (void)state;
    int calls = 0;
    assert_int_equal(bp_expvar_publish_func("fn_answer", answer, &calls), 0);
    assert_int_equal(bp_expvar_publish_func("fn_none", nothing, NULL), 0);
    assert_int_equal(bp_expvar_publish_func("fn_answer", nothing, NULL), EEXIST);
    assert_int_equal(bp_expvar_publish_func(NULL, nothing, NULL), EINVAL);
    assert_int_equal(bp_expvar_publish_func("fn_x", NULL, NULL), EINVAL);
    bp_pool *pool = bp_pool_new(NULL);
    /* one namespace of variable names: the pool's are fn_answerpool_stats
     * and fn_answerpool_detail, which no function has */
    assert_int_equal(bp_expvar_publish(pool, "fn_answer"), 0);
    assert_int_equal(bp_expvar_unpublish(pool), 0);
    char *v = bp_expvar_json();
    assert_int_equal(jq_check(v, ".fn_answer == 42 and .fn_none == null"), 0);
    free(v);
    assert_int_equal(calls, 1);
    char *prom = bp_prometheus_all(); /* no numbers: published without metrics */
    assert_non_null(prom);
    free(prom);
    assert_int_equal(bp_expvar_unpublish_func("fn_answer"), 0);
    assert_int_equal(bp_expvar_unpublish_func("fn_answer"), ENOENT);
    assert_int_equal(bp_expvar_unpublish_func("fn_none"), 0);
    assert_int_equal(bp_expvar_unpublish(NULL), ENOENT);
    v = bp_expvar_json();
    assert_int_equal(jq_check(v, "has(\"fn_answer\") | not"), 0);
    free(v);
    assert_int_equal(calls, 1);
    bp_pool_destroy(pool);
}

/* How many times the document holds the key `name`. */
static int key_count(const char *doc, const char *name) {
    char key[128];
    snprintf(key, sizeof key, "\"%s\":", name);
    int n = 0;
    for (const char *p = doc; (p = strstr(p, key)) != NULL; p += strlen(key))
        n++;
    return n;
}

/* Names collide when the document would hold the same key twice: pools
 * put <prefix>pool_stats and <prefix>pool_detail there, functions their
 * name, and the document always holds cmdline. Checked both ways. */
static void variable_names_never_repeat(void **state) {
    (void)state;
    bp_pool *x = bp_pool_new(NULL), *y = bp_pool_new(NULL), *e = bp_pool_new(NULL);
    assert_int_equal(bp_expvar_publish(x, "x_"), 0);
    assert_int_equal(bp_expvar_publish_func("x_pool_stats", nothing, NULL), EEXIST);
    assert_int_equal(bp_expvar_publish_metrics("x_pool_detail", nothing, NULL, NULL), EINVAL);
    assert_int_equal(bp_expvar_publish_func("x_pool_detail", nothing, NULL), EEXIST);
    assert_int_equal(bp_expvar_publish_func("x_", nothing, NULL), 0); /* no variable has it */
    assert_int_equal(bp_expvar_publish_func("y_pool_stats", nothing, NULL), 0);
    assert_int_equal(bp_expvar_publish(y, "y_"), EEXIST); /* the other order */
    assert_int_equal(bp_expvar_publish(y, "y_pool_"), 0); /* y_pool_pool_stats: no clash */
    assert_int_equal(bp_expvar_publish_func("cmdline", nothing, NULL), EEXIST);
    assert_int_equal(bp_expvar_publish(e, ""), 0); /* pool_stats, pool_detail */
    assert_int_equal(bp_expvar_publish_func("pool_detail", nothing, NULL), EEXIST);
    char *doc = bp_expvar_json();
    const char *keys[] = {"cmdline",       "x_",           "x_pool_stats",
                          "x_pool_detail", "y_pool_stats", "y_pool_pool_stats",
                          "pool_stats",    "pool_detail"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_int_equal(key_count(doc, keys[i]), 1);
    free(doc);
    assert_int_equal(bp_expvar_unpublish_func("x_"), 0);
    assert_int_equal(bp_expvar_unpublish_func("y_pool_stats"), 0);
    bp_pool_destroy(x);
    bp_pool_destroy(y);
    bp_pool_destroy(e);
}

/* Numbers of function variables: the value passed as ctx is each number. */
static size_t some_metrics(void *ctx, bp_metric *out, size_t cap) {
    uint64_t v = *(uint64_t *)ctx;
    const bp_metric m[] = {
        {"fnm_depth", "Queue depth, with a \\ and a\nnewline", 0, v},
        {"fnm_events", "Events seen", 1, v * 10},
        {"Bad-Name", "refused: not a metric name", 0, 1},
        {"outstanding_buffers", "refused: a pool family", 0, 1},
        {"gets", "refused: a pool family once _total is added", 1, 1},
        {"", "refused: empty", 0, 1},
        {"fnm_held{peer=\"3\"}", "Held, labelled", 0, v + 100},
        {"fnm_held{peer=\"4\"}", "Held, labelled", 0, v + 200},
        {"fnm_bad{peer=3}", "refused: an unquoted label value", 0, 1},
        {"fnm_bad{peer=\"3\"}x", "refused: past the label", 0, 1},
        {"fnm_bad{Peer=\"3\"}", "refused: a label name in capitals", 0, 1},
    };
    if (cap < BP_METRICS_MAX) /* no assert here: the registry's lock is held */
        return 0;
    memcpy(out, m, sizeof m);
    return sizeof m / sizeof m[0];
}
static size_t clashing_metrics(void *ctx, bp_metric *out, size_t cap) {
    (void)ctx, (void)cap;
    out[0] = (bp_metric){"fnm_events_total", "a gauge where the family is a counter", 0, 99};
    out[1] = (bp_metric){"fnm_depth", "the same family again: a second series", 0, 5};
    return 2;
}
static char *forty_two(void *ctx) {
    (void)ctx;
    char *s = malloc(8);
    strcpy(s, "42");
    return s;
}

static void function_variables_give_prometheus_numbers(void **state) {
    (void)state;
    uint64_t a = 3, b = 4;
    assert_int_equal(bp_expvar_publish_metrics("fnm_b", forty_two, some_metrics, &b), 0);
    assert_int_equal(bp_expvar_publish_metrics("fnm_a", nothing, some_metrics, &a), 0);
    assert_int_equal(bp_expvar_publish_metrics("fnm_c", nothing, clashing_metrics, NULL), 0);
    assert_int_equal(bp_expvar_publish_metrics("fnm_a", nothing, some_metrics, &a), EEXIST);
    assert_int_equal(bp_expvar_publish_metrics("fnm_x", nothing, NULL, &a), EINVAL);
    assert_int_equal(bp_expvar_publish_metrics("fnm_x", NULL, some_metrics, &a), EINVAL);
    assert_int_equal(bp_expvar_publish_metrics(NULL, nothing, some_metrics, &a), EINVAL);
    bp_pool *pool = bp_pool_new(NULL);
    assert_int_equal(bp_expvar_publish(pool, "fnm_pool"), 0);
    char *all = bp_prometheus_all();
    assert_non_null(all);
    assert_int_equal(run_on(all, "promtool check metrics < %s >/dev/null 2>&1"), 0);
    const char *fam = strstr(all, "# HELP bytepool_fnm_depth Queue depth, with a \\\\ and "
                                  "a\\nnewline\n# TYPE bytepool_fnm_depth gauge\n"
                                  "bytepool_fnm_depth{var=\"fnm_a\"} 3\n"
                                  "bytepool_fnm_depth{var=\"fnm_b\"} 4\n"
                                  "bytepool_fnm_depth{var=\"fnm_c\"} 5\n");
    assert_non_null(fam);               /* one family, its series in the registry's order */
    assert_null(strstr(all, "} 99\n")); /* fnm_c's gauge in a counter family: left out */
    assert_non_null(strstr(all, "# TYPE bytepool_fnm_events_total counter\n"
                                "bytepool_fnm_events_total{var=\"fnm_a\"} 30\n"
                                "bytepool_fnm_events_total{var=\"fnm_b\"} 40\n"));
    assert_non_null(strstr(all, "# TYPE bytepool_fnm_held gauge\n"
                                "bytepool_fnm_held{var=\"fnm_a\",peer=\"3\"} 103\n"
                                "bytepool_fnm_held{var=\"fnm_a\",peer=\"4\"} 203\n"));
    assert_null(strstr(all, "fnm_bad"));
    assert_null(strstr(all, "Bad-Name"));
    assert_null(strstr(all, "refused: "));
    assert_null(strstr(all, "outstanding_buffers{var="));
    assert_null(strstr(all, "gets_total{var="));
    const char *first = strstr(all, "# TYPE bytepool_outstanding_buffers"); /* the pool's, once */
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE bytepool_outstanding_buffers"));
    free(all);
    char *v = bp_expvar_json(); /* still a function variable of /debug/vars */
    assert_int_equal(jq_check(v, ".fnm_b == 42 and .fnm_a == null"), 0);
    free(v);
    assert_int_equal(bp_expvar_unpublish_func("fnm_a"), 0);
    assert_int_equal(bp_expvar_unpublish_func("fnm_b"), 0);
    assert_int_equal(bp_expvar_unpublish_func("fnm_c"), 0);
    all = bp_prometheus_all();
    assert_null(strstr(all, "{var="));
    assert_non_null(strstr(all, "pool=\"fnm_pool\""));
    free(all);
    bp_pool_destroy(pool);
}

static void advisor_ignores_zero_lengths(void **state) {
    (void)state;
    bp_recorder r = {NULL, zeros_push, zeros_read};
    bp_config cfg = {0};
    cfg.recorder = &r;
    bp_pool *pool = bp_pool_new(&cfg);
    bp_advice adv;
    assert_int_equal(bp_pool_advice(pool, 0, &adv), 0);
    assert_int_equal(adv.samples, 5);
    assert_int_equal(adv.ntiers, 1);
    assert_int_equal(adv.tiers[0], 4032); /* 4000, aligned */
    free(bp_pool_detail_json(pool));
    bp_pool_destroy(pool);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--print-vars")) { /* for the command-line test */
        char *vars = bp_expvar_json();
        fputs(vars, stdout);
        free(vars);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(debug_vars_is_valid_json_for_any_command_line),
        cmocka_unit_test(export_names_are_whole_and_valid),
        cmocka_unit_test(advisor_ignores_zero_lengths),
        cmocka_unit_test(function_variables),
        cmocka_unit_test(variable_names_never_repeat),
        cmocka_unit_test(function_variables_give_prometheus_numbers),
        cmocka_unit_test(publish_refuses_duplicates_and_destroy_unpublishes),
        cmocka_unit_test(debug_vars_carry_the_seed_shape_and_details),
        cmocka_unit_test(prometheus_output_passes_promtool),
        cmocka_unit_test(advisor_finds_the_least_waste),
        cmocka_unit_test(advisor_proposes_aligned_tiers),
        cmocka_unit_test(advisor_handles_many_distinct_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
