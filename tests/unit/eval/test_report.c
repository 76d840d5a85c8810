/* Eval reports (src/eval/report*.c), rendered from a run stored in a
 * SQLite file with fixed timestamps:
 *   - golden files for all four formats (tests/unit/eval/golden/): the same
 *     stored run renders byte for byte the same report. After an intended
 *     change, regenerate them with
 *         CO_UPDATE_GOLDEN=1 CO_SRC_DIR=$PWD build/unit_eval_test_report
 *     and review the diff before committing;
 *   - report.html is self-contained (no script, no external resource) and
 *     escapes a hostile output (</script><img onerror>) and case id;
 *   - report.json parses with jansson and has the keys docs/eval.md lists;
 *   - junit.xml is well-formed (checked by a small parser here: libxml2 is
 *     not a dependency) with a testsuite per workload gate and a testcase
 *     per case and arm, its counts matching its elements;
 *   - the format list parser and co_report_write (mkdir -p, atomic files). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cutover/compare.h"
#include "cutover/error.h"
#include "cutover/report.h"
#include "cutover/store.h"
#include "cutover/util.h"
#include "eval/compare_int.h"
#include "eval/report_int.h"

#define STARTED_MS 1763900000000LL  /* 2025-11-23T12:13:20Z */
#define FINISHED_MS 1763900123456LL /* 2025-11-23T12:15:23Z */
#define HOSTILE "</script><img src=x onerror=alert(1)>"
#define HOSTILE_ID "sup-<b>&\"quoted\"'"

typedef struct fixture {
    char dir[64];
    char path[128];
    co_store *st;
    int64_t run;
    co_eval_analysis *a;
} fixture;

static void add(co_store *st, int64_t run, const char *wl, const char *id, const char *arm, int passed,
                double lat, double cost, const char *out, const char *err, const char *reason)
{
    json_t *d = json_pack("{s:[{s:s,s:b,s:i,s:i,s:s,s:b}],s:s,s:n,s:b,s:i,s:i,s:n}", "asserts", "type",
                          "icontains", "pass", passed, "score", passed, "weight", 1, "reason",
                          reason ? reason : (passed ? "found 'refund'" : "expected 'refund' in the output"),
                          "error", 0, "finish_reason", "stop", "tool_calls", "cached", 0, "attempts", 1, "status",
                          err ? 500 : 200, "ttft_ms");
    assert_non_null(d);
    char *detail = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    co_eval_result r = {
        .case_id = id, .workload = wl, .arm = arm, .repeat = 0, .passed = passed, .score = passed,
        .latency_ms = lat, .cost_usd = cost, .tokens_in = 120, .tokens_out = 40,
        .output_text = out, .detail_json = detail, .error = err,
    };
    assert_int_equal(co_store_eval_results_add(st, run, &r, 1), 0);
    free(detail);
}

/* Three workloads: support regresses (a hostile output among the
 * regressions, a call error, a critical case that holds), billing is equal
 * but wraps its JSON in fences (drift; cost and latency gates), search has
 * four cases (inconclusive). */
static void build_run(fixture *f)
{
    const char *cfg =
        "{\"version\":1,\"suite\":\"evals/\",\"suite_format\":\"native\",\"arms\":[\"incumbent\",\"candidate\"],"
        "\"repeat\":1,\"concurrency\":16,\"cache\":true,\"started_ms\":1763900000000,\"workloads\":{"
        "\"support\":{\"incumbent\":{\"model\":\"gpt-4o\",\"price_input\":2.5,\"price_output\":10},"
        "\"candidate\":{\"model\":\"claude-sonnet-4\",\"price_input\":3,\"price_output\":15},"
        "\"gate\":{\"pass_rate_drop_max\":2,\"critical_pass_rate_drop_max\":0,\"cost_increase_max\":0,"
        "\"latency_p95_ratio_max\":0},\"monthly_requests\":120000},"
        "\"billing\":{\"incumbent\":{\"model\":\"gpt-4o\"},\"candidate\":{\"model\":\"claude-sonnet-4\"},"
        "\"gate\":{\"pass_rate_drop_max\":10,\"critical_pass_rate_drop_max\":0,\"cost_increase_max\":50,"
        "\"latency_p95_ratio_max\":2},\"monthly_requests\":null},"
        "\"search\":{\"incumbent\":{\"model\":\"gpt-4o-mini\"},\"candidate\":{\"model\":\"claude-haiku\"},"
        "\"gate\":{\"pass_rate_drop_max\":2,\"critical_pass_rate_drop_max\":0,\"cost_increase_max\":0,"
        "\"latency_p95_ratio_max\":0},\"monthly_requests\":3000}},"
        "\"cases\":{\"sup-039\":{\"workload\":\"support\",\"critical\":true,\"tags\":[\"refunds\"]}}}";
    co_eval_run run = {.started_ms = STARTED_MS, .suite = "evals/", .config_json = cfg};
    assert_int_equal(co_store_eval_run_begin(f->st, &run), 0);
    f->run = run.id;
    char id[64], out[256];
    for (int i = 0; i < 40; i++) {
        if (i == 3)
            snprintf(id, sizeof id, "%s", HOSTILE_ID);
        else
            snprintf(id, sizeof id, "sup-%03d", i);
        snprintf(out, sizeof out, "Your refund for order %d is on its way.", 1000 + i);
        int inc = i != 9 && !(i >= 30 && i < 34), cand = inc && !(i < 8);
        if (i == 9)
            cand = 1; /* the improvement */
        add(f->st, f->run, "support", id, "incumbent", inc, 800 + i * 7, 0.0021, inc ? out : "Please wait.", NULL,
            NULL);
        if (i == 5) {
            add(f->st, f->run, "support", id, "candidate", 0, 30000, 0, NULL, "http 500: upstream \"overloaded\"",
                NULL);
            continue;
        }
        const char *cout = cand ? out : i == 3 ? HOSTILE : "I'm sorry, but I can't help with that request.";
        add(f->st, f->run, "support", id, "candidate", cand, 900 + i * 9, 0.0026, cout, NULL,
            i == 3 ? "expected 'refund'; got \"</script>\" & more" : NULL);
    }
    for (int i = 0; i < 60; i++) {
        snprintf(id, sizeof id, "bil-%03d", i);
        int pass = i % 10 != 0;
        char json[96], fenced[128];
        snprintf(json, sizeof json, "{\"invoice\": %d, \"total\": %d.50}", 2000 + i, 10 + i);
        snprintf(fenced, sizeof fenced, "```json\n%s\n```", json);
        add(f->st, f->run, "billing", id, "incumbent", pass, 400 + (i % 13) * 11, 0.0010 + (i % 5) * 0.0001,
            json, NULL, pass ? "valid invoice" : "expected total to match");
        add(f->st, f->run, "billing", id, "candidate", pass, 450 + (i % 11) * 13, 0.0012 + (i % 5) * 0.00012,
            fenced, NULL, pass ? "valid invoice" : "expected total to match");
    }
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof id, "sea-%d", i);
        add(f->st, f->run, "search", id, "incumbent", 1, 250 + i * 10, 0.0002, "- result one\n- result two",
            NULL, NULL);
        add(f->st, f->run, "search", id, "candidate", 1, 230 + i * 10, 0.0001, "- result one\n- result two",
            NULL, NULL);
    }
    assert_int_equal(co_store_eval_run_finish(f->st, f->run, "done",
                                              "{\"calls\":208,\"cache_hits\":0,\"retries\":1,\"errors\":1,"
                                              "\"wall_ms\":123456}"),
                     0);
    /* the store stamps finished_ms from the clock: pin it for the golden files */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE eval_runs SET finished_ms = %lld WHERE id = %lld", (long long)FINISHED_MS,
             (long long)f->run);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/co_report_test_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/cutover.db", f->dir);
    char url[160];
    snprintf(url, sizeof url, "sqlite:%s", f->path);
    assert_int_equal(co_store_open(&f->st, url), 0);
    build_run(f);
    if (co_eval_analyze(&f->a, f->st, f->run, 0, NULL))
        fail_msg("analyze: %s", co_error_last());
    *state = f;
    return 0;
}

static void rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            struct stat sb;
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
                rmtree(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(path);
}

static int teardown(void **state)
{
    fixture *f = *state;
    co_eval_analysis_free(f->a);
    co_store_close(f->st);
    rmtree(f->dir);
    free(f);
    return 0;
}

static char *render(const co_eval_analysis *a, unsigned fmt)
{
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    if (co_report_render(&b, a, fmt))
        fail_msg("render: %s", co_error_last());
    return co_buf_detach(&b);
}

/* ------------------------------------------------------------ golden */

static void golden(const char *name, const char *got)
{
    const char *src = getenv("CO_SRC_DIR");
    if (!src)
        src = ".";
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/unit/eval/golden/%s", src, name);
    const char *upd = getenv("CO_UPDATE_GOLDEN");
    if (upd && strcmp(upd, "1") == 0) {
        assert_int_equal(co_write_file(path, got, strlen(got), 1), 0);
        return;
    }
    char *want = NULL;
    size_t len = 0;
    if (co_read_file(path, 64 << 20, &want, &len))
        fail_msg("%s: %s (regenerate with CO_UPDATE_GOLDEN=1)", path, co_error_last());
    if (strcmp(want, got) != 0) {
        size_t line = 1, i = 0;
        while (want[i] && want[i] == got[i]) {
            if (want[i] == '\n')
                line++;
            i++;
        }
        fail_msg("%s differs from the rendered report at line %zu (if the change is intended, "
                 "regenerate with CO_UPDATE_GOLDEN=1 and review the diff)",
                 path, line);
    }
    free(want);
}

static void test_golden(void **state)
{
    fixture *f = *state;
    static const struct { unsigned fmt; const char *file; } fmts[] = {
        {CO_REPORT_MD, "report.md"}, {CO_REPORT_HTML, "report.html"},
        {CO_REPORT_JSON, "report.json"}, {CO_REPORT_JUNIT, "junit.xml"},
    };
    for (size_t i = 0; i < 4; i++) {
        char *got = render(f->a, fmts[i].fmt);
        /* rendering twice, and from a fresh analysis, gives the same bytes */
        char *again = render(f->a, fmts[i].fmt);
        assert_string_equal(got, again);
        co_eval_analysis *b = NULL;
        assert_int_equal(co_eval_analyze(&b, f->st, f->run, 0, NULL), 0);
        char *fresh = render(b, fmts[i].fmt);
        assert_string_equal(got, fresh);
        co_eval_analysis_free(b);
        golden(fmts[i].file, got);
        free(got);
        free(again);
        free(fresh);
    }
}

/* The fixture's verdicts, so the golden files show what they should. */
static void test_fixture_verdicts(void **state)
{
    fixture *f = *state;
    const co_eval_analysis *a = f->a;
    assert_int_equal(a->n_w, 3);
    assert_string_equal(a->w[0].name, "billing");
    assert_string_equal(a->w[1].name, "search");
    assert_string_equal(a->w[2].name, "support");
    assert_int_equal(a->w[0].verdict, CO_GATE_PASS);
    assert_int_equal(a->w[1].verdict, CO_GATE_INCONCLUSIVE);
    assert_int_equal(a->w[2].verdict, CO_GATE_FAIL);
    assert_int_equal(a->w[2].critical.verdict, CO_GATE_PASS);
    assert_true(a->w[0].drift.rates[CO__DRIFT_FENCES].flagged);
    assert_true(a->w[0].drift.rates[CO__DRIFT_JSON].flagged);
    assert_int_equal(a->w[0].cost.verdict, CO_GATE_PASS);
    assert_int_equal(a->w[0].latency.verdict, CO_GATE_PASS);
    assert_int_equal(a->verdict, CO_GATE_FAIL);
    assert_int_equal(co_eval_analysis_exit_code(a), 1);
    assert_int_equal(a->runs[0].finished_ms, FINISHED_MS);
}

/* ------------------------------------------------------------ html */

static void test_html_safe(void **state)
{
    fixture *f = *state;
    char *h = render(f->a, CO_REPORT_HTML);
    assert_true(strncmp(h, "<!DOCTYPE html>", 15) == 0);
    /* self-contained: nothing fetched, nothing run */
    static const char *const banned[] = {
        "<script", "<img", "<link", "<iframe", "<object", "<embed", "src=\"", "href=", "url(", "@import",
        "http:", "https:", "//cdn", "javascript:",
    };
    for (size_t i = 0; i < sizeof banned / sizeof *banned; i++)
        if (strstr(h, banned[i]))
            fail_msg("report.html contains %s", banned[i]);
    /* the hostile output and case id are there, escaped */
    assert_non_null(strstr(h, "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert_non_null(strstr(h, "sup-&lt;b&gt;&amp;&quot;quoted&quot;&#39;"));
    assert_null(strstr(h, "<b>&"));
    /* the charts are inline SVG */
    size_t svgs = 0;
    for (const char *p = h; (p = strstr(p, "<svg ")); p++)
        svgs++;
    assert_int_equal(svgs, 3);
    assert_non_null(strstr(h, "aria-label=\"pass rate per workload\""));
    assert_non_null(strstr(h, "aria-label=\"latency distribution per arm\""));
    assert_non_null(strstr(h, "aria-label=\"cost per request\""));
    /* the regressions side by side */
    assert_non_null(strstr(h, "<div class=\"pair\">"));
    assert_non_null(strstr(h, "Verdict: FAIL"));
    free(h);
}

static void test_escaping(void **state)
{
    (void)state;
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    /* controls other than tab/LF/CR and invalid UTF-8 become U+FFFD */
    assert_int_equal(co__esc_xml(&b, "a\x01" "b\xff" "c<&>\"'\xc3\xa9\xed\xa0\x80"), 0);
    assert_string_equal(b.p, "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c&lt;&amp;&gt;&quot;&#39;\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    co_buf_reset(&b);
    assert_int_equal(co__esc_xml_attr(&b, "line1\nline2\t<x>"), 0);
    assert_string_equal(b.p, "line1&#10;line2&#9;&lt;x&gt;");
    co_buf_reset(&b);
    assert_int_equal(co__esc_md(&b, "a|b *c*\n<x>"), 0);
    assert_string_equal(b.p, "a\\|b \\*c\\* \\<x\\>");
    co_buf_reset(&b);
    /* a fence longer than any backtick run inside */
    assert_int_equal(co__md_fence(&b, "x ```` y"), 0);
    assert_string_equal(b.p, "`````\nx ```` y\n`````\n");
    co_buf_free(&b);
}

/* ------------------------------------------------------------ json */

static json_t *path(json_t *j, const char *p)
{
    char key[128];
    while (j && *p) {
        size_t n = strcspn(p, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, p);
        if (json_is_array(j))
            j = json_array_get(j, (size_t)atoi(key));
        else
            j = json_object_get(j, key);
        p += n;
        if (*p == '.')
            p++;
    }
    if (!j)
        fail_msg("report.json has no %s", p);
    return j;
}

static void test_json_schema(void **state)
{
    fixture *f = *state;
    char *s = render(f->a, CO_REPORT_JSON);
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    if (!j)
        fail_msg("report.json does not parse: %d:%d %s", je.line, je.column, je.text);
    /* the keys docs/eval.md documents */
    static const char *const keys[] = {
        "schema_version", "generator", "mode", "verdict", "exit_code", "extra_cases", "settings.level",
        "settings.bootstrap", "settings.seed", "settings.inconclusive_as", "settings.max_listed", "repeat",
        "runs.0.id", "runs.0.role", "runs.0.suite", "runs.0.status", "runs.0.started", "runs.0.started_ms",
        "runs.0.finished", "runs.0.finished_ms", "runs.0.summary.calls",
        "workloads.2.name", "workloads.2.compared", "workloads.2.verdict", "workloads.2.extra_cases",
        "workloads.2.baseline_run", "workloads.2.arms.incumbent.model", "workloads.2.arms.incumbent.run_id",
        "workloads.2.arms.incumbent.results", "workloads.2.arms.incumbent.ok", "workloads.2.arms.incumbent.errors",
        "workloads.2.arms.incumbent.error_rate", "workloads.2.arms.incumbent.error_rate_ci",
        "workloads.2.arms.incumbent.cached", "workloads.2.arms.incumbent.cost_total",
        "workloads.2.arms.incumbent.cost_per_request", "workloads.2.arms.incumbent.monthly_cost",
        "workloads.2.arms.incumbent.latency_ms.p50", "workloads.2.arms.incumbent.latency_ms.p95",
        "workloads.2.arms.incumbent.latency_ms.p99", "workloads.2.arms.incumbent.tokens_out_mean",
        "workloads.2.arms.candidate", "workloads.2.pass_rate.incumbent.n", "workloads.2.pass_rate.incumbent.passed",
        "workloads.2.pass_rate.incumbent.rate", "workloads.2.pass_rate.incumbent.ci",
        "workloads.2.pass_rate.candidate", "workloads.2.pass_rate.pairs", "workloads.2.pass_rate.cases",
        "workloads.2.pass_rate.table.both_pass", "workloads.2.pass_rate.table.regressions",
        "workloads.2.pass_rate.table.improvements", "workloads.2.pass_rate.table.both_fail",
        "workloads.2.pass_rate.diff_pts", "workloads.2.pass_rate.diff_ci_pts", "workloads.2.pass_rate.bootstrap_ci_pts",
        "workloads.2.pass_rate.mcnemar_p", "workloads.2.pass_rate.mcnemar_midp", "workloads.2.pass_rate.gate.rule",
        "workloads.2.pass_rate.gate.max_drop_pts", "workloads.2.pass_rate.gate.interval_pts",
        "workloads.2.pass_rate.gate.verdict", "workloads.2.pass_rate.gate.extra_cases",
        "workloads.2.pass_rate.gate.note", "workloads.2.critical.gate.rule", "workloads.2.cost.per_request_ratio",
        "workloads.2.cost.monthly_requests", "workloads.2.cost.gate", "workloads.2.latency.ratio_p50",
        "workloads.2.latency.ratio_p95", "workloads.2.latency.ratio_p99", "workloads.2.latency.gate",
        "workloads.2.drift.outputs.incumbent", "workloads.2.drift.length_chars.incumbent.mean",
        "workloads.2.drift.length_chars.ks_d", "workloads.2.drift.length_chars.ks_p",
        "workloads.2.drift.length_chars.flagged", "workloads.2.drift.rates.markdown_headers.p",
        "workloads.2.drift.rates.bullets.flagged", "workloads.2.drift.rates.code_fences.incumbent",
        "workloads.2.drift.rates.valid_json.candidate_count", "workloads.2.drift.rates.refusals.incumbent_count",
        "workloads.2.drift.rates.trailing_punctuation.candidate", "workloads.2.drift.flagged",
        "workloads.2.regressions.count", "workloads.2.regressions.listed.0.case_id",
        "workloads.2.regressions.listed.0.repeat", "workloads.2.regressions.listed.0.critical",
        "workloads.2.regressions.listed.0.incumbent.passed", "workloads.2.regressions.listed.0.incumbent.score",
        "workloads.2.regressions.listed.0.incumbent.latency_ms", "workloads.2.regressions.listed.0.incumbent.cost_usd",
        "workloads.2.regressions.listed.0.incumbent.output", "workloads.2.regressions.listed.0.incumbent.error",
        "workloads.2.regressions.listed.0.candidate.reasons", "workloads.2.improvements.count",
        "workloads.2.improvements.listed", "workloads.0.cost.gate.max", "workloads.0.cost.gate.est",
        "workloads.0.cost.gate.ci", "workloads.0.cost.gate.verdict", "workloads.0.cost.gate.extra_cases",
        "workloads.0.cost.gate.note", "workloads.0.latency.gate.verdict",
        "overall.name", "overall.verdict", "overall.pass_rate.pairs", "overall.arms.incumbent.monthly_cost",
    };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        path(j, keys[i]);
    assert_int_equal(json_integer_value(path(j, "schema_version")), 1);
    assert_string_equal(json_string_value(path(j, "verdict")), "fail");
    assert_int_equal(json_integer_value(path(j, "exit_code")), 1);
    assert_string_equal(json_string_value(path(j, "runs.0.started")), "2025-11-23T12:13:20Z");
    assert_int_equal(json_integer_value(path(j, "runs.0.finished_ms")), FINISHED_MS);
    assert_string_equal(json_string_value(path(j, "workloads.2.name")), "support");
    assert_string_equal(json_string_value(path(j, "workloads.2.verdict")), "fail");
    assert_string_equal(json_string_value(path(j, "workloads.2.pass_rate.gate.verdict")), "fail");
    assert_string_equal(json_string_value(path(j, "workloads.2.critical.gate.rule")), "zero_tolerance");
    assert_string_equal(json_string_value(path(j, "workloads.1.verdict")), "inconclusive");
    assert_true(json_integer_value(path(j, "workloads.1.extra_cases")) > 0);
    assert_true(json_is_true(path(j, "workloads.0.drift.rates.code_fences.flagged")));
    assert_true(json_is_null(path(j, "workloads.0.cost.monthly_requests")));
    assert_true(json_is_null(path(j, "workloads.0.arms.incumbent.monthly_cost")));
    assert_int_equal(json_integer_value(path(j, "workloads.2.cost.monthly_requests")), 120000);
    assert_true(json_is_null(path(j, "overall.name")));
    /* differences in points, rates as fractions */
    double diff = json_number_value(path(j, "workloads.2.pass_rate.diff_pts"));
    assert_true(fabs(diff - f->a->w[2].all.paired.diff.est * 100) < 1e-6);
    double rate = json_number_value(path(j, "workloads.2.pass_rate.incumbent.rate"));
    assert_true(rate > 0 && rate <= 1);
    /* the hostile output survives as data */
    int found = 0;
    json_t *listed = path(j, "workloads.2.regressions.listed");
    for (size_t i = 0; i < json_array_size(listed); i++) {
        const char *o = json_string_value(json_object_get(json_object_get(json_array_get(listed, i), "candidate"),
                                                          "output"));
        found |= o && strcmp(o, HOSTILE) == 0;
    }
    assert_true(found);
    json_decref(j);
    free(s);
}

/* ------------------------------------------------------------ junit */

/* A small XML well-formedness check: one root, balanced and matching tags,
 * quoted attributes without '<', text and attributes without a raw '<' or
 * an '&' outside the entities the renderer uses. Returns the element count
 * of `count_tag` (opening tags) or fails. */
typedef struct xml_stats {
    size_t suites, cases, failures, errors, skipped;
} xml_stats;

static int entity_ok(const char *p)
{
    static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#10;", "&#13;", "&#9;"};
    for (size_t i = 0; i < sizeof ents / sizeof *ents; i++)
        if (strncmp(p, ents[i], strlen(ents[i])) == 0)
            return 1;
    return 0;
}

static void xml_check(const char *s, xml_stats *st)
{
    char stack[16][32];
    int depth = 0, roots = 0;
    memset(st, 0, sizeof *st);
    assert_true(strncmp(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", 39) == 0);
    const char *p = s + 39;
    while (*p) {
        if (*p == '&') {
            if (!entity_ok(p))
                fail_msg("raw & at offset %td", p - s);
            p++;
            continue;
        }
        if (*p == '>')
            fail_msg("raw > in text at offset %td", p - s);
        if (*p != '<') {
            if (depth == 0 && !strchr(" \n\t\r", *p))
                fail_msg("text outside the root at offset %td", p - s);
            p++;
            continue;
        }
        int closing = p[1] == '/';
        const char *n = p + 1 + closing;
        size_t nl = strspn(n, "abcdefghijklmnopqrstuvwxyz-");
        if (!nl || nl >= 32)
            fail_msg("bad tag at offset %td", p - s);
        char name[32];
        memcpy(name, n, nl);
        name[nl] = '\0';
        const char *q = n + nl;
        if (closing) {
            if (*q != '>')
                fail_msg("bad closing tag at offset %td", p - s);
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
                fail_msg("</%s> does not close <%s>", name, depth ? stack[depth - 1] : "");
            depth--;
            p = q + 1;
            continue;
        }
        /* attributes: name="value" */
        for (;;) {
            q += strspn(q, " ");
            if (*q == '>' || (q[0] == '/' && q[1] == '>'))
                break;
            size_t an = strspn(q, "abcdefghijklmnopqrstuvwxyz_-");
            if (!an || q[an] != '=' || q[an + 1] != '"')
                fail_msg("bad attribute in <%s> at offset %td", name, q - s);
            q += an + 2;
            while (*q && *q != '"') {
                if (*q == '<' || *q == '\n')
                    fail_msg("raw %s in an attribute at offset %td", *q == '<' ? "<" : "newline", q - s);
                if (*q == '&' && !entity_ok(q))
                    fail_msg("raw & in an attribute at offset %td", q - s);
                q++;
            }
            assert_true(*q == '"');
            q++;
        }
        int self = *q == '/';
        p = q + (self ? 2 : 1);
        if (strcmp(name, "testsuite") == 0)
            st->suites++;
        else if (strcmp(name, "testcase") == 0)
            st->cases++;
        else if (strcmp(name, "failure") == 0)
            st->failures++;
        else if (strcmp(name, "error") == 0)
            st->errors++;
        else if (strcmp(name, "skipped") == 0)
            st->skipped++;
        if (depth == 0)
            roots++;
        if (!self) {
            assert_true(depth < 16);
            snprintf(stack[depth++], sizeof stack[0], "%s", name);
        }
    }
    assert_int_equal(depth, 0);
    assert_int_equal(roots, 1);
}

static long attr_num(const char *s, const char *attr)
{
    const char *p = strstr(s, attr);
    assert_non_null(p);
    return strtol(p + strlen(attr), NULL, 10);
}

static void test_junit(void **state)
{
    fixture *f = *state;
    char *x = render(f->a, CO_REPORT_JUNIT);
    xml_stats st;
    xml_check(x, &st);
    assert_int_equal(st.suites, 3); /* a testsuite per workload gate */
    /* a testcase per case and arm, plus one per gate: support has pass rate,
     * critical; billing pass rate, cost, latency; search pass rate */
    size_t results = f->a->n_results, gates = 2 + 3 + 1;
    assert_int_equal(st.cases, results + gates);
    /* the root's counts match the elements */
    assert_int_equal(attr_num(x, "<testsuites name=\"cutover eval\" tests=\""), (long)st.cases);
    assert_int_equal(attr_num(x, "\" failures=\""), (long)st.failures);
    assert_int_equal(st.errors, 1);    /* the call error */
    assert_int_equal(st.skipped, 1);   /* search's inconclusive gate */
    /* failures carry the reason, escaped */
    assert_non_null(strstr(x, "<failure message=\"fail: difference"));
    assert_non_null(strstr(x, "message=\"icontains: expected &#39;refund&#39;; got &quot;&lt;/script&gt;&quot; &amp; more\""));
    assert_non_null(strstr(x, "<error message=\"http 500: upstream &quot;overloaded&quot;\" type=\"call\"/>"));
    assert_non_null(strstr(x, "classname=\"support.candidate\" name=\"sup-&lt;b&gt;&amp;&quot;quoted&quot;&#39;\""));
    assert_non_null(strstr(x, "<testsuite name=\"gate: support\""));
    assert_non_null(strstr(x, "timestamp=\"2025-11-23T12:13:20\""));
    free(x);

    /* inconclusive folded into a failure */
    f->a->inconclusive_as = 1;
    x = render(f->a, CO_REPORT_JUNIT);
    xml_check(x, &st);
    assert_int_equal(st.skipped, 0);
    assert_non_null(strstr(x, "type=\"inconclusive\""));
    f->a->inconclusive_as = 0;
    free(x);
}

/* ------------------------------------------------------------ other modes */

static void check_all_formats(const co_eval_analysis *a, const char *verdict, const char *mode)
{
    char *h = render(a, CO_REPORT_HTML), *m = render(a, CO_REPORT_MD), *x = render(a, CO_REPORT_JUNIT);
    char *s = render(a, CO_REPORT_JSON);
    assert_null(strstr(h, "<script"));
    assert_null(strstr(h, "http:"));
    assert_null(strstr(h, "https:"));
    assert_true(strncmp(m, "# cutover eval report", 21) == 0);
    xml_stats st;
    xml_check(x, &st);
    assert_true(st.suites >= 1);
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(path(j, "verdict")), verdict);
    assert_string_equal(json_string_value(path(j, "mode")), mode);
    json_decref(j);
    free(h), free(m), free(x), free(s);
}

/* A baseline run (incumbent only: nothing compared) and a candidate-only
 * run against it render in every format. */
static void test_other_modes(void **state)
{
    fixture *f = *state;
    const char *cfg = "{\"arms\":[\"incumbent\"],\"workloads\":{\"support\":{\"incumbent\":{\"model\":\"gpt-4o\"},"
                      "\"candidate\":{\"model\":\"claude-sonnet-4\"},\"gate\":{\"pass_rate_drop_max\":2},"
                      "\"monthly_requests\":null}}}";
    co_eval_run base = {.started_ms = STARTED_MS, .suite = "evals/", .config_json = cfg};
    assert_int_equal(co_store_eval_run_begin(f->st, &base), 0);
    char id[32];
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "b%02d", i);
        add(f->st, base.id, "support", id, "incumbent", i % 6 != 0, 500 + i, 0.002, "Refund issued.", NULL, NULL);
    }
    co_eval_analysis *a = NULL;
    assert_int_equal(co_eval_analyze(&a, f->st, base.id, 0, NULL), 0);
    assert_int_equal(co_eval_analysis_exit_code(a), 0);
    check_all_formats(a, "none", "single-arm");
    assert_int_equal(co_eval_save_baselines(f->st, a), 0);
    co_eval_analysis_free(a);

    co_eval_run cand = {.started_ms = STARTED_MS + 1000, .suite = "evals/", .config_json = cfg};
    assert_int_equal(co_store_eval_run_begin(f->st, &cand), 0);
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "b%02d", i);
        add(f->st, cand.id, "support", id, "candidate", i % 6 != 0, 400 + i, 0.001, "Refund issued.", NULL, NULL);
    }
    assert_int_equal(co_eval_analyze(&a, f->st, cand.id, 0, NULL), 0);
    check_all_formats(a, "inconclusive", "baseline");
    char *s = render(a, CO_REPORT_JSON);
    json_t *j = json_loads(s, 0, NULL);
    assert_int_equal(json_integer_value(path(j, "workloads.0.baseline_run")), base.id);
    assert_string_equal(json_string_value(path(j, "runs.1.role")), "baseline");
    json_decref(j);
    free(s);
    co_eval_analysis_free(a);
}

/* ------------------------------------------------------------ formats, files */

static void test_formats_parse(void **state)
{
    (void)state;
    unsigned f = 0;
    assert_int_equal(co_report_formats_parse(&f, "md,html,json,junit"), 0);
    assert_int_equal(f, CO_REPORT_ALL);
    assert_int_equal(co_report_formats_parse(&f, "junit, md"), 0);
    assert_int_equal(f, CO_REPORT_JUNIT | CO_REPORT_MD);
    assert_int_equal(co_report_formats_parse(&f, "all"), 0);
    assert_int_equal(f, CO_REPORT_ALL);
    f = 7;
    assert_int_equal(co_report_formats_parse(&f, "md,pdf"), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "'pdf'"));
    assert_non_null(strstr(co_error_last(), "junit"));
    assert_int_equal(f, 7);
    assert_int_equal(co_report_formats_parse(&f, ""), CO_EINVAL);
    assert_int_equal(co_report_formats_parse(&f, ","), CO_EINVAL);
    co_buf b;
    co_buf_init(&b, 64);
    assert_int_equal(co_report_render(&b, NULL, CO_REPORT_MD | CO_REPORT_HTML), CO_EINVAL);
    co_buf_free(&b);
}

static void test_write(void **state)
{
    fixture *f = *state;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/out/nested/reports", f->dir);
    assert_int_equal(co_report_write(f->a, dir, CO_REPORT_ALL), 0);
    static const char *const files[] = {"report.md", "report.html", "report.json", "junit.xml"};
    for (size_t i = 0; i < 4; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        char *data = NULL;
        size_t len = 0;
        assert_int_equal(co_read_file(p, 64 << 20, &data, &len), 0);
        assert_true(len > 100);
        free(data);
    }
    /* nothing but the four files (no temporaries left behind) */
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    assert_int_equal(n, 4);
    /* rewriting replaces; a subset writes only that */
    char sub[256];
    snprintf(sub, sizeof sub, "%s/out/json-only", f->dir);
    assert_int_equal(co_report_write(f->a, sub, CO_REPORT_JSON), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/report.json", sub);
    assert_int_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/report.md", sub);
    assert_int_equal(access(p, F_OK), -1);
    /* a file in the way of the directory */
    snprintf(p, sizeof p, "%s/out/file", f->dir);
    assert_int_equal(co_write_file(p, "x", 1, 1), 0);
    snprintf(sub, sizeof sub, "%s/out/file/reports", f->dir);
    assert_int_equal(co_report_write(f->a, sub, CO_REPORT_MD), CO_EIO);
    assert_non_null(strstr(co_error_last(), "out/file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fixture_verdicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_golden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html_safe, setup, teardown),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test_setup_teardown(test_json_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_junit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_modes, setup, teardown),
        cmocka_unit_test(test_formats_parse),
        cmocka_unit_test_setup_teardown(test_write, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
