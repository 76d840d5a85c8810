/* The network side of `cutover sim`: one libevent loop per worker thread,
 * each with its own SO_REUSEPORT listener and evhttp, delivering the replies
 * the core computes. Immediate replies go out inside the request callback;
 * anything with latency or a fault becomes a pending reply driven by event
 * timers (never sleep): SSE events paced per token, JSON after a delay,
 * connections held (timeout), reset, or cut mid-way (truncate). A pending
 * reply also watches its socket so a client that gives up frees it. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cutover/util.h"
#include "sim/sim_int.h"

#define MAX_THREADS 64

struct co__sim_worker;

typedef struct co__sim_pending {
    struct co__sim_worker *w;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event timer, watch;
    int watch_on;
    struct co__sim_pending *prev, *next;
    co_buf body;
    co__sim_cut *cuts;
    size_t n_cuts, cur;  /* events, and the next one to send */
    int stream, fault, status;
    int64_t per_token_ms;
    size_t trunc_at; /* > 0: the reply stops at this byte and the connection drops */
} co__sim_pending;

typedef struct co__sim_worker {
    struct co_sim *sim;
    int idx;
    struct event_base *base;
    struct evhttp *http;
    int stop_fd;
    struct event *stop_ev;
    pthread_t th;
    int started;
    co__sim_core core;
    co__sim_reply reply;
    co__sim_pending *pending;
    struct evbuffer *scratch;
} co__sim_worker;

struct co_sim {
    co_sim_scenario *sc;
    co__sim_shared sh;
    co__sim_worker *w;
    int n;
    int port;
    char host[128];
    struct event *sigint, *sigterm;
};

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 529: return "Site Overloaded";
    default: return "Error";
    }
}

static const char *method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "UNKNOWN";
    }
}

/* ---- pending replies ----------------------------------------------------- */

static void pending_unlink(co__sim_pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->w->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

/* Takes p off its connection: no more callbacks will name it. */
static void pending_detach(co__sim_pending *p)
{
    if (p->evcon)
        evhttp_connection_set_closecb(p->evcon, NULL, NULL);
    event_del(&p->timer);
    if (p->watch_on)
        event_del(&p->watch);
    p->watch_on = 0;
    pending_unlink(p);
}

static void pending_free(co__sim_pending *p)
{
    co_buf_free(&p->body);
    free(p->cuts);
    free(p);
}

/* The connection is going away (client closed, write failed, or shutdown). */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    co__sim_pending *p = arg;
    p->evcon = NULL;
    pending_detach(p);
    /* evhttp detaches an unfinished request from a failed connection and
     * leaves it to us; at shutdown it is still attached and freed with it */
    if (evhttp_request_get_connection(p->req) == NULL)
        evhttp_request_free(p->req);
    pending_free(p);
}

/* Drops the connection without a (complete) reply; reset sends an RST. */
static void drop(co__sim_pending *p, int rst)
{
    struct evhttp_connection *evcon = p->evcon;
    pending_detach(p);
    pending_free(p);
    if (!evcon)
        return;
    if (rst) {
        struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
        evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
        struct linger l = {1, 0};
        if (fd >= 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    evhttp_connection_free(evcon); /* frees the attached request too */
}

/* The truncated part has reached the socket: now cut the connection. */
static void on_cut_flushed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    drop(arg, 0);
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    co__sim_pending *p = arg;
    char ch;
    ssize_t n = recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
        p->watch_on = 0; /* a pipelined request: cannot tell a close from here on */
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        event_add(&p->watch, NULL);
        return;
    }
    drop(p, 0); /* the client gave up */
}

static void cut_at(co__sim_pending *p, size_t start)
{
    co__sim_worker *w = p->w;
    evbuffer_add(w->scratch, p->body.p + start, p->trunc_at - start);
    if (p->watch_on)
        event_del(&p->watch);
    p->watch_on = 0;
    evhttp_send_reply_chunk_with_cb(p->req, w->scratch, on_cut_flushed, p);
}

static void stream_step(co__sim_pending *p)
{
    co__sim_worker *w = p->w;
    size_t start = p->cur ? p->cuts[p->cur - 1].end : 0, end = start;
    int tok = 0;
    while (p->cur < p->n_cuts) {
        const co__sim_cut *c = &p->cuts[p->cur];
        if (c->token && tok && p->per_token_ms > 0)
            break;
        tok |= c->token;
        end = c->end;
        p->cur++;
    }
    if (p->trunc_at && end >= p->trunc_at) {
        cut_at(p, start);
        return;
    }
    if (end > start) {
        evbuffer_add(w->scratch, p->body.p + start, end - start);
        evhttp_send_reply_chunk(p->req, w->scratch);
    }
    if (p->cur >= p->n_cuts) {
        struct evhttp_request *req = p->req;
        pending_detach(p);
        pending_free(p);
        evhttp_send_reply_end(req);
        return;
    }
    struct timeval tv = {p->per_token_ms / 1000, (p->per_token_ms % 1000) * 1000};
    evtimer_add(&p->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    co__sim_pending *p = arg;
    if (p->fault == CO__SIM_F_RESET) {
        drop(p, 1);
        return;
    }
    if (p->stream) {
        stream_step(p);
        return;
    }
    struct evhttp_request *req = p->req;
    if (p->trunc_at) {
        /* promise the whole body, send half: the client sees a short read */
        char cl[32];
        snprintf(cl, sizeof cl, "%zu", p->body.len);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", cl);
        evhttp_send_reply_start(req, p->status, reason(p->status));
        cut_at(p, 0);
        return;
    }
    evbuffer_add(evhttp_request_get_output_buffer(req), p->body.p, p->body.len);
    int status = p->status;
    pending_detach(p);
    pending_free(p);
    evhttp_send_reply(req, status, reason(status), NULL);
}

static void defer(co__sim_worker *w, struct evhttp_request *req, co__sim_reply *r)
{
    co__sim_pending *p = calloc(1, sizeof *p);
    if (!p) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    p->w = w;
    p->req = req;
    p->evcon = evhttp_request_get_connection(req);
    /* take the reply's body instead of copying it; the reply starts afresh */
    p->body = r->body;
    co_buf_init(&r->body, p->body.max);
    if (r->n_cuts) {
        p->cuts = malloc(r->n_cuts * sizeof *p->cuts);
        if (!p->cuts) {
            pending_free(p);
            evhttp_send_error(req, 500, "out of memory");
            return;
        }
        memcpy(p->cuts, r->cuts, r->n_cuts * sizeof *p->cuts);
        p->n_cuts = r->n_cuts;
    }
    p->stream = r->stream;
    p->fault = r->fault;
    p->status = r->status;
    p->per_token_ms = r->per_token_ms;
    if (r->fault == CO__SIM_F_TRUNCATE && p->body.len > 1) {
        if (p->stream && p->n_cuts >= 2) {
            size_t ev = p->n_cuts / 2;
            size_t a = p->cuts[ev - 1].end, b = p->cuts[ev].end;
            p->trunc_at = a + ((b - a) / 2 ? (b - a) / 2 : 1);
        } else {
            p->trunc_at = p->body.len / 2;
        }
    }
    evtimer_assign(&p->timer, w->base, on_timer, p);
    p->next = w->pending;
    if (w->pending)
        w->pending->prev = p;
    w->pending = p;
    if (p->evcon) {
        evhttp_connection_set_closecb(p->evcon, on_close, p);
        struct bufferevent *bev = evhttp_connection_get_bufferevent(p->evcon);
        evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
        if (fd >= 0) {
            event_assign(&p->watch, w->base, fd, EV_READ, on_watch, p);
            event_add(&p->watch, NULL);
            p->watch_on = 1;
        }
    }
    if (p->fault == CO__SIM_F_TIMEOUT)
        return; /* never answered: held until the client gives up */
    int64_t ms = 0;
    if (p->fault != CO__SIM_F_RESET) {
        if (p->stream) {
            /* headers now, tokens after the time to first token */
            evhttp_send_reply_start(req, p->status, reason(p->status));
            ms = r->ttft_ms;
        } else {
            ms = r->delay_ms;
        }
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(&p->timer, &tv);
}

/* ---- requests ------------------------------------------------------------ */

static void set_headers(struct evhttp_request *req, const co__sim_reply *r)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_add_header(oh, "Content-Type", r->ctype ? r->ctype : "application/json");
    if (r->id_header && r->id[0]) {
        char id[64];
        snprintf(id, sizeof id, "req_%s", r->id);
        evhttp_add_header(oh, r->id_header, id);
    }
    if (r->retry_after_ms > 0) {
        char v[32];
        snprintf(v, sizeof v, "%lld", (long long)((r->retry_after_ms + 999) / 1000));
        evhttp_add_header(oh, "retry-after", v);
        if (r->retry_after_ms_header) {
            snprintf(v, sizeof v, "%lld", (long long)r->retry_after_ms);
            evhttp_add_header(oh, "retry-after-ms", v);
        }
    }
    if (r->stream && r->ctype && !strncmp(r->ctype, "text/event-stream", 17))
        evhttp_add_header(oh, "Cache-Control", "no-cache");
}

static void on_request(struct evhttp_request *req, void *arg)
{
    co__sim_worker *w = arg;
    co__sim_http in;
    in.method = method_name(evhttp_request_get_command(req));
    in.uri = evhttp_request_get_uri(req);
    in.nh = 0;
    struct evkeyvalq *hs = evhttp_request_get_input_headers(req);
    for (struct evkeyval *kv = hs->tqh_first; kv; kv = kv->next.tqe_next) {
        if (in.nh == CO__SIM_MAX_HEADERS)
            break;
        in.hname[in.nh] = kv->key;
        in.hval[in.nh] = kv->value;
        in.nh++;
    }
    struct evbuffer *ib = evhttp_request_get_input_buffer(req);
    in.body_len = evbuffer_get_length(ib);
    in.body = in.body_len ? (const char *)evbuffer_pullup(ib, -1) : "";
    co__sim_reply *r = &w->reply;
    co__sim_handle(&w->core, &in, r);

    if (r->fault != CO__SIM_F_TIMEOUT && r->fault != CO__SIM_F_RESET)
        set_headers(req, r);
    int now = r->fault == CO__SIM_F_NONE &&
              (r->stream ? r->ttft_ms == 0 && r->per_token_ms == 0 : r->delay_ms == 0);
    if (!now) {
        defer(w, req, r);
        return;
    }
    if (!r->stream) {
        evbuffer_add(evhttp_request_get_output_buffer(req), r->body.p, r->body.len);
        evhttp_send_reply(req, r->status, reason(r->status), NULL);
        return;
    }
    evhttp_send_reply_start(req, r->status, reason(r->status));
    evbuffer_add(w->scratch, r->body.p, r->body.len);
    evhttp_send_reply_chunk(req, w->scratch);
    evhttp_send_reply_end(req);
}

/* ---- workers ------------------------------------------------------------- */

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    co__sim_worker *w = arg;
    uint64_t v;
    if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN) {
        /* nothing to do: the loop stops either way */
    }
    event_base_loopbreak(w->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig, (void)what;
    co_sim_stop(arg);
}

static void worker_destroy(co__sim_worker *w)
{
    if (w->http)
        evhttp_free(w->http); /* closes connections: on_close frees their pending replies */
    while (w->pending) {
        co__sim_pending *p = w->pending;
        pending_detach(p);
        if (evhttp_request_get_connection(p->req) == NULL)
            evhttp_request_free(p->req);
        pending_free(p);
    }
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    if (w->scratch)
        evbuffer_free(w->scratch);
    if (w->base)
        event_base_free(w->base);
    co__sim_core_destroy(&w->core);
    co__sim_reply_free(&w->reply);
    w->http = NULL;
    w->base = NULL;
}

static int worker_init(co_sim *sim, co__sim_worker *w, int idx, const struct sockaddr_storage *ss,
                       int sslen)
{
    w->sim = sim;
    w->idx = idx;
    w->stop_fd = -1;
    co__sim_reply_init(&w->reply);
    int rc = co__sim_core_init(&w->core, &sim->sh);
    if (rc)
        return rc;
    struct event_config *cfg = event_config_new();
    if (cfg) {
        /* evhttp enables and disables a connection's events several times per
         * request; the changelist folds them into one epoll_ctl per loop turn */
        event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        w->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    w->scratch = evbuffer_new();
    w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!w->base || !w->scratch || w->stop_fd < 0)
        return co_error_set(CO_ENOMEM, "cannot create an event loop: %s", strerror(errno));
    w->stop_ev = event_new(w->base, w->stop_fd, EV_READ | EV_PERSIST, on_stop, w);
    if (!w->stop_ev || event_add(w->stop_ev, NULL))
        return co_error_set(CO_ENOMEM, "cannot create an event");
    w->http = evhttp_new(w->base);
    if (!w->http)
        return co_error_set(CO_ENOMEM, "cannot create an HTTP server");
    evhttp_set_gencb(w->http, on_request, w);
    /* twice the limit, so bodies just over it get the API's own 413 */
    evhttp_set_max_body_size(w->http, (ev_ssize_t)sim->sc->max_body * 2);
    evhttp_set_max_headers_size(w->http, 64 * 1024);
    evhttp_set_timeout(w->http, 120);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                            EVHTTP_REQ_PATCH);
    struct sockaddr_storage sa = *ss;
    if (idx > 0) {
        if (sa.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)sim->port);
        else
            ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)sim->port);
    }
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
    if (sim->n > 1)
        flags |= LEV_OPT_REUSEABLE_PORT;
    struct evconnlistener *lis =
        evconnlistener_new_bind(w->base, NULL, NULL, flags, 1024, (struct sockaddr *)&sa, sslen);
    if (!lis)
        return co_error_set(CO_ENET, "cannot listen on %s: %s", sim->host, strerror(errno));
    if (!evhttp_bind_listener(w->http, lis)) {
        evconnlistener_free(lis);
        return co_error_set(CO_ENET, "cannot serve HTTP on %s", sim->host);
    }
    if (idx == 0) {
        struct sockaddr_storage got;
        socklen_t gl = sizeof got;
        if (getsockname(evconnlistener_get_fd(lis), (struct sockaddr *)&got, &gl) < 0)
            return co_error_set(CO_ENET, "getsockname: %s", strerror(errno));
        sim->port = got.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                                              : ntohs(((struct sockaddr_in *)&got)->sin_port);
    }
    return 0;
}

/* ---- public API ---------------------------------------------------------- */

/* "127.0.0.1:0", "[::1]:8080", "localhost:80", "0.0.0.0:9000"; port 0 = ephemeral
 * (evutil_parse_sockaddr_port refuses port 0). */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, int *len)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host)
        return -1;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return -1;
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[') {
        size_t hl = strlen(host);
        if (hl < 3 || host[hl - 1] != ']')
            return -1;
        host[hl - 1] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        if (evutil_inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return -1;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = (int)sizeof *s6;
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    if (!strcmp(host, "localhost"))
        strcpy(host, "127.0.0.1");
    if (evutil_inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return -1;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *len = (int)sizeof *s4;
    return 0;
}

int co_sim_new(co_sim **out, const co_sim_opts *opts, co_diags *diags)
{
    int rc = 0;
    *out = NULL;
    co_sim *sim = calloc(1, sizeof *sim);
    if (!sim)
        return co_error_set(CO_ENOMEM, "out of memory");
    const char *listen = opts && opts->listen ? opts->listen : "127.0.0.1:0";
    int threads = opts && opts->threads > 0 ? opts->threads : 1;
    if (threads > MAX_THREADS) {
        rc = co_error_set(CO_EINVAL, "--threads must be at most %d", MAX_THREADS);
        goto done;
    }
    struct sockaddr_storage ss;
    int sslen = (int)sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (parse_listen(listen, &ss, &sslen)) {
        rc = co_error_set(CO_EINVAL, "'%s' is not an address to listen on (e.g. 127.0.0.1:8080)", listen);
        goto done;
    }
    if ((rc = co_sim_scenario_load(&sim->sc, opts ? opts->scenario_path : NULL, diags)))
        goto done;
    uint64_t seed = (uint64_t)(opts && opts->set_seed ? opts->seed : sim->sc->seed);
    if ((rc = co__sim_shared_init(&sim->sh, sim->sc, seed, opts && opts->record, (size_t)threads)))
        goto done;
    sim->n = threads;
    sim->w = calloc((size_t)threads, sizeof *sim->w);
    if (!sim->w) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < threads; i++)
        sim->w[i].stop_fd = -1;
    /* the host part as given, for the "listening on" line */
    const char *colon = strrchr(listen, ':');
    snprintf(sim->host, sizeof sim->host, "%.*s", (int)(colon - listen), listen);
    for (int i = 0; i < threads; i++)
        if ((rc = worker_init(sim, &sim->w[i], i, &ss, sslen)))
            goto done;
    if (opts && opts->handle_signals) {
        sim->sigint = evsignal_new(sim->w[0].base, SIGINT, on_signal, sim);
        sim->sigterm = evsignal_new(sim->w[0].base, SIGTERM, on_signal, sim);
        if (!sim->sigint || !sim->sigterm || event_add(sim->sigint, NULL) || event_add(sim->sigterm, NULL)) {
            rc = co_error_set(CO_EIO, "cannot handle signals");
            goto done;
        }
    }
done:
    if (rc) {
        co_sim_free(sim);
        return rc;
    }
    *out = sim;
    return 0;
}

int co_sim_port(const co_sim *sim) { return sim->port; }

const char *co_sim_address(const co_sim *sim, char *buf, size_t n)
{
    snprintf(buf, n, "%s:%d", sim->host, sim->port);
    return buf;
}

static void *worker_main(void *arg)
{
    co__sim_worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

int co_sim_run(co_sim *sim)
{
    for (int i = 1; i < sim->n; i++)
        if (pthread_create(&sim->w[i].th, NULL, worker_main, &sim->w[i]) == 0)
            sim->w[i].started = 1;
    event_base_dispatch(sim->w[0].base);
    /* one worker stopping (a signal) stops them all */
    co_sim_stop(sim);
    for (int i = 1; i < sim->n; i++)
        if (sim->w[i].started) {
            pthread_join(sim->w[i].th, NULL);
            sim->w[i].started = 0;
        }
    return 0;
}

void co_sim_stop(co_sim *sim)
{
    uint64_t one = 1;
    for (int i = 0; i < sim->n; i++)
        if (sim->w[i].stop_fd >= 0 && write(sim->w[i].stop_fd, &one, sizeof one) < 0) {
            /* the counter cannot overflow here; a failed write leaves it readable anyway */
        }
}

void co_sim_free(co_sim *sim)
{
    if (!sim)
        return;
    if (sim->sigint)
        event_free(sim->sigint);
    if (sim->sigterm)
        event_free(sim->sigterm);
    for (int i = 0; sim->w && i < sim->n; i++)
        worker_destroy(&sim->w[i]);
    free(sim->w);
    co__sim_shared_destroy(&sim->sh);
    co_sim_scenario_free(sim->sc);
    free(sim);
}
