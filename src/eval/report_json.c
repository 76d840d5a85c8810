/* report.json: the analysis as a stable JSON document (schema_version 1,
 * documented key by key in docs/eval.md). Keys come in a fixed order, rates
 * are fractions, differences of rates are points (keys ending in _pts),
 * latencies ms, costs USD; a number that is undefined is null. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/error.h"
#include "eval/report_int.h"

#define CO__REPORT_SCHEMA_VERSION 1

typedef struct jctx {
    int oom;
} jctx;

static void set(jctx *c, json_t *o, const char *k, json_t *v)
{
    if (!v || !o || json_object_set_new(o, k, v))
        c->oom = 1;
}

static void push(jctx *c, json_t *arr, json_t *v)
{
    if (!v || !arr || json_array_append_new(arr, v))
        c->oom = 1;
}

static json_t *num(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static json_t *pts(double frac)
{
    return isfinite(frac) ? json_real(frac * 100.0) : json_null();
}

static json_t *str(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    char *clean = co__utf8_clean(s); /* not UTF-8: shown with U+FFFD */
    j = clean ? json_string(clean) : NULL;
    free(clean);
    return j;
}

static json_t *integer(uint64_t n)
{
    return json_integer((json_int_t)n);
}

static json_t *pair_arr(jctx *c, double lo, double hi, int points)
{
    json_t *a = json_array();
    push(c, a, points ? pts(lo) : num(lo));
    push(c, a, points ? pts(hi) : num(hi));
    return a;
}

static json_t *extra(uint64_t e, co_gate_verdict v)
{
    if (v != CO_GATE_INCONCLUSIVE)
        return json_null();
    return e == CO_STATS_NEVER ? json_string("never") : integer(e);
}

static json_t *rate_obj(jctx *c, const co__group *g, int arm)
{
    const co__rate *r = &g->rate[arm];
    if (!r->n)
        return json_null();
    json_t *o = json_object();
    set(c, o, "n", integer(r->n));
    set(c, o, "passed", integer(r->passed));
    set(c, o, "rate", num(co__group_rate(g, arm)));
    set(c, o, "ci", pair_arr(c, r->wilson.lo, r->wilson.hi, 0));
    return o;
}

static json_t *group_obj(jctx *c, const co__group *g)
{
    json_t *o = json_object();
    set(c, o, "incumbent", rate_obj(c, g, CO__INC));
    set(c, o, "candidate", rate_obj(c, g, CO__CAND));
    set(c, o, "pairs", integer(g->pairs));
    set(c, o, "cases", integer(g->cases));
    json_t *t = json_object();
    set(c, t, "both_pass", integer(g->t.both));
    set(c, t, "regressions", integer(g->t.inc_only));
    set(c, t, "improvements", integer(g->t.cand_only));
    set(c, t, "both_fail", integer(g->t.neither));
    set(c, o, "table", t);
    int has = g->pairs > 0;
    set(c, o, "diff_pts", has ? pts(g->paired.diff.est) : json_null());
    set(c, o, "diff_ci_pts", has ? pair_arr(c, g->paired.diff.lo, g->paired.diff.hi, 1) : json_null());
    set(c, o, "bootstrap_ci_pts", g->has_boot ? pair_arr(c, g->boot.lo, g->boot.hi, 1) : json_null());
    set(c, o, "mcnemar_p", has ? num(g->paired.p_exact) : json_null());
    set(c, o, "mcnemar_midp", has ? num(g->paired.p_midp) : json_null());
    if (!g->gated) {
        set(c, o, "gate", json_null());
        return o;
    }
    json_t *gt = json_object();
    set(c, gt, "rule", json_string(g->zero_tolerance ? "zero_tolerance" : "interval"));
    set(c, gt, "max_drop_pts", num(g->max_drop));
    set(c, gt, "interval_pts", has ? pair_arr(c, g->gate_ci.lo, g->gate_ci.hi, 1) : json_null());
    set(c, gt, "verdict", json_string(co_gate_verdict_name(g->verdict)));
    set(c, gt, "extra_cases", extra(g->extra_cases, g->verdict));
    set(c, gt, "note", str(g->note));
    set(c, o, "gate", gt);
    return o;
}

static json_t *arm_obj(jctx *c, const co__arm_metrics *m)
{
    if (!m->present)
        return json_null();
    json_t *o = json_object();
    set(c, o, "model", str(m->model));
    set(c, o, "run_id", m->run_id ? json_integer(m->run_id) : json_null());
    set(c, o, "results", integer(m->n));
    set(c, o, "ok", integer(m->ok));
    set(c, o, "errors", integer(m->errors));
    set(c, o, "error_rate", num(m->n ? (double)m->errors / (double)m->n : NAN));
    set(c, o, "error_rate_ci", m->n ? pair_arr(c, m->error_rate.lo, m->error_rate.hi, 0) : json_null());
    set(c, o, "cached", integer(m->cached));
    set(c, o, "cost_total", num(m->cost_total));
    set(c, o, "cost_per_request", num(m->cost_per_request));
    set(c, o, "monthly_cost", m->has_monthly ? num(m->monthly_cost) : json_null());
    json_t *l = json_object();
    set(c, l, "p50", num(m->lat[0]));
    set(c, l, "p95", num(m->lat[1]));
    set(c, l, "p99", num(m->lat[2]));
    set(c, o, "latency_ms", l);
    set(c, o, "tokens_out_mean", num(m->tokens_out_mean));
    return o;
}

static json_t *rgate_obj(jctx *c, const co__ratio_gate *g)
{
    if (!g->gated)
        return json_null();
    json_t *o = json_object();
    set(c, o, "max", num(g->max));
    set(c, o, "est", g->computed ? num(g->est) : json_null());
    set(c, o, "ci", g->computed ? pair_arr(c, g->lo, g->hi, 0) : json_null());
    set(c, o, "verdict", json_string(co_gate_verdict_name(g->verdict)));
    set(c, o, "extra_cases", extra(g->extra_cases, g->verdict));
    set(c, o, "note", str(g->note));
    return o;
}

static json_t *drift_obj(jctx *c, const co__drift *d)
{
    if (!d->computed)
        return json_null();
    json_t *o = json_object(), *outs = json_object(), *len = json_object(), *rates = json_object(),
           *flagged = json_array();
    set(c, outs, "incumbent", integer(d->n[CO__INC]));
    set(c, outs, "candidate", integer(d->n[CO__CAND]));
    set(c, o, "outputs", outs);
    for (int arm = 0; arm < 2; arm++) {
        json_t *x = json_object();
        set(c, x, "mean", num(d->len_mean[arm]));
        set(c, x, "p50", num(d->len_p50[arm]));
        set(c, x, "p95", num(d->len_p95[arm]));
        set(c, len, co__arm_name(arm), x);
    }
    set(c, len, "ks_d", num(d->ks.d));
    set(c, len, "ks_p", num(d->ks.p));
    set(c, len, "flagged", json_boolean(d->len_flagged));
    set(c, o, "length_chars", len);
    if (d->len_flagged)
        push(c, flagged, json_string("length"));
    for (int k = 0; k < CO__DRIFT_NRATES; k++) {
        const co__rate_drift *r = &d->rates[k];
        json_t *x = json_object();
        set(c, x, "incumbent", num(r->n[CO__INC] ? (double)r->k[CO__INC] / (double)r->n[CO__INC] : NAN));
        set(c, x, "candidate", num(r->n[CO__CAND] ? (double)r->k[CO__CAND] / (double)r->n[CO__CAND] : NAN));
        set(c, x, "incumbent_count", integer(r->k[CO__INC]));
        set(c, x, "candidate_count", integer(r->k[CO__CAND]));
        set(c, x, "p", num(r->p));
        set(c, x, "flagged", json_boolean(r->flagged));
        set(c, rates, co__drift_rate_key(k), x);
        if (r->flagged)
            push(c, flagged, json_string(co__drift_rate_key(k)));
    }
    set(c, o, "rates", rates);
    set(c, o, "flagged", flagged);
    return o;
}

static json_t *side_obj(jctx *c, const co__result *r)
{
    json_t *o = json_object(), *reasons = json_array();
    set(c, o, "passed", json_boolean(r->passed));
    set(c, o, "score", num(r->score));
    set(c, o, "latency_ms", num(r->latency_ms));
    set(c, o, "cost_usd", num(r->cost_usd));
    set(c, o, "output", str(r->output));
    set(c, o, "error", str(r->error));
    for (size_t i = 0; i < r->n_reasons; i++)
        push(c, reasons, str(r->reasons[i]));
    set(c, o, "reasons", reasons);
    return o;
}

static json_t *changes_obj(jctx *c, const co_eval_analysis *a, size_t total, const co__pair_ref *v, size_t n)
{
    json_t *o = json_object(), *listed = json_array();
    set(c, o, "count", integer(total));
    for (size_t i = 0; i < n; i++) {
        const co__result *ri = &a->results[v[i].inc], *rc = &a->results[v[i].cand];
        json_t *x = json_object();
        set(c, x, "case_id", str(ri->case_id));
        set(c, x, "repeat", json_integer(ri->repeat));
        set(c, x, "critical", json_boolean(ri->critical));
        set(c, x, "incumbent", side_obj(c, ri));
        set(c, x, "candidate", side_obj(c, rc));
        push(c, listed, x);
    }
    set(c, o, "listed", listed);
    return o;
}

static json_t *workload_obj(jctx *c, const co_eval_analysis *a, const co__workload *w, int overall)
{
    json_t *o = json_object();
    set(c, o, "name", str(w->name));
    set(c, o, "compared", json_boolean(w->compared));
    set(c, o, "verdict", w->compared ? json_string(co_gate_verdict_name(w->verdict)) : json_null());
    set(c, o, "extra_cases", w->compared ? extra(w->extra_cases, w->verdict) : json_null());
    set(c, o, "baseline_run", w->baseline_run ? json_integer(w->baseline_run) : json_null());
    json_t *arms = json_object();
    set(c, arms, "incumbent", arm_obj(c, &w->arm[CO__INC]));
    set(c, arms, "candidate", arm_obj(c, &w->arm[CO__CAND]));
    set(c, o, "arms", arms);
    set(c, o, "pass_rate", group_obj(c, &w->all));
    set(c, o, "critical", w->has_critical ? group_obj(c, &w->critical) : json_null());
    json_t *cost = json_object();
    set(c, cost, "per_request_ratio", num(w->cost_ratio));
    set(c, cost, "monthly_requests", w->has_volume ? json_integer(w->monthly_requests) : json_null());
    set(c, cost, "gate", overall ? json_null() : rgate_obj(c, &w->cost));
    set(c, o, "cost", cost);
    json_t *lat = json_object();
    set(c, lat, "ratio_p50", num(w->lat_ratio[0]));
    set(c, lat, "ratio_p95", num(w->lat_ratio[1]));
    set(c, lat, "ratio_p99", num(w->lat_ratio[2]));
    set(c, lat, "gate", overall ? json_null() : rgate_obj(c, &w->latency));
    set(c, o, "latency", lat);
    set(c, o, "drift", drift_obj(c, &w->drift));
    set(c, o, "regressions", changes_obj(c, a, w->n_regressions, w->regressions, w->listed_regressions));
    set(c, o, "improvements", changes_obj(c, a, w->n_improvements, w->improvements, w->listed_improvements));
    return o;
}

int co__render_json(co_buf *b, const co_eval_analysis *a)
{
    jctx c = {0};
    char t[32], seed[32];
    json_t *root = json_object();
    set(&c, root, "schema_version", json_integer(CO__REPORT_SCHEMA_VERSION));
    set(&c, root, "generator", json_string("cutover eval"));
    set(&c, root, "mode", json_string(co__mode_name(a->mode)));
    set(&c, root, "verdict", json_string(co__verdict_of(a)));
    set(&c, root, "exit_code", json_integer(co_eval_analysis_exit_code(a)));
    set(&c, root, "extra_cases", a->compared ? extra(a->extra_cases, a->verdict) : json_null());
    json_t *st = json_object();
    set(&c, st, "level", num(a->level));
    set(&c, st, "bootstrap", json_integer(a->bootstrap));
    snprintf(seed, sizeof seed, "%" PRIu64, a->seed); /* as a string: above 2^53 */
    set(&c, st, "seed", json_string(seed));
    set(&c, st, "inconclusive_as",
        json_string(a->inconclusive_as == 1 ? "fail" : a->inconclusive_as == 2 ? "pass" : "inconclusive"));
    set(&c, st, "max_listed", integer(a->max_listed));
    set(&c, root, "settings", st);
    set(&c, root, "repeat", json_integer(a->repeat));
    json_t *runs = json_array();
    for (size_t i = 0; i < a->n_runs; i++) {
        const co__run_info *r = &a->runs[i];
        json_t *x = json_object();
        set(&c, x, "id", json_integer(r->id));
        set(&c, x, "role", json_string(r->role));
        set(&c, x, "suite", str(r->suite));
        set(&c, x, "status", str(r->status));
        co__fmt_time(t, sizeof t, r->started_ms);
        set(&c, x, "started", *t ? json_string(t) : json_null());
        set(&c, x, "started_ms", r->started_ms > 0 ? json_integer(r->started_ms) : json_null());
        co__fmt_time(t, sizeof t, r->finished_ms);
        set(&c, x, "finished", *t ? json_string(t) : json_null());
        set(&c, x, "finished_ms", r->finished_ms > 0 ? json_integer(r->finished_ms) : json_null());
        json_t *sum = r->summary_json ? json_loads(r->summary_json, 0, NULL) : NULL;
        set(&c, x, "summary", sum ? sum : json_null());
        push(&c, runs, x);
    }
    set(&c, root, "runs", runs);
    json_t *ws = json_array();
    for (size_t i = 0; i < a->n_w; i++)
        push(&c, ws, workload_obj(&c, a, &a->w[i], 0));
    set(&c, root, "workloads", ws);
    set(&c, root, "overall", workload_obj(&c, a, &a->overall, 1));
    int rc = 0;
    char *s = c.oom ? NULL : json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (!s)
        rc = co_error_set(CO_ENOMEM, "out of memory rendering report.json");
    else if (!(rc = co_buf_puts(b, s)))
        rc = co_buf_puts(b, "\n");
    free(s);
    json_decref(root);
    return rc;
}
