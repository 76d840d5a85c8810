/* The transport-free heart of `cutover sim`: routes one HTTP request to a
 * protocol, checks auth and limits, draws the deterministic faults and
 * latency, asks the answer generator, and fills a co__sim_reply the server
 * (or a unit test) delivers. Also the test hooks under /_sim/ (stats,
 * recorded requests, run-time patches of a model's knobs) and the shared
 * state they touch: knobs behind a mutex with a generation counter so the
 * hot path only does one atomic load, and a request ring used only with
 * --record. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "cutover/util.h"
#include "sim/sim_int.h"

#define REPLY_MAX ((size_t)64 << 20)
#define MAX_CUTS ((size_t)1 << 22)

/* ---- reply --------------------------------------------------------------- */

void co__sim_reply_init(co__sim_reply *r)
{
    memset(r, 0, sizeof *r);
    co_buf_init(&r->body, REPLY_MAX);
}

void co__sim_reply_reset(co__sim_reply *r)
{
    r->status = 0;
    r->ctype = NULL;
    r->id_header = NULL;
    r->id[0] = '\0';
    r->retry_after_ms = 0;
    r->retry_after_ms_header = 0;
    co_buf_reset(&r->body);
    r->n_cuts = 0;
    r->stream = 0;
    r->fault = CO__SIM_F_NONE;
    r->ttft_ms = r->per_token_ms = r->delay_ms = 0;
}

void co__sim_reply_free(co__sim_reply *r)
{
    co_buf_free(&r->body);
    free(r->cuts);
    r->cuts = NULL;
    r->n_cuts = r->cap_cuts = 0;
}

int co__sim_reply_cut(co__sim_reply *r, int token)
{
    if (r->n_cuts == r->cap_cuts) {
        size_t cap = r->cap_cuts ? r->cap_cuts * 2 : 64;
        if (cap > MAX_CUTS)
            return co_error_set(CO_ETOOBIG, "more than %zu stream events", MAX_CUTS);
        co__sim_cut *v = realloc(r->cuts, cap * sizeof *v);
        if (!v)
            return co_error_set(CO_ENOMEM, "out of memory");
        r->cuts = v;
        r->cap_cuts = cap;
    }
    r->cuts[r->n_cuts].end = r->body.len;
    r->cuts[r->n_cuts].token = token;
    r->n_cuts++;
    return 0;
}

void co__sim_errorf(const co__sim_proto *p, co__sim_reply *r, int kind, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->error(r, kind, msg);
}

const char *co__sim_http_header(const co__sim_http *in, const char *name)
{
    for (size_t i = 0; i < in->nh; i++)
        if (!strcasecmp(in->hname[i], name))
            return in->hval[i];
    return NULL;
}

/* ---- knobs --------------------------------------------------------------- */

void co__sim_knobs_from_model(co__sim_knobs *k, const co__sim_model *m)
{
    k->latency = m->latency;
    k->faults = m->faults;
    k->accuracy = m->canned.accuracy;
    k->use_tag_accuracy = 1;
    k->refusal_rate = m->refusal_rate;
    k->verbosity = m->verbosity;
    k->markdown = m->markdown;
}

static int unit_val(const json_t *v, const char *name, double lo, double hi, double *out)
{
    if (!json_is_number(v))
        return co_error_set(CO_EINVAL, "'%s' must be a number", name);
    double d = json_number_value(v);
    if (d < lo || d > hi)
        return co_error_set(CO_EINVAL, "'%s' must be between %g and %g, not %g", name, lo, hi, d);
    *out = d;
    return 0;
}

static int dur_val(const json_t *v, const char *name, int64_t *out)
{
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if (d < 0 || d > 86400e3)
            return co_error_set(CO_EINVAL, "'%s' must be between 0 and 1d (in ms), not %g", name, d);
        *out = (int64_t)d;
        return 0;
    }
    if (json_is_string(v)) {
        int64_t ms;
        if (co_parse_duration_ms(json_string_value(v), &ms))
            return co_error_set(CO_EINVAL, "'%s': %s", name, co_error_last());
        *out = ms;
        return 0;
    }
    return co_error_set(CO_EINVAL, "'%s' must be a duration (\"250ms\") or a number of ms", name);
}

static int unknown_key(const char *key, const char *const *names)
{
    const char *s = co_suggest(key, names);
    return co_error_set(CO_EINVAL, "unknown key '%s'%s%s%s", key, s ? " (did you mean '" : "",
                        s ? s : "", s ? "'?)" : "");
}

int co__sim_knobs_patch(co__sim_knobs *kout, const json_t *patch)
{
    static const char *const top[] = {"latency", "faults", "accuracy", "refusal_rate", "verbosity", "markdown", NULL};
    static const char *const lat[] = {"ttft", "per_token", "jitter", NULL};
    static const char *const flt[] = {"error_500", "error_429", "overloaded", "timeout", "reset",
                                      "truncate", "retry_after", NULL};
    if (!json_is_object(patch))
        return co_error_set(CO_EINVAL, "the patch must be a JSON object");
    co__sim_knobs k = *kout;
    const char *key, *k2;
    const json_t *v, *v2;
    int rc = 0;
    json_object_foreach((json_t *)patch, key, v) {
        if (!strcmp(key, "latency")) {
            if (!json_is_object(v))
                return co_error_set(CO_EINVAL, "'latency' must be an object");
            json_object_foreach((json_t *)v, k2, v2) {
                if (!strcmp(k2, "ttft")) rc = dur_val(v2, "latency.ttft", &k.latency.ttft_ms);
                else if (!strcmp(k2, "per_token")) rc = dur_val(v2, "latency.per_token", &k.latency.per_token_ms);
                else if (!strcmp(k2, "jitter")) rc = unit_val(v2, "latency.jitter", 0, 1, &k.latency.jitter);
                else rc = unknown_key(k2, lat);
                if (rc)
                    return rc;
            }
        } else if (!strcmp(key, "faults")) {
            if (!json_is_object(v))
                return co_error_set(CO_EINVAL, "'faults' must be an object");
            json_object_foreach((json_t *)v, k2, v2) {
                co__sim_faults *f = &k.faults;
                if (!strcmp(k2, "error_500")) rc = unit_val(v2, "faults.error_500", 0, 1, &f->error_500);
                else if (!strcmp(k2, "error_429")) rc = unit_val(v2, "faults.error_429", 0, 1, &f->error_429);
                else if (!strcmp(k2, "overloaded")) rc = unit_val(v2, "faults.overloaded", 0, 1, &f->overloaded);
                else if (!strcmp(k2, "timeout")) rc = unit_val(v2, "faults.timeout", 0, 1, &f->timeout);
                else if (!strcmp(k2, "reset")) rc = unit_val(v2, "faults.reset", 0, 1, &f->reset);
                else if (!strcmp(k2, "truncate")) rc = unit_val(v2, "faults.truncate", 0, 1, &f->truncate);
                else if (!strcmp(k2, "retry_after")) rc = dur_val(v2, "faults.retry_after", &f->retry_after_ms);
                else rc = unknown_key(k2, flt);
                if (rc)
                    return rc;
            }
        } else if (!strcmp(key, "accuracy")) {
            if ((rc = unit_val(v, "accuracy", 0, 1, &k.accuracy)))
                return rc;
            k.use_tag_accuracy = 0; /* a patched accuracy is meant for every case */
        } else if (!strcmp(key, "refusal_rate")) {
            if ((rc = unit_val(v, "refusal_rate", 0, 1, &k.refusal_rate)))
                return rc;
        } else if (!strcmp(key, "verbosity")) {
            if ((rc = unit_val(v, "verbosity", 0.05, 20, &k.verbosity)))
                return rc;
        } else if (!strcmp(key, "markdown")) {
            if (!json_is_boolean(v))
                return co_error_set(CO_EINVAL, "'markdown' must be true or false");
            k.markdown = json_is_true(v);
        } else {
            return unknown_key(key, top);
        }
    }
    *kout = k;
    return 0;
}

json_t *co__sim_knobs_json(const co__sim_knobs *k)
{
    return json_pack("{s:{s:I,s:I,s:f},s:{s:f,s:f,s:f,s:f,s:f,s:f,s:I},s:f,s:b,s:f,s:f,s:b}",
                     "latency", "ttft", (json_int_t)k->latency.ttft_ms, "per_token",
                     (json_int_t)k->latency.per_token_ms, "jitter", k->latency.jitter, "faults",
                     "error_500", k->faults.error_500, "error_429", k->faults.error_429, "overloaded",
                     k->faults.overloaded, "timeout", k->faults.timeout, "reset", k->faults.reset,
                     "truncate", k->faults.truncate, "retry_after", (json_int_t)k->faults.retry_after_ms,
                     "accuracy", k->accuracy, "tag_accuracy", k->use_tag_accuracy, "refusal_rate",
                     k->refusal_rate, "verbosity", k->verbosity, "markdown", k->markdown);
}

/* ---- shared state and cores ---------------------------------------------- */

int co__sim_shared_init(co__sim_shared *sh, const co_sim_scenario *sc, uint64_t seed, int record,
                        size_t n_cores)
{
    memset(sh, 0, sizeof *sh);
    sh->sc = sc;
    sh->seed = seed;
    sh->record = record;
    sh->n_models = sc->models.n;
    size_t n = sh->n_models ? sh->n_models : 1;
    sh->counters = calloc(n, sizeof *sh->counters);
    sh->knobs = calloc(n, sizeof *sh->knobs);
    sh->cores = calloc(n_cores ? n_cores : 1, sizeof *sh->cores);
    if (!sh->counters || !sh->knobs || !sh->cores) {
        free(sh->counters);
        free(sh->knobs);
        free(sh->cores);
        return co_error_set(CO_ENOMEM, "out of memory");
    }
    sh->n_cores = n_cores;
    for (size_t i = 0; i < sh->n_models; i++)
        co__sim_knobs_from_model(&sh->knobs[i], co__sim_model_at(sc, (int)i));
    pthread_mutex_init(&sh->mu, NULL);
    return 0;
}

void co__sim_shared_destroy(co__sim_shared *sh)
{
    if (!sh->knobs)
        return;
    for (size_t i = 0; i < CO__SIM_RING; i++)
        free(sh->ring[i]);
    free(sh->counters);
    free(sh->knobs);
    free(sh->cores);
    pthread_mutex_destroy(&sh->mu);
    memset(sh, 0, sizeof *sh);
}

int co__sim_core_init(co__sim_core *c, co__sim_shared *sh)
{
    memset(c, 0, sizeof *c);
    c->sh = sh;
    size_t n = sh->n_models ? sh->n_models : 1;
    c->knobs = calloc(n, sizeof *c->knobs);
    c->stats = calloc(sh->n_models + 1, sizeof *c->stats);
    if (!c->knobs || !c->stats) {
        free(c->knobs);
        free(c->stats);
        return co_error_set(CO_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&sh->mu);
    memcpy(c->knobs, sh->knobs, sh->n_models * sizeof *c->knobs);
    c->knobs_gen = atomic_load(&sh->knobs_gen);
    for (size_t i = 0; i < sh->n_cores; i++)
        if (!sh->cores[i]) {
            sh->cores[i] = c;
            c->salt = sh->seed ^ (0x9e3779b97f4a7c15ULL * (i + 1));
            break;
        }
    pthread_mutex_unlock(&sh->mu);
    /* request text is bounded by the body limit; answers by the reply limit */
    size_t text_max = (size_t)sh->sc->max_body + 4096;
    co_buf_init(&c->last_user, text_max);
    co_buf_init(&c->system, text_max);
    co_buf_init(&c->tool_result, text_max);
    co_buf_init(&c->text, REPLY_MAX / 2);
    co_buf_init(&c->tmp, REPLY_MAX / 2);
    co_buf_init(&c->tmp2, REPLY_MAX / 2);
    return 0;
}

void co__sim_core_destroy(co__sim_core *c)
{
    if (!c->sh)
        return;
    pthread_mutex_lock(&c->sh->mu);
    for (size_t i = 0; i < c->sh->n_cores; i++)
        if (c->sh->cores[i] == c)
            c->sh->cores[i] = NULL;
    pthread_mutex_unlock(&c->sh->mu);
    free(c->knobs);
    free(c->stats);
    co_buf_free(&c->last_user);
    co_buf_free(&c->system);
    co_buf_free(&c->tool_result);
    co_buf_free(&c->text);
    co_buf_free(&c->tmp);
    co_buf_free(&c->tmp2);
    for (size_t i = 0; i < CO__SIM_PARSED_MAX; i++) {
        free(c->parsed[i].body);
        json_decref(c->parsed[i].root);
    }
    memset(c, 0, sizeof *c);
}

/* json_loadb through the core's cache of recent bodies: a new reference to
 * the parsed tree (read only: the cache shares it), NULL on a parse error. */
static json_t *parse_body(co__sim_core *c, const char *body, size_t len, json_error_t *jerr)
{
    uint64_t h = XXH3_64bits(body, len);
    for (size_t i = 0; i < CO__SIM_PARSED_MAX; i++)
        if (c->parsed[i].root && c->parsed[i].hash == h && c->parsed[i].len == len &&
            !memcmp(c->parsed[i].body, body, len))
            return json_incref(c->parsed[i].root);
    json_t *root = json_loadb(body, len, 0, jerr);
    char *copy = root && len <= 256 * 1024 ? malloc(len + 1) : NULL;
    if (copy) {
        unsigned k = c->parsed_next++ % CO__SIM_PARSED_MAX;
        free(c->parsed[k].body);
        json_decref(c->parsed[k].root);
        memcpy(copy, body, len);
        c->parsed[k].hash = h;
        c->parsed[k].len = len;
        c->parsed[k].body = copy;
        c->parsed[k].root = json_incref(root);
    }
    return root;
}

static void refresh_knobs(co__sim_core *c)
{
    co__sim_shared *sh = c->sh;
    if (atomic_load_explicit(&sh->knobs_gen, memory_order_acquire) == c->knobs_gen)
        return;
    pthread_mutex_lock(&sh->mu);
    memcpy(c->knobs, sh->knobs, sh->n_models * sizeof *c->knobs);
    c->knobs_gen = atomic_load(&sh->knobs_gen);
    pthread_mutex_unlock(&sh->mu);
}

static int stat_slot(const co__sim_reply *r)
{
    if (r->fault == CO__SIM_F_TIMEOUT)
        return CO__SIM_S_TIMEOUT;
    if (r->fault == CO__SIM_F_RESET)
        return CO__SIM_S_RESET;
    switch (r->status) {
    case 200: return CO__SIM_S_200;
    case 400: return CO__SIM_S_400;
    case 401: return CO__SIM_S_401;
    case 404: return CO__SIM_S_404;
    case 405: return CO__SIM_S_405;
    case 413: return CO__SIM_S_413;
    case 429: return CO__SIM_S_429;
    case 500: return CO__SIM_S_500;
    case 503: return CO__SIM_S_503;
    case 529: return CO__SIM_S_529;
    default: return CO__SIM_S_OTHER;
    }
}

static const char *const stat_names[CO__SIM_NSTAT] = {
    "200", "400", "401", "404", "405", "413", "429", "500", "503", "529", "other",
    "timeout", "reset", "truncate",
};

static void count(co__sim_core *c, int model, const co__sim_reply *r)
{
    co__sim_stats *s = &c->stats[model >= 0 ? (size_t)model : c->sh->n_models];
    int slot = stat_slot(r);
    /* single writer: a relaxed load+store is enough and avoids a locked add */
    atomic_store_explicit(&s->n[slot], atomic_load_explicit(&s->n[slot], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (r->fault == CO__SIM_F_TRUNCATE)
        atomic_store_explicit(&s->n[CO__SIM_S_TRUNCATE],
                              atomic_load_explicit(&s->n[CO__SIM_S_TRUNCATE], memory_order_relaxed) + 1,
                              memory_order_relaxed);
}

/* ---- URIs ---------------------------------------------------------------- */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (NUL-terminated); -1 when it does not fit. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap, int plus)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            ch = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (plus && ch == '+') {
            ch = ' ';
        }
        if (j + 1 >= cap)
            return -1;
        out[j++] = ch;
    }
    out[j] = '\0';
    return 0;
}

/* The decoded value of ?name= in query (NULL query: none). */
static int query_get(const char *query, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > nl && !strncmp(p, name, nl) && p[nl] == '=')
            return pct_decode(p + nl + 1, len - nl - 1, out, cap, 1) == 0;
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

/* ---- recording ----------------------------------------------------------- */

static int secret_header(const char *name)
{
    return !strcasecmp(name, "authorization") || !strcasecmp(name, "x-api-key") ||
           !strcasecmp(name, "x-goog-api-key") || !strcasecmp(name, "api-key") ||
           !strcasecmp(name, "proxy-authorization") || !strcasecmp(name, "cookie");
}

static void record(co__sim_core *c, const co__sim_http *in)
{
    co__sim_shared *sh = c->sh;
    co_buf b;
    co_buf_init(&b, CO__SIM_RING_BODY_MAX * 7 + 65536);
    co__sim_out o = {&b, 0};
    co__sim_printf(&o, "{\"ts_ms\":%lld,\"method\":", (long long)co_now_ms());
    co__sim_jstrz(&o, in->method);
    co__sim_put(&o, ",\"path\":");
    /* a ?key= query parameter is an API key too */
    const char *q = strchr(in->uri, '?');
    if (q && (strstr(q, "?key=") || strstr(q, "&key="))) {
        co_buf u;
        co_buf_init(&u, 65536);
        co_buf_append(&u, in->uri, (size_t)(q - in->uri) + 1);
        for (const char *p = q + 1; *p;) {
            const char *amp = strchr(p, '&');
            size_t len = amp ? (size_t)(amp - p) : strlen(p);
            if (!strncmp(p, "key=", 4))
                co_buf_puts(&u, "key=<redacted>");
            else
                co_buf_append(&u, p, len);
            if (amp)
                co_buf_append(&u, "&", 1);
            p = amp ? amp + 1 : p + len;
        }
        co__sim_jstr(&o, u.p ? u.p : "", u.len);
        co_buf_free(&u);
    } else {
        co__sim_jstrz(&o, in->uri);
    }
    co__sim_put(&o, ",\"headers\":{");
    for (size_t i = 0; i < in->nh; i++) {
        char lname[128];
        size_t n = strlen(in->hname[i]);
        if (n >= sizeof lname)
            n = sizeof lname - 1;
        for (size_t j = 0; j < n; j++)
            lname[j] = (char)tolower((unsigned char)in->hname[i][j]);
        lname[n] = '\0';
        if (i)
            co__sim_put(&o, ",");
        co__sim_jstrz(&o, lname);
        co__sim_put(&o, ":");
        co__sim_jstrz(&o, secret_header(lname) ? "<redacted>" : in->hval[i]);
    }
    co__sim_put(&o, "},\"body\":");
    size_t bn = in->body_len > CO__SIM_RING_BODY_MAX ? co__sim_utf8_floor(in->body, CO__SIM_RING_BODY_MAX)
                                                     : in->body_len;
    co__sim_jstr(&o, in->body ? in->body : "", in->body ? bn : 0);
    if (bn < in->body_len)
        co__sim_put(&o, ",\"body_truncated\":true");
    co__sim_put(&o, "}");
    if (o.err) {
        co_buf_free(&b);
        return;
    }
    char *s = co_buf_detach(&b);
    pthread_mutex_lock(&sh->mu);
    size_t slot = sh->ring_total % CO__SIM_RING;
    char *old = sh->ring[slot];
    sh->ring[slot] = s;
    sh->ring_total++;
    pthread_mutex_unlock(&sh->mu);
    free(old);
}

/* ---- /_sim/ hooks -------------------------------------------------------- */

static void hook_json(co__sim_reply *r, int status, json_t *v)
{
    r->status = status;
    r->ctype = "application/json";
    co__sim_out o = {&r->body, 0};
    co__sim_jval(&o, v);
    co__sim_put(&o, "\n");
    json_decref(v);
}

static void hook_stats(co__sim_core *c, co__sim_reply *r)
{
    co__sim_shared *sh = c->sh;
    json_t *models = json_object();
    uint64_t total = 0;
    pthread_mutex_lock(&sh->mu); /* the core list, not the counters */
    for (size_t m = 0; m <= sh->n_models; m++) {
        uint64_t n[CO__SIM_NSTAT] = {0};
        for (size_t k = 0; k < sh->n_cores; k++) {
            if (!sh->cores[k])
                continue;
            for (int s = 0; s < CO__SIM_NSTAT; s++)
                n[s] += atomic_load_explicit(&sh->cores[k]->stats[m].n[s], memory_order_relaxed);
        }
        uint64_t req = 0;
        json_t *status = json_object(), *faults = json_object();
        for (int s = 0; s < CO__SIM_NSTAT; s++) {
            if (!n[s])
                continue;
            if (s <= CO__SIM_S_OTHER) {
                json_object_set_new(status, stat_names[s], json_integer((json_int_t)n[s]));
                req += n[s];
            } else {
                json_object_set_new(faults, stat_names[s], json_integer((json_int_t)n[s]));
                if (s != CO__SIM_S_TRUNCATE)
                    req += n[s];
            }
        }
        total += req;
        const char *name = m < sh->n_models ? co__sim_model_at(sh->sc, (int)m)->name : NULL;
        if (!name && !req) {
            json_decref(status);
            json_decref(faults);
            continue;
        }
        json_object_set_new(models, name ? name : "_other",
                            json_pack("{s:I,s:o,s:o}", "requests", (json_int_t)req, "status", status,
                                      "faults", faults));
    }
    pthread_mutex_unlock(&sh->mu);
    hook_json(r, 200, json_pack("{s:I,s:o}", "requests", (json_int_t)total, "models", models));
}

static void hook_requests(co__sim_core *c, const char *query, co__sim_reply *r)
{
    co__sim_shared *sh = c->sh;
    if (!sh->record) {
        co__sim_errorf(&co__sim_openai, r, CO__SIM_E_ROUTE,
                       "GET /_sim/requests: request recording is off; start cutover sim with --record");
        return;
    }
    char lim[32];
    long limit = CO__SIM_RING;
    if (query_get(query, "limit", lim, sizeof lim)) {
        char *end;
        limit = strtol(lim, &end, 10);
        if (*end || limit < 0) {
            co__sim_errorf(&co__sim_openai, r, CO__SIM_E_INVALID, "limit must be a non-negative integer");
            return;
        }
        if (limit > CO__SIM_RING)
            limit = CO__SIM_RING;
    }
    r->status = 200;
    r->ctype = "application/json";
    co__sim_out o = {&r->body, 0};
    pthread_mutex_lock(&sh->mu);
    uint64_t have = sh->ring_total < CO__SIM_RING ? sh->ring_total : CO__SIM_RING;
    uint64_t n = (uint64_t)limit < have ? (uint64_t)limit : have;
    co__sim_printf(&o, "{\"total\":%llu,\"requests\":[", (unsigned long long)sh->ring_total);
    for (uint64_t i = sh->ring_total - n; i < sh->ring_total; i++) {
        if (i != sh->ring_total - n)
            co__sim_put(&o, ",");
        co__sim_put(&o, sh->ring[i % CO__SIM_RING]);
    }
    pthread_mutex_unlock(&sh->mu);
    co__sim_put(&o, "]}\n");
}

static void hook_clear(co__sim_core *c, co__sim_reply *r)
{
    co__sim_shared *sh = c->sh;
    pthread_mutex_lock(&sh->mu);
    for (size_t i = 0; i < CO__SIM_RING; i++) {
        free(sh->ring[i]);
        sh->ring[i] = NULL;
    }
    sh->ring_total = 0;
    pthread_mutex_unlock(&sh->mu);
    hook_json(r, 200, json_pack("{s:b}", "cleared", 1));
}

static void hook_model(co__sim_core *c, const co__sim_http *in, const char *name, co__sim_reply *r)
{
    co__sim_shared *sh = c->sh;
    int all = !strcmp(name, "*") && co__sim_scenario_find(sh->sc, "*") < 0;
    int mi = all ? -1 : co__sim_scenario_find(sh->sc, name);
    if (!all && (mi < 0 || strcmp(co__sim_model_at(sh->sc, mi)->name, name))) {
        co__sim_openai.error(r, CO__SIM_E_MODEL, name);
        return;
    }
    if (!strcmp(in->method, "GET")) {
        if (all) {
            co__sim_errorf(&co__sim_openai, r, CO__SIM_E_INVALID, "GET needs one model name");
            return;
        }
        pthread_mutex_lock(&sh->mu);
        json_t *k = co__sim_knobs_json(&sh->knobs[mi]);
        pthread_mutex_unlock(&sh->mu);
        hook_json(r, 200, json_pack("{s:s,s:o}", "model", name, "knobs", k));
        return;
    }
    json_error_t jerr;
    json_t *patch = json_loadb(in->body ? in->body : "", in->body_len, 0, &jerr);
    if (!patch) {
        co__sim_errorf(&co__sim_openai, r, CO__SIM_E_INVALID, "the patch is not valid JSON: %s (line %d, column %d)",
                       jerr.text, jerr.line, jerr.column);
        return;
    }
    int restore = json_is_true(json_object_get(patch, "restore"));
    if (restore)
        json_object_del(patch, "restore");
    int rc = 0;
    json_t *out = NULL;
    pthread_mutex_lock(&sh->mu);
    for (size_t i = 0; i < sh->n_models && !rc; i++) {
        if (!all && (int)i != mi)
            continue;
        co__sim_knobs k = sh->knobs[i];
        if (restore)
            co__sim_knobs_from_model(&k, co__sim_model_at(sh->sc, (int)i));
        rc = co__sim_knobs_patch(&k, patch);
        if (!rc) {
            sh->knobs[i] = k;
            if (!all)
                out = co__sim_knobs_json(&k);
        }
    }
    if (!rc)
        atomic_fetch_add_explicit(&sh->knobs_gen, 1, memory_order_release);
    pthread_mutex_unlock(&sh->mu);
    json_decref(patch);
    if (rc) {
        co__sim_errorf(&co__sim_openai, r, CO__SIM_E_INVALID, "%s", co_error_last());
        return;
    }
    if (all)
        hook_json(r, 200, json_pack("{s:s,s:I}", "model", "*", "patched", (json_int_t)sh->n_models));
    else
        hook_json(r, 200, json_pack("{s:s,s:o}", "model", name, "knobs", out));
}

static void hooks(co__sim_core *c, const co__sim_http *in, const char *path, const char *query,
                  co__sim_reply *r)
{
    int get = !strcmp(in->method, "GET"), post = !strcmp(in->method, "POST");
    const char *rest = path + 6; /* after "/_sim/" */
    char name[256];
    if (!strcmp(rest, "health") && get) {
        hook_json(r, 200, json_pack("{s:s}", "status", "ok"));
    } else if (!strcmp(rest, "stats") && get) {
        hook_stats(c, r);
    } else if (!strcmp(rest, "requests") && get) {
        hook_requests(c, query, r);
    } else if (!strcmp(rest, "requests") && !strcmp(in->method, "DELETE")) {
        hook_clear(c, r);
    } else if (!strncmp(rest, "models/", 7) && (get || post) &&
               pct_decode(rest + 7, strlen(rest + 7), name, sizeof name, 0) == 0 && name[0]) {
        hook_model(c, in, name, r);
    } else {
        char what[300];
        snprintf(what, sizeof what, "%s %.250s", in->method, path);
        co__sim_openai.error(r, CO__SIM_E_ROUTE, what);
    }
}

/* ---- generation ---------------------------------------------------------- */

static int auth(co__sim_core *c, const co__sim_proto *p, const co__sim_http *in, const char *query,
                co__sim_reply *r)
{
    const char *key = NULL;
    char qkey[256];
    if (p == &co__sim_openai) {
        const char *h = co__sim_http_header(in, "authorization");
        if (h && !strncasecmp(h, "Bearer ", 7)) {
            key = h + 7;
            while (*key == ' ')
                key++;
        }
    } else if (p == &co__sim_anthropic) {
        key = co__sim_http_header(in, "x-api-key");
    } else {
        key = co__sim_http_header(in, "x-goog-api-key");
        if (!key && query_get(query, "key", qkey, sizeof qkey))
            key = qkey;
    }
    if (!key || !*key) {
        p->error(r, CO__SIM_E_AUTH_MISSING, NULL);
        return -1;
    }
    const char *want = c->sh->sc->api_key;
    if (want && *want && strcmp(want, key)) {
        p->error(r, CO__SIM_E_AUTH_INVALID, key);
        return -1;
    }
    return 0;
}

static int vendor_of(const co__sim_proto *p)
{
    return p == &co__sim_openai ? CO__SIM_V_OPENAI : p == &co__sim_anthropic ? CO__SIM_V_ANTHROPIC : CO__SIM_V_GEMINI;
}

static int generate(co__sim_core *c, const co__sim_proto *p, const co__sim_http *in, const char *query,
                    co__sim_req *req, co__sim_reply *r)
{
    const co_sim_scenario *sc = c->sh->sc;
    json_t *root = NULL;
    int mi = -1;
    if (p == &co__sim_openai)
        r->id_header = "x-request-id";
    else if (p == &co__sim_anthropic)
        r->id_header = "request-id";
    if ((int64_t)in->body_len > sc->max_body) {
        co__sim_errorf(p, r, CO__SIM_E_TOO_BIG,
                       "Request too large: the body has %zu bytes; the limit is %lld bytes.", in->body_len,
                       (long long)sc->max_body);
        goto done;
    }
    if (auth(c, p, in, query, r))
        goto done;
    if (p == &co__sim_anthropic && !co__sim_http_header(in, "anthropic-version")) {
        p->error(r, CO__SIM_E_VERSION, NULL);
        goto done;
    }
    json_error_t jerr;
    root = parse_body(c, in->body ? in->body : "", in->body_len, &jerr);
    if (!root) {
        p->error(r, CO__SIM_E_MALFORMED, NULL);
        goto done;
    }
    co_buf_reset(&c->last_user);
    co_buf_reset(&c->system);
    co_buf_reset(&c->tool_result);
    req->last_user = &c->last_user;
    req->system = &c->system;
    req->tool_result = &c->tool_result;
    if (p->parse(c, in, root, req, r))
        goto done;
    mi = co__sim_scenario_find(sc, req->model);
    if (mi >= 0) {
        int v = co__sim_model_at(sc, mi)->provider;
        if (v != CO__SIM_V_ANY && v != vendor_of(p))
            mi = -1;
    }
    if (mi < 0) {
        p->error(r, CO__SIM_E_MODEL, req->model);
        goto done;
    }
    const co__sim_model *m = co__sim_model_at(sc, mi);
    refresh_knobs(c);
    const co__sim_knobs *k = &c->knobs[mi];
    uint64_t counter = atomic_fetch_add_explicit(&c->sh->counters[mi], 1, memory_order_relaxed);
    co__sim_rng g;
    co__sim_rng_init(&g, c->sh->seed, req->model, counter);
    /* always the same draws in the same order, whatever the rates */
    double u_reset = co__sim_rng_unit(&g), u_timeout = co__sim_rng_unit(&g);
    double u_500 = co__sim_rng_unit(&g), u_429 = co__sim_rng_unit(&g);
    double u_over = co__sim_rng_unit(&g), u_trunc = co__sim_rng_unit(&g);
    double u_jit = co__sim_rng_unit(&g);

    if (m->context_window > 0) {
        int64_t pt = co__sim_tokens_of(req->prompt_chars, m->tokens.chars_per_token);
        if (pt > m->context_window) {
            char msg[256];
            if (p == &co__sim_openai)
                snprintf(msg, sizeof msg,
                         "This model's maximum context length is %lld tokens. However, your messages "
                         "resulted in %lld tokens. Please reduce the length of the messages.",
                         (long long)m->context_window, (long long)pt);
            else if (p == &co__sim_anthropic)
                snprintf(msg, sizeof msg, "prompt is too long: %lld tokens > %lld maximum", (long long)pt,
                         (long long)m->context_window);
            else
                snprintf(msg, sizeof msg,
                         "The input token count (%lld) exceeds the maximum number of tokens allowed (%lld).",
                         (long long)pt, (long long)m->context_window);
            p->error(r, CO__SIM_E_CONTEXT, msg);
            goto done;
        }
    }
    if (u_reset < k->faults.reset) {
        r->fault = CO__SIM_F_RESET;
        goto done;
    }
    if (u_timeout < k->faults.timeout) {
        r->fault = CO__SIM_F_TIMEOUT;
        goto done;
    }
    if (u_500 < k->faults.error_500) {
        p->error(r, CO__SIM_E_SERVER, req->model);
        goto done;
    }
    if (u_429 < k->faults.error_429) {
        r->retry_after_ms = k->faults.retry_after_ms > 0 ? k->faults.retry_after_ms : 1000;
        r->retry_after_ms_header = p == &co__sim_openai;
        p->error(r, CO__SIM_E_RATE, req->model);
        goto done;
    }
    if (u_over < k->faults.overloaded) {
        p->error(r, CO__SIM_E_OVERLOADED, req->model);
        goto done;
    }
    co__sim_answer a;
    a.created = co_now_ms() / 1000;
    if (co__sim_answer_make(c, m, k, req, &g, &a) || p->render(c, req, &a, r)) {
        r->n_cuts = 0; /* a half-rendered reply becomes the API's 500 */
        p->error(r, CO__SIM_E_SERVER, req->model);
        goto done;
    }
    if (u_trunc < k->faults.truncate)
        r->fault = CO__SIM_F_TRUNCATE;
    double f = 1.0 + k->latency.jitter * (2.0 * u_jit - 1.0);
    if (f < 0)
        f = 0;
    int64_t ttft = (int64_t)llround((double)k->latency.ttft_ms * f);
    int64_t per = (int64_t)llround((double)k->latency.per_token_ms * f);
    if (r->stream) {
        r->ttft_ms = ttft;
        r->per_token_ms = per;
    } else {
        r->delay_ms = ttft + per * a.completion_tokens;
    }
done:
    json_decref(root);
    return mi;
}

/* ---- routing ------------------------------------------------------------- */

static int gemini_path(co__sim_core *c, const char *path, const char **method)
{
    const char *rest;
    if (!strncmp(path, "/v1beta/models/", 15))
        rest = path + 15;
    else if (!strncmp(path, "/v1/models/", 11))
        rest = path + 11;
    else
        return 0;
    const char *colon = strrchr(rest, ':');
    if (!colon)
        return 0;
    if (pct_decode(rest, (size_t)(colon - rest), c->model_buf, sizeof c->model_buf, 0))
        return 0;
    *method = colon + 1;
    return 1;
}

void co__sim_handle(co__sim_core *c, const co__sim_http *in, co__sim_reply *r)
{
    co__sim_reply_reset(r);
    uint64_t n = ++c->reqno;
    uint64_t h = XXH64(&n, sizeof n, c->salt);
    co_hex_u64(r->id, h, 16);
    co_hex_u64(r->id + 16, XXH64(&h, sizeof h, n) >> 32, 8);
    r->id[24] = '\0';
    if (c->sh->record && strncmp(in->uri, "/_sim/", 6))
        record(c, in);

    /* split the query off without copying the path when there is none */
    char pathbuf[1024];
    const char *path = in->uri, *query = NULL;
    const char *qm = strchr(in->uri, '?');
    if (qm) {
        size_t pl = (size_t)(qm - in->uri);
        if (pl >= sizeof pathbuf)
            pl = sizeof pathbuf - 1;
        memcpy(pathbuf, in->uri, pl);
        pathbuf[pl] = '\0';
        path = pathbuf;
        query = qm + 1;
    }
    int get = !strcmp(in->method, "GET"), post = !strcmp(in->method, "POST");
    co__sim_req req;
    memset(&req, 0, sizeof req);
    const char *gmethod = NULL;
    char what[300]; /* "METHOD /path" for an error, formatted only then */
#define WHAT() (snprintf(what, sizeof what, "%s %.250s", in->method, path), what)

    if (!strncmp(path, "/_sim/", 6)) {
        hooks(c, in, path, query, r);
        return;
    }
    int mi = -1;
    if (!strcmp(path, "/v1/chat/completions")) {
        req.proto = CO__SIM_OPENAI;
        if (post)
            mi = generate(c, &co__sim_openai, in, query, &req, r);
        else
            co__sim_openai.error(r, CO__SIM_E_METHOD, WHAT());
    } else if (!strcmp(path, "/v1/messages")) {
        req.proto = CO__SIM_ANTHROPIC;
        if (post)
            mi = generate(c, &co__sim_anthropic, in, query, &req, r);
        else
            co__sim_anthropic.error(r, CO__SIM_E_METHOD, WHAT());
    } else if (gemini_path(c, path, &gmethod)) {
        req.proto = CO__SIM_GEMINI;
        req.model = c->model_buf;
        int is_gen = !strcmp(gmethod, "generateContent"), is_stream = !strcmp(gmethod, "streamGenerateContent");
        if (!is_gen && !is_stream) {
            co__sim_gemini.error(r, CO__SIM_E_ROUTE, WHAT());
        } else if (!post) {
            co__sim_gemini.error(r, CO__SIM_E_METHOD, WHAT());
        } else {
            char alt[16];
            req.stream = is_stream;
            req.sse = is_stream && query_get(query, "alt", alt, sizeof alt) && !strcmp(alt, "sse");
            mi = generate(c, &co__sim_gemini, in, query, &req, r);
        }
    } else if (get && (!strcmp(path, "/v1/models") || !strncmp(path, "/v1/models/", 11))) {
        /* one path, two vendors: Anthropic clients send their own headers */
        int anth = co__sim_http_header(in, "x-api-key") || co__sim_http_header(in, "anthropic-version");
        const co__sim_proto *p = anth ? &co__sim_anthropic : &co__sim_openai;
        const char *one = path[10] == '/' ? path + 11 : NULL;
        if (!auth(c, p, in, query, r)) {
            if (anth)
                co__sim_anthropic_models(c, r, one && *one ? one : NULL);
            else
                co__sim_openai_models(c, r, one && *one ? one : NULL);
        }
    } else if (get && (!strcmp(path, "/v1beta/models") || !strncmp(path, "/v1beta/models/", 15))) {
        const char *one = path[14] == '/' ? path + 15 : NULL;
        if (!auth(c, &co__sim_gemini, in, query, r))
            co__sim_gemini_models(c, r, one && *one ? one : NULL);
    } else {
        co__sim_openai.error(r, CO__SIM_E_ROUTE, WHAT());
    }
#undef WHAT
    count(c, mi, r);
}
