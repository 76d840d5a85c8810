/* Integration tests of `cutover serve` against `cutover sim --record` and a
 * scripted fake upstream: the ready line, /healthz, /readyz, /metrics,
 * /v1/models; what the upstream received (rewritten model, the provider's
 * key, never the client's); byte-faithful passthrough of JSON and SSE on the
 * fast path; every bad input answered with a clear 4xx in the API's own
 * shape while the gateway keeps serving; SIGHUP reload (a broken file keeps
 * the running config). */
#include <sys/wait.h>

#include "test_gateway_fixture.h"

static const char *SCENARIO =
    "seed: 7\n"
    "api_key: sk-provider\n"
    "models:\n"
    "  gpt-4o: {provider: openai, template: \"Answer from {{model}}: {{last_user}}\"}\n"
    "  claude-sonnet-4: {provider: anthropic, template: \"Claude: {{last_user}}\"}\n";

#define CONFIG \
    "listen: 127.0.0.1:0\n" \
    "workers: 2\n" \
    "store: sqlite:{DB}\n" \
    "log_level: warn\n" \
    "limits: {max_body: 16k, header_timeout: 1s}\n" \
    "providers:\n" \
    "  oa: {kind: openai, base_url: \"{SIM}/v1\", api_key_env: OA_KEY}\n" \
    "  an: {kind: anthropic, base_url: \"{SIM}\", api_key_env: AN_KEY}\n" \
    "  fake: {kind: openai, base_url: \"{FAKE}/v1\", api_key_env: FAKE_KEY}\n" \
    "models:\n" \
    "  gpt-4o: {provider: oa}\n" \
    "  claude: {provider: an, upstream: claude-sonnet-4}\n" \
    "  fakemodel: {provider: fake, upstream: fake-upstream-id}\n" \
    "workloads:\n" \
    "  chat: {incumbent: gpt-4o, candidate: claude, mode: %s, match: {models: [chat-model]}}\n" \
    "  support: {incumbent: claude, match: {models: [claude-alias]}}\n" \
    "  raw: {incumbent: fakemodel, match: {models: [raw-model]}}\n"

static void write_config_extra(gwf *f, const char *mode, const char *extra)
{
    char buf[4096];
    snprintf(buf, sizeof buf, CONFIG "%s", mode, extra);
    assert_int_equal(gwf_config(f, buf), 0);
}

static void write_config(gwf *f, const char *mode) { write_config_extra(f, mode, ""); }

static int setup(void **state)
{
    gwf *f = gwf_new();
    *state = f;
    if (!f)
        return 0;
    if (gwf_sim_start(f, SCENARIO))
        return -1;
    write_config(f, "incumbent");
    return gwf_gw_start(f, NULL, NULL);
}

static int teardown(void **state)
{
    gwf *f = *state;
    if (!f)
        return 0;
    int rc = gwf_gw_stop(f);
    gwf_free(f);
    return rc == 0 ? 0 : -1; /* a clean stop (and, under ASan, no leaks) */
}

#define NEED(state)                                                                                                \
    gwf *f = *(state);                                                                                             \
    if (!f)                                                                                                        \
    skip()

static void test_ready_and_ops(void **state)
{
    NEED(state);
    char want[128];
    snprintf(want, sizeof want, "cutover serve listening on 127.0.0.1:%d", f->gw.port);
    assert_string_equal(f->gw.line, want);

    co_test_http h;
    co_test_http_do(&h, "GET", gwf_url(f, "/healthz"), NULL, NULL, 0);
    assert_int_equal(h.status, 200);
    char v[128];
    gwf_header(&h, "X-Cutover-Request-Id", v, sizeof v);
    assert_int_equal(strlen(v), 32);
    gwf_header(&h, "X-Cutover-Arm", v, sizeof v);
    assert_string_equal(v, "none");
    co_test_http_free(&h);
    co_test_http_do(&h, "GET", gwf_url(f, "/readyz"), NULL, NULL, 0);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);

    /* the models list: workload names and aliases */
    co_test_http_do(&h, "GET", gwf_url(f, "/v1/models"), GWF_OA, NULL, 0);
    assert_int_equal(h.status, 200);
    json_t *j = gwf_json(&h);
    assert_string_equal(gwf_jstr(j, "object", NULL), "list");
    json_t *data = json_object_get(j, "data");
    int seen = 0;
    for (size_t i = 0; i < json_array_size(data); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(data, i), "id"));
        seen += !strcmp(id, "chat") + !strcmp(id, "chat-model") + !strcmp(id, "support") + !strcmp(id, "raw");
    }
    assert_int_equal(seen, 4);
    json_decref(j);
    co_test_http_free(&h);
    co_test_http_do(&h, "GET", gwf_url(f, "/v1/models"), GWF_AN, NULL, 0);
    j = gwf_json(&h);
    assert_string_equal(gwf_jstr(json_array_get(json_object_get(j, "data"), 0), "type", NULL), "model");
    assert_true(json_is_false(json_object_get(j, "has_more")));
    json_decref(j);
    co_test_http_free(&h);

    /* a request, then its series on /metrics */
    gwf_chat(f, &h, "chat-model", 0, "count me", NULL);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);
    co_test_http_do(&h, "GET", gwf_url(f, "/metrics"), NULL, NULL, 0);
    assert_int_equal(h.status, 200);
    gwf_header(&h, "Content-Type", v, sizeof v);
    assert_non_null(strstr(v, "text/plain"));
    const char *series[] = {
        "cutover_requests_total{workload=\"chat\",arm=\"incumbent\",role=\"served\"} 1",
        "cutover_request_duration_seconds_bucket{workload=\"chat\",arm=\"incumbent\",role=\"served\",le=\"+Inf\"} 1",
        "cutover_tokens_total{",
        "cutover_cost_usd_total{",
        "cutover_errors_total{",
        "cutover_time_to_first_token_seconds_bucket{",
        "cutover_recorder_queue_depth ",
        "cutover_recorder_dropped_total{reason=\"queue_full\"} 0",
        "cutover_upstream_requests_total ",
        "cutover_upstream_in_flight ",
        "cutover_upstream_transfers_total{result=\"none\"}",
        "cutover_workload_mode{workload=\"chat\",mode=\"incumbent\"} 1",
    };
    for (size_t i = 0; i < sizeof series / sizeof *series; i++) {
        if (!strstr(h.body, series[i]))
            fprintf(stderr, "missing on /metrics: %s\n", series[i]);
        assert_non_null(strstr(h.body, series[i]));
    }
    co_test_http_free(&h);
}

static void test_upstream_received(void **state)
{
    NEED(state);
    co_test_http h;
    /* the sim only takes sk-provider: a 200 means the client's key was not sent */
    gwf_chat(f, &h, "chat-model", 0, "who sent this", NULL);
    assert_int_equal(h.status, 200);
    char v[128];
    gwf_header(&h, "X-Cutover-Workload", v, sizeof v);
    assert_string_equal(v, "chat");
    gwf_header(&h, "X-Cutover-Arm", v, sizeof v);
    assert_string_equal(v, "incumbent");
    co_test_http_free(&h);
    co_test_http_do(&h, "GET", gwf_sim_url(f, "/_sim/requests?limit=1"), NULL, NULL, 0);
    json_t *j = gwf_json(&h);
    json_t *rq = json_array_get(json_object_get(j, "requests"), 0);
    assert_string_equal(gwf_jstr(rq, "path", NULL), "/v1/chat/completions");
    json_t *body = json_loads(gwf_jstr(rq, "body", NULL), 0, NULL);
    assert_string_equal(gwf_jstr(body, "model", NULL), "gpt-4o"); /* the alias was rewritten */
    json_decref(body);
    json_t *hs = json_object_get(rq, "headers");
    assert_non_null(json_object_get(hs, "authorization"));
    assert_null(json_object_get(hs, "x-api-key"));
    json_decref(j);
    co_test_http_free(&h);

    /* Anthropic upstream: x-api-key and anthropic-version, no Authorization */
    gwf_chat(f, &h, "claude-alias", 0, "to claude", NULL);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);
    co_test_http_do(&h, "GET", gwf_sim_url(f, "/_sim/requests?limit=1"), NULL, NULL, 0);
    j = gwf_json(&h);
    rq = json_array_get(json_object_get(j, "requests"), 0);
    assert_string_equal(gwf_jstr(rq, "path", NULL), "/v1/messages");
    body = json_loads(gwf_jstr(rq, "body", NULL), 0, NULL);
    assert_string_equal(gwf_jstr(body, "model", NULL), "claude-sonnet-4");
    json_decref(body);
    hs = json_object_get(rq, "headers");
    assert_non_null(json_object_get(hs, "x-api-key"));
    assert_string_equal(gwf_jstr(hs, "anthropic-version", NULL), "2023-06-01");
    assert_null(json_object_get(hs, "authorization"));
    json_decref(j);
    co_test_http_free(&h);

    /* the exact bytes on the wire, from the fake upstream */
    static const char ok[] = "{\"id\":\"x\",\"object\":\"chat.completion\",\"model\":\"fake-upstream-id\",\"choices\":[{\"index\":0,"
                             "\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}";
    gwf_fake_script(&f->fake, 200, "application/json", ok, sizeof ok - 1, NULL, 0, 0);
    const char *hdrs[] = {"Authorization: Bearer client-secret-key", "Cookie: session=abc",
                          "Content-Type: application/json", NULL};
    co_test_http_do(&h, "POST", gwf_url(f, "/v1/chat/completions"), hdrs,
                    "{\"model\":\"raw-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);
    char *raw = gwf_fake_last(&f->fake);
    assert_non_null(strstr(raw, "POST /v1/chat/completions HTTP/1.1\r\n"));
    assert_non_null(strstr(raw, "\r\nAuthorization: Bearer sk-fake-provider\r\n"));
    assert_null(strstr(raw, "client-secret-key"));
    assert_null(strstr(raw, "session=abc"));
    assert_non_null(strstr(raw, "{\"model\":\"fake-upstream-id\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"));
    free(raw);
}

static void test_passthrough_bytes(void **state)
{
    NEED(state);
    /* JSON with unusual spacing comes back byte for byte */
    static const char json[] = "{ \"id\" : \"chatcmpl-1\",\n  \"object\":\"chat.completion\", \"created\":1,\"model\":\"m\","
                               "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"caf\\u00e9 \xe2\x9c\x93\"},"
                               "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5},"
                               "\"x_vendor_field\":[1,2,3]}\n";
    gwf_fake_script(&f->fake, 200, "application/json", json, sizeof json - 1, NULL, 0, 0);
    co_test_http h;
    co_test_http_do(&h, "POST", gwf_url(f, "/v1/chat/completions"), GWF_OA,
                    "{\"model\":\"raw-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.body_len, sizeof json - 1);
    assert_memory_equal(h.body, json, sizeof json - 1);
    co_test_http_free(&h);

    /* SSE: a comment, CRLF line ends, a multi-line data field, vendor
     * fields, written in pieces that cut events (and a CRLF) in half */
    static const char sse[] =
        ": keep-alive\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"x\":1}\r\n\r\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"content\":\"lo \xe2\x9c\x93\"},\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
        "\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n";
    size_t cuts[] = {5, 40, 200, 201, 330, 331, 500, sizeof sse - 4};
    gwf_fake_script(&f->fake, 200, "text/event-stream; charset=utf-8", sse, sizeof sse - 1, cuts, 8, 15);
    co_test_http_do(&h, "POST", gwf_url(f, "/v1/chat/completions"), GWF_OA,
                    "{\"model\":\"raw-model\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.curl_code, CURLE_OK);
    char v[128];
    gwf_header(&h, "Content-Type", v, sizeof v);
    assert_string_equal(v, "text/event-stream; charset=utf-8");
    gwf_header(&h, "X-Cutover-Arm", v, sizeof v);
    assert_string_equal(v, "incumbent");
    assert_int_equal(h.body_len, sizeof sse - 1);
    assert_memory_equal(h.body, sse, sizeof sse - 1);
    co_test_http_free(&h);

    /* the sim's stream through the gateway: complete and well formed */
    gwf_chat(f, &h, "chat-model", 1, "stream this please", NULL);
    assert_int_equal(h.status, 200);
    co_test_sse s;
    assert_int_equal(co_test_sse_parse(h.body, h.body_len, &s), 0);
    assert_true(s.complete);
    assert_string_equal(s.v[s.n - 1].data, "[DONE]");
    co_test_sse_free(&s);
    char *text = gwf_openai_text(&h, 1);
    assert_string_equal(text, "Answer from gpt-4o: stream this please");
    free(text);
    co_test_http_free(&h);
}

static void test_slow_client_big_stream(void **state)
{
    NEED(state);
    /* 3 MB of events read at 2 MB/s: the gateway holds at most ~1 MiB for
     * the client and pauses the upstream meanwhile; nothing is lost */
    size_t cap = 3u << 20, n = 0;
    char *sse = malloc(cap + 256);
    for (int i = 0; n + 200 < cap; i++)
        n += (size_t)sprintf(sse + n,
                             "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
                             "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token %06d \"},\"finish_reason\":null}]}\n\n",
                             i);
    n += (size_t)sprintf(sse + n, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
                                  "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
    gwf_fake_script(&f->fake, 200, "text/event-stream", sse, n, NULL, 0, 0);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)(2 << 20));
    co_test_http h;
    gwf_do(c, &h, "POST", gwf_url(f, "/v1/chat/completions"), GWF_OA,
           "{\"model\":\"raw-model\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 30000);
    curl_easy_cleanup(c);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.curl_code, CURLE_OK);
    assert_int_equal(h.body_len, n);
    assert_memory_equal(h.body, sse, n);
    co_test_http_free(&h);
    free(sse);
}

static void test_model_rewrite_exact(void **state)
{
    NEED(state);
    static const char ok[] = "{\"id\":\"x\",\"object\":\"chat.completion\",\"model\":\"m\",\"choices\":[{\"index\":0,"
                             "\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}";
    gwf_fake_script(&f->fake, 200, "application/json", ok, sizeof ok - 1, NULL, 0, 0);
    struct {
        const char *in, *out;
    } cases[] = {
        /* only the value's bytes change, wherever the key is and however it is spaced */
        {"{ \"messages\" : [ {\"role\":\"user\",\"content\":\"a \\\"model\\\": b\"} ] ,\n \"model\" :\t\"raw-model\" , \"n\":1 }",
         "{ \"messages\" : [ {\"role\":\"user\",\"content\":\"a \\\"model\\\": b\"} ] ,\n \"model\" :\t\"fake-upstream-id\" , \"n\":1 }"},
        {"{\"metadata\":{\"model\":\"keep-me\"},\"model\":\"raw-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "{\"metadata\":{\"model\":\"keep-me\"},\"model\":\"fake-upstream-id\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        co_test_http h;
        co_test_http_do(&h, "POST", gwf_url(f, "/v1/chat/completions"), GWF_OA, cases[i].in, 0);
        assert_int_equal(h.status, 200);
        co_test_http_free(&h);
        char *raw = gwf_fake_last(&f->fake);
        char *body = strstr(raw, "\r\n\r\n");
        assert_non_null(body);
        assert_string_equal(body + 4, cases[i].out);
        free(raw);
    }
    /* an escaped key that spells "model": still routed and rewritten right */
    co_test_http h;
    co_test_http_do(&h, "POST", gwf_url(f, "/v1/chat/completions"), GWF_OA,
                    "{\"mod\\u0065l\":\"raw-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);
    char *raw = gwf_fake_last(&f->fake);
    json_t *j = json_loads(strstr(raw, "\r\n\r\n") + 4, 0, NULL);
    assert_string_equal(gwf_jstr(j, "model", NULL), "fake-upstream-id");
    json_decref(j);
    free(raw);
}

static void test_missing_key_at_start(void **state)
{
    NEED(state);
    /* the test's own environment has no OA_KEY: serve refuses to start and says which */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "env -u OA_KEY AN_KEY=x FAKE_KEY=y '%s' serve -c '%s' --listen 127.0.0.1:0 2>&1",
             co_test_bin(), f->cfg_path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    assert_non_null(strstr(out, "OA_KEY"));
    assert_null(strstr(out, "listening on"));
}

static void expect_error(co_test_http *h, long status, int anthropic, const char *type, const char *needle)
{
    if (h->status != status)
        fprintf(stderr, "expected %ld, got %ld: %s\n", status, h->status, h->body);
    assert_int_equal(h->status, status);
    json_t *j = gwf_json(h);
    if (anthropic) {
        assert_string_equal(gwf_jstr(j, "type", NULL), "error");
        assert_string_equal(gwf_jstr(j, "error", "type"), type);
    } else {
        assert_string_equal(gwf_jstr(j, "error", "type"), type);
    }
    const char *msg = gwf_jstr(j, "error", "message");
    assert_non_null(msg);
    if (needle && !strstr(msg, needle))
        fprintf(stderr, "message '%s' lacks '%s'\n", msg, needle);
    if (needle)
        assert_non_null(strstr(msg, needle));
    char v[64];
    gwf_header(h, "X-Cutover-Request-Id", v, sizeof v);
    assert_int_equal(strlen(v), 32);
    json_decref(j);
}

static void still_serving(gwf *f)
{
    co_test_http h;
    gwf_chat(f, &h, "chat-model", 0, "still there?", NULL);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);
}

/* reads what fd sends until it closes (or ms pass); NUL-terminated */
static size_t read_until_close(int fd, char *buf, size_t n, int ms)
{
    size_t got = 0;
    long long end = gwf_now_ms() + ms;
    while (got + 1 < n) {
        long long left = end - gwf_now_ms();
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            break;
        ssize_t k = recv(fd, buf + got, n - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    buf[got] = '\0';
    return got;
}

static void test_bad_inputs(void **state)
{
    NEED(state);
    co_test_http h;
    const char *chat = gwf_url(f, "/v1/chat/completions");
    const char *msgs = gwf_url(f, "/v1/messages");

    co_test_http_do(&h, "POST", chat, GWF_OA, "{\"model\":\"chat-model\",\"messages\":[", 0);
    expect_error(&h, 400, 0, "invalid_request_error", NULL);
    co_test_http_free(&h);
    co_test_http_do(&h, "POST", msgs, GWF_AN, "{not json", 0);
    expect_error(&h, 400, 1, "invalid_request_error", NULL);
    co_test_http_free(&h);

    co_test_http_do(&h, "POST", chat, GWF_OA, "{\"model\":\"chat-model\",\"messages\":\"hello\"}", 0);
    expect_error(&h, 400, 0, "invalid_request_error", "messages");
    co_test_http_free(&h);
    co_test_http_do(&h, "POST", chat, GWF_OA, "{\"model\":\"chat-model\"}", 0);
    expect_error(&h, 400, 0, "invalid_request_error", "messages");
    co_test_http_free(&h);
    co_test_http_do(&h, "POST", chat, GWF_OA,
                    "{\"model\":\"chat-model\",\"temperature\":\"hot\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    expect_error(&h, 400, 0, "invalid_request_error", "temperature");
    co_test_http_free(&h);
    co_test_http_do(&h, "POST", msgs, GWF_AN, "{\"model\":\"claude-alias\",\"max_tokens\":10}", 0);
    expect_error(&h, 400, 1, "invalid_request_error", "messages");
    co_test_http_free(&h);

    /* invalid UTF-8 inside a string */
    co_test_http_do(&h, "POST", chat, GWF_OA,
                    "{\"model\":\"chat-model\",\"messages\":[{\"role\":\"user\",\"content\":\"bad \xff\xfe bytes\"}]}", 0);
    expect_error(&h, 400, 0, "invalid_request_error", NULL);
    co_test_http_free(&h);

    /* over limits.max_body (16k): the API's 413, and far over it libevent's */
    size_t big = 20000;
    char *b = malloc(big + 128);
    int n = snprintf(b, 128, "{\"model\":\"chat-model\",\"messages\":[{\"role\":\"user\",\"content\":\"");
    memset(b + n, 'x', big);
    strcpy(b + n + big, "\"}]}");
    co_test_http_do(&h, "POST", chat, GWF_OA, b, 0);
    expect_error(&h, 413, 0, "invalid_request_error", "limit");
    co_test_http_free(&h);
    co_test_http_do(&h, "POST", msgs, GWF_AN, b, 0);
    expect_error(&h, 413, 1, "request_too_large", "limit");
    co_test_http_free(&h);
    b = realloc(b, 200000);
    memset(b + n, 'x', 100000);
    strcpy(b + n + 100000, "\"}]}");
    co_test_http_do(&h, "POST", chat, GWF_OA, b, 0);
    assert_int_equal(h.status, 413);
    co_test_http_free(&h);
    free(b);

    /* routes and methods */
    co_test_http_do(&h, "GET", gwf_url(f, "/v2/nothing"), GWF_OA, NULL, 0);
    expect_error(&h, 404, 0, "invalid_request_error", "/v2/nothing");
    co_test_http_free(&h);
    co_test_http_do(&h, "GET", chat, GWF_OA, NULL, 0);
    expect_error(&h, 405, 0, "invalid_request_error", "POST");
    co_test_http_free(&h);
    co_test_http_do(&h, "DELETE", msgs, GWF_AN, NULL, 0);
    expect_error(&h, 405, 1, "invalid_request_error", "POST");
    co_test_http_free(&h);

    /* unknown workload: 404 naming the ones that exist */
    co_test_http_do(&h, "POST", chat, GWF_OA, "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    expect_error(&h, 404, 0, "invalid_request_error", "'chat', 'support', 'raw'");
    co_test_http_free(&h);
    const char *wh[] = {"X-Cutover-Workload: nosuch", "Content-Type: application/json", NULL};
    co_test_http_do(&h, "POST", msgs, wh,
                    "{\"model\":\"claude-alias\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    expect_error(&h, 404, 1, "not_found_error", "nosuch");
    co_test_http_free(&h);
    /* the header selects a workload whatever the model says */
    const char *wh2[] = {"X-Cutover-Workload: support", "Content-Type: application/json", NULL};
    co_test_http_do(&h, "POST", chat, wh2, "{\"model\":\"anything\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    assert_int_equal(h.status, 200);
    char v[64];
    gwf_header(&h, "X-Cutover-Workload", v, sizeof v);
    assert_string_equal(v, "support");
    co_test_http_free(&h);

    /* slow headers: after header_timeout (1 s) a 408 in a shape both APIs'
     * clients read as an error, then the connection is closed */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->gw.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char part[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n";
    assert_int_equal(send(fd, part, sizeof part - 1, MSG_NOSIGNAL), (ssize_t)(sizeof part - 1));
    char buf[2048];
    size_t got = read_until_close(fd, buf, sizeof buf, 5000);
    assert_true(got > 0);
    assert_memory_equal(buf, "HTTP/1.1 408", 12);
    assert_non_null(strstr(buf, "X-Cutover-Request-Id: "));
    const char *json = strstr(buf, "\r\n\r\n");
    assert_non_null(json);
    json_error_t jerr;
    json_t *j = json_loads(json + 4, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "type")), "request_timeout");
    assert_non_null(json_string_value(json_object_get(json_object_get(j, "error"), "message")));
    json_decref(j);
    close(fd);

    /* a kept-alive connection that stays idle is closed without a word */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char full[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send(fd, full, sizeof full - 1, MSG_NOSIGNAL), (ssize_t)(sizeof full - 1));
    got = read_until_close(fd, buf, sizeof buf, 5000);
    assert_memory_equal(buf, "HTTP/1.1 200", 12);
    assert_null(strstr(buf, " 408 "));
    close(fd);

    /* a request the HTTP layer refuses itself (headers over the limit) gets
     * that answer alone, no 408 after it */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char *huge = malloc(200 * 1024);
    assert_non_null(huge);
    int hl = snprintf(huge, 200 * 1024, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(huge + hl, 'a', 150 * 1024);
    hl += 150 * 1024;
    memcpy(huge + hl, "\r\n\r\n", 4);
    hl += 4;
    (void)send(fd, huge, (size_t)hl, MSG_NOSIGNAL);
    free(huge);
    got = read_until_close(fd, buf, sizeof buf, 5000);
    assert_null(strstr(buf, " 408 "));
    close(fd);

    still_serving(f);
}

static void test_reload(void **state)
{
    NEED(state);
    co_test_http h;
    /* a broken file: logged, the running config stays */
    char *bad = co_test_write(f->dir, "cutover.yaml", "workloads: [this is not\n  valid: yaml: at all");
    assert_non_null(bad);
    free(bad);
    kill(f->gw.pid, SIGHUP);
    usleep(300000);
    gwf_chat(f, &h, "chat-model", 0, "after a bad reload", NULL);
    assert_int_equal(h.status, 200);
    char v[64];
    gwf_header(&h, "X-Cutover-Arm", v, sizeof v);
    assert_string_equal(v, "incumbent");
    co_test_http_free(&h);

    /* a good one: the mode in the file applies to the next requests, and a
     * new workload is served and counted */
    write_config_extra(f, "candidate", "  extra: {incumbent: gpt-4o, match: {models: [extra-model]}}\n");
    kill(f->gw.pid, SIGHUP);
    long long deadline = gwf_now_ms() + 3000;
    for (;;) {
        gwf_chat(f, &h, "chat-model", 0, "after a good reload", NULL);
        assert_int_equal(h.status, 200);
        gwf_header(&h, "X-Cutover-Arm", v, sizeof v);
        int done = !strcmp(v, "candidate");
        if (done) {
            char *t = gwf_openai_text(&h, 0);
            assert_string_equal(t, "Claude: after a good reload"); /* translated from Anthropic */
            free(t);
        }
        co_test_http_free(&h);
        if (done)
            break;
        assert_true(gwf_now_ms() < deadline);
        usleep(20000);
    }
    gwf_chat(f, &h, "extra-model", 0, "new here", NULL);
    assert_int_equal(h.status, 200);
    gwf_header(&h, "X-Cutover-Workload", v, sizeof v);
    assert_string_equal(v, "extra");
    co_test_http_free(&h);
    co_test_http_do(&h, "GET", gwf_url(f, "/metrics"), NULL, NULL, 0);
    assert_non_null(strstr(h.body, "cutover_requests_total{workload=\"extra\",arm=\"incumbent\",role=\"served\"} 1"));
    assert_non_null(strstr(h.body, "cutover_config_reloads_total{result=\"ok\"} 1"));
    assert_non_null(strstr(h.body, "cutover_config_reloads_total{result=\"failed\"} 1"));
    co_test_http_free(&h);
    write_config(f, "incumbent");
    kill(f->gw.pid, SIGHUP);
    usleep(300000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_and_ops),
        cmocka_unit_test(test_upstream_received),
        cmocka_unit_test(test_passthrough_bytes),
        cmocka_unit_test(test_slow_client_big_stream),
        cmocka_unit_test(test_model_rewrite_exact),
        cmocka_unit_test(test_missing_key_at_start),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_reload),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
