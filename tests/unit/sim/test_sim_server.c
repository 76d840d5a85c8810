/* Unit test of the sim's library API in-process: co_sim_new on an ephemeral
 * port, co_sim_run on a thread, requests over loopback (JSON, a paced SSE
 * stream, a held request), co_sim_stop from another thread, co_sim_free. */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sim_fixture.h"

static void *runner(void *arg)
{
    co_sim_run(arg);
    return NULL;
}

typedef struct held {
    int port;
    co_test_http h;
} held;

static void *hold(void *arg)
{
    held *x = arg;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", x->port);
    co_test_http_do(&x->h, "POST", url, OPENAI_H, "{\"model\":\"hang\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 5000);
    return NULL;
}

static void test_run_and_stop(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    char *dir = co_test_tmpdir();
    char *sc = co_test_write(dir, "s.yaml",
                             "models:\n"
                             "  ok: {template: \"hi {{last_user}}\"}\n"
                             "  paced: {latency: {ttft: 20ms, per_token: 10ms}}\n"
                             "  hang: {faults: {timeout: 1}}\n");
    co_sim_opts o = {.listen = "127.0.0.1:0", .scenario_path = sc, .threads = 2};
    co_diags d = {0};
    co_sim *sim = NULL;
    assert_int_equal(co_sim_new(&sim, &o, &d), 0);
    co_diags_free(&d);
    int port = co_sim_port(sim);
    assert_true(port > 0);
    char addr[64], want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    assert_string_equal(co_sim_address(sim, addr, sizeof addr), want);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, runner, sim), 0);

    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", port);
    co_test_http h;
    co_test_http_do(&h, "POST", url, OPENAI_H, "{\"model\":\"ok\",\"messages\":[{\"role\":\"user\",\"content\":\"there\"}]}", 0);
    assert_int_equal(h.status, 200);
    assert_non_null(strstr(h.body, "\"hi there\""));
    co_test_http_free(&h);

    co_test_http_do(&h, "POST", url, OPENAI_H,
                    "{\"model\":\"paced\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"a b c d e\"}]}", 0);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.curl_code, CURLE_OK);
    co_test_sse s;
    assert_int_equal(co_test_sse_parse(h.body, h.body_len, &s), 0);
    assert_true(s.complete);
    assert_string_equal(s.v[s.n - 1].data, "[DONE]");
    assert_true(h.seconds >= 0.02 + 0.01 * 4 - 0.005);
    co_test_sse_free(&s);
    co_test_http_free(&h);

    /* a request held open when the sim is freed gets its connection closed */
    held x = {.port = port};
    pthread_t hth;
    assert_int_equal(pthread_create(&hth, NULL, hold, &x), 0);
    usleep(200000);
    co_sim_stop(sim);
    assert_int_equal(pthread_join(th, NULL), 0);
    co_sim_free(sim); /* closes every connection */
    assert_int_equal(pthread_join(hth, NULL), 0);
    assert_int_equal(x.h.status, 0);
    assert_int_not_equal(x.h.curl_code, CURLE_OPERATION_TIMEDOUT);
    co_test_http_free(&x.h);

    /* a bad address and a bad scenario are reported, not fatal */
    co_sim_opts bad = {.listen = "nowhere"};
    assert_int_equal(co_sim_new(&sim, &bad, &d), CO_EINVAL);
    assert_null(sim);
    char *bsc = co_test_write(dir, "bad.yaml", "models: {m: {verbosity: 99}}\n");
    co_sim_opts bad2 = {.scenario_path = bsc};
    assert_int_equal(co_sim_new(&sim, &bad2, &d), CO_ECONFIG);
    assert_true(d.n >= 1);
    assert_int_equal(d.v[0].line, 1);
    co_diags_free(&d);
    free(bsc);
    free(sc);
    co_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_and_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
