/* The gateway (include/cutover/gateway.h): worker threads, each with its own
 * event_base, the HTTP/1.1 server (http.h) on a shared SO_REUSEPORT address, upstream client,
 * metrics block and recorder ring; a control loop (on the thread that calls
 * co_gateway_run) that owns signals, the store poll, admin jobs and the
 * shutdown; and the request pipeline (validate, resolve, decide, serve —
 * fast path or translated — shadow, fallback, record).
 *
 * Threads and sharing:
 *  - A request lives on one worker from start to finish. The hot path takes
 *    no lock: the route table comes from the router (one atomic RMW), the
 *    "generation" (config, providers with keys, models, metrics) from the
 *    worker's own pointer; metrics and recorder writes are per worker.
 *  - The control plane (set_mode, rollback, reload, the 250 ms store poll)
 *    runs under gw->mu, on the control thread or the caller's thread, and
 *    publishes new tables with co_router_publish.
 *  - A reload swaps each worker's generation by message (acknowledged), then
 *    publishes the new table, then lets the workers drop the previous
 *    generation. A request picks the generation whose workloads are the
 *    table's (the "tag"), so a table and the config it came from never mix.
 *  - Workers talk to the control thread through mailboxes (a mutex-guarded
 *    list + an eventfd): control messages only, never per request.
 *
 * Lifetimes: a request (gw_req) is reference counted — one reference for the
 * client side (dropped once the reply is complete or the client is gone)
 * and one per upstream call (served, fallback, shadow). A shadow call keeps
 * its request alive after the client left. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "cutover/chat.h"
#include "cutover/endpoint.h"
#include "cutover/control.h"
#include "cutover/error.h"
#include "cutover/gateway.h"
#include "cutover/metrics.h"
#include "cutover/recorder.h"
#include "cutover/redact.h"
#include "cutover/route.h"
#include "cutover/store.h"
#include "cutover/upstream.h"
#include "cutover/util.h"
#include "gateway/server_int.h"

#define GW_MAX_WORKERS 256
#define GW_POLL_MS 250
#define GW_DRAIN_GRACE_MS 8000
#define GW_DRAIN_TICK_MS 20
#define GW_ACK_WAIT_MS 5000
#define GW_OUT_HIGH ((size_t)1 << 20)   /* client output pending before the upstream is paused */
#define GW_HOLD_MAX ((size_t)1 << 20)   /* fast-path SSE bytes held waiting for an event boundary */
#define GW_ERRBODY_MAX ((size_t)64 << 10)
#define GW_MAX_EVENT ((size_t)4 << 20)  /* one SSE event */
#define GW_HEADERS_MAX (64 * 1024)
/* A client that stops reading its reply (a stream it no longer consumes) is
 * let go after this long without taking a byte. */
#define GW_CLIENT_WRITE_TIMEOUT_MS 60000
/* Heartbeats (co_store_gateway_beat): at least this often, and at once after
 * a new workload-state version goes live. */
#define GW_BEAT_MS 1000
/* Latency buckets of the per-arm figures (ms; finer than the Prometheus ones
 * so that p95 is useful at gateway speeds). */
static const double arm_bounds_ms[] = {1,    2,    3,    5,    7.5,  10,    15,    20,    30,    50,    75,
                                       100,  150,  200,  300,  500,  750,   1000,  1500,  2000,  3000,  5000,
                                       7500, 10000, 15000, 20000, 30000, 60000, 120000, 300000};
#define NBOUNDS ((int)(sizeof arm_bounds_ms / sizeof *arm_bounds_ms))
#define NB (NBOUNDS + 1)

enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* ---- generation: one config with everything derived from it --------------- */

typedef co_endpoint gw_provider;

typedef struct gw_model {
    const co_model_conf *conf;
    const gw_provider *p;
    co_chat_prices prices;
} gw_model;

typedef struct gw_wlmodels {
    const gw_model *inc, *cand;
} gw_wlmodels;

/* Per workload x arm figures for co_gateway_workloads_json (one writer each). */
typedef struct gw_armstat {
    _Atomic uint64_t req, err, dropped, b[NB];
} gw_armstat;

/* The metrics registry and arm figures, shared by generations whose
 * workload lists are the same. */
typedef struct gw_met {
    _Atomic long refs;
    co_metrics *m;
    size_t nwl;
    unsigned nworkers;
    char **names;
    gw_armstat *st; /* [worker][workload][arm] */
} gw_met;

typedef struct gw_gen {
    _Atomic long refs;
    co_config *cfg;
    gw_provider *prov;
    size_t nprov;
    gw_model *models;
    size_t nmodels;
    gw_wlmodels *wl;
    size_t nwl;
    const void *tag;                /* identity of the route tables built from cfg */
    const co_route_table *tag_table;/* keeps that identity alive */
    gw_met *met;
    char *admin_token;
    size_t max_body, max_upstream;
} gw_gen;

/* ---- requests and calls -------------------------------------------------- */

typedef struct gw_req gw_req;

typedef struct gw_call {
    gw_req *r;
    int role, arm;
    const gw_model *m;
    co_upstream_xfer *x;
    int running;
    int fast;               /* same API as the client: body rewritten, bytes passed through */
    int stream;
    co_buf ubody;
    char *url;              /* Gemini: built per call; else NULL (the provider's url) */
    int64_t t0_us, ts_ms, ttft_us, latency_us;
    int status;             /* upstream HTTP status, 0 when none */
    int rec_status;         /* status recorded (synthesized for transfer errors) */
    int up_ok;              /* a 2xx status arrived */
    int errclass;
    int abort_class;        /* we aborted the transfer: the class to record */
    int cancelled;          /* the client went away */
    int paused;
    int dec_failed, acc_failed;
    co_buf errbody;         /* streaming mode: a non-2xx body */
    co_buf hold;            /* fast stream: bytes of an unfinished event */
    co_buf out;             /* encoder output */
    co_chat_decoder *dec;
    co_chat_accum *acc;
    co_chat_encoder *enc;
    co_chat_response *resp;
    char ctype[128];
    char retry_after[32], retry_after_ms[32];
} gw_call;

struct gw_req {
    gw_worker *w;
    gw_gen *gen;
    const co_route_table *table;
    gw_hreq *ev;            /* the client's request until its reply is made or the client is gone */
    int refs;
    co_api api;
    char id[CO_ID_LEN];
    char user_key[CO_USER_KEY_MAX];
    char *body;
    size_t body_len;
    size_t model_vs, model_ve; /* gw_peek's span of the "model" value (0, 0: unknown) */
    co_chat_request *creq;  /* built on demand: only calls that translate need it */
    int stream, include_usage;
    const co_route_workload *wl;
    co_route_decision d;
    int decided;
    int64_t t0_us, ts_ms;
    gw_call *served;        /* the call serving the client now (served or fallback) */
    gw_call *shadow;
    int started;            /* bytes reached the client */
    int client_gone;
    gw_req *prev, *next;
};

/* ---- workers and the gateway -------------------------------------------- */

enum { MSG_GEN = 1, MSG_DROP_PREV, MSG_DRAIN, MSG_JOB_DONE };

typedef struct gw_msg {
    struct gw_msg *next;
    int kind;
    gw_gen *gen;
    gw_job *job;
} gw_msg;

struct gw_worker {
    co_gateway *gw;
    int idx;
    struct event_base *base;
    gw_http *http;
    co_upstream *up;
    co_recorder_ring *ring;
    gw_gen *gen, *prev;
    int mfd;
    struct event *mev;
    pthread_mutex_t mu;
    int mu_init;
    gw_msg *mhead, *mtail;
    struct event *start_ev, *drain_ev;
    int draining, cancelled_all;
    int64_t drain_deadline_us;
    gw_req *reqs;
    size_t nreqs, njobs;
    co_buf tmp;
    pthread_t th;
    int started;
    uint64_t idseq; /* request ids: splitmix64 over a per-worker random start */
    int64_t warn_at_us; /* per-request warnings: at most one a second per worker */
    uint64_t warn_quiet;
    size_t shadow_inflight;           /* bounded by limits.max_shadow_in_flight */
    _Atomic uint64_t shadow_skipped;  /* shadows not started because of that bound */
    _Atomic uint64_t accept_paused, conns_refused; /* the HTTP server's (gw_http_opts) */
};

struct co_gateway {
    co_gateway_log_fn log;
    void *log_ud;
    int log_level;
    int nworkers;
    gw_worker *w;
    co_router *router;
    co_recorder *rec;
    co_redactor *red;
    co_store *st;              /* control handle, under mu */
    pthread_mutex_t mu;
    gw_gen *gen;               /* the latest generation (under mu) */
    int64_t last_version;
    struct sockaddr_storage ss;
    int sslen;
    int port;
    char host[128];
    int loopback;
    /* control loop */
    struct event_base *cbase;
    int cfd;
    struct event *cev, *poll_ev, *sigint, *sigterm, *sighup;
    /* change watcher: a thread blocked in co_store_wait_change on its own
     * store handle kicks wfd, so a mode change made by any process (LISTEN/
     * NOTIFY on PostgreSQL) is applied at once; the GW_POLL_MS timer stays
     * as the fallback when notifications are down. */
    co_store *wst;
    pthread_t wth;
    int wstarted;
    int wfd;
    struct event *wev;
    _Atomic int wstop;
    pthread_mutex_t cmu;
    gw_job *jhead, *jtail;
    gw_http *admin_http;
    int admin_loopback;
    int handle_signals;
    _Atomic int stop_requested;
    _Atomic int stopping;
    _Atomic int nexited;
    _Atomic int nstarted;
    int running;
    pthread_mutex_t ack_mu;
    pthread_cond_t ack_cv;
    int acks;
    _Atomic uint64_t reloads_ok, reloads_failed;
    /* fleet heartbeat (under mu): "host:pid:started_ms" */
    char beat_id[320];
    char hostname[256];
    int64_t started_ms;
    int64_t beat_version, beat_ms;
    int beat_failing;
    _Atomic int64_t applied_version;   /* the highest version published to the workers */
    /* user feedback (POST /v1/feedback), stored on the control thread */
    co_redactor *ctl_red;              /* the control thread's own redactor */
    _Atomic uint64_t fb_recorded[3];   /* by score -1, 0, 1 */
    _Atomic uint64_t fb_rejected[GW_FB__COUNT];
    _Atomic long fb_pending;
};

/* ---- logging ------------------------------------------------------------- */

static void log_stderr(void *ud, int level, const char *msg)
{
    (void)ud;
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %-5s %s\n", ts, now.tv_nsec / 1000000, co_log_levels[level < 0 || level > 3 ? 0 : level],
            msg);
}

static void gw_log(co_gateway *gw, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void gw_log(co_gateway *gw, int level, const char *fmt, ...)
{
    if (level > gw->log_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gw->log(gw->log_ud, level, msg);
}

static void recorder_log(void *ud, int level, const char *msg)
{
    co_gateway *gw = ud;
    if (level <= gw->log_level)
        gw->log(gw->log_ud, level, msg);
}

/* ---- small helpers ------------------------------------------------------- */

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static void zfree(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
        return (a >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

/* "127.0.0.1:0", "[::1]:8080", "localhost:80", "0.0.0.0:9000", ":8080". */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, int *len, char *host, size_t hostn)
{
    char h[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof h)
        return -1;
    memcpy(h, listen, (size_t)(colon - listen));
    h[colon - listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return -1;
    snprintf(host, hostn, "%s", h[0] ? h : "0.0.0.0");
    memset(ss, 0, sizeof *ss);
    if (h[0] == '[') {
        size_t hl = strlen(h);
        if (hl < 3 || h[hl - 1] != ']')
            return -1;
        h[hl - 1] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        if (evutil_inet_pton(AF_INET6, h + 1, &s6->sin6_addr) != 1)
            return -1;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = (int)sizeof *s6;
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    if (!h[0])
        strcpy(h, "0.0.0.0");
    if (!strcmp(h, "localhost"))
        strcpy(h, "127.0.0.1");
    if (evutil_inet_pton(AF_INET, h, &s4->sin_addr) != 1)
        return -1;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *len = (int)sizeof *s4;
    return 0;
}

static void set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

static int get_port(evutil_socket_t fd)
{
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    if (getsockname(fd, (struct sockaddr *)&got, &gl) < 0)
        return -1;
    return got.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                                     : ntohs(((struct sockaddr_in *)&got)->sin_port);
}

/* The HTTP layer refuses bodies far over limits.max_body itself (413,
 * before reading them); those a little over it reach the request pipeline,
 * which answers its 413 in the client API's own error shape. */
static size_t http_body_max(size_t max_body)
{
    return max_body * 2 + 4096;
}

static void mbox_kick(int fd)
{
    uint64_t one = 1;
    if (fd >= 0 && write(fd, &one, sizeof one) < 0) {
        /* the counter cannot overflow; a failed write leaves it readable anyway */
    }
}

static void mbox_drain_fd(int fd)
{
    uint64_t v;
    if (read(fd, &v, sizeof v) < 0) {
        /* EAGAIN: nothing pending */
    }
}

/* A request id without a system call: 48 bits of wall-clock milliseconds,
 * then 80 bits of splitmix64 over a per-worker sequence seeded from the
 * kernel's random source. Time first because the store indexes exchanges by
 * request and pair id: ids that grow with time land at the right edge of those
 * b-trees, where random ones would dirty a different page per record. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void worker_id(gw_worker *w, int64_t now_ms, char out[CO_ID_LEN])
{
    co_hex_u64(out, ((uint64_t)now_ms << 16) | (splitmix64(&w->idseq) >> 48), 16);
    co_hex_u64(out + 16, splitmix64(&w->idseq), 16);
    out[32] = '\0';
}

/* ---- metrics wrapper ----------------------------------------------------- */

static void met_unref(gw_met *m)
{
    if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    co_metrics_free(m->m);
    for (size_t i = 0; i < m->nwl; i++)
        free(m->names[i]);
    free(m->names);
    free(m->st);
    free(m);
}

static gw_armstat *armstat(gw_met *m, unsigned worker, int wl, int arm)
{
    return &m->st[((size_t)worker * m->nwl + (size_t)wl) * 2 + (size_t)arm];
}

static void cb_recorder(void *ud, co_metrics_sink *s, int what)
{
    co_gateway *gw = ud;
    co_recorder_counters c;
    co_recorder_stats(gw->rec, &c);
    switch (what) {
    case 0: co_metrics_emit(s, NULL, (double)c.queue_depth); break;
    case 1: co_metrics_emit(s, NULL, (double)c.queue_high_water); break;
    case 2: co_metrics_emit(s, NULL, (double)c.recorded); break;
    case 3: {
        const char *l1[] = {"reason", "queue_full", NULL}, *l2[] = {"reason", "write_failed", NULL},
                   *l3[] = {"reason", "invalid", NULL};
        co_metrics_emit(s, l1, (double)c.dropped_queue_full);
        co_metrics_emit(s, l2, (double)c.dropped_write_failed);
        co_metrics_emit(s, l3, (double)c.dropped_invalid);
        break;
    }
    case 4: co_metrics_emit(s, NULL, (double)c.write_errors); break;
    case 5: co_metrics_emit(s, NULL, c.store_ok ? 1 : 0); break;
    case 6: co_metrics_emit(s, NULL, (double)c.batches); break;
    case 7: co_metrics_emit(s, NULL, c.background); break;
    case 8: co_metrics_emit(s, NULL, (double)c.lifts); break;
    case 9: co_metrics_emit(s, NULL, (double)c.recycled); break;
    default: break;
    }
}
static void cb_rec_depth(void *ud, co_metrics_sink *s) { cb_recorder(ud, s, 0); }
static void cb_rec_hw(void *ud, co_metrics_sink *s) { cb_recorder(ud, s, 1); }
static void cb_rec_recorded(void *ud, co_metrics_sink *s) { cb_recorder(ud, s, 2); }
static void cb_rec_dropped(void *ud, co_metrics_sink *s) { cb_recorder(ud, s, 3); }
static void cb_rec_errors(void *ud, co_metrics_sink *s) { cb_recorder(ud, s, 4); }
static void cb_rec_ok(void *ud, co_metrics_sink *s) { cb_recorder(ud, s, 5); }
static void cb_rec_batches(void *ud, co_metrics_sink *s) { cb_recorder(ud, s, 6); }
static void cb_rec_background(void *ud, co_metrics_sink *s) { cb_recorder(ud, s, 7); }
static void cb_rec_lifts(void *ud, co_metrics_sink *s) { cb_recorder(ud, s, 8); }
static void cb_rec_recycled(void *ud, co_metrics_sink *s) { cb_recorder(ud, s, 9); }

static void up_sum(co_gateway *gw, co_upstream_counters *sum)
{
    memset(sum, 0, sizeof *sum);
    for (int i = 0; i < gw->nworkers; i++) {
        if (!gw->w[i].up)
            continue;
        co_upstream_counters c;
        co_upstream_stats(gw->w[i].up, &c);
        sum->in_flight += c.in_flight;
        sum->started += c.started;
        sum->completed += c.completed;
        sum->connects += c.connects;
        sum->reused += c.reused;
        sum->bytes_in += c.bytes_in;
        for (int k = 0; k < CO_UPSTREAM_E__COUNT; k++)
            sum->by_err[k] += c.by_err[k];
    }
}

static void cb_up(void *ud, co_metrics_sink *s, int what)
{
    co_upstream_counters c;
    up_sum(ud, &c);
    switch (what) {
    case 0: co_metrics_emit(s, NULL, (double)c.in_flight); break;
    case 1: co_metrics_emit(s, NULL, (double)c.started); break;
    case 2: co_metrics_emit(s, NULL, (double)c.connects); break;
    case 3: co_metrics_emit(s, NULL, (double)c.reused); break;
    case 4: co_metrics_emit(s, NULL, (double)c.bytes_in); break;
    case 5:
        for (int k = 0; k < CO_UPSTREAM_E__COUNT; k++) {
            const char *l[] = {"result", co_upstream_err_name(k), NULL};
            co_metrics_emit(s, l, (double)c.by_err[k]);
        }
        break;
    default: break;
    }
}
static void cb_up_inflight(void *ud, co_metrics_sink *s) { cb_up(ud, s, 0); }
static void cb_up_started(void *ud, co_metrics_sink *s) { cb_up(ud, s, 1); }
static void cb_up_connects(void *ud, co_metrics_sink *s) { cb_up(ud, s, 2); }
static void cb_up_reused(void *ud, co_metrics_sink *s) { cb_up(ud, s, 3); }
static void cb_up_bytes(void *ud, co_metrics_sink *s) { cb_up(ud, s, 4); }
static void cb_up_results(void *ud, co_metrics_sink *s) { cb_up(ud, s, 5); }

static void cb_workers(void *ud, co_metrics_sink *s)
{
    co_gateway *gw = ud;
    co_metrics_emit(s, NULL, (double)gw->nworkers);
}

static void cb_reloads(void *ud, co_metrics_sink *s)
{
    co_gateway *gw = ud;
    const char *ok[] = {"result", "ok", NULL}, *bad[] = {"result", "failed", NULL};
    co_metrics_emit(s, ok, (double)atomic_load(&gw->reloads_ok));
    co_metrics_emit(s, bad, (double)atomic_load(&gw->reloads_failed));
}

static void cb_modes(void *ud, co_metrics_sink *s, int pct)
{
    co_gateway *gw = ud;
    const co_route_table *t = co_router_acquire(gw->router);
    for (size_t i = 0; i < co_route_table_count(t); i++) {
        const co_route_workload *w = co_route_table_workload(t, i);
        if (pct) {
            const char *l[] = {"workload", w->name, NULL};
            co_metrics_emit(s, l, w->mode == CO_MODE_CANARY ? w->percent : w->mode == CO_MODE_CANDIDATE ? 100 : 0);
        } else {
            const char *l[] = {"workload", w->name, "mode", co_modes[w->mode], NULL};
            co_metrics_emit(s, l, 1);
        }
    }
    co_route_table_release(t);
}
static void cb_worker_sum(co_gateway *gw, co_metrics_sink *s, size_t off)
{
    uint64_t n = 0;
    for (int k = 0; k < gw->nworkers; k++)
        n += atomic_load_explicit((_Atomic uint64_t *)((char *)&gw->w[k] + off), memory_order_relaxed);
    co_metrics_emit(s, NULL, (double)n);
}
static void cb_shadow_skipped(void *ud, co_metrics_sink *s) { cb_worker_sum(ud, s, offsetof(gw_worker, shadow_skipped)); }
static void cb_accept_paused(void *ud, co_metrics_sink *s) { cb_worker_sum(ud, s, offsetof(gw_worker, accept_paused)); }
static void cb_conns_refused(void *ud, co_metrics_sink *s) { cb_worker_sum(ud, s, offsetof(gw_worker, conns_refused)); }
static void cb_feedback(void *ud, co_metrics_sink *s)
{
    co_gateway *gw = ud;
    static const char *const scores[3] = {"-1", "0", "1"};
    for (int i = 0; i < 3; i++) {
        const char *l[] = {"score", scores[i], NULL};
        co_metrics_emit(s, l, (double)atomic_load(&gw->fb_recorded[i]));
    }
}
static void cb_feedback_rejected(void *ud, co_metrics_sink *s)
{
    co_gateway *gw = ud;
    static const char *const why[GW_FB__COUNT] = {"invalid", "busy", "store_error"};
    for (int i = 0; i < GW_FB__COUNT; i++) {
        const char *l[] = {"reason", why[i], NULL};
        co_metrics_emit(s, l, (double)atomic_load(&gw->fb_rejected[i]));
    }
}
static void cb_applied_version(void *ud, co_metrics_sink *s)
{
    co_gateway *gw = ud;
    co_metrics_emit(s, NULL, (double)atomic_load(&gw->applied_version));
}
static void cb_mode(void *ud, co_metrics_sink *s) { cb_modes(ud, s, 0); }
static void cb_percent(void *ud, co_metrics_sink *s) { cb_modes(ud, s, 1); }

static void cb_dropped(void *ud, co_metrics_sink *s)
{
    gw_met *m = ud;
    for (size_t wl = 0; wl < m->nwl; wl++)
        for (int arm = 0; arm < 2; arm++) {
            uint64_t n = 0;
            for (unsigned k = 0; k < m->nworkers; k++)
                n += atomic_load_explicit(&armstat(m, k, (int)wl, arm)->dropped, memory_order_relaxed);
            const char *l[] = {"workload", m->names[wl], "arm", co_arm_name(arm), NULL};
            co_metrics_emit(s, l, (double)n);
        }
}

static int met_new(co_gateway *gw, const co_config *cfg, gw_met **out)
{
    *out = NULL;
    gw_met *m = calloc(1, sizeof *m);
    if (!m)
        return co_error_set(CO_ENOMEM, "out of memory");
    atomic_init(&m->refs, 1);
    m->nwl = cfg->workloads.n;
    m->nworkers = (unsigned)gw->nworkers;
    m->names = calloc(m->nwl ? m->nwl : 1, sizeof *m->names);
    m->st = calloc((size_t)m->nworkers * (m->nwl ? m->nwl : 1) * 2, sizeof *m->st);
    if (!m->names || !m->st)
        goto oom;
    for (size_t i = 0; i < m->nwl; i++)
        if (!(m->names[i] = strdup(((const co_workload_conf *)cfg->workloads.v)[i].name)))
            goto oom;
    int rc = co_metrics_new((const char *const *)m->names, m->nwl, m->nworkers, &m->m);
    if (rc < 0) {
        met_unref(m);
        return rc;
    }
    static const struct {
        const char *name, *help;
        int type;
        co_metrics_cb cb;
    } fam[] = {
        {"cutover_recorder_queue_depth", "exchanges accepted and not yet written or dropped", CO_METRIC_GAUGE, cb_rec_depth},
        {"cutover_recorder_queue_high_water", "highest recorder queue depth seen", CO_METRIC_GAUGE, cb_rec_hw},
        {"cutover_recorder_recorded_total", "exchanges written to the store", CO_METRIC_COUNTER, cb_rec_recorded},
        {"cutover_recorder_dropped_total", "exchanges not recorded, by reason", CO_METRIC_COUNTER, cb_rec_dropped},
        {"cutover_recorder_batches_total", "store transactions that wrote exchanges", CO_METRIC_COUNTER, cb_rec_batches},
        {"cutover_recorder_write_errors_total", "failed store writes (each retried)", CO_METRIC_COUNTER, cb_rec_errors},
        {"cutover_recorder_store_ok", "1 while the store accepts writes", CO_METRIC_GAUGE, cb_rec_ok},
        {"cutover_recorder_background",
         "how far the recorder yields the CPU: 2 idle time only, 1 nice 10, 0 normal priority", CO_METRIC_GAUGE,
         cb_rec_background},
        {"cutover_recorder_lifts_total", "times the background recorder was lifted a priority level (backlog, flush)",
         CO_METRIC_COUNTER, cb_rec_lifts},
        {"cutover_recorder_recycled_total", "exchanges recorded in the memory of one already written",
         CO_METRIC_COUNTER, cb_rec_recycled},
        {"cutover_upstream_in_flight", "upstream transfers in flight", CO_METRIC_GAUGE, cb_up_inflight},
        {"cutover_upstream_requests_total", "upstream transfers started", CO_METRIC_COUNTER, cb_up_started},
        {"cutover_upstream_connections_opened_total", "upstream connections opened", CO_METRIC_COUNTER, cb_up_connects},
        {"cutover_upstream_reused_total", "upstream transfers served on a kept-alive connection", CO_METRIC_COUNTER,
         cb_up_reused},
        {"cutover_upstream_bytes_total", "upstream response body bytes received", CO_METRIC_COUNTER, cb_up_bytes},
        {"cutover_upstream_transfers_total", "upstream transfers completed, by result", CO_METRIC_COUNTER, cb_up_results},
        {"cutover_gateway_workers", "worker threads", CO_METRIC_GAUGE, cb_workers},
        {"cutover_config_reloads_total", "configuration reloads, by result", CO_METRIC_COUNTER, cb_reloads},
        {"cutover_workload_mode", "1 for the mode each workload runs", CO_METRIC_GAUGE, cb_mode},
        {"cutover_shadow_skipped_total", "shadow calls not made because limits.max_shadow_in_flight was reached",
         CO_METRIC_COUNTER, cb_shadow_skipped},
        {"cutover_accept_paused_total",
         "times a worker stopped accepting connections for 100 ms: the process was out of file descriptors or memory",
         CO_METRIC_COUNTER, cb_accept_paused},
        {"cutover_connections_refused_total",
         "client connections closed as they were accepted because limits.max_connections were open",
         CO_METRIC_COUNTER, cb_conns_refused},
        {"cutover_workload_candidate_percent", "share of users the candidate serves", CO_METRIC_GAUGE, cb_percent},
        {"cutover_feedback_total", "user feedback stored (POST /v1/feedback), by score", CO_METRIC_COUNTER,
         cb_feedback},
        {"cutover_feedback_rejected_total", "user feedback refused, by reason", CO_METRIC_COUNTER,
         cb_feedback_rejected},
        {"cutover_workload_state_version", "the highest workload-state version this gateway serves",
         CO_METRIC_GAUGE, cb_applied_version},
    };
    for (size_t i = 0; i < sizeof fam / sizeof *fam; i++)
        if ((rc = co_metrics_add_gauge_cb(m->m, fam[i].name, fam[i].help, fam[i].type, fam[i].cb, gw)) < 0) {
            met_unref(m);
            return rc;
        }
    if ((rc = co_metrics_add_gauge_cb(m->m, "cutover_translation_dropped_total",
                                      "translated requests that lost fields with no counterpart (docs/translation.md)",
                                      CO_METRIC_COUNTER, cb_dropped, m)) < 0) {
        met_unref(m);
        return rc;
    }
    *out = m;
    return 0;
oom:
    met_unref(m);
    return co_error_set(CO_ENOMEM, "out of memory");
}

/* ---- generations --------------------------------------------------------- */

static void gen_unref(gw_gen *g)
{
    if (!g || atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < g->nprov; i++)
        co_endpoint_clear(&g->prov[i]);
    free(g->prov);
    free(g->models);
    free(g->wl);
    zfree(g->admin_token);
    co_route_table_release(g->tag_table);
    met_unref(g->met);
    co_config_free(g->cfg);
    free(g);
}

static void gen_ref(gw_gen *g) { atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed); }

static const void *table_tag(const co_route_table *t)
{
    const co_route_workload *w = co_route_table_workload(t, 0);
    return w ? (const void *)w->name : NULL;
}

static char *read_admin_token(const co_config *cfg)
{
    if (cfg->admin.token_file && cfg->admin.token_file[0]) {
        char *t = NULL;
        size_t len = 0;
        if (co_read_file(cfg->admin.token_file, 64 * 1024, &t, &len) < 0)
            return NULL;
        while (len && (t[len - 1] == '\n' || t[len - 1] == '\r' || t[len - 1] == ' '))
            t[--len] = '\0';
        if (!len) {
            free(t);
            return NULL;
        }
        return t;
    }
    const char *v = cfg->admin.token_env && cfg->admin.token_env[0] ? getenv(cfg->admin.token_env) : NULL;
    return v && *v ? strdup(v) : NULL;
}

static int same_workloads(const gw_met *m, const co_config *cfg)
{
    if (!m || m->nwl != cfg->workloads.n)
        return 0;
    for (size_t i = 0; i < m->nwl; i++)
        if (strcmp(m->names[i], ((const co_workload_conf *)cfg->workloads.v)[i].name))
            return 0;
    return 1;
}

/* Builds a generation from cfg (taken on success). API keys are read now. */
static int gen_new(co_gateway *gw, co_config *cfg, const gw_gen *old, gw_gen **out)
{
    *out = NULL;
    gw_gen *g = calloc(1, sizeof *g);
    if (!g)
        return co_error_set(CO_ENOMEM, "out of memory");
    atomic_init(&g->refs, 1);
    int rc = 0;
    g->nprov = cfg->providers.n;
    g->nmodels = cfg->models.n;
    g->nwl = cfg->workloads.n;
    g->prov = calloc(g->nprov ? g->nprov : 1, sizeof *g->prov);
    g->models = calloc(g->nmodels ? g->nmodels : 1, sizeof *g->models);
    g->wl = calloc(g->nwl ? g->nwl : 1, sizeof *g->wl);
    if (!g->prov || !g->models || !g->wl) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < g->nprov; i++) {
        if ((rc = co_endpoint_init(&g->prov[i], (const co_provider_conf *)cfg->providers.v + i)) < 0)
            goto fail;
    }
    for (size_t i = 0; i < g->nmodels; i++) {
        gw_model *m = &g->models[i];
        m->conf = (const co_model_conf *)cfg->models.v + i;
        for (size_t j = 0; j < g->nprov; j++)
            if (!strcmp(g->prov[j].conf->name, m->conf->provider))
                m->p = &g->prov[j];
        if (!m->p) {
            rc = co_error_set(CO_ECONFIG, "model '%s': no provider named '%s'", m->conf->name, m->conf->provider);
            goto fail;
        }
        m->prices.input = m->conf->price_input;
        m->prices.output = m->conf->price_output;
        m->prices.cached_input = m->conf->price_cached;
    }
    for (size_t i = 0; i < g->nwl; i++) {
        const co_workload_conf *w = (const co_workload_conf *)cfg->workloads.v + i;
        for (size_t j = 0; j < g->nmodels; j++) {
            if (w->incumbent && !strcmp(g->models[j].conf->name, w->incumbent))
                g->wl[i].inc = &g->models[j];
            if (w->candidate && !strcmp(g->models[j].conf->name, w->candidate))
                g->wl[i].cand = &g->models[j];
        }
        if (!g->wl[i].inc || (w->candidate && !g->wl[i].cand)) {
            rc = co_error_set(CO_ECONFIG, "workload '%s': unknown model", w->name);
            goto fail;
        }
    }
    if (old && same_workloads(old->met, cfg)) {
        g->met = old->met;
        atomic_fetch_add_explicit(&g->met->refs, 1, memory_order_relaxed);
    } else if ((rc = met_new(gw, cfg, &g->met)) < 0) {
        goto fail;
    }
    g->admin_token = read_admin_token(cfg);
    g->max_body = (size_t)cfg->limits.max_body;
    g->max_upstream = (size_t)cfg->limits.max_upstream_body;
    g->cfg = cfg;
    *out = g;
    return 0;
fail:
    g->cfg = NULL; /* still the caller's */
    gen_unref(g);
    return rc;
}

/* ---- replies ------------------------------------------------------------- */

static void common_headers(gw_hreq *q, const char *id, const char *arm, const char *workload)
{
    gw_hreq_add_header(q, "X-Cutover-Request-Id", id);
    gw_hreq_add_header(q, "X-Cutover-Arm", arm);
    if (workload)
        gw_hreq_add_header(q, "X-Cutover-Workload", workload);
}

/* The last resort when a reply cannot even be built. */
static void reply_internal(gw_hreq *q)
{
    static const char body[] = "{\"error\":{\"message\":\"internal error\",\"type\":\"api_error\"}}";
    gw_hreq_add_header(q, "Content-Type", "application/json");
    gw_hreq_reply(q, 500, body, sizeof body - 1);
}

void gw_reply_json(gw_worker *w, gw_hreq *q, int status, const char *body, size_t len)
{
    (void)w;
    char id[CO_ID_LEN];
    co_id_new(id);
    common_headers(q, id, "none", NULL);
    gw_hreq_add_header(q, "Content-Type", "application/json");
    gw_hreq_reply(q, status, body, len);
}

void gw_reply_admin_error(gw_worker *w, gw_hreq *q, int status, const char *type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "message", msg, "type", type);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s) {
        gw_reply_json(w, q, status, s, strlen(s));
        free(s);
    } else {
        reply_internal(q);
    }
}

/* An error in the API's own shape, outside a request pipeline. */
static void reply_api_error(gw_worker *w, gw_hreq *q, co_api api, int status, co_chat_err_kind kind, const char *id,
                            const char *arm, const char *workload, const char *msg)
{
    (void)w;
    co_buf b;
    co_buf_init(&b, 64 * 1024);
    if (co_chat_error_format(&b, api, status, kind, msg, NULL) < 0) {
        co_buf_reset(&b);
        co_buf_puts(&b, "{\"error\":{\"message\":\"internal error\"}}");
    }
    common_headers(q, id, arm, workload);
    gw_hreq_add_header(q, "Content-Type", "application/json");
    gw_hreq_reply(q, status ? status : co_chat_err_status(api, kind), b.p, b.len);
    co_buf_free(&b);
}

void gw_reply_api_error(gw_worker *w, gw_hreq *q, co_api api, int status, co_chat_err_kind kind, const char *msg)
{
    char id[CO_ID_LEN];
    co_id_new(id);
    reply_api_error(w, q, api, status, kind, id, "none", NULL, msg);
}

/* The HTTP layer's own refusals (malformed, head too large, body far over
 * the limit, a request that stopped arriving): the API is not known yet, so
 * the body is one both SDKs read as an error, with the gateway's request id. */
static void http_error_reply(gw_worker *w, int status, const char *message, co_buf *extra, co_buf *body)
{
    char id[CO_ID_LEN];
    if (w)
        worker_id(w, co_now_ms(), id);
    else
        co_id_new(id);
    co_buf_printf(extra, "X-Cutover-Request-Id: %s\r\nX-Cutover-Arm: none\r\n", id);
    const char *type = status == 408 ? "request_timeout" : status == 413 ? "request_too_large" : "invalid_request_error";
    json_t *j = json_pack("{s:s,s:{s:s,s:s,s:n,s:s}}", "type", "error", "error", "type", type, "message", message,
                          "param", "code", type);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s)
        co_buf_puts(body, s);
    free(s);
}

/* on a worker's listener: arg is the worker */
static void http_error(void *arg, int status, const char *message, co_buf *extra, co_buf *body)
{
    http_error_reply(arg, status, message, extra, body);
}

/* on the admin listener: arg is the gateway */
static void admin_http_error(void *arg, int status, const char *message, co_buf *extra, co_buf *body)
{
    (void)arg;
    http_error_reply(NULL, status, message, extra, body);
}

/* ---- request lifetime ---------------------------------------------------- */

static void call_free(gw_call *c)
{
    co_buf_free(&c->ubody);
    co_buf_free(&c->errbody);
    co_buf_free(&c->hold);
    co_buf_free(&c->out);
    co_chat_decoder_free(c->dec);
    co_chat_accum_free(c->acc);
    co_chat_encoder_free(c->enc);
    co_chat_response_free(c->resp);
    free(c->url);
    free(c);
}

static void req_unref(gw_req *r)
{
    if (--r->refs > 0)
        return;
    gw_worker *w = r->w;
    if (r->prev)
        r->prev->next = r->next;
    else
        w->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    w->nreqs--;
    co_chat_request_free(r->creq);
    free(r->body);
    co_route_table_release(r->table);
    gen_unref(r->gen);
    free(r);
}

/* ---- the client side of a request ------------------------------------------ */

/* The client is gone: cancel the served call (never the shadow). */
static void client_gone(gw_req *r)
{
    r->client_gone = 1;
    if (r->served && r->served->x)
        co_upstream_cancel(r->served->x);
    req_unref(r); /* the client's reference */
}

/* The HTTP layer lost r's client before its reply was made. */
static void on_client_gone(gw_hreq *q, void *arg)
{
    (void)q;
    gw_req *r = arg;
    r->ev = NULL;
    client_gone(r);
}

/* From here on the HTTP layer tells r when its client goes. */
static void client_watch(gw_req *r)
{
    gw_hreq_set_gone_cb(r->ev, on_client_gone, r);
}

/* Before a finishing reply: r stops hearing of its client. */
static void client_detach(gw_req *r)
{
    gw_hreq_set_gone_cb(r->ev, NULL, NULL);
}

static const char *req_arm(const gw_req *r, const gw_call *c)
{
    if (c)
        return co_arm_name(c->arm);
    return r->decided ? co_arm_name(r->d.served) : "none";
}

static void req_headers(gw_req *r, const gw_call *c)
{
    common_headers(r->ev, r->id, req_arm(r, c), r->wl ? r->wl->name : NULL);
}

/* A complete reply; drops the client's reference. Inside served_done the
 * worker's HTTP server is corked, so the reply goes out only once the
 * exchange was counted and queued for the store (a client that reads
 * /metrics the moment it has its answer sees it counted). */
static void reply_body(gw_req *r, const gw_call *c, int status, const char *ctype, const char *body, size_t len)
{
    if (!r->ev)
        return;
    gw_hreq *q = r->ev;
    client_detach(r);
    req_headers(r, c);
    gw_hreq_add_header(q, "Content-Type", ctype && *ctype ? ctype : "application/json");
    if (c && c->retry_after[0])
        gw_hreq_add_header(q, "retry-after", c->retry_after);
    if (c && c->retry_after_ms[0])
        gw_hreq_add_header(q, "retry-after-ms", c->retry_after_ms);
    r->ev = NULL;
    r->started = 1;
    gw_hreq_reply(q, status, body, len);
    req_unref(r);
}

static void reply_error(gw_req *r, const gw_call *c, int status, co_chat_err_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void reply_error(gw_req *r, const gw_call *c, int status, co_chat_err_kind kind, const char *fmt, ...)
{
    if (!r->ev)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    co_buf *b = &r->w->tmp;
    co_buf_reset(b);
    if (!status)
        status = co_chat_err_status(r->api, kind);
    if (co_chat_error_format(b, r->api, status, kind, msg, NULL) < 0) {
        co_buf_reset(b);
        co_buf_puts(b, "{\"error\":{\"message\":\"internal error\"}}");
    }
    reply_body(r, c, status, "application/json", b->p, b->len);
}

/* ---- streaming to the client --------------------------------------------- */

static void on_drained(gw_hreq *q, void *arg)
{
    (void)q;
    gw_req *r = arg;
    gw_call *c = r->served;
    if (c && c->paused && c->x) {
        c->paused = 0;
        co_upstream_resume(c->x);
    }
}

static size_t client_pending(gw_req *r)
{
    return r->ev ? gw_hreq_pending(r->ev) : 0;
}

static void stream_start(gw_req *r, gw_call *c)
{
    if (!r->ev || r->started)
        return;
    req_headers(r, c);
    gw_hreq_add_header(r->ev, "Content-Type", c->fast && c->ctype[0] ? c->ctype : "text/event-stream");
    gw_hreq_add_header(r->ev, "Cache-Control", "no-cache");
    gw_hreq_set_drained_cb(r->ev, on_drained, r);
    gw_hreq_start(r->ev, c->status ? c->status : 200);
    r->started = 1;
}

static void stream_send(gw_req *r, gw_call *c, const char *p, size_t n)
{
    if (!r->ev || !n)
        return;
    stream_start(r, c);
    gw_hreq_chunk(r->ev, p, n);
}

static void stream_end(gw_req *r, gw_call *c)
{
    if (!r->ev)
        return;
    stream_start(r, c);
    gw_hreq *q = r->ev;
    client_detach(r);
    r->ev = NULL;
    gw_hreq_end(q);
    req_unref(r);
}

/* Ends a stream that already reached the client with the API's in-stream error. */
static void stream_fail(gw_req *r, gw_call *c, co_chat_err_kind kind, const char *msg)
{
    if (!r->ev)
        return;
    co_chat_error e;
    memset(&e, 0, sizeof e);
    e.status = co_chat_err_status(r->api, kind);
    e.kind = kind;
    snprintf(e.message, sizeof e.message, "%s", msg);
    co_chat_event ev = {.kind = CO_CHAT_EV_ERROR, .error = &e};
    co_buf *b = &r->w->tmp;
    co_buf_reset(b);
    co_chat_encoder *enc = NULL;
    if (co_chat_encoder_new(&enc, r->api, NULL) == 0 && co_chat_encoder_event(enc, b, &ev) == 0)
        stream_send(r, c, b->p, b->len);
    co_chat_encoder_free(enc);
    stream_end(r, c);
}

/* ---- classification ------------------------------------------------------- */

static int class_of_status(int status)
{
    if (status >= 500)
        return CO_ERRCLASS_5XX;
    if (status == 429)
        return CO_ERRCLASS_429;
    if (status >= 400)
        return CO_ERRCLASS_4XX;
    return CO_ERRCLASS_NONE;
}

static int class_of_err(int err)
{
    switch (err) {
    case CO_UPSTREAM_OK: return CO_ERRCLASS_NONE;
    case CO_UPSTREAM_ETIMEOUT_CONNECT:
    case CO_UPSTREAM_ETIMEOUT_FIRST_BYTE:
    case CO_UPSTREAM_ETIMEOUT_TOTAL: return CO_ERRCLASS_TIMEOUT;
    case CO_UPSTREAM_ERESET:
    case CO_UPSTREAM_ECANCELLED: return CO_ERRCLASS_RESET;
    case CO_UPSTREAM_ETRUNCATED:
    case CO_UPSTREAM_ETOO_BIG: return CO_ERRCLASS_TRUNCATED;
    default: return CO_ERRCLASS_CONNECT;
    }
}

static int fallback_class(int cls)
{
    return cls == CO_ERRCLASS_CONNECT || cls == CO_ERRCLASS_TIMEOUT || cls == CO_ERRCLASS_5XX ||
           cls == CO_ERRCLASS_RESET || cls == CO_ERRCLASS_TRUNCATED || cls == CO_ERRCLASS_PARSE;
}

/* ---- recording ----------------------------------------------------------- */

static void call_record(gw_call *c)
{
    gw_req *r = c->r;
    gw_worker *w = r->w;
    co_chat_response *resp = c->resp;
    if (c->cancelled) {
        c->rec_status = 499; /* the client closed the request */
        c->errclass = CO_ERRCLASS_NONE;
    } else if (!c->errclass && resp && resp->has_error) {
        c->errclass = resp->error.kind == CO_CHAT_ERR_RATE_LIMIT ? CO_ERRCLASS_429 : CO_ERRCLASS_5XX;
    }
    if (!c->rec_status)
        c->rec_status = c->status;
    co_chat_usage u = resp ? resp->usage : (co_chat_usage){0};
    double cost = resp && u.known ? co_chat_cost_usd(&u, &c->m->prices) : 0;

    co_exchange x;
    memset(&x, 0, sizeof x);
    memcpy(x.request_id, r->id, CO_ID_LEN);
    memcpy(x.pair_id, r->id, CO_ID_LEN);
    x.ts_ms = c->ts_ms;
    x.workload = r->wl->name;
    x.arm = co_arm_name(c->arm);
    x.role = co_role_name(c->role);
    x.model = c->m->conf->name;
    x.api = co_api_name(r->api);
    x.user_key = r->user_key[0] ? r->user_key : NULL;
    x.status = c->rec_status;
    x.error_class = c->errclass ? co_errclass_name(c->errclass) : NULL;
    x.stream = c->stream;
    x.latency_ms = (double)c->latency_us / 1000.0;
    x.ttft_ms = c->ttft_us >= 0 ? (double)c->ttft_us / 1000.0 : -1;
    x.tokens_in = u.input_tokens;
    x.tokens_out = u.output_tokens;
    x.tokens_cached = u.cached_input_tokens;
    x.cost_usd = cost;
    x.finish_reason = c->cancelled ? "cancelled" : resp && resp->finish ? co_chat_finish_name(resp->finish) : NULL;
    /* once per pair: the shadow's request is the served one's (the store's
     * pair readers show it on both), which spares the recorder a copy, a
     * redaction pass and ~1.5 KB of writes per shadowed request */
    x.request_json = c->role == CO_ROLE_SHADOW ? NULL : r->body;
    char *tools = NULL;
    if (resp && resp->n_tool_calls) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < resp->n_tool_calls; i++)
            json_array_append_new(a, json_pack("{s:s?,s:s?,s:s?}", "id", resp->tool_calls[i].id, "name",
                                               resp->tool_calls[i].name, "arguments", resp->tool_calls[i].arguments));
        char *j = a ? json_dumps(a, JSON_COMPACT) : NULL;
        json_decref(a);
        if (j && asprintf(&tools, "%s%s%s", resp->text ? resp->text : "", resp->text ? "\n" : "", j) < 0)
            tools = NULL;
        free(j);
    }
    x.output_text = tools ? tools : resp ? resp->text : NULL;
    co_recorder_push(w->ring, &x);
    free(tools);

    if (c->cancelled)
        return;
    gw_met *met = r->gen->met;
    co_metrics_obs o = {
        .workload = r->wl->index,
        .arm = c->arm,
        .role = c->role,
        .errclass = c->errclass,
        .latency_s = (double)c->latency_us / 1e6,
        .ttft_s = c->ttft_us >= 0 ? (double)c->ttft_us / 1e6 : -1,
        .tokens_in = u.input_tokens,
        .tokens_out = u.output_tokens,
        .tokens_cached = u.cached_input_tokens,
        .cost_usd = cost,
    };
    co_metrics_observe(co_metrics_worker_get(met->m, (unsigned)w->idx), &o);
    if ((size_t)r->wl->index < met->nwl) {
        gw_armstat *s = armstat(met, (unsigned)w->idx, r->wl->index, c->arm);
        atomic_store_explicit(&s->req, atomic_load_explicit(&s->req, memory_order_relaxed) + 1, memory_order_relaxed);
        if (c->errclass)
            atomic_store_explicit(&s->err, atomic_load_explicit(&s->err, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
        double ms = (double)c->latency_us / 1e3;
        int b = 0;
        while (b < NBOUNDS && ms > arm_bounds_ms[b])
            b++;
        atomic_store_explicit(&s->b[b], atomic_load_explicit(&s->b[b], memory_order_relaxed) + 1, memory_order_relaxed);
    }
}

/* Records c, frees it and drops its reference on the request. */
static void call_finish(gw_call *c)
{
    gw_req *r = c->r;
    if (!c->resp && c->acc)
        co_chat_accum_take(c->acc, &c->resp);
    call_record(c);
    if (r->served == c)
        r->served = NULL;
    if (r->shadow == c)
        r->shadow = NULL;
    call_free(c);
    req_unref(r);
}

/* ---- upstream calls ------------------------------------------------------ */

static int call_event(void *ctx, const co_chat_event *ev)
{
    gw_call *c = ctx;
    if (c->ttft_us < 0 && (ev->kind == CO_CHAT_EV_TEXT || ev->kind == CO_CHAT_EV_TOOL_START))
        c->ttft_us = co_mono_us() - c->t0_us;
    if (c->acc && !c->acc_failed && co_chat_accum_event(c->acc, ev) < 0)
        c->acc_failed = 1;
    if (c->enc)
        return co_chat_encoder_event(c->enc, &c->out, ev);
    return 0;
}

static void copy_header(char *dst, size_t n, const co_upstream_headers *h, const char *name)
{
    const char *v = h ? co_upstream_header_get(h, name) : NULL;
    size_t l = v ? strnlen(v, n - 1) : 0;
    memcpy(dst, v ? v : "", l);
    dst[l] = '\0';
}

static int call_on_status(co_upstream_xfer *x, void *ud, int status, const co_upstream_headers *h)
{
    (void)x;
    gw_call *c = ud;
    c->status = status;
    c->up_ok = status >= 200 && status < 300;
    copy_header(c->ctype, sizeof c->ctype, h, "content-type");
    copy_header(c->retry_after, sizeof c->retry_after, h, "retry-after");
    copy_header(c->retry_after_ms, sizeof c->retry_after_ms, h, "retry-after-ms");
    return CO_UPSTREAM_CONTINUE;
}

/* Where the last complete SSE event in b ends (0 when none). */
static size_t last_boundary(const char *p, size_t n)
{
    for (size_t i = n; i >= 2; i--) {
        if (p[i - 1] == '\n' && (p[i - 2] == '\n' || (i >= 3 && p[i - 2] == '\r' && p[i - 3] == '\n')))
            return i;
        if (p[i - 1] == '\r' && p[i - 2] == '\r' && i < n && p[i] != '\n')
            return i;
    }
    return 0;
}

/* Fast path: forwards whole events as they complete (byte-faithful; only
 * the chunking may differ), so a failure never leaves half an event. */
static void passthrough(gw_call *c, const char *data, size_t len)
{
    gw_req *r = c->r;
    if (!c->hold.len) {
        size_t b = last_boundary(data, len);
        stream_send(r, c, data, b);
        if (b < len && co_buf_append(&c->hold, data + b, len - b) < 0) {
            stream_send(r, c, data + b, len - b); /* over the hold limit: no more holding back */
        }
        return;
    }
    if (co_buf_append(&c->hold, data, len) < 0) {
        stream_send(r, c, c->hold.p, c->hold.len);
        co_buf_reset(&c->hold);
        stream_send(r, c, data, len);
        return;
    }
    size_t b = last_boundary(c->hold.p, c->hold.len);
    if (b) {
        stream_send(r, c, c->hold.p, b);
        memmove(c->hold.p, c->hold.p + b, c->hold.len - b);
        c->hold.len -= b;
        c->hold.p[c->hold.len] = '\0';
    }
}

/* A warning caused by one request (a bad upstream can cause it for every
 * request): at most one per second per worker, with the count held back. */
static int warn_ok(gw_worker *w)
{
    int64_t now = co_mono_us();
    if (now - w->warn_at_us < 1000000) {
        w->warn_quiet++;
        return 0;
    }
    if (w->warn_quiet)
        gw_log(w->gw, LOG_WARN, "worker %d: %llu similar warning(s) not shown", w->idx,
               (unsigned long long)w->warn_quiet);
    w->warn_at_us = now;
    w->warn_quiet = 0;
    return 1;
}

static int served_on_data(co_upstream_xfer *x, void *ud, const char *data, size_t len)
{
    (void)x;
    gw_call *c = ud;
    gw_req *r = c->r;
    if (!c->up_ok) {
        if (c->errbody.len < GW_ERRBODY_MAX)
            co_buf_append(&c->errbody, data, len > GW_ERRBODY_MAX - c->errbody.len ? GW_ERRBODY_MAX - c->errbody.len : len);
        return CO_UPSTREAM_CONTINUE;
    }
    if (!r->ev)
        return CO_UPSTREAM_ABORT;
    if (client_pending(r) > GW_OUT_HIGH) {
        c->paused = 1;
        return CO_UPSTREAM_PAUSE;
    }
    if (c->fast) {
        passthrough(c, data, len);
        if (!c->dec_failed && co_chat_decoder_feed(c->dec, data, len) < 0)
            c->dec_failed = 1; /* the bytes still go through; the record says parse */
        return CO_UPSTREAM_CONTINUE;
    }
    co_buf_reset(&c->out);
    if (co_chat_decoder_feed(c->dec, data, len) < 0) {
        c->abort_class = CO_ERRCLASS_PARSE;
        if (warn_ok(r->w))
            gw_log(r->w->gw, LOG_WARN, "request %s: the %s stream of model %s could not be translated: %s", r->id,
                   co_api_name(c->m->p->api), c->m->conf->name, co_error_last());
        stream_send(r, c, c->out.p, c->out.len);
        return CO_UPSTREAM_ABORT;
    }
    stream_send(r, c, c->out.p, c->out.len);
    return CO_UPSTREAM_CONTINUE;
}

static int shadow_on_data(co_upstream_xfer *x, void *ud, const char *data, size_t len)
{
    (void)x;
    gw_call *c = ud;
    if (!c->up_ok) {
        if (c->errbody.len < GW_ERRBODY_MAX)
            co_buf_append(&c->errbody, data, len > GW_ERRBODY_MAX - c->errbody.len ? GW_ERRBODY_MAX - c->errbody.len : len);
        return CO_UPSTREAM_CONTINUE;
    }
    if (co_chat_decoder_feed(c->dec, data, len) < 0) {
        c->abort_class = CO_ERRCLASS_PARSE;
        return CO_UPSTREAM_ABORT;
    }
    return CO_UPSTREAM_CONTINUE;
}

static void served_done(co_upstream_xfer *x, void *ud, const co_upstream_result *res);
static int splice_model(co_buf *out, const char *body, size_t len, const char *model);
static int splice_at(co_buf *out, const char *body, size_t len, size_t vs, size_t ve, const char *model);
static int json_needs_escape(const char *v);
static int gw_response_parse(co_chat_response **out, co_api api, const char *body, size_t len);
static void shadow_done(co_upstream_xfer *x, void *ud, const co_upstream_result *res);

/* Fields the translation could not carry (the parser's and the emitter's):
 * counted per workload x arm, named in a debug log line. */
static void note_dropped(gw_call *c, const co_chat_strv *emitted)
{
    gw_req *r = c->r;
    size_t n = r->creq->dropped.n + emitted->n;
    if (!n)
        return;
    gw_met *met = r->gen->met;
    if ((size_t)r->wl->index < met->nwl) {
        gw_armstat *s = armstat(met, (unsigned)r->w->idx, r->wl->index, c->arm);
        atomic_store_explicit(&s->dropped, atomic_load_explicit(&s->dropped, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    }
    co_gateway *gw = r->w->gw;
    if (gw->log_level < LOG_DEBUG)
        return;
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && used < sizeof list; i++) {
        const char *name = i < r->creq->dropped.n ? r->creq->dropped.v[i] : emitted->v[i - r->creq->dropped.n];
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", name);
    }
    gw_log(gw, LOG_DEBUG, "request %s: %s %s -> %s %s drops: %s", r->id, r->wl->name, co_api_name(r->api),
           co_api_name(c->m->p->api), c->m->conf->name, list);
}

/* Starts one upstream call for r. 0 with *out set; CO_EPARSE when the request
 * cannot be written in the upstream's API (a client error); another negative
 * code when the call could not start (then *out holds the call, not
 * started, for the caller to record and free). */
static int call_start(gw_req *r, int role, int arm, gw_call **out)
{
    *out = NULL;
    gw_worker *w = r->w;
    const gw_wlmodels *wm = &r->gen->wl[r->wl->index];
    const gw_model *m = arm == CO_ARM_CANDIDATE ? wm->cand : wm->inc;
    if (!m)
        return co_error_set(CO_EINVAL, "workload '%s' has no %s model", r->wl->name, co_arm_name(arm));
    gw_call *c = calloc(1, sizeof *c);
    if (!c)
        return co_error_set(CO_ENOMEM, "out of memory");
    c->r = r;
    c->role = role;
    c->arm = arm;
    c->m = m;
    c->stream = r->stream;
    c->fast = m->p->api == r->api;
    /* a shadow's bytes reach no client: an OpenAI stream is asked for its
     * usage (for the record) even when the client did not ask */
    int want_usage = role == CO_ROLE_SHADOW && c->stream && m->p->api == CO_API_OPENAI && !r->include_usage;
    if (want_usage)
        c->fast = 0;
    c->ttft_us = -1;
    c->ts_ms = co_now_ms();
    c->t0_us = co_mono_us();
    co_buf_init(&c->ubody, r->gen->max_body * 4 + 65536);
    co_buf_init(&c->errbody, GW_ERRBODY_MAX + 1);
    co_buf_init(&c->hold, GW_HOLD_MAX);
    co_buf_init(&c->out, CO_BUF_UNLIMITED);
    r->refs++;
    *out = c;
    int rc;
    co_chat_strv dropped = {0};
    /* the upstream body is about the client's size: one allocation, not doublings */
    if (co_buf_reserve(&c->ubody, r->body_len + strlen(m->conf->upstream) + 64) < 0) {
        rc = co_error_last_status();
    } else if (c->fast && r->model_ve > r->model_vs && !json_needs_escape(m->conf->upstream)) {
        rc = splice_at(&c->ubody, r->body, r->body_len, r->model_vs, r->model_ve, m->conf->upstream);
    } else if (c->fast) {
        rc = splice_model(&c->ubody, r->body, r->body_len, m->conf->upstream);
    } else if (!r->creq && (rc = co_chat_request_parse(&r->creq, r->api, r->body, r->body_len, NULL)) < 0) {
        /* the canonical parser is stricter than the fast path's checks */
    } else {
        co_chat_emit_opts eo = {.openai_legacy_max_tokens = m->p->conf->kind == CO_PROVIDER_OPENAI_COMPAT,
                                .dropped = &dropped};
        char *model = r->creq->model;
        int iu = r->creq->include_usage;
        r->creq->model = (char *)m->conf->upstream;
        if (want_usage)
            r->creq->include_usage = 1;
        rc = co_chat_request_emit(&c->ubody, r->creq, m->p->api, &eo);
        r->creq->model = model;
        r->creq->include_usage = iu;
    }
    if (rc == 0 && !c->fast)
        note_dropped(c, &dropped);
    co_chat_strv_free(&dropped);
    if (rc < 0) {
        c->errclass = CO_ERRCLASS_PARSE;
        return rc == CO_ETOOBIG ? rc : CO_EPARSE;
    }
    const char *url = m->p->url;
    if (m->p->api == CO_API_GEMINI) {
        if ((rc = co_endpoint_call_url(&c->url, m->p, m->conf->upstream, c->stream)) < 0)
            return rc;
        url = c->url;
    }
    if (c->stream) {
        if ((rc = co_chat_decoder_new(&c->dec, m->p->api, GW_MAX_EVENT, call_event, c)) < 0 ||
            (rc = co_chat_accum_new(&c->acc, r->gen->max_upstream)) < 0)
            return rc;
        if (role != CO_ROLE_SHADOW && !c->fast) {
            co_chat_encode_opts eo = {.include_usage = r->include_usage};
            if ((rc = co_chat_encoder_new(&c->enc, r->api, &eo)) < 0)
                return rc;
        }
    }
    co_upstream_req q = {
        .method = CO_UPSTREAM_POST,
        .url = url,
        .headers = m->p->hdrs,
        .body = c->ubody.p,
        .body_len = c->ubody.len,
        .borrow_body = 1,
        .max_response = r->gen->max_upstream,
    };
    co_upstream_req_timeouts(&q, m->p->conf);
    co_upstream_cb cb = {
        .on_status = c->stream ? call_on_status : NULL,
        .on_data = !c->stream ? NULL : role == CO_ROLE_SHADOW ? shadow_on_data : served_on_data,
        .on_done = role == CO_ROLE_SHADOW ? shadow_done : served_done,
    };
    if (!w->up)
        return co_error_set(CO_ESTATE, "the worker is shutting down");
    if ((rc = co_upstream_start(w->up, &q, &cb, c, &c->x)) < 0) {
        c->errclass = CO_ERRCLASS_CONNECT;
        return rc;
    }
    c->running = 1;
    return 0;
}

/* A call that never started: recorded (not for client errors) and freed. */
static void call_abandon(gw_call *c, int record)
{
    gw_req *r = c->r;
    c->latency_us = co_mono_us() - c->t0_us;
    if (record) {
        if (!c->errclass)
            c->errclass = CO_ERRCLASS_CONNECT;
        c->rec_status = c->rec_status ? c->rec_status : 502;
        call_finish(c);
        return;
    }
    if (r->served == c)
        r->served = NULL;
    call_free(c);
    req_unref(r);
}

/* Retries a failed candidate once on the incumbent; 1 when it started. */
static int try_fallback(gw_call *c)
{
    gw_req *r = c->r;
    if (c->role != CO_ROLE_SERVED || c->arm != CO_ARM_CANDIDATE || !r->d.fallback || r->started || !r->ev ||
        !fallback_class(c->errclass))
        return 0;
    gw_call *f = NULL;
    int rc = call_start(r, CO_ROLE_FALLBACK, CO_ARM_INCUMBENT, &f);
    if (rc < 0) {
        if (warn_ok(r->w))
            gw_log(r->w->gw, LOG_WARN, "request %s: fallback to the incumbent could not start: %s", r->id,
                   co_error_last());
        if (f)
            call_abandon(f, 1);
        return 0;
    }
    r->served = f;
    gw_log(r->w->gw, LOG_DEBUG, "request %s: candidate %s failed (%s); falling back to %s", r->id, c->m->conf->name,
           co_errclass_name(c->errclass), f->m->conf->name);
    return 1;
}

/* An upstream error status, passed on in the client's API shape. */
static void reply_upstream_error(gw_call *c, int status, const char *body, size_t len, const char *ctype)
{
    gw_req *r = c->r;
    c->rec_status = status;
    if (status == 401 || status == 403) {
        /* the gateway's provider key was refused, not the client's: never
         * pass the body on (providers quote part of the key in it) */
        if (warn_ok(r->w))
            gw_log(r->w->gw, LOG_ERROR, "provider %s refused the gateway's API key for model %s (HTTP %d)",
                   c->m->p->conf->name, c->m->conf->name, status);
        c->retry_after[0] = c->retry_after_ms[0] = '\0';
        reply_error(r, c, 502, CO_CHAT_ERR_API,
                    "the upstream provider %s refused the gateway's credentials (HTTP %d); the gateway's operator "
                    "must check its API key",
                    c->m->p->conf->name, status);
        return;
    }
    if (c->fast) {
        reply_body(r, c, status, ctype && *ctype ? ctype : "application/json", body ? body : "", body ? len : 0);
        return;
    }
    co_chat_error e;
    co_chat_error_parse(&e, c->m->p->api, status, body, body ? len : 0);
    int st = status;
    if (status == 529 && r->api != CO_API_ANTHROPIC)
        st = 0; /* Anthropic's "overloaded" has no 529 elsewhere: the API's own status for it */
    co_buf *b = &r->w->tmp;
    co_buf_reset(b);
    if (co_chat_error_format(b, r->api, st, e.kind, e.message[0] ? e.message : "upstream error", NULL) < 0) {
        co_buf_reset(b);
        co_buf_puts(b, "{\"error\":{\"message\":\"upstream error\"}}");
    }
    reply_body(r, c, st ? st : co_chat_err_status(r->api, e.kind), "application/json", b->p, b->len);
}

static void reply_transfer_error(gw_call *c, const co_upstream_result *res)
{
    gw_req *r = c->r;
    int timeout = c->errclass == CO_ERRCLASS_TIMEOUT;
    c->rec_status = timeout ? 504 : 502;
    const char *what = c->abort_class == CO_ERRCLASS_PARSE ? "sent a response that could not be read"
                       : timeout                            ? "did not answer in time"
                       : c->errclass == CO_ERRCLASS_CONNECT ? "could not be reached"
                       : c->errclass == CO_ERRCLASS_RESET   ? "closed the connection"
                                                            : "sent an incomplete response";
    reply_error(r, c, c->rec_status, CO_CHAT_ERR_API, "upstream %s (model %s) %s%s%s%s", c->m->p->conf->name,
                c->m->conf->name, what, res && res->error && res->error[0] ? " (" : "",
                res && res->error ? res->error : "", res && res->error && res->error[0] ? ")" : "");
}

static void served_json_done(gw_call *c, const co_upstream_result *res)
{
    gw_req *r = c->r;
    const char *ctype = co_upstream_header_get(res->headers, "content-type");
    copy_header(c->retry_after, sizeof c->retry_after, res->headers, "retry-after");
    copy_header(c->retry_after_ms, sizeof c->retry_after_ms, res->headers, "retry-after-ms");
    if (res->err == CO_UPSTREAM_OK && res->status >= 200 && res->status < 300) {
        int prc = gw_response_parse(&c->resp, c->m->p->api, res->body ? res->body : "", res->body_len);
        if (prc < 0)
            c->errclass = CO_ERRCLASS_PARSE;
        if (c->fast) {
            reply_body(r, c, res->status, ctype, res->body ? res->body : "", res->body_len);
            return;
        }
        if (prc < 0) {
            if (try_fallback(c))
                return;
            c->abort_class = CO_ERRCLASS_PARSE;
            reply_transfer_error(c, NULL);
            return;
        }
        co_buf *b = &r->w->tmp;
        co_buf_reset(b);
        if (co_chat_response_emit(b, c->resp, r->api) < 0) {
            reply_error(r, c, 502, CO_CHAT_ERR_API, "the upstream's response could not be translated: %s",
                        co_error_last());
            return;
        }
        reply_body(r, c, 200, "application/json", b->p, b->len);
        return;
    }
    if (res->err == CO_UPSTREAM_OK) {
        c->errclass = class_of_status(res->status);
        if (c->errclass == CO_ERRCLASS_5XX && try_fallback(c))
            return;
        reply_upstream_error(c, res->status, res->body, res->body_len, ctype);
        return;
    }
    if (res->err == CO_UPSTREAM_ECANCELLED && r->client_gone) {
        c->cancelled = 1;
        return;
    }
    c->errclass = class_of_err(res->err);
    if (try_fallback(c))
        return;
    reply_transfer_error(c, res);
}

static void served_stream_done(gw_call *c, const co_upstream_result *res)
{
    gw_req *r = c->r;
    if (res->err == CO_UPSTREAM_ECANCELLED && r->client_gone && !c->abort_class) {
        c->cancelled = 1;
        return;
    }
    if (res->err == CO_UPSTREAM_OK && res->status > 0 && !c->up_ok) {
        copy_header(c->retry_after, sizeof c->retry_after, res->headers, "retry-after");
        copy_header(c->retry_after_ms, sizeof c->retry_after_ms, res->headers, "retry-after-ms");
        c->errclass = class_of_status(res->status);
        if (c->errclass == CO_ERRCLASS_5XX && try_fallback(c))
            return;
        reply_upstream_error(c, res->status, c->errbody.p, c->errbody.len, c->ctype);
        return;
    }
    int cls = c->abort_class ? c->abort_class : class_of_err(res->err);
    if (!cls) {
        co_buf_reset(&c->out);
        int frc = c->dec_failed ? 0 : co_chat_decoder_finish(c->dec);
        if (c->enc && c->out.len)
            stream_send(r, c, c->out.p, c->out.len);
        if (c->dec_failed)
            c->errclass = CO_ERRCLASS_PARSE; /* passed through as it came */
        else if (frc < 0 || !co_chat_decoder_done(c->dec))
            cls = CO_ERRCLASS_TRUNCATED;
    }
    if (!cls) {
        if (c->fast && c->hold.len)
            stream_send(r, c, c->hold.p, c->hold.len);
        co_buf_reset(&c->hold);
        stream_end(r, c);
        return;
    }
    c->errclass = cls;
    if (!r->started) {
        if (try_fallback(c))
            return;
        reply_transfer_error(c, res);
        return;
    }
    /* bytes reached the client: end the stream with the API's in-stream error */
    c->errclass = CO_ERRCLASS_TRUNCATED;
    co_buf_reset(&c->hold);
    char msg[512];
    snprintf(msg, sizeof msg, "the upstream stream of model %s ended early (%s)%s%s", c->m->conf->name,
             c->abort_class == CO_ERRCLASS_PARSE ? "unreadable event" : co_upstream_err_name(res->err),
             res->error && res->error[0] ? ": " : "", res->error ? res->error : "");
    stream_fail(r, c, CO_CHAT_ERR_API, msg);
}

static void served_done(co_upstream_xfer *x, void *ud, const co_upstream_result *res)
{
    (void)x;
    gw_call *c = ud;
    gw_worker *w = c->r->w;
    c->x = NULL;
    c->running = 0;
    c->paused = 0;
    c->latency_us = res->total_us >= 0 ? res->total_us : co_mono_us() - c->t0_us;
    c->status = res->status;
    gw_http_cork(w->http); /* the reply waits until the exchange is counted */
    if (c->stream)
        served_stream_done(c, res);
    else
        served_json_done(c, res);
    call_finish(c);
    gw_http_uncork(w->http);
}

static void shadow_done(co_upstream_xfer *x, void *ud, const co_upstream_result *res)
{
    (void)x;
    gw_call *c = ud;
    if (c->r->w->shadow_inflight > 0)
        c->r->w->shadow_inflight--;
    c->x = NULL;
    c->running = 0;
    c->latency_us = res->total_us >= 0 ? res->total_us : co_mono_us() - c->t0_us;
    c->status = res->status;
    if (c->abort_class) {
        c->errclass = c->abort_class;
    } else if (res->err != CO_UPSTREAM_OK) {
        c->errclass = class_of_err(res->err);
        c->rec_status = c->errclass == CO_ERRCLASS_TIMEOUT ? 504 : 502;
    } else if (res->status < 200 || res->status >= 300) {
        c->errclass = class_of_status(res->status);
        if (!c->errclass)
            c->errclass = CO_ERRCLASS_5XX;
    } else if (c->stream) {
        if (co_chat_decoder_finish(c->dec) < 0 || !co_chat_decoder_done(c->dec))
            c->errclass = CO_ERRCLASS_TRUNCATED;
    } else if (gw_response_parse(&c->resp, c->m->p->api, res->body ? res->body : "", res->body_len) < 0) {
        c->errclass = CO_ERRCLASS_PARSE;
    }
    call_finish(c);
}

/* ---- the fast path's one parse -------------------------------------------- */

/* What the pipeline needs from a request body, read from one byte-level scan
 * (fast_peek) or, when that scan is not sure, one jansson parse, with the
 * checks the canonical parser makes on the fields every upstream relies on
 * (the canonical request is only built when a call translates). */
typedef struct gw_peek {
    const char *model, *user;
    int stream, include_usage;
    /* the top-level "model" value's bytes, quotes included, when the scan saw
     * exactly one such key with a plain string: the same-API call splices the
     * upstream's model name there without scanning the body again (0, 0:
     * unknown) */
    size_t model_vs, model_ve;
} gw_peek;

static int peek_bad(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int peek_bad(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

static int peek_opt(const json_t *o, const char *key, json_type want, const char *what, char *err, size_t n)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    int ok = want == JSON_TRUE ? json_is_boolean(v) : want == JSON_REAL ? json_is_number(v)
                                                   : json_typeof(v) == want;
    return ok ? 0 : peek_bad(err, n, "%s must be %s", key, what);
}

static int peek_posint(const json_t *o, const char *key, char *err, size_t n)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return peek_bad(err, n, "%s must be a positive integer", key);
    return 0;
}

/* content: a string, or an array of objects with a string "type". */
static int peek_content(const json_t *c, size_t i, int anthropic, char *err, size_t n)
{
    if (json_is_string(c))
        return 0;
    const char *what = anthropic ? "content blocks" : "content parts";
    if (!json_is_array(c))
        return peek_bad(err, n, "messages[%zu].content must be a string or an array of %s", i, what);
    size_t k;
    json_t *part;
    json_array_foreach(c, k, part) {
        if (!json_is_object(part) || !json_is_string(json_object_get(part, "type")))
            return peek_bad(err, n, "messages[%zu].content[%zu] must be an object with a string type", i, k);
    }
    return 0;
}

static int peek_messages(const json_t *msgs, co_api api, char *err, size_t n)
{
    if (!msgs)
        return peek_bad(err, n, "messages is required");
    if (!json_is_array(msgs))
        return peek_bad(err, n, "messages must be an array");
    if (json_array_size(msgs) == 0)
        return peek_bad(err, n, "messages must contain at least one message");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m))
            return peek_bad(err, n, "messages[%zu] must be an object", i);
        const json_t *rv = json_object_get(m, "role");
        if (!rv)
            return peek_bad(err, n, "messages[%zu].role is required", i);
        if (!json_is_string(rv))
            return peek_bad(err, n, "messages[%zu].role must be a string", i);
        const char *role = json_string_value(rv);
        const json_t *c = json_object_get(m, "content");
        int has = c && !json_is_null(c);
        if (api == CO_API_ANTHROPIC) {
            if (strcmp(role, "user") && strcmp(role, "assistant"))
                return peek_bad(err, n, "messages[%zu].role must be user or assistant (got '%.64s')", i, role);
            if (!has)
                return peek_bad(err, n, "messages[%zu].content is required", i);
            if (peek_content(c, i, 1, err, n))
                return -1;
            continue;
        }
        if (!strcmp(role, "assistant")) {
            const json_t *tc = json_object_get(m, "tool_calls");
            if (tc && !json_is_null(tc) && !json_is_array(tc))
                return peek_bad(err, n, "messages[%zu].tool_calls must be an array", i);
            if (has && peek_content(c, i, 0, err, n))
                return -1;
            continue;
        }
        if (!strcmp(role, "function"))
            return peek_bad(err, n, "messages[%zu].role 'function' is deprecated and not supported: use 'tool'", i);
        if (strcmp(role, "system") && strcmp(role, "developer") && strcmp(role, "user") && strcmp(role, "tool"))
            return peek_bad(err, n,
                            "messages[%zu].role must be one of system, developer, user, assistant, tool (got '%.64s')",
                            i, role);
        if (!has)
            return peek_bad(err, n, "messages[%zu].content is required for a %s message", i, role);
        if (peek_content(c, i, 0, err, n))
            return -1;
        if (!strcmp(role, "tool")) {
            const json_t *id = json_object_get(m, "tool_call_id");
            if (!id || json_is_null(id))
                return peek_bad(err, n, "messages[%zu].tool_call_id is required for a tool message", i);
            if (!json_is_string(id))
                return peek_bad(err, n, "messages[%zu].tool_call_id must be a string", i);
        }
    }
    return 0;
}

static int peek_request(const json_t *root, co_api api, gw_peek *p, char *err, size_t n)
{
    memset(p, 0, sizeof *p);
    const json_t *model = json_object_get(root, "model");
    if (!model)
        return peek_bad(err, n, "model is required");
    if (!json_is_string(model))
        return peek_bad(err, n, "model must be a string");
    p->model = json_string_value(model);
    if (api == CO_API_ANTHROPIC) {
        if (!json_object_get(root, "max_tokens"))
            return peek_bad(err, n, "max_tokens is required");
        if (peek_posint(root, "max_tokens", err, n))
            return -1;
    }
    if (peek_messages(json_object_get(root, "messages"), api, err, n))
        return -1;
    if (peek_opt(root, "stream", JSON_TRUE, "a boolean", err, n) ||
        peek_opt(root, "temperature", JSON_REAL, "a number", err, n) ||
        peek_opt(root, "top_p", JSON_REAL, "a number", err, n) ||
        peek_opt(root, "tools", JSON_ARRAY, "an array", err, n))
        return -1;
    p->stream = json_is_true(json_object_get(root, "stream"));
    if (api == CO_API_ANTHROPIC) {
        p->include_usage = 1;
        const json_t *sys = json_object_get(root, "system");
        if (sys && !json_is_null(sys) && !json_is_string(sys) && !json_is_array(sys))
            return peek_bad(err, n, "system must be a string or an array of text blocks");
        if (peek_opt(root, "metadata", JSON_OBJECT, "an object", err, n) ||
            peek_opt(root, "stop_sequences", JSON_ARRAY, "an array of strings", err, n))
            return -1;
        const json_t *md = json_object_get(root, "metadata");
        const json_t *uid = json_object_get(md, "user_id");
        if (uid && !json_is_null(uid) && !json_is_string(uid))
            return peek_bad(err, n, "metadata.user_id must be a string");
        p->user = json_string_value(uid);
        return 0;
    }
    if (peek_posint(root, "max_tokens", err, n) || peek_posint(root, "max_completion_tokens", err, n) ||
        peek_opt(root, "stream_options", JSON_OBJECT, "an object", err, n) ||
        peek_opt(root, "user", JSON_STRING, "a string", err, n) ||
        peek_opt(root, "safety_identifier", JSON_STRING, "a string", err, n))
        return -1;
    const json_t *so = json_object_get(root, "stream_options");
    const json_t *iu = json_object_get(so, "include_usage");
    if (iu && !json_is_null(iu) && !json_is_boolean(iu))
        return peek_bad(err, n, "stream_options.include_usage must be a boolean");
    p->include_usage = json_is_true(iu);
    const json_t *stop = json_object_get(root, "stop");
    if (stop && !json_is_null(stop) && !json_is_string(stop) && !json_is_array(stop))
        return peek_bad(err, n, "stop must be a string or an array of strings");
    const json_t *tc = json_object_get(root, "tool_choice");
    if (tc && !json_is_null(tc) && !json_is_string(tc) && !json_is_object(tc))
        return peek_bad(err, n, "tool_choice must be a string or an object");
    p->user = json_string_value(json_object_get(root, "user"));
    if (!p->user)
        p->user = json_string_value(json_object_get(root, "safety_identifier"));
    return 0;
}

/* A byte-level twin of json_loadb + peek_request for the common request:
 * a strict scan (a subset of what jansson accepts: no escapes in keys, no
 * \u0000 or surrogate escapes, short plain numbers, valid UTF-8, bounded
 * depth and size) into a flat tape, then peek_request's checks on it. It
 * only ever answers "these are the exact results jansson + peek_request
 * would give" (0) or "not sure" (-1: the caller takes the jansson path, which
 * also words every error). */
enum { FP_OBJ, FP_ARR, FP_STR, FP_NUM, FP_TRUE, FP_FALSE, FP_NULL };
#define FP_MAX_TOK 1024
#define FP_MAX_DEPTH 64
typedef struct {
    uint8_t type, esc, real;
    uint32_t s, e;  /* strings: the bytes between the quotes; others: the token */
    uint32_t next;  /* index of the token after this value (and its subtree) */
} fp_tok;
typedef struct {
    const unsigned char *p;
    size_t n, i;
    fp_tok *t;
    uint32_t nt;
} fp_scan;

static void fp_ws(fp_scan *s)
{
    while (s->i < s->n && (s->p[s->i] == ' ' || s->p[s->i] == '\t' || s->p[s->i] == '\n' || s->p[s->i] == '\r'))
        s->i++;
}

static int fp_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* a string at s->i (on the quote); strict UTF-8 as jansson checks it */
static int fp_str(fp_scan *s, fp_tok *t)
{
    const unsigned char *p = s->p;
    size_t i = s->i + 1, n = s->n;
    t->type = FP_STR;
    t->s = (uint32_t)i;
    for (;;) {
        i = co_json_plain_end(p, i, n);
        if (i >= n)
            return -1;
        unsigned char c = p[i];
        if (c == '"')
            break;
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (i + 1 >= n)
                return -1;
            unsigned char e = p[i + 1];
            t->esc = 1;
            if (e == 'u') {
                if (i + 5 >= n || !fp_hex(p[i + 2]) || !fp_hex(p[i + 3]) || !fp_hex(p[i + 4]) || !fp_hex(p[i + 5]))
                    return -1;
                unsigned v = (unsigned)strtoul((const char[]){(char)p[i + 2], (char)p[i + 3], (char)p[i + 4],
                                                              (char)p[i + 5], 0},
                                               NULL, 16);
                if (v == 0 || (v >= 0xD800 && v <= 0xDFFF))
                    return -1; /* NUL or a surrogate: jansson's rules, not ours */
                i += 6;
                continue;
            }
            if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' && e != 't')
                return -1;
            i += 2;
            continue;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        /* UTF-8: no overlongs, no surrogates, nothing above U+10FFFF */
        size_t k;
        unsigned v;
        if (c >= 0xC2 && c <= 0xDF)
            k = 1, v = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            k = 2, v = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            k = 3, v = c & 0x07;
        else
            return -1;
        if (i + k >= n)
            return -1;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return -1;
            v = (v << 6) | (p[i + j] & 0x3F);
        }
        if ((k == 2 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) || (k == 3 && (v < 0x10000 || v > 0x10FFFF)))
            return -1;
        i += k + 1;
    }
    t->e = (uint32_t)i;
    s->i = i + 1;
    return 0;
}

static int fp_value(fp_scan *s, int depth)
{
    if (depth > FP_MAX_DEPTH || s->nt >= FP_MAX_TOK || s->i >= s->n)
        return -1;
    uint32_t me = s->nt++;
    fp_tok *t = &s->t[me];
    memset(t, 0, sizeof *t);
    const unsigned char *p = s->p;
    unsigned char c = p[s->i];
    if (c == '{' || c == '[') {
        t->type = c == '{' ? FP_OBJ : FP_ARR;
        t->s = (uint32_t)s->i;
        s->i++;
        fp_ws(s);
        if (s->i < s->n && p[s->i] == (c == '{' ? '}' : ']')) {
            s->i++;
        } else {
            for (;;) {
                if (c == '{') {
                    if (s->i >= s->n || p[s->i] != '"' || s->nt >= FP_MAX_TOK)
                        return -1;
                    fp_tok *k = &s->t[s->nt++];
                    memset(k, 0, sizeof *k);
                    if (fp_str(s, k) || k->esc)
                        return -1; /* a key with escapes might spell anything */
                    k->next = s->nt;
                    fp_ws(s);
                    if (s->i >= s->n || p[s->i] != ':')
                        return -1;
                    s->i++;
                    fp_ws(s);
                }
                if (fp_value(s, depth + 1))
                    return -1;
                fp_ws(s);
                if (s->i >= s->n)
                    return -1;
                if (p[s->i] == ',') {
                    s->i++;
                    fp_ws(s);
                    continue;
                }
                if (p[s->i] != (c == '{' ? '}' : ']'))
                    return -1;
                s->i++;
                break;
            }
        }
        t = &s->t[me];
        t->e = (uint32_t)s->i;
        t->next = s->nt;
        return 0;
    }
    if (c == '"') {
        if (fp_str(s, t))
            return -1;
        t->next = s->nt;
        return 0;
    }
    size_t st = s->i;
    if (c == '-' || (c >= '0' && c <= '9')) {
        size_t i = s->i;
        if (p[i] == '-')
            i++;
        if (i >= s->n || !(p[i] >= '0' && p[i] <= '9'))
            return -1;
        if (p[i] == '0') {
            i++;
            if (i < s->n && p[i] >= '0' && p[i] <= '9')
                return -1;
        } else {
            while (i < s->n && p[i] >= '0' && p[i] <= '9')
                i++;
        }
        if (i < s->n && p[i] == '.') {
            t->real = 1;
            i++;
            if (i >= s->n || !(p[i] >= '0' && p[i] <= '9'))
                return -1;
            while (i < s->n && p[i] >= '0' && p[i] <= '9')
                i++;
        }
        if (i < s->n && (p[i] == 'e' || p[i] == 'E'))
            return -1; /* exponents can overflow jansson's reals: its call */
        if (i - st > 15)
            return -1; /* long numbers can overflow jansson's integers: its call */
        t->type = FP_NUM;
        s->i = i;
    } else if (s->n - st >= 4 && !memcmp(p + st, "true", 4)) {
        t->type = FP_TRUE;
        s->i += 4;
    } else if (s->n - st >= 5 && !memcmp(p + st, "false", 5)) {
        t->type = FP_FALSE;
        s->i += 5;
    } else if (s->n - st >= 4 && !memcmp(p + st, "null", 4)) {
        t->type = FP_NULL;
        s->i += 4;
    } else {
        return -1;
    }
    /* jansson lexes a literal or number up to a delimiter */
    if (s->i < s->n) {
        unsigned char d = p[s->i];
        if (!(d == ' ' || d == '\t' || d == '\n' || d == '\r' || d == ',' || d == '}' || d == ']'))
            return -1;
    }
    t->s = (uint32_t)st;
    t->e = (uint32_t)s->i;
    t->next = s->nt;
    return 0;
}

/* the value of key in object o (the last one, as jansson keeps), or 0;
 * fp_get takes a string literal and its length at compile time */
#define fp_get(s, o, key) fp_getn((s), (o), "" key, sizeof(key) - 1)
static uint32_t fp_getn(const fp_scan *s, uint32_t o, const char *key, size_t kl)
{
    if (!o || s->t[o - 1].type != FP_OBJ)
        return 0;
    uint32_t found = 0;
    for (uint32_t i = o; i < s->t[o - 1].next;) {
        const fp_tok *k = &s->t[i];
        if (k->e - k->s == kl && !memcmp(s->p + k->s, key, kl))
            found = i + 2; /* 1-based index of the value */
        i = s->t[i + 1].next;
    }
    return found;
}
/* 1-based token handles: 0 is "absent" */
#define FP_T(s, h) (&(s)->t[(h) - 1])
static int fp_is(const fp_scan *s, uint32_t h, int type) { return h && FP_T(s, h)->type == type; }
static int fp_null(const fp_scan *s, uint32_t h) { return !h || FP_T(s, h)->type == FP_NULL; }
#define fp_streq(s, h, v) fp_streqn((s), (h), "" v, sizeof(v) - 1)
static int fp_streqn(const fp_scan *s, uint32_t h, const char *v, size_t l)
{
    const fp_tok *t = FP_T(s, h);
    return !t->esc && t->e - t->s == l && !memcmp(s->p + t->s, v, l);
}
/* a string without escapes copied out NUL-terminated; -1 when not sure */
static int fp_cstr(const fp_scan *s, uint32_t h, char *out, size_t n)
{
    const fp_tok *t = FP_T(s, h);
    if (t->esc || t->e - t->s >= n)
        return -1;
    memcpy(out, s->p + t->s, t->e - t->s);
    out[t->e - t->s] = '\0';
    return 0;
}

static int fp_content(const fp_scan *s, uint32_t c)
{
    if (fp_is(s, c, FP_STR))
        return 0;
    if (!fp_is(s, c, FP_ARR))
        return -1;
    for (uint32_t i = c; i < FP_T(s, c)->next; i = s->t[i].next)
        if (s->t[i].type != FP_OBJ || !fp_is(s, fp_get(s, i + 1, "type"), FP_STR))
            return -1;
    return 0;
}

static int fp_posint_ok(const fp_scan *s, uint32_t h)
{
    if (fp_null(s, h))
        return 1;
    const fp_tok *t = FP_T(s, h);
    return t->type == FP_NUM && !t->real && s->p[t->s] != '-' && s->p[t->s] != '0';
}

/* peek_request's checks, OpenAI and Anthropic; model and user go to mbuf/ubuf */
static int fast_peek(const char *body, size_t len, co_api api, gw_peek *pk, char *mbuf, size_t mn, char *ubuf,
                     size_t un)
{
    if (api != CO_API_OPENAI && api != CO_API_ANTHROPIC)
        return -1;
    fp_tok toks[FP_MAX_TOK];
    fp_scan s = {(const unsigned char *)body, len, 0, toks, 0};
    fp_ws(&s);
    if (s.i >= s.n || body[s.i] != '{' || fp_value(&s, 0))
        return -1;
    fp_ws(&s);
    if (s.i != s.n)
        return -1;
    memset(pk, 0, sizeof *pk);
    uint32_t root = 1;
    uint32_t model = fp_get(&s, root, "model");
    if (!fp_is(&s, model, FP_STR) || fp_cstr(&s, model, mbuf, mn))
        return -1;
    pk->model = mbuf;
    unsigned models = 0;
    for (uint32_t i = root; i < s.t[root - 1].next; i = s.t[i + 1].next)
        models += s.t[i].e - s.t[i].s == 5 && !memcmp(s.p + s.t[i].s, "model", 5);
    if (models == 1) {
        pk->model_vs = FP_T(&s, model)->s - 1;
        pk->model_ve = FP_T(&s, model)->e + 1;
    }
    if (api == CO_API_ANTHROPIC) {
        uint32_t mt = fp_get(&s, root, "max_tokens");
        if (!mt || !fp_posint_ok(&s, mt))
            return -1;
    }
    uint32_t msgs = fp_get(&s, root, "messages");
    if (!fp_is(&s, msgs, FP_ARR) || FP_T(&s, msgs)->next == msgs)
        return -1; /* absent, not an array, or empty */
    uint32_t ma = msgs - 1; /* 0-based index of the array */
    for (uint32_t j = ma + 1; j < s.t[ma].next; j = s.t[j].next) {
        if (s.t[j].type != FP_OBJ)
            return -1;
        uint32_t i = j + 1; /* the message's handle */
        uint32_t rv = fp_get(&s, i, "role");
        if (!fp_is(&s, rv, FP_STR) || FP_T(&s, rv)->esc)
            return -1;
        uint32_t c = fp_get(&s, i, "content");
        int has = !fp_null(&s, c);
        if (api == CO_API_ANTHROPIC) {
            if (!fp_streq(&s, rv, "user") && !fp_streq(&s, rv, "assistant"))
                return -1;
            if (!has || fp_content(&s, c))
                return -1;
        } else if (fp_streq(&s, rv, "assistant")) {
            uint32_t tc = fp_get(&s, i, "tool_calls");
            if (!fp_null(&s, tc) && !fp_is(&s, tc, FP_ARR))
                return -1;
            if (has && fp_content(&s, c))
                return -1;
        } else {
            if (!fp_streq(&s, rv, "system") && !fp_streq(&s, rv, "developer") && !fp_streq(&s, rv, "user") &&
                !fp_streq(&s, rv, "tool"))
                return -1;
            if (!has || fp_content(&s, c))
                return -1;
            if (fp_streq(&s, rv, "tool") && !fp_is(&s, fp_get(&s, i, "tool_call_id"), FP_STR))
                return -1;
        }
    }
    uint32_t st = fp_get(&s, root, "stream");
    if (!fp_null(&s, st) && !fp_is(&s, st, FP_TRUE) && !fp_is(&s, st, FP_FALSE))
        return -1;
    uint32_t h;
    if (!fp_null(&s, h = fp_get(&s, root, "temperature")) && !fp_is(&s, h, FP_NUM))
        return -1;
    if (!fp_null(&s, h = fp_get(&s, root, "top_p")) && !fp_is(&s, h, FP_NUM))
        return -1;
    if (!fp_null(&s, h = fp_get(&s, root, "tools")) && !fp_is(&s, h, FP_ARR))
        return -1;
    pk->stream = fp_is(&s, st, FP_TRUE);
    if (api == CO_API_ANTHROPIC) {
        pk->include_usage = 1;
        if (!fp_null(&s, h = fp_get(&s, root, "system")) && !fp_is(&s, h, FP_STR) && !fp_is(&s, h, FP_ARR))
            return -1;
        uint32_t md = fp_get(&s, root, "metadata");
        if (!fp_null(&s, md) && !fp_is(&s, md, FP_OBJ))
            return -1;
        if (!fp_null(&s, h = fp_get(&s, root, "stop_sequences")) && !fp_is(&s, h, FP_ARR))
            return -1;
        uint32_t uid = fp_is(&s, md, FP_OBJ) ? fp_get(&s, md, "user_id") : 0;
        if (!fp_null(&s, uid)) {
            if (!fp_is(&s, uid, FP_STR) || fp_cstr(&s, uid, ubuf, un))
                return -1;
            pk->user = ubuf;
        }
        return 0;
    }
    if (!fp_posint_ok(&s, fp_get(&s, root, "max_tokens")) ||
        !fp_posint_ok(&s, fp_get(&s, root, "max_completion_tokens")))
        return -1;
    uint32_t so = fp_get(&s, root, "stream_options");
    if (!fp_null(&s, so) && !fp_is(&s, so, FP_OBJ))
        return -1;
    uint32_t user = fp_get(&s, root, "user"), sid = fp_get(&s, root, "safety_identifier");
    if ((!fp_null(&s, user) && !fp_is(&s, user, FP_STR)) || (!fp_null(&s, sid) && !fp_is(&s, sid, FP_STR)))
        return -1;
    uint32_t iu = fp_is(&s, so, FP_OBJ) ? fp_get(&s, so, "include_usage") : 0;
    if (!fp_null(&s, iu) && !fp_is(&s, iu, FP_TRUE) && !fp_is(&s, iu, FP_FALSE))
        return -1;
    pk->include_usage = fp_is(&s, iu, FP_TRUE);
    if (!fp_null(&s, h = fp_get(&s, root, "stop")) && !fp_is(&s, h, FP_STR) && !fp_is(&s, h, FP_ARR))
        return -1;
    if (!fp_null(&s, h = fp_get(&s, root, "tool_choice")) && !fp_is(&s, h, FP_STR) && !fp_is(&s, h, FP_OBJ))
        return -1;
    uint32_t u = fp_is(&s, user, FP_STR) ? user : fp_is(&s, sid, FP_STR) ? sid : 0;
    if (u) {
        if (fp_cstr(&s, u, ubuf, un))
            return -1;
        pk->user = ubuf;
    }
    return 0;
}

/* a string token decoded as jansson would (the scan let no \u0000 or
 * surrogate through), malloc'd; NULL when out of memory */
static char *fp_dup(const fp_scan *s, uint32_t h)
{
    const fp_tok *t = FP_T(s, h);
    const unsigned char *p = s->p + t->s;
    size_t n = t->e - t->s, o = 0;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    if (!t->esc) {
        memcpy(out, p, n);
        out[n] = '\0';
        return out;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\') {
            out[o++] = (char)p[i];
            continue;
        }
        unsigned char e = p[++i];
        switch (e) {
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned v = 0;
            for (int k = 1; k <= 4; k++) {
                unsigned char c = p[i + (size_t)k];
                v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
            }
            i += 4;
            if (v < 0x80) {
                out[o++] = (char)v;
            } else if (v < 0x800) {
                out[o++] = (char)(0xC0 | (v >> 6));
                out[o++] = (char)(0x80 | (v & 0x3F));
            } else {
                out[o++] = (char)(0xE0 | (v >> 12));
                out[o++] = (char)(0x80 | ((v >> 6) & 0x3F));
                out[o++] = (char)(0x80 | (v & 0x3F));
            }
            break;
        }
        default: out[o++] = (char)e; break; /* " \ / */
        }
    }
    out[o] = '\0';
    return out;
}

/* json_integer_value of a token: its value for a (short) integer, else 0 */
static int64_t fp_int(const fp_scan *s, uint32_t h)
{
    if (!fp_is(s, h, FP_NUM) || FP_T(s, h)->real)
        return 0;
    return strtoll((const char *)s->p + FP_T(s, h)->s, NULL, 10);
}

static int fp_setstr(const fp_scan *s, uint32_t h, char **field)
{
    if (!fp_is(s, h, FP_STR))
        return 0;
    char *v = fp_dup(s, h);
    if (!v)
        return -1;
    free(*field);
    *field = v;
    return 0;
}

/* co_chat_response_parse of an OpenAI body without tool calls, by the same
 * rules, from one byte-level scan; -1 when not sure (the caller parses with
 * jansson, which also words every error). */

static int fast_openai_response(co_chat_response **out, const char *body, size_t len)
{
    fp_tok toks[FP_MAX_TOK];
    fp_scan s = {(const unsigned char *)body, len, 0, toks, 0};
    fp_ws(&s);
    if (s.i >= s.n || body[s.i] != '{' || fp_value(&s, 0))
        return -1;
    fp_ws(&s);
    if (s.i != s.n)
        return -1;
    uint32_t root = 1, h;
    uint32_t choices = fp_get(&s, root, "choices");
    if (!fp_is(&s, choices, FP_ARR))
        return -1;
    uint32_t c0 = FP_T(&s, choices)->next > choices ? choices + 1 : 0; /* the first element's handle */
    uint32_t msg = 0, content = 0, refusal = 0;
    if (c0) {
        if (!fp_is(&s, c0, FP_OBJ))
            return -1;
        msg = fp_get(&s, c0, "message");
        if (!fp_is(&s, msg, FP_OBJ))
            return -1;
        content = fp_get(&s, msg, "content");
        refusal = fp_get(&s, msg, "refusal");
        if (!fp_is(&s, content, FP_STR) && !fp_is(&s, refusal, FP_STR) && !fp_null(&s, content))
            return -1;
        h = fp_get(&s, msg, "tool_calls");
        if (fp_is(&s, h, FP_ARR) && FP_T(&s, h)->next > h)
            return -1; /* tool calls: jansson's path */
    }
    co_chat_response *r = NULL;
    if (co_chat_response_new(&r) < 0)
        return -1;
    r->finish_api = CO_API_OPENAI;
    if (fp_setstr(&s, fp_get(&s, root, "id"), &r->id) || fp_setstr(&s, fp_get(&s, root, "model"), &r->model))
        goto fail;
    r->created = fp_int(&s, fp_get(&s, root, "created"));
    uint32_t usage = fp_get(&s, root, "usage");
    if (fp_is(&s, usage, FP_OBJ)) {
        memset(&r->usage, 0, sizeof r->usage);
        r->usage.known = 1;
        r->usage.input_tokens = fp_int(&s, fp_get(&s, usage, "prompt_tokens"));
        r->usage.output_tokens = fp_int(&s, fp_get(&s, usage, "completion_tokens"));
        r->usage.cached_input_tokens = fp_int(&s, fp_get(&s, fp_get(&s, usage, "prompt_tokens_details"), "cached_tokens"));
    }
    if (c0) {
        if (fp_setstr(&s, fp_is(&s, content, FP_STR) ? content : refusal, &r->text))
            goto fail;
        uint32_t fr = fp_get(&s, c0, "finish_reason");
        char *frs = NULL;
        if (fp_is(&s, fr, FP_STR) && !(frs = fp_dup(&s, fr)))
            goto fail;
        r->finish = co_chat_finish_of(CO_API_OPENAI, frs);
        r->finish_api = CO_API_OPENAI;
        free(r->finish_raw);
        r->finish_raw = frs;
    }
    *out = r;
    return 0;
fail:
    co_chat_response_free(r);
    return -1;
}

/* co_chat_response_parse, by the byte-level scan when it is sure */
static int gw_response_parse(co_chat_response **out, co_api api, const char *body, size_t len)
{
    *out = NULL;
    if (api == CO_API_OPENAI && fast_openai_response(out, body, len) == 0)
        return 0;
    return co_chat_response_parse(out, api, body, len);
}

/* A scanner over JSON jansson already accepted. */
static size_t js_ws(const char *p, size_t i, size_t n)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

static size_t js_str(const char *p, size_t i, size_t n, int *esc)
{
    for (i++; i < n && (i = co_json_plain_end((const unsigned char *)p, i, n)) < n && p[i] != '"'; i++)
        if (p[i] == '\\') {
            *esc = 1;
            i++;
        }
    return i + 1;
}

static size_t js_value(const char *p, size_t i, size_t n)
{
    int depth = 0, esc = 0;
    while (i < n) {
        char ch = p[i];
        if (ch == '"') {
            i = js_str(p, i, n, &esc);
            if (!depth)
                return i;
            continue;
        }
        if (ch == '{' || ch == '[')
            depth++;
        else if (ch == '}' || ch == ']') {
            if (!depth)
                return i;
            if (--depth == 0)
                return i + 1;
        } else if (!depth && (ch == ',' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'))
            return i;
        i++;
    }
    return i;
}

static int json_needs_escape(const char *v)
{
    for (; *v; v++)
        if (*v == '"' || *v == '\\' || (unsigned char)*v < 0x20)
            return 1;
    return 0;
}

/* body with bytes [vs, ve) replaced by model as a JSON string (model needs
 * no escaping: the caller checked) */
static int splice_at(co_buf *out, const char *body, size_t len, size_t vs, size_t ve, const char *model)
{
    int rc;
    if ((rc = co_buf_append(out, body, vs)) || (rc = co_buf_append(out, "\"", 1)) || (rc = co_buf_puts(out, model)) ||
        (rc = co_buf_append(out, "\"", 1)) || (rc = co_buf_append(out, body + ve, len - ve)))
        return rc;
    return 0;
}

/* body with its top-level "model" value replaced by model, only those bytes
 * changed; co_chat_rewrite_model when the fast scan cannot be sure. */
static int splice_model(co_buf *out, const char *body, size_t len, const char *model)
{
    size_t vs = 0, ve = 0;
    int found = 0, unsure = 0;
    if (json_needs_escape(model))
        unsure = 1;
    size_t i = js_ws(body, 0, len);
    if (i >= len || body[i] != '{')
        unsure = 1;
    for (i = js_ws(body, i + 1, len); !unsure && i < len && body[i] == '"';) {
        int esc = 0;
        size_t ks = i;
        i = js_str(body, i, len, &esc);
        size_t ke = i;
        i = js_ws(body, i, len);
        i = js_ws(body, i + 1, len); /* ':' */
        size_t s = i;
        i = js_value(body, i, len);
        if (esc)
            unsure = 1; /* a key with escapes might spell "model" */
        else if (ke - ks == 7 && !memcmp(body + ks, "\"model\"", 7)) {
            if (found)
                unsure = 1; /* a duplicate: jansson took the last one */
            found = 1;
            vs = s;
            ve = i;
        }
        i = js_ws(body, i, len);
        if (i < len && body[i] == ',')
            i = js_ws(body, i + 1, len);
    }
    if (unsure || !found || ve <= vs || body[vs] != '"')
        return co_chat_rewrite_model(out, body, len, model);
    return splice_at(out, body, len, vs, ve, model);
}

/* ---- the chat pipeline --------------------------------------------------- */

static const char *hdr_fn(void *ud, const char *name)
{
    return gw_hreq_header(ud, name);
}

static gw_gen *gen_for(gw_worker *w, const co_route_table *t)
{
    const void *tag = table_tag(t);
    if (w->gen && w->gen->tag == tag)
        return w->gen;
    if (w->prev && w->prev->tag == tag)
        return w->prev;
    return NULL;
}

static void user_key(gw_req *r, const char *u)
{
    if (u && *u) {
        size_t n = strlen(u);
        if (n < CO_USER_KEY_MAX) {
            memcpy(r->user_key, u, n + 1);
            return;
        }
        json_t *o = json_pack("{s:s}", "user", u);
        co_route_user_key(o, NULL, NULL, r->user_key);
        json_decref(o);
        if (r->user_key[0])
            return;
    }
    co_route_user_key(NULL, hdr_fn, r->ev, r->user_key);
}

static void chat(gw_worker *w, gw_hreq *ev, co_api api)
{
    co_gateway *gw = w->gw;
    gw_req *r = calloc(1, sizeof *r);
    if (!r) {
        reply_internal(ev);
        return;
    }
    r->w = w;
    r->ev = ev;
    r->api = api;
    r->refs = 2; /* the client's, and this function's */
    r->t0_us = co_mono_us();
    r->ts_ms = co_now_ms();
    worker_id(w, r->ts_ms, r->id);
    r->next = w->reqs;
    if (w->reqs)
        w->reqs->prev = r;
    w->reqs = r;
    w->nreqs++;

    r->table = co_router_acquire(gw->router);
    r->gen = gen_for(w, r->table);
    if (!r->gen) {
        reply_error(r, NULL, 503, CO_CHAT_ERR_OVERLOADED, "the gateway is reloading its configuration; retry");
        goto out;
    }
    gen_ref(r->gen);
    size_t len = 0;
    gw_hreq_body(ev, &len);
    if (len > r->gen->max_body) {
        reply_error(r, NULL, 413, CO_CHAT_ERR_REQUEST_TOO_LARGE,
                    "the request body is %zu bytes, over the gateway's limit of %zu bytes (limits.max_body)", len,
                    r->gen->max_body);
        goto out;
    }
    if (!(r->body = gw_hreq_take_body(ev, &len))) {
        reply_error(r, NULL, 500, CO_CHAT_ERR_API, "out of memory");
        goto out;
    }
    r->body_len = len;
    gw_peek pk;
    char perr[512];
    char pk_model[512], pk_user[512];
    json_t *root = NULL;
    if (fast_peek(r->body, len, api, &pk, pk_model, sizeof pk_model, pk_user, sizeof pk_user) == 0)
        goto peeked;
    pk.model_vs = pk.model_ve = 0; /* jansson's path: no spans */
    json_error_t jerr;
    root = json_loadb(r->body, len, 0, &jerr);
    if (!root || !json_is_object(root)) {
        if (!root && !len)
            reply_error(r, NULL, 400, CO_CHAT_ERR_INVALID_REQUEST, "request body is empty: expected a JSON object");
        else if (!root)
            reply_error(r, NULL, 400, CO_CHAT_ERR_INVALID_REQUEST,
                        "request body is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        else
            reply_error(r, NULL, 400, CO_CHAT_ERR_INVALID_REQUEST, "request body must be a JSON object");
        json_decref(root);
        goto out;
    }
    if (peek_request(root, api, &pk, perr, sizeof perr) < 0) {
        json_decref(root);
        reply_error(r, NULL, 400, CO_CHAT_ERR_INVALID_REQUEST, "%s", perr);
        goto out;
    }
peeked:
    r->stream = pk.stream;
    r->include_usage = pk.include_usage;
    r->model_vs = pk.model_vs;
    r->model_ve = pk.model_ve;
    if (co_route_resolve(r->table, hdr_fn, ev, pk.model, &r->wl, NULL) < 0) {
        json_decref(root);
        reply_error(r, NULL, 404, CO_CHAT_ERR_NOT_FOUND, "%s", co_error_last());
        goto out;
    }
    user_key(r, pk.user);
    json_decref(root);
    if (co_route_decide(r->table, r->wl, r->user_key, r->id, &r->d) < 0) {
        reply_error(r, NULL, 500, CO_CHAT_ERR_API, "%s", co_error_last());
        goto out;
    }
    r->decided = 1;

    gw_call *c = NULL;
    int rc = call_start(r, CO_ROLE_SERVED, r->d.served, &c);
    if (rc < 0) {
        if (rc == CO_EPARSE) {
            char msg[1024];
            snprintf(msg, sizeof msg, "the request cannot be sent to model %s: %s", c ? c->m->conf->name : "?",
                     co_error_last());
            reply_error(r, c, 400, CO_CHAT_ERR_INVALID_REQUEST, "%s", msg);
            if (c)
                call_abandon(c, 0);
        } else if (c) {
            r->served = c;
            c->errclass = CO_ERRCLASS_CONNECT;
            if (!try_fallback(c)) {
                c->rec_status = 502;
                reply_error(r, c, 502, CO_CHAT_ERR_API, "upstream call to model %s could not start: %s",
                            c->m->conf->name, co_error_last());
            }
            call_abandon(c, 1);
        } else {
            reply_error(r, NULL, 500, CO_CHAT_ERR_API, "%s", co_error_last());
        }
    } else {
        r->served = c;
    }
    if (r->d.shadow != CO_ARM_NONE && r->w->shadow_inflight >= (size_t)r->gen->cfg->limits.max_shadow_in_flight) {
        /* a slow candidate must not make the gateway hold unbounded work */
        atomic_store_explicit(&r->w->shadow_skipped,
                              atomic_load_explicit(&r->w->shadow_skipped, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    } else if (r->d.shadow != CO_ARM_NONE) {
        gw_call *s = NULL;
        if (call_start(r, CO_ROLE_SHADOW, r->d.shadow, &s) < 0) {
            if (s) {
                gw_log(gw, LOG_DEBUG, "request %s: shadow call to %s could not start: %s", r->id, s->m->conf->name,
                       co_error_last());
                call_abandon(s, 1);
            }
        } else {
            r->shadow = s;
            r->w->shadow_inflight++;
        }
    }
    if (r->ev)
        client_watch(r);
out:
    req_unref(r);
}

/* ---- other routes -------------------------------------------------------- */

static void reply_text(gw_worker *w, gw_hreq *ev, int status, const char *ctype, const char *body, size_t len)
{
    (void)w;
    char id[CO_ID_LEN];
    co_id_new(id);
    common_headers(ev, id, "none", NULL);
    gw_hreq_add_header(ev, "Content-Type", ctype);
    gw_hreq_reply(ev, status, body, len);
}

static void models(gw_worker *w, gw_hreq *ev)
{
    gw_gen *g = w->gen;
    int anthropic = gw_hreq_header(ev, "anthropic-version") != NULL;
    json_t *data = json_array();
    for (size_t i = 0; g && i < g->cfg->workloads.n; i++) {
        const co_workload_conf *wc = (const co_workload_conf *)g->cfg->workloads.v + i;
        for (size_t a = 0; a <= wc->match.models.n; a++) {
            const char *id = a == 0 ? wc->name : wc->match.models.v[a - 1];
            json_t *m = anthropic ? json_pack("{s:s,s:s,s:s,s:s}", "type", "model", "id", id, "display_name", id,
                                              "created_at", "1970-01-01T00:00:00Z")
                                  : json_pack("{s:s,s:s,s:i,s:s}", "id", id, "object", "model", "created", 0,
                                              "owned_by", "cutover");
            json_array_append_new(data, m);
        }
    }
    json_t *root;
    if (anthropic) {
        size_t n = json_array_size(data);
        root = json_pack("{s:o,s:b,s:O?,s:O?}", "data", data, "has_more", 0, "first_id",
                         n ? json_object_get(json_array_get(data, 0), "id") : NULL, "last_id",
                         n ? json_object_get(json_array_get(data, n - 1), "id") : NULL);
    } else {
        root = json_pack("{s:s,s:o}", "object", "list", "data", data);
    }
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (s)
        reply_text(w, ev, 200, "application/json", s, strlen(s));
    else
        reply_internal(ev);
    free(s);
}

static int gw_ready(co_gateway *gw) { return atomic_load(&gw->nstarted) >= gw->nworkers && gw->st != NULL; }

static void health(gw_worker *w, gw_hreq *ev)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    reply_text(w, ev, 200, "application/json", ok, sizeof ok - 1);
}

static void readyz(co_gateway *gw, gw_worker *w, gw_hreq *ev)
{
    if (gw_ready(gw) && !gw->stopping) {
        /* which mode version this process serves: what drills wait for */
        char ok[128];
        int n = snprintf(ok, sizeof ok, "{\"status\":\"ready\",\"workload_state_version\":%lld}",
                         (long long)atomic_load(&gw->applied_version));
        reply_text(w, ev, 200, "application/json", ok, (size_t)n);
    } else {
        static const char no[] = "{\"status\":\"starting\"}";
        static const char st[] = "{\"status\":\"stopping\"}";
        if (gw->stopping)
            reply_text(w, ev, 503, "application/json", st, sizeof st - 1);
        else
            reply_text(w, ev, 503, "application/json", no, sizeof no - 1);
    }
}

static void metrics_reply(co_gateway *gw, gw_worker *w, gw_gen *g, gw_hreq *ev)
{
    co_buf b;
    co_buf_init(&b, (size_t)64 << 20);
    if (co_metrics_render(g->met->m, &b) < 0) {
        co_buf_free(&b);
        reply_internal(ev);
        return;
    }
    (void)gw;
    reply_text(w, ev, 200, "text/plain; version=0.0.4; charset=utf-8", b.p ? b.p : "", b.len);
    co_buf_free(&b);
}

static int method_ok(const gw_hreq *ev, int want)
{
    return gw_hreq_method(ev) == want;
}

static void not_allowed(gw_worker *w, gw_hreq *ev, co_api api, const char *allow)
{
    char id[CO_ID_LEN], msg[160];
    co_id_new(id);
    snprintf(msg, sizeof msg, "method not allowed on %.100s; use %s", gw_hreq_path(ev), allow);
    gw_hreq_add_header(ev, "Allow", allow);
    reply_api_error(w, ev, api, 405, CO_CHAT_ERR_INVALID_REQUEST, id, "none", NULL, msg);
}

/* Routes shared by the main listener and a separate admin listener. */
static int common_routes(co_gateway *gw, gw_worker *w, gw_gen *g, gw_hreq *ev, const char *path)
{
    if (!strcmp(path, "/healthz")) {
        health(w, ev);
        return 1;
    }
    if (!strcmp(path, "/readyz")) {
        readyz(gw, w, ev);
        return 1;
    }
    if (!strcmp(path, "/metrics")) {
        if (!method_ok(ev, GW_HTTP_GET))
            not_allowed(w, ev, CO_API_OPENAI, "GET");
        else
            metrics_reply(gw, w, g, ev);
        return 1;
    }
    return 0;
}

static void not_found(gw_worker *w, gw_hreq *ev, const char *path)
{
    char id[CO_ID_LEN], msg[600];
    co_id_new(id);
    snprintf(msg, sizeof msg,
             "no route %.400s; the gateway serves POST /v1/chat/completions, POST /v1/messages, GET /v1/models "
             "and POST /v1/feedback",
             path);
    reply_api_error(w, ev, CO_API_OPENAI, 404, CO_CHAT_ERR_NOT_FOUND, id, "none", NULL, msg);
}

static void route_request(gw_hreq *ev, void *arg)
{
    gw_worker *w = arg;
    co_gateway *gw = w->gw;
    const char *path = gw_hreq_path(ev);
    if (!strcmp(path, "/v1/chat/completions")) {
        if (!method_ok(ev, GW_HTTP_POST))
            not_allowed(w, ev, CO_API_OPENAI, "POST");
        else
            chat(w, ev, CO_API_OPENAI);
        return;
    }
    if (!strcmp(path, "/v1/messages")) {
        if (!method_ok(ev, GW_HTTP_POST))
            not_allowed(w, ev, CO_API_ANTHROPIC, "POST");
        else
            chat(w, ev, CO_API_ANTHROPIC);
        return;
    }
    if (!strcmp(path, "/v1/models")) {
        if (!method_ok(ev, GW_HTTP_GET))
            not_allowed(w, ev, CO_API_OPENAI, "GET");
        else
            models(w, ev);
        return;
    }
    if (!strcmp(path, "/v1/feedback")) {
        if (!method_ok(ev, GW_HTTP_POST))
            not_allowed(w, ev, CO_API_OPENAI, "POST");
        else
            gw_feedback_handle(gw, w, ev);
        return;
    }
    if (common_routes(gw, w, w->gen, ev, path))
        return;
    if (gw_admin_path(path) && !gw->admin_http) {
        gw_admin_handle(gw, w, ev, path, gw->loopback, w->gen ? w->gen->admin_token : NULL);
        return;
    }
    not_found(w, ev, path);
}

/* The separate admin listener (admin.listen), on the control thread. */
static void on_admin_http(gw_hreq *ev, void *arg)
{
    co_gateway *gw = arg;
    const char *path = gw_hreq_path(ev);
    pthread_mutex_lock(&gw->mu);
    gw_gen *g = gw->gen;
    gen_ref(g);
    pthread_mutex_unlock(&gw->mu);
    if (!common_routes(gw, NULL, g, ev, path)) {
        if (gw_admin_path(path))
            gw_admin_handle(gw, NULL, ev, path, gw->admin_loopback, g->admin_token);
        else
            not_found(NULL, ev, path);
    }
    gen_unref(g);
}

/* ---- worker mailbox and lifecycle ---------------------------------------- */

static void worker_post(gw_worker *w, gw_msg *m)
{
    m->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->mtail)
        w->mtail->next = m;
    else
        w->mhead = m;
    w->mtail = m;
    pthread_mutex_unlock(&w->mu);
    mbox_kick(w->mfd);
}

static void ack(co_gateway *gw)
{
    pthread_mutex_lock(&gw->ack_mu);
    gw->acks++;
    pthread_cond_broadcast(&gw->ack_cv);
    pthread_mutex_unlock(&gw->ack_mu);
}

static void worker_apply_gen(gw_worker *w, gw_gen *g)
{
    gen_unref(w->prev);
    w->prev = w->gen;
    w->gen = g;
    if (w->http)
        gw_http_set_limits(w->http, GW_HEADERS_MAX, http_body_max(g->max_body), g->cfg->limits.header_timeout_ms,
                           GW_CLIENT_WRITE_TIMEOUT_MS, (size_t)g->cfg->limits.max_connections);
}

static void drain_check(evutil_socket_t fd, short what, void *arg);

static void worker_drain(gw_worker *w)
{
    if (w->draining)
        return;
    w->draining = 1;
    if (w->http)
        gw_http_stop(w->http); /* closes the listening socket; replies from now on close their connection */
    w->drain_deadline_us = co_mono_us() + (int64_t)GW_DRAIN_GRACE_MS * 1000;
    w->drain_ev = event_new(w->base, -1, EV_PERSIST, drain_check, w);
    struct timeval tv = {0, GW_DRAIN_TICK_MS * 1000};
    if (!w->drain_ev || event_add(w->drain_ev, &tv))
        event_base_loopbreak(w->base);
    drain_check(-1, 0, w);
}

static void on_mbox(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    gw_worker *w = arg;
    mbox_drain_fd(fd);
    for (;;) {
        pthread_mutex_lock(&w->mu);
        gw_msg *m = w->mhead;
        if (m) {
            w->mhead = m->next;
            if (!w->mhead)
                w->mtail = NULL;
        }
        pthread_mutex_unlock(&w->mu);
        if (!m)
            break;
        switch (m->kind) {
        case MSG_GEN:
            worker_apply_gen(w, m->gen);
            ack(w->gw);
            break;
        case MSG_DROP_PREV:
            gen_unref(w->prev);
            w->prev = NULL;
            break;
        case MSG_DRAIN:
            worker_drain(w);
            break;
        case MSG_JOB_DONE:
            m->job->done(w->gw, m->job);
            w->njobs--;
            break;
        }
        free(m);
    }
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gw_worker *w = arg;
    /* the last replies written out too (their connections close after them),
     * unless a client does not read them within the grace period */
    int64_t now = co_mono_us();
    if (w->nreqs == 0 && w->njobs == 0 && (!w->http || gw_http_conns(w->http) == 0 || now >= w->drain_deadline_us)) {
        event_base_loopbreak(w->base);
        return;
    }
    if (now >= w->drain_deadline_us && !w->cancelled_all) {
        gw_log(w->gw, LOG_WARN, "worker %d: %zu request(s) still in flight after %d ms; cancelling them", w->idx,
               w->nreqs, GW_DRAIN_GRACE_MS);
        w->cancelled_all = 1;
        /* every call ends (cancelled) and is answered or recorded */
        for (gw_req *r = w->reqs; r; r = r->next) {
            if (r->served && r->served->x)
                co_upstream_cancel(r->served->x);
            if (r->shadow && r->shadow->x)
                co_upstream_cancel(r->shadow->x);
        }
    }
}

static void on_started(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gw_worker *w = arg;
    atomic_fetch_add(&w->gw->nstarted, 1);
}

static void *worker_main(void *arg)
{
    gw_worker *w = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    event_base_dispatch(w->base);
    atomic_fetch_add(&w->gw->nexited, 1);
    mbox_kick(w->gw->cfd);
    return NULL;
}

static int worker_init(co_gateway *gw, gw_worker *w, int idx, const co_config *cfg)
{
    w->gw = gw;
    w->idx = idx;
    w->mfd = -1;
    char seed[CO_ID_LEN];
    co_id_new(seed);
    w->idseq = co_hash64(seed, 32, (uint64_t)idx);
    co_buf_init(&w->tmp, CO_BUF_UNLIMITED);
    if (pthread_mutex_init(&w->mu, NULL))
        return co_error_set(CO_ENOMEM, "cannot create a mutex");
    w->mu_init = 1;
    struct event_config *ec = event_config_new();
    if (ec) {
        event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        w->base = event_base_new_with_config(ec);
        event_config_free(ec);
    }
    w->mfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!w->base || w->mfd < 0)
        return co_error_set(CO_ENOMEM, "cannot create an event loop: %s", strerror(errno));
    w->mev = event_new(w->base, w->mfd, EV_READ | EV_PERSIST, on_mbox, w);
    w->start_ev = event_new(w->base, -1, 0, on_started, w);
    if (!w->mev || event_add(w->mev, NULL) || !w->start_ev)
        return co_error_set(CO_ENOMEM, "cannot create an event");
    event_active(w->start_ev, 0, 0);
    struct sockaddr_storage sa = gw->ss;
    if (idx > 0)
        set_port(&sa, gw->port);
    evutil_socket_t lfd = gw_http_listen((const struct sockaddr *)&sa, gw->sslen, gw->nworkers > 1);
    if (lfd < 0)
        return co_error_set(CO_ENET, "cannot listen on %s:%d: %s", gw->host,
                            ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                           : ((struct sockaddr_in *)&sa)->sin_port),
                            strerror(errno));
    if (idx == 0)
        gw->port = get_port(lfd);
    gw_http_opts ho = {.max_head = GW_HEADERS_MAX,
                       .max_body = http_body_max((size_t)cfg->limits.max_body),
                       .header_timeout_ms = cfg->limits.header_timeout_ms,
                       .write_timeout_ms = GW_CLIENT_WRITE_TIMEOUT_MS,
                       .max_conns = (size_t)cfg->limits.max_connections,
                       .accept_paused = &w->accept_paused,
                       .refused_at_limit = &w->conns_refused,
                       .on_request = route_request,
                       .on_error = http_error,
                       .arg = w};
    if (!(w->http = gw_http_new(w->base, lfd, &ho)))
        return co_error_set(CO_ENOMEM, "cannot create an HTTP server");
    /* one client for every provider: the per-host limit is the largest */
    co_upstream_opts uo;
    memset(&uo, 0, sizeof uo);
    for (size_t i = 0; i < cfg->providers.n; i++) {
        const co_provider_conf *p = (const co_provider_conf *)cfg->providers.v + i;
        if (p->max_connections > uo.max_host_connections)
            uo.max_host_connections = (long)p->max_connections;
    }
    uo.max_response = (size_t)cfg->limits.max_upstream_body;
    int rc = co_upstream_new(&w->up, w->base, &uo);
    if (rc < 0)
        return rc;
    w->ring = co_recorder_producer(gw->rec, idx);
    return 0;
}

static void worker_destroy(gw_worker *w)
{
    /* jobs answered while the connections still exist */
    for (;;) {
        gw_msg *m = w->mhead;
        if (!m)
            break;
        w->mhead = m->next;
        if (m->kind == MSG_JOB_DONE) {
            m->job->done(w->gw, m->job);
            w->njobs--;
        } else if (m->kind == MSG_GEN) {
            gen_unref(m->gen);
        }
        free(m);
    }
    w->mtail = NULL;
    if (w->up) {
        co_upstream *up = w->up;
        w->up = NULL;
        co_upstream_free(up);
    }
    if (w->http)
        gw_http_free(w->http); /* requests in flight hear their client is gone */
    w->http = NULL;
    if (w->drain_ev)
        event_free(w->drain_ev);
    if (w->start_ev)
        event_free(w->start_ev);
    if (w->mev)
        event_free(w->mev);
    if (w->mfd >= 0)
        close(w->mfd);
    if (w->base)
        event_base_free(w->base);
    gen_unref(w->gen);
    gen_unref(w->prev);
    w->gen = w->prev = NULL;
    co_buf_free(&w->tmp);
    if (w->mu_init)
        pthread_mutex_destroy(&w->mu);
}

/* ---- control plane ------------------------------------------------------- */

/* Applies stored states newer than what the router serves (under mu). */
static int apply_states_locked(co_gateway *gw, const co_workload_state *v, size_t n)
{
    const co_route_table *cur = co_router_acquire(gw->router);
    co_route_table *t = NULL;
    co_diags problems = {0};
    int rc = co_route_table_with_states(cur, v, n, &t, &problems);
    co_route_table_release(cur);
    for (size_t i = 0; i < problems.n; i++)
        gw_log(gw, LOG_WARN, "%s", problems.v[i].msg);
    co_diags_free(&problems);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        gw->last_version = max64(gw->last_version, v[i].version);
    if (!t) {
        /* nothing to change in the table (a state equal to what is served,
         * or a workload this config lacks): the version is applied as is */
        atomic_store(&gw->applied_version, gw->last_version);
        return 0;
    }
    if ((rc = co_router_publish(gw->router, t)) < 0) {
        co_route_table_release(t);
        return rc;
    }
    atomic_store(&gw->applied_version, gw->last_version);
    for (size_t i = 0; i < n; i++) {
        char pct[32] = "";
        if (v[i].mode && !strcmp(v[i].mode, "canary"))
            snprintf(pct, sizeof pct, " %g%%", v[i].percent);
        gw_log(gw, LOG_INFO, "workload %s: now %s%s (version %lld, by %s)", v[i].workload ? v[i].workload : "?",
               v[i].mode ? v[i].mode : "?", pct, (long long)v[i].version, v[i].updated_by ? v[i].updated_by : "?");
    }
    return 0;
}

/* Tells the fleet (co_store_gateways) which mode version this process
 * serves: every GW_BEAT_MS, and at once when a new version went live. A
 * failing write is logged once until it works again; it never stops the
 * gateway. seen_ms 1 marks a clean stop. */
static void beat_locked(co_gateway *gw, int stopped)
{
    int64_t now = co_now_ms(), applied = atomic_load(&gw->applied_version);
    if (!stopped && applied == gw->beat_version && now - gw->beat_ms < GW_BEAT_MS)
        return;
    co_gateway_beat b = {
        .id = gw->beat_id,
        .host = gw->hostname,
        .pid = (int64_t)getpid(),
        .started_ms = gw->started_ms,
        .seen_ms = stopped ? 1 : now,
        .applied_version = applied,
    };
    if (co_store_gateway_beat(gw->st, &b) < 0) {
        if (!gw->beat_failing)
            gw_log(gw, LOG_WARN, "heartbeat to the store failed (rollback drills will not see this gateway): %s",
                   co_error_last());
        gw->beat_failing = 1;
        return;
    }
    if (gw->beat_failing)
        gw_log(gw, LOG_INFO, "heartbeats to the store work again");
    gw->beat_failing = 0;
    gw->beat_version = applied;
    gw->beat_ms = now;
}

static void poll_store_locked(co_gateway *gw)
{
    co_workload_state *v = NULL;
    size_t n = 0;
    if (co_store_workload_states(gw->st, gw->last_version, &v, &n) < 0) {
        gw_log(gw, LOG_WARN, "reading workload states from the store: %s", co_error_last());
        return;
    }
    if (n && apply_states_locked(gw, v, n) < 0)
        gw_log(gw, LOG_WARN, "applying stored workload states: %s", co_error_last());
    co_workload_states_free(v, n);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    co_gateway *gw = arg;
    if (fd >= 0)
        mbox_drain_fd(fd);
    pthread_mutex_lock(&gw->mu);
    poll_store_locked(gw);
    beat_locked(gw, 0);
    pthread_mutex_unlock(&gw->mu);
}

/* A store error has already waited out the timeout (see store.h): the loop
 * keeps going at that pace and the poll timer covers the gap. */
static void *watch_main(void *arg)
{
    co_gateway *gw = arg;
    while (!atomic_load(&gw->wstop)) {
        int changed = 0;
        (void)co_store_wait_change(gw->wst, 200, &changed);
        if (changed && !atomic_load(&gw->wstop))
            mbox_kick(gw->wfd);
    }
    return NULL;
}

static void stop_watcher(co_gateway *gw)
{
    if (!gw->wstarted)
        return;
    atomic_store(&gw->wstop, 1);
    pthread_join(gw->wth, NULL);
    gw->wstarted = 0;
}

int gw_set_mode_v(co_gateway *gw, const char *workload, int mode, double percent, const char *actor,
                  const char *reason, int rollback, int64_t *out_version)
{
    if (!gw || !workload)
        return co_error_set(CO_EINVAL, "no gateway or workload");
    pthread_mutex_lock(&gw->mu);
    co_mode_change ch = {
        .workload = workload,
        .mode = mode,
        .percent = percent,
        .actor = actor ? actor : "admin-api",
        .reason = reason,
        .rollback = rollback,
    };
    int64_t version = 0;
    int rc = co_control_set_mode(gw->st, gw->gen->cfg, &ch, &version);
    if (rc == 0) {
        co_workload_state s = {
            .workload = (char *)workload,
            .mode = (char *)co_modes[mode],
            .percent = mode == CO_MODE_CANARY ? percent : 0,
            .version = version,
            .updated_ms = co_now_ms(),
            .updated_by = (char *)ch.actor,
        };
        /* changes another process stored before ours come first */
        poll_store_locked(gw);
        if (gw->last_version < version)
            rc = apply_states_locked(gw, &s, 1);
        beat_locked(gw, 0);
    }
    pthread_mutex_unlock(&gw->mu);
    if (rc == 0) {
        if (rollback)
            gw_log(gw, LOG_WARN, "workload %s rolled back to the incumbent by %s%s%s (version %lld)", workload,
                   ch.actor, reason ? ": " : "", reason ? reason : "", (long long)version);
        if (out_version)
            *out_version = version;
    }
    return rc;
}

int co_gateway_set_mode(co_gateway *gw, const char *workload, int mode, double percent, const char *actor,
                        const char *reason)
{
    return gw_set_mode_v(gw, workload, mode, percent, actor, reason, 0, NULL);
}

int co_gateway_rollback(co_gateway *gw, const char *workload, const char *actor, const char *reason)
{
    return gw_set_mode_v(gw, workload, CO_MODE_INCUMBENT, 0, actor, reason, 1, NULL);
}

/* A table for cfg with the stored states applied; one reference for the caller. */
static int table_for(co_gateway *gw, const co_config *cfg, co_route_table **out)
{
    *out = NULL;
    co_route_table *t = NULL;
    co_diags warn = {0};
    int rc = co_route_table_new(cfg, &t, &warn);
    for (size_t i = 0; i < warn.n; i++)
        gw_log(gw, LOG_WARN, "%s:%d:%d: %s", warn.v[i].file ? warn.v[i].file : "config", warn.v[i].line,
               warn.v[i].col, warn.v[i].msg);
    co_diags_free(&warn);
    if (rc < 0)
        return rc;
    co_workload_state *v = NULL;
    size_t n = 0;
    if ((rc = co_store_workload_states(gw->st, 0, &v, &n)) < 0) {
        co_route_table_release(t);
        return rc;
    }
    co_route_table *t2 = NULL;
    co_diags problems = {0};
    rc = co_route_table_with_states(t, v, n, &t2, &problems);
    for (size_t i = 0; i < problems.n; i++)
        gw_log(gw, LOG_WARN, "%s", problems.v[i].msg);
    co_diags_free(&problems);
    for (size_t i = 0; i < n; i++)
        gw->last_version = max64(gw->last_version, v[i].version);
    co_workload_states_free(v, n);
    if (rc < 0) {
        co_route_table_release(t);
        return rc;
    }
    if (t2) {
        co_route_table_release(t);
        t = t2;
    }
    *out = t;
    return 0;
}

int co_gateway_reload(co_gateway *gw, co_config *cfg)
{
    if (!gw || !cfg)
        return co_error_set(CO_EINVAL, "co_gateway_reload: no gateway or config");
    pthread_mutex_lock(&gw->mu);
    int rc = 0;
    gw_gen *g = NULL;
    co_route_table *t = NULL;
    if (gw->stopping) {
        rc = co_error_set(CO_ESTATE, "the gateway is stopping");
        goto done;
    }
    if ((rc = gen_new(gw, cfg, gw->gen, &g)) < 0)
        goto done;
    if ((rc = table_for(gw, cfg, &t)) < 0)
        goto done;
    g->tag = table_tag(t);
    /* 1. every worker takes the new generation (keeping the previous one) */
    int running = gw->running;
    pthread_mutex_lock(&gw->ack_mu);
    gw->acks = 0;
    pthread_mutex_unlock(&gw->ack_mu);
    for (int i = 0; i < gw->nworkers; i++) {
        gen_ref(g);
        if (running) {
            gw_msg *m = calloc(1, sizeof *m);
            if (!m) {
                gen_unref(g);
                continue;
            }
            m->kind = MSG_GEN;
            m->gen = g;
            worker_post(&gw->w[i], m);
        } else {
            worker_apply_gen(&gw->w[i], g);
        }
    }
    if (running) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += GW_ACK_WAIT_MS / 1000;
        pthread_mutex_lock(&gw->ack_mu);
        while (gw->acks < gw->nworkers - atomic_load(&gw->nexited))
            if (pthread_cond_timedwait(&gw->ack_cv, &gw->ack_mu, &dl))
                break;
        if (gw->acks < gw->nworkers - atomic_load(&gw->nexited))
            gw_log(gw, LOG_WARN, "reload: %d of %d workers took the new configuration in time", gw->acks,
                   gw->nworkers);
        pthread_mutex_unlock(&gw->ack_mu);
    }
    /* 2. the new table goes live */
    if ((rc = co_router_publish(gw->router, t)) < 0) {
        co_route_table_release(t);
        t = NULL;
        goto done;
    }
    t = NULL;
    g->tag_table = co_router_acquire(gw->router);
    atomic_store(&gw->applied_version, gw->last_version);
    beat_locked(gw, 0);
    /* 3. the previous generation goes once in-flight requests let it */
    for (int i = 0; i < gw->nworkers; i++) {
        if (running) {
            gw_msg *m = calloc(1, sizeof *m);
            if (m) {
                m->kind = MSG_DROP_PREV;
                worker_post(&gw->w[i], m);
            }
        } else {
            gen_unref(gw->w[i].prev);
            gw->w[i].prev = NULL;
        }
    }
    gen_unref(gw->gen);
    gw->gen = g;
    g = NULL;
done:
    if (g) {
        g->cfg = NULL; /* still the caller's on failure */
        gen_unref(g);
    }
    co_route_table_release(t);
    pthread_mutex_unlock(&gw->mu);
    if (rc == 0)
        atomic_fetch_add(&gw->reloads_ok, 1);
    else
        atomic_fetch_add(&gw->reloads_failed, 1);
    return rc;
}

static void reload_from_file(co_gateway *gw)
{
    pthread_mutex_lock(&gw->mu);
    char *path = gw->gen && gw->gen->cfg->path ? strdup(gw->gen->cfg->path) : NULL;
    pthread_mutex_unlock(&gw->mu);
    if (!path) {
        gw_log(gw, LOG_WARN, "SIGHUP: the configuration did not come from a file; nothing to reload");
        return;
    }
    co_config *cfg = NULL;
    co_diags d = {0};
    int rc = co_config_load(&cfg, path, &d);
    if (rc < 0) {
        for (size_t i = 0; i < d.n; i++)
            gw_log(gw, LOG_ERROR, "%s:%d:%d: %s", d.v[i].file ? d.v[i].file : path, d.v[i].line, d.v[i].col,
                   d.v[i].msg);
        if (!d.n)
            gw_log(gw, LOG_ERROR, "%s: %s", path, co_error_last());
        gw_log(gw, LOG_ERROR, "reload of %s failed; the previous configuration stays in effect", path);
        atomic_fetch_add(&gw->reloads_failed, 1);
    } else if ((rc = co_gateway_reload(gw, cfg)) < 0) {
        gw_log(gw, LOG_ERROR, "reload of %s failed: %s; the previous configuration stays in effect", path,
               co_error_last());
        co_config_free(cfg);
    } else {
        gw_log(gw, LOG_INFO, "reloaded %s", path);
    }
    co_diags_free(&d);
    free(path);
}

void gw_job_submit(co_gateway *gw, gw_job *j)
{
    if (!j->w) {
        j->run(gw, j);
        j->done(gw, j);
        return;
    }
    j->w->njobs++;
    j->next = NULL;
    pthread_mutex_lock(&gw->cmu);
    if (gw->jtail)
        gw->jtail->next = j;
    else
        gw->jhead = j;
    gw->jtail = j;
    pthread_mutex_unlock(&gw->cmu);
    mbox_kick(gw->cfd);
}

static void on_ctl(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    co_gateway *gw = arg;
    if (fd >= 0)
        mbox_drain_fd(fd);
    for (;;) {
        pthread_mutex_lock(&gw->cmu);
        gw_job *j = gw->jhead;
        if (j) {
            gw->jhead = j->next;
            if (!gw->jhead)
                gw->jtail = NULL;
        }
        pthread_mutex_unlock(&gw->cmu);
        if (!j)
            break;
        j->run(gw, j);
        gw_msg *m = calloc(1, sizeof *m);
        if (m) {
            m->kind = MSG_JOB_DONE;
            m->job = j;
            worker_post(j->w, m);
        } else {
            gw_log(gw, LOG_ERROR, "out of memory answering an admin request");
        }
    }
    if (atomic_load(&gw->stop_requested) && !gw->stopping) {
        pthread_mutex_lock(&gw->mu);
        gw->stopping = 1;
        pthread_mutex_unlock(&gw->mu);
        gw_log(gw, LOG_INFO, "stopping: finishing requests in flight");
        for (int i = 0; i < gw->nworkers; i++) {
            gw_msg *m = calloc(1, sizeof *m);
            if (m) {
                m->kind = MSG_DRAIN;
                worker_post(&gw->w[i], m);
            }
        }
    }
    if (gw->stopping && atomic_load(&gw->nexited) >= gw->nworkers)
        event_base_loopbreak(gw->cbase);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    co_gateway *gw = arg;
    if (sig == SIGHUP) {
        gw_log(gw, LOG_INFO, "SIGHUP: reloading the configuration");
        reload_from_file(gw);
        return;
    }
    co_gateway_stop(gw);
}

/* ---- user feedback ------------------------------------------------------- */

int gw_feedback_reserve(co_gateway *gw)
{
    if (atomic_fetch_add(&gw->fb_pending, 1) >= GW_FB_PENDING_MAX) {
        atomic_fetch_sub(&gw->fb_pending, 1);
        return 0;
    }
    return 1;
}

void gw_feedback_release(co_gateway *gw) { atomic_fetch_sub(&gw->fb_pending, 1); }

void gw_feedback_rejected(co_gateway *gw, int why)
{
    if (why >= 0 && why < GW_FB__COUNT)
        atomic_fetch_add(&gw->fb_rejected[why], 1);
}

int gw_feedback_store(co_gateway *gw, const co_feedback *f)
{
    co_feedback copy = *f;
    char *red = NULL;
    int rc = 0;
    /* comments are user text: masked like recorded prompts and outputs */
    if (f->comment && (rc = co_redact(gw->ctl_red, f->comment, &red)) < 0)
        goto done;
    if (red)
        copy.comment = red;
    pthread_mutex_lock(&gw->mu);
    rc = co_store_feedback_add(gw->st, &copy);
    pthread_mutex_unlock(&gw->mu);
done:
    if (rc == 0 && f->score >= -1 && f->score <= 1)
        atomic_fetch_add(&gw->fb_recorded[f->score + 1], 1);
    else if (rc < 0)
        gw_feedback_rejected(gw, GW_FB_STORE);
    free(red);
    return rc;
}

/* ---- workloads JSON ------------------------------------------------------ */

static double p95_ms(const uint64_t *b, uint64_t n)
{
    if (!n)
        return NAN;
    double rank = 0.95 * (double)n;
    uint64_t cum = 0;
    for (int i = 0; i < NB; i++) {
        uint64_t prev = cum;
        cum += b[i];
        if ((double)cum >= rank && b[i]) {
            double lo = i ? arm_bounds_ms[i - 1] : 0;
            double hi = i < NBOUNDS ? arm_bounds_ms[i] : arm_bounds_ms[NBOUNDS - 1];
            return lo + (hi - lo) * ((rank - (double)prev) / (double)b[i]);
        }
    }
    return arm_bounds_ms[NBOUNDS - 1];
}

static json_t *arm_json(gw_met *m, int wl, int arm)
{
    uint64_t req = 0, err = 0, b[NB] = {0};
    if (m && (size_t)wl < m->nwl) {
        for (unsigned k = 0; k < m->nworkers; k++) {
            gw_armstat *s = armstat(m, k, wl, arm);
            req += atomic_load_explicit(&s->req, memory_order_relaxed);
            err += atomic_load_explicit(&s->err, memory_order_relaxed);
            for (int i = 0; i < NB; i++)
                b[i] += atomic_load_explicit(&s->b[i], memory_order_relaxed);
        }
    }
    uint64_t n = 0;
    for (int i = 0; i < NB; i++)
        n += b[i];
    double p = p95_ms(b, n);
    json_t *j = json_pack("{s:I,s:I,s:f}", "requests", (json_int_t)req, "errors", (json_int_t)err, "error_rate",
                          req ? (double)err / (double)req : 0.0);
    if (j)
        json_object_set_new(j, "p95_ms", isnan(p) ? json_null() : json_real(round(p * 10) / 10));
    return j;
}

static int workloads_json(co_gateway *gw, gw_gen *g, co_buf *out)
{
    const co_route_table *t = co_router_acquire(gw->router);
    json_t *a = json_array();
    for (size_t i = 0; a && i < co_route_table_count(t); i++) {
        const co_route_workload *w = co_route_table_workload(t, i);
        gw_met *m = g->tag == table_tag(t) ? g->met : NULL;
        json_t *o = json_pack("{s:s,s:s,s:s?,s:s,s:f,s:f,s:b,s:I,s:{s:o,s:o}}", "name", w->name, "incumbent",
                              w->incumbent, "candidate", w->candidate, "mode", co_modes[w->mode], "percent",
                              w->mode == CO_MODE_CANARY ? w->percent : w->mode == CO_MODE_CANDIDATE ? 100.0 : 0.0,
                              "shadow_sample", w->shadow_sample, "fallback", w->fallback, "version",
                              (json_int_t)w->version, "arms", "incumbent", arm_json(m, w->index, CO_ARM_INCUMBENT),
                              "candidate", arm_json(m, w->index, CO_ARM_CANDIDATE));
        json_array_append_new(a, o);
    }
    co_route_table_release(t);
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!s)
        return co_error_set(CO_ENOMEM, "out of memory");
    int rc = co_buf_puts(out, s);
    free(s);
    return rc;
}

int gw_workloads_json_w(co_gateway *gw, gw_worker *w, co_buf *out)
{
    if (w)
        return workloads_json(gw, w->gen, out); /* a worker never waits on the control mutex */
    return co_gateway_workloads_json(gw, out);
}

int co_gateway_workloads_json(co_gateway *gw, co_buf *out)
{
    pthread_mutex_lock(&gw->mu);
    gw_gen *g = gw->gen;
    gen_ref(g);
    pthread_mutex_unlock(&gw->mu);
    int rc = workloads_json(gw, g, out);
    gen_unref(g);
    return rc;
}

int co_gateway_metrics(co_gateway *gw, co_buf *out)
{
    pthread_mutex_lock(&gw->mu);
    gw_gen *g = gw->gen;
    gen_ref(g);
    pthread_mutex_unlock(&gw->mu);
    int rc = co_metrics_render(g->met->m, out);
    gen_unref(g);
    return rc;
}

/* ---- public lifecycle ---------------------------------------------------- */

int co_gateway_port(const co_gateway *gw) { return gw ? gw->port : 0; }

int co_gateway_new(co_gateway **out, co_config *cfg, const co_gateway_opts *opts)
{
    if (!out || !cfg)
        return co_error_set(CO_EINVAL, "co_gateway_new: no config");
    *out = NULL;
    co_gateway *gw = calloc(1, sizeof *gw);
    if (!gw)
        return co_error_set(CO_ENOMEM, "out of memory");
    int rc = 0;
    gw->log = opts && opts->log ? opts->log : log_stderr;
    gw->log_ud = opts && opts->log ? opts->log_ud : NULL;
    gw->log_level = cfg->log_level;
    gw->cfd = -1;
    gw->wfd = -1;
    gw->handle_signals = opts && opts->handle_signals;
    pthread_mutex_init(&gw->mu, NULL);
    pthread_mutex_init(&gw->cmu, NULL);
    pthread_mutex_init(&gw->ack_mu, NULL);
    pthread_cond_init(&gw->ack_cv, NULL);

    const char *listen = opts && opts->listen ? opts->listen : cfg->listen;
    if (!listen || parse_listen(listen, &gw->ss, &gw->sslen, gw->host, sizeof gw->host)) {
        rc = co_error_set(CO_EINVAL, "'%s' is not an address to listen on (e.g. 127.0.0.1:8080)",
                          listen ? listen : "");
        goto fail;
    }
    gw->loopback = is_loopback(&gw->ss);
    long n = opts && opts->workers > 0 ? opts->workers : cfg->workers;
    if (n <= 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n <= 0)
            n = 1;
    }
    if (n > GW_MAX_WORKERS)
        n = GW_MAX_WORKERS;
    gw->nworkers = (int)n;

    if ((rc = co_store_open(&gw->st, cfg->store)) < 0) {
        rc = co_error_set(rc, "store %s: %s", cfg->store, co_error_last());
        goto fail;
    }
    if ((rc = co_redactor_new(&gw->red, &cfg->redact)) < 0 || (rc = co_redactor_new(&gw->ctl_red, &cfg->redact)) < 0)
        goto fail;
    gw->started_ms = co_now_ms();
    if (gethostname(gw->hostname, sizeof gw->hostname - 1) != 0 || !gw->hostname[0])
        snprintf(gw->hostname, sizeof gw->hostname, "localhost");
    snprintf(gw->beat_id, sizeof gw->beat_id, "%s:%ld:%lld", gw->hostname, (long)getpid(), (long long)gw->started_ms);
    co_recorder_opts ro = {.redactor = gw->red, .log = recorder_log, .log_ud = gw};
    if ((rc = co_recorder_new_opts(&gw->rec, cfg->store, &cfg->recorder, gw->nworkers, &ro)) < 0)
        goto fail;
    gw->w = calloc((size_t)gw->nworkers, sizeof *gw->w);
    if (!gw->w) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < gw->nworkers; i++)
        gw->w[i].mfd = -1;
    /* the first generation; cfg stays the caller's until everything worked */
    gw_gen *g = NULL;
    if ((rc = gen_new(gw, cfg, NULL, &g)) < 0)
        goto fail;
    gw->gen = g;
    co_route_table *t = NULL;
    if ((rc = table_for(gw, cfg, &t)) < 0)
        goto fail;
    g->tag = table_tag(t);
    if ((rc = co_router_new(t, &gw->router)) < 0) {
        co_route_table_release(t);
        goto fail;
    }
    g->tag_table = co_router_acquire(gw->router);
    atomic_store(&gw->applied_version, gw->last_version);
    for (int i = 0; i < gw->nworkers; i++) {
        if ((rc = worker_init(gw, &gw->w[i], i, cfg)) < 0)
            goto fail;
        gen_ref(g);
        worker_apply_gen(&gw->w[i], g);
    }

    /* the control loop */
    gw->cbase = event_base_new();
    gw->cfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!gw->cbase || gw->cfd < 0) {
        rc = co_error_set(CO_ENOMEM, "cannot create the control loop: %s", strerror(errno));
        goto fail;
    }
    gw->cev = event_new(gw->cbase, gw->cfd, EV_READ | EV_PERSIST, on_ctl, gw);
    gw->poll_ev = event_new(gw->cbase, -1, EV_PERSIST, on_poll, gw);
    struct timeval ptv = {0, GW_POLL_MS * 1000};
    if (!gw->cev || !gw->poll_ev || event_add(gw->cev, NULL) || event_add(gw->poll_ev, &ptv)) {
        rc = co_error_set(CO_ENOMEM, "cannot create the control events");
        goto fail;
    }
    if ((rc = co_store_open(&gw->wst, cfg->store)) < 0) {
        rc = co_error_set(rc, "store %s: %s", cfg->store, co_error_last());
        goto fail;
    }
    gw->wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    gw->wev = gw->wfd >= 0 ? event_new(gw->cbase, gw->wfd, EV_READ | EV_PERSIST, on_poll, gw) : NULL;
    if (!gw->wev || event_add(gw->wev, NULL)) {
        rc = co_error_set(CO_ENOMEM, "cannot create the store watcher: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&gw->wth, NULL, watch_main, gw) != 0) {
        rc = co_error_set(CO_ENOMEM, "cannot start the store watcher thread");
        goto fail;
    }
    gw->wstarted = 1;
    if (gw->handle_signals) {
        gw->sigint = evsignal_new(gw->cbase, SIGINT, on_signal, gw);
        gw->sigterm = evsignal_new(gw->cbase, SIGTERM, on_signal, gw);
        gw->sighup = evsignal_new(gw->cbase, SIGHUP, on_signal, gw);
        if (!gw->sigint || !gw->sigterm || !gw->sighup || event_add(gw->sigint, NULL) ||
            event_add(gw->sigterm, NULL) || event_add(gw->sighup, NULL)) {
            rc = co_error_set(CO_EIO, "cannot handle signals");
            goto fail;
        }
    }
    if (cfg->admin.listen && cfg->admin.listen[0]) {
        struct sockaddr_storage ass;
        int alen = 0;
        char ahost[128];
        if (parse_listen(cfg->admin.listen, &ass, &alen, ahost, sizeof ahost)) {
            rc = co_error_set(CO_EINVAL, "admin.listen: '%s' is not an address to listen on", cfg->admin.listen);
            goto fail;
        }
        gw->admin_loopback = is_loopback(&ass);
        evutil_socket_t afd = gw_http_listen((const struct sockaddr *)&ass, alen, 0);
        gw_http_opts ao = {.max_head = GW_HEADERS_MAX,
                           .max_body = 1 << 20,
                           .header_timeout_ms = 30000,
                           .write_timeout_ms = GW_CLIENT_WRITE_TIMEOUT_MS,
                           .on_request = on_admin_http,
                           .on_error = admin_http_error,
                           .arg = gw};
        if (afd < 0) {
            rc = co_error_set(CO_ENET, "cannot listen on %s (admin.listen): %s", cfg->admin.listen, strerror(errno));
            goto fail;
        }
        if (!(gw->admin_http = gw_http_new(gw->cbase, afd, &ao))) {
            rc = co_error_set(CO_ENOMEM, "cannot create the admin HTTP server");
            goto fail;
        }
        gw_log(gw, LOG_INFO, "admin API on %s", cfg->admin.listen);
    }
    if (!g->admin_token && !(gw->admin_http ? gw->admin_loopback : gw->loopback))
        gw_log(gw, LOG_WARN, "no admin token is set (%s) and the admin API listens beyond loopback: /admin is refused",
               cfg->admin.token_env ? cfg->admin.token_env : "admin.token_env");
    *out = gw;
    return 0;
fail:
    if (gw->gen) {
        gw->gen->cfg = NULL; /* still the caller's */
    }
    {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", co_error_last());
        co_gateway_free(gw);
        co_error_set(rc, "%s", msg);
    }
    return rc;
}

int co_gateway_run(co_gateway *gw)
{
    if (!gw)
        return co_error_set(CO_EINVAL, "no gateway");
    pthread_mutex_lock(&gw->mu);
    gw->running = 1;
    pthread_mutex_unlock(&gw->mu);
    int nthreads = 0;
    for (int i = 0; i < gw->nworkers; i++) {
        if (pthread_create(&gw->w[i].th, NULL, worker_main, &gw->w[i]) == 0) {
            gw->w[i].started = 1;
            nthreads++;
        } else {
            atomic_fetch_add(&gw->nexited, 1);
            gw_log(gw, LOG_ERROR, "cannot start worker %d", i);
        }
    }
    if (nthreads == 0)
        co_gateway_stop(gw);
    if (atomic_load(&gw->stop_requested))
        mbox_kick(gw->cfd);
    gw_log(gw, LOG_INFO, "serving on %s:%d with %d worker(s)", gw->host, gw->port, gw->nworkers);
    pthread_mutex_lock(&gw->mu);
    beat_locked(gw, 0);
    pthread_mutex_unlock(&gw->mu);
    event_base_dispatch(gw->cbase);
    stop_watcher(gw);
    for (int i = 0; i < gw->nworkers; i++)
        if (gw->w[i].started) {
            pthread_join(gw->w[i].th, NULL);
            gw->w[i].started = 0;
        }
    /* jobs that raced the stop */
    on_ctl(-1, 0, gw);
    pthread_mutex_lock(&gw->mu);
    beat_locked(gw, 1); /* no longer part of the fleet: drills stop waiting for us */
    gw->running = 0;
    pthread_mutex_unlock(&gw->mu);
    gw_log(gw, LOG_INFO, "stopped");
    return 0;
}

void co_gateway_stop(co_gateway *gw)
{
    if (!gw)
        return;
    atomic_store(&gw->stop_requested, 1);
    mbox_kick(gw->cfd);
}

void co_gateway_free(co_gateway *gw)
{
    if (!gw)
        return;
    for (int i = 0; gw->w && i < gw->nworkers; i++)
        worker_destroy(&gw->w[i]);
    /* jobs left in the control queue belong to workers that are gone */
    while (gw->jhead) {
        gw_job *j = gw->jhead;
        gw->jhead = j->next;
        j->orphan = 1;
        j->done(gw, j);
    }
    free(gw->w);
    if (gw->admin_http)
        gw_http_free(gw->admin_http);
    if (gw->sigint)
        event_free(gw->sigint);
    if (gw->sigterm)
        event_free(gw->sigterm);
    if (gw->sighup)
        event_free(gw->sighup);
    stop_watcher(gw);
    if (gw->wev)
        event_free(gw->wev);
    if (gw->wfd >= 0)
        close(gw->wfd);
    co_store_close(gw->wst);
    if (gw->poll_ev)
        event_free(gw->poll_ev);
    if (gw->cev)
        event_free(gw->cev);
    if (gw->cfd >= 0)
        close(gw->cfd);
    if (gw->cbase)
        event_base_free(gw->cbase);
    co_recorder_free(gw->rec); /* writes what is left */
    gen_unref(gw->gen);
    co_router_free(gw->router);
    co_redactor_free(gw->red);
    co_redactor_free(gw->ctl_red);
    co_store_close(gw->st);
    pthread_mutex_destroy(&gw->mu);
    pthread_mutex_destroy(&gw->cmu);
    pthread_mutex_destroy(&gw->ack_mu);
    pthread_cond_destroy(&gw->ack_cv);
    free(gw);
}
