/* Eval comparison (src/eval/compare.c, drift.c): runs are built directly in
 * an in-memory SQLite store with a config_json as the runner writes it
 * (docs/eval.md), then analysed: a regressed workload fails, an equal one
 * passes, a tiny sample is inconclusive with extra cases, critical cases
 * are gated on their own, a candidate-only run is compared with saved
 * baselines, two runs are compared, cost and latency gates, format drift,
 * exit-code folding, and the statistics the comparison relies on against
 * published values. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/compare.h"
#include "cutover/error.h"
#include "cutover/stats.h"
#include "cutover/store.h"
#include "eval/compare_int.h"

/* ------------------------------------------------------------ builders */

static co_store *store_new(void)
{
    co_store *st = NULL;
    assert_int_equal(co_store_open(&st, "sqlite::memory:"), 0);
    return st;
}

/* A config_json per the runner contract; `workloads` is the JSON of the
 * "workloads" object, `cases` of the "cases" object. */
static int64_t run_begin(co_store *st, const char *arms, const char *workloads, const char *cases)
{
    char *cfg = NULL;
    assert_true(asprintf(&cfg,
                         "{\"version\":1,\"suite\":\"evals/golden.yaml\",\"suite_format\":\"native\","
                         "\"arms\":%s,\"repeat\":1,\"concurrency\":4,\"cache\":true,"
                         "\"started_ms\":1763900000000,\"workloads\":%s,\"cases\":%s}",
                         arms, workloads, cases ? cases : "{}") > 0);
    co_eval_run run = {.started_ms = 1763900000000, .suite = "evals/golden.yaml", .config_json = cfg};
    assert_int_equal(co_store_eval_run_begin(st, &run), 0);
    free(cfg);
    return run.id;
}

/* One workload's config with its gate. */
static char *wl_json(const char *name, double drop, double crit, double cost, double lat, const char *volume)
{
    char *s = NULL;
    assert_true(asprintf(&s,
                         "\"%s\":{\"incumbent\":{\"model\":\"gpt-4o\",\"price_input\":2.5,\"price_output\":10},"
                         "\"candidate\":{\"model\":\"claude-sonnet-4\",\"price_input\":3,\"price_output\":15},"
                         "\"gate\":{\"pass_rate_drop_max\":%g,\"critical_pass_rate_drop_max\":%g,"
                         "\"cost_increase_max\":%g,\"latency_p95_ratio_max\":%g},\"monthly_requests\":%s}",
                         name, drop, crit, cost, lat, volume) > 0);
    return s;
}

static void add(co_store *st, int64_t run, const char *wl, const char *id, const char *arm, int rep,
                int passed, double lat, double cost, const char *out, const char *err)
{
    char detail[256];
    snprintf(detail, sizeof detail,
             "{\"asserts\":[{\"type\":\"icontains\",\"pass\":%s,\"score\":%d,\"weight\":1,"
             "\"reason\":\"%s\",\"error\":false}],\"finish_reason\":\"stop\",\"tool_calls\":null,"
             "\"cached\":false,\"attempts\":1,\"status\":200,\"ttft_ms\":null}",
             passed ? "true" : "false", passed, passed ? "found 'ok'" : "expected 'ok' in the output");
    co_eval_result r = {
        .case_id = id, .workload = wl, .arm = arm, .repeat = rep, .passed = passed, .score = passed,
        .latency_ms = lat, .cost_usd = cost, .tokens_in = 100, .tokens_out = 20,
        .output_text = out, .detail_json = detail, .error = err,
    };
    assert_int_equal(co_store_eval_results_add(st, run, &r, 1), 0);
}

/* n cases on both arms of a workload: `regress` pass on the incumbent only,
 * `improve` on the candidate only, `neither` fail on both, the rest pass on
 * both. Case ids are PREFIX-000.. */
static void add_pairs(co_store *st, int64_t run, const char *wl, const char *prefix, int n, int regress,
                      int improve, int neither, int rep)
{
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s-%03d", prefix, i);
        int inc = 1, cand = 1;
        if (i < regress)
            cand = 0;
        else if (i < regress + improve)
            inc = 0;
        else if (i < regress + improve + neither)
            inc = cand = 0;
        add(st, run, wl, id, "incumbent", rep, inc, 400 + i % 7 * 10, 0.001, "The answer is ok.", NULL);
        add(st, run, wl, id, "candidate", rep, cand, 420 + i % 7 * 10, 0.0012, "The answer is ok.", NULL);
    }
}

static co_eval_analysis *analyze(co_store *st, int64_t a, int64_t b)
{
    co_eval_analysis *an = NULL;
    int rc = co_eval_analyze(&an, st, a, b, NULL);
    if (rc)
        fail_msg("co_eval_analyze: %s", co_error_last());
    assert_non_null(an);
    return an;
}

static const co__workload *wl_of(const co_eval_analysis *a, const char *name)
{
    for (size_t i = 0; i < a->n_w; i++)
        if (strcmp(a->w[i].name, name) == 0)
            return &a->w[i];
    fail_msg("no workload %s", name);
    return NULL;
}

/* ------------------------------------------------------------ statistics */

/* The values the brief names, from published tables / exact arithmetic. */
static void test_reference_statistics(void **state)
{
    (void)state;
    co_interval ci;
    /* Wilson 8/10 at 95%: [0.4902, 0.9433] (Newcombe 1998 method 3; R
     * binom::binom.wilson) */
    assert_int_equal(co_wilson(&ci, 8, 10, 0.95), 0);
    assert_true(fabs(ci.lo - 0.4902) < 5e-5);
    assert_true(fabs(ci.hi - 0.9433) < 5e-5);
    /* exact McNemar b=1, c=6: 2·(1 + 7)/128 = 0.125 exactly */
    double p = 0, mid = 0;
    assert_int_equal(co_mcnemar_exact(&p, &mid, 1, 6), 0);
    assert_true(fabs(p - 0.125) < 1e-15);
    assert_true(fabs(mid - (2 * (8.0 / 128) - 7.0 / 128)) < 1e-15); /* 2·(P(X<=1) − P(X=1)/2) */
    /* two-sample KS: x = 1..5 vs y = 3..7 → D = 2/5; the p-value from the
     * Kolmogorov series at λ = (en + 0.12 + 0.11/en)·D, en = sqrt(2.5) */
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {3, 4, 5, 6, 7};
    co_ks_result ks;
    assert_int_equal(co_ks_2samp(&ks, x, 5, y, 5, NULL), 0);
    assert_true(fabs(ks.d - 0.4) < 1e-15);
    double en = sqrt(2.5), lam = (en + 0.12 + 0.11 / en) * 0.4, q = 0;
    for (int j = 1; j <= 100; j++)
        q += 2 * ((j & 1) ? 1 : -1) * exp(-2.0 * j * j * lam * lam);
    assert_true(fabs(ks.p - q) < 1e-10);
    assert_true(fabs(ks.p - 0.6974048780) < 1e-9); /* Q_KS(0.70828), not significant */
}

/* ------------------------------------------------------------ gates */

static void test_regressed_fails_equal_passes(void **state)
{
    (void)state;
    co_store *st = store_new();
    char *w1 = wl_json("support", 2, 0, 0, 0, "120000");
    char *w2 = wl_json("billing", 2, 0, 0, 0, "null");
    char *ws = NULL;
    assert_true(asprintf(&ws, "{%s,%s}", w1, w2) > 0);
    int64_t run = run_begin(st, "[\"incumbent\",\"candidate\"]", ws, NULL);
    /* support: 60 cases, 15 regress: the candidate is clearly worse */
    add_pairs(st, run, "support", "sup", 60, 15, 0, 5, 0);
    /* billing: 400 cases, identical on both arms (320 pass, 80 fail) */
    add_pairs(st, run, "billing", "bil", 400, 0, 0, 80, 0);
    assert_int_equal(co_store_eval_run_finish(st, run, "done", "{\"calls\":920}"), 0);

    co_eval_analysis *a = analyze(st, run, 0);
    assert_int_equal(a->mode, CO__MODE_ARMS);
    assert_int_equal(a->n_w, 2);
    assert_string_equal(a->w[0].name, "billing"); /* sorted */
    const co__workload *sup = wl_of(a, "support"), *bil = wl_of(a, "billing");
    assert_int_equal(sup->all.pairs, 60);
    assert_int_equal(sup->all.t.inc_only, 15);
    assert_int_equal(sup->all.t.neither, 5);
    assert_int_equal(sup->all.verdict, CO_GATE_FAIL);
    assert_true(sup->all.gate_ci.hi < -0.02);
    assert_true(sup->all.paired.p_exact < 0.001);
    assert_int_equal(sup->verdict, CO_GATE_FAIL);
    assert_int_equal(sup->n_regressions, 15);
    assert_int_equal(sup->listed_regressions, 15);
    assert_int_equal(sup->n_improvements, 0);
    /* a listed regression points at the incumbent's pass and the candidate's fail */
    const co__result *ri = &a->results[sup->regressions[0].inc], *rc = &a->results[sup->regressions[0].cand];
    assert_string_equal(ri->case_id, rc->case_id);
    assert_true(ri->passed && !rc->passed && ri->arm == CO__INC && rc->arm == CO__CAND);
    assert_int_equal(rc->n_reasons, 1);
    assert_non_null(strstr(rc->reasons[0], "expected 'ok'"));
    /* Wilson per arm */
    assert_int_equal(sup->all.rate[CO__INC].passed, 55);
    assert_int_equal(sup->all.rate[CO__CAND].passed, 40);
    assert_true(sup->all.rate[CO__CAND].wilson.lo < 40.0 / 60 && sup->all.rate[CO__CAND].wilson.hi > 40.0 / 60);

    assert_int_equal(bil->all.t.inc_only + bil->all.t.cand_only, 0);
    assert_int_equal(bil->all.verdict, CO_GATE_PASS);
    assert_true(bil->all.gate_ci.lo > -0.02);
    assert_int_equal(bil->verdict, CO_GATE_PASS);
    assert_int_equal(a->verdict, CO_GATE_FAIL);
    assert_int_equal(co_eval_analysis_exit_code(a), 1);

    /* cost and volume: 120000 requests a month on support, none recorded on billing */
    assert_true(sup->has_volume && sup->monthly_requests == 120000);
    assert_true(fabs(sup->arm[CO__INC].monthly_cost - 120.0) < 1e-9);
    assert_true(fabs(sup->arm[CO__CAND].monthly_cost - 144.0) < 1e-9);
    assert_true(fabs(sup->cost_ratio - 1.2) < 1e-9);
    assert_false(bil->has_volume);
    assert_false(bil->arm[CO__INC].has_monthly);
    assert_string_equal(sup->arm[CO__INC].model, "gpt-4o");
    assert_string_equal(sup->arm[CO__CAND].model, "claude-sonnet-4");
    /* latency quantiles (linear) over 400..460 step 10 */
    assert_true(sup->arm[CO__INC].lat[0] >= 400 && sup->arm[CO__INC].lat[2] <= 460);
    assert_true(sup->lat_ratio[1] > 1.0);

    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    assert_int_equal(co_eval_analysis_summary(&b, a), 0);
    assert_non_null(strstr(b.p, "support: FAIL"));
    assert_non_null(strstr(b.p, "billing: PASS"));
    assert_non_null(strstr(b.p, "overall: FAIL (exit 1)"));
    co_buf_free(&b);

    co_eval_analysis_free(a);
    free(w1), free(w2), free(ws);
    co_store_close(st);
}

static void test_tiny_sample_inconclusive(void **state)
{
    (void)state;
    co_store *st = store_new();
    char *w = wl_json("support", 2, 0, 0, 0, "null"), *ws = NULL;
    assert_true(asprintf(&ws, "{%s}", w) > 0);
    int64_t run = run_begin(st, "[\"incumbent\",\"candidate\"]", ws, NULL);
    add_pairs(st, run, "support", "s", 5, 0, 0, 0, 0); /* 5 cases, identical */
    co_eval_analysis *a = analyze(st, run, 0);
    const co__workload *s = wl_of(a, "support");
    assert_int_equal(s->all.verdict, CO_GATE_INCONCLUSIVE);
    assert_true(s->all.extra_cases > 0 && s->all.extra_cases != CO_STATS_NEVER);
    assert_int_equal(a->verdict, CO_GATE_INCONCLUSIVE);
    assert_int_equal(a->extra_cases, s->all.extra_cases);
    assert_int_equal(co_eval_analysis_exit_code(a), 3);
    a->inconclusive_as = 1;
    assert_int_equal(co_eval_analysis_exit_code(a), 1);
    a->inconclusive_as = 2;
    assert_int_equal(co_eval_analysis_exit_code(a), 0);
    co_eval_analysis_free(a);

    /* folded by the options */
    co_compare_opts o = {.inconclusive_as = 1};
    assert_int_equal(co_eval_analyze(&a, st, run, 0, &o), 0);
    assert_int_equal(co_eval_analysis_exit_code(a), 1);
    co_eval_analysis_free(a);

    free(w), free(ws);
    co_store_close(st);
}

/* The suggested extra cases, added with the same (identical) outcomes, make
 * the verdict conclusive: a check that the estimate is in the right range. */
static void test_extra_cases_settle(void **state)
{
    (void)state;
    co_store *st = store_new();
    char *w = wl_json("support", 5, 0, 0, 0, "null"), *ws = NULL;
    assert_true(asprintf(&ws, "{%s}", w) > 0);
    int64_t run = run_begin(st, "[\"incumbent\",\"candidate\"]", ws, NULL);
    add_pairs(st, run, "support", "s", 20, 0, 0, 4, 0);
    co_eval_analysis *a = analyze(st, run, 0);
    uint64_t extra = a->extra_cases;
    assert_int_equal(a->verdict, CO_GATE_INCONCLUSIVE);
    assert_true(extra > 0 && extra < 1000);
    co_eval_analysis_free(a);

    int64_t run2 = run_begin(st, "[\"incumbent\",\"candidate\"]", ws, NULL);
    add_pairs(st, run2, "support", "s", (int)(20 + extra), 0, 0, (int)((20 + extra) / 5), 0);
    a = analyze(st, run2, 0);
    assert_int_equal(a->verdict, CO_GATE_PASS);
    co_eval_analysis_free(a);
    free(w), free(ws);
    co_store_close(st);
}

static void test_critical_gate(void **state)
{
    (void)state;
    co_store *st = store_new();
    char *w = wl_json("support", 10, 0, 0, 0, "null"), *ws = NULL;
    assert_true(asprintf(&ws, "{%s}", w) > 0);
    /* sup-000 (regresses) and sup-050 (passes on both) are critical */
    int64_t run = run_begin(st, "[\"incumbent\",\"candidate\"]", ws,
                            "{\"sup-000\":{\"workload\":\"support\",\"critical\":true,\"tags\":[]},"
                            "\"sup-050\":{\"workload\":\"support\",\"critical\":true,\"tags\":[]}}");
    add_pairs(st, run, "support", "sup", 300, 1, 1, 30, 0);
    co_eval_analysis *a = analyze(st, run, 0);
    const co__workload *s = wl_of(a, "support");
    assert_int_equal(s->all.verdict, CO_GATE_PASS); /* one regression, one improvement in 300 */
    assert_true(s->has_critical);
    assert_int_equal(s->critical.pairs, 2);
    assert_int_equal(s->critical.t.inc_only, 1);
    assert_true(s->critical.zero_tolerance);
    assert_int_equal(s->critical.verdict, CO_GATE_FAIL);
    assert_int_equal(s->verdict, CO_GATE_FAIL);
    /* the critical regression is listed first */
    assert_int_equal(s->n_regressions, 1);
    assert_true(a->results[s->regressions[0].cand].critical);
    assert_int_equal(co_eval_analysis_exit_code(a), 1);
    assert_true(a->overall.has_critical);
    assert_int_equal(a->overall.critical.pairs, 2);
    co_eval_analysis_free(a);

    /* a critical gate with room (50 points) on two cases is an interval gate again */
    free(w);
    free(ws);
    w = wl_json("support", 10, 50, 0, 0, "null");
    assert_true(asprintf(&ws, "{%s}", w) > 0);
    run = run_begin(st, "[\"incumbent\",\"candidate\"]", ws,
                    "{\"sup-000\":{\"workload\":\"support\",\"critical\":true,\"tags\":[]},"
                    "\"sup-050\":{\"workload\":\"support\",\"critical\":true,\"tags\":[]}}");
    add_pairs(st, run, "support", "sup", 300, 1, 1, 30, 0);
    a = analyze(st, run, 0);
    s = wl_of(a, "support");
    assert_false(s->critical.zero_tolerance);
    assert_int_equal(s->critical.verdict, CO_GATE_INCONCLUSIVE);
    co_eval_analysis_free(a);
    free(w), free(ws);
    co_store_close(st);
}

/* A baseline run (incumbent only), saved; then a candidate-only run. */
static void test_candidate_vs_baseline(void **state)
{
    (void)state;
    co_store *st = store_new();
    char *w = wl_json("support", 2, 0, 0, 0, "1000"), *ws = NULL;
    assert_true(asprintf(&ws, "{%s}", w) > 0);
    int64_t base = run_begin(st, "[\"incumbent\"]", ws, NULL);
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%02d", i);
        add(st, base, "support", id, "incumbent", 0, i < 36, 300 + i, 0.002, "ok.", NULL);
    }
    co_eval_analysis *a = analyze(st, base, 0);
    assert_int_equal(a->mode, CO__MODE_SINGLE);
    assert_false(a->compared);
    assert_int_equal(co_eval_analysis_exit_code(a), 0);
    assert_int_equal(co_eval_save_baselines(st, a), 0);
    co_eval_analysis_free(a);

    char *bj = NULL;
    int64_t brun = 0;
    assert_int_equal(co_store_baseline_get(st, "support", &bj, &brun), 0);
    assert_int_equal(brun, base);
    json_t *j = json_loads(bj, 0, NULL);
    assert_non_null(j);
    assert_true(fabs(json_number_value(json_object_get(j, "pass_rate")) - 0.9) < 1e-12);
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 40);
    assert_true(fabs(json_number_value(json_object_get(j, "cost_per_request")) - 0.002) < 1e-12);
    assert_true(json_is_number(json_object_get(j, "latency_p50")));
    assert_true(json_is_number(json_object_get(j, "latency_p95")));
    assert_true(json_is_number(json_object_get(j, "latency_p99")));
    assert_string_equal(json_string_value(json_object_get(j, "model")), "gpt-4o");
    assert_int_equal(json_integer_value(json_object_get(j, "run_id")), base);
    json_decref(j);
    free(bj);

    int64_t cand = run_begin(st, "[\"candidate\"]", ws, NULL);
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%02d", i);
        add(st, cand, "support", id, "candidate", 0, i < 20, 500 + i, 0.003, "ok.", NULL);
    }
    a = analyze(st, cand, 0);
    assert_int_equal(a->mode, CO__MODE_BASELINE);
    const co__workload *s = wl_of(a, "support");
    assert_int_equal(s->baseline_run, base);
    assert_int_equal(s->arm[CO__INC].run_id, base);
    assert_int_equal(s->arm[CO__CAND].run_id, cand);
    assert_int_equal(s->all.pairs, 40);
    assert_int_equal(s->all.t.inc_only, 16);
    assert_int_equal(s->verdict, CO_GATE_FAIL);
    assert_string_equal(s->arm[CO__INC].model, "gpt-4o");
    assert_int_equal(a->n_runs, 2);
    co_eval_analysis *c = NULL;
    co_eval_analysis_free(a);

    /* a workload without baseline is named */
    int64_t other = run_begin(st, "[\"candidate\"]", ws, NULL);
    add(st, other, "search", "x", "candidate", 0, 1, 100, 0.001, "ok", NULL);
    assert_int_equal(co_eval_analyze(&c, st, other, 0, NULL), CO_ENOENT);
    assert_null(c);
    assert_non_null(strstr(co_error_last(), "'search'"));
    assert_non_null(strstr(co_error_last(), "baseline"));

    free(w), free(ws);
    co_store_close(st);
}

static void test_two_runs(void **state)
{
    (void)state;
    co_store *st = store_new();
    char *w = wl_json("support", 2, 0, 0, 0, "null"), *ws = NULL;
    assert_true(asprintf(&ws, "{%s}", w) > 0);
    int64_t r1 = run_begin(st, "[\"incumbent\",\"candidate\"]", ws, NULL);
    add_pairs(st, r1, "support", "s", 30, 0, 0, 0, 0);
    int64_t r2 = run_begin(st, "[\"candidate\"]", ws, NULL);
    for (int i = 0; i < 30; i++) {
        char id[16];
        snprintf(id, sizeof id, "s-%03d", i);
        add(st, r2, "support", id, "candidate", 0, i >= 12, 100, 0.001, "no", NULL);
    }
    co_eval_analysis *a = analyze(st, r1, r2);
    assert_int_equal(a->mode, CO__MODE_RUNS);
    const co__workload *s = wl_of(a, "support");
    assert_int_equal(s->all.pairs, 30);
    assert_int_equal(s->all.t.inc_only, 12);
    assert_int_equal(s->arm[CO__INC].run_id, r1);
    assert_int_equal(s->arm[CO__CAND].run_id, r2);
    assert_int_equal(s->verdict, CO_GATE_FAIL);
    assert_int_equal(a->n_runs, 2);
    co_eval_analysis_free(a);

    /* a run compared with itself: both arms of r1 */
    a = analyze(st, r1, r1);
    assert_int_equal(wl_of(a, "support")->all.pairs, 30);
    co_eval_analysis_free(a);

    /* runs that share no case */
    int64_t r3 = run_begin(st, "[\"candidate\"]", ws, NULL);
    add(st, r3, "support", "other", "candidate", 0, 1, 100, 0.001, "ok", NULL);
    co_eval_analysis *c = NULL;
    assert_int_equal(co_eval_analyze(&c, st, r1, r3, NULL), CO_EINVAL);
    assert_null(c);
    /* no such run */
    assert_int_equal(co_eval_analyze(&c, st, 999, 0, NULL), CO_ENOENT);
    assert_int_equal(co_eval_analyze(&c, st, r1, 999, NULL), CO_ENOENT);
    free(w), free(ws);
    co_store_close(st);
}

static void test_cost_latency_gates(void **state)
{
    (void)state;
    co_store *st = store_new();
    char *w1 = wl_json("cheap", 50, 0, 10, 1.5, "null"), *w2 = wl_json("dear", 50, 0, 10, 1.5, "null");
    char *ws = NULL;
    assert_true(asprintf(&ws, "{%s,%s}", w1, w2) > 0);
    int64_t run = run_begin(st, "[\"incumbent\",\"candidate\"]", ws, NULL);
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%03d", i);
        double jit = (i % 10) * 0.0001;
        /* cheap: same cost, same latency; dear: +50% cost, 3x latency */
        add(st, run, "cheap", id, "incumbent", 0, 1, 200 + i % 20, 0.001 + jit, "ok", NULL);
        add(st, run, "cheap", id, "candidate", 0, 1, 200 + i % 21, 0.001 + jit, "ok", NULL);
        add(st, run, "dear", id, "incumbent", 0, 1, 200 + i % 20, 0.001 + jit, "ok", NULL);
        add(st, run, "dear", id, "candidate", 0, 1, 600 + i % 20 * 3, 0.0015 + jit * 1.5, "ok", NULL);
    }
    co_eval_analysis *a = analyze(st, run, 0);
    const co__workload *c = wl_of(a, "cheap"), *d = wl_of(a, "dear");
    assert_true(c->cost.gated && c->latency.gated);
    assert_int_equal(c->cost.verdict, CO_GATE_PASS);
    assert_int_equal(c->latency.verdict, CO_GATE_PASS);
    assert_int_equal(c->verdict, CO_GATE_PASS);
    assert_int_equal(d->cost.verdict, CO_GATE_FAIL);
    assert_true(fabs(d->cost.est - 50.0) < 1e-6);
    assert_int_equal(d->latency.verdict, CO_GATE_FAIL);
    assert_true(d->latency.lo > 1.5);
    assert_int_equal(d->verdict, CO_GATE_FAIL);
    co_eval_analysis_free(a);
    free(w1), free(w2), free(ws);
    co_store_close(st);
}

static void test_errors_counted(void **state)
{
    (void)state;
    co_store *st = store_new();
    char *w = wl_json("support", 2, 0, 0, 0, "null"), *ws = NULL;
    assert_true(asprintf(&ws, "{%s}", w) > 0);
    int64_t run = run_begin(st, "[\"incumbent\",\"candidate\"]", ws, NULL);
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%02d", i);
        add(st, run, "support", id, "incumbent", 0, 1, 100, 0.001, "ok.", NULL);
        if (i < 3)
            add(st, run, "support", id, "candidate", 0, 0, 30000, 0, NULL, "timeout_total");
        else
            add(st, run, "support", id, "candidate", 0, 1, 100, 0.001, "ok.", NULL);
    }
    co_eval_analysis *a = analyze(st, run, 0);
    const co__workload *s = wl_of(a, "support");
    assert_int_equal(s->arm[CO__CAND].errors, 3);
    assert_int_equal(s->arm[CO__CAND].ok, 7);
    assert_int_equal(s->arm[CO__INC].errors, 0);
    assert_true(s->arm[CO__CAND].lat[2] < 1000); /* errored calls' latencies left out */
    assert_int_equal(s->drift.n[CO__CAND], 7);
    assert_int_equal(s->n_regressions, 3);
    const co__result *rc = &a->results[s->regressions[0].cand];
    assert_string_equal(rc->error, "timeout_total");
    co_eval_analysis_free(a);
    free(w), free(ws);
    co_store_close(st);
}

/* ------------------------------------------------------------ drift */

static void test_drift_features(void **state)
{
    (void)state;
    uint64_t n = 0;
    unsigned f = co__drift_features("## Title\n\n- one\n- two\n\nDone.", &n);
    assert_true(f & (1u << CO__DRIFT_HEADERS));
    assert_true(f & (1u << CO__DRIFT_BULLETS));
    assert_false(f & (1u << CO__DRIFT_FENCES));
    assert_false(f & (1u << CO__DRIFT_JSON));
    assert_true(f & (1u << CO__DRIFT_TRAILING_PUNCT));
    assert_int_equal(n, 28);
    f = co__drift_features(" {\"a\": [1, 2]}\n", NULL);
    assert_true(f & (1u << CO__DRIFT_JSON));
    f = co__drift_features("```json\n{\"a\": 1}\n```", NULL);
    assert_true(f & (1u << CO__DRIFT_FENCES));
    assert_false(f & (1u << CO__DRIFT_JSON));
    f = co__drift_features("I\xe2\x80\x99m sorry, but I can\xe2\x80\x99t help with that", NULL);
    assert_true(f & (1u << CO__DRIFT_REFUSALS));
    assert_false(f & (1u << CO__DRIFT_TRAILING_PUNCT));
    f = co__drift_features("1) first\n#hashtag not a header\n\"Quoted.\"", NULL);
    assert_true(f & (1u << CO__DRIFT_BULLETS));
    assert_false(f & (1u << CO__DRIFT_HEADERS));
    assert_true(f & (1u << CO__DRIFT_TRAILING_PUNCT));
    f = co__drift_features("42", NULL); /* a bare number is not counted as JSON output */
    assert_false(f & (1u << CO__DRIFT_JSON));
    assert_int_equal(co__drift_features("", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(co__drift_features("h\xc3\xa9llo", &n), 0);
    assert_int_equal(n, 5); /* characters, not bytes */
}

static void test_drift_flags(void **state)
{
    (void)state;
    co_store *st = store_new();
    char *w1 = wl_json("fenced", 50, 0, 0, 0, "null"), *w2 = wl_json("longer", 50, 0, 0, 0, "null");
    char *w3 = wl_json("same", 50, 0, 0, 0, "null"), *ws = NULL;
    assert_true(asprintf(&ws, "{%s,%s,%s}", w1, w2, w3) > 0);
    int64_t run = run_begin(st, "[\"incumbent\",\"candidate\"]", ws, NULL);
    char longer[512];
    for (int i = 0; i < 40; i++) {
        char id[16], json[64], fenced[96], shortx[64];
        snprintf(id, sizeof id, "d%02d", i);
        snprintf(json, sizeof json, "{\"id\": %d, \"ok\": true}", i);
        snprintf(fenced, sizeof fenced, "```json\n%s\n```", json);
        add(st, run, "fenced", id, "incumbent", 0, 1, 100, 0.001, json, NULL);
        add(st, run, "fenced", id, "candidate", 0, 1, 100, 0.001, fenced, NULL);
        snprintf(shortx, sizeof shortx, "Short answer number %d.", i);
        snprintf(longer, sizeof longer, "%s %s %s %s", shortx,
                 "Here is a much longer explanation that goes on and on,",
                 "adding context nobody asked for, with caveats and restatements,", "and a closing summary.");
        add(st, run, "longer", id, "incumbent", 0, 1, 100, 0.001, shortx, NULL);
        add(st, run, "longer", id, "candidate", 0, 1, 100, 0.001, longer, NULL);
        add(st, run, "same", id, "incumbent", 0, 1, 100, 0.001, shortx, NULL);
        add(st, run, "same", id, "candidate", 0, 1, 100, 0.001, shortx, NULL);
    }
    co_eval_analysis *a = analyze(st, run, 0);
    const co__drift *f = &wl_of(a, "fenced")->drift, *l = &wl_of(a, "longer")->drift,
                    *s = &wl_of(a, "same")->drift;
    assert_true(f->computed);
    assert_true(f->rates[CO__DRIFT_FENCES].flagged);
    assert_int_equal(f->rates[CO__DRIFT_FENCES].k[CO__CAND], 40);
    assert_int_equal(f->rates[CO__DRIFT_FENCES].k[CO__INC], 0);
    assert_true(f->rates[CO__DRIFT_JSON].flagged);
    assert_int_equal(f->rates[CO__DRIFT_JSON].k[CO__INC], 40);
    assert_int_equal(f->rates[CO__DRIFT_JSON].k[CO__CAND], 0);
    assert_true(f->len_flagged); /* the fence adds 12 characters to every output */
    assert_true(f->any_flagged);

    assert_true(l->len_flagged);
    assert_true(l->ks.p < 0.05 && l->ks.d == 1.0);
    assert_true(l->len_mean[CO__CAND] > l->len_mean[CO__INC] + 100);
    assert_false(l->rates[CO__DRIFT_TRAILING_PUNCT].flagged);

    assert_false(s->any_flagged);
    assert_false(s->len_flagged);
    for (int k = 0; k < CO__DRIFT_NRATES; k++)
        assert_false(s->rates[k].flagged);
    co_eval_analysis_free(a);
    free(w1), free(w2), free(w3), free(ws);
    co_store_close(st);
}

/* ------------------------------------------------------------ repeats */

static void test_repeats(void **state)
{
    (void)state;
    co_store *st = store_new();
    char *w = wl_json("support", 2, 0, 0, 0, "null"), *ws = NULL;
    assert_true(asprintf(&ws, "{%s}", w) > 0);
    int64_t run = run_begin(st, "[\"incumbent\",\"candidate\"]", ws, NULL);
    for (int rep = 0; rep < 3; rep++)
        add_pairs(st, run, "support", "s", 10, rep == 0 ? 2 : 0, 0, 0, rep);
    co_eval_analysis *a = analyze(st, run, 0);
    const co__workload *s = wl_of(a, "support");
    assert_int_equal(a->repeat, 3);
    assert_int_equal(s->all.pairs, 30);
    assert_int_equal(s->all.cases, 10);
    assert_int_equal(s->all.t.inc_only, 2);
    assert_true(s->all.has_boot);
    /* the gate interval holds both the Newcombe and the case bootstrap intervals */
    assert_true(s->all.gate_ci.lo <= s->all.paired.diff.lo && s->all.gate_ci.lo <= s->all.boot.lo);
    assert_true(s->all.gate_ci.hi >= s->all.paired.diff.hi && s->all.gate_ci.hi >= s->all.boot.hi);
    co_eval_analysis_free(a);

    /* the same inputs give bit-identical analyses (seeded bootstrap) */
    co_eval_analysis *b = analyze(st, run, 0);
    a = analyze(st, run, 0);
    assert_memory_equal(&wl_of(a, "support")->all.boot, &wl_of(b, "support")->all.boot, sizeof(co_interval));
    co_eval_analysis_free(a);
    co_eval_analysis_free(b);
    free(w), free(ws);
    co_store_close(st);
}

static void test_bad_input(void **state)
{
    (void)state;
    co_store *st = store_new();
    co_eval_analysis *a = NULL;
    co_eval_run run = {.started_ms = 1, .suite = "s", .config_json = "{not json"};
    assert_int_equal(co_store_eval_run_begin(st, &run), 0);
    add(st, run.id, "w", "c", "incumbent", 0, 1, 1, 0, "x", NULL);
    assert_int_equal(co_eval_analyze(&a, st, run.id, 0, NULL), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "config_json"));
    /* a run without results */
    int64_t empty = run_begin(st, "[\"incumbent\"]", "{}", NULL);
    assert_int_equal(co_eval_analyze(&a, st, empty, 0, NULL), CO_EINVAL);
    /* bad options */
    int64_t ok = run_begin(st, "[\"incumbent\"]", "{}", NULL);
    add(st, ok, "w", "c", "incumbent", 0, 1, 1, 0, "x", NULL);
    co_compare_opts o = {.level = 1.5};
    assert_int_equal(co_eval_analyze(&a, st, ok, 0, &o), CO_EINVAL);
    o = (co_compare_opts){.bootstrap = 5};
    assert_int_equal(co_eval_analyze(&a, st, ok, 0, &o), CO_EINVAL);
    assert_null(a);
    /* a config without workloads still analyses, with the default gates */
    a = analyze(st, ok, 0);
    assert_int_equal(a->n_w, 1);
    co_eval_analysis_free(a);
    co_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_statistics),
        cmocka_unit_test(test_regressed_fails_equal_passes),
        cmocka_unit_test(test_tiny_sample_inconclusive),
        cmocka_unit_test(test_extra_cases_settle),
        cmocka_unit_test(test_critical_gate),
        cmocka_unit_test(test_candidate_vs_baseline),
        cmocka_unit_test(test_two_runs),
        cmocka_unit_test(test_cost_latency_gates),
        cmocka_unit_test(test_errors_counted),
        cmocka_unit_test(test_drift_features),
        cmocka_unit_test(test_drift_flags),
        cmocka_unit_test(test_repeats),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
