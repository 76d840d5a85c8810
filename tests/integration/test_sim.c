/* Integration test of `cutover sim`: starts the real binary ($CUTOVER_BIN) on
 * an ephemeral loopback port and talks to it over HTTP with libcurl: the
 * three protocols in JSON and SSE, errors on the wire, injected faults
 * (500, 429 with retry-after, truncated stream and body, reset, timeout),
 * latency, the /_sim hooks, several threads, and a clean stop on SIGTERM. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "co_test.h"

static const char *SCENARIO =
    "seed: 3\n"
    "max_body: 16k\n"
    "models:\n"
    "  gpt-4o: {provider: openai, template: \"Answer from {{model}}: {{last_user}}\"}\n"
    "  claude-sonnet-4: {provider: anthropic, template: \"Claude: {{last_user}}\"}\n"
    "  gemini-2.5-flash: {provider: gemini, answer: echo}\n"
    "  ok: {}\n"
    "  f500: {faults: {error_500: 1}}\n"
    "  f429: {faults: {error_429: 1, retry_after: 2s}}\n"
    "  cut: {faults: {truncate: 1}, verbosity: 4}\n"
    "  rst: {faults: {reset: 1}}\n"
    "  hang: {faults: {timeout: 1}}\n"
    "  slow: {latency: {ttft: 150ms}}\n"
    "  paced: {latency: {ttft: 50ms, per_token: 20ms}}\n";

typedef struct env {
    char *dir;
    char *port_file;
    co_test_proc proc;
    char base[64];
} env;

static char url_buf[256];

static const char *url(env *e, const char *path)
{
    snprintf(url_buf, sizeof url_buf, "%s%s", e->base, path);
    return url_buf;
}

static int setup(void **state)
{
    const char *bin = co_test_bin();
    if (!bin) {
        fprintf(stderr, "CUTOVER_BIN is not set; skipping\n");
        *state = NULL;
        return 0;
    }
    env *e = calloc(1, sizeof *e);
    e->dir = co_test_tmpdir();
    char *sc = co_test_write(e->dir, "scenario.yaml", SCENARIO);
    if (asprintf(&e->port_file, "%s/port", e->dir) < 0)
        return -1;
    char *argv[] = {(char *)bin, "sim", "--listen", "127.0.0.1:0", "--scenario", sc, "--record",
                    "--port-file", e->port_file, NULL};
    if (co_test_spawn(&e->proc, argv, NULL, 20000)) {
        free(sc);
        co_test_rmtree(e->dir);
        free(e->dir);
        free(e->port_file);
        free(e);
        return -1;
    }
    free(sc);
    snprintf(e->base, sizeof e->base, "http://127.0.0.1:%d", e->proc.port);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    if (!e)
        return 0;
    int rc = co_test_stop(&e->proc);
    co_test_rmtree(e->dir);
    free(e->dir);
    free(e->port_file);
    free(e);
    /* 0: stopped cleanly on SIGTERM (and, under ASan, without leaks) */
    return rc == 0 ? 0 : -1;
}

#define NEED_ENV(state)                                                                            \
    env *e = *(state);                                                                             \
    if (!e)                                                                                        \
    skip()

static const char *OA[] = {"Authorization: Bearer sk-test", "Content-Type: application/json", NULL};
static const char *AN[] = {"x-api-key: sk-ant", "anthropic-version: 2023-06-01", "Content-Type: application/json", NULL};
static const char *GM[] = {"x-goog-api-key: AIza", "Content-Type: application/json", NULL};

static json_t *body_json(const co_test_http *h)
{
    json_error_t err;
    json_t *j = json_loadb(h->body, h->body_len, 0, &err);
    if (!j)
        fprintf(stderr, "not JSON: %s\n", h->body);
    assert_non_null(j);
    return j;
}

static const char *jget(json_t *j, const char *a, const char *b)
{
    json_t *v = json_object_get(j, a);
    if (b)
        v = json_object_get(v, b);
    return json_string_value(v);
}

static void chat(env *e, const char *model, int stream, co_test_http *h, long timeout_ms)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"stream\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"Tell me about the sea and the sky\"}]}",
             model, stream ? "true" : "false");
    co_test_http_do(h, "POST", url(e, "/v1/chat/completions"), OA, body, timeout_ms);
}

static void test_ready_line(void **state)
{
    NEED_ENV(state);
    char want[128];
    snprintf(want, sizeof want, "cutover sim listening on 127.0.0.1:%d", e->proc.port);
    assert_string_equal(e->proc.line, want);
    char port[32] = "";
    FILE *f = fopen(e->port_file, "r");
    assert_non_null(f);
    assert_non_null(fgets(port, sizeof port, f));
    fclose(f);
    assert_int_equal(atoi(port), e->proc.port);
}

static void test_openai(void **state)
{
    NEED_ENV(state);
    co_test_http h;
    chat(e, "gpt-4o", 0, &h, 0);
    assert_int_equal(h.curl_code, CURLE_OK);
    assert_int_equal(h.status, 200);
    char v[128];
    assert_non_null(co_test_http_header(&h, "content-type", v, sizeof v));
    assert_string_equal(v, "application/json");
    assert_non_null(co_test_http_header(&h, "x-request-id", v, sizeof v));
    json_t *j = body_json(&h);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "Answer from gpt-4o: Tell me about the sea and the sky");
    assert_true(json_integer_value(json_object_get(json_object_get(j, "usage"), "total_tokens")) > 0);
    json_decref(j);
    co_test_http_free(&h);

    chat(e, "gpt-4o", 1, &h, 0);
    assert_int_equal(h.curl_code, CURLE_OK);
    assert_int_equal(h.status, 200);
    assert_non_null(co_test_http_header(&h, "content-type", v, sizeof v));
    assert_non_null(strstr(v, "text/event-stream"));
    co_test_sse s;
    assert_int_equal(co_test_sse_parse(h.body, h.body_len, &s), 0);
    assert_true(s.complete);
    assert_string_equal(s.v[s.n - 1].data, "[DONE]");
    char text[512] = "";
    for (size_t i = 0; i + 1 < s.n; i++) {
        json_t *c = json_loads(s.v[i].data, 0, NULL);
        assert_non_null(c);
        json_t *d = json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta");
        if (json_is_string(json_object_get(d, "content")))
            strcat(text, json_string_value(json_object_get(d, "content")));
        json_decref(c);
    }
    assert_string_equal(text, "Answer from gpt-4o: Tell me about the sea and the sky");
    co_test_sse_free(&s);
    co_test_http_free(&h);

    /* errors on the wire */
    co_test_http_do(&h, "POST", url(e, "/v1/chat/completions"), NULL, "{}", 0);
    assert_int_equal(h.status, 401);
    j = body_json(&h);
    assert_string_equal(jget(j, "error", "type"), "invalid_request_error");
    json_decref(j);
    co_test_http_free(&h);
    co_test_http_do(&h, "GET", url(e, "/v2/nothing"), OA, NULL, 0);
    assert_int_equal(h.status, 404);
    j = body_json(&h);
    assert_non_null(jget(j, "error", "message"));
    json_decref(j);
    co_test_http_free(&h);
    char *big = malloc(20000);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    co_test_http_do(&h, "POST", url(e, "/v1/chat/completions"), OA, big, 0);
    assert_int_equal(h.status, 413);
    j = body_json(&h);
    assert_string_equal(jget(j, "error", "code"), "request_too_large");
    json_decref(j);
    co_test_http_free(&h);
    big = realloc(big, 40000);
    memset(big, 'x', 39999);
    big[39999] = '\0';
    co_test_http_do(&h, "POST", url(e, "/v1/chat/completions"), OA, big, 0);
    assert_int_equal(h.status, 413); /* beyond twice the limit libevent refuses it itself */
    co_test_http_free(&h);
    free(big);
}

static void test_anthropic(void **state)
{
    NEED_ENV(state);
    co_test_http h;
    co_test_http_do(&h, "POST", url(e, "/v1/messages"), AN,
                    "{\"model\":\"claude-sonnet-4\",\"max_tokens\":50,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Hi there\"}]}", 0);
    assert_int_equal(h.curl_code, CURLE_OK);
    assert_int_equal(h.status, 200);
    co_test_sse s;
    assert_int_equal(co_test_sse_parse(h.body, h.body_len, &s), 0);
    assert_true(s.complete);
    const char *order[] = {"message_start", "content_block_start", "ping", "content_block_delta"};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(s.v[i].event, order[i]);
    assert_string_equal(s.v[s.n - 3].event, "content_block_stop");
    assert_string_equal(s.v[s.n - 2].event, "message_delta");
    assert_string_equal(s.v[s.n - 1].event, "message_stop");
    co_test_sse_free(&s);
    co_test_http_free(&h);

    co_test_http_do(&h, "POST", url(e, "/v1/messages"), AN,
                    "{\"model\":\"claude-sonnet-4\",\"max_tokens\":50,\"messages\":[{\"role\":\"user\",\"content\":\"Hi there\"}]}", 0);
    assert_int_equal(h.status, 200);
    char v[128];
    assert_non_null(co_test_http_header(&h, "request-id", v, sizeof v));
    json_t *j = body_json(&h);
    assert_string_equal(jget(j, "stop_reason", NULL), "end_turn");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "content"), 0), "text")), "Claude: Hi there");
    json_decref(j);
    co_test_http_free(&h);

    const char *nokey[] = {"anthropic-version: 2023-06-01", NULL};
    co_test_http_do(&h, "POST", url(e, "/v1/messages"), nokey, "{}", 0);
    assert_int_equal(h.status, 401);
    j = body_json(&h);
    assert_string_equal(jget(j, "type", NULL), "error");
    assert_string_equal(jget(j, "error", "type"), "authentication_error");
    json_decref(j);
    co_test_http_free(&h);
}

static void test_gemini(void **state)
{
    NEED_ENV(state);
    co_test_http h;
    co_test_http_do(&h, "POST", url(e, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"), GM,
                    "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"stream me please\"}]}]}", 0);
    assert_int_equal(h.curl_code, CURLE_OK);
    assert_int_equal(h.status, 200);
    co_test_sse s;
    assert_int_equal(co_test_sse_parse(h.body, h.body_len, &s), 0);
    assert_true(s.complete && s.n >= 2);
    char text[256] = "";
    for (size_t i = 0; i < s.n; i++) {
        json_t *c = json_loads(s.v[i].data, 0, NULL);
        assert_non_null(c);
        json_t *cand = json_array_get(json_object_get(c, "candidates"), 0);
        strcat(text, json_string_value(json_object_get(json_array_get(json_object_get(json_object_get(cand, "content"), "parts"), 0), "text")));
        if (i == s.n - 1)
            assert_string_equal(json_string_value(json_object_get(cand, "finishReason")), "STOP");
        json_decref(c);
    }
    assert_string_equal(text, "stream me please");
    co_test_sse_free(&s);
    co_test_http_free(&h);

    const char *none[] = {"Content-Type: application/json", NULL};
    co_test_http_do(&h, "POST", url(e, "/v1beta/models/gemini-2.5-flash:generateContent"), none,
                    "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}]}", 0);
    assert_int_equal(h.status, 401);
    json_t *j = body_json(&h);
    assert_string_equal(jget(j, "error", "status"), "UNAUTHENTICATED");
    json_decref(j);
    co_test_http_free(&h);
    co_test_http_do(&h, "POST", url(e, "/v1beta/models/gemini-2.5-flash:generateContent?key=AIza"), none,
                    "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}]}", 0);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);
}

static void test_faults(void **state)
{
    NEED_ENV(state);
    co_test_http h;
    char v[64];
    chat(e, "f500", 0, &h, 0);
    assert_int_equal(h.status, 500);
    json_t *j = body_json(&h);
    assert_string_equal(jget(j, "error", "type"), "server_error");
    json_decref(j);
    co_test_http_free(&h);

    chat(e, "f429", 0, &h, 0);
    assert_int_equal(h.status, 429);
    assert_non_null(co_test_http_header(&h, "retry-after", v, sizeof v));
    assert_string_equal(v, "2");
    assert_non_null(co_test_http_header(&h, "retry-after-ms", v, sizeof v));
    assert_string_equal(v, "2000");
    co_test_http_free(&h);

    /* truncated stream: some events, then the connection closes mid-event */
    chat(e, "cut", 1, &h, 0);
    assert_int_equal(h.status, 200);
    assert_int_not_equal(h.curl_code, CURLE_OK);
    co_test_sse s;
    assert_int_equal(co_test_sse_parse(h.body, h.body_len, &s), 0);
    assert_false(s.complete);
    assert_true(s.n >= 1);
    assert_null(strstr(h.body, "[DONE]"));
    co_test_sse_free(&s);
    co_test_http_free(&h);

    /* truncated JSON: fewer bytes than Content-Length */
    chat(e, "cut", 0, &h, 0);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.curl_code, CURLE_PARTIAL_FILE);
    assert_null(json_loadb(h.body, h.body_len, 0, NULL));
    co_test_http_free(&h);

    /* reset: no response at all */
    chat(e, "rst", 0, &h, 0);
    assert_int_equal(h.status, 0);
    assert_true(h.curl_code == CURLE_GOT_NOTHING || h.curl_code == CURLE_RECV_ERROR);
    co_test_http_free(&h);

    /* timeout: held until the client gives up; the sim keeps serving */
    chat(e, "hang", 0, &h, 300);
    assert_int_equal(h.curl_code, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(h.status, 0);
    co_test_http_free(&h);
    chat(e, "ok", 0, &h, 0);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);
}

static void test_latency(void **state)
{
    NEED_ENV(state);
    co_test_http h;
    chat(e, "slow", 0, &h, 0);
    assert_int_equal(h.status, 200);
    assert_true(h.seconds >= 0.14);
    co_test_http_free(&h);
    chat(e, "paced", 1, &h, 0);
    assert_int_equal(h.status, 200);
    co_test_sse s;
    assert_int_equal(co_test_sse_parse(h.body, h.body_len, &s), 0);
    assert_true(s.complete);
    /* ttft + per-token gaps between the content events */
    size_t tokens = s.n - 3; /* role, finish, [DONE] */
    assert_true(h.seconds >= 0.05 + 0.02 * (double)(tokens - 1) - 0.005);
    co_test_sse_free(&s);
    co_test_http_free(&h);
}

static void test_hooks(void **state)
{
    NEED_ENV(state);
    co_test_http h;
    /* patch a model mid-test */
    co_test_http_do(&h, "POST", url(e, "/_sim/models/ok"), NULL, "{\"faults\":{\"error_500\":1}}", 0);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);
    chat(e, "ok", 0, &h, 0);
    assert_int_equal(h.status, 500);
    co_test_http_free(&h);
    co_test_http_do(&h, "POST", url(e, "/_sim/models/ok"), NULL, "{\"restore\":true}", 0);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);
    chat(e, "ok", 0, &h, 0);
    assert_int_equal(h.status, 200);
    co_test_http_free(&h);

    co_test_http_do(&h, "GET", url(e, "/_sim/stats"), NULL, NULL, 0);
    assert_int_equal(h.status, 200);
    json_t *j = body_json(&h);
    json_t *ok = json_object_get(json_object_get(j, "models"), "ok");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ok, "status"), "500")), 1);
    assert_true(json_integer_value(json_object_get(j, "requests")) >= 3);
    json_decref(j);
    co_test_http_free(&h);

    co_test_http_do(&h, "GET", url(e, "/_sim/requests?limit=3"), NULL, NULL, 0);
    assert_int_equal(h.status, 200);
    assert_null(strstr(h.body, "sk-test"));
    j = body_json(&h);
    json_t *reqs = json_object_get(j, "requests");
    assert_int_equal(json_array_size(reqs), 3);
    json_t *last = json_array_get(reqs, 2);
    assert_string_equal(jget(last, "path", NULL), "/v1/chat/completions");
    assert_string_equal(jget(last, "headers", "authorization"), "<redacted>");
    json_decref(j);
    co_test_http_free(&h);
}

/* A stop while a connection is held and a stream is mid-way still exits 0. */
static void test_threads_and_stop(void **state)
{
    NEED_ENV(state);
    char *sc = co_test_write(e->dir, "s2.yaml", "models: {ok: {}, hang: {faults: {timeout: 1}}, paced: {latency: {per_token: 200ms}}}\n");
    char *argv[] = {(char *)co_test_bin(), "sim", "--scenario", sc, "--threads", "2", NULL};
    co_test_proc p;
    assert_int_equal(co_test_spawn(&p, argv, NULL, 20000), 0);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/v1/chat/completions", p.port);
    for (int i = 0; i < 20; i++) {
        co_test_http h;
        co_test_http_do(&h, "POST", base, OA, "{\"model\":\"ok\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
        assert_int_equal(h.status, 200);
        co_test_http_free(&h);
    }
    /* leave a held request and a slow stream open on raw sockets */
    const char *reqs[] = {
        "{\"model\":\"hang\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"paced\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"one two three four five\"}]}",
    };
    int fds[2];
    for (int k = 0; k < 2; k++) {
        fds[k] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p.port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fds[k], (struct sockaddr *)&sa, sizeof sa), 0);
        char msg[1024];
        int n = snprintf(msg, sizeof msg,
                         "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                         strlen(reqs[k]), reqs[k]);
        assert_int_equal(write(fds[k], msg, (size_t)n), n);
    }
    usleep(300000);
    assert_int_equal(co_test_stop(&p), 0);
    close(fds[0]);
    close(fds[1]);
    free(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_line),
        cmocka_unit_test(test_openai),
        cmocka_unit_test(test_anthropic),
        cmocka_unit_test(test_gemini),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_latency),
        cmocka_unit_test(test_hooks),
        cmocka_unit_test(test_threads_and_stop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
