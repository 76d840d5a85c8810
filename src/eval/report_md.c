/* report.md: the analysis for a pull request or a wiki page — the verdict,
 * the gates per workload, cost and latency per arm, format drift, the
 * regressions and improvements with both outputs, and how to read the
 * numbers. Everything that came from a model or a suite is escaped (text)
 * or fenced (outputs). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cutover/error.h"
#include "eval/report_int.h"

typedef co__rw md;

static void esc(md *m, const char *s)
{
    if (!m->rc)
        m->rc = co__esc_md(m->b, s);
}

static const char *upper(co_gate_verdict v)
{
    return v == CO_GATE_PASS ? "PASS" : v == CO_GATE_FAIL ? "FAIL" : "INCONCLUSIVE";
}

/* "92.0% [85.1%, 96.0%] (46/50)" */
static void rate_cell(md *m, const co__group *g, int arm)
{
    const co__rate *r = &g->rate[arm];
    char p[16], lo[16], hi[16];
    if (!r->n) {
        co__rw_put(m, "–");
        return;
    }
    co__fmt_pct(p, sizeof p, co__group_rate(g, arm));
    co__fmt_pct(lo, sizeof lo, r->wilson.lo);
    co__fmt_pct(hi, sizeof hi, r->wilson.hi);
    co__rw_printf(m, "%s [%s, %s] (%" PRIu64 "/%" PRIu64 ")", p, lo, hi, r->passed, r->n);
}

static void gate_row(md *m, const char *label, int critical, const co__group *g)
{
    char d[16], lo[16], hi[16], p[16], ex[96];
    co__rw_put(m, "| ");
    esc(m, label);
    if (critical)
        co__rw_put(m, " · critical");
    co__rw_printf(m, " | **%s** | ", g->gated ? upper(g->verdict) : "–");
    rate_cell(m, g, CO__INC);
    co__rw_put(m, " | ");
    rate_cell(m, g, CO__CAND);
    if (g->pairs) {
        co__fmt_pts(d, sizeof d, g->paired.diff.est);
        co__fmt_pts(lo, sizeof lo, g->gated ? g->gate_ci.lo : g->paired.diff.lo);
        co__fmt_pts(hi, sizeof hi, g->gated ? g->gate_ci.hi : g->paired.diff.hi);
        co__fmt_p(p, sizeof p, g->paired.p_exact);
        co__rw_printf(m, " | %s [%s, %s] | %" PRIu64 " / %" PRIu64 " | %s", d, lo, hi, g->t.inc_only, g->t.cand_only, p);
    } else {
        co__rw_put(m, " | – | – | –");
    }
    if (!g->gated)
        co__rw_put(m, " | – | ");
    else if (g->zero_tolerance)
        co__rw_put(m, " | no regression | ");
    else
        co__rw_printf(m, " | drop ≤ %g pts | ", g->max_drop);
    co__fmt_extra(ex, sizeof ex, g->verdict == CO_GATE_INCONCLUSIVE ? g->extra_cases : 0);
    esc(m, ex);
    co__rw_put(m, " |\n");
}

static void ratio_gate_row(md *m, const char *wname, const char *label, const co__ratio_gate *g, int pct)
{
    char e[32], lo[32], hi[32], ex[96];
    co__rw_put(m, "| ");
    esc(m, wname);
    co__rw_printf(m, " | %s | **%s** | ", label, upper(g->verdict));
    if (g->computed && pct) {
        snprintf(e, sizeof e, "%+.1f%%", round(g->est * 10) / 10 + 0.0);
        snprintf(lo, sizeof lo, "%+.1f%%", round(g->lo * 10) / 10 + 0.0);
        snprintf(hi, sizeof hi, "%+.1f%%", round(g->hi * 10) / 10 + 0.0);
        co__rw_printf(m, "%s [%s, %s] | ≤ +%g%%", e, lo, hi, g->max);
    } else if (g->computed) {
        co__fmt_ratio(e, sizeof e, g->est);
        co__fmt_ratio(lo, sizeof lo, g->lo);
        co__fmt_ratio(hi, sizeof hi, g->hi);
        co__rw_printf(m, "%s [%s, %s] | ≤ %gx", e, lo, hi, g->max);
    } else {
        co__rw_printf(m, "– | %s%g%s", pct ? "≤ +" : "≤ ", g->max, pct ? "%" : "x");
    }
    co__rw_put(m, " | ");
    co__fmt_extra(ex, sizeof ex, g->verdict == CO_GATE_INCONCLUSIVE ? g->extra_cases : 0);
    if (g->note && g->verdict == CO_GATE_INCONCLUSIVE) {
        esc(m, g->note);
        if (*ex)
            co__rw_put(m, "; ");
    }
    esc(m, ex);
    co__rw_put(m, " |\n");
}

static void run_table(md *m, const co_eval_analysis *a)
{
    char t[32];
    co__rw_put(m, "| run | role | suite | status | started | finished |\n|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < a->n_runs; i++) {
        const co__run_info *r = &a->runs[i];
        co__rw_printf(m, "| %" PRId64 " | %s | ", r->id, r->role);
        esc(m, r->suite ? r->suite : "");
        co__rw_put(m, " | ");
        esc(m, r->status ? r->status : "");
        co__fmt_time(t, sizeof t, r->started_ms);
        co__rw_printf(m, " | %s | ", *t ? t : "–");
        co__fmt_time(t, sizeof t, r->finished_ms);
        co__rw_printf(m, "%s |\n", *t ? t : "–");
    }
}

static void metrics_rows(md *m, const co__workload *w, const char *label)
{
    for (int arm = 0; arm < 2; arm++) {
        const co__arm_metrics *x = &w->arm[arm];
        if (!x->present)
            continue;
        char c[32], mo[32], l0[24], l1[24], l2[24], er[16];
        co__fmt_usd(c, sizeof c, x->cost_per_request);
        co__fmt_ms(l0, sizeof l0, x->lat[0]);
        co__fmt_ms(l1, sizeof l1, x->lat[1]);
        co__fmt_ms(l2, sizeof l2, x->lat[2]);
        co__fmt_pct(er, sizeof er, x->n ? (double)x->errors / (double)x->n : NAN);
        if (x->has_monthly)
            co__fmt_usd(mo, sizeof mo, x->monthly_cost);
        co__rw_put(m, "| ");
        esc(m, label);
        co__rw_printf(m, " | %s | ", co__arm_name(arm));
        esc(m, x->model ? x->model : "–");
        co__rw_printf(m, " | %s | %s | %s | %s | %s | %s (%" PRIu64 "/%" PRIu64 ") |\n", c,
           x->has_monthly ? mo : "no recorded volume", l0, l1, l2, er, x->errors, x->n);
    }
    if (w->arm[0].present && w->arm[1].present) {
        char c[16], r0[16], r1[16], r2[16];
        co__fmt_ratio(c, sizeof c, w->cost_ratio);
        co__fmt_ratio(r0, sizeof r0, w->lat_ratio[0]);
        co__fmt_ratio(r1, sizeof r1, w->lat_ratio[1]);
        co__fmt_ratio(r2, sizeof r2, w->lat_ratio[2]);
        co__rw_put(m, "| ");
        esc(m, label);
        co__rw_printf(m, " | *candidate / incumbent* | | %s | | %s | %s | %s | |\n", c, r0, r1, r2);
    }
}

static void drift_table(md *m, const co__drift *d)
{
    char a0[16], a1[16], p[16];
    co__rw_printf(m, "| feature | incumbent | candidate | p | drift |\n|---|---|---|---|---|\n");
    co__fmt_p(p, sizeof p, d->ks.p);
    co__rw_printf(m, "| output length (chars): mean / p50 / p95 | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %s (KS D = %.2f) | %s |\n",
       d->len_mean[0], d->len_p50[0], d->len_p95[0], d->len_mean[1], d->len_p50[1], d->len_p95[1], p, d->ks.d,
       d->len_flagged ? "**yes**" : "no");
    for (int k = 0; k < CO__DRIFT_NRATES; k++) {
        const co__rate_drift *r = &d->rates[k];
        co__fmt_pct(a0, sizeof a0, r->n[0] ? (double)r->k[0] / (double)r->n[0] : NAN);
        co__fmt_pct(a1, sizeof a1, r->n[1] ? (double)r->k[1] / (double)r->n[1] : NAN);
        co__fmt_p(p, sizeof p, r->p);
        co__rw_printf(m, "| %s | %s | %s | %s | %s |\n", co__drift_rate_name(k), a0, a1, p, r->flagged ? "**yes**" : "no");
    }
}

static void side(md *m, const char *arm, const co__result *r)
{
    char l[24], c[24];
    co__fmt_ms(l, sizeof l, r->latency_ms);
    co__fmt_usd(c, sizeof c, r->cost_usd);
    co__rw_printf(m, "**%s** — %s, %s, %s\n\n", arm, r->passed ? "passed" : "failed", l, c);
    if (r->error) {
        co__rw_put(m, "Call error: ");
        esc(m, r->error);
        co__rw_put(m, "\n\n");
    }
    for (size_t i = 0; i < r->n_reasons; i++) {
        co__rw_put(m, "- ");
        esc(m, r->reasons[i]);
        co__rw_put(m, "\n");
    }
    if (r->n_reasons)
        co__rw_put(m, "\n");
    if (!m->rc)
        m->rc = co__md_fence(m->b, r->output ? r->output : "");
    co__rw_put(m, "\n");
}

static void changes(md *m, const co_eval_analysis *a, const co__workload *w, int regress)
{
    size_t total = regress ? w->n_regressions : w->n_improvements;
    size_t listed = regress ? w->listed_regressions : w->listed_improvements;
    const co__pair_ref *v = regress ? w->regressions : w->improvements;
    if (!total)
        return;
    co__rw_put(m, "### ");
    esc(m, w->name);
    co__rw_printf(m, ": %zu %s", total, regress ? (total == 1 ? "regression" : "regressions")
                                     : (total == 1 ? "improvement" : "improvements"));
    if (listed < total)
        co__rw_printf(m, " (first %zu listed)", listed);
    co__rw_put(m, "\n\n");
    for (size_t i = 0; i < listed; i++) {
        const co__result *ri = &a->results[v[i].inc], *rc = &a->results[v[i].cand];
        co__rw_put(m, "#### ");
        esc(m, ri->case_id);
        if (a->repeat > 1)
            co__rw_printf(m, " (repeat %d)", ri->repeat);
        if (ri->critical)
            co__rw_put(m, " — critical");
        co__rw_put(m, "\n\n");
        side(m, "Incumbent", ri);
        side(m, "Candidate", rc);
    }
}

int co__render_md(co_buf *b, const co_eval_analysis *a)
{
    md m = {.b = b};
    char ex[96];
    co__rw_put(&m, "# cutover eval report\n\n");
    if (!a->compared) {
        co__rw_printf(&m, "**Nothing compared**: only the %s arm ran (exit code 0).\n\n",
           a->has_arm[CO__CAND] ? "candidate" : "incumbent");
    } else {
        co__rw_printf(&m, "**Verdict: %s** (exit code %d)", upper(a->verdict), co_eval_analysis_exit_code(a));
        co__fmt_extra(ex, sizeof ex, a->verdict == CO_GATE_INCONCLUSIVE ? a->extra_cases : 0);
        if (*ex)
            co__rw_printf(&m, " — %s", ex);
        co__rw_put(&m, "\n\n");
    }
    switch (a->mode) {
    case CO__MODE_ARMS: co__rw_put(&m, "Both arms of one run, paired by case and repeat.\n\n"); break;
    case CO__MODE_BASELINE: co__rw_put(&m, "A candidate-only run against each workload's saved baseline run.\n\n"); break;
    case CO__MODE_RUNS:
        co__rw_printf(&m, "Run %" PRId64 " as the incumbent against run %" PRId64 " as the candidate, paired by case and repeat.\n\n",
           a->run_a, a->run_b);
        break;
    case CO__MODE_SINGLE: break;
    }
    run_table(&m, a);
    co__rw_printf(&m, "\nIntervals at %g%% confidence; %d repeat%s per case; %u bootstrap resamples.\n\n", a->level * 100,
       a->repeat, a->repeat == 1 ? "" : "s", a->bootstrap);

    if (a->compared) {
        co__rw_put(&m, "## Gates\n\n");
        co__rw_put(&m, "| workload | verdict | incumbent pass rate | candidate pass rate | difference, pts [interval] "
                "| regressed / improved | McNemar p | gate | to settle |\n"
                "|---|---|---|---|---|---|---|---|---|\n");
        for (size_t i = 0; i < a->n_w; i++) {
            const co__workload *w = &a->w[i];
            if (!w->compared) {
                co__rw_put(&m, "| ");
                esc(&m, w->name);
                co__rw_put(&m, " | **INCONCLUSIVE** | only one arm ran | | | | | | |\n");
                continue;
            }
            gate_row(&m, w->name, 0, &w->all);
            if (w->has_critical)
                gate_row(&m, w->name, 1, &w->critical);
        }
        gate_row(&m, "overall (not gated)", 0, &a->overall.all);
        if (a->overall.has_critical)
            gate_row(&m, "overall (not gated)", 1, &a->overall.critical);
        int any = 0;
        for (size_t i = 0; i < a->n_w; i++)
            any |= a->w[i].cost.gated || a->w[i].latency.gated;
        if (any) {
            co__rw_put(&m, "\n| workload | gate | verdict | estimate [interval] | limit | to settle |\n"
                    "|---|---|---|---|---|---|\n");
            for (size_t i = 0; i < a->n_w; i++) {
                if (a->w[i].cost.gated)
                    ratio_gate_row(&m, a->w[i].name, "cost per request", &a->w[i].cost, 1);
                if (a->w[i].latency.gated)
                    ratio_gate_row(&m, a->w[i].name, "latency p95 ratio", &a->w[i].latency, 0);
            }
        }
        co__rw_put(&m, "\n");
    } else {
        co__rw_put(&m, "## Pass rates\n\n| workload | arm | pass rate |\n|---|---|---|\n");
        for (size_t i = 0; i < a->n_w; i++) {
            int arm = a->w[i].arm[CO__INC].present ? CO__INC : CO__CAND;
            co__rw_put(&m, "| ");
            esc(&m, a->w[i].name);
            co__rw_printf(&m, " | %s | ", co__arm_name(arm));
            rate_cell(&m, &a->w[i].all, arm);
            co__rw_put(&m, " |\n");
        }
        co__rw_put(&m, "\n");
    }

    co__rw_put(&m, "## Cost and latency\n\nCost per request and latency over successful calls; monthly cost "
            "at the volume recorded over the last 30 days.\n\n"
            "| workload | arm | model | cost / request | monthly cost | p50 | p95 | p99 | errors |\n"
            "|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < a->n_w; i++)
        metrics_rows(&m, &a->w[i], a->w[i].name);
    if (a->n_w > 1)
        metrics_rows(&m, &a->overall, "overall");
    co__rw_put(&m, "\n");

    if (a->compared) {
        co__rw_put(&m, "## Format drift\n\n");
        for (size_t i = 0; i <= a->n_w; i++) {
            const co__workload *w = i < a->n_w ? &a->w[i] : &a->overall;
            if (i == a->n_w && a->n_w < 2)
                break;
            if (!w->drift.computed)
                continue;
            co__rw_put(&m, "### ");
            esc(&m, w->name ? w->name : "overall");
            co__rw_put(&m, "\n\n");
            drift_table(&m, &w->drift);
            co__rw_put(&m, "\n");
        }
        co__rw_put(&m, "## Regressions\n\nPassed on the incumbent, failed on the candidate.\n\n");
        if (!a->overall.n_regressions)
            co__rw_put(&m, "None.\n\n");
        for (size_t i = 0; i < a->n_w; i++)
            changes(&m, a, &a->w[i], 1);
        co__rw_put(&m, "## Improvements\n\nFailed on the incumbent, passed on the candidate.\n\n");
        if (!a->overall.n_improvements)
            co__rw_put(&m, "None.\n\n");
        for (size_t i = 0; i < a->n_w; i++)
            changes(&m, a, &a->w[i], 0);
    }

    co__rw_put(&m, "## How to read this\n\n"
            "- Pass rates carry Wilson score intervals. The difference is candidate − incumbent in "
            "points on the same (case, repeat) pairs, with Newcombe's paired interval (widened to the "
            "case-level paired bootstrap when cases repeat); the p-value is the exact McNemar test on "
            "the discordant pairs.\n"
            "- A gate passes when the whole interval lies above −(allowed drop), fails when it lies "
            "below, and is inconclusive otherwise, with the number of extra cases likely (80%) to "
            "settle it. An allowed drop of 0 means no case may regress.\n"
            "- Format drift is flagged when a two-proportion z-test (rates) or a two-sample "
            "Kolmogorov–Smirnov test (length) has p below 1 − confidence level.\n"
            "- Details: docs/eval.md.\n");
    return m.rc;
}
