/* cutover.yaml: valid files bind to the right values; each kind of error is
 * reported with its line:col; every error is reported; the template and the
 * reference docs come from the same key table. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cutover/config.h"
#include "cutover/util.h"

static const char *const MINIMAL =
    "providers:\n"
    "  oa: {kind: openai, api_key_env: OPENAI_API_KEY}\n"
    "  an: {kind: anthropic, base_url: 'http://127.0.0.1:9/', api_key_env: ANTHROPIC_API_KEY}\n"
    "models:\n"
    "  gpt-4o: {provider: oa, price_input: 2.5, price_output: 10}\n"
    "  claude: {provider: an, upstream: claude-sonnet-4}\n"
    "workloads:\n"
    "  support:\n"
    "    incumbent: gpt-4o\n"
    "    candidate: claude\n"
    "    mode: canary\n"
    "    percent: 10%\n";

/* Loads text expecting failure; returns the diagnostics (caller frees). */
static co_diags load_bad(const char *text)
{
    co_diags d = {0};
    co_config *cfg = NULL;
    int rc = co_config_load_string(&cfg, text, "t.yaml", &d);
    assert_int_equal(rc, CO_ECONFIG);
    assert_null(cfg);
    assert_true(d.n > 0);
    return d;
}

/* Asserts one diagnostic sits at line:col and contains every given fragment. */
static void expect_diag(const co_diags *d, int line, int col, const char *frag1, const char *frag2)
{
    for (size_t i = 0; i < d->n; i++) {
        const co_diag *g = &d->v[i];
        if (g->line == line && g->col == col && strstr(g->msg, frag1) && (!frag2 || strstr(g->msg, frag2))) {
            assert_string_equal(g->file, "t.yaml");
            return;
        }
    }
    co_diags_print(d, stderr);
    fail_msg("no diagnostic at %d:%d containing '%s'", line, col, frag1);
}

static void test_minimal_valid(void **state)
{
    (void)state;
    co_diags d = {0};
    co_config *cfg = NULL;
    assert_int_equal(co_config_load_string(&cfg, MINIMAL, "t.yaml", &d), 0);
    assert_int_equal(d.n, 0);
    assert_non_null(cfg);
    assert_string_equal(cfg->listen, "127.0.0.1:8080");
    assert_string_equal(cfg->store, "sqlite:cutover.db");
    assert_int_equal(cfg->workers, 0);
    assert_int_equal(cfg->recorder.batch, 512);
    assert_int_equal(cfg->limits.max_body, 4 * 1024 * 1024);
    assert_int_equal(cfg->providers.n, 2);
    const co_provider_conf *oa = co_config_provider(cfg, "oa");
    assert_non_null(oa);
    assert_int_equal(oa->kind, CO_PROVIDER_OPENAI);
    assert_string_equal(oa->base_url, "https://api.openai.com/v1"); /* vendor default */
    assert_int_equal(oa->timeout_ms, 300000);
    assert_int_equal(oa->mark.line, 2);
    const co_model_conf *m = co_config_model(cfg, "gpt-4o");
    assert_non_null(m);
    assert_string_equal(m->upstream, "gpt-4o"); /* defaults to the name */
    assert_true(m->price_input == 2.5 && m->price_output == 10);
    assert_string_equal(co_config_model(cfg, "claude")->upstream, "claude-sonnet-4");
    const co_workload_conf *w = co_config_workload(cfg, "support");
    assert_non_null(w);
    assert_int_equal(w->mode, CO_MODE_CANARY);
    assert_true(w->percent == 10.0);
    assert_true(w->shadow_sample == 100.0);
    assert_int_equal(w->fallback, 1);
    assert_true(w->gate.pass_rate_drop_max == 2.0);
    /* default rollout: shadow 14d, 1% 48h, 10% 24h, 50% 24h, 100% */
    const co_rollout_conf *r = co_workload_rollout(cfg, w);
    assert_int_equal(r->stages.n, 5);
    const co_stage_conf *st = r->stages.v;
    assert_int_equal(st[0].kind, CO_STAGE_SHADOW);
    assert_int_equal(st[0].hold_ms, 14LL * 86400000);
    assert_true(st[1].percent == 1.0);
    assert_int_equal(st[1].hold_ms, 48LL * 3600000);
    assert_true(st[4].percent == 100.0);
    assert_int_equal(r->retain_incumbent_ms, 30LL * 86400000);
    const co_triggers_conf *t = co_workload_triggers(cfg, w);
    assert_true(t->latency_p95_ratio == 1.5);
    assert_int_equal(t->min_samples, 200);
    assert_null(co_config_workload(cfg, "nope"));
    co_config_free(cfg);
}

static void test_workload_overrides(void **state)
{
    (void)state;
    char text[4096];
    snprintf(text, sizeof text,
             "%s"
             "  extract:\n"
             "    incumbent: gpt-4o\n"
             "    match: {models: extractor, header: 'X-Team: data'}\n"
             "    triggers: {latency_p95_ratio: 2}\n"
             "    rollout: {stages: [5, 50, 100], auto_promote: false}\n"
             "    contract: {format: json, regex: '^[{]', json_schema: {type: object, required: [a]}}\n"
             "rollout:\n"
             "  stages: [{percent: 1, hold: 1h}, 100]\n",
             MINIMAL);
    co_diags d = {0};
    co_config *cfg = NULL;
    assert_int_equal(co_config_load_string(&cfg, text, "t.yaml", &d), 0);
    const co_workload_conf *w = co_config_workload(cfg, "extract");
    assert_non_null(w);
    assert_int_equal(w->match.models.n, 1); /* a lone scalar is a list of one */
    assert_string_equal(w->match.models.v[0], "extractor");
    assert_string_equal(w->match.header, "X-Team: data");
    assert_true(co_workload_triggers(cfg, w)->latency_p95_ratio == 2.0);
    assert_int_equal(co_workload_triggers(cfg, w)->min_samples, 200);
    const co_rollout_conf *r = co_workload_rollout(cfg, w);
    assert_int_equal(r->stages.n, 3);
    assert_int_equal(r->auto_promote, 0);
    assert_int_equal(w->contract.format, CO_FORMAT_JSON);
    assert_non_null(w->contract.json_schema);
    /* the other workload keeps the top-level rollout */
    const co_rollout_conf *top = co_workload_rollout(cfg, co_config_workload(cfg, "support"));
    assert_int_equal(top->stages.n, 2);
    assert_int_equal(((co_stage_conf *)top->stages.v)[0].hold_ms, 3600000);
    co_config_free(cfg);
}

static void test_unknown_key_suggests(void **state)
{
    (void)state;
    char text[4096];
    snprintf(text, sizeof text, "listn: 127.0.0.1:1\n%s", MINIMAL);
    co_diags d = load_bad(text);
    expect_diag(&d, 1, 1, "unknown key 'listn'", "did you mean 'listen'?");
    co_diags_free(&d);
    /* nested, far from any key: lists the known keys */
    snprintf(text, sizeof text, "%s    gate: {zzzzzzzzzz: 1}\n", MINIMAL);
    d = load_bad(text);
    expect_diag(&d, 13, 12, "unknown key 'zzzzzzzzzz' in 'workloads.support.gate'", "pass_rate_drop_max");
    co_diags_free(&d);
}

static void test_type_and_bounds_errors(void **state)
{
    (void)state;
    char text[4096];
    snprintf(text, sizeof text,
             "workers: lots\n"         /* 1 */
             "limits:\n"               /* 2 */
             "  max_body: 12 parsecs\n"/* 3 */
             "  header_timeout: 0ms\n" /* 4 */
             "recorder: {record_text: maybe}\n" /* 5 */
             "%s"
             "    fallback: [1]\n",    /* 18 */
             MINIMAL);
    co_diags d = load_bad(text);
    expect_diag(&d, 1, 10, "'workers' expects an integer", "'lots'");
    expect_diag(&d, 3, 13, "limits.max_body", "unknown unit");
    expect_diag(&d, 4, 19, "limits.header_timeout", "from 100ms to 10m");
    expect_diag(&d, 5, 25, "expects true or false", "maybe");
    expect_diag(&d, 18, 16, "'workloads.support.fallback' expects a boolean", "a sequence");
    assert_int_equal(d.n, 5); /* every error, not just the first */
    co_diags_free(&d);
}

static void test_enum_and_reference_errors(void **state)
{
    (void)state;
    const char *text =
        "providers:\n"
        "  oa: {kind: opneai}\n"                                      /* 2 */
        "models:\n"
        "  gpt-4o: {provider: oa}\n"
        "  claude: {provider: anthropc}\n"                             /* 5 */
        "workloads:\n"
        "  support:\n"
        "    incumbent: gpt-4o\n"
        "    candidate: claud\n"                                      /* 9 */
        "    mode: shadw\n"                                           /* 10 */
        "  other: {candidate: gpt-4o}\n";                             /* 11 */
    co_diags d = load_bad(text);
    expect_diag(&d, 2, 14, "must be one of openai, anthropic", "did you mean 'openai'");
    expect_diag(&d, 5, 22, "provider 'anthropc' is not defined", NULL);
    expect_diag(&d, 9, 16, "candidate 'claud' is not a model", "did you mean 'claude'");
    expect_diag(&d, 10, 11, "'workloads.support.mode' must be one of", "did you mean 'shadow'");
    expect_diag(&d, 11, 3, "missing the required key 'incumbent'", NULL);
    co_diags_free(&d);
}

static void test_inline_secrets_refused(void **state)
{
    (void)state;
    const char *text =
        "store: postgres://cutover:hunter2@db.local/cutover\n"         /* 1 */
        "admin: {token: abc}\n"                                      /* 2 */
        "providers:\n"
        "  oa: {kind: openai, api_key: sk-live-123}\n"               /* 4 */
        "  an: {kind: anthropic, api_key_env: sk-ant-0123456789}\n"  /* 5 */
        "models: {m: {provider: oa}}\n"
        "workloads:\n"
        "  w: {incumbent: m, match: {api_keys: [k1]}}\n";            /* 8 */
    co_diags d = load_bad(text);
    expect_diag(&d, 1, 8, "store URL contains a password", "PGPASSWORD");
    expect_diag(&d, 2, 9, "'admin.token' is not allowed", "token_env");
    expect_diag(&d, 4, 22, "'providers.oa.api_key' is not allowed", "api_key_env");
    expect_diag(&d, 5, 3, "names an environment variable", NULL);
    expect_diag(&d, 8, 29, "api_keys' is not allowed", "api_keys_env");
    /* the secret itself is never echoed back */
    for (size_t i = 0; i < d.n; i++) {
        assert_null(strstr(d.v[i].msg, "hunter2"));
        assert_null(strstr(d.v[i].msg, "sk-live-123"));
        assert_null(strstr(d.v[i].msg, "0123456789"));
    }
    co_diags_free(&d);
}

static void test_rollout_and_contract_errors(void **state)
{
    (void)state;
    char text[4096];
    snprintf(text, sizeof text,
             "%s"
             "    contract: {regex: '(unclosed'}\n"          /* 13 */
             "rollout:\n"
             "  stages:\n"
             "    - {percent: 10, hold: 1h}\n"              /* 16 */
             "    - {percent: 5, hold: 1x}\n"               /* 17 */
             "    - {mode: shadow}\n",                      /* 18 */
             MINIMAL);
    co_diags d = load_bad(text);
    expect_diag(&d, 17, 26, "unknown unit", NULL);
    expect_diag(&d, 17, 8, "stage percents must rise", "5% follows 10%");
    expect_diag(&d, 18, 8, "shadow stage must come before", NULL);
    expect_diag(&d, 13, 24, "contract regex '(unclosed' does not compile", NULL);
    co_diags_free(&d);
}

static void test_yaml_syntax_errors(void **state)
{
    (void)state;
    co_diags d = load_bad("providers: {a: 1\nmodels: }\n");
    assert_non_null(strstr(d.v[0].msg, "YAML syntax error"));
    assert_int_equal(d.v[0].line, 2);
    co_diags_free(&d);
    d = load_bad("listen: a\nlisten: b\n");
    expect_diag(&d, 2, 1, "duplicate key", NULL);
    co_diags_free(&d);
    d = load_bad("- just\n- a list\n");
    expect_diag(&d, 1, 3, "must be a mapping", "a sequence");
    co_diags_free(&d);
    /* an empty file: the three required sections are named */
    d = load_bad("# nothing\n");
    assert_int_equal(d.n, 3);
    co_diags_free(&d);
}

static void test_missing_file(void **state)
{
    (void)state;
    co_diags d = {0};
    co_config *cfg = NULL;
    assert_int_equal(co_config_load(&cfg, "/nonexistent/cutover.yaml", &d), CO_ENOENT);
    assert_int_equal(d.n, 1);
    assert_non_null(strstr(d.v[0].msg, "No such file"));
    co_diags_free(&d);
}

static void test_api_key_sources(void **state)
{
    (void)state;
    co_provider_conf p = {.name = "oa", .api_key_env = "CO_TEST_KEY_VAR"};
    char *key = NULL;
    unsetenv("CO_TEST_KEY_VAR");
    assert_int_equal(co_provider_api_key(&p, &key), CO_ENOENT);
    assert_non_null(strstr(co_error_last(), "CO_TEST_KEY_VAR is not set"));
    setenv("CO_TEST_KEY_VAR", "sk-test", 1);
    assert_int_equal(co_provider_api_key(&p, &key), 0);
    assert_string_equal(key, "sk-test");
    free(key);
    char path[] = "/tmp/co_keyXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "sk-file\n", 8), 8);
    close(fd);
    co_provider_conf f = {.name = "an", .api_key_file = path};
    assert_int_equal(co_provider_api_key(&f, &key), 0);
    assert_string_equal(key, "sk-file"); /* newline stripped */
    free(key);
    unlink(path);
    assert_int_equal(co_provider_api_key(&f, &key), CO_ENOENT);
}

static void test_init_template_renders_and_loads(void **state)
{
    (void)state;
    size_t len;
    const char *tmpl = co_data_get("init/cutover.yaml", &len);
    assert_non_null(tmpl);
    co_buf out;
    co_buf_init(&out, 1 << 20);
    assert_int_equal(co_conf_render_template(co_config_schema(), tmpl, &out), 0);
    assert_null(strstr(out.p, "{{help:"));
    /* comments come from the table's help text */
    assert_non_null(strstr(out.p, "# wire protocol the provider speaks"));
    assert_non_null(strstr(out.p, "default: 30d"));
    co_diags d = {0};
    co_config *cfg = NULL;
    int rc = co_config_load_string(&cfg, out.p, "init.yaml", &d);
    co_diags_print(&d, stderr);
    assert_int_equal(rc, 0);
    assert_int_equal(cfg->workloads.n, 2);
    assert_int_equal(co_config_workload(cfg, "support")->mode, CO_MODE_SHADOW);
    co_config_free(cfg);
    co_buf_free(&out);
    co_buf_init(&out, 1 << 20);
    assert_int_equal(co_conf_render_template(co_config_schema(), "# {{help:no.such.key}}\n", &out), CO_EINVAL);
    co_buf_free(&out);
}

static void test_reference_docs_match_table(void **state)
{
    (void)state;
    co_buf md;
    co_buf_init(&md, 1 << 20);
    assert_int_equal(co_conf_markdown(co_config_schema(), "cutover.yaml reference", &md), 0);
    assert_non_null(strstr(md.p, "| `api_key_env` |"));
    assert_non_null(strstr(md.p, "### `workloads.NAME.gate`"));
    assert_null(strstr(md.p, "| `api_key` |")); /* forbidden keys are not documented as keys */
    const char *src = getenv("CO_SRC_DIR");
    if (src) {
        char path[4096], *doc = NULL;
        snprintf(path, sizeof path, "%s/docs/config.md", src);
        assert_int_equal(co_read_file(path, 1 << 20, &doc, NULL), 0);
        if (strcmp(doc, md.p) != 0)
            fail_msg("docs/config.md is out of date: run `make docs`");
        free(doc);
    }
    co_buf_free(&md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_valid),
        cmocka_unit_test(test_workload_overrides),
        cmocka_unit_test(test_unknown_key_suggests),
        cmocka_unit_test(test_type_and_bounds_errors),
        cmocka_unit_test(test_enum_and_reference_errors),
        cmocka_unit_test(test_inline_secrets_refused),
        cmocka_unit_test(test_rollout_and_contract_errors),
        cmocka_unit_test(test_yaml_syntax_errors),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_api_key_sources),
        cmocka_unit_test(test_init_template_renders_and_loads),
        cmocka_unit_test(test_reference_docs_match_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
