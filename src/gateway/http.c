/* The gateway's HTTP/1.1 server (see http.h): accepting on one listening
 * socket, one connection object per client with one persistent read event,
 * request parsing by http-parser straight from the connection's read buffer,
 * replies formatted into a per-connection head buffer and written at once
 * (writev of head and body; only what the socket did not take is copied into
 * the connection's output buffer), timeouts on one timer per connection
 * (libevent common timeouts: O(1) re-arming).
 *
 * Connection states: IDLE (no byte of a request), HEAD (head arriving: an
 * absolute deadline from its first byte, pipelined or not), BODY (body
 * arriving: inactivity timeout), BUSY (the handler owns the request;
 * pipelined bytes are kept, not parsed), CLOSING
 * (a last reply is being written), LINGER (written, our side shut down,
 * reading what the client still sends until it closes, so that our last
 * reply is not destroyed by a reset). A closed connection is marked dead
 * and freed from its deferred event, so no stack frame of this file ever
 * holds a freed connection; the deferred event also runs everything that
 * must not happen inside a call the handler made (the next pipelined
 * request, gone and drained callbacks). */
#include "gateway/http.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>
#include <http_parser.h>

#include "cutover/util.h"

#define HEAD_RESERVE 64          /* room for the status line in front of the header lines */
#define IN_MIN 4096              /* a connection's first read buffer */
#define IN_SLACK 8192            /* read buffer limit beyond max_head */
#define IN_KEEP_IDLE 16384       /* an idle connection's larger read buffer is freed */
#define OUT_KEEP 16384           /* a drained output buffer larger than this is freed */
#define HB_KEEP 4096             /* head buffer kept between replies */
#define LINGER_MS 2000           /* reading a closing client's leftovers, at most */
#define LINGER_MAX (1u << 20)    /* ... and at most this many bytes */
#define ACCEPT_BATCH 128         /* accepts per wake-up (the event is level-triggered) */
#define ERR_MAX 65536            /* an on_error body / header block */

enum { S_IDLE, S_HEAD, S_BODY, S_BUSY, S_CLOSING, S_LINGER };
enum { T_NONE, T_IDLE, T_HEAD, T_BODY, T_WRITE, T_LINGER };
enum { DEF_DISPATCH = 1, DEF_GONE = 2, DEF_DRAINED = 4 };

typedef struct gw_conn gw_conn;

typedef struct hspan {
    uint32_t name_off, name_len, val_off, val_len; /* relative to msg_start */
} hspan;

typedef struct hpair {
    const char *name, *value;
} hpair;

struct gw_hreq {
    gw_conn *c;                  /* NULL once orphaned (connection closed, no gone callback) */
    gw_http *h;
    gw_hreq *oprev, *onext;      /* h->orphans */
    int method;
    int minor;
    const char *method_name, *path, *target;
    hpair *hv;
    size_t nh;
    char *body;
    size_t body_len, body_cap;
    uint64_t clen;               /* Content-Length, or UINT64_MAX */
    unsigned chunked_in : 1, expect : 1, is_head : 1, handler : 1, started : 1, chunked_out : 1,
        close : 1, drain_armed : 1, orphan : 1;
    void (*gone_cb)(gw_hreq *, void *);
    void *gone_arg;
    void (*drained_cb)(gw_hreq *, void *);
    void *drained_arg;
};

struct gw_conn {
    gw_http *h;
    gw_conn *prev, *next;        /* h->conns */
    gw_conn *fprev, *fnext;      /* h->flushq (corked, with output) */
    evutil_socket_t fd;
    struct event *rev, *wev, *tev, *dev; /* inside this allocation */
    http_parser p;
    int state, tmode, def;
    unsigned dead : 1, in_flush : 1, wev_on : 1, rpaused : 1, keep : 1, upgrade : 1, linger : 1,
        gone_pending : 1, done : 1, cont_sent : 1, body_seen : 1;
    int64_t pipe_t0_us;          /* when the bytes behind a busy request began to arrive */
    int err_status;              /* set by a parser callback that refused */
    const char *err_msg;
    gw_hreq *q;
    /* read buffer */
    char *in;
    size_t in_len, in_cap, in_off, msg_start;
    size_t lingered;
    /* head being parsed */
    hspan *hs;
    size_t nhs, hs_cap;
    uint32_t url_off, url_len;
    int last_field;              /* last header callback: 1 field, 2 value, 0 none */
    /* reply head being built, and output the socket did not take */
    char *hb;
    size_t hb_len, hb_cap;
    char *out;
    size_t out_off, out_len, out_cap;
};

struct gw_http {
    struct event_base *base;
    evutil_socket_t lfd;
    struct event *lev, *retry;
    gw_http_opts o;
    const struct timeval *tv_head, *tv_write, *tv_linger;
    int corked;
    int stopping;
    gw_conn *conns;
    size_t nconns;
    gw_conn *flushq;
    gw_hreq *orphans;
    size_t evsz;
};

static const http_parser_settings SETTINGS;

/* ---- small helpers ------------------------------------------------------ */

static size_t utoa(char *dst, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}

/* A buffer grown past keep is given back (the next use allocates again). */
static void shrink(char **p, size_t *cap, size_t keep)
{
    if (*cap > keep) {
        free(*p);
        *p = NULL;
        *cap = 0;
    }
}

static int grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    char *q = realloc(*p, n);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

const char *gw_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Entity";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    case 511: return "Network Authentication Required";
    case 529: return "Site Overloaded";
    default: return "Unknown";
    }
}

static void set_timeouts(gw_http *h)
{
    struct timeval tv;
    int64_t ms = h->o.header_timeout_ms;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    h->tv_head = event_base_init_common_timeout(h->base, &tv);
    ms = h->o.write_timeout_ms;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    h->tv_write = event_base_init_common_timeout(h->base, &tv);
    ms = h->o.header_timeout_ms < LINGER_MS ? h->o.header_timeout_ms : LINGER_MS;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    h->tv_linger = event_base_init_common_timeout(h->base, &tv);
}

static void apply_defaults(gw_http_opts *o)
{
    if (!o->max_head)
        o->max_head = 64 * 1024;
    if (!o->max_body)
        o->max_body = 4 * 1024 * 1024;
    if (o->header_timeout_ms <= 0)
        o->header_timeout_ms = 10000;
    if (o->write_timeout_ms <= 0)
        o->write_timeout_ms = 60000;
}

/* ---- requests ----------------------------------------------------------- */

static void req_free(gw_hreq *q)
{
    if (!q)
        return;
    free(q->body);
    free(q);
}

static void orphan_add(gw_http *h, gw_hreq *q)
{
    q->c = NULL;
    q->orphan = 1;
    q->oprev = NULL;
    q->onext = h->orphans;
    if (h->orphans)
        h->orphans->oprev = q;
    h->orphans = q;
}

static void orphan_del(gw_http *h, gw_hreq *q)
{
    if (q->oprev)
        q->oprev->onext = q->onext;
    else
        h->orphans = q->onext;
    if (q->onext)
        q->onext->oprev = q->oprev;
    q->orphan = 0;
}

/* ---- connections: life and death ---------------------------------------- */

static void flushq_del(gw_conn *c)
{
    if (!c->in_flush)
        return;
    if (c->fprev)
        c->fprev->fnext = c->fnext;
    else
        c->h->flushq = c->fnext;
    if (c->fnext)
        c->fnext->fprev = c->fprev;
    c->in_flush = 0;
    c->fprev = c->fnext = NULL;
}

static void defer(gw_conn *c, int what)
{
    c->def |= what;
    event_active(c->dev, EV_TIMEOUT, 0);
}

/* Closes the socket at once; the memory goes from the deferred event. A
 * request the handler owns stays attached when its gone callback is due
 * (the deferred event runs it); without one it becomes an orphan. */
/* Marks c dead: no more events, the socket closed, no longer counted. */
static void conn_shut(gw_conn *c)
{
    c->dead = 1;
    event_del(c->rev);
    event_del(c->wev);
    event_del(c->tev);
    flushq_del(c);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->h->nconns--;
}

static void conn_close(gw_conn *c)
{
    if (c->dead)
        return;
    gw_http *h = c->h;
    conn_shut(c);
    gw_hreq *q = c->q;
    if (q) {
        if (!q->handler) {
            req_free(q);
            c->q = NULL;
        } else if (q->gone_cb) {
            c->gone_pending = 1;
        } else {
            c->q = NULL;
            orphan_add(h, q);
        }
    }
    defer(c, 0);
}

static void conn_free(gw_conn *c)
{
    gw_http *h = c->h;
    if (!c->dead)
        conn_shut(c);
    event_del(c->dev);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    req_free(c->q);
    free(c->in);
    free(c->hs);
    free(c->hb);
    free(c->out);
    free(c);
}

/* The client is gone (EOF or reset while a request was unfinished, a failed
 * write, the write timeout). */
static void conn_fail(gw_conn *c)
{
    conn_close(c);
}

/* ---- timer -------------------------------------------------------------- */

enum { P_READ = 1, P_WRITE = 2 };

static void conn_timer(gw_conn *c, int progress)
{
    if (c->dead)
        return;
    gw_http *h = c->h;
    int m;
    const struct timeval *tv = NULL;
    if (c->state == S_LINGER) {
        m = T_LINGER;
        tv = h->tv_linger;
    } else if (c->out_len > c->out_off && !h->corked) {
        m = T_WRITE;
        tv = h->tv_write;
    } else {
        switch (c->state) {
        case S_IDLE: m = T_IDLE; tv = h->tv_head; break;
        case S_HEAD: m = T_HEAD; tv = h->tv_head; break;
        case S_BODY: m = T_BODY; tv = h->tv_head; break;
        default: m = T_NONE; break;
        }
    }
    if (m == c->tmode && !((m == T_BODY && (progress & P_READ)) || (m == T_WRITE && (progress & P_WRITE))))
        return;
    c->tmode = m;
    if (m == T_NONE)
        event_del(c->tev);
    else
        event_add(c->tev, tv);
}

/* ---- output ------------------------------------------------------------- */

static void conn_after_drain(gw_conn *c, int in_loop);

static int out_append(gw_conn *c, const void *p, size_t n)
{
    if (!n)
        return 0;
    if (c->out_off && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + n > c->out_cap && c->out_off) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (grow(&c->out, &c->out_cap, c->out_len + n) < 0)
        return -1;
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static void flushq_add(gw_conn *c)
{
    if (c->in_flush)
        return;
    gw_http *h = c->h;
    c->in_flush = 1;
    c->fprev = NULL;
    c->fnext = h->flushq;
    if (h->flushq)
        h->flushq->fprev = c;
    h->flushq = c;
}

/* Writes queued output. in_loop: called from an event callback of this
 * connection (callbacks may run), not from inside a call of the handler. */
static void conn_flush(gw_conn *c, int in_loop)
{
    if (c->dead || c->out_off == c->out_len)
        return;
    if (c->h->corked) {
        flushq_add(c);
        return;
    }
    int progress = 0;
    while (c->out_off < c->out_len) {
        size_t want = c->out_len - c->out_off;
        ssize_t n = send(c->fd, c->out + c->out_off, want, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            progress = 1;
            if ((size_t)n < want)
                break; /* the socket is full: the next send would say EAGAIN */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        conn_fail(c);
        return;
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        shrink(&c->out, &c->out_cap, OUT_KEEP);
        if (c->wev_on) {
            event_del(c->wev);
            c->wev_on = 0;
        }
        conn_after_drain(c, in_loop);
        return;
    }
    if (!c->wev_on) {
        event_add(c->wev, NULL);
        c->wev_on = 1;
    }
    conn_timer(c, progress ? P_WRITE : 0);
}

/* Sends iov now when nothing is queued (and not corked); whatever the
 * socket does not take is queued. Returns -1 when out of memory (the
 * connection is then closed). */
static int conn_sendv(gw_conn *c, struct iovec *iov, int n)
{
    if (c->dead)
        return 0;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    size_t sent = 0;
    if (!c->h->corked && c->out_off == c->out_len && total) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        for (;;) {
            ssize_t r = sendmsg(c->fd, &m, MSG_NOSIGNAL);
            if (r >= 0) {
                sent = (size_t)r;
                break;
            }
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_fail(c);
            return 0;
        }
    }
    for (int i = 0; i < n; i++) {
        size_t l = iov[i].iov_len;
        if (sent >= l) {
            sent -= l;
            continue;
        }
        if (out_append(c, (const char *)iov[i].iov_base + sent, l - sent) < 0) {
            conn_fail(c);
            return -1;
        }
        sent = 0;
    }
    if (c->out_off < c->out_len) {
        if (c->h->corked) {
            flushq_add(c);
        } else if (!c->wev_on) {
            event_add(c->wev, NULL);
            c->wev_on = 1;
            conn_timer(c, P_WRITE);
        }
    } else if (total) {
        conn_after_drain(c, 0);
    }
    return 0;
}

/* ---- layer errors and closing ------------------------------------------- */

static void conn_linger_or_close(gw_conn *c)
{
    if (c->linger || c->in_off < c->in_len) {
        shutdown(c->fd, SHUT_WR);
        c->state = S_LINGER;
        c->lingered = 0;
        c->in_len = c->in_off = 0;
        if (c->rpaused) {
            event_add(c->rev, NULL);
            c->rpaused = 0;
        }
        conn_timer(c, 0);
    } else {
        conn_close(c);
    }
}

static void layer_error(gw_conn *c, int status, const char *msg)
{
    gw_http *h = c->h;
    if (c->q) { /* layer-owned (head or body being read) */
        req_free(c->q);
        c->q = NULL;
    }
    co_buf extra, body;
    co_buf_init(&extra, ERR_MAX);
    co_buf_init(&body, ERR_MAX);
    if (h->o.on_error) {
        h->o.on_error(h->o.arg, status, msg, &extra, &body);
    } else {
        const char *type = status == 408 ? "timeout_error" : "invalid_request_error";
        co_buf_printf(&body, "{\"error\":{\"message\":\"%s\",\"type\":\"%s\"}}", msg, type);
    }
    if (c->dead) { /* on_error may not close it, but be safe */
        co_buf_free(&extra);
        co_buf_free(&body);
        return;
    }
    /* extra header lines must be well formed: "Name: value\r\n" each */
    if (extra.len && (extra.len < 2 || memcmp(extra.p + extra.len - 2, "\r\n", 2) != 0))
        co_buf_reset(&extra);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n",
                     status, gw_http_reason(status), body.len);
    struct iovec iov[4] = {{head, (size_t)n}, {extra.p ? extra.p : (char *)"", extra.len},
                           {(char *)"\r\n", 2}, {body.p ? body.p : (char *)"", body.len}};
    c->state = S_CLOSING;
    c->linger = 1;
    c->keep = 0;
    int rc = conn_sendv(c, iov, 4);
    co_buf_free(&extra);
    co_buf_free(&body);
    if (rc < 0 || c->dead)
        return;
    if (c->state == S_CLOSING)
        conn_timer(c, 0);
}

/* ---- parsing ------------------------------------------------------------ */

static int on_message_begin(http_parser *p)
{
    gw_conn *c = p->data;
    c->state = S_HEAD;
    c->nhs = 0;
    c->url_off = c->url_len = 0;
    c->last_field = 0;
    c->cont_sent = 0;
    c->body_seen = 0;
    return 0;
}

static int span_add(gw_conn *c, const char *at, size_t len, uint32_t *off, uint32_t *l, int first)
{
    size_t o = (size_t)(at - c->in) - c->msg_start;
    if (first) {
        *off = (uint32_t)o;
        *l = (uint32_t)len;
    } else {
        *l = (uint32_t)(o + len - *off); /* pieces of one token are adjacent in the buffer */
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    gw_conn *c = p->data;
    return span_add(c, at, len, &c->url_off, &c->url_len, c->url_len == 0);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    gw_conn *c = p->data;
    if (c->state != S_HEAD)
        return 0; /* trailers: ignored */
    if (c->last_field != 1) {
        if (c->nhs == c->hs_cap) {
            size_t n = c->hs_cap ? c->hs_cap * 2 : 16;
            hspan *v = realloc(c->hs, n * sizeof *v);
            if (!v) {
                c->err_status = 500;
                c->err_msg = "out of memory";
                return -1;
            }
            c->hs = v;
            c->hs_cap = n;
        }
        hspan *s = &c->hs[c->nhs++];
        memset(s, 0, sizeof *s);
        c->last_field = 1;
        return span_add(c, at, len, &s->name_off, &s->name_len, 1);
    }
    hspan *s = &c->hs[c->nhs - 1];
    return span_add(c, at, len, &s->name_off, &s->name_len, 0);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    gw_conn *c = p->data;
    if (c->state != S_HEAD || !c->nhs)
        return 0;
    hspan *s = &c->hs[c->nhs - 1];
    int first = c->last_field != 2;
    c->last_field = 2;
    return span_add(c, at, len, &s->val_off, &s->val_len, first);
}

static int span_is(const char *base, uint32_t off, uint32_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && strncasecmp(base + off, lit, n) == 0;
}

static void trim(const char **p, size_t *n)
{
    while (*n && ((*p)[0] == ' ' || (*p)[0] == '\t'))
        (*p)++, (*n)--;
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\r' ||
                  (*p)[*n - 1] == '\n'))
        (*n)--;
}

/* The path of a request target: origin-form up to '?' or '#'; absolute-form
 * ("scheme://authority/path") its path; anything else as is. */
static void target_path(const char *u, size_t n, const char **out, size_t *outn)
{
    if (n && u[0] != '/') {
        const char *s = memmem(u, n, "://", 3);
        if (s) {
            const char *a = s + 3;
            const char *end = u + n;
            const char *sl = a;
            while (sl < end && *sl != '/' && *sl != '?' && *sl != '#')
                sl++;
            n = (size_t)(end - sl);
            u = sl;
            if (!n || *u != '/') {
                *out = "/";
                *outn = 1;
                return;
            }
        }
    }
    size_t i = 0;
    while (i < n && u[i] != '?' && u[i] != '#')
        i++;
    if (!i) {
        *out = "/";
        *outn = 1;
        return;
    }
    *out = u;
    *outn = i;
}

static int method_of(unsigned m)
{
    switch (m) {
    case HTTP_GET: return GW_HTTP_GET;
    case HTTP_HEAD: return GW_HTTP_HEAD;
    case HTTP_POST: return GW_HTTP_POST;
    case HTTP_PUT: return GW_HTTP_PUT;
    case HTTP_DELETE: return GW_HTTP_DELETE;
    case HTTP_PATCH: return GW_HTTP_PATCH;
    case HTTP_OPTIONS: return GW_HTTP_OPTIONS;
    default: return GW_HTTP_OTHER;
    }
}

static int refuse(gw_conn *c, int status, const char *msg)
{
    c->err_status = status;
    c->err_msg = msg;
    return -1;
}

/* The head is complete: it is copied into the request's own allocation
 * (one malloc), so the read buffer can move on. */
static int on_headers_complete(http_parser *p)
{
    gw_conn *c = p->data;
    gw_http *h = c->h;
    const char *base = c->in + c->msg_start;
    size_t end = c->url_off + c->url_len;
    for (size_t i = 0; i < c->nhs; i++) {
        size_t e = (size_t)c->hs[i].val_off + c->hs[i].val_len;
        if (e > end)
            end = e;
        e = (size_t)c->hs[i].name_off + c->hs[i].name_len;
        if (e > end)
            end = e;
    }
    if (end > h->o.max_head)
        return refuse(c, 431, "request head too large");
    if (p->http_major != 1)
        return refuse(c, 505, "HTTP version not supported");

    const char *mname = http_method_str((enum http_method)p->method);
    const char *path;
    size_t pathn;
    target_path(base + c->url_off, c->url_len, &path, &pathn);
    size_t mlen = strlen(mname);
    size_t need = sizeof(gw_hreq) + c->nhs * sizeof(hpair) + mlen + 1 + pathn + 1 + c->url_len + 1;
    int te_bad = 0, expect = 0;
    for (size_t i = 0; i < c->nhs; i++) {
        hspan *s = &c->hs[i];
        need += (size_t)s->name_len + 1 + s->val_len + 1;
        if (span_is(base, s->name_off, s->name_len, "transfer-encoding")) {
            const char *v = base + s->val_off;
            size_t vn = s->val_len;
            trim(&v, &vn);
            if (!(vn == 7 && strncasecmp(v, "chunked", 7) == 0))
                te_bad = 1;
        } else if (span_is(base, s->name_off, s->name_len, "expect")) {
            const char *v = base + s->val_off;
            size_t vn = s->val_len;
            trim(&v, &vn);
            if (vn == 12 && strncasecmp(v, "100-continue", 12) == 0)
                expect = 1;
        }
    }
    if (te_bad)
        return refuse(c, 501, "unsupported Transfer-Encoding");
    int chunked = (p->flags & F_CHUNKED) != 0;
    uint64_t clen = chunked ? UINT64_MAX : p->content_length;
    if (clen != UINT64_MAX && clen > h->o.max_body)
        return refuse(c, 413, "request body too large");

    gw_hreq *q = malloc(need);
    if (!q)
        return refuse(c, 500, "out of memory");
    memset(q, 0, sizeof *q);
    q->h = h;
    q->c = c;
    q->method = method_of(p->method);
    q->minor = p->http_minor ? 1 : 0;
    q->is_head = p->method == HTTP_HEAD;
    q->chunked_in = (unsigned)chunked;
    q->expect = (unsigned)expect;
    q->clen = clen;
    q->hv = (hpair *)(q + 1);
    q->nh = c->nhs;
    char *s = (char *)(q->hv + c->nhs);
    memcpy(s, mname, mlen + 1);
    q->method_name = s;
    s += mlen + 1;
    memcpy(s, path, pathn);
    s[pathn] = '\0';
    q->path = s;
    s += pathn + 1;
    memcpy(s, base + c->url_off, c->url_len);
    s[c->url_len] = '\0';
    q->target = s;
    s += c->url_len + 1;
    for (size_t i = 0; i < c->nhs; i++) {
        hspan *sp = &c->hs[i];
        const char *v = base + sp->val_off;
        size_t vn = sp->val_len;
        trim(&v, &vn);
        memcpy(s, base + sp->name_off, sp->name_len);
        s[sp->name_len] = '\0';
        q->hv[i].name = s;
        s += sp->name_len + 1;
        for (size_t k = 0; k < vn; k++) /* a folded value never carries CR or LF on */
            s[k] = (v[k] == '\r' || v[k] == '\n') ? ' ' : v[k];
        s[vn] = '\0';
        q->hv[i].value = s;
        s += vn + 1;
    }
    if (clen != UINT64_MAX && clen > 0) {
        q->body = malloc((size_t)clen + 1);
        if (!q->body) {
            free(q);
            return refuse(c, 500, "out of memory");
        }
        q->body_cap = (size_t)clen + 1;
    }
    c->q = q;
    c->state = S_BODY;
    if (c->nhs > 64) { /* an unusual head: do not keep its bookkeeping */
        free(c->hs);
        c->hs = NULL;
        c->hs_cap = 0;
    }
    c->nhs = 0;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    gw_conn *c = p->data;
    gw_hreq *q = c->q;
    if (!q)
        return 0;
    c->body_seen = 1;
    if (q->body_len + len > c->h->o.max_body)
        return refuse(c, 413, "request body too large");
    if (q->body_len + len + 1 > q->body_cap) {
        size_t n = q->body_cap ? q->body_cap : 4096;
        while (n < q->body_len + len + 1)
            n *= 2;
        if (n > c->h->o.max_body + 1)
            n = c->h->o.max_body + 1;
        char *b = realloc(q->body, n);
        if (!b)
            return refuse(c, 500, "out of memory");
        q->body = b;
        q->body_cap = n;
    }
    if (at != q->body + q->body_len) /* read straight into the body: nothing to copy */
        memcpy(q->body + q->body_len, at, len);
    q->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    gw_conn *c = p->data;
    c->done = 1;
    c->keep = (unsigned)(http_should_keep_alive(p) != 0);
    c->upgrade = p->upgrade;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings SETTINGS = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void conn_dispatch(gw_conn *c)
{
    gw_hreq *q = c->q;
    gw_http *h = c->h;
    c->done = 0;
    if (q->body)
        q->body[q->body_len] = '\0';
    q->handler = 1;
    c->state = S_BUSY;
    if (c->in_off < c->in_len)
        c->pipe_t0_us = co_mono_us(); /* a pipelined request's first bytes are already here */
    conn_timer(c, 0);
    h->o.on_request(q, h->o.arg);
}

static void parser_error(gw_conn *c)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
    int status = 400;
    const char *msg = "malformed request";
    switch (e) {
    case HPE_CB_headers_complete:
    case HPE_CB_body:
    case HPE_CB_header_field:
        status = c->err_status ? c->err_status : 500;
        msg = c->err_msg ? c->err_msg : "internal error";
        break;
    case HPE_HEADER_OVERFLOW:
        status = 431;
        msg = "request head too large";
        break;
    case HPE_INVALID_TRANSFER_ENCODING:
        status = 501;
        msg = "unsupported Transfer-Encoding";
        break;
    case HPE_INVALID_VERSION:
        status = 505;
        msg = "HTTP version not supported";
        break;
    default:
        break;
    }
    layer_error(c, status, msg);
}

/* Runs the parser over n bytes at d (the read buffer or the body itself).
 * Returns 1 when parsing must stop (dispatched, error). */
static int conn_exec(gw_conn *c, const char *d, size_t n, size_t *used)
{
    c->err_status = 0;
    size_t k = http_parser_execute(&c->p, &SETTINGS, d, n);
    *used = k;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
    if (e == HPE_PAUSED) {
        http_parser_pause(&c->p, 0);
        return 2;
    }
    if (e != HPE_OK) {
        parser_error(c);
        return 1;
    }
    return 0;
}

static void send_continue(gw_conn *c)
{
    gw_hreq *q = c->q;
    if (c->state != S_BODY || !q || !q->expect || c->cont_sent || q->minor == 0)
        return;
    c->cont_sent = 1;
    if (c->body_seen)
        return; /* the client did not wait */
    struct iovec iov = {(char *)"HTTP/1.1 100 Continue\r\n\r\n", 25};
    conn_sendv(c, &iov, 1);
}

/* Parses what the read buffer holds, dispatching a complete request. */
static void conn_parse(gw_conn *c)
{
    gw_http *h = c->h;
    while (!c->dead && c->in_off < c->in_len &&
           (c->state == S_IDLE || c->state == S_HEAD || c->state == S_BODY)) {
        if (c->state == S_IDLE)
            c->msg_start = c->in_off;
        size_t used;
        int r = conn_exec(c, c->in + c->in_off, c->in_len - c->in_off, &used);
        c->in_off += used;
        if (r == 1)
            return;
        if (r == 2) {
            if (c->upgrade) { /* another protocol follows: not ours */
                c->keep = 0;
                c->in_off = c->in_len;
            }
            conn_dispatch(c);
            return;
        }
        if (c->state == S_HEAD && c->in_off - c->msg_start > h->o.max_head) {
            layer_error(c, 431, "request head too large");
            return;
        }
    }
    if (!c->dead)
        send_continue(c);
}

/* ---- the read side ------------------------------------------------------ */

/* Room to read into; 0 when the buffer holds all it may. */
static size_t in_room(gw_conn *c)
{
    gw_http *h = c->h;
    size_t keep_from = c->state == S_HEAD ? c->msg_start : c->in_off;
    if (c->state == S_LINGER || c->state == S_CLOSING)
        keep_from = c->in_len;
    if (keep_from == c->in_len) {
        c->in_len = c->in_off = c->msg_start = 0;
    } else if (keep_from && c->in_cap - c->in_len < 1024) {
        memmove(c->in, c->in + keep_from, c->in_len - keep_from);
        c->in_len -= keep_from;
        c->in_off -= keep_from;
        c->msg_start = c->msg_start >= keep_from ? c->msg_start - keep_from : 0;
    }
    size_t limit = h->o.max_head + IN_SLACK;
    if (c->in_cap - c->in_len < 1024 && c->in_cap < limit) {
        size_t n = c->in_cap ? c->in_cap * 2 : IN_MIN;
        if (c->state == S_BODY && n < 16384)
            n = 16384;
        if (n > limit)
            n = limit;
        char *b = realloc(c->in, n);
        if (b) {
            c->in = b;
            c->in_cap = n;
        }
    }
    return c->in_cap - c->in_len;
}

static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    gw_conn *c = arg;
    gw_http *h = c->h;
    if (c->dead)
        return;
    ssize_t n;
    gw_hreq *q = c->q;
    if (c->state == S_BODY && q && !q->chunked_in && q->body && c->in_off == c->in_len) {
        /* a Content-Length body: read straight into it */
        size_t want = (size_t)q->clen - q->body_len;
        do
            n = read(fd, q->body + q->body_len, want);
        while (n < 0 && errno == EINTR);
        if (n > 0) {
            size_t used;
            int r = conn_exec(c, q->body + q->body_len, (size_t)n, &used);
            if (r == 2)
                conn_dispatch(c);
            else if (r == 0)
                conn_timer(c, P_READ);
            return;
        }
    } else {
        size_t room = in_room(c);
        if (!room) {
            if (c->state == S_BUSY) { /* enough pipelined: wait for the reply */
                event_del(c->rev);
                c->rpaused = 1;
                return;
            }
            if (c->state == S_HEAD) {
                layer_error(c, 431, "request head too large");
                return;
            }
            room = c->in_cap - c->in_len; /* cannot happen */
            if (!room) {
                conn_close(c);
                return;
            }
        }
        do
            n = read(fd, c->in + c->in_len, room);
        while (n < 0 && errno == EINTR);
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) { /* EOF or reset: whatever was going on is over */
        conn_fail(c);
        return;
    }
    switch (c->state) {
    case S_LINGER:
        c->lingered += (size_t)n;
        c->in_len = 0;
        if (c->lingered > LINGER_MAX)
            conn_close(c);
        return;
    case S_CLOSING:
        c->in_len = 0;
        return;
    case S_BUSY:
        if (c->in_off == c->in_len)
            c->pipe_t0_us = co_mono_us();
        c->in_len += (size_t)n;
        if (c->in_len - c->in_off > h->o.max_head) {
            event_del(c->rev);
            c->rpaused = 1;
        }
        return;
    default:
        break;
    }
    c->in_len += (size_t)n;
    conn_parse(c);
    if (c->dead)
        return;
    if (c->state == S_HEAD || c->state == S_BODY)
        conn_timer(c, P_READ);
}

/* The reply is finished: the connection goes on with the next request, or
 * closes. */
static void conn_next(gw_conn *c)
{
    gw_http *h = c->h;
    if (c->dead)
        return;
    if (!c->keep || h->stopping) {
        c->state = S_CLOSING;
        if (c->out_off == c->out_len && !c->in_flush)
            conn_linger_or_close(c);
        else
            conn_timer(c, 0);
        return;
    }
    c->state = S_IDLE;
    if (c->in_off == c->in_len) {
        c->in_off = c->in_len = 0;
        shrink(&c->in, &c->in_cap, IN_KEEP_IDLE);
    }
    if (c->rpaused) {
        event_add(c->rev, NULL);
        c->rpaused = 0;
    }
    if (c->in_off < c->in_len)
        defer(c, DEF_DISPATCH);
    conn_timer(c, 0);
}

static void conn_after_drain(gw_conn *c, int in_loop)
{
    if (c->dead)
        return;
    if (c->state == S_CLOSING) {
        conn_linger_or_close(c);
        return;
    }
    conn_timer(c, 0);
    gw_hreq *q = c->q;
    if (q && q->handler && q->drain_armed && q->drained_cb) {
        q->drain_armed = 0;
        if (in_loop)
            q->drained_cb(q, q->drained_arg);
        else
            defer(c, DEF_DRAINED);
    }
}

static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_conn *c = arg;
    conn_flush(c, 1);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_conn *c = arg;
    if (c->dead)
        return;
    int m = c->tmode;
    c->tmode = T_NONE;
    switch (m) {
    case T_HEAD:
    case T_BODY:
        layer_error(c, 408, "request not received in time");
        break;
    case T_WRITE:
        conn_fail(c);
        break;
    default: /* idle, linger */
        conn_close(c);
        break;
    }
}

/* A pipelined head: its deadline counts from when its first byte arrived,
 * which may have been while the request before it was served (and its
 * reply written). Past the deadline already: the 408 now. */
static void head_deadline_from(gw_conn *c, int64_t t0_us)
{
    int64_t left_us = c->h->o.header_timeout_ms * 1000 - (co_mono_us() - t0_us);
    if (left_us <= 0) {
        layer_error(c, 408, "request not received in time");
        return;
    }
    conn_timer(c, P_READ); /* T_HEAD, on the full common timeout ... */
    if (c->tmode == T_HEAD) {
        struct timeval tv = {(time_t)(left_us / 1000000), (suseconds_t)(left_us % 1000000)};
        event_add(c->tev, &tv); /* ... cut to what is left */
    }
}

static void conn_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_conn *c = arg;
    int def = c->def;
    c->def = 0;
    if (c->dead) {
        if (c->gone_pending && c->q) {
            gw_hreq *q = c->q;
            c->q = NULL;
            c->gone_pending = 0;
            q->gone_cb(q, q->gone_arg);
            req_free(q);
        }
        conn_free(c);
        return;
    }
    if (def & DEF_DRAINED) {
        gw_hreq *q = c->q;
        if (q && q->handler && q->drained_cb && c->out_off == c->out_len)
            q->drained_cb(q, q->drained_arg);
        if (c->dead)
            return;
    }
    if ((def & DEF_DISPATCH) && c->state == S_IDLE) {
        conn_parse(c);
        if (!c->dead && c->state == S_HEAD)
            head_deadline_from(c, c->pipe_t0_us);
        else if (!c->dead && c->state == S_BODY)
            conn_timer(c, P_READ);
    }
}

static gw_conn *conn_new(gw_http *h, evutil_socket_t fd)
{
    size_t base = (sizeof(gw_conn) + 15) & ~(size_t)15;
    size_t es = (h->evsz + 15) & ~(size_t)15;
    gw_conn *c = calloc(1, base + 4 * es);
    if (!c)
        return NULL;
    char *e = (char *)c + base;
    c->rev = (struct event *)e;
    c->wev = (struct event *)(e + es);
    c->tev = (struct event *)(e + 2 * es);
    c->dev = (struct event *)(e + 3 * es);
    c->h = h;
    c->fd = fd;
    c->state = S_IDLE;
    http_parser_init(&c->p, HTTP_REQUEST);
    c->p.data = c;
    if (event_assign(c->rev, h->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c) < 0 ||
        event_assign(c->wev, h->base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c) < 0 ||
        event_assign(c->tev, h->base, -1, 0, conn_timer_cb, c) < 0 ||
        event_assign(c->dev, h->base, -1, 0, conn_deferred_cb, c) < 0 || event_add(c->rev, NULL) < 0) {
        free(c);
        return NULL;
    }
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    conn_timer(c, 0);
    return c;
}

/* ---- accepting ---------------------------------------------------------- */

static void count(_Atomic uint64_t *c)
{
    if (c)
        atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_http *h = arg;
    if (h->lev)
        event_add(h->lev, NULL);
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    gw_http *h = arg;
    for (int i = 0; i < ACCEPT_BATCH && h->lev; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == EPERM)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* out of descriptors: pause accepting rather than spin */
                struct timeval tv = {0, 100000};
                event_del(h->lev);
                event_add(h->retry, &tv);
                count(h->o.accept_paused);
            }
            return;
        }
        if (h->o.max_conns && h->nconns >= h->o.max_conns) {
            close(fd);
            count(h->o.refused_at_limit);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (!conn_new(h, fd))
            close(fd);
    }
}

/* ---- the server --------------------------------------------------------- */

gw_http *gw_http_new(struct event_base *base, evutil_socket_t fd, const gw_http_opts *opts)
{
    gw_http *h = calloc(1, sizeof *h);
    if (!h)
        goto fail;
    h->base = base;
    h->lfd = fd;
    h->o = *opts;
    apply_defaults(&h->o);
    h->evsz = event_get_struct_event_size();
    set_timeouts(h);
    if (fd >= 0) {
        h->lev = event_new(base, fd, EV_READ | EV_PERSIST, accept_cb, h);
        h->retry = evtimer_new(base, accept_retry_cb, h);
        if (!h->lev || !h->retry || event_add(h->lev, NULL) < 0)
            goto fail;
    }
    return h;
fail:
    if (h) {
        if (h->lev)
            event_free(h->lev);
        if (h->retry)
            event_free(h->retry);
        free(h);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

void gw_http_set_limits(gw_http *h, size_t max_head, size_t max_body, int64_t header_timeout_ms,
                        int64_t write_timeout_ms, size_t max_conns)
{
    h->o.max_conns = max_conns;
    h->o.max_head = max_head;
    h->o.max_body = max_body;
    h->o.header_timeout_ms = header_timeout_ms;
    h->o.write_timeout_ms = write_timeout_ms;
    apply_defaults(&h->o);
    set_timeouts(h);
}

static void close_listener(gw_http *h)
{
    if (h->lev) {
        event_free(h->lev);
        h->lev = NULL;
    }
    if (h->retry) {
        event_free(h->retry);
        h->retry = NULL;
    }
    if (h->lfd >= 0) {
        close(h->lfd);
        h->lfd = -1;
    }
}

void gw_http_stop(gw_http *h)
{
    h->stopping = 1;
    close_listener(h);
    for (gw_conn *c = h->conns; c; c = c->next) {
        if (c->dead)
            continue;
        switch (c->state) {
        case S_IDLE:
            if (c->out_off == c->out_len && !c->in_flush) {
                conn_close(c);
            } else {
                c->state = S_CLOSING;
                conn_timer(c, 0);
            }
            break;
        case S_HEAD:
        case S_BODY: /* only partly in: closed, the client may retry */
            conn_close(c);
            break;
        default: /* busy: closes after its reply; closing, lingering: already going */
            break;
        }
    }
}

size_t gw_http_conns(const gw_http *h)
{
    return h->nconns;
}

void gw_http_cork(gw_http *h)
{
    h->corked++;
}

void gw_http_uncork(gw_http *h)
{
    if (h->corked <= 0 || --h->corked > 0)
        return;
    while (h->flushq) {
        gw_conn *c = h->flushq;
        flushq_del(c);
        if (c->out_off == c->out_len) {
            if (c->state == S_CLOSING)
                conn_linger_or_close(c);
            continue;
        }
        conn_flush(c, 0);
    }
}

void gw_http_free(gw_http *h)
{
    if (!h)
        return;
    close_listener(h);
    while (h->conns) {
        gw_conn *c = h->conns;
        gw_hreq *q = c->q;
        if (q && q->handler && q->gone_cb) {
            c->q = NULL;
            q->gone_cb(q, q->gone_arg);
            req_free(q);
        }
        conn_free(c);
    }
    while (h->orphans) {
        gw_hreq *q = h->orphans;
        orphan_del(h, q);
        req_free(q);
    }
    free(h);
}

/* ---- the request API ---------------------------------------------------- */

int gw_hreq_method(const gw_hreq *q)
{
    return q->method;
}

const char *gw_hreq_method_name(const gw_hreq *q)
{
    return q->method_name;
}

const char *gw_hreq_path(const gw_hreq *q)
{
    return q->path;
}

const char *gw_hreq_header(const gw_hreq *q, const char *name)
{
    for (size_t i = 0; i < q->nh; i++)
        if (strcasecmp(q->hv[i].name, name) == 0)
            return q->hv[i].value;
    return NULL;
}

void gw_hreq_headers_each(const gw_hreq *q, int (*fn)(void *ud, const char *name, const char *value), void *ud)
{
    for (size_t i = 0; i < q->nh; i++)
        if (fn(ud, q->hv[i].name, q->hv[i].value))
            return;
}

const char *gw_hreq_body(const gw_hreq *q, size_t *len)
{
    if (len)
        *len = q->body ? q->body_len : 0;
    return q->body ? q->body : "";
}

char *gw_hreq_take_body(gw_hreq *q, size_t *len)
{
    char *b = q->body;
    size_t n = q->body_len;
    if (!b) {
        b = malloc(1);
        if (!b)
            return NULL;
        b[0] = '\0';
        n = 0;
    }
    q->body = NULL;
    q->body_len = q->body_cap = 0;
    if (len)
        *len = n;
    return b;
}

int gw_hreq_minor(const gw_hreq *q)
{
    return q->minor;
}

evutil_socket_t gw_hreq_fd(const gw_hreq *q)
{
    return q->c && !q->c->dead ? q->c->fd : -1;
}

/* A live connection the reply can go to, or NULL (orphaned, closed). */
static gw_conn *live(const gw_hreq *q)
{
    return q->c && !q->c->dead ? q->c : NULL;
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return 1;
    return 0;
}

static int hb_put(gw_conn *c, const char *p, size_t n)
{
    if (!c->hb_len)
        c->hb_len = HEAD_RESERVE;
    if (grow(&c->hb, &c->hb_cap, c->hb_len + n) < 0)
        return -1;
    memcpy(c->hb + c->hb_len, p, n);
    c->hb_len += n;
    return 0;
}

int gw_hreq_add_header(gw_hreq *q, const char *name, const char *value)
{
    if (!name || !value || !*name || q->started || has_ctl(value))
        return -1;
    for (const char *p = name; *p; p++)
        if (*p == '\r' || *p == '\n' || *p == ':' || *p == ' ' || *p == '\t')
            return -1;
    int first = name[0] | 0x20; /* only names starting with c or t can be the layer's own */
    if (first == 't' && strcasecmp(name, "Transfer-Encoding") == 0)
        return -1;
    if (first == 'c' && strcasecmp(name, "Content-Length") == 0)
        return -1;
    if (first == 'c' && strcasecmp(name, "Connection") == 0) {
        if (strcasestr(value, "close"))
            q->close = 1;
        return 0;
    }
    gw_conn *c = live(q);
    if (!c)
        return 0;
    size_t nl = strlen(name), vl = strlen(value);
    if (grow(&c->hb, &c->hb_cap, (c->hb_len ? c->hb_len : HEAD_RESERVE) + nl + vl + 4) < 0)
        return -1;
    hb_put(c, name, nl);
    hb_put(c, ": ", 2);
    hb_put(c, value, vl);
    hb_put(c, "\r\n", 2);
    return 0;
}

/* Finishes the head in c->hb: status line in front, the framing and
 * connection headers at the end. Returns the head's start. */
static char *head_finish(gw_conn *c, gw_hreq *q, int status, int chunked, uint64_t clen, size_t *len)
{
    if (status < 100 || status > 999)
        status = 500;
    char tail[96];
    size_t t = 0;
    if (chunked == 1) {
        memcpy(tail + t, "Transfer-Encoding: chunked\r\n", 28);
        t += 28;
    } else if (chunked == 0 && status >= 200 && status != 204 && status != 304) {
        memcpy(tail + t, "Content-Length: ", 16);
        t += 16;
        t += utoa(tail + t, clen);
        tail[t++] = '\r';
        tail[t++] = '\n';
    }
    int keep = c->keep && !q->close && !c->h->stopping && chunked != 2;
    c->keep = (unsigned)keep;
    if (!keep) {
        memcpy(tail + t, "Connection: close\r\n", 19);
        t += 19;
    } else if (q->minor == 0) {
        memcpy(tail + t, "Connection: keep-alive\r\n", 24);
        t += 24;
    }
    tail[t++] = '\r';
    tail[t++] = '\n';
    if (hb_put(c, tail, t) < 0)
        return NULL;
    const char *reason = gw_http_reason(status);
    size_t rl = strlen(reason);
    size_t sl = 9 + 3 + 1 + rl + 2;
    char *s = c->hb + HEAD_RESERVE - sl;
    memcpy(s, q->minor ? "HTTP/1.1 " : "HTTP/1.0 ", 9);
    s[9] = (char)('0' + status / 100);
    s[10] = (char)('0' + status / 10 % 10);
    s[11] = (char)('0' + status % 10);
    s[12] = ' ';
    memcpy(s + 13, reason, rl);
    s[13 + rl] = '\r';
    s[14 + rl] = '\n';
    *len = c->hb_len - HEAD_RESERVE + sl;
    return s;
}

static void hb_reset(gw_conn *c)
{
    c->hb_len = 0;
    shrink(&c->hb, &c->hb_cap, HB_KEEP);
}

/* Frees q, finished by its handler; returns its connection when that is
 * still open (NULL: orphaned or closed). */
static gw_conn *req_release(gw_hreq *q)
{
    if (q->orphan) {
        orphan_del(q->h, q);
        req_free(q);
        return NULL;
    }
    gw_conn *c = q->c;
    if (c && c->q == q) {
        c->q = NULL;
        c->gone_pending = 0;
    }
    req_free(q);
    return c && !c->dead ? c : NULL;
}

/* q is finished: freed; its connection goes on. */
static void req_finish(gw_hreq *q)
{
    gw_conn *c = req_release(q);
    if (c)
        conn_next(c);
}

static void arm_drain(gw_hreq *q)
{
    gw_conn *c = live(q);
    if (c && c->out_off < c->out_len)
        q->drain_armed = 1;
}

void gw_hreq_reply(gw_hreq *q, int status, const void *body, size_t len)
{
    if (q->started) {
        gw_hreq_chunk(q, body, len);
        gw_hreq_end(q);
        return;
    }
    gw_conn *c = live(q);
    if (status < 100 || status > 999)
        status = 500;
    if (c) {
        size_t hl;
        char *hd = head_finish(c, q, status, 0, len, &hl);
        if (!hd) {
            conn_fail(c);
        } else {
            int bodyless = q->is_head || status < 200 || status == 204 || status == 304;
            struct iovec iov[2] = {{hd, hl}, {(void *)body, bodyless ? 0 : len}};
            conn_sendv(c, iov, iov[1].iov_len ? 2 : 1);
        }
        hb_reset(c);
    }
    req_finish(q);
}

/* A streamed reply's head. framing: 1 chunked, 2 none (the end of the body
 * is the end of the connection), 0 Content-Length clen. */
static void reply_start(gw_hreq *q, int status, int framing, uint64_t clen)
{
    if (q->started)
        return;
    q->started = 1;
    q->chunked_out = framing == 1 && !q->is_head;
    gw_conn *c = live(q);
    if (!c)
        return;
    size_t hl;
    char *hd = head_finish(c, q, status, framing, clen, &hl);
    if (!hd) {
        hb_reset(c);
        conn_fail(c);
        return;
    }
    struct iovec iov = {hd, hl};
    conn_sendv(c, &iov, 1);
    hb_reset(c);
    arm_drain(q);
}

void gw_hreq_start(gw_hreq *q, int status)
{
    /* HTTP/1.0 has no chunks: its body ends with the connection */
    reply_start(q, status, q->minor == 1 ? 1 : 2, 0);
}

void gw_hreq_chunk(gw_hreq *q, const void *p, size_t n)
{
    gw_conn *c = live(q);
    if (!c || !q->started || !n || q->is_head)
        return;
    if (q->chunked_out) {
        char sz[24];
        static const char hex[] = "0123456789abcdef";
        size_t k = 0;
        char tmp[20];
        size_t v = n;
        do {
            tmp[k++] = hex[v & 15];
            v >>= 4;
        } while (v);
        for (size_t i = 0; i < k; i++)
            sz[i] = tmp[k - 1 - i];
        sz[k++] = '\r';
        sz[k++] = '\n';
        struct iovec iov[3] = {{sz, k}, {(void *)p, n}, {(char *)"\r\n", 2}};
        conn_sendv(c, iov, 3);
    } else {
        struct iovec iov = {(void *)p, n};
        conn_sendv(c, &iov, 1);
    }
    arm_drain(q);
}

size_t gw_hreq_pending(const gw_hreq *q)
{
    gw_conn *c = live(q);
    return c ? c->out_len - c->out_off : 0;
}

void gw_hreq_set_drained_cb(gw_hreq *q, void (*cb)(gw_hreq *q, void *arg), void *arg)
{
    q->drained_cb = cb;
    q->drained_arg = arg;
}

void gw_hreq_end(gw_hreq *q)
{
    if (!q->started)
        gw_hreq_start(q, 200);
    gw_conn *c = live(q);
    if (c && q->chunked_out) {
        struct iovec iov = {(char *)"0\r\n\r\n", 5};
        conn_sendv(c, &iov, 1);
    }
    req_finish(q);
}

void gw_hreq_set_gone_cb(gw_hreq *q, void (*cb)(gw_hreq *q, void *arg), void *arg)
{
    q->gone_cb = cb;
    q->gone_arg = arg;
}

/* ---- for tests and the fuzzer ------------------------------------------- */

int gw_http__adopt(gw_http *h, evutil_socket_t fd)
{
    return conn_new(h, fd) ? 0 : -1;
}

/* ---- for cutover sim ------------------------------------------------------ */

evutil_socket_t gw_http_listen(const struct sockaddr *sa, int salen, int reuseport)
{
    evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
        bind(fd, sa, (socklen_t)salen) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

const char *gw_hreq_target(const gw_hreq *q)
{
    return q->target && *q->target ? q->target : "/";
}

void gw_hreq_start_sized(gw_hreq *q, int status, size_t len)
{
    reply_start(q, status, 0, len);
}

void gw_hreq_abort(gw_hreq *q, int reset)
{
    gw_conn *c = req_release(q);
    if (!c)
        return;
    c->keep = 0;
    if (reset) {
        struct linger l = {1, 0};
        (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        conn_close(c);
        return;
    }
    /* what was queued goes out first, then the connection closes */
    c->state = S_CLOSING;
    if (c->out_off == c->out_len && !c->in_flush)
        conn_linger_or_close(c);
    else
        conn_timer(c, 0);
}
