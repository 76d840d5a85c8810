/* The rollout end to end through the real binary: `cutover sim`, `cutover
 * serve --time-scale` (the controller runs inside the gateway) and a traffic
 * generator in the test. Several workloads roll out at once, each against a
 * candidate model of its own:
 *   - each trigger fires on its fault, injected at run time through the
 *     sim's /_sim/models/NAME hook once the canary is healthy (errors,
 *     latency, verbosity that makes requests pricier, JSON in a markdown
 *     fence that breaks the contract, and negative feedback through
 *     POST /v1/feedback), rolls back, and writes an incident naming it;
 *   - noise within the thresholds promotes through every stage, and then
 *     `cutover rollout finalize` is refused inside the retention window;
 *   - a trickle of traffic stays inconclusive and extends the hold;
 *   - kill -9 of the gateway mid-stage: a restarted one takes the lease
 *     over and resumes the same stage with the hold that was left.
 * No wall-clock time is asserted: every wait polls the store with a
 * generous deadline. */
#include <math.h>
#include <sys/wait.h>

#include "cutover/rollout.h"
#include "cutover/util.h"
#include "test_gateway_fixture.h"

static const char *SCENARIO =
    "seed: 9\n"
    "api_key: sk-provider\n"
    "models:\n"
    "  inc: {provider: openai, template: \"{\\\"answer\\\": \\\"{{last_user}}\\\"}\", latency: {ttft: 3ms, jitter: 0.2}}\n"
    "  c-ok: {provider: openai, template: \"{\\\"answer\\\": \\\"{{last_user}}\\\"}\", latency: {ttft: 3ms, jitter: 0.2}}\n"
    "  c-err: {provider: openai, template: \"{\\\"answer\\\": \\\"{{last_user}}\\\"}\", latency: {ttft: 3ms, jitter: 0.2}}\n"
    "  c-lat: {provider: openai, template: \"{\\\"answer\\\": \\\"{{last_user}}\\\"}\", latency: {ttft: 3ms, jitter: 0.2}}\n"
    "  c-cost: {provider: openai, template: \"{\\\"answer\\\": \\\"{{last_user}}\\\"}\", latency: {ttft: 3ms, jitter: 0.2}}\n"
    "  c-fmt: {provider: openai, json: {answer: 42}, latency: {ttft: 3ms, jitter: 0.2}}\n"
    "  c-fb: {provider: openai, template: \"{\\\"answer\\\": \\\"{{last_user}}\\\"}\", latency: {ttft: 3ms, jitter: 0.2}}\n";

#define MODELS \
    "models:\n" \
    "  inc: {provider: oa, price_input: 1, price_output: 4}\n" \
    "  c-ok: {provider: oa, price_input: 1, price_output: 4}\n" \
    "  c-err: {provider: oa, price_input: 1, price_output: 4}\n" \
    "  c-lat: {provider: oa, price_input: 1, price_output: 4}\n" \
    "  c-cost: {provider: oa, price_input: 1, price_output: 4}\n" \
    "  c-fmt: {provider: oa, price_input: 1, price_output: 4}\n" \
    "  c-fb: {provider: oa, price_input: 1, price_output: 4}\n"

#define HEAD \
    "listen: 127.0.0.1:0\n" \
    "workers: 2\n" \
    "store: sqlite:{DB}\n" \
    "log_level: warn\n" \
    "recorder: {flush_interval: 20ms}\n" \
    "providers:\n" \
    "  oa: {kind: openai, base_url: \"{SIM}/v1\", api_key_env: OA_KEY}\n" MODELS

/* Fault workloads hold their canary for an hour of rollout time (36 s real
 * at --time-scale 100): they never promote while the test injects faults. */
#define HOLD_CANARY "rollout: {stages: [{percent: 50, hold: 1h}, {percent: 100}], interval: 10s, " \
                    "triggers: {min_samples: 40, min_feedback: 30}}"

static const char *CONFIG =
    HEAD
    "workloads:\n"
    "  ok: {match: {models: [ok]}, incumbent: inc, candidate: c-ok, contract: {format: json}}\n"
    "  tiny: {match: {models: [tiny]}, incumbent: inc, candidate: c-ok, triggers: {min_samples: 500}}\n"
    "  err: {match: {models: [err]}, incumbent: inc, candidate: c-err, " HOLD_CANARY "}\n"
    "  lat: {match: {models: [lat]}, incumbent: inc, candidate: c-lat, " HOLD_CANARY "}\n"
    "  cost: {match: {models: [cost]}, incumbent: inc, candidate: c-cost, " HOLD_CANARY "}\n"
    "  fmt: {match: {models: [fmt]}, incumbent: inc, candidate: c-fmt, contract: {format: json}, " HOLD_CANARY "}\n"
    "  fb: {match: {models: [fb]}, incumbent: inc, candidate: c-fb, " HOLD_CANARY "}\n"
    "rollout:\n"
    "  stages: [{mode: shadow, hold: 1m}, {percent: 50, hold: 1m}, {percent: 100}]\n"
    "  interval: 10s\n"
    "  retain_incumbent: 30d\n"
    "  triggers: {min_samples: 40}\n";

/* ---- helpers --------------------------------------------------------------------------- */

/* Runs `cutover ARGS -c CFG` and returns its exit code; *out gets stdout+stderr. */
static int cli(gwf *f, const char *args, char **out)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s -c '%s' 2>&1", co_test_bin(), args, f->cfg_path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (n + 1 >= cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int state_of(co_store *st, const char *w, co_rollout_state *r)
{
    co_rollout_state_clear(r);
    return co_store_rollout_get(st, w, r);
}

static int has_event(co_store *st, const char *w, const char *kind)
{
    co_rollout_event_list l = {0};
    int n = 0;
    if (co_store_rollout_events(st, w, 0, &l) == 0)
        for (size_t i = 0; i < l.n; i++)
            n += !strcmp(l.v[i].kind, kind);
    co_rollout_event_list_free(&l);
    return n;
}

/* ---- traffic generator ---------------------------------------------------------------- */

typedef struct gen {
    gwf *f;
    const char *const *workloads;
    volatile int stop;
    volatile int fb_fault;   /* rate candidate answers of `fb` badly */
    volatile int tiny_every; /* ms between two requests of `tiny` (thread 0 only) */
    pthread_t th[4];
    int nth;
    long sent, failed;
    pthread_mutex_t mu;
} gen;

typedef struct gen_arg {
    gen *g;
    int id;
} gen_arg;

static void *gen_main(void *arg)
{
    gen_arg *ga = arg;
    gen *g = ga->g;
    CURL *c = curl_easy_init(), *fbc = curl_easy_init();
    co_rng rng;
    co_rng_seed(&rng, (uint64_t)ga->id + 1);
    long long next_tiny = 0;
    long sent = 0, failed = 0;
    /* our own URLs: gwf_url's rotating buffers are not for several threads */
    char chat_url[128], fb_url[128];
    snprintf(chat_url, sizeof chat_url, "%s/v1/chat/completions", g->f->base);
    snprintf(fb_url, sizeof fb_url, "%s/v1/feedback", g->f->base);
    for (unsigned long i = 0; !g->stop; i++) {
        const char *w = g->workloads[1 + i % 6];
        if (ga->id == 0 && g->tiny_every && gwf_now_ms() >= next_tiny) {
            w = "tiny";
            next_tiny = gwf_now_ms() + g->tiny_every;
        } else if (!strcmp(w, "tiny")) {
            continue;
        }
        char body[512];
        snprintf(body, sizeof body,
                 "{\"model\":\"%s\",\"user\":\"user-%d-%lu\",\"messages\":[{\"role\":\"user\",\"content\":\"question %lu\"}]}",
                 w, ga->id, i, i);
        co_test_http h;
        gwf_do(c, &h, "POST", chat_url, GWF_OA, body, 10000);
        sent++;
        failed += h.status != 200;
        char arm[32] = "", rid[64] = "";
        gwf_header(&h, "X-Cutover-Arm", arm, sizeof arm);
        gwf_header(&h, "X-Cutover-Request-Id", rid, sizeof rid);
        co_test_http_free(&h);
        if (!strcmp(w, "fb") && g->fb_fault && rid[0]) {
            double p_neg = !strcmp(arm, "candidate") ? 0.6 : 0.05;
            char fb[256];
            snprintf(fb, sizeof fb, "{\"request_id\":\"%s\",\"score\":%d}", rid, co_rng_unit(&rng) < p_neg ? -1 : 1);
            co_test_http fh;
            gwf_do(fbc, &fh, "POST", fb_url, GWF_OA, fb, 10000);
            co_test_http_free(&fh);
        }
    }
    pthread_mutex_lock(&g->mu);
    g->sent += sent;
    g->failed += failed;
    pthread_mutex_unlock(&g->mu);
    curl_easy_cleanup(c);
    curl_easy_cleanup(fbc);
    free(ga);
    return NULL;
}

static void gen_start(gen *g, gwf *f, const char *const *workloads, int threads)
{
    memset(g, 0, sizeof *g);
    g->f = f;
    g->workloads = workloads;
    pthread_mutex_init(&g->mu, NULL);
    for (int i = 0; i < threads; i++) {
        gen_arg *a = malloc(sizeof *a);
        a->g = g;
        a->id = i;
        pthread_create(&g->th[i], NULL, gen_main, a);
    }
    g->nth = threads;
}

static void gen_stop(gen *g)
{
    if (!g->nth)
        return;
    g->stop = 1;
    for (int i = 0; i < g->nth; i++)
        pthread_join(g->th[i], NULL);
    g->nth = 0;
    pthread_mutex_destroy(&g->mu);
}

/* ---- fixture --------------------------------------------------------------------------- */

static int setup(void **state)
{
    gwf *f = gwf_new();
    *state = f;
    if (!f)
        return 0;
    if (gwf_sim_start(f, SCENARIO) || gwf_config(f, CONFIG))
        return -1;
    const char *extra[] = {"--time-scale", "100", NULL};
    return gwf_gw_start(f, extra, NULL);
}

/* The generator lives here, not on a test's stack: a failed assertion
 * leaves the test function, and teardown must stop the threads first. */
static gen G;

static int teardown(void **state)
{
    gen_stop(&G);
    gwf_free(*state);
    return 0;
}

static void patch(gwf *f, const char *model, const char *json)
{
    char path[128];
    snprintf(path, sizeof path, "/_sim/models/%s", model);
    co_test_http h;
    const char *hs[] = {"Content-Type: application/json", NULL};
    co_test_http_do(&h, "POST", gwf_sim_url(f, path), hs, json, 0);
    if (h.status != 200)
        fprintf(stderr, "patch %s: %ld %s\n", model, h.status, h.body);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);
}

/* ---- tests ----------------------------------------------------------------------------- */

static const char *const WORKLOADS[] = {"tiny", "ok", "err", "lat", "cost", "fmt", "fb", NULL};

static void test_triggers_promotion_and_inconclusive(void **state)
{
    gwf *f = *state;
    if (!f)
        skip();
    char *out = NULL;
    for (int i = 0; WORKLOADS[i]; i++) {
        char args[64];
        snprintf(args, sizeof args, "rollout start %s", WORKLOADS[i]);
        int rc = cli(f, args, &out);
        if (rc)
            fprintf(stderr, "%s", out);
        assert_int_equal(rc, 0);
        free(out);
    }
    co_store *st = gwf_store(f);
    assert_non_null(st);
    co_diags d = {0};
    co_config *cfg = NULL;
    assert_int_equal(co_config_load(&cfg, f->cfg_path, &d), 0);

    gen_start(&G, f, WORKLOADS, 4);
    G.tiny_every = 400;

    /* 1. every fault workload runs a healthy canary with a full sample */
    static const char *const faulty[] = {"err", "lat", "cost", "fmt", "fb"};
    long long deadline = gwf_now_ms() + 120000;
    for (int i = 0; i < 5; i++) {
        for (;;) {
            co_rollout_status s;
            assert_int_equal(co_rollout_status_get(&s, st, cfg, faulty[i], NULL), 0);
            int ready = s.analyzed && !strcmp(s.s.state, "canary") && s.a.cand.requests >= 80 &&
                        s.a.inc.requests >= 80;
            if (s.exists && strcmp(s.s.state, "canary")) {
                fprintf(stderr, "%s is %s before any fault\n", faulty[i], s.s.state);
                fail();
            }
            co_rollout_status_clear(&s);
            if (ready)
                break;
            assert_true(gwf_now_ms() < deadline);
            usleep(50000);
        }
    }
    /* 2. the faults */
    patch(f, "c-err", "{\"faults\":{\"error_500\":0.4}}");
    patch(f, "c-lat", "{\"latency\":{\"ttft\":\"120ms\"}}");
    patch(f, "c-cost", "{\"verbosity\":8}");
    patch(f, "c-fmt", "{\"markdown\":true}");
    G.fb_fault = 1;

    static const char *const want[] = {"error_rate", "latency_p95", "cost", "quality", "feedback"};
    int done[5] = {0}, n_done = 0;
    deadline = gwf_now_ms() + 120000;
    co_rollout_state r = {0};
    while (n_done < 5) {
        for (int i = 0; i < 5; i++) {
            if (done[i])
                continue;
            assert_int_equal(state_of(st, faulty[i], &r), 0);
            if (!strcmp(r.state, "rolled_back")) {
                done[i] = 1;
                n_done++;
                /* the state turns first, the report is written right after */
                co_incident inc = {0};
                long long until = gwf_now_ms() + 10000;
                while (co_store_incident_get(st, 0, faulty[i], &inc) == CO_ENOENT && gwf_now_ms() < until)
                    usleep(20000);
                assert_non_null(inc.trigger);
                if (strcmp(inc.trigger, want[i]))
                    fprintf(stderr, "%s: rolled back on %s, expected %s\n", faulty[i], inc.trigger, want[i]);
                assert_string_equal(inc.trigger, want[i]);
                co_incident_clear(&inc);
            } else {
                assert_string_equal(r.state, "canary");
            }
        }
        if (n_done < 5) {
            if (gwf_now_ms() > deadline) {
                for (int i = 0; i < 5; i++)
                    if (!done[i]) {
                        char args[64];
                        snprintf(args, sizeof args, "rollout status %s", faulty[i]);
                        cli(f, args, &out);
                        fprintf(stderr, "not rolled back:\n%s\n", out);
                        free(out);
                    }
                fail();
            }
            usleep(50000);
        }
    }

    /* 3. the healthy workload went through every stage */
    deadline = gwf_now_ms() + 120000;
    for (;;) {
        assert_int_equal(state_of(st, "ok", &r), 0);
        assert_string_not_equal(r.state, "rolled_back");
        if (!strcmp(r.state, "promoted"))
            break;
        assert_true(gwf_now_ms() < deadline);
        usleep(50000);
    }
    assert_int_equal(has_event(st, "ok", "promote"), 2);

    /* 4. the trickle never had enough to judge */
    gen_stop(&G);
    assert_int_equal(state_of(st, "tiny", &r), 0);
    assert_int_equal(r.stage, 0);
    assert_string_equal(r.state, "shadow");
    assert_true(has_event(st, "tiny", "hold-extended") >= 1);
    co_rollout_state_clear(&r);
    assert_true(G.sent > 0);

    /* the commands a person would type */
    assert_int_equal(cli(f, "rollout finalize ok", &out), 1);
    assert_non_null(strstr(out, "left"));
    assert_non_null(strstr(out, "--force"));
    free(out);
    assert_int_equal(cli(f, "rollout status tiny", &out), 0);
    assert_non_null(strstr(out, "inconclusive"));
    assert_non_null(strstr(out, "extended"));
    free(out);
    assert_int_equal(cli(f, "rollout status --json", &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_true(json_is_array(j));
    assert_true(json_array_size(j) >= 7);
    json_decref(j);
    free(out);
    assert_int_equal(cli(f, "report incident latest --workload err", &out), 0);
    assert_non_null(strstr(out, "error_rate"));
    assert_non_null(strstr(out, "rolled_back"));
    free(out);
    co_config_free(cfg);
    co_store_close(st);
}

/* kill -9 of the gateway (and its controller) mid-stage; a new one resumes */
static const char *CONFIG_KILL =
    HEAD
    "workloads:\n"
    "  ok: {match: {models: [ok]}, incumbent: inc, candidate: c-ok}\n"
    "rollout:\n"
    "  stages: [{percent: 50, hold: 30m}, {percent: 100}]\n"
    "  interval: 10s\n"
    "  triggers: {min_samples: 20}\n";

static int setup_kill(void **state)
{
    gwf *f = gwf_new();
    *state = f;
    if (!f)
        return 0;
    if (gwf_sim_start(f, SCENARIO) || gwf_config(f, CONFIG_KILL))
        return -1;
    const char *extra[] = {"--time-scale", "600", NULL};
    return gwf_gw_start(f, extra, NULL);
}

static void test_kill9_resumes_the_stage(void **state)
{
    gwf *f = *state;
    if (!f)
        skip();
    assert_int_equal(cli(f, "rollout start ok", NULL), 0);
    co_store *st = gwf_store(f);
    static const char *const only_ok[] = {"ok", "ok", "ok", "ok", "ok", "ok", "ok", NULL};
    gen_start(&G, f, only_ok, 2);
    co_rollout_state r = {0};
    long long deadline = gwf_now_ms() + 60000;
    for (;;) { /* about a third of the 30 min hold */
        assert_int_equal(state_of(st, "ok", &r), 0);
        if (r.hold_elapsed_ms >= 10 * 60000)
            break;
        assert_true(gwf_now_ms() < deadline);
        usleep(20000);
    }
    gen_stop(&G);
    assert_int_equal(kill(f->gw.pid, SIGKILL), 0);
    co_test_stop(&f->gw); /* reaps it */
    f->gw_on = 0;
    assert_int_equal(state_of(st, "ok", &r), 0);
    assert_string_equal(r.state, "canary");
    int64_t elapsed = r.hold_elapsed_ms, started = r.stage_started_ms;
    assert_true(elapsed < 30 * 60000);

    const char *extra[] = {"--time-scale", "600", NULL};
    assert_int_equal(gwf_gw_start(f, extra, NULL), 0);
    gen_start(&G, f, only_ok, 2);
    deadline = gwf_now_ms() + 60000;
    while (!has_event(st, "ok", "takeover")) {
        assert_true(gwf_now_ms() < deadline);
        usleep(20000);
    }
    assert_int_equal(state_of(st, "ok", &r), 0);
    /* the same stage, begun at the same moment, with the hold it had */
    assert_int_equal(r.stage, 0);
    assert_int_equal(r.stage_started_ms, started);
    assert_true(r.hold_elapsed_ms >= elapsed);
    assert_true(r.hold_elapsed_ms < 30 * 60000);
    deadline = gwf_now_ms() + 60000;
    for (;;) {
        assert_int_equal(state_of(st, "ok", &r), 0);
        assert_string_not_equal(r.state, "rolled_back");
        if (!strcmp(r.state, "promoted"))
            break;
        assert_true(gwf_now_ms() < deadline);
        usleep(20000);
    }
    gen_stop(&G);
    co_rollout_event_list l = {0};
    assert_int_equal(co_store_rollout_events(st, "ok", 0, &l), 0);
    int takeovers = 0;
    for (size_t i = 0; i < l.n; i++)
        if (!strcmp(l.v[i].kind, "takeover")) {
            takeovers++;
            assert_non_null(strstr(l.v[i].reason, "of the hold left"));
        }
    assert_int_equal(takeovers, 1);
    co_rollout_event_list_free(&l);
    co_rollout_state_clear(&r);
    co_store_close(st);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_triggers_promotion_and_inconclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_resumes_the_stage, setup_kill, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
