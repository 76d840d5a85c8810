/* Tests of the gateway's HTTP/1.1 server (src/gateway/http.c) over real
 * loopback sockets: a gw_http runs on an event_base in a server thread; the
 * test thread is the client, with blocking sockets whose reads time out
 * (SO_RCVTIMEO), and parses replies with http-parser in response mode.
 * Anything the test does on the server (reply to a held request, cork,
 * stop, free) runs on the server thread through srv_call. Waits are bounded;
 * no assertion is about wall-clock time. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <http_parser.h>

#include "cutover/buf.h"
#include "gateway/http.h"

/* ---- the server --------------------------------------------------------- */

#define MAX_HELD 8

typedef struct srv {
    struct event_base *base;
    gw_http *h;
    pthread_t th;
    int port;
    atomic_int nreq, ngone, ndrained, nerror, nconn_seen;
    gw_hreq *held[MAX_HELD];
    atomic_int nheld;
    /* /big */
    gw_hreq *big;
    size_t big_sent, big_target;
    atomic_size_t big_maxpending;
    atomic_int big_done;
    int crlf_results[4];
} srv;

static srv *S;

static void gone_cb(gw_hreq *q, void *arg)
{
    srv *s = arg;
    for (int i = 0; i < MAX_HELD; i++)
        if (s->held[i] == q)
            s->held[i] = NULL;
    if (s->big == q)
        s->big = NULL;
    atomic_fetch_add(&s->ngone, 1);
}

static int each_hdr(void *ud, const char *name, const char *value)
{
    co_buf_printf(ud, "%s=%s;", name, value);
    return 0;
}

static void describe(gw_hreq *q, co_buf *b)
{
    size_t bl;
    const char *body = gw_hreq_body(q, &bl);
    const char *a = gw_hreq_header(q, "x-a");
    co_buf_printf(b, "M=%s P=%s V=%d A=[%s] H=", gw_hreq_method_name(q), gw_hreq_path(q), gw_hreq_minor(q),
                  a ? a : "-");
    gw_hreq_headers_each(q, each_hdr, b);
    co_buf_printf(b, " B=%zu:", bl);
    co_buf_append(b, body, bl);
}

static void big_pump(gw_hreq *q, void *arg)
{
    srv *s = arg;
    static char blk[65536];
    memset(blk, 'z', sizeof blk);
    while (gw_hreq_pending(q) < (1u << 20) && s->big_sent < s->big_target) {
        gw_hreq_chunk(q, blk, sizeof blk);
        s->big_sent += sizeof blk;
        size_t p = gw_hreq_pending(q);
        if (p > atomic_load(&s->big_maxpending))
            atomic_store(&s->big_maxpending, p);
    }
    if (s->big_sent >= s->big_target) {
        s->big = NULL;
        atomic_store(&s->big_done, 1);
        gw_hreq_end(q);
    }
}

static void drained_cb(gw_hreq *q, void *arg)
{
    srv *s = arg;
    atomic_fetch_add(&s->ndrained, 1);
    big_pump(q, arg);
}

static void on_request(gw_hreq *q, void *arg)
{
    srv *s = arg;
    const char *path = gw_hreq_path(q);
    atomic_fetch_add(&s->nreq, 1);
    if (strcmp(path, "/hold") == 0 || strcmp(path, "/hold-nogone") == 0) {
        if (strcmp(path, "/hold") == 0)
            gw_hreq_set_gone_cb(q, gone_cb, s);
        for (int i = 0; i < MAX_HELD; i++)
            if (!s->held[i]) {
                s->held[i] = q;
                break;
            }
        atomic_fetch_add(&s->nheld, 1);
        return;
    }
    if (strcmp(path, "/stream") == 0) {
        gw_hreq_add_header(q, "Content-Type", "text/plain");
        gw_hreq_start(q, 200);
        gw_hreq_chunk(q, "hello ", 6);
        gw_hreq_chunk(q, "", 0);
        gw_hreq_chunk(q, "world", 5);
        gw_hreq_end(q);
        return;
    }
    if (strcmp(path, "/big") == 0) {
        s->big = q;
        s->big_sent = 0;
        gw_hreq_set_gone_cb(q, gone_cb, s);
        gw_hreq_set_drained_cb(q, drained_cb, s);
        gw_hreq_start(q, 200);
        big_pump(q, s);
        return;
    }
    if (strcmp(path, "/crlf") == 0) {
        s->crlf_results[0] = gw_hreq_add_header(q, "X-Bad", "a\r\nInjected: 1");
        s->crlf_results[1] = gw_hreq_add_header(q, "X\nY", "v");
        s->crlf_results[2] = gw_hreq_add_header(q, "Content-Length", "5");
        s->crlf_results[3] = gw_hreq_add_header(q, "X-Good", "fine");
        gw_hreq_reply(q, 200, "ok", 2);
        return;
    }
    if (strcmp(path, "/cork") == 0) {
        gw_http_cork(s->h);
        gw_hreq_reply(q, 200, "corked", 6);
        return;
    }
    if (strcmp(path, "/204") == 0) {
        gw_hreq_reply(q, 204, "ignored", 7);
        return;
    }
    if (strcmp(path, "/target") == 0) {
        const char *t = gw_hreq_target(q);
        gw_hreq_reply(q, 200, t, strlen(t));
        return;
    }
    if (strcmp(path, "/sized") == 0) { /* promise 10 bytes, send 5, drop the connection */
        gw_hreq_start_sized(q, 200, 10);
        gw_hreq_chunk(q, "hello", 5);
        gw_hreq_abort(q, 0);
        return;
    }
    if (strcmp(path, "/sized-full") == 0) {
        gw_hreq_start_sized(q, 200, 10);
        gw_hreq_chunk(q, "hello", 5);
        gw_hreq_chunk(q, "world", 5);
        gw_hreq_end(q);
        return;
    }
    if (strcmp(path, "/reset") == 0) {
        gw_hreq_abort(q, 1);
        return;
    }
    if (strcmp(path, "/close") == 0) {
        gw_hreq_add_header(q, "Connection", "close");
        gw_hreq_reply(q, 200, "bye", 3);
        return;
    }
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    describe(q, &b);
    gw_hreq_add_header(q, "X-Test", "yes");
    gw_hreq_reply(q, strcmp(path, "/404") == 0 ? 404 : 200, b.p, b.len);
    co_buf_free(&b);
}

static void on_error(void *arg, int status, const char *message, co_buf *extra, co_buf *body)
{
    srv *s = arg;
    atomic_fetch_add(&s->nerror, 1);
    co_buf_printf(extra, "X-Err: %d\r\n", status);
    co_buf_printf(body, "{\"custom\":%d,\"message\":\"%s\"}", status, message);
}

static void *srv_main(void *arg)
{
    srv *s = arg;
    event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

typedef struct call {
    void (*fn)(srv *, void *);
    srv *s;
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} call;

static void call_tramp(evutil_socket_t fd, short what, void *a)
{
    (void)fd;
    (void)what;
    call *c = a;
    c->fn(c->s, c->arg);
    pthread_mutex_lock(&c->mu);
    c->done = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Runs fn on the server thread and waits for it. */
static void srv_call(srv *s, void (*fn)(srv *, void *), void *arg)
{
    call c = {.fn = fn, .s = s, .arg = arg};
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    struct timeval tv = {0, 0};
    assert_int_equal(event_base_once(s->base, -1, EV_TIMEOUT, call_tramp, &c, &tv), 0);
    pthread_mutex_lock(&c.mu);
    while (!c.done)
        pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);
    pthread_mutex_destroy(&c.mu);
    pthread_cond_destroy(&c.cv);
}

static int listen_socket(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = gw_http_listen((const struct sockaddr *)&a, (int)sizeof a, 0);
    if (fd < 0)
        return -1;
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

static srv *srv_start(const gw_http_opts *o)
{
    srv *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->base = event_base_new();
    assert_non_null(s->base);
    int fd = listen_socket(&s->port);
    assert_true(fd >= 0);
    gw_http_opts opts = o ? *o : (gw_http_opts){0};
    if (!opts.max_head)
        opts.max_head = 4096;
    if (!opts.max_body)
        opts.max_body = 65536;
    if (!opts.header_timeout_ms)
        opts.header_timeout_ms = 5000;
    if (!opts.write_timeout_ms)
        opts.write_timeout_ms = 5000;
    opts.on_request = on_request;
    if (!opts.on_error)
        opts.on_error = on_error;
    opts.arg = s;
    s->big_target = 16u << 20;
    s->h = gw_http_new(s->base, fd, &opts);
    assert_non_null(s->h);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
    S = s;
    return s;
}

static void do_free(srv *s, void *arg)
{
    (void)arg;
    gw_http_free(s->h);
    s->h = NULL;
}

static void srv_stop(srv *s)
{
    if (s->h)
        srv_call(s, do_free, NULL);
    event_base_loopexit(s->base, NULL);
    pthread_join(s->th, NULL);
    event_base_free(s->base);
    free(s);
    S = NULL;
}

static size_t do_conns_v;
static void do_conns(srv *s, void *arg)
{
    (void)arg;
    do_conns_v = gw_http_conns(s->h);
}

static size_t srv_conns(srv *s)
{
    srv_call(s, do_conns, NULL);
    return do_conns_v;
}

/* Replies to the i-th held request (body "held-i"). */
static void do_reply_held(srv *s, void *arg)
{
    int i = (int)(intptr_t)arg;
    gw_hreq *q = s->held[i];
    s->held[i] = NULL;
    if (q) {
        char b[32];
        int n = snprintf(b, sizeof b, "held-%d", i);
        gw_hreq_reply(q, 200, b, (size_t)n);
    }
}

static int wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 1000; i++) {
        if (atomic_load(v) >= want)
            return 1;
        usleep(5000);
    }
    return 0;
}

/* ---- the client --------------------------------------------------------- */

typedef struct resp {
    int status;
    int minor;
    co_buf head; /* "\nname: value" lines, names lower-cased */
    co_buf body;
    int complete;
    int last;    /* 1 field, 2 value */
} resp;

typedef struct client {
    int fd;
    char buf[1 << 16];
    size_t len, off;
    int eof;
} client;

static int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static client *cl_new(int port)
{
    client *c = calloc(1, sizeof *c);
    c->fd = client_connect(port);
    assert_true(c->fd >= 0);
    return c;
}

static void cl_free(client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

static void cl_send(client *c, const char *s)
{
    assert_int_equal(send_all(c->fd, s, strlen(s)), 0);
}

static int r_field(http_parser *p, const char *at, size_t n)
{
    resp *r = p->data;
    if (r->last != 1)
        co_buf_puts(&r->head, "\n");
    r->last = 1;
    for (size_t i = 0; i < n; i++) {
        char ch = (char)tolower((unsigned char)at[i]);
        co_buf_append(&r->head, &ch, 1);
    }
    return 0;
}

static int r_value(http_parser *p, const char *at, size_t n)
{
    resp *r = p->data;
    if (r->last != 2)
        co_buf_puts(&r->head, ": ");
    r->last = 2;
    co_buf_append(&r->head, at, n);
    return 0;
}

static int r_body(http_parser *p, const char *at, size_t n)
{
    resp *r = p->data;
    co_buf_append(&r->body, at, n);
    return 0;
}

static int r_done(http_parser *p)
{
    resp *r = p->data;
    r->complete = 1;
    r->status = (int)p->status_code;
    r->minor = p->http_minor;
    http_parser_pause(p, 1);
    return 0;
}

static int r_head_skip(http_parser *p)
{
    (void)p;
    return 1;
}

static void resp_init(resp *r)
{
    memset(r, 0, sizeof *r);
    co_buf_init(&r->head, CO_BUF_UNLIMITED);
    co_buf_init(&r->body, CO_BUF_UNLIMITED);
}

static void resp_free(resp *r)
{
    co_buf_free(&r->head);
    co_buf_free(&r->body);
}

/* The value of a response header (lower-case name), into a static buffer; NULL when absent. */
static const char *rh(const resp *r, const char *name)
{
    static char v[1024];
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s: ", name);
    const char *p = r->head.p ? strstr(r->head.p, pat) : NULL;
    if (!p)
        return NULL;
    p += strlen(pat);
    size_t n = strcspn(p, "\n");
    if (n >= sizeof v)
        n = sizeof v - 1;
    memcpy(v, p, n);
    v[n] = '\0';
    return v;
}

/* Reads one response; 0 when complete, -1 otherwise (EOF, timeout, garbage). */
static int cl_read(client *c, resp *r, int head_req)
{
    resp_init(r);
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = r;
    http_parser_settings st = {.on_header_field = r_field, .on_header_value = r_value, .on_body = r_body,
                               .on_message_complete = r_done,
                               .on_headers_complete = head_req ? r_head_skip : NULL};
    for (;;) {
        if (c->off < c->len) {
            size_t k = http_parser_execute(&p, &st, c->buf + c->off, c->len - c->off);
            c->off += k;
            if (r->complete)
                return 0;
            if (HTTP_PARSER_ERRNO(&p) != HPE_OK)
                return -1;
        }
        if (c->off == c->len)
            c->off = c->len = 0;
        if (c->eof)
            return -1;
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            c->eof = 1;
            http_parser_execute(&p, &st, NULL, 0);
            return r->complete ? 0 : -1;
        }
        c->len += (size_t)n;
    }
}

/* 1 when the server closed the connection with no further byte. */
static int cl_eof(client *c)
{
    if (c->off < c->len)
        return 0;
    char b[64];
    ssize_t n;
    do
        n = recv(c->fd, b, sizeof b, 0);
    while (n < 0 && errno == EINTR);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* 1 when something is readable within ms. */
static int cl_readable(client *c, int ms)
{
    if (c->off < c->len)
        return 1;
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    return poll(&pf, 1, ms) > 0;
}

static void get_ok(client *c, const char *req, const char *want_body)
{
    resp r;
    cl_send(c, req);
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    if (want_body)
        assert_string_equal(r.body.p ? r.body.p : "", want_body);
    resp_free(&r);
}

/* ---- tests -------------------------------------------------------------- */

static void test_get_post(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *c = cl_new(s->port);
    resp r;
    cl_send(c, "GET /echo?x=1&y=2#frag HTTP/1.1\r\nHost: a\r\nX-A:   spaced value  \r\n"
               "x-multi: 1\r\nX-MULTI: 2\r\nEmpty:\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.p, "M=GET P=/echo V=1 A=[spaced value] H=Host=a;X-A=spaced value;x-multi=1;"
                                  "X-MULTI=2;Empty=; B=0:");
    assert_string_equal(rh(&r, "x-test"), "yes");
    assert_int_equal(atoi(rh(&r, "content-length")), (int)r.body.len);
    assert_null(rh(&r, "connection"));
    assert_null(rh(&r, "date"));
    assert_null(rh(&r, "server"));
    resp_free(&r);

    cl_send(c, "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_string_equal(r.body.p, "M=POST P=/p V=1 A=[-] H=Content-Length=5; B=5:hello");
    resp_free(&r);

    /* absolute-form targets, a bare query */
    get_ok(c, "GET http://example.com:8080/abs/path?q=1 HTTP/1.1\r\n\r\n", "M=GET P=/abs/path V=1 A=[-] H= B=0:");
    get_ok(c, "GET http://example.com HTTP/1.1\r\n\r\n", "M=GET P=/ V=1 A=[-] H= B=0:");
    get_ok(c, "GET /?a=b HTTP/1.1\r\n\r\n", "M=GET P=/ V=1 A=[-] H= B=0:");
    get_ok(c, "DELETE /d HTTP/1.1\r\n\r\n", "M=DELETE P=/d V=1 A=[-] H= B=0:");
    get_ok(c, "OPTIONS * HTTP/1.1\r\n\r\n", "M=OPTIONS P=* V=1 A=[-] H= B=0:");

    /* 204: neither Content-Length nor body */
    cl_send(c, "GET /204 HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.status, 204);
    assert_null(rh(&r, "content-length"));
    assert_int_equal(r.body.len, 0);
    resp_free(&r);

    cl_send(c, "GET /404 HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    assert_int_equal(srv_conns(s), 1);
    cl_free(c);
    srv_stop(s);
}

static void test_chunked_request(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *c = cl_new(s->port);
    get_ok(c,
           "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5;ext=1;name=\"v\"\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-One: x\r\nTrailer-Two: y\r\n\r\n",
           "M=POST P=/c V=1 A=[-] H=Transfer-Encoding=chunked; B=11:hello world");
    /* an empty chunked body */
    get_ok(c, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           "M=POST P=/c V=1 A=[-] H=Transfer-Encoding=chunked; B=0:");
    cl_free(c);
    srv_stop(s);
}

static void send_dribble(client *c, const char *s)
{
    for (const char *p = s; *p; p++) {
        assert_int_equal(send_all(c->fd, p, 1), 0);
        usleep(300);
    }
}

static void test_dribble(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *c = cl_new(s->port);
    resp r;
    /* head byte by byte, then body byte by byte */
    send_dribble(c, "POST /dribble?q HTTP/1.1\r\nX-A: one two \r\nContent-Length: 11\r\n\r\n");
    send_dribble(c, "hello world");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_string_equal(r.body.p, "M=POST P=/dribble V=1 A=[one two] H=X-A=one two;Content-Length=11; B=11:hello world");
    resp_free(&r);
    send_dribble(c, "PUT /d HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n1;x=y\r\nd\r\n0\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_string_equal(r.body.p, "M=PUT P=/d V=1 A=[-] H=transfer-encoding=chunked; B=4:abcd");
    resp_free(&r);
    cl_free(c);
    srv_stop(s);
}

static void test_pipelined(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *c = cl_new(s->port);
    resp r;
    cl_send(c, "GET /hold HTTP/1.1\r\n\r\nGET /echo HTTP/1.1\r\nX-A: second\r\n\r\n");
    assert_true(wait_for(&s->nheld, 1));
    /* the second is not dispatched while the first is in flight */
    assert_false(cl_readable(c, 100));
    assert_int_equal(atomic_load(&s->nreq), 1);
    srv_call(s, do_reply_held, (void *)0);
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_string_equal(r.body.p, "held-0");
    resp_free(&r);
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_string_equal(r.body.p, "M=GET P=/echo V=1 A=[second] H=X-A=second; B=0:");
    resp_free(&r);
    assert_int_equal(atomic_load(&s->nreq), 2);

    /* three answered at once, in order */
    cl_send(c, "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nxyGET /c HTTP/1.1\r\n\r\n");
    const char *want[] = {"M=GET P=/a V=1 A=[-] H= B=0:", "M=POST P=/b V=1 A=[-] H=Content-Length=2; B=2:xy",
                          "M=GET P=/c V=1 A=[-] H= B=0:"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cl_read(c, &r, 0), 0);
        assert_string_equal(r.body.p, want[i]);
        resp_free(&r);
    }
    cl_free(c);
    srv_stop(s);
}

/* A pipelined head's deadline counts from its first byte, even when that
 * byte came while the request before it was still being served: one that
 * began arriving longer than header_timeout ago gets its 408 when its turn
 * comes, though its last bytes follow at once. */
static void test_pipelined_head_deadline(void **state)
{
    (void)state;
    gw_http_opts o = {.header_timeout_ms = 1000};
    srv *s = srv_start(&o);
    client *c = cl_new(s->port);
    cl_send(c, "GET /hold HTTP/1.1\r\n\r\nGET /late HTTP/1.1\r\nX-A: par");
    assert_true(wait_for(&s->nheld, 1));
    assert_false(cl_readable(c, 1300)); /* the held request outlasts the second one's deadline */
    srv_call(s, do_reply_held, (void *)0);
    resp r;
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_string_equal(r.body.p, "held-0");
    resp_free(&r);
    send_all(c->fd, "tial\r\n\r\n", 8); /* too late: the head's time ran out while it waited */
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.status, 408);
    resp_free(&r);
    assert_int_equal(atomic_load(&s->nreq), 1);
    cl_free(c);

    /* one that began within its time still has the rest of it */
    c = cl_new(s->port);
    cl_send(c, "GET /hold HTTP/1.1\r\n\r\nGET /echo HTTP/1.1\r\nX-A: par");
    assert_true(wait_for(&s->nheld, 2));
    srv_call(s, do_reply_held, (void *)0);
    assert_int_equal(cl_read(c, &r, 0), 0);
    resp_free(&r);
    cl_send(c, "tial\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_string_equal(r.body.p, "M=GET P=/echo V=1 A=[partial] H=X-A=partial; B=0:");
    resp_free(&r);
    cl_free(c);
    srv_stop(s);
}

static void test_keepalive_1000(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *c = cl_new(s->port);
    char req[128], want[128];
    for (int i = 0; i < 1000; i++) {
        snprintf(req, sizeof req, "GET /k%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        snprintf(want, sizeof want, "M=GET P=/k%d V=1 A=[-] H=Host=x; B=0:", i);
        get_ok(c, req, want);
    }
    assert_int_equal(atomic_load(&s->nreq), 1000);
    assert_int_equal(srv_conns(s), 1);
    cl_free(c);
    srv_stop(s);
}

static void test_http10(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *c = cl_new(s->port);
    resp r;
    cl_send(c, "GET /old HTTP/1.0\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.minor, 0);
    assert_string_equal(r.body.p, "M=GET P=/old V=0 A=[-] H= B=0:");
    assert_string_equal(rh(&r, "connection"), "close");
    resp_free(&r);
    assert_true(cl_eof(c));
    cl_free(c);

    c = cl_new(s->port);
    for (int i = 0; i < 3; i++) {
        cl_send(c, "GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_int_equal(cl_read(c, &r, 0), 0);
        assert_string_equal(rh(&r, "connection"), "keep-alive");
        resp_free(&r);
    }
    /* a 1.1 request asking to close */
    cl_send(c, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_string_equal(rh(&r, "connection"), "close");
    resp_free(&r);
    assert_true(cl_eof(c));
    cl_free(c);

    /* the handler says Connection: close */
    c = cl_new(s->port);
    cl_send(c, "GET /close HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_string_equal(r.body.p, "bye");
    assert_string_equal(rh(&r, "connection"), "close");
    resp_free(&r);
    assert_true(cl_eof(c));
    cl_free(c);
    srv_stop(s);
}

static void test_head(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *c = cl_new(s->port);
    resp r;
    cl_send(c, "HEAD /h HTTP/1.1\r\n\r\nGET /h HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 1), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    const char *cl = rh(&r, "content-length");
    assert_non_null(cl);
    assert_int_equal(atoi(cl), (int)strlen("M=HEAD P=/h V=1 A=[-] H= B=0:"));
    resp_free(&r);
    /* no body bytes were sent: the next reply parses */
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_string_equal(r.body.p, "M=GET P=/h V=1 A=[-] H= B=0:");
    resp_free(&r);
    cl_free(c);
    srv_stop(s);
}

static void test_expect_continue(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *c = cl_new(s->port);
    resp r;
    cl_send(c, "POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    char b[26] = {0};
    size_t got = 0;
    while (got < 25) {
        ssize_t n = recv(c->fd, b + got, 25 - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_string_equal(b, "HTTP/1.1 100 Continue\r\n\r\n");
    cl_send(c, "hello");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_string_equal(r.body.p, "M=POST P=/e V=1 A=[-] H=Expect=100-continue;Content-Length=5; B=5:hello");
    resp_free(&r);
    /* too big: 413 at once, no 100 */
    cl_send(c, "POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 9999999\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    cl_free(c);
    srv_stop(s);
}

static void expect_error(srv *s, const char *req, int status)
{
    client *c = cl_new(s->port);
    resp r;
    send_all(c->fd, req, strlen(req));
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.status, status);
    assert_string_equal(rh(&r, "connection"), "close");
    assert_string_equal(rh(&r, "content-type"), "application/json");
    char want[32];
    snprintf(want, sizeof want, "%d", status);
    assert_string_equal(rh(&r, "x-err"), want);
    snprintf(want, sizeof want, "{\"custom\":%d,", status);
    assert_non_null(strstr(r.body.p, want));
    resp_free(&r);
    assert_true(cl_eof(c));
    cl_free(c);
}

static void test_errors(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    expect_error(s, "GARBAGE\r\n\r\n", 400);
    expect_error(s, "GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400);
    expect_error(s, "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400);
    expect_error(s, "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    expect_error(s, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    expect_error(s, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501);
    expect_error(s, "GET / HTTP/2.0\r\n\r\n", 505);
    expect_error(s, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400);
    /* 413 with Content-Length: answered before a byte of the body is sent */
    expect_error(s, "POST /big-body HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", 413);
    /* 431: a head over max_head (4096) */
    char big[6000];
    int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nX-Long: ");
    memset(big + n, 'a', 5000);
    strcpy(big + n + 5000, "\r\n\r\n");
    expect_error(s, big, 431);
    /* ... also when it never ends */
    big[n + 5000] = '\0';
    expect_error(s, big, 431);
    /* after a good request on the same connection */
    client *c = cl_new(s->port);
    resp r;
    get_ok(c, "GET /fine HTTP/1.1\r\n\r\n", NULL);
    cl_send(c, "BLAH\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    assert_true(cl_eof(c));
    cl_free(c);
    assert_true(atomic_load(&s->nerror) >= 12);
    srv_stop(s);
}

static void test_413_chunked(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *c = cl_new(s->port);
    cl_send(c, "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[16384 + 16];
    int h = snprintf(chunk, sizeof chunk, "4000\r\n");
    memset(chunk + h, 'b', 16384);
    memcpy(chunk + h + 16384, "\r\n", 2);
    /* 5 x 16 KiB > 64 KiB: the server answers 413 (sends may fail once it closed) */
    for (int i = 0; i < 6; i++)
        if (send_all(c->fd, chunk, (size_t)h + 16384 + 2) < 0)
            break;
    resp r;
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    assert_int_equal(atomic_load(&s->nreq), 0);
    cl_free(c);
    srv_stop(s);
}

static void test_408_slow_head(void **state)
{
    (void)state;
    gw_http_opts o = {.header_timeout_ms = 300};
    srv *s = srv_start(&o);
    client *c = cl_new(s->port);
    cl_send(c, "GET /slow HTTP/1.1\r\nX-Slow: ");
    /* one byte every 50 ms: the deadline is absolute, the 408 comes anyway */
    int i;
    for (i = 0; i < 200 && !cl_readable(c, 50); i++)
        if (send_all(c->fd, "a", 1) < 0)
            break;
    assert_true(i < 200);
    resp r;
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.status, 408);
    resp_free(&r);
    assert_true(cl_eof(c));
    cl_free(c);

    /* a body that stops arriving */
    c = cl_new(s->port);
    cl_send(c, "POST /slow HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.status, 408);
    resp_free(&r);
    cl_free(c);
    assert_int_equal(atomic_load(&s->nreq), 0);
    srv_stop(s);
}

static void test_idle_close(void **state)
{
    (void)state;
    gw_http_opts o = {.header_timeout_ms = 200};
    srv *s = srv_start(&o);
    client *c = cl_new(s->port);
    assert_true(cl_eof(c)); /* never sent a byte: closed without a word */
    cl_free(c);
    c = cl_new(s->port);
    get_ok(c, "GET /once HTTP/1.1\r\n\r\n", NULL);
    assert_true(cl_eof(c)); /* kept alive, then idle too long */
    cl_free(c);
    srv_stop(s);
}

/* Out of descriptors: accept4 fails with EMFILE, the listener pauses instead
 * of spinning on a connection it cannot take, the connections already open
 * keep being served, and the waiting client is taken and answered once a
 * descriptor is free again. The test fills the process's descriptor table
 * (a lowered soft RLIMIT_NOFILE) so that the client's own socket is the last
 * one that fits. */
static void test_accept_emfile(void **state)
{
    (void)state;
    static _Atomic uint64_t paused;
    gw_http_opts o = {.accept_paused = &paused};
    srv *s = srv_start(&o);
    client *c0 = cl_new(s->port);
    get_ok(c0, "GET /before HTTP/1.1\r\n\r\n", "M=GET P=/before V=1 A=[-] H= B=0:");

    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int top = dup(0);
    assert_true(top >= 0);
    close(top);
    struct rlimit low = {(rlim_t)top + 64, old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fill[128], nfill = 0;
    for (int fd; nfill < 128 && (fd = dup(0)) >= 0;)
        fill[nfill++] = fd;
    assert_int_equal(errno, EMFILE);
    close(fill[--nfill]); /* one slot: the client's socket, none for the server's accept */

    client *c = cl_new(s->port); /* the kernel completes the handshake on the backlog */
    cl_send(c, "GET /waiting HTTP/1.1\r\n\r\n");
    assert_false(cl_readable(c, 300));                  /* not accepted */
    get_ok(c0, "GET /during HTTP/1.1\r\n\r\n", "M=GET P=/during V=1 A=[-] H= B=0:"); /* the open one is served */
    assert_false(cl_readable(c, 0));
    assert_true(atomic_load(&paused) >= 1); /* paused (and retried), not spinning on accept */

    close(fill[--nfill]); /* a descriptor again: the paused listener takes the client */
    resp r;
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.p, "M=GET P=/waiting V=1 A=[-] H= B=0:");
    resp_free(&r);

    cl_free(c);
    while (nfill)
        close(fill[--nfill]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    get_ok(c0, "GET /after HTTP/1.1\r\n\r\n", "M=GET P=/after V=1 A=[-] H= B=0:");
    cl_free(c0);
    srv_stop(s);
}

static int read_chunked_raw(client *c, co_buf *raw)
{
    /* everything until the server closes or 2 s pass without a byte */
    for (;;) {
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        if (poll(&pf, 1, 2000) <= 0)
            return 0;
        char b[4096];
        ssize_t n = recv(c->fd, b, sizeof b, 0);
        if (n <= 0)
            return 1;
        co_buf_append(raw, b, (size_t)n);
        if (strstr(raw->p, "0\r\n\r\n"))
            return 0;
    }
}

static void test_stream(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *c = cl_new(s->port);
    resp r;
    cl_send(c, "GET /stream HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_string_equal(r.body.p, "hello world");
    assert_string_equal(rh(&r, "transfer-encoding"), "chunked");
    assert_string_equal(rh(&r, "content-type"), "text/plain");
    assert_null(rh(&r, "content-length"));
    resp_free(&r);
    /* the framing itself */
    co_buf raw;
    co_buf_init(&raw, CO_BUF_UNLIMITED);
    cl_send(c, "GET /stream HTTP/1.1\r\n\r\n");
    read_chunked_raw(c, &raw);
    const char *body = strstr(raw.p, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4, "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n");
    co_buf_free(&raw);
    /* the connection is still good */
    get_ok(c, "GET /after HTTP/1.1\r\n\r\n", "M=GET P=/after V=1 A=[-] H= B=0:");
    cl_free(c);

    /* HTTP/1.0: no chunking, read to close */
    c = cl_new(s->port);
    cl_send(c, "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_string_equal(r.body.p, "hello world");
    assert_null(rh(&r, "transfer-encoding"));
    assert_string_equal(rh(&r, "connection"), "close");
    resp_free(&r);
    cl_free(c);
    srv_stop(s);
}

static int small_rcvbuf_client(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int sz = 32768;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void test_drained(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *c = calloc(1, sizeof *c);
    c->fd = small_rcvbuf_client(s->port);
    cl_send(c, "GET /big HTTP/1.1\r\n\r\n");
    assert_true(wait_for(&s->nreq, 1));
    usleep(100000); /* the client does not read: the socket fills */
    assert_true(atomic_load(&s->big_maxpending) > 0);
    assert_int_equal(atomic_load(&s->ndrained), 0);
    assert_int_equal(atomic_load(&s->big_done), 0);
    resp r;
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 16u << 20);
    resp_free(&r);
    assert_true(atomic_load(&s->ndrained) >= 1);
    assert_int_equal(atomic_load(&s->big_done), 1);
    assert_int_equal(atomic_load(&s->ngone), 0);
    /* bounded: the handler never had more than ~1 MiB + a block queued */
    assert_true(atomic_load(&s->big_maxpending) < (1u << 20) + 65536 + 64);
    cl_free(c);
    srv_stop(s);
}

static void test_write_timeout(void **state)
{
    (void)state;
    gw_http_opts o = {.write_timeout_ms = 300};
    srv *s = srv_start(&o);
    s->big_target = (size_t)1 << 30;
    client *c = calloc(1, sizeof *c);
    c->fd = small_rcvbuf_client(s->port);
    cl_send(c, "GET /big HTTP/1.1\r\n\r\n");
    /* never read: closed after the write timeout, the handler told */
    assert_true(wait_for(&s->ngone, 1));
    assert_int_equal(atomic_load(&s->big_done), 0);
    assert_int_equal(srv_conns(s), 0);
    cl_free(c);
    srv_stop(s);
}

static void test_client_gone(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *c = cl_new(s->port);
    cl_send(c, "POST /hold HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    assert_true(wait_for(&s->nheld, 1));
    cl_free(c);
    assert_true(wait_for(&s->ngone, 1));
    usleep(50000);
    assert_int_equal(atomic_load(&s->ngone), 1);
    assert_null(s->held[0]);
    assert_int_equal(srv_conns(s), 0);

    /* without a gone callback the request stays the handler's; its reply goes nowhere */
    c = cl_new(s->port);
    cl_send(c, "GET /hold-nogone HTTP/1.1\r\n\r\n");
    assert_true(wait_for(&s->nheld, 2));
    cl_free(c);
    for (int i = 0; i < 200 && srv_conns(s); i++)
        usleep(5000);
    assert_int_equal(srv_conns(s), 0);
    srv_call(s, do_reply_held, (void *)0);
    assert_int_equal(atomic_load(&s->ngone), 1);

    /* a client that leaves mid-request (head, body) costs nothing */
    c = cl_new(s->port);
    cl_send(c, "POST /x HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc");
    usleep(20000);
    cl_free(c);
    c = cl_new(s->port);
    cl_send(c, "GET /x HTTP/1.1\r\nHost:");
    usleep(20000);
    cl_free(c);
    for (int i = 0; i < 200 && srv_conns(s); i++)
        usleep(5000);
    assert_int_equal(srv_conns(s), 0);
    assert_int_equal(atomic_load(&s->nreq), 2);
    srv_stop(s);
}

static void do_uncork(srv *s, void *arg)
{
    (void)arg;
    gw_http_uncork(s->h);
}

static void test_cork(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *a = cl_new(s->port), *b = cl_new(s->port);
    cl_send(a, "GET /cork HTTP/1.1\r\n\r\n");
    assert_true(wait_for(&s->nreq, 1));
    cl_send(b, "GET /cork HTTP/1.1\r\n\r\nGET /echo HTTP/1.1\r\n\r\n");
    assert_true(wait_for(&s->nreq, 2));
    /* corked twice: nothing written */
    assert_false(cl_readable(a, 100));
    assert_false(cl_readable(b, 1));
    srv_call(s, do_uncork, NULL);
    assert_false(cl_readable(a, 100));
    assert_false(cl_readable(b, 1));
    srv_call(s, do_uncork, NULL);
    resp r;
    assert_int_equal(cl_read(a, &r, 0), 0);
    assert_string_equal(r.body.p, "corked");
    resp_free(&r);
    assert_int_equal(cl_read(b, &r, 0), 0);
    assert_string_equal(r.body.p, "corked");
    resp_free(&r);
    /* the pipelined one behind it, after the corked reply */
    assert_int_equal(cl_read(b, &r, 0), 0);
    assert_string_equal(r.body.p, "M=GET P=/echo V=1 A=[-] H= B=0:");
    resp_free(&r);
    cl_free(a);
    cl_free(b);
    srv_stop(s);
}

static void do_stop(srv *s, void *arg)
{
    (void)arg;
    gw_http_stop(s->h);
}

static void test_stop(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *idle = cl_new(s->port), *busy = cl_new(s->port), *part = cl_new(s->port);
    get_ok(idle, "GET /a HTTP/1.1\r\n\r\n", NULL);
    cl_send(busy, "GET /hold HTTP/1.1\r\n\r\n");
    assert_true(wait_for(&s->nheld, 1));
    cl_send(part, "GET /partial HTTP/1.1\r\nHo");
    usleep(20000);
    assert_int_equal(srv_conns(s), 3);
    srv_call(s, do_stop, NULL);
    assert_true(cl_eof(idle));
    assert_true(cl_eof(part));
    assert_int_equal(client_connect(s->port), -1); /* the listening socket is closed */
    srv_call(s, do_reply_held, (void *)0);
    resp r;
    assert_int_equal(cl_read(busy, &r, 0), 0);
    assert_string_equal(r.body.p, "held-0");
    assert_string_equal(rh(&r, "connection"), "close");
    resp_free(&r);
    assert_true(cl_eof(busy));
    assert_int_equal(srv_conns(s), 0);
    cl_free(idle);
    cl_free(busy);
    cl_free(part);
    srv_stop(s);
}

static void test_free_in_flight(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *a = cl_new(s->port), *b = cl_new(s->port), *c = cl_new(s->port), *d = cl_new(s->port);
    cl_send(a, "GET /hold HTTP/1.1\r\n\r\n");
    cl_send(b, "POST /hold-nogone HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody");
    cl_send(c, "GET /big HTTP/1.1\r\n\r\n");
    cl_send(d, "POST /partial HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
    assert_true(wait_for(&s->nheld, 2));
    assert_true(wait_for(&s->nreq, 3));
    srv_call(s, do_free, NULL);
    assert_int_equal(atomic_load(&s->ngone), 2); /* /hold and /big */
    assert_true(cl_eof(a));
    assert_true(cl_eof(d));
    cl_free(a);
    cl_free(b);
    cl_free(c);
    cl_free(d);
    srv_stop(s);
}

static void test_add_header_refuses(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *c = cl_new(s->port);
    resp r;
    cl_send(c, "GET /crlf HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(s->crlf_results[0], -1);
    assert_int_equal(s->crlf_results[1], -1);
    assert_int_equal(s->crlf_results[2], -1);
    assert_int_equal(s->crlf_results[3], 0);
    assert_string_equal(rh(&r, "x-good"), "fine");
    assert_null(rh(&r, "injected"));
    assert_null(rh(&r, "x-bad"));
    assert_string_equal(rh(&r, "content-length"), "2");
    resp_free(&r);
    cl_free(c);
    srv_stop(s);
}

/* ---- random requests, random cuts --------------------------------------- */

static unsigned rnd(unsigned *st)
{
    *st = *st * 1103515245u + 12345u;
    return (*st >> 8) & 0xffffff;
}

static void gen_request(unsigned *st, co_buf *req, co_buf *want)
{
    static const char *methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};
    const char *m = methods[rnd(st) % 5];
    char path[64];
    int pl = (int)(rnd(st) % 20) + 1;
    path[0] = '/';
    for (int i = 1; i < pl; i++)
        path[i] = "abcdefghijklmnopqrstuvwxyz0123456789-_./"[rnd(st) % 40];
    path[pl] = '\0';
    co_buf hdrs;
    co_buf_init(&hdrs, CO_BUF_UNLIMITED);
    co_buf_printf(req, "%s %s%s HTTP/1.1\r\n", m, path, rnd(st) % 2 ? "?q=1&r=%20" : "");
    int nh = (int)(rnd(st) % 6);
    const char *xa = NULL;
    char xav[64];
    for (int i = 0; i < nh; i++) {
        char name[32], val[64];
        int nl = (int)(rnd(st) % 10) + 1, vl = (int)(rnd(st) % 30);
        for (int k = 0; k < nl; k++)
            name[k] = "abcdefghijKLMNOPQRST-"[rnd(st) % 21];
        name[nl] = '\0';
        if (rnd(st) % 4 == 0)
            strcpy(name, rnd(st) % 2 ? "X-A" : "x-a");
        for (int k = 0; k < vl; k++)
            val[k] = "abc xyz,;=/0123456789"[rnd(st) % 21];
        val[vl] = '\0';
        const char *v = val;
        size_t n = strlen(v);
        while (n && *v == ' ')
            v++, n--;
        while (n && v[n - 1] == ' ')
            n--;
        co_buf_printf(req, "%s:%s%s%s\r\n", name, rnd(st) % 2 ? " " : "", val, rnd(st) % 3 ? "" : "  ");
        co_buf_printf(&hdrs, "%s=%.*s;", name, (int)n, v);
        if (!xa && strcasecmp(name, "x-a") == 0) {
            snprintf(xav, sizeof xav, "%.*s", (int)n, v);
            xa = xav;
        }
    }
    char body[3000];
    size_t bl = strcmp(m, "GET") == 0 ? 0 : rnd(st) % sizeof body;
    for (size_t k = 0; k < bl; k++)
        body[k] = (char)('A' + rnd(st) % 26);
    int chunked = bl && rnd(st) % 2;
    if (chunked) {
        co_buf_puts(req, "Transfer-Encoding: chunked\r\n\r\n");
        co_buf_puts(&hdrs, "Transfer-Encoding=chunked;");
        size_t off = 0;
        while (off < bl) {
            size_t n = rnd(st) % 700 + 1;
            if (n > bl - off)
                n = bl - off;
            co_buf_printf(req, "%zx%s\r\n", n, rnd(st) % 3 ? "" : ";ext=v");
            co_buf_append(req, body + off, n);
            co_buf_puts(req, "\r\n");
            off += n;
        }
        co_buf_puts(req, rnd(st) % 2 ? "0\r\n\r\n" : "0\r\nX-Trailer: t\r\n\r\n");
    } else if (bl || strcmp(m, "GET") != 0) {
        co_buf_printf(req, "Content-Length: %zu\r\n\r\n", bl);
        co_buf_printf(&hdrs, "Content-Length=%zu;", bl);
        co_buf_append(req, body, bl);
    } else {
        co_buf_puts(req, "\r\n");
    }
    co_buf_printf(want, "M=%s P=%s V=1 A=[%s] H=%s B=%zu:", m, path, xa ? xa : "-", hdrs.p ? hdrs.p : "", bl);
    co_buf_append(want, body, bl);
    co_buf_free(&hdrs);
}

static void test_random_pieces(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    unsigned st = 12345;
    client *c = cl_new(s->port);
    for (int i = 0; i < 200; i++) {
        co_buf req, want;
        co_buf_init(&req, CO_BUF_UNLIMITED);
        co_buf_init(&want, CO_BUF_UNLIMITED);
        gen_request(&st, &req, &want);
        size_t off = 0;
        while (off < req.len) {
            size_t n = rnd(&st) % (rnd(&st) % 2 ? 8 : 400) + 1;
            if (n > req.len - off)
                n = req.len - off;
            assert_int_equal(send_all(c->fd, req.p + off, n), 0);
            off += n;
            if (rnd(&st) % 4 == 0)
                usleep(200);
        }
        resp r;
        assert_int_equal(cl_read(c, &r, 0), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body.len, want.len);
        assert_memory_equal(r.body.p, want.p, want.len);
        resp_free(&r);
        co_buf_free(&req);
        co_buf_free(&want);
    }
    assert_int_equal(srv_conns(s), 1);
    cl_free(c);
    srv_stop(s);
}

/* gw_hreq_target, Content-Length-framed streams and gw_hreq_abort: what
 * cutover sim builds its faults from */
static void test_target_sized_abort(void **state)
{
    (void)state;
    srv *s = srv_start(NULL);
    client *c = cl_new(s->port);
    get_ok(c, "GET /target?key=k%20v&x=1 HTTP/1.1\r\n\r\n", "/target?key=k%20v&x=1");
    resp r;
    cl_send(c, "GET /sized-full HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_string_equal(rh(&r, "content-length"), "10");
    assert_null(rh(&r, "transfer-encoding"));
    assert_string_equal(r.body.p, "helloworld");
    resp_free(&r);
    /* the connection went on: a cut one below */
    cl_send(c, "GET /sized HTTP/1.1\r\n\r\n");
    co_buf raw;
    co_buf_init(&raw, CO_BUF_UNLIMITED);
    for (;;) { /* everything until the server closes */
        char b[4096];
        ssize_t n = recv(c->fd, b, sizeof b, 0);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n >= 0); /* a close, not the 5 s receive timeout */
        if (n == 0)
            break;
        co_buf_append(&raw, b, (size_t)n);
    }
    assert_non_null(strstr(raw.p, "Content-Length: 10\r\n"));
    const char *body = strstr(raw.p, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4, "hello"); /* the bytes queued before the abort arrived */
    co_buf_free(&raw);
    cl_free(c);

    /* a reset: no byte, the connection refused with RST */
    c = cl_new(s->port);
    cl_send(c, "GET /reset HTTP/1.1\r\n\r\n");
    char b[16];
    ssize_t n;
    do
        n = recv(c->fd, b, sizeof b, 0);
    while (n < 0 && errno == EINTR);
    assert_true(n < 0);
    assert_int_equal(errno, ECONNRESET);
    cl_free(c);
    assert_true(wait_for(&s->nreq, 4));
    srv_stop(s);
}

static void test_reason(void **state)
{
    (void)state;
    assert_string_equal(gw_http_reason(200), "OK");
    assert_string_equal(gw_http_reason(404), "Not Found");
    assert_string_equal(gw_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(gw_http_reason(299), "Unknown");
    assert_string_equal(gw_http_reason(529), "Site Overloaded");
}

int main(void)
{
    evthread_use_pthreads();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason),
        cmocka_unit_test(test_get_post),
        cmocka_unit_test(test_chunked_request),
        cmocka_unit_test(test_dribble),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_pipelined_head_deadline),
        cmocka_unit_test(test_keepalive_1000),
        cmocka_unit_test(test_http10),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_413_chunked),
        cmocka_unit_test(test_408_slow_head),
        cmocka_unit_test(test_idle_close),
        cmocka_unit_test(test_accept_emfile),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_drained),
        cmocka_unit_test(test_write_timeout),
        cmocka_unit_test(test_client_gone),
        cmocka_unit_test(test_cork),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_free_in_flight),
        cmocka_unit_test(test_add_header_refuses),
        cmocka_unit_test(test_random_pieces),
        cmocka_unit_test(test_target_sized_abort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
