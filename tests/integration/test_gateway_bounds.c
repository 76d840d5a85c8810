/* Bounds that keep the gateway's memory finite: with a candidate far slower
 * than the incumbent, shadow calls beyond limits.max_shadow_in_flight per
 * worker are skipped (and counted on /metrics), while every request is still
 * served — by the incumbent, at its own speed. */
#include "test_gateway_fixture.h"

static const char *SCENARIO =
    "seed: 5\n"
    "api_key: sk-provider\n"
    "models:\n"
    "  gpt-4o: {provider: openai, template: \"Answer: {{last_user}}\"}\n"
    "  claude-slow: {provider: anthropic, template: \"Slow: {{last_user}}\", latency: {ttft: 4s}}\n";

static const char *CONFIG =
    "listen: 127.0.0.1:0\n"
    "workers: 1\n"
    "store: sqlite:{DB}\n"
    "log_level: warn\n"
    "limits: {max_shadow_in_flight: 2}\n"
    "recorder: {flush_interval: 20ms}\n"
    "providers:\n"
    "  oa: {kind: openai, base_url: \"{SIM}/v1\", api_key_env: OA_KEY}\n"
    "  an: {kind: anthropic, base_url: \"{SIM}\", api_key_env: AN_KEY}\n"
    "models:\n"
    "  gpt-4o: {provider: oa}\n"
    "  claude-slow: {provider: an}\n"
    "workloads:\n"
    "  chat: {incumbent: gpt-4o, candidate: claude-slow, mode: shadow}\n";

static void test_shadow_in_flight_is_bounded(void **state)
{
    (void)state;
    gwf *f = gwf_new();
    assert_non_null(f);
    assert_int_equal(gwf_sim_start(f, SCENARIO), 0);
    assert_int_equal(gwf_config(f, CONFIG), 0);
    assert_int_equal(gwf_gw_start(f, NULL, NULL), 0);
    for (int i = 0; i < 5; i++) {
        co_test_http h;
        gwf_chat(f, &h, "chat", 0, "hello", NULL);
        assert_int_equal(h.status, 200);
        char *t = gwf_openai_text(&h, 0);
        assert_string_equal(t, "Answer: hello");
        free(t);
        co_test_http_free(&h);
    }
    co_test_http m;
    co_test_http_do(&m, "GET", gwf_url(f, "/metrics"), NULL, NULL, 0);
    assert_int_equal(m.status, 200);
    /* the first two shadows are still running (4 s); the other three were skipped */
    assert_non_null(strstr(m.body, "cutover_shadow_skipped_total 3"));
    co_test_http_free(&m);
    assert_int_equal(gwf_gw_stop(f), 0);
    co_store *st = gwf_store(f);
    co_window_query served = {.workload = "chat", .role = "served"}, shadow = {.workload = "chat", .role = "shadow"};
    co_window_summary a, b;
    assert_int_equal(co_store_window_summary(st, &served, &a), 0);
    assert_int_equal(co_store_window_summary(st, &shadow, &b), 0);
    assert_int_equal(a.count, 5);
    assert_int_equal(b.count, 2);
    co_store_close(st);
    gwf_free(f);
}

static int gw_connect(gwf *f)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->gw.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* One request on fd: 1 when a 200 came back, 0 when the gateway closed the
 * connection without a byte. */
static int healthz(int fd)
{
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1))
        return 0;
    char buf[1024];
    ssize_t n;
    do
        n = recv(fd, buf, sizeof buf - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strncmp(buf, "HTTP/1.1 200", 12) == 0;
}

/* limits.max_connections: a connection beyond the bound is closed as it is
 * accepted; those already open keep being served; once one closes, a new
 * one is taken again. */
static void test_max_connections(void **state)
{
    (void)state;
    gwf *f = gwf_new();
    assert_non_null(f);
    assert_int_equal(gwf_sim_start(f, SCENARIO), 0);
    char cfg[2048];
    snprintf(cfg, sizeof cfg, "%s", CONFIG);
    char *lim = strstr(cfg, "limits: {max_shadow_in_flight: 2}");
    assert_non_null(lim);
    memcpy(lim, "limits: {max_connections: 2}      ", strlen("limits: {max_shadow_in_flight: 2}"));
    assert_int_equal(gwf_config(f, cfg), 0);
    assert_int_equal(gwf_gw_start(f, NULL, NULL), 0);

    int a = gw_connect(f), b = gw_connect(f);
    assert_int_equal(healthz(a), 1);
    assert_int_equal(healthz(b), 1);
    int c = gw_connect(f); /* the kernel accepts it; the gateway closes it */
    assert_int_equal(healthz(c), 0);
    close(c);
    assert_int_equal(healthz(a), 1); /* the others are still served */
    close(b);
    /* b's close reaches the gateway asynchronously: a new connection is
     * taken once it has (bounded wait) */
    int ok = 0;
    for (int i = 0; i < 200 && !ok; i++) {
        int d = gw_connect(f);
        ok = healthz(d);
        close(d);
        if (!ok)
            usleep(10000);
    }
    assert_true(ok);
    close(a);
    /* c, at least, was refused, and counted */
    co_test_http m;
    co_test_http_do(&m, "GET", gwf_url(f, "/metrics"), NULL, NULL, 0);
    assert_int_equal(m.status, 200);
    const char *n = strstr(m.body, "\ncutover_connections_refused_total ");
    assert_non_null(n);
    assert_true(atoi(n + strlen("\ncutover_connections_refused_total ")) >= 1);
    assert_non_null(strstr(m.body, "\ncutover_accept_paused_total 0\n"));
    co_test_http_free(&m);
    assert_int_equal(gwf_gw_stop(f), 0);
    gwf_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shadow_in_flight_is_bounded),
        cmocka_unit_test(test_max_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
