/* Cross-API serving through `cutover serve` against `cutover sim`: an OpenAI
 * client served by an Anthropic upstream and an Anthropic client served by
 * an OpenAI upstream, JSON and SSE, tool definitions, tool calls and tool
 * results included; what the upstream received is its own API's body (with
 * the upstream model id and the provider key); shadow across APIs too. */
#include "test_gateway_fixture.h"

static const char *SCENARIO =
    "seed: 3\n"
    "api_key: sk-provider\n"
    "models:\n"
    "  gpt-4o: {provider: openai, template: \"GPT: {{last_user}}{{tool_result}}\"}\n"
    "  claude-sonnet-4: {provider: anthropic, template: \"Claude: {{last_user}}{{tool_result}}\"}\n";

static const char *CONFIG =
    "listen: 127.0.0.1:0\n"
    "workers: 1\n"
    "store: sqlite:{DB}\n"
    "log_level: warn\n"
    "recorder: {flush_interval: 20ms}\n"
    "providers:\n"
    "  oa: {kind: openai, base_url: \"{SIM}/v1\", api_key_env: OA_KEY}\n"
    "  an: {kind: anthropic, base_url: \"{SIM}\", api_key_env: AN_KEY}\n"
    "models:\n"
    "  gpt: {provider: oa, upstream: gpt-4o, price_input: 2.5, price_output: 10}\n"
    "  claude: {provider: an, upstream: claude-sonnet-4, price_input: 3, price_output: 15}\n"
    "workloads:\n"
    "  oa2an: {incumbent: claude}\n"
    "  an2oa: {incumbent: gpt}\n"
    "  mixed: {incumbent: claude, candidate: gpt, mode: shadow}\n";

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

static json_t *last_upstream(gwf *f, const char **path)
{
    co_test_http h;
    co_test_http_do(&h, "GET", gwf_sim_url(f, "/_sim/requests?limit=1"), NULL, NULL, 0);
    json_t *j = gwf_json(&h);
    co_test_http_free(&h);
    json_t *rq = json_array_get(json_object_get(j, "requests"), 0);
    static char p[256];
    snprintf(p, sizeof p, "%s", gwf_jstr(rq, "path", NULL));
    *path = p;
    json_t *body = json_loads(gwf_jstr(rq, "body", NULL), 0, NULL);
    json_decref(j);
    assert_non_null(body);
    return body;
}

static const char *OA_TOOLS =
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather for a city\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}]";
static const char *AN_TOOLS =
    "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather for a city\",\"input_schema\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}]";

static void test_openai_client_anthropic_upstream(void **state)
{
    NEED(state);
    co_test_http h;
    /* plain JSON */
    gwf_chat(f, &h, "oa2an", 0, "hello from openai", NULL);
    assert_int_equal(h.status, 200);
    json_t *j = gwf_json(&h);
    assert_string_equal(gwf_jstr(j, "object", NULL), "chat.completion");
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(gwf_jstr(ch, "finish_reason", NULL), "stop");
    assert_string_equal(gwf_jstr(json_object_get(ch, "message"), "content", NULL), "Claude: hello from openai");
    assert_true(json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")) > 0);
    json_decref(j);
    co_test_http_free(&h);
    const char *path;
    json_t *up = last_upstream(f, &path);
    assert_string_equal(path, "/v1/messages");
    assert_string_equal(gwf_jstr(up, "model", NULL), "claude-sonnet-4");
    assert_true(json_integer_value(json_object_get(up, "max_tokens")) > 0);
    json_decref(up);

    /* SSE, translated chunk by chunk */
    gwf_chat(f, &h, "oa2an", 1, "stream from openai", NULL);
    assert_int_equal(h.status, 200);
    char v[128];
    gwf_header(&h, "Content-Type", v, sizeof v);
    assert_non_null(strstr(v, "text/event-stream"));
    co_test_sse s;
    assert_int_equal(co_test_sse_parse(h.body, h.body_len, &s), 0);
    assert_true(s.complete && s.n >= 3);
    assert_string_equal(s.v[s.n - 1].data, "[DONE]");
    co_test_sse_free(&s);
    char *t = gwf_openai_text(&h, 1);
    assert_string_equal(t, "Claude: stream from openai");
    free(t);
    co_test_http_free(&h);

    /* tools: the definition goes over, the call comes back as tool_calls */
    for (int stream = 0; stream < 2; stream++) {
        char body[1024];
        snprintf(body, sizeof body, "{\"model\":\"oa2an\",\"stream\":%s,%s,\"messages\":[{\"role\":\"user\",\"content\":\"Paris\"}]}",
                 stream ? "true" : "false", OA_TOOLS);
        co_test_http_do(&h, "POST", gwf_url(f, "/v1/chat/completions"), GWF_OA, body, 0);
        assert_int_equal(h.status, 200);
        char name[64] = "", args[256] = "", finish[32] = "", id[128] = "";
        if (!stream) {
            j = gwf_json(&h);
            ch = json_array_get(json_object_get(j, "choices"), 0);
            snprintf(finish, sizeof finish, "%s", gwf_jstr(ch, "finish_reason", NULL));
            json_t *tc = json_array_get(json_object_get(json_object_get(ch, "message"), "tool_calls"), 0);
            snprintf(id, sizeof id, "%s", gwf_jstr(tc, "id", NULL));
            snprintf(name, sizeof name, "%s", gwf_jstr(tc, "function", "name"));
            snprintf(args, sizeof args, "%s", gwf_jstr(tc, "function", "arguments"));
            json_decref(j);
        } else {
            assert_int_equal(co_test_sse_parse(h.body, h.body_len, &s), 0);
            assert_string_equal(s.v[s.n - 1].data, "[DONE]");
            for (size_t i = 0; i + 1 < s.n; i++) {
                json_t *c = json_loads(s.v[i].data, 0, NULL);
                json_t *c0 = json_array_get(json_object_get(c, "choices"), 0);
                json_t *tc = json_array_get(json_object_get(json_object_get(c0, "delta"), "tool_calls"), 0);
                if (gwf_jstr(tc, "id", NULL))
                    snprintf(id, sizeof id, "%s", gwf_jstr(tc, "id", NULL));
                if (gwf_jstr(tc, "function", "name"))
                    snprintf(name, sizeof name, "%s", gwf_jstr(tc, "function", "name"));
                if (gwf_jstr(tc, "function", "arguments"))
                    strncat(args, gwf_jstr(tc, "function", "arguments"), sizeof args - strlen(args) - 1);
                if (gwf_jstr(c0, "finish_reason", NULL))
                    snprintf(finish, sizeof finish, "%s", gwf_jstr(c0, "finish_reason", NULL));
                json_decref(c);
            }
            co_test_sse_free(&s);
        }
        assert_string_equal(finish, "tool_calls");
        assert_string_equal(name, "get_weather");
        assert_true(id[0]);
        json_t *a = json_loads(args, 0, NULL);
        assert_non_null(a);
        assert_true(json_is_string(json_object_get(a, "city")));
        json_decref(a);
        co_test_http_free(&h);
        up = last_upstream(f, &path);
        json_t *tool = json_array_get(json_object_get(up, "tools"), 0);
        assert_string_equal(gwf_jstr(tool, "name", NULL), "get_weather");
        assert_non_null(json_object_get(tool, "input_schema"));
        json_decref(up);
    }

    /* the tool result goes back as a tool_result block */
    char body[2048];
    snprintf(body, sizeof body,
             "{\"model\":\"oa2an\",%s,\"messages\":[{\"role\":\"user\",\"content\":\"Paris\"},"
             "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
             "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"Sunny, 21C\"}]}",
             OA_TOOLS);
    co_test_http_do(&h, "POST", gwf_url(f, "/v1/chat/completions"), GWF_OA, body, 0);
    assert_int_equal(h.status, 200);
    t = gwf_openai_text(&h, 0);
    assert_non_null(strstr(t, "Sunny, 21C"));
    free(t);
    co_test_http_free(&h);
    up = last_upstream(f, &path);
    json_t *m = json_object_get(up, "messages");
    assert_int_equal(json_array_size(m), 3);
    json_t *tr = json_array_get(json_object_get(json_array_get(m, 2), "content"), 0);
    assert_string_equal(gwf_jstr(tr, "type", NULL), "tool_result");
    assert_string_equal(gwf_jstr(tr, "tool_use_id", NULL), "call_1");
    json_t *tu = json_array_get(json_object_get(json_array_get(m, 1), "content"), 0);
    assert_string_equal(gwf_jstr(tu, "type", NULL), "tool_use");
    assert_string_equal(gwf_jstr(json_object_get(tu, "input"), "city", NULL), "Paris");
    json_decref(up);
}

static void test_anthropic_client_openai_upstream(void **state)
{
    NEED(state);
    co_test_http h;
    gwf_messages(f, &h, "an2oa", 0, "hello from anthropic");
    assert_int_equal(h.status, 200);
    json_t *j = gwf_json(&h);
    assert_string_equal(gwf_jstr(j, "type", NULL), "message");
    assert_string_equal(gwf_jstr(j, "role", NULL), "assistant");
    assert_string_equal(gwf_jstr(j, "stop_reason", NULL), "end_turn");
    assert_true(json_integer_value(json_object_get(json_object_get(j, "usage"), "output_tokens")) > 0);
    json_decref(j);
    char *t = gwf_anthropic_text(&h, 0);
    assert_string_equal(t, "GPT: hello from anthropic");
    free(t);
    co_test_http_free(&h);
    const char *path;
    json_t *up = last_upstream(f, &path);
    assert_string_equal(path, "/v1/chat/completions");
    assert_string_equal(gwf_jstr(up, "model", NULL), "gpt-4o");
    json_decref(up);

    gwf_messages(f, &h, "an2oa", 1, "stream from anthropic");
    assert_int_equal(h.status, 200);
    co_test_sse s;
    assert_int_equal(co_test_sse_parse(h.body, h.body_len, &s), 0);
    assert_true(s.complete);
    assert_string_equal(s.v[0].event, "message_start");
    assert_string_equal(s.v[s.n - 1].event, "message_stop");
    co_test_sse_free(&s);
    t = gwf_anthropic_text(&h, 1);
    assert_string_equal(t, "GPT: stream from anthropic");
    free(t);
    co_test_http_free(&h);
    /* the OpenAI upstream was asked for usage in its stream */
    up = last_upstream(f, &path);
    assert_true(json_is_true(json_object_get(json_object_get(up, "stream_options"), "include_usage")));
    json_decref(up);

    for (int stream = 0; stream < 2; stream++) {
        char body[1024];
        snprintf(body, sizeof body,
                 "{\"model\":\"an2oa\",\"max_tokens\":100,\"stream\":%s,%s,\"messages\":[{\"role\":\"user\",\"content\":\"Oslo\"}]}",
                 stream ? "true" : "false", AN_TOOLS);
        co_test_http_do(&h, "POST", gwf_url(f, "/v1/messages"), GWF_AN, body, 0);
        assert_int_equal(h.status, 200);
        char name[64] = "", input[256] = "", stop[32] = "";
        if (!stream) {
            j = gwf_json(&h);
            snprintf(stop, sizeof stop, "%s", gwf_jstr(j, "stop_reason", NULL));
            json_t *content = json_object_get(j, "content");
            for (size_t i = 0; i < json_array_size(content); i++) {
                json_t *b = json_array_get(content, i);
                if (!strcmp(gwf_jstr(b, "type", NULL), "tool_use")) {
                    snprintf(name, sizeof name, "%s", gwf_jstr(b, "name", NULL));
                    char *in = json_dumps(json_object_get(b, "input"), JSON_COMPACT);
                    snprintf(input, sizeof input, "%s", in);
                    free(in);
                }
            }
            json_decref(j);
        } else {
            assert_int_equal(co_test_sse_parse(h.body, h.body_len, &s), 0);
            assert_true(s.complete);
            for (size_t i = 0; i < s.n; i++) {
                json_t *e = json_loads(s.v[i].data, 0, NULL);
                if (!strcmp(s.v[i].event, "content_block_start") &&
                    !strcmp(gwf_jstr(json_object_get(e, "content_block"), "type", NULL), "tool_use"))
                    snprintf(name, sizeof name, "%s", gwf_jstr(json_object_get(e, "content_block"), "name", NULL));
                if (!strcmp(s.v[i].event, "content_block_delta") && gwf_jstr(e, "delta", "partial_json"))
                    strncat(input, gwf_jstr(e, "delta", "partial_json"), sizeof input - strlen(input) - 1);
                if (!strcmp(s.v[i].event, "message_delta"))
                    snprintf(stop, sizeof stop, "%s", gwf_jstr(e, "delta", "stop_reason"));
                json_decref(e);
            }
            co_test_sse_free(&s);
        }
        assert_string_equal(stop, "tool_use");
        assert_string_equal(name, "get_weather");
        json_t *a = json_loads(input, 0, NULL);
        assert_non_null(a);
        assert_true(json_is_string(json_object_get(a, "city")));
        json_decref(a);
        co_test_http_free(&h);
        up = last_upstream(f, &path);
        json_t *tool = json_array_get(json_object_get(up, "tools"), 0);
        assert_string_equal(gwf_jstr(tool, "type", NULL), "function");
        assert_string_equal(gwf_jstr(tool, "function", "name"), "get_weather");
        json_decref(up);
    }
}

static void test_shadow_across_apis(void **state)
{
    NEED(state);
    co_test_http h;
    gwf_chat(f, &h, "mixed", 1, "two vendors", NULL);
    assert_int_equal(h.status, 200);
    char *t = gwf_openai_text(&h, 1);
    assert_string_equal(t, "Claude: two vendors");
    free(t);
    co_test_http_free(&h);
    gwf_messages(f, &h, "mixed", 0, "two vendors again");
    assert_int_equal(h.status, 200);
    t = gwf_anthropic_text(&h, 0);
    assert_string_equal(t, "Claude: two vendors again");
    free(t);
    co_test_http_free(&h);
    assert_int_equal(gwf_gw_stop(f), 0);
    co_store *st = gwf_store(f);
    co_pair *pairs = NULL;
    size_t np = 0;
    assert_int_equal(co_store_pairs(st, "mixed", 10, 0, &pairs, &np), 0);
    assert_int_equal(np, 2);
    for (size_t i = 0; i < np; i++) {
        assert_string_equal(pairs[i].served.x.model, "claude");
        assert_string_equal(pairs[i].shadow.x.model, "gpt");
        assert_non_null(strstr(pairs[i].shadow.x.output_text, "GPT: two vendors"));
        assert_true(pairs[i].shadow.x.tokens_out > 0);
        assert_true(pairs[i].served.x.cost_usd > 0);
    }
    co_pairs_free(pairs, np);
    co_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_openai_client_anthropic_upstream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anthropic_client_openai_upstream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shadow_across_apis, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
