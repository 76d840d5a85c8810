/* Stored, audited mode changes: validation against the config, the state
 * every gateway polls, and the event log. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/control.h"

static const char *const CFG =
    "providers: {oa: {kind: openai}}\n"
    "models: {a: {provider: oa}, b: {provider: oa}}\n"
    "workloads:\n"
    "  w: {incumbent: a, candidate: b, mode: shadow}\n"
    "  solo: {incumbent: a}\n";

typedef struct fixture {
    co_config *cfg;
    co_store *st;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    co_diags d = {0};
    assert_int_equal(co_config_load_string(&f->cfg, CFG, "t.yaml", &d), 0);
    assert_int_equal(co_store_open(&f->st, "sqlite::memory:"), 0);
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

static void test_parse_mode(void **state)
{
    (void)state;
    int m;
    double p;
    assert_int_equal(co_control_parse_mode("canary", "10", &m, &p), 0);
    assert_int_equal(m, CO_MODE_CANARY);
    assert_true(p == 10.0);
    assert_int_equal(co_control_parse_mode("canary", "2.5%", &m, &p), 0);
    assert_true(p == 2.5);
    assert_int_equal(co_control_parse_mode("shadow", NULL, &m, &p), 0);
    assert_int_equal(m, CO_MODE_SHADOW);
    assert_int_equal(co_control_parse_mode("canary", NULL, &m, &p), CO_EINVAL);
    assert_int_equal(co_control_parse_mode("canary", "0", &m, &p), CO_EINVAL);
    assert_int_equal(co_control_parse_mode("canary", "101", &m, &p), CO_EINVAL);
    assert_int_equal(co_control_parse_mode("shadow", "5", &m, &p), CO_EINVAL);
    assert_int_equal(co_control_parse_mode("shadw", NULL, &m, &p), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "did you mean 'shadow'"));
}

static void test_current_defaults_to_config(void **state)
{
    fixture *f = *state;
    int m;
    double p;
    int64_t v;
    assert_int_equal(co_control_current(f->st, co_config_workload(f->cfg, "w"), &m, &p, &v), 0);
    assert_int_equal(m, CO_MODE_SHADOW);
    assert_int_equal(v, 0);
}

static void test_set_mode_and_rollback_are_logged(void **state)
{
    fixture *f = *state;
    int64_t v1 = 0, v2 = 0;
    co_mode_change ch = {.workload = "w", .mode = CO_MODE_CANARY, .percent = 10, .actor = "user:t", .reason = "go"};
    assert_int_equal(co_control_set_mode(f->st, f->cfg, &ch, &v1), 0);
    co_mode_change rb = {.workload = "w", .mode = CO_MODE_INCUMBENT, .actor = "user:t", .reason = "p95", .rollback = 1};
    assert_int_equal(co_control_set_mode(f->st, f->cfg, &rb, &v2), 0);
    assert_true(v2 > v1 && v1 > 0);
    int m;
    double p;
    int64_t v;
    assert_int_equal(co_control_current(f->st, co_config_workload(f->cfg, "w"), &m, &p, &v), 0);
    assert_int_equal(m, CO_MODE_INCUMBENT);
    assert_int_equal(v, v2);
    co_rollout_event_list l = {0};
    assert_int_equal(co_store_rollout_events(f->st, "w", 0, &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0].kind, "mode");
    assert_string_equal(l.v[0].from_state, "shadow");
    assert_string_equal(l.v[0].to_state, "canary 10%");
    assert_string_equal(l.v[1].kind, "rollback");
    assert_string_equal(l.v[1].from_state, "canary 10%");
    assert_string_equal(l.v[1].reason, "p95");
    assert_string_equal(l.v[1].actor, "user:t");
    co_rollout_event_list_free(&l);
}

static void test_refused_changes_store_nothing(void **state)
{
    fixture *f = *state;
    co_mode_change bad[] = {
        {.workload = "nope", .mode = CO_MODE_SHADOW},
        {.workload = "solo", .mode = CO_MODE_SHADOW},            /* no candidate */
        {.workload = "w", .mode = CO_MODE_CANARY, .percent = 0},
        {.workload = "w", .mode = CO_MODE_SHADOW, .rollback = 1},
    };
    int want[] = {CO_ENOENT, CO_EINVAL, CO_EINVAL, CO_EINVAL};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(co_control_set_mode(f->st, f->cfg, &bad[i], NULL), want[i]);
    co_control_set_mode(f->st, f->cfg, &bad[0], NULL);
    assert_non_null(strstr(co_error_last(), "workloads: w, solo"));
    co_workload_state *v = NULL;
    size_t n = 0;
    assert_int_equal(co_store_workload_states(f->st, 0, &v, &n), 0);
    assert_int_equal(n, 0);
    co_workload_states_free(v, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_mode),
        cmocka_unit_test_setup_teardown(test_current_defaults_to_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_mode_and_rollback_are_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_changes_store_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
