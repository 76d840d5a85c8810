/* Unit tests of the sim's Anthropic Messages protocol: the message JSON, the
 * exact SSE event sequence parsed back (text and tool_use), usage, and the
 * {"type":"error"} shapes for auth, version, validation, model and faults. */
#include "sim_fixture.h"

static const char *SCENARIO =
    "models:\n"
    "  claude-sonnet-4:\n"
    "    provider: anthropic\n"
    "    template: \"[{{system}}] {{last_user}}\"\n"
    "    tokens: {cached_fraction: 0.5}\n"
    "  down: {faults: {error_500: 1}}\n"
    "  busy: {faults: {overloaded: 1}}\n"
    "  limited: {faults: {error_429: 1, retry_after: 2500ms}}\n";

static const char *TOOLS =
    "\"tools\":[{\"name\":\"lookup\",\"description\":\"d\",\"input_schema\":{\"type\":\"object\","
    "\"properties\":{\"q\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\"},\"on\":{\"type\":\"boolean\"}}}}]";

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

static void assert_error(co__sim_reply *r, int status, const char *type)
{
    assert_int_equal(r->status, status);
    json_t *j = fx_json(r);
    assert_string_equal(jstr(j, "type"), "error");
    assert_string_equal(jstr(j, "error.type"), type);
    assert_true(strlen(jstr(j, "error.message")) > 0);
    assert_true(!strncmp(jstr(j, "request_id"), "req_", 4));
    json_decref(j);
}

static void test_json_reply(void **state)
{
    fx *f = *state;
    co__sim_reply *r = fx_anthropic(f, "{\"model\":\"claude-sonnet-4\",\"max_tokens\":100,\"system\":\"Be kind.\","
                                       "\"messages\":[{\"role\":\"user\",\"content\":\"Hello there\"}]}");
    assert_int_equal(r->status, 200);
    assert_string_equal(r->id_header, "request-id");
    json_t *j = fx_json(r);
    assert_true(!strncmp(jstr(j, "id"), "msg_", 4));
    assert_string_equal(jstr(j, "type"), "message");
    assert_string_equal(jstr(j, "role"), "assistant");
    assert_string_equal(jstr(j, "model"), "claude-sonnet-4");
    assert_string_equal(jstr(j, "content.0.type"), "text");
    assert_string_equal(jstr(j, "content.0.text"), "[Be kind.] Hello there");
    assert_string_equal(jstr(j, "stop_reason"), "end_turn");
    assert_true(json_is_null(json_object_get(j, "stop_sequence")));
    /* 19 prompt chars -> 5 tokens, 2 of them cached: input_tokens is the uncached rest */
    assert_int_equal(jint(j, "usage.input_tokens"), 3);
    assert_int_equal(jint(j, "usage.cache_read_input_tokens"), 2);
    assert_int_equal(jint(j, "usage.output_tokens"), 6);
    json_decref(j);

    /* system as blocks, content as blocks */
    r = fx_anthropic(f, "{\"model\":\"claude-sonnet-4\",\"max_tokens\":100,\"system\":[{\"type\":\"text\",\"text\":\"S\"}],"
                        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"B\"}]}]}");
    j = fx_json(r);
    assert_string_equal(jstr(j, "content.0.text"), "[S] B");
    json_decref(j);

    /* max_tokens stops the answer */
    r = fx_anthropic(f, "{\"model\":\"claude-sonnet-4\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}");
    j = fx_json(r);
    assert_string_equal(jstr(j, "stop_reason"), "max_tokens");
    assert_int_equal(jint(j, "usage.output_tokens"), 1);
    assert_string_equal(jstr(j, "content.0.text"), "[] H");
    json_decref(j);
}

static void test_stream(void **state)
{
    fx *f = *state;
    co__sim_reply *r = fx_anthropic(f, "{\"model\":\"claude-sonnet-4\",\"max_tokens\":100,\"stream\":true,"
                                       "\"messages\":[{\"role\":\"user\",\"content\":\"Stream this reply please\"}]}");
    assert_int_equal(r->status, 200);
    assert_string_equal(r->ctype, "text/event-stream; charset=utf-8");
    co_test_sse s;
    fx_sse(r, &s);
    assert_true(s.n >= 7);
    const char *head[] = {"message_start", "content_block_start", "ping"};
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(s.v[i].event, head[i]);
    assert_string_equal(s.v[s.n - 3].event, "content_block_stop");
    assert_string_equal(s.v[s.n - 2].event, "message_delta");
    assert_string_equal(s.v[s.n - 1].event, "message_stop");
    char text[1024] = "";
    for (size_t i = 0; i < s.n; i++) {
        json_t *j = sse_json(&s, i);
        /* every data payload names its own event type */
        assert_string_equal(jstr(j, "type"), s.v[i].event);
        if (i == 0) {
            assert_true(!strncmp(jstr(j, "message.id"), "msg_", 4));
            assert_int_equal(json_array_size(jpath(j, "message.content")), 0);
            assert_true(json_is_null(jpath(j, "message.stop_reason")));
            assert_int_equal(jint(j, "message.usage.input_tokens"), 3); /* 6, 3 cached */
        } else if (i == 1) {
            assert_string_equal(jstr(j, "content_block.type"), "text");
            assert_int_equal(jint(j, "index"), 0);
        } else if (i >= 3 && i < s.n - 3) {
            assert_string_equal(s.v[i].event, "content_block_delta");
            assert_string_equal(jstr(j, "delta.type"), "text_delta");
            strcat(text, jstr(j, "delta.text"));
        } else if (i == s.n - 2) {
            assert_string_equal(jstr(j, "delta.stop_reason"), "end_turn");
            assert_int_equal(jint(j, "usage.output_tokens"), 7);
        }
        json_decref(j);
    }
    assert_string_equal(text, "[] Stream this reply please");
    co_test_sse_free(&s);
}

static void test_tool_use(void **state)
{
    fx *f = *state;
    char body[2048];
    snprintf(body, sizeof body, "{\"model\":\"claude-sonnet-4\",\"max_tokens\":100,%s,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"find cats\"}]}", TOOLS);
    json_t *j = fx_json(fx_anthropic(f, body));
    assert_string_equal(jstr(j, "stop_reason"), "tool_use");
    assert_string_equal(jstr(j, "content.0.type"), "tool_use");
    assert_true(!strncmp(jstr(j, "content.0.id"), "toolu_", 6));
    assert_string_equal(jstr(j, "content.0.name"), "lookup");
    assert_string_equal(jstr(j, "content.0.input.q"), "find cats");
    assert_int_equal(jint(j, "content.0.input.n"), 1);
    assert_true(json_is_true(jpath(j, "content.0.input.on")));
    json_decref(j);

    snprintf(body, sizeof body, "{\"model\":\"claude-sonnet-4\",\"max_tokens\":100,\"stream\":true,%s,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"find cats\"}]}", TOOLS);
    co_test_sse s;
    fx_sse(fx_anthropic(f, body), &s);
    char partial[1024] = "";
    for (size_t i = 0; i < s.n; i++) {
        j = sse_json(&s, i);
        if (i == 1) {
            assert_string_equal(jstr(j, "content_block.type"), "tool_use");
            assert_string_equal(jstr(j, "content_block.name"), "lookup");
            assert_int_equal(json_object_size(jpath(j, "content_block.input")), 0);
        }
        if (!strcmp(s.v[i].event, "content_block_delta")) {
            assert_string_equal(jstr(j, "delta.type"), "input_json_delta");
            strcat(partial, jstr(j, "delta.partial_json"));
        }
        if (!strcmp(s.v[i].event, "message_delta"))
            assert_string_equal(jstr(j, "delta.stop_reason"), "tool_use");
        json_decref(j);
    }
    json_error_t e;
    j = json_loads(partial, 0, &e);
    assert_non_null(j);
    assert_string_equal(jstr(j, "q"), "find cats");
    json_decref(j);
    co_test_sse_free(&s);

    /* a tool_result turn gets text; tool_choice none too */
    snprintf(body, sizeof body, "{\"model\":\"claude-sonnet-4\",\"max_tokens\":100,%s,\"messages\":["
             "{\"role\":\"user\",\"content\":\"find cats\"},"
             "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"lookup\",\"input\":{}}]},"
             "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"3 cats\"}]}]}", TOOLS);
    j = fx_json(fx_anthropic(f, body));
    assert_string_equal(jstr(j, "stop_reason"), "end_turn");
    assert_string_equal(jstr(j, "content.0.text"), "[] find cats");
    json_decref(j);
    snprintf(body, sizeof body, "{\"model\":\"claude-sonnet-4\",\"max_tokens\":100,%s,\"tool_choice\":{\"type\":\"none\"},"
             "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", TOOLS);
    j = fx_json(fx_anthropic(f, body));
    assert_string_equal(jstr(j, "stop_reason"), "end_turn");
    json_decref(j);
}

static void test_errors(void **state)
{
    fx *f = *state;
    const char *ok = "{\"model\":\"claude-sonnet-4\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    const char *nokey[] = {"anthropic-version: 2023-06-01", NULL};
    assert_error(fx_call(f, "POST", "/v1/messages", nokey, ok), 401, "authentication_error");
    const char *nover[] = {"x-api-key: k", NULL};
    co__sim_reply *r = fx_call(f, "POST", "/v1/messages", nover, ok);
    assert_error(r, 400, "invalid_request_error");
    assert_non_null(strstr(r->body.p, "anthropic-version"));
    assert_error(fx_anthropic(f, "{\"model\":"), 400, "invalid_request_error");
    r = fx_anthropic(f, "{\"model\":\"claude-sonnet-4\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_error(r, 400, "invalid_request_error");
    assert_non_null(strstr(r->body.p, "max_tokens: Field required"));
    r = fx_anthropic(f, "{\"model\":\"claude-sonnet-4\",\"max_tokens\":10}");
    assert_error(r, 400, "invalid_request_error");
    assert_non_null(strstr(r->body.p, "messages: Field required"));
    r = fx_anthropic(f, "{\"model\":\"claude-sonnet-4\",\"max_tokens\":10,\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}");
    assert_error(r, 400, "invalid_request_error");
    assert_non_null(strstr(r->body.p, "messages.0.role"));
    r = fx_anthropic(f, "{\"model\":\"claude-sonnet-4\",\"max_tokens\":\"ten\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_error(r, 400, "invalid_request_error");
    r = fx_anthropic(f, "{\"model\":\"claude-sonnet-4\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":7}]}");
    assert_error(r, 400, "invalid_request_error");
    r = fx_anthropic(f, "{\"model\":\"claude-nope\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_error(r, 404, "not_found_error");
    assert_non_null(strstr(r->body.p, "claude-nope"));

    r = fx_anthropic(f, "{\"model\":\"down\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_error(r, 500, "api_error");
    r = fx_anthropic(f, "{\"model\":\"busy\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_error(r, 529, "overloaded_error");
    r = fx_anthropic(f, "{\"model\":\"limited\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_error(r, 429, "rate_limit_error");
    assert_int_equal(r->retry_after_ms, 2500);
    assert_int_equal(r->retry_after_ms_header, 0);
}

static void test_too_big_and_models(void **state)
{
    fx *f = *state;
    fx_free(f);
    f = *state = fx_new("max_body: 1k\nmodels: {claude-haiku-4: {provider: anthropic}, gpt-4o: {provider: openai}}\n");
    char body[4096];
    snprintf(body, sizeof body, "{\"model\":\"claude-haiku-4\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"%02000d\"}]}", 0);
    assert_error(fx_anthropic(f, body), 413, "request_too_large");
    json_t *j = fx_json(fx_call(f, "GET", "/v1/models", ANTHROPIC_H, NULL));
    assert_string_equal(jstr(j, "data.0.type"), "model");
    assert_string_equal(jstr(j, "data.0.id"), "claude-haiku-4");
    assert_null(jpath(j, "data.1"));
    assert_true(json_is_false(json_object_get(j, "has_more")));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_big_and_models, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
