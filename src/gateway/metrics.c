/* Per-worker metric blocks, summed at scrape time into the Prometheus text
 * format 0.0.4 (see include/cutover/metrics.h). */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/error.h"
#include "cutover/metrics.h"

const double co_metrics_buckets[CO_METRICS_NBUCKETS] = {
    0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120,
};

static const char *const errclass_names[CO_ERRCLASS__COUNT] = {
    "none", "connect", "timeout", "5xx", "429", "4xx", "reset", "truncated", "parse",
};

static const char *const token_kinds[3] = {"input", "output", "cached"};
/* The label values of enum co_arm / enum co_role (as co_arm_name and
 * co_role_name spell them; kept here so metrics does not link routing). */
static const char *const arm_labels[CO_ARM__COUNT] = {"incumbent", "candidate"};
static const char *const role_labels[CO_ROLE__COUNT] = {"served", "shadow", "fallback"};

const char *co_errclass_name(int c)
{
    return c >= 0 && c < CO_ERRCLASS__COUNT ? errclass_names[c] : "?";
}

int co_errclass_from_name(const char *name)
{
    if (!name || !*name)
        return CO_ERRCLASS_NONE;
    for (int c = 1; c < CO_ERRCLASS__COUNT; c++)
        if (strcmp(errclass_names[c], name) == 0)
            return c;
    return co_error_set(CO_EINVAL, "unknown error class '%.40s'", name);
}

#define NB (CO_METRICS_NBUCKETS + 1) /* + the +Inf bucket */
#define NERR (CO_ERRCLASS__COUNT - 1)
#define NARM CO_ARM__COUNT
#define NROLE CO_ROLE__COUNT

/* One series' counters: a single writer (the owning worker). */
struct series {
    _Atomic uint64_t requests;
    _Atomic uint64_t errors[NERR];
    _Atomic uint64_t lat[NB];       /* per-bucket (not cumulative) counts */
    _Atomic uint64_t lat_sum_us;
    _Atomic uint64_t ttft[NB];
    _Atomic uint64_t ttft_sum_us;
    _Atomic uint64_t tokens[3];
    _Atomic uint64_t cost_nusd;     /* 1e-9 USD */
};

/* The same, summed (render side). */
struct totals {
    uint64_t requests;
    uint64_t errors[NERR];
    uint64_t lat[NB];
    uint64_t lat_sum_us;
    uint64_t ttft[NB];
    uint64_t ttft_sum_us;
    uint64_t tokens[3];
    uint64_t cost_nusd;
};

struct co_metrics_worker {
    size_t nseries;
    size_t unknown_base; /* first series of the unknown workload */
    _Alignas(64) struct series s[];
};

struct gauge_cb {
    char *name, *help;
    int type;
    co_metrics_cb cb;
    void *ud;
};

struct co_metrics {
    size_t n;                 /* known workloads; series for n + 1 (unknown last) */
    size_t nseries;
    char **labels;            /* per series: workload="..",arm="..",role=".." (escaped) */
    unsigned nworkers;
    co_metrics_worker **workers;
    char le[NB][24];
    pthread_mutex_t lock;     /* guards cbs */
    struct gauge_cb *cbs;
    size_t ncbs;
};

struct co_metrics_sink {
    co_buf *out;
    const char *name;
    int rc;
};

static const char *const builtin_names[] = {
    "cutover_requests_total",
    "cutover_errors_total",
    "cutover_request_duration_seconds",
    "cutover_time_to_first_token_seconds",
    "cutover_tokens_total",
    "cutover_cost_usd_total",
    NULL,
};

static size_t series_index(size_t wl, int arm, int role) { return (wl * NARM + (size_t)arm) * NROLE + (size_t)role; }

/* ---- escaping and formatting ---------------------------------------------- */

/* Label values: backslash, double quote and newline are escaped. */
static int put_label_value(co_buf *b, const char *s)
{
    int rc = 0;
    const char *run = s;
    for (; *s && rc == 0; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        rc = co_buf_append(b, run, (size_t)(s - run));
        if (rc == 0)
            rc = co_buf_puts(b, esc);
        run = s + 1;
    }
    return rc ? rc : co_buf_puts(b, run);
}

/* HELP text: backslash and newline are escaped. */
static int put_help(co_buf *b, const char *s)
{
    int rc = 0;
    for (; *s && rc == 0; s++)
        rc = *s == '\\' ? co_buf_puts(b, "\\\\") : *s == '\n' ? co_buf_puts(b, "\\n") : co_buf_append(b, s, 1);
    return rc;
}

static int put_u64(co_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return co_buf_append(b, tmp + i, sizeof tmp - i);
}

static void fmt_double(char *buf, size_t n, double v)
{
    if (isnan(v))
        snprintf(buf, n, "NaN");
    else if (isinf(v))
        snprintf(buf, n, v > 0 ? "+Inf" : "-Inf");
    else
        snprintf(buf, n, "%.15g", v);
}

static int put_double(co_buf *b, double v)
{
    char tmp[40];
    fmt_double(tmp, sizeof tmp, v);
    return co_buf_puts(b, tmp);
}

static int valid_metric_name(const char *s)
{
    if (!s || !*s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' || *s == ':'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == ':'))
            return 0;
    return 1;
}

static int valid_label_name(const char *s)
{
    if (!s || !*s || (s[0] == '_' && s[1] == '_'))
        return 0;
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static int family_header(co_buf *b, const char *name, const char *help, const char *type)
{
    int rc = co_buf_printf(b, "# HELP %s", name);
    if (rc == 0 && help && *help) {
        rc = co_buf_append(b, " ", 1);
        if (rc == 0)
            rc = put_help(b, help);
    }
    if (rc == 0)
        rc = co_buf_printf(b, "\n# TYPE %s %s\n", name, type);
    return rc;
}

/* ---- registry ------------------------------------------------------------- */

void co_metrics_free(co_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; m->labels && i < m->nseries; i++)
        free(m->labels[i]);
    free(m->labels);
    for (unsigned i = 0; m->workers && i < m->nworkers; i++)
        free(m->workers[i]);
    free(m->workers);
    for (size_t i = 0; i < m->ncbs; i++) {
        free(m->cbs[i].name);
        free(m->cbs[i].help);
    }
    free(m->cbs);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int co_metrics_new(const char *const *workloads, size_t n, unsigned workers, co_metrics **out)
{
    int rc = 0;
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    if (!out)
        return co_error_set(CO_EINVAL, "co_metrics_new: no output");
    *out = NULL;
    if (workers == 0 || (n && !workloads))
        return co_error_set(CO_EINVAL, "co_metrics_new: needs at least one worker and the workload names");
    co_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return co_error_set(CO_ENOMEM, "out of memory");
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return co_error_set(CO_ENOMEM, "cannot create the metrics lock");
    }
    m->n = n;
    m->nseries = (n + 1) * NARM * NROLE;
    m->nworkers = workers;
    m->labels = calloc(m->nseries, sizeof *m->labels);
    m->workers = calloc(workers, sizeof *m->workers);
    if (!m->labels || !m->workers) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t w = 0; w <= n; w++) {
        const char *name = w < n ? workloads[w] : CO_METRICS_UNKNOWN_LABEL;
        if (!name) {
            rc = co_error_set(CO_EINVAL, "co_metrics_new: workload %zu has no name", w);
            goto done;
        }
        for (int a = 0; a < NARM; a++)
            for (int r = 0; r < NROLE; r++) {
                co_buf_reset(&b);
                if ((rc = co_buf_puts(&b, "workload=\"")) < 0 || (rc = put_label_value(&b, name)) < 0 ||
                    (rc = co_buf_printf(&b, "\",arm=\"%s\",role=\"%s\"", arm_labels[a], role_labels[r])) < 0)
                    goto done;
                if (!(m->labels[series_index(w, a, r)] = strdup(b.p))) {
                    rc = co_error_set(CO_ENOMEM, "out of memory");
                    goto done;
                }
            }
    }
    size_t size = sizeof(co_metrics_worker) + m->nseries * sizeof(struct series);
    size = (size + 63) & ~(size_t)63;
    for (unsigned i = 0; i < workers; i++) {
        co_metrics_worker *wk = aligned_alloc(64, size);
        if (!wk) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
        memset(wk, 0, size); /* all-zero is a valid _Atomic uint64_t 0 on every target we build for */
        wk->nseries = m->nseries;
        wk->unknown_base = series_index(n, 0, 0);
        m->workers[i] = wk;
    }
    for (int i = 0; i < CO_METRICS_NBUCKETS; i++)
        fmt_double(m->le[i], sizeof m->le[i], co_metrics_buckets[i]);
    snprintf(m->le[CO_METRICS_NBUCKETS], sizeof m->le[0], "+Inf");
    *out = m;
    m = NULL;
done:
    co_buf_free(&b);
    co_metrics_free(m);
    return rc;
}

unsigned co_metrics_worker_count(const co_metrics *m) { return m ? m->nworkers : 0; }

co_metrics_worker *co_metrics_worker_get(co_metrics *m, unsigned i)
{
    return m && i < m->nworkers ? m->workers[i] : NULL;
}

/* ---- hot path ------------------------------------------------------------- */

/* Single-writer increment: relaxed load + relaxed store, no RMW. */
static inline void bump(_Atomic uint64_t *p, uint64_t v)
{
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v, memory_order_relaxed);
}

static inline unsigned bucket_of(double s)
{
    unsigned i = 0;
    while (i < CO_METRICS_NBUCKETS && s > co_metrics_buckets[i])
        i++;
    return i; /* CO_METRICS_NBUCKETS is +Inf */
}

static inline uint64_t to_units(double v, double scale)
{
    if (!(v > 0))
        return 0;
    double u = v * scale + 0.5;
    return u >= 1.8e19 ? UINT64_MAX / 2 : (uint64_t)u;
}

void co_metrics_observe(co_metrics_worker *w, const co_metrics_obs *o)
{
    if (!w || !o)
        return;
    size_t idx;
    size_t nknown = w->unknown_base / (NARM * NROLE);
    if (o->arm < 0 || o->arm >= NARM || o->role < 0 || o->role >= NROLE)
        idx = w->unknown_base; /* malformed: counted, under the unknown workload */
    else if (o->workload < 0 || (size_t)o->workload >= nknown)
        idx = series_index(nknown, o->arm, o->role);
    else
        idx = series_index((size_t)o->workload, o->arm, o->role);
    struct series *s = &w->s[idx];
    bump(&s->requests, 1);
    if (o->errclass > CO_ERRCLASS_NONE && o->errclass < CO_ERRCLASS__COUNT)
        bump(&s->errors[o->errclass - 1], 1);
    if (o->latency_s >= 0) {
        bump(&s->lat[bucket_of(o->latency_s)], 1);
        bump(&s->lat_sum_us, to_units(o->latency_s, 1e6));
    }
    if (o->ttft_s >= 0) {
        bump(&s->ttft[bucket_of(o->ttft_s)], 1);
        bump(&s->ttft_sum_us, to_units(o->ttft_s, 1e6));
    }
    if (o->tokens_in > 0)
        bump(&s->tokens[0], (uint64_t)o->tokens_in);
    if (o->tokens_out > 0)
        bump(&s->tokens[1], (uint64_t)o->tokens_out);
    if (o->tokens_cached > 0)
        bump(&s->tokens[2], (uint64_t)o->tokens_cached);
    if (o->cost_usd > 0)
        bump(&s->cost_nusd, to_units(o->cost_usd, 1e9));
}

/* ---- render --------------------------------------------------------------- */

static uint64_t ld(const _Atomic uint64_t *p) { return atomic_load_explicit(p, memory_order_relaxed); }

static void sum_workers(const co_metrics *m, struct totals *t)
{
    memset(t, 0, m->nseries * sizeof *t);
    for (unsigned k = 0; k < m->nworkers; k++) {
        const co_metrics_worker *w = m->workers[k];
        for (size_t i = 0; i < m->nseries; i++) {
            const struct series *s = &w->s[i];
            struct totals *d = &t[i];
            d->requests += ld(&s->requests);
            for (int e = 0; e < NERR; e++)
                d->errors[e] += ld(&s->errors[e]);
            for (int b = 0; b < NB; b++) {
                d->lat[b] += ld(&s->lat[b]);
                d->ttft[b] += ld(&s->ttft[b]);
            }
            d->lat_sum_us += ld(&s->lat_sum_us);
            d->ttft_sum_us += ld(&s->ttft_sum_us);
            for (int j = 0; j < 3; j++)
                d->tokens[j] += ld(&s->tokens[j]);
            d->cost_nusd += ld(&s->cost_nusd);
        }
    }
}

static int nonzero(const struct totals *t)
{
    if (t->requests || t->lat_sum_us || t->ttft_sum_us || t->cost_nusd)
        return 1;
    for (int i = 0; i < NERR; i++)
        if (t->errors[i])
            return 1;
    for (int i = 0; i < NB; i++)
        if (t->lat[i] || t->ttft[i])
            return 1;
    return t->tokens[0] || t->tokens[1] || t->tokens[2];
}

/* Always shown: the combinations a workload produces in normal operation. */
static int expected_combo(int arm, int role)
{
    return role == CO_ROLE_SERVED || (arm == CO_ARM_CANDIDATE && role == CO_ROLE_SHADOW) ||
           (arm == CO_ARM_INCUMBENT && role == CO_ROLE_FALLBACK);
}

/* name{labels[,extra]} */
static int sample_head(co_buf *b, const char *name, const char *labels, const char *extra)
{
    int rc = co_buf_puts(b, name);
    if (rc == 0)
        rc = co_buf_append(b, "{", 1);
    if (rc == 0)
        rc = co_buf_puts(b, labels);
    if (rc == 0 && extra) {
        rc = co_buf_append(b, ",", 1);
        if (rc == 0)
            rc = co_buf_puts(b, extra);
    }
    if (rc == 0)
        rc = co_buf_append(b, "} ", 2);
    return rc;
}

static int sample_u64(co_buf *b, const char *name, const char *labels, const char *extra, uint64_t v)
{
    int rc = sample_head(b, name, labels, extra);
    if (rc == 0)
        rc = put_u64(b, v);
    return rc ? rc : co_buf_append(b, "\n", 1);
}

static int sample_dbl(co_buf *b, const char *name, const char *labels, const char *extra, double v)
{
    int rc = sample_head(b, name, labels, extra);
    if (rc == 0)
        rc = put_double(b, v);
    return rc ? rc : co_buf_append(b, "\n", 1);
}

static int render_histogram(const co_metrics *m, co_buf *b, const char *name, const char *help,
                            const struct totals *t, const unsigned char *show, int ttft)
{
    char bname[96], sname[96], cname[96], extra[48];
    snprintf(bname, sizeof bname, "%s_bucket", name);
    snprintf(sname, sizeof sname, "%s_sum", name);
    snprintf(cname, sizeof cname, "%s_count", name);
    int rc = family_header(b, name, help, "histogram");
    for (size_t i = 0; i < m->nseries && rc == 0; i++) {
        if (!show[i])
            continue;
        const uint64_t *counts = ttft ? t[i].ttft : t[i].lat;
        uint64_t cum = 0;
        for (int k = 0; k < NB && rc == 0; k++) {
            cum += counts[k];
            snprintf(extra, sizeof extra, "le=\"%s\"", m->le[k]);
            rc = sample_u64(b, bname, m->labels[i], extra, cum);
        }
        if (rc == 0)
            rc = sample_dbl(b, sname, m->labels[i], NULL, (double)(ttft ? t[i].ttft_sum_us : t[i].lat_sum_us) / 1e6);
        if (rc == 0)
            rc = sample_u64(b, cname, m->labels[i], NULL, cum);
    }
    return rc;
}

void co_metrics_emit(co_metrics_sink *sink, const char *const *labels, double value)
{
    if (!sink || sink->rc)
        return;
    co_buf *b = sink->out;
    size_t mark = b->len;
    int rc = co_buf_puts(b, sink->name);
    if (labels && labels[0]) {
        for (const char *const *kv = labels; kv[0] && rc == 0; kv += 2) {
            if (!valid_label_name(kv[0]) || !kv[1]) {
                b->len = mark;
                b->p[mark] = '\0';
                sink->rc = co_buf_printf(b, "# skipped a sample of %s: invalid label name or missing value\n",
                                         sink->name);
                return;
            }
            rc = co_buf_puts(b, kv == labels ? "{" : ",");
            if (rc == 0)
                rc = co_buf_printf(b, "%s=\"", kv[0]);
            if (rc == 0)
                rc = put_label_value(b, kv[1]);
            if (rc == 0)
                rc = co_buf_append(b, "\"", 1);
        }
        if (rc == 0)
            rc = co_buf_append(b, "}", 1);
    }
    if (rc == 0)
        rc = co_buf_append(b, " ", 1);
    if (rc == 0)
        rc = put_double(b, value);
    if (rc == 0)
        rc = co_buf_append(b, "\n", 1);
    sink->rc = rc;
}

int co_metrics_render(co_metrics *m, co_buf *out)
{
    if (!m || !out)
        return co_error_set(CO_EINVAL, "co_metrics_render: no registry or buffer");
    int rc = 0;
    struct totals *t = malloc(m->nseries * sizeof *t);
    unsigned char *show = malloc(m->nseries);
    if (!t || !show) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    sum_workers(m, t);
    for (size_t w = 0; w <= m->n; w++)
        for (int a = 0; a < NARM; a++)
            for (int r = 0; r < NROLE; r++) {
                size_t i = series_index(w, a, r);
                show[i] = (w < m->n && expected_combo(a, r)) || nonzero(&t[i]);
            }

    rc = family_header(out, "cutover_requests_total", "Upstream calls by workload, arm and role (served, "
                       "shadow, fallback).", "counter");
    for (size_t i = 0; i < m->nseries && rc == 0; i++)
        if (show[i])
            rc = sample_u64(out, "cutover_requests_total", m->labels[i], NULL, t[i].requests);

    if (rc == 0)
        rc = family_header(out, "cutover_errors_total", "Failed upstream calls by error class.", "counter");
    for (size_t i = 0; i < m->nseries && rc == 0; i++) {
        if (!show[i])
            continue;
        for (int e = 0; e < NERR && rc == 0; e++) {
            char extra[32];
            snprintf(extra, sizeof extra, "class=\"%s\"", errclass_names[e + 1]);
            rc = sample_u64(out, "cutover_errors_total", m->labels[i], extra, t[i].errors[e]);
        }
    }
    if (rc == 0)
        rc = render_histogram(m, out, "cutover_request_duration_seconds",
                              "Upstream call latency in seconds, whole response.", t, show, 0);
    if (rc == 0)
        rc = render_histogram(m, out, "cutover_time_to_first_token_seconds",
                              "Time to the first streamed token in seconds.", t, show, 1);
    if (rc == 0)
        rc = family_header(out, "cutover_tokens_total", "Tokens by kind (input, output, cached).", "counter");
    for (size_t i = 0; i < m->nseries && rc == 0; i++) {
        if (!show[i])
            continue;
        for (int k = 0; k < 3 && rc == 0; k++) {
            char extra[32];
            snprintf(extra, sizeof extra, "kind=\"%s\"", token_kinds[k]);
            rc = sample_u64(out, "cutover_tokens_total", m->labels[i], extra, t[i].tokens[k]);
        }
    }
    if (rc == 0)
        rc = family_header(out, "cutover_cost_usd_total", "Cost of upstream calls in US dollars, from the price "
                           "table.", "counter");
    for (size_t i = 0; i < m->nseries && rc == 0; i++)
        if (show[i])
            rc = sample_dbl(out, "cutover_cost_usd_total", m->labels[i], NULL, (double)t[i].cost_nusd / 1e9);

    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->ncbs && rc == 0; i++) {
        struct gauge_cb *g = &m->cbs[i];
        rc = family_header(out, g->name, g->help, g->type == CO_METRIC_COUNTER ? "counter" : "gauge");
        if (rc == 0) {
            co_metrics_sink sink = {.out = out, .name = g->name, .rc = 0};
            g->cb(g->ud, &sink);
            rc = sink.rc;
        }
    }
    pthread_mutex_unlock(&m->lock);
done:
    free(t);
    free(show);
    return rc;
}

int co_metrics_add_gauge_cb(co_metrics *m, const char *name, const char *help, int type, co_metrics_cb cb,
                            void *ud)
{
    if (!m || !cb)
        return co_error_set(CO_EINVAL, "co_metrics_add_gauge_cb: no registry or callback");
    if (!valid_metric_name(name))
        return co_error_set(CO_EINVAL, "'%.80s' is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
                            name ? name : "");
    if (type != CO_METRIC_COUNTER && type != CO_METRIC_GAUGE)
        return co_error_set(CO_EINVAL, "metric %s: type must be counter or gauge", name);
    for (const char *const *b = builtin_names; *b; b++) {
        size_t bl = strlen(*b);
        /* the name itself, or one of a histogram's sample names */
        if (strncmp(name, *b, bl) == 0 &&
            (!name[bl] || !strcmp(name + bl, "_bucket") || !strcmp(name + bl, "_sum") || !strcmp(name + bl, "_count")))
            return co_error_set(CO_EEXIST, "metric %s is built in", name);
    }
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->ncbs; i++)
        if (strcmp(m->cbs[i].name, name) == 0) {
            rc = co_error_set(CO_EEXIST, "metric %s is already registered", name);
            goto done;
        }
    struct gauge_cb *v = realloc(m->cbs, (m->ncbs + 1) * sizeof *v);
    if (!v) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    m->cbs = v;
    struct gauge_cb *g = &v[m->ncbs];
    g->name = strdup(name);
    g->help = strdup(help ? help : "");
    if (!g->name || !g->help) {
        free(g->name);
        free(g->help);
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    g->type = type;
    g->cb = cb;
    g->ud = ud;
    m->ncbs++;
done:
    pthread_mutex_unlock(&m->lock);
    return rc;
}
