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
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

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

typedef struct h1_host h1_host;
typedef struct h1_conn h1_conn;

struct co_upstream_xfer {
    struct co_upstream *up;
    CURL *easy;         /* NULL on the native path */
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
    /* the native HTTP/1.1 path (h1_*) */
    unsigned native : 1, waiting : 1, hdr_done : 1, conn_close : 1, tt_armed : 1, fresh : 1;
    int retries;            /* re-sent after a kept-alive connection turned out closed */
    int bstate;             /* H1_* */
    uint64_t left;          /* Content-Length or chunk bytes still to come */
    h1_host *h1h;
    h1_conn *h1c;           /* the connection carrying it */
    co_upstream_xfer *wnext; /* host's queue of transfers waiting for a connection */
    co_buf head;            /* request line and headers */
    const char *rbody;
    size_t rbody_len, wpos;
    int64_t t_conn;         /* start to connected, us */
    int64_t connect_ms;
    struct event tt_ev;     /* the total timeout (curl keeps its own) */
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
    int curl_only;
    int in_start; /* inside co_upstream_start: native failures end from the event loop */
    long max_host, max_total, max_cached;
    h1_host *hosts;
    long h1_conns;
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
    if (x->tt_armed)
        evtimer_del(&x->tt_ev);
    co_buf_free(&x->head);
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

static void h1_detach(co_upstream *up, co_upstream_xfer *x);
static void h1_resume(co_upstream *up, co_upstream_xfer *x);
static void h1_destroy(co_upstream *up);

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
    if (x->tt_armed) {
        evtimer_del(&x->tt_ev);
        x->tt_armed = 0;
    }
    if (x->native)
        h1_detach(up, x);
    if (x->in_multi) {
        curl_multi_remove_handle(up->multi, x->easy);
        x->in_multi = 0;
    }
    live_unlink(up, x);

    int64_t now = co_mono_us();
    co_upstream_result r;
    memset(&r, 0, sizeof r);
    long code = 0, nconn = 0, ver = 0;
    if (x->easy) {
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &nconn);
        curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &ver);
    } else {
        nconn = x->fresh;
        ver = CURL_HTTP_VERSION_1_1;
    }
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
    r.ttfb_us = x->got_byte ? x->t_first - x->t_start : -1;
    r.total_us = now - x->t_start;
    if (x->easy) {
        r.connect_us = info_us(x->easy, CURLINFO_CONNECT_TIME_T);
        r.curl_ttfb_us = info_us(x->easy, CURLINFO_STARTTRANSFER_TIME_T);
        r.curl_total_us = info_us(x->easy, CURLINFO_TOTAL_TIME_T);
    } else {
        r.connect_us = x->t_conn > 0 ? x->t_conn : -1;
        r.curl_ttfb_us = r.ttfb_us;
        r.curl_total_us = r.total_us;
    }
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
            if (x->paused && x->native) {
                x->paused = 0;
                h1_resume(up, x); /* may end x */
                continue;
            }
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
    up->max_host = max_host;
    up->max_total = opts->max_total_connections;
    up->max_cached = max_cached;
    up->curl_only = opts->curl_only;
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
    h1_destroy(up);
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

/* ---- the native HTTP/1.1 path ------------------------------------------------
 * Plain http:// to an IP literal or localhost with no proxy: how a self-hosted
 * model server (vLLM, llama.cpp, Ollama, a sidecar) is usually reached, and
 * the case where libcurl's per-transfer work (two dozen options set, a poll()
 * to check every reused connection, socket interest registered anew for each
 * transfer) costs more than the proxying itself. Here a connection keeps one
 * read event for its whole life, a request leaves in one writev() and a
 * response is parsed straight out of the read buffer. https, names that need
 * resolving, proxies and HTTP/2 go through libcurl. Same callbacks, error
 * classes, timeouts and limits as the libcurl path; the unit tests run every
 * case through both. */

enum { H1_HEAD, H1_CL, H1_CHUNK_SIZE, H1_CHUNK_DATA, H1_CHUNK_CRLF, H1_TRAILER, H1_EOF_BODY };

#define H1_IN_MIN 16384
#define H1_MAX_RETRIES 3

struct h1_host {
    h1_host *next;
    char authority[264];   /* host[:port] as the URL wrote it: the Host header */
    struct sockaddr_storage sa;
    socklen_t salen;
    h1_conn *conns;         /* every open connection */
    h1_conn *idle;          /* the idle ones, most recently used first */
    long nconns, nidle;
    co_upstream_xfer *wq, *wq_tail; /* waiting for a connection */
};

struct h1_conn {
    co_upstream *up;
    h1_host *h;
    int fd;
    struct event rev, wev, cev; /* readable (whole life), writable, connect timeout */
    unsigned rev_on : 1, wev_on : 1, cev_on : 1, connecting : 1, used : 1;
    co_upstream_xfer *x;
    h1_conn *prev, *next;   /* h->conns */
    h1_conn *iprev, *inext; /* h->idle */
    char *in;
    size_t cap, r, w;       /* unread input is in[r, w) */
};

static void h1_idle_unlink(h1_conn *c)
{
    h1_host *h = c->h;
    if (c->iprev)
        c->iprev->inext = c->inext;
    else if (h->idle == c)
        h->idle = c->inext;
    else
        return; /* not idle */
    if (c->inext)
        c->inext->iprev = c->iprev;
    c->iprev = c->inext = NULL;
    h->nidle--;
}

static void h1_close(h1_conn *c)
{
    co_upstream *up = c->up;
    h1_host *h = c->h;
    h1_idle_unlink(c);
    if (c->rev_on)
        event_del(&c->rev);
    if (c->wev_on)
        event_del(&c->wev);
    if (c->cev_on)
        evtimer_del(&c->cev);
    if (c->fd >= 0)
        close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    up->h1_conns--;
    free(c->in);
    free(c);
}

/* "http://host[:port][/path]" with host an IPv4/IPv6 literal or localhost:
 * the host entry and the path; NULL when libcurl should take the URL. */
static h1_host *h1_host_for(co_upstream *up, const char *url, const char **path)
{
    if (strncasecmp(url, "http://", 7))
        return NULL;
    const char *a = url + 7, *ae = a + strcspn(a, "/?#");
    size_t alen = (size_t)(ae - a);
    if (!alen || alen >= sizeof up->hosts->authority || memchr(a, '@', alen))
        return NULL;
    *path = *ae == '/' ? ae : NULL;
    if (*ae && *ae != '/')
        return NULL; /* "?query" without a path: rare, curl's job */
    for (h1_host *h = up->hosts; h; h = h->next)
        if (strlen(h->authority) == alen && !memcmp(h->authority, a, alen))
            return h;
    char host[256];
    const char *hs = a, *he, *pp;
    if (*a == '[') {
        he = memchr(a, ']', alen);
        if (!he)
            return NULL;
        hs = a + 1;
        pp = he + 1;
    } else {
        he = memchr(a, ':', alen) ? memchr(a, ':', alen) : ae;
        pp = he;
    }
    if ((size_t)(he - hs) >= sizeof host || he == hs)
        return NULL;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    long port = 80;
    if (pp < ae) {
        if (*pp != ':' || pp + 1 == ae)
            return NULL;
        port = 0;
        for (const char *q = pp + 1; q < ae; q++) {
            if (*q < '0' || *q > '9' || port > 65535)
                return NULL;
            port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535)
            return NULL;
    }
    h1_host *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&h->sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&h->sa;
    if (!strcasecmp(host, "localhost") || inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        if (!strcasecmp(host, "localhost"))
            v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        h->salen = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        h->salen = sizeof *v6;
    } else {
        free(h);
        return NULL; /* a name to resolve */
    }
    memcpy(h->authority, a, alen);
    h->authority[alen] = '\0';
    h->next = up->hosts;
    up->hosts = h;
    return h;
}

/* The request line and headers, as libcurl would send them. */
static int h1_build_head(co_upstream *up, co_upstream_xfer *x, h1_host *h, const char *path, int post,
                         const char *const *hdrs)
{
    co_buf *b = &x->head;
    size_t plen = path ? strcspn(path, "#") : 0;
    int rc;
    if ((rc = co_buf_puts(b, post ? "POST " : "GET ")) || (rc = co_buf_append(b, plen ? path : "/", plen ? plen : 1)) ||
        (rc = co_buf_puts(b, " HTTP/1.1\r\nHost: ")) || (rc = co_buf_puts(b, h->authority)) ||
        (rc = co_buf_puts(b, "\r\nUser-Agent: ")) || (rc = co_buf_puts(b, up->user_agent)) ||
        (rc = co_buf_puts(b, "\r\nAccept: */*\r\n")))
        return rc;
    for (size_t i = 0; hdrs && hdrs[i]; i++) {
        const char *c = strchr(hdrs[i], ':');
        if (!c) {
            continue;
        }
        const char *v = c + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (!*v)
            continue; /* "Name:" asks curl to leave a header out: nothing to send */
        if ((rc = co_buf_puts(b, hdrs[i])) || (rc = co_buf_append(b, "\r\n", 2)))
            return rc;
    }
    if (post && !has_header(hdrs, "content-type") && (rc = co_buf_puts(b, "Content-Type: application/json\r\n")))
        return rc;
    if (post) { /* a decimal by hand: printf's machinery costs more than the rest of the head */
        char cl[48] = "Content-Length: ";
        char digits[24];
        size_t k = 0, n = 16;
        size_t v = x->rbody_len;
        do {
            digits[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        while (k)
            cl[n++] = digits[--k];
        cl[n++] = '\r';
        cl[n++] = '\n';
        if ((rc = co_buf_append(b, cl, n)))
            return rc;
    }
    return co_buf_append(b, "\r\n", 2);
}

/* tok (lower case) appears in v[0, n), any case */
static int h1_has_token(const char *v, size_t n, const char *tok)
{
    size_t k = strlen(tok);
    for (size_t i = 0; i + k <= n; i++)
        if (!strncasecmp(v + i, tok, k))
            return 1;
    return 0;
}

static void h1_fail(co_upstream_xfer *x, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void h1_fail(co_upstream_xfer *x, int err, const char *fmt, ...)
{
    if (!x->err)
        x->err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->msg, sizeof x->msg, fmt, ap);
    va_end(ap);
    if (x->up->in_start) {
        x->cancelled = 1; /* ended from the event loop, never inside co_upstream_start */
        queue_push(x->up, x);
        return;
    }
    xfer_finish(x->up, x, 0, CURLE_OK);
}

static void h1_dispatch(co_upstream *up, co_upstream_xfer *x);
static void h1_kick(co_upstream *up, h1_host *h);
static int h1_process(h1_conn *c);

/* The connection was lost before the transfer had a byte of its answer: on a
 * kept-alive connection the upstream may have closed it just as we reused it,
 * so the request goes again on another one (as libcurl does). 1 when re-sent. */
static int h1_retry(h1_conn *c, co_upstream_xfer *x)
{
    if (!c->used || x->got_byte || x->retries >= H1_MAX_RETRIES)
        return 0;
    co_upstream *up = c->up;
    h1_host *h = c->h;
    c->x = NULL;
    x->h1c = NULL;
    x->retries++;
    x->wpos = 0;
    h1_close(c);
    h1_dispatch(up, x);
    h1_kick(up, h);
    return 1;
}

static void h1_watch_write(h1_conn *c, int on)
{
    if (on && !c->wev_on) {
        event_add(&c->wev, NULL);
        c->wev_on = 1;
    } else if (!on && c->wev_on) {
        event_del(&c->wev);
        c->wev_on = 0;
    }
}

/* Sends what is left of the request. */
static void h1_send(h1_conn *c)
{
    co_upstream_xfer *x = c->x;
    size_t hl = x->head.len, total = hl + x->rbody_len;
    while (x->wpos < total) {
        struct iovec iov[2];
        int n = 0;
        if (x->wpos < hl)
            iov[n++] = (struct iovec){x->head.p + x->wpos, hl - x->wpos};
        if (x->rbody_len) {
            size_t off = x->wpos > hl ? x->wpos - hl : 0;
            iov[n++] = (struct iovec){(void *)(x->rbody + off), x->rbody_len - off};
        }
        ssize_t k = writev(c->fd, iov, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                h1_watch_write(c, 1);
                return;
            }
            int e = errno;
            if (h1_retry(c, x))
                return;
            h1_fail(x, CO_UPSTREAM_ERESET, "sending the request to %s failed: %s", c->h->authority, strerror(e));
            return;
        }
        x->wpos += (size_t)k;
    }
    h1_watch_write(c, 0);
}

static void h1_on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    h1_conn *c = arg;
    co_upstream *up = c->up;
    c->cev_on = 0;
    up->depth++;
    co_upstream_xfer *x = c->x;
    if (x)
        h1_fail(x, CO_UPSTREAM_ETIMEOUT_CONNECT, "no connection to %s within %lld ms", c->h->authority,
                (long long)x->connect_ms);
    else
        h1_close(c);
    leave(up);
}

static void h1_connected(h1_conn *c)
{
    c->connecting = 0;
    if (c->cev_on) {
        evtimer_del(&c->cev);
        c->cev_on = 0;
    }
    if (c->x)
        c->x->t_conn = co_mono_us() - c->x->t_start;
}

/* A connect in progress reported back: 0 connected, -1 failed (the transfer
 * ended, the connection closed). */
static int h1_connect_result(h1_conn *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    if (!err) {
        h1_connected(c);
        return 0;
    }
    if (c->x)
        h1_fail(c->x, CO_UPSTREAM_ECONNECT, "connect to %s failed: %s", c->h->authority, strerror(err));
    else
        h1_close(c);
    return -1;
}

static void h1_on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    h1_conn *c = arg;
    co_upstream *up = c->up;
    up->depth++;
    if (c->connecting && h1_connect_result(c) < 0) {
        leave(up);
        return;
    }
    if (c->x)
        h1_send(c);
    else
        h1_watch_write(c, 0);
    leave(up);
}

/* Hands body bytes to the transfer. 0: taken; 1: paused (not taken); -1: the
 * transfer ended (c may be gone). */
static int h1_deliver(h1_conn *c, const char *p, size_t n)
{
    co_upstream_xfer *x = c->x;
    if (!n)
        return 0;
    if (n > x->max_response || x->bytes > x->max_response - n) {
        too_big(x, "body", x->max_response);
        h1_fail(x, CO_UPSTREAM_ETOO_BIG, "%s", x->msg);
        return -1;
    }
    if (x->cb.on_data) {
        int rc = x->cb.on_data(x, x->ud, p, n);
        if (x->cancelled || x->done)
            return -1; /* the queued cancel ends it */
        if (rc == CO_UPSTREAM_PAUSE) {
            x->paused = 1;
            if (c->rev_on) {
                event_del(&c->rev); /* the kernel's buffer fills: the upstream slows down */
                c->rev_on = 0;
            }
            return 1;
        }
        if (rc != CO_UPSTREAM_CONTINUE) {
            x->cancelled = 1;
            h1_fail(x, CO_UPSTREAM_ECANCELLED, "aborted by on_data");
            return -1;
        }
    } else if (co_buf_append(&x->body, p, n)) {
        h1_fail(x, CO_UPSTREAM_EOTHER, "out of memory buffering the response");
        return -1;
    }
    x->bytes += n;
    return 0;
}

/* The response is whole: the connection goes back to the pool (or is closed),
 * then the transfer ends. */
static void h1_complete(h1_conn *c)
{
    co_upstream *up = c->up;
    co_upstream_xfer *x = c->x;
    h1_host *h = c->h;
    c->x = NULL;
    x->h1c = NULL;
    c->used = 1;
    /* an answer that came before the whole request went out (an early 413,
     * say) leaves the rest of the request unsent: the connection is done */
    if (x->wpos < x->head.len + x->rbody_len)
        x->conn_close = 1;
    if (x->conn_close || c->r != c->w || up->dying || h->nidle >= up->max_cached) {
        h1_close(c);
    } else {
        c->r = c->w = 0;
        c->inext = h->idle;
        if (h->idle)
            h->idle->iprev = c;
        h->idle = c;
        h->nidle++;
    }
    h1_kick(up, h);
    xfer_finish(up, x, 0, CURLE_OK);
}

/* Parses the status line and headers in in[r, end). 0 ok, -1 the transfer ended. */
static int h1_head(h1_conn *c, size_t end)
{
    co_upstream_xfer *x = c->x;
    const char *p = c->in + c->r, *e = c->in + end;
    const char *le = memchr(p, '\n', (size_t)(e - p));
    int minor = 1, code = 0;
    if (!le || e - p < 12 || memcmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
        p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9') {
        h1_fail(x, CO_UPSTREAM_EOTHER, "%s sent something other than an HTTP/1.x response", c->h->authority);
        return -1;
    }
    minor = p[7] - '0';
    code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    co_buf_reset(&x->hbuf);
    x->nh = 0;
    int chunked = 0, have_len = 0, keep_alive = 0;
    uint64_t clen = 0;
    for (p = le + 1; p < e;) {
        le = memchr(p, '\n', (size_t)(e - p));
        size_t n = (size_t)(le - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (!n)
            break;
        const char *colon = memchr(p, ':', n);
        if (colon) {
            size_t nl = (size_t)(colon - p);
            while (nl && (p[nl - 1] == ' ' || p[nl - 1] == '\t'))
                nl--;
            const char *v = colon + 1, *ve = p + n;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t vl = (size_t)(ve - v);
            if (nl == 17 && !strncasecmp(p, "transfer-encoding", 17)) {
                if (h1_has_token(v, vl, "chunked"))
                    chunked = 1;
            } else if (nl == 14 && !strncasecmp(p, "content-length", 14)) {
                uint64_t len = 0;
                size_t i = 0;
                for (; i < vl && v[i] >= '0' && v[i] <= '9' && len < UINT64_C(1) << 58; i++)
                    len = len * 10 + (uint64_t)(v[i] - '0');
                if (!vl || i != vl || (have_len && len != clen)) {
                    h1_fail(x, CO_UPSTREAM_EOTHER, "%s sent an invalid Content-Length", c->h->authority);
                    return -1;
                }
                clen = len;
                have_len = 1;
            } else if (nl == 10 && !strncasecmp(p, "connection", 10)) {
                if (h1_has_token(v, vl, "close"))
                    x->conn_close = 1;
                if (h1_has_token(v, vl, "keep-alive"))
                    keep_alive = 1;
            }
        }
        int rc = add_header_line(x, p, n);
        if (rc == CO_ETOOBIG) {
            too_big(x, "headers", x->hbuf.max);
            h1_fail(x, CO_UPSTREAM_ETOO_BIG, "%s", x->msg);
            return -1;
        }
        if (rc) {
            h1_fail(x, CO_UPSTREAM_EOTHER, "out of memory reading headers");
            return -1;
        }
        p = le + 1;
    }
    c->r = end;
    if (code < 200) {
        /* 1xx: an interim response, the real one follows */
        co_buf_reset(&x->hbuf);
        x->nh = 0;
        x->conn_close = 0;
        return 0;
    }
    if (minor == 0 && !keep_alive)
        x->conn_close = 1;
    x->status = code;
    x->hdr_done = 1;
    x->status_sent = 1;
    if (code == 204 || code == 304) {
        x->bstate = H1_CL;
        x->left = 0;
    } else if (chunked) {
        x->bstate = H1_CHUNK_SIZE;
    } else if (have_len) {
        if (clen > x->max_response) {
            too_big(x, "body", x->max_response);
            h1_fail(x, CO_UPSTREAM_ETOO_BIG, "%s", x->msg);
            return -1;
        }
        x->bstate = H1_CL;
        x->left = clen;
        if (!x->cb.on_data && clen && co_buf_reserve(&x->body, (size_t)clen)) {
            h1_fail(x, CO_UPSTREAM_EOTHER, "out of memory buffering the response");
            return -1;
        }
    } else {
        x->bstate = H1_EOF_BODY;
        x->conn_close = 1;
    }
    if (build_header_view(x)) {
        h1_fail(x, CO_UPSTREAM_EOTHER, "out of memory reading headers");
        return -1;
    }
    if (x->cb.on_status) {
        int rc = x->cb.on_status(x, x->ud, x->status, &x->hview);
        if (x->cancelled || x->done)
            return -1;
        if (rc != CO_UPSTREAM_CONTINUE) {
            x->cancelled = 1;
            h1_fail(x, CO_UPSTREAM_ECANCELLED, "aborted by on_status");
            return -1;
        }
    }
    return 0;
}

/* Works through the input. 0: wants more input (c and its transfer alive);
 * 1: paused; -1: the transfer ended or the connection is gone. */
static int h1_process(h1_conn *c)
{
    for (;;) {
        co_upstream_xfer *x = c->x;
        if (!x || x->cancelled || x->done || x->paused)
            return x && x->paused ? 1 : -1;
        size_t avail = c->w - c->r;
        const char *p = c->in + c->r;
        switch (x->bstate) {
        case H1_HEAD: {
            const char *eoh = NULL;
            for (const char *q = p; (q = memchr(q, '\n', (size_t)(c->in + c->w - q))); q++) {
                if (q + 1 < c->in + c->w && q[1] == '\n') {
                    eoh = q + 2;
                    break;
                }
                if (q + 2 < c->in + c->w && q[1] == '\r' && q[2] == '\n') {
                    eoh = q + 3;
                    break;
                }
            }
            if (!eoh) {
                if (avail > c->up->max_header_bytes) {
                    too_big(x, "headers", c->up->max_header_bytes);
                    h1_fail(x, CO_UPSTREAM_ETOO_BIG, "%s", x->msg);
                    return -1;
                }
                return 0;
            }
            if (h1_head(c, (size_t)(eoh - c->in)) < 0)
                return -1;
            break;
        }
        case H1_CL: {
            size_t n = avail < x->left ? avail : (size_t)x->left;
            int rc = h1_deliver(c, p, n);
            if (rc)
                return rc;
            c->r += n;
            x->left -= n;
            if (!x->left) {
                h1_complete(c);
                return -1;
            }
            return 0;
        }
        case H1_EOF_BODY: {
            int rc = h1_deliver(c, p, avail);
            if (rc)
                return rc;
            c->r += avail;
            return 0;
        }
        case H1_CHUNK_SIZE:
        case H1_TRAILER: {
            const char *le = memchr(p, '\n', avail);
            if (!le) {
                if (avail > 4096) {
                    h1_fail(x, CO_UPSTREAM_EOTHER, "%s sent a malformed chunked body", c->h->authority);
                    return -1;
                }
                return 0;
            }
            size_t n = (size_t)(le - p);
            if (n && p[n - 1] == '\r')
                n--;
            c->r += (size_t)(le - p) + 1;
            if (x->bstate == H1_TRAILER) {
                if (!n) {
                    h1_complete(c);
                    return -1;
                }
                break; /* a trailer field: ignored */
            }
            uint64_t v = 0;
            size_t i = 0;
            for (; i < n; i++) {
                char ch = p[i];
                int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                        : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
                if (d < 0)
                    break;
                if (v >> 59) {
                    i = 0;
                    break;
                }
                v = v * 16 + (uint64_t)d;
            }
            if (!i || (i < n && p[i] != ';' && p[i] != ' ' && p[i] != '\t')) {
                h1_fail(x, CO_UPSTREAM_EOTHER, "%s sent a malformed chunk size", c->h->authority);
                return -1;
            }
            if (!v) {
                x->bstate = H1_TRAILER;
            } else if (v > x->max_response || x->bytes > x->max_response - v) {
                too_big(x, "body", x->max_response);
                h1_fail(x, CO_UPSTREAM_ETOO_BIG, "%s", x->msg);
                return -1;
            } else {
                x->bstate = H1_CHUNK_DATA;
                x->left = v;
            }
            break;
        }
        case H1_CHUNK_DATA: {
            if (!avail)
                return 0;
            size_t n = avail < x->left ? avail : (size_t)x->left;
            int rc = h1_deliver(c, p, n);
            if (rc)
                return rc;
            c->r += n;
            x->left -= n;
            if (!x->left)
                x->bstate = H1_CHUNK_CRLF;
            break;
        }
        case H1_CHUNK_CRLF: {
            if (avail < 1 || (p[0] == '\r' && avail < 2))
                return 0;
            size_t n = p[0] == '\r' ? 2 : 1;
            if (p[n - 1] != '\n') {
                h1_fail(x, CO_UPSTREAM_EOTHER, "%s sent a malformed chunked body", c->h->authority);
                return -1;
            }
            c->r += n;
            x->bstate = H1_CHUNK_SIZE;
            break;
        }
        }
    }
}

/* The peer closed or reset the connection. */
static void h1_lost(h1_conn *c, int err)
{
    co_upstream_xfer *x = c->x;
    if (!x) {
        h1_close(c);
        return;
    }
    if (!x->got_byte && h1_retry(c, x))
        return;
    const char *why = err ? strerror(err) : "connection closed";
    if (!x->got_byte)
        h1_fail(x, CO_UPSTREAM_ERESET, "%s: %s before any response", c->h->authority, why);
    else if (!x->hdr_done)
        h1_fail(x, CO_UPSTREAM_ERESET, "%s: %s in the middle of the response headers", c->h->authority, why);
    else if (x->bstate == H1_EOF_BODY && !err)
        h1_complete(c); /* the body ran to the close, as announced */
    else if (err)
        h1_fail(x, CO_UPSTREAM_ERESET, "%s: %s in the middle of the response body", c->h->authority, why);
    else
        h1_fail(x, CO_UPSTREAM_ETRUNCATED, "%s: the response body ended early (%s)", c->h->authority,
                x->bstate == H1_CL ? "short of its Content-Length" : "inside a chunked body");
}

static void h1_on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    h1_conn *c = arg;
    co_upstream *up = c->up;
    up->depth++;
    co_upstream_xfer *x = c->x;
    if (x && (x->cancelled || x->done || x->paused)) {
        leave(up); /* the deferred queue ends or resumes it */
        return;
    }
    /* readable before writable while connecting: the connect failed (or the
     * peer talks first) */
    if (c->connecting && h1_connect_result(c) < 0) {
        leave(up);
        return;
    }
    if (c->r == c->w)
        c->r = c->w = 0;
    if (c->w == c->cap) {
        if (c->r) {
            memmove(c->in, c->in + c->r, c->w - c->r);
            c->w -= c->r;
            c->r = 0;
        } else {
            size_t ncap = c->cap * 2;
            char *n = realloc(c->in, ncap);
            if (!n) {
                if (x)
                    h1_fail(x, CO_UPSTREAM_EOTHER, "out of memory reading the response");
                else
                    h1_close(c);
                leave(up);
                return;
            }
            c->in = n;
            c->cap = ncap;
        }
    }
    ssize_t k = read(fd, c->in + c->w, c->cap - c->w);
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        leave(up);
        return;
    }
    if (k <= 0) {
        h1_lost(c, k < 0 ? errno : 0);
        leave(up);
        return;
    }
    if (!x) {
        h1_close(c); /* bytes nobody asked for on an idle connection */
        leave(up);
        return;
    }
    c->w += (size_t)k;
    first_byte(x);
    h1_process(c);
    leave(up);
}

static void h1_on_total_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    co_upstream_xfer *x = arg;
    co_upstream *up = x->up;
    x->tt_armed = 0;
    if (x->done)
        return;
    up->depth++;
    h1_fail(x, CO_UPSTREAM_ETIMEOUT_TOTAL, "the transfer took longer than %lld ms", (long long)x->timeout_ms);
    leave(up);
}

/* A new connection for x; 0, or -1 with x ended (or queued to end). */
static int h1_open(co_upstream *up, h1_host *h, co_upstream_xfer *x)
{
    h1_conn *c = calloc(1, sizeof *c);
    char *in = malloc(H1_IN_MIN);
    int fd = -1, e = 0;
    if (!c || !in) {
        free(c);
        free(in);
        h1_fail(x, CO_UPSTREAM_EOTHER, "out of memory opening a connection");
        return -1;
    }
    fd = socket(h->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        e = errno;
        free(c);
        free(in);
        h1_fail(x, CO_UPSTREAM_ECONNECT, "socket: %s", strerror(e));
        return -1;
    }
    int one = 1, idle = 30, intvl = 15;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    c->up = up;
    c->h = h;
    c->fd = fd;
    c->in = in;
    c->cap = H1_IN_MIN;
    event_assign(&c->rev, up->base, fd, EV_READ | EV_PERSIST, h1_on_read, c);
    event_assign(&c->wev, up->base, fd, EV_WRITE | EV_PERSIST, h1_on_write, c);
    evtimer_assign(&c->cev, up->base, h1_on_connect_timeout, c);
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    up->h1_conns++;
    c->x = x;
    x->h1c = c;
    x->fresh = 1;
    int r = connect(fd, (struct sockaddr *)&h->sa, h->salen);
    if (r < 0 && errno != EINPROGRESS) {
        e = errno;
        c->x = NULL;
        x->h1c = NULL;
        h1_close(c);
        h1_fail(x, CO_UPSTREAM_ECONNECT, "connect to %s failed: %s", h->authority, strerror(e));
        return -1;
    }
    event_add(&c->rev, NULL);
    c->rev_on = 1;
    if (r < 0) {
        c->connecting = 1;
        struct timeval tv = ms_tv(x->connect_ms);
        evtimer_add(&c->cev, &tv);
        c->cev_on = 1;
        h1_watch_write(c, 1);
    } else {
        h1_connected(c);
        h1_send(c);
    }
    return 0;
}

/* Puts x on an idle connection, a new one, or the host's queue. */
static void h1_dispatch(co_upstream *up, co_upstream_xfer *x)
{
    h1_host *h = x->h1h;
    h1_conn *c = h->idle;
    if (c) {
        h1_idle_unlink(c);
        c->x = x;
        x->h1c = c;
        x->fresh = 0;
        x->t_conn = 0;
        h1_send(c);
        return;
    }
    if (h->nconns < up->max_host && (!up->max_total || up->h1_conns < up->max_total)) {
        h1_open(up, h, x);
        return;
    }
    x->waiting = 1;
    x->wnext = NULL;
    if (h->wq_tail)
        h->wq_tail->wnext = x;
    else
        h->wq = x;
    h->wq_tail = x;
}

/* Starts waiting transfers on what the host has free. */
static void h1_kick(co_upstream *up, h1_host *h)
{
    while (h->wq && !up->dying && (h->idle || (h->nconns < up->max_host &&
                                                (!up->max_total || up->h1_conns < up->max_total)))) {
        co_upstream_xfer *x = h->wq;
        h->wq = x->wnext;
        if (!h->wq)
            h->wq_tail = NULL;
        x->wnext = NULL;
        x->waiting = 0;
        h1_dispatch(up, x);
    }
}

/* Takes x off its connection (closed unless the response was whole, which
 * h1_complete already handled) or off its host's queue. */
static void h1_detach(co_upstream *up, co_upstream_xfer *x)
{
    h1_host *h = x->h1h;
    if (x->waiting) {
        co_upstream_xfer **pp = &h->wq, *prev = NULL;
        while (*pp && *pp != x) {
            prev = *pp;
            pp = &(*pp)->wnext;
        }
        if (*pp)
            *pp = x->wnext;
        if (h->wq_tail == x)
            h->wq_tail = prev;
        x->waiting = 0;
    }
    h1_conn *c = x->h1c;
    if (c) {
        c->x = NULL;
        x->h1c = NULL;
        h1_close(c); /* mid-exchange: the connection cannot carry another */
        h1_kick(up, h);
    }
}

/* co_upstream_resume on the native path: the held bytes are offered again. */
static void h1_resume(co_upstream *up, co_upstream_xfer *x)
{
    (void)up;
    h1_conn *c = x->h1c;
    if (!c)
        return;
    if (!c->rev_on) {
        event_add(&c->rev, NULL);
        c->rev_on = 1;
    }
    h1_process(c);
}

static void h1_destroy(co_upstream *up)
{
    h1_host *h;
    while ((h = up->hosts)) {
        up->hosts = h->next;
        while (h->conns)
            h1_close(h->conns);
        free(h);
    }
}

/* An accepted transfer: first-byte timer armed, on the live list, counted. */
static void go_live(co_upstream *up, co_upstream_xfer *x, co_upstream_xfer **out)
{
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

    const char *path = NULL;
    h1_host *h1h = up->curl_only || up->proxy ? NULL : h1_host_for(up, req->url, &path);
    if (h1h) {
        x->native = 1;
        x->h1h = h1h;
        x->connect_ms = connect_ms;
        x->rbody = body;
        x->rbody_len = post ? req->body_len : 0;
        co_buf_init(&x->head, CO_BUF_UNLIMITED);
        if (h1_build_head(up, x, h1h, path, post, req->headers)) {
            rc = co_error_set(CO_ENOMEM, "out of memory building the request");
            goto done;
        }
        evtimer_assign(&x->fb_ev, up->base, on_first_byte_timeout, x);
        evtimer_assign(&x->tt_ev, up->base, h1_on_total_timeout, x);
        struct timeval tt = ms_tv(x->timeout_ms);
        evtimer_add(&x->tt_ev, &tt);
        x->tt_armed = 1;
        go_live(up, x, out);
        up->in_start++;
        h1_dispatch(up, x);
        up->in_start--;
        return 0;
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
    go_live(up, x, out);
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
