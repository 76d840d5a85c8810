/* Rollout analysis on synthetic exchanges written straight into a temporary
 * SQLite store: the output contract checker; each trigger breaches on its
 * own fault (candidate errors, slower p95, pricier requests against the
 * price forecast and against an eval baseline, broken contract, negative
 * feedback) and stays ok on noise within the thresholds; a tiny sample is
 * inconclusive and says how much more it needs. Deterministic: every
 * random figure comes from a seeded generator. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cutover/rollout.h"
#include "cutover/util.h"

#define T0 1741064767000LL

static const char *const CFG =
    "providers: {oa: {kind: openai}}\n"
    "models:\n"
    "  inc: {provider: oa, price_input: 2, price_output: 8}\n"
    "  cand: {provider: oa, price_input: 2, price_output: 8}\n"
    "  free: {provider: oa}\n"
    "  free2: {provider: oa}\n"
    "workloads:\n"
    "  w: {incumbent: inc, candidate: cand, contract: {format: json}}\n"
    "  plain: {incumbent: free, candidate: free2}\n"
    "rollout:\n"
    "  triggers: {min_samples: 100, min_feedback: 40}\n";

typedef struct fx {
    co_config *cfg;
    co_store *st;
    co_rng rng;
    int seq;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    co_diags d = {0};
    assert_int_equal(co_config_load_string(&f->cfg, CFG, "t.yaml", &d), 0);
    assert_int_equal(co_store_open(&f->st, "sqlite::memory:"), 0);
    co_rng_seed(&f->rng, 7);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    co_store_close(f->st);
    co_config_free(f->cfg);
    free(f);
    return 0;
}

typedef struct arm_spec {
    const char *arm, *role, *model;
    double err;        /* error probability */
    double lat;        /* median-ish latency ms (uniform ±30%) */
    double tok_out;    /* output tokens (±20%) */
    double bad_output; /* probability the output is not JSON */
} arm_spec;

/* Writes n exchanges of one arm; request ids are "r<seq>" so feedback can name them. */
static void add(fx *f, const char *workload, const arm_spec *a, int n, int64_t ts)
{
    co_exchange *xs = calloc((size_t)n, sizeof *xs);
    char (*texts)[64] = calloc((size_t)n, 64);
    for (int i = 0; i < n; i++) {
        co_exchange *x = &xs[i];
        snprintf(x->request_id, sizeof x->request_id, "r%d", f->seq++);
        x->ts_ms = ts + i;
        x->workload = workload;
        x->arm = a->arm;
        x->role = a->role;
        x->model = a->model;
        x->api = "openai";
        int failed = co_rng_unit(&f->rng) < a->err;
        x->status = failed ? 500 : 200;
        x->error_class = failed ? "5xx" : NULL;
        x->latency_ms = a->lat * (0.7 + 0.6 * co_rng_unit(&f->rng));
        x->ttft_ms = -1;
        x->tokens_in = 100;
        x->tokens_out = failed ? 0 : (int64_t)(a->tok_out * (0.8 + 0.4 * co_rng_unit(&f->rng)));
        /* the gateway prices with the model's configured prices */
        x->cost_usd = failed ? 0 : (100 * 2.0 + (double)x->tokens_out * 8.0) / 1e6;
        if (co_rng_unit(&f->rng) < a->bad_output)
            snprintf(texts[i], 64, "```json\n{\"a\": %d}\n```", i);
        else
            snprintf(texts[i], 64, "{\"a\": %d}", i);
        x->output_text = failed ? NULL : texts[i];
    }
    assert_int_equal(co_store_record(f->st, xs, (size_t)n), 0);
    free(xs);
    free(texts);
}

static const arm_spec INC = {"incumbent", "served", "inc", 0.01, 400, 200, 0.01};
static const arm_spec CAND = {"candidate", "served", "cand", 0.01, 400, 200, 0.01};

static void analyze(fx *f, co_rollout_analysis *a, int served)
{
    const co_workload_conf *w = co_config_workload(f->cfg, "w");
    assert_int_equal(co_rollout_analyze(a, f->st, f->cfg, w, T0, 0, served), 0);
}

/* ---- contract ------------------------------------------------------------------- */

static void check(const co_contract *c, const char *out, int want)
{
    int pass = -1;
    co_buf why;
    co_buf_init(&why, 4096);
    assert_int_equal(co_contract_check(c, out, 100, 0.001, &pass, &why), 0);
    if (pass != want)
        fprintf(stderr, "output %s: pass %d (%s)\n", out, pass, why.p ? why.p : "");
    assert_int_equal(pass, want);
    if (!pass)
        assert_true(why.len > 0);
    co_buf_free(&why);
}

static void test_contract(void **state)
{
    (void)state;
    co_config *cfg = NULL;
    co_diags d = {0};
    const char *y = "providers: {oa: {kind: openai}}\n"
                    "models: {a: {provider: oa}}\n"
                    "workloads:\n"
                    "  none: {incumbent: a}\n"
                    "  j: {incumbent: a, contract: {format: json, json_schema: {type: object, required: [id]}}}\n"
                    "  t: {incumbent: a, contract: {format: text, max_chars: 10}}\n"
                    "  r: {incumbent: a, contract: {regex: '^[A-Z]+-[0-9]+$'}}\n"
                    "  s: {incumbent: a, contract: {assert: [{type: icontains, value: paris}, {type: latency, threshold: 50}]}}\n";
    assert_int_equal(co_config_load_string(&cfg, y, "c.yaml", &d), 0);
    co_contract *c = NULL;
    assert_int_equal(co_contract_new(&c, &co_config_workload(cfg, "none")->contract, "none"), 0);
    assert_null(c); /* nothing to check */

    assert_int_equal(co_contract_new(&c, &co_config_workload(cfg, "j")->contract, "j"), 0);
    check(c, " {\"id\": 1} ", 1);
    check(c, "{\"name\": 1}", 0);        /* schema */
    check(c, "```json\n{\"id\":1}\n```", 0); /* fence: drift */
    check(c, "[1,2]", 0);
    co_contract_free(c);

    assert_int_equal(co_contract_new(&c, &co_config_workload(cfg, "t")->contract, "t"), 0);
    check(c, "héllo wörld", 0);  /* 11 code points */
    check(c, "héllo wörl", 1);   /* 10 code points, 12 bytes */
    check(c, "{\"a\":1}", 0);     /* JSON object where text is expected */
    co_contract_free(c);

    assert_int_equal(co_contract_new(&c, &co_config_workload(cfg, "r")->contract, "r"), 0);
    check(c, "INV-42", 1);
    check(c, "inv-42", 0);
    co_contract_free(c);

    assert_int_equal(co_contract_new(&c, &co_config_workload(cfg, "s")->contract, "s"), 0);
    check(c, "It is Paris.", 0); /* latency 100 > 50 */
    int pass;
    assert_int_equal(co_contract_check(c, "It is Paris.", 20, 0, &pass, NULL), 0);
    assert_int_equal(pass, 1);
    assert_int_equal(co_contract_check(c, "Lyon", 20, 0, &pass, NULL), 0);
    assert_int_equal(pass, 0);
    co_contract_free(c);
    co_config_free(cfg);
}

/* ---- triggers ------------------------------------------------------------------- */

static void test_noise_is_ok(void **state)
{
    fx *f = *state;
    add(f, "w", &INC, 3000, T0);
    add(f, "w", &CAND, 3000, T0);
    co_rollout_analysis a;
    analyze(f, &a, 1);
    for (int i = 0; i < CO_TRIG__N; i++)
        if (a.t[i].applies && a.t[i].verdict != CO_TRIGGER_OK)
            fprintf(stderr, "%s: %s %g [%g, %g] %s\n", co_rollout_trigger_names[i],
                    co_trigger_verdict_name(a.t[i].verdict), a.t[i].value, a.t[i].lo, a.t[i].hi, a.t[i].note);
    assert_int_equal(a.t[CO_TRIG_ERROR_RATE].verdict, CO_TRIGGER_OK);
    assert_int_equal(a.t[CO_TRIG_LATENCY_P95].verdict, CO_TRIGGER_OK);
    assert_int_equal(a.t[CO_TRIG_COST].verdict, CO_TRIGGER_OK);
    assert_int_equal(a.t[CO_TRIG_QUALITY].verdict, CO_TRIGGER_OK);
    assert_false(a.t[CO_TRIG_FEEDBACK].applies); /* nobody rated anything */
    assert_int_equal(a.verdict, CO_TRIGGER_OK);
    assert_int_equal(a.breach, -1);
    assert_string_equal(a.forecast_source, "prices");
    assert_int_equal(a.inc.requests, 3000);
    assert_int_equal(a.cand.requests, 3000);
    /* the window bound: nothing before since_ms counts */
    const co_workload_conf *w = co_config_workload(f->cfg, "w");
    assert_int_equal(co_rollout_analyze(&a, f->st, f->cfg, w, T0 + 100000, 0, 1), 0);
    assert_int_equal(a.inc.requests, 0);
    assert_int_equal(a.verdict, CO_TRIGGER_INCONCLUSIVE);
}

static void test_error_rate_breach(void **state)
{
    fx *f = *state;
    arm_spec bad = CAND;
    bad.err = 0.15;
    add(f, "w", &INC, 1000, T0);
    add(f, "w", &bad, 300, T0);
    co_rollout_analysis a;
    analyze(f, &a, 1);
    assert_int_equal(a.t[CO_TRIG_ERROR_RATE].verdict, CO_TRIGGER_BREACH);
    assert_int_equal(a.breach, CO_TRIG_ERROR_RATE);
    assert_true(a.t[CO_TRIG_ERROR_RATE].value > 5);
    assert_true(a.t[CO_TRIG_ERROR_RATE].confidence > 0.95);
    char why[300];
    co_rollout_breach_reason(&a, a.breach, why, sizeof why);
    assert_non_null(strstr(why, "error_rate"));
    /* the snapshot names the breach and keeps both arms */
    co_buf b;
    co_buf_init(&b, 1u << 20);
    assert_int_equal(co_rollout_analysis_json(&b, &a), 0);
    json_t *j = json_loads(b.p, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "breach")), "error_rate");
    json_t *t = json_object_get(json_object_get(j, "triggers"), "error_rate");
    assert_string_equal(json_string_value(json_object_get(t, "verdict")), "breach");
    assert_int_equal(json_integer_value(json_object_get(t, "n_candidate")), 300);
    json_decref(j);
    co_buf_free(&b);
}

static void test_latency_breach(void **state)
{
    fx *f = *state;
    arm_spec slow = CAND;
    slow.lat = 900;
    add(f, "w", &INC, 1000, T0);
    add(f, "w", &slow, 400, T0);
    co_rollout_analysis a;
    analyze(f, &a, 1);
    assert_int_equal(a.t[CO_TRIG_LATENCY_P95].verdict, CO_TRIGGER_BREACH);
    assert_true(a.t[CO_TRIG_LATENCY_P95].value > 1.5);
    assert_true(a.cand.p95_ms > a.inc.p95_ms * 1.5);
    assert_int_equal(a.t[CO_TRIG_ERROR_RATE].verdict, CO_TRIGGER_OK);
    assert_int_equal(a.verdict, CO_TRIGGER_BREACH);
}

static void test_cost_breach_against_prices_and_baseline(void **state)
{
    fx *f = *state;
    arm_spec wordy = CAND;
    wordy.tok_out = 400; /* twice the output tokens at the same prices */
    add(f, "w", &INC, 1000, T0);
    add(f, "w", &wordy, 400, T0);
    co_rollout_analysis a;
    analyze(f, &a, 1);
    assert_string_equal(a.forecast_source, "prices");
    assert_int_equal(a.t[CO_TRIG_COST].verdict, CO_TRIGGER_BREACH);
    assert_true(a.t[CO_TRIG_COST].value > 1.5);

    /* an eval baseline that says the incumbent costs 4x this window's per
     * request becomes the forecast: the same candidate is then within it */
    char base[128];
    snprintf(base, sizeof base, "{\"cost_per_request\": %.10f}", a.inc.cost_mean * 4);
    co_eval_run run = {.suite = "golden.yaml", .config_json = "{}", .status = "running"};
    assert_int_equal(co_store_eval_run_begin(f->st, &run), 0);
    assert_int_equal(co_store_baseline_put(f->st, "w", run.id, base), 0);
    analyze(f, &a, 1);
    assert_string_equal(a.forecast_source, "baseline");
    assert_int_equal(a.t[CO_TRIG_COST].verdict, CO_TRIGGER_OK);

    /* no prices configured: the trigger does not apply */
    const co_workload_conf *w = co_config_workload(f->cfg, "plain");
    assert_int_equal(co_rollout_analyze(&a, f->st, f->cfg, w, T0, 0, 1), 0);
    assert_false(a.t[CO_TRIG_COST].applies);
    assert_false(a.t[CO_TRIG_QUALITY].applies); /* no contract */
}

static void test_quality_breach(void **state)
{
    fx *f = *state;
    arm_spec drift = CAND;
    drift.bad_output = 0.3; /* the candidate starts fencing its JSON */
    add(f, "w", &INC, 800, T0);
    add(f, "w", &drift, 400, T0);
    co_rollout_analysis a;
    analyze(f, &a, 1);
    assert_int_equal(a.t[CO_TRIG_QUALITY].verdict, CO_TRIGGER_BREACH);
    assert_true(a.cand.contract_fail > 60);
    assert_non_null(strstr(a.contract_example, "not JSON"));
    assert_int_equal(a.t[CO_TRIG_ERROR_RATE].verdict, CO_TRIGGER_OK);
}

/* Feedback on a window's requests: neg of n ratings, request ids first..first+n-1. */
static void rate(fx *f, int first, int n, int neg)
{
    for (int i = 0; i < n; i++) {
        char id[40];
        snprintf(id, sizeof id, "r%d", first + i);
        co_feedback fb = {.request_id = id, .score = i < neg ? -1 : 1, .ts_ms = T0 + 5000};
        assert_int_equal(co_store_feedback_add(f->st, &fb), 0);
    }
}

static void test_feedback_breach(void **state)
{
    fx *f = *state;
    add(f, "w", &INC, 1000, T0);  /* r0..r999 */
    add(f, "w", &CAND, 400, T0);  /* r1000..r1399 */
    rate(f, 0, 200, 20);          /* incumbent: 10% negative */
    rate(f, 1000, 150, 15);       /* candidate: 10% negative */
    co_rollout_analysis a;
    analyze(f, &a, 1);
    assert_true(a.t[CO_TRIG_FEEDBACK].applies);
    assert_int_equal(a.t[CO_TRIG_FEEDBACK].verdict, CO_TRIGGER_INCONCLUSIVE); /* 1.0x vs 1.2x: not settled yet */
    assert_true(a.t[CO_TRIG_FEEDBACK].need_cand > 0);
    rate(f, 1000, 150, 75);       /* candidate: 50% negative now */
    analyze(f, &a, 1);
    assert_int_equal(a.t[CO_TRIG_FEEDBACK].verdict, CO_TRIGGER_BREACH);
    assert_int_equal(a.cand.feedback, 150);
    assert_int_equal(a.cand.feedback_negative, 75);
    /* in a shadow stage nobody sees the candidate: not applicable */
    analyze(f, &a, 0);
    assert_false(a.t[CO_TRIG_FEEDBACK].applies);
}

static void test_tiny_sample_is_inconclusive(void **state)
{
    fx *f = *state;
    arm_spec bad = CAND;
    bad.err = 0.5;
    add(f, "w", &INC, 30, T0);
    add(f, "w", &bad, 12, T0);
    co_rollout_analysis a;
    analyze(f, &a, 1);
    assert_int_equal(a.verdict, CO_TRIGGER_INCONCLUSIVE);
    assert_int_equal(a.breach, -1);
    for (int i = 0; i < CO_TRIG__N; i++)
        assert_int_not_equal(a.t[i].verdict, CO_TRIGGER_BREACH);
    assert_int_equal(a.t[CO_TRIG_ERROR_RATE].need_cand, 100 - 12);
    assert_int_equal(a.t[CO_TRIG_ERROR_RATE].need_inc, 100 - 30);
    assert_non_null(strstr(a.t[CO_TRIG_ERROR_RATE].note, "needs 100 per arm"));
}

static void test_shadow_stage_reads_shadow_rows(void **state)
{
    fx *f = *state;
    arm_spec shadow = CAND;
    shadow.role = "shadow";
    shadow.err = 0.2;
    add(f, "w", &INC, 500, T0);
    add(f, "w", &shadow, 500, T0);
    co_rollout_analysis a;
    analyze(f, &a, 1); /* canary view: no served candidate rows at all */
    assert_int_equal(a.cand.requests, 0);
    analyze(f, &a, 0);
    assert_int_equal(a.cand.requests, 500);
    assert_int_equal(a.t[CO_TRIG_ERROR_RATE].verdict, CO_TRIGGER_BREACH);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contract),
        T(test_noise_is_ok),
        T(test_error_rate_breach),
        T(test_latency_breach),
        T(test_cost_breach_against_prices_and_baseline),
        T(test_quality_breach),
        T(test_feedback_breach),
        T(test_tiny_sample_is_inconclusive),
        T(test_shadow_stage_reads_shadow_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
