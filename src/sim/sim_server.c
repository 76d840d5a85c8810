/* The network side of `cutover sim`: one libevent loop per worker thread,
 * each with its own SO_REUSEPORT listener and the gateway's HTTP/1.1 server
 * (gateway/http.h), delivering the replies
 * the core computes. Immediate replies go out inside the request callback;
 * anything with latency or a fault becomes a pending reply driven by event
 * timers (never sleep): SSE events paced per token, JSON after a delay,
 * connections held (timeout), reset, or cut mid-way (truncate). A pending
 * reply hears from the HTTP layer when its client gives up, and is freed. */
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
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
#include "gateway/http.h"
#include "sim/sim_int.h"

#define MAX_THREADS 64

struct co__sim_worker;

typedef struct co__sim_pending {
    struct co__sim_worker *w;
    gw_hreq *req;
    struct event timer;
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
    gw_http *http;
    int stop_fd;
    struct event *stop_ev;
    pthread_t th;
    int started;
    co__sim_core core;
    co__sim_reply reply;
    co__sim_pending *pending;
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

/* Takes p off its request: no more callbacks will name it. */
static void pending_detach(co__sim_pending *p)
{
    if (p->req)
        gw_hreq_set_gone_cb(p->req, NULL, NULL);
    event_del(&p->timer);
    pending_unlink(p);
}

static void pending_free(co__sim_pending *p)
{
    co_buf_free(&p->body);
    free(p->cuts);
    free(p);
}

/* The client went away (closed, a write failed, or shutdown). */
static void on_gone(gw_hreq *q, void *arg)
{
    (void)q;
    co__sim_pending *p = arg;
    p->req = NULL; /* freed by the HTTP layer */
    pending_detach(p);
    pending_free(p);
}

/* Drops the connection without a (complete) reply, after what was queued
 * (the truncated part); reset sends an RST at once. */
static void drop(co__sim_pending *p, int rst)
{
    gw_hreq *q = p->req;
    pending_detach(p);
    pending_free(p);
    if (q)
        gw_hreq_abort(q, rst);
}

static void cut_at(co__sim_pending *p, size_t start)
{
    gw_hreq_chunk(p->req, p->body.p + start, p->trunc_at - start);
    drop(p, 0);
}

static void stream_step(co__sim_pending *p)
{
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
    if (end > start)
        gw_hreq_chunk(p->req, p->body.p + start, end - start);
    if (p->cur >= p->n_cuts) {
        gw_hreq *q = p->req;
        pending_detach(p);
        pending_free(p);
        gw_hreq_end(q);
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
    gw_hreq *q = p->req;
    if (p->trunc_at) {
        /* promise the whole body, send half: the client sees a short read */
        gw_hreq_start_sized(q, p->status, p->body.len);
        cut_at(p, 0);
        return;
    }
    pending_detach(p);
    gw_hreq_reply(q, p->status, p->body.p, p->body.len);
    pending_free(p);
}

static void reply_oom(gw_hreq *q)
{
    static const char body[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"api_error\"}}";
    gw_hreq_reply(q, 500, body, sizeof body - 1);
}

static void defer(co__sim_worker *w, gw_hreq *req, co__sim_reply *r)
{
    co__sim_pending *p = calloc(1, sizeof *p);
    if (!p) {
        reply_oom(req);
        return;
    }
    p->w = w;
    p->req = req;
    /* take the reply's body instead of copying it; the reply starts afresh */
    p->body = r->body;
    co_buf_init(&r->body, p->body.max);
    if (r->n_cuts) {
        p->cuts = malloc(r->n_cuts * sizeof *p->cuts);
        if (!p->cuts) {
            pending_free(p);
            reply_oom(req);
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
    gw_hreq_set_gone_cb(req, on_gone, p);
    if (p->fault == CO__SIM_F_TIMEOUT)
        return; /* never answered: held until the client gives up */
    int64_t ms = 0;
    if (p->fault != CO__SIM_F_RESET) {
        if (p->stream) {
            /* headers now, tokens after the time to first token */
            gw_hreq_start(req, p->status);
            ms = r->ttft_ms;
        } else {
            ms = r->delay_ms;
        }
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(&p->timer, &tv);
}

/* ---- requests ------------------------------------------------------------ */

static void set_headers(gw_hreq *req, const co__sim_reply *r)
{
    gw_hreq_add_header(req, "Content-Type", r->ctype ? r->ctype : "application/json");
    if (r->id_header && r->id[0]) {
        char id[64] = "req_";
        size_t n = strnlen(r->id, sizeof r->id); /* NUL-terminated: a 24-digit hex id */
        memcpy(id + 4, r->id, n);
        id[4 + n] = '\0';
        gw_hreq_add_header(req, r->id_header, id);
    }
    if (r->retry_after_ms > 0) {
        char v[32];
        snprintf(v, sizeof v, "%lld", (long long)((r->retry_after_ms + 999) / 1000));
        gw_hreq_add_header(req, "retry-after", v);
        if (r->retry_after_ms_header) {
            snprintf(v, sizeof v, "%lld", (long long)r->retry_after_ms);
            gw_hreq_add_header(req, "retry-after-ms", v);
        }
    }
    if (r->stream && r->ctype && !strncmp(r->ctype, "text/event-stream", 17))
        gw_hreq_add_header(req, "Cache-Control", "no-cache");
}

static int add_header(void *ud, const char *name, const char *value)
{
    co__sim_http *in = ud;
    if (in->nh == CO__SIM_MAX_HEADERS)
        return 1;
    in->hname[in->nh] = name;
    in->hval[in->nh] = value;
    in->nh++;
    return 0;
}

static void on_request(gw_hreq *req, void *arg)
{
    co__sim_worker *w = arg;
    co__sim_http in;
    in.method = gw_hreq_method_name(req);
    in.uri = gw_hreq_target(req);
    in.nh = 0;
    gw_hreq_headers_each(req, add_header, &in);
    in.body = gw_hreq_body(req, &in.body_len);
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
        gw_hreq_reply(req, r->status, r->body.p, r->body.len);
        return;
    }
    gw_hreq_start(req, r->status);
    gw_hreq_chunk(req, r->body.p, r->body.len);
    gw_hreq_end(req);
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
        gw_http_free(w->http); /* closes connections: on_gone frees their pending replies */
    while (w->pending) {
        co__sim_pending *p = w->pending;
        p->req = NULL;
        pending_detach(p);
        pending_free(p);
    }
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
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
    w->base = event_base_new();
    w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!w->base || w->stop_fd < 0)
        return co_error_set(CO_ENOMEM, "cannot create an event loop: %s", strerror(errno));
    w->stop_ev = event_new(w->base, w->stop_fd, EV_READ | EV_PERSIST, on_stop, w);
    if (!w->stop_ev || event_add(w->stop_ev, NULL))
        return co_error_set(CO_ENOMEM, "cannot create an event");
    struct sockaddr_storage sa = *ss;
    if (idx > 0) {
        if (sa.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)sim->port);
        else
            ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)sim->port);
    }
    evutil_socket_t lfd = gw_http_listen((const struct sockaddr *)&sa, sslen, sim->n > 1);
    if (lfd < 0)
        return co_error_set(CO_ENET, "cannot listen on %s: %s", sim->host, strerror(errno));
    /* twice the limit, so bodies just over it get the API's own 413 */
    gw_http_opts ho = {.max_head = 64 * 1024,
                       .max_body = sim->sc->max_body * 2,
                       .header_timeout_ms = 120000,
                       .write_timeout_ms = 120000,
                       .on_request = on_request,
                       .arg = w};
    if (!(w->http = gw_http_new(w->base, lfd, &ho)))
        return co_error_set(CO_ENOMEM, "cannot create an HTTP server");
    if (idx == 0) {
        struct sockaddr_storage got;
        socklen_t gl = sizeof got;
        if (getsockname(lfd, (struct sockaddr *)&got, &gl) < 0)
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
