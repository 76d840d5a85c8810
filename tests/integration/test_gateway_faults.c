/* Upstream faults through `cutover serve` against `cutover sim`: 500, 429
 * with retry-after, Anthropic's 529 overloaded, a first-byte timeout, a
 * connection reset, a truncated JSON body and truncated streams — each
 * reaches the client faithfully in the client's own API shape (passed
 * through on the same API, re-shaped across APIs; in-stream errors once
 * bytes were sent), is recorded with its error class and counted on
 * /metrics, and the gateway keeps serving. */
#include "test_gateway_fixture.h"

static const char *SCENARIO =
    "seed: 9\n"
    "api_key: sk-provider\n"
    "models:\n"
    "  ok-oa: {provider: openai, template: \"fine\"}\n"
    "  f500-oa: {provider: openai, faults: {error_500: 1}}\n"
    "  f500-an: {provider: anthropic, faults: {error_500: 1}}\n"
    "  f429-oa: {provider: openai, faults: {error_429: 1, retry_after: 2s}}\n"
    "  over-an: {provider: anthropic, faults: {overloaded: 1}}\n"
    "  hang-oa: {provider: openai, faults: {timeout: 1}}\n"
    "  rst-oa: {provider: openai, faults: {reset: 1}}\n"
    "  cut-oa: {provider: openai, faults: {truncate: 1}, verbosity: 4}\n"
    "  cut-an: {provider: anthropic, faults: {truncate: 1}, verbosity: 4}\n";

static const char *CONFIG =
    "listen: 127.0.0.1:0\n"
    "workers: 2\n"
    "store: sqlite:{DB}\n"
    "log_level: error\n"
    "recorder: {flush_interval: 20ms}\n"
    "providers:\n"
    "  oa: {kind: openai, base_url: \"{SIM}/v1\", api_key_env: OA_KEY, first_byte_timeout: 400ms}\n"
    "  an: {kind: anthropic, base_url: \"{SIM}\", api_key_env: AN_KEY}\n"
    "  badkey: {kind: openai, base_url: \"{SIM}/v1\", api_key_env: BAD_KEY}\n"
    "models:\n"
    "  ok-badkey: {provider: badkey, upstream: ok-oa}\n"
    "  ok-oa: {provider: oa}\n"
    "  f500-oa: {provider: oa}\n"
    "  f500-an: {provider: an}\n"
    "  f429-oa: {provider: oa}\n"
    "  over-an: {provider: an}\n"
    "  hang-oa: {provider: oa}\n"
    "  rst-oa: {provider: oa}\n"
    "  cut-oa: {provider: oa}\n"
    "  cut-an: {provider: an}\n"
    "workloads:\n"
    "  ok: {incumbent: ok-oa}\n"
    "  badkey: {incumbent: ok-badkey}\n"
    "  e500: {incumbent: f500-oa}\n"
    "  e500an: {incumbent: f500-an}\n"
    "  e429: {incumbent: f429-oa}\n"
    "  over: {incumbent: over-an}\n"
    "  hang: {incumbent: hang-oa}\n"
    "  rst: {incumbent: rst-oa}\n"
    "  cut: {incumbent: cut-oa}\n"
    "  cutan: {incumbent: cut-an}\n";

static int setup(void **state)
{
    gwf *f = gwf_new();
    *state = f;
    if (!f)
        return 0;
    if (gwf_sim_start(f, SCENARIO) || gwf_config(f, CONFIG))
        return -1;
    char *env[] = {"BAD_KEY=sk-wrong-provider-secret", NULL};
    return gwf_gw_start(f, NULL, env);
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

static void check_openai_error(co_test_http *h, long status, const char *type)
{
    if (h->status != status)
        fprintf(stderr, "expected %ld, got %ld: %s\n", status, h->status, h->body);
    assert_int_equal(h->status, status);
    json_t *j = gwf_json(h);
    assert_non_null(gwf_jstr(j, "error", "message"));
    if (type)
        assert_string_equal(gwf_jstr(j, "error", "type"), type);
    json_decref(j);
}

static void check_anthropic_error(co_test_http *h, long status, const char *type)
{
    if (h->status != status)
        fprintf(stderr, "expected %ld, got %ld: %s\n", status, h->status, h->body);
    assert_int_equal(h->status, status);
    json_t *j = gwf_json(h);
    assert_string_equal(gwf_jstr(j, "type", NULL), "error");
    assert_string_equal(gwf_jstr(j, "error", "type"), type);
    assert_non_null(gwf_jstr(j, "error", "message"));
    json_decref(j);
}

static void test_http_errors(void **state)
{
    NEED(state);
    co_test_http h;
    char v[64];
    /* same API: the upstream's body as it came */
    gwf_chat(f, &h, "e500", 0, "x", NULL);
    check_openai_error(&h, 500, "server_error");
    gwf_header(&h, "X-Cutover-Arm", v, sizeof v);
    assert_string_equal(v, "incumbent");
    co_test_http_free(&h);
    gwf_chat(f, &h, "e500", 1, "x", NULL); /* a stream that fails before it starts: a JSON error */
    check_openai_error(&h, 500, "server_error");
    co_test_http_free(&h);
    /* across APIs: re-shaped */
    gwf_messages(f, &h, "e500", 0, "x");
    check_anthropic_error(&h, 500, "api_error");
    co_test_http_free(&h);
    gwf_chat(f, &h, "e500an", 0, "x", NULL);
    check_openai_error(&h, 500, NULL);
    co_test_http_free(&h);

    /* 429 with retry-after, passed through either way */
    gwf_chat(f, &h, "e429", 0, "x", NULL);
    check_openai_error(&h, 429, NULL);
    gwf_header(&h, "retry-after", v, sizeof v);
    assert_string_equal(v, "2");
    gwf_header(&h, "retry-after-ms", v, sizeof v);
    assert_string_equal(v, "2000");
    co_test_http_free(&h);
    gwf_messages(f, &h, "e429", 1, "x");
    check_anthropic_error(&h, 429, "rate_limit_error");
    gwf_header(&h, "retry-after", v, sizeof v);
    assert_string_equal(v, "2");
    co_test_http_free(&h);

    /* Anthropic's 529 overloaded: as is for Anthropic clients, 503 for OpenAI ones */
    gwf_messages(f, &h, "over", 0, "x");
    check_anthropic_error(&h, 529, "overloaded_error");
    co_test_http_free(&h);
    gwf_chat(f, &h, "over", 0, "x", NULL);
    check_openai_error(&h, 503, NULL);
    co_test_http_free(&h);

    /* the provider refuses the gateway's key: a 502 that never quotes it */
    gwf_chat(f, &h, "badkey", 0, "x", NULL);
    check_openai_error(&h, 502, NULL);
    assert_non_null(strstr(h.body, "credentials"));
    assert_null(strstr(h.body, "sk-wrong"));
    co_test_http_free(&h);
    gwf_messages(f, &h, "badkey", 1, "x");
    check_anthropic_error(&h, 502, "api_error");
    assert_null(strstr(h.body, "sk-wrong"));
    co_test_http_free(&h);

    gwf_chat(f, &h, "ok", 0, "x", NULL);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);
}

static void test_transfer_errors(void **state)
{
    NEED(state);
    co_test_http h;
    /* no first byte within the provider's first_byte_timeout (400 ms) */
    gwf_chat(f, &h, "hang", 0, "x", NULL);
    check_openai_error(&h, 504, NULL);
    assert_true(h.seconds < 3);
    co_test_http_free(&h);
    gwf_messages(f, &h, "hang", 1, "x");
    check_anthropic_error(&h, 504, "api_error");
    co_test_http_free(&h);

    gwf_chat(f, &h, "rst", 0, "x", NULL);
    check_openai_error(&h, 502, NULL);
    co_test_http_free(&h);
    gwf_messages(f, &h, "rst", 1, "x");
    check_anthropic_error(&h, 502, "api_error");
    co_test_http_free(&h);

    /* a JSON body cut short */
    gwf_chat(f, &h, "cut", 0, "tell me a long story about the sea", NULL);
    check_openai_error(&h, 502, NULL);
    co_test_http_free(&h);

    /* streams cut half-way: what was sent stays, then the API's own in-stream error */
    gwf_chat(f, &h, "cut", 1, "tell me a long story about the sea", NULL);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.curl_code, CURLE_OK); /* the gateway ends its stream properly */
    co_test_sse s;
    assert_int_equal(co_test_sse_parse(h.body, h.body_len, &s), 0);
    assert_true(s.complete && s.n >= 2);
    assert_null(strstr(h.body, "[DONE]"));
    json_t *last = json_loads(s.v[s.n - 1].data, 0, NULL);
    assert_non_null(json_object_get(last, "error"));
    assert_non_null(strstr(gwf_jstr(last, "error", "message"), "ended early"));
    json_decref(last);
    for (size_t i = 0; i + 1 < s.n; i++) { /* every event before it is whole */
        json_t *c = json_loads(s.v[i].data, 0, NULL);
        assert_non_null(c);
        json_decref(c);
    }
    co_test_sse_free(&s);
    co_test_http_free(&h);

    gwf_messages(f, &h, "cutan", 1, "tell me a long story about the sea");
    assert_int_equal(h.status, 200);
    assert_int_equal(co_test_sse_parse(h.body, h.body_len, &s), 0);
    assert_true(s.complete);
    assert_string_equal(s.v[0].event, "message_start");
    assert_string_equal(s.v[s.n - 1].event, "error");
    json_t *e = json_loads(s.v[s.n - 1].data, 0, NULL);
    assert_string_equal(gwf_jstr(e, "type", NULL), "error");
    assert_string_equal(gwf_jstr(e, "error", "type"), "api_error");
    json_decref(e);
    co_test_sse_free(&s);
    co_test_http_free(&h);

    /* translated: an OpenAI stream cut, delivered to an Anthropic client */
    gwf_messages(f, &h, "cut", 1, "tell me a long story about the sea");
    assert_int_equal(h.status, 200);
    assert_int_equal(co_test_sse_parse(h.body, h.body_len, &s), 0);
    assert_string_equal(s.v[s.n - 1].event, "error");
    co_test_sse_free(&s);
    co_test_http_free(&h);

    gwf_chat(f, &h, "ok", 1, "x", NULL);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);

    /* counted on /metrics */
    co_test_http_do(&h, "GET", gwf_url(f, "/metrics"), NULL, NULL, 0);
    assert_non_null(strstr(h.body, "cutover_errors_total{workload=\"hang\",arm=\"incumbent\",role=\"served\",class=\"timeout\"} 2"));
    assert_non_null(strstr(h.body, "cutover_errors_total{workload=\"rst\",arm=\"incumbent\",role=\"served\",class=\"reset\"} 2"));
    assert_non_null(strstr(h.body, "cutover_errors_total{workload=\"cut\",arm=\"incumbent\",role=\"served\",class=\"truncated\"} 3"));
    co_test_http_free(&h);

    /* and recorded */
    assert_int_equal(gwf_gw_stop(f), 0);
    co_store *st = gwf_store(f);
    struct {
        const char *wl, *cls;
        int n;
    } want[] = {{"hang", "timeout", 2}, {"rst", "reset", 2}, {"cut", "truncated", 3}, {"cutan", "truncated", 1}};
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        co_window_query q = {.workload = want[k].wl};
        co_exchange_list l;
        assert_int_equal(co_store_exchanges(st, &q, &l), 0);
        assert_int_equal(l.n, (size_t)want[k].n);
        for (size_t i = 0; i < l.n; i++)
            assert_string_equal(l.v[i].x.error_class, want[k].cls);
        co_exchange_list_free(&l);
    }
    co_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transfer_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
