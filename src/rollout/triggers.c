/* Rollout analysis (include/cutover/rollout.h): the window of a stage read
 * from the store — the whole fleet's records — candidate vs incumbent, and
 * each trigger judged with a minimum sample and a one-sided statistical test
 * (stats.h) into ok / breach / inconclusive, with the extra sample an
 * inconclusive one still needs.
 *
 * The incumbent side is always its served exchanges (fallback retries are
 * the incumbent answering for a failed candidate, not its own traffic). The
 * candidate side is its served exchanges in a canary and its shadow ones in
 * a shadow stage, so stragglers of the previous mode never mix in. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/chat.h"
#include "cutover/rollout.h"
#include "cutover/util.h"

const char *const co_rollout_trigger_names[] = {"error_rate", "latency_p95", "cost", "quality", "feedback", NULL};

/* Newest rows read per arm for the per-request tests (cost, contract): the
 * sums and latencies cover the whole window; these need the rows, and a
 * recent sample of this size settles a mean or a rate as well as the whole
 * window would, at a fraction of the read. */
#define COST_ROWS_MAX 20000
#define TEXT_ROWS_MIN 2000
#define TEXT_ROWS_MAX 50000
#define POWER 0.8

static void set_na(co_trigger_eval *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_na(co_trigger_eval *t, const char *fmt, ...)
{
    t->applies = 0;
    t->verdict = CO_TRIGGER_INCONCLUSIVE;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->note, sizeof t->note, fmt, ap);
    va_end(ap);
}

/* Below the minimum sample: inconclusive, and the need is what is missing. */
static int short_sample(co_trigger_eval *t, uint64_t nc, uint64_t ni, uint64_t min, int two_arm, const char *what)
{
    t->n_cand = nc;
    t->n_inc = ni;
    if (nc >= min && (!two_arm || ni >= min))
        return 0;
    t->verdict = CO_TRIGGER_INCONCLUSIVE;
    t->need_cand = nc < min ? min - nc : 0;
    t->need_inc = two_arm && ni < min ? min - ni : 0;
    if (two_arm)
        snprintf(t->note, sizeof t->note, "%llu candidate and %llu incumbent %s so far; needs %llu per arm",
                 (unsigned long long)nc, (unsigned long long)ni, what, (unsigned long long)min);
    else
        snprintf(t->note, sizeof t->note, "%llu candidate %s so far; needs %llu", (unsigned long long)nc, what,
                 (unsigned long long)min);
    return 1;
}

/* Copies a test's result into the eval (scaled to display units) and works
 * out the extra sample an inconclusive verdict needs. */
static void judged(co_trigger_eval *t, const co_trigger_result *r, double unit, uint64_t nc, uint64_t ni, int two_arm)
{
    t->verdict = r->verdict;
    t->value = r->est * unit;
    t->lo = r->lo * unit;
    t->hi = r->hi * unit;
    t->threshold = r->threshold * unit;
    t->confidence = r->confidence;
    t->n_cand = nc;
    t->n_inc = ni;
    t->need_cand = t->need_inc = 0;
    if (r->verdict == CO_TRIGGER_INCONCLUSIVE) {
        uint64_t ec = 0, ei = 0;
        if (co_trigger_more_samples(&ec, &ei, r, nc, two_arm ? ni : 0, POWER) < 0)
            ec = ei = CO_STATS_NEVER;
        t->need_cand = ec;
        t->need_inc = two_arm ? ei : 0;
        if (ec == CO_STATS_NEVER)
            snprintf(t->note, sizeof t->note, "sits on the threshold: no sample is expected to settle it");
        else if (two_arm)
            snprintf(t->note, sizeof t->note, "needs about %llu more candidate and %llu more incumbent samples",
                     (unsigned long long)ec, (unsigned long long)ei);
        else
            snprintf(t->note, sizeof t->note, "needs about %llu more candidate samples", (unsigned long long)ec);
    }
}

static int arm_summary(co_store *st, const co_window_query *q, co_arm_figures *f, co_window_summary *s)
{
    memset(s, 0, sizeof *s);
    int rc = co_store_window_summary(st, q, s);
    if (rc < 0)
        return rc;
    f->requests = (uint64_t)s->count;
    f->errors = (uint64_t)s->errors;
    f->error_rate = s->count ? (double)s->errors / (double)s->count : NAN;
    int64_t ok = s->count - s->errors;
    f->cost_n = ok > 0 ? (uint64_t)ok : 0;
    f->cost_mean = ok > 0 ? s->cost_usd / (double)ok : NAN;
    f->p95_ms = NAN;
    return 0;
}

static double p95_of(const double *sorted, size_t n)
{
    double v = NAN;
    if (n && co_quantile_sorted(&v, sorted, n, 0.95, CO_QUANTILE_LINEAR) < 0)
        v = NAN;
    return v;
}

static void judge_error_rate(co_rollout_analysis *a, const co_triggers_conf *tc)
{
    co_trigger_eval *t = &a->t[CO_TRIG_ERROR_RATE];
    t->applies = 1;
    t->threshold = tc->error_rate_delta;
    t->n_cand = a->cand.requests;
    t->n_inc = a->inc.requests;
    if (a->cand.requests && a->inc.requests)
        t->value = (a->cand.error_rate - a->inc.error_rate) * 100;
    if (short_sample(t, a->cand.requests, a->inc.requests, (uint64_t)tc->min_samples, 1, "requests"))
        return;
    co_trigger_result r;
    if (co_trigger_rate_diff(&r, a->cand.errors, a->cand.requests, a->inc.errors, a->inc.requests,
                             tc->error_rate_delta / 100.0, tc->confidence) < 0) {
        snprintf(t->note, sizeof t->note, "%s", co_error_last());
        return;
    }
    judged(t, &r, 100, a->cand.requests, a->inc.requests, 1);
}

static int judge_latency(co_rollout_analysis *a, co_store *st, const co_window_query *qc, const co_window_query *qi,
                         const co_triggers_conf *tc, const char *workload)
{
    co_trigger_eval *t = &a->t[CO_TRIG_LATENCY_P95];
    t->applies = 1;
    t->threshold = tc->latency_p95_ratio;
    double *lc = NULL, *li = NULL;
    size_t nc = 0, ni = 0;
    int rc = co_store_window_latencies(st, qc, &lc, &nc);
    if (rc == 0)
        rc = co_store_window_latencies(st, qi, &li, &ni);
    if (rc < 0)
        goto done;
    a->cand.p95_ms = p95_of(lc, nc);
    a->inc.p95_ms = p95_of(li, ni);
    t->n_cand = nc;
    t->n_inc = ni;
    if (nc && ni && a->inc.p95_ms > 0)
        t->value = a->cand.p95_ms / a->inc.p95_ms;
    if (short_sample(t, nc, ni, (uint64_t)tc->min_samples, 1, "requests"))
        goto done;
    /* the same window gives the same answer: the seed is the window's */
    uint64_t seed = co_hash64(workload, strlen(workload), (uint64_t)a->since_ms);
    co_trigger_result r;
    if (co_trigger_quantile_ratio(&r, lc, nc, li, ni, 0.95, tc->latency_p95_ratio, tc->confidence,
                                  CO_BOOTSTRAP_B_DEFAULT, seed, NULL) < 0) {
        if (co_error_last_status() == CO_ENOMEM) {
            rc = CO_ENOMEM;
            goto done;
        }
        snprintf(t->note, sizeof t->note, "%s", co_error_last());
        goto done;
    }
    judged(t, &r, 1, nc, ni, 1);
done:
    free(lc);
    free(li);
    return rc;
}

/* USD per request the candidate is expected to cost: the incumbent's cost
 * per request (the eval baseline's when one is saved, else this window's)
 * times the price ratio of the two models on the incumbent's own token mix.
 * NAN when prices are not configured. */
static double forecast(co_rollout_analysis *a, co_store *st, const co_config *cfg, const co_workload_conf *w,
                       const co_window_summary *si)
{
    const co_model_conf *mi = co_config_model(cfg, w->incumbent);
    const co_model_conf *mc = w->candidate ? co_config_model(cfg, w->candidate) : NULL;
    if (!mi || !mc)
        return NAN;
    co_chat_prices pi = {mi->price_input, mi->price_output, mi->price_cached > 0 ? mi->price_cached : mi->price_input, 0};
    co_chat_prices pc = {mc->price_input, mc->price_output, mc->price_cached > 0 ? mc->price_cached : mc->price_input, 0};
    co_chat_usage u = {1, si->tokens_in, si->tokens_out, si->tokens_cached, 0};
    double ci = co_chat_cost_usd(&u, &pi), cc = co_chat_cost_usd(&u, &pc);
    double ratio;
    if (ci > 0)
        ratio = cc / ci;
    else if (pi.input + pi.output > 0)
        ratio = (pc.input + pc.output) / (pi.input + pi.output); /* no incumbent tokens yet: list prices */
    else
        return NAN;
    char *json = NULL;
    int64_t run = 0;
    double base = NAN;
    if (co_store_baseline_get(st, w->name, &json, &run) == 0) {
        json_t *j = json_loads(json, 0, NULL);
        json_t *v = json_object_get(j, "cost_per_request");
        if (!v)
            v = json_object_get(json_object_get(j, "incumbent"), "cost_per_request");
        if (json_is_number(v) && json_number_value(v) > 0)
            base = json_number_value(v);
        json_decref(j);
        free(json);
    }
    co_error_clear();
    if (!isnan(base)) {
        snprintf(a->forecast_source, sizeof a->forecast_source, "baseline");
        return base * ratio;
    }
    if (si->count - si->errors <= 0 || ci <= 0)
        return NAN;
    snprintf(a->forecast_source, sizeof a->forecast_source, "prices");
    return cc / (double)(si->count - si->errors);
}

static int judge_cost(co_rollout_analysis *a, co_store *st, const co_config *cfg, const co_workload_conf *w,
                      const co_window_query *qc, const co_window_summary *si, const co_triggers_conf *tc)
{
    co_trigger_eval *t = &a->t[CO_TRIG_COST];
    t->applies = 1;
    t->threshold = 1 + tc->cost_over_forecast / 100.0;
    a->forecast_cost = forecast(a, st, cfg, w, si);
    if (!(a->forecast_cost > 0)) {
        const co_model_conf *mi = co_config_model(cfg, w->incumbent);
        if (!mi || mi->price_input + mi->price_output <= 0) {
            set_na(t, "no prices configured for model '%s'", w->incumbent);
            return 0;
        }
        /* prices exist: only the incumbent's sample (the forecast's base) is missing */
        t->verdict = CO_TRIGGER_INCONCLUSIVE;
        t->need_inc = a->inc.cost_n < (uint64_t)tc->min_samples ? (uint64_t)tc->min_samples - a->inc.cost_n : 1;
        snprintf(t->note, sizeof t->note, "no forecast yet: no successful incumbent request and no eval baseline");
        return 0;
    }
    int from_window = !strcmp(a->forecast_source, "prices");
    if (!isnan(a->cand.cost_mean))
        t->value = a->cand.cost_mean / a->forecast_cost;
    if (short_sample(t, a->cand.cost_n, a->inc.cost_n, (uint64_t)tc->min_samples, from_window, "successful requests"))
        return 0;
    co_window_query q = *qc;
    q.limit = COST_ROWS_MAX;
    q.with_text = 0;
    co_exchange_list l = {0};
    int rc = co_store_exchanges(st, &q, &l);
    if (rc < 0)
        return rc;
    double *x = malloc((l.n ? l.n : 1) * sizeof *x);
    if (!x) {
        co_exchange_list_free(&l);
        return co_error_set(CO_ENOMEM, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < l.n; i++)
        if (!l.v[i].x.error_class && isfinite(l.v[i].x.cost_usd))
            x[n++] = l.v[i].x.cost_usd / a->forecast_cost;
    co_exchange_list_free(&l);
    co_trigger_result r;
    if (n < 2 || co_trigger_mean(&r, x, n, t->threshold, tc->confidence) < 0) {
        snprintf(t->note, sizeof t->note, "%s", n < 2 ? "fewer than 2 costs" : co_error_last());
        free(x);
        return 0;
    }
    free(x);
    judged(t, &r, 1, n, from_window ? a->inc.cost_n : 0, 0);
    if (t->verdict == CO_TRIGGER_INCONCLUSIVE)
        t->need_inc = 0;
    return 0;
}

/* Checks the newest recorded outputs of one arm against the contract. */
static int check_outputs(co_store *st, const co_window_query *q0, const co_contract *c, size_t cap, co_arm_figures *f,
                         char *example, size_t example_n)
{
    co_window_query q = *q0;
    q.limit = cap;
    q.with_text = 1;
    co_exchange_list l = {0};
    int rc = co_store_exchanges(st, &q, &l);
    if (rc < 0)
        return rc;
    co_buf why;
    co_buf_init(&why, 4096);
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        const co_exchange *x = &l.v[i].x;
        if (x->error_class || !x->output_text)
            continue; /* errors are the error trigger's; no text: nothing to check */
        int pass = 1;
        co_buf_reset(&why);
        rc = co_contract_check(c, x->output_text, x->latency_ms, x->cost_usd, &pass, example && !example[0] ? &why : NULL);
        f->checked++;
        if (!pass) {
            f->contract_fail++;
            if (example && !example[0])
                snprintf(example, example_n, "request %s: %.*s", x->request_id, (int)why.len, why.p ? why.p : "");
        }
    }
    co_buf_free(&why);
    co_exchange_list_free(&l);
    return rc;
}

static int judge_quality(co_rollout_analysis *a, co_store *st, const co_workload_conf *w, const co_window_query *qc,
                         const co_window_query *qi, const co_triggers_conf *tc)
{
    co_trigger_eval *t = &a->t[CO_TRIG_QUALITY];
    co_contract *c = NULL;
    int rc = co_contract_new(&c, &w->contract, "contract");
    if (rc < 0) {
        set_na(t, "%s", co_error_last());
        return 0;
    }
    if (!c) {
        set_na(t, "%s", "no output contract configured");
        return 0;
    }
    t->applies = 1;
    t->threshold = tc->quality_fail_delta;
    size_t cap = (size_t)tc->min_samples * 4;
    cap = cap < TEXT_ROWS_MIN ? TEXT_ROWS_MIN : cap > TEXT_ROWS_MAX ? TEXT_ROWS_MAX : cap;
    rc = check_outputs(st, qc, c, cap, &a->cand, a->contract_example, sizeof a->contract_example);
    if (rc == 0)
        rc = check_outputs(st, qi, c, cap, &a->inc, NULL, 0);
    co_contract_free(c);
    if (rc < 0)
        return rc;
    uint64_t nc = a->cand.checked, ni = a->inc.checked;
    if (nc && ni)
        t->value = ((double)a->cand.contract_fail / (double)nc - (double)a->inc.contract_fail / (double)ni) * 100;
    t->n_cand = nc;
    t->n_inc = ni;
    if (short_sample(t, nc, ni, (uint64_t)tc->min_samples, 1, "recorded outputs"))
        return 0;
    co_trigger_result r;
    if (co_trigger_rate_diff(&r, a->cand.contract_fail, nc, a->inc.contract_fail, ni, tc->quality_fail_delta / 100.0,
                             tc->confidence) < 0) {
        snprintf(t->note, sizeof t->note, "%s", co_error_last());
        return 0;
    }
    judged(t, &r, 100, nc, ni, 1);
    return 0;
}

static int judge_feedback(co_rollout_analysis *a, co_store *st, const co_window_query *qc, const co_window_query *qi,
                          const co_triggers_conf *tc)
{
    co_trigger_eval *t = &a->t[CO_TRIG_FEEDBACK];
    if (!a->candidate_served) {
        set_na(t, "%s", "the candidate serves nobody in a shadow stage");
        return 0;
    }
    int rc = co_store_feedback_summary(st, qc, &a->cand.feedback, &a->cand.feedback_negative);
    if (rc == 0)
        rc = co_store_feedback_summary(st, qi, &a->inc.feedback, &a->inc.feedback_negative);
    if (rc < 0)
        return rc;
    if (a->cand.feedback + a->inc.feedback == 0) {
        set_na(t, "%s", "no feedback recorded");
        return 0;
    }
    t->applies = 1;
    t->threshold = 1 + tc->feedback_negative_rel / 100.0;
    uint64_t nc = (uint64_t)a->cand.feedback, ni = (uint64_t)a->inc.feedback;
    uint64_t kc = (uint64_t)a->cand.feedback_negative, ki = (uint64_t)a->inc.feedback_negative;
    t->n_cand = nc;
    t->n_inc = ni;
    if (nc && ni && ki)
        t->value = ((double)kc / (double)nc) / ((double)ki / (double)ni);
    if (short_sample(t, nc, ni, (uint64_t)tc->min_feedback, 1, "ratings"))
        return 0;
    co_trigger_result r;
    if (co_trigger_rate_ratio(&r, kc, nc, ki, ni, t->threshold, tc->confidence) < 0) {
        snprintf(t->note, sizeof t->note, "%s", co_error_last());
        return 0;
    }
    judged(t, &r, 1, nc, ni, 1);
    return 0;
}

int co_rollout_analyze(co_rollout_analysis *out, co_store *st, const co_config *cfg, const co_workload_conf *w,
                       int64_t since_ms, int64_t until_ms, int candidate_served)
{
    co_rollout_analysis a;
    memset(&a, 0, sizeof a);
    a.since_ms = since_ms;
    a.until_ms = until_ms > 0 ? until_ms : 0;
    a.candidate_served = candidate_served;
    a.forecast_cost = NAN;
    a.breach = -1;
    for (int i = 0; i < CO_TRIG__N; i++) {
        a.t[i].value = a.t[i].lo = a.t[i].hi = a.t[i].threshold = a.t[i].confidence = NAN;
        a.t[i].verdict = CO_TRIGGER_INCONCLUSIVE;
    }
    if (!w->candidate)
        return co_error_set(CO_EINVAL, "workload '%s' has no candidate", w->name);
    const co_triggers_conf *tc = co_workload_triggers(cfg, w);
    co_window_query qi = {.workload = w->name, .arm = "incumbent", .role = "served", .since_ms = since_ms,
                          .until_ms = a.until_ms};
    co_window_query qc = qi;
    qc.arm = "candidate";
    qc.role = candidate_served ? "served" : "shadow";
    co_window_summary si, sc;
    int rc = arm_summary(st, &qi, &a.inc, &si);
    if (rc == 0)
        rc = arm_summary(st, &qc, &a.cand, &sc);
    if (rc == 0) {
        judge_error_rate(&a, tc);
        rc = judge_latency(&a, st, &qc, &qi, tc, w->name);
    }
    if (rc == 0)
        rc = judge_cost(&a, st, cfg, w, &qc, &si, tc);
    if (rc == 0)
        rc = judge_quality(&a, st, w, &qc, &qi, tc);
    if (rc == 0)
        rc = judge_feedback(&a, st, &qc, &qi, tc);
    if (rc < 0)
        return rc;
    int all_ok = 1;
    for (int i = 0; i < CO_TRIG__N; i++) {
        if (!a.t[i].applies)
            continue;
        if (a.t[i].verdict == CO_TRIGGER_BREACH && a.breach < 0)
            a.breach = i;
        if (a.t[i].verdict != CO_TRIGGER_OK)
            all_ok = 0;
    }
    a.verdict = a.breach >= 0 ? CO_TRIGGER_BREACH : all_ok ? CO_TRIGGER_OK : CO_TRIGGER_INCONCLUSIVE;
    *out = a;
    return 0;
}

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *need(uint64_t v)
{
    return v == CO_STATS_NEVER ? json_string("never") : json_integer((json_int_t)v);
}

static json_t *arm_json(const co_arm_figures *f)
{
    return json_pack("{s:I,s:I,s:o,s:o,s:I,s:o,s:I,s:I,s:I,s:I}", "requests", (json_int_t)f->requests, "errors",
                     (json_int_t)f->errors, "error_rate", num(f->error_rate), "p95_ms", num(f->p95_ms), "cost_n",
                     (json_int_t)f->cost_n, "cost_per_request", num(f->cost_mean), "contract_checked",
                     (json_int_t)f->checked, "contract_failed", (json_int_t)f->contract_fail, "feedback",
                     (json_int_t)f->feedback, "feedback_negative", (json_int_t)f->feedback_negative);
}

json_t *co__rollout_analysis_to_json(const co_rollout_analysis *a);
json_t *co__rollout_analysis_to_json(const co_rollout_analysis *a)
{
    json_t *trig = json_object();
    for (int i = 0; i < CO_TRIG__N; i++) {
        const co_trigger_eval *t = &a->t[i];
        json_t *o = json_pack("{s:b,s:s,s:o,s:o,s:o,s:o,s:o,s:I,s:I,s:o,s:o,s:s}", "applies", t->applies, "verdict",
                              t->applies ? co_trigger_verdict_name(t->verdict) : "n/a", "value", num(t->value), "lo",
                              num(t->lo), "hi", num(t->hi), "threshold", num(t->threshold), "confidence",
                              num(t->confidence), "n_candidate", (json_int_t)t->n_cand, "n_incumbent",
                              (json_int_t)t->n_inc, "need_candidate", need(t->need_cand), "need_incumbent",
                              need(t->need_inc), "note", t->note);
        /* each arm's own figure behind the statistic, for reports */
        double vi = NAN, vc = NAN;
        switch (i) {
        case CO_TRIG_ERROR_RATE:
            vi = a->inc.error_rate * 100, vc = a->cand.error_rate * 100;
            break;
        case CO_TRIG_LATENCY_P95:
            vi = a->inc.p95_ms, vc = a->cand.p95_ms;
            break;
        case CO_TRIG_COST:
            vi = a->forecast_cost, vc = a->cand.cost_mean;
            break;
        case CO_TRIG_QUALITY:
            vi = a->inc.checked ? 100.0 * (double)a->inc.contract_fail / (double)a->inc.checked : NAN;
            vc = a->cand.checked ? 100.0 * (double)a->cand.contract_fail / (double)a->cand.checked : NAN;
            break;
        default:
            vi = a->inc.feedback ? 100.0 * (double)a->inc.feedback_negative / (double)a->inc.feedback : NAN;
            vc = a->cand.feedback ? 100.0 * (double)a->cand.feedback_negative / (double)a->cand.feedback : NAN;
            break;
        }
        json_object_set_new(o, "incumbent", num(vi));
        json_object_set_new(o, "candidate", num(vc));
        json_object_set_new(trig, co_rollout_trigger_names[i], o);
    }
    json_t *j = json_pack("{s:I,s:o,s:b,s:{s:o,s:o},s:o,s:s,s:o,s:s,s:o}", "since_ms", (json_int_t)a->since_ms,
                          "until_ms", a->until_ms > 0 ? json_integer(a->until_ms) : json_null(), "candidate_served",
                          a->candidate_served, "arms", "incumbent", arm_json(&a->inc), "candidate",
                          arm_json(&a->cand), "forecast_cost_per_request", num(a->forecast_cost), "forecast_source",
                          a->forecast_source, "triggers", trig, "verdict", co_trigger_verdict_name(a->verdict),
                          "breach", a->breach >= 0 ? json_string(co_rollout_trigger_names[a->breach]) : json_null());
    if (j && a->contract_example[0])
        json_object_set_new(j, "contract_failure_example", json_string(a->contract_example));
    return j;
}

int co_rollout_analysis_json(co_buf *out, const co_rollout_analysis *a)
{
    json_t *j = co__rollout_analysis_to_json(a);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(j);
    if (!s)
        return co_error_set(CO_ENOMEM, "out of memory");
    int rc = co_buf_puts(out, s);
    free(s);
    return rc;
}

void co_rollout_breach_reason(const co_rollout_analysis *a, int trig, char *out, size_t n)
{
    if (trig < 0 || trig >= CO_TRIG__N) {
        snprintf(out, n, "no breach");
        return;
    }
    const co_trigger_eval *t = &a->t[trig];
    double conf = t->confidence * 100;
    switch (trig) {
    case CO_TRIG_ERROR_RATE:
        snprintf(out, n, "error_rate: candidate %.1f%% vs incumbent %.1f%% errors, %+.1f points > %g (confidence %.1f%%)",
                 a->cand.error_rate * 100, a->inc.error_rate * 100, t->value, t->threshold, conf);
        break;
    case CO_TRIG_LATENCY_P95:
        snprintf(out, n, "latency_p95: candidate %.0f ms vs incumbent %.0f ms, %.2fx > %gx (confidence %.1f%%)",
                 a->cand.p95_ms, a->inc.p95_ms, t->value, t->threshold, conf);
        break;
    case CO_TRIG_COST:
        snprintf(out, n, "cost: $%.6f per request vs forecast $%.6f (%s), %.2fx > %gx (confidence %.1f%%)",
                 a->cand.cost_mean, a->forecast_cost, a->forecast_source, t->value, t->threshold, conf);
        break;
    case CO_TRIG_QUALITY:
        snprintf(out, n,
                 "quality: contract failed on %.1f%% of candidate vs %.1f%% of incumbent outputs, %+.1f points > %g "
                 "(confidence %.1f%%)",
                 t->n_cand ? 100.0 * (double)a->cand.contract_fail / (double)t->n_cand : 0.0,
                 t->n_inc ? 100.0 * (double)a->inc.contract_fail / (double)t->n_inc : 0.0, t->value, t->threshold, conf);
        break;
    default:
        snprintf(out, n,
                 "feedback: %.1f%% negative on the candidate vs %.1f%% on the incumbent, %.2fx > %gx (confidence %.1f%%)",
                 a->cand.feedback ? 100.0 * (double)a->cand.feedback_negative / (double)a->cand.feedback : 0.0,
                 a->inc.feedback ? 100.0 * (double)a->inc.feedback_negative / (double)a->inc.feedback : 0.0, t->value,
                 t->threshold, conf);
        break;
    }
}
