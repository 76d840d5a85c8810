/* co_endpoint: the URL of every API from the base_url spellings users copy
 * from provider docs, the key header of each API, and a missing key named. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/endpoint.h"
#include "cutover/error.h"

static void check(int kind, const char *base, const char *key_env, const char *want_url, const char *want_auth)
{
    co_provider_conf p = {.name = "p", .kind = kind, .base_url = (char *)base, .api_key_env = (char *)key_env};
    co_endpoint e;
    assert_int_equal(co_endpoint_init(&e, &p), 0);
    assert_string_equal(e.url, want_url);
    assert_string_equal(e.hdrs[0], "Content-Type: application/json");
    if (want_auth) {
        assert_non_null(e.hdr_auth);
        assert_string_equal(e.hdrs[1], want_auth);
    } else {
        assert_null(e.hdr_auth);
    }
    co_endpoint_clear(&e);
    assert_null(e.url);
}

static void test_urls_and_keys(void **state)
{
    (void)state;
    setenv("CO_TEST_EP_KEY", "sk-test", 1);
    check(CO_PROVIDER_OPENAI, "https://api.openai.com", "CO_TEST_EP_KEY", "https://api.openai.com/v1/chat/completions",
          "Authorization: Bearer sk-test");
    check(CO_PROVIDER_OPENAI_COMPAT, "http://127.0.0.1:8000/v1/", NULL, "http://127.0.0.1:8000/v1/chat/completions",
          NULL);
    check(CO_PROVIDER_ANTHROPIC, "https://api.anthropic.com/v1", "CO_TEST_EP_KEY", "https://api.anthropic.com/v1/messages",
          "x-api-key: sk-test");
    check(CO_PROVIDER_GEMINI, "https://generativelanguage.googleapis.com", "CO_TEST_EP_KEY",
          "https://generativelanguage.googleapis.com/v1beta/", "x-goog-api-key: sk-test");
}

static void test_anthropic_version_and_gemini_call_url(void **state)
{
    (void)state;
    co_provider_conf p = {.name = "a", .kind = CO_PROVIDER_ANTHROPIC, .base_url = "http://h", .anthropic_version = "2099-01-01"};
    co_endpoint e;
    assert_int_equal(co_endpoint_init(&e, &p), 0);
    assert_string_equal(e.hdrs[1], "anthropic-version: 2099-01-01");
    assert_null(e.hdrs[2]);
    char *u = NULL;
    assert_int_equal(co_endpoint_call_url(&u, &e, "claude-x", 1), 0);
    assert_string_equal(u, "http://h/v1/messages");
    free(u);
    co_endpoint_clear(&e);

    co_provider_conf g = {.name = "g", .kind = CO_PROVIDER_GEMINI, .base_url = "http://h/v1beta"};
    assert_int_equal(co_endpoint_init(&e, &g), 0);
    assert_int_equal(co_endpoint_call_url(&u, &e, "gemini-2.5-pro", 1), 0);
    assert_string_equal(u, "http://h/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse");
    free(u);
    assert_int_equal(co_endpoint_call_url(&u, &e, "gemini-2.5-pro", 0), 0);
    assert_string_equal(u, "http://h/v1beta/models/gemini-2.5-pro:generateContent");
    free(u);
    co_endpoint_clear(&e);
}

static void test_missing_key_is_named(void **state)
{
    (void)state;
    unsetenv("CO_TEST_EP_NOPE");
    co_provider_conf p = {.name = "p", .kind = CO_PROVIDER_OPENAI, .base_url = "http://h", .api_key_env = "CO_TEST_EP_NOPE"};
    co_endpoint e;
    assert_int_equal(co_endpoint_init(&e, &p), CO_ENOENT);
    assert_non_null(strstr(co_error_last(), "CO_TEST_EP_NOPE"));
    assert_null(e.url);
    assert_null(e.key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls_and_keys),
        cmocka_unit_test(test_anthropic_version_and_gemini_call_url),
        cmocka_unit_test(test_missing_key_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
