/* The per-worker upstream HTTP client (see include/cutover/upstream.h).
 *
 * libcurl multi_socket_action on the worker's event_base: curl tells us
 * which sockets to watch (CURLMOPT_SOCKETFUNCTION -> one libevent event per
 * socket, kept in the multi with curl_multi_assign) and when to call it back
 * (CURLMOPT_TIMERFUNCTION -> one libevent timer). When an event fires we
 * hand it to curl_multi_socket_action and then read the finished transfers
 * with curl_multi_info_read.
 *
 * Re-entrancy rules this file keeps:
 *  - libcurl must not be re-entered from its own callbacks (header/write/
 *    socket/timer). `in_curl` counts the calls into libcurl that may run a
 *    transfer's callbacks (socket_action, easy_pause). While it is non-zero,
 *    co_upstream_start, co_upstream_cancel and co_upstream_resume only queue
 *    their work on the transfer (the deferred queue, drained by a libevent
 *    event made active at once); a cancelled transfer's header/write callback
 *    also returns an error so curl ends it in the same call.
 *  - A transfer is completed (removed from the multi, on_done called, freed)
 *    only from our own event-loop callbacks, with in_curl == 0, or from
 *    co_upstream_free: never inside a libcurl callback.
 *  - `depth` counts our event-loop callbacks on the stack; co_upstream_free
 *    called while it is non-zero only marks the client `dying`, and the
 *    outermost callback destroys it as it unwinds. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "cutover/buf.h"
#include "cutover/error.h"
#include "cutover/upstream.h"
#include "cutover/util.h"

#ifndef CO_VERSION
#define CO_VERSION "0"
#endif

#define UP_DEF_MAX_HOST 256
#define UP_DEF_CONNECT_MS 5000
#define UP_DEF_FIRST_BYTE_MS 60000
#define UP_DEF_TIMEOUT_MS 300000
#define UP_DEF_MAX_RESPONSE ((size_t)16 * 1024 * 1024)
#define UP_DEF_MAX_HEADERS ((size_t)64 * 1024)
#define UP_POOL_MAX 64 /* idle easy handles kept for reuse */

typedef struct up_sock {
    struct event ev;
    struct co_upstream *up;
    curl_socket_t fd;
    int added;
    short what; /* the events registered while added */
    struct up_sock *prev, *next;
} up_sock;

struct co_upstream_xfer {
    struct co_upstream *up;
    CURL *easy;
    struct curl_slist *hdrs;
    co_upstream_cb cb;
    void *ud;
    struct co_upstream_xfer *prev, *next;   /* live list */
    struct co_upstream_xfer *qprev, *qnext; /* deferred queue */
    struct event fb_ev;                     /* first-byte timer */
    unsigned fb_armed : 1, in_multi : 1, queued : 1, op_add : 1, op_resume : 1, paused : 1, cancelled : 1,
        done : 1, got_byte : 1, status_sent : 1;
    int err;      /* forced class (cancel, too big, first-byte timeout), 0 = none */
    int status;
    int64_t t_start, t_first;
    int64_t timeout_ms, first_byte_ms;
    size_t max_response;
    uint64_t bytes;
    co_buf body;       /* buffered mode */
    co_buf hbuf;       /* "name\0value\0" pairs of the current header block */
    size_t nh;
    co_upstream_header *harr;
    co_upstream_headers hview;
    char errbuf[CURL_ERROR_SIZE];
    char msg[160];     /* our own error text */
    char data[];       /* the copied request body */
};

typedef struct up_stats {
    atomic_uint_least64_t in_flight, started, completed, connects, reused, bytes_in;
    atomic_uint_least64_t by_err[CO_UPSTREAM_E__COUNT];
} up_stats;

struct co_upstream {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct event *defer;
    up_sock *socks;
    co_upstream_xfer *live;
    co_upstream_xfer *qhead, *qtail;
    CURL *pool[UP_POOL_MAX];
    int npool;
    int in_curl;
    int depth;
    int dying, destroying;
    int http2;
    int64_t connect_ms, first_byte_ms, timeout_ms;
    size_t max_response, max_header_bytes;
    char *proxy, *ca_file, *user_agent;
    up_stats st;
};

static const char *const err_names[CO_UPSTREAM_E__COUNT] = {
    "none",  "connect",   "timeout_connect", "timeout_first_byte", "timeout_total",
    "reset", "truncated", "too_big",         "cancelled",          "other",
};

const char *co_upstream_err_name(int err)
{
    return err >= 0 && err < CO_UPSTREAM_E__COUNT ? err_names[err] : "?";
}

const char *co_upstream_header_get(const co_upstream_headers *h, const char *name)
{
    const char *v = NULL;
    if (!h || !name)
        return NULL;
    for (size_t i = 0; i < h->n; i++)
        if (!strcasecmp(h->v[i].name, name))
            v = h->v[i].value;
    return v;
}

void co_upstream_opts_from_provider(co_upstream_opts *o, const co_provider_conf *p)
{
    if (!o || !p)
        return;
    o->connect_timeout_ms = p->connect_timeout_ms;
    o->first_byte_timeout_ms = p->first_byte_timeout_ms;
    o->timeout_ms = p->timeout_ms;
    if (p->max_connections > 0)
        o->max_host_connections = (long)p->max_connections;
}

void co_upstream_req_timeouts(co_upstream_req *r, const co_provider_conf *p)
{
    if (!r || !p)
        return;
    r->connect_timeout_ms = p->connect_timeout_ms;
    r->first_byte_timeout_ms = p->first_byte_timeout_ms;
    r->timeout_ms = p->timeout_ms;
}

/* ---- counters (one writer: the worker; relaxed) ------------------------- */

static inline void st_add(atomic_uint_least64_t *c, uint64_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d, memory_order_relaxed);
}

static inline void st_sub(atomic_uint_least64_t *c, uint64_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - d, memory_order_relaxed);
}

void co_upstream_stats(const co_upstream *up, co_upstream_counters *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!up)
        return;
    up_stats *s = (up_stats *)&up->st;
    out->in_flight = atomic_load_explicit(&s->in_flight, memory_order_relaxed);
    out->started = atomic_load_explicit(&s->started, memory_order_relaxed);
    out->completed = atomic_load_explicit(&s->completed, memory_order_relaxed);
    out->connects = atomic_load_explicit(&s->connects, memory_order_relaxed);
    out->reused = atomic_load_explicit(&s->reused, memory_order_relaxed);
    out->bytes_in = atomic_load_explicit(&s->bytes_in, memory_order_relaxed);
    for (int i = 0; i < CO_UPSTREAM_E__COUNT; i++)
        out->by_err[i] = atomic_load_explicit(&s->by_err[i], memory_order_relaxed);
}

/* ---- helpers ------------------------------------------------------------ */

static struct timeval ms_tv(int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    return tv;
}

static void queue_push(co_upstream *up, co_upstream_xfer *x)
{
    if (!x->queued) {
        x->queued = 1;
        x->qnext = NULL;
        x->qprev = up->qtail;
        if (up->qtail)
            up->qtail->qnext = x;
        else
            up->qhead = x;
        up->qtail = x;
    }
    event_active(up->defer, 0, 0);
}

static void queue_unlink(co_upstream *up, co_upstream_xfer *x)
{
    if (!x->queued)
        return;
    if (x->qprev)
        x->qprev->qnext = x->qnext;
    else
        up->qhead = x->qnext;
    if (x->qnext)
        x->qnext->qprev = x->qprev;
    else
        up->qtail = x->qprev;
    x->qprev = x->qnext = NULL;
    x->queued = 0;
}

static void live_unlink(co_upstream *up, co_upstream_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        up->live = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

static void easy_release(co_upstream *up, CURL *e)
{
    if (!e)
        return;
    if (up->npool < UP_POOL_MAX && !up->dying) {
        curl_easy_reset(e);
        up->pool[up->npool++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

static void xfer_free(co_upstream *up, co_upstream_xfer *x)
{
    if (x->fb_armed)
        evtimer_del(&x->fb_ev);
    easy_release(up, x->easy);
    curl_slist_free_all(x->hdrs);
    co_buf_free(&x->body);
    co_buf_free(&x->hbuf);
    free(x->harr);
    free(x);
}

/* Maps how curl ended a transfer to our class. */
static int classify(const co_upstream_xfer *x, CURLcode cc, int64_t elapsed_ms)
{
    if (x->err)
        return x->err;
    switch (cc) {
    case CURLE_OK:
        return CO_UPSTREAM_OK;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
        return CO_UPSTREAM_ECONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        /* curl's two timeouts share one code: before any byte and before the
         * total budget ran out, it can only be the connect timeout (the
         * first-byte timeout is ours and never reaches curl) */
        if (!x->got_byte && elapsed_ms + 5 < x->timeout_ms)
            return CO_UPSTREAM_ETIMEOUT_CONNECT;
        return CO_UPSTREAM_ETIMEOUT_TOTAL;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return CO_UPSTREAM_ERESET;
    case CURLE_PARTIAL_FILE:
        return CO_UPSTREAM_ETRUNCATED;
    case CURLE_FILESIZE_EXCEEDED:
        return CO_UPSTREAM_ETOO_BIG;
    case CURLE_ABORTED_BY_CALLBACK:
        return CO_UPSTREAM_ECANCELLED;
    default:
        return CO_UPSTREAM_EOTHER;
    }
}

static int64_t info_us(CURL *e, CURLINFO what)
{
    curl_off_t v = 0;
    if (curl_easy_getinfo(e, what, &v) != CURLE_OK || v <= 0)
        return -1;
    return (int64_t)v;
}

/* Ends a transfer: out of the multi, on_done, freed. Only with in_curl == 0. */
static void xfer_finish(co_upstream *up, co_upstream_xfer *x, int have_cc, CURLcode cc)
{
    if (x->done)
        return;
    x->done = 1;
    queue_unlink(up, x);
    if (x->fb_armed) {
        evtimer_del(&x->fb_ev);
        x->fb_armed = 0;
    }
    if (x->in_multi) {
        curl_multi_remove_handle(up->multi, x->easy);
        x->in_multi = 0;
    }
    live_unlink(up, x);

    int64_t now = co_mono_us();
    co_upstream_result r;
    memset(&r, 0, sizeof r);
    long code = 0, nconn = 0, ver = 0;
    char *ip = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &nconn);
    curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &ver);
    curl_easy_getinfo(x->easy, CURLINFO_PRIMARY_IP, &ip);
    r.status = x->status ? x->status : (int)code;
    r.err = classify(x, have_cc ? cc : CURLE_OK, (now - x->t_start) / 1000);
    r.curl_code = have_cc ? (int)cc : 0;
    if (r.err == CO_UPSTREAM_OK)
        r.error = "";
    else if (x->msg[0])
        r.error = x->msg;
    else if (x->errbuf[0])
        r.error = x->errbuf;
    else
        r.error = have_cc ? curl_easy_strerror(cc) : co_upstream_err_name(r.err);
    r.connect_us = info_us(x->easy, CURLINFO_CONNECT_TIME_T);
    r.ttfb_us = x->got_byte ? x->t_first - x->t_start : -1;
    r.total_us = now - x->t_start;
    r.curl_ttfb_us = info_us(x->easy, CURLINFO_STARTTRANSFER_TIME_T);
    r.curl_total_us = info_us(x->easy, CURLINFO_TOTAL_TIME_T);
    r.bytes = x->bytes;
    r.reused = nconn == 0 && x->got_byte;
    r.http_version = !x->got_byte ? 0 : ver == CURL_HTTP_VERSION_2_0 ? 2 : ver == CURL_HTTP_VERSION_3 ? 3 : 1;
    if (!x->cb.on_data) {
        r.body = x->body.p ? x->body.p : "";
        r.body_len = x->body.len;
    }
    if (!x->status_sent) {
        x->hview.v = NULL;
        x->hview.n = 0;
    }
    r.headers = &x->hview;

    st_sub(&up->st.in_flight, 1);
    st_add(&up->st.completed, 1);
    st_add(&up->st.by_err[r.err], 1);
    st_add(&up->st.connects, (uint64_t)(nconn > 0 ? nconn : 0));
    st_add(&up->st.reused, (uint64_t)r.reused);
    st_add(&up->st.bytes_in, x->bytes);

    if (x->cb.on_done)
        x->cb.on_done(x, x->ud, &r);
    xfer_free(up, x);
}

static void check_multi_info(co_upstream *up)
{
    CURLMsg *m;
    int left;
    while (!up->dying && (m = curl_multi_info_read(up->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode cc = m->data.result; /* m is gone once the handle is removed */
        co_upstream_xfer *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        if (x)
            xfer_finish(up, x, 1, cc);
        else
            curl_multi_remove_handle(up->multi, e);
    }
}

static void destroy(co_upstream *up);

static void leave(co_upstream *up)
{
    if (--up->depth == 0 && up->dying && !up->destroying)
        destroy(up);
}

/* ---- deferred work -------------------------------------------------------- */

static void run_queue(co_upstream *up)
{
    co_upstream_xfer *x;
    while (!up->dying && (x = up->qhead)) {
        queue_unlink(up, x);
        if (x->cancelled) {
            xfer_finish(up, x, 0, CURLE_OK);
            continue;
        }
        if (x->op_add) {
            x->op_add = 0;
            CURLMcode mc = curl_multi_add_handle(up->multi, x->easy);
            if (mc != CURLM_OK) {
                snprintf(x->msg, sizeof x->msg, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
                x->err = CO_UPSTREAM_EOTHER;
                xfer_finish(up, x, 0, CURLE_OK);
                continue;
            }
            x->in_multi = 1;
        }
        if (x->op_resume) {
            x->op_resume = 0;
            if (x->paused && x->in_multi) {
                x->paused = 0;
                up->in_curl++;
                CURLcode cc = curl_easy_pause(x->easy, CURLPAUSE_CONT);
                up->in_curl--;
                if (cc != CURLE_OK && !x->done) {
                    /* the re-offered data was refused (cancel, too big...) */
                    xfer_finish(up, x, 1, cc);
                    continue;
                }
            }
        }
    }
    if (!up->dying)
        check_multi_info(up);
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    co_upstream *up = arg;
    up->depth++;
    run_queue(up);
    leave(up);
}

/* ---- libcurl <-> libevent --------------------------------------------------- */

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    up_sock *sk = arg;
    co_upstream *up = sk->up; /* sk may be freed by socket_action */
    int flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;
    up->depth++;
    up->in_curl++;
    curl_multi_socket_action(up->multi, fd, flags, &running);
    up->in_curl--;
    check_multi_info(up);
    leave(up);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    co_upstream *up = arg;
    int running = 0;
    up->depth++;
    up->in_curl++;
    curl_multi_socket_action(up->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    up->in_curl--;
    check_multi_info(up);
    leave(up);
}

static void sock_free(co_upstream *up, up_sock *sk)
{
    if (sk->added)
        event_del(&sk->ev);
    if (sk->prev)
        sk->prev->next = sk->next;
    else
        up->socks = sk->next;
    if (sk->next)
        sk->next->prev = sk->prev;
    free(sk);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    co_upstream *up = userp;
    up_sock *sk = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sk)
            sock_free(up, sk); /* curl forgets the socket's pointer itself */
        return 0;
    }
    if (!sk) {
        sk = calloc(1, sizeof *sk);
        if (!sk)
            return -1;
        sk->up = up;
        sk->fd = s;
        sk->next = up->socks;
        if (up->socks)
            up->socks->prev = sk;
        up->socks = sk;
        curl_multi_assign(up->multi, s, sk);
    }
    short ev = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (sk->added && sk->what == ev)
        return 0; /* already watched for exactly these events: no epoll_ctl round trip */
    if (sk->added) {
        event_del(&sk->ev);
        sk->added = 0;
    }
    if (event_assign(&sk->ev, up->base, s, ev, on_sock_event, sk) || event_add(&sk->ev, NULL))
        return -1;
    sk->added = 1;
    sk->what = ev;
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    co_upstream *up = userp;
    if (timeout_ms < 0) {
        evtimer_del(up->timer);
        return 0;
    }
    struct timeval tv = ms_tv(timeout_ms);
    return evtimer_add(up->timer, &tv) ? -1 : 0;
}

/* ---- transfer callbacks (inside libcurl: never complete or free here) ------ */

static void on_first_byte_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    co_upstream_xfer *x = arg;
    co_upstream *up = x->up;
    x->fb_armed = 0;
    if (x->done || x->got_byte)
        return;
    up->depth++;
    x->err = CO_UPSTREAM_ETIMEOUT_FIRST_BYTE;
    snprintf(x->msg, sizeof x->msg, "no response byte within %lld ms", (long long)x->first_byte_ms);
    xfer_finish(up, x, 0, CURLE_OK);
    leave(up);
}

static void first_byte(co_upstream_xfer *x)
{
    if (x->got_byte)
        return;
    x->got_byte = 1;
    x->t_first = co_mono_us();
    if (x->fb_armed) {
        evtimer_del(&x->fb_ev);
        x->fb_armed = 0;
    }
}

static int too_big(co_upstream_xfer *x, const char *what, size_t limit)
{
    x->err = CO_UPSTREAM_ETOO_BIG;
    snprintf(x->msg, sizeof x->msg, "response %s over the limit of %zu bytes", what, limit);
    return 0;
}

static int add_header_line(co_upstream_xfer *x, const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return 0; /* not a header (folded or malformed line): skipped */
    const char *ne = colon;
    while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t'))
        ne--;
    const char *v = colon + 1, *ve = p + n;
    while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    size_t nl = (size_t)(ne - p), vl = (size_t)(ve - v);
    co_buf *b = &x->hbuf;
    if (nl + vl + 2 > b->max || b->len > b->max - (nl + vl + 2))
        return CO_ETOOBIG;
    int rc;
    if ((rc = co_buf_append(b, p, nl)) || (rc = co_buf_append(b, "", 1)) || (rc = co_buf_append(b, v, vl)) ||
        (rc = co_buf_append(b, "", 1)))
        return rc;
    x->nh++;
    return 0;
}

static int build_header_view(co_upstream_xfer *x)
{
    free(x->harr);
    x->harr = NULL;
    x->hview.v = NULL;
    x->hview.n = 0;
    if (!x->nh)
        return 0;
    x->harr = malloc(x->nh * sizeof *x->harr);
    if (!x->harr)
        return CO_ENOMEM;
    const char *p = x->hbuf.p;
    for (size_t i = 0; i < x->nh; i++) {
        x->harr[i].name = p;
        p += strlen(p) + 1;
        x->harr[i].value = p;
        p += strlen(p) + 1;
    }
    x->hview.v = x->harr;
    x->hview.n = x->nh;
    return 0;
}

static size_t on_header(char *p, size_t size, size_t nitems, void *ud)
{
    co_upstream_xfer *x = ud;
    size_t n = size * nitems;
    if (x->cancelled || x->err)
        return 0;
    first_byte(x);
    if (x->status_sent)
        return n; /* trailers */
    size_t len = n;
    while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
        len--;
    if (len >= 5 && !memcmp(p, "HTTP/", 5)) {
        /* a new response (after a 1xx): start the block afresh */
        co_buf_reset(&x->hbuf);
        x->nh = 0;
        return n;
    }
    if (len > 0) {
        int rc = add_header_line(x, p, len);
        if (rc == CO_ETOOBIG)
            return (size_t)too_big(x, "headers", x->hbuf.max);
        if (rc) {
            x->err = CO_UPSTREAM_EOTHER;
            snprintf(x->msg, sizeof x->msg, "out of memory reading headers");
            return 0;
        }
        return n;
    }
    /* the blank line: end of a header block */
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 100 && code < 200) {
        co_buf_reset(&x->hbuf);
        x->nh = 0;
        return n;
    }
    x->status = (int)code;
    x->status_sent = 1;
    if (build_header_view(x)) {
        x->err = CO_UPSTREAM_EOTHER;
        snprintf(x->msg, sizeof x->msg, "out of memory reading headers");
        return 0;
    }
    if (x->cb.on_status) {
        int rc = x->cb.on_status(x, x->ud, x->status, &x->hview);
        if (x->cancelled)
            return 0;
        if (rc != CO_UPSTREAM_CONTINUE) {
            x->cancelled = 1;
            x->err = CO_UPSTREAM_ECANCELLED;
            snprintf(x->msg, sizeof x->msg, "aborted by on_status");
            return 0;
        }
    }
    return n;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    co_upstream_xfer *x = ud;
    size_t n = size * nmemb;
    if (x->cancelled || x->err)
        return 0;
    first_byte(x);
    if (n > x->max_response || x->bytes > x->max_response - n)
        return (size_t)too_big(x, "body", x->max_response);
    if (x->cb.on_data) {
        int rc = x->cb.on_data(x, x->ud, p, n);
        if (x->cancelled)
            return 0;
        if (rc == CO_UPSTREAM_PAUSE) {
            x->paused = 1;
            return CURL_WRITEFUNC_PAUSE;
        }
        if (rc != CO_UPSTREAM_CONTINUE) {
            x->cancelled = 1;
            x->err = CO_UPSTREAM_ECANCELLED;
            snprintf(x->msg, sizeof x->msg, "aborted by on_data");
            return 0;
        }
    } else if (co_buf_append(&x->body, p, n)) {
        x->err = CO_UPSTREAM_EOTHER;
        snprintf(x->msg, sizeof x->msg, "out of memory buffering the response");
        return 0;
    }
    x->bytes += n;
    return n;
}

/* ---- public API ------------------------------------------------------------- */

static char *dup_opt(const char *s, int *rc)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *rc = CO_ENOMEM;
    return d;
}

int co_upstream_new(co_upstream **out, struct event_base *base, const co_upstream_opts *opts)
{
    int rc = 0;
    co_upstream *up = NULL;
    co_upstream_opts def;
    if (!out || !base)
        return co_error_set(CO_EINVAL, "co_upstream_new: out and base are required");
    *out = NULL;
    if (!opts) {
        memset(&def, 0, sizeof def);
        opts = &def;
    }
    if (opts->max_host_connections < 0 || opts->max_total_connections < 0 || opts->max_cached_connections < 0 ||
        opts->connect_timeout_ms < 0 || opts->first_byte_timeout_ms < 0 || opts->timeout_ms < 0) {
        rc = co_error_set(CO_EINVAL, "co_upstream_new: negative limit or timeout");
        goto done;
    }
    up = calloc(1, sizeof *up);
    if (!up) {
        rc = co_error_set(CO_ENOMEM, "out of memory creating the upstream client");
        goto done;
    }
    up->base = base;
    up->connect_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : UP_DEF_CONNECT_MS;
    up->first_byte_ms = opts->first_byte_timeout_ms ? opts->first_byte_timeout_ms : UP_DEF_FIRST_BYTE_MS;
    up->timeout_ms = opts->timeout_ms ? opts->timeout_ms : UP_DEF_TIMEOUT_MS;
    up->max_response = opts->max_response ? opts->max_response : UP_DEF_MAX_RESPONSE;
    up->max_header_bytes = opts->max_header_bytes ? opts->max_header_bytes : UP_DEF_MAX_HEADERS;
    up->proxy = dup_opt(opts->proxy, &rc);
    up->ca_file = dup_opt(opts->ca_file, &rc);
    up->user_agent = dup_opt(opts->user_agent ? opts->user_agent : "cutover/" CO_VERSION, &rc);
    if (rc) {
        rc = co_error_set(CO_ENOMEM, "out of memory creating the upstream client");
        goto done;
    }
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    up->http2 = !opts->http1_only && vi && (vi->features & CURL_VERSION_HTTP2);

    up->timer = evtimer_new(base, on_timer, up);
    up->defer = event_new(base, -1, 0, on_defer, up);
    if (!up->timer || !up->defer) {
        rc = co_error_set(CO_ENOMEM, "out of memory creating the upstream client's events");
        goto done;
    }
    up->multi = curl_multi_init();
    if (!up->multi) {
        rc = co_error_set(CO_EIO, "curl_multi_init failed (was curl_global_init called?)");
        goto done;
    }
    long max_host = opts->max_host_connections ? opts->max_host_connections : UP_DEF_MAX_HOST;
    long max_cached = opts->max_cached_connections ? opts->max_cached_connections : 4 * max_host;
    CURLMcode mc = CURLM_OK;
    if ((mc = curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, sock_cb)) ||
        (mc = curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up)) ||
        (mc = curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, timer_cb)) ||
        (mc = curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up)) ||
        (mc = curl_multi_setopt(up->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host)) ||
        (mc = curl_multi_setopt(up->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, opts->max_total_connections)) ||
        (mc = curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, max_cached)) ||
        (mc = curl_multi_setopt(up->multi, CURLMOPT_PIPELINING, up->http2 ? CURLPIPE_MULTIPLEX : CURLPIPE_NOTHING))) {
        rc = co_error_set(CO_EIO, "curl_multi_setopt: %s", curl_multi_strerror(mc));
        goto done;
    }
    *out = up;
    up = NULL;
done:
    if (up) {
        if (up->multi)
            curl_multi_cleanup(up->multi);
        if (up->timer)
            event_free(up->timer);
        if (up->defer)
            event_free(up->defer);
        free(up->proxy);
        free(up->ca_file);
        free(up->user_agent);
        free(up);
    }
    return rc;
}

static void destroy(co_upstream *up)
{
    up->dying = 1;
    up->destroying = 1;
    up->depth++; /* callbacks below may call co_upstream_free again: ignored */
    co_upstream_xfer *x;
    while ((x = up->live)) {
        x->cancelled = 1;
        if (!x->err)
            x->err = CO_UPSTREAM_ECANCELLED;
        if (!x->msg[0] && x->err == CO_UPSTREAM_ECANCELLED)
            snprintf(x->msg, sizeof x->msg, "cancelled: the upstream client is shutting down");
        xfer_finish(up, x, 0, CURLE_OK);
    }
    curl_multi_cleanup(up->multi);
    while (up->socks)
        sock_free(up, up->socks);
    for (int i = 0; i < up->npool; i++)
        curl_easy_cleanup(up->pool[i]);
    event_free(up->timer);
    event_free(up->defer);
    free(up->proxy);
    free(up->ca_file);
    free(up->user_agent);
    free(up);
}

void co_upstream_free(co_upstream *up)
{
    if (!up || up->destroying)
        return;
    if (up->depth > 0) {
        up->dying = 1; /* destroyed when the current event-loop callback unwinds */
        return;
    }
    destroy(up);
}

static int has_header(const char *const *h, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; h && h[i]; i++)
        if (!strncasecmp(h[i], name, n) && h[i][n] == ':')
            return 1;
    return 0;
}

#define SETOPT(opt, val)                                                                                  \
    do {                                                                                                  \
        CURLcode cc_ = curl_easy_setopt(e, opt, val);                                                     \
        if (cc_ != CURLE_OK) {                                                                            \
            rc = co_error_set(cc_ == CURLE_OUT_OF_MEMORY ? CO_ENOMEM : CO_EIO, "curl_easy_setopt(%s): %s", \
                              #opt, curl_easy_strerror(cc_));                                             \
            goto done;                                                                                    \
        }                                                                                                 \
    } while (0)

int co_upstream_start(co_upstream *up, const co_upstream_req *req, const co_upstream_cb *cbs, void *ud,
                      co_upstream_xfer **out)
{
    int rc = 0;
    co_upstream_xfer *x = NULL;
    if (out)
        *out = NULL;
    if (!up || !req || !cbs || !req->url || !req->url[0])
        return co_error_set(CO_EINVAL, "co_upstream_start: client, request, URL and callbacks are required");
    if (!cbs->on_done && !cbs->on_data)
        return co_error_set(CO_EINVAL, "co_upstream_start: on_done or on_data is required");
    if (req->method != CO_UPSTREAM_POST && req->method != CO_UPSTREAM_GET)
        return co_error_set(CO_EINVAL, "co_upstream_start: unknown method %d", req->method);
    if (req->body_len && !req->body)
        return co_error_set(CO_EINVAL, "co_upstream_start: body_len without a body");
    if (req->connect_timeout_ms < 0 || req->first_byte_timeout_ms < 0 || req->timeout_ms < 0)
        return co_error_set(CO_EINVAL, "co_upstream_start: negative timeout");
    if (up->dying)
        return co_error_set(CO_ESTATE, "co_upstream_start: the upstream client is being freed");

    int post = req->method == CO_UPSTREAM_POST;
    size_t copy = post && !req->borrow_body ? req->body_len : 0;
    x = calloc(1, sizeof *x + copy + 1);
    if (!x)
        return co_error_set(CO_ENOMEM, "out of memory starting an upstream transfer");
    x->up = up;
    x->cb = *cbs;
    x->ud = ud;
    x->t_start = co_mono_us();
    x->timeout_ms = req->timeout_ms ? req->timeout_ms : up->timeout_ms;
    x->first_byte_ms = req->first_byte_timeout_ms ? req->first_byte_timeout_ms : up->first_byte_ms;
    int64_t connect_ms = req->connect_timeout_ms ? req->connect_timeout_ms : up->connect_ms;
    x->max_response = req->max_response ? req->max_response : up->max_response;
    co_buf_init(&x->body, x->max_response);
    co_buf_init(&x->hbuf, up->max_header_bytes);
    const char *body = "";
    if (post && req->body_len) {
        if (copy) {
            memcpy(x->data, req->body, copy);
            body = x->data;
        } else {
            body = req->body;
        }
    }

    CURL *e = up->npool ? up->pool[--up->npool] : curl_easy_init();
    if (!e) {
        rc = co_error_set(CO_ENOMEM, "curl_easy_init failed");
        goto done;
    }
    x->easy = e;
    for (size_t i = 0; req->headers && req->headers[i]; i++) {
        struct curl_slist *l = curl_slist_append(x->hdrs, req->headers[i]);
        if (!l) {
            rc = co_error_set(CO_ENOMEM, "out of memory copying request headers");
            goto done;
        }
        x->hdrs = l;
    }
    static const char *const extra[] = {"Expect:", "Content-Type: application/json"};
    for (int i = 0; i < 2; i++) {
        if (i == 1 && (!post || has_header(req->headers, "content-type")))
            continue;
        struct curl_slist *l = curl_slist_append(x->hdrs, extra[i]);
        if (!l) {
            rc = co_error_set(CO_ENOMEM, "out of memory copying request headers");
            goto done;
        }
        x->hdrs = l;
    }

    SETOPT(CURLOPT_URL, req->url);
    SETOPT(CURLOPT_PRIVATE, (void *)x);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_TCP_NODELAY, 1L);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_TCP_KEEPIDLE, 30L);
    SETOPT(CURLOPT_TCP_KEEPINTVL, 15L);
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_PROXY, up->proxy ? up->proxy : ""); /* "": no proxy, environment ignored */
    SETOPT(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    if (up->ca_file)
        SETOPT(CURLOPT_CAINFO, up->ca_file);
    SETOPT(CURLOPT_USERAGENT, up->user_agent);
    if (up->http2) {
        SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        if (!strncasecmp(req->url, "https:", 6))
            SETOPT(CURLOPT_PIPEWAIT, 1L); /* multiplex on the connection being opened */
    } else {
        SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    }
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)x->timeout_ms);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_response);
    SETOPT(CURLOPT_HTTPHEADER, x->hdrs);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, (void *)x);
    SETOPT(CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(CURLOPT_WRITEDATA, (void *)x);
    SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
    if (post) {
        SETOPT(CURLOPT_POST, 1L);
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SETOPT(CURLOPT_POSTFIELDS, body);
    } else {
        SETOPT(CURLOPT_HTTPGET, 1L);
    }

    evtimer_assign(&x->fb_ev, up->base, on_first_byte_timeout, x);
    if (up->in_curl) {
        /* inside a libcurl callback: the multi takes it once that returns */
        x->op_add = 1;
        queue_push(up, x);
    } else {
        CURLMcode mc = curl_multi_add_handle(up->multi, e);
        if (mc != CURLM_OK) {
            rc = co_error_set(mc == CURLM_OUT_OF_MEMORY ? CO_ENOMEM : CO_EIO, "curl_multi_add_handle: %s",
                              curl_multi_strerror(mc));
            goto done;
        }
        x->in_multi = 1;
    }
    struct timeval tv = ms_tv(x->first_byte_ms);
    evtimer_add(&x->fb_ev, &tv);
    x->fb_armed = 1;
    x->next = up->live;
    if (up->live)
        up->live->prev = x;
    up->live = x;
    st_add(&up->st.started, 1);
    st_add(&up->st.in_flight, 1);
    if (out)
        *out = x;
    x = NULL;
done:
    if (x) {
        queue_unlink(up, x);
        xfer_free(up, x);
    }
    return rc;
}

void co_upstream_cancel(co_upstream_xfer *x)
{
    if (!x || x->done || x->cancelled)
        return;
    x->cancelled = 1;
    if (!x->err)
        x->err = CO_UPSTREAM_ECANCELLED;
    if (!x->msg[0] && x->err == CO_UPSTREAM_ECANCELLED)
        snprintf(x->msg, sizeof x->msg, "cancelled");
    if (x->fb_armed) {
        evtimer_del(&x->fb_ev);
        x->fb_armed = 0;
    }
    queue_push(x->up, x);
}

void co_upstream_resume(co_upstream_xfer *x)
{
    /* not checking `paused`: the on_data running now may be about to return
     * PAUSE; the queue is drained after it returned */
    if (!x || x->done || x->cancelled)
        return;
    x->op_resume = 1;
    queue_push(x->up, x);
}
