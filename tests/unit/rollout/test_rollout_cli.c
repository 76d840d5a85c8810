/* `cutover rollout` in-process (co_cli_main with captured output) on a
 * temporary config and store: unknown actions and missing workloads are
 * usage errors with a suggestion; start, status (text and JSON), pause,
 * resume, a refused promote, abort and a refused finalize give the exit
 * codes and messages a person relies on; `run --once` takes the lease. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "co_test.h"
#include "cutover/store.h"

typedef struct run_result {
    int rc;
    char *out, *err;
} run_result;

static char *cfg_path;

static run_result run(const char *first, ...)
{
    char *argv[32] = {"cutover"};
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 29; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc++] = "-c";
    argv[argc++] = cfg_path;
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

static int setup(void **state)
{
    (void)state;
    char *dir = co_test_tmpdir();
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "store: sqlite:%s/c.db\n"
             "providers: {oa: {kind: openai, base_url: 'http://127.0.0.1:9/v1'}}\n"
             "models: {inc: {provider: oa}, cand: {provider: oa}}\n"
             "workloads:\n"
             "  chat: {incumbent: inc, candidate: cand}\n"
             "  solo: {incumbent: inc}\n"
             "rollout:\n"
             "  stages: [{mode: shadow, hold: 1h}, {percent: 10, hold: 1h}, {percent: 100}]\n"
             "  retain_incumbent: 7d\n",
             dir);
    cfg_path = co_test_write(dir, "cutover.yaml", cfg);
    free(dir);
    return cfg_path ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(cfg_path);
    return 0;
}

static void test_usage_errors(void **state)
{
    (void)state;
    run_result r = run("rollout", "strat", "chat", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "did you mean 'start'"));
    done(&r);
    r = run("rollout", "pause", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "which workload"));
    done(&r);
    r = run("rollout", "start", "nope", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "workloads: chat, solo"));
    done(&r);
    r = run("rollout", "start", "solo", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "no candidate"));
    done(&r);
    r = run("rollout", "run", "--time-scale", "0", NULL);
    assert_int_equal(r.rc, CO_EXIT_USAGE);
    assert_non_null(strstr(r.err, "--time-scale"));
    done(&r);
}

static void test_lifecycle(void **state)
{
    (void)state;
    run_result r = run("rollout", "status", "chat", NULL);
    assert_int_equal(r.rc, CO_EXIT_OK);
    assert_non_null(strstr(r.out, "no rollout"));
    done(&r);

    r = run("rollout", "start", "chat", "--reason", "cheaper model", NULL);
    assert_int_equal(r.rc, CO_EXIT_OK);
    assert_non_null(strstr(r.out, "chat: shadow"));
    done(&r);
    r = run("rollout", "start", "chat", NULL);
    assert_int_equal(r.rc, CO_EXIT_FAIL);
    assert_non_null(strstr(r.err, "already has a rollout"));
    done(&r);

    r = run("rollout", "status", "chat", NULL);
    assert_int_equal(r.rc, CO_EXIT_OK);
    assert_non_null(strstr(r.out, "[shadow <]"));
    assert_non_null(strstr(r.out, "hold       1h: 1h0m left"));
    assert_non_null(strstr(r.out, "none has watched it yet"));
    assert_non_null(strstr(r.out, "error_rate"));
    assert_non_null(strstr(r.out, "cheaper model")); /* the start event */
    done(&r);

    r = run("rollout", "promote", "chat", NULL);
    assert_int_equal(r.rc, CO_EXIT_FAIL);
    assert_non_null(strstr(r.err, "1h0m of the hold left"));
    done(&r);

    r = run("rollout", "pause", "chat", NULL);
    assert_int_equal(r.rc, CO_EXIT_OK);
    assert_non_null(strstr(r.out, "paused at shadow"));
    done(&r);
    r = run("rollout", "resume", "chat", NULL);
    assert_int_equal(r.rc, CO_EXIT_OK);
    done(&r);

    r = run("rollout", "promote", "chat", "--force", NULL);
    assert_int_equal(r.rc, CO_EXIT_OK);
    assert_non_null(strstr(r.out, "canary 10%"));
    done(&r);

    r = run("rollout", "status", "--json", NULL);
    assert_int_equal(r.rc, CO_EXIT_OK);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_true(json_is_array(j));
    assert_int_equal(json_array_size(j), 1); /* solo has no candidate */
    json_t *s = json_array_get(j, 0);
    assert_string_equal(json_string_value(json_object_get(s, "state")), "canary");
    assert_true(json_number_value(json_object_get(s, "percent")) == 10);
    assert_non_null(json_object_get(json_object_get(s, "analysis"), "triggers"));
    json_decref(j);
    done(&r);

    r = run("rollout", "finalize", "chat", NULL);
    assert_int_equal(r.rc, CO_EXIT_FAIL);
    assert_non_null(strstr(r.err, "only a promoted rollout"));
    done(&r);

    /* run --once: the lease is free, so this pass acts */
    r = run("rollout", "run", "--once", NULL);
    assert_int_equal(r.rc, CO_EXIT_OK);
    assert_non_null(strstr(r.out, "held the lease"));
    done(&r);

    r = run("rollout", "abort", "chat", "--reason", "pager went off", NULL);
    assert_int_equal(r.rc, CO_EXIT_OK);
    assert_non_null(strstr(r.out, "rolled back to inc"));
    done(&r);
    r = run("rollout", "status", "chat", NULL);
    assert_non_null(strstr(r.out, "ROLLED BACK"));
    assert_non_null(strstr(r.out, "serving    inc"));
    done(&r);
    r = run("report", "incident", "latest", NULL);
    assert_int_equal(r.rc, CO_EXIT_OK);
    assert_non_null(strstr(r.out, "pager went off"));
    done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_lifecycle),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
