/* Incident reports (co_incident_render / co_incident_write) on a store filled
 * with fixed data: the whole report is compared with a golden file, and the
 * parts that must hold whatever the wording are asserted on their own.
 *
 * Golden file: tests/unit/rollout/golden/incident.md. After an intended
 * change to the report, regenerate it and review the diff:
 *
 *     CO_UPDATE_GOLDEN=1 ./build/unit_rollout_test_incident
 *
 * (CO_SRC_DIR, set by ctest, says where the source tree is; the test
 * falls back to the current directory.) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/incident.h"
#include "cutover/util.h"

static const char *const CFG = "providers: {oa: {kind: openai}, an: {kind: anthropic}}\n"
                               "models: {gpt-4o: {provider: oa}, claude: {provider: an}}\n"
                               "workloads:\n"
                               "  chat: {incumbent: gpt-4o, candidate: claude, mode: canary, percent: 10}\n"
                               "  quiet: {incumbent: gpt-4o, candidate: claude}\n";

/* 2025-03-04T05:06:07.000Z: the stage began; the decision came 20 minutes later */
#define T0 1741064767000LL
#define DECISION (T0 + 20 * 60000LL)

static const char *const METRICS =
    "{\"window\":{\"since_ms\":1741064767000},"
    "\"triggers\":{"
    "\"latency_p95\":{\"value\":1.2,\"threshold\":1.5,\"verdict\":\"ok\",\"incumbent\":800,\"candidate\":960,"
    "\"confidence\":0.91,\"n_candidate\":6,\"n_incumbent\":10},"
    "\"error_rate\":{\"value\":0.3,\"threshold\":0.05,\"verdict\":\"breach\",\"incumbent\":0.0,\"candidate\":0.5,"
    "\"confidence\":0.993,\"n_candidate\":6,\"n_incumbent\":10,\"note\":\"candidate 5xx | upstream\"}}}";

typedef struct fixture {
    co_config *cfg;
    co_store *st;
} fixture;

static void id_of(char out[33], const char *prefix, int i)
{
    snprintf(out, 33, "%s%026d", prefix, i);
}

static void fill(co_store *st)
{
    co_exchange xs[24];
    size_t n = 0;
    char texts[24][400];
    /* incumbent: 10 served, all fine, 500..950 ms */
    for (int i = 0; i < 10; i++, n++) {
        co_exchange *x = &xs[n];
        memset(x, 0, sizeof *x);
        id_of(x->request_id, "req0a", i);
        id_of(x->pair_id, "pair0a", i);
        x->ts_ms = T0 + 60000LL * (i + 1);
        x->workload = "chat";
        x->arm = "incumbent";
        x->role = "served";
        x->model = "gpt-4o";
        x->api = "openai";
        x->status = 200;
        x->latency_ms = 500 + 50 * i;
        x->ttft_ms = -1;
        x->tokens_in = 10;
        x->tokens_out = 20;
        x->cost_usd = 0.001;
        snprintf(texts[n], sizeof texts[n], "incumbent answer %d", i);
        x->output_text = texts[n];
    }
    /* candidate: 6 served, 3 failed (two rescued by the incumbent), one
     * output with backticks and a pipe, one very long */
    for (int i = 0; i < 6; i++, n++) {
        co_exchange *x = &xs[n];
        memset(x, 0, sizeof *x);
        id_of(x->request_id, "req0b", i);
        id_of(x->pair_id, "pair0b", i);
        x->ts_ms = T0 + 90000LL * (i + 1);
        x->workload = "chat";
        x->arm = "candidate";
        x->role = "served";
        x->model = "claude";
        x->api = "openai";
        x->status = i % 2 ? 502 : 200;
        x->error_class = i % 2 ? "5xx" : NULL;
        x->latency_ms = 700 + 60 * i;
        x->ttft_ms = -1;
        x->tokens_in = 10;
        x->tokens_out = i % 2 ? 0 : 25;
        x->cost_usd = i % 2 ? 0 : 0.002;
        if (i == 0)
            snprintf(texts[n], sizeof texts[n], "candidate says ```code``` | with a pipe");
        else if (i == 2)
            memset(texts[n], 'x', sizeof texts[n] - 1), texts[n][sizeof texts[n] - 1] = '\0';
        else
            snprintf(texts[n], sizeof texts[n], "%s", i % 2 ? "" : "candidate answer");
        x->output_text = i % 2 ? NULL : texts[n];
    }
    /* two fallbacks: the incumbent answered after candidate failures 1 and 3 */
    for (int i = 0; i < 2; i++, n++) {
        co_exchange *x = &xs[n];
        memset(x, 0, sizeof *x);
        id_of(x->request_id, "req0b", 1 + 2 * i);
        id_of(x->pair_id, "pair0b", 1 + 2 * i);
        x->ts_ms = T0 + 90000LL * (2 + 2 * i) + 5;
        x->workload = "chat";
        x->arm = "incumbent";
        x->role = "fallback";
        x->model = "gpt-4o";
        x->status = 200;
        x->latency_ms = 400;
        x->ttft_ms = -1;
        x->output_text = "incumbent rescue";
    }
    /* before the window, and another workload: never counted */
    co_exchange *x = &xs[n++];
    memset(x, 0, sizeof *x);
    id_of(x->request_id, "req0c", 0);
    x->ts_ms = T0 - 1;
    x->workload = "chat";
    x->arm = "candidate";
    x->role = "served";
    x->status = 500;
    x->error_class = "5xx";
    x->latency_ms = 1;
    x->ttft_ms = -1;
    x = &xs[n++];
    memset(x, 0, sizeof *x);
    id_of(x->request_id, "req0d", 0);
    x->ts_ms = T0 + 1000;
    x->workload = "quiet";
    x->arm = "candidate";
    x->role = "served";
    x->status = 500;
    x->error_class = "5xx";
    x->latency_ms = 1;
    x->ttft_ms = -1;
    assert_int_equal(co_store_record(st, xs, n), 0);

    /* feedback: one bad on a candidate answer, one good on an incumbent one */
    char rid[33];
    id_of(rid, "req0b", 0);
    co_feedback fb = {.request_id = rid, .score = -1, .comment = "wrong", .ts_ms = T0 + 100000};
    assert_int_equal(co_store_feedback_add(st, &fb), 0);
    id_of(rid, "req0a", 0);
    fb.score = 1;
    assert_int_equal(co_store_feedback_add(st, &fb), 0);

    /* the baseline */
    co_eval_run run = {.started_ms = T0 - 86400000LL, .suite = "golden.yaml", .status = "running"};
    assert_int_equal(co_store_eval_run_begin(st, &run), 0);
    assert_int_equal(co_store_baseline_put(st, "chat", run.id,
                                           "{\"pass_rate\":0.94,\"latency_p95_ms\":820,\"cost_per_request\":0.0011,"
                                           "\"arms\":{\"incumbent\":{\"n\":50}}}"),
                     0);

    /* the rollout log: start, shadow, canary, a hold, the rollback, a later start */
    struct {
        int64_t ts;
        const char *actor, *kind, *from, *to, *reason;
    } evs[] = {
        {T0 - 7200000, "user:ana", "start", "pending", "shadow", "migration ticket MIG-12"},
        {T0 - 3600000, "controller", "promote", "shadow", "canary 1%", "all triggers ok for 1h"},
        {T0, "controller", "promote", "canary 1%", "canary 10%", NULL},
        {T0 + 600000, "controller", "hold-extended", "canary 10%", "canary 10%", "latency_p95 inconclusive"},
        {DECISION, "controller", "rollback", "canary 10%", "incumbent", "error_rate breach: 50% vs 0% (+5 pts)"},
        {DECISION + 3600000, "user:ana", "start", "rolled_back", "shadow", "after the fix"},
    };
    for (size_t i = 0; i < sizeof evs / sizeof *evs; i++) {
        co_rollout_event ev = {.workload = "chat", .ts_ms = evs[i].ts, .actor = (char *)evs[i].actor,
                               .kind = (char *)evs[i].kind, .from_state = (char *)evs[i].from,
                               .to_state = (char *)evs[i].to, .reason = (char *)evs[i].reason};
        assert_int_equal(co_store_rollout_event_add(st, &ev), 0);
    }
    co_rollout_event other = {.workload = "quiet", .ts_ms = T0, .actor = "user:bo", .kind = "start"};
    assert_int_equal(co_store_rollout_event_add(st, &other), 0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    co_diags d = {0};
    assert_int_equal(co_config_load_string(&f->cfg, CFG, "t.yaml", &d), 0);
    co_diags_free(&d);
    assert_int_equal(co_store_open(&f->st, "sqlite::memory:"), 0);
    fill(f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    co_store_close(f->st);
    co_config_free(f->cfg);
    free(f);
    return 0;
}

static const co_incident_input INPUT = {
    .workload = "chat",
    .trigger = "error_rate",
    .reason = "candidate error rate 50.0% vs incumbent 0.0% (threshold +5 points)",
    .actor = "controller",
    .metrics_json = METRICS,
    .ts_ms = DECISION,
    .window_since_ms = T0,
};

static char *render(fixture *f, const co_incident_input *in)
{
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    int rc = co_incident_render(&b, f->st, f->cfg, in);
    if (rc)
        fprintf(stderr, "render: %s\n", co_error_last());
    assert_int_equal(rc, 0);
    return co_buf_detach(&b);
}

static char *golden_path(void)
{
    const char *src = getenv("CO_SRC_DIR");
    char *p = NULL;
    if (asprintf(&p, "%s/tests/unit/rollout/golden/incident.md", src && *src ? src : ".") < 0)
        return NULL;
    return p;
}

static void test_golden(void **state)
{
    fixture *f = *state;
    char *md = render(f, &INPUT);
    char *path = golden_path();
    assert_non_null(path);
    const char *upd = getenv("CO_UPDATE_GOLDEN");
    if (upd && !strcmp(upd, "1")) {
        assert_int_equal(co_write_file(path, md, strlen(md), 1), 0);
        fprintf(stderr, "wrote %s\n", path);
    }
    char *want = NULL;
    size_t wl = 0;
    if (co_read_file(path, 1 << 20, &want, &wl) < 0)
        fail_msg("cannot read %s (CO_UPDATE_GOLDEN=1 creates it): %s", path, co_error_last());
    if (strcmp(md, want) != 0) {
        fprintf(stderr, "---- rendered ----\n%s---- end ----\n", md);
        fail_msg("the report differs from %s; if the change is intended, regenerate it with CO_UPDATE_GOLDEN=1",
                 path);
    }
    /* deterministic: the same store gives the same bytes */
    char *again = render(f, &INPUT);
    assert_string_equal(md, again);
    free(again);
    free(want);
    free(path);
    free(md);
}

static void test_content(void **state)
{
    fixture *f = *state;
    char *md = render(f, &INPUT);
    /* title: workload and UTC time */
    assert_non_null(strstr(md, "# Incident: `chat` rolled back — 2025-03-04T05:26:07.000Z"));
    assert_non_null(strstr(md, "`gpt-4o` → `claude`"));
    /* trigger and reason */
    assert_non_null(strstr(md, "**error_rate**: candidate error rate 50.0%"));
    /* timeline: the events of this workload up to the decision (plus a
     * minute), in order; not the later restart, nor another workload's */
    const char *a = strstr(md, "| controller | promote | canary 1% → canary 10%");
    const char *b = strstr(md, "| controller | rollback | canary 10% → incumbent |");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    assert_null(strstr(md, "after the fix"));
    assert_null(strstr(md, "user:bo"));
    /* triggers: sorted by name, breach in bold, pipes escaped */
    const char *er = strstr(md, "| error_rate | 0.3 | 0.05 | **breach** |");
    const char *lat = strstr(md, "| latency_p95 | 1.2 | 1.5 | ok |");
    assert_non_null(er);
    assert_non_null(lat);
    assert_true(er < lat);
    assert_non_null(strstr(md, "candidate 5xx \\| upstream"));
    assert_non_null(strstr(md, "\"since_ms\": 1741064767000")); /* the rest of the snapshot, pretty */
    /* baseline */
    assert_non_null(strstr(md, "### Baseline (eval run 1)"));
    assert_non_null(strstr(md, "| pass_rate | 0.94 |"));
    /* observed in the window: 10 incumbent served + 2 fallbacks, 6 candidate */
    assert_non_null(strstr(md, "| exchanges | 12 | 6 |"));
    assert_non_null(strstr(md, "| error rate | 0.00% (0/12) | 50.00% (3/6) |"));
    assert_non_null(strstr(md, "| negative feedback | 0.00% (0/1) | 100.00% (1/1) |"));
    /* requests affected */
    assert_non_null(strstr(md, "Served by the candidate: **6** requests, **3** of them failed"));
    assert_non_null(strstr(md, "(fallback): 2"));
    /* failing pairs: the three failures, newest first, with their pair ids */
    const char *p5 = strstr(md, "### pair `pair0b00000000000000000000000005`");
    const char *p3 = strstr(md, "### pair `pair0b00000000000000000000000003`");
    const char *p1 = strstr(md, "### pair `pair0b00000000000000000000000001`");
    assert_non_null(p5);
    assert_non_null(p3);
    assert_non_null(p1);
    assert_true(p5 < p3 && p3 < p1);
    assert_null(strstr(md, "pair0b00000000000000000000000000`"));
    assert_non_null(strstr(md, "error: 5xx"));
    /* the incumbent's rescue of failure 3 is shown with it */
    const char *rescue = strstr(md, "- **incumbent** `gpt-4o` (fallback)");
    assert_non_null(rescue);
    assert_true(rescue > p3 && rescue < p1);
    assert_non_null(strstr(rescue, "incumbent rescue"));
    /* checklist */
    assert_non_null(strstr(md, "- [ ] Find and write down the root cause **before any re-attempt**"));
    free(md);
}

static void test_no_failures_shows_recent_outputs(void **state)
{
    fixture *f = *state;
    co_incident_input in = INPUT;
    in.workload = "quiet";
    in.trigger = NULL; /* manual */
    in.actor = "user:bo";
    in.metrics_json = "not json {";
    in.window_since_ms = T0 + 2000; /* after quiet's only exchange */
    char *md = render(f, &in);
    assert_non_null(strstr(md, "**manual**"));
    assert_non_null(strstr(md, "The snapshot is not valid JSON"));
    assert_non_null(strstr(md, "not json {"));
    assert_non_null(strstr(md, "No baseline saved for `quiet`"));
    assert_non_null(strstr(md, "## Sample candidate outputs"));
    assert_non_null(strstr(md, "No candidate exchanges were recorded in the window."));
    assert_non_null(strstr(md, "Served by the candidate: **0** requests"));
    free(md);

    /* the whole window of chat with the failures left out: recent outputs instead */
    in = INPUT;
    in.ts_ms = T0 + 90000LL * 3 + 1; /* candidate 0..2: only #1 failed */
    in.window_since_ms = T0 + 90000LL * 2;
    md = render(f, &in);
    assert_non_null(strstr(md, "## Sample failing pairs"));
    free(md);
    in.window_since_ms = T0 + 90000LL * 3; /* just #2, which succeeded with a long output */
    md = render(f, &in);
    assert_non_null(strstr(md, "## Sample candidate outputs"));
    assert_non_null(strstr(md, "xxxxxxxx…")); /* truncated */
    free(md);
}

static void test_triggers_as_array(void **state)
{
    fixture *f = *state;
    co_incident_input in = INPUT;
    in.metrics_json = "{\"triggers\":[{\"name\":\"feedback\",\"value\":0.4,\"threshold\":0.2,\"verdict\":\"breach\"}]}";
    in.trigger = "feedback";
    in.reason = "negative feedback 40%\nvs 20% | relative";
    char *md = render(f, &in);
    assert_non_null(strstr(md, "| feedback | 0.4 | 0.2 | **breach** |"));
    assert_non_null(strstr(md, "**feedback**: negative feedback 40% vs 20% \\| relative\n\n")); /* one line */
    assert_null(strstr(md, "Other figures in the snapshot"));
    free(md);
}

static void test_write_stores_it(void **state)
{
    fixture *f = *state;
    int64_t id = 0;
    assert_int_equal(co_incident_write(f->st, f->cfg, &INPUT, &id), 0);
    assert_true(id > 0);
    co_incident inc = {0};
    assert_int_equal(co_store_incident_get(f->st, 0, "chat", &inc), 0);
    assert_int_equal(inc.id, id);
    assert_string_equal(inc.trigger, "error_rate");
    assert_int_equal(inc.ts_ms, DECISION);
    char *md = render(f, &INPUT);
    assert_string_equal(inc.report_md, md);
    assert_non_null(strstr(inc.data_json, "\"trigger\":\"error_rate\""));
    assert_non_null(strstr(inc.data_json, "\"metrics\":{"));
    free(md);
    co_incident_clear(&inc);

    /* bad input */
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    co_incident_input none = {0};
    assert_int_equal(co_incident_render(&b, f->st, f->cfg, &none), CO_EINVAL);
    co_buf_free(&b);
    /* a bounded buffer too small for the report fails cleanly */
    co_buf_init(&b, 256);
    assert_int_equal(co_incident_render(&b, f->st, f->cfg, &INPUT), CO_ETOOBIG);
    co_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_golden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_failures_shows_recent_outputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_triggers_as_array, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_stores_it, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
