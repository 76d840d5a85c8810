/* Shadow mode through `cutover serve` against `cutover sim`: both arms run,
 * the incumbent serves, and both exchanges are recorded as one pair (read
 * back from the store after the gateway stopped and the recorder flushed);
 * a shadow slowed to 2 s or failing every call changes neither the served
 * status nor its latency, JSON and SSE alike; a client that goes away
 * cancels the served call while its shadow still completes and is recorded. */
#include "test_gateway_fixture.h"

static const char *SCENARIO =
    "seed: 11\n"
    "api_key: sk-provider\n"
    "models:\n"
    "  gpt-4o: {provider: openai, template: \"Answer from {{model}}: {{last_user}}\"}\n"
    "  claude-sonnet-4: {provider: anthropic, template: \"Claude: {{last_user}}\"}\n"
    "  claude-slow: {provider: anthropic, template: \"Slow Claude: {{last_user}}\"}\n"
    "  hang: {provider: openai, faults: {timeout: 1}}\n";

static const char *CONFIG =
    "listen: 127.0.0.1:0\n"
    "workers: 2\n"
    "store: sqlite:{DB}\n"
    "log_level: warn\n"
    "recorder: {flush_interval: 20ms}\n"
    "providers:\n"
    "  oa: {kind: openai, base_url: \"{SIM}/v1\", api_key_env: OA_KEY}\n"
    "  an: {kind: anthropic, base_url: \"{SIM}\", api_key_env: AN_KEY}\n"
    "models:\n"
    "  gpt-4o: {provider: oa, price_input: 2.5, price_output: 10}\n"
    "  claude: {provider: an, upstream: claude-sonnet-4, price_input: 3, price_output: 15}\n"
    "  claude-slow: {provider: an}\n"
    "  hang: {provider: oa}\n"
    "workloads:\n"
    "  chat: {incumbent: gpt-4o, candidate: claude, mode: shadow}\n"
    "  slowshadow: {incumbent: gpt-4o, candidate: claude-slow, mode: shadow}\n"
    "  hangserved: {incumbent: hang, candidate: claude, mode: shadow}\n";

static int setup(void **state)
{
    gwf *f = gwf_new();
    *state = f;
    if (!f)
        return 0;
    if (gwf_sim_start(f, SCENARIO) || gwf_config(f, CONFIG))
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

typedef struct sent {
    char id[40];
    char *text;
    int stream;
} sent;

static void test_pairs_recorded(void **state)
{
    NEED(state);
    sent s[12];
    int n = 0;
    for (int i = 0; i < 12; i++, n++) {
        co_test_http h;
        char text[64];
        snprintf(text, sizeof text, "question number %d", i);
        int stream = i % 2;
        if (i < 8)
            gwf_chat(f, &h, "chat", stream, text, "user-7");
        else
            gwf_messages(f, &h, "chat", stream, text);
        assert_int_equal(h.status, 200);
        assert_int_equal(h.curl_code, CURLE_OK);
        char v[64];
        gwf_header(&h, "X-Cutover-Arm", v, sizeof v);
        assert_string_equal(v, "incumbent");
        gwf_header(&h, "X-Cutover-Workload", v, sizeof v);
        assert_string_equal(v, "chat");
        gwf_header(&h, "X-Cutover-Request-Id", s[i].id, sizeof s[i].id);
        s[i].stream = stream;
        s[i].text = i < 8 ? gwf_openai_text(&h, stream) : gwf_anthropic_text(&h, stream);
        char want[128];
        snprintf(want, sizeof want, "Answer from gpt-4o: %s", text);
        assert_string_equal(s[i].text, want); /* the incumbent's answer, untouched by the shadow */
        co_test_http_free(&h);
    }
    /* stopping flushes the recorder */
    assert_int_equal(gwf_gw_stop(f), 0);
    co_store *st = gwf_store(f);
    assert_non_null(st);
    co_pair *pairs = NULL;
    size_t np = 0;
    assert_int_equal(co_store_pairs(st, "chat", 100, 0, &pairs, &np), 0);
    assert_int_equal(np, (size_t)n);
    int matched = 0;
    for (size_t k = 0; k < np; k++) {
        const co_exchange *sv = &pairs[k].served.x, *sh = &pairs[k].shadow.x;
        assert_string_equal(sv->pair_id, sh->pair_id);
        assert_string_equal(sv->role, "served");
        assert_string_equal(sv->arm, "incumbent");
        assert_string_equal(sv->model, "gpt-4o");
        assert_string_equal(sh->role, "shadow");
        assert_string_equal(sh->arm, "candidate");
        assert_string_equal(sh->model, "claude");
        assert_int_equal(sv->status, 200);
        assert_int_equal(sh->status, 200);
        assert_null(sv->error_class);
        assert_null(sh->error_class);
        assert_int_equal(sv->stream, sh->stream);
        assert_true(sh->tokens_out > 0);
        assert_true(sh->cost_usd > 0);
        assert_non_null(sh->output_text);
        assert_non_null(strstr(sh->output_text, "Claude: question number"));
        assert_string_equal(sh->finish_reason, "stop");
        assert_non_null(sv->request_json);
        assert_non_null(strstr(sv->request_json, "question number"));
        /* stored once per pair, shown on both rows */
        assert_non_null(sh->request_json);
        assert_string_equal(sh->request_json, sv->request_json);
        if (sv->stream)
            assert_true(sv->ttft_ms >= 0 && sh->ttft_ms >= 0);
        for (int i = 0; i < n; i++)
            if (!strcmp(s[i].id, sv->request_id)) {
                matched++;
                assert_string_equal(sv->output_text, s[i].text); /* what the client got is what was recorded */
                assert_int_equal(sv->stream, s[i].stream);
                assert_string_equal(sv->api, i < 8 ? "openai" : "anthropic");
                if (i < 8)
                    assert_string_equal(sv->user_key, "user-7");
            }
    }
    assert_int_equal(matched, n);
    co_pairs_free(pairs, np);
    co_store_close(st);
    for (int i = 0; i < n; i++)
        free(s[i].text);
}

static void sim_patch(gwf *f, const char *model, const char *json)
{
    co_test_http h;
    char path[128];
    snprintf(path, sizeof path, "/_sim/models/%s", model);
    co_test_http_do(&h, "POST", gwf_sim_url(f, path), NULL, json, 0);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);
}

/* The requests the sim has received for model (its /_sim/stats). */
static long long sim_model_requests(gwf *f, const char *model)
{
    co_test_http h;
    co_test_http_do(&h, "GET", gwf_sim_url(f, "/_sim/stats"), NULL, NULL, 5000);
    json_t *j = h.status == 200 ? json_loadb(h.body, h.body_len, 0, NULL) : NULL;
    long long n = json_integer_value(json_object_get(json_object_get(json_object_get(j, "models"), model), "requests"));
    json_decref(j);
    co_test_http_free(&h);
    return n;
}

/* The shadow calls run on after the served answers: before the sim's next
 * patch, wait until it has received them all, so that none of them meets
 * the next phase's faults. Bounded: 10 s. */
static void wait_sim_requests(gwf *f, const char *model, long long want)
{
    for (int i = 0; i < 1000 && sim_model_requests(f, model) < want; i++)
        usleep(10000);
    assert_true(sim_model_requests(f, model) >= want);
}

static void test_slow_and_failing_shadow(void **state)
{
    NEED(state);
    sim_patch(f, "claude-slow", "{\"latency\":{\"ttft\":\"2s\"}}");
    double worst = 0;
    for (int i = 0; i < 6; i++) {
        co_test_http h;
        if (i < 4)
            gwf_chat(f, &h, "slowshadow", i % 2, "take your time", NULL);
        else
            gwf_messages(f, &h, "slowshadow", i % 2, "take your time");
        assert_int_equal(h.status, 200);
        assert_int_equal(h.curl_code, CURLE_OK);
        if (h.seconds > worst)
            worst = h.seconds;
        co_test_http_free(&h);
    }
    assert_true(worst < 1.0); /* the shadow takes 2 s; the served answer never waits for it */

    wait_sim_requests(f, "claude-slow", 6);
    sim_patch(f, "claude-slow", "{\"restore\":true,\"faults\":{\"error_500\":1}}");
    for (int i = 0; i < 4; i++) {
        co_test_http h;
        gwf_chat(f, &h, "slowshadow", i % 2, "shadow fails", NULL);
        assert_int_equal(h.status, 200);
        char *t = gwf_openai_text(&h, i % 2);
        assert_string_equal(t, "Answer from gpt-4o: shadow fails");
        free(t);
        co_test_http_free(&h);
    }
    wait_sim_requests(f, "claude-slow", 10);
    sim_patch(f, "claude-slow", "{\"restore\":true,\"faults\":{\"reset\":1}}");
    co_test_http h;
    gwf_chat(f, &h, "slowshadow", 1, "shadow resets", NULL);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.curl_code, CURLE_OK);
    co_test_http_free(&h);

    /* the stop waits for the slow shadows, and every one is recorded */
    assert_int_equal(gwf_gw_stop(f), 0);
    co_store *st = gwf_store(f);
    co_window_query q = {.workload = "slowshadow", .role = "shadow", .with_text = 1};
    co_exchange_list l;
    assert_int_equal(co_store_exchanges(st, &q, &l), 0);
    assert_int_equal(l.n, 11);
    int slow = 0, failed = 0, reset = 0;
    for (size_t i = 0; i < l.n; i++) {
        const co_exchange *x = &l.v[i].x;
        if (!x->error_class) {
            slow++;
            assert_true(x->latency_ms >= 1900);
            assert_non_null(strstr(x->output_text, "Slow Claude"));
        } else if (!strcmp(x->error_class, "5xx")) {
            failed++;
            assert_int_equal(x->status, 500);
        } else if (!strcmp(x->error_class, "reset")) {
            reset++;
        } else {
            fail_msg("shadow %zu: unexpected error class %s (status %d)", i, x->error_class, x->status);
        }
    }
    assert_int_equal(slow, 6);
    assert_int_equal(failed, 4);
    assert_int_equal(reset, 1);
    co_exchange_list_free(&l);
    co_window_query qs = {.workload = "slowshadow", .role = "served"};
    co_window_summary sum;
    assert_int_equal(co_store_window_summary(st, &qs, &sum), 0);
    assert_int_equal(sum.count, 11);
    assert_int_equal(sum.errors, 0);
    assert_true(sum.latency_ms_max < 1000);
    co_store_close(st);
}

static void test_client_gone(void **state)
{
    NEED(state);
    /* the served model never answers; the client gives up after 300 ms */
    co_test_http h;
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"hangserved\",\"messages\":[{\"role\":\"user\",\"content\":\"anyone?\"}]}");
    co_test_http_do(&h, "POST", gwf_url(f, "/v1/chat/completions"), GWF_OA, body, 300);
    assert_int_equal(h.curl_code, CURLE_OPERATION_TIMEDOUT);
    co_test_http_free(&h);
    /* the served call is cancelled: nothing stays in flight upstream */
    long long deadline = gwf_now_ms() + 3000;
    for (;;) {
        co_test_http_do(&h, "GET", gwf_url(f, "/metrics"), NULL, NULL, 0);
        int idle = strstr(h.body, "\ncutover_upstream_in_flight 0\n") != NULL;
        co_test_http_free(&h);
        if (idle)
            break;
        assert_true(gwf_now_ms() < deadline);
        usleep(50000);
    }
    assert_int_equal(gwf_gw_stop(f), 0);
    co_store *st = gwf_store(f);
    co_pair *pairs = NULL;
    size_t np = 0;
    assert_int_equal(co_store_pairs(st, "hangserved", 10, 0, &pairs, &np), 0);
    assert_int_equal(np, 1);
    assert_int_equal(pairs[0].served.x.status, 499); /* closed by the client */
    assert_string_equal(pairs[0].served.x.finish_reason, "cancelled");
    assert_int_equal(pairs[0].shadow.x.status, 200); /* the shadow finished anyway */
    assert_non_null(strstr(pairs[0].shadow.x.output_text, "Claude: anyone?"));
    co_pairs_free(pairs, np);
    co_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pairs_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_and_failing_shadow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
