/* CLI dispatch: the command table, help, version, "did you mean" for unknown
 * commands and options, exit codes, and init + check end to end in a temp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cutover/store.h"
#include "cutover/util.h"

typedef struct run_result {
    int rc;
    char *out, *err;
} run_result;

/* Runs `cutover ARGS...` in-process with captured stdout/stderr. */
static run_result run(const char *first, ...)
{
    char *argv[32] = {"cutover"};
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    run_result r = {0};
    size_t on = 0, en = 0;
    FILE *out = open_memstream(&r.out, &on), *err = open_memstream(&r.err, &en);
    r.rc = co_cli_main(argc, argv, out, err);
    fclose(out);
    fclose(err);
    return r;
}

static void done(run_result *r)
{
    free(r->out);
    free(r->err);
}

static void test_help_lists_every_command(void **state)
{
    (void)state;
    run_result r = run("--help", NULL);
    assert_int_equal(r.rc, CO_EXIT_OK);
    for (const co_cli_cmd *const *c = co_cli_commands; *c; c++) {
        assert_non_null(strstr(r.out, (*c)->name));
        assert_non_null(strstr(r.out, (*c)->summary));
    }
    done(&r);
    r = run(NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE); /* no command: help on stderr, usage error */
    assert_non_null(strstr(r.err, "commands:"));
    done(&r);
}

static void test_version(void **state)
{
    (void)state;
    run_result r = run("--version", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "cutover " CO_VERSION "\n");
    done(&r);
}

static void test_unknown_command_suggests(void **state)
{
    (void)state;
    run_result r = run("chek", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "unknown command 'chek'; did you mean 'check'?"));
    done(&r);
    r = run("frobnicate", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "'cutover --help' lists the commands"));
    done(&r);
    r = run("help", "inti", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "did you mean 'init'?"));
    done(&r);
}

static void test_unknown_option_suggests(void **state)
{
    (void)state;
    run_result r = run("check", "--confg", "x.yaml", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "unknown option '--confg'; did you mean '--config'?"));
    done(&r);
    r = run("check", "-z", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "unknown option '-z'"));
    done(&r);
    r = run("check", "-c", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "--config needs a value"));
    done(&r);
    r = run("check", "extra", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "too many arguments"));
    done(&r);
    r = run("init", "--sim-port", "99999", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "--sim-port must be a whole number from 1 to 65535"));
    done(&r);
}

static void test_command_help(void **state)
{
    (void)state;
    run_result a = run("help", "check", NULL), b = run("check", "--help", NULL);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    assert_string_equal(a.out, b.out);
    assert_non_null(strstr(a.out, "usage: cutover check [-c FILE]"));
    assert_non_null(strstr(a.out, "-c, --config FILE"));
    done(&a);
    done(&b);
}

static void test_init_then_check(void **state)
{
    (void)state;
    char dir[] = "/tmp/co_cliXXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[256], cfg[300];
    snprintf(sub, sizeof sub, "%s/demo", dir);
    snprintf(cfg, sizeof cfg, "%s/cutover.yaml", sub);

    run_result r = run("init", sub, "--sim-port", "9911", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "wrote"));
    done(&r);
    char *text = NULL;
    assert_int_equal(co_read_file(cfg, 1 << 20, &text, NULL), 0);
    assert_non_null(strstr(text, "http://127.0.0.1:9911/v1"));
    free(text);

    r = run("init", sub, NULL); /* refuses to overwrite */
    assert_int_equal(r.rc, CO_EXIT_FAIL);
    assert_non_null(strstr(r.err, "already exists (use --force to overwrite)"));
    done(&r);

    r = run("check", "-c", cfg, NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "ok"));
    assert_non_null(strstr(r.out, "support"));
    assert_non_null(strstr(r.out, "gpt-4o -> claude-sonnet-4, mode shadow"));
    done(&r);

    /* a typo: the error names file, line and column; exit 1 */
    FILE *f = fopen(cfg, "a");
    assert_non_null(f);
    fputs("workerz: 4\n", f);
    fclose(f);
    r = run("check", "--config", cfg, NULL);
    assert_int_equal(r.rc, CO_EXIT_FAIL);
    char want[400];
    snprintf(want, sizeof want, "%s:", cfg);
    assert_non_null(strstr(r.err, want));
    assert_non_null(strstr(r.err, ":1: unknown key 'workerz' at the top level; did you mean 'workers'?"));
    done(&r);

    r = run("check", "-c", "/nonexistent/c.yaml", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    done(&r);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_config_reference(void **state)
{
    (void)state;
    run_result r = run("config", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "| `listen` |"));
    done(&r);
}


static void test_mode_rollback_status_without_gateway(void **state)
{
    (void)state;
    char dir[] = "/tmp/co_cli2XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cfg[300], text[1024];
    snprintf(cfg, sizeof cfg, "%s/c.yaml", dir);
    snprintf(text, sizeof text,
             "store: sqlite:%s/s.db\n"
             "providers: {oa: {kind: openai}}\n"
             "models: {a: {provider: oa}, b: {provider: oa}}\n"
             "workloads: {w: {incumbent: a, candidate: b, mode: shadow}}\n",
             dir);
    assert_int_equal(co_write_file(cfg, text, strlen(text), 1), 0);
    /* port 1 is closed: no gateway answers, the change goes to the store */
    run_result r = run("mode", "w", "canary", "25", "-c", cfg, "--gateway", "http://127.0.0.1:1", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.err, "no gateway answered"));
    assert_non_null(strstr(r.out, "w: now canary 25%"));
    done(&r);
    r = run("status", "-c", cfg, NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "canary 25%"));
    done(&r);
    r = run("rollback", "w", "-c", cfg, "--gateway", "http://127.0.0.1:1", "--reason", "errors", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "w: rolled back to incumbent"));
    done(&r);
    r = run("status", "-c", cfg, NULL);
    assert_non_null(strstr(r.out, "w                incumbent"));
    done(&r);
    r = run("mode", "w", "canary", "-c", cfg, NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "canary needs a percent"));
    done(&r);
    r = run("rollback", "nope", "-c", cfg, "--gateway", "http://127.0.0.1:1", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "no workload 'nope' (workloads: w)"));
    done(&r);
    /* a recorded served/shadow pair is shown side by side */
    co_store *st = NULL;
    char url[300];
    snprintf(url, sizeof url, "sqlite:%s/s.db", dir);
    assert_int_equal(co_store_open(&st, url), 0);
    co_exchange xs[2] = {
        {.request_id = "r1", .pair_id = "p1", .ts_ms = co_now_ms(), .workload = "w", .arm = "incumbent",
         .role = "served", .model = "a", .api = "openai", .status = 200, .latency_ms = 120, .ttft_ms = -1,
         .output_text = "served answer"},
        {.request_id = "r1", .pair_id = "p1", .ts_ms = co_now_ms(), .workload = "w", .arm = "candidate",
         .role = "shadow", .model = "b", .api = "openai", .status = 500, .error_class = "5xx", .latency_ms = 80,
         .ttft_ms = -1, .output_text = "candidate answer"},
    };
    assert_int_equal(co_store_record(st, xs, 2), 0);
    co_store_close(st);
    r = run("pairs", "w", "-c", cfg, NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "pair p1"));
    assert_non_null(strstr(r.out, "\"served answer\""));
    assert_non_null(strstr(r.out, "shadow   candidate b"));
    assert_non_null(strstr(r.out, "error: 5xx"));
    done(&r);
    r = run("status", "-c", cfg, NULL);
    assert_non_null(strstr(r.out, "|        1    0.0%    120ms |        1  100.0%     80ms"));
    done(&r);
    r = run("pairs", "nope", "-c", cfg, NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    done(&r);
    r = run("status", "-c", cfg, "--window", "soon", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    done(&r);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_lists_every_command),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_unknown_command_suggests),
        cmocka_unit_test(test_unknown_option_suggests),
        cmocka_unit_test(test_command_help),
        cmocka_unit_test(test_init_then_check),
        cmocka_unit_test(test_config_reference),
        cmocka_unit_test(test_mode_rollback_status_without_gateway),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
