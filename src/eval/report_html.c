/* report.html: one self-contained page — inline CSS and inline SVG charts
 * (pass rate per workload with Wilson interval bars for both arms, the
 * latency distribution of each arm, cost per request per arm), the gate
 * tables, format drift, and the regressions with both outputs side by side.
 * No script, no external resource (a Content-Security-Policy says so too),
 * and every piece of text that came from a suite or a model is escaped. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/error.h"
#include "eval/report_int.h"

typedef co__rw html;

static void esc(html *h, const char *s)
{
    if (!h->rc)
        h->rc = co__esc_xml(h->b, s);
}

static const char *vclass(co_gate_verdict v)
{
    return v == CO_GATE_PASS ? "pass" : v == CO_GATE_FAIL ? "fail" : "inc";
}

static const char *vupper(co_gate_verdict v)
{
    return v == CO_GATE_PASS ? "PASS" : v == CO_GATE_FAIL ? "FAIL" : "INCONCLUSIVE";
}

static const char CSS[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d2330;margin:0;background:#f6f7f9}"
    "main{max-width:1180px;margin:0 auto;padding:24px}"
    "h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #d9dde3;padding-bottom:4px}"
    "h3{font-size:15px;margin:18px 0 8px}"
    "table{border-collapse:collapse;background:#fff;margin:8px 0;font-size:13px}"
    "th,td{border:1px solid #d9dde3;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#eef0f3}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".banner{padding:12px 16px;border-radius:6px;font-size:16px;margin:12px 0}"
    ".pass{color:#17693a}.fail{color:#b3261e}.inc{color:#8a5a00}"
    ".banner.pass{background:#e3f4e8}.banner.fail{background:#fbe4e2}.banner.inc{background:#fff2d6}.banner.none{background:#e9ecf1}"
    ".v{font-weight:700}.muted{color:#667085}.flag{font-weight:700;color:#b3261e}"
    "svg{background:#fff;border:1px solid #d9dde3;margin:8px 0;display:block}"
    "svg text{font:12px system-ui,sans-serif;fill:#1d2330}"
    ".legend span{display:inline-block;margin-right:14px}"
    ".sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}"
    ".pair{display:grid;grid-template-columns:1fr 1fr;gap:12px;margin:6px 0 18px}"
    ".side{background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:8px;min-width:0}"
    ".side h5{margin:0 0 6px;font-size:13px}"
    ".side ul{margin:4px 0 6px;padding-left:18px;color:#b3261e}"
    "pre{white-space:pre-wrap;word-break:break-word;background:#f3f4f6;padding:8px;margin:0;font:12px/1.4 ui-monospace,monospace;max-height:420px;overflow:auto}"
    "details{margin:8px 0}";

#define C_INC "#4e79a7"
#define C_CAND "#f28e2b"

static const char *arm_color(int arm)
{
    return arm == CO__CAND ? C_CAND : C_INC;
}

static void legend(html *h)
{
    co__rw_printf(h, "<div class=\"legend\"><span><i class=\"sw\" style=\"background:%s\"></i>incumbent</span>"
          "<span><i class=\"sw\" style=\"background:%s\"></i>candidate</span></div>\n",
       C_INC, C_CAND);
}

/* ------------------------------------------------------------ charts */

/* Pass rate per workload (and overall), a bar per arm with its Wilson
 * interval as a whisker. */
static void chart_pass(html *h, const co_eval_analysis *a)
{
    const double W = 760, left = 170, right = 20, top = 24, row = 46, bar = 14;
    size_t rows = a->n_w + (a->n_w > 1);
    double H = top + row * (double)rows + 28, span = W - left - right;
    co__rw_printf(h, "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"pass rate per workload\">\n",
       W, H, W, H);
    for (int t = 0; t <= 4; t++) {
        double x = left + span * t / 4.0;
        co__rw_printf(h, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e6ea\"/>"
              "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d%%</text>\n",
           x, top - 6, x, H - 22, x, H - 8, t * 25);
    }
    for (size_t i = 0; i < rows; i++) {
        const co__workload *w = i < a->n_w ? &a->w[i] : &a->overall;
        double y = top + row * (double)i;
        co__rw_printf(h, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", left - 8, y + row / 2);
        esc(h, w->name ? w->name : "overall");
        co__rw_put(h, "</text>\n");
        for (int arm = 0; arm < 2; arm++) {
            const co__rate *r = &w->all.rate[arm];
            if (!r->n)
                continue;
            double yy = y + 6 + arm * (bar + 4), rate = co__group_rate(&w->all, arm);
            double x0 = left + span * r->wilson.lo, x1 = left + span * r->wilson.hi, xc = yy + bar / 2;
            char p[16];
            co__fmt_pct(p, sizeof p, rate);
            co__rw_printf(h, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" opacity=\"0.85\">"
                  "<title>%s %s</title></rect>\n",
               left, yy, span * rate, bar, arm_color(arm), co__arm_name(arm), p);
            co__rw_printf(h, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#1d2330\" stroke-width=\"1.5\"/>"
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#1d2330\"/>"
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#1d2330\"/>\n",
               x0, xc, x1, xc, x0, yy + 2, x0, yy + bar - 2, x1, yy + 2, x1, yy + bar - 2);
        }
    }
    co__rw_put(h, "</svg>\n");
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* The latency distribution of each arm over every successful call: an
 * empirical CDF, with the p50/p95/p99 marks. */
static void chart_latency(html *h, const co_eval_analysis *a)
{
    double *v[2] = {NULL, NULL};
    size_t n[2] = {0, 0};
    double maxv = 0;
    for (int arm = 0; arm < 2; arm++) {
        v[arm] = malloc((a->n_results ? a->n_results : 1) * sizeof(double));
        if (!v[arm]) {
            h->rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
    }
    for (size_t i = 0; i < a->n_results; i++) {
        const co__result *r = &a->results[i];
        if (!r->error && isfinite(r->latency_ms) && r->latency_ms >= 0)
            v[r->arm][n[r->arm]++] = r->latency_ms;
    }
    for (int arm = 0; arm < 2; arm++) {
        qsort(v[arm], n[arm], sizeof(double), cmp_double);
        if (n[arm] && v[arm][n[arm] - 1] > maxv)
            maxv = v[arm][n[arm] - 1];
    }
    if (!n[0] && !n[1]) {
        co__rw_put(h, "<p class=\"muted\">No successful call: no latency to show.</p>\n");
        goto done;
    }
    if (maxv <= 0)
        maxv = 1;
    const double W = 760, H = 260, left = 60, right = 44, top = 14, bottom = 34;
    double sx = (W - left - right) / maxv, sy = H - top - bottom;
    co__rw_printf(h, "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"latency distribution per arm\">\n",
       W, H, W, H);
    for (int t = 0; t <= 4; t++) {
        double x = left + (W - left - right) * t / 4.0, y = top + sy * (1 - t / 4.0);
        char ms[24];
        co__fmt_ms(ms, sizeof ms, maxv * t / 4.0);
        co__rw_printf(h, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e6ea\"/>"
              "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
           x, top, x, top + sy, x, H - 12, ms);
        co__rw_printf(h, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e6ea\"/>"
              "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n",
           left, y, W - right, y, left - 6, y + 4, t * 25);
    }
    for (int arm = 0; arm < 2; arm++) {
        if (!n[arm])
            continue;
        /* at most ~300 steps: every k-th order statistic, the last always */
        size_t step = n[arm] > 300 ? (n[arm] + 299) / 300 : 1;
        /* a step function: along at the previous share, then up at each value */
        co__rw_printf(h, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%.1f,%.1f", arm_color(arm),
           left, top + sy);
        double prev_y = top + sy;
        for (size_t i = 0; i < n[arm]; i += step) {
            size_t j = i + step - 1 < n[arm] ? i + step - 1 : n[arm] - 1;
            double x = left + v[arm][j] * sx, y = top + sy * (1 - (double)(j + 1) / (double)n[arm]);
            co__rw_printf(h, " %.1f,%.1f %.1f,%.1f", x, prev_y, x, y);
            prev_y = y;
        }
        co__rw_printf(h, " %.1f,%.1f\"/>\n", W - right, top);
        const co__arm_metrics *m = &a->overall.arm[arm];
        static const char *const qn[3] = {"p50", "p95", "p99"};
        static const double qv[3] = {0.5, 0.95, 0.99};
        for (int q = 0; q < 3; q++) {
            if (!isfinite(m->lat[q]))
                continue;
            char ms[24];
            co__fmt_ms(ms, sizeof ms, m->lat[q]);
            co__rw_printf(h, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>%s %s %s</title></circle>\n",
               left + m->lat[q] * sx, top + sy * (1 - qv[q]), arm_color(arm), co__arm_name(arm), qn[q], ms);
        }
    }
    co__rw_put(h, "</svg>\n");
done:
    free(v[0]);
    free(v[1]);
}

/* Cost per request per workload, a bar per arm. */
static void chart_cost(html *h, const co_eval_analysis *a)
{
    double maxv = 0;
    for (size_t i = 0; i < a->n_w; i++)
        for (int arm = 0; arm < 2; arm++)
            if (a->w[i].arm[arm].present && isfinite(a->w[i].arm[arm].cost_per_request) &&
                a->w[i].arm[arm].cost_per_request > maxv)
                maxv = a->w[i].arm[arm].cost_per_request;
    if (maxv <= 0) {
        co__rw_put(h, "<p class=\"muted\">No cost recorded.</p>\n");
        return;
    }
    const double W = 760, left = 170, right = 110, top = 10, row = 40, bar = 14;
    double H = top + row * (double)a->n_w + 10, span = W - left - right;
    co__rw_printf(h, "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"cost per request\">\n",
       W, H, W, H);
    for (size_t i = 0; i < a->n_w; i++) {
        const co__workload *w = &a->w[i];
        double y = top + row * (double)i;
        co__rw_printf(h, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", left - 8, y + row / 2);
        esc(h, w->name);
        co__rw_put(h, "</text>\n");
        for (int arm = 0; arm < 2; arm++) {
            const co__arm_metrics *m = &w->arm[arm];
            if (!m->present || !isfinite(m->cost_per_request))
                continue;
            double yy = y + 4 + arm * (bar + 3), len = span * m->cost_per_request / maxv;
            char c[32];
            co__fmt_usd(c, sizeof c, m->cost_per_request);
            co__rw_printf(h, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" opacity=\"0.85\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
               left, yy, len, bar, arm_color(arm), left + len + 6, yy + bar - 3, c);
        }
    }
    co__rw_put(h, "</svg>\n");
}

/* ------------------------------------------------------------ tables */

static void rate_cell(html *h, const co__group *g, int arm)
{
    const co__rate *r = &g->rate[arm];
    char p[16], lo[16], hi[16];
    if (!r->n) {
        co__rw_put(h, "<td>–</td>");
        return;
    }
    co__fmt_pct(p, sizeof p, co__group_rate(g, arm));
    co__fmt_pct(lo, sizeof lo, r->wilson.lo);
    co__fmt_pct(hi, sizeof hi, r->wilson.hi);
    co__rw_printf(h, "<td class=\"num\">%s <span class=\"muted\">[%s, %s] %" PRIu64 "/%" PRIu64 "</span></td>", p, lo, hi,
       r->passed, r->n);
}

static void gate_row(html *h, const char *label, int critical, const co__group *g)
{
    char d[16], lo[16], hi[16], p[16], ex[96];
    co__rw_put(h, "<tr><td>");
    esc(h, label);
    if (critical)
        co__rw_put(h, " · critical");
    if (g->gated)
        co__rw_printf(h, "</td><td class=\"v %s\">%s</td>", vclass(g->verdict), vupper(g->verdict));
    else
        co__rw_put(h, "</td><td class=\"muted\">not gated</td>");
    rate_cell(h, g, CO__INC);
    rate_cell(h, g, CO__CAND);
    if (g->pairs) {
        co__fmt_pts(d, sizeof d, g->paired.diff.est);
        co__fmt_pts(lo, sizeof lo, g->gated ? g->gate_ci.lo : g->paired.diff.lo);
        co__fmt_pts(hi, sizeof hi, g->gated ? g->gate_ci.hi : g->paired.diff.hi);
        co__fmt_p(p, sizeof p, g->paired.p_exact);
        co__rw_printf(h, "<td class=\"num\">%s [%s, %s]</td><td class=\"num\">%" PRIu64 " / %" PRIu64 "</td><td class=\"num\">%s</td>",
           d, lo, hi, g->t.inc_only, g->t.cand_only, p);
    } else {
        co__rw_put(h, "<td>–</td><td>–</td><td>–</td>");
    }
    if (!g->gated)
        co__rw_put(h, "<td>–</td>");
    else if (g->zero_tolerance)
        co__rw_put(h, "<td>no regression</td>");
    else
        co__rw_printf(h, "<td>drop ≤ %g pts</td>", g->max_drop);
    co__fmt_extra(ex, sizeof ex, g->verdict == CO_GATE_INCONCLUSIVE ? g->extra_cases : 0);
    co__rw_put(h, "<td>");
    esc(h, ex);
    co__rw_put(h, "</td></tr>\n");
}

static void ratio_row(html *h, const char *wname, const char *label, const co__ratio_gate *g, int pct)
{
    char e[32], lo[32], hi[32], ex[96];
    co__rw_put(h, "<tr><td>");
    esc(h, wname);
    co__rw_printf(h, "</td><td>%s</td><td class=\"v %s\">%s</td>", label, vclass(g->verdict), vupper(g->verdict));
    if (g->computed && pct) {
        snprintf(e, sizeof e, "%+.1f%%", round(g->est * 10) / 10 + 0.0);
        snprintf(lo, sizeof lo, "%+.1f%%", round(g->lo * 10) / 10 + 0.0);
        snprintf(hi, sizeof hi, "%+.1f%%", round(g->hi * 10) / 10 + 0.0);
    } else if (g->computed) {
        co__fmt_ratio(e, sizeof e, g->est);
        co__fmt_ratio(lo, sizeof lo, g->lo);
        co__fmt_ratio(hi, sizeof hi, g->hi);
    }
    if (g->computed)
        co__rw_printf(h, "<td class=\"num\">%s [%s, %s]</td>", e, lo, hi);
    else
        co__rw_put(h, "<td>–</td>");
    if (pct)
        co__rw_printf(h, "<td>≤ +%g%%</td><td>", g->max);
    else
        co__rw_printf(h, "<td>≤ %gx</td><td>", g->max);
    co__fmt_extra(ex, sizeof ex, g->verdict == CO_GATE_INCONCLUSIVE ? g->extra_cases : 0);
    if (g->note && g->verdict == CO_GATE_INCONCLUSIVE) {
        esc(h, g->note);
        if (*ex)
            co__rw_put(h, "; ");
    }
    esc(h, ex);
    co__rw_put(h, "</td></tr>\n");
}

static void metrics_rows(html *h, const co__workload *w, const char *label)
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
        co__rw_put(h, "<tr><td>");
        esc(h, label);
        co__rw_printf(h, "</td><td><i class=\"sw\" style=\"background:%s\"></i>%s</td><td>", arm_color(arm), co__arm_name(arm));
        esc(h, x->model ? x->model : "–");
        co__rw_printf(h, "</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
              "<td class=\"num\">%s</td><td class=\"num\">%s (%" PRIu64 "/%" PRIu64 ")</td></tr>\n",
           c, x->has_monthly ? mo : "<span class=\"muted\">no recorded volume</span>", l0, l1, l2, er, x->errors,
           x->n);
    }
    if (w->arm[0].present && w->arm[1].present) {
        char c[16], r0[16], r1[16], r2[16];
        co__fmt_ratio(c, sizeof c, w->cost_ratio);
        co__fmt_ratio(r0, sizeof r0, w->lat_ratio[0]);
        co__fmt_ratio(r1, sizeof r1, w->lat_ratio[1]);
        co__fmt_ratio(r2, sizeof r2, w->lat_ratio[2]);
        co__rw_put(h, "<tr class=\"muted\"><td>");
        esc(h, label);
        co__rw_printf(h, "</td><td>candidate / incumbent</td><td></td><td class=\"num\">%s</td><td></td><td class=\"num\">%s</td>"
              "<td class=\"num\">%s</td><td class=\"num\">%s</td><td></td></tr>\n",
           c, r0, r1, r2);
    }
}

static void drift_table(html *h, const co__drift *d)
{
    char a0[16], a1[16], p[16];
    co__rw_put(h, "<table><tr><th>feature</th><th>incumbent</th><th>candidate</th><th>p</th><th>drift</th></tr>\n");
    co__fmt_p(p, sizeof p, d->ks.p);
    co__rw_printf(h, "<tr><td>output length (chars): mean / p50 / p95</td><td class=\"num\">%.0f / %.0f / %.0f</td>"
          "<td class=\"num\">%.0f / %.0f / %.0f</td><td class=\"num\">%s (KS D = %.2f)</td><td%s>%s</td></tr>\n",
       d->len_mean[0], d->len_p50[0], d->len_p95[0], d->len_mean[1], d->len_p50[1], d->len_p95[1], p, d->ks.d,
       d->len_flagged ? " class=\"flag\"" : "", d->len_flagged ? "yes" : "no");
    for (int k = 0; k < CO__DRIFT_NRATES; k++) {
        const co__rate_drift *r = &d->rates[k];
        co__fmt_pct(a0, sizeof a0, r->n[0] ? (double)r->k[0] / (double)r->n[0] : NAN);
        co__fmt_pct(a1, sizeof a1, r->n[1] ? (double)r->k[1] / (double)r->n[1] : NAN);
        co__fmt_p(p, sizeof p, r->p);
        co__rw_printf(h, "<tr><td>%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td%s>%s</td></tr>\n",
           co__drift_rate_name(k), a0, a1, p, r->flagged ? " class=\"flag\"" : "", r->flagged ? "yes" : "no");
    }
    co__rw_put(h, "</table>\n");
}

static void side(html *h, int arm, const co__result *r)
{
    char l[24], c[24];
    co__fmt_ms(l, sizeof l, r->latency_ms);
    co__fmt_usd(c, sizeof c, r->cost_usd);
    co__rw_printf(h, "<div class=\"side\"><h5><i class=\"sw\" style=\"background:%s\"></i>%s — <span class=\"%s\">%s</span> "
          "<span class=\"muted\">%s, %s</span></h5>",
       arm_color(arm), arm == CO__CAND ? "Candidate" : "Incumbent", r->passed ? "pass" : "fail",
       r->passed ? "passed" : "failed", l, c);
    if (r->error || r->n_reasons) {
        co__rw_put(h, "<ul>");
        if (r->error) {
            co__rw_put(h, "<li>call error: ");
            esc(h, r->error);
            co__rw_put(h, "</li>");
        }
        for (size_t i = 0; i < r->n_reasons; i++) {
            co__rw_put(h, "<li>");
            esc(h, r->reasons[i]);
            co__rw_put(h, "</li>");
        }
        co__rw_put(h, "</ul>");
    }
    co__rw_put(h, "<pre>");
    esc(h, r->output ? r->output : "");
    co__rw_put(h, "</pre></div>");
}

static void changes(html *h, const co_eval_analysis *a, const co__workload *w, int regress)
{
    size_t total = regress ? w->n_regressions : w->n_improvements;
    size_t listed = regress ? w->listed_regressions : w->listed_improvements;
    const co__pair_ref *v = regress ? w->regressions : w->improvements;
    if (!total)
        return;
    co__rw_put(h, "<h3>");
    esc(h, w->name);
    co__rw_printf(h, ": %zu %s", total, regress ? (total == 1 ? "regression" : "regressions")
                                    : (total == 1 ? "improvement" : "improvements"));
    if (listed < total)
        co__rw_printf(h, " <span class=\"muted\">(first %zu listed)</span>", listed);
    co__rw_put(h, "</h3>\n");
    for (size_t i = 0; i < listed; i++) {
        const co__result *ri = &a->results[v[i].inc], *rc = &a->results[v[i].cand];
        co__rw_put(h, "<h4>");
        esc(h, ri->case_id);
        if (a->repeat > 1)
            co__rw_printf(h, " <span class=\"muted\">repeat %d</span>", ri->repeat);
        if (ri->critical)
            co__rw_put(h, " <span class=\"flag\">critical</span>");
        co__rw_put(h, "</h4>\n<div class=\"pair\">");
        side(h, CO__INC, ri);
        side(h, CO__CAND, rc);
        co__rw_put(h, "</div>\n");
    }
}

int co__render_html(co_buf *b, const co_eval_analysis *a)
{
    html h = {.b = b};
    char t[32], ex[96];
    co__rw_put(&h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<title>cutover eval report</title>\n<style>");
    co__rw_put(&h, CSS);
    co__rw_put(&h, "</style>\n</head>\n<body>\n<main>\n<h1>cutover eval report</h1>\n");
    if (!a->compared) {
        co__rw_printf(&h, "<div class=\"banner none\"><b>Nothing compared</b>: only the %s arm ran (exit code 0).</div>\n",
           a->has_arm[CO__CAND] ? "candidate" : "incumbent");
    } else {
        co__rw_printf(&h, "<div class=\"banner %s\"><b>Verdict: %s</b> (exit code %d)", vclass(a->verdict), vupper(a->verdict),
           co_eval_analysis_exit_code(a));
        co__fmt_extra(ex, sizeof ex, a->verdict == CO_GATE_INCONCLUSIVE ? a->extra_cases : 0);
        if (*ex) {
            co__rw_put(&h, " — ");
            esc(&h, ex);
        }
        co__rw_put(&h, "</div>\n");
    }
    co__rw_put(&h, "<table><tr><th>run</th><th>role</th><th>suite</th><th>status</th><th>started</th><th>finished</th></tr>\n");
    for (size_t i = 0; i < a->n_runs; i++) {
        const co__run_info *r = &a->runs[i];
        co__rw_printf(&h, "<tr><td>%" PRId64 "</td><td>%s</td><td>", r->id, r->role);
        esc(&h, r->suite ? r->suite : "");
        co__rw_put(&h, "</td><td>");
        esc(&h, r->status ? r->status : "");
        co__fmt_time(t, sizeof t, r->started_ms);
        co__rw_printf(&h, "</td><td>%s</td>", *t ? t : "–");
        co__fmt_time(t, sizeof t, r->finished_ms);
        co__rw_printf(&h, "<td>%s</td></tr>\n", *t ? t : "–");
    }
    co__rw_printf(&h, "</table>\n<p class=\"muted\">Intervals at %g%% confidence; %d repeat%s per case; %u bootstrap resamples.</p>\n",
       a->level * 100, a->repeat, a->repeat == 1 ? "" : "s", a->bootstrap);

    if (a->compared) {
        co__rw_put(&h, "<h2>Gates</h2>\n<table><tr><th>workload</th><th>verdict</th><th>incumbent pass rate</th>"
                "<th>candidate pass rate</th><th>difference, pts [interval]</th><th>regressed / improved</th>"
                "<th>McNemar p</th><th>gate</th><th>to settle</th></tr>\n");
        for (size_t i = 0; i < a->n_w; i++) {
            const co__workload *w = &a->w[i];
            if (!w->compared) {
                co__rw_put(&h, "<tr><td>");
                esc(&h, w->name);
                co__rw_put(&h, "</td><td class=\"v inc\">INCONCLUSIVE</td><td colspan=\"7\">only one arm ran</td></tr>\n");
                continue;
            }
            gate_row(&h, w->name, 0, &w->all);
            if (w->has_critical)
                gate_row(&h, w->name, 1, &w->critical);
        }
        gate_row(&h, "overall", 0, &a->overall.all);
        if (a->overall.has_critical)
            gate_row(&h, "overall", 1, &a->overall.critical);
        co__rw_put(&h, "</table>\n");
        int any = 0;
        for (size_t i = 0; i < a->n_w; i++)
            any |= a->w[i].cost.gated || a->w[i].latency.gated;
        if (any) {
            co__rw_put(&h, "<table><tr><th>workload</th><th>gate</th><th>verdict</th><th>estimate [interval]</th>"
                    "<th>limit</th><th>to settle</th></tr>\n");
            for (size_t i = 0; i < a->n_w; i++) {
                if (a->w[i].cost.gated)
                    ratio_row(&h, a->w[i].name, "cost per request", &a->w[i].cost, 1);
                if (a->w[i].latency.gated)
                    ratio_row(&h, a->w[i].name, "latency p95 ratio", &a->w[i].latency, 0);
            }
            co__rw_put(&h, "</table>\n");
        }
    }
    co__rw_put(&h, "<h2>Pass rate per workload</h2>\n");
    legend(&h);
    chart_pass(&h, a);
    co__rw_put(&h, "<p class=\"muted\">Bars: pass rate; whiskers: Wilson interval.</p>\n");

    co__rw_put(&h, "<h2>Cost and latency</h2>\n<p class=\"muted\">Over successful calls; monthly cost at the volume "
            "recorded over the last 30 days.</p>\n<table><tr><th>workload</th><th>arm</th><th>model</th>"
            "<th>cost / request</th><th>monthly cost</th><th>p50</th><th>p95</th><th>p99</th><th>errors</th></tr>\n");
    for (size_t i = 0; i < a->n_w; i++)
        metrics_rows(&h, &a->w[i], a->w[i].name);
    if (a->n_w > 1)
        metrics_rows(&h, &a->overall, "overall");
    co__rw_put(&h, "</table>\n<h3>Latency distribution (all workloads)</h3>\n");
    legend(&h);
    chart_latency(&h, a);
    co__rw_put(&h, "<p class=\"muted\">Share of calls (y) answered within a latency (x); dots mark p50, p95, p99.</p>\n"
            "<h3>Cost per request</h3>\n");
    legend(&h);
    chart_cost(&h, a);

    if (a->compared) {
        co__rw_put(&h, "<h2>Format drift</h2>\n");
        for (size_t i = 0; i <= a->n_w; i++) {
            const co__workload *w = i < a->n_w ? &a->w[i] : &a->overall;
            if (i == a->n_w && a->n_w < 2)
                break;
            if (!w->drift.computed)
                continue;
            co__rw_put(&h, "<h3>");
            esc(&h, w->name ? w->name : "overall");
            co__rw_put(&h, "</h3>\n");
            drift_table(&h, &w->drift);
        }
        co__rw_put(&h, "<h2>Regressions</h2>\n<p class=\"muted\">Passed on the incumbent, failed on the candidate.</p>\n");
        if (!a->overall.n_regressions)
            co__rw_put(&h, "<p>None.</p>\n");
        for (size_t i = 0; i < a->n_w; i++)
            changes(&h, a, &a->w[i], 1);
        co__rw_put(&h, "<h2>Improvements</h2>\n<p class=\"muted\">Failed on the incumbent, passed on the candidate.</p>\n");
        if (!a->overall.n_improvements)
            co__rw_put(&h, "<p>None.</p>\n");
        for (size_t i = 0; i < a->n_w; i++)
            changes(&h, a, &a->w[i], 0);
    }
    co__rw_put(&h, "<h2>How to read this</h2>\n<ul>"
            "<li>Pass rates carry Wilson score intervals. The difference is candidate − incumbent in points on the "
            "same (case, repeat) pairs, with Newcombe's paired interval (widened to the case-level paired bootstrap "
            "when cases repeat); the p-value is the exact McNemar test on the discordant pairs.</li>"
            "<li>A gate passes when the whole interval lies above −(allowed drop), fails when it lies below, and is "
            "inconclusive otherwise, with the number of extra cases likely (80%) to settle it. An allowed drop of 0 "
            "means no case may regress.</li>"
            "<li>Format drift is flagged when a two-proportion z-test (rates) or a two-sample Kolmogorov–Smirnov "
            "test (length) has p below 1 − confidence level.</li></ul>\n"
            "</main>\n</body>\n</html>\n");
    return h.rc;
}
