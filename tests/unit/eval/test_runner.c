/* The eval runner against an in-process `cutover sim` on loopback: results
 * stored per the contract, the response cache (a second run calls nothing:
 * the sim's /_sim/stats does not move), 429 retried after Retry-After, 500
 * stored as an error result, the concurrency bound (from the sim's recorded
 * arrival times), llm-rubric through the judge model, and input errors
 * (unknown workload at the case's file:line). */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "co_test.h"
#include "cutover/config.h"
#include "cutover/eval.h"
#include "cutover/sim.h"
#include "cutover/store.h"
#include "cutover/suite.h"

static const char SCENARIO[] =
    "seed: 7\n"
    "models:\n"
    "  gpt-inc:\n"
    "    provider: openai\n"
    "    canned: {file: cases.yaml, accuracy: 1}\n"
    "  claude-cand:\n"
    "    provider: anthropic\n"
    "    canned: {file: cases.yaml, accuracy: 1, tag_accuracy: {hard: 0}}\n"
    "  gemini-cand:\n"
    "    provider: gemini\n"
    "    canned: {file: cases.yaml, accuracy: 1}\n"
    "  slow:\n"
    "    provider: openai\n"
    "    latency: {ttft: 80ms, per_token: 0ms, jitter: 0}\n"
    "  flaky:\n"
    "    provider: openai\n"
    "    canned: {file: cases.yaml, accuracy: 1}\n"
    "    faults: {error_429: 0.5, retry_after: 30ms}\n"
    "  limited:\n"
    "    provider: openai\n"
    "    faults: {error_429: 1, retry_after: 10ms}\n"
    "  broken:\n"
    "    provider: anthropic\n"
    "    faults: {error_500: 1}\n"
    "  judge:\n"
    "    provider: openai\n"
    "    answer: json\n"
    "    json: {reason: \"polite and on topic\", pass: true, score: 0.9}\n";

static const char CASES[] =
    "- id: s1\n"
    "  workload: support\n"
    "  tags: [billing]\n"
    "  messages: [{role: user, content: \"How many days for a refund?\"}]\n"
    "  ideal: \"Within 30 days.\"\n"
    "  assert: [{type: icontains, value: \"30 days\"}]\n"
    "- id: s2\n"
    "  workload: support\n"
    "  tags: [hard]\n"
    "  critical: true\n"
    "  messages: [{role: user, content: \"Can I pay by wire?\"}]\n"
    "  ideal: \"Yes, wire transfers are accepted.\"\n"
    "  assert: [{type: icontains, value: \"wire\"}]\n"
    "- id: s3\n"
    "  workload: support\n"
    "  messages: [{role: system, content: \"Be brief.\"}, {role: user, content: \"Do you ship abroad?\"}]\n"
    "  ideal: \"We ship to 40 countries.\"\n"
    "  assert: [{type: contains, value: \"40\"}]\n"
    "- id: e1\n"
    "  workload: extract\n"
    "  messages: [{role: user, content: \"Invoice from Globex, total 10 EUR\"}]\n"
    "  ideal: '{\"vendor\": \"Globex\"}'\n"
    "  assert: [{type: is-json}, {type: contains, value: Globex}]\n";

static const char CONFIG[] =
    "store: sqlite:%s/cutover.db\n"
    "providers:\n"
    "  oa: {kind: openai, base_url: \"http://127.0.0.1:%d/v1\", api_key_env: RT_OA_KEY}\n"
    "  an: {kind: anthropic, base_url: \"http://127.0.0.1:%d\", api_key_env: RT_AN_KEY}\n"
    "  gm: {kind: gemini, base_url: \"http://127.0.0.1:%d\", api_key_env: RT_GM_KEY}\n"
    "models:\n"
    "  inc: {provider: oa, upstream: gpt-inc, price_input: 2, price_output: 8}\n"
    "  cand: {provider: an, upstream: claude-cand, price_input: 3, price_output: 15}\n"
    "  gem: {provider: gm, upstream: gemini-cand, price_input: 1, price_output: 4}\n"
    "  slow: {provider: oa}\n"
    "  flaky: {provider: oa}\n"
    "  limited: {provider: oa}\n"
    "  broken: {provider: an}\n"
    "  judge: {provider: oa}\n"
    "workloads:\n"
    "  support: {incumbent: inc, candidate: cand, gate: {pass_rate_drop_max: 5}}\n"
    "  extract: {incumbent: inc, candidate: gem}\n"
    "  slowpoke: {incumbent: slow, candidate: flaky}\n"
    "  faulty: {incumbent: limited, candidate: broken}\n"
    "%s";

typedef struct fx {
    char *dir;
    co_sim *sim;
    pthread_t th;
    int port;
    co_config *cfg;
    co_store *st;
    co_suite *suite;
    char *suite_path;
} fx;

static void *sim_main(void *arg)
{
    co_sim_run(arg);
    return NULL;
}

static void fx_config(fx *f, const char *extra)
{
    char text[8192];
    snprintf(text, sizeof text, CONFIG, f->dir, f->port, f->port, f->port, extra ? extra : "");
    co_diags d = {0};
    co_config_free(f->cfg);
    f->cfg = NULL;
    int rc = co_config_load_string(&f->cfg, text, "cutover.yaml", &d);
    if (rc)
        co_diags_print(&d, stderr);
    co_diags_free(&d);
    assert_int_equal(rc, 0);
}

static void fx_suite(fx *f, const char *yaml)
{
    co_suite_free(f->suite);
    f->suite = NULL;
    free(f->suite_path);
    f->suite_path = co_test_write(f->dir, "suite.yaml", yaml);
    co_diags d = {0};
    co_assert_opts ao = {.judge = co_eval_judge_placeholder};
    int rc = co_suite_load(&f->suite, f->suite_path, &ao, &d);
    if (rc)
        co_diags_print(&d, stderr);
    co_diags_free(&d);
    assert_int_equal(rc, 0);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = co_test_tmpdir();
    free(co_test_write(f->dir, "cases.yaml", CASES));
    char *sc = co_test_write(f->dir, "scenario.yaml", SCENARIO);
    co_sim_opts o = {.listen = "127.0.0.1:0", .scenario_path = sc, .threads = 2, .record = 1};
    co_diags d = {0};
    int rc = co_sim_new(&f->sim, &o, &d);
    if (rc)
        co_diags_print(&d, stderr);
    co_diags_free(&d);
    free(sc);
    assert_int_equal(rc, 0);
    f->port = co_sim_port(f->sim);
    assert_int_equal(pthread_create(&f->th, NULL, sim_main, f->sim), 0);
    setenv("RT_OA_KEY", "sk-test", 1);
    setenv("RT_AN_KEY", "sk-ant-test", 1);
    setenv("RT_GM_KEY", "AIza-test", 1);
    fx_config(f, NULL);
    assert_int_equal(co_store_open(&f->st, f->cfg->store), 0);
    fx_suite(f, CASES);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    co_sim_stop(f->sim);
    pthread_join(f->th, NULL);
    co_sim_free(f->sim);
    co_suite_free(f->suite);
    co_store_close(f->st);
    co_config_free(f->cfg);
    co_test_rmtree(f->dir);
    free(f->suite_path);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

static json_t *sim_get(fx *f, const char *path)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f->port, path);
    co_test_http h;
    co_test_http_do(&h, "GET", url, NULL, NULL, 5000);
    assert_int_equal(h.status, 200);
    json_t *j = json_loadb(h.body, h.body_len, 0, NULL);
    co_test_http_free(&h);
    assert_non_null(j);
    return j;
}

static long long sim_requests(fx *f, const char *model)
{
    json_t *j = sim_get(f, "/_sim/stats");
    json_t *v = model ? json_object_get(json_object_get(json_object_get(j, "models"), model), "requests")
                      : json_object_get(j, "requests");
    long long n = json_integer_value(v);
    json_decref(j);
    return n;
}

static long long sim_status(fx *f, const char *model, const char *status)
{
    json_t *j = sim_get(f, "/_sim/stats");
    json_t *v = json_object_get(
        json_object_get(json_object_get(json_object_get(j, "models"), model), "status"), status);
    long long n = json_integer_value(v);
    json_decref(j);
    return n;
}

static co_eval_opts opts_for(fx *f)
{
    co_eval_opts o = {.suite_path = f->suite_path, .retries = -1};
    return o;
}

static void run_ok(fx *f, const co_eval_opts *o, co_eval_summary *sum)
{
    co_diags d = {0};
    int rc = co_eval_run_suite(sum, f->cfg, f->suite, f->st, o, &d);
    if (rc)
        fprintf(stderr, "run: %s\n", co_error_last()), co_diags_print(&d, stderr);
    co_diags_free(&d);
    assert_int_equal(rc, 0);
    assert_true(sum->run_id > 0);
}

/* Results of a run, as JSON objects in store order. */
typedef struct rows {
    json_t *a;
} rows;

static int collect(const co_eval_result *r, void *ud)
{
    rows *rs = ud;
    json_t *d = r->detail_json ? json_loads(r->detail_json, 0, NULL) : json_null();
    json_array_append_new(rs->a, json_pack("{s:s, s:s, s:s, s:i, s:b, s:f, s:f, s:f, s:I, s:I, s:s?, s:s?, s:o}",
                                           "case", r->case_id, "workload", r->workload, "arm", r->arm, "repeat",
                                           r->repeat, "passed", r->passed, "score", r->score, "latency",
                                           r->latency_ms, "cost", r->cost_usd, "tin", (json_int_t)r->tokens_in,
                                           "tout", (json_int_t)r->tokens_out, "output", r->output_text, "error",
                                           r->error, "detail", d ? d : json_null()));
    return 0;
}

static json_t *results(fx *f, int64_t run)
{
    rows rs = {json_array()};
    assert_int_equal(co_store_eval_results_each(f->st, run, collect, &rs), 0);
    return rs.a;
}

static json_t *find(json_t *rs, const char *case_id, const char *arm, int repeat)
{
    size_t i;
    json_t *r;
    json_array_foreach(rs, i, r)
    {
        if (!strcmp(json_string_value(json_object_get(r, "case")), case_id) &&
            !strcmp(json_string_value(json_object_get(r, "arm")), arm) &&
            json_integer_value(json_object_get(r, "repeat")) == repeat)
            return r;
    }
    fail_msg("no result for %s/%s/%d", case_id, arm, repeat);
    return NULL;
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_results_stored(void **state)
{
    fx *f = *state;
    co_eval_opts o = opts_for(f);
    o.workload = NULL;
    co_eval_summary sum;
    /* only support and extract (the other workloads have no cases in CASES) */
    run_ok(f, &o, &sum);
    assert_int_equal(sum.tally.total, 8);
    assert_int_equal(sum.tally.done, 8);
    assert_int_equal(sum.tally.calls, 8);
    assert_int_equal(sum.tally.errors, 0);
    assert_int_equal(sum.tally.done_arm[0], 4);
    assert_int_equal(sum.tally.passed_arm[0], 4);
    assert_int_equal(sum.tally.passed_arm[1], 3); /* s2 is tagged hard: the candidate gets it wrong */

    co_eval_run run;
    assert_int_equal(co_store_eval_run_get(f->st, sum.run_id, &run), 0);
    assert_string_equal(run.status, "done");
    assert_string_equal(run.suite, f->suite_path);
    json_t *cj = json_loads(run.config_json, 0, NULL), *sj = json_loads(run.summary_json, 0, NULL);
    assert_non_null(cj);
    assert_non_null(sj);
    assert_int_equal(json_integer_value(json_object_get(cj, "version")), 1);
    assert_string_equal(json_string_value(json_object_get(cj, "suite_format")), "native");
    assert_int_equal(json_array_size(json_object_get(cj, "arms")), 2);
    json_t *sup = json_object_get(json_object_get(cj, "workloads"), "support");
    assert_string_equal(json_string_value(json_object_get(json_object_get(sup, "candidate"), "model")), "cand");
    assert_true(json_real_value(json_object_get(json_object_get(sup, "candidate"), "price_output")) == 15);
    assert_true(json_real_value(json_object_get(json_object_get(sup, "gate"), "pass_rate_drop_max")) == 5);
    assert_true(json_is_null(json_object_get(sup, "monthly_requests")));
    assert_null(json_object_get(json_object_get(cj, "workloads"), "slowpoke")); /* no case there */
    json_t *s2 = json_object_get(json_object_get(cj, "cases"), "s2");
    assert_true(json_is_true(json_object_get(s2, "critical")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(s2, "tags"), 0)), "hard");
    assert_int_equal(json_integer_value(json_object_get(sj, "calls")), 8);
    assert_int_equal(json_integer_value(json_object_get(sj, "cache_hits")), 0);
    json_decref(cj);
    json_decref(sj);
    co_eval_run_clear(&run);

    json_t *rs = results(f, sum.run_id);
    assert_int_equal(json_array_size(rs), 8);
    json_t *r = find(rs, "s1", "incumbent", 0);
    assert_true(json_is_true(json_object_get(r, "passed")));
    assert_string_equal(json_string_value(json_object_get(r, "output")), "Within 30 days.");
    assert_true(json_integer_value(json_object_get(r, "tin")) > 0);
    assert_true(json_integer_value(json_object_get(r, "tout")) > 0);
    assert_true(json_real_value(json_object_get(r, "cost")) > 0);
    assert_true(json_real_value(json_object_get(r, "latency")) > 0);
    json_t *d = json_object_get(r, "detail");
    assert_false(json_is_true(json_object_get(d, "cached")));
    assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 1);
    assert_int_equal(json_integer_value(json_object_get(d, "status")), 200);
    assert_string_equal(json_string_value(json_object_get(d, "finish_reason")), "stop");
    json_t *a0 = json_array_get(json_object_get(d, "asserts"), 0);
    assert_string_equal(json_string_value(json_object_get(a0, "type")), "icontains");
    assert_true(json_is_true(json_object_get(a0, "pass")));
    /* the candidate's wrong answer fails its assertion; it is not an error */
    r = find(rs, "s2", "candidate", 0);
    assert_false(json_is_true(json_object_get(r, "passed")));
    assert_true(json_is_null(json_object_get(r, "error")) || !json_object_get(r, "error"));
    /* the extract candidate is Gemini: same answer through its own API */
    r = find(rs, "e1", "candidate", 0);
    assert_true(json_is_true(json_object_get(r, "passed")));
    assert_int_equal(sim_requests(f, "gemini-cand"), 1);
    json_decref(rs);
}

static void test_cache_second_run(void **state)
{
    fx *f = *state;
    co_eval_opts o = opts_for(f);
    co_eval_summary a, b, c;
    run_ok(f, &o, &a);
    long long before = sim_requests(f, NULL);
    run_ok(f, &o, &b);
    assert_int_equal(b.tally.calls, 0);
    assert_int_equal(b.tally.cache_hits, 8);
    assert_int_equal(sim_requests(f, NULL), before); /* nothing reached the models */
    json_t *ra = results(f, a.run_id), *rb = results(f, b.run_id);
    json_t *x = find(ra, "s3", "candidate", 0), *y = find(rb, "s3", "candidate", 0);
    assert_string_equal(json_string_value(json_object_get(x, "output")),
                        json_string_value(json_object_get(y, "output")));
    /* a cache hit keeps the latency recorded when it was cached */
    assert_true(json_real_value(json_object_get(x, "latency")) == json_real_value(json_object_get(y, "latency")));
    assert_true(json_is_true(json_object_get(json_object_get(y, "detail"), "cached")));
    json_decref(ra);
    json_decref(rb);
    /* --no-cache calls again; a second repeat has its own cache key */
    o.no_cache = 1;
    run_ok(f, &o, &c);
    assert_int_equal(c.tally.calls, 8);
    assert_int_equal(sim_requests(f, NULL), before + 8);
    o.no_cache = 0;
    o.repeat = 2;
    run_ok(f, &o, &c);
    assert_int_equal(c.tally.done, 16);
    assert_int_equal(c.tally.cache_hits, 8);
    assert_int_equal(c.tally.calls, 8);
    json_t *rc = results(f, c.run_id);
    assert_int_equal(json_array_size(rc), 16);
    find(rc, "e1", "candidate", 1);
    json_decref(rc);
}

static const char SLOW_CASES[] = "workload: slowpoke\n"
                                 "cases:\n"
                                 "  - {id: c1, prompt: \"question 1\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c2, prompt: \"question 2\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c3, prompt: \"question 3\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c4, prompt: \"question 4\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c5, prompt: \"question 5\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c6, prompt: \"question 6\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c7, prompt: \"question 7\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c8, prompt: \"question 8\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c9, prompt: \"question 9\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c10, prompt: \"question 10\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c11, prompt: \"question 11\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c12, prompt: \"question 12\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c13, prompt: \"question 13\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c14, prompt: \"question 14\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c15, prompt: \"question 15\", assert: [{type: icontains, value: question}]}\n"
                                 "  - {id: c16, prompt: \"question 16\", assert: [{type: icontains, value: question}]}\n";

static void test_concurrency_bound(void **state)
{
    fx *f = *state;
    fx_suite(f, SLOW_CASES);
    co_eval_opts o = opts_for(f);
    o.arms = CO_EVAL_INCUMBENT; /* the slow model only: each call takes 80 ms at the sim */
    o.concurrency = 3;
    o.no_cache = 1;
    co_test_http h;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_sim/requests", f->port);
    co_test_http_do(&h, "DELETE", url, NULL, NULL, 5000);
    co_test_http_free(&h);
    co_eval_summary sum;
    run_ok(f, &o, &sum);
    assert_int_equal(sum.tally.done, 16);
    assert_int_equal(sum.tally.passed_arm[0], 16);
    /* requests in flight, from the sim's arrival times: every request is held
     * 80 ms, so no window shorter than that may hold more arrivals than the
     * concurrency allows */
    json_t *j = sim_get(f, "/_sim/requests?limit=256");
    json_t *reqs = json_object_get(j, "requests");
    long long ts[64];
    size_t n = 0, i;
    json_t *r;
    json_array_foreach(reqs, i, r)
    {
        if (strstr(json_string_value(json_object_get(r, "path")), "/chat/completions") && n < 64)
            ts[n++] = json_integer_value(json_object_get(r, "ts_ms"));
    }
    json_decref(j);
    assert_int_equal(n, 16);
    int most = 0;
    for (size_t a = 0; a < n; a++) {
        int k = 0;
        for (size_t b = 0; b < n; b++)
            if (ts[b] <= ts[a] && ts[b] > ts[a] - 60)
                k++;
        if (k > most)
            most = k;
    }
    assert_true(most <= 3);
    assert_true(most >= 2); /* and the calls did overlap */
}

static void test_retry_after_429(void **state)
{
    fx *f = *state;
    fx_suite(f, SLOW_CASES);
    co_eval_opts o = opts_for(f);
    o.arms = CO_EVAL_CANDIDATE; /* flaky: half of the calls are answered 429 with retry-after-ms 30 */
    o.retries = 20;
    o.no_cache = 1;
    co_eval_summary sum;
    run_ok(f, &o, &sum);
    assert_int_equal(sum.tally.done, 16);
    assert_int_equal(sum.tally.errors, 0);
    long long n429 = sim_status(f, "flaky", "429");
    assert_true(n429 > 0);
    assert_int_equal((long long)sum.tally.retries, n429);
    assert_int_equal((long long)sum.tally.calls, 16 + n429);
    /* each wait was the provider's Retry-After (30 ms), not a guess */
    assert_int_equal(sum.tally.retry_wait_ms, 30 * n429);
    json_t *rs = results(f, sum.run_id);
    long long attempts = 0;
    size_t i;
    json_t *r;
    json_array_foreach(rs, i, r)
    {
        assert_true(json_is_true(json_object_get(r, "passed")));
        attempts += json_integer_value(json_object_get(json_object_get(r, "detail"), "attempts"));
    }
    assert_int_equal(attempts, 16 + n429);
    json_decref(rs);
}

static void test_retries_bounded_and_500(void **state)
{
    fx *f = *state;
    fx_suite(f, "workload: faulty\n"
                "cases:\n"
                "  - {id: f1, prompt: \"hello\", assert: [{type: icontains, value: hello}]}\n"
                "  - {id: f2, prompt: \"again\", assert: [{type: icontains, value: again}]}\n");
    co_eval_opts o = opts_for(f);
    o.retries = 2;
    co_eval_summary sum;
    run_ok(f, &o, &sum);
    assert_int_equal(sum.tally.done, 4);
    assert_int_equal(sum.tally.errors, 4);
    /* limited answers 429 every time: 1 call + 2 retries per case, then an error result */
    assert_int_equal(sim_status(f, "limited", "429"), 6);
    assert_int_equal(sum.tally.retries, 4);
    /* broken answers 500: no retry */
    assert_int_equal(sim_requests(f, "broken"), 2);
    json_t *rs = results(f, sum.run_id);
    json_t *r = find(rs, "f1", "incumbent", 0);
    assert_false(json_is_true(json_object_get(r, "passed")));
    assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "http 429"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "detail"), "attempts")), 3);
    r = find(rs, "f2", "candidate", 0);
    assert_false(json_is_true(json_object_get(r, "passed")));
    assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "http 500"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "detail"), "status")), 500);
    assert_true(json_is_null(json_object_get(r, "output")) || !json_object_get(r, "output"));
    json_decref(rs);
    co_eval_run run;
    assert_int_equal(co_store_eval_run_get(f->st, sum.run_id, &run), 0);
    assert_string_equal(run.status, "done"); /* failed calls are results, not a failed run */
    co_eval_run_clear(&run);
}

static void test_llm_rubric_judge(void **state)
{
    fx *f = *state;
    fx_config(f, "eval: {judge: judge}\n");
    fx_suite(f, "- id: r1\n"
                "  workload: support\n"
                "  messages: [{role: user, content: \"How many days for a refund?\"}]\n"
                "  assert:\n"
                "    - {type: llm-rubric, value: \"states the refund window\", threshold: 0.8}\n"
                "    - {type: icontains, value: days}\n"
                "- id: r2\n"
                "  workload: support\n"
                "  messages: [{role: user, content: \"Do you ship abroad?\"}]\n"
                "  assert: [{type: llm-rubric, value: \"is exhaustive\", threshold: 0.95}]\n");
    co_eval_opts o = opts_for(f);
    o.arms = CO_EVAL_INCUMBENT;
    co_eval_summary sum;
    long long before = sim_requests(f, "judge");
    run_ok(f, &o, &sum);
    assert_int_equal(sim_requests(f, "judge"), before + 2);
    json_t *rs = results(f, sum.run_id);
    json_t *r = find(rs, "r1", "incumbent", 0);
    assert_true(json_is_true(json_object_get(r, "passed")));
    json_t *a0 = json_array_get(json_object_get(json_object_get(r, "detail"), "asserts"), 0);
    assert_string_equal(json_string_value(json_object_get(a0, "type")), "llm-rubric");
    assert_true(json_real_value(json_object_get(a0, "score")) > 0.89 &&
                json_real_value(json_object_get(a0, "score")) < 0.91);
    assert_non_null(strstr(json_string_value(json_object_get(a0, "reason")), "polite"));
    r = find(rs, "r2", "incumbent", 0);
    assert_false(json_is_true(json_object_get(r, "passed"))); /* 0.9 < 0.95 */
    json_decref(rs);
    /* the verdicts are cached like answers */
    run_ok(f, &o, &sum);
    assert_int_equal(sum.tally.calls, 0);
    assert_int_equal(sum.tally.cache_hits, 4);
    /* without a judge in the config, llm-rubric is an input error */
    fx_config(f, NULL);
    co_diags d = {0};
    assert_int_equal(co_eval_run_suite(&sum, f->cfg, f->suite, f->st, &o, &d), CO_ECONFIG);
    assert_true(d.n >= 1);
    assert_non_null(strstr(d.v[0].msg, "eval.judge"));
    co_diags_free(&d);
}

static void test_unknown_workload(void **state)
{
    fx *f = *state;
    fx_suite(f, "- id: ok\n"
                "  workload: support\n"
                "  prompt: hi\n"
                "- id: lost\n"
                "  workload: billing\n"
                "  prompt: hi\n");
    co_eval_opts o = opts_for(f);
    co_eval_summary sum;
    co_diags d = {0};
    long long before = sim_requests(f, NULL);
    assert_int_equal(co_eval_run_suite(&sum, f->cfg, f->suite, f->st, &o, &d), CO_ECONFIG);
    assert_int_equal(sum.run_id, 0); /* nothing stored */
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].file, f->suite_path);
    assert_int_equal(d.v[0].line, 4);
    assert_non_null(strstr(d.v[0].msg, "case 'lost'"));
    assert_non_null(strstr(d.v[0].msg, "'billing'"));
    assert_non_null(strstr(d.v[0].msg, "support, extract"));
    co_diags_free(&d);
    /* --workload naming no workload of the config */
    fx_suite(f, CASES);
    o.suite_path = f->suite_path;
    o.workload = "nope";
    assert_int_equal(co_eval_run_suite(&sum, f->cfg, f->suite, f->st, &o, &d), CO_ECONFIG);
    assert_non_null(strstr(d.v[0].msg, "'nope'"));
    co_diags_free(&d);
    /* --workload keeps the others out */
    o.workload = "extract";
    run_ok(f, &o, &sum);
    assert_int_equal(sum.tally.done, 2);
    assert_int_equal(sim_requests(f, NULL), before + 2);
    /* a missing provider key is an error before anything is stored or called */
    unsetenv("RT_AN_KEY");
    o.workload = "support";
    o.no_cache = 1;
    assert_int_equal(co_eval_run_suite(&sum, f->cfg, f->suite, f->st, &o, &d), CO_ENOENT);
    assert_non_null(strstr(co_error_last(), "RT_AN_KEY"));
    assert_int_equal(sum.run_id, 0);
    co_diags_free(&d);
    setenv("RT_AN_KEY", "sk-ant-test", 1);
}

static volatile int cancel_flag;

static void cancel_after_two(void *ud, const co_eval_progress *p)
{
    (void)ud;
    if (p->done >= 2)
        cancel_flag = 1;
}

static void test_cancel(void **state)
{
    fx *f = *state;
    fx_suite(f, SLOW_CASES);
    co_eval_opts o = opts_for(f);
    o.arms = CO_EVAL_INCUMBENT;
    o.concurrency = 1;
    o.no_cache = 1;
    o.progress = cancel_after_two;
    o.progress_interval_ms = 1;
    o.cancel = &cancel_flag;
    cancel_flag = 0;
    co_eval_summary sum;
    co_diags d = {0};
    assert_int_equal(co_eval_run_suite(&sum, f->cfg, f->suite, f->st, &o, &d), CO_ESTATE);
    assert_non_null(strstr(co_error_last(), "interrupted"));
    assert_true(sum.run_id > 0);
    co_eval_run run;
    assert_int_equal(co_store_eval_run_get(f->st, sum.run_id, &run), 0);
    assert_string_equal(run.status, "failed");
    co_eval_run_clear(&run);
    /* the results judged before the interruption are kept */
    json_t *rs = results(f, sum.run_id);
    assert_true(json_array_size(rs) >= 2);
    assert_true(json_array_size(rs) < 16);
    json_decref(rs);
    co_diags_free(&d);
}

static void test_config_judge_checked(void **state)
{
    (void)state;
    co_config *cfg = NULL;
    co_diags d = {0};
    int rc = co_config_load_string(&cfg,
                                   "providers: {oa: {kind: openai}}\n"
                                   "models: {m: {provider: oa}}\n"
                                   "workloads: {w: {incumbent: m}}\n"
                                   "eval:\n"
                                   "  judge: gpt-judge\n",
                                   "c.yaml", &d);
    assert_int_equal(rc, CO_ECONFIG);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.v[0].line, 5);
    assert_non_null(strstr(d.v[0].msg, "eval.judge 'gpt-judge'"));
    co_diags_free(&d);
    assert_int_equal(co_config_load_string(&cfg,
                                           "providers: {oa: {kind: openai}}\n"
                                           "models: {m: {provider: oa}}\n"
                                           "workloads: {w: {incumbent: m}}\n",
                                           "c.yaml", &d),
                     0);
    assert_int_equal(cfg->eval.concurrency, 16);
    assert_int_equal(cfg->eval.retries, 3);
    assert_int_equal(cfg->eval.retry_max_wait_ms, 60000);
    co_config_free(cfg);
    co_diags_free(&d);
}

static void test_retry_after_parse(void **state)
{
    (void)state;
    assert_int_equal(co_eval_retry_after_ms("120", 0), 120000);
    assert_int_equal(co_eval_retry_after_ms(" 1.5 ", 0), 1500);
    assert_int_equal(co_eval_retry_after_ms("0", 0), 0);
    /* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 s */
    assert_int_equal(co_eval_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470000LL), 10000);
    assert_int_equal(co_eval_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490000LL), 0);
    assert_int_equal(co_eval_retry_after_ms("soon", 0), -1);
    assert_int_equal(co_eval_retry_after_ms("-3", 0), -1);
    assert_int_equal(co_eval_retry_after_ms("12abc", 0), -1);
    assert_int_equal(co_eval_retry_after_ms(NULL, 0), -1);
    unsigned arms;
    assert_int_equal(co_eval_arms_parse(&arms, "candidate"), 0);
    assert_int_equal(arms, CO_EVAL_CANDIDATE);
    assert_int_equal(co_eval_arms_parse(&arms, "both"), 0);
    assert_int_equal(arms, CO_EVAL_BOTH);
    assert_int_equal(co_eval_arms_parse(&arms, "shadow"), CO_EINVAL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_results_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_second_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_429, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_bounded_and_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_llm_rubric_judge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_workload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test(test_config_judge_checked),
        cmocka_unit_test(test_retry_after_parse),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
