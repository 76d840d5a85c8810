/* Unit tests of the sim's Gemini protocol: generateContent JSON,
 * streamGenerateContent as SSE (alt=sse) and as a JSON array, function
 * calls, usageMetadata, keys from header or ?key=, and Google's error shape. */
#include "sim_fixture.h"

static const char *SCENARIO =
    "models:\n"
    "  gemini-2.5-flash:\n"
    "    provider: gemini\n"
    "    template: \"{{system}}|{{last_user}}\"\n"
    "    tokens: {chars_per_token: 2, cached_fraction: 0.5}\n"
    "  gemini-plain: {provider: gemini}\n"
    "  gemini-down: {provider: gemini, faults: {error_500: 1}}\n"
    "  gemini-busy: {provider: gemini, faults: {overloaded: 1}}\n"
    "  gemini-limited: {provider: gemini, faults: {error_429: 1, retry_after: 7s}}\n";

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

static void assert_error(co__sim_reply *r, int code, const char *status)
{
    assert_int_equal(r->status, code);
    json_t *j = fx_json(r);
    assert_int_equal(jint(j, "error.code"), code);
    assert_string_equal(jstr(j, "error.status"), status);
    assert_true(strlen(jstr(j, "error.message")) > 0);
    json_decref(j);
}

static void test_json_reply(void **state)
{
    fx *f = *state;
    co__sim_reply *r = fx_gemini(f, "gemini-2.5-flash", "generateContent",
                                 "{\"systemInstruction\":{\"parts\":[{\"text\":\"sys\"}]},"
                                 "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hello\"}]}]}");
    assert_int_equal(r->status, 200);
    assert_null(r->id_header);
    json_t *j = fx_json(r);
    assert_string_equal(jstr(j, "candidates.0.content.role"), "model");
    assert_string_equal(jstr(j, "candidates.0.content.parts.0.text"), "sys|hello");
    assert_string_equal(jstr(j, "candidates.0.finishReason"), "STOP");
    /* "sys"+"hello" = 8 chars at 2 per token */
    assert_int_equal(jint(j, "usageMetadata.promptTokenCount"), 4);
    assert_int_equal(jint(j, "usageMetadata.candidatesTokenCount"), 5);
    assert_int_equal(jint(j, "usageMetadata.totalTokenCount"), 9);
    assert_int_equal(jint(j, "usageMetadata.cachedContentTokenCount"), 2);
    assert_string_equal(jstr(j, "modelVersion"), "gemini-2.5-flash");
    assert_true(strlen(jstr(j, "responseId")) > 0);
    json_decref(j);

    /* no cache, no cachedContentTokenCount (proto3 JSON leaves zero out) */
    j = fx_json(fx_gemini(f, "gemini-plain", "generateContent", "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}"));
    assert_null(jpath(j, "usageMetadata.cachedContentTokenCount"));
    assert_string_equal(jstr(j, "candidates.0.content.parts.0.text"), "hi");
    json_decref(j);

    j = fx_json(fx_gemini(f, "gemini-plain", "generateContent",
                          "{\"generationConfig\":{\"maxOutputTokens\":1},\"contents\":[{\"parts\":[{\"text\":\"hello world\"}]}]}"));
    assert_string_equal(jstr(j, "candidates.0.finishReason"), "MAX_TOKENS");
    assert_int_equal(jint(j, "usageMetadata.candidatesTokenCount"), 1);
    json_decref(j);
}

static void test_stream_sse(void **state)
{
    fx *f = *state;
    co__sim_reply *r = fx_call(f, "POST", "/v1beta/models/gemini-plain:streamGenerateContent?alt=sse", GEMINI_H,
                               "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"one two three four\"}]}]}");
    assert_int_equal(r->status, 200);
    assert_string_equal(r->ctype, "text/event-stream");
    co_test_sse s;
    fx_sse(r, &s);
    assert_true(s.n >= 2);
    char text[256] = "";
    long long prev = 0;
    for (size_t i = 0; i < s.n; i++) {
        assert_null(s.v[i].event);
        json_t *j = sse_json(&s, i);
        strcat(text, jstr(j, "candidates.0.content.parts.0.text"));
        long long c = jint(j, "usageMetadata.candidatesTokenCount");
        assert_true(c >= prev);
        prev = c;
        if (i + 1 < s.n)
            assert_null(jpath(j, "candidates.0.finishReason"));
        else {
            assert_string_equal(jstr(j, "candidates.0.finishReason"), "STOP");
            assert_int_equal(c, 5); /* 18 chars at 4 per token */
            assert_int_equal(jint(j, "usageMetadata.totalTokenCount"), jint(j, "usageMetadata.promptTokenCount") + 5);
        }
        json_decref(j);
    }
    assert_string_equal(text, "one two three four");
    co_test_sse_free(&s);
}

static void test_stream_json_array(void **state)
{
    fx *f = *state;
    co__sim_reply *r = fx_gemini(f, "gemini-plain", "streamGenerateContent",
                                 "{\"contents\":[{\"parts\":[{\"text\":\"alpha beta\"}]}]}");
    assert_int_equal(r->status, 200);
    assert_true(r->stream);
    json_t *j = fx_json(r);
    assert_true(json_is_array(j));
    assert_true(json_array_size(j) >= 2);
    char text[256] = "";
    for (size_t i = 0; i < json_array_size(j); i++)
        strcat(text, jstr(json_array_get(j, i), "candidates.0.content.parts.0.text"));
    assert_string_equal(text, "alpha beta");
    json_decref(j);
}

static void test_function_call(void **state)
{
    fx *f = *state;
    const char *body =
        "{\"contents\":[{\"parts\":[{\"text\":\"weather in Rome\"}]}],"
        "\"tools\":[{\"functionDeclarations\":[{\"name\":\"get_weather\",\"parameters\":{\"type\":\"OBJECT\","
        "\"properties\":{\"city\":{\"type\":\"STRING\"}},\"required\":[\"city\"]}}]}]}";
    json_t *j = fx_json(fx_gemini(f, "gemini-plain", "generateContent", body));
    assert_string_equal(jstr(j, "candidates.0.content.parts.0.functionCall.name"), "get_weather");
    assert_string_equal(jstr(j, "candidates.0.content.parts.0.functionCall.args.city"), "weather in Rome");
    assert_string_equal(jstr(j, "candidates.0.finishReason"), "STOP");
    json_decref(j);

    co__sim_reply *r = fx_call(f, "POST", "/v1beta/models/gemini-plain:streamGenerateContent?alt=sse", GEMINI_H, body);
    co_test_sse s;
    fx_sse(r, &s);
    assert_int_equal(s.n, 1);
    j = sse_json(&s, 0);
    assert_string_equal(jstr(j, "candidates.0.content.parts.0.functionCall.name"), "get_weather");
    json_decref(j);
    co_test_sse_free(&s);

    /* after a functionResponse the model answers in text; mode NONE disables calls */
    j = fx_json(fx_gemini(f, "gemini-plain", "generateContent",
                          "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"weather in Rome\"}]},"
                          "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"get_weather\",\"args\":{}}}]},"
                          "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"get_weather\",\"response\":{\"t\":20}}}]}],"
                          "\"tools\":[{\"functionDeclarations\":[{\"name\":\"get_weather\"}]}]}"));
    assert_string_equal(jstr(j, "candidates.0.content.parts.0.text"), "weather in Rome");
    json_decref(j);
    j = fx_json(fx_gemini(f, "gemini-plain", "generateContent",
                          "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}],\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"NONE\"}},"
                          "\"tools\":[{\"functionDeclarations\":[{\"name\":\"get_weather\"}]}]}"));
    assert_string_equal(jstr(j, "candidates.0.content.parts.0.text"), "x");
    json_decref(j);
}

static void test_keys(void **state)
{
    fx *f = *state;
    const char *body = "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}]}";
    const char *none[] = {"Content-Type: application/json", NULL};
    assert_error(fx_call(f, "POST", "/v1beta/models/gemini-plain:generateContent", none, body), 401, "UNAUTHENTICATED");
    assert_int_equal(fx_call(f, "POST", "/v1beta/models/gemini-plain:generateContent?key=AIza1", none, body)->status, 200);
    /* also on the v1 path */
    assert_int_equal(fx_call(f, "POST", "/v1/models/gemini-plain:generateContent?key=AIza1", none, body)->status, 200);
    fx_free(f);
    f = *state = fx_new("api_key: good\nmax_body: 1k\nmodels: {g: {provider: gemini}}\n");
    co__sim_reply *r = fx_call(f, "POST", "/v1beta/models/g:generateContent?key=bad", none, body);
    assert_error(r, 400, "INVALID_ARGUMENT");
    assert_non_null(strstr(r->body.p, "API_KEY_INVALID"));
    assert_int_equal(fx_call(f, "POST", "/v1beta/models/g:generateContent?key=good", none, body)->status, 200);
    char big[2048];
    snprintf(big, sizeof big, "{\"contents\":[{\"parts\":[{\"text\":\"%01500d\"}]}]}", 0);
    r = fx_call(f, "POST", "/v1beta/models/g:generateContent?key=good", none, big);
    assert_error(r, 413, "INVALID_ARGUMENT");
    assert_non_null(strstr(r->body.p, "limit"));
}

static void test_errors(void **state)
{
    fx *f = *state;
    co__sim_reply *r = fx_gemini(f, "gemini-nope", "generateContent", "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}]}");
    assert_error(r, 404, "NOT_FOUND");
    assert_non_null(strstr(r->body.p, "models/gemini-nope"));
    assert_error(fx_gemini(f, "gemini-plain", "generateContent", "{oops"), 400, "INVALID_ARGUMENT");
    assert_error(fx_gemini(f, "gemini-plain", "generateContent", "{}"), 400, "INVALID_ARGUMENT");
    assert_error(fx_gemini(f, "gemini-plain", "generateContent", "{\"contents\":[{\"parts\":[]}]}"), 400, "INVALID_ARGUMENT");
    assert_error(fx_gemini(f, "gemini-plain", "generateContent", "{\"contents\":[{\"role\":\"bot\",\"parts\":[{\"text\":\"x\"}]}]}"),
                 400, "INVALID_ARGUMENT");
    r = fx_gemini(f, "gemini-plain", "generateContent", "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}],\"messages\":[]}");
    assert_error(r, 400, "INVALID_ARGUMENT");
    assert_non_null(strstr(r->body.p, "Unknown name"));
    assert_error(fx_gemini(f, "gemini-plain", "countTokensX", "{}"), 404, "NOT_FOUND");
    assert_error(fx_gemini(f, "gemini-down", "generateContent", "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}]}"), 500, "INTERNAL");
    assert_error(fx_gemini(f, "gemini-busy", "generateContent", "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}]}"), 503, "UNAVAILABLE");
    r = fx_gemini(f, "gemini-limited", "generateContent", "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}]}");
    assert_error(r, 429, "RESOURCE_EXHAUSTED");
    assert_int_equal(r->retry_after_ms, 7000);
    json_t *j = fx_json(r);
    assert_string_equal(jstr(j, "error.details.0.retryDelay"), "7s");
    json_decref(j);

    j = fx_json(fx_call(f, "GET", "/v1beta/models", GEMINI_H, NULL));
    assert_string_equal(jstr(j, "models.0.name"), "models/gemini-2.5-flash");
    json_decref(j);
    j = fx_json(fx_call(f, "GET", "/v1beta/models/gemini-plain", GEMINI_H, NULL));
    assert_string_equal(jstr(j, "name"), "models/gemini-plain");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_sse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_json_array, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
