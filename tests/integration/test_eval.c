/* `cutover eval` end to end on the real binary ($CUTOVER_BIN) against a real
 * `cutover sim`: a candidate that regresses on one workload only fails that
 * workload's gate while the others pass (exit 1, reports written); a tiny
 * sample is inconclusive (exit 3, or folded by --inconclusive); --compare
 * re-renders the same report.json from the store without calling a model;
 * a bad suite or an unknown workload is an input error (exit 2) naming
 * file:line. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "co_test.h"

static const char SCENARIO[] = "seed: 3\n"
                               "models:\n"
                               "  old-model:\n"
                               "    provider: openai\n"
                               "    canned: {file: suite.yaml, accuracy: 1}\n"
                               "  new-model:\n"
                               "    provider: anthropic\n"
                               "    canned: {file: suite.yaml, accuracy: 1, tag_accuracy: {invoice: 0.3}}\n"
                               "    latency: {ttft: 2ms}\n";

static const char CONFIG[] = "store: sqlite:%s/cutover.db\n"
                             "providers:\n"
                             "  oa: {kind: openai, base_url: \"http://127.0.0.1:%d/v1\", api_key_env: TE_OA_KEY}\n"
                             "  an: {kind: anthropic, base_url: \"http://127.0.0.1:%d\", api_key_env: TE_AN_KEY}\n"
                             "models:\n"
                             "  old: {provider: oa, upstream: old-model, price_input: 2.5, price_output: 10}\n"
                             "  new: {provider: an, upstream: new-model, price_input: 3, price_output: 15}\n"
                             "workloads:\n"
                             "  support: {incumbent: old, candidate: new, gate: {pass_rate_drop_max: 15}}\n"
                             "  search: {incumbent: old, candidate: new, gate: {pass_rate_drop_max: 15}}\n"
                             "  extract: {incumbent: old, candidate: new, gate: {pass_rate_drop_max: 2}}\n";

typedef struct fx {
    char *dir;
    co_test_proc sim;
    int sim_on;
    char *cfg;
} fx;

typedef struct res {
    int code;
    char *out, *err;
} res;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    if (n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n)
        p[0] = '\0';
    fclose(f);
    return p;
}

/* Runs `cutover ARGS...` (NULL-terminated) with stdout and stderr into
 * files; waits at most 120 s. */
static res run(fx *f, ...)
{
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)co_test_bin();
    va_list ap;
    va_start(ap, f);
    for (char *a; n < 39 && (a = va_arg(ap, char *));)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char op[1024], ep[1024];
    snprintf(op, sizeof op, "%s/out.txt", f->dir);
    snprintf(ep, sizeof ep, "%s/err.txt", f->dir);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0600), e = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    res r = {.code = -1};
    int st = 0;
    for (int i = 0; i < 12000; i++) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        usleep(10000);
    }
    if (r.code < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    r.out = slurp(op);
    r.err = slurp(ep);
    if (getenv("TEST_EVAL_VERBOSE"))
        fprintf(stderr, "exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.out, r.err);
    return r;
}

static void res_free(res *r)
{
    free(r->out);
    free(r->err);
}

/* 40 cases per workload; extract's are invoices, which the candidate gets
 * wrong 70% of the time. */
static char *write_suite(fx *f, const char *name, int per_workload, const char *only)
{
    static const char *const wls[] = {"support", "search", "extract"};
    size_t cap = 1 << 20, len = 0;
    char *s = calloc(1, cap);
    for (int w = 0; w < 3; w++) {
        if (only && strcmp(only, wls[w]))
            continue;
        for (int i = 0; i < per_workload; i++) {
            int extract = w == 2;
            len += (size_t)snprintf(
                s + len, cap - len,
                "- {\"id\": \"%s-%02d\", \"workload\": \"%s\", \"tags\": [\"%s\"]%s, \"messages\": [{\"role\": \"user\", "
                "\"content\": \"%s question number %d\"}], \"ideal\": \"%s answer %d\", \"assert\": [{\"type\": "
                "\"icontains\", \"value\": \"answer %d\"}]}\n",
                wls[w], i, wls[w], extract ? "invoice" : "faq", i % 10 == 0 ? ", \"critical\": true" : "", wls[w],
                i, wls[w], i, i);
        }
    }
    char *p = co_test_write(f->dir, name, s);
    free(s);
    return p;
}

static int setup(void **state)
{
    if (!co_test_bin()) {
        fprintf(stderr, "CUTOVER_BIN is not set\n");
        return -1;
    }
    fx *f = calloc(1, sizeof *f);
    f->dir = co_test_tmpdir();
    free(write_suite(f, "suite.yaml", 40, NULL));
    char *sc = co_test_write(f->dir, "scenario.yaml", SCENARIO);
    char *argv[] = {(char *)co_test_bin(), "sim", "--listen", "127.0.0.1:0", "--scenario", sc, NULL};
    if (co_test_spawn(&f->sim, argv, NULL, 20000))
        return -1;
    f->sim_on = 1;
    free(sc);
    char text[4096];
    snprintf(text, sizeof text, CONFIG, f->dir, f->sim.port, f->sim.port);
    f->cfg = co_test_write(f->dir, "cutover.yaml", text);
    setenv("TE_OA_KEY", "sk-test", 1);
    setenv("TE_AN_KEY", "sk-ant-test", 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->sim_on)
        co_test_stop(&f->sim);
    co_test_rmtree(f->dir);
    free(f->dir);
    free(f->cfg);
    free(f);
    return 0;
}

static long long run_id_of(const char *out)
{
    const char *p = strstr(out, "eval run ");
    assert_non_null(p);
    return strtoll(p + 9, NULL, 10);
}

static long long sim_total(fx *f)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_sim/stats", f->sim.port);
    co_test_http h;
    co_test_http_do(&h, "GET", url, NULL, NULL, 5000);
    json_t *j = json_loadb(h.body, h.body_len, 0, NULL);
    long long n = json_integer_value(json_object_get(j, "requests"));
    json_decref(j);
    co_test_http_free(&h);
    return n;
}

static int file_exists(const char *dir, const char *name)
{
    char p[2100];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0 && sb.st_size > 0;
}

static void test_one_workload_regresses(void **state)
{
    fx *f = *state;
    char suite[1024], out[1024], out2[1024];
    snprintf(suite, sizeof suite, "%s/suite.yaml", f->dir);
    snprintf(out, sizeof out, "%s/report", f->dir);
    snprintf(out2, sizeof out2, "%s/again", f->dir);
    res r = run(f, "eval", "-c", f->cfg, "--suite", suite, "--out", out, NULL);
    assert_int_equal(r.code, 1);
    /* the gate of the regressed workload fails, the others pass */
    const char *ex = strstr(r.out, "extract: FAIL"), *su = strstr(r.out, "support: PASS"),
               *se = strstr(r.out, "search: PASS");
    if (!ex || !su || !se)
        fprintf(stderr, "%s\n%s\n", r.out, r.err);
    assert_non_null(ex);
    assert_non_null(su);
    assert_non_null(se);
    assert_non_null(strstr(r.out, "--compare"));
    long long id = run_id_of(r.out);
    assert_true(id > 0);
    assert_true(file_exists(out, "report.md"));
    assert_true(file_exists(out, "report.html"));
    assert_true(file_exists(out, "report.json"));
    assert_true(file_exists(out, "junit.xml"));
    char p[2100];
    snprintf(p, sizeof p, "%s/report.json", out);
    char *j1 = slurp(p);
    json_t *rj = json_loads(j1, 0, NULL);
    assert_non_null(rj);
    assert_int_equal(json_integer_value(json_object_get(rj, "exit_code")), 1);
    json_t *wls = json_object_get(rj, "workloads"), *w;
    size_t i, seen = 0;
    json_array_foreach(wls, i, w)
    {
        const char *name = json_string_value(json_object_get(w, "name"));
        const char *verdict = json_string_value(json_object_get(w, "verdict"));
        assert_non_null(name);
        assert_non_null(verdict);
        assert_string_equal(verdict, !strcmp(name, "extract") ? "fail" : "pass");
        /* every result came from a call: 80 per workload, both arms */
        json_t *inc = json_object_get(json_object_get(w, "arms"), "incumbent");
        assert_int_equal(json_integer_value(json_object_get(inc, "results")), 40);
        seen++;
    }
    assert_int_equal(seen, 3);
    json_decref(rj);
    res_free(&r);

    /* --compare re-renders the same report from the store, calling nothing */
    long long calls = sim_total(f);
    char ids[32];
    snprintf(ids, sizeof ids, "%lld", id);
    r = run(f, "eval", "-c", f->cfg, "--compare", ids, "--out", out2, "--format", "json", NULL);
    assert_int_equal(r.code, 1);
    assert_int_equal(sim_total(f), calls);
    snprintf(p, sizeof p, "%s/report.json", out2);
    char *j2 = slurp(p);
    assert_string_equal(j1, j2);
    assert_false(file_exists(out2, "report.md"));
    free(j1);
    free(j2);
    res_free(&r);

    /* a second run is answered from the cache; --inconclusive does not hide a failure */
    r = run(f, "eval", "-c", f->cfg, "--suite", suite, "--inconclusive", "pass", "-q", NULL);
    assert_int_equal(r.code, 1);
    assert_int_equal(sim_total(f), calls);
    assert_non_null(strstr(r.out, "240 cache hit(s)"));
    res_free(&r);
}

static void test_baseline_then_candidate(void **state)
{
    fx *f = *state;
    char suite[1024];
    snprintf(suite, sizeof suite, "%s/suite.yaml", f->dir);
    res r = run(f, "eval", "-c", f->cfg, "--suite", suite, "--arm", "incumbent", "--save-baseline", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "baseline saved"));
    res_free(&r);
    r = run(f, "eval", "-c", f->cfg, "--suite", suite, "--arm", "candidate", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.out, "extract: FAIL"));
    res_free(&r);
    /* a baseline needs the incumbent */
    r = run(f, "eval", "-c", f->cfg, "--suite", suite, "--arm", "candidate", "--save-baseline", NULL);
    assert_int_equal(r.code, 2);
    res_free(&r);
}

static void test_tiny_sample_inconclusive(void **state)
{
    fx *f = *state;
    char *suite = write_suite(f, "tiny.yaml", 3, "support");
    res r = run(f, "eval", "-c", f->cfg, "--suite", suite, NULL);
    assert_int_equal(r.code, 3);
    assert_non_null(strstr(r.out, "INCONCLUSIVE"));
    res_free(&r);
    r = run(f, "eval", "-c", f->cfg, "--suite", suite, "--inconclusive", "pass", NULL);
    assert_int_equal(r.code, 0);
    res_free(&r);
    r = run(f, "eval", "-c", f->cfg, "--suite", suite, "--inconclusive", "fail", NULL);
    assert_int_equal(r.code, 1);
    res_free(&r);
    free(suite);
}

static void test_input_errors(void **state)
{
    fx *f = *state;
    long long calls = sim_total(f);
    char *bad = co_test_write(f->dir, "bad.yaml",
                              "- id: a\n"
                              "  workload: support\n"
                              "  prompt: hello\n"
                              "  assert: [{type: icontians, value: x}]\n");
    res r = run(f, "eval", "-c", f->cfg, "--suite", bad, NULL);
    assert_int_equal(r.code, 2);
    char want[1200];
    snprintf(want, sizeof want, "%s:4:", bad);
    if (!strstr(r.err, want))
        fprintf(stderr, "stderr: %s\n", r.err);
    assert_non_null(strstr(r.err, want));
    assert_non_null(strstr(r.err, "icontains"));
    res_free(&r);
    free(bad);

    char *lost = co_test_write(f->dir, "lost.yaml",
                               "- id: a\n"
                               "  workload: support\n"
                               "  prompt: hello\n"
                               "- id: b\n"
                               "  workload: billing\n"
                               "  prompt: hello\n");
    r = run(f, "eval", "-c", f->cfg, "--suite", lost, NULL);
    assert_int_equal(r.code, 2);
    snprintf(want, sizeof want, "%s:4:", lost);
    assert_non_null(strstr(r.err, want));
    assert_non_null(strstr(r.err, "'billing'"));
    res_free(&r);
    free(lost);

    r = run(f, "eval", "-c", f->cfg, NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "--suite"));
    res_free(&r);
    r = run(f, "eval", "-c", f->cfg, "--suite", "x.yaml", "--arm", "shadow", NULL);
    assert_int_equal(r.code, 2);
    res_free(&r);
    r = run(f, "eval", "-c", f->cfg, "--suite", "x.yaml", "--format", "pdf", NULL);
    assert_int_equal(r.code, 2);
    res_free(&r);
    r = run(f, "eval", "-c", f->cfg, "--compare", "999", NULL);
    assert_int_equal(r.code, 2);
    res_free(&r);
    assert_int_equal(sim_total(f), calls); /* nothing was called */
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_workload_regresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_baseline_then_candidate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tiny_sample_inconclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_input_errors, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
