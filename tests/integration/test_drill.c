/* `cutover rollback --drill` against two real `cutover serve` processes
 * sharing one SQLite store: the drill flips the workload to the incumbent
 * and back, sees both gateways apply each flip (from their heartbeats),
 * prints the times, and records the drill (rollout event + plan evidence);
 * both gateways serve the restored mode afterwards. With one gateway killed
 * (-9, so its last heartbeat still looks live) the drill fails and names it;
 * with every gateway stopped it refuses to prove anything. No wall-clock
 * figure is asserted, only that times are printed. */
#include "cli/cli.h"
#include "cutover/util.h"
#include "test_gateway_fixture.h"

static const char *SCENARIO = "seed: 3\n"
                              "api_key: sk-provider\n"
                              "models:\n"
                              "  gpt-4o: {provider: openai, template: \"Answer from {{model}}: {{last_user}}\"}\n"
                              "  claude-sonnet-4: {provider: anthropic, template: \"Claude: {{last_user}}\"}\n";

static const char *CONFIG = "listen: 127.0.0.1:0\n"
                            "workers: 2\n"
                            "store: sqlite:{DB}\n"
                            "log_level: warn\n"
                            "recorder: {flush_interval: 20ms}\n"
                            "providers:\n"
                            "  oa: {kind: openai, base_url: \"{SIM}/v1\", api_key_env: OA_KEY}\n"
                            "  an: {kind: anthropic, base_url: \"{SIM}\", api_key_env: AN_KEY}\n"
                            "models:\n"
                            "  gpt-4o: {provider: oa}\n"
                            "  claude: {provider: an, upstream: claude-sonnet-4}\n"
                            "workloads:\n"
                            "  chat: {incumbent: gpt-4o, candidate: claude, mode: canary, percent: 10}\n";

typedef struct dfix {
    gwf *f;
    co_test_proc gw2;
    int gw2_on;
    char base2[64];
} dfix;

/* the gateways whose heartbeat is at most 3 s old */
static size_t live(gwf *f, co_gateway_beat **out)
{
    co_store *st = gwf_store(f);
    assert_non_null(st);
    co_gateway_beat *b = NULL;
    size_t n = 0;
    assert_int_equal(co_store_gateways(st, co_now_ms() - 3000, &b, &n), 0);
    co_store_close(st);
    if (out)
        *out = b;
    else
        co_gateway_beats_free(b, n);
    return n;
}

static int setup(void **state)
{
    dfix *d = calloc(1, sizeof *d);
    *state = d;
    d->f = gwf_new();
    if (!d->f)
        return 0;
    gwf *f = d->f;
    if (gwf_sim_start(f, SCENARIO) || gwf_config(f, CONFIG) || gwf_gw_start(f, NULL, NULL))
        return -1;
    char *argv[] = {(char *)co_test_bin(), "serve", "-c", f->cfg_path, "--listen", "127.0.0.1:0", NULL};
    char *env[] = {"OA_KEY=sk-provider", "AN_KEY=sk-provider", NULL};
    if (co_test_spawn(&d->gw2, argv, env, 20000))
        return -1;
    d->gw2_on = 1;
    snprintf(d->base2, sizeof d->base2, "http://127.0.0.1:%d", d->gw2.port);
    /* both report in (their first beat is at start) */
    for (int i = 0; i < 500 && live(f, NULL) < 2; i++)
        usleep(10000);
    return live(f, NULL) == 2 ? 0 : -1;
}

static int teardown(void **state)
{
    dfix *d = *state;
    if (d->gw2_on)
        co_test_stop(&d->gw2);
    gwf_free(d->f);
    free(d);
    return 0;
}

typedef struct run_result {
    int rc;
    char *out, *err;
} run_result;

static run_result drill(gwf *f, const char *timeout)
{
    char *argv[] = {"cutover", "rollback", "--drill", "chat", "-c", f->cfg_path, "--timeout", (char *)timeout, NULL};
    run_result r = {0};
    size_t on = 0, en = 0;
    FILE *out = open_memstream(&r.out, &on), *err = open_memstream(&r.err, &en);
    r.rc = co_cli_main(8, argv, out, err);
    fclose(out);
    fclose(err);
    fprintf(stderr, "drill (exit %d):\n%s%s", r.rc, r.out, r.err);
    return r;
}

static void run_free(run_result *r)
{
    free(r->out);
    free(r->err);
}

/* the last rollout event of chat */
static co_rollout_event *last_event(co_store *st, co_rollout_event_list *l)
{
    assert_int_equal(co_store_rollout_events(st, "chat", 0, l), 0);
    assert_true(l->n > 0);
    return &l->v[l->n - 1];
}

static void assert_serves(const char *base, const char *mode, double percent)
{
    char url[128];
    snprintf(url, sizeof url, "%s/admin/workloads", base);
    co_test_http h;
    co_test_http_do(&h, "GET", url, NULL, NULL, 0);
    assert_int_equal(h.status, 200);
    json_t *j = gwf_json(&h);
    json_t *w = json_array_get(j, 0);
    assert_string_equal(json_string_value(json_object_get(w, "mode")), mode);
    assert_true(json_number_value(json_object_get(w, "percent")) == percent);
    json_decref(j);
    co_test_http_free(&h);
}

static void test_drill_passes_on_two_gateways(void **state)
{
    dfix *d = *state;
    if (!d->f)
        skip();
    gwf *f = d->f;
    run_result r = drill(f, "5s");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "chat: rollback served by 2/2 gateways in "));
    assert_non_null(strstr(r.out, "; restored (canary 10%) on 2/2 in "));
    assert_non_null(strstr(r.out, " ms\n"));
    assert_null(strstr(r.out, "NOT APPLIED"));
    run_free(&r);

    co_store *st = gwf_store(f);
    assert_non_null(st);
    /* the log: to the incumbent, back, and the drill with its figures */
    co_rollout_event_list l = {0};
    co_rollout_event *e = last_event(st, &l);
    assert_true(l.n >= 3);
    assert_string_equal(e->kind, "drill");
    assert_string_equal(e->actor, "drill");
    json_t *m = json_loads(e->metrics_json, 0, NULL);
    assert_non_null(m);
    assert_true(json_is_true(json_object_get(m, "ok")));
    assert_int_equal(json_integer_value(json_object_get(m, "gateways")), 2);
    assert_int_equal(json_integer_value(json_object_get(m, "rollback_served")), 2);
    assert_int_equal(json_integer_value(json_object_get(m, "restore_served")), 2);
    assert_true(json_is_number(json_object_get(m, "rollback_ms")));
    assert_true(json_is_number(json_object_get(m, "restore_ms")));
    assert_int_equal(json_array_size(json_object_get(m, "per_gateway")), 2);
    json_decref(m);
    const co_rollout_event *to = &l.v[l.n - 3], *back = &l.v[l.n - 2];
    assert_string_equal(to->actor, "drill");
    assert_string_equal(to->to_state, "incumbent");
    assert_string_equal(back->actor, "drill");
    assert_string_equal(back->to_state, "canary 10%");
    co_rollout_event_list_free(&l);
    /* plan evidence */
    co_evidence *ev = NULL;
    size_t nev = 0;
    assert_int_equal(co_store_evidence(st, "rollback.drilled", &ev, &nev), 0);
    assert_int_equal(nev, 1);
    assert_string_equal(ev[0].workload, "chat");
    co_evidence_free(ev, nev);
    /* the stored mode is the one before the drill, and every gateway serves it */
    co_workload_state ws = {0};
    assert_int_equal(co_store_workload_state_get(st, "chat", &ws), 0);
    assert_string_equal(ws.mode, "canary");
    assert_true(ws.percent == 10);
    co_gateway_beat *b = NULL;
    size_t nb = 0;
    assert_int_equal(co_store_gateways(st, co_now_ms() - 3000, &b, &nb), 0);
    assert_int_equal(nb, 2);
    for (size_t i = 0; i < nb; i++)
        assert_true(b[i].applied_version >= ws.version);
    co_gateway_beats_free(b, nb);
    co_workload_state_clear(&ws);
    co_store_close(st);
    assert_serves(f->base, "canary", 10);
    assert_serves(d->base2, "canary", 10);

    /* /readyz says which version each serves */
    co_test_http h;
    co_test_http_do(&h, "GET", gwf_url(f, "/readyz"), NULL, NULL, 0);
    assert_int_equal(h.status, 200);
    json_t *j = gwf_json(&h);
    assert_true(json_integer_value(json_object_get(j, "workload_state_version")) >= 2);
    json_decref(j);
    co_test_http_free(&h);
}

static void test_drill_fails_with_a_dead_gateway(void **state)
{
    dfix *d = *state;
    if (!d->f)
        skip();
    gwf *f = d->f;
    char id2[128];
    snprintf(id2, sizeof id2, ":%d:", (int)d->gw2.pid);
    /* kill -9: no clean stop, its last heartbeat stays in the live window */
    kill(d->gw2.pid, SIGKILL);
    co_test_stop(&d->gw2);
    d->gw2_on = 0;
    run_result r = drill(f, "1s");
    assert_int_equal(r.rc, 1);
    /* the dead one is named, the live one served */
    assert_non_null(strstr(r.out, "rollback served by 1/2 gateways"));
    assert_non_null(strstr(r.out, "NOT APPLIED"));
    assert_non_null(strstr(r.err, "did not apply the rollback"));
    assert_non_null(strstr(r.err, id2));
    assert_non_null(strstr(r.err, "within 1s"));
    run_free(&r);
    co_store *st = gwf_store(f);
    co_rollout_event_list l = {0};
    co_rollout_event *e = last_event(st, &l);
    assert_string_equal(e->kind, "drill");
    assert_non_null(strstr(e->reason, "FAILED"));
    assert_non_null(strstr(e->metrics_json, "\"ok\":false"));
    co_rollout_event_list_free(&l);
    /* no evidence from a failed drill */
    co_evidence *ev = NULL;
    size_t nev = 0;
    assert_int_equal(co_store_evidence(st, "rollback.drilled", &ev, &nev), 0);
    assert_int_equal(nev, 0);
    co_evidence_free(ev, nev);
    /* the surviving gateway was restored anyway */
    co_workload_state ws = {0};
    assert_int_equal(co_store_workload_state_get(st, "chat", &ws), 0);
    assert_string_equal(ws.mode, "canary");
    co_workload_state_clear(&ws);
    co_store_close(st);
    assert_serves(f->base, "canary", 10);

    /* the other one stops cleanly (it leaves the fleet at once); once the
     * dead one's last beat is out of the live window, nothing is left to
     * drill against */
    assert_int_equal(gwf_gw_stop(f), 0);
    for (int i = 0; i < 1000 && live(f, NULL) > 0; i++)
        usleep(10000);
    assert_int_equal(live(f, NULL), 0);
    r = drill(f, "1s");
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "no gateway has reported"));
    assert_non_null(strstr(r.err, "proves nothing"));
    run_free(&r);
}

static void test_drill_usage(void **state)
{
    dfix *d = *state;
    if (!d->f)
        skip();
    char *argv[] = {"cutover", "rollback", "--drill", "nope", "-c", d->f->cfg_path, NULL};
    char *out = NULL, *err = NULL;
    size_t on = 0, en = 0;
    FILE *o = open_memstream(&out, &on), *e = open_memstream(&err, &en);
    int rc = co_cli_main(6, argv, o, e);
    fclose(o);
    fclose(e);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "no workload 'nope'"));
    free(out);
    free(err);
    char *argv2[] = {"cutover", "rollback", "chat", "--timeout", "1s", "-c", d->f->cfg_path, NULL};
    o = open_memstream(&out, &on);
    e = open_memstream(&err, &en);
    rc = co_cli_main(7, argv2, o, e);
    fclose(o);
    fclose(e);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "--timeout goes with --drill"));
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_drill_passes_on_two_gateways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drill_fails_with_a_dead_gateway, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drill_usage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
