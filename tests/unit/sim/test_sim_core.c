/* Unit tests of the sim core: deterministic faults and latency, the test
 * hooks (/_sim/stats, /_sim/requests with redaction, /_sim/models patches)
 * and the reply plan the server executes (timeout, reset, truncate). */
#include <limits.h>

#include "sim_fixture.h"

static const char *SCENARIO =
    "seed: 5\n"
    "models:\n"
    "  flaky: {faults: {error_500: 0.3}}\n"
    "  slow: {latency: {ttft: 100ms, per_token: 10ms}}\n"
    "  jittery: {latency: {ttft: 1000ms, jitter: 0.5}}\n"
    "  hang: {faults: {timeout: 1}}\n"
    "  rst: {faults: {reset: 1}}\n"
    "  cut: {faults: {truncate: 1}}\n"
    "  ok: {}\n";

static const char *MSG = "\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]";

static int setup(void **state)
{
    *state = fx_new(SCENARIO);
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

static co__sim_reply *ask(fx *f, const char *model, int stream)
{
    char body[512];
    snprintf(body, sizeof body, "{\"model\":\"%s\",\"stream\":%s,%s}", model, stream ? "true" : "false", MSG);
    return fx_openai(f, body);
}

static void statuses(const char *scenario, char out[101])
{
    fx *f = fx_new(scenario);
    for (int i = 0; i < 100; i++)
        out[i] = ask(f, "flaky", 0)->status == 500 ? 'x' : '.';
    out[100] = '\0';
    fx_free(f);
}

/* The renderers' writers: integers without printf, JSON strings whose plain
 * runs are skipped 16 bytes at a time (escapes at every position of a run,
 * non-ASCII kept as it is). */
static void test_out_writers(void **state)
{
    (void)state;
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    co__sim_out o = {&b, 0};
    const long long vals[] = {0, 7, -7, 10, 1234567890123LL, LLONG_MAX, LLONG_MIN};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char want[32];
        snprintf(want, sizeof want, "%lld", vals[i]);
        co_buf_reset(&b);
        co__sim_putll(&o, vals[i]);
        assert_int_equal(o.err, 0);
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.p, want, b.len);
    }
    for (size_t at = 0; at < 40; at++) {
        char in[48], want[128];
        memset(in, 'a', sizeof in);
        in[at] = at % 3 == 0 ? '"' : at % 3 == 1 ? '\n' : '\x01';
        in[41] = '\xc3', in[42] = '\xa9'; /* é, unescaped */
        size_t w = 0;
        want[w++] = '"';
        for (size_t i = 0; i < 44; i++) {
            if (in[i] == '"') w += (size_t)sprintf(want + w, "\\\"");
            else if (in[i] == '\n') w += (size_t)sprintf(want + w, "\\n");
            else if (in[i] == '\x01') w += (size_t)sprintf(want + w, "\\u0001");
            else want[w++] = in[i];
        }
        want[w++] = '"';
        co_buf_reset(&b);
        co__sim_jstr(&o, in, 44);
        assert_int_equal(b.len, w);
        assert_memory_equal(b.p, want, w);
    }
    co_buf_free(&b);
}

static void test_fault_determinism(void **state)
{
    (void)state;
    char a[101], b[101], c[101];
    statuses(SCENARIO, a);
    statuses(SCENARIO, b);
    statuses("seed: 6\nmodels: {flaky: {faults: {error_500: 0.3}}}\n", c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    int n = 0;
    for (int i = 0; i < 100; i++)
        n += a[i] == 'x';
    assert_in_range(n, 15, 45);
}

static void test_latency(void **state)
{
    fx *f = *state;
    co__sim_reply *r = ask(f, "slow", 0);
    assert_int_equal(r->status, 200);
    json_t *j = fx_json(r);
    /* JSON: the whole delay before the reply */
    assert_int_equal(r->delay_ms, 100 + 10 * jint(j, "usage.completion_tokens"));
    json_decref(j);
    r = ask(f, "slow", 1);
    assert_int_equal(r->delay_ms, 0);
    assert_int_equal(r->ttft_ms, 100);
    assert_int_equal(r->per_token_ms, 10);
    /* jitter stays within its bounds and varies between requests */
    int64_t lo = 1000000, hi = 0;
    for (int i = 0; i < 50; i++) {
        r = ask(f, "jittery", 1);
        assert_in_range(r->ttft_ms, 500, 1500);
        lo = r->ttft_ms < lo ? r->ttft_ms : lo;
        hi = r->ttft_ms > hi ? r->ttft_ms : hi;
    }
    assert_true(hi - lo > 100);
    r = ask(f, "ok", 0);
    assert_int_equal(r->delay_ms, 0);
    assert_int_equal(r->fault, CO__SIM_F_NONE);
}

static void test_fault_plans(void **state)
{
    fx *f = *state;
    assert_int_equal(ask(f, "hang", 0)->fault, CO__SIM_F_TIMEOUT);
    assert_int_equal(ask(f, "rst", 1)->fault, CO__SIM_F_RESET);
    co__sim_reply *r = ask(f, "cut", 1);
    /* the reply is whole; the server stops half-way through sending it */
    assert_int_equal(r->fault, CO__SIM_F_TRUNCATE);
    assert_int_equal(r->status, 200);
    co_test_sse s;
    fx_sse(r, &s);
    assert_string_equal(s.v[s.n - 1].data, "[DONE]");
    co_test_sse_free(&s);
}

static void test_stats(void **state)
{
    fx *f = *state;
    int fails = 0;
    for (int i = 0; i < 20; i++)
        fails += ask(f, "flaky", 0)->status == 500;
    ask(f, "hang", 0);
    ask(f, "cut", 0);
    ask(f, "nope", 0);
    fx_call(f, "POST", "/v1/chat/completions", NULL, "{}");
    json_t *j = fx_json(fx_call(f, "GET", "/_sim/stats", NULL, NULL));
    assert_int_equal(jint(j, "requests"), 24);
    assert_int_equal(jint(j, "models.flaky.requests"), 20);
    if (fails)
        assert_int_equal(jint(j, "models.flaky.status.500"), fails);
    if (fails < 20)
        assert_int_equal(jint(j, "models.flaky.status.200"), 20 - fails);
    assert_int_equal(jint(j, "models.hang.faults.timeout"), 1);
    assert_int_equal(jint(j, "models.hang.requests"), 1);
    assert_int_equal(jint(j, "models.cut.status.200"), 1);
    assert_int_equal(jint(j, "models.cut.faults.truncate"), 1);
    assert_int_equal(jint(j, "models._other.status.404"), 1);
    assert_int_equal(jint(j, "models._other.status.401"), 1);
    json_decref(j);
    j = fx_json(fx_call(f, "GET", "/_sim/health", NULL, NULL));
    assert_string_equal(jstr(j, "status"), "ok");
    json_decref(j);
}

static void test_recording(void **state)
{
    fx *f = *state;
    const char *h[] = {"Authorization: Bearer sk-secret-1", "X-Api-Key: sk-secret-2", "x-goog-api-key: sk-secret-3",
                       "X-Trace: t1", NULL};
    fx_call(f, "POST", "/v1/chat/completions", h, "{\"model\":\"ok\",\"messages\":[{\"role\":\"user\",\"content\":\"rec\"}]}");
    fx_call(f, "POST", "/v1beta/models/ok:generateContent?alt=sse&key=sk-secret-4", NULL, "{}");
    co__sim_reply *r = fx_call(f, "GET", "/_sim/requests?limit=2", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_null(strstr(r->body.p, "sk-secret"));
    json_t *j = fx_json(r);
    assert_int_equal(jint(j, "total"), 2);
    assert_string_equal(jstr(j, "requests.0.method"), "POST");
    assert_string_equal(jstr(j, "requests.0.path"), "/v1/chat/completions");
    assert_string_equal(jstr(j, "requests.0.headers.authorization"), "<redacted>");
    assert_string_equal(jstr(j, "requests.0.headers.x-api-key"), "<redacted>");
    assert_string_equal(jstr(j, "requests.0.headers.x-goog-api-key"), "<redacted>");
    assert_string_equal(jstr(j, "requests.0.headers.x-trace"), "t1");
    assert_non_null(strstr(jstr(j, "requests.0.body"), "\"rec\""));
    assert_string_equal(jstr(j, "requests.1.path"), "/v1beta/models/ok:generateContent?alt=sse&key=<redacted>");
    json_decref(j);

    /* a ring of 256: the newest stay, in order */
    for (int i = 0; i < 300; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        fx_call(f, "POST", "/v1/chat/completions", NULL, body);
    }
    j = fx_json(fx_call(f, "GET", "/_sim/requests", NULL, NULL));
    assert_int_equal(jint(j, "total"), 302);
    assert_int_equal(json_array_size(json_object_get(j, "requests")), 256);
    assert_string_equal(jstr(j, "requests.255.body"), "{\"n\":299}");
    assert_string_equal(jstr(j, "requests.0.body"), "{\"n\":44}");
    json_decref(j);
    j = fx_json(fx_call(f, "GET", "/_sim/requests?limit=1", NULL, NULL));
    assert_int_equal(json_array_size(json_object_get(j, "requests")), 1);
    json_decref(j);
    assert_int_equal(fx_call(f, "GET", "/_sim/requests?limit=x", NULL, NULL)->status, 400);
    assert_int_equal(fx_call(f, "DELETE", "/_sim/requests", NULL, NULL)->status, 200);
    j = fx_json(fx_call(f, "GET", "/_sim/requests", NULL, NULL));
    assert_int_equal(jint(j, "total"), 0);
    json_decref(j);

    /* without recording the hook says how to turn it on */
    f->sh.record = 0;
    r = fx_call(f, "GET", "/_sim/requests", NULL, NULL);
    assert_int_equal(r->status, 404);
    assert_non_null(strstr(r->body.p, "--record"));
}

static void test_patch(void **state)
{
    fx *f = *state;
    assert_int_equal(ask(f, "ok", 0)->status, 200);
    co__sim_reply *r = fx_call(f, "POST", "/_sim/models/ok", NULL,
                               "{\"faults\":{\"error_500\":1},\"latency\":{\"ttft\":\"250ms\",\"per_token\":5}}");
    assert_int_equal(r->status, 200);
    json_t *j = fx_json(r);
    assert_true(json_number_value(jpath(j, "knobs.faults.error_500")) == 1.0);
    assert_int_equal(jint(j, "knobs.latency.ttft"), 250);
    assert_int_equal(jint(j, "knobs.latency.per_token"), 5);
    json_decref(j);
    assert_int_equal(ask(f, "ok", 0)->status, 500);
    j = fx_json(fx_call(f, "GET", "/_sim/models/ok", NULL, NULL));
    assert_int_equal(jint(j, "knobs.latency.ttft"), 250);
    json_decref(j);

    /* restore goes back to the scenario, then applies the rest */
    r = fx_call(f, "POST", "/_sim/models/ok", NULL, "{\"restore\":true,\"faults\":{\"error_429\":1,\"retry_after\":\"3s\"}}");
    assert_int_equal(r->status, 200);
    r = ask(f, "ok", 0);
    assert_int_equal(r->status, 429);
    assert_int_equal(r->retry_after_ms, 3000);
    assert_int_equal(r->retry_after_ms_header, 1);
    assert_int_equal(fx_call(f, "POST", "/_sim/models/ok", NULL, "{\"restore\":true}")->status, 200);
    r = ask(f, "ok", 0);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->delay_ms, 0);

    /* "*" patches every model */
    assert_int_equal(fx_call(f, "POST", "/_sim/models/*", NULL, "{\"faults\":{\"overloaded\":1}}")->status, 200);
    assert_int_equal(ask(f, "slow", 0)->status, 503);
    assert_int_equal(ask(f, "ok", 0)->status, 503);
    assert_int_equal(fx_call(f, "POST", "/_sim/models/*", NULL, "{\"restore\":true}")->status, 200);
    assert_int_equal(ask(f, "ok", 0)->status, 200);

    /* bad patches change nothing */
    r = fx_call(f, "POST", "/_sim/models/ok", NULL, "{\"faults\":{\"eror_500\":1}}");
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->body.p, "error_500"));
    assert_int_equal(fx_call(f, "POST", "/_sim/models/ok", NULL, "{\"faults\":{\"error_500\":2}}")->status, 400);
    assert_int_equal(fx_call(f, "POST", "/_sim/models/ok", NULL, "{\"latency\":{\"ttft\":\"soon\"}}")->status, 400);
    assert_int_equal(fx_call(f, "POST", "/_sim/models/ok", NULL, "[1]")->status, 400);
    assert_int_equal(fx_call(f, "POST", "/_sim/models/ok", NULL, "{oops")->status, 400);
    assert_int_equal(fx_call(f, "POST", "/_sim/models/nope", NULL, "{}")->status, 404);
    assert_int_equal(fx_call(f, "GET", "/_sim/nothing", NULL, NULL)->status, 404);
    assert_int_equal(ask(f, "ok", 0)->status, 200);
}

/* A second core sees a patch made through the first (another worker). */
static void test_patch_across_cores(void **state)
{
    fx *f = *state;
    co__sim_core c2;
    assert_int_equal(co__sim_core_init(&c2, &f->sh), 0);
    assert_int_equal(fx_call(f, "POST", "/_sim/models/ok", NULL, "{\"faults\":{\"error_500\":1}}")->status, 200);
    co__sim_http in;
    memset(&in, 0, sizeof in);
    in.method = "POST";
    in.uri = "/v1/chat/completions";
    in.hname[0] = "authorization";
    in.hval[0] = "Bearer k";
    in.nh = 1;
    in.body = "{\"model\":\"ok\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    in.body_len = strlen(in.body);
    co__sim_reply r;
    co__sim_reply_init(&r);
    co__sim_handle(&c2, &in, &r);
    assert_int_equal(r.status, 500);
    co__sim_reply_free(&r);
    co__sim_core_destroy(&c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_writers),
        cmocka_unit_test(test_fault_determinism),
        cmocka_unit_test_setup_teardown(test_latency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_plans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recording, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch_across_cores, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
