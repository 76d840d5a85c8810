/* Unit tests of the sim's OpenAI Chat Completions protocol: the JSON reply
 * and the SSE stream parsed back (role delta first, content, finish_reason,
 * usage chunk, [DONE]), tool calls in both, and every error shape. */
#include "sim_fixture.h"

static const char *SCENARIO =
    "seed: 42\n"
    "models:\n"
    "  gpt-4o:\n"
    "    provider: openai\n"
    "    template: \"Answer from {{model}}: {{last_user}}\"\n"
    "    tokens: {chars_per_token: 4, cached_fraction: 0.5}\n"
    "  lazy:\n"
    "    answer: echo\n"
    "    tools: never\n"
    "  small:\n"
    "    answer: echo\n"
    "    context_window: 5\n"
    "  claude-x:\n"
    "    provider: anthropic\n";

static const char *TOOLS =
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"w\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"
    "\"unit\":{\"type\":\"string\",\"enum\":[\"c\",\"f\"]},\"days\":{\"type\":\"integer\"}},"
    "\"required\":[\"city\",\"unit\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"second\",\"parameters\":{\"type\":\"object\"}}}]";

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

static void assert_error(co__sim_reply *r, int status, const char *type, const char *code, const char *param)
{
    assert_int_equal(r->status, status);
    assert_string_equal(r->ctype, "application/json");
    json_t *j = fx_json(r);
    json_t *e = json_object_get(j, "error");
    assert_true(json_is_object(e));
    assert_true(json_is_string(json_object_get(e, "message")));
    assert_true(strlen(jstr(e, "message")) > 0);
    assert_string_equal(jstr(e, "type"), type);
    /* param and code are present, as null when they do not apply */
    assert_non_null(json_object_get(e, "param"));
    assert_non_null(json_object_get(e, "code"));
    if (code)
        assert_string_equal(jstr(e, "code"), code);
    else
        assert_true(json_is_null(json_object_get(e, "code")));
    if (param)
        assert_string_equal(jstr(e, "param"), param);
    json_decref(j);
}

static void test_json_reply(void **state)
{
    fx *f = *state;
    co__sim_reply *r = fx_openai(f, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                                    "{\"role\":\"user\",\"content\":\"What is 2+2?\"}]}");
    assert_int_equal(r->status, 200);
    assert_false(r->stream);
    assert_string_equal(r->id_header, "x-request-id");
    json_t *j = fx_json(r);
    assert_string_equal(jstr(j, "object"), "chat.completion");
    assert_true(!strncmp(jstr(j, "id"), "chatcmpl-", 9));
    assert_string_equal(jstr(j, "model"), "gpt-4o");
    assert_true(jint(j, "created") > 1600000000);
    assert_string_equal(jstr(j, "choices.0.message.role"), "assistant");
    assert_string_equal(jstr(j, "choices.0.message.content"), "Answer from gpt-4o: What is 2+2?");
    assert_string_equal(jstr(j, "choices.0.finish_reason"), "stop");
    assert_int_equal(jint(j, "choices.0.index"), 0);
    /* "Be brief." + "What is 2+2?" = 21 chars -> 6 tokens; the answer 32 chars -> 8 */
    assert_int_equal(jint(j, "usage.prompt_tokens"), 6);
    assert_int_equal(jint(j, "usage.completion_tokens"), 8);
    assert_int_equal(jint(j, "usage.total_tokens"), 14);
    assert_int_equal(jint(j, "usage.prompt_tokens_details.cached_tokens"), 3);
    json_decref(j);
}

static void test_json_content_parts_and_max_tokens(void **state)
{
    fx *f = *state;
    co__sim_reply *r = fx_openai(f, "{\"model\":\"gpt-4o\",\"max_tokens\":3,\"messages\":[{\"role\":\"user\",\"content\":"
                                    "[{\"type\":\"text\",\"text\":\"parts work\"}]}]}");
    assert_int_equal(r->status, 200);
    json_t *j = fx_json(r);
    assert_string_equal(jstr(j, "choices.0.finish_reason"), "length");
    assert_int_equal(jint(j, "usage.completion_tokens"), 3);
    assert_string_equal(jstr(j, "choices.0.message.content"), "Answer from ");
    json_decref(j);
}

/* Streams a request and checks the chunk protocol; returns the joined content. */
static char *stream(fx *f, const char *body, int include_usage, const char *finish, json_t **usage_out)
{
    co__sim_reply *r = fx_openai(f, body);
    assert_int_equal(r->status, 200);
    assert_true(r->stream);
    assert_string_equal(r->ctype, "text/event-stream; charset=utf-8");
    co_test_sse s;
    fx_sse(r, &s);
    assert_true(s.n >= 4);
    assert_string_equal(s.v[s.n - 1].data, "[DONE]");
    size_t last_choice = include_usage ? s.n - 3 : s.n - 2;
    char *content = calloc(1, 65536);
    const char *id = NULL;
    for (size_t i = 0; i + 1 < s.n; i++) {
        assert_null(s.v[i].event); /* OpenAI sends bare data: lines */
        json_t *c = sse_json(&s, i);
        assert_string_equal(jstr(c, "object"), "chat.completion.chunk");
        if (!id)
            id = strdup(jstr(c, "id"));
        assert_string_equal(jstr(c, "id"), id); /* one id for the whole stream */
        if (include_usage && i == s.n - 2) {
            assert_int_equal(json_array_size(json_object_get(c, "choices")), 0);
            assert_true(json_is_object(json_object_get(c, "usage")));
            *usage_out = json_incref(json_object_get(c, "usage"));
            json_decref(c);
            continue;
        }
        if (include_usage)
            assert_true(json_is_null(json_object_get(c, "usage")));
        else
            assert_null(json_object_get(c, "usage"));
        json_t *delta = jpath(c, "choices.0.delta");
        assert_true(json_is_object(delta));
        if (i == 0)
            assert_string_equal(jstr(delta, "role"), "assistant");
        else
            assert_null(json_object_get(delta, "role"));
        json_t *fr = jpath(c, "choices.0.finish_reason");
        if (i == last_choice) {
            assert_string_equal(json_string_value(fr), finish);
            assert_int_equal(json_object_size(delta), 0);
        } else {
            assert_true(json_is_null(fr));
        }
        if (json_is_string(json_object_get(delta, "content")))
            strcat(content, json_string_value(json_object_get(delta, "content")));
        json_decref(c);
    }
    free((char *)id);
    co_test_sse_free(&s);
    return content;
}

static void test_stream(void **state)
{
    fx *f = *state;
    const char *msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story about a brave little toaster\"}]";
    char body[1024];
    snprintf(body, sizeof body, "{\"model\":\"gpt-4o\",\"stream\":true,%s}", msgs);
    char *c = stream(f, body, 0, "stop", NULL);
    assert_string_equal(c, "Answer from gpt-4o: Tell me a story about a brave little toaster");
    free(c);
    json_t *usage = NULL;
    snprintf(body, sizeof body, "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":true},%s}", msgs);
    c = stream(f, body, 1, "stop", &usage);
    assert_string_equal(c, "Answer from gpt-4o: Tell me a story about a brave little toaster");
    assert_int_equal(jint(usage, "completion_tokens"), (long long)((strlen(c) + 3) / 4));
    assert_int_equal(jint(usage, "total_tokens"), jint(usage, "prompt_tokens") + jint(usage, "completion_tokens"));
    assert_non_null(jpath(usage, "prompt_tokens_details.cached_tokens"));
    json_decref(usage);
    free(c);
    /* a stream cut by max_tokens ends with finish_reason length */
    snprintf(body, sizeof body, "{\"model\":\"gpt-4o\",\"stream\":true,\"max_completion_tokens\":2,%s}", msgs);
    c = stream(f, body, 0, "length", NULL);
    assert_string_equal(c, "Answer f");
    free(c);
}

static void test_stream_marks_tokens(void **state)
{
    fx *f = *state;
    co__sim_reply *r = fx_openai(f, "{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"a b c\"}]}");
    /* role chunk, then one event per token piece, then finish and [DONE] */
    assert_true(r->n_cuts >= 5);
    assert_int_equal(r->cuts[0].token, 0);
    assert_int_equal(r->cuts[1].token, 1);
    assert_int_equal(r->cuts[r->n_cuts - 1].token, 0);
    assert_int_equal(r->cuts[r->n_cuts - 1].end, r->body.len);
}

static void check_args(const char *args)
{
    json_error_t e;
    json_t *a = json_loads(args, 0, &e);
    assert_non_null(a);
    assert_true(json_is_string(json_object_get(a, "city")));
    assert_string_equal(jstr(a, "unit"), "c"); /* enum: its first value */
    assert_null(json_object_get(a, "days"));   /* not required */
    json_decref(a);
}

static void test_tool_calls(void **state)
{
    fx *f = *state;
    char body[2048];
    snprintf(body, sizeof body, "{\"model\":\"gpt-4o\",%s,\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}]}", TOOLS);
    co__sim_reply *r = fx_openai(f, body);
    assert_int_equal(r->status, 200);
    json_t *j = fx_json(r);
    assert_string_equal(jstr(j, "choices.0.finish_reason"), "tool_calls");
    assert_true(json_is_null(jpath(j, "choices.0.message.content")));
    json_t *tc = jpath(j, "choices.0.message.tool_calls.0");
    assert_true(!strncmp(jstr(tc, "id"), "call_", 5));
    assert_string_equal(jstr(tc, "type"), "function");
    assert_string_equal(jstr(tc, "function.name"), "get_weather");
    check_args(jstr(tc, "function.arguments"));
    assert_null(jpath(j, "choices.0.message.tool_calls.1"));
    json_decref(j);

    /* streamed: the first delta names the call, later ones carry argument text */
    snprintf(body, sizeof body, "{\"model\":\"gpt-4o\",\"stream\":true,%s,\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}]}", TOOLS);
    r = fx_openai(f, body);
    co_test_sse s;
    fx_sse(r, &s);
    char args[4096] = "";
    for (size_t i = 0; i + 1 < s.n; i++) {
        json_t *c = sse_json(&s, i);
        json_t *t = jpath(c, "choices.0.delta.tool_calls.0");
        if (i == 0) {
            assert_string_equal(jstr(c, "choices.0.delta.role"), "assistant");
            assert_true(!strncmp(jstr(t, "id"), "call_", 5));
            assert_string_equal(jstr(t, "function.name"), "get_weather");
            assert_int_equal(jint(t, "index"), 0);
        }
        if (t)
            strcat(args, jstr(t, "function.arguments"));
        if (i == s.n - 2)
            assert_string_equal(jstr(c, "choices.0.finish_reason"), "tool_calls");
        json_decref(c);
    }
    check_args(args);
    co_test_sse_free(&s);

    /* the answer to a tool result is text again */
    snprintf(body, sizeof body,
             "{\"model\":\"gpt-4o\",%s,\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"},"
             "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
             "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny\"}]}",
             TOOLS);
    r = fx_openai(f, body);
    j = fx_json(r);
    assert_string_equal(jstr(j, "choices.0.finish_reason"), "stop");
    assert_string_equal(jstr(j, "choices.0.message.content"), "Answer from gpt-4o: Weather?");
    json_decref(j);

    /* tool_choice none: text; a named choice picks that tool */
    snprintf(body, sizeof body, "{\"model\":\"gpt-4o\",%s,\"tool_choice\":\"none\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", TOOLS);
    j = fx_json(fx_openai(f, body));
    assert_string_equal(jstr(j, "choices.0.finish_reason"), "stop");
    json_decref(j);
    snprintf(body, sizeof body,
             "{\"model\":\"gpt-4o\",%s,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"second\"}},"
             "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
             TOOLS);
    j = fx_json(fx_openai(f, body));
    assert_string_equal(jstr(j, "choices.0.message.tool_calls.0.function.name"), "second");
    assert_string_equal(jstr(j, "choices.0.message.tool_calls.0.function.arguments"), "{}");
    json_decref(j);

    /* tools: never answers in text unless the call is forced */
    snprintf(body, sizeof body, "{\"model\":\"lazy\",%s,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", TOOLS);
    j = fx_json(fx_openai(f, body));
    assert_string_equal(jstr(j, "choices.0.finish_reason"), "stop");
    json_decref(j);
    snprintf(body, sizeof body, "{\"model\":\"lazy\",%s,\"tool_choice\":\"required\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", TOOLS);
    j = fx_json(fx_openai(f, body));
    assert_string_equal(jstr(j, "choices.0.finish_reason"), "tool_calls");
    json_decref(j);
}

static void test_auth(void **state)
{
    fx *f = *state;
    const char *body = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    assert_error(fx_call(f, "POST", "/v1/chat/completions", NULL, body), 401, "invalid_request_error", NULL, NULL);
    const char *basic[] = {"Authorization: Basic abc", NULL};
    assert_error(fx_call(f, "POST", "/v1/chat/completions", basic, body), 401, "invalid_request_error", NULL, NULL);
    fx_free(f);
    /* with api_key set only that key passes; the message masks the key */
    f = *state = fx_new("api_key: sk-right-key-123\nmodels: {gpt-4o: {}}\n");
    const char *wrong[] = {"Authorization: Bearer sk-wrong-key-999", NULL};
    co__sim_reply *r = fx_call(f, "POST", "/v1/chat/completions", wrong, body);
    assert_error(r, 401, "invalid_request_error", "invalid_api_key", NULL);
    assert_null(strstr(r->body.p, "sk-wrong-key-999"));
    const char *right[] = {"Authorization: Bearer sk-right-key-123", NULL};
    assert_int_equal(fx_call(f, "POST", "/v1/chat/completions", right, body)->status, 200);
}

static void test_validation(void **state)
{
    fx *f = *state;
    assert_error(fx_openai(f, "{\"model\": \"gpt-4o\", \"messages\": ["), 400, "invalid_request_error", NULL, NULL);
    assert_error(fx_openai(f, "[1,2]"), 400, "invalid_request_error", NULL, NULL);
    assert_error(fx_openai(f, "{\"model\":\"gpt-4o\"}"), 400, "invalid_request_error", "missing_required_parameter", "messages");
    assert_error(fx_openai(f, "{\"messages\":[]}"), 400, "invalid_request_error", "missing_required_parameter", "model");
    assert_error(fx_openai(f, "{\"model\":\"gpt-4o\",\"messages\":\"hi\"}"), 400, "invalid_request_error", "invalid_type", "messages");
    assert_error(fx_openai(f, "{\"model\":7,\"messages\":[]}"), 400, "invalid_request_error", "invalid_type", "model");
    assert_error(fx_openai(f, "{\"model\":\"gpt-4o\",\"messages\":[]}"), 400, "invalid_request_error", "empty_array", "messages");
    assert_error(fx_openai(f, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}"), 400,
                 "invalid_request_error", "invalid_value", "messages[0].role");
    assert_error(fx_openai(f, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\"}]}"), 400,
                 "invalid_request_error", "missing_required_parameter", "messages[0].content");
    assert_error(fx_openai(f, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":1}]}"), 400,
                 "invalid_request_error", "invalid_type", "messages[0].content");
    assert_error(fx_openai(f, "{\"model\":\"gpt-4o\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"), 400,
                 "invalid_request_error", "invalid_type", "stream");
    assert_error(fx_openai(f, "{\"model\":\"gpt-4o\",\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"),
                 400, "invalid_request_error", "invalid_value", "stream_options");
    assert_error(fx_openai(f, "{\"model\":\"gpt-4o\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"), 400,
                 "invalid_request_error", "integer_below_min_value", "max_tokens");
    assert_error(fx_openai(f, "{\"model\":\"gpt-4o\",\"temperature\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"), 400,
                 "invalid_request_error", "decimal_above_max_value", "temperature");
    assert_error(fx_openai(f, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"x\"}]}"), 400,
                 "invalid_request_error", NULL, NULL);
    assert_error(fx_openai(f, "{\"model\":\"gpt-4o\",\"tools\":[{\"type\":\"function\"}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"),
                 400, "invalid_request_error", "missing_required_parameter", "tools[0].function");
    assert_error(fx_openai(f, "{\"model\":\"gpt-4o\",\"tool_choice\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"),
                 400, "invalid_request_error", NULL, "tool_choice");
}

static void test_model_and_routes(void **state)
{
    fx *f = *state;
    co__sim_reply *r = fx_openai(f, "{\"model\":\"gpt-5-nope\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_error(r, 404, "invalid_request_error", "model_not_found", NULL);
    assert_non_null(strstr(r->body.p, "gpt-5-nope"));
    /* a model of another vendor is not served over this API */
    assert_error(fx_openai(f, "{\"model\":\"claude-x\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"), 404,
                 "invalid_request_error", "model_not_found", NULL);
    assert_error(fx_call(f, "POST", "/v1/chat/complete", OPENAI_H, "{}"), 404, "invalid_request_error", NULL, NULL);
    assert_error(fx_call(f, "GET", "/v1/chat/completions", OPENAI_H, NULL), 405, "invalid_request_error", NULL, NULL);
    /* context window */
    assert_error(fx_openai(f, "{\"model\":\"small\",\"messages\":[{\"role\":\"user\",\"content\":\"this prompt is far too long\"}]}"),
                 400, "invalid_request_error", "context_length_exceeded", "messages");
    /* model list */
    json_t *j = fx_json(fx_call(f, "GET", "/v1/models", OPENAI_H, NULL));
    assert_string_equal(jstr(j, "object"), "list");
    int seen = 0;
    for (size_t i = 0; i < json_array_size(json_object_get(j, "data")); i++) {
        assert_string_equal(jstr(j, "data.0.object"), "model");
        const char *id = json_string_value(jpath(json_array_get(json_object_get(j, "data"), i), "id"));
        assert_string_not_equal(id, "claude-x");
        seen += !strcmp(id, "gpt-4o");
    }
    assert_int_equal(seen, 1);
    json_decref(j);
    j = fx_json(fx_call(f, "GET", "/v1/models/gpt-4o", OPENAI_H, NULL));
    assert_string_equal(jstr(j, "id"), "gpt-4o");
    json_decref(j);
    assert_error(fx_call(f, "GET", "/v1/models/nope", OPENAI_H, NULL), 404, "invalid_request_error", "model_not_found", NULL);
}

static void test_too_big(void **state)
{
    fx *f = *state;
    fx_free(f);
    f = *state = fx_new("max_body: 2k\nmodels: {gpt-4o: {}}\n");
    char *body = malloc(4096);
    snprintf(body, 4096, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"");
    size_t n = strlen(body);
    memset(body + n, 'a', 3000);
    strcpy(body + n + 3000, "\"}]}");
    co__sim_reply *r = fx_openai(f, body);
    assert_error(r, 413, "invalid_request_error", "request_too_large", NULL);
    free(body);
    assert_int_equal(fx_openai(f, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}")->status, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_content_parts_and_max_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_marks_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_and_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
