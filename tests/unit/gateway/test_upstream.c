/* Tests of the per-worker upstream client (co_upstream) against the real
 * `cutover sim` ($CUTOVER_BIN) on a loopback ephemeral port: JSON and SSE
 * (chunks arrive as the sim paces its tokens), 100 concurrent transfers on
 * one event_base over a few kept-alive connections, every error class
 * (connect, connect timeout, first-byte timeout, total timeout, reset,
 * truncated, too big, cancelled), 500/429 passed through with their bodies,
 * cancel from inside on_data and from a timer, pause/resume, starting
 * transfers from callbacks, freeing the client with transfers in flight (also
 * from inside a callback), a run-time sim patch, and a small throughput
 * measurement (printed). Every wait is bounded by a libevent timer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "co_test.h"
#include "cutover/buf.h"
#include "cutover/error.h"
#include "cutover/upstream.h"
#include "cutover/util.h"

static const char *SCENARIO =
    "seed: 7\n"
    "models:\n"
    "  fast: {template: \"Hello {{last_user}}\"}\n"
    "  paced: {template: \"one two three four five six seven eight nine ten eleven twelve\","
    " latency: {per_token: 40ms}}\n"
    "  slow: {latency: {ttft: 3s}}\n"
    "  knob: {template: \"knob says {{last_user}}\"}\n"
    "  hang: {faults: {timeout: 1}}\n"
    "  rst: {faults: {reset: 1}}\n"
    "  cut: {faults: {truncate: 1}, verbosity: 4}\n"
    "  f500: {faults: {error_500: 1}}\n"
    "  f429: {faults: {error_429: 1, retry_after: 2s}}\n"
    "  big: {verbosity: 20}\n";

typedef struct env {
    char *dir;
    co_test_proc proc;
    char base[64];
} env;

static env *E;

static int group_setup(void **state)
{
    (void)state;
    const char *bin = co_test_bin();
    if (!bin) {
        fprintf(stderr, "CUTOVER_BIN is not set; skipping\n");
        return 0;
    }
    env *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    e->dir = co_test_tmpdir();
    char *sc = co_test_write(e->dir, "scenario.yaml", SCENARIO);
    if (!sc)
        return -1;
    char *argv[] = {(char *)bin, "sim", "--listen", "127.0.0.1:0", "--scenario", sc, NULL};
    int rc = co_test_spawn(&e->proc, argv, NULL, 20000);
    free(sc);
    if (rc) {
        co_test_rmtree(e->dir);
        free(e->dir);
        free(e);
        return -1;
    }
    snprintf(e->base, sizeof e->base, "http://127.0.0.1:%d", e->proc.port);
    E = e;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (!E)
        return 0;
    int rc = co_test_stop(&E->proc);
    co_test_rmtree(E->dir);
    free(E->dir);
    free(E);
    E = NULL;
    return rc == 0 ? 0 : -1;
}

#define NEED_SIM()                                                                                 \
    do {                                                                                           \
        if (!E)                                                                                    \
            skip();                                                                                \
    } while (0)

/* ---- a loop, a client and recorded calls ------------------------------------ */

typedef struct ctx {
    struct event_base *base;
    co_upstream *up;
    int pending;        /* calls not done yet; the loop stops at 0 */
    int free_in_cb;     /* co_upstream_free from the first on_data */
} ctx;

typedef struct call {
    ctx *c;
    co_upstream_xfer *x;
    char url[256];
    char body[1024];
    int status_calls, data_calls, done_calls;
    int on_status_status;
    char ctype[128];
    char retry_after[32];
    co_buf data;          /* streamed bytes */
    int64_t t0, t_first_data, t_done;
    /* the result, copied */
    int status, err, reused, http_version;
    int64_t ttfb_us, total_us, curl_total_us, connect_us;
    uint64_t bytes;
    char *rbody;
    size_t rbody_len;
    char error[256];
    /* behaviour */
    int cancel_at;        /* co_upstream_cancel inside on_data at this chunk (1-based) */
    int abort_at;         /* return ABORT from on_data at this chunk */
    int pause_once;       /* return PAUSE on the first chunk, resume from a timer */
    int paused;
    int start_in_data;    /* start `chained` from inside on_data (libcurl callback) */
    int start_in_done;    /* start `chained` from inside on_done */
    struct call *chained;
    struct event *resume_ev;
} call;

static void call_init(call *k, ctx *c)
{
    memset(k, 0, sizeof *k);
    k->c = c;
    co_buf_init(&k->data, 4 << 20);
}

static void call_fini(call *k)
{
    co_buf_free(&k->data);
    free(k->rbody);
    if (k->resume_ev)
        event_free(k->resume_ev);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

/* Runs the loop until every call is done or ms elapse. */
static void run(ctx *c, int64_t ms)
{
    struct event *t = evtimer_new(c->base, on_timeout, c->base);
    assert_non_null(t);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(t, &tv);
    if (c->pending > 0)
        event_base_dispatch(c->base);
    event_free(t);
}

/* Every test runs twice: on the native HTTP/1.1 path (loopback http URLs
 * take it) and with curl_only, through libcurl. */
static int CURL_ONLY;

static void ctx_init(ctx *c, const co_upstream_opts *o)
{
    memset(c, 0, sizeof *c);
    c->base = event_base_new();
    assert_non_null(c->base);
    co_upstream_opts oo = {0};
    if (o)
        oo = *o;
    oo.curl_only = CURL_ONLY;
    assert_int_equal(co_upstream_new(&c->up, c->base, &oo), 0);
}

static void ctx_fini(ctx *c)
{
    co_upstream_free(c->up);
    event_base_free(c->base);
}

static int cb_status(co_upstream_xfer *x, void *ud, int status, const co_upstream_headers *h)
{
    call *k = ud;
    assert_ptr_equal(x, k->x);
    k->status_calls++;
    k->on_status_status = status;
    const char *v = co_upstream_header_get(h, "content-type");
    snprintf(k->ctype, sizeof k->ctype, "%s", v ? v : "");
    v = co_upstream_header_get(h, "Retry-After");
    snprintf(k->retry_after, sizeof k->retry_after, "%s", v ? v : "");
    return CO_UPSTREAM_CONTINUE;
}

static int start_call(call *k, const char *model, int stream, int with_on_data, const co_upstream_req *tmpl);

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    call *k = arg;
    co_upstream_resume(k->x);
}

static int cb_data(co_upstream_xfer *x, void *ud, const char *p, size_t n)
{
    call *k = ud;
    assert_ptr_equal(x, k->x);
    assert_int_equal(k->done_calls, 0);
    assert_true(n > 0);
    if (k->pause_once && !k->paused) {
        k->paused = 1;
        k->resume_ev = evtimer_new(k->c->base, on_resume, k);
        struct timeval tv = {0, 100 * 1000};
        evtimer_add(k->resume_ev, &tv);
        return CO_UPSTREAM_PAUSE;
    }
    k->data_calls++;
    if (k->data_calls == 1)
        k->t_first_data = co_mono_us();
    assert_int_equal(co_buf_append(&k->data, p, n), 0);
    if (k->c->free_in_cb) {
        k->c->free_in_cb = 0;
        co_upstream_free(k->c->up);
        co_upstream_free(k->c->up); /* twice: still deferred, still once */
        k->c->up = NULL;
    }
    if (k->start_in_data && k->data_calls == 1) {
        assert_int_equal(start_call(k->chained, "fast", 0, 0, NULL), 0);
        k->c->pending++;
    }
    if (k->cancel_at && k->data_calls == k->cancel_at) {
        co_upstream_cancel(x);
        co_upstream_cancel(x); /* repeated: a no-op */
    }
    if (k->abort_at && k->data_calls == k->abort_at)
        return CO_UPSTREAM_ABORT;
    return CO_UPSTREAM_CONTINUE;
}

static void cb_done(co_upstream_xfer *x, void *ud, const co_upstream_result *r)
{
    call *k = ud;
    assert_ptr_equal(x, k->x);
    k->done_calls++;
    k->t_done = co_mono_us();
    k->status = r->status;
    k->err = r->err;
    k->reused = r->reused;
    k->http_version = r->http_version;
    k->ttfb_us = r->ttfb_us;
    k->total_us = r->total_us;
    k->curl_total_us = r->curl_total_us;
    k->connect_us = r->connect_us;
    k->bytes = r->bytes;
    assert_non_null(r->error);
    assert_non_null(r->headers);
    snprintf(k->error, sizeof k->error, "%s", r->error);
    if (r->err == CO_UPSTREAM_OK)
        assert_string_equal(r->error, "");
    else
        assert_true(r->error[0] != '\0');
    if (r->body) {
        k->rbody = malloc(r->body_len + 1);
        assert_non_null(k->rbody);
        memcpy(k->rbody, r->body, r->body_len + 1);
        k->rbody_len = r->body_len;
        assert_int_equal(r->body_len, r->bytes);
    }
    co_upstream_cancel(x); /* inside on_done: a no-op */
    if (k->start_in_done) {
        assert_int_equal(start_call(k->chained, "fast", 0, 0, NULL), 0);
        k->c->pending++;
    }
    if (--k->c->pending == 0)
        event_base_loopbreak(k->c->base);
}

static const char *const OA_H[] = {"Authorization: Bearer sk-test", "Content-Type: application/json", NULL};

/* Starts a chat completion for model; tmpl (may be NULL) gives timeouts and
 * limits. with_on_data 0: buffered mode. */
static int start_call(call *k, const char *model, int stream, int with_on_data, const co_upstream_req *tmpl)
{
    co_upstream_req req;
    memset(&req, 0, sizeof req);
    if (tmpl)
        req = *tmpl;
    snprintf(k->url, sizeof k->url, "%s/v1/chat/completions", E->base);
    snprintf(k->body, sizeof k->body,
             "{\"model\":\"%s\",\"stream\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}", model,
             stream ? "true" : "false");
    req.url = k->url;
    req.headers = OA_H;
    req.body = k->body;
    req.body_len = strlen(k->body);
    co_upstream_cb cb = {cb_status, with_on_data ? cb_data : NULL, cb_done};
    k->t0 = co_mono_us();
    return co_upstream_start(k->c->up, &req, &cb, k, &k->x);
}

static void one(ctx *c, call *k, const char *model, int stream, int with_on_data, const co_upstream_req *tmpl,
                int64_t ms)
{
    assert_int_equal(start_call(k, model, stream, with_on_data, tmpl), 0);
    c->pending++;
    run(c, ms);
    assert_int_equal(k->done_calls, 1);
}

/* ---- tests -------------------------------------------------------------------- */

static void test_json_ok(void **state)
{
    (void)state;
    NEED_SIM();
    ctx c;
    ctx_init(&c, NULL);
    call k;
    call_init(&k, &c);
    one(&c, &k, "fast", 0, 0, NULL, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_OK);
    assert_int_equal(k.status, 200);
    assert_int_equal(k.status_calls, 1);
    assert_int_equal(k.on_status_status, 200);
    assert_string_equal(k.ctype, "application/json");
    assert_int_equal(k.http_version, 1);
    assert_non_null(k.rbody);
    json_t *j = json_loadb(k.rbody, k.rbody_len, 0, NULL);
    assert_non_null(j);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "Hello hi there");
    json_decref(j);
    assert_true(k.ttfb_us > 0 && k.ttfb_us <= k.total_us);
    assert_true(k.curl_total_us > 0 && k.curl_total_us <= k.total_us);
    assert_true(k.connect_us > 0);
    assert_int_equal(k.reused, 0);

    /* a second request reuses the kept-alive connection */
    call k2;
    call_init(&k2, &c);
    one(&c, &k2, "fast", 0, 0, NULL, 10000);
    assert_int_equal(k2.err, CO_UPSTREAM_OK);
    assert_int_equal(k2.reused, 1);
    co_upstream_counters st;
    co_upstream_stats(c.up, &st);
    assert_int_equal(st.started, 2);
    assert_int_equal(st.completed, 2);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.reused, 1);
    assert_int_equal(st.by_err[CO_UPSTREAM_OK], 2);
    assert_int_equal(st.bytes_in, k.bytes + k2.bytes);
    call_fini(&k);
    call_fini(&k2);
    ctx_fini(&c);
}

static void test_sse_stream(void **state)
{
    (void)state;
    NEED_SIM();
    ctx c;
    ctx_init(&c, NULL);
    call k;
    call_init(&k, &c);
    one(&c, &k, "paced", 1, 1, NULL, 20000);
    assert_int_equal(k.err, CO_UPSTREAM_OK);
    assert_int_equal(k.status, 200);
    assert_non_null(strstr(k.ctype, "text/event-stream"));
    assert_null(k.rbody); /* streaming mode: nothing buffered */
    assert_int_equal(k.bytes, k.data.len);
    /* tokens paced 40 ms apart arrive as separate chunks, the first long before the end */
    assert_true(k.data_calls >= 5);
    assert_true(k.t_done - k.t_first_data >= 200 * 1000);
    co_test_sse s;
    assert_int_equal(co_test_sse_parse(k.data.p, k.data.len, &s), 0);
    assert_true(s.complete);
    assert_string_equal(s.v[s.n - 1].data, "[DONE]");
    co_test_sse_free(&s);
    call_fini(&k);
    ctx_fini(&c);
}

static void test_concurrent_keepalive(void **state)
{
    (void)state;
    NEED_SIM();
    enum { N = 100 };
    co_upstream_opts o = {.max_host_connections = 8};
    ctx c;
    ctx_init(&c, &o);
    call *k = calloc(N, sizeof *k);
    assert_non_null(k);
    for (int i = 0; i < N; i++) {
        call_init(&k[i], &c);
        assert_int_equal(start_call(&k[i], i % 10 ? "fast" : "paced", i % 3 == 0, i % 3 == 0, NULL), 0);
        c.pending++;
    }
    co_upstream_counters st;
    co_upstream_stats(c.up, &st);
    assert_int_equal(st.in_flight, N);
    run(&c, 30000);
    assert_int_equal(c.pending, 0);
    int reused = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(k[i].done_calls, 1);
        assert_int_equal(k[i].err, CO_UPSTREAM_OK);
        assert_int_equal(k[i].status, 200);
        reused += k[i].reused;
        call_fini(&k[i]);
    }
    co_upstream_stats(c.up, &st);
    assert_int_equal(st.completed, N);
    assert_int_equal(st.in_flight, 0);
    assert_true(st.connects <= 8);
    assert_int_equal(st.reused, (uint64_t)reused);
    assert_true(reused >= N - 8);
    free(k);
    ctx_fini(&c);
}

static void test_connect_refused(void **state)
{
    (void)state;
    /* a port that was just free: nothing listens there */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
    close(s);
    ctx c;
    ctx_init(&c, NULL);
    call k;
    call_init(&k, &c);
    co_upstream_req req = {.url = k.url};
    snprintf(k.url, sizeof k.url, "http://127.0.0.1:%d/v1/models", ntohs(a.sin_port));
    req.method = CO_UPSTREAM_GET;
    co_upstream_cb cb = {cb_status, NULL, cb_done};
    assert_int_equal(co_upstream_start(c.up, &req, &cb, &k, &k.x), 0);
    c.pending++;
    run(&c, 10000);
    assert_int_equal(k.done_calls, 1);
    assert_int_equal(k.err, CO_UPSTREAM_ECONNECT);
    assert_string_equal(co_upstream_err_name(k.err), "connect");
    assert_int_equal(k.status, 0);
    assert_int_equal(k.status_calls, 0);
    assert_int_equal(k.ttfb_us, -1);
    co_upstream_counters st;
    co_upstream_stats(c.up, &st);
    assert_int_equal(st.by_err[CO_UPSTREAM_ECONNECT], 1);
    call_fini(&k);
    ctx_fini(&c);
}

static void test_connect_timeout(void **state)
{
    (void)state;
    /* a listener that never accepts, its backlog full: further SYNs are dropped */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
    assert_int_equal(listen(l, 0), 0);
    int fill[8];
    for (int i = 0; i < 8; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(fill[i] >= 0);
        (void)connect(fill[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(50 * 1000);
    ctx c;
    ctx_init(&c, NULL);
    call k;
    call_init(&k, &c);
    snprintf(k.url, sizeof k.url, "http://127.0.0.1:%d/v1/models", ntohs(a.sin_port));
    co_upstream_req req = {.url = k.url, .method = CO_UPSTREAM_GET, .connect_timeout_ms = 300,
                           .first_byte_timeout_ms = 5000, .timeout_ms = 5000};
    co_upstream_cb cb = {cb_status, NULL, cb_done};
    assert_int_equal(co_upstream_start(c.up, &req, &cb, &k, &k.x), 0);
    c.pending++;
    run(&c, 10000);
    assert_int_equal(k.done_calls, 1);
    if (k.err != CO_UPSTREAM_ETIMEOUT_CONNECT)
        fprintf(stderr, "connect timeout: got %s (%s)\n", co_upstream_err_name(k.err), k.error);
    assert_int_equal(k.err, CO_UPSTREAM_ETIMEOUT_CONNECT);
    assert_true(k.total_us >= 250 * 1000 && k.total_us < 3000 * 1000);
    call_fini(&k);
    ctx_fini(&c);
    for (int i = 0; i < 8; i++)
        close(fill[i]);
    close(l);
}

static void test_first_byte_timeout(void **state)
{
    (void)state;
    NEED_SIM();
    ctx c;
    ctx_init(&c, NULL);
    call k;
    call_init(&k, &c);
    co_upstream_req t = {.first_byte_timeout_ms = 200};
    one(&c, &k, "slow", 0, 0, &t, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_ETIMEOUT_FIRST_BYTE);
    assert_string_equal(co_upstream_err_name(k.err), "timeout_first_byte");
    assert_int_equal(k.status, 0);
    assert_int_equal(k.status_calls, 0);
    assert_true(k.total_us >= 190 * 1000 && k.total_us < 1500 * 1000);
    call_fini(&k);
    ctx_fini(&c);
}

/* POST /_sim/models/knob through the client itself (buffered mode). */
static void sim_patch(ctx *c, const char *json)
{
    call k;
    call_init(&k, c);
    snprintf(k.url, sizeof k.url, "%s/_sim/models/knob", E->base);
    co_upstream_req req = {.url = k.url, .body = json, .body_len = strlen(json)};
    co_upstream_cb cb = {NULL, NULL, cb_done};
    assert_int_equal(co_upstream_start(c->up, &req, &cb, &k, &k.x), 0);
    c->pending++;
    run(c, 10000);
    assert_int_equal(k.done_calls, 1);
    assert_int_equal(k.err, CO_UPSTREAM_OK);
    if (k.status != 200)
        fprintf(stderr, "patch: %d %s\n", k.status, k.rbody ? k.rbody : "");
    assert_int_equal(k.status, 200);
    call_fini(&k);
}

static void test_sim_patch_first_byte(void **state)
{
    (void)state;
    NEED_SIM();
    ctx c;
    ctx_init(&c, NULL);
    sim_patch(&c, "{\"latency\":{\"ttft\":\"1500ms\"}}");
    call k;
    call_init(&k, &c);
    co_upstream_req t = {.first_byte_timeout_ms = 150};
    one(&c, &k, "knob", 0, 1, &t, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_ETIMEOUT_FIRST_BYTE);
    assert_int_equal(k.data_calls, 0);
    call_fini(&k);
    sim_patch(&c, "{\"restore\":true}");
    call_init(&k, &c);
    one(&c, &k, "knob", 0, 1, &t, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_OK);
    assert_int_equal(k.status, 200);
    assert_non_null(strstr(k.data.p, "knob says hi there"));
    call_fini(&k);
    ctx_fini(&c);
}

static void test_total_timeout(void **state)
{
    (void)state;
    NEED_SIM();
    ctx c;
    ctx_init(&c, NULL);
    /* never answered */
    call k;
    call_init(&k, &c);
    co_upstream_req t = {.timeout_ms = 300};
    one(&c, &k, "hang", 0, 0, &t, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_ETIMEOUT_TOTAL);
    assert_string_equal(co_upstream_err_name(k.err), "timeout_total");
    assert_true(k.total_us >= 250 * 1000 && k.total_us < 2000 * 1000);
    call_fini(&k);
    /* answering, but slower than the budget: some chunks, then the timeout */
    call_init(&k, &c);
    t.timeout_ms = 250;
    one(&c, &k, "paced", 1, 1, &t, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_ETIMEOUT_TOTAL);
    assert_int_equal(k.status, 200);
    assert_int_equal(k.status_calls, 1);
    assert_true(k.data_calls >= 1);
    assert_true(k.bytes > 0);
    call_fini(&k);
    ctx_fini(&c);
}

static void test_reset(void **state)
{
    (void)state;
    NEED_SIM();
    ctx c;
    ctx_init(&c, NULL);
    call k;
    call_init(&k, &c);
    one(&c, &k, "rst", 0, 0, NULL, 10000);
    if (k.err != CO_UPSTREAM_ERESET)
        fprintf(stderr, "reset: got %s (%s)\n", co_upstream_err_name(k.err), k.error);
    assert_int_equal(k.err, CO_UPSTREAM_ERESET);
    assert_int_equal(k.status, 0);
    assert_int_equal(k.status_calls, 0);
    call_fini(&k);
    ctx_fini(&c);
}

static void test_truncated(void **state)
{
    (void)state;
    NEED_SIM();
    ctx c;
    ctx_init(&c, NULL);
    /* a chunked SSE stream stopping half-way */
    call k;
    call_init(&k, &c);
    one(&c, &k, "cut", 1, 1, NULL, 10000);
    if (k.err != CO_UPSTREAM_ETRUNCATED)
        fprintf(stderr, "truncated stream: got %s (%s)\n", co_upstream_err_name(k.err), k.error);
    assert_int_equal(k.err, CO_UPSTREAM_ETRUNCATED);
    assert_int_equal(k.status, 200);
    assert_true(k.bytes > 0);
    call_fini(&k);
    /* a JSON body shorter than its Content-Length */
    call_init(&k, &c);
    one(&c, &k, "cut", 0, 0, NULL, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_ETRUNCATED);
    assert_string_equal(co_upstream_err_name(k.err), "truncated");
    assert_int_equal(k.status, 200);
    assert_true(k.bytes > 0);
    call_fini(&k);
    ctx_fini(&c);
}

static void test_http_errors_pass_through(void **state)
{
    (void)state;
    NEED_SIM();
    ctx c;
    ctx_init(&c, NULL);
    call k;
    call_init(&k, &c);
    one(&c, &k, "f500", 0, 0, NULL, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_OK);
    assert_int_equal(k.status, 500);
    assert_int_equal(k.on_status_status, 500);
    json_t *j = json_loadb(k.rbody, k.rbody_len, 0, NULL);
    assert_non_null(j);
    assert_non_null(json_string_value(json_object_get(json_object_get(j, "error"), "message")));
    json_decref(j);
    call_fini(&k);

    call_init(&k, &c);
    one(&c, &k, "f429", 1, 1, NULL, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_OK);
    assert_int_equal(k.status, 429);
    assert_string_equal(k.retry_after, "2");
    j = json_loadb(k.data.p, k.data.len, 0, NULL);
    assert_non_null(j);
    assert_non_null(json_object_get(j, "error"));
    json_decref(j);
    co_upstream_counters st;
    co_upstream_stats(c.up, &st);
    assert_int_equal(st.by_err[CO_UPSTREAM_OK], 2);
    call_fini(&k);
    ctx_fini(&c);
}

static void test_too_big(void **state)
{
    (void)state;
    NEED_SIM();
    ctx c;
    ctx_init(&c, NULL);
    co_upstream_req t = {.max_response = 256};
    /* JSON with a Content-Length over the limit */
    call k;
    call_init(&k, &c);
    one(&c, &k, "big", 0, 0, &t, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_ETOO_BIG);
    assert_string_equal(co_upstream_err_name(k.err), "too_big");
    assert_true(k.bytes <= 256);
    call_fini(&k);
    /* a chunked stream growing past it */
    call_init(&k, &c);
    one(&c, &k, "big", 1, 1, &t, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_ETOO_BIG);
    assert_int_equal(k.status, 200);
    assert_true(k.bytes <= 256 && k.data.len == k.bytes);
    call_fini(&k);
    /* the same body fits the default limit */
    call_init(&k, &c);
    one(&c, &k, "big", 0, 0, NULL, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_OK);
    assert_true(k.bytes > 256);
    call_fini(&k);
    /* and a header block over max_header_bytes */
    ctx c2;
    co_upstream_opts o = {.max_header_bytes = 32};
    ctx_init(&c2, &o);
    call_init(&k, &c2);
    one(&c2, &k, "fast", 0, 0, NULL, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_ETOO_BIG);
    assert_int_equal(k.status_calls, 0);
    call_fini(&k);
    ctx_fini(&c2);
    ctx_fini(&c);
}

static void test_cancel_in_on_data(void **state)
{
    (void)state;
    NEED_SIM();
    ctx c;
    ctx_init(&c, NULL);
    call k;
    call_init(&k, &c);
    k.cancel_at = 2;
    one(&c, &k, "paced", 1, 1, NULL, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_ECANCELLED);
    assert_string_equal(co_upstream_err_name(k.err), "cancelled");
    assert_int_equal(k.data_calls, 2); /* nothing after the cancel */
    assert_int_equal(k.status, 200);
    call_fini(&k);
    /* ABORT returned from on_data */
    call_init(&k, &c);
    k.abort_at = 1;
    one(&c, &k, "paced", 1, 1, NULL, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_ECANCELLED);
    assert_int_equal(k.data_calls, 1);
    call_fini(&k);
    /* the loop still runs more transfers afterwards */
    call_init(&k, &c);
    one(&c, &k, "fast", 0, 0, NULL, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_OK);
    call_fini(&k);
    co_upstream_counters st;
    co_upstream_stats(c.up, &st);
    assert_int_equal(st.by_err[CO_UPSTREAM_ECANCELLED], 2);
    assert_int_equal(st.in_flight, 0);
    ctx_fini(&c);
}

static void on_cancel_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    call *k = arg;
    co_upstream_cancel(k->x);
    co_upstream_cancel(k->x);
    assert_int_equal(k->done_calls, 0); /* never from inside co_upstream_cancel */
}

static void test_cancel_from_timer(void **state)
{
    (void)state;
    NEED_SIM();
    ctx c;
    ctx_init(&c, NULL);
    call k, w;
    call_init(&k, &c);
    call_init(&w, &c);
    assert_int_equal(start_call(&k, "slow", 0, 1, NULL), 0); /* waiting for the first byte */
    assert_int_equal(start_call(&w, "paced", 1, 1, NULL), 0); /* mid-stream */
    c.pending += 2;
    struct event *t1 = evtimer_new(c.base, on_cancel_timer, &k);
    struct event *t2 = evtimer_new(c.base, on_cancel_timer, &w);
    struct timeval tv = {0, 120 * 1000};
    evtimer_add(t1, &tv);
    evtimer_add(t2, &tv);
    run(&c, 10000);
    assert_int_equal(k.done_calls, 1);
    assert_int_equal(k.err, CO_UPSTREAM_ECANCELLED);
    assert_int_equal(w.done_calls, 1);
    assert_int_equal(w.err, CO_UPSTREAM_ECANCELLED);
    assert_true(w.data_calls >= 1);
    assert_true(k.total_us < 1000 * 1000);
    event_free(t1);
    event_free(t2);
    call_fini(&k);
    call_fini(&w);
    ctx_fini(&c);
}

static void test_pause_resume(void **state)
{
    (void)state;
    NEED_SIM();
    ctx c;
    ctx_init(&c, NULL);
    call k, ref;
    call_init(&k, &c);
    call_init(&ref, &c);
    k.pause_once = 1;
    one(&c, &k, "fast", 1, 1, NULL, 10000);
    one(&c, &ref, "fast", 1, 1, NULL, 10000);
    assert_int_equal(k.err, CO_UPSTREAM_OK);
    assert_int_equal(k.paused, 1);
    assert_true(k.total_us >= 90 * 1000);
    /* the held chunk came again: the whole stream arrived */
    assert_int_equal(k.data.len, ref.data.len);
    assert_int_equal(k.bytes, k.data.len);
    co_test_sse s;
    assert_int_equal(co_test_sse_parse(k.data.p, k.data.len, &s), 0);
    assert_true(s.complete);
    assert_string_equal(s.v[s.n - 1].data, "[DONE]");
    co_test_sse_free(&s);
    call_fini(&k);
    call_fini(&ref);
    ctx_fini(&c);
}

static void test_start_from_callbacks(void **state)
{
    (void)state;
    NEED_SIM();
    ctx c;
    ctx_init(&c, NULL);
    call a, b, a2, b2;
    call_init(&a, &c);
    call_init(&b, &c);
    call_init(&a2, &c);
    call_init(&b2, &c);
    a.start_in_data = 1; /* inside a libcurl write callback */
    a.chained = &a2;
    b.start_in_done = 1;
    b.chained = &b2;
    assert_int_equal(start_call(&a, "paced", 1, 1, NULL), 0);
    assert_int_equal(start_call(&b, "fast", 0, 0, NULL), 0);
    c.pending += 2;
    run(&c, 10000);
    assert_int_equal(c.pending, 0);
    call *all[] = {&a, &b, &a2, &b2};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(all[i]->done_calls, 1);
        assert_int_equal(all[i]->err, CO_UPSTREAM_OK);
        assert_int_equal(all[i]->status, 200);
        call_fini(all[i]);
    }
    ctx_fini(&c);
}

static void test_free_in_flight(void **state)
{
    (void)state;
    NEED_SIM();
    enum { N = 6 };
    ctx c;
    ctx_init(&c, NULL);
    call k[N];
    for (int i = 0; i < N; i++) {
        call_init(&k[i], &c);
        assert_int_equal(start_call(&k[i], i % 2 ? "slow" : "paced", i % 2 == 0, 1, NULL), 0);
        c.pending++;
    }
    run(&c, 150); /* some connected and streaming, some waiting */
    assert_int_equal(c.pending, N);
    co_upstream_free(c.up);
    c.up = NULL;
    for (int i = 0; i < N; i++) {
        assert_int_equal(k[i].done_calls, 1);
        assert_int_equal(k[i].err, CO_UPSTREAM_ECANCELLED);
        call_fini(&k[i]);
    }
    assert_int_equal(c.pending, 0);
    event_base_free(c.base);
    /* transfers started and never run by the loop */
    ctx_init(&c, NULL);
    for (int i = 0; i < N; i++) {
        call_init(&k[i], &c);
        assert_int_equal(start_call(&k[i], "fast", 0, 0, NULL), 0);
        c.pending++;
    }
    co_upstream_free(c.up);
    c.up = NULL;
    for (int i = 0; i < N; i++) {
        assert_int_equal(k[i].done_calls, 1);
        assert_int_equal(k[i].err, CO_UPSTREAM_ECANCELLED);
        call_fini(&k[i]);
    }
    event_base_free(c.base);
}

static void test_free_inside_callback(void **state)
{
    (void)state;
    NEED_SIM();
    enum { N = 4 };
    ctx c;
    ctx_init(&c, NULL);
    call k[N];
    for (int i = 0; i < N; i++) {
        call_init(&k[i], &c);
        assert_int_equal(start_call(&k[i], i == 0 ? "paced" : "slow", i == 0, 1, NULL), 0);
        c.pending++;
    }
    c.free_in_cb = 1; /* the first chunk of k[0] frees the client */
    run(&c, 10000);
    assert_int_equal(c.pending, 0);
    assert_null(c.up);
    for (int i = 0; i < N; i++) {
        assert_int_equal(k[i].done_calls, 1);
        assert_int_equal(k[i].err, CO_UPSTREAM_ECANCELLED);
        call_fini(&k[i]);
    }
    assert_int_equal(k[0].data_calls, 1);
    event_base_free(c.base);
}


/* ---- wire details, against a scripted server ---------------------------------
 * A thread that accepts connections and answers each request it reads with
 * the next step of a script: bytes to send, then keep the connection or
 * close it. A step with no bytes closes the connection without an answer
 * (an upstream that dropped a kept-alive connection just as it was reused). */

typedef struct step {
    const char *reply; /* NULL: close without answering */
    int close_after;
    int dribble;       /* 1: one byte per write, 1 ms apart: every split a parser can meet;
                          n > 1: writes of up to n bytes, 200 us apart */
    int early;         /* answer once the headers are in, then read the body */
} step;

typedef struct scripted {
    int lfd, port;
    pthread_t th;
    const step *steps;
    int nsteps;
    atomic_int next, conns, requests, stop;
} scripted;

/* reads one request (headers and a Content-Length body); 0 at EOF. With
 * early, returns after the headers and leaves *body_left to read. */
static int read_request(int fd, int early, size_t *body_left)
{
    char buf[8192];
    size_t n = 0;
    *body_left = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, sizeof buf - 1 - n);
        if (k <= 0)
            return 0;
        n += (size_t)k;
        buf[n] = '\0';
        char *eoh = strstr(buf, "\r\n\r\n");
        if (!eoh)
            continue;
        size_t want = (size_t)(eoh + 4 - buf);
        char *cl = strcasestr(buf, "content-length:");
        if (cl && cl < eoh)
            want += (size_t)strtoul(cl + 15, NULL, 10);
        if (early) {
            *body_left = want > n ? want - n : 0;
            return 1;
        }
        while (n < want) {
            k = read(fd, buf + n, sizeof buf - 1 - n < want - n ? sizeof buf - 1 - n : want - n);
            if (k <= 0)
                return 0;
            n += (size_t)k;
        }
        return 1;
    }
}

static void *scripted_main(void *arg)
{
    scripted *sv = arg;
    while (!atomic_load(&sv->stop)) {
        struct pollfd pf = {sv->lfd, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int fd = accept(sv->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&sv->conns, 1);
        for (;;) {
            int i = atomic_load(&sv->next);
            int early = i < sv->nsteps && sv->steps[i].early;
            size_t body_left = 0;
            if (!read_request(fd, early, &body_left))
                break;
            atomic_fetch_add(&sv->requests, 1);
            i = atomic_fetch_add(&sv->next, 1);
            if (i >= sv->nsteps || !sv->steps[i].reply)
                break;
            const char *r = sv->steps[i].reply;
            size_t len = strlen(r), off = 0;
            while (off < len) {
                int d = sv->steps[i].dribble;
                size_t piece = d ? (size_t)d : len - off;
                ssize_t k = write(fd, r + off, piece < len - off ? piece : len - off);
                if (k <= 0)
                    break;
                off += (size_t)k;
                if (d)
                    usleep(d == 1 ? 1000 : 200);
            }
            char sink[65536];
            if (body_left)
                usleep(300 * 1000); /* the client has the answer before the body is read */
            while (body_left) { /* the rest of an early-answered request */
                ssize_t k = read(fd, sink, body_left < sizeof sink ? body_left : sizeof sink);
                if (k <= 0)
                    break;
                body_left -= (size_t)k;
            }
            if (sv->steps[i].close_after)
                break;
        }
        close(fd);
    }
    return NULL;
}

static void scripted_start(scripted *sv, const step *steps, int nsteps)
{
    memset(sv, 0, sizeof *sv);
    sv->steps = steps;
    sv->nsteps = nsteps;
    sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(sv->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(sv->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(sv->lfd, 16), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(sv->lfd, (struct sockaddr *)&a, &al), 0);
    sv->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&sv->th, NULL, scripted_main, sv), 0);
}

static void scripted_stop(scripted *sv)
{
    atomic_store(&sv->stop, 1);
    pthread_join(sv->th, NULL);
    close(sv->lfd);
}

static void start_to(call *k, const scripted *sv, int with_on_data)
{
    co_upstream_req req;
    memset(&req, 0, sizeof req);
    snprintf(k->url, sizeof k->url, "http://127.0.0.1:%d/v1/chat/completions", sv->port);
    snprintf(k->body, sizeof k->body, "{\"model\":\"m\"}");
    req.url = k->url;
    req.headers = OA_H;
    req.body = k->body;
    req.body_len = strlen(k->body);
    req.timeout_ms = 5000;
    co_upstream_cb cb = {cb_status, with_on_data ? cb_data : NULL, cb_done};
    k->t0 = co_mono_us();
    assert_int_equal(co_upstream_start(k->c->up, &req, &cb, k, &k->x), 0);
    k->c->pending++;
}

#define OK_KEEP "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

/* The upstream drops a kept-alive connection as the next request arrives on
 * it: the request is sent again on a new connection and succeeds. */
static void test_wire_stale_keepalive(void **state)
{
    (void)state;
    static const step steps[] = {{OK_KEEP, 0, 0, 0}, {NULL, 0, 0, 0}, {OK_KEEP, 0, 0, 0}};
    scripted sv;
    scripted_start(&sv, steps, 3);
    ctx c;
    ctx_init(&c, NULL);
    call k1, k2;
    call_init(&k1, &c);
    call_init(&k2, &c);
    start_to(&k1, &sv, 0);
    run(&c, 5000);
    assert_int_equal(k1.err, CO_UPSTREAM_OK);
    start_to(&k2, &sv, 0);
    run(&c, 5000);
    assert_int_equal(k2.done_calls, 1);
    assert_int_equal(k2.err, CO_UPSTREAM_OK);
    assert_int_equal(k2.status, 200);
    assert_string_equal(k2.rbody, "{}");
    assert_int_equal(atomic_load(&sv.conns), 2);
    assert_int_equal(atomic_load(&sv.requests), 3);
    call_fini(&k1);
    call_fini(&k2);
    ctx_fini(&c);
    scripted_stop(&sv);
}

/* Chunked with extensions and trailers, a 1xx before the answer, a body
 * that runs to the close, Connection: close, a bare 204. */
static void test_wire_framing(void **state)
{
    (void)state;
    static const step steps[] = {
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n"
         "X-Trailer: t\r\n\r\n", 0, 0, 0},
        {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc", 0, 0, 0},
        {"HTTP/1.1 204 No Content\r\n\r\n", 0, 0, 0},
        {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\nlast", 1, 0, 0},
        {"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close", 1, 0, 0},
    };
    scripted sv;
    scripted_start(&sv, steps, 5);
    ctx c;
    ctx_init(&c, NULL);
    static const char *const want_body[] = {"hello world", "abc", "", "last", "until the close"};
    static const int want_status[] = {200, 201, 204, 200, 200};
    for (int i = 0; i < 5; i++) {
        call k;
        call_init(&k, &c);
        start_to(&k, &sv, i == 0); /* the chunked one streamed */
        run(&c, 5000);
        assert_int_equal(k.done_calls, 1);
        assert_int_equal(k.err, CO_UPSTREAM_OK);
        assert_int_equal(k.status, want_status[i]);
        if (i == 0) {
            assert_int_equal(k.data.len, strlen(want_body[0]));
            assert_memory_equal(k.data.p, want_body[0], k.data.len);
        } else {
            assert_string_equal(k.rbody, want_body[i]);
        }
        call_fini(&k);
    }
    /* one connection for the first four exchanges' keep-alive run, a new one
     * after "Connection: close" */
    assert_int_equal(atomic_load(&sv.conns), 2);
    ctx_fini(&c);
    scripted_stop(&sv);
}

/* The same answers arriving a byte at a time: status line, headers, chunk
 * sizes and the CRLFs between chunks split at every position. */
static void test_wire_dribble(void **state)
{
    (void)state;
    static const step steps[] = {
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n"
         "X-Trailer: t\r\n\r\n", 0, 1, 0},
        {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc", 0, 1, 0},
    };
    scripted sv;
    scripted_start(&sv, steps, 2);
    ctx c;
    ctx_init(&c, NULL);
    for (int i = 0; i < 2; i++) {
        call k;
        call_init(&k, &c);
        start_to(&k, &sv, i == 0);
        run(&c, 10000);
        assert_int_equal(k.done_calls, 1);
        assert_int_equal(k.err, CO_UPSTREAM_OK);
        if (i == 0) {
            assert_int_equal(k.status, 200);
            assert_int_equal(k.data.len, 11);
            assert_memory_equal(k.data.p, "hello world", 11);
            assert_true(k.data_calls > 1); /* delivered as it came */
        } else {
            assert_int_equal(k.status, 201);
            assert_string_equal(k.rbody, "abc");
        }
        call_fini(&k);
    }
    assert_int_equal(atomic_load(&sv.conns), 1);
    ctx_fini(&c);
    scripted_stop(&sv);
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Answers of every framing with random bodies, random chunk sizes and
 * extensions, header names in any case, arriving in random pieces, one after
 * the other on one kept-alive connection: each body arrives whole and exact. */
static void test_wire_random(void **state)
{
    (void)state;
    enum { N = 40 };
    step steps[N];
    char *want[N];
    size_t want_len[N];
    uint64_t x = 0x2545f4914f6cdd1dULL;
    static const char alphabet[] = "abcXYZ019 \r\n{}\":,\\-";
    for (int i = 0; i < N; i++) {
        size_t n = xorshift(&x) % 3000;
        if (i % 7 == 0)
            n = 0;
        want[i] = malloc(n + 1);
        assert_non_null(want[i]);
        for (size_t j = 0; j < n; j++)
            want[i][j] = alphabet[xorshift(&x) % (sizeof alphabet - 1)];
        want[i][n] = '\0';
        want_len[i] = n;
        co_buf b;
        co_buf_init(&b, CO_BUF_UNLIMITED);
        int chunked = xorshift(&x) & 1;
        assert_int_equal(co_buf_printf(&b, "HTTP/1.1 200 OK\r\n%s: application/json\r\n",
                                       xorshift(&x) & 1 ? "content-type" : "Content-Type"),
                         0);
        if (!chunked) {
            assert_int_equal(co_buf_printf(&b, "%s: %zu\r\n\r\n", xorshift(&x) & 1 ? "CONTENT-LENGTH" : "Content-Length", n),
                             0);
            assert_int_equal(co_buf_append(&b, want[i], n), 0);
        } else {
            assert_int_equal(co_buf_printf(&b, "%s: chunked\r\n\r\n", xorshift(&x) & 1 ? "transfer-encoding" : "Transfer-Encoding"),
                             0);
            for (size_t at = 0; at < n;) {
                size_t c = 1 + xorshift(&x) % 700;
                if (c > n - at)
                    c = n - at;
                int ext = (int)(xorshift(&x) % 9);
                if (xorshift(&x) & 1)
                    assert_int_equal(co_buf_printf(&b, "%zx\r\n", c), 0);
                else
                    assert_int_equal(co_buf_printf(&b, "%zX;x=%d\r\n", c, ext), 0);
                assert_int_equal(co_buf_append(&b, want[i] + at, c), 0);
                assert_int_equal(co_buf_puts(&b, "\r\n"), 0);
                at += c;
            }
            assert_int_equal(co_buf_puts(&b, xorshift(&x) & 1 ? "0\r\n\r\n" : "0\r\nX-T: 1\r\n\r\n"), 0);
        }
        assert_int_equal(co_buf_append(&b, "", 1), 0);
        steps[i] = (step){b.p, 0, 1 + (int)(xorshift(&x) % 96), 0}; /* b.p is freed below */
    }
    scripted sv;
    scripted_start(&sv, steps, N);
    ctx c;
    ctx_init(&c, NULL);
    for (int i = 0; i < N; i++) {
        call k;
        call_init(&k, &c);
        int streamed = i & 1;
        start_to(&k, &sv, streamed);
        run(&c, 10000);
        assert_int_equal(k.done_calls, 1);
        assert_int_equal(k.err, CO_UPSTREAM_OK);
        assert_int_equal(k.status, 200);
        if (streamed) {
            assert_int_equal(k.data.len, want_len[i]);
            if (want_len[i])
                assert_memory_equal(k.data.p, want[i], want_len[i]);
        } else {
            assert_int_equal(k.rbody_len, want_len[i]);
            assert_memory_equal(k.rbody, want[i], want_len[i]);
        }
        call_fini(&k);
    }
    assert_int_equal(atomic_load(&sv.conns), 1);
    ctx_fini(&c);
    scripted_stop(&sv);
    for (int i = 0; i < N; i++) {
        free(want[i]);
        free((char *)steps[i].reply);
    }
}

/* An answer that arrives before the request body has gone out (a server
 * refusing a large upload at once): it is the transfer's answer, and the
 * connection, with half a request on it, is not reused. */
static void test_wire_early_answer(void **state)
{
    (void)state;
    static const step steps[] = {
        {"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 0,
         0, 1},
        {OK_KEEP, 0, 0, 0},
    };
    scripted sv;
    scripted_start(&sv, steps, 2);
    ctx c;
    ctx_init(&c, NULL);
    size_t big = (size_t)32 << 20; /* more than loopback's socket buffers hold */
    char *body = malloc(big);
    assert_non_null(body);
    memset(body, 'a', big);
    call k, k2;
    call_init(&k, &c);
    call_init(&k2, &c);
    co_upstream_req req;
    memset(&req, 0, sizeof req);
    snprintf(k.url, sizeof k.url, "http://127.0.0.1:%d/v1/chat/completions", sv.port);
    req.url = k.url;
    req.headers = OA_H;
    req.body = body;
    req.body_len = big;
    req.borrow_body = 1;
    req.timeout_ms = 10000;
    co_upstream_cb cb = {cb_status, NULL, cb_done};
    assert_int_equal(co_upstream_start(c.up, &req, &cb, &k, &k.x), 0);
    c.pending++;
    run(&c, 10000);
    assert_int_equal(k.done_calls, 1);
    assert_int_equal(k.status, 413);
    start_to(&k2, &sv, 0);
    run(&c, 5000);
    assert_int_equal(k2.done_calls, 1);
    assert_int_equal(k2.err, CO_UPSTREAM_OK);
    assert_int_equal(k2.status, 200);
    if (!CURL_ONLY)
        assert_int_equal(atomic_load(&sv.conns), 2);
    call_fini(&k);
    call_fini(&k2);
    free(body);
    ctx_fini(&c);
    scripted_stop(&sv);
}

/* Not HTTP, a bad chunk size, a Content-Length that is not a number: errors,
 * never a success. */
static void test_wire_malformed(void **state)
{
    (void)state;
    static const step steps[] = {
        {"SSH-2.0-OpenSSH\r\n\r\n", 1, 0, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 1, 0, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\nhello", 1, 0, 0},
    };
    scripted sv;
    scripted_start(&sv, steps, 3);
    ctx c;
    ctx_init(&c, NULL);
    for (int i = 0; i < 3; i++) {
        call k;
        call_init(&k, &c);
        start_to(&k, &sv, 0);
        run(&c, 5000);
        assert_int_equal(k.done_calls, 1);
        assert_int_not_equal(k.err, CO_UPSTREAM_OK);
        if (!CURL_ONLY)
            assert_int_equal(k.err, CO_UPSTREAM_EOTHER);
        call_fini(&k);
    }
    ctx_fini(&c);
    scripted_stop(&sv);
}

static void test_bad_args(void **state)
{
    (void)state;
    ctx c;
    ctx_init(&c, NULL);
    co_upstream_cb cb = {NULL, NULL, cb_done};
    co_upstream_cb none = {NULL, NULL, NULL};
    co_upstream_req req = {.url = "http://127.0.0.1:1/"};
    co_upstream_xfer *x = (co_upstream_xfer *)&c;
    assert_int_equal(co_upstream_start(c.up, &req, &none, NULL, &x), CO_EINVAL);
    assert_null(x);
    req.url = NULL;
    assert_int_equal(co_upstream_start(c.up, &req, &cb, NULL, NULL), CO_EINVAL);
    req.url = "http://127.0.0.1:1/";
    req.method = 7;
    assert_int_equal(co_upstream_start(c.up, &req, &cb, NULL, NULL), CO_EINVAL);
    req.method = CO_UPSTREAM_POST;
    req.body_len = 3;
    assert_int_equal(co_upstream_start(c.up, &req, &cb, NULL, NULL), CO_EINVAL);
    co_upstream *up = NULL;
    assert_int_equal(co_upstream_new(&up, NULL, NULL), CO_EINVAL);
    co_upstream_opts o = {.timeout_ms = -1};
    assert_int_equal(co_upstream_new(&up, c.base, &o), CO_EINVAL);
    assert_null(up);
    co_upstream_cancel(NULL);
    co_upstream_resume(NULL);
    co_upstream_free(NULL);
    assert_string_equal(co_upstream_err_name(CO_UPSTREAM_OK), "none");
    assert_string_equal(co_upstream_err_name(99), "?");
    /* an unsupported scheme fails through on_done, as "other" */
    call k;
    call_init(&k, &c);
    co_upstream_req bad = {.url = "ftp://127.0.0.1/x", .method = CO_UPSTREAM_GET};
    co_upstream_cb cb2 = {cb_status, NULL, cb_done};
    assert_int_equal(co_upstream_start(c.up, &bad, &cb2, &k, &k.x), 0);
    c.pending++;
    run(&c, 5000);
    assert_int_equal(k.done_calls, 1);
    assert_int_equal(k.err, CO_UPSTREAM_EOTHER);
    call_fini(&k);
    /* provider settings */
    co_provider_conf p = {.connect_timeout_ms = 1, .first_byte_timeout_ms = 2, .timeout_ms = 3, .max_connections = 4};
    co_upstream_opts po = {0};
    co_upstream_opts_from_provider(&po, &p);
    assert_int_equal(po.connect_timeout_ms, 1);
    assert_int_equal(po.first_byte_timeout_ms, 2);
    assert_int_equal(po.timeout_ms, 3);
    assert_int_equal(po.max_host_connections, 4);
    co_upstream_req pr = {0};
    co_upstream_req_timeouts(&pr, &p);
    assert_int_equal(pr.timeout_ms, 3);
    co_upstream_header hv[] = {{"Content-Type", "a"}, {"x", "y"}, {"content-type", "b"}};
    co_upstream_headers hs = {hv, 3};
    assert_string_equal(co_upstream_header_get(&hs, "CONTENT-TYPE"), "b");
    assert_null(co_upstream_header_get(&hs, "nope"));
    ctx_fini(&c);
}

/* ---- throughput: 1 client, 64 in flight, zero-latency sim ------------------- */

typedef struct bench {
    ctx *c;
    int left, done, failed;
    int64_t sum_total, sum_curl;
    char url[256];
    const char *body;
} bench;

static void bench_start(bench *b);

static void bench_done(co_upstream_xfer *x, void *ud, const co_upstream_result *r)
{
    (void)x;
    bench *b = ud;
    b->done++;
    if (r->err != CO_UPSTREAM_OK || r->status != 200)
        b->failed++;
    b->sum_total += r->total_us;
    b->sum_curl += r->curl_total_us;
    if (b->left > 0)
        bench_start(b);
    else if (b->done == b->c->pending)
        event_base_loopbreak(b->c->base);
}

static void bench_start(bench *b)
{
    co_upstream_req req = {.url = b->url, .headers = OA_H, .body = b->body, .body_len = strlen(b->body)};
    co_upstream_cb cb = {NULL, NULL, bench_done};
    b->left--;
    assert_int_equal(co_upstream_start(b->c->up, &req, &cb, b, NULL), 0);
}

/* Runs `total` chat completions keeping `inflight` of them in flight. */
static void bench_run(int total, int inflight, const char *label)
{
    co_upstream_opts o = {.max_host_connections = inflight};
    ctx c;
    ctx_init(&c, &o);
    bench b = {.c = &c, .left = total,
               .body = "{\"model\":\"fast\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"};
    snprintf(b.url, sizeof b.url, "%s/v1/chat/completions", E->base);
    c.pending = total;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    int64_t t0 = co_mono_us();
    for (int i = 0; i < inflight; i++)
        bench_start(&b);
    run(&c, 120000);
    int64_t el = co_mono_us() - t0;
    getrusage(RUSAGE_SELF, &ru1);
    double cpu_us = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e6 +
                    (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
    assert_int_equal(b.done, total);
    assert_int_equal(b.failed, 0);
    co_upstream_counters st;
    co_upstream_stats(c.up, &st);
    fprintf(stderr,
            "upstream (%s) %s: %d requests, %d in flight: %.0f req/s; mean %.1f us per request, curl's own %.1f us,"
            " difference %.1f us; client CPU %.1f us per request; %llu connections\n",
            CURL_ONLY ? "libcurl" : "native", label, total, inflight, total / (el / 1e6), (double)b.sum_total / total, (double)b.sum_curl / total,
            (double)(b.sum_total - b.sum_curl) / total, cpu_us / total, (unsigned long long)st.connects);
    assert_true(st.connects <= (uint64_t)inflight);
    assert_int_equal(st.reused, (uint64_t)total - st.connects);
    ctx_fini(&c);
}

static void test_throughput(void **state)
{
    (void)state;
    NEED_SIM();
    const char *env_n = getenv("CO_UPSTREAM_BENCH_N");
    int total = env_n && atoi(env_n) > 0 ? atoi(env_n) : 2000;
    bench_run(total / 4, 1, "sequential");
    bench_run(total, 64, "concurrent");
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_ok),
        cmocka_unit_test(test_sse_stream),
        cmocka_unit_test(test_concurrent_keepalive),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_first_byte_timeout),
        cmocka_unit_test(test_sim_patch_first_byte),
        cmocka_unit_test(test_total_timeout),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_http_errors_pass_through),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_cancel_in_on_data),
        cmocka_unit_test(test_cancel_from_timer),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_start_from_callbacks),
        cmocka_unit_test(test_free_in_flight),
        cmocka_unit_test(test_free_inside_callback),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_wire_stale_keepalive),
        cmocka_unit_test(test_wire_framing),
        cmocka_unit_test(test_wire_dribble),
        cmocka_unit_test(test_wire_random),
        cmocka_unit_test(test_wire_early_answer),
        cmocka_unit_test(test_wire_malformed),
        cmocka_unit_test(test_throughput),
    };
    fprintf(stderr, "== the native HTTP/1.1 path\n");
    int rc = cmocka_run_group_tests_name("native", tests, group_setup, group_teardown);
    fprintf(stderr, "== libcurl (curl_only)\n");
    CURL_ONLY = 1;
    rc |= cmocka_run_group_tests_name("curl", tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
