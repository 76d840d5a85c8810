/* The rollout controller on a temporary SQLite store with an injected
 * clock (time scale 100: a 30 s interval is 300 ms of the fake clock) and
 * synthetic traffic written for each interval: noise within the thresholds
 * promotes through every stage and then the retention window refuses
 * finalize until it is over; a breach rolls back with an event, the metrics
 * and an incident; a tiny sample extends the hold and says what it needs; a
 * controller that dies mid-stage (its store handle closed without a drop)
 * is replaced at the standby's next tick by one that resumes with the hold
 * that was left; pause freezes the hold;
 * auto_promote off waits for a manual promote; a failing incumbent probe is
 * logged; a rollback by hand moves the rollout to rolled_back; two
 * controllers on one store never both act; on PostgreSQL, a holder whose
 * database session is ended stops acting and another takes over. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "co_test.h"
#include "pg_cluster.h"
#include "cutover/control.h"
#include "cutover/rollout.h"
#include "cutover/util.h"

#define STEP 300 /* fake ms per tick: one 30 s interval at time scale 100 */

#define CFG_TMPL \
    "store: \"%s\"\n" \
    "log_level: error\n" \
    "providers: {oa: {kind: openai}}\n" \
    "models:\n" \
    "  inc: {provider: oa, price_input: 2, price_output: 8}\n" \
    "  cand: {provider: oa, price_input: 2, price_output: 8}\n" \
    "workloads:\n" \
    "  w: {incumbent: inc, candidate: cand, contract: {format: json}}\n" \
    "  m:\n" \
    "    incumbent: inc\n" \
    "    candidate: cand\n" \
    "    rollout:\n" \
    "      stages: [{percent: 10, hold: 2m}, {percent: 100}]\n" \
    "      auto_promote: false\n" \
    "      interval: 30s\n" \
    "      retain_incumbent: 2m\n" \
    "      triggers: {min_samples: 100}\n" \
    "rollout:\n" \
    "  stages: [{mode: shadow, hold: 2m}, {percent: 10, hold: 2m}, {percent: 50, hold: 2m}, {percent: 100}]\n" \
    "  interval: 30s\n" \
    "  retain_incumbent: 5m\n" \
    "  triggers: {min_samples: 100}\n"

/* CO_TEST_STORE=postgres runs every test on a throwaway PostgreSQL cluster
 * (a schema per test), as a fleet would share one store. */
static int g_pg, g_seq;
static co_pg_cluster g_cluster;
#define PG_DB "rollout"

typedef struct fx {
    char *dir;
    co_config *cfg;
    co_store *st;
    int64_t now;
    co_rng rng;
    int seq;
    int probes, probe_fail;
} fx;

static int64_t fake_now(void *ud) { return ((fx *)ud)->now; }

static int fake_probe(void *ud, const co_config *cfg, const co_workload_conf *w)
{
    (void)cfg, (void)w;
    fx *f = ud;
    f->probes++;
    return f->probe_fail ? co_error_set(CO_ENET, "connection refused (test)") : 0;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = co_test_tmpdir();
    char url[1024], cfg[4096];
    if (g_pg) {
        char schema[32], why[1024];
        snprintf(schema, sizeof schema, "r%d", ++g_seq);
        if (co_pg_cluster_createschema(&g_cluster, PG_DB, schema, why, sizeof why) != 0) {
            fprintf(stderr, "postgres: %s\n", why);
            return -1;
        }
        co_pg_cluster_url_schema(&g_cluster, PG_DB, schema, url, sizeof url);
    } else {
        snprintf(url, sizeof url, "sqlite:%s/c.db", f->dir);
    }
    snprintf(cfg, sizeof cfg, CFG_TMPL, url);
    co_diags d = {0};
    if (co_config_load_string(&f->cfg, cfg, "t.yaml", &d) < 0) {
        co_diags_print(&d, stderr);
        return -1;
    }
    assert_int_equal(co_store_open(&f->st, f->cfg->store), 0);
    f->now = co_now_ms();
    co_rng_seed(&f->rng, 11);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    co_store_close(f->st);
    co_config_free(f->cfg);
    co_test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static co_controller *ctl(fx *f, const char *holder)
{
    co_controller_opts o = {.clock = {.now_ms = fake_now, .ud = f, .scale = 100},
                            .holder = holder,
                            .probe = fake_probe,
                            .probe_ud = f};
    co_controller *c = NULL;
    assert_int_equal(co_controller_new(&c, f->cfg, &o), 0);
    return c;
}

static co_rollout_cmd cmd(fx *f, const char *workload)
{
    static co_rollout_clock clk;
    clk = (co_rollout_clock){.now_ms = fake_now, .ud = f, .scale = 100};
    return (co_rollout_cmd){.workload = workload, .actor = "user:test", .clock = &clk};
}

/* One interval of traffic for the workload's current stage, stamped inside
 * the next interval: n per arm, the candidate failing with probability err. */
static void traffic(fx *f, const char *workload, int n, double err)
{
    co_rollout_state r = {0};
    assert_int_equal(co_store_rollout_get(f->st, workload, &r), 0);
    const char *cand_role = !strcmp(r.state, "shadow") || (!strcmp(r.state, "paused") && r.stage == 0 &&
                                                             !strcmp(workload, "w"))
                                ? "shadow"
                                : "served";
    co_rollout_state_clear(&r);
    co_exchange *xs = calloc((size_t)n * 2, sizeof *xs);
    for (int i = 0; i < 2 * n; i++) {
        co_exchange *x = &xs[i];
        int cand = i >= n;
        snprintf(x->request_id, sizeof x->request_id, "q%d", f->seq++);
        x->ts_ms = f->now + (i % n) * (STEP - 1) / n;
        x->workload = workload;
        x->arm = cand ? "candidate" : "incumbent";
        x->role = cand ? cand_role : "served";
        x->model = cand ? "cand" : "inc";
        int failed = co_rng_unit(&f->rng) < (cand ? err : 0.01);
        x->status = failed ? 500 : 200;
        x->error_class = failed ? "5xx" : NULL;
        x->latency_ms = 400 * (0.7 + 0.6 * co_rng_unit(&f->rng));
        x->ttft_ms = -1;
        x->tokens_in = 100;
        x->tokens_out = failed ? 0 : 200;
        x->cost_usd = failed ? 0 : (100 * 2.0 + 200 * 8.0) / 1e6;
        x->output_text = failed ? NULL : "{\"ok\": true}";
    }
    assert_int_equal(co_store_record(f->st, xs, (size_t)n * 2), 0);
    free(xs);
}

static int tick(fx *f, co_controller *c)
{
    f->now += STEP;
    int held = 0;
    int rc = co_controller_tick(c, &held);
    if (rc < 0)
        fprintf(stderr, "tick: %s\n", co_error_last());
    assert_int_equal(rc, 0);
    return held;
}

static void get(fx *f, const char *workload, co_rollout_state *r)
{
    co_rollout_state_clear(r);
    assert_int_equal(co_store_rollout_get(f->st, workload, r), 0);
}

static size_t count_events(fx *f, const char *workload, const char *kind, co_rollout_event *last)
{
    co_rollout_event_list l = {0};
    assert_int_equal(co_store_rollout_events(f->st, workload, 0, &l), 0);
    size_t n = 0;
    for (size_t i = 0; i < l.n; i++)
        if (!strcmp(l.v[i].kind, kind)) {
            n++;
            if (last) {
                free(last->reason);
                free(last->from_state);
                free(last->to_state);
                free(last->actor);
                free(last->metrics_json);
                last->reason = l.v[i].reason ? strdup(l.v[i].reason) : NULL;
                last->from_state = l.v[i].from_state ? strdup(l.v[i].from_state) : NULL;
                last->to_state = l.v[i].to_state ? strdup(l.v[i].to_state) : NULL;
                last->actor = strdup(l.v[i].actor);
                last->metrics_json = l.v[i].metrics_json ? strdup(l.v[i].metrics_json) : NULL;
            }
        }
    co_rollout_event_list_free(&l);
    return n;
}

static void event_free(co_rollout_event *e)
{
    free(e->reason);
    free(e->from_state);
    free(e->to_state);
    free(e->actor);
    free(e->metrics_json);
    memset(e, 0, sizeof *e);
}

static void mode_is(fx *f, const char *workload, int want_mode, double want_pct)
{
    int m;
    double p;
    int64_t v;
    assert_int_equal(co_control_current(f->st, co_config_workload(f->cfg, workload), &m, &p, &v), 0);
    assert_int_equal(m, want_mode);
    if (m == CO_MODE_CANARY)
        assert_true(p == want_pct);
}

/* ------------------------------------------------------------------------------------- */

static void test_noise_promotes_through_every_stage(void **state)
{
    fx *f = *state;
    co_controller *c = ctl(f, "ctl-1");
    co_rollout_cmd k = cmd(f, "w");
    assert_int_equal(co_rollout_start(f->st, f->cfg, &k), 0);
    mode_is(f, "w", CO_MODE_SHADOW, 0);
    assert_int_equal(co_rollout_start(f->st, f->cfg, &k), CO_ESTATE); /* one at a time */
    co_rollout_state r = {0};
    int seen[4] = {0};
    int ticks = 0;
    for (; ticks < 80; ticks++) {
        traffic(f, "w", 150, 0.01);
        assert_true(tick(f, c));
        get(f, "w", &r);
        assert_string_not_equal(r.state, "rolled_back");
        if (r.stage < 4)
            seen[r.stage] = 1;
        if (!strcmp(r.state, "promoted"))
            break;
        if (r.stage == 1)
            mode_is(f, "w", CO_MODE_CANARY, 10);
        if (r.stage == 2)
            mode_is(f, "w", CO_MODE_CANARY, 50);
    }
    assert_string_equal(r.state, "promoted");
    assert_true(seen[0] && seen[1] && seen[2] && seen[3]);
    if (getenv("CO_TEST_VERBOSE"))
        fprintf(stderr, "promoted after %d ticks, %zu hold extensions\n", ticks, count_events(f, "w", "hold-extended", NULL));
    /* at least the three holds of 4 intervals each */
    assert_true(ticks >= 3 * 4 - 1);
    mode_is(f, "w", CO_MODE_CANDIDATE, 100);
    co_rollout_event e = {0};
    assert_int_equal(count_events(f, "w", "promote", &e), 3);
    assert_string_equal(e.to_state, "promoted");
    assert_string_equal(e.actor, "controller");
    assert_non_null(strstr(e.reason, "every trigger ok"));
    assert_non_null(e.metrics_json); /* the evidence behind it */
    assert_non_null(strstr(e.metrics_json, "\"verdict\":\"ok\""));
    event_free(&e);

    /* retained incumbent: finalize refused inside the window, with what is left */
    assert_int_equal(co_rollout_finalize(f->st, f->cfg, &k), CO_ESTATE);
    assert_non_null(strstr(co_error_last(), "left"));
    assert_non_null(strstr(co_error_last(), "--force"));
    int probes0 = f->probes;
    for (int i = 0; i < 12; i++)
        tick(f, c);
    assert_true(f->probes > probes0); /* probed every interval */
    assert_int_equal(count_events(f, "w", "retention-over", NULL), 1);
    assert_int_equal(co_rollout_finalize(f->st, f->cfg, &k), 0);
    get(f, "w", &r);
    assert_string_equal(r.state, "finalized");
    assert_int_equal(count_events(f, "w", "finalize", NULL), 1);
    co_rollout_state_clear(&r);
    co_controller_free(c);
}

static void test_breach_rolls_back_with_incident(void **state)
{
    fx *f = *state;
    co_controller *c = ctl(f, "ctl-1");
    co_rollout_cmd k = cmd(f, "w");
    assert_int_equal(co_rollout_start(f->st, f->cfg, &k), 0);
    traffic(f, "w", 150, 0.01);
    tick(f, c);
    traffic(f, "w", 200, 0.30); /* the candidate starts failing */
    tick(f, c);
    co_rollout_state r = {0};
    get(f, "w", &r);
    assert_string_equal(r.state, "rolled_back");
    mode_is(f, "w", CO_MODE_INCUMBENT, 0);
    co_rollout_event e = {0};
    assert_int_equal(count_events(f, "w", "rollback", &e), 1);
    assert_string_equal(e.actor, "controller");
    assert_string_equal(e.from_state, "shadow");
    assert_string_equal(e.to_state, "rolled_back");
    assert_non_null(strstr(e.reason, "error_rate"));
    assert_non_null(strstr(e.metrics_json, "\"breach\":\"error_rate\""));
    event_free(&e);
    co_incident inc = {0};
    assert_int_equal(co_store_incident_get(f->st, 0, "w", &inc), 0);
    assert_string_equal(inc.trigger, "error_rate");
    assert_non_null(strstr(inc.report_md, "error_rate"));
    co_incident_clear(&inc);
    /* nothing more happens to a rolled back rollout; it can be started again */
    tick(f, c);
    assert_int_equal(count_events(f, "w", "rollback", NULL), 1);
    assert_int_equal(co_rollout_start(f->st, f->cfg, &k), 0);
    get(f, "w", &r);
    assert_string_equal(r.state, "shadow");
    co_rollout_state_clear(&r);
    co_controller_free(c);
}

static void test_tiny_sample_extends_the_hold(void **state)
{
    fx *f = *state;
    co_controller *c = ctl(f, "ctl-1");
    co_rollout_cmd k = cmd(f, "w");
    assert_int_equal(co_rollout_start(f->st, f->cfg, &k), 0);
    for (int i = 0; i < 10; i++) {
        traffic(f, "w", 5, 0.01);
        tick(f, c);
    }
    co_rollout_state r = {0};
    get(f, "w", &r);
    assert_string_equal(r.state, "shadow");
    assert_int_equal(r.stage, 0);
    assert_true(r.hold_elapsed_ms >= 120000);
    co_rollout_event e = {0};
    size_t n = count_events(f, "w", "hold-extended", &e);
    assert_true(n >= 1 && n <= 3); /* one per extra hold length, not one per tick */
    assert_non_null(strstr(e.reason, "inconclusive"));
    assert_non_null(strstr(e.reason, "error_rate (+"));
    event_free(&e);
    co_rollout_status s;
    assert_int_equal(co_rollout_status_get(&s, f->st, f->cfg, "w", NULL), 0);
    assert_true(s.analyzed);
    assert_int_equal(s.hold_left_ms, 0);
    assert_true(s.extensions >= 1);
    assert_int_equal(s.a.t[CO_TRIG_ERROR_RATE].verdict, CO_TRIGGER_INCONCLUSIVE);
    assert_int_equal(s.a.t[CO_TRIG_ERROR_RATE].need_cand, 100 - 50);
    co_buf b;
    co_buf_init(&b, 1u << 20);
    assert_int_equal(co_rollout_status_json(&b, f->cfg, &s), 0);
    assert_non_null(strstr(b.p, "\"need_candidate\": 50"));
    co_buf_free(&b);
    co_rollout_status_clear(&s);
    co_rollout_state_clear(&r);
    co_controller_free(c);
}

static void test_restart_resumes_with_the_hold_left(void **state)
{
    fx *f = *state;
    co_controller *a = ctl(f, "ctl-a");
    co_rollout_cmd k = cmd(f, "w");
    assert_int_equal(co_rollout_start(f->st, f->cfg, &k), 0);
    for (int i = 0; i < 3; i++) { /* adopt, then two credited intervals */
        traffic(f, "w", 150, 0.01);
        assert_true(tick(f, a));
    }
    co_rollout_state r = {0};
    get(f, "w", &r);
    assert_int_equal(r.hold_elapsed_ms, 60000);
    /* "kill -9" of a: its store handle goes away without a drop; the lock
     * goes with it, so b takes over at its very next tick */
    co_controller *b = ctl(f, "ctl-b");
    assert_false(tick(f, b));
    co__controller_abandon(a);
    f->now += 10 * 60000; /* ten minutes with nobody watching never count */
    traffic(f, "w", 150, 0.01);
    assert_true(tick(f, b)); /* takes over: adopts without credit */
    get(f, "w", &r);
    assert_int_equal(r.stage, 0);
    assert_int_equal(r.hold_elapsed_ms, 60000);
    co_rollout_event e = {0};
    assert_int_equal(count_events(f, "w", "takeover", &e), 1);
    assert_non_null(strstr(e.reason, "ctl-b took over from ctl-a"));
    assert_non_null(strstr(e.reason, "1m0s of the hold left"));
    event_free(&e);
    traffic(f, "w", 150, 0.01);
    tick(f, b);
    get(f, "w", &r);
    assert_int_equal(r.stage, 0);
    assert_int_equal(r.hold_elapsed_ms, 90000);
    traffic(f, "w", 150, 0.01);
    tick(f, b);
    get(f, "w", &r);
    if (r.stage != 1) /* an inconclusive trigger may extend the hold: then it says so */
        assert_int_equal(count_events(f, "w", "hold-extended", NULL), 1);
    else
        assert_string_equal(r.state, "canary");
    /* a is back but b holds the lease: a does nothing */
    a = ctl(f, "ctl-a");
    assert_false(tick(f, a));
    co_rollout_state_clear(&r);
    co_controller_free(b);
    co_controller_free(a);
}

static void test_pause_manual_promote_and_probe(void **state)
{
    fx *f = *state;
    co_controller *c = ctl(f, "ctl-1");
    co_rollout_cmd k = cmd(f, "m");
    assert_int_equal(co_rollout_start(f->st, f->cfg, &k), 0);
    mode_is(f, "m", CO_MODE_CANARY, 10);
    assert_int_equal(co_rollout_promote(f->st, f->cfg, &k), CO_ESTATE);
    assert_non_null(strstr(co_error_last(), "of the hold left"));
    traffic(f, "m", 150, 0.01);
    tick(f, c);
    traffic(f, "m", 150, 0.01);
    tick(f, c);
    co_rollout_state r = {0};
    get(f, "m", &r);
    int64_t held = r.hold_elapsed_ms;
    assert_int_equal(held, 30000);
    assert_int_equal(co_rollout_pause(f->st, f->cfg, &k), 0);
    assert_int_equal(co_rollout_pause(f->st, f->cfg, &k), CO_ESTATE);
    for (int i = 0; i < 6; i++) {
        traffic(f, "m", 150, 0.01);
        tick(f, c);
    }
    get(f, "m", &r);
    assert_string_equal(r.state, "paused");
    assert_int_equal(r.hold_elapsed_ms, held); /* frozen */
    assert_int_equal(co_rollout_promote(f->st, f->cfg, &k), CO_ESTATE);
    assert_non_null(strstr(co_error_last(), "paused"));
    assert_int_equal(co_rollout_resume(f->st, f->cfg, &k), 0);
    get(f, "m", &r);
    assert_string_equal(r.state, "canary");
    for (int i = 0; i < 12 && !count_events(f, "m", "hold-complete", NULL); i++) {
        traffic(f, "m", 150, 0.01);
        tick(f, c);
    }
    get(f, "m", &r);
    assert_string_equal(r.state, "canary"); /* auto_promote off: it waits */
    assert_int_equal(count_events(f, "m", "hold-complete", NULL), 1);
    co_rollout_status s;
    assert_int_equal(co_rollout_status_get(&s, f->st, f->cfg, "m", NULL), 0);
    assert_true(s.awaiting_promotion);
    co_rollout_status_clear(&s);
    assert_int_equal(co_rollout_promote(f->st, f->cfg, &k), 0);
    get(f, "m", &r);
    assert_string_equal(r.state, "promoted");
    mode_is(f, "m", CO_MODE_CANDIDATE, 100);
    assert_int_equal(co_rollout_promote(f->st, f->cfg, &k), CO_ESTATE);

    /* the retained incumbent stops answering, then answers again */
    f->probe_fail = 1;
    tick(f, c);
    tick(f, c);
    assert_int_equal(count_events(f, "m", "probe-failed", NULL), 1); /* one story, not one per tick */
    assert_int_equal(co_rollout_status_get(&s, f->st, f->cfg, "m", NULL), 0);
    assert_int_equal(s.probe_failures, 2);
    assert_non_null(strstr(s.probe_error, "connection refused"));
    co_rollout_status_clear(&s);
    f->probe_fail = 0;
    tick(f, c);
    assert_int_equal(count_events(f, "m", "probe-ok", NULL), 1);
    /* --force finalizes inside the window and says so */
    k.force = 1;
    assert_int_equal(co_rollout_finalize(f->st, f->cfg, &k), 0);
    co_rollout_event e = {0};
    assert_int_equal(count_events(f, "m", "finalize", &e), 1);
    assert_non_null(strstr(e.reason, "forced"));
    event_free(&e);
    co_rollout_state_clear(&r);
    co_controller_free(c);
}

static void test_manual_rollback_and_abort(void **state)
{
    fx *f = *state;
    co_rollout_cmd k = cmd(f, "w");
    assert_int_equal(co_rollout_start(f->st, f->cfg, &k), 0);
    co_mode_change rb = {.workload = "w", .mode = CO_MODE_INCUMBENT, .actor = "user:ops", .reason = "pager",
                         .rollback = 1};
    assert_int_equal(co_control_set_mode(f->st, f->cfg, &rb, NULL), 0);
    co_rollout_state r = {0};
    get(f, "w", &r);
    assert_string_equal(r.state, "rolled_back");
    co_incident inc = {0};
    assert_int_equal(co_store_incident_get(f->st, 0, "w", &inc), 0);
    assert_string_equal(inc.trigger, "manual");
    co_incident_clear(&inc);
    /* abort: the same, logged as an abort */
    assert_int_equal(co_rollout_abort(f->st, f->cfg, &k), CO_ESTATE);
    assert_int_equal(co_rollout_start(f->st, f->cfg, &k), 0);
    assert_int_equal(co_rollout_abort(f->st, f->cfg, &k), 0);
    get(f, "w", &r);
    assert_string_equal(r.state, "rolled_back");
    assert_int_equal(count_events(f, "w", "abort", NULL), 1);
    mode_is(f, "w", CO_MODE_INCUMBENT, 0);
    /* a drill flips the mode only */
    assert_int_equal(co_rollout_start(f->st, f->cfg, &k), 0);
    co_mode_change drill = {.workload = "w", .mode = CO_MODE_INCUMBENT, .actor = "drill", .rollback = 1};
    assert_int_equal(co_control_set_mode(f->st, f->cfg, &drill, NULL), 0);
    get(f, "w", &r);
    assert_string_equal(r.state, "shadow");
    co_rollout_state_clear(&r);
}

static void test_one_controller_acts(void **state)
{
    fx *f = *state;
    co_controller *a = ctl(f, "ctl-a"), *b = ctl(f, "ctl-b");
    co_rollout_cmd k = cmd(f, "w");
    assert_int_equal(co_rollout_start(f->st, f->cfg, &k), 0);
    int ha = 0, hb = 0;
    for (int i = 0; i < 6; i++) {
        traffic(f, "w", 150, 0.01);
        ha += tick(f, a);
        hb += tick(f, b);
    }
    assert_int_equal(ha, 6);
    assert_int_equal(hb, 0);
    /* a stops cleanly: it releases the lease and b takes over at once */
    co_controller_free(a);
    assert_true(tick(f, b));
    co_controller_free(b);
}

/* Three live controllers tick in turns: exactly one holds at every round.
 * The holder dies without a drop (its store handle closed): one of the
 * others holds at the very next round, and never two. */
static void test_takeover_at_the_next_tick(void **state)
{
    fx *f = *state;
    co_controller *c[3] = {ctl(f, "ctl-a"), ctl(f, "ctl-b"), ctl(f, "ctl-c")};
    co_rollout_cmd k = cmd(f, "w");
    assert_int_equal(co_rollout_start(f->st, f->cfg, &k), 0);
    int dead = 0;
    for (int round = 0; round < 12; round++) {
        traffic(f, "w", 150, 0.01);
        int holders = 0, who = -1;
        for (int i = 0; i < 3; i++) {
            if (!c[i])
                continue;
            if (tick(f, c[i])) {
                holders++;
                who = i;
            }
        }
        assert_int_equal(holders, 1);
        if (round % 4 == 3 && dead < 2) { /* kill the holder */
            co__controller_abandon(c[who]);
            c[who] = NULL;
            dead++;
        }
    }
    assert_int_equal(count_events(f, "w", "takeover", NULL), 2);
    for (int i = 0; i < 3; i++)
        co_controller_free(c[i]);
}

/* PostgreSQL only: the holder's database session is ended (as the server
 * ends one whose host vanished, after its TCP keepalives): its next tick
 * acts on nothing, the standby takes over, and the old holder stays out. */
static void test_pg_session_lost(void **state)
{
    fx *f = *state;
    if (!g_pg)
        skip();
    co_controller *a = ctl(f, "ctl-a"), *b = ctl(f, "ctl-b");
    co_rollout_cmd k = cmd(f, "w");
    assert_int_equal(co_rollout_start(f->st, f->cfg, &k), 0);
    traffic(f, "w", 150, 0.01);
    assert_true(tick(f, a));
    assert_false(tick(f, b));
    char why[1024];
    assert_int_equal(co_pg_cluster_scalar(&g_cluster, PG_DB,
                                          "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                                          " WHERE locktype = 'advisory' AND classid = 1129663557 AND granted",
                                          why, sizeof why),
                     1);
    f->now += STEP;
    int held = -1;
    int rc = co_controller_tick(a, &held);
    assert_true(rc < 0 || held == 0);
    /* b's next ticks: it takes over (the ended backend frees the lock a
     * moment after it was told to end) */
    int took = 0;
    for (int i = 0; i < 100 && !took; i++) {
        took = tick(f, b);
        if (!took)
            usleep(20 * 1000);
    }
    assert_true(took);
    for (int i = 0; i < 3; i++) {
        f->now += STEP;
        held = -1;
        rc = co_controller_tick(a, &held);
        assert_true(rc == 0 || rc == CO_ESTORE);
        assert_int_equal(held, 0);
        assert_true(tick(f, b));
    }
    co_rollout_event e = {0};
    assert_int_equal(count_events(f, "w", "takeover", &e), 1);
    assert_non_null(strstr(e.reason, "ctl-b took over from ctl-a"));
    event_free(&e);
    co_controller_free(a);
    co_controller_free(b);
}

static void test_unknown_and_refused(void **state)
{
    fx *f = *state;
    co_rollout_cmd k = cmd(f, "nope");
    assert_int_equal(co_rollout_start(f->st, f->cfg, &k), CO_ENOENT);
    assert_non_null(strstr(co_error_last(), "workloads: w, m"));
    k.workload = "w";
    assert_int_equal(co_rollout_pause(f->st, f->cfg, &k), CO_ESTATE);
    assert_non_null(strstr(co_error_last(), "cutover rollout start w"));
    assert_int_equal(co_rollout_finalize(f->st, f->cfg, &k), CO_ESTATE);
    co_rollout_status s;
    assert_int_equal(co_rollout_status_get(&s, f->st, f->cfg, "w", NULL), 0);
    assert_false(s.exists);
    co_rollout_status_clear(&s);
}

/* A start that died between its two writes leaves a pending rollout: the
 * controller begins it, but only once it is clearly abandoned. */
static void test_abandoned_pending_is_begun(void **state)
{
    fx *f = *state;
    co_controller *c = ctl(f, "ctl-1");
    co_rollout_state r = {.workload = "w", .state = "pending", .stage_started_ms = f->now};
    assert_int_equal(co_store_rollout_put(f->st, &r, 0), 0);
    tick(f, c);
    co_rollout_state g = {0};
    get(f, "w", &g);
    assert_string_equal(g.state, "pending"); /* maybe a start still in progress */
    f->now += 60000;
    tick(f, c);
    get(f, "w", &g);
    assert_string_equal(g.state, "shadow");
    mode_is(f, "w", CO_MODE_SHADOW, 0);
    co_rollout_event e = {0};
    assert_int_equal(count_events(f, "w", "begin", &e), 1);
    assert_string_equal(e.actor, "controller");
    event_free(&e);
    co_rollout_state_clear(&g);
    co_controller_free(c);
}

static void test_clock(void **state)
{
    (void)state;
    co_rollout_clock c = {.scale = 3600};
    assert_int_equal(co_rollout_to_rollout_ms(&c, 1000), 3600000);
    assert_int_equal(co_rollout_to_real_ms(&c, 48 * 3600000LL), 48000);
    assert_int_equal(co_rollout_to_real_ms(&c, 1), 1); /* never 0 for a positive duration */
    assert_int_equal(co_rollout_to_rollout_ms(NULL, 1234), 1234);
    assert_true(co_rollout_scale(NULL) == 1);
    co_rollout_clock bad = {.scale = -5};
    assert_true(co_rollout_scale(&bad) == 1);
    int64_t t0 = co_now_ms();
    assert_true(co_rollout_now(NULL) >= t0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_noise_promotes_through_every_stage),
        T(test_breach_rolls_back_with_incident),
        T(test_tiny_sample_extends_the_hold),
        T(test_restart_resumes_with_the_hold_left),
        T(test_pause_manual_promote_and_probe),
        T(test_manual_rollback_and_abort),
        T(test_one_controller_acts),
        T(test_takeover_at_the_next_tick),
        T(test_pg_session_lost),
        T(test_unknown_and_refused),
        T(test_abandoned_pending_is_begun),
        cmocka_unit_test(test_clock),
    };
    const char *which = getenv("CO_TEST_STORE");
    if (which && !strcmp(which, "postgres")) {
        char why[2048];
        int rc = co_pg_cluster_start(&g_cluster, why, sizeof why);
        if (rc == CO_PG_SKIP) {
            printf("SKIPPED: needs a PostgreSQL server: %s\n", why);
            return 77;
        }
        if (rc != 0 || co_pg_cluster_createdb(&g_cluster, PG_DB, why, sizeof why) != 0) {
            fprintf(stderr, "cannot start a throwaway PostgreSQL cluster: %s\n", why);
            co_pg_cluster_destroy(&g_cluster);
            return 1;
        }
        g_pg = 1;
    }
    int failed = cmocka_run_group_tests_name(g_pg ? "rollout controller on postgres" : "rollout controller on sqlite",
                                             tests, NULL, NULL);
    if (g_pg)
        co_pg_cluster_destroy(&g_cluster);
    return failed;
}
