/* The eval runner (cutover/eval.h): every case x arm x repeat of a suite as
 * one model call on a private event loop, through the gateway's provider
 * code (endpoint, chat emit/parse, co_upstream), with retries on 429/503/529,
 * the response cache, llm-rubric grading by the configured judge, and
 * results streamed into the store in batches.
 *
 * Shape: a fixed set of slots (one per call in flight). A slot takes the
 * next (case, repeat, arm) from a cursor, so no per-result state exists
 * before its turn; when its result is judged it goes into the current batch
 * and the slot takes the next one. Nothing recurses: cache hits finish
 * inside pump(), which every completion calls again. */
#include <ctype.h>
#include <event2/event.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cutover/buf.h"
#include "cutover/chat.h"
#include "cutover/endpoint.h"
#include "cutover/eval.h"
#include "cutover/upstream.h"
#include "cutover/util.h"

#define EV_DAY_MS (24LL * 3600 * 1000)
#define EV_MAX_RUBRICS 16
#define EV_BODY_MAX ((size_t)64 << 20)
#define EV_BACKOFF_CAP_MS 30000

static const char *const arm_names[2] = {"incumbent", "candidate"};

/* ---- small helpers ---------------------------------------------------------- */

int co_eval_arms_parse(unsigned *out, const char *s)
{
    if (!s || !strcmp(s, "both"))
        *out = CO_EVAL_BOTH;
    else if (!strcmp(s, "incumbent"))
        *out = CO_EVAL_INCUMBENT;
    else if (!strcmp(s, "candidate"))
        *out = CO_EVAL_CANDIDATE;
    else
        return co_error_set(CO_EINVAL, "arm must be incumbent, candidate or both, not '%s'", s);
    return 0;
}

int co_eval_judge_placeholder(void *ud, const char *rubric, const char *output, int *pass, double *score,
                              char **reason)
{
    (void)ud, (void)rubric, (void)output, (void)pass, (void)score, (void)reason;
    return co_error_set(CO_ESTATE, "llm-rubric is graded by the eval runner's judge, not outside a run");
}

int64_t co_eval_retry_after_ms(const char *v, int64_t now_ms)
{
    if (!v)
        return -1;
    while (isspace((unsigned char)*v))
        v++;
    if (isdigit((unsigned char)*v)) {
        char *end;
        double s = strtod(v, &end);
        while (isspace((unsigned char)*end))
            end++;
        if (*end || !isfinite(s) || s < 0 || s > 86400.0 * 365)
            return -1;
        return (int64_t)llround(s * 1000.0);
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S", &tm);
    if (!end)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    if (*end && strcasecmp(end, "GMT") && strcasecmp(end, "UTC"))
        return -1;
    int64_t at = (int64_t)timegm(&tm) * 1000;
    return at > now_ms ? at - now_ms : 0;
}

/* ---- the run's state ---------------------------------------------------------- */

typedef struct ev_model {
    const co_model_conf *conf;
    co_endpoint *ep;
    char *url;              /* owned when the API puts the model in the URL (Gemini) */
    co_chat_prices prices;
} ev_model;

typedef struct ev_wl {
    const co_workload_conf *conf;
    ev_model *arm[2];       /* NULL when the arm is not run */
} ev_wl;

typedef struct ev_verdict {
    char *rubric;
    int rc;                 /* 0, or the judge's failure */
    char *err;
    int pass;
    double score;
    char *reason;
} ev_verdict;

typedef struct ev_runner ev_runner;

typedef enum { SLOT_FREE, SLOT_MODEL, SLOT_WAIT, SLOT_JUDGE } slot_state;

typedef struct ev_slot {
    ev_runner *R;
    slot_state state;
    const co_suite_case *c;
    ev_wl *wl;
    int arm, repeat;
    ev_model *m;            /* the model that answers the case (its prices make the cost) */
    ev_model *call_m;       /* the model being called: m, or the judge */
    int judging;            /* the call in flight (or waited for) is the judge's */
    co_buf body;            /* the request as emitted; reused from job to job */
    char key[64];
    int attempts;
    int status;
    co_upstream_xfer *x;
    struct event *timer;
    /* the model's answer */
    co_chat_response *resp;
    double latency_ms;
    int cached;
    /* llm-rubric */
    ev_verdict v[EV_MAX_RUBRICS];
    size_t n_v, judged, answered;
} ev_slot;

typedef struct ev_pending {
    co_eval_result r;
    char *output, *detail, *error;
} ev_pending;

struct ev_runner {
    const co_config *cfg;
    const co_suite *suite;
    co_store *st;
    co_eval_opts o;
    struct event_base *base;
    co_upstream *up;
    struct event *tick;
    co_endpoint *eps;       /* one per configured provider, initialised on use */
    int *ep_ready;
    ev_model *models;       /* one per configured model, resolved on use */
    int *model_ready;
    ev_wl *wls;             /* one per configured workload */
    ev_model *judge;
    ev_slot *slots;
    size_t n_slots, active;
    /* cursor over (case, repeat, arm) */
    size_t ci;
    int rep, arm;
    int exhausted;
    /* the batch */
    ev_pending *batch;
    size_t n_batch, batch_cap;
    int64_t run_id;
    int fatal;              /* first error that ends the run */
    int64_t t0_us, last_progress_us;
    co_eval_progress p;
};

/* ---- setup ------------------------------------------------------------------------ */

static int case_selected(const ev_runner *R, const co_suite_case *c)
{
    return !R->o.workload || !strcmp(R->o.workload, c->workload);
}

static size_t cfg_index(const co_vec *v, size_t size, const void *e)
{
    return (size_t)((const char *)e - (const char *)v->v) / size;
}

static int model_get(ev_runner *R, const char *name, ev_model **out)
{
    const co_model_conf *mc = co_config_model(R->cfg, name);
    if (!mc)
        return co_error_set(CO_ENOENT, "model '%s' is not in the config", name);
    size_t mi = cfg_index(&R->cfg->models, sizeof(co_model_conf), mc);
    ev_model *m = &R->models[mi];
    if (R->model_ready[mi]) {
        *out = m;
        return 0;
    }
    const co_provider_conf *pc = co_config_provider(R->cfg, mc->provider);
    if (!pc)
        return co_error_set(CO_ENOENT, "model '%s': provider '%s' is not in the config", name, mc->provider);
    size_t pi = cfg_index(&R->cfg->providers, sizeof(co_provider_conf), pc);
    if (!R->ep_ready[pi]) {
        int rc = co_endpoint_init(&R->eps[pi], pc);
        if (rc < 0)
            return rc;
        R->ep_ready[pi] = 1;
    }
    m->conf = mc;
    m->ep = &R->eps[pi];
    m->prices.input = mc->price_input;
    m->prices.output = mc->price_output;
    m->prices.cached_input = mc->price_cached;
    if (m->ep->api == CO_API_GEMINI) {
        int rc = co_endpoint_call_url(&m->url, m->ep, mc->upstream, 0);
        if (rc < 0)
            return rc;
    }
    R->model_ready[mi] = 1;
    *out = m;
    return 0;
}

static const char *model_url(const ev_model *m) { return m->url ? m->url : m->ep->url; }

static int assert_set_has_rubric(const co_assert_set *set)
{
    for (size_t i = 0; set && i < co_assert_set_len(set); i++) {
        const char *t = co_assertion_type(co_assert_set_get(set, i));
        if (!strcmp(t, "llm-rubric") || !strcmp(t, "not-llm-rubric"))
            return 1;
    }
    return 0;
}

int co_eval_check(const co_config *cfg, const co_suite *suite, const co_eval_opts *opts, co_diags *diags)
{
    unsigned arms = opts && opts->arms ? opts->arms : CO_EVAL_BOTH;
    const char *only = opts ? opts->workload : NULL;
    size_t errors0 = diags->n, selected = 0;
    char names[1024];
    size_t nl = 0;
    names[0] = '\0';
    for (size_t i = 0; i < cfg->workloads.n && nl < sizeof names - 1; i++) {
        const co_workload_conf *w = (const co_workload_conf *)cfg->workloads.v + i;
        int n = snprintf(names + nl, sizeof names - nl, "%s%s", i ? ", " : "", w->name);
        nl = n < 0 || (size_t)n >= sizeof names - nl ? sizeof names - 1 : nl + (size_t)n;
    }
    if (only && !co_config_workload(cfg, only))
        co_diags_add(diags, cfg->path, 0, 0, "--workload '%s' is not a workload of the config (workloads: %s)",
                     only, names);
    int rubric_reported = 0;
    /* a workload without a candidate is reported once, at its first case */
    unsigned char *told = calloc(cfg->workloads.n + 1, 1);
    if (!told)
        return co_error_set(CO_ENOMEM, "out of memory");
    for (size_t i = 0; i < co_suite_len(suite); i++) {
        const co_suite_case *c = co_suite_get(suite, i);
        const co_workload_conf *w = co_config_workload(cfg, c->workload);
        if (!w) {
            co_diags_add(diags, c->file, c->line, c->col,
                         "case '%s': workload '%s' is not in %s (workloads: %s)", c->id, c->workload, cfg->path,
                         names);
            continue;
        }
        if (only && strcmp(only, c->workload))
            continue;
        selected++;
        size_t wi = cfg_index(&cfg->workloads, sizeof(co_workload_conf), w);
        if ((arms & CO_EVAL_CANDIDATE) && !w->candidate && !told[wi]) {
            told[wi] = 1;
            co_diags_add(diags, c->file, c->line, c->col,
                         "case '%s': workload '%s' has no candidate model to evaluate (use --arm incumbent)",
                         c->id, c->workload);
        }
        if (!cfg->eval.judge && !rubric_reported && assert_set_has_rubric(c->asserts)) {
            co_diags_add(diags, c->file, c->line, c->col,
                         "case '%s': llm-rubric needs a judge model: set eval.judge in %s", c->id, cfg->path);
            rubric_reported = 1;
        }
    }
    free(told);
    if (diags->n == errors0 && selected == 0)
        co_diags_add(diags, cfg->path, 0, 0, "no case of the suite belongs to workload '%s'", only ? only : "?");
    return diags->n > errors0 ? co_error_set(CO_ECONFIG, "the eval cannot start (%zu problem(s))",
                                              diags->n - errors0)
                              : 0;
}

/* Served requests the store recorded for a workload over the last 30 days,
 * scaled to 30 days by the span the records cover (at least one day). -1
 * when nothing is recorded. */
static int64_t monthly_requests(co_store *st, const char *workload, int64_t now)
{
    co_window_summary s;
    co_window_query q = {.workload = workload, .role = "served", .since_ms = now - 30 * EV_DAY_MS};
    if (co_store_window_summary(st, &q, &s) < 0 || s.count <= 0)
        return -1;
    /* the oldest record in the window, to a minute, by bisection on counts */
    int64_t lo = q.since_ms, hi = now;
    while (hi - lo > 60000) {
        int64_t mid = lo + (hi - lo) / 2;
        co_window_summary m;
        co_window_query qm = q;
        qm.since_ms = mid;
        if (co_store_window_summary(st, &qm, &m) < 0)
            break;
        if (m.count == s.count)
            lo = mid;
        else
            hi = mid;
    }
    double span = (double)(now - lo);
    if (span < (double)EV_DAY_MS)
        span = (double)EV_DAY_MS;
    return (int64_t)llround((double)s.count * (30.0 * (double)EV_DAY_MS) / span);
}

static json_t *model_json(const ev_model *m)
{
    if (!m)
        return json_null();
    return json_pack("{s:s, s:s, s:f, s:f, s:f}", "model", m->conf->name, "upstream", m->conf->upstream,
                     "price_input", m->conf->price_input, "price_output", m->conf->price_output, "price_cached",
                     m->conf->price_cached);
}

static char *run_config_json(ev_runner *R, int64_t started_ms)
{
    json_t *root = json_object(), *wls = json_object(), *cases = json_object(), *arms = json_array();
    int err = !root || !wls || !cases || !arms;
    for (int a = 0; a < 2; a++)
        if (R->o.arms & (1u << a))
            err |= json_array_append_new(arms, json_string(arm_names[a]));
    for (size_t i = 0; i < R->cfg->workloads.n; i++) {
        ev_wl *w = &R->wls[i];
        if (!w->conf)
            continue;
        const co_gate_conf *g = &w->conf->gate;
        int64_t mr = monthly_requests(R->st, w->conf->name, started_ms);
        json_t *wj = json_pack("{s:o, s:o, s:{s:f, s:f, s:f, s:f}, s:o}", "incumbent", model_json(w->arm[0]),
                               "candidate", model_json(w->arm[1]), "gate", "pass_rate_drop_max",
                               g->pass_rate_drop_max, "critical_pass_rate_drop_max",
                               g->critical_pass_rate_drop_max, "cost_increase_max", g->cost_increase_max,
                               "latency_p95_ratio_max", g->latency_p95_ratio_max, "monthly_requests",
                               mr >= 0 ? json_integer(mr) : json_null());
        err |= !wj || json_object_set_new(wls, w->conf->name, wj);
    }
    for (size_t i = 0; i < co_suite_len(R->suite); i++) {
        const co_suite_case *c = co_suite_get(R->suite, i);
        if (!case_selected(R, c))
            continue;
        json_t *tags = json_array();
        for (size_t t = 0; tags && t < c->n_tags; t++)
            json_array_append_new(tags, json_string(c->tags[t]));
        json_t *cj = json_pack("{s:s, s:b, s:o}", "workload", c->workload, "critical", c->critical, "tags",
                               tags ? tags : json_array());
        err |= !cj || json_object_set_new(cases, c->id, cj);
    }
    const char *fmt = co_suite_len(R->suite) ? co_suite_format_name(co_suite_get(R->suite, 0)->format) : "native";
    err |= json_object_set_new(root, "version", json_integer(1));
    err |= json_object_set_new(root, "suite", json_string(R->o.suite_path));
    err |= json_object_set_new(root, "suite_format", json_string(fmt));
    err |= json_object_set_new(root, "arms", arms);
    err |= json_object_set_new(root, "repeat", json_integer(R->o.repeat));
    err |= json_object_set_new(root, "concurrency", json_integer(R->o.concurrency));
    err |= json_object_set_new(root, "cache", json_boolean(!R->o.no_cache));
    err |= json_object_set_new(root, "started_ms", json_integer(started_ms));
    err |= json_object_set_new(root, "judge", R->judge ? json_string(R->judge->conf->name) : json_null());
    err |= json_object_set_new(root, "workloads", wls);
    err |= json_object_set_new(root, "cases", cases);
    char *s = err ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

/* ---- results and the batch --------------------------------------------------------- */

static void pending_clear(ev_pending *p)
{
    free(p->output);
    free(p->detail);
    free(p->error);
    memset(p, 0, sizeof *p);
}

static int flush(ev_runner *R)
{
    if (!R->n_batch)
        return 0;
    co_eval_result *rs = malloc(R->n_batch * sizeof *rs);
    int rc;
    if (!rs) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < R->n_batch; i++)
            rs[i] = R->batch[i].r;
        rc = co_store_eval_results_add(R->st, R->run_id, rs, R->n_batch);
    }
    free(rs);
    for (size_t i = 0; i < R->n_batch; i++)
        pending_clear(&R->batch[i]);
    R->n_batch = 0;
    return rc;
}

static void slot_reset(ev_slot *s);

/* Ends the run early: calls in flight are cancelled (their on_done frees the
 * slot), waits before a retry are dropped at once. */
static void fail_run(ev_runner *R, int rc)
{
    if (!R->fatal)
        R->fatal = rc < 0 ? rc : CO_EIO;
    for (size_t i = 0; i < R->n_slots; i++) {
        ev_slot *s = &R->slots[i];
        if (s->x) {
            co_upstream_cancel(s->x);
        } else if (s->state == SLOT_WAIT) {
            evtimer_del(s->timer);
            slot_reset(s);
            R->active--;
        }
    }
}

static void progress(ev_runner *R, int force)
{
    if (!R->o.progress)
        return;
    int64_t now = co_mono_us();
    if (!force && now - R->last_progress_us < R->o.progress_interval_ms * 1000)
        return;
    R->last_progress_us = now;
    R->p.elapsed_ms = (now - R->t0_us) / 1000;
    R->o.progress(R->o.progress_ud, &R->p);
}

static json_t *tool_calls_json(const co_chat_response *r)
{
    if (!r || !r->n_tool_calls)
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_tool_calls; i++) {
        const co_chat_tool_call *t = &r->tool_calls[i];
        json_array_append_new(a, json_pack("{s:s?, s:s?, s:s?}", "id", t->id, "name", t->name, "arguments",
                                           t->arguments));
    }
    return a;
}

static void slot_reset(ev_slot *s)
{
    co_chat_response_free(s->resp);
    s->resp = NULL;
    for (size_t i = 0; i < s->n_v; i++) {
        free(s->v[i].rubric);
        free(s->v[i].err);
        free(s->v[i].reason);
    }
    memset(s->v, 0, sizeof s->v);
    s->n_v = s->judged = s->answered = 0;
    s->x = NULL;
    s->c = NULL;
    s->m = s->call_m = NULL;
    s->judging = 0;
    s->attempts = 0;
    s->status = 0;
    s->cached = 0;
    s->latency_ms = 0;
    s->state = SLOT_FREE;
}

/* Stores the slot's result (error: the call failed) and frees the slot. */
static void finish_result(ev_slot *s, const co_assert_case_result *ar, const char *error)
{
    ev_runner *R = s->R;
    const co_chat_response *resp = error ? NULL : s->resp;
    ev_pending *p = &R->batch[R->n_batch];
    memset(p, 0, sizeof *p);
    json_t *d = json_object(), *asserts = json_array();
    int err = !d || !asserts;
    for (size_t i = 0; ar && !err && i < ar->n; i++) {
        const co_assert_result *a = &ar->v[i];
        const co_assertion *def = co_assert_set_get(s->c->asserts, i);
        json_t *aj = json_pack("{s:s, s:b, s:f, s:f, s:s, s:b}", "type", co_assertion_type(def), "pass", a->pass,
                               "score", a->score, "weight", a->weight, "reason", a->reason ? a->reason : "",
                               "error", a->error);
        err |= !aj || json_array_append_new(asserts, aj);
    }
    json_t *tc = tool_calls_json(resp);
    err |= json_object_set_new(d, "asserts", asserts);
    err |= json_object_set_new(d, "finish_reason",
                               resp ? json_string(co_chat_finish_name(resp->finish)) : json_null());
    err |= json_object_set_new(d, "tool_calls", tc ? tc : json_null());
    err |= json_object_set_new(d, "cached", json_boolean(s->cached));
    err |= json_object_set_new(d, "attempts", json_integer(s->attempts));
    err |= json_object_set_new(d, "status", s->status ? json_integer(s->status) : json_null());
    err |= json_object_set_new(d, "ttft_ms", json_null());
    p->detail = err ? NULL : json_dumps(d, JSON_COMPACT);
    json_decref(d);
    p->output = resp && resp->text ? strdup(resp->text) : NULL;
    p->error = error ? strdup(error) : NULL;
    if (!p->detail || (resp && resp->text && !p->output) || (error && !p->error)) {
        pending_clear(p);
        fail_run(R, co_error_set(CO_ENOMEM, "out of memory"));
        slot_reset(s);
        R->active--;
        return;
    }
    int passed = !error && ar && ar->pass;
    p->r = (co_eval_result){
        .case_id = s->c->id,
        .workload = s->c->workload,
        .arm = arm_names[s->arm],
        .repeat = s->repeat,
        .passed = passed,
        .score = error || !ar ? 0 : ar->score,
        .latency_ms = error ? 0 : s->latency_ms,
        .cost_usd = resp && resp->usage.known ? co_chat_cost_usd(&resp->usage, &s->m->prices) : 0,
        .tokens_in = resp ? resp->usage.input_tokens : 0,
        .tokens_out = resp ? resp->usage.output_tokens : 0,
        .output_text = p->output,
        .detail_json = p->detail,
        .error = p->error,
    };
    if (error)
        p->r.latency_ms = s->latency_ms;
    R->n_batch++;
    R->p.done++;
    R->p.done_arm[s->arm]++;
    R->p.passed_arm[s->arm] += (size_t)passed;
    R->p.errors += error != NULL;
    slot_reset(s);
    R->active--;
    if (R->n_batch >= R->batch_cap) {
        int rc = flush(R);
        if (rc < 0)
            fail_run(R, rc);
    }
    progress(R, 0);
}

/* ---- judging ------------------------------------------------------------------------- */

/* First pass: records the rubrics (and the output) the set asks about. */
static int judge_collect(void *ud, const char *rubric, const char *output, int *pass, double *score, char **reason)
{
    ev_slot *s = ud;
    (void)output, (void)pass, (void)score, (void)reason;
    if (s->n_v >= EV_MAX_RUBRICS)
        return co_error_set(CO_ETOOBIG, "more than %d llm-rubric assertions in one case", EV_MAX_RUBRICS);
    if (!(s->v[s->n_v].rubric = strdup(rubric ? rubric : "")))
        return co_error_set(CO_ENOMEM, "out of memory");
    s->n_v++;
    return co_error_set(CO_ESTATE, "collecting");
}

/* Second pass: answers from the verdicts fetched, in the same order. */
static int judge_answer(void *ud, const char *rubric, const char *output, int *pass, double *score, char **reason)
{
    ev_slot *s = ud;
    (void)output;
    if (s->answered >= s->n_v || strcmp(s->v[s->answered].rubric, rubric ? rubric : ""))
        return co_error_set(CO_ESTATE, "the judge was asked about a rubric it did not grade");
    ev_verdict *v = &s->v[s->answered++];
    if (v->rc)
        return co_error_set(v->rc, "%s", v->err ? v->err : "the judge failed");
    *pass = v->pass;
    *score = v->score;
    *reason = v->reason;
    v->reason = NULL;
    return 0;
}

static void assert_input(ev_slot *s, co_assert_input *in, json_t **tc)
{
    memset(in, 0, sizeof *in);
    const co_chat_response *r = s->resp;
    in->output = r->text ? r->text : "";
    in->output_len = strlen(in->output);
    *tc = tool_calls_json(r);
    in->tool_calls = *tc;
    in->has_latency = 1;
    in->latency_ms = s->latency_ms;
    in->has_cost = r->usage.known;
    in->cost_usd = r->usage.known ? co_chat_cost_usd(&r->usage, &s->m->prices) : 0;
}

static void judge_next(ev_slot *s);

/* Grades the answer once every verdict is in, and stores the result. */
static void grade(ev_slot *s)
{
    co_assert_input in;
    json_t *tc = NULL;
    co_assert_case_result ar;
    memset(&ar, 0, sizeof ar);
    assert_input(s, &in, &tc);
    in.judge = judge_answer;
    in.judge_ud = s;
    s->answered = 0;
    int rc = co_assert_set_eval(s->c->asserts, &in, &ar);
    json_decref(tc);
    if (rc < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "assertions: %s", co_error_last());
        co_assert_case_result_free(&ar);
        finish_result(s, NULL, msg);
        return;
    }
    finish_result(s, &ar, NULL);
    co_assert_case_result_free(&ar);
}

/* The model answered: grade it, calling the judge first when a rubric asks. */
static void answered(ev_slot *s)
{
    if (!s->c->asserts || !co_assert_set_len(s->c->asserts) || !assert_set_has_rubric(s->c->asserts)) {
        grade(s);
        return;
    }
    co_assert_input in;
    json_t *tc = NULL;
    co_assert_case_result ar;
    memset(&ar, 0, sizeof ar);
    assert_input(s, &in, &tc);
    in.judge = judge_collect;
    in.judge_ud = s;
    co_assert_set_eval(s->c->asserts, &in, &ar);
    co_assert_case_result_free(&ar);
    json_decref(tc);
    s->judged = 0;
    judge_next(s);
}

/* ---- calls ------------------------------------------------------------------------------ */

static void pump(ev_runner *R);
static int start_call(ev_slot *s);

static void cache_key(ev_slot *s, const char *salt)
{
    uint64_t a = co_hash64(s->body.p, s->body.len, 0x63757430766572ULL);
    uint64_t b = co_hash64(s->body.p, s->body.len, 0x6576616c63616368ULL);
    if (salt && *salt)
        snprintf(s->key, sizeof s->key, "%016llx%016llx:%s", (unsigned long long)a, (unsigned long long)b, salt);
    else
        snprintf(s->key, sizeof s->key, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

/* A cached answer of the model being called, stored as
 * {"status":200,"body":"...","latency_ms":N}: 1 with *out (the caller's)
 * and *latency_ms set, 0 when there is none usable. */
static int cache_lookup(ev_slot *s, co_chat_response **out, double *latency_ms)
{
    ev_runner *R = s->R;
    *out = NULL;
    if (R->o.no_cache)
        return 0;
    char *text = NULL;
    if (co_store_cache_get(R->st, s->call_m->conf->name, s->key, &text) < 0) {
        free(text);
        return 0;
    }
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    const char *body = json_string_value(json_object_get(j, "body"));
    int ok = body && co_chat_response_parse(out, s->call_m->ep->api, body, strlen(body)) == 0;
    if (ok) {
        *latency_ms = json_number_value(json_object_get(j, "latency_ms"));
        R->p.cache_hits++;
    }
    json_decref(j);
    return ok;
}

static void cache_store(ev_slot *s, const char *body, size_t len, double latency_ms)
{
    ev_runner *R = s->R;
    if (R->o.no_cache)
        return;
    json_t *j = json_pack("{s:i, s:s%, s:f}", "status", 200, "body", body, len, "latency_ms", latency_ms);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    /* a cache that cannot be written costs a later call, never this result */
    if (text)
        co_store_cache_put(R->st, s->call_m->conf->name, s->key, text);
    free(text);
}

static int retryable(int status) { return status == 429 || status == 503 || status == 529; }

static int64_t retry_wait_ms(ev_slot *s, const co_upstream_headers *h)
{
    ev_runner *R = s->R;
    int64_t ms = -1;
    const char *v = co_upstream_header_get(h, "retry-after-ms");
    if (v) {
        char *end;
        double d = strtod(v, &end);
        if (end != v && isfinite(d) && d >= 0)
            ms = (int64_t)llround(d);
    }
    if (ms < 0)
        ms = co_eval_retry_after_ms(co_upstream_header_get(h, "retry-after"), co_now_ms());
    if (ms < 0) {
        /* no advice: exponential backoff with jitter */
        int64_t b = R->o.backoff_ms << (s->attempts > 10 ? 10 : s->attempts - 1);
        if (b > EV_BACKOFF_CAP_MS)
            b = EV_BACKOFF_CAP_MS;
        uint64_t h64 = co_hash64(s->key, strlen(s->key), (uint64_t)s->attempts);
        ms = b / 2 + (int64_t)(h64 % (uint64_t)(b / 2 + 1));
    }
    if (ms > R->o.retry_max_wait_ms)
        ms = R->o.retry_max_wait_ms;
    return ms;
}

static void on_timer(evutil_socket_t fd, short what, void *ud)
{
    ev_slot *s = ud;
    (void)fd, (void)what;
    int judge = s->judging;
    s->state = judge ? SLOT_JUDGE : SLOT_MODEL;
    if (s->R->fatal) {
        slot_reset(s);
        s->R->active--;
        pump(s->R);
        return;
    }
    int rc = start_call(s);
    if (rc < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "connect: %s", co_error_last());
        if (judge) {
            /* the verdict is an error; the rest of the case goes on */
            ev_verdict *v = &s->v[s->judged++];
            v->rc = CO_EUPSTREAM;
            v->err = strdup(msg);
            judge_next(s);
        } else {
            finish_result(s, NULL, msg);
        }
    }
    pump(s->R);
}

static void model_done(ev_slot *s, const co_upstream_result *r);
static void judge_done(ev_slot *s, const co_upstream_result *r);

static void on_done(co_upstream_xfer *x, void *ud, const co_upstream_result *r)
{
    ev_slot *s = ud;
    (void)x;
    s->x = NULL;
    ev_runner *R = s->R;
    if (R->fatal) {
        slot_reset(s);
        R->active--;
    } else if (s->state == SLOT_JUDGE) {
        judge_done(s, r);
    } else {
        model_done(s, r);
    }
    pump(R);
}

static int start_call(ev_slot *s)
{
    ev_runner *R = s->R;
    co_upstream_req q = {
        .method = CO_UPSTREAM_POST,
        .url = model_url(s->call_m),
        .headers = s->call_m->ep->hdrs,
        .body = s->body.p,
        .body_len = s->body.len,
        .borrow_body = 1,
        .max_response = (size_t)R->cfg->limits.max_upstream_body,
    };
    co_upstream_req_timeouts(&q, s->call_m->ep->conf);
    co_upstream_cb cb = {.on_done = on_done};
    s->attempts++;
    R->p.calls++;
    return co_upstream_start(R->up, &q, &cb, s, &s->x);
}

/* Non-2xx or transport failure: "http 500: message", "timeout_total: ...". */
static void describe_failure(char *out, size_t n, const ev_slot *s, const co_upstream_result *r)
{
    if (r->err != CO_UPSTREAM_OK) {
        snprintf(out, n, "%s: %s", co_upstream_err_name(r->err), r->error && *r->error ? r->error : "failed");
        return;
    }
    co_chat_error e;
    co_chat_error_parse(&e, s->call_m->ep->api, r->status, r->body ? r->body : "", r->body_len);
    snprintf(out, n, "http %d: %s", r->status, e.message[0] ? e.message : "(no message)");
}

/* 1 when the call is retried later (the slot waits), 0 otherwise. */
static int maybe_retry(ev_slot *s, const co_upstream_result *r)
{
    ev_runner *R = s->R;
    if (r->err != CO_UPSTREAM_OK || !retryable(r->status) || s->attempts > R->o.retries)
        return 0;
    int64_t ms = retry_wait_ms(s, r->headers);
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)((ms % 1000) * 1000)};
    if (evtimer_add(s->timer, &tv) < 0)
        return 0;
    R->p.retries++;
    R->p.retry_wait_ms += ms;
    s->state = SLOT_WAIT;
    return 1;
}

static void model_done(ev_slot *s, const co_upstream_result *r)
{
    char msg[1400];
    s->status = r->status;
    s->latency_ms = r->total_us >= 0 ? (double)r->total_us / 1000.0 : 0;
    if (maybe_retry(s, r))
        return;
    if (r->err != CO_UPSTREAM_OK || r->status < 200 || r->status > 299) {
        describe_failure(msg, sizeof msg, s, r);
        finish_result(s, NULL, msg);
        return;
    }
    co_chat_response *resp = NULL;
    if (co_chat_response_parse(&resp, s->m->ep->api, r->body ? r->body : "", r->body_len) < 0) {
        snprintf(msg, sizeof msg, "parse: %s", co_error_last());
        finish_result(s, NULL, msg);
        return;
    }
    s->resp = resp;
    cache_store(s, r->body, r->body_len, s->latency_ms);
    answered(s);
}

/* The judge's prompt: the rubric and the output, and the verdict's shape. */
static int judge_request(ev_slot *s, const ev_verdict *v)
{
    ev_runner *R = s->R;
    co_chat_request *q = NULL;
    co_chat_message *m = NULL;
    co_buf u;
    co_buf_init(&u, EV_BODY_MAX);
    const char *out = s->resp->text ? s->resp->text : "";
    int rc = co_chat_request_new(&q);
    if (!rc)
        rc = co_chat_request_set_str(&q->system,
                                     "You grade an AI model's output against a rubric. Answer with one JSON object "
                                     "and nothing else: {\"reason\": \"<one sentence>\", \"pass\": true or false, "
                                     "\"score\": <a number from 0 to 1>}.");
    if (!rc)
        rc = co_buf_printf(&u, "<rubric>\n%s\n</rubric>\n<output>\n%s\n</output>", v->rubric, out);
    if (!rc)
        rc = co_chat_request_add_message(q, CO_CHAT_USER, &m);
    if (!rc)
        rc = co_chat_message_add_text(m, u.p, u.len);
    if (!rc) {
        q->has_temperature = 1;
        q->temperature = 0;
        q->max_tokens = 512;
        rc = co_chat_request_set_str(&q->model, R->judge->conf->upstream);
    }
    co_buf_reset(&s->body);
    if (!rc)
        rc = co_chat_request_emit(&s->body, q, R->judge->ep->api, NULL);
    co_chat_request_free(q);
    co_buf_free(&u);
    return rc;
}

static void verdict_parse(ev_verdict *v, const co_chat_response *r)
{
    const char *t = r && r->text ? r->text : "";
    const char *a = strchr(t, '{'), *b = strrchr(t, '}');
    json_t *j = a && b && b > a ? json_loadb(a, (size_t)(b - a + 1), 0, NULL) : NULL;
    json_t *pass = json_object_get(j, "pass"), *score = json_object_get(j, "score");
    if (!json_is_boolean(pass) && !json_is_number(score)) {
        v->rc = CO_EPARSE;
        if (asprintf(&v->err, "the judge's reply is not a verdict: %.200s", t) < 0)
            v->err = NULL;
    } else {
        v->score = json_is_number(score) ? json_number_value(score) : json_is_true(pass);
        v->pass = json_is_boolean(pass) ? json_is_true(pass) : v->score >= 0.5;
        const char *reason = json_string_value(json_object_get(j, "reason"));
        v->reason = strdup(reason ? reason : "");
    }
    json_decref(j);
}

/* Asks the judge about the next rubric, or grades when all are in. */
static void judge_next(ev_slot *s)
{
    ev_runner *R = s->R;
    while (s->judged < s->n_v) {
        ev_verdict *v = &s->v[s->judged];
        s->call_m = R->judge;
        s->judging = 1;
        s->attempts = 0;
        int rc = judge_request(s, v);
        if (!rc) {
            co_chat_response *jr = NULL;
            double lat = 0;
            cache_key(s, NULL);
            if (cache_lookup(s, &jr, &lat)) {
                verdict_parse(v, jr);
                co_chat_response_free(jr);
                s->judged++;
                continue;
            }
            s->state = SLOT_JUDGE;
            if (!(rc = start_call(s)))
                return;
        }
        v->rc = rc;
        if (asprintf(&v->err, "judge request: %s", co_error_last()) < 0)
            v->err = NULL;
        s->judged++;
    }
    s->call_m = s->m;
    s->judging = 0;
    s->state = SLOT_MODEL;
    grade(s);
}

static void judge_done(ev_slot *s, const co_upstream_result *r)
{
    ev_runner *R = s->R;
    ev_verdict *v = &s->v[s->judged];
    if (maybe_retry(s, r))
        return;
    co_chat_response *jr = NULL;
    if (r->err != CO_UPSTREAM_OK || r->status < 200 || r->status > 299) {
        char msg[1400];
        describe_failure(msg, sizeof msg, s, r);
        v->rc = CO_EUPSTREAM;
        v->err = strdup(msg);
    } else if (co_chat_response_parse(&jr, R->judge->ep->api, r->body ? r->body : "", r->body_len) < 0) {
        v->rc = CO_EPARSE;
        if (asprintf(&v->err, "the judge's reply: %s", co_error_last()) < 0)
            v->err = NULL;
    } else {
        cache_store(s, r->body, r->body_len, r->total_us >= 0 ? (double)r->total_us / 1000.0 : 0);
        verdict_parse(v, jr);
    }
    co_chat_response_free(jr);
    s->judged++;
    judge_next(s);
}

/* ---- the cursor and the pump --------------------------------------------------------------- */

/* The next (case, repeat, arm) to run, or 0 when the suite is done. */
static int next_job(ev_runner *R, const co_suite_case **c, int *rep, int *arm)
{
    size_t n = co_suite_len(R->suite);
    while (R->ci < n) {
        const co_suite_case *cc = co_suite_get(R->suite, R->ci);
        if (!case_selected(R, cc)) {
            R->ci++;
            continue;
        }
        int a = R->arm, r = R->rep;
        /* advance: arm innermost (both arms of a case run together), then repeat */
        if (++R->arm > 1) {
            R->arm = 0;
            if (++R->rep >= R->o.repeat) {
                R->rep = 0;
                R->ci++;
            }
        }
        if (!(R->o.arms & (1u << a)))
            continue;
        *c = cc;
        *rep = r;
        *arm = a;
        return 1;
    }
    return 0;
}

/* Begins one job on a free slot: emits the request, answers from the cache
 * or starts the call. */
static void job_begin(ev_slot *s, const co_suite_case *c, int rep, int arm)
{
    ev_runner *R = s->R;
    const co_workload_conf *wc = co_config_workload(R->cfg, c->workload);
    ev_wl *wl = &R->wls[cfg_index(&R->cfg->workloads, sizeof(co_workload_conf), wc)];
    s->c = c;
    s->wl = wl;
    s->arm = arm;
    s->repeat = rep;
    s->m = s->call_m = wl->arm[arm];
    s->state = SLOT_MODEL;
    R->active++;
    co_chat_request *req = (co_chat_request *)c->request;
    char *model = req->model;
    req->model = s->m->conf->upstream;
    co_chat_emit_opts eo = {.openai_legacy_max_tokens = s->m->ep->conf->kind == CO_PROVIDER_OPENAI_COMPAT};
    co_buf_reset(&s->body);
    int rc = co_chat_request_emit(&s->body, req, s->m->ep->api, &eo);
    req->model = model;
    char msg[1400];
    if (rc < 0) {
        snprintf(msg, sizeof msg, "request: %s", co_error_last());
        finish_result(s, NULL, msg);
        return;
    }
    char salt[16] = "";
    if (rep > 0)
        snprintf(salt, sizeof salt, "r%d", rep);
    cache_key(s, salt);
    if (cache_lookup(s, &s->resp, &s->latency_ms)) {
        s->status = 200;
        s->cached = 1;
        answered(s);
        return;
    }
    if ((rc = start_call(s)) < 0) {
        snprintf(msg, sizeof msg, "connect: %s", co_error_last());
        finish_result(s, NULL, msg);
    }
}

static void pump(ev_runner *R)
{
    if (R->fatal || R->exhausted) {
        if (!R->active)
            event_base_loopbreak(R->base);
        return;
    }
    for (size_t i = 0; i < R->n_slots && !R->fatal; i++) {
        ev_slot *s = &R->slots[i];
        /* a job may finish at once (cache hit): keep filling this slot */
        while (s->state == SLOT_FREE && !R->fatal) {
            const co_suite_case *c;
            int rep, arm;
            if (!next_job(R, &c, &rep, &arm)) {
                R->exhausted = 1;
                break;
            }
            job_begin(s, c, rep, arm);
        }
        if (R->exhausted)
            break;
    }
    if ((R->fatal || R->exhausted) && !R->active)
        event_base_loopbreak(R->base);
}

static void on_tick(evutil_socket_t fd, short what, void *ud)
{
    ev_runner *R = ud;
    (void)fd, (void)what;
    if (R->o.cancel && *R->o.cancel && !R->fatal)
        fail_run(R, co_error_set(CO_ESTATE, "the eval was interrupted"));
    progress(R, 0);
    if ((R->fatal || R->exhausted) && !R->active)
        event_base_loopbreak(R->base);
}

/* ---- the run --------------------------------------------------------------------------------- */

static void runner_free(ev_runner *R)
{
    if (R->slots)
        for (size_t i = 0; i < R->n_slots; i++) {
            ev_slot *s = &R->slots[i];
            if (s->timer)
                event_free(s->timer);
            slot_reset(s);
            co_buf_free(&s->body);
        }
    co_upstream_free(R->up);
    if (R->tick)
        event_free(R->tick);
    if (R->base)
        event_base_free(R->base);
    for (size_t i = 0; R->eps && i < R->cfg->providers.n; i++)
        if (R->ep_ready[i])
            co_endpoint_clear(&R->eps[i]);
    for (size_t i = 0; R->models && i < R->cfg->models.n; i++)
        free(R->models[i].url);
    for (size_t i = 0; R->batch && i < R->n_batch; i++)
        pending_clear(&R->batch[i]);
    free(R->batch);
    free(R->slots);
    free(R->eps);
    free(R->ep_ready);
    free(R->models);
    free(R->model_ready);
    free(R->wls);
}

static int resolve(ev_runner *R)
{
    int rc = 0;
    for (size_t i = 0; i < co_suite_len(R->suite) && !rc; i++) {
        const co_suite_case *c = co_suite_get(R->suite, i);
        if (!case_selected(R, c))
            continue;
        const co_workload_conf *wc = co_config_workload(R->cfg, c->workload);
        ev_wl *w = &R->wls[cfg_index(&R->cfg->workloads, sizeof(co_workload_conf), wc)];
        if (w->conf)
            continue;
        w->conf = wc;
        if ((R->o.arms & CO_EVAL_INCUMBENT) && (rc = model_get(R, wc->incumbent, &w->arm[0])) < 0)
            break;
        if ((R->o.arms & CO_EVAL_CANDIDATE) && (rc = model_get(R, wc->candidate, &w->arm[1])) < 0)
            break;
    }
    if (!rc && R->cfg->eval.judge)
        rc = model_get(R, R->cfg->eval.judge, &R->judge);
    return rc;
}

int co_eval_run_suite(co_eval_summary *out, const co_config *cfg, const co_suite *suite, co_store *st,
                const co_eval_opts *opts, co_diags *diags)
{
    ev_runner R;
    memset(&R, 0, sizeof R);
    memset(out, 0, sizeof *out);
    char *cj = NULL, *sj = NULL;
    int rc = 0;
    if (!cfg || !suite || !st || !opts || !opts->suite_path || !diags)
        return co_error_set(CO_EINVAL, "co_eval_run_suite: config, suite, store, options with suite_path and diags are "
                                       "required");
    R.cfg = cfg;
    R.suite = suite;
    R.st = st;
    R.o = *opts;
    if (!R.o.arms)
        R.o.arms = CO_EVAL_BOTH;
    if (R.o.concurrency <= 0)
        R.o.concurrency = (int)(cfg->eval.concurrency > 0 ? cfg->eval.concurrency : 16);
    if (R.o.repeat <= 0)
        R.o.repeat = 1;
    if (R.o.retries < 0)
        R.o.retries = (int)cfg->eval.retries;
    if (R.o.retry_max_wait_ms <= 0)
        R.o.retry_max_wait_ms = cfg->eval.retry_max_wait_ms > 0 ? cfg->eval.retry_max_wait_ms : 60000;
    if (R.o.backoff_ms <= 0)
        R.o.backoff_ms = 500;
    if (!R.o.batch)
        R.o.batch = 64;
    if (R.o.progress_interval_ms <= 0)
        R.o.progress_interval_ms = 200;
    if ((rc = co_eval_check(cfg, suite, &R.o, diags)) < 0)
        return rc;

    size_t np = cfg->providers.n, nm = cfg->models.n, nw = cfg->workloads.n;
    R.eps = calloc(np ? np : 1, sizeof *R.eps);
    R.ep_ready = calloc(np ? np : 1, sizeof *R.ep_ready);
    R.models = calloc(nm ? nm : 1, sizeof *R.models);
    R.model_ready = calloc(nm ? nm : 1, sizeof *R.model_ready);
    R.wls = calloc(nw ? nw : 1, sizeof *R.wls);
    R.n_slots = (size_t)R.o.concurrency;
    R.slots = calloc(R.n_slots, sizeof *R.slots);
    R.batch_cap = R.o.batch;
    R.batch = calloc(R.batch_cap, sizeof *R.batch);
    if (!R.eps || !R.ep_ready || !R.models || !R.model_ready || !R.wls || !R.slots || !R.batch) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = resolve(&R)) < 0)
        goto done;
    for (size_t i = 0; i < co_suite_len(suite); i++)
        if (case_selected(&R, co_suite_get(suite, i)))
            R.p.total += (size_t)R.o.repeat * ((R.o.arms & CO_EVAL_INCUMBENT ? 1u : 0u) +
                                               (R.o.arms & CO_EVAL_CANDIDATE ? 1u : 0u));

    struct event_config *ec = event_config_new();
    if (ec)
        event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    R.base = ec ? event_base_new_with_config(ec) : NULL;
    if (ec)
        event_config_free(ec);
    if (!R.base) {
        rc = co_error_set(CO_ENOMEM, "cannot create an event loop");
        goto done;
    }
    co_upstream_opts uo;
    memset(&uo, 0, sizeof uo);
    for (size_t i = 0; i < np; i++) {
        const co_provider_conf *p = (const co_provider_conf *)cfg->providers.v + i;
        if (R.ep_ready[i] && p->max_connections > uo.max_host_connections)
            uo.max_host_connections = (long)p->max_connections;
    }
    uo.max_response = (size_t)cfg->limits.max_upstream_body;
    if ((rc = co_upstream_new(&R.up, R.base, &uo)) < 0)
        goto done;
    for (size_t i = 0; i < R.n_slots; i++) {
        ev_slot *s = &R.slots[i];
        s->R = &R;
        co_buf_init(&s->body, EV_BODY_MAX);
        if (!(s->timer = evtimer_new(R.base, on_timer, s))) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
    }
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
    if (!(R.tick = event_new(R.base, -1, EV_PERSIST, on_tick, &R)) || event_add(R.tick, &tv) < 0) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }

    int64_t started = co_now_ms();
    if (!(cj = run_config_json(&R, started))) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    co_eval_run run = {.started_ms = started, .suite = R.o.suite_path, .config_json = cj, .status = "running"};
    if ((rc = co_store_eval_run_begin(st, &run)) < 0)
        goto done;
    R.run_id = out->run_id = run.id;
    R.p.run_id = run.id;
    R.t0_us = co_mono_us();
    progress(&R, 1);

    pump(&R);
    if (R.active || (!R.exhausted && !R.fatal))
        event_base_dispatch(R.base);
    /* what was judged is kept, also when the run ends early (not after a store failure) */
    if (R.fatal != CO_ESTORE && (rc = flush(&R)) < 0 && !R.fatal)
        R.fatal = rc;
    rc = R.fatal;
    R.p.elapsed_ms = (co_mono_us() - R.t0_us) / 1000;
    R.p.final = 1;
    json_t *sum = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "calls", (json_int_t)R.p.calls, "cache_hits",
                            (json_int_t)R.p.cache_hits, "retries", (json_int_t)R.p.retries, "errors",
                            (json_int_t)R.p.errors, "results", (json_int_t)R.p.done, "retry_wait_ms",
                            (json_int_t)R.p.retry_wait_ms, "wall_ms", (json_int_t)R.p.elapsed_ms);
    sj = sum ? json_dumps(sum, JSON_COMPACT) : NULL;
    json_decref(sum);
    {
        /* keep the first error's message for the caller */
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", rc ? co_error_last() : "");
        int frc = co_store_eval_run_finish(st, R.run_id, rc ? "failed" : "done", sj);
        if (!rc && frc < 0)
            rc = frc;
        else if (rc)
            co_error_set(rc, "%s", keep);
    }
    progress(&R, 1);
    out->tally = R.p;
done:
    runner_free(&R);
    free(cj);
    free(sj);
    return rc;
}
