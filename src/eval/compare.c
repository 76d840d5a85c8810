/* Eval comparison (include/cutover/compare.h): reads stored runs (and the
 * saved baselines of a candidate-only run), pairs the arms' results by
 * (workload, case, repeat), and computes per workload, for its critical
 * cases and overall: pass rates with Wilson intervals, the paired difference
 * (Newcombe interval, exact McNemar, paired bootstrap over cases), the
 * pass-rate, critical, cost and latency gates, cost and latency per arm,
 * format drift (drift.c) and the regressions and improvements. Also the
 * terminal summary, the exit code and saving baselines. The semantics are
 * documented in docs/eval.md. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cutover/compare.h"
#include "cutover/error.h"
#include "cutover/util.h"
#include "eval/compare_int.h"

#define CO__DEFAULT_SEED 0x6375746f76657231ull /* "cutover1": reports are reproducible */
#define CO__POWER 0.8                           /* "likely" in "extra cases likely to settle it" */

/* ------------------------------------------------------------ formatting */

const char *co__arm_name(int arm)
{
    return arm == CO__CAND ? "candidate" : "incumbent";
}

const char *co__mode_name(co__mode m)
{
    switch (m) {
    case CO__MODE_ARMS: return "arms";
    case CO__MODE_BASELINE: return "baseline";
    case CO__MODE_RUNS: return "runs";
    case CO__MODE_SINGLE: return "single-arm";
    }
    return "arms";
}

void co__fmt_time(char *buf, size_t n, int64_t ms)
{
    if (ms <= 0) {
        snprintf(buf, n, "%s", "");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Rounds to `dec` decimals and turns -0 into 0, so "-0.0" never prints. */
static double tidy(double x, int dec)
{
    double s = pow(10.0, dec);
    return round(x * s) / s + 0.0;
}

void co__fmt_pct(char *buf, size_t n, double frac)
{
    if (!isfinite(frac))
        snprintf(buf, n, "n/a");
    else
        snprintf(buf, n, "%.1f%%", tidy(frac * 100.0, 1));
}

void co__fmt_pts(char *buf, size_t n, double frac)
{
    if (!isfinite(frac))
        snprintf(buf, n, "n/a");
    else
        snprintf(buf, n, "%+.1f", tidy(frac * 100.0, 1));
}

void co__fmt_p(char *buf, size_t n, double p)
{
    if (!isfinite(p))
        snprintf(buf, n, "n/a");
    else if (p < 0.001)
        snprintf(buf, n, "<0.001");
    else
        snprintf(buf, n, "%.3f", tidy(p, 3));
}

void co__fmt_usd(char *buf, size_t n, double usd)
{
    if (!isfinite(usd))
        snprintf(buf, n, "n/a");
    else if (fabs(usd) >= 1.0)
        snprintf(buf, n, "$%.2f", tidy(usd, 2));
    else if (fabs(usd) >= 0.01)
        snprintf(buf, n, "$%.4f", tidy(usd, 4));
    else
        snprintf(buf, n, "$%.6f", tidy(usd, 6));
}

void co__fmt_ms(char *buf, size_t n, double ms)
{
    if (!isfinite(ms))
        snprintf(buf, n, "n/a");
    else if (ms < 10.0)
        snprintf(buf, n, "%.1f ms", tidy(ms, 1));
    else
        snprintf(buf, n, "%.0f ms", tidy(ms, 0));
}

void co__fmt_ratio(char *buf, size_t n, double r)
{
    if (!isfinite(r))
        snprintf(buf, n, "n/a");
    else
        snprintf(buf, n, "%.2fx", tidy(r, 2));
}

void co__fmt_extra(char *buf, size_t n, uint64_t extra)
{
    if (extra == CO_STATS_NEVER)
        snprintf(buf, n, "no finite number of extra cases is likely to settle it");
    else if (extra == 0)
        snprintf(buf, n, "%s", "");
    else
        snprintf(buf, n, "about %" PRIu64 " more case%s would likely settle it", extra,
                 extra == 1 ? "" : "s");
}

/* ------------------------------------------------------------ freeing */

static void result_clear(co__result *r)
{
    free(r->case_id);
    free(r->workload);
    free(r->output);
    free(r->error);
    for (size_t i = 0; i < r->n_reasons; i++)
        free(r->reasons[i]);
    free(r->reasons);
    memset(r, 0, sizeof *r);
}

static void workload_clear(co__workload *w)
{
    free(w->name);
    for (int arm = 0; arm < 2; arm++)
        free(w->arm[arm].model);
    free(w->regressions);
    free(w->improvements);
    memset(w, 0, sizeof *w);
}

void co_eval_analysis_free(co_eval_analysis *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_results; i++)
        result_clear(&a->results[i]);
    free(a->results);
    for (size_t i = 0; i < a->n_w; i++)
        workload_clear(&a->w[i]);
    free(a->w);
    workload_clear(&a->overall);
    for (size_t i = 0; i < a->n_runs; i++) {
        free(a->runs[i].suite);
        free(a->runs[i].status);
        free(a->runs[i].summary_json);
    }
    free(a->runs);
    free(a);
}

/* ------------------------------------------------------------ loading */

typedef struct co__results {
    co__result *v;
    size_t n, cap;
} co__results;

typedef struct loader {
    co__results *out;
    int64_t run_id;
    int want_arm;              /* -1: any */
    const char *want_workload; /* NULL: any */
} loader;

static char *dup_or_null(const char *s, int *rc)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *rc = CO_ENOMEM;
    return d;
}

/* The failed assertions' reasons and the cache flag, from detail_json. A
 * detail that is missing or not JSON leaves both empty: the pass flag is
 * what the runner decided, and it is in the row itself. */
static int parse_detail(co__result *r, const char *detail)
{
    if (!detail || !*detail)
        return 0;
    json_t *d = json_loads(detail, 0, NULL);
    if (!d)
        return 0;
    int rc = 0;
    r->cached = json_is_true(json_object_get(d, "cached"));
    json_t *as = json_object_get(d, "asserts");
    size_t n = json_is_array(as) ? json_array_size(as) : 0;
    if (n) {
        r->reasons = calloc(n, sizeof *r->reasons);
        if (!r->reasons) {
            rc = CO_ENOMEM;
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(as, i);
        json_t *pass = json_object_get(x, "pass");
        if (!json_is_false(pass))
            continue;
        const char *type = json_string_value(json_object_get(x, "type"));
        const char *why = json_string_value(json_object_get(x, "reason"));
        char *s = NULL;
        if (asprintf(&s, "%s: %s", type ? type : "assertion", why && *why ? why : "failed") < 0) {
            rc = CO_ENOMEM;
            goto done;
        }
        r->reasons[r->n_reasons++] = s;
    }
done:
    json_decref(d);
    return rc;
}

static int arm_index(const char *arm)
{
    if (arm && strcmp(arm, "incumbent") == 0)
        return CO__INC;
    if (arm && strcmp(arm, "candidate") == 0)
        return CO__CAND;
    return -1;
}

static int load_cb(const co_eval_result *r, void *ud)
{
    loader *l = ud;
    int arm = arm_index(r->arm);
    if (arm < 0)
        return co_error_set(CO_EINVAL, "run %" PRId64 ": case '%s' has a result for an unknown arm '%s'",
                            l->run_id, r->case_id ? r->case_id : "?", r->arm ? r->arm : "(null)");
    const char *wl = r->workload && *r->workload ? r->workload : "default";
    if (l->want_arm >= 0 && arm != l->want_arm)
        return 0;
    if (l->want_workload && strcmp(wl, l->want_workload) != 0)
        return 0;
    co__results *o = l->out;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        co__result *v = realloc(o->v, cap * sizeof *v);
        if (!v)
            return co_error_set(CO_ENOMEM, "out of memory reading eval results");
        o->v = v;
        o->cap = cap;
    }
    co__result *x = &o->v[o->n];
    memset(x, 0, sizeof *x);
    int rc = 0;
    x->case_id = dup_or_null(r->case_id ? r->case_id : "", &rc);
    x->workload = dup_or_null(wl, &rc);
    x->output = dup_or_null(r->output_text, &rc);
    x->error = dup_or_null(r->error, &rc);
    x->arm = arm;
    x->repeat = r->repeat;
    x->passed = r->passed ? 1 : 0;
    x->score = r->score;
    x->latency_ms = r->latency_ms;
    x->cost_usd = r->cost_usd;
    x->tokens_in = r->tokens_in;
    x->tokens_out = r->tokens_out;
    x->run_id = l->run_id;
    if (!rc)
        rc = parse_detail(x, r->detail_json);
    o->n++; /* counted either way, so the cleanup frees what was copied */
    if (rc)
        return co_error_set(CO_ENOMEM, "out of memory reading eval results");
    return 0;
}

static int load_results(co_store *st, co__results *out, int64_t run, int want_arm, const char *workload)
{
    loader l = {.out = out, .run_id = run, .want_arm = want_arm, .want_workload = workload};
    return co_store_eval_results_each(st, run, load_cb, &l);
}

static void results_free(co__results *r)
{
    for (size_t i = 0; i < r->n; i++)
        result_clear(&r->v[i]);
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* Moves every result of `from` whose arm is `arm` to `to`, relabelled. */
static int results_take(co__results *to, co__results *from, int arm, int as)
{
    size_t keep = 0;
    for (size_t i = 0; i < from->n; i++) {
        if (from->v[i].arm != arm) {
            from->v[keep++] = from->v[i];
            continue;
        }
        if (to->n == to->cap) {
            size_t cap = to->cap ? to->cap * 2 : 256;
            co__result *v = realloc(to->v, cap * sizeof *v);
            if (!v) {
                /* keep `from` consistent: slide the rest down */
                memmove(&from->v[keep], &from->v[i], (from->n - i) * sizeof *from->v);
                from->n = keep + (from->n - i);
                return co_error_set(CO_ENOMEM, "out of memory");
            }
            to->v = v;
            to->cap = cap;
        }
        to->v[to->n] = from->v[i];
        to->v[to->n].arm = as;
        to->n++;
    }
    from->n = keep;
    return 0;
}

static int parse_config(json_t **out, const co_eval_run *run)
{
    if (!run->config_json || !*run->config_json) {
        *out = json_object();
        return *out ? 0 : co_error_set(CO_ENOMEM, "out of memory");
    }
    json_error_t je;
    json_t *c = json_loads(run->config_json, 0, &je);
    if (!c || !json_is_object(c)) {
        json_decref(c);
        return co_error_set(CO_EINVAL, "eval run %" PRId64 ": config_json is not a JSON object (%d:%d: %s)",
                            run->id, je.line, je.column, c ? "not an object" : je.text);
    }
    *out = c;
    return 0;
}

static json_t *cfg_workload(json_t *cfg, const char *w)
{
    json_t *ws = json_object_get(cfg, "workloads");
    return json_is_object(ws) ? json_object_get(ws, w) : NULL;
}

static double cfg_num(json_t *obj, const char *key, double dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static int add_run(co_eval_analysis *a, const co_eval_run *run, const char *role)
{
    for (size_t i = 0; i < a->n_runs; i++)
        if (a->runs[i].id == run->id)
            return 0;
    co__run_info *v = realloc(a->runs, (a->n_runs + 1) * sizeof *v);
    if (!v)
        return co_error_set(CO_ENOMEM, "out of memory");
    a->runs = v;
    co__run_info *ri = &a->runs[a->n_runs++];
    memset(ri, 0, sizeof *ri);
    int rc = 0;
    ri->id = run->id;
    ri->started_ms = run->started_ms;
    ri->finished_ms = run->finished_ms;
    ri->role = role;
    ri->suite = dup_or_null(run->suite, &rc);
    ri->status = dup_or_null(run->status, &rc);
    ri->summary_json = dup_or_null(run->summary_json, &rc);
    return rc ? co_error_set(CO_ENOMEM, "out of memory") : 0;
}

static int cmp_result(const void *pa, const void *pb)
{
    const co__result *x = pa, *y = pb;
    int c = strcmp(x->workload, y->workload);
    if (c)
        return c;
    if ((c = strcmp(x->case_id, y->case_id)))
        return c;
    if (x->repeat != y->repeat)
        return x->repeat < y->repeat ? -1 : 1;
    return x->arm - y->arm;
}

static int same_key(const co__result *x, const co__result *y)
{
    return x->repeat == y->repeat && strcmp(x->case_id, y->case_id) == 0 &&
           strcmp(x->workload, y->workload) == 0;
}

/* ------------------------------------------------------------ groups */

static uint64_t group_seed(const co_eval_analysis *a, const char *name, const char *part)
{
    char key[512];
    int n = snprintf(key, sizeof key, "%s/%s", name ? name : "", part);
    return co_hash64(key, (size_t)(n < 0 ? 0 : n) < sizeof key ? (size_t)n : sizeof key - 1, a->seed);
}

/* Pass rates per arm, the paired table, Newcombe + McNemar and the paired
 * bootstrap over cases (repeats of a case averaged, so correlated repeats
 * are resampled together). */
static int group_compute(co_eval_analysis *a, co__group *g, size_t first, size_t count,
                         int critical_only, uint64_t seed)
{
    int rc = 0;
    const co__result *r = a->results + first;
    double *cand = NULL, *inc = NULL;
    memset(g, 0, sizeof *g);
    g->verdict = CO_GATE_PASS;
    for (size_t i = 0; i < count; i++) {
        if (critical_only && !r[i].critical)
            continue;
        g->rate[r[i].arm].n++;
        g->rate[r[i].arm].passed += (uint64_t)r[i].passed;
    }
    for (int arm = 0; arm < 2; arm++)
        if (g->rate[arm].n && (rc = co_wilson(&g->rate[arm].wilson, g->rate[arm].passed, g->rate[arm].n, a->level)))
            return rc;
    if (count) {
        cand = malloc(count * sizeof *cand);
        inc = malloc(count * sizeof *inc);
        if (!cand || !inc) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
    }
    size_t nc = 0, in_case = 0;
    const co__result *case_start = NULL;
    for (size_t i = 0; i + 1 < count; i++) {
        const co__result *x = &r[i], *y = &r[i + 1];
        if (x->arm != CO__INC || y->arm != CO__CAND || !same_key(x, y))
            continue;
        if (critical_only && !x->critical)
            continue;
        g->pairs++;
        if (x->passed && y->passed)
            g->t.both++;
        else if (x->passed)
            g->t.inc_only++;
        else if (y->passed)
            g->t.cand_only++;
        else
            g->t.neither++;
        if (!case_start || strcmp(case_start->case_id, x->case_id) != 0 ||
            strcmp(case_start->workload, x->workload) != 0) {
            if (case_start) {
                cand[nc] /= (double)in_case;
                inc[nc] /= (double)in_case;
                nc++;
            }
            case_start = x;
            in_case = 0;
            cand[nc] = inc[nc] = 0;
        }
        cand[nc] += y->passed;
        inc[nc] += x->passed;
        in_case++;
        i++; /* y is consumed */
    }
    if (case_start) {
        cand[nc] /= (double)in_case;
        inc[nc] /= (double)in_case;
        nc++;
    }
    g->cases = nc;
    if (g->pairs) {
        if ((rc = co_paired_compare(&g->paired, &g->t, a->level)))
            goto done;
        if ((rc = co_bootstrap_paired_diff(&g->boot, cand, inc, nc, a->bootstrap, a->level, seed, NULL)))
            goto done;
        g->has_boot = 1;
    }
done:
    free(cand);
    free(inc);
    return rc;
}

static uint64_t pairs_to_cases(const co_eval_analysis *a, uint64_t extra_pairs)
{
    if (extra_pairs == CO_STATS_NEVER || a->repeat <= 1)
        return extra_pairs;
    return (extra_pairs + (uint64_t)a->repeat - 1) / (uint64_t)a->repeat;
}

/* The pass-rate gate of a group. max_drop in points. */
static int group_gate(co_eval_analysis *a, co__group *g, double max_drop)
{
    g->gated = 1;
    g->max_drop = max_drop;
    g->extra_cases = 0;
    g->note = NULL;
    if (!g->pairs) {
        g->verdict = CO_GATE_INCONCLUSIVE;
        g->extra_cases = CO_STATS_NEVER;
        g->note = "no case ran on both arms";
        g->gate_ci = (co_interval){NAN, NAN, NAN};
        return 0;
    }
    g->gate_ci = g->paired.diff;
    /* Repeats of one case are not independent pairs: the case-level bootstrap
     * accounts for that, so the gate takes the hull of both intervals. */
    if (a->repeat > 1 && g->has_boot) {
        if (g->boot.lo < g->gate_ci.lo)
            g->gate_ci.lo = g->boot.lo;
        if (g->boot.hi > g->gate_ci.hi)
            g->gate_ci.hi = g->boot.hi;
    }
    if (max_drop <= 0.0) {
        /* No drop allowed: no interval can show a drop of exactly zero, so
         * the rule is per case — any regression fails the gate. */
        g->zero_tolerance = 1;
        g->verdict = g->t.inc_only ? CO_GATE_FAIL : CO_GATE_PASS;
        g->note = g->t.inc_only ? "zero tolerance: a case that passed on the incumbent failed on the candidate"
                                : "zero tolerance: no case regressed";
        return 0;
    }
    g->verdict = co_gate_judge(g->gate_ci.lo, g->gate_ci.hi, max_drop / 100.0);
    if (g->verdict == CO_GATE_INCONCLUSIVE) {
        uint64_t extra = 0;
        int rc = co_gate_more_cases(&extra, &g->t, max_drop / 100.0, a->level, CO__POWER);
        if (rc)
            return rc;
        g->extra_cases = pairs_to_cases(a, extra);
        if (g->extra_cases == 0)
            g->extra_cases = 1; /* inconclusive now: at least one more case */
        g->note = "the interval straddles the allowed drop";
    }
    return 0;
}

static void fold(co_gate_verdict *v, uint64_t *extra, co_gate_verdict g, uint64_t g_extra)
{
    if (g == CO_GATE_FAIL) {
        *v = CO_GATE_FAIL;
    } else if (g == CO_GATE_INCONCLUSIVE) {
        if (*v != CO_GATE_FAIL)
            *v = CO_GATE_INCONCLUSIVE;
        if (g_extra > *extra)
            *extra = g_extra;
    }
}

/* ------------------------------------------------------------ metrics */

static int arm_metrics(co_eval_analysis *a, co__arm_metrics *m, size_t first, size_t count, int arm)
{
    const co__result *r = a->results + first;
    double *lat = NULL;
    int rc = 0;
    double tok = 0;
    m->present = 0;
    for (size_t i = 0; i < count; i++) {
        if (r[i].arm != arm)
            continue;
        m->present = 1;
        m->n++;
        m->cached += (uint64_t)r[i].cached;
        if (r[i].error) {
            m->errors++;
            continue;
        }
        m->ok++;
        m->cost_total += r[i].cost_usd;
        tok += (double)r[i].tokens_out;
    }
    m->lat[0] = m->lat[1] = m->lat[2] = NAN;
    m->cost_per_request = m->ok ? m->cost_total / (double)m->ok : NAN;
    m->tokens_out_mean = m->ok ? tok / (double)m->ok : NAN;
    if (m->n && (rc = co_wilson(&m->error_rate, m->errors, m->n, a->level)))
        return rc;
    if (!m->ok)
        return 0;
    lat = malloc(m->ok * sizeof *lat);
    if (!lat)
        return co_error_set(CO_ENOMEM, "out of memory");
    for (size_t i = 0; i < count; i++)
        if (r[i].arm == arm && !r[i].error && isfinite(r[i].latency_ms) && r[i].latency_ms >= 0)
            lat[m->n_latency++] = r[i].latency_ms;
    if (m->n_latency) {
        static const double qs[3] = {0.5, 0.95, 0.99};
        co_sort_doubles(lat, m->n_latency);
        for (int q = 0; q < 3 && !rc; q++)
            rc = co_quantile_sorted(&m->lat[q], lat, m->n_latency, qs[q], CO_QUANTILE_LINEAR);
    }
    free(lat);
    return rc;
}

static double ratio(double c, double i)
{
    if (!isfinite(c) || !isfinite(i))
        return NAN;
    if (i == 0)
        return c == 0 ? 1.0 : INFINITY;
    return c / i;
}

/* Extra cases for an inconclusive interval to clear a threshold, from its
 * half-width on the threshold's side (it shrinks as 1/sqrt(n)). */
static uint64_t extra_from_width(double est, double lo, double hi, double threshold, uint64_t n,
                                 double level)
{
    double gap = fabs(est - threshold);
    double w = threshold < est ? est - lo : hi - est;
    if (!(gap > 0) || !isfinite(w))
        return CO_STATS_NEVER;
    double z = co_norm_quantile(0.5 + level / 2), zp = co_norm_quantile(CO__POWER);
    double f = ((z + zp) / z) * ((z + zp) / z) * (w / gap) * (w / gap);
    if (f <= 1.0)
        return 1;
    double need = ceil((double)n * f) - (double)n;
    return need > 1e15 ? CO_STATS_NEVER : (uint64_t)need;
}

/* Cost gate: the paired bootstrap of the cost difference over cases where
 * both calls succeeded, as a percent of the incumbent's mean. */
static int cost_gate(co_eval_analysis *a, co__workload *w, double max_pct, uint64_t seed)
{
    co__ratio_gate *g = &w->cost;
    const co__result *r = a->results + w->first;
    double *cand = NULL, *inc = NULL;
    int rc = 0;
    g->gated = 1;
    g->max = max_pct;
    g->verdict = CO_GATE_INCONCLUSIVE;
    g->est = g->lo = g->hi = NAN;
    if (w->count) {
        cand = malloc(w->count * sizeof *cand);
        inc = malloc(w->count * sizeof *inc);
        if (!cand || !inc) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
    }
    size_t nc = 0, in_case = 0;
    const co__result *case_start = NULL;
    for (size_t i = 0; i + 1 < w->count; i++) {
        const co__result *x = &r[i], *y = &r[i + 1];
        if (x->arm != CO__INC || y->arm != CO__CAND || !same_key(x, y))
            continue;
        i++;
        if (x->error || y->error || !isfinite(x->cost_usd) || !isfinite(y->cost_usd))
            continue;
        if (!case_start || strcmp(case_start->case_id, x->case_id) != 0) {
            if (case_start) {
                cand[nc] /= (double)in_case;
                inc[nc] /= (double)in_case;
                nc++;
            }
            case_start = x;
            in_case = 0;
            cand[nc] = inc[nc] = 0;
        }
        cand[nc] += y->cost_usd;
        inc[nc] += x->cost_usd;
        in_case++;
    }
    if (case_start) {
        cand[nc] /= (double)in_case;
        inc[nc] /= (double)in_case;
        nc++;
    }
    if (nc < 2) {
        g->extra_cases = CO_STATS_NEVER;
        g->note = "fewer than two cases succeeded on both arms";
        goto done;
    }
    double mi = 0, mc = 0;
    for (size_t i = 0; i < nc; i++) {
        mi += inc[i];
        mc += cand[i];
    }
    mi /= (double)nc;
    mc /= (double)nc;
    g->computed = 1;
    if (mi <= 0) {
        g->est = g->lo = g->hi = mc > 0 ? INFINITY : 0.0;
        g->verdict = mc > 0 ? CO_GATE_FAIL : CO_GATE_PASS;
        g->note = mc > 0 ? "the incumbent cost nothing; the candidate does" : "neither arm cost anything";
        goto done;
    }
    co_interval d;
    if ((rc = co_bootstrap_paired_diff(&d, cand, inc, nc, a->bootstrap, a->level, seed, NULL)))
        goto done;
    g->est = d.est / mi * 100.0;
    g->lo = d.lo / mi * 100.0;
    g->hi = d.hi / mi * 100.0;
    /* an increase above the maximum fails, one surely below it passes */
    co_trigger_verdict tv = co_trigger_judge(g->lo, g->hi, max_pct);
    g->verdict = tv == CO_TRIGGER_BREACH ? CO_GATE_FAIL : tv == CO_TRIGGER_OK ? CO_GATE_PASS : CO_GATE_INCONCLUSIVE;
    if (g->verdict == CO_GATE_INCONCLUSIVE) {
        g->extra_cases = extra_from_width(g->est, g->lo, g->hi, max_pct, nc, a->level);
        g->note = "the interval straddles the allowed increase";
    }
done:
    free(cand);
    free(inc);
    return rc;
}

/* Latency gate: bootstrap interval of the p95 ratio (independent samples of
 * successful calls), at the two-sided level. */
static int latency_gate(co_eval_analysis *a, co__workload *w, double ratio_max, uint64_t seed)
{
    co__ratio_gate *g = &w->latency;
    const co__result *r = a->results + w->first;
    double *lat[2] = {NULL, NULL};
    size_t n[2] = {0, 0};
    int rc = 0;
    g->gated = 1;
    g->max = ratio_max;
    g->verdict = CO_GATE_INCONCLUSIVE;
    g->est = g->lo = g->hi = NAN;
    for (int arm = 0; arm < 2; arm++)
        if (w->count && !(lat[arm] = malloc(w->count * sizeof(double)))) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
    for (size_t i = 0; i < w->count; i++)
        if (!r[i].error && isfinite(r[i].latency_ms) && r[i].latency_ms >= 0)
            lat[r[i].arm][n[r[i].arm]++] = r[i].latency_ms;
    if (!n[0] || !n[1]) {
        g->extra_cases = CO_STATS_NEVER;
        g->note = "an arm has no successful call";
        goto done;
    }
    co_trigger_result tr;
    double conf = 0.5 + a->level / 2;
    if ((rc = co_trigger_quantile_ratio(&tr, lat[CO__CAND], n[CO__CAND], lat[CO__INC], n[CO__INC], 0.95,
                                        ratio_max, conf, a->bootstrap, seed, NULL)))
        goto done;
    g->computed = 1;
    g->est = tr.est;
    g->lo = tr.lo;
    g->hi = tr.hi;
    g->verdict = tr.verdict == CO_TRIGGER_BREACH ? CO_GATE_FAIL
                 : tr.verdict == CO_TRIGGER_OK   ? CO_GATE_PASS
                                                 : CO_GATE_INCONCLUSIVE;
    if (g->verdict == CO_GATE_INCONCLUSIVE) {
        uint64_t ec = 0, ei = 0;
        if ((rc = co_trigger_more_samples(&ec, &ei, &tr, n[CO__CAND], n[CO__INC], CO__POWER)))
            goto done;
        uint64_t e = ec > ei ? ec : ei;
        g->extra_cases = pairs_to_cases(a, e ? e : 1);
        g->note = "the interval straddles the allowed ratio";
    }
done:
    free(lat[0]);
    free(lat[1]);
    return rc;
}

/* Regressions (passed on the incumbent, failed on the candidate) and
 * improvements; critical cases listed first, then by case id and repeat. */
static int list_changes(co_eval_analysis *a, co__workload *w)
{
    const co__result *r = a->results;
    size_t end = w->first + w->count;
    size_t cap = a->max_listed;
    if (cap) {
        w->regressions = calloc(cap, sizeof *w->regressions);
        w->improvements = calloc(cap, sizeof *w->improvements);
        if (!w->regressions || !w->improvements)
            return co_error_set(CO_ENOMEM, "out of memory");
    }
    for (int pass = 0; pass < 2; pass++) {
        int want_critical = pass == 0;
        for (size_t i = w->first; i + 1 < end; i++) {
            const co__result *x = &r[i], *y = &r[i + 1];
            if (x->arm != CO__INC || y->arm != CO__CAND || !same_key(x, y))
                continue;
            i++;
            if (x->critical != want_critical || x->passed == y->passed)
                continue;
            co__pair_ref ref = {i - 1, i};
            if (x->passed) {
                w->n_regressions++;
                if (w->listed_regressions < cap)
                    w->regressions[w->listed_regressions++] = ref;
            } else {
                w->n_improvements++;
                if (w->listed_improvements < cap)
                    w->improvements[w->listed_improvements++] = ref;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------ per workload */

typedef struct cfg_set {
    json_t *gate_cfg;        /* gates, volume: the candidate's run */
    json_t *arm_cfg[2];      /* where each arm's model is described */
    const char *arm_key[2];  /* under which arm name */
} cfg_set;

static int set_model(co__arm_metrics *m, json_t *cfg, const char *wname, const char *key)
{
    json_t *wl = cfg_workload(cfg, wname);
    const char *model = json_string_value(json_object_get(json_object_get(wl, key), "model"));
    if (!model)
        return 0;
    free(m->model);
    m->model = strdup(model);
    return m->model ? 0 : co_error_set(CO_ENOMEM, "out of memory");
}

static int workload_compute(co_eval_analysis *a, co__workload *w, const cfg_set *cs)
{
    int rc;
    json_t *wl = cfg_workload(cs->gate_cfg, w->name);
    json_t *gate = json_object_get(wl, "gate");
    double drop = cfg_num(gate, "pass_rate_drop_max", 2.0);
    double crit_drop = cfg_num(gate, "critical_pass_rate_drop_max", 0.0);
    double cost_max = cfg_num(gate, "cost_increase_max", 0.0);
    double lat_max = cfg_num(gate, "latency_p95_ratio_max", 0.0);
    json_t *vol = json_object_get(wl, "monthly_requests");

    for (int arm = 0; arm < 2; arm++) {
        if ((rc = arm_metrics(a, &w->arm[arm], w->first, w->count, arm)))
            return rc;
        if (w->arm[arm].present && cs->arm_cfg[arm] &&
            (rc = set_model(&w->arm[arm], cs->arm_cfg[arm], w->name, cs->arm_key[arm])))
            return rc;
        for (size_t i = w->first; i < w->first + w->count; i++)
            if (a->results[i].arm == arm) {
                w->arm[arm].run_id = a->results[i].run_id;
                break;
            }
    }
    w->compared = w->arm[CO__INC].present && w->arm[CO__CAND].present;
    if (json_is_number(vol) && json_number_value(vol) >= 0) {
        w->has_volume = 1;
        w->monthly_requests = (int64_t)llround(json_number_value(vol));
        for (int arm = 0; arm < 2; arm++)
            if (w->arm[arm].present && isfinite(w->arm[arm].cost_per_request)) {
                w->arm[arm].has_monthly = 1;
                w->arm[arm].monthly_cost = w->arm[arm].cost_per_request * (double)w->monthly_requests;
            }
    }
    w->cost_ratio = ratio(w->arm[CO__CAND].cost_per_request, w->arm[CO__INC].cost_per_request);
    for (int q = 0; q < 3; q++)
        w->lat_ratio[q] = ratio(w->arm[CO__CAND].lat[q], w->arm[CO__INC].lat[q]);

    if ((rc = group_compute(a, &w->all, w->first, w->count, 0, group_seed(a, w->name, "all"))))
        return rc;
    if ((rc = group_compute(a, &w->critical, w->first, w->count, 1, group_seed(a, w->name, "critical"))))
        return rc;
    w->has_critical = w->critical.rate[0].n + w->critical.rate[1].n > 0;
    if ((rc = co__drift_compute(&w->drift, a->results + w->first, w->count, a->level)))
        return rc;

    w->verdict = CO_GATE_PASS;
    w->extra_cases = 0;
    if (!w->compared)
        return 0;
    if ((rc = list_changes(a, w)))
        return rc;
    if ((rc = group_gate(a, &w->all, drop)))
        return rc;
    fold(&w->verdict, &w->extra_cases, w->all.verdict, w->all.extra_cases);
    if (w->has_critical) {
        if ((rc = group_gate(a, &w->critical, crit_drop)))
            return rc;
        fold(&w->verdict, &w->extra_cases, w->critical.verdict, w->critical.extra_cases);
    }
    if (cost_max > 0) {
        if ((rc = cost_gate(a, w, cost_max, group_seed(a, w->name, "cost"))))
            return rc;
        fold(&w->verdict, &w->extra_cases, w->cost.verdict, w->cost.extra_cases);
    }
    if (lat_max > 0) {
        if ((rc = latency_gate(a, w, lat_max, group_seed(a, w->name, "latency"))))
            return rc;
        fold(&w->verdict, &w->extra_cases, w->latency.verdict, w->latency.extra_cases);
    }
    return 0;
}

static int overall_compute(co_eval_analysis *a)
{
    co__workload *o = &a->overall;
    int rc;
    o->first = 0;
    o->count = a->n_results;
    for (int arm = 0; arm < 2; arm++)
        if ((rc = arm_metrics(a, &o->arm[arm], 0, a->n_results, arm)))
            return rc;
    o->compared = a->compared;
    /* projected cost: the sum over the workloads with a recorded volume */
    for (size_t i = 0; i < a->n_w; i++) {
        const co__workload *w = &a->w[i];
        if (!w->has_volume)
            continue;
        o->has_volume = 1;
        o->monthly_requests += w->monthly_requests;
        for (int arm = 0; arm < 2; arm++)
            if (w->arm[arm].has_monthly) {
                o->arm[arm].has_monthly = 1;
                o->arm[arm].monthly_cost += w->arm[arm].monthly_cost;
            }
    }
    for (size_t i = 0; i < a->n_w; i++) {
        o->n_regressions += a->w[i].n_regressions;
        o->n_improvements += a->w[i].n_improvements;
    }
    o->cost_ratio = ratio(o->arm[CO__CAND].cost_per_request, o->arm[CO__INC].cost_per_request);
    for (int q = 0; q < 3; q++)
        o->lat_ratio[q] = ratio(o->arm[CO__CAND].lat[q], o->arm[CO__INC].lat[q]);
    if ((rc = group_compute(a, &o->all, 0, a->n_results, 0, group_seed(a, NULL, "all"))))
        return rc;
    if ((rc = group_compute(a, &o->critical, 0, a->n_results, 1, group_seed(a, NULL, "critical"))))
        return rc;
    o->has_critical = o->critical.rate[0].n + o->critical.rate[1].n > 0;
    return co__drift_compute(&o->drift, a->results, a->n_results, a->level);
}

/* ------------------------------------------------------------ analyze */

static int mark_critical(co__results *rs, json_t *cfg)
{
    json_t *cases = json_object_get(cfg, "cases");
    if (!json_is_object(cases))
        return 0;
    for (size_t i = 0; i < rs->n; i++) {
        json_t *c = json_object_get(cases, rs->v[i].case_id);
        if (json_is_true(json_object_get(c, "critical")))
            rs->v[i].critical = 1;
    }
    return 0;
}

static int has_arm(const co__results *rs, int arm)
{
    for (size_t i = 0; i < rs->n; i++)
        if (rs->v[i].arm == arm)
            return 1;
    return 0;
}

/* A candidate-only run: each workload's incumbent side comes from the run
 * its saved baseline was taken from. */
typedef struct run_cfg {
    int64_t id;
    json_t *cfg;
} run_cfg;

static json_t *run_cfg_find(const run_cfg *v, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].id == id)
            return v[i].cfg;
    return NULL;
}

static int load_baselines(co_eval_analysis *a, co_store *st, co__results *all, run_cfg **cfgs,
                          size_t *n_cfgs)
{
    int rc = 0;
    size_t n_cand = all->n;
    char *json = NULL;
    co_eval_run brun = {0};
    qsort(all->v, all->n, sizeof *all->v, cmp_result);
    for (size_t i = 0; i < n_cand; i++) {
        if (i > 0 && strcmp(all->v[i].workload, all->v[i - 1].workload) == 0)
            continue;
        /* all->v may move as incumbent results are appended: copy the name */
        char wname[512];
        snprintf(wname, sizeof wname, "%s", all->v[i].workload);
        int64_t brun_id = 0;
        if ((rc = co_store_baseline_get(st, wname, &json, &brun_id))) {
            if (rc == CO_ENOENT)
                rc = co_error_set(CO_ENOENT,
                                  "run %" PRId64 " ran only the candidate and workload '%s' has no saved "
                                  "baseline (save one with `cutover eval --arm incumbent --save-baseline`)",
                                  a->run_a, wname);
            goto done;
        }
        free(json);
        json = NULL;
        if (brun_id <= 0) {
            rc = co_error_set(CO_ENOENT, "the baseline of workload '%s' refers to an eval run that no longer exists",
                              wname);
            goto done;
        }
        if ((rc = co_store_eval_run_get(st, brun_id, &brun))) {
            if (rc == CO_ENOENT)
                rc = co_error_set(CO_ENOENT, "the baseline of workload '%s' refers to eval run %" PRId64
                                             ", which no longer exists", wname, brun_id);
            goto done;
        }
        if ((rc = add_run(a, &brun, "baseline")))
            goto done;
        if (!run_cfg_find(*cfgs, *n_cfgs, brun_id)) {
            run_cfg *v = realloc(*cfgs, (*n_cfgs + 1) * sizeof *v);
            if (!v) {
                rc = co_error_set(CO_ENOMEM, "out of memory");
                goto done;
            }
            *cfgs = v;
            v[*n_cfgs].id = brun_id;
            if ((rc = parse_config(&v[*n_cfgs].cfg, &brun)))
                goto done;
            (*n_cfgs)++;
        }
        size_t before = all->n;
        if ((rc = load_results(st, all, brun_id, CO__INC, wname)))
            goto done;
        if (all->n == before) {
            rc = co_error_set(CO_ENOENT, "the baseline of workload '%s' (eval run %" PRId64
                                         ") holds no incumbent results for it", wname, brun_id);
            goto done;
        }
        co_eval_run_clear(&brun);
        memset(&brun, 0, sizeof brun);
    }
done:
    free(json);
    co_eval_run_clear(&brun);
    return rc;
}

int co_eval_analyze(co_eval_analysis **out, co_store *st, int64_t run_a, int64_t run_b,
                    const co_compare_opts *opts)
{
    int rc = 0;
    co_eval_analysis *a = calloc(1, sizeof *a);
    co_eval_run ra = {0}, rb = {0};
    json_t *cfg_a = NULL, *cfg_b = NULL;
    run_cfg *bcfgs = NULL;
    size_t n_bcfgs = 0;
    co__results all = {0}, other = {0};
    *out = NULL;
    if (!a)
        return co_error_set(CO_ENOMEM, "out of memory");
    co_compare_opts o = opts ? *opts : (co_compare_opts){0};
    a->level = o.level > 0 ? o.level : 0.95;
    a->bootstrap = o.bootstrap ? o.bootstrap : CO_BOOTSTRAP_B_DEFAULT;
    a->seed = o.seed ? o.seed : CO__DEFAULT_SEED;
    a->inconclusive_as = o.inconclusive_as;
    a->max_listed = o.max_listed ? o.max_listed : 50;
    a->run_a = run_a;
    a->run_b = run_b;
    if (!(a->level > 0 && a->level < 1)) {
        rc = co_error_set(CO_EINVAL, "confidence level must be in (0, 1), got %g", a->level);
        goto done;
    }
    if (a->bootstrap < CO_BOOTSTRAP_B_MIN || a->bootstrap > CO_BOOTSTRAP_B_MAX) {
        rc = co_error_set(CO_EINVAL, "bootstrap resamples must be in [%u, %u], got %u", CO_BOOTSTRAP_B_MIN,
                          CO_BOOTSTRAP_B_MAX, a->bootstrap);
        goto done;
    }

    if ((rc = co_store_eval_run_get(st, run_a, &ra)) || (rc = parse_config(&cfg_a, &ra)))
        goto done;
    if ((rc = load_results(st, &all, run_a, -1, NULL)))
        goto done;
    if (!all.n) {
        rc = co_error_set(CO_EINVAL, "eval run %" PRId64 " has no results", run_a);
        goto done;
    }
    cfg_set cs = {.gate_cfg = cfg_a, .arm_cfg = {cfg_a, cfg_a}, .arm_key = {"incumbent", "candidate"}};
    int a_inc = has_arm(&all, CO__INC), a_cand = has_arm(&all, CO__CAND);
    if (run_b) {
        a->mode = CO__MODE_RUNS;
        if ((rc = co_store_eval_run_get(st, run_b, &rb)) || (rc = parse_config(&cfg_b, &rb)))
            goto done;
        if ((rc = load_results(st, &other, run_b, -1, NULL)))
            goto done;
        if (!other.n) {
            rc = co_error_set(CO_EINVAL, "eval run %" PRId64 " has no results", run_b);
            goto done;
        }
        /* run A: its incumbent arm, or its only arm */
        int take_a = a_inc ? CO__INC : CO__CAND;
        int take_b = has_arm(&other, CO__CAND) ? CO__CAND : CO__INC;
        co__results picked = {0};
        if ((rc = results_take(&picked, &all, take_a, CO__INC)) ||
            (rc = results_take(&picked, &other, take_b, CO__CAND))) {
            results_free(&picked);
            goto done;
        }
        results_free(&all);
        all = picked;
        cs.gate_cfg = cfg_b;
        cs.arm_cfg[CO__INC] = cfg_a;
        cs.arm_key[CO__INC] = co__arm_name(take_a);
        cs.arm_cfg[CO__CAND] = cfg_b;
        cs.arm_key[CO__CAND] = co__arm_name(take_b);
        if ((rc = add_run(a, &ra, take_a == CO__INC ? "incumbent" : "candidate (as incumbent)")) ||
            (rc = add_run(a, &rb, take_b == CO__CAND ? "candidate" : "incumbent (as candidate)")))
            goto done;
        if (run_a == run_b)
            a->runs[0].role = "both arms";
        mark_critical(&all, cfg_a);
        mark_critical(&all, cfg_b);
    } else if (a_inc && a_cand) {
        a->mode = CO__MODE_ARMS;
        if ((rc = add_run(a, &ra, "both arms")))
            goto done;
        mark_critical(&all, cfg_a);
    } else if (a_cand) {
        a->mode = CO__MODE_BASELINE;
        if ((rc = add_run(a, &ra, "candidate")))
            goto done;
        if ((rc = load_baselines(a, st, &all, &bcfgs, &n_bcfgs)))
            goto done;
        cs.arm_cfg[CO__INC] = NULL; /* per workload below */
        mark_critical(&all, cfg_a);
    } else {
        a->mode = CO__MODE_SINGLE;
        if ((rc = add_run(a, &ra, "incumbent")))
            goto done;
        mark_critical(&all, cfg_a);
    }

    qsort(all.v, all.n, sizeof *all.v, cmp_result);
    a->results = all.v;
    a->n_results = all.n;
    all = (co__results){0};
    for (size_t i = 0; i < a->n_results; i++) {
        a->has_arm[a->results[i].arm] = 1;
        if (a->results[i].repeat + 1 > a->repeat)
            a->repeat = a->results[i].repeat + 1;
    }
    if (a->mode == CO__MODE_RUNS && (!a->has_arm[CO__INC] || !a->has_arm[CO__CAND])) {
        rc = co_error_set(CO_EINVAL, "eval runs %" PRId64 " and %" PRId64 " have nothing to compare", run_a, run_b);
        goto done;
    }

    /* workloads: contiguous ranges of the sorted results */
    for (size_t i = 0; i < a->n_results;) {
        size_t j = i + 1;
        while (j < a->n_results && strcmp(a->results[j].workload, a->results[i].workload) == 0)
            j++;
        co__workload *v = realloc(a->w, (a->n_w + 1) * sizeof *v);
        if (!v) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
        a->w = v;
        co__workload *w = &a->w[a->n_w++];
        memset(w, 0, sizeof *w);
        w->first = i;
        w->count = j - i;
        if (!(w->name = strdup(a->results[i].workload))) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
        i = j;
    }
    size_t shared = 0;
    for (size_t i = 0; i < a->n_w; i++) {
        co__workload *w = &a->w[i];
        cfg_set wcs = cs;
        if (a->mode == CO__MODE_BASELINE) {
            /* the baseline run of this workload: the run id on its incumbent results */
            for (size_t k = w->first; k < w->first + w->count; k++)
                if (a->results[k].arm == CO__INC) {
                    w->baseline_run = a->results[k].run_id;
                    break;
                }
            wcs.arm_cfg[CO__INC] = run_cfg_find(bcfgs, n_bcfgs, w->baseline_run);
        }
        if (a->mode == CO__MODE_RUNS && !cfg_workload(cfg_b, w->name))
            wcs.gate_cfg = cfg_a;
        if ((rc = workload_compute(a, w, &wcs)))
            goto done;
        if (w->compared) {
            a->compared = 1;
            shared++;
        }
    }
    if (a->mode == CO__MODE_RUNS && !shared) {
        rc = co_error_set(CO_EINVAL, "eval runs %" PRId64 " and %" PRId64 " share no workload", run_a, run_b);
        goto done;
    }
    if ((a->mode == CO__MODE_RUNS || a->mode == CO__MODE_BASELINE)) {
        uint64_t pairs = 0;
        for (size_t i = 0; i < a->n_w; i++)
            pairs += a->w[i].all.pairs;
        if (!pairs) {
            if (a->mode == CO__MODE_RUNS)
                rc = co_error_set(CO_EINVAL, "eval runs %" PRId64 " and %" PRId64 " share no case", run_a, run_b);
            else
                rc = co_error_set(CO_EINVAL, "eval run %" PRId64 " shares no case with its baselines", run_a);
            goto done;
        }
    }
    if ((rc = overall_compute(a)))
        goto done;
    a->verdict = CO_GATE_PASS;
    a->extra_cases = 0;
    for (size_t i = 0; i < a->n_w; i++)
        if (a->w[i].compared || a->compared)
            fold(&a->verdict, &a->extra_cases, a->w[i].compared ? a->w[i].verdict : CO_GATE_INCONCLUSIVE,
                 a->w[i].compared ? a->w[i].extra_cases : CO_STATS_NEVER);
    a->overall.verdict = a->verdict;
    a->overall.extra_cases = a->extra_cases;
    *out = a;
    a = NULL;
done:
    co_eval_analysis_free(a);
    co_eval_run_clear(&ra);
    co_eval_run_clear(&rb);
    json_decref(cfg_a);
    json_decref(cfg_b);
    for (size_t i = 0; i < n_bcfgs; i++)
        json_decref(bcfgs[i].cfg);
    free(bcfgs);
    results_free(&all);
    results_free(&other);
    return rc;
}

/* ------------------------------------------------------------ exit code */

int co_eval_analysis_exit_code(const co_eval_analysis *a)
{
    if (!a || !a->compared)
        return 0;
    switch (a->verdict) {
    case CO_GATE_PASS: return 0;
    case CO_GATE_FAIL: return 1;
    case CO_GATE_INCONCLUSIVE: break;
    }
    return a->inconclusive_as == 1 ? 1 : a->inconclusive_as == 2 ? 0 : 3;
}

/* ------------------------------------------------------------ summary */

static const char *verdict_upper(co_gate_verdict v)
{
    switch (v) {
    case CO_GATE_PASS: return "PASS";
    case CO_GATE_FAIL: return "FAIL";
    case CO_GATE_INCONCLUSIVE: break;
    }
    return "INCONCLUSIVE";
}

static int summary_group(co_buf *b, const co_eval_analysis *a, const char *label, const co__group *g)
{
    char ri[16], rc_[16], d[16], lo[16], hi[16], p[16], mx[32], ex[96];
    co__fmt_pct(ri, sizeof ri, g->rate[CO__INC].n ? (double)g->rate[CO__INC].passed / (double)g->rate[CO__INC].n : NAN);
    co__fmt_pct(rc_, sizeof rc_, g->rate[CO__CAND].n ? (double)g->rate[CO__CAND].passed / (double)g->rate[CO__CAND].n : NAN);
    int r = co_buf_printf(b, "  %-22s %-12s pass %s -> %s", label, verdict_upper(g->verdict), ri, rc_);
    if (!r && g->pairs) {
        co__fmt_pts(d, sizeof d, g->paired.diff.est);
        co__fmt_pts(lo, sizeof lo, g->gate_ci.lo);
        co__fmt_pts(hi, sizeof hi, g->gate_ci.hi);
        co__fmt_p(p, sizeof p, g->paired.p_exact);
        r = co_buf_printf(b, "  diff %s pts [%s, %s]  %" PRIu64 " regressed, %" PRIu64 " improved, McNemar p %s", d,
                          lo, hi, g->t.inc_only, g->t.cand_only, p);
    }
    if (!r && g->gated) {
        if (g->zero_tolerance)
            snprintf(mx, sizeof mx, "no regression allowed");
        else
            snprintf(mx, sizeof mx, "max drop %g pts", g->max_drop);
        r = co_buf_printf(b, "  (%s)", mx);
    }
    if (!r && g->verdict == CO_GATE_INCONCLUSIVE) {
        co__fmt_extra(ex, sizeof ex, g->extra_cases);
        if (*ex)
            r = co_buf_printf(b, "; %s", ex);
    }
    (void)a;
    return r ? r : co_buf_puts(b, "\n");
}

static int summary_ratio(co_buf *b, const char *label, const co__ratio_gate *g, int pct)
{
    char e[24], lo[24], hi[24], ex[96];
    if (pct) {
        snprintf(e, sizeof e, "%+.1f%%", tidy(g->est, 1));
        snprintf(lo, sizeof lo, "%+.1f%%", tidy(g->lo, 1));
        snprintf(hi, sizeof hi, "%+.1f%%", tidy(g->hi, 1));
    } else {
        co__fmt_ratio(e, sizeof e, g->est);
        co__fmt_ratio(lo, sizeof lo, g->lo);
        co__fmt_ratio(hi, sizeof hi, g->hi);
    }
    int r = co_buf_printf(b, "  %-22s %-12s", label, verdict_upper(g->verdict));
    if (!r && g->computed)
        r = co_buf_printf(b, " %s [%s, %s]", e, lo, hi);
    if (!r)
        r = pct ? co_buf_printf(b, "  (max +%g%%)", g->max) : co_buf_printf(b, "  (max %gx)", g->max);
    if (!r && g->note && g->verdict != CO_GATE_PASS && g->verdict != CO_GATE_FAIL)
        r = co_buf_printf(b, "; %s", g->note);
    if (!r && g->verdict == CO_GATE_INCONCLUSIVE) {
        co__fmt_extra(ex, sizeof ex, g->extra_cases);
        if (*ex)
            r = co_buf_printf(b, "; %s", ex);
    }
    return r ? r : co_buf_puts(b, "\n");
}

int co_eval_analysis_summary(co_buf *out, const co_eval_analysis *a)
{
    int r = 0;
    char ex[96];
    switch (a->mode) {
    case CO__MODE_ARMS:
        r = co_buf_printf(out, "eval run %" PRId64 ": candidate vs incumbent", a->run_a);
        break;
    case CO__MODE_BASELINE:
        r = co_buf_printf(out, "eval run %" PRId64 ": candidate vs saved baselines", a->run_a);
        break;
    case CO__MODE_RUNS:
        r = co_buf_printf(out, "eval runs %" PRId64 " (incumbent) vs %" PRId64 " (candidate)", a->run_a, a->run_b);
        break;
    case CO__MODE_SINGLE:
        r = co_buf_printf(out, "eval run %" PRId64 ": %s arm only, nothing compared", a->run_a,
                          a->has_arm[CO__CAND] ? "candidate" : "incumbent");
        break;
    }
    if (!r)
        r = co_buf_printf(out, ", %zu workload%s, %zu results, repeat %d\n", a->n_w, a->n_w == 1 ? "" : "s",
                          a->n_results, a->repeat);
    for (size_t i = 0; i < a->n_w && !r; i++) {
        const co__workload *w = &a->w[i];
        if (!w->compared) {
            char pr[16];
            int arm = w->arm[CO__INC].present ? CO__INC : CO__CAND;
            const co__rate *rt = &w->all.rate[arm];
            co__fmt_pct(pr, sizeof pr, rt->n ? (double)rt->passed / (double)rt->n : NAN);
            r = co_buf_printf(out, "%s: %s pass %s (%" PRIu64 " results)%s\n", w->name, co__arm_name(arm), pr,
                              rt->n, a->compared ? "; only one arm ran: INCONCLUSIVE" : "");
            continue;
        }
        r = co_buf_printf(out, "%s: %s\n", w->name, verdict_upper(w->verdict));
        if (!r)
            r = summary_group(out, a, "pass rate", &w->all);
        if (!r && w->has_critical)
            r = summary_group(out, a, "critical cases", &w->critical);
        if (!r && w->cost.gated)
            r = summary_ratio(out, "cost per request", &w->cost, 1);
        if (!r && w->latency.gated)
            r = summary_ratio(out, "latency p95 ratio", &w->latency, 0);
        if (!r && w->drift.any_flagged) {
            r = co_buf_puts(out, "  format drift:");
            if (!r && w->drift.len_flagged)
                r = co_buf_puts(out, " output length;");
            for (int k = 0; k < CO__DRIFT_NRATES && !r; k++)
                if (w->drift.rates[k].flagged)
                    r = co_buf_printf(out, " %s;", co__drift_rate_name(k));
            if (!r)
                r = co_buf_puts(out, "\n");
        }
    }
    if (r)
        return r;
    if (!a->compared)
        return co_buf_printf(out, "overall: nothing gated (exit 0)\n");
    r = co_buf_printf(out, "overall: %s (exit %d)", verdict_upper(a->verdict), co_eval_analysis_exit_code(a));
    if (!r && a->verdict == CO_GATE_INCONCLUSIVE) {
        co__fmt_extra(ex, sizeof ex, a->extra_cases);
        if (*ex)
            r = co_buf_printf(out, "; %s", ex);
    }
    return r ? r : co_buf_puts(out, "\n");
}

/* ------------------------------------------------------------ baselines */

int co_eval_save_baselines(co_store *st, const co_eval_analysis *a)
{
    if (!a->has_arm[CO__INC])
        return co_error_set(CO_EINVAL, "the analysis has no incumbent arm: no baseline to save");
    int rc = 0;
    for (size_t i = 0; i < a->n_w && !rc; i++) {
        const co__workload *w = &a->w[i];
        const co__arm_metrics *m = &w->arm[CO__INC];
        if (!m->present)
            continue;
        const co__rate *rt = &w->all.rate[CO__INC];
        json_t *j = json_object();
        char *s = NULL;
#define NUM_OR_NULL(x) (isfinite(x) ? json_real(x) : json_null())
        if (!j || json_object_set_new(j, "pass_rate", json_real((double)rt->passed / (double)rt->n)) ||
            json_object_set_new(j, "n", json_integer((json_int_t)rt->n)) ||
            json_object_set_new(j, "cost_per_request", NUM_OR_NULL(m->cost_per_request)) ||
            json_object_set_new(j, "latency_p50", NUM_OR_NULL(m->lat[0])) ||
            json_object_set_new(j, "latency_p95", NUM_OR_NULL(m->lat[1])) ||
            json_object_set_new(j, "latency_p99", NUM_OR_NULL(m->lat[2])) ||
            json_object_set_new(j, "error_rate", json_real((double)m->errors / (double)m->n)) ||
            json_object_set_new(j, "model", m->model ? json_string(m->model) : json_null()) ||
            json_object_set_new(j, "run_id", json_integer(m->run_id)) ||
            !(s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12))))
            rc = co_error_set(CO_ENOMEM, "out of memory");
#undef NUM_OR_NULL
        json_decref(j);
        if (!rc)
            rc = co_store_baseline_put(st, w->name, m->run_id, s);
        free(s);
    }
    return rc;
}
