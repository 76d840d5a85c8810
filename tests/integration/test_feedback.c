/* POST /v1/feedback through `cutover serve` against `cutover sim`: requests
 * of a 50% canary, then feedback on each answer by its X-Cutover-Request-Id
 * (bad on the candidate's, good on the incumbent's); after the gateway
 * stopped (the recorder flushed), co_store_feedback_summary over each arm's
 * window counts exactly that arm's feedback and its negatives. Also: what is
 * refused (bad JSON, bad score, missing or malformed id, wrong method, too
 * large) gets a 400/405/413 in the OpenAI error shape, unknown members are
 * ignored, a second vote replaces the first, comments are redacted like
 * recorded text, and /metrics counts all of it. */
#include <sqlite3.h>

#include "test_gateway_fixture.h"

static const char *SCENARIO = "seed: 5\n"
                              "api_key: sk-provider\n"
                              "models:\n"
                              "  gpt-4o: {provider: openai, template: \"Answer from {{model}}: {{last_user}}\"}\n"
                              "  claude-sonnet-4: {provider: anthropic, template: \"Claude: {{last_user}}\"}\n";

static const char *CONFIG = "listen: 127.0.0.1:0\n"
                            "workers: 2\n"
                            "store: sqlite:{DB}\n"
                            "log_level: warn\n"
                            "recorder: {flush_interval: 20ms}\n"
                            "redact: {email: true}\n"
                            "providers:\n"
                            "  oa: {kind: openai, base_url: \"{SIM}/v1\", api_key_env: OA_KEY}\n"
                            "  an: {kind: anthropic, base_url: \"{SIM}\", api_key_env: AN_KEY}\n"
                            "models:\n"
                            "  gpt-4o: {provider: oa}\n"
                            "  claude: {provider: an, upstream: claude-sonnet-4}\n"
                            "workloads:\n"
                            "  chat: {incumbent: gpt-4o, candidate: claude, mode: canary, percent: 50}\n";

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

static const char *const JSON_H[] = {"Content-Type: application/json", NULL};

static long feedback(gwf *f, const char *body, co_test_http *h)
{
    co_test_http_do(h, "POST", gwf_url(f, "/v1/feedback"), JSON_H, body, 0);
    return h->status;
}

/* A refused feedback: status and an OpenAI error whose message has `want`. */
static void refused(gwf *f, const char *method, const char *body, long status, const char *want)
{
    co_test_http h;
    co_test_http_do(&h, method, gwf_url(f, "/v1/feedback"), JSON_H, body, 0);
    assert_int_equal(h.status, status);
    json_t *j = gwf_json(&h);
    const char *msg = gwf_jstr(j, "error", "message");
    assert_non_null(msg);
    assert_string_equal(gwf_jstr(j, "error", "type"), "invalid_request_error");
    if (!strstr(msg, want))
        fail_msg("'%s' does not say '%s'", msg, want);
    json_decref(j);
    co_test_http_free(&h);
}

static double metric(const char *text, const char *series)
{
    const char *p = strstr(text, series);
    return p ? strtod(p + strlen(series), NULL) : -1;
}

static void test_feedback_joins_the_right_arm(void **state)
{
    NEED(state);
    enum { N = 24 };
    char ids[N][40], arms[N][16];
    int ncand = 0, ninc = 0;
    for (int i = 0; i < N; i++) {
        co_test_http h;
        char user[32];
        snprintf(user, sizeof user, "user-%d", i);
        gwf_chat(f, &h, "chat", 0, "how are you", user);
        assert_int_equal(h.status, 200);
        gwf_header(&h, "X-Cutover-Request-Id", ids[i], sizeof ids[i]);
        gwf_header(&h, "X-Cutover-Arm", arms[i], sizeof arms[i]);
        assert_int_equal(strlen(ids[i]), 32);
        co_test_http_free(&h);
        if (!strcmp(arms[i], "candidate"))
            ncand++;
        else
            ninc++;
    }
    assert_true(ncand > 0 && ninc > 0); /* 24 users at 50%: both arms serve */

    /* bad on the candidate's answers, good on the incumbent's; the first one
     * first votes good, then changes its mind (one vote per request) */
    int first_cand = -1;
    for (int i = 0; i < N; i++) {
        int cand = !strcmp(arms[i], "candidate");
        if (cand && first_cand < 0) {
            first_cand = i;
            char body[256];
            snprintf(body, sizeof body, "{\"request_id\":\"%.32s\",\"score\":1}", ids[i]);
            co_test_http h;
            assert_int_equal(feedback(f, body, &h), 200);
            co_test_http_free(&h);
        }
        char body[512];
        /* upper-case ids are the same request; unknown members are ignored */
        char id[40];
        snprintf(id, sizeof id, "%.32s", ids[i]);
        if (i % 3 == 0)
            for (char *c = id; *c; c++)
                *c = (char)(*c >= 'a' && *c <= 'f' ? *c - 32 : *c);
        snprintf(body, sizeof body,
                 "{\"request_id\":\"%s\",\"score\":%d,\"comment\":\"%s\",\"client\":{\"app\":\"t\"}}", id,
                 cand ? -1 : 1, cand ? "wrong answer, mail me at ana@example.com" : "good");
        co_test_http h;
        assert_int_equal(feedback(f, body, &h), 200);
        json_t *j = gwf_json(&h);
        assert_string_equal(gwf_jstr(j, "status", NULL), "recorded");
        assert_string_equal(gwf_jstr(j, "request_id", NULL), ids[i]); /* case-folded */
        assert_int_equal(json_integer_value(json_object_get(j, "score")), cand ? -1 : 1);
        json_decref(j);
        char rid[40];
        gwf_header(&h, "X-Cutover-Request-Id", rid, sizeof rid);
        assert_int_equal(strlen(rid), 32); /* the feedback answer has its own id */
        co_test_http_free(&h);
    }

    /* refused */
    char body[256];
    refused(f, "POST", "{\"request_id\": \"abc\"", 400, "not valid JSON");
    refused(f, "POST", "[1,2]", 400, "JSON object");
    refused(f, "POST", "{\"score\": -1}", 400, "request_id is required");
    refused(f, "POST", "{\"request_id\": \"not-an-id\", \"score\": -1}", 400, "32 hexadecimal");
    refused(f, "POST", "{\"request_id\": 12, \"score\": -1}", 400, "32 hexadecimal");
    snprintf(body, sizeof body, "{\"request_id\":\"%s\"}", ids[0]);
    refused(f, "POST", body, 400, "score is required");
    snprintf(body, sizeof body, "{\"request_id\":\"%s\",\"score\":2}", ids[0]);
    refused(f, "POST", body, 400, "score must be");
    snprintf(body, sizeof body, "{\"request_id\":\"%s\",\"score\":-0.5}", ids[0]);
    refused(f, "POST", body, 400, "score must be");
    snprintf(body, sizeof body, "{\"request_id\":\"%s\",\"score\":\"-1\"}", ids[0]);
    refused(f, "POST", body, 400, "score must be");
    snprintf(body, sizeof body, "{\"request_id\":\"%s\",\"score\":0,\"comment\":7}", ids[0]);
    refused(f, "POST", body, 400, "comment must be a string");
    refused(f, "GET", NULL, 405, "use POST");
    size_t big = 20000;
    char *huge = malloc(big + 256);
    int n = snprintf(huge, 256, "{\"request_id\":\"%s\",\"score\":0,\"comment\":\"", ids[0]);
    memset(huge + n, 'a', big);
    strcpy(huge + n + big, "\"}");
    co_test_http h;
    assert_int_equal(feedback(f, huge, &h), 413);
    json_t *j = gwf_json(&h);
    assert_non_null(gwf_jstr(j, "error", "message"));
    json_decref(j);
    co_test_http_free(&h);
    free(huge);

    /* /metrics counts what was stored (by score) and what was refused */
    co_test_http_do(&h, "GET", gwf_url(f, "/metrics"), NULL, NULL, 0);
    assert_int_equal(h.status, 200);
    assert_true(metric(h.body, "cutover_feedback_total{score=\"-1\"} ") == (double)ncand);
    assert_true(metric(h.body, "cutover_feedback_total{score=\"1\"} ") == (double)ninc + 1);
    assert_true(metric(h.body, "cutover_feedback_total{score=\"0\"} ") == 0);
    /* 10 refused by validation + the 413; the 405 is the router's */
    assert_true(metric(h.body, "cutover_feedback_rejected_total{reason=\"invalid\"} ") == 11);
    co_test_http_free(&h);

    /* stopping flushes the recorder: then the store joins feedback to exchanges */
    assert_int_equal(gwf_gw_stop(f), 0);
    co_store *st = gwf_store(f);
    assert_non_null(st);
    int64_t total = -1, neg = -1;
    co_window_query q = {.workload = "chat", .arm = "candidate", .role = "served"};
    assert_int_equal(co_store_feedback_summary(st, &q, &total, &neg), 0);
    assert_int_equal(total, ncand);
    assert_int_equal(neg, ncand); /* the changed vote counts once, as its last value */
    q.arm = "incumbent";
    assert_int_equal(co_store_feedback_summary(st, &q, &total, &neg), 0);
    assert_int_equal(total, ninc);
    assert_int_equal(neg, 0);
    co_store_close(st);

    /* comments are stored redacted */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *sel = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT comment FROM feedback WHERE request_id = ?1", -1, &sel, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(sel, 1, ids[first_cand], -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(sel), SQLITE_ROW);
    const char *c = (const char *)sqlite3_column_text(sel, 0);
    assert_non_null(c);
    assert_null(strstr(c, "ana@example.com"));
    assert_non_null(strstr(c, "[email]"));
    sqlite3_finalize(sel);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_feedback_joins_the_right_arm, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
