/* Canary, fallback, rollback and the admin API through `cutover serve`
 * (two workers) against `cutover sim`: sticky canary buckets (exactly the
 * arm xxHash64(salt, user) predicts, the 10% share within binomial bounds
 * over 2,000 users, nobody leaving the candidate when the percent rises to
 * 50%); fallback of a failing candidate to the incumbent (recorded as a
 * failed candidate exchange plus a fallback one); a rollback through the
 * admin API reaching the very next request on every worker over many
 * kept-alive connections; a mode written to the store by another process
 * picked up by the poll; admin auth with a token. */
#include <math.h>

#include "cutover/util.h"
#include "test_gateway_fixture.h"

static const char *SCENARIO =
    "seed: 5\n"
    "api_key: sk-provider\n"
    "models:\n"
    "  gpt-4o: {provider: openai, template: \"Answer from {{model}}: {{last_user}}\"}\n"
    "  claude-sonnet-4: {provider: anthropic, template: \"Claude: {{last_user}}\"}\n"
    "  claude-bad: {provider: anthropic, faults: {error_500: 1}}\n"
    "  claude-down: {provider: anthropic, faults: {reset: 1}}\n";

#define CONFIG \
    "listen: 127.0.0.1:0\n" \
    "workers: 2\n" \
    "store: sqlite:{DB}\n" \
    "log_level: warn\n" \
    "recorder: {flush_interval: 20ms}\n" \
    "providers:\n" \
    "  oa: {kind: openai, base_url: \"{SIM}/v1\", api_key_env: OA_KEY}\n" \
    "  an: {kind: anthropic, base_url: \"{SIM}\", api_key_env: AN_KEY}\n" \
    "models:\n" \
    "  gpt-4o: {provider: oa}\n" \
    "  claude: {provider: an, upstream: claude-sonnet-4}\n" \
    "  claude-bad: {provider: an}\n" \
    "  claude-down: {provider: an}\n" \
    "workloads:\n" \
    "  chat: {incumbent: gpt-4o, candidate: claude, mode: incumbent}\n" \
    "  fb: {incumbent: gpt-4o, candidate: claude-bad, mode: candidate}\n" \
    "  fbdown: {incumbent: gpt-4o, candidate: claude-down, mode: canary, percent: 100}\n" \
    "  nofb: {incumbent: gpt-4o, candidate: claude-bad, mode: candidate, fallback: false}\n" \
    "  roll: {incumbent: gpt-4o, candidate: claude, mode: incumbent}\n"

static int setup_env(void **state, char *const *env, const char *listen)
{
    gwf *f = gwf_new();
    *state = f;
    if (!f)
        return 0;
    if (gwf_sim_start(f, SCENARIO) || gwf_config(f, CONFIG))
        return -1;
    const char *extra[] = {"--listen", listen, NULL};
    return gwf_gw_start(f, listen ? extra : NULL, env);
}

static int setup(void **state) { return setup_env(state, NULL, NULL); }

static int setup_token(void **state)
{
    char *env[] = {"CUTOVER_ADMIN_TOKEN=s3cret-admin-token", NULL};
    return setup_env(state, env, NULL);
}

static int setup_open(void **state) { return setup_env(state, NULL, "0.0.0.0:0"); }

static int admin_port;

/* A free loopback port (bound, read, released: a small race, fine in a test). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &al))
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static int setup_admin_listener(void **state)
{
    gwf *f = gwf_new();
    *state = f;
    if (!f)
        return 0;
    admin_port = free_port();
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%sadmin: {listen: \"127.0.0.1:%d\"}\n", CONFIG, admin_port);
    if (gwf_sim_start(f, SCENARIO) || gwf_config(f, cfg))
        return -1;
    return gwf_gw_start(f, NULL, NULL);
}

static int teardown(void **state)
{
    gwf *f = *state;
    if (!f)
        return 0;
    int rc = gwf_gw_stop(f);
    gwf_free(f);
    return rc == 0 ? 0 : -1;
}

#define NEED(state)                                                                                                \
    gwf *f = *(state);                                                                                             \
    if (!f)                                                                                                        \
    skip()

static void set_mode(gwf *f, const char *workload, const char *body, int64_t *version)
{
    char path[256], *resp = NULL;
    snprintf(path, sizeof path, "/admin/workloads/%s/mode", workload);
    long st = gwf_admin(f, path, body, NULL, &resp);
    if (st != 200)
        fprintf(stderr, "admin: %ld %s\n", st, resp);
    assert_int_equal(st, 200);
    json_t *j = json_loads(resp, 0, NULL);
    assert_non_null(j);
    if (version)
        *version = json_integer_value(json_object_get(j, "version"));
    json_decref(j);
    free(resp);
}

/* The arm header of one request on a kept-alive handle. */
static int arm_of(gwf *f, CURL *c, const char *workload, const char *user)
{
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"%s\",\"user\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
             workload, user);
    co_test_http h;
    gwf_do(c, &h, "POST", gwf_url(f, "/v1/chat/completions"), GWF_OA, body, 0);
    if (h.status != 200)
        fprintf(stderr, "%ld: %s\n", h.status, h.body);
    assert_int_equal(h.status, 200);
    char v[64];
    gwf_header(&h, "X-Cutover-Arm", v, sizeof v);
    int cand = !strcmp(v, "candidate");
    assert_true(cand || !strcmp(v, "incumbent"));
    if (cand) {
        char *t = gwf_openai_text(&h, 0);
        assert_string_equal(t, "Claude: hi");
        free(t);
    }
    co_test_http_free(&h);
    return cand;
}

#define USERS 2000

static void test_canary_sticky(void **state)
{
    NEED(state);
    set_mode(f, "chat", "{\"mode\":\"canary\",\"percent\":10,\"reason\":\"start the canary\"}", NULL);
    CURL *c = curl_easy_init();
    static unsigned char was[USERS];
    int on = 0;
    for (int i = 0; i < USERS; i++) {
        char user[32];
        snprintf(user, sizeof user, "user-%d", i);
        was[i] = (unsigned char)arm_of(f, c, "chat", user);
        /* exactly the documented bucket: xxHash64(salt = workload name, user) mod 10000 < 1000 */
        assert_int_equal(was[i], co_bucket("chat", user) < 1000);
        on += was[i];
    }
    /* binomial(2000, 0.1): mean 200, sd 13.4; 5 sd either way */
    fprintf(stderr, "canary 10%%: %d of %d users on the candidate\n", on, USERS);
    assert_true(on > 200 - 67 && on < 200 + 67);
    /* the same users again: nobody moves */
    for (int i = 0; i < USERS; i += 7) {
        char user[32];
        snprintf(user, sizeof user, "user-%d", i);
        assert_int_equal(arm_of(f, c, "chat", user), was[i]);
    }
    set_mode(f, "chat", "{\"mode\":\"canary\",\"percent\":50}", NULL);
    int on50 = 0;
    for (int i = 0; i < USERS; i++) {
        char user[32];
        snprintf(user, sizeof user, "user-%d", i);
        int now = arm_of(f, c, "chat", user);
        if (was[i])
            assert_int_equal(now, 1); /* raising the percent keeps everyone already on the candidate */
        on50 += now;
    }
    fprintf(stderr, "canary 50%%: %d of %d users on the candidate\n", on50, USERS);
    assert_true(on50 > 1000 - 112 && on50 < 1000 + 112);
    curl_easy_cleanup(c);

    /* the admin API shows the mode and the traffic */
    char *resp = NULL;
    assert_int_equal(gwf_admin(f, "/admin/workloads", NULL, NULL, &resp), 200);
    json_t *j = json_loads(resp, 0, NULL);
    json_t *w = json_array_get(j, 0);
    assert_string_equal(gwf_jstr(w, "name", NULL), "chat");
    assert_string_equal(gwf_jstr(w, "mode", NULL), "canary");
    assert_true(json_real_value(json_object_get(w, "percent")) == 50.0);
    assert_int_equal(json_integer_value(json_object_get(w, "version")), 2);
    json_t *arms = json_object_get(w, "arms");
    json_int_t ni = json_integer_value(json_object_get(json_object_get(arms, "incumbent"), "requests"));
    json_int_t nc = json_integer_value(json_object_get(json_object_get(arms, "candidate"), "requests"));
    assert_true(ni + nc >= 2 * USERS);
    assert_true(json_is_real(json_object_get(json_object_get(arms, "candidate"), "p95_ms")));
    json_decref(j);
    free(resp);
}

static void test_fallback(void **state)
{
    NEED(state);
    for (int stream = 0; stream < 2; stream++) {
        co_test_http h;
        gwf_chat(f, &h, "fb", stream, "please answer", NULL);
        assert_int_equal(h.status, 200);
        assert_int_equal(h.curl_code, CURLE_OK);
        char v[64];
        gwf_header(&h, "X-Cutover-Arm", v, sizeof v);
        assert_string_equal(v, "incumbent");
        char *t = gwf_openai_text(&h, stream);
        assert_string_equal(t, "Answer from gpt-4o: please answer");
        free(t);
        co_test_http_free(&h);
        /* an Anthropic client too */
        gwf_messages(f, &h, "fb", stream, "please answer");
        assert_int_equal(h.status, 200);
        t = gwf_anthropic_text(&h, stream);
        assert_string_equal(t, "Answer from gpt-4o: please answer");
        free(t);
        co_test_http_free(&h);
    }
    /* a connection reset before any byte falls back too */
    co_test_http h;
    gwf_chat(f, &h, "fbdown", 1, "reset me", NULL);
    assert_int_equal(h.status, 200);
    char v[64];
    gwf_header(&h, "X-Cutover-Arm", v, sizeof v);
    assert_string_equal(v, "incumbent");
    co_test_http_free(&h);

    /* without fallback the candidate's 500 reaches the client in its own shape */
    gwf_chat(f, &h, "nofb", 0, "no net", NULL);
    assert_int_equal(h.status, 500);
    gwf_header(&h, "X-Cutover-Arm", v, sizeof v);
    assert_string_equal(v, "candidate");
    json_t *j = gwf_json(&h);
    assert_non_null(gwf_jstr(j, "error", "message"));
    assert_string_equal(gwf_jstr(j, "error", "type"), "server_error"); /* OpenAI's own type for a 500 */
    json_decref(j);
    co_test_http_free(&h);

    assert_int_equal(gwf_gw_stop(f), 0);
    co_store *st = gwf_store(f);
    co_window_query q = {.workload = "fb"};
    co_exchange_list l;
    assert_int_equal(co_store_exchanges(st, &q, &l), 0);
    assert_int_equal(l.n, 8); /* 4 requests: a failed candidate and a fallback each */
    int cand = 0, fbk = 0;
    for (size_t i = 0; i < l.n; i++) {
        const co_exchange *x = &l.v[i].x;
        if (!strcmp(x->role, "served")) {
            cand++;
            assert_string_equal(x->arm, "candidate");
            assert_string_equal(x->error_class, "5xx");
            assert_int_equal(x->status, 500);
            int paired = 0;
            for (size_t k = 0; k < l.n; k++)
                paired += !strcmp(l.v[k].x.pair_id, x->pair_id) && !strcmp(l.v[k].x.role, "fallback");
            assert_int_equal(paired, 1);
        } else {
            fbk++;
            assert_string_equal(x->role, "fallback");
            assert_string_equal(x->arm, "incumbent");
            assert_null(x->error_class);
            assert_int_equal(x->status, 200);
        }
    }
    assert_int_equal(cand, 4);
    assert_int_equal(fbk, 4);
    co_exchange_list_free(&l);
    co_window_query qd = {.workload = "fbdown", .role = "served"};
    assert_int_equal(co_store_exchanges(st, &qd, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].x.error_class, "reset");
    co_exchange_list_free(&l);
    co_store_close(st);
}

#define CONNS 16

static void test_rollback_every_worker(void **state)
{
    NEED(state);
    CURL *c[CONNS];
    for (int i = 0; i < CONNS; i++)
        c[i] = curl_easy_init();
    int64_t last = 0;
    for (int round = 0; round < 5; round++) {
        int64_t v = 0;
        set_mode(f, "roll", "{\"mode\":\"candidate\",\"reason\":\"try it\"}", &v);
        assert_true(v > last);
        for (int i = 0; i < CONNS; i++)
            assert_int_equal(arm_of(f, c[i], "roll", "u"), 1);
        char *resp = NULL;
        long st = gwf_admin(f, "/admin/workloads/roll/rollback", "{\"reason\":\"error rate\"}", NULL, &resp);
        assert_int_equal(st, 200);
        json_t *j = json_loads(resp, 0, NULL);
        assert_string_equal(gwf_jstr(j, "mode", NULL), "incumbent");
        assert_true(json_is_true(json_object_get(j, "rolled_back")));
        last = json_integer_value(json_object_get(j, "version"));
        assert_true(last > v);
        json_decref(j);
        free(resp);
        /* the very next request on every connection (so on both workers) */
        for (int i = 0; i < CONNS; i++)
            assert_int_equal(arm_of(f, c[i], "roll", "u"), 0);
    }
    for (int i = 0; i < CONNS; i++)
        curl_easy_cleanup(c[i]);

    /* errors of the admin API */
    char *resp = NULL;
    assert_int_equal(gwf_admin(f, "/admin/workloads/nosuch/rollback", "{}", NULL, &resp), 404);
    assert_non_null(strstr(resp, "roll"));
    free(resp);
    assert_int_equal(gwf_admin(f, "/admin/workloads/roll/mode", "{\"mode\":\"sideways\"}", NULL, NULL), 400);
    assert_int_equal(gwf_admin(f, "/admin/workloads/roll/mode", "{\"mode\":\"canary\"}", NULL, NULL), 400);
    assert_int_equal(gwf_admin(f, "/admin/workloads/roll/mode", "not json", NULL, NULL), 400);

    /* the rollback event is in the store with its reason */
    co_store *st = gwf_store(f);
    co_rollout_event_list ev;
    assert_int_equal(co_store_rollout_events(st, "roll", 0, &ev), 0);
    int rollbacks = 0;
    for (size_t i = 0; i < ev.n; i++)
        if (!strcmp(ev.v[i].kind, "rollback")) {
            rollbacks++;
            assert_string_equal(ev.v[i].reason, "error rate");
            assert_string_equal(ev.v[i].actor, "admin-api");
        }
    assert_int_equal(rollbacks, 5);
    co_rollout_event_list_free(&ev);

    /* another process writes a mode into the store: the poll picks it up */
    assert_int_equal(co_store_workload_state_set(st, "roll", "candidate", 0, "user:elsewhere", NULL), 0);
    co_store_close(st);
    CURL *h = curl_easy_init();
    long long deadline = gwf_now_ms() + 3000;
    while (!arm_of(f, h, "roll", "u"))
        assert_true(gwf_now_ms() < deadline);
    curl_easy_cleanup(h);

    /* a restart keeps the stored mode over the config's */
    assert_int_equal(gwf_gw_stop(f), 0);
    assert_int_equal(gwf_gw_start(f, NULL, NULL), 0);
    h = curl_easy_init();
    assert_int_equal(arm_of(f, h, "roll", "u"), 1);
    assert_int_equal(arm_of(f, h, "chat", "u"), 0);
    curl_easy_cleanup(h);
}

static void test_admin_token(void **state)
{
    NEED(state);
    char *resp = NULL;
    assert_int_equal(gwf_admin(f, "/admin/workloads", NULL, NULL, &resp), 401);
    json_t *j = json_loads(resp, 0, NULL);
    assert_string_equal(gwf_jstr(j, "error", "type"), "authentication_error");
    json_decref(j);
    free(resp);
    assert_int_equal(gwf_admin(f, "/admin/workloads", NULL, "wrong-token", NULL), 403);
    assert_int_equal(gwf_admin(f, "/admin/workloads/chat/rollback", "{}", "s3cret-admin-tokeX", NULL), 403);
    assert_int_equal(gwf_admin(f, "/admin/workloads/chat/rollback", "{}", NULL, NULL), 401);
    assert_int_equal(gwf_admin(f, "/admin/workloads", NULL, "s3cret-admin-token", NULL), 200);
    assert_int_equal(gwf_admin(f, "/admin/workloads/chat/rollback", "{}", "s3cret-admin-token", NULL), 200);
    /* the chat API is not behind the admin token */
    co_test_http h;
    gwf_chat(f, &h, "chat", 0, "hello", NULL);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);
}

static void test_admin_refused_off_loopback(void **state)
{
    NEED(state);
    /* no token and a listener on every interface: the admin API is off */
    char *resp = NULL;
    assert_int_equal(gwf_admin(f, "/admin/workloads", NULL, NULL, &resp), 403);
    assert_non_null(strstr(resp, "token"));
    free(resp);
    assert_int_equal(gwf_admin(f, "/admin/workloads/chat/rollback", "{}", "anything", NULL), 403);
}

static void test_admin_own_listener(void **state)
{
    NEED(state);
    /* admin.listen set: /admin is not on the main listener */
    assert_int_equal(gwf_admin(f, "/admin/workloads", NULL, NULL, NULL), 404);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", admin_port);
    co_test_http h;
    char url[128];
    snprintf(url, sizeof url, "%s/admin/workloads", base);
    co_test_http_do(&h, "GET", url, NULL, NULL, 0);
    assert_int_equal(h.status, 200);
    assert_non_null(strstr(h.body, "\"name\":\"roll\""));
    co_test_http_free(&h);
    snprintf(url, sizeof url, "%s/admin/workloads/roll/mode", base);
    co_test_http_do(&h, "POST", url, NULL, "{\"mode\":\"candidate\"}", 0);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);
    CURL *c = curl_easy_init();
    assert_int_equal(arm_of(f, c, "roll", "u"), 1);
    curl_easy_cleanup(c);
    snprintf(url, sizeof url, "%s/metrics", base);
    co_test_http_do(&h, "GET", url, NULL, NULL, 0);
    assert_int_equal(h.status, 200);
    assert_non_null(strstr(h.body, "cutover_workload_mode{workload=\"roll\",mode=\"candidate\"} 1"));
    co_test_http_free(&h);
    snprintf(url, sizeof url, "%s/v1/chat/completions", base);
    co_test_http_do(&h, "POST", url, GWF_OA, "{}", 0);
    assert_int_equal(h.status, 404); /* the admin listener serves no model traffic */
    co_test_http_free(&h);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_canary_sticky, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_every_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_token, setup_token, teardown),
        cmocka_unit_test_setup_teardown(test_admin_refused_off_loopback, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_admin_own_listener, setup_admin_listener, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
